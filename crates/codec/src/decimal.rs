//! The decimal chunk codec for persisted blocks: one series' samples in a form
//! that zstd (see [`crate::frame`]) compresses very well.
//!
//! Layer 1. It owns [`encode_chunk`] and [`decode_chunk`]. It deliberately does not
//! compress (frames do that, across many chunks), does not checksum, and does not
//! know where chunks live in a block. The idea (integers instead of float bits,
//! delta-of-delta timestamps) is VictoriaMetrics'; the layout is ours and drawn in
//! `FORMAT.md`.
//!
//! How a chunk is encoded:
//! - timestamps: first value, first delta, then zigzag-varint deltas-of-deltas, or
//!   nothing more when every interval is the same (flag in the mode byte);
//! - values: when they are decimals, each is `mantissa × 10^exponent` with one shared
//!   exponent; mantissas that differ from the first only by multiples of some `g`
//!   (pages, blocks) are divided by it; then they go out as zigzag-varint deltas or
//!   deltas-of-deltas, or bit-packed (the mantissas or their deltas, at one width, or in
//!   [`blocked`] groups of 32 with a width and a dense or sparse layout each),
//!   whichever is smallest for the chunk; values that are not exactly such a decimal
//!   (NaN, the stale marker, ±Inf, -0.0, 17-digit results of float arithmetic, huge
//!   magnitudes) are listed as exceptions with their raw bits;
//! - when many values are exceptions, or none is a decimal, the raw float bits are
//!   stored instead: Gorilla XOR, or the blocked deltas of the bits taken as integers.
//!
//! Version 2 added the scaling, the blocked packings and the float-bits kind byte to
//! version 1; version 3 (written) codes sparse groups' items in the truncated binary
//! code. All three are decoded.
//!
//! Design constraints:
//! - round trips are bit-exact for any input, including unsorted or duplicate
//!   timestamps and every NaN payload: the encoder only writes a decimal that it has
//!   checked decodes to the same bits;
//! - the first byte of every chunk is a mode/version byte;
//! - the encoder appends to the caller's buffer; the decoder reports how many bytes
//!   it consumed, so chunks can be concatenated in one frame.
//!
//! Reading part of a chunk (an instant query needs the last 5 minutes of a 2-hour
//! chunk): [`decode_chunk_range`] appends only the samples of a time range, and gives
//! exactly what [`decode_chunk`] and a filter give, length and errors included. It
//! still reads the chunk to its end, but converts and stores only the samples in range:
//! - timestamps: with a constant interval, the indices `lo..hi` of the range are
//!   computed; else the timestamps are decoded (cheap) and compared. Timestamps that
//!   are not strictly ascending (never written by blocks, but encodable) make it
//!   decode the whole chunk and filter;
//! - values: mantissas packed at one fixed width are stepped over; [`blocked`] groups
//!   before the range are only summed (deltas) or stepped over (mantissas: at a fixed
//!   width without reading the items), groups after it stepped over; varint deltas and
//!   XOR values are read but neither converted to floats nor stored; exceptions are
//!   applied only in range.

use crate::bitstream::{BitReader, BitWriter};
use crate::varint::{put_uvarint, put_varint, read_uvarint, read_varint, uvarint_len, zigzag_encode};
use crate::xor::{write_xor_value, XorValueState};
use crate::DecodeError;
use model::Sample;
use std::ops::{Range, RangeInclusive};

/// Format version written, stored in the high nibble of the mode byte. Version 3
/// codes the items of sparse [`blocked`] groups like layout 3 does; version 2 did not.
const VERSION: u8 = 3;
/// The oldest version read. Version 1 has no [`FLAG_SCALED`], no blocked packing and
/// no float-bits kind byte.
const OLDEST_VERSION: u8 = 1;
/// Mode-byte bit (version 2): the mantissas are `m0 + g × q_i`, and `g ≥ 2` follows the exponent.
const FLAG_SCALED: u8 = 0b1000;
/// Mode-byte bit: every timestamp interval equals the first one.
const FLAG_CONSTANT_INTERVAL: u8 = 0b0100;
/// Mode-byte bits 0-1: how values are encoded.
const VALUE_ENCODING_MASK: u8 = 0b0011;

/// How the values of a chunk are encoded. Persisted: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum ValueEncoding {
    /// Decimal mantissas as zigzag deltas.
    DecimalDelta = 0,
    /// Decimal mantissas as zigzag deltas-of-deltas.
    DecimalDeltaOfDelta = 1,
    /// The raw float bits: Gorilla XOR (version 1), or after a [`FLOAT_XOR`] /
    /// [`FLOAT_BLOCKED`] kind byte (version 2).
    Xor = 2,
    /// Decimal mantissas (or their deltas) minus their minimum, bit-packed at
    /// a fixed width: smaller than varints for noisy values such as
    /// durations or byte counters with random increments.
    DecimalPacked = 3,
}

/// What a packed chunk packs.
const PACKED_VALUES: u8 = 0;
const PACKED_DELTAS: u8 = 1;
/// Version 2, float bits: a Gorilla XOR stream follows.
const FLOAT_XOR: u8 = 0;
/// Version 2, float bits: the raw bits as integers, their deltas in [`blocked`] groups
/// (full-precision values that move by similar amounts, such as a clock in seconds).
const FLOAT_BLOCKED: u8 = 1;
/// Version 2: the deltas in [`blocked`] groups.
const BLOCKED_DELTAS: u8 = 2;
/// Version 2: the mantissas in [`blocked`] groups.
const BLOCKED_VALUES: u8 = 3;

/// Packing is chosen when it is smaller than the varint encodings times
/// this (in 1/100). Measured on the node_exporter-like benchmark workload
/// after zstd: 100 gave 0.815 bytes/sample, 85 gave 0.825, 70 gave 0.860.
const PACKED_MAX_RATIO_PERCENT: usize = 100;

/// Largest |exponent|: 10^22 is the largest power of ten an f64 holds exactly, which
/// makes `mantissa × 10^e` and `mantissa / 10^-e` single correctly rounded operations.
const MAX_EXP: i32 = 22;

/// Mantissas above 2^53 are not exact in an f64; they never pass the decode check
/// reliably, so the encoder does not try them.
const MAX_MANTISSA: i64 = 1 << 53;

/// Exactly representable powers of ten, 10^0 ..= 10^22.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// Integer powers of ten that fit an i64, for rescaling mantissas.
const IPOW10: [i64; 19] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
];

/// Bytes of an exception entry besides its index: the raw 64 bits.
const EXCEPTION_VALUE_LEN: usize = 8;

/// Returns the float a decimal stands for; the decoder's only conversion.
#[inline]
fn decimal_to_f64(mantissa: i64, exp: i32) -> f64 {
    debug_assert!(exp.abs() <= MAX_EXP);
    let m = mantissa as f64;
    if exp >= 0 {
        m * POW10[exp as usize]
    } else {
        m / POW10[(-exp) as usize]
    }
}

/// Finds the decimal with the largest exponent that decodes to exactly `v`.
///
/// Zero is reported with exponent [`MAX_EXP`]: it fits every exponent.
fn to_decimal(v: f64) -> Option<(i64, i32)> {
    let bits = v.to_bits();
    if bits == 0 {
        return Some((0, MAX_EXP));
    }
    if !v.is_finite() || v == 0.0 {
        // NaN, ±Inf, -0.0.
        return None;
    }
    if v.trunc() == v {
        if v.abs() >= 9.2e18 {
            return None;
        }
        let mut m = v as i64;
        let mut e = 0;
        while m % 10 == 0 && e < MAX_EXP {
            m /= 10;
            e += 1;
        }
        return (m.abs() <= MAX_MANTISSA && decimal_to_f64(m, e).to_bits() == bits).then_some((m, e));
    }
    for k in 1..=MAX_EXP {
        let scaled = v * POW10[k as usize];
        if scaled.abs() > MAX_MANTISSA as f64 {
            return None;
        }
        let m = scaled.round() as i64;
        if decimal_to_f64(m, -k).to_bits() == bits {
            return Some((m, -k));
        }
    }
    None
}

/// Rescales `(m, e)` to exponent `exp` (≤ `e`) if the result stays exact.
#[inline]
fn rescale(m: i64, e: i32, exp: i32) -> Option<i64> {
    let shift = usize::try_from(e - exp).ok()?;
    let m = m.checked_mul(*IPOW10.get(shift)?)?;
    (m.abs() <= MAX_MANTISSA).then_some(m)
}

/// Appends the encoding of one series' chunk to `out`.
///
/// `samples` should be sorted by timestamp with unique timestamps (that is what
/// compresses well), but any input round-trips bit-exactly. The bytes already in
/// `out` are left untouched.
pub fn encode_chunk(samples: &[Sample], out: &mut Vec<u8>) {
    let mode_pos = out.len();
    out.push(0);
    put_uvarint(out, samples.len() as u64);
    let mut mode = VERSION << 4;
    if !samples.is_empty() {
        if encode_timestamps(samples, out) {
            mode |= FLAG_CONSTANT_INTERVAL;
        }
        mode |= encode_values(samples, out);
    }
    out[mode_pos] = mode;
}

/// Writes the timestamp section; returns whether the interval is constant.
fn encode_timestamps(samples: &[Sample], out: &mut Vec<u8>) -> bool {
    let t0 = samples[0].t;
    put_varint(out, t0);
    if samples.len() < 2 {
        return true;
    }
    let delta0 = samples[1].t.wrapping_sub(t0);
    put_varint(out, delta0);
    let constant = samples.windows(2).all(|w| w[1].t.wrapping_sub(w[0].t) == delta0);
    if !constant {
        let mut prev_delta = delta0;
        for w in samples[1..].windows(2) {
            let delta = w[1].t.wrapping_sub(w[0].t);
            put_varint(out, delta.wrapping_sub(prev_delta));
            prev_delta = delta;
        }
    }
    constant
}

/// Writes the value section and returns its mode bits (encoding and [`FLAG_SCALED`]).
fn encode_values(samples: &[Sample], out: &mut Vec<u8>) -> u8 {
    let decimals: Vec<Option<(i64, i32)>> = samples.iter().map(|s| to_decimal(s.v)).collect();
    let Some(exp) = choose_exponent(&decimals) else {
        encode_values_float(samples, out);
        return ValueEncoding::Xor as u8;
    };
    // Mantissas at the shared exponent; exceptions repeat the previous mantissa so
    // they cost a zero delta.
    let mut mantissas = Vec::with_capacity(samples.len());
    let mut exceptions = Vec::new();
    let mut prev = None;
    for (i, (sample, decimal)) in samples.iter().zip(&decimals).enumerate() {
        let m = decimal
            .and_then(|(m, e)| rescale(m, e, exp))
            .filter(|&m| decimal_to_f64(m, exp).to_bits() == sample.v.to_bits());
        match m {
            Some(m) => {
                if prev.is_none() {
                    // Leading exceptions take the first real mantissa.
                    mantissas.resize(i, m);
                }
                mantissas.push(m);
                prev = Some(m);
            }
            None => {
                exceptions.push(i);
                if let Some(p) = prev {
                    mantissas.push(p);
                }
            }
        }
    }
    if prev.is_none() {
        encode_values_float(samples, out);
        return ValueEncoding::Xor as u8;
    }
    // Mantissas that all differ from the first by multiples of g (memory in pages,
    // sizes in blocks) are stored divided: m_i = m0 + g × (q_i - m0).
    let m0 = mantissas[0];
    let scale = mantissas
        .iter()
        .fold(0u64, |g, &m| gcd(g, m.wrapping_sub(m0).unsigned_abs()));
    if scale > 1 {
        let g = scale as i64;
        for m in &mut mantissas {
            *m = m0 + (*m - m0) / g;
        }
    }
    let (delta_len, dod_len) = mantissa_costs(&mantissas);
    let decimal_len = 1 + delta_len.min(dod_len) + exceptions.len() * (EXCEPTION_VALUE_LEN + 1);
    if exceptions.len() * 4 > samples.len() {
        // Many exceptions: XOR may be smaller. Measure it rather than guess.
        let start = out.len();
        encode_values_float(samples, out);
        if out.len() - start <= decimal_len {
            return ValueEncoding::Xor as u8;
        }
        out.truncate(start);
    }
    out.push(exp as i8 as u8);
    let mut flags = 0;
    if scale > 1 {
        put_uvarint(out, scale);
        flags |= FLAG_SCALED;
    }
    let packed = choose_packing(&mantissas);
    let varint_len = delta_len.min(dod_len);
    let packed_len = packed.as_ref().map_or(usize::MAX, |p| p.len);
    let blocked = choose_blocked(&mantissas).filter(|(_, _, len)| *len < packed_len.min(varint_len));
    let encoding = if let Some((kind, plan, _)) = blocked {
        out.push(kind);
        if kind == BLOCKED_DELTAS {
            put_varint(out, mantissas[0]);
            let deltas: Vec<i64> = mantissas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
            blocked::write(&deltas, &plan, out);
        } else {
            blocked::write(&mantissas, &plan, out);
        }
        ValueEncoding::DecimalPacked
    } else if let Some(p) = packed.filter(|p| p.len * 100 < varint_len * PACKED_MAX_RATIO_PERCENT) {
        put_packed(&mantissas, &p, out);
        ValueEncoding::DecimalPacked
    } else if dod_len < delta_len {
        put_mantissas_dod(&mantissas, out);
        ValueEncoding::DecimalDeltaOfDelta
    } else {
        put_mantissas_delta(&mantissas, out);
        ValueEncoding::DecimalDelta
    };
    put_uvarint(out, exceptions.len() as u64);
    let mut next_idx = 0;
    for idx in exceptions {
        put_uvarint(out, (idx - next_idx) as u64);
        out.extend_from_slice(&samples[idx].v.to_bits().to_le_bytes());
        next_idx = idx + 1;
    }
    encoding as u8 | flags
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Picks the shared exponent that leaves the fewest exceptions (ties: the larger
/// exponent, which gives smaller mantissas). `None` when no value is a decimal.
fn choose_exponent(decimals: &[Option<(i64, i32)>]) -> Option<i32> {
    let mut candidates: Vec<i32> = decimals.iter().flatten().map(|&(_, e)| e).collect();
    candidates.sort_unstable();
    candidates.dedup();
    let mut best: Option<(usize, i32)> = None;
    for &exp in candidates.iter().rev() {
        let fits = decimals
            .iter()
            .flatten()
            .filter(|&&(m, e)| e >= exp && rescale(m, e, exp).is_some())
            .count();
        if best.is_none_or(|(best_fits, _)| fits > best_fits) {
            best = Some((fits, exp));
        }
        if fits == decimals.len() {
            break;
        }
    }
    best.map(|(_, exp)| exp)
}

/// Returns the byte lengths of the delta and delta-of-delta mantissa encodings.
fn mantissa_costs(mantissas: &[i64]) -> (usize, usize) {
    let first = uvarint_len(zigzag_encode(mantissas[0]));
    let (mut delta_len, mut dod_len) = (first, first);
    let mut prev_delta = None;
    for w in mantissas.windows(2) {
        let delta = w[1].wrapping_sub(w[0]);
        delta_len += uvarint_len(zigzag_encode(delta));
        dod_len += uvarint_len(zigzag_encode(match prev_delta {
            None => delta,
            Some(p) => delta.wrapping_sub(p),
        }));
        prev_delta = Some(delta);
    }
    (delta_len, dod_len)
}

/// A frame-of-reference packing of mantissas or of their deltas.
struct Packing {
    kind: u8,
    base: i64,
    bits: u32,
    /// Encoded length in bytes.
    len: usize,
}

/// The smaller of packing the mantissas or their deltas, if either fits in
/// 1..=56 bits per value.
fn choose_packing(mantissas: &[i64]) -> Option<Packing> {
    let plan = |kind: u8, xs: &mut dyn Iterator<Item = i64>, count: usize, header: usize| -> Option<Packing> {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for x in xs {
            lo = lo.min(x);
            hi = hi.max(x);
        }
        if count == 0 {
            return None;
        }
        let range = (i128::from(hi) - i128::from(lo)) as u128;
        let bits = 128 - range.leading_zeros();
        if bits == 0 || bits > 56 {
            return None;
        }
        let len = 1 + header + uvarint_len(zigzag_encode(lo)) + 1 + (count * bits as usize).div_ceil(8);
        Some(Packing {
            kind,
            base: lo,
            bits,
            len,
        })
    };
    let values = plan(PACKED_VALUES, &mut mantissas.iter().copied(), mantissas.len(), 0);
    let first = uvarint_len(zigzag_encode(mantissas[0]));
    let deltas = plan(
        PACKED_DELTAS,
        &mut mantissas.windows(2).map(|w| w[1].wrapping_sub(w[0])),
        mantissas.len() - 1,
        first,
    );
    match (values, deltas) {
        (Some(v), Some(d)) => Some(if d.len < v.len { d } else { v }),
        (v, d) => v.or(d),
    }
}

/// The smaller blocked packing of the mantissas or of their deltas: (kind, plan,
/// bytes including the kind byte).
fn choose_blocked(mantissas: &[i64]) -> Option<(u8, blocked::Plan, usize)> {
    let values = blocked::plan(mantissas).map(|p| {
        let len = 1 + p.len;
        (BLOCKED_VALUES, p, len)
    });
    let deltas: Vec<i64> = mantissas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let deltas = blocked::plan(&deltas).map(|p| {
        let len = 1 + uvarint_len(zigzag_encode(mantissas[0])) + p.len;
        (BLOCKED_DELTAS, p, len)
    });
    match (values, deltas) {
        (Some(v), Some(d)) => Some(if d.2 < v.2 { d } else { v }),
        (v, d) => v.or(d),
    }
}

fn put_packed(mantissas: &[i64], p: &Packing, out: &mut Vec<u8>) {
    out.push(p.kind);
    if p.kind == PACKED_DELTAS {
        put_varint(out, mantissas[0]);
    }
    put_varint(out, p.base);
    out.push(p.bits as u8);
    let mut w = BitWriter::new(out);
    if p.kind == PACKED_DELTAS {
        for d in mantissas.windows(2).map(|w| w[1].wrapping_sub(w[0])) {
            w.write_bits(d.wrapping_sub(p.base) as u64, p.bits);
        }
    } else {
        for &m in mantissas {
            w.write_bits(m.wrapping_sub(p.base) as u64, p.bits);
        }
    }
}

fn put_mantissas_delta(mantissas: &[i64], out: &mut Vec<u8>) {
    put_varint(out, mantissas[0]);
    for w in mantissas.windows(2) {
        put_varint(out, w[1].wrapping_sub(w[0]));
    }
}

fn put_mantissas_dod(mantissas: &[i64], out: &mut Vec<u8>) {
    put_varint(out, mantissas[0]);
    let mut prev_delta = None;
    for w in mantissas.windows(2) {
        let delta = w[1].wrapping_sub(w[0]);
        put_varint(out, prev_delta.map_or(delta, |p| delta.wrapping_sub(p)));
        prev_delta = Some(delta);
    }
}

/// Writes the float-bits value section (version 2): a kind byte, then the XOR
/// stream or the blocked deltas of the raw bits, whichever is smaller.
fn encode_values_float(samples: &[Sample], out: &mut Vec<u8>) {
    let start = out.len();
    out.push(FLOAT_XOR);
    encode_values_xor(samples, out);
    let xor_len = out.len() - start;
    let deltas: Vec<i64> = samples
        .windows(2)
        .map(|w| (w[1].v.to_bits() as i64).wrapping_sub(w[0].v.to_bits() as i64))
        .collect();
    let first = samples[0].v.to_bits();
    if let Some(plan) = blocked::plan(&deltas).filter(|p| 1 + 8 + p.len < xor_len) {
        out.truncate(start);
        out.push(FLOAT_BLOCKED);
        out.extend_from_slice(&first.to_le_bytes());
        blocked::write(&deltas, &plan, out);
    }
}

fn encode_values_xor(samples: &[Sample], out: &mut Vec<u8>) {
    let mut w = BitWriter::new(out);
    let mut prev = samples[0].v.to_bits();
    w.write_bits(prev, 64);
    let (mut leading, mut trailing) = (0xff, 0);
    for s in &samples[1..] {
        let bits = s.v.to_bits();
        write_xor_value(&mut w, prev, bits, &mut leading, &mut trailing);
        prev = bits;
    }
}

/// Decodes one chunk from the start of `bytes`, appending its samples to `out`.
///
/// Returns the number of bytes the chunk occupied, so that concatenated chunks can
/// be read one after the other. On error `out` is left as it was.
pub fn decode_chunk(bytes: &[u8], out: &mut Vec<Sample>) -> Result<usize, DecodeError> {
    let start_len = out.len();
    let result = decode_chunk_inner(bytes, out);
    if result.is_err() {
        out.truncate(start_len);
    }
    result
}

/// Decodes one chunk from the start of `bytes`, appending to `out` only its samples
/// with `start <= t <= end`.
///
/// Gives the same samples, length and success as [`decode_chunk`] followed by that
/// filter, for any bytes, but spends little on the samples outside the range (see
/// the module doc). On error `out` is left as it was.
pub fn decode_chunk_range(bytes: &[u8], start: i64, end: i64, out: &mut Vec<Sample>) -> Result<usize, DecodeError> {
    let start_len = out.len();
    let result = decode_range_inner(bytes, start..=end, out);
    if result.is_err() {
        out.truncate(start_len);
    }
    result
}

/// What the mode byte and the sample count of a chunk say.
struct Header {
    version: u8,
    mode: u8,
    encoding: ValueEncoding,
    n: usize,
}

impl Header {
    fn constant_interval(&self) -> bool {
        self.mode & FLAG_CONSTANT_INTERVAL != 0
    }
}

fn read_header(bytes: &[u8], pos: &mut usize) -> Result<Header, DecodeError> {
    let Some(&mode) = bytes.first() else {
        return Err(DecodeError::UnexpectedEof {
            what: "decimal chunk mode byte",
            offset: 0,
        });
    };
    let version = mode >> 4;
    if !(OLDEST_VERSION..=VERSION).contains(&version) || (version == 1 && mode & FLAG_SCALED != 0) {
        return Err(DecodeError::UnknownEncoding { byte: mode });
    }
    let encoding = match mode & VALUE_ENCODING_MASK {
        0 => ValueEncoding::DecimalDelta,
        1 => ValueEncoding::DecimalDeltaOfDelta,
        2 => ValueEncoding::Xor,
        _ => ValueEncoding::DecimalPacked,
    };
    *pos = 1;
    let n = read_uvarint(bytes, pos)?;
    // Every value after the first takes at least one bit (version 1), or a group of
    // blocked values its header, so a count beyond that is corrupt; checking it bounds
    // the allocations of the decoders by the input size.
    let remaining_bits = (bytes.len() - *pos) as u64 * 8;
    let items_per_bit = if version == 1 { 1 } else { blocked::ITEMS_PER_HEADER_BIT };
    if n > 0 && n - 1 > remaining_bits.saturating_mul(items_per_bit) {
        return Err(DecodeError::Corrupted {
            what: "decimal chunk sample count",
            offset: 1,
            reason: "more samples than the remaining bytes can hold",
        });
    }
    Ok(Header {
        version,
        mode,
        encoding,
        n: n as usize,
    })
}

fn decode_chunk_inner(bytes: &[u8], out: &mut Vec<Sample>) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let header = read_header(bytes, &mut pos)?;
    if header.n == 0 {
        return Ok(pos);
    }
    let base = out.len();
    out.reserve(header.n);
    decode_timestamps(bytes, &mut pos, header.n, header.constant_interval(), out)?;
    let window = Window {
        n: header.n,
        lo: 0,
        values: &mut out[base..],
    };
    decode_values(bytes, &mut pos, &header, window)?;
    Ok(pos)
}

fn decode_range_inner(bytes: &[u8], range: RangeInclusive<i64>, out: &mut Vec<Sample>) -> Result<usize, DecodeError> {
    let mut pos = 0;
    let header = read_header(bytes, &mut pos)?;
    if header.n == 0 {
        return Ok(pos);
    }
    let base = out.len();
    let ascending = decode_timestamps_in(bytes, &mut pos, header.n, header.constant_interval(), &range, out)?;
    let Some(lo) = ascending else {
        // The samples in range need not be one run: decode all, then filter.
        out.truncate(base);
        let mut all = Vec::new();
        let len = decode_chunk_inner(bytes, &mut all)?;
        out.extend(all.into_iter().filter(|s| range.contains(&s.t)));
        return Ok(len);
    };
    let window = Window {
        n: header.n,
        lo,
        values: &mut out[base..],
    };
    decode_values(bytes, &mut pos, &header, window)?;
    Ok(pos)
}

fn decode_timestamps(
    bytes: &[u8],
    pos: &mut usize,
    n: usize,
    constant: bool,
    out: &mut Vec<Sample>,
) -> Result<(), DecodeError> {
    let mut t = read_varint(bytes, pos)?;
    out.push(Sample { t, v: 0.0 });
    if n == 1 {
        return Ok(());
    }
    let mut delta = read_varint(bytes, pos)?;
    t = t.wrapping_add(delta);
    out.push(Sample { t, v: 0.0 });
    for _ in 2..n {
        if !constant {
            delta = delta.wrapping_add(read_varint(bytes, pos)?);
        }
        t = t.wrapping_add(delta);
        out.push(Sample { t, v: 0.0 });
    }
    Ok(())
}

/// Reads the `n` timestamps as [`decode_timestamps`] does, but appends to `out` (with
/// value 0) only those in `range`. When the timestamps are strictly ascending, returns
/// the index `lo` of the first sample appended (the appended ones are then samples
/// `lo..lo + appended`); else `None`, having read only part of them.
fn decode_timestamps_in(
    bytes: &[u8],
    pos: &mut usize,
    n: usize,
    constant: bool,
    range: &RangeInclusive<i64>,
    out: &mut Vec<Sample>,
) -> Result<Option<usize>, DecodeError> {
    let t0 = read_varint(bytes, pos)?;
    let mut delta = if n > 1 { read_varint(bytes, pos)? } else { 0 };
    if constant || n <= 2 {
        if let Some((lo, hi)) = arithmetic_run(t0, delta, n, range) {
            // Wrapping: `i × delta` alone may overflow where `t0 + i × delta` does not.
            out.extend((lo..hi).map(|i| Sample {
                t: t0.wrapping_add((i as i64).wrapping_mul(delta)),
                v: 0.0,
            }));
            return Ok(Some(lo));
        }
    }
    // Samples before the range; if the timestamps ascend, the index of the first in it.
    let mut lo = 0;
    let mut keep = |t: i64, out: &mut Vec<Sample>| {
        if t < *range.start() {
            lo += 1;
        } else if t <= *range.end() {
            out.push(Sample { t, v: 0.0 });
        }
    };
    let mut t = t0;
    keep(t, out);
    for i in 1..n {
        if i > 1 && !constant {
            delta = delta.wrapping_add(read_varint(bytes, pos)?);
        }
        let next = t.wrapping_add(delta);
        if next <= t {
            return Ok(None);
        }
        t = next;
        keep(t, out);
    }
    Ok(Some(lo))
}

/// For timestamps `t0 + i × delta`, `i` in `0..n`, that ascend without overflow (or
/// one timestamp): the indices `lo..hi` of those in `range`.
fn arithmetic_run(t0: i64, delta: i64, n: usize, range: &RangeInclusive<i64>) -> Option<(usize, usize)> {
    let (t0, n) = (i128::from(t0), n as i128);
    // One timestamp ascends with any step.
    let delta = if n > 1 { i128::from(delta) } else { 1 };
    if delta <= 0 || t0 + (n - 1) * delta > i128::from(i64::MAX) {
        return None;
    }
    // How many of the timestamps lie below x: ⌈(x - t0) / delta⌉, clamped to 0..=n.
    let below = |x: i128| (-(t0 - x).div_euclid(delta)).clamp(0, n) as usize;
    let lo = below(i128::from(*range.start()));
    let hi = below(i128::from(*range.end()) + 1).max(lo);
    Some((lo, hi))
}

/// The samples whose values a decoder stores: `lo..lo + values.len()` of the
/// chunk's `n` (all of them for [`decode_chunk`]). The decoders read every value's
/// bits, to find the end of the chunk, but convert and store only these.
struct Window<'a> {
    n: usize,
    lo: usize,
    values: &'a mut [Sample],
}

impl Window<'_> {
    fn range(&self) -> Range<usize> {
        self.lo..self.lo + self.values.len()
    }

    /// Stores `value()` as the value of sample `i` if it is in the window.
    #[inline(always)]
    fn set(&mut self, i: usize, value: impl FnOnce() -> f64) {
        if let Some(s) = i.checked_sub(self.lo).and_then(|j| self.values.get_mut(j)) {
            s.v = value();
        }
    }

    /// Splits samples `from..n`, whose values are read one after the other, into: how
    /// many come before the window, the window's values from `from` on, and how many
    /// come after it.
    fn split_from(&mut self, from: usize) -> (usize, &mut [Sample], usize) {
        let range = self.range();
        let first = range.start.max(from);
        let skip = (first - range.start).min(self.values.len());
        let after = self.n - range.end.max(first);
        (first - from, &mut self.values[skip..], after)
    }
}

fn decode_values(bytes: &[u8], pos: &mut usize, header: &Header, window: Window<'_>) -> Result<(), DecodeError> {
    match header.encoding {
        ValueEncoding::Xor if header.version == 1 => decode_values_xor(bytes, pos, window),
        ValueEncoding::Xor => decode_values_float(bytes, pos, window, header.version),
        ValueEncoding::DecimalDelta | ValueEncoding::DecimalDeltaOfDelta | ValueEncoding::DecimalPacked => {
            let scaled = header.mode & FLAG_SCALED != 0;
            decode_values_decimal(bytes, pos, window, header.encoding, scaled, header.version)
        }
    }
}

fn decode_values_decimal(
    bytes: &[u8],
    pos: &mut usize,
    mut w: Window<'_>,
    encoding: ValueEncoding,
    scaled: bool,
    version: u8,
) -> Result<(), DecodeError> {
    let Some(&exp_byte) = bytes.get(*pos) else {
        return Err(DecodeError::UnexpectedEof {
            what: "decimal exponent",
            offset: *pos,
        });
    };
    let exp = i32::from(exp_byte as i8);
    if exp.abs() > MAX_EXP {
        return Err(DecodeError::Corrupted {
            what: "decimal exponent",
            offset: *pos,
            reason: "exponent outside -22..=22",
        });
    }
    *pos += 1;
    let scale = if scaled {
        let scale_offset = *pos;
        let g = read_uvarint(bytes, pos)?;
        if g < 2 {
            return Err(DecodeError::Corrupted {
                what: "decimal scale",
                offset: scale_offset,
                reason: "scale below 2",
            });
        }
        g as i64
    } else {
        1
    };
    if encoding == ValueEncoding::DecimalPacked {
        decode_packed(bytes, pos, &mut w, exp, scale, version)?;
    } else {
        let delta_of_delta = encoding == ValueEncoding::DecimalDeltaOfDelta;
        let m0 = read_varint(bytes, pos)?;
        w.set(0, || decimal_to_f64(m0, exp));
        let (mut m, mut delta) = (m0, 0i64);
        let (before, values, after) = w.split_from(1);
        for _ in 0..before {
            next_mantissa(bytes, pos, delta_of_delta, &mut m, &mut delta)?;
        }
        for s in values {
            next_mantissa(bytes, pos, delta_of_delta, &mut m, &mut delta)?;
            s.v = decimal_to_f64(unscale(m, m0, scale), exp);
        }
        for _ in 0..after {
            next_mantissa(bytes, pos, delta_of_delta, &mut m, &mut delta)?;
        }
    }
    let exceptions_offset = *pos;
    let num_exceptions = read_uvarint(bytes, pos)?;
    if num_exceptions > w.n as u64 {
        return Err(DecodeError::Corrupted {
            what: "decimal exception count",
            offset: exceptions_offset,
            reason: "more exceptions than samples",
        });
    }
    let mut next_idx = 0u64;
    for _ in 0..num_exceptions {
        let entry_offset = *pos;
        let idx = next_idx.saturating_add(read_uvarint(bytes, pos)?);
        let Some(i) = usize::try_from(idx).ok().filter(|&i| i < w.n) else {
            return Err(DecodeError::Corrupted {
                what: "decimal exception index",
                offset: entry_offset,
                reason: "index past the last sample",
            });
        };
        let Some(raw) = bytes.get(*pos..*pos + EXCEPTION_VALUE_LEN) else {
            return Err(DecodeError::UnexpectedEof {
                what: "decimal exception value",
                offset: *pos,
            });
        };
        let mut le = [0u8; EXCEPTION_VALUE_LEN];
        le.copy_from_slice(raw);
        w.set(i, || f64::from_bits(u64::from_le_bytes(le)));
        *pos += EXCEPTION_VALUE_LEN;
        next_idx = idx + 1;
    }
    Ok(())
}

/// Reads the next varint of a delta or delta-of-delta mantissa sequence into `m`.
#[inline(always)]
fn next_mantissa(
    bytes: &[u8],
    pos: &mut usize,
    delta_of_delta: bool,
    m: &mut i64,
    delta: &mut i64,
) -> Result<(), DecodeError> {
    let d = read_varint(bytes, pos)?;
    // The first delta of deltas-of-deltas is a plain delta (from 0).
    *delta = if delta_of_delta { delta.wrapping_add(d) } else { d };
    *m = m.wrapping_add(*delta);
    Ok(())
}

/// The mantissa stored as `q` in a chunk whose first mantissa is `m0`, scaled by `scale`.
#[inline]
fn unscale(q: i64, m0: i64, scale: i64) -> i64 {
    m0.wrapping_add(q.wrapping_sub(m0).wrapping_mul(scale))
}

/// Reads a [`ValueEncoding::DecimalPacked`] mantissa section.
fn decode_packed(
    bytes: &[u8],
    pos: &mut usize,
    w: &mut Window<'_>,
    exp: i32,
    scale: i64,
    version: u8,
) -> Result<(), DecodeError> {
    let kind_offset = *pos;
    let Some(&kind) = bytes.get(*pos) else {
        return Err(DecodeError::UnexpectedEof {
            what: "packing kind",
            offset: *pos,
        });
    };
    *pos += 1;
    if version >= 2 && (kind == BLOCKED_DELTAS || kind == BLOCKED_VALUES) {
        return decode_blocked(bytes, pos, w, exp, scale, kind, version);
    }
    if kind != PACKED_VALUES && kind != PACKED_DELTAS {
        return Err(DecodeError::Corrupted {
            what: "packing kind",
            offset: kind_offset,
            reason: "unknown packing",
        });
    }
    let first = if kind == PACKED_DELTAS {
        read_varint(bytes, pos)?
    } else {
        0
    };
    let base = read_varint(bytes, pos)?;
    let bits_offset = *pos;
    let Some(&bits) = bytes.get(*pos) else {
        return Err(DecodeError::UnexpectedEof {
            what: "packing width",
            offset: *pos,
        });
    };
    *pos += 1;
    if bits == 0 || bits > 56 {
        return Err(DecodeError::Corrupted {
            what: "packing width",
            offset: bits_offset,
            reason: "width outside 1..=56",
        });
    }
    let bits = u32::from(bits);
    let mut r = BitReader::at_byte(bytes, *pos);
    let item = |r: &mut BitReader<'_>| r.read_bits(bits).map(|x| base.wrapping_add(x as i64));
    if kind == PACKED_DELTAS {
        w.set(0, || decimal_to_f64(first, exp));
        // The deltas before the window only add up.
        let (before, values, after) = w.split_from(1);
        let sum = r.sum_bits(before, bits)? as i64;
        let mut m = first.wrapping_add((before as i64).wrapping_mul(base)).wrapping_add(sum);
        for s in values {
            m = m.wrapping_add(item(&mut r)?);
            s.v = decimal_to_f64(unscale(m, first, scale), exp);
        }
        r.skip_bits(after * bits as usize)?;
    } else {
        // Every mantissa at a known place: read the first (scaling is relative to
        // it) and the window's, and step over the others.
        let m0 = item(&mut r)?;
        w.set(0, || decimal_to_f64(m0, exp));
        let (before, values, after) = w.split_from(1);
        r.skip_bits(before * bits as usize)?;
        for s in values {
            s.v = decimal_to_f64(unscale(item(&mut r)?, m0, scale), exp);
        }
        r.skip_bits(after * bits as usize)?;
    }
    *pos = r.bytes_consumed();
    Ok(())
}

/// Reads a blocked mantissa section (after its kind byte).
fn decode_blocked(
    bytes: &[u8],
    pos: &mut usize,
    w: &mut Window<'_>,
    exp: i32,
    scale: i64,
    kind: u8,
    version: u8,
) -> Result<(), DecodeError> {
    let (n, range) = (w.n, w.range());
    if kind == BLOCKED_DELTAS {
        let first = read_varint(bytes, pos)?;
        w.set(0, || decimal_to_f64(first, exp));
        read_blocked::<true>(bytes, pos, version, 1, n, range, first, |i, m| {
            w.set(i, || decimal_to_f64(unscale(m, first, scale), exp));
        })
    } else {
        let mut m0 = 0;
        read_blocked::<false>(bytes, pos, version, 0, n, range, 0, |i, q| {
            if i == 0 {
                m0 = q;
            }
            w.set(i, || decimal_to_f64(unscale(q, m0, scale), exp));
        })
    }
}

/// Reads the blocked items of samples `first..n` and calls `emit(i, x)` for each
/// sample `i` in `window`, with `x` the item or, when `RUNNING`, `start` plus the
/// wrapping sum of the items up to it (items are then deltas). When not `RUNNING`,
/// the item of sample `first` is emitted too, wherever the window lies: scaled
/// mantissas are relative to it.
///
/// Groups wholly before the window are only summed (when `RUNNING`) or skipped, and
/// those after it skipped ([`blocked::Groups::skip`]).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn read_blocked<const RUNNING: bool>(
    bytes: &[u8],
    pos: &mut usize,
    version: u8,
    first: usize,
    n: usize,
    window: Range<usize>,
    start: i64,
    mut emit: impl FnMut(usize, i64),
) -> Result<(), DecodeError> {
    let mut groups = blocked::Groups::new(bytes, *pos, n - first, version)?;
    let mut sum = start;
    // The sample of the next group's first item.
    let mut i = first;
    while groups.next_len() > 0 {
        let end = i + groups.next_len();
        let mut j = i;
        if window.start <= i && end <= window.end {
            // All in the window (every group, for a whole chunk).
            if RUNNING {
                groups.read(|x| {
                    sum = sum.wrapping_add(x);
                    emit(j, sum);
                    j += 1;
                })?;
            } else {
                groups.read(|x| {
                    emit(j, x);
                    j += 1;
                })?;
            }
        } else if end <= window.start && RUNNING {
            sum = sum.wrapping_add(groups.sum()?);
        } else if (end <= window.start || i >= window.end) && (RUNNING || i != first) {
            groups.skip()?;
        } else {
            groups.read(|x| {
                let x = if RUNNING {
                    sum = sum.wrapping_add(x);
                    sum
                } else {
                    x
                };
                if window.contains(&j) || (!RUNNING && j == first) {
                    emit(j, x);
                }
                j += 1;
            })?;
        }
        i = end;
    }
    *pos = groups.end();
    Ok(())
}

/// Reads a version-2 float-bits value section.
fn decode_values_float(bytes: &[u8], pos: &mut usize, mut w: Window<'_>, version: u8) -> Result<(), DecodeError> {
    let kind_offset = *pos;
    let Some(&kind) = bytes.get(*pos) else {
        return Err(DecodeError::UnexpectedEof {
            what: "float bits kind",
            offset: *pos,
        });
    };
    *pos += 1;
    match kind {
        FLOAT_XOR => decode_values_xor(bytes, pos, w),
        FLOAT_BLOCKED => {
            let Some(raw) = bytes.get(*pos..*pos + 8) else {
                return Err(DecodeError::UnexpectedEof {
                    what: "first float bits",
                    offset: *pos,
                });
            };
            let mut le = [0u8; 8];
            le.copy_from_slice(raw);
            *pos += 8;
            let first = u64::from_le_bytes(le);
            w.set(0, || f64::from_bits(first));
            let (n, range) = (w.n, w.range());
            read_blocked::<true>(bytes, pos, version, 1, n, range, first as i64, |i, bits| {
                w.set(i, || f64::from_bits(bits as u64));
            })
        }
        _ => Err(DecodeError::Corrupted {
            what: "float bits kind",
            offset: kind_offset,
            reason: "unknown kind",
        }),
    }
}

fn decode_values_xor(bytes: &[u8], pos: &mut usize, mut w: Window<'_>) -> Result<(), DecodeError> {
    let mut r = BitReader::at_byte(bytes, *pos);
    let mut state = XorValueState {
        v_bits: r.read_bits(64)?,
        ..XorValueState::default()
    };
    let first = state.v_bits;
    w.set(0, || f64::from_bits(first));
    let (before, values, after) = w.split_from(1);
    for _ in 0..before {
        state.read(&mut r)?;
    }
    for s in values {
        state.read(&mut r)?;
        s.v = f64::from_bits(state.v_bits);
    }
    for _ in 0..after {
        state.read(&mut r)?;
    }
    *pos = r.bytes_consumed();
    Ok(())
}

mod blocked;
#[cfg(test)]
mod tests;
