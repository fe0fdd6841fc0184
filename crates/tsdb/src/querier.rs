//! Reading one tenant's data: merges the head and every block overlapping
//! the range, per series, and applies tombstones.

use crate::block::reader::{BlockReader, ChunkRef, FrameCache};
use crate::db::{Db, Tombstone};
use crate::head::series::sort_dedup;
use crate::packed;
use crate::postings::{select_postings, PostingsSource};
use crate::TsdbError;
use model::{Labels, Matcher, Sample};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use storage_api::{Querier, SelectHints, Series, StorageError};

/// Where one series' samples in a selected range are.
#[derive(Default)]
struct Sources {
    /// (index of the block among those selected, its chunks in range).
    blocks: Vec<(usize, Vec<ChunkRef>)>,
    /// The head's samples in range.
    head: Vec<Sample>,
}

/// Selections of at least this many series are read on several threads
/// (series lookup in each block's index, then chunk decoding): an instant
/// query over every series of a large block is mostly decompression and
/// decoding, which splits evenly by series.
const PARALLEL_MIN_ITEMS: usize = 512;

/// At most this many threads read one selection.
const MAX_READ_THREADS: usize = 4;

fn read_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(MAX_READ_THREADS)
    })
}

/// Maps `items` with `f`, in contiguous parts on up to [`read_threads`]
/// scoped threads when there are at least [`PARALLEL_MIN_ITEMS`] (the
/// calling thread takes the first part); results keep the items' order.
/// Spawned threads inherit the caller's scheduling priority (the query
/// pool's nice value). The first error in part order is returned.
fn in_parallel<T: Send, R: Send, E: Send>(
    items: Vec<T>,
    f: impl Fn(Vec<T>) -> Result<Vec<R>, E> + Sync,
) -> Result<Vec<R>, E> {
    let threads = read_threads().min(items.len() / (PARALLEL_MIN_ITEMS / 2)).max(1);
    if threads == 1 {
        return f(items);
    }
    let per_part = items.len().div_ceil(threads);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items;
    while rest.len() > per_part {
        let tail = rest.split_off(per_part);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    let f = &f;
    let results: Vec<Result<Vec<R>, E>> = std::thread::scope(|scope| {
        let mut parts = parts.into_iter();
        let first = parts.next();
        let handles: Vec<_> = parts.map(|p| scope.spawn(move || f(p))).collect();
        let mut results = vec![first.map_or_else(|| Ok(Vec::new()), f)];
        for h in handles {
            // A panic in a reader thread is re-raised here, as it would be without threads.
            results.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
        }
        results
    });
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// A querier over one tenant's database. Cheap to create.
///
/// Each read takes the head's data first and the list of blocks after: a
/// head cut adds its block before it drops the data from the head, so in
/// that order no sample can be missed (at worst it is seen twice and
/// merged). A block replaced meanwhile stays readable until the read ends
/// ([`BlockReader::delete_when_unused`]).
pub(crate) struct DbQuerier {
    db: Arc<Db>,
    tombstones: Vec<Arc<Tombstone>>,
}

impl DbQuerier {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        let tombstones = db.tombstones.read().clone();
        DbQuerier { db, tombstones }
    }

    /// The blocks overlapping `start..=end` now.
    fn blocks_in(&self, start: i64, end: i64) -> Vec<Arc<BlockReader>> {
        self.db
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta.max_time >= start && b.meta.min_time <= end)
            .cloned()
            .collect()
    }

    fn apply_tombstones(&self, labels: &Labels, samples: &mut Vec<Sample>) {
        for t in &self.tombstones {
            if t.matchers.iter().all(|m| m.matches(labels.get(m.name()).unwrap_or(""))) {
                samples.retain(|s| s.t < t.start || s.t > t.end);
            }
        }
    }

    fn select_inner(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        let (start, end) = (hints.start, hints.end);
        // The head first, then the blocks (see the type's doc).
        let mut head: Vec<(Labels, Vec<Sample>)> = Vec::new();
        for s in self.db.head.select_series(matchers) {
            let samples = s.data.lock().samples(start, end, &self.db.head.chunks);
            if !samples.is_empty() {
                head.push((packed::unpack(&s.labels), samples));
            }
        }
        let blocks = self.blocks_in(start, end);
        // Every matching series with its sources, each block's chunks in range
        // (with their sample count) and the head series: decoded below series
        // by series straight into one vector of the right capacity.
        let mut per_block: Vec<Vec<(Labels, Vec<ChunkRef>)>> = Vec::with_capacity(blocks.len());
        for block in &blocks {
            let found = in_parallel(select_postings(&**block, matchers), |ids| {
                let mut found = Vec::new();
                for id in ids {
                    let (labels, mut chunks) = block.series(id)?;
                    chunks.retain(|c| c.max_t >= start && c.min_t <= end);
                    if !chunks.is_empty() {
                        found.push((labels, chunks));
                    }
                }
                Ok::<_, TsdbError>(found)
            })?;
            per_block.push(found);
        }
        let sources: Vec<(Labels, Sources)> = match (per_block.iter().filter(|b| !b.is_empty()).count(), head.len()) {
            // One block alone: its series come in label order (ids follow it).
            (1, 0) => {
                let (bi, found) = per_block
                    .into_iter()
                    .enumerate()
                    .find(|(_, b)| !b.is_empty())
                    .unwrap_or_default();
                found
                    .into_iter()
                    .map(|(labels, chunks)| {
                        let src = Sources {
                            blocks: vec![(bi, chunks)],
                            head: Vec::new(),
                        };
                        (labels, src)
                    })
                    .collect()
            }
            _ => {
                let mut merged: BTreeMap<Labels, Sources> = BTreeMap::new();
                for (bi, found) in per_block.into_iter().enumerate() {
                    for (labels, chunks) in found {
                        merged.entry(labels).or_default().blocks.push((bi, chunks));
                    }
                }
                for (labels, samples) in head {
                    merged.entry(labels).or_default().head = samples;
                }
                merged.into_iter().collect()
            }
        };
        // Decoded in parts on several threads when large. Every part adds the
        // samples it loads to one count, checked against the limit after each
        // series, so all parts together stop once the limit is passed.
        let loaded_total = AtomicUsize::new(0);
        let decode = |part: Vec<(Labels, Sources)>| -> Result<Vec<Series>, StorageError> {
            let mut caches: Vec<FrameCache> = blocks
                .iter()
                .map(|_| FrameCache::with_shared(&self.db.opts.frame_cache))
                .collect();
            let mut out = Vec::with_capacity(part.len());
            for (labels, src) in part {
                let capacity = src
                    .blocks
                    .iter()
                    .flat_map(|(_, chunks)| chunks.iter().map(|c| BlockReader::estimate_samples_in(c, start, end)))
                    .sum::<usize>()
                    + src.head.len();
                let mut samples: Vec<Sample> = Vec::with_capacity(capacity);
                for (bi, chunks) in &src.blocks {
                    for c in chunks {
                        blocks[*bi].read_chunk(c, &mut caches[*bi], start, end, &mut samples)?;
                    }
                }
                samples.extend_from_slice(&src.head);
                let loaded = samples.len();
                let total = loaded_total.fetch_add(loaded, Ordering::Relaxed).saturating_add(loaded);
                if let Some(limit) = hints.max_samples {
                    if total > limit {
                        return Err(StorageError::TooManySamples { limit });
                    }
                }
                // Sources are read oldest first; they overlap only after
                // out-of-order writes, and then a later source wins a timestamp.
                if samples.windows(2).any(|w| w[0].t >= w[1].t) {
                    sort_dedup(&mut samples);
                }
                self.apply_tombstones(&labels, &mut samples);
                if !samples.is_empty() {
                    out.push(Series { labels, samples });
                }
            }
            Ok(out)
        };
        in_parallel(sources, decode)
    }

    fn series_inner(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<BTreeSet<Labels>, TsdbError> {
        let mut out = BTreeSet::new();
        // The head first, then the blocks (see the type's doc).
        for s in self.db.head.select_series(matchers) {
            // Oldest and newest samples held, in order or not: no decoding needed.
            let overlaps = {
                let data = s.data.lock();
                matches!((data.min_time(), data.newest_t()), (Some(min), Some(max)) if min <= end && max >= start)
            };
            if overlaps {
                out.insert(packed::unpack(&s.labels));
            }
        }
        for block in self.blocks_in(start, end) {
            for id in select_postings(&*block, matchers) {
                let (labels, chunks) = block.series(id)?;
                if chunks.iter().any(|c| c.max_t >= start && c.min_t <= end) {
                    out.insert(labels);
                }
            }
        }
        if !self.tombstones.is_empty() {
            // A series whose every sample in range is deleted is gone.
            let hints = SelectHints::range(start, end);
            let kept: BTreeSet<Labels> = self
                .select_inner(matchers, &hints)
                .map_err(|e| TsdbError::Invalid(e.to_string()))?
                .into_iter()
                .map(|s| s.labels)
                .collect();
            out.retain(|l| kept.contains(l));
        }
        Ok(out)
    }
}

impl Querier for DbQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        self.select_inner(matchers, hints)
    }

    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>, StorageError> {
        Ok(self.series_inner(matchers, start, end)?.into_iter().collect())
    }

    fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<String>, StorageError> {
        let mut names = BTreeSet::new();
        if matchers.is_empty() && self.tombstones.is_empty() {
            names.extend(self.db.head.label_names());
            for b in self.blocks_in(start, end) {
                names.extend(b.label_names()?);
            }
        } else {
            for l in self.series_inner(matchers, start, end)? {
                names.extend(l.iter().map(|l| l.name.clone()));
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values = BTreeSet::new();
        if matchers.is_empty() && self.tombstones.is_empty() {
            values.extend(self.db.head.label_values(name));
            for b in self.blocks_in(start, end) {
                values.extend(b.label_values(name));
            }
        } else {
            for l in self.series_inner(matchers, start, end)? {
                if let Some(v) = l.get(name) {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}
