//! A postings list of the head: the sorted refs of the series having one
//! label pair. Refs are kept as `u32` while they fit (4 bytes an entry
//! instead of 8, about 22 bytes less per series for node_exporter-like label
//! sets); the first larger ref widens that list to `u64`. Refs are handed out
//! from 1 upwards, so a head widens only after four billion series were
//! created in one process.

/// Sorted, unique series refs.
pub(crate) enum RefList {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

impl Default for RefList {
    fn default() -> Self {
        RefList::Narrow(Vec::new())
    }
}

impl RefList {
    pub(crate) fn len(&self) -> usize {
        match self {
            RefList::Narrow(v) => v.len(),
            RefList::Wide(v) => v.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `r` (not present yet) at its place.
    pub(crate) fn insert(&mut self, r: u64) {
        match self {
            RefList::Narrow(v) => match u32::try_from(r) {
                Ok(r) => insert_sorted(v, r),
                Err(_) => {
                    let mut wide: Vec<u64> = Vec::with_capacity(v.len() + 1);
                    wide.extend(v.iter().map(|&x| u64::from(x)));
                    insert_sorted(&mut wide, r);
                    *self = RefList::Wide(wide);
                }
            },
            RefList::Wide(v) => insert_sorted(v, r),
        }
    }

    /// Keeps the refs for which `keep` is true, and gives back the spare capacity.
    pub(crate) fn retain_and_shrink(&mut self, mut keep: impl FnMut(u64) -> bool) {
        match self {
            RefList::Narrow(v) => {
                v.retain(|&r| keep(u64::from(r)));
                v.shrink_to_fit();
            }
            RefList::Wide(v) => {
                v.retain(|&r| keep(r));
                v.shrink_to_fit();
            }
        }
    }

    /// Gives back the capacity beyond an eighth of the length.
    pub(crate) fn shrink_slack(&mut self) {
        fn shrink<T>(v: &mut Vec<T>) {
            if v.capacity() > v.len() + v.len() / 8 + 4 {
                v.shrink_to_fit();
            }
        }
        match self {
            RefList::Narrow(v) => shrink(v),
            RefList::Wide(v) => shrink(v),
        }
    }

    /// The refs, as `u64`s.
    pub(crate) fn to_vec(&self) -> Vec<u64> {
        match self {
            RefList::Narrow(v) => v.iter().map(|&r| u64::from(r)).collect(),
            RefList::Wide(v) => v.clone(),
        }
    }
}

/// Grows by an eighth, not by doubling: the lists of a million series would
/// otherwise carry up to as much slack as content. Refs are handed out in
/// increasing order except during replay, so this is nearly always a push.
fn insert_sorted<T: Ord + Copy>(list: &mut Vec<T>, r: T) {
    if list.len() == list.capacity() {
        list.reserve_exact((list.len() / 8).max(4));
    }
    if list.last().is_some_and(|&last| last > r) {
        let pos = list.partition_point(|&x| x < r);
        list.insert(pos, r);
    } else {
        list.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_past_u32_and_stays_sorted() {
        let mut l = RefList::default();
        for r in [5u64, 1, 3, 9] {
            l.insert(r);
        }
        assert!(matches!(l, RefList::Narrow(_)));
        assert_eq!(l.to_vec(), vec![1, 3, 5, 9]);
        l.insert(u64::from(u32::MAX) + 7);
        l.insert(4);
        assert!(matches!(l, RefList::Wide(_)));
        assert_eq!(l.to_vec(), vec![1, 3, 4, 5, 9, u64::from(u32::MAX) + 7]);
        l.retain_and_shrink(|r| r % 2 == 1);
        assert_eq!(l.to_vec(), vec![1, 3, 5, 9]);
        assert_eq!(l.len(), 4);
        assert!(!l.is_empty());
    }
}
