//! Rebuilding the head at start-up (checkpoint, then WAL segments) and
//! writing checkpoints.
//!
//! A checkpoint is a directory `wal/checkpoint.NNNNNNNN` holding WAL-framed
//! records (series, XOR chunks, out-of-order samples, metadata) that
//! describe the head as it was at or after the moment segment `N` was
//! started. Replay loads it, then every segment numbered `N` or above.
//! Records are applied idempotently (a sample already present is skipped),
//! because the checkpoint may already contain what the later segments hold.

use crate::db::{Db, DbOptions};
use crate::head::{Head, MemSeries, SeriesData};
use crate::record::{self, Record};
use crate::TsdbError;
use ahash::AHashMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use storage_api::MetricMetadata;
use wal::{FsyncPolicy, Wal, WalOptions};

const CHECKPOINT_PREFIX: &str = "checkpoint.";

fn checkpoint_dir(wal_dir: &Path, segment: u64) -> PathBuf {
    wal_dir.join(format!("{CHECKPOINT_PREFIX}{segment:08}"))
}

/// Checkpoints in `wal_dir`, ascending, complete ones only.
fn list_checkpoints(wal_dir: &Path) -> Result<Vec<u64>, TsdbError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(wal_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_prefix(CHECKPOINT_PREFIX) {
            if let Ok(n) = n.parse::<u64>() {
                out.push(n);
            } else if n.ends_with(".tmp") {
                // An interrupted checkpoint: never complete, never read.
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

struct Replayer<'a> {
    head: &'a Head,
    series: AHashMap<u64, Arc<MemSeries>>,
    metadata: HashMap<String, MetricMetadata>,
    unknown_refs: u64,
    samples: u64,
    corrupt_records: u64,
}

impl Replayer<'_> {
    fn apply(&mut self, buf: &[u8]) -> Result<(), TsdbError> {
        let rec = match record::decode(buf) {
            Ok(r) => r,
            Err(err) => {
                // The frame's checksum was fine, so this is a bug or a newer format: skip it.
                self.corrupt_records += 1;
                tracing::warn!(%err, "skipping undecodable WAL record");
                return Ok(());
            }
        };
        match rec {
            Record::Series(list) => {
                for (r, packed) in list {
                    let s = self.head.insert_replayed(r, packed);
                    self.series.insert(r, s);
                }
            }
            Record::Samples(samples) => {
                let chunk_range = self.head.chunk_range;
                let min_inorder = self.head.min_inorder_t.load(Ordering::Relaxed);
                let (mut lo, mut hi) = (i64::MAX, i64::MIN);
                for s in samples {
                    let Some(series) = self.series.get(&s.series_ref) else {
                        self.unknown_refs += 1;
                        continue;
                    };
                    let mut data = series.data.lock();
                    match data.last_t() {
                        Some(last) if s.t <= last => {
                            if data.in_order_value_at(s.t, &self.head.chunks).is_none() {
                                data.insert_ooo(s.t, s.v);
                            }
                        }
                        _ if s.t < min_inorder => {
                            data.insert_ooo(s.t, s.v);
                        }
                        _ => data.append_in_order(s.t, s.v, chunk_range, &self.head.chunks),
                    }
                    lo = lo.min(s.t);
                    hi = hi.max(s.t);
                    self.samples += 1;
                }
                if lo <= hi {
                    self.head.observe(lo, hi);
                }
            }
            Record::Metadata(md) => {
                for m in md {
                    self.metadata.insert(m.metric_family.clone(), m);
                }
            }
            Record::Chunk {
                series_ref,
                data: bytes,
            } => self.restore(series_ref, |d, head| {
                d.restore_chunk(bytes, head.chunk_range, &head.chunks)
            }),
            Record::ClosedChunk {
                series_ref,
                min_t,
                max_t,
                last_v,
                data: bytes,
            } => self.restore(series_ref, |d, head| {
                d.restore_closed_chunk((min_t, max_t, last_v), bytes, head.chunk_range, &head.chunks)
            }),
        }
        Ok(())
    }

    /// Applies a checkpoint chunk to its series, counting unknown series and
    /// corrupt chunks (logged) instead of failing.
    fn restore(&mut self, series_ref: u64, f: impl FnOnce(&mut SeriesData, &Head) -> Result<(), codec::DecodeError>) {
        let Some(series) = self.series.get(&series_ref) else {
            self.unknown_refs += 1;
            return;
        };
        let mut data = series.data.lock();
        match f(&mut data, self.head) {
            Ok(()) => {
                if let (Some(min), Some((max, _))) = (data.min_time(), data.last()) {
                    self.head.observe(min, max);
                }
            }
            Err(err) => {
                tracing::warn!(%err, series_ref, "skipping corrupt chunk in checkpoint");
                self.corrupt_records += 1;
            }
        }
    }
}

/// Replays the newest checkpoint and the WAL into `head`, then opens the WAL
/// for appending. Returns the WAL and the metric metadata found.
pub(crate) fn replay_and_open(
    head: &Head,
    wal_dir: &Path,
    opts: &DbOptions,
) -> Result<(Wal, HashMap<String, MetricMetadata>), TsdbError> {
    let start = Instant::now();
    std::fs::create_dir_all(wal_dir)?;
    let mut rp = Replayer {
        head,
        series: AHashMap::new(),
        metadata: HashMap::new(),
        unknown_refs: 0,
        samples: 0,
        corrupt_records: 0,
    };
    let checkpoints = list_checkpoints(wal_dir)?;
    let mut first_segment = 0;
    if let Some(&n) = checkpoints.last() {
        let stats = wal::read_records(&checkpoint_dir(wal_dir, n), 0, |r| rp.apply(r))?;
        tracing::info!(checkpoint = n, records = stats.num_records, "loaded WAL checkpoint");
        first_segment = n;
    }
    let stats = wal::read_records(wal_dir, first_segment, |r| rp.apply(r))?;
    if rp.unknown_refs > 0 {
        tracing::warn!(
            samples = rp.unknown_refs,
            "WAL samples referenced unknown series and were skipped"
        );
    }
    tracing::info!(
        segments = stats.num_segments,
        records = stats.num_records,
        bytes = stats.num_bytes,
        samples = rp.samples,
        series = head.num_series(),
        elapsed_ms = start.elapsed().as_millis() as u64,
        "replayed WAL"
    );
    let metadata = rp.metadata;
    let wal = Wal::open(wal_dir, opts.wal)?;
    Ok((wal, metadata))
}

/// Writes a checkpoint of the whole head, valid for replay from segment
/// `segment` on, then deletes older segments and checkpoints.
pub(crate) fn checkpoint(db: &Db, segment: u64) -> Result<(), TsdbError> {
    let start = Instant::now();
    let wal_dir = db.wal.dir().to_path_buf();
    let final_dir = checkpoint_dir(&wal_dir, segment);
    let tmp_dir = wal_dir.join(format!("{CHECKPOINT_PREFIX}{segment:08}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp_dir);
    {
        let cp = Wal::open(
            &tmp_dir,
            WalOptions {
                segment_size: 128 << 20,
                fsync: FsyncPolicy::Never,
            },
        )?;
        let md: Vec<MetricMetadata> = db.metadata.read().values().cloned().collect();
        if !md.is_empty() {
            let mut buf = Vec::new();
            record::encode_metadata(&md, &mut buf);
            cp.append(&[&buf])?;
        }
        let mut series = db.head.all_series();
        series.sort_by_key(|s| s.series_ref);
        let mut buf = Vec::new();
        for group in series.chunks(1024) {
            buf.clear();
            let list: Vec<(u64, &[u8])> = group.iter().map(|s| (s.series_ref, &*s.labels)).collect();
            record::encode_series(&list, &mut buf);
            let mut records = vec![std::mem::take(&mut buf)];
            let mut ooo = Vec::new();
            for s in group {
                let data = s.data.lock();
                data.for_each_chunk(&db.head.chunks, |closed, chunk| {
                    let mut rec = Vec::with_capacity(chunk.len() + 32);
                    match closed {
                        Some(range) => record::encode_closed_chunk(s.series_ref, range, chunk, &mut rec),
                        None => record::encode_chunk(s.series_ref, chunk, &mut rec),
                    }
                    records.push(rec);
                });
                ooo.extend(data.ooo_for_checkpoint().map(|x| record::RefSample {
                    series_ref: s.series_ref,
                    t: x.t,
                    v: x.v,
                }));
            }
            if !ooo.is_empty() {
                let mut rec = Vec::new();
                record::encode_samples(&ooo, &mut rec);
                records.push(rec);
            }
            let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            cp.append(&refs)?;
        }
        cp.sync()?;
    }
    std::fs::rename(&tmp_dir, &final_dir)?;
    wal::sync_dir(&wal_dir)?;
    for old in list_checkpoints(&wal_dir)? {
        if old < segment {
            std::fs::remove_dir_all(checkpoint_dir(&wal_dir, old))?;
        }
    }
    db.wal.truncate_before(segment)?;
    db.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        segment,
        elapsed_ms = start.elapsed().as_millis() as u64,
        "wrote WAL checkpoint"
    );
    Ok(())
}
