//! Turning matchers into a sorted list of series ids, over any index that can
//! list label values and their postings. Shared by the head and by blocks.

use model::{MatchOp, Matcher};

/// What the postings selection needs from an index. Ids are sorted ascending.
pub(crate) trait PostingsSource {
    /// All series ids.
    fn all_postings(&self) -> Vec<u64>;
    /// Ids of series with `name="value"`.
    fn postings(&self, name: &str, value: &str) -> Vec<u64>;
    /// All values label `name` takes, sorted.
    fn label_values(&self, name: &str) -> Vec<String>;
}

/// Ids of the series matching every matcher, sorted ascending.
pub(crate) fn select_postings(index: &impl PostingsSource, matchers: &[Matcher]) -> Vec<u64> {
    let mut result: Option<Vec<u64>> = None;
    // Matchers that select positively go first: they shrink the set fastest.
    let mut ordered: Vec<&Matcher> = matchers.iter().collect();
    ordered.sort_by_key(|m| (m.matches_empty(), m.op() != MatchOp::Equal));
    for m in ordered {
        if result.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
        let ids = if m.matches_empty() {
            // Series without the label match too: all minus those whose value does not match.
            let excluded = union(
                index
                    .label_values(m.name())
                    .iter()
                    .filter(|v| !m.matches(v))
                    .map(|v| index.postings(m.name(), v))
                    .collect(),
            );
            let base = result.take().unwrap_or_else(|| index.all_postings());
            result = Some(difference(&base, &excluded));
            continue;
        } else if m.op() == MatchOp::Equal {
            index.postings(m.name(), m.value())
        } else if let Some(set) = m.set_matches() {
            union(set.iter().map(|v| index.postings(m.name(), v)).collect())
        } else {
            union(
                index
                    .label_values(m.name())
                    .iter()
                    .filter(|v| m.matches(v))
                    .map(|v| index.postings(m.name(), v))
                    .collect(),
            )
        };
        result = Some(match result {
            None => ids,
            Some(r) => intersect(&r, &ids),
        });
    }
    result.unwrap_or_else(|| index.all_postings())
}

pub(crate) fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub(crate) fn difference(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut j = 0;
    let mut out = Vec::with_capacity(a.len());
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

pub(crate) fn union(mut lists: Vec<Vec<u64>>) -> Vec<u64> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists.pop().unwrap_or_default(),
        _ => {
            let mut all: Vec<u64> = lists.into_iter().flatten().collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Idx(BTreeMap<(String, String), Vec<u64>>, u64);
    impl PostingsSource for Idx {
        fn all_postings(&self) -> Vec<u64> {
            (0..self.1).collect()
        }
        fn postings(&self, n: &str, v: &str) -> Vec<u64> {
            self.0.get(&(n.to_string(), v.to_string())).cloned().unwrap_or_default()
        }
        fn label_values(&self, n: &str) -> Vec<String> {
            self.0.keys().filter(|(k, _)| k == n).map(|(_, v)| v.clone()).collect()
        }
    }

    #[test]
    fn matchers_select_expected_ids() {
        let mut m = BTreeMap::new();
        m.insert(("job".into(), "a".into()), vec![0, 1]);
        m.insert(("job".into(), "b".into()), vec![2]);
        m.insert(("env".into(), "prod".into()), vec![1, 2]);
        let idx = Idx(m, 4);
        let sel = |ms: Vec<Matcher>| select_postings(&idx, &ms);
        assert_eq!(sel(vec![Matcher::equal("job", "a")]), vec![0, 1]);
        assert_eq!(
            sel(vec![Matcher::equal("job", "a"), Matcher::equal("env", "prod")]),
            vec![1]
        );
        assert_eq!(
            sel(vec![Matcher::new(MatchOp::NotEqual, "env", "prod").unwrap()]),
            vec![0, 3]
        );
        assert_eq!(
            sel(vec![Matcher::new(MatchOp::RegexMatch, "job", "a|b").unwrap()]),
            vec![0, 1, 2]
        );
        assert_eq!(
            sel(vec![Matcher::new(MatchOp::RegexMatch, "job", ".+").unwrap()]),
            vec![0, 1, 2]
        );
        assert_eq!(sel(vec![Matcher::equal("env", "")]), vec![0, 3]);
        assert_eq!(
            sel(vec![Matcher::new(MatchOp::RegexNoMatch, "job", "a").unwrap()]),
            vec![2, 3]
        );
    }
}
