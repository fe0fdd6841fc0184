//! Label sets. A series is identified by its sorted, duplicate-free label set,
//! the metric name being the label `__name__`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The label that carries the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// The label name.
    pub name: String,
    /// The label value. An empty value means "label absent".
    pub value: String,
}

impl Label {
    /// Creates a label.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A set of labels sorted by name.
///
/// Invariant: names are sorted ascending, unique, and no value is empty
/// (an empty value means the label is absent, as in Prometheus).
///
/// Immutable and shared: a clone is a reference count increment, so query
/// evaluation can hand the same set from storage to every step's result.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Arc<[Label]>);

impl Default for Labels {
    fn default() -> Self {
        Labels::empty()
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Arc::from(Vec::new()))
    }

    /// Builds a label set from labels in any order. Labels with empty values
    /// are dropped; for duplicate names the last one wins. Use
    /// [`Labels::validate_input`] first where duplicates must be refused.
    pub fn new(mut labels: Vec<Label>) -> Self {
        labels.retain(|l| !l.value.is_empty());
        // Stable sort keeps insertion order among equal names; of a run of
        // equal names the kept (first) slot takes each later label in turn,
        // so the last one wins.
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        labels.dedup_by(|later, kept| {
            let same = later.name == kept.name;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Labels(Arc::from(labels))
    }

    /// Builds a label set from `(name, value)` pairs.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Self {
        Labels::new(pairs.iter().map(|(n, v)| Label::new(n.as_ref(), v.as_ref())).collect())
    }

    /// Wraps labels that the caller guarantees are sorted, unique and non-empty.
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        debug_assert!(labels.iter().all(|l| !l.value.is_empty()));
        Labels(Arc::from(labels))
    }

    /// Checks labels as received from a client, before [`Labels::new`]
    /// normalises them: names must be non-empty and unique.
    pub fn validate_input(labels: &[Label]) -> Result<(), String> {
        let mut names: Vec<&str> = Vec::with_capacity(labels.len());
        for l in labels {
            if l.name.is_empty() {
                return Err(format!("label with empty name (value {:?})", l.value));
            }
            names.push(&l.name);
        }
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("duplicate label name {:?}", w[0]));
        }
        Ok(())
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Tells whether label `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The labels, sorted by name.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Iterates the labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Tells whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Consumes the set, returning the sorted labels.
    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }

    /// A copy without the metric name.
    pub fn without_metric_name(&self) -> Labels {
        self.without(&[METRIC_NAME])
    }

    /// A copy without the named labels.
    pub fn without<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| !names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        )
    }

    /// A copy with only the named labels.
    pub fn keep<S: AsRef<str>>(&self, names: &[S]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|l| names.iter().any(|n| n.as_ref() == l.name))
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        )
    }

    /// A builder that starts from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.to_vec(),
        }
    }

    /// A stable 64-bit hash of the label set (FNV-1a over names and values,
    /// with separators), equal for equal sets within and across processes.
    pub fn stable_hash(&self) -> u64 {
        let mut h = Fnv64::default();
        for l in self.0.iter() {
            h.write(l.name.as_bytes());
            h.write_u8(0xff);
            h.write(l.value.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }

    /// The total size in bytes of names and values.
    pub fn byte_size(&self) -> usize {
        self.0.iter().map(|l| l.name.len() + l.value.len()).sum()
    }
}

impl fmt::Display for Labels {
    /// Formats as Prometheus does: `{__name__="up", job="node"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Edits a label set: set and delete labels, then [`LabelsBuilder::build`].
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// Sets label `name` to `value`; an empty value deletes it.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if value.is_empty() {
            return self.del(name);
        }
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) => l.value = value.to_string(),
            None => self.labels.push(Label::new(name, value)),
        }
        self
    }

    /// Deletes label `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// The current value of label `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
    }

    /// Keeps only labels for which `f` returns true.
    pub fn retain(&mut self, f: impl FnMut(&Label) -> bool) -> &mut Self {
        self.labels.retain(f);
        self
    }

    /// Finishes the set.
    pub fn build(&self) -> Labels {
        Labels::new(self.labels.clone())
    }
}

/// FNV-1a, 64 bit: tiny, deterministic, good enough to bucket label sets.
struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sorts_dedups_and_drops_empty() {
        let l = Labels::new(vec![
            Label::new("b", "1"),
            Label::new("a", "x"),
            Label::new("b", "2"),
            Label::new("c", ""),
        ]);
        assert_eq!(l.to_string(), r#"{a="x", b="2"}"#);
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("c"), None);
        let l = Labels::new(vec![
            Label::new("b", "1"),
            Label::new("z", "z"),
            Label::new("b", "2"),
            Label::new("a", "a"),
            Label::new("b", "3"),
        ]);
        assert_eq!(l.to_string(), r#"{a="a", b="3", z="z"}"#);
    }

    #[test]
    fn validate_input_refuses_duplicates_and_empty_names() {
        assert!(Labels::validate_input(&[Label::new("a", "1"), Label::new("a", "2")]).is_err());
        assert!(Labels::validate_input(&[Label::new("", "1")]).is_err());
        assert!(Labels::validate_input(&[Label::new("a", "1")]).is_ok());
    }

    #[test]
    fn stable_hash_differs_on_boundaries() {
        let a = Labels::from_pairs(&[("ab", "c")]);
        let b = Labels::from_pairs(&[("a", "bc")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(a.stable_hash(), a.clone().stable_hash());
    }
}
