//! Variable-length integers: Go's `encoding/binary` uvarint/varint layout (LEB128,
//! zigzag for signed), appended to a caller's buffer and read from a slice.
//!
//! Layer 1. Byte-compatible with Go's `binary.PutUvarint`/`PutVarint`, which the
//! Prometheus XOR chunk uses for its first timestamp and first delta. It does not
//! read from streams; readers take a slice and a cursor.

use crate::DecodeError;

/// The longest encoding of a `u64`: ten 7-bit groups.
pub const MAX_VARINT_LEN: usize = 10;

/// Maps signed to unsigned so that small magnitudes stay small: 0, -1, 1, -2 → 0, 1, 2, 3.
#[inline]
pub fn zigzag_encode(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag_encode`].
#[inline]
pub fn zigzag_decode(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Appends `v` as a uvarint (7 bits per byte, low group first, high bit = more).
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded as a uvarint (Go's `binary.PutVarint`).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag_encode(v));
}

/// Returns how many bytes [`put_uvarint`] writes for `v`.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    // One byte per started group of 7 significant bits; zero still takes one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads a uvarint from `buf` at `*pos` and advances `*pos` past it.
///
/// Rejects encodings longer than 10 bytes or whose tenth byte carries more than the
/// 64th bit, as Go's `binary.Uvarint` does.
#[inline]
pub fn read_uvarint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let start = *pos;
    let mut result = 0u64;
    let mut shift = 0u32;
    for i in 0..MAX_VARINT_LEN {
        let Some(&byte) = buf.get(start + i) else {
            return Err(DecodeError::UnexpectedEof {
                what: "varint",
                offset: start + i,
            });
        };
        if byte < 0x80 {
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(DecodeError::VarintOverflow { offset: start });
            }
            *pos = start + i + 1;
            return Ok(result | (u64::from(byte) << shift));
        }
        result |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    Err(DecodeError::VarintOverflow { offset: start })
}

/// Reads a zigzag varint (Go's `binary.Varint`) from `buf` at `*pos`.
#[inline]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i64, DecodeError> {
    read_uvarint(buf, pos).map(zigzag_decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_bytes() {
        let mut out = vec![0xAA];
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, 300);
        put_varint(&mut out, -1);
        put_varint(&mut out, 1000);
        put_uvarint(&mut out, u64::MAX);
        assert_eq!(
            out,
            [0xAA, 0x00, 0xAC, 0x02, 0x01, 0xD0, 0x0F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
    }

    #[test]
    fn rejects_overlong_and_truncated() {
        let mut pos = 0;
        let eleven = [0x80u8; 11];
        assert_eq!(
            read_uvarint(&eleven, &mut pos),
            Err(DecodeError::VarintOverflow { offset: 0 })
        );
        let tenth_too_big = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert_eq!(
            read_uvarint(&tenth_too_big, &mut pos),
            Err(DecodeError::VarintOverflow { offset: 0 })
        );
        assert_eq!(
            read_uvarint(&[0x80], &mut pos),
            Err(DecodeError::UnexpectedEof {
                what: "varint",
                offset: 1
            })
        );
    }

    proptest! {
        #[test]
        fn round_trip(vs in proptest::collection::vec(any::<i64>(), 0..50)) {
            let mut out = vec![7u8];
            for &v in &vs {
                let before = out.len();
                put_varint(&mut out, v);
                prop_assert_eq!(out.len() - before, uvarint_len(zigzag_encode(v)));
            }
            let mut pos = 1;
            for &v in &vs {
                prop_assert_eq!(read_varint(&out, &mut pos).unwrap(), v);
            }
            prop_assert_eq!(pos, out.len());
        }
    }
}
