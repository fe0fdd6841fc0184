//! Builds a block from series delivered in label order.

use super::{new_ulid, BlockCompaction, BlockMeta, BlockStats, FORMAT_VERSION};
use crate::encoding::{put_bytes, put_uvarint, put_varint};
use crate::store::{BlockStore, ObjectWriter};
use model::{Labels, Sample};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Frames are compressed once they hold this many bytes of encoded chunks:
/// 64 KiB gives zstd enough context across series (measured in `codec`'s
/// benchmark) while a point read decompresses little.
pub(crate) const FRAME_TARGET_BYTES: usize = 64 << 10;
/// Each [`BLOCK_CHUNK_RANGE_MS`] window of a block has its own frames, so a
/// query over a short range decompresses only that window's frames; at most
/// this many windows are filled at once (a longer block flushes the
/// fullest buffer early).
const MAX_OPEN_WINDOWS: usize = 16;
/// zstd level for block frames.
pub(crate) const ZSTD_LEVEL: i32 = 9;
/// A chunk in a block holds at most this many samples; more are split.
pub(crate) const MAX_BLOCK_CHUNK_SAMPLES: usize = 4096;
/// Chunks never span a multiple of this range (2 h), so that a query over a
/// short window decodes little of a long block.
pub(crate) const BLOCK_CHUNK_RANGE_MS: i64 = 2 * 3600 * 1000;

pub(crate) const INDEX_MAGIC: &[u8; 4] = b"HTSI";

/// A frame being filled with the chunks of one window.
struct OpenFrame {
    no: u64,
    buf: Vec<u8>,
}

struct ChunkMeta {
    min_t: i64,
    max_t: i64,
    frame: u64,
    offset: u32,
    num_samples: u32,
}

/// Writes one block. Call [`BlockWriter::add_series`] in label order, then
/// [`BlockWriter::finish`]. Nothing is visible until `finish` succeeds.
pub(crate) struct BlockWriter<'a> {
    store: &'a dyn BlockStore,
    dir: String,
    ulid: String,
    chunks_file: Box<dyn ObjectWriter>,
    chunks_file_len: u64,
    /// The frame being filled per chunk window, by window number.
    open_frames: BTreeMap<i64, OpenFrame>,
    compressed: Vec<u8>,
    /// (file offset, compressed length, decompressed length) by frame
    /// number; a number is taken when its frame is opened, and its entry
    /// filled when the frame is written.
    frames: Vec<(u64, u64, u64)>,
    // Label strings are collected up front by the caller so symbols are known.
    symbol_ids: BTreeMap<String, u32>,
    /// The index being built: header and symbols (written by `new`), then
    /// the series section, encoded as series are added (a few dozen bytes
    /// per series rather than a struct with two vectors); `encode_index`
    /// appends the rest in place.
    index: Vec<u8>,
    /// Where the series section starts in `index`.
    series_start: usize,
    /// Offset of each series entry within the series section.
    series_offsets: Vec<u64>,
    /// Postings lists, already in their encoded form (about 1 to 2 bytes
    /// per entry instead of 4 for a `u32`).
    postings: BTreeMap<(u32, u32), PostingsBuilder>,
    stats: BlockStats,
    min_t: i64,
    max_t: i64,
    last_labels: Option<Labels>,
}

impl<'a> BlockWriter<'a> {
    /// Starts a block under `parent/<new ulid>` with the given label symbols
    /// (every label name and value the series will use).
    pub(crate) fn new(
        store: &'a dyn BlockStore,
        parent: &str,
        symbols: impl IntoIterator<Item = String>,
    ) -> io::Result<Self> {
        let ulid = new_ulid();
        let dir = format!("{parent}/{ulid}");
        let chunks_file = store.create(&format!("{dir}/chunks"))?;
        let mut symbols: Vec<String> = symbols.into_iter().collect();
        symbols.sort_unstable();
        symbols.dedup();
        let mut index = Vec::new();
        index.extend_from_slice(INDEX_MAGIC);
        index.push(FORMAT_VERSION as u8);
        put_uvarint(&mut index, symbols.len() as u64);
        for s in &symbols {
            put_bytes(&mut index, s.as_bytes());
        }
        let series_start = index.len();
        let symbol_ids = symbols.into_iter().enumerate().map(|(i, s)| (s, i as u32)).collect();
        Ok(BlockWriter {
            store,
            dir,
            ulid,
            chunks_file,
            chunks_file_len: 0,
            open_frames: BTreeMap::new(),
            compressed: Vec::new(),
            frames: Vec::new(),
            symbol_ids,
            index,
            series_start,
            series_offsets: Vec::new(),
            postings: BTreeMap::new(),
            stats: BlockStats::default(),
            min_t: i64::MAX,
            max_t: i64::MIN,
            last_labels: None,
        })
    }

    /// Tells the writer how many series are coming, so that per-series
    /// buffers are allocated once at the right size (a hint; more may come).
    pub(crate) fn reserve_series(&mut self, n: usize) {
        self.series_offsets
            .reserve_exact(n.saturating_sub(self.series_offsets.len()));
    }

    /// Adds a series with its samples (sorted, unique timestamps). Series
    /// must come in strictly increasing label order; empty ones are skipped.
    pub(crate) fn add_series(&mut self, labels: &Labels, samples: &[Sample]) -> io::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        if self.last_labels.as_ref().is_some_and(|l| l >= labels) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("series out of order: {labels}"),
            ));
        }
        self.last_labels = Some(labels.clone());
        let mut label_ids = Vec::with_capacity(labels.len());
        for l in labels {
            let (Some(&n), Some(&v)) = (self.symbol_ids.get(&l.name), self.symbol_ids.get(&l.value)) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("label {} not in symbols", l.name),
                ));
            };
            label_ids.push((n, v));
        }
        let series_id = self.series_offsets.len() as u32;
        for &pair in &label_ids {
            self.postings.entry(pair).or_default().push(series_id);
        }
        let mut chunks = Vec::new();
        for part in split_chunks(samples) {
            let (min_t, max_t) = (part[0].t, part[part.len() - 1].t);
            let window = min_t.div_euclid(BLOCK_CHUNK_RANGE_MS);
            if !self.open_frames.contains_key(&window) && self.open_frames.len() >= MAX_OPEN_WINDOWS {
                let fullest = self
                    .open_frames
                    .iter()
                    .max_by_key(|(_, f)| f.buf.len())
                    .map(|(w, _)| *w);
                if let Some(w) = fullest {
                    self.flush_frame(w)?;
                }
            }
            let frames = &mut self.frames;
            let open = self.open_frames.entry(window).or_insert_with(|| {
                frames.push((0, 0, 0));
                OpenFrame {
                    no: frames.len() as u64 - 1,
                    buf: Vec::with_capacity(FRAME_TARGET_BYTES + FRAME_TARGET_BYTES / 4),
                }
            });
            let offset = open.buf.len() as u32;
            codec::decimal::encode_chunk(part, &mut open.buf);
            let full = open.buf.len() >= FRAME_TARGET_BYTES;
            chunks.push(ChunkMeta {
                min_t,
                max_t,
                frame: open.no,
                offset,
                num_samples: part.len() as u32,
            });
            self.stats.num_chunks += 1;
            self.stats.num_samples += part.len() as u64;
            self.min_t = self.min_t.min(min_t);
            self.max_t = self.max_t.max(max_t);
            if full {
                self.flush_frame(window)?;
            }
        }
        self.series_offsets.push((self.index.len() - self.series_start) as u64);
        // Grow by an eighth rather than doubling: with a million series the
        // slack of a doubling would be tens of MiB during a head cut.
        if self.index.capacity() - self.index.len() < 256 {
            self.index.reserve_exact((self.index.len() / 8).max(64 << 10));
        }
        encode_series_entry(&label_ids, &chunks, &mut self.index);
        self.stats.num_series += 1;
        Ok(())
    }

    /// Compresses and writes the open frame of `window`, filling its entry
    /// of the frame table.
    fn flush_frame(&mut self, window: i64) -> io::Result<()> {
        let Some(open) = self.open_frames.remove(&window) else {
            return Ok(());
        };
        self.compressed.clear();
        codec::frame::compress_frame(&open.buf, ZSTD_LEVEL, &mut self.compressed);
        self.chunks_file.write_all(&self.compressed)?;
        self.frames[open.no as usize] = (
            self.chunks_file_len,
            self.compressed.len() as u64,
            open.buf.len() as u64,
        );
        self.chunks_file_len += self.compressed.len() as u64;
        Ok(())
    }

    /// Number of samples added so far.
    pub(crate) fn num_samples(&self) -> u64 {
        self.stats.num_samples
    }

    /// Writes the index and meta and makes the block durable. Returns `None`
    /// (and writes nothing) when no sample was added.
    pub(crate) fn finish(mut self, compaction: BlockCompaction) -> io::Result<Option<BlockMeta>> {
        if self.stats.num_samples == 0 {
            drop(self.chunks_file);
            self.store.delete_all(&self.dir)?;
            return Ok(None);
        }
        while let Some(&window) = self.open_frames.keys().next() {
            self.flush_frame(window)?;
        }
        let raw_index = self.encode_index();
        // The index is stored as one zstd frame: symbol refs and varint
        // deltas shrink to about a third (measured on node_exporter-like data).
        let mut index = Vec::new();
        codec::frame::compress_frame(&raw_index, ZSTD_LEVEL, &mut index);
        drop(raw_index);
        self.chunks_file.finish()?;
        let mut f = self.store.create(&format!("{}/index", self.dir))?;
        f.write_all(&index)?;
        f.finish()?;
        self.stats.num_bytes = self.chunks_file_len + index.len() as u64;
        let mut compaction = compaction;
        if compaction.sources.is_empty() {
            compaction.sources.push(self.ulid.clone());
        }
        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time: self.min_t,
            max_time: self.max_t,
            stats: self.stats.clone(),
            compaction,
            version: FORMAT_VERSION,
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        let mut f = self.store.create(&format!("{}/meta.json", self.dir))?;
        f.write_all(&json)?;
        f.finish()?;
        self.store.commit_dir(&self.dir)?;
        Ok(Some(meta))
    }

    /// Finishes the index in place after the series section, freeing the
    /// postings as they are copied (a cut of a million series would
    /// otherwise hold them and the encoded index at once).
    fn encode_index(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.index);
        let series_offsets = std::mem::take(&mut self.series_offsets);
        let postings = std::mem::take(&mut self.postings);
        let postings_bytes: usize = postings.values().map(|p| p.bytes.len() + 5).sum();
        out.reserve_exact(
            postings_bytes + 3 * series_offsets.len() + 20 * postings.len() + 30 * self.frames.len() + (64 << 10),
        );
        let mut toc = [0u64; 6];
        toc[0] = (INDEX_MAGIC.len() + 1) as u64;
        toc[1] = self.series_start as u64;

        toc[2] = out.len() as u64;
        let mut postings_offsets: Vec<((u32, u32), u64)> = Vec::with_capacity(postings.len());
        for (pair, list) in postings {
            postings_offsets.push((pair, out.len() as u64 - toc[2]));
            put_uvarint(&mut out, u64::from(list.count));
            out.extend_from_slice(&list.bytes);
        }

        toc[3] = out.len() as u64;
        let mut by_name: BTreeMap<u32, Vec<(u32, u64)>> = BTreeMap::new();
        for ((n, v), off) in postings_offsets {
            by_name.entry(n).or_default().push((v, off));
        }
        put_uvarint(&mut out, by_name.len() as u64);
        for (n, values) in by_name {
            put_uvarint(&mut out, u64::from(n));
            put_uvarint(&mut out, values.len() as u64);
            for (v, off) in values {
                put_uvarint(&mut out, u64::from(v));
                put_uvarint(&mut out, off);
            }
        }

        toc[4] = out.len() as u64;
        put_uvarint(&mut out, self.frames.len() as u64);
        for &(off, clen, dlen) in &self.frames {
            put_uvarint(&mut out, off);
            put_uvarint(&mut out, clen);
            put_uvarint(&mut out, dlen);
        }

        toc[5] = out.len() as u64;
        put_uvarint(&mut out, series_offsets.len() as u64);
        let mut prev = 0;
        for off in series_offsets {
            put_uvarint(&mut out, off - prev);
            prev = off;
        }

        for t in toc {
            out.extend_from_slice(&t.to_le_bytes());
        }
        let crc = crc32c_of(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(INDEX_MAGIC);
        out
    }
}

/// A postings list being built: series ids arrive in increasing order and
/// are stored as the index stores them, uvarint deltas from 0.
#[derive(Default)]
struct PostingsBuilder {
    bytes: Vec<u8>,
    last: u32,
    count: u32,
}

impl PostingsBuilder {
    fn push(&mut self, id: u32) {
        debug_assert!(self.count == 0 || id > self.last);
        put_uvarint(&mut self.bytes, u64::from(id - self.last));
        self.last = id;
        self.count += 1;
    }
}

/// Appends one series entry of the index (layout in `docs/format/block.md`).
fn encode_series_entry(labels: &[(u32, u32)], chunks: &[ChunkMeta], out: &mut Vec<u8>) {
    put_uvarint(out, labels.len() as u64);
    for &(n, v) in labels {
        put_uvarint(out, u64::from(n));
        put_uvarint(out, u64::from(v));
    }
    put_uvarint(out, chunks.len() as u64);
    let mut prev_max = 0i64;
    let mut prev_frame = 0u64;
    for (i, c) in chunks.iter().enumerate() {
        if i == 0 {
            put_varint(out, c.min_t);
        } else {
            put_varint(out, c.min_t - prev_max);
        }
        put_uvarint(out, (c.max_t - c.min_t) as u64);
        // Signed: a series' later window may sit in a frame opened earlier.
        put_varint(out, c.frame as i64 - prev_frame as i64);
        put_uvarint(out, u64::from(c.offset));
        put_uvarint(out, u64::from(c.num_samples));
        prev_max = c.max_t;
        prev_frame = c.frame;
    }
}

pub(crate) fn crc32c_of(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

/// Splits a series' samples into block chunks: at most
/// [`MAX_BLOCK_CHUNK_SAMPLES`] samples, never across a
/// [`BLOCK_CHUNK_RANGE_MS`] boundary.
fn split_chunks(samples: &[Sample]) -> impl Iterator<Item = &[Sample]> {
    let mut rest = samples;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let window = first.t.div_euclid(BLOCK_CHUNK_RANGE_MS);
        let n = rest
            .iter()
            .take(MAX_BLOCK_CHUNK_SAMPLES)
            .take_while(|s| s.t.div_euclid(BLOCK_CHUNK_RANGE_MS) == window)
            .count();
        let (part, tail) = rest.split_at(n);
        rest = tail;
        Some(part)
    })
}
