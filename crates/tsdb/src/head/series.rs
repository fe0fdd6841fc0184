//! One series of the head: its labels and its samples in XOR chunks plus an
//! out-of-order buffer. Closed chunks live in the head's chunk files
//! ([`super::chunk_file`]); only their time range and location stay here.

use super::chunk_file::{ChunkLoc, HeadChunks};
use codec::xor::XorEncoder;
use model::Sample;
use parking_lot::Mutex;

/// Chunks are closed at 60 samples (15 minutes at a 15 s interval), half
/// Prometheus' 120. Open chunks are the one part of the head that grows with
/// time, and every series' chunk closes at the same block-range boundary, so
/// resident memory peaks when they are all full: with a million series at
/// 120 samples that peak was ~380 B/series above the trough (restart
/// benchmark). Closing at 60 halves it for 24 bytes of range and location
/// per extra closed chunk; XOR gains little beyond 60 samples (the chunk
/// header and first sample cost ~10 bytes), and closed chunks live in files.
pub(crate) const MAX_CHUNK_SAMPLES: u16 = 60;

/// A series of the head.
pub(crate) struct MemSeries {
    pub(crate) series_ref: u64,
    pub(crate) hash: u64,
    /// Packed labels, see [`crate::packed`].
    pub(crate) labels: Box<[u8]>,
    pub(crate) data: Mutex<SeriesData>,
}

impl MemSeries {
    pub(crate) fn new(series_ref: u64, hash: u64, labels: Box<[u8]>) -> Self {
        MemSeries {
            series_ref,
            hash,
            labels,
            data: Mutex::new(SeriesData::default()),
        }
    }
}

/// A closed, immutable XOR chunk, stored in [`HeadChunks`].
pub(crate) struct ClosedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    loc: ChunkLoc,
}

/// Out-of-order samples of a series; allocated only for series that get
/// some, so the common in-order series pays one pointer.
#[derive(Default)]
pub(crate) struct OooBuffers {
    /// Sorted by `t`, unique `t`.
    pending: Vec<Sample>,
    /// Being written into a block (still readable until the block is durable).
    cutting: Vec<Sample>,
}

/// How an append went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendOutcome {
    Appended,
    /// Same timestamp and same value as a stored sample: a harmless retry.
    Duplicate,
    /// Same timestamp, different value.
    Conflict,
}

/// `last_t` of a series that never had an in-order sample.
const NO_LAST_T: i64 = i64::MIN;

/// The samples of a series. Guarded by the series' mutex.
///
/// Kept small (104 bytes, so a [`MemSeries`] is one 160-byte allocation):
/// closed chunks are a boxed slice with exact length, and the last sample
/// uses a sentinel instead of an `Option`.
pub(crate) struct SeriesData {
    /// The chunk being appended to; `None` when no in-order sample is held.
    open: Option<XorEncoder>,
    open_min_t: i64,
    /// Oldest first.
    closed: Box<[ClosedChunk]>,
    /// Out-of-order samples, sorted by `t`, unique `t`.
    ooo: Option<Box<OooBuffers>>,
    /// Last in-order sample (`NO_LAST_T` if none), kept even when its chunk
    /// has been cut away so that order and duplicates are still checked.
    last_t: i64,
    last_v: f64,
    /// Set when the series was dropped from the head index.
    pub(crate) removed: bool,
}

impl Default for SeriesData {
    fn default() -> Self {
        SeriesData {
            open: None,
            open_min_t: 0,
            closed: Box::default(),
            ooo: None,
            last_t: NO_LAST_T,
            last_v: 0.0,
            removed: false,
        }
    }
}

impl SeriesData {
    fn pending(&self) -> &[Sample] {
        self.ooo.as_ref().map_or(&[], |o| &o.pending)
    }

    fn cutting(&self) -> &[Sample] {
        self.ooo.as_ref().map_or(&[], |o| &o.cutting)
    }

    /// The last in-order timestamp.
    pub(crate) fn last_t(&self) -> Option<i64> {
        (self.last_t != NO_LAST_T).then_some(self.last_t)
    }

    /// The newest timestamp held, in order or not.
    pub(crate) fn newest_t(&self) -> Option<i64> {
        [
            self.last_t(),
            self.pending().last().map(|s| s.t),
            self.cutting().last().map(|s| s.t),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// Chunks held: closed ones, the open one, and one for out-of-order
    /// samples if any (as Prometheus counts its head chunks).
    pub(crate) fn num_chunks(&self) -> usize {
        let ooo = !self.pending().is_empty() || !self.cutting().is_empty();
        self.closed.len() + usize::from(self.open.is_some()) + usize::from(ooo)
    }

    /// The last in-order sample.
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        self.last_t().map(|t| (t, self.last_v))
    }

    fn set_last(&mut self, t: i64, v: f64) {
        self.last_t = t;
        self.last_v = v;
    }

    /// Appends an in-order sample (`t` greater than the last one). The caller
    /// checked the order.
    pub(crate) fn append_in_order(&mut self, t: i64, v: f64, chunk_range: i64, chunks: &HeadChunks) {
        let must_cut = match &self.open {
            None => false,
            Some(enc) => {
                enc.num_samples() >= MAX_CHUNK_SAMPLES || window(t, chunk_range) != window(self.open_min_t, chunk_range)
            }
        };
        if must_cut {
            self.close_open(chunks);
        }
        let enc = self.open.get_or_insert_with(XorEncoder::new);
        if enc.num_samples() == 0 {
            self.open_min_t = t;
        }
        enc.append(t, v);
        self.set_last(t, v);
    }

    /// Moves the open chunk to the chunk files.
    fn close_open(&mut self, chunks: &HeadChunks) {
        if let Some(enc) = self.open.take() {
            if let Some((max_t, _)) = enc.last() {
                let chunk = ClosedChunk {
                    min_t: self.open_min_t,
                    max_t,
                    loc: chunks.write(enc.bytes()),
                };
                // Exact length: most series hold one to three closed chunks.
                let mut closed = std::mem::take(&mut self.closed).into_vec();
                closed.reserve_exact(1);
                closed.push(chunk);
                self.closed = closed.into_boxed_slice();
            }
        }
    }

    /// Inserts an out-of-order sample.
    pub(crate) fn insert_ooo(&mut self, t: i64, v: f64) -> AppendOutcome {
        for buf in [self.pending(), self.cutting()] {
            if let Ok(i) = buf.binary_search_by_key(&t, |s| s.t) {
                return if buf[i].v.to_bits() == v.to_bits() {
                    AppendOutcome::Duplicate
                } else {
                    AppendOutcome::Conflict
                };
            }
        }
        let pending = &mut self.ooo.get_or_insert_with(Box::default).pending;
        let pos = pending.partition_point(|s| s.t < t);
        pending.insert(pos, Sample::new(t, v));
        AppendOutcome::Appended
    }

    /// Tells whether an in-order chunk already holds a sample at `t`, and
    /// with which value. Decodes chunks: used on replay only.
    pub(crate) fn in_order_value_at(&self, t: i64, chunks: &HeadChunks) -> Option<f64> {
        let mut buf = Vec::new();
        self.collect_in_order(t, t, chunks, &mut buf);
        buf.first().map(|s| s.v)
    }

    /// Appends to `out` the in-order samples within `start..=end`.
    fn collect_in_order(&self, start: i64, end: i64, chunks: &HeadChunks, out: &mut Vec<Sample>) {
        let mut tmp = Vec::new();
        let mut bytes = Vec::new();
        for c in self.closed.iter().filter(|c| c.max_t >= start && c.min_t <= end) {
            bytes.clear();
            if let Err(err) = chunks.read(c.loc, &mut bytes) {
                tracing::error!(%err, "unreadable chunk in the head; skipping it");
                continue;
            }
            decode_into(&bytes, start, end, &mut tmp, out);
        }
        if let Some(enc) = &self.open {
            if let Some((max_t, _)) = enc.last() {
                if max_t >= start && self.open_min_t <= end {
                    decode_into(enc.bytes(), start, end, &mut tmp, out);
                }
            }
        }
    }

    /// Calls `f` with the bytes of every chunk, oldest first (for
    /// checkpoints): closed ones with `Some((min_t, max_t, last value))`
    /// (the value is only meaningful for the newest chunk), the open one with `None`.
    pub(crate) fn for_each_chunk(&self, chunks: &HeadChunks, mut f: impl FnMut(Option<(i64, i64, f64)>, &[u8])) {
        let mut bytes = Vec::new();
        for c in self.closed.iter() {
            bytes.clear();
            match chunks.read(c.loc, &mut bytes) {
                Ok(()) => f(Some((c.min_t, c.max_t, self.last_v)), &bytes),
                Err(err) => tracing::error!(%err, "unreadable chunk in the head; leaving it out of the checkpoint"),
            }
        }
        if let Some(enc) = &self.open {
            f(None, enc.bytes());
        }
    }

    /// All samples within `start..=end`, sorted, one per timestamp (an
    /// out-of-order sample wins over an in-order one at the same time).
    pub(crate) fn samples(&self, start: i64, end: i64, chunks: &HeadChunks) -> Vec<Sample> {
        let mut out = Vec::new();
        self.collect_in_order(start, end, chunks, &mut out);
        let extra = self
            .pending()
            .iter()
            .chain(self.cutting())
            .filter(|s| s.t >= start && s.t <= end);
        let mut has_extra = false;
        for s in extra {
            out.push(*s);
            has_extra = true;
        }
        if has_extra {
            sort_dedup(&mut out);
        }
        out
    }

    /// Phase one of a block cut: closes the open chunk if it ends below
    /// `boundary`, moves out-of-order samples below it aside (still readable),
    /// and returns a copy of every sample below `boundary`.
    pub(crate) fn take_for_cut(&mut self, boundary: i64, chunks: &HeadChunks) -> Vec<Sample> {
        if self
            .open
            .as_ref()
            .and_then(XorEncoder::last)
            .is_some_and(|(t, _)| t < boundary)
        {
            self.close_open(chunks);
        }
        if let Some(ooo) = &mut self.ooo {
            let split = ooo.pending.partition_point(|s| s.t < boundary);
            let moved: Vec<Sample> = ooo.pending.drain(..split).collect();
            ooo.cutting.extend(moved);
            sort_dedup(&mut ooo.cutting);
        }
        let mut out = Vec::new();
        let mut tmp = Vec::new();
        let mut bytes = Vec::new();
        for c in self.closed.iter().filter(|c| c.max_t < boundary) {
            bytes.clear();
            if let Err(err) = chunks.read(c.loc, &mut bytes) {
                tracing::error!(%err, "unreadable chunk in the head; skipping it");
                continue;
            }
            decode_into(&bytes, i64::MIN, i64::MAX, &mut tmp, &mut out);
        }
        out.extend_from_slice(self.cutting());
        sort_dedup(&mut out);
        out
    }

    /// Phase two of a block cut: drops what [`Self::take_for_cut`] copied.
    pub(crate) fn drop_cut(&mut self, boundary: i64, chunks: &HeadChunks) {
        if self.closed.iter().any(|c| c.max_t < boundary) {
            let mut kept = Vec::with_capacity(self.closed.len());
            for c in std::mem::take(&mut self.closed).into_vec() {
                if c.max_t < boundary {
                    chunks.release(c.loc);
                } else {
                    kept.push(c);
                }
            }
            self.closed = kept.into_boxed_slice();
        }
        if let Some(ooo) = &mut self.ooo {
            ooo.cutting = Vec::new();
            if ooo.pending.is_empty() {
                self.ooo = None;
            }
        }
    }

    /// The smallest timestamp held, if any.
    pub(crate) fn min_time(&self) -> Option<i64> {
        let chunk_min = self
            .closed
            .first()
            .map(|c| c.min_t)
            .or(self.open.as_ref().map(|_| self.open_min_t));
        let ooo_min = self.pending().first().map(|s| s.t);
        let cut_min = self.cutting().first().map(|s| s.t);
        [chunk_min, ooo_min, cut_min].into_iter().flatten().min()
    }

    /// Out-of-order samples for a checkpoint.
    pub(crate) fn ooo_for_checkpoint(&self) -> impl Iterator<Item = &Sample> {
        self.pending().iter().chain(self.cutting())
    }

    /// Restores a closed chunk from a checkpoint without decoding it, unless
    /// it overlaps what the series holds. Chunks come in time order.
    pub(crate) fn restore_closed_chunk(
        &mut self,
        (min_t, max_t, last_v): (i64, i64, f64),
        bytes: &[u8],
        chunk_range: i64,
        chunks: &HeadChunks,
    ) -> Result<(), codec::DecodeError> {
        if min_t > max_t || self.last_t().is_some_and(|t| t >= min_t) {
            return self.restore_chunk(bytes, chunk_range, chunks);
        }
        self.close_open(chunks);
        let chunk = ClosedChunk {
            min_t,
            max_t,
            loc: chunks.write(bytes),
        };
        let mut closed = std::mem::take(&mut self.closed).into_vec();
        closed.reserve_exact(1);
        closed.push(chunk);
        self.closed = closed.into_boxed_slice();
        self.set_last(max_t, last_v);
        Ok(())
    }

    /// Restores a chunk from a checkpoint. Chunks come in time order.
    pub(crate) fn restore_chunk(
        &mut self,
        bytes: &[u8],
        chunk_range: i64,
        chunks: &HeadChunks,
    ) -> Result<(), codec::DecodeError> {
        let enc = XorEncoder::resume(bytes)?;
        let Some((max_t, max_v)) = enc.last() else {
            return Ok(());
        };
        let min_t = enc.first_t().unwrap_or(max_t);
        if self.last_t().is_some_and(|t| t >= min_t) {
            // Overlaps what is there (should not happen): append sample by sample.
            let mut tmp = Vec::new();
            codec::xor::decode_xor(bytes, &mut tmp)?;
            for s in tmp {
                if self.last_t().is_none_or(|t| s.t > t) {
                    self.append_in_order(s.t, s.v, chunk_range, chunks);
                }
            }
            return Ok(());
        }
        self.close_open(chunks);
        self.open = Some(enc);
        self.open_min_t = min_t;
        self.set_last(max_t, max_v);
        Ok(())
    }
}

/// Decodes an XOR chunk and appends its samples within `start..=end` to `out`.
fn decode_into(bytes: &[u8], start: i64, end: i64, tmp: &mut Vec<Sample>, out: &mut Vec<Sample>) {
    tmp.clear();
    if let Err(err) = codec::xor::decode_xor(bytes, tmp) {
        tracing::error!(%err, "corrupt chunk in the head; skipping it");
        return;
    }
    out.extend(tmp.iter().filter(|s| s.t >= start && s.t <= end));
}

fn window(t: i64, range: i64) -> i64 {
    t.div_euclid(range)
}

/// Sorts samples by time and keeps the last of equal timestamps.
pub(crate) fn sort_dedup(samples: &mut Vec<Sample>) {
    samples.sort_by_key(|s| s.t);
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for s in samples.drain(..) {
        match out.last_mut() {
            Some(last) if last.t == s.t => *last = s,
            _ => out.push(s),
        }
    }
    *samples = out;
}
