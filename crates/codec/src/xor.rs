//! Prometheus' XOR chunk (`chunkenc.XORChunk`): the Gorilla encoding used by the
//! in-memory head and by remote-read streamed chunks.
//!
//! Layer 1. It owns [`XorEncoder`] (appends samples to one chunk), [`XorIter`]
//! (reads a chunk back) and [`decode_xor`]. It deliberately does not decide when a
//! chunk is full (the head cuts chunks), does not know about series, and does not
//! compress further (see `decimal` + `frame` for persisted blocks).
//!
//! Byte layout (see `FORMAT.md` for the diagram): a 2-byte big-endian sample count,
//! then a bit stream: first sample = varint timestamp + 64 raw value bits; second =
//! uvarint timestamp delta + XOR value; later samples = delta-of-delta bucket
//! (`0`, `10`+14, `110`+17, `1110`+20, `1111`+64 bits) + XOR value. An XOR value is
//! `0` (same as before), `10` + meaningful bits in the previous window, or `11` +
//! 5 bits of leading zeros (capped at 31) + 6 bits of meaningful-bit count (0 means
//! 64) + the meaningful bits. The output is byte-compatible with Prometheus.
//!
//! All timestamp arithmetic wraps, so any sequence of `i64` timestamps (not only
//! increasing ones) round-trips, as it does in Go.

use crate::bitstream::{BitReader, BitWriter};
use crate::varint::{put_uvarint, put_varint, MAX_VARINT_LEN};
use crate::DecodeError;
use model::Sample;

/// Size of the big-endian sample-count header.
const HEADER_LEN: usize = 2;

/// `leading` value meaning "no XOR window chosen yet", as in Prometheus.
const NO_WINDOW: u8 = 0xff;

/// Appends samples to one Prometheus XOR chunk.
///
/// The encoder is kept small because the head holds one per active series: 48 bytes
/// plus its heap buffer. [`XorEncoder::bytes`] is a complete, valid chunk after every
/// append.
#[derive(Debug, Clone)]
pub struct XorEncoder {
    // Invariant: `buf[..len]` is a complete chunk whose header holds the sample count;
    // every byte of `buf[len..]` and the low `free_bits` bits of `buf[len - 1]` are zero.
    // A boxed slice (not a Vec) keeps the struct at 48 bytes; `buf.len()` is the capacity.
    buf: Box<[u8]>,
    t: i64,
    v_bits: u64,
    t_delta: u64,
    len: u32,
    free_bits: u8,
    leading: u8,
    trailing: u8,
}

impl Default for XorEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl XorEncoder {
    /// Creates an empty chunk (two zero header bytes).
    pub fn new() -> Self {
        XorEncoder {
            buf: vec![0u8; HEADER_LEN].into_boxed_slice(),
            t: 0,
            v_bits: 0,
            t_delta: 0,
            len: HEADER_LEN as u32,
            free_bits: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Continues appending to a chunk loaded from disk or the network.
    ///
    /// The whole chunk is decoded to recover the encoder's state; bits after the last
    /// sample are dropped. Samples appended afterwards produce a chunk that Prometheus
    /// (and [`XorIter`]) read as one stream.
    pub fn resume(chunk: &[u8]) -> Result<Self, DecodeError> {
        let mut it = XorIter::new(chunk);
        for _ in it.by_ref() {}
        if let Some(err) = it.err() {
            return Err(err.clone());
        }
        let end_bits = it.reader.bit_position();
        let len = end_bits.div_ceil(8).max(HEADER_LEN);
        let free_bits = ((8 - end_bits % 8) % 8) as u8;
        let mut buf = chunk[..len].to_vec();
        if free_bits > 0 {
            buf[len - 1] &= !((1u8 << free_bits) - 1);
        }
        let num = it.num_total;
        // A chunk whose XOR window was never set explicitly resumes like a fresh one;
        // both choices decode identically, this one is smaller.
        let (leading, trailing) = if it.window_set {
            (it.leading, it.trailing)
        } else {
            (NO_WINDOW, 0)
        };
        Ok(XorEncoder {
            buf: buf.into_boxed_slice(),
            t: if num > 0 { it.t } else { 0 },
            v_bits: it.v_bits,
            t_delta: it.t_delta,
            len: len as u32,
            free_bits,
            leading,
            trailing,
        })
    }

    /// Returns the number of samples in the chunk.
    #[inline]
    pub fn num_samples(&self) -> u16 {
        u16::from_be_bytes([self.buf[0], self.buf[1]])
    }

    /// Returns the chunk: valid Prometheus XOR chunk bytes, at any time.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// Returns the last appended sample.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.num_samples() > 0).then(|| (self.t, f64::from_bits(self.v_bits)))
    }

    /// Returns the timestamp of the first sample.
    pub fn first_t(&self) -> Option<i64> {
        if self.num_samples() == 0 {
            return None;
        }
        let mut pos = HEADER_LEN;
        crate::varint::read_varint(self.bytes(), &mut pos).ok()
    }

    /// Returns the heap memory held by the encoder, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Releases the buffer's spare capacity (e.g. when a chunk is closed).
    pub fn shrink_to_fit(&mut self) {
        if self.buf.len() != self.len as usize {
            self.buf = self.bytes().into();
        }
    }

    /// Appends one sample.
    ///
    /// Timestamps are not checked: ordering is the caller's job, and any `i64`
    /// sequence round-trips.
    ///
    /// # Panics
    /// If the chunk already holds `u16::MAX` samples; the caller cuts chunks long
    /// before that (Prometheus cuts at 120 samples or ~1 KiB).
    pub fn append(&mut self, t: i64, v: f64) {
        let num = self.num_samples();
        assert!(num < u16::MAX, "XOR chunk is full ({num} samples)");
        let mut out = std::mem::take(&mut self.buf).into_vec();
        out.truncate(self.len as usize);
        // Grow in small steps (one sample needs at most 19 bytes): the head
        // keeps one open chunk per series, and doubling would waste up to half.
        if out.capacity() - out.len() < 20 {
            out.reserve_exact(32);
        }
        let v_bits = v.to_bits();
        let mut w = BitWriter::resume(&mut out, self.free_bits);
        match num {
            0 => {
                let mut tmp = Vec::with_capacity(MAX_VARINT_LEN);
                put_varint(&mut tmp, t);
                write_bytes(&mut w, &tmp);
                w.write_bits(v_bits, 64);
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let mut tmp = Vec::with_capacity(MAX_VARINT_LEN);
                put_uvarint(&mut tmp, t_delta);
                write_bytes(&mut w, &tmp);
                write_xor_value(&mut w, self.v_bits, v_bits, &mut self.leading, &mut self.trailing);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                write_dod(&mut w, dod);
                write_xor_value(&mut w, self.v_bits, v_bits, &mut self.leading, &mut self.trailing);
                self.t_delta = t_delta;
            }
        }
        self.free_bits = w.free_bits();
        self.len = out.len() as u32;
        out[..HEADER_LEN].copy_from_slice(&(num + 1).to_be_bytes());
        // Keep the spare capacity (zeroed) so the next append does not reallocate.
        out.resize(out.capacity(), 0);
        self.buf = out.into_boxed_slice();
        self.t = t;
        self.v_bits = v_bits;
    }
}

fn write_bytes(w: &mut BitWriter<'_>, bytes: &[u8]) {
    for &b in bytes {
        w.write_bits(u64::from(b), 8);
    }
}

/// Tells whether `x` fits Prometheus' `bitRange(x, nbits)`: `-(2^(n-1)-1) ..= 2^(n-1)`.
#[inline]
fn bit_range(x: i64, nbits: u32) -> bool {
    -((1i64 << (nbits - 1)) - 1) <= x && x <= 1i64 << (nbits - 1)
}

fn write_dod(w: &mut BitWriter<'_>, dod: i64) {
    let d = dod as u64;
    if dod == 0 {
        w.write_bit(false);
    } else if bit_range(dod, 14) {
        w.write_bits(0b10, 2);
        w.write_bits(d, 14);
    } else if bit_range(dod, 17) {
        w.write_bits(0b110, 3);
        w.write_bits(d, 17);
    } else if bit_range(dod, 20) {
        w.write_bits(0b1110, 4);
        w.write_bits(d, 20);
    } else {
        w.write_bits(0b1111, 4);
        w.write_bits(d, 64);
    }
}

/// Writes `cur` XOR-encoded against `prev` (Prometheus' `xorWrite`), updating the
/// leading/trailing-zero window.
pub(crate) fn write_xor_value(w: &mut BitWriter<'_>, prev: u64, cur: u64, leading: &mut u8, trailing: &mut u8) {
    let delta = prev ^ cur;
    if delta == 0 {
        w.write_bit(false);
        return;
    }
    w.write_bit(true);
    // Only 5 bits store the leading-zero count.
    let new_leading = (delta.leading_zeros() as u8).min(31);
    let new_trailing = delta.trailing_zeros() as u8;
    if *leading != NO_WINDOW && new_leading >= *leading && new_trailing >= *trailing {
        w.write_bit(false);
        w.write_bits(delta >> *trailing, 64 - u32::from(*leading) - u32::from(*trailing));
        return;
    }
    *leading = new_leading;
    *trailing = new_trailing;
    w.write_bit(true);
    w.write_bits(u64::from(new_leading), 5);
    let sig_bits = 64 - u32::from(new_leading) - u32::from(new_trailing);
    // 64 meaningful bits are written as 0: only 6 bits are available.
    w.write_bits(u64::from(sig_bits), 6);
    w.write_bits(delta >> new_trailing, sig_bits);
}

/// Reader state for XOR-encoded values, shared with the decimal codec's fallback.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct XorValueState {
    pub(crate) v_bits: u64,
    pub(crate) leading: u8,
    pub(crate) trailing: u8,
    pub(crate) window_set: bool,
}

impl XorValueState {
    /// Reads one XOR-encoded value and updates the state.
    #[inline]
    pub(crate) fn read(&mut self, r: &mut BitReader<'_>) -> Result<(), DecodeError> {
        if !r.read_bit()? {
            return Ok(());
        }
        if r.read_bit()? {
            let leading = r.read_bits(5)? as u8;
            let mut sig_bits = r.read_bits(6)? as u8;
            if sig_bits == 0 {
                sig_bits = 64;
            }
            if u32::from(leading) + u32::from(sig_bits) > 64 {
                return Err(DecodeError::Corrupted {
                    what: "XOR value window",
                    offset: r.bit_position() / 8,
                    reason: "leading zeros plus meaningful bits exceed 64",
                });
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig_bits;
            self.window_set = true;
        }
        // Before any window is set the window is 0/0, i.e. 64 bits, as in Prometheus.
        let sig_bits = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = r.read_bits(sig_bits)?;
        self.v_bits ^= bits << self.trailing;
        Ok(())
    }
}

/// Iterates over the samples of an XOR chunk.
///
/// Yields `(t, v)` until the count in the header is reached or the bytes turn out
/// to be corrupt; in the second case iteration stops and [`XorIter::err`] tells why.
/// Bits after the last sample are ignored, as Prometheus ignores them.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    reader: BitReader<'a>,
    num_total: u16,
    num_read: u16,
    t: i64,
    t_delta: u64,
    v_bits: u64,
    leading: u8,
    trailing: u8,
    window_set: bool,
    err: Option<DecodeError>,
}

impl<'a> XorIter<'a> {
    /// Starts reading `chunk`.
    pub fn new(chunk: &'a [u8]) -> Self {
        let mut it = XorIter {
            reader: BitReader::at_byte(chunk, HEADER_LEN),
            num_total: 0,
            num_read: 0,
            t: 0,
            t_delta: 0,
            v_bits: 0,
            leading: 0,
            trailing: 0,
            window_set: false,
            err: None,
        };
        match chunk {
            [hi, lo, ..] => it.num_total = u16::from_be_bytes([*hi, *lo]),
            _ => {
                it.err = Some(DecodeError::UnexpectedEof {
                    what: "XOR chunk header",
                    offset: chunk.len(),
                })
            }
        }
        it
    }

    /// Returns the sample count the chunk header declares.
    pub fn num_samples(&self) -> u16 {
        self.num_total
    }

    /// Returns the error that stopped iteration, if any.
    pub fn err(&self) -> Option<&DecodeError> {
        self.err.as_ref()
    }

    fn read_byte_varint(&mut self) -> Result<u64, DecodeError> {
        let mut result = 0u64;
        let mut shift = 0u32;
        for i in 0..MAX_VARINT_LEN {
            let byte = self.reader.read_bits(8)? as u8;
            if byte < 0x80 {
                if i == MAX_VARINT_LEN - 1 && byte > 1 {
                    break;
                }
                return Ok(result | (u64::from(byte) << shift));
            }
            result |= u64::from(byte & 0x7f) << shift;
            shift += 7;
        }
        Err(DecodeError::VarintOverflow {
            offset: self.reader.bit_position() / 8,
        })
    }

    fn read_dod(&mut self) -> Result<i64, DecodeError> {
        let mut prefix = 0u32;
        while prefix < 4 && self.reader.read_bit()? {
            prefix += 1;
        }
        let size = match prefix {
            0 => return Ok(0),
            1 => 14,
            2 => 17,
            3 => 20,
            _ => return Ok(self.reader.read_bits(64)? as i64),
        };
        let mut bits = self.reader.read_bits(size)?;
        if bits > 1 << (size - 1) {
            // Sign-extend: the bucket holds -(2^(n-1)-1) ..= 2^(n-1).
            bits = bits.wrapping_sub(1 << size);
        }
        Ok(bits as i64)
    }

    fn read_next(&mut self) -> Result<(), DecodeError> {
        match self.num_read {
            0 => {
                self.t = crate::varint::zigzag_decode(self.read_byte_varint()?);
                self.v_bits = self.reader.read_bits(64)?;
            }
            1 => {
                self.t_delta = self.read_byte_varint()?;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
            _ => {
                let dod = self.read_dod()?;
                self.t_delta = self.t_delta.wrapping_add(dod as u64);
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()?;
            }
        }
        Ok(())
    }

    fn read_value(&mut self) -> Result<(), DecodeError> {
        let mut state = XorValueState {
            v_bits: self.v_bits,
            leading: self.leading,
            trailing: self.trailing,
            window_set: self.window_set,
        };
        state.read(&mut self.reader)?;
        self.v_bits = state.v_bits;
        self.leading = state.leading;
        self.trailing = state.trailing;
        self.window_set = state.window_set;
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    #[inline]
    fn next(&mut self) -> Option<(i64, f64)> {
        if self.err.is_some() || self.num_read >= self.num_total {
            return None;
        }
        match self.read_next() {
            Ok(()) => {
                self.num_read += 1;
                Some((self.t, f64::from_bits(self.v_bits)))
            }
            Err(err) => {
                self.err = Some(err);
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.num_total - self.num_read)))
    }
}

/// Decodes a whole XOR chunk, appending its samples to `out`.
///
/// On error, `out` keeps the samples decoded before the corrupt point.
pub fn decode_xor(chunk: &[u8], out: &mut Vec<Sample>) -> Result<(), DecodeError> {
    let mut it = XorIter::new(chunk);
    // Reserve no more than the bytes could possibly hold (≥ 2 bits per sample).
    out.reserve(usize::from(it.num_samples()).min(chunk.len() * 4 + 1));
    out.extend(it.by_ref().map(|(t, v)| Sample { t, v }));
    match it.err {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests;
