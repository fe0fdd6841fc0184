//! Opens a block and answers selections from it.
//!
//! On open, the index file is read whole and checksummed; symbols, the label
//! index and the frame table are decoded into memory, while series entries
//! and postings stay encoded until a query needs them. The decompressed index
//! and the series offsets go to a mapped cache file ([`super::index_file`]),
//! so an open block costs page cache, not heap, per series.
//! Chunk frames are read on demand through the [`BlockStore`].

use super::frame_cache::{next_reader_id, SharedFrameCache};
use super::index_file::IndexData;
use super::writer::INDEX_MAGIC;
use super::{BlockMeta, FORMAT_VERSION, OLDEST_READABLE_VERSION};
use crate::encoding::{DecodeError, Reader};
use crate::postings::PostingsSource;
use crate::store::BlockStore;
use crate::TsdbError;
use model::{Label, Labels, Sample};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a chunk is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkRef {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) frame: usize,
    pub(crate) offset: usize,
    /// Samples in the chunk, as the index records it (a capacity hint).
    pub(crate) num_samples: usize,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    offset: u64,
    compressed_len: u64,
    decompressed_len: u64,
}

/// An open, immutable block.
pub struct BlockReader {
    pub(crate) meta: BlockMeta,
    dir: String,
    store: Arc<dyn BlockStore>,
    /// The decompressed index (as bytes) and the series offsets.
    index: IndexData,
    /// (offset, len) of each symbol in `index`.
    symbols: Vec<(u32, u32)>,
    /// name symbol → sorted (value symbol, postings offset).
    label_index: BTreeMap<u32, Vec<(u32, u64)>>,
    frames: Vec<Frame>,
    series_start: usize,
    postings_start: usize,
    /// Set when compaction or retention replaced the block: its files are
    /// deleted when the last reference goes, so that a querier that took
    /// the block before can still read it.
    doomed: AtomicBool,
    /// Process-unique: names this reader's frames in a [`SharedFrameCache`].
    cache_id: u64,
}

fn corrupt(dir: &str, file: &str, reason: impl std::fmt::Display) -> TsdbError {
    TsdbError::Corrupted {
        path: format!("{dir}/{file}"),
        reason: reason.to_string(),
    }
}

impl BlockReader {
    /// Opens the block in directory `dir` of `store`.
    pub fn open(store: Arc<dyn BlockStore>, dir: &str) -> Result<Self, TsdbError> {
        let meta_bytes = store.read(&format!("{dir}/meta.json"))?;
        let meta: BlockMeta = serde_json::from_slice(&meta_bytes).map_err(|e| corrupt(dir, "meta.json", e))?;
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&meta.version) {
            return Err(corrupt(
                dir,
                "meta.json",
                format!("unsupported block version {}", meta.version),
            ));
        }
        let stored = store.read(&format!("{dir}/index"))?;
        let index = if meta.version >= 2 {
            // Bound what a corrupt frame header can make us allocate.
            let max_len = stored.len().saturating_mul(256).clamp(1 << 20, 4 << 30);
            codec::frame::decompress_frame(&stored, max_len).map_err(|e| corrupt(dir, "index", e))?
        } else {
            stored
        };
        let bad = |reason: &str| corrupt(dir, "index", reason);
        if index.len() < 5 + 48 + 8 || &index[..4] != INDEX_MAGIC || &index[index.len() - 4..] != INDEX_MAGIC {
            return Err(bad("bad magic or too short"));
        }
        if u32::from(index[4]) != meta.version {
            return Err(bad("unsupported index version"));
        }
        let body_end = index.len() - 8;
        let crc = u32::from_le_bytes([
            index[body_end],
            index[body_end + 1],
            index[body_end + 2],
            index[body_end + 3],
        ]);
        if super::writer::crc32c_of(&index[..body_end]) != crc {
            return Err(bad("index checksum mismatch"));
        }
        let toc_start = body_end - 48;
        let mut toc = [0usize; 6];
        let mut r = Reader::at(&index, toc_start);
        for t in &mut toc {
            *t = r.u64_le().map_err(|e| bad(&e.to_string()))? as usize;
        }
        if toc.windows(2).any(|w| w[0] > w[1]) || toc[5] > toc_start {
            return Err(bad("table of contents out of order"));
        }
        let parse = || -> Result<_, DecodeError> {
            let mut r = Reader::at(&index, toc[0]);
            let n = r.uvarint()? as usize;
            let mut symbols = Vec::with_capacity(n.min(index.len()));
            for _ in 0..n {
                let len = r.uvarint()? as usize;
                let off = r.pos();
                let s = r.take(len)?;
                std::str::from_utf8(s).map_err(|_| DecodeError {
                    what: "symbol not UTF-8",
                    offset: off,
                })?;
                symbols.push((off as u32, len as u32));
            }
            let mut r = Reader::at(&index, toc[3]);
            let names = r.uvarint()? as usize;
            let mut label_index = BTreeMap::new();
            for _ in 0..names {
                let name = r.uvarint()? as u32;
                let nv = r.uvarint()? as usize;
                let mut values = Vec::with_capacity(nv.min(index.len()));
                for _ in 0..nv {
                    values.push((r.uvarint()? as u32, r.uvarint()?));
                }
                label_index.insert(name, values);
            }
            let mut r = Reader::at(&index, toc[4]);
            let nf = r.uvarint()? as usize;
            let mut frames = Vec::with_capacity(nf.min(index.len()));
            for _ in 0..nf {
                frames.push(Frame {
                    offset: r.uvarint()?,
                    compressed_len: r.uvarint()?,
                    decompressed_len: r.uvarint()?,
                });
            }
            let mut r = Reader::at(&index, toc[5]);
            let ns = r.uvarint()? as usize;
            let mut series_offsets = Vec::with_capacity(ns.min(index.len()));
            let mut prev = 0u64;
            for _ in 0..ns {
                prev += r.uvarint()?;
                series_offsets.push(prev);
            }
            Ok((symbols, label_index, frames, series_offsets))
        };
        let (symbols, label_index, frames, series_offsets) = parse().map_err(|e| bad(&e.to_string()))?;
        let n_sym = symbols.len() as u32;
        if label_index
            .iter()
            .any(|(n, vs)| *n >= n_sym || vs.iter().any(|(v, _)| *v >= n_sym))
        {
            return Err(bad("label index names an unknown symbol"));
        }
        let block_id = dir.rsplit('/').next().unwrap_or(dir);
        let index = IndexData::new(index, series_offsets, store.cache_dir(), block_id);
        Ok(BlockReader {
            meta,
            dir: dir.to_string(),
            store,
            index,
            symbols,
            label_index,
            frames,
            series_start: toc[1],
            postings_start: toc[2],
            doomed: AtomicBool::new(false),
            cache_id: next_reader_id(),
        })
    }

    /// Deletes the block's files once nothing reads it any more.
    pub(crate) fn delete_when_unused(&self) {
        self.doomed.store(true, Ordering::Release);
    }

    /// The block's meta.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The block's directory in its store.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn symbol(&self, id: u32) -> Result<&str, TsdbError> {
        let &(off, len) = self
            .symbols
            .get(id as usize)
            .ok_or_else(|| corrupt(&self.dir, "index", "bad symbol ref"))?;
        // Checked to be UTF-8 on open.
        std::str::from_utf8(&self.index[off as usize..(off + len) as usize])
            .map_err(|_| corrupt(&self.dir, "index", "symbol not UTF-8"))
    }

    fn symbol_id(&self, s: &str) -> Option<u32> {
        let mut lo = 0usize;
        let mut hi = self.symbols.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (off, len) = self.symbols[mid];
            let m = &self.index[off as usize..(off + len) as usize];
            match m.cmp(s.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid as u32),
            }
        }
        None
    }

    fn read_postings(&self, off: u64) -> Vec<u64> {
        let mut r = Reader::at(&self.index, self.postings_start + off as usize);
        let mut out = Vec::new();
        let Ok(n) = r.uvarint() else { return out };
        let mut prev = 0u64;
        for _ in 0..n {
            match r.uvarint() {
                Ok(d) => {
                    prev += d;
                    out.push(prev);
                }
                Err(_) => break,
            }
        }
        out
    }

    /// Number of series in the block.
    pub fn num_series(&self) -> usize {
        self.index.num_series()
    }

    /// Calls `f` with every series of the block and all its samples, in the
    /// index's label order: for tools that export or examine a whole block.
    pub fn for_each_series(&self, mut f: impl FnMut(&Labels, &[Sample])) -> Result<(), TsdbError> {
        let mut cache = FrameCache::default();
        let mut samples = Vec::new();
        for id in 0..self.num_series() as u64 {
            let (labels, chunks) = self.series(id)?;
            samples.clear();
            for c in &chunks {
                self.read_chunk(c, &mut cache, i64::MIN, i64::MAX, &mut samples)?;
            }
            f(&labels, &samples);
        }
        Ok(())
    }

    /// The labels and chunk refs of series `id`.
    pub(crate) fn series(&self, id: u64) -> Result<(Labels, Vec<ChunkRef>), TsdbError> {
        let off = usize::try_from(id)
            .ok()
            .and_then(|i| self.index.series_offset(i))
            .ok_or_else(|| corrupt(&self.dir, "index", "series id out of range"))?;
        let mut r = Reader::at(&self.index, self.series_start + off as usize);
        let e = |e: DecodeError| corrupt(&self.dir, "index", e);
        let nl = r.uvarint().map_err(e)? as usize;
        let mut labels = Vec::with_capacity(nl.min(64));
        // Symbols are sorted, so the writer's label order (by name) shows as
        // ascending name symbols; then the set needs no sorting.
        let mut in_order = true;
        let mut prev_name: Option<u32> = None;
        for _ in 0..nl {
            let n = r.uvarint().map_err(e)? as u32;
            let v = r.uvarint().map_err(e)? as u32;
            in_order &= prev_name.is_none_or(|p| p < n);
            prev_name = Some(n);
            let label = Label::new(self.symbol(n)?, self.symbol(v)?);
            in_order &= !label.value.is_empty();
            labels.push(label);
        }
        let labels = if in_order {
            Labels::from_sorted(labels)
        } else {
            Labels::new(labels)
        };
        let nc = r.uvarint().map_err(e)? as usize;
        let mut chunks = Vec::with_capacity(nc.min(1024));
        let mut prev_max = 0i64;
        let mut frame = 0usize;
        for i in 0..nc {
            let d = r.varint().map_err(e)?;
            let min_t = if i == 0 { d } else { prev_max.wrapping_add(d) };
            let max_t = min_t.wrapping_add(r.uvarint().map_err(e)? as i64);
            frame = if self.meta.version >= 4 {
                frame.wrapping_add_signed(r.varint().map_err(e)? as isize)
            } else {
                frame.wrapping_add(r.uvarint().map_err(e)? as usize)
            };
            let offset = r.uvarint().map_err(e)? as usize;
            let num_samples = r.uvarint().map_err(e)?;
            chunks.push(ChunkRef {
                min_t,
                max_t,
                frame,
                offset,
                // Only a capacity hint: bounded so a corrupt index cannot make us allocate much.
                num_samples: usize::try_from(num_samples).unwrap_or(0).min(1 << 16),
            });
            prev_max = max_t;
        }
        Ok((labels, chunks))
    }

    /// Reads frame `i` into `raw` and decompresses it into `out`.
    fn read_frame(&self, i: usize, raw: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), TsdbError> {
        let f = self
            .frames
            .get(i)
            .ok_or_else(|| corrupt(&self.dir, "index", "frame ref out of range"))?;
        self.store.read_range_into(
            &format!("{}/chunks", self.dir),
            f.offset,
            f.compressed_len as usize,
            raw,
        )?;
        codec::frame::decompress_frame_into(raw, f.decompressed_len as usize, out)
            .map_err(|e| corrupt(&self.dir, "chunks", e))
    }

    /// Decodes the samples of one chunk that fall in `start..=end` into `out`.
    pub(crate) fn read_chunk(
        &self,
        c: &ChunkRef,
        cache: &mut FrameCache,
        start: i64,
        end: i64,
        out: &mut Vec<Sample>,
    ) -> Result<(), TsdbError> {
        let slot = match cache.slots.iter().position(|s| s.frame == Some(c.frame)) {
            Some(i) => i,
            None => {
                let i = if cache.slots.len() < MAX_CACHED_FRAMES {
                    cache.slots.push(CachedFrame::default());
                    cache.slots.len() - 1
                } else {
                    cache
                        .slots
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, s)| s.used)
                        .map_or(0, |(i, _)| i)
                };
                let FrameCache { slots, raw, shared, .. } = &mut *cache;
                let s = &mut slots[i];
                // Cleared first: a failed read leaves no frame cached.
                s.frame = None;
                s.buf = match shared.as_deref().and_then(|sh| sh.get(self.cache_id, c.frame)) {
                    Some(frame) => frame,
                    None => {
                        // Without a shared cache, the slot's old buffer is
                        // reused when nothing else holds it.
                        let mut buf = Arc::try_unwrap(std::mem::take(&mut s.buf)).unwrap_or_default();
                        self.read_frame(c.frame, raw, &mut buf)?;
                        let buf = Arc::new(buf);
                        if let Some(sh) = shared {
                            sh.insert(self.cache_id, c.frame, Arc::clone(&buf));
                        }
                        buf
                    }
                };
                s.frame = Some(c.frame);
                i
            }
        };
        cache.clock += 1;
        let FrameCache { slots, clock, .. } = cache;
        slots[slot].used = *clock;
        let frame = slots[slot].buf.as_slice();
        let bytes = frame
            .get(c.offset..)
            .ok_or_else(|| corrupt(&self.dir, "chunks", "chunk offset past frame"))?;
        let bad = |e| corrupt(&self.dir, "chunks", e);
        if c.min_t >= start && c.max_t <= end {
            codec::decimal::decode_chunk(bytes, out).map_err(bad)?;
            return Ok(());
        }
        // Partly in range (often only the tail, for an instant query): convert
        // and store only the samples inside it.
        codec::decimal::decode_chunk_range(bytes, start, end, out).map_err(bad)?;
        Ok(())
    }

    /// How many of the chunk's samples likely fall in `start..=end`: all if
    /// it lies inside, else in proportion to the time overlap (a capacity hint).
    pub(crate) fn estimate_samples_in(c: &ChunkRef, start: i64, end: i64) -> usize {
        if c.min_t >= start && c.max_t <= end {
            return c.num_samples;
        }
        let span = (i128::from(c.max_t) - i128::from(c.min_t)).max(1);
        let overlap = (i128::from(c.max_t.min(end)) - i128::from(c.min_t.max(start))).clamp(0, span);
        usize::try_from(overlap * c.num_samples as i128 / span).unwrap_or(0) + 1
    }

    /// All label names used in the block, sorted.
    pub(crate) fn label_names(&self) -> Result<Vec<String>, TsdbError> {
        self.label_index
            .keys()
            .map(|&n| self.symbol(n).map(str::to_string))
            .collect()
    }
}

impl Drop for BlockReader {
    fn drop(&mut self) {
        if self.doomed.load(Ordering::Acquire) {
            if let Err(err) = self.store.delete_all(&self.dir) {
                tracing::warn!(block = %self.dir, %err, "cannot delete a replaced block; it will be merged again at the next start");
            }
        }
    }
}

impl PostingsSource for BlockReader {
    fn all_postings(&self) -> Vec<u64> {
        (0..self.index.num_series() as u64).collect()
    }

    fn postings(&self, name: &str, value: &str) -> Vec<u64> {
        let (Some(n), Some(v)) = (self.symbol_id(name), self.symbol_id(value)) else {
            return Vec::new();
        };
        let Some(values) = self.label_index.get(&n) else {
            return Vec::new();
        };
        match values.binary_search_by_key(&v, |&(v, _)| v) {
            Ok(i) => self.read_postings(values[i].1),
            Err(_) => Vec::new(),
        }
    }

    fn label_values(&self, name: &str) -> Vec<String> {
        let Some(n) = self.symbol_id(name) else {
            return Vec::new();
        };
        let Some(values) = self.label_index.get(&n) else {
            return Vec::new();
        };
        values
            .iter()
            .filter_map(|&(v, _)| self.symbol(v).ok().map(str::to_string))
            .collect()
    }
}

/// Frames a [`FrameCache`] holds at most: one per chunk window of a 24-hour
/// block (2-hour windows, each with its own frames since version 3), a few
/// MiB at most.
const MAX_CACHED_FRAMES: usize = 16;

/// Keeps the most recently decompressed frames of one block for one reader:
/// series are read in index order, neighbours share frames, and each chunk
/// window of a series is in its own frame, so holding the last frame of
/// every window decompresses each frame once. Frames not held are looked up
/// in the [`SharedFrameCache`], if any, before they are read and
/// decompressed (and then added to it). Without a shared cache, the least
/// recently used frame's buffer is reused.
#[derive(Default)]
pub(crate) struct FrameCache {
    slots: Vec<CachedFrame>,
    /// Frames recently decompressed by any query (none for whole-block reads).
    shared: Option<Arc<SharedFrameCache>>,
    /// Counts reads, for least-recently-used eviction.
    clock: u64,
    /// The compressed bytes of the last frame read.
    raw: Vec<u8>,
}

impl FrameCache {
    /// A cache that also looks in, and adds to, `shared` (unless disabled).
    pub(crate) fn with_shared(shared: &Arc<SharedFrameCache>) -> Self {
        FrameCache {
            shared: shared.is_enabled().then(|| Arc::clone(shared)),
            ..FrameCache::default()
        }
    }
}

#[derive(Default)]
struct CachedFrame {
    /// The index of the frame held in `buf`.
    frame: Option<usize>,
    buf: Arc<Vec<u8>>,
    /// [`FrameCache::clock`] when last read.
    used: u64,
}
