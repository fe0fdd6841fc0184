//! Turning the head into blocks, merging blocks, retention, snapshots.
//!
//! Compaction levels: a block cut from the head covers one block range
//! (default 30 min). Blocks are merged into aligned windows of 4×, 16× and
//! 48× that range (2 h, 8 h, 24 h by default) once the window is entirely
//! older than the head, and overlapping blocks (left by out-of-order
//! samples) are merged right away. A merge reads its inputs series by series
//! in label order, so memory stays bounded by one series at a time.

use crate::block::reader::{BlockReader, FrameCache};
use crate::block::writer::BlockWriter;
use crate::block::BlockCompaction;
use crate::db::Db;
use crate::head::series::sort_dedup;
use crate::packed;
use crate::postings::PostingsSource;
use crate::store::BlockStore;
use crate::TsdbError;
use model::{Labels, Sample};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

const BLOCKS: &str = "blocks";

/// Multiples of the block range that compaction merges into.
const LEVEL_MULTIPLES: [i64; 3] = [4, 16, 48];

/// Opens every block under `blocks/`. Incomplete ones (no `meta.json`) are
/// removed; corrupt ones are renamed `<id>.corrupt` and skipped.
pub(crate) fn load_blocks(store: &Arc<dyn BlockStore>, dir: &Path) -> Result<Vec<Arc<BlockReader>>, TsdbError> {
    let mut out = Vec::new();
    for name in store.list(BLOCKS)? {
        if name.ends_with(".corrupt") {
            continue;
        }
        let path = format!("{BLOCKS}/{name}");
        if store.list(&path)?.iter().all(|f| f != "meta.json") {
            tracing::warn!(block = %path, "removing incomplete block");
            store.delete_all(&path)?;
            continue;
        }
        match BlockReader::open(Arc::clone(store), &path) {
            Ok(b) => out.push(Arc::new(b)),
            Err(err) => {
                tracing::error!(block = %path, %err, "block is corrupt; moving it aside and serving the rest");
                let from = dir.join(&path);
                let _ = std::fs::rename(&from, dir.join(format!("{path}.corrupt")));
            }
        }
    }
    out.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    Ok(out)
}

/// Tells whether the head spans more than 1.5 block ranges.
pub(crate) fn cut_due(db: &Db) -> bool {
    let range = db.opts.block_range_ms;
    let min = db.head.min_t.load(Ordering::Relaxed);
    let max = db.head.max_t.load(Ordering::Relaxed);
    min != i64::MAX && max != i64::MIN && max - min > range + range / 2
}

/// Cuts the head while it spans more than 1.5 block ranges.
pub(crate) fn cut_head_if_due(db: &Db) -> Result<(), TsdbError> {
    let range = db.opts.block_range_ms;
    while cut_due(db) {
        let min = db.head.min_t.load(Ordering::Relaxed);
        let boundary = (min.div_euclid(range) + 1) * range;
        let _guard = db.maintenance.lock();
        cut(db, boundary)?;
    }
    Ok(())
}

/// Persists the whole head and compacts everything compactable.
pub(crate) fn flush(db: &Db) -> Result<(), TsdbError> {
    // Whole block ranges first, so retention can later drop them one by one.
    cut_head_if_due(db)?;
    {
        let _guard = db.maintenance.lock();
        let max = db.head.max_t.load(Ordering::Relaxed);
        if max != i64::MIN {
            cut(db, max.saturating_add(1))?;
        }
    }
    compact(db)
}

/// Writes everything in the head below `boundary` into a new block, drops it
/// from the head, then checkpoints the WAL. Caller holds `db.maintenance`.
fn cut(db: &Db, boundary: i64) -> Result<(), TsdbError> {
    let start = Instant::now();
    let segment = db.wal.rotate()?;
    let mut series = db.head.begin_cut(boundary);
    series.sort_by(|a, b| packed::cmp(&a.labels, &b.labels));
    let mut symbols = BTreeSet::new();
    for s in &series {
        for (n, v) in packed::pairs(&s.labels) {
            if !symbols.contains(n) {
                symbols.insert(n.to_string());
            }
            if !symbols.contains(v) {
                symbols.insert(v.to_string());
            }
        }
    }
    let mut writer = BlockWriter::new(&*db.store, BLOCKS, symbols)?;
    writer.reserve_series(series.len());
    for s in &series {
        let samples = s.data.lock().take_for_cut(boundary, &db.head.chunks);
        if samples.is_empty() {
            continue;
        }
        let labels = packed::unpack(&s.labels);
        writer.add_series(&labels, &samples)?;
    }
    drop(series);
    let num_samples = writer.num_samples();
    let meta = writer.finish(BlockCompaction {
        level: 1,
        sources: Vec::new(),
    })?;
    if let Some(meta) = &meta {
        let block = BlockReader::open(Arc::clone(&db.store), &format!("{BLOCKS}/{}", meta.ulid))?;
        add_block(db, Arc::new(block));
    }
    let removed = db.head.finish_cut(boundary);
    db.stats.series_removed.fetch_add(removed as u64, Ordering::Relaxed);
    db.stats.head_cuts.fetch_add(1, Ordering::Relaxed);
    crate::replay::checkpoint(db, segment)?;
    db.stats
        .compaction_nanos
        .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    tracing::info!(
        tenant = %db.tenant,
        boundary,
        samples = num_samples,
        block = meta.as_ref().map(|m| m.ulid.as_str()).unwrap_or("-"),
        series_removed = removed,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "cut head into block"
    );
    Ok(())
}

fn add_block(db: &Db, block: Arc<BlockReader>) {
    let mut blocks = db.blocks.write();
    blocks.push(block);
    blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
}

/// Picks groups of blocks to merge: overlapping blocks first, then blocks
/// sharing a complete aligned window of a higher level.
fn plan(db: &Db) -> Option<Vec<Arc<BlockReader>>> {
    let blocks = db.blocks.read().clone();
    // Overlaps.
    let mut group: Vec<Arc<BlockReader>> = Vec::new();
    let mut group_max = i64::MIN;
    for b in &blocks {
        if !group.is_empty() && b.meta.min_time <= group_max {
            group.push(Arc::clone(b));
            group_max = group_max.max(b.meta.max_time);
            continue;
        }
        if group.len() > 1 {
            return Some(group);
        }
        group = vec![Arc::clone(b)];
        group_max = b.meta.max_time;
    }
    if group.len() > 1 {
        return Some(group);
    }
    // A window is complete once the head holds nothing inside it.
    let head_min = db.head.min_t.load(Ordering::Relaxed);
    let max_range = if db.opts.retention_ms > 0 {
        (db.opts.retention_ms / 10).max(db.opts.block_range_ms)
    } else {
        i64::MAX
    };
    for mult in LEVEL_MULTIPLES {
        let range = db.opts.block_range_ms.saturating_mul(mult);
        if range > max_range {
            break;
        }
        let mut i = 0;
        while i < blocks.len() {
            let w = blocks[i].meta.min_time.div_euclid(range);
            let mut j = i;
            while j < blocks.len()
                && blocks[j].meta.min_time.div_euclid(range) == w
                && blocks[j].meta.max_time.div_euclid(range) == w
            {
                j += 1;
            }
            let window_end = (w + 1).saturating_mul(range);
            if j - i > 1 && window_end <= head_min {
                return Some(blocks[i..j].to_vec());
            }
            i = j.max(i + 1);
        }
    }
    None
}

/// Runs compaction until nothing is left to merge.
pub(crate) fn compact(db: &Db) -> Result<(), TsdbError> {
    loop {
        let _guard = db.maintenance.lock();
        let Some(group) = plan(db) else { return Ok(()) };
        merge(db, &group, false)?;
    }
}

/// Merges `group` into one block (applying tombstones if `apply_tombstones`)
/// and replaces them. Caller holds `db.maintenance`.
fn merge(db: &Db, group: &[Arc<BlockReader>], apply_tombstones: bool) -> Result<(), TsdbError> {
    let start = Instant::now();
    let tombstones = if apply_tombstones {
        db.tombstones.read().clone()
    } else {
        Vec::new()
    };
    let mut symbols = BTreeSet::new();
    for b in group {
        for name in b.label_names()? {
            for v in b.label_values(&name) {
                symbols.insert(v);
            }
            symbols.insert(name);
        }
    }
    let mut writer = BlockWriter::new(&*db.store, BLOCKS, symbols)?;
    // Each input's series are sorted by labels: merge them k-way.
    let mut cursors: Vec<(usize, u64, usize)> = group.iter().enumerate().map(|(i, b)| (i, 0, b.num_series())).collect();
    let mut caches: Vec<FrameCache> = group.iter().map(|_| FrameCache::default()).collect();
    let mut heads: Vec<Option<(Labels, Vec<crate::block::reader::ChunkRef>)>> = Vec::with_capacity(group.len());
    for (i, b) in group.iter().enumerate() {
        heads.push(if cursors[i].2 > 0 { Some(b.series(0)?) } else { None });
    }
    let mut samples: Vec<Sample> = Vec::new();
    while let Some(min_labels) = heads.iter().flatten().map(|(l, _)| l).min().cloned() {
        samples.clear();
        let mut sources = 0;
        for i in 0..group.len() {
            if heads[i].as_ref().is_some_and(|(l, _)| *l == min_labels) {
                if let Some((_, chunks)) = heads[i].take() {
                    for c in &chunks {
                        group[i].read_chunk(c, &mut caches[i], i64::MIN, i64::MAX, &mut samples)?;
                    }
                }
                sources += 1;
                let cur = &mut cursors[i];
                cur.1 += 1;
                if (cur.1 as usize) < cur.2 {
                    heads[i] = Some(group[i].series(cur.1)?);
                }
            }
        }
        if sources > 1 {
            sort_dedup(&mut samples);
        }
        for t in &tombstones {
            if t.matchers
                .iter()
                .all(|m| m.matches(min_labels.get(m.name()).unwrap_or("")))
            {
                samples.retain(|s| s.t < t.start || s.t > t.end);
            }
        }
        writer.add_series(&min_labels, &samples)?;
    }
    let level = group.iter().map(|b| b.meta.compaction.level).max().unwrap_or(1) + 1;
    let mut sources: Vec<String> = group.iter().flat_map(|b| b.meta.compaction.sources.clone()).collect();
    sources.sort();
    sources.dedup();
    let meta = writer.finish(BlockCompaction { level, sources })?;
    let new_block = match &meta {
        Some(m) => Some(Arc::new(BlockReader::open(
            Arc::clone(&db.store),
            &format!("{BLOCKS}/{}", m.ulid),
        )?)),
        None => None,
    };
    {
        let mut blocks = db.blocks.write();
        blocks.retain(|b| !group.iter().any(|g| Arc::ptr_eq(g, b)));
        if let Some(b) = new_block {
            blocks.push(b);
        }
        blocks.sort_by_key(|b| (b.meta.min_time, b.meta.max_time));
    }
    // Queriers that took the old blocks may still read them: their files go
    // when the last reference does.
    for b in group {
        b.delete_when_unused();
    }
    db.stats.compactions.fetch_add(1, Ordering::Relaxed);
    db.stats
        .compaction_nanos
        .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    tracing::info!(
        tenant = %db.tenant,
        inputs = group.len(),
        output = meta.as_ref().map(|m| m.ulid.as_str()).unwrap_or("-"),
        level,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "compacted blocks"
    );
    Ok(())
}

/// Deletes blocks past the retention time or beyond the size budget.
pub(crate) fn apply_retention(db: &Db) -> Result<(), TsdbError> {
    let _guard = db.maintenance.lock();
    let blocks = db.blocks.read().clone();
    let newest = blocks
        .iter()
        .map(|b| b.meta.max_time)
        .chain(std::iter::once(db.head.max_t.load(Ordering::Relaxed)))
        .max()
        .unwrap_or(i64::MIN);
    let mut doomed: Vec<Arc<BlockReader>> = Vec::new();
    if db.opts.retention_ms > 0 && newest != i64::MIN {
        let cutoff = newest - db.opts.retention_ms;
        doomed.extend(blocks.iter().filter(|b| b.meta.max_time < cutoff).cloned());
    }
    if db.opts.retention_bytes > 0 {
        let mut total = db.store.size("wal").unwrap_or(0);
        let mut sizes: Vec<(Arc<BlockReader>, u64)> = Vec::new();
        for b in &blocks {
            let size = db.store.size(b.dir()).unwrap_or(0);
            total += size;
            sizes.push((Arc::clone(b), size));
        }
        // Oldest first.
        for (b, size) in sizes {
            if total <= db.opts.retention_bytes {
                break;
            }
            if !doomed.iter().any(|d| Arc::ptr_eq(d, &b)) {
                doomed.push(b);
            }
            total = total.saturating_sub(size);
        }
    }
    if doomed.is_empty() {
        return Ok(());
    }
    db.blocks.write().retain(|b| !doomed.iter().any(|d| Arc::ptr_eq(d, b)));
    for b in &doomed {
        tracing::info!(tenant = %db.tenant, block = b.dir(), max_time = b.meta.max_time, "deleting block by retention");
        b.delete_when_unused();
    }
    db.stats
        .retention_deletions
        .fetch_add(doomed.len() as u64, Ordering::Relaxed);
    Ok(())
}

/// Flushes the head, rewrites every block with the tombstones applied and
/// clears them.
pub(crate) fn clean_tombstones(db: &Db) -> Result<(), TsdbError> {
    flush(db)?;
    let _guard = db.maintenance.lock();
    let blocks = db.blocks.read().clone();
    if db.tombstones.read().is_empty() {
        return Ok(());
    }
    for b in blocks {
        merge(db, &[b], true)?;
    }
    let mut list = db.tombstones.write();
    list.clear();
    crate::db::save_tombstones(&db.dir, &list)?;
    Ok(())
}

/// Copies all blocks (hard links where possible) into `dir`, plus the head
/// as one more block unless `skip_head`.
pub(crate) fn snapshot(db: &Db, dir: &Path, skip_head: bool) -> Result<(), TsdbError> {
    let _guard = db.maintenance.lock();
    std::fs::create_dir_all(dir)?;
    for b in db.blocks.read().iter() {
        let src = db.dir.join(b.dir());
        let dst = dir.join(b.meta.ulid.as_str());
        std::fs::create_dir_all(&dst)?;
        for f in ["meta.json", "index", "chunks"] {
            if std::fs::hard_link(src.join(f), dst.join(f)).is_err() {
                std::fs::copy(src.join(f), dst.join(f))?;
            }
        }
    }
    if !skip_head {
        let store = crate::store::LocalStore::new(dir)?;
        let mut series = db.head.all_series();
        series.sort_by(|a, b| packed::cmp(&a.labels, &b.labels));
        let mut symbols = BTreeSet::new();
        for s in &series {
            for (n, v) in packed::pairs(&s.labels) {
                symbols.insert(n.to_string());
                symbols.insert(v.to_string());
            }
        }
        let mut writer = BlockWriter::new(&store, ".", symbols)?;
        for s in &series {
            let samples = s.data.lock().samples(i64::MIN, i64::MAX, &db.head.chunks);
            writer.add_series(&packed::unpack(&s.labels), &samples)?;
        }
        writer.finish(BlockCompaction {
            level: 1,
            sources: Vec::new(),
        })?;
    }
    wal::sync_dir(dir)?;
    Ok(())
}
