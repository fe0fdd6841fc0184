//! One series of the head: its labels and its samples in XOR chunks plus an
//! out-of-order buffer.

use codec::xor::XorEncoder;
use model::Sample;
use parking_lot::Mutex;

/// Chunks are closed at 120 samples, as in Prometheus: XOR compression gains
/// little beyond that and decoding a whole chunk stays cheap.
pub(crate) const MAX_CHUNK_SAMPLES: u16 = 120;

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

/// A closed, immutable XOR chunk.
pub(crate) struct ClosedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) bytes: Box<[u8]>,
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

/// The samples of a series. Guarded by the series' mutex.
#[derive(Default)]
pub(crate) struct SeriesData {
    /// The chunk being appended to; `None` when no in-order sample is held.
    open: Option<XorEncoder>,
    open_min_t: i64,
    closed: Vec<ClosedChunk>,
    /// Out-of-order samples, sorted by `t`, unique `t`.
    ooo: Option<Box<OooBuffers>>,
    /// Last in-order sample, kept even when its chunk has been cut away so
    /// that order and duplicates are still checked.
    last: Option<(i64, f64)>,
    /// Set when the series was dropped from the head index.
    pub(crate) removed: bool,
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
        self.last.map(|(t, _)| t)
    }

    /// The newest timestamp held, in order or not.
    pub(crate) fn newest_t(&self) -> Option<i64> {
        [
            self.last.map(|(t, _)| t),
            self.pending().last().map(|s| s.t),
            self.cutting().last().map(|s| s.t),
        ]
        .into_iter()
        .flatten()
        .max()
    }

    /// The last in-order sample.
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        self.last
    }

    /// Appends an in-order sample (`t` greater than the last one). The caller
    /// checked the order.
    pub(crate) fn append_in_order(&mut self, t: i64, v: f64, chunk_range: i64) {
        let must_cut = match &self.open {
            None => false,
            Some(enc) => {
                enc.num_samples() >= MAX_CHUNK_SAMPLES || window(t, chunk_range) != window(self.open_min_t, chunk_range)
            }
        };
        if must_cut {
            self.close_open();
        }
        let enc = self.open.get_or_insert_with(XorEncoder::new);
        if enc.num_samples() == 0 {
            self.open_min_t = t;
        }
        enc.append(t, v);
        self.last = Some((t, v));
    }

    fn close_open(&mut self) {
        if let Some(mut enc) = self.open.take() {
            if let Some((max_t, _)) = enc.last() {
                enc.shrink_to_fit();
                // Exact capacity: most series hold one or two closed chunks.
                self.closed.reserve_exact(1);
                self.closed.push(ClosedChunk {
                    min_t: self.open_min_t,
                    max_t,
                    bytes: enc.bytes().into(),
                });
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
    pub(crate) fn in_order_value_at(&self, t: i64) -> Option<f64> {
        let mut buf = Vec::new();
        self.collect_in_order(t, t, &mut buf);
        buf.first().map(|s| s.v)
    }

    /// Appends to `out` the in-order samples within `start..=end`.
    fn collect_in_order(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        let mut tmp = Vec::new();
        let chunks = self.closed.iter().map(|c| (c.min_t, c.max_t, &*c.bytes)).chain(
            self.open
                .as_ref()
                .and_then(|e| e.last().map(|(mt, _)| (self.open_min_t, mt, e.bytes()))),
        );
        for (min_t, max_t, bytes) in chunks {
            if max_t < start || min_t > end {
                continue;
            }
            tmp.clear();
            if let Err(err) = codec::xor::decode_xor(bytes, &mut tmp) {
                tracing::error!(%err, "corrupt chunk in the head; skipping it");
                continue;
            }
            out.extend(tmp.iter().filter(|s| s.t >= start && s.t <= end));
        }
    }

    /// All samples within `start..=end`, sorted, one per timestamp (an
    /// out-of-order sample wins over an in-order one at the same time).
    pub(crate) fn samples(&self, start: i64, end: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        self.collect_in_order(start, end, &mut out);
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
    pub(crate) fn take_for_cut(&mut self, boundary: i64) -> Vec<Sample> {
        if self
            .open
            .as_ref()
            .and_then(XorEncoder::last)
            .is_some_and(|(t, _)| t < boundary)
        {
            self.close_open();
        }
        if let Some(ooo) = &mut self.ooo {
            let split = ooo.pending.partition_point(|s| s.t < boundary);
            let moved: Vec<Sample> = ooo.pending.drain(..split).collect();
            ooo.cutting.extend(moved);
            sort_dedup(&mut ooo.cutting);
        }
        let mut out = Vec::new();
        let mut tmp = Vec::new();
        for c in self.closed.iter().filter(|c| c.max_t < boundary) {
            tmp.clear();
            if let Err(err) = codec::xor::decode_xor(&c.bytes, &mut tmp) {
                tracing::error!(%err, "corrupt chunk in the head; skipping it");
                continue;
            }
            out.extend_from_slice(&tmp);
        }
        out.extend_from_slice(self.cutting());
        sort_dedup(&mut out);
        out
    }

    /// Phase two of a block cut: drops what [`Self::take_for_cut`] copied.
    pub(crate) fn drop_cut(&mut self, boundary: i64) {
        self.closed.retain(|c| c.max_t >= boundary);
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

    /// Chunks for a checkpoint: every closed chunk and the open one, as XOR bytes.
    pub(crate) fn chunks_for_checkpoint(&self) -> Vec<&[u8]> {
        self.closed
            .iter()
            .map(|c| &*c.bytes)
            .chain(self.open.as_ref().map(XorEncoder::bytes))
            .collect()
    }

    /// Out-of-order samples for a checkpoint.
    pub(crate) fn ooo_for_checkpoint(&self) -> impl Iterator<Item = &Sample> {
        self.pending().iter().chain(self.cutting())
    }

    /// Restores a chunk from a checkpoint. Chunks come in time order.
    pub(crate) fn restore_chunk(&mut self, bytes: &[u8], chunk_range: i64) -> Result<(), codec::DecodeError> {
        let enc = XorEncoder::resume(bytes)?;
        let Some((max_t, max_v)) = enc.last() else {
            return Ok(());
        };
        let min_t = enc.first_t().unwrap_or(max_t);
        if self.last.is_some_and(|(t, _)| t >= min_t) {
            // Overlaps what is there (should not happen): append sample by sample.
            let mut tmp = Vec::new();
            codec::xor::decode_xor(bytes, &mut tmp)?;
            for s in tmp {
                if self.last.is_none_or(|(t, _)| s.t > t) {
                    self.append_in_order(s.t, s.v, chunk_range);
                }
            }
            return Ok(());
        }
        self.close_open();
        self.open = Some(enc);
        self.open_min_t = min_t;
        self.last = Some((max_t, max_v));
        Ok(())
    }
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
