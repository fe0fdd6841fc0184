//! Label sets packed into one byte string, the form the head keeps in memory.
//!
//! Layout: for each label in name order, `name 0xFF value 0xFF`. `0xFF` never
//! occurs in UTF-8, so the packing is unambiguous. One allocation per series
//! instead of two per label keeps the head small (~1 KiB per series budget).

use model::{Label, Labels};
use std::cmp::Ordering;

const SEP: u8 = 0xff;

/// Packs a label set.
#[cfg(test)]
pub(crate) fn pack(labels: &Labels) -> Box<[u8]> {
    let mut out = Vec::with_capacity(labels.byte_size() + 2 * labels.len());
    pack_into(labels, &mut out);
    out.into_boxed_slice()
}

/// Appends the packed form of a label set to `out` (no allocation of its own).
pub(crate) fn pack_into(labels: &Labels, out: &mut Vec<u8>) {
    for l in labels {
        out.extend_from_slice(l.name.as_bytes());
        out.push(SEP);
        out.extend_from_slice(l.value.as_bytes());
        out.push(SEP);
    }
}

/// Iterates `(name, value)` pairs of a packed label set.
pub(crate) fn pairs(packed: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    let mut parts = packed.split(|&b| b == SEP);
    std::iter::from_fn(move || {
        let name = parts.next()?;
        let value = parts.next()?;
        if name.is_empty() && value.is_empty() {
            return None;
        }
        // Packed sets are built from valid `String`s only.
        Some((
            std::str::from_utf8(name).unwrap_or(""),
            std::str::from_utf8(value).unwrap_or(""),
        ))
    })
}

/// Unpacks into a [`Labels`].
pub(crate) fn unpack(packed: &[u8]) -> Labels {
    Labels::from_sorted(pairs(packed).map(|(n, v)| Label::new(n, v)).collect())
}

/// Orders packed sets as [`Labels`] are ordered (by name, then value, label by label).
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut ia = pairs(a);
    let mut ib = pairs(b);
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => continue,
                o => return o,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let a = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
        let b = Labels::from_pairs(&[("__name__", "up"), ("job", "ab")]);
        let c = Labels::from_pairs(&[("__name__", "up")]);
        let (pa, pb, pc) = (pack(&a), pack(&b), pack(&c));
        assert_eq!(unpack(&pa), a);
        assert_eq!(cmp(&pa, &pb), a.cmp(&b));
        assert_eq!(cmp(&pc, &pa), c.cmp(&a));
        assert_eq!(unpack(&pack(&Labels::empty())), Labels::empty());
    }
}
