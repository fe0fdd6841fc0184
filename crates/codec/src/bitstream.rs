//! Big-endian bit streams: [`BitWriter`] appends bits to a caller's `Vec<u8>`,
//! [`BitReader`] reads them back from a slice.
//!
//! Layer 1. Bits are packed most-significant first, the layout of Prometheus'
//! `bstream`, so the XOR chunk can be written and read bit-exactly. The unused low
//! bits of the last byte are always zero. This module knows nothing about samples.
//!
//! Design constraints:
//! - the writer never touches bytes of the caller's buffer that precede the stream;
//! - the reader never panics and never reads past its slice: running out of input is
//!   a [`DecodeError::UnexpectedEof`].

use crate::DecodeError;

/// Appends bits to the end of a `Vec<u8>`.
///
/// The writer borrows the buffer; [`BitWriter::free_bits`] tells how many low bits of
/// the last byte are still unused, so a stream can be continued later with
/// [`BitWriter::resume`].
#[derive(Debug)]
pub struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    // Invariant: 0..=7; when non-zero, `out` is non-empty and the low `free` bits of
    // its last byte are zero.
    free: u8,
}

impl<'a> BitWriter<'a> {
    /// Starts a stream at the end of `out` (byte-aligned).
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, free: 0 }
    }

    /// Continues a stream whose last byte (the last byte of `out`) has `free_bits`
    /// unused low bits, which must be zero.
    ///
    /// # Panics
    /// If `free_bits > 7`, or if it is non-zero and `out` is empty.
    pub fn resume(out: &'a mut Vec<u8>, free_bits: u8) -> Self {
        assert!(
            free_bits < 8 && (free_bits == 0 || !out.is_empty()),
            "bad bit-stream resume point"
        );
        debug_assert!(free_bits == 0 || out[out.len() - 1] & ((1u8 << free_bits) - 1) == 0);
        BitWriter { out, free: free_bits }
    }

    /// Returns the number of unused low bits in the last byte (0 when byte-aligned).
    #[inline]
    pub fn free_bits(&self) -> u8 {
        self.free
    }

    /// Appends one bit.
    #[inline]
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Appends the low `nbits` bits of `value`, most significant first.
    ///
    /// # Panics
    /// In debug builds, if `nbits > 64`.
    #[inline]
    pub fn write_bits(&mut self, value: u64, nbits: u32) {
        debug_assert!(nbits <= 64);
        let mut n = nbits;
        if n == 0 {
            return;
        }
        let value = if n == 64 { value } else { value & ((1u64 << n) - 1) };
        if self.free > 0 {
            let take = n.min(u32::from(self.free));
            let bits = (value >> (n - take)) & ((1u64 << take) - 1);
            let last = self.out.len() - 1;
            self.out[last] |= (bits << (u32::from(self.free) - take)) as u8;
            self.free -= take as u8;
            n -= take;
        }
        while n >= 8 {
            n -= 8;
            self.out.push((value >> n) as u8);
        }
        if n > 0 {
            self.out.push((value << (8 - n)) as u8);
            self.free = (8 - n) as u8;
        }
    }
}

/// Reads bits, most significant first, from a byte slice.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    // Invariant: pos <= data.len() * 8.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Starts reading at byte `byte_offset` of `data` (clamped to its end).
    pub fn at_byte(data: &'a [u8], byte_offset: usize) -> Self {
        BitReader {
            data,
            pos: byte_offset.min(data.len()) * 8,
        }
    }

    /// Returns the number of bits read so far, counted from the start of the slice.
    #[inline]
    pub fn bit_position(&self) -> usize {
        self.pos
    }

    /// Returns the number of whole or partial bytes touched so far.
    #[inline]
    pub fn bytes_consumed(&self) -> usize {
        self.pos.div_ceil(8)
    }

    /// Reads one bit.
    #[inline]
    pub fn read_bit(&mut self) -> Result<bool, DecodeError> {
        let byte_idx = self.pos >> 3;
        let Some(&byte) = self.data.get(byte_idx) else {
            return Err(self.eof());
        };
        let bit = (byte >> (7 - (self.pos & 7))) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `nbits` (0..=64) bits as the low bits of a `u64`.
    #[inline]
    pub fn read_bits(&mut self, nbits: u32) -> Result<u64, DecodeError> {
        debug_assert!(nbits <= 64);
        if nbits == 0 {
            return Ok(0);
        }
        if self.pos + nbits as usize > self.data.len() * 8 {
            return Err(self.eof());
        }
        // Fast path: one unaligned 8-byte load covers the request.
        if (self.pos & 7) as u32 + nbits <= 64 {
            if let Some(word) = self.word_at_pos() {
                self.pos += nbits as usize;
                return Ok(word >> (64 - nbits));
            }
        }
        let mut result = 0u64;
        let mut remaining = nbits;
        while remaining > 0 {
            let byte = self.data[self.pos >> 3];
            let avail = 8 - (self.pos & 7) as u32;
            let take = avail.min(remaining);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            result = if take == 64 { bits } else { (result << take) | bits };
            self.pos += take as usize;
            remaining -= take;
        }
        Ok(result)
    }

    /// Moves past `nbits` bits without reading them; an error (and no move) when fewer remain.
    #[inline]
    pub fn skip_bits(&mut self, nbits: usize) -> Result<(), DecodeError> {
        if nbits > self.data.len() * 8 - self.pos {
            return Err(self.eof());
        }
        self.pos += nbits;
        Ok(())
    }

    /// Reads `count` fields of `nbits` (1..=56) bits and returns their wrapping sum:
    /// what `count` calls of [`BitReader::read_bits`] would add up to, with one load
    /// for as many fields as 64 bits hold.
    pub fn sum_bits(&mut self, count: usize, nbits: u32) -> Result<u64, DecodeError> {
        debug_assert!((1..=56).contains(&nbits));
        let bits = count.saturating_mul(nbits as usize);
        if bits > self.data.len() * 8 - self.pos {
            return Err(self.eof());
        }
        let end = self.pos + bits;
        let mut sum = 0u64;
        while self.pos < end {
            let offset = (self.pos & 7) as u32;
            let Some(word) = self.word_at_pos() else {
                // The last bytes: one field at a time.
                sum = sum.wrapping_add(self.read_bits(nbits)?);
                continue;
            };
            let fields = ((64 - offset) / nbits).min(((end - self.pos) / nbits as usize) as u32);
            for k in 0..fields {
                sum = sum.wrapping_add((word << (k * nbits)) >> (64 - nbits));
            }
            self.pos += (fields * nbits) as usize;
        }
        Ok(sum)
    }

    /// Reads one value of a truncated binary code: `k - 1` bits `y`, which is the
    /// value when below `u`; otherwise one more bit `b` follows and the value is
    /// `2y + b - u`. `k` is 1..=57 and `u < 2^(k-1)`.
    #[inline]
    pub fn read_truncated(&mut self, k: u32, u: u64) -> Result<u64, DecodeError> {
        debug_assert!((1..=57).contains(&k));
        // Fast path: one load covers the k bits (the last may belong to the next value).
        if (self.pos & 7) as u32 + k <= 64 {
            if let Some(word) = self.word_at_pos() {
                let v = word >> (64 - k);
                let y = v >> 1;
                return Ok(if y < u {
                    self.pos += k as usize - 1;
                    y
                } else {
                    self.pos += k as usize;
                    v - u
                });
            }
        }
        let y = self.read_bits(k - 1)?;
        Ok(if y < u {
            y
        } else {
            ((y << 1) | u64::from(self.read_bit()?)).wrapping_sub(u)
        })
    }

    /// The 64 bits from the current position on (the 8 bytes from its byte,
    /// shifted past the bits of that byte already read: the low `pos % 8`
    /// bits are zero); `None` within 8 bytes of the end.
    #[inline]
    fn word_at_pos(&self) -> Option<u64> {
        let byte_idx = self.pos >> 3;
        let chunk = self.data.get(byte_idx..byte_idx + 8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        Some(u64::from_be_bytes(word) << (self.pos & 7))
    }

    fn eof(&self) -> DecodeError {
        DecodeError::UnexpectedEof {
            what: "bit stream",
            offset: self.pos / 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packs_msb_first_after_prefix() {
        let mut out = vec![0xEE];
        let mut w = BitWriter::new(&mut out);
        w.write_bit(true);
        w.write_bits(0b01, 2);
        w.write_bits(0xABCD, 16);
        assert_eq!(w.free_bits(), 5);
        assert_eq!(out, [0xEE, 0b1011_0101, 0b0111_1001, 0b1010_0000]);
        let mut r = BitReader::at_byte(&out, 1);
        assert!(r.read_bit().unwrap());
        assert_eq!(r.read_bits(2).unwrap(), 0b01);
        assert_eq!(r.read_bits(16).unwrap(), 0xABCD);
        assert_eq!(r.read_bits(5).unwrap(), 0);
        assert!(r.read_bit().is_err());
    }

    #[test]
    fn truncated_codes_read_back() {
        // Range 5 (k = 3, u = 3): 0, 1, 2 take 2 bits; 3 and 4 take 3 bits (as 6, 7).
        let mut out = Vec::new();
        let mut w = BitWriter::new(&mut out);
        for x in [0u64, 4, 2, 3, 1] {
            if x < 3 {
                w.write_bits(x, 2);
            } else {
                w.write_bits(x + 3, 3);
            }
        }
        let mut r = BitReader::new(&out);
        let got: Vec<u64> = (0..5).map(|_| r.read_truncated(3, 3).unwrap()).collect();
        assert_eq!(got, [0, 4, 2, 3, 1]);
        assert_eq!(r.bit_position(), 2 + 3 + 2 + 3 + 2);
    }

    proptest! {
        #[test]
        fn sums_and_skips_what_reads_would_see(
            lead in 0u32..16,
            nbits in 1u32..=56,
            values in proptest::collection::vec(any::<u64>(), 0..80),
            tail in 0u32..16,
        ) {
            let mut out = Vec::new();
            let mut w = BitWriter::new(&mut out);
            w.write_bits(0x5A5A, lead);
            for &v in &values {
                w.write_bits(v & ((1 << nbits) - 1), nbits);
            }
            w.write_bits(0x3C3C, tail);
            let want = values.iter().fold(0u64, |s, &v| s.wrapping_add(v & ((1 << nbits) - 1)));
            let mut r = BitReader::new(&out);
            r.skip_bits(lead as usize).unwrap();
            let at = r.bit_position();
            prop_assert!(r.sum_bits(values.len() + (out.len() * 8) / nbits as usize + 1, nbits).is_err());
            prop_assert!(r.skip_bits(out.len() * 8 + 1).is_err());
            prop_assert_eq!(r.bit_position(), at);
            prop_assert_eq!(r.sum_bits(values.len(), nbits).unwrap(), want);
            prop_assert_eq!(r.read_bits(tail).unwrap(), 0x3C3C & ((1 << tail) - 1));
        }

        #[test]
        fn round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..40), split in 0usize..40) {
            let mut out = vec![0x5A];
            let mut free = 0;
            for (i, &(v, n)) in fields.iter().enumerate() {
                // Re-borrow the writer part-way through to exercise `resume`.
                let mut w = BitWriter::resume(&mut out, free);
                w.write_bits(v, n);
                free = w.free_bits();
                if i == split { prop_assert_eq!(out[0], 0x5A); }
            }
            let mut r = BitReader::at_byte(&out, 1);
            for &(v, n) in &fields {
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.read_bits(n).unwrap(), v & mask);
            }
            prop_assert_eq!(out[0], 0x5A);
        }
    }
}
