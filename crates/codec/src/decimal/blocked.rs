//! Blocked packing of a chunk's integer items (mantissas or their deltas), version 2.
//!
//! Items are cut into groups of [`GROUP`]; each group is packed at its own bit
//! width, either densely (from the chunk's base or the group's minimum, at a
//! fixed width or in a truncated binary code over the group's range), or
//! sparsely: a bitmap of the items that differ from the chunk's common item,
//! then only those. Bursty
//! counters (rates that change every few minutes) get narrow groups where they
//! are quiet, and gauges that often stay put (memory, filesystem sizes) pay one
//! bit for an unchanged sample. Layout in `FORMAT.md`.
//!
//! Reading goes a group at a time ([`Groups`]), so that a read of a time range can sum
//! the groups before it (deltas) or step over them (items at a fixed width need no
//! decoding), and step over the groups after it.

use crate::bitstream::{BitReader, BitWriter};
use crate::varint::{put_uvarint, put_varint, read_uvarint, read_varint, uvarint_len, zigzag_encode};
use crate::DecodeError;

/// Items per group.
pub(super) const GROUP: usize = 32;
/// Largest bit width of an item offset.
const MAX_WIDTH: u32 = 56;
/// The most items a bit of blocked input can stand for (a group's header for a whole
/// group): a bound on the sample count a chunk of a given size can claim.
pub(super) const ITEMS_PER_HEADER_BIT: u64 = (GROUP / GROUP_HEADER_BITS) as u64;

/// A [`Layout::DenseFromMin`] group of width `w` stores its minimum without its
/// low `w - MIN_KEPT_BITS` bits: those cost more than the items gain from them.
const MIN_KEPT_BITS: u32 = 5;

/// Bits of a group header: the 2-bit [`Layout`] and a 6-bit width.
const GROUP_HEADER_BITS: usize = 8;

/// How a group is laid out (2 bits).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Every item, minus the chunk's base.
    Dense = 0,
    /// The group's minimum (minus the base, at the chunk's width), then every item minus it.
    DenseFromMin = 1,
    /// A bitmap of the items other than the common one, then those items minus the base.
    Sparse = 2,
    /// As [`Layout::DenseFromMin`], plus the top bits of the items' range, then each item
    /// in a truncated binary code over that range (one bit shorter for the low values):
    /// uniform noise whose range is not a power of two costs less than its full width.
    DenseRange = 3,
}

/// From version 3, a sparse group with at least this many differing items codes them
/// in the truncated binary code (its 4 header bits pay off); fewer keep a fixed width.
const SPARSE_RANGE_MIN_ITEMS: usize = 8;

/// Bits of the range kept in a [`Layout::DenseRange`] header.
const RANGE_KEPT_BITS: u32 = 4;

/// The truncated binary code of a [`Layout::DenseRange`] group of width `w` whose
/// items (minus the group's minimum) are at most `max`: (range top bits, code
/// length k, number u of values coded in k - 1 bits).
fn range_code(w: u32, max: u64) -> (u64, u32, u64) {
    let s = w.saturating_sub(RANGE_KEPT_BITS);
    let top = max >> s;
    let (k, u) = range_code_of(w, top);
    (top, k, u)
}

/// The code length and short-code count for range top bits `top` at width `w`.
fn range_code_of(w: u32, top: u64) -> (u32, u64) {
    let s = w.saturating_sub(RANGE_KEPT_BITS);
    // Items lie in 0..range; range ≤ 2^w (+ 2^s when a corrupt header says so).
    let range = (top + 1) << s;
    let k = bits_of(range - 1);
    let u = (1u64 << k).wrapping_sub(range);
    (k, u)
}

/// Bits of the range's top bits in a [`Layout::DenseRange`] header at width `w`.
fn range_bits(w: u32) -> u32 {
    w.min(RANGE_KEPT_BITS)
}

/// How one group is packed.
#[derive(Clone, Copy)]
struct Group {
    layout: Layout,
    width: u32,
    /// The group's minimum ([`Layout::DenseFromMin`]).
    min: i64,
}

/// A blocked packing, planned before it is written.
pub(super) struct Plan {
    base: i64,
    width: u32,
    common: i64,
    groups: Vec<Group>,
    /// Encoded length in bytes.
    pub(super) len: usize,
}

fn bits_of(range: u64) -> u32 {
    64 - range.leading_zeros()
}

/// Plans the blocked packing of `items`; `None` when their range needs more than
/// [`MAX_WIDTH`] bits (or there are none).
pub(super) fn plan(items: &[i64]) -> Option<Plan> {
    let (&first, _) = items.split_first()?;
    let (mut lo, mut hi) = (first, first);
    for &x in items {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    let width = bits_of(hi.wrapping_sub(lo) as u64);
    if i128::from(hi) - i128::from(lo) >= 1i128 << MAX_WIDTH {
        return None;
    }
    // The item a sparse group leaves out: an unchanged value when deltas are packed.
    let common = if (lo..=hi).contains(&0) { 0 } else { lo };
    let mut groups = Vec::with_capacity(items.len().div_ceil(GROUP));
    let mut bits = 0usize;
    for g in items.chunks(GROUP) {
        let (mut gmin, mut gmax) = (g[0], g[0]);
        let mut rare_max = None::<i64>;
        let mut rare = 0usize;
        for &x in g {
            gmin = gmin.min(x);
            gmax = gmax.max(x);
            if x != common {
                rare += 1;
                rare_max = Some(rare_max.map_or(x, |m| m.max(x)));
            }
        }
        let dense_width = bits_of(gmax.wrapping_sub(lo) as u64);
        let (from_min_width, gmin_q) = quantized_min(lo, width, gmin, gmax);
        let sparse_width = rare_max.map_or(0, |m| bits_of(m.wrapping_sub(lo) as u64));
        let sparse_cost = if rare >= SPARSE_RANGE_MIN_ITEMS {
            let (_, k, u) = range_code(sparse_width, rare_max.map_or(0, |m| m.wrapping_sub(lo) as u64));
            let short = g
                .iter()
                .filter(|&&x| x != common && (x.wrapping_sub(lo) as u64) < u)
                .count();
            g.len() + range_bits(sparse_width) as usize + rare * k as usize - short
        } else {
            g.len() + rare * sparse_width as usize
        };
        let min_bits = (width - min_shift(from_min_width)) as usize;
        let range_cost = if from_min_width > 1 {
            let max = g.iter().map(|&x| x.wrapping_sub(gmin_q) as u64).max().unwrap_or(0);
            let (_, k, u) = range_code(from_min_width, max);
            let short = g.iter().filter(|&&x| (x.wrapping_sub(gmin_q) as u64) < u).count();
            min_bits + range_bits(from_min_width) as usize + g.len() * k as usize - short
        } else {
            usize::MAX
        };
        let options = [
            (range_cost, Layout::DenseRange, from_min_width, gmin_q),
            (g.len() * dense_width as usize, Layout::Dense, dense_width, lo),
            (
                min_bits + g.len() * from_min_width as usize,
                Layout::DenseFromMin,
                from_min_width,
                gmin_q,
            ),
            (sparse_cost, Layout::Sparse, sparse_width, lo),
        ];
        let (cost, layout, width, min) = options
            .into_iter()
            .min_by_key(|o| o.0)
            .unwrap_or((0, Layout::Dense, 0, lo));
        bits += GROUP_HEADER_BITS + cost;
        groups.push(Group { layout, width, min });
    }
    let len = uvarint_len(zigzag_encode(lo)) + 1 + uvarint_len(common.wrapping_sub(lo) as u64) + bits.div_ceil(8);
    Some(Plan {
        base: lo,
        width,
        common,
        groups,
        len,
    })
}

/// How many low bits of a [`Layout::DenseFromMin`] group's minimum are left out at item width `w`.
fn min_shift(w: u32) -> u32 {
    w.saturating_sub(MIN_KEPT_BITS)
}

/// The item width and the truncated minimum of a [`Layout::DenseFromMin`] group
/// whose items lie in `gmin..=gmax`, in a chunk of base `lo` and width `width`.
fn quantized_min(lo: i64, width: u32, gmin: i64, gmax: i64) -> (u32, i64) {
    let mut w = bits_of(gmax.wrapping_sub(gmin) as u64);
    loop {
        let s = min_shift(w);
        let min = lo.wrapping_add(((gmin.wrapping_sub(lo) as u64 >> s) << s) as i64);
        if w >= width || bits_of(gmax.wrapping_sub(min) as u64) <= w {
            return (w, min);
        }
        w += 1;
    }
}

/// Writes `items` as planned.
pub(super) fn write(items: &[i64], plan: &Plan, out: &mut Vec<u8>) {
    put_varint(out, plan.base);
    out.push(plan.width as u8);
    put_uvarint(out, plan.common.wrapping_sub(plan.base) as u64);
    let mut w = BitWriter::new(out);
    for (g, group) in items.chunks(GROUP).zip(&plan.groups) {
        w.write_bits(group.layout as u64, 2);
        w.write_bits(u64::from(group.width), 6);
        match group.layout {
            Layout::Sparse => {
                for &x in g {
                    w.write_bit(x != plan.common);
                }
                let rare = || g.iter().filter(|&&x| x != plan.common);
                if rare().count() >= SPARSE_RANGE_MIN_ITEMS {
                    let max = rare().map(|&x| x.wrapping_sub(plan.base) as u64).max().unwrap_or(0);
                    let xs = rare().map(|&x| x.wrapping_sub(plan.base) as u64);
                    write_range_coded(&mut w, group.width, max, xs);
                } else {
                    for &x in rare() {
                        w.write_bits(x.wrapping_sub(plan.base) as u64, group.width);
                    }
                }
            }
            Layout::DenseFromMin => {
                write_group_min(&mut w, group, plan);
                for &x in g {
                    w.write_bits(x.wrapping_sub(group.min) as u64, group.width);
                }
            }
            Layout::Dense => {
                for &x in g {
                    w.write_bits(x.wrapping_sub(plan.base) as u64, group.width);
                }
            }
            Layout::DenseRange => {
                write_group_min(&mut w, group, plan);
                let max = g.iter().map(|&x| x.wrapping_sub(group.min) as u64).max().unwrap_or(0);
                write_range_coded(
                    &mut w,
                    group.width,
                    max,
                    g.iter().map(|&x| x.wrapping_sub(group.min) as u64),
                );
            }
        }
    }
}

/// Writes the truncated minimum of a group laid out from its minimum
/// ([`Layout::DenseFromMin`], [`Layout::DenseRange`]), at the chunk's width less
/// the bits [`min_shift`] leaves out.
fn write_group_min(w: &mut BitWriter<'_>, group: &Group, plan: &Plan) {
    let s = min_shift(group.width);
    w.write_bits(
        group.min.wrapping_sub(plan.base) as u64 >> s,
        plan.width.saturating_sub(s),
    );
}

/// Reads what [`write_group_min`] wrote, for a group of item width `w` in a
/// chunk of base `base` and width `width`.
fn read_group_min(r: &mut BitReader<'_>, base: i64, width: u32, w: u32) -> Result<i64, DecodeError> {
    let s = min_shift(w);
    Ok(base.wrapping_add((r.read_bits(width.saturating_sub(s))? << s) as i64))
}

/// Writes the range's top bits and `xs` (each at most `max`) in the truncated
/// binary code of width `w` (layout 3, and sparse groups from version 3).
fn write_range_coded(w: &mut BitWriter<'_>, width: u32, max: u64, xs: impl Iterator<Item = u64>) {
    let (top, k, u) = range_code(width, max);
    w.write_bits(top, range_bits(width));
    for x in xs {
        if x < u {
            w.write_bits(x, k - 1);
        } else {
            w.write_bits(x + u, k);
        }
    }
}

/// Reads the range's top bits of a group of width `w` and returns a reader of its codes.
fn read_range_code(r: &mut BitReader<'_>, w: u32) -> Result<(u32, u64), DecodeError> {
    let top = r.read_bits(range_bits(w))?;
    Ok(range_code_of(w, top))
}

/// Reads one truncated binary code of length `k` with `u` short codes.
#[inline]
fn read_range_coded(r: &mut BitReader<'_>, k: u32, u: u64) -> Result<u64, DecodeError> {
    if k == 0 {
        return Ok(0);
    }
    r.read_truncated(k, u)
}

/// Reads blocked items one group at a time, so that a caller that needs only some
/// items (a time range of a chunk) can pass over the groups of the others.
pub(super) struct Groups<'a> {
    r: BitReader<'a>,
    base: i64,
    /// The chunk's width.
    width: u32,
    common: i64,
    version: u8,
    /// Items in the groups not yet read.
    left: usize,
}

impl<'a> Groups<'a> {
    /// Reads the header of `count` blocked items at `pos` of `bytes`.
    ///
    /// `version` is the chunk's: version 2 sparse groups store their items at a fixed
    /// width, version 3 ones in the truncated binary code of layout 3.
    pub(super) fn new(bytes: &'a [u8], mut pos: usize, count: usize, version: u8) -> Result<Self, DecodeError> {
        let base = read_varint(bytes, &mut pos)?;
        let Some(&width) = bytes.get(pos) else {
            return Err(DecodeError::UnexpectedEof {
                what: "blocked packing width",
                offset: pos,
            });
        };
        if u32::from(width) > MAX_WIDTH {
            return Err(DecodeError::Corrupted {
                what: "blocked packing width",
                offset: pos,
                reason: "width above 56",
            });
        }
        pos += 1;
        let common = base.wrapping_add(read_uvarint(bytes, &mut pos)? as i64);
        Ok(Groups {
            r: BitReader::at_byte(bytes, pos),
            base,
            width: u32::from(width),
            common,
            version,
            left: count,
        })
    }

    /// How many items the next group holds; 0 when every group has been read.
    pub(super) fn next_len(&self) -> usize {
        self.left.min(GROUP)
    }

    /// The byte position after the groups read so far (after the last one: the end).
    pub(super) fn end(&self) -> usize {
        self.r.bytes_consumed()
    }

    /// Reads the next group's header: its layout and item width.
    fn header(&mut self) -> Result<(u64, u32), DecodeError> {
        let layout = self.r.read_bits(2)?;
        let w = self.r.read_bits(6)? as u32;
        if w > MAX_WIDTH {
            return Err(DecodeError::Corrupted {
                what: "blocked group header",
                offset: self.r.bit_position() / 8,
                reason: "width above 56",
            });
        }
        Ok((layout, w))
    }

    /// Reads the next group, handing each of its items to `emit` in order.
    #[inline(always)]
    pub(super) fn read(&mut self, mut emit: impl FnMut(i64)) -> Result<(), DecodeError> {
        let n = self.next_len();
        let (layout, w) = self.header()?;
        let (base, common, r) = (self.base, self.common, &mut self.r);
        if layout == Layout::Sparse as u64 {
            // n ≤ 32 bits, the first item's in the highest.
            let bitmap = r.read_bits(n as u32)? << (64 - n);
            if self.version >= 3 && bitmap.count_ones() as usize >= SPARSE_RANGE_MIN_ITEMS {
                let (k, u) = read_range_code(r, w)?;
                for i in 0..n {
                    emit(if (bitmap << i) >> 63 == 1 {
                        base.wrapping_add(read_range_coded(r, k, u)? as i64)
                    } else {
                        common
                    });
                }
            } else {
                for i in 0..n {
                    emit(if (bitmap << i) >> 63 == 1 {
                        base.wrapping_add(r.read_bits(w)? as i64)
                    } else {
                        common
                    });
                }
            }
        } else if layout == Layout::DenseRange as u64 {
            let min = read_group_min(r, base, self.width, w)?;
            let (k, u) = read_range_code(r, w)?;
            for _ in 0..n {
                emit(min.wrapping_add(read_range_coded(r, k, u)? as i64));
            }
        } else {
            let min = if layout == Layout::DenseFromMin as u64 {
                read_group_min(r, base, self.width, w)?
            } else {
                base
            };
            for _ in 0..n {
                emit(min.wrapping_add(r.read_bits(w)? as i64));
            }
        }
        self.left -= n;
        Ok(())
    }

    /// Reads the next group and returns the wrapping sum of its items. Items at a fixed
    /// width are summed several to a load ([`BitReader::sum_bits`]), not one by one.
    pub(super) fn sum(&mut self) -> Result<i64, DecodeError> {
        self.pass(true)
    }

    /// Passes over the next group. Items at a fixed width (dense layouts, and sparse
    /// groups with few differing items) are not read; items in the truncated binary
    /// code are, as their lengths vary.
    pub(super) fn skip(&mut self) -> Result<(), DecodeError> {
        self.pass(false).map(|_| ())
    }

    /// [`Groups::sum`] when `sum`, else [`Groups::skip`] (returning 0).
    fn pass(&mut self, sum: bool) -> Result<i64, DecodeError> {
        let n = self.next_len();
        let start = self.r.clone();
        let (layout, w) = self.header()?;
        // The items at a fixed width, what each adds to its stored bits, and the sum of the others.
        let (fixed, offset, others) = if layout == Layout::Sparse as u64 {
            let ones = self.r.read_bits(n as u32)?.count_ones() as usize;
            if self.version >= 3 && ones >= SPARSE_RANGE_MIN_ITEMS {
                return self.read_all(start, sum);
            }
            (ones, self.base, times(n - ones, self.common))
        } else if layout == Layout::DenseRange as u64 {
            return self.read_all(start, sum);
        } else if layout == Layout::DenseFromMin as u64 {
            (n, read_group_min(&mut self.r, self.base, self.width, w)?, 0)
        } else {
            (n, self.base, 0)
        };
        let stored = if sum && w > 0 {
            self.r.sum_bits(fixed, w)? as i64
        } else {
            self.r.skip_bits(fixed * w as usize)?;
            0
        };
        self.left -= n;
        Ok(times(fixed, offset).wrapping_add(others).wrapping_add(stored))
    }

    /// Goes back to `start` and reads the group item by item.
    fn read_all(&mut self, start: BitReader<'a>, sum: bool) -> Result<i64, DecodeError> {
        self.r = start;
        let mut total = 0i64;
        if sum {
            self.read(|x| total = total.wrapping_add(x))?;
        } else {
            self.read(|_| {})?;
        }
        Ok(total)
    }
}

/// `count × x`, wrapping.
fn times(count: usize, x: i64) -> i64 {
    (count as i64).wrapping_mul(x)
}
