//! One tenant's database: options, opening, the append path and deletions.

use crate::block::reader::BlockReader;
use crate::head::Head;
use crate::record;
use crate::store::{BlockStore, LocalStore};
use crate::TsdbError;
use model::{Matcher, TenantId};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use storage_api::MetricMetadata;
use wal::{Wal, WalOptions};

/// How a database behaves. Every field has a production default.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// The head is cut into a block of this range once it spans 1.5 times it.
    /// Head chunks never span a multiple of it. Default 30 minutes: short
    /// enough that one million active series stay under 1 KiB each in memory.
    pub block_range_ms: i64,
    /// A sample older than the newest sample of its series by more than this
    /// is refused; within it, out-of-order samples are accepted. Default 1
    /// hour. (A series' first samples may be older, down to the retention.)
    pub out_of_order_window_ms: i64,
    /// Samples more than this far ahead of the wall clock are refused. Default 10 minutes.
    pub max_future_ms: i64,
    /// Blocks whose newest sample is older than the newest sample stored
    /// minus this are deleted. Default 15 days; 0 disables.
    pub retention_ms: i64,
    /// When blocks and WAL exceed this many bytes, the oldest blocks are
    /// deleted. 0 disables (the default).
    pub retention_bytes: u64,
    /// Maximum number of series in the head; 0 means unlimited.
    pub max_series: usize,
    /// WAL segment size and fsync policy.
    pub wal: WalOptions,
    /// Decompressed block frames kept for queries. Clones of these options
    /// share it, so one cache serves every tenant of a [`crate::Storage`].
    /// Default: [`crate::DEFAULT_FRAME_CACHE_BYTES`].
    pub frame_cache: Arc<crate::SharedFrameCache>,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            block_range_ms: 30 * 60 * 1000,
            out_of_order_window_ms: 3600 * 1000,
            max_future_ms: 10 * 60 * 1000,
            retention_ms: 15 * 24 * 3600 * 1000,
            retention_bytes: 0,
            max_series: 0,
            wal: WalOptions::default(),
            frame_cache: Arc::new(crate::SharedFrameCache::new(crate::DEFAULT_FRAME_CACHE_BYTES)),
        }
    }
}

/// Counters of one database, read by self-monitoring.
#[derive(Debug, Default)]
pub struct DbStats {
    /// Samples stored.
    pub samples_appended: AtomicU64,
    /// Samples refused, by reason.
    pub samples_rejected: Mutex<HashMap<&'static str, u64>>,
    /// Series created in the head.
    pub series_created: AtomicU64,
    /// Series removed from the head after a cut.
    pub series_removed: AtomicU64,
    /// Blocks cut from the head.
    pub head_cuts: AtomicU64,
    /// Compactions run.
    pub compactions: AtomicU64,
    /// Time spent compacting and cutting, nanoseconds.
    pub compaction_nanos: AtomicU64,
    /// Blocks deleted by retention.
    pub retention_deletions: AtomicU64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
}

/// Cardinality statistics of the head, as `/api/v1/status/tsdb` reports them.
#[derive(Debug, Clone, Default)]
pub struct HeadStats {
    /// Series in the head.
    pub num_series: usize,
    /// Label pairs (name=value) in the head.
    pub num_label_pairs: usize,
    /// Chunks in the head (closed, open and out-of-order).
    pub num_chunks: usize,
    /// Smallest timestamp in the head (`i64::MAX` when empty).
    pub min_time: i64,
    /// Largest timestamp in the head (`i64::MIN` when empty).
    pub max_time: i64,
    /// Top metric names by series count.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// Top label names by number of distinct values.
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Top label names by bytes of their values summed over series.
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// Top label pairs by series count.
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// A deletion request kept until `clean_tombstones` rewrites the blocks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct TombstoneEntry {
    /// `(op, name, value)` with op one of `=`, `!=`, `=~`, `!~`.
    pub(crate) matchers: Vec<(String, String, String)>,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

pub(crate) struct Tombstone {
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) start: i64,
    pub(crate) end: i64,
}

/// One tenant's database.
pub struct Db {
    pub(crate) tenant: TenantId,
    pub(crate) dir: PathBuf,
    pub(crate) opts: DbOptions,
    pub(crate) wal: Wal,
    pub(crate) head: Head,
    pub(crate) store: Arc<dyn BlockStore>,
    /// Open blocks, sorted by min time.
    pub(crate) blocks: RwLock<Vec<Arc<BlockReader>>>,
    pub(crate) tombstones: RwLock<Vec<Arc<Tombstone>>>,
    pub(crate) metadata: RwLock<HashMap<String, MetricMetadata>>,
    pub(crate) stats: DbStats,
    /// Held by whoever cuts, compacts or checkpoints: one at a time.
    pub(crate) maintenance: Mutex<()>,
    /// Unique among the databases of this process; series refs carry it.
    pub(crate) instance_id: u64,
}

/// The source of [`Db::instance_id`].
static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Opens (or creates) the database in `dir`, loading blocks and replaying
    /// the WAL. A torn WAL tail is truncated with a warning; a corrupt block
    /// is moved aside and the rest served.
    pub fn open(tenant: TenantId, dir: &Path, opts: DbOptions) -> Result<Arc<Db>, TsdbError> {
        std::fs::create_dir_all(dir)?;
        // Block index caches of an earlier run (see `block::index_file`).
        match std::fs::remove_dir_all(dir.join(crate::block::index_file::DIR_NAME)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        let store: Arc<dyn BlockStore> = Arc::new(LocalStore::new(dir)?);
        let blocks = crate::compact::load_blocks(&store, dir)?;
        let head = Head::new(opts.block_range_ms, crate::head::HeadChunks::open(dir)?);
        if let Some(max) = blocks.iter().map(|b| b.meta.max_time).max() {
            head.min_inorder_t.store(max.saturating_add(1), Ordering::Relaxed);
        }
        let wal_dir = dir.join("wal");
        let tombstones = load_tombstones(dir)?;
        let (wal, metadata) = crate::replay::replay_and_open(&head, &wal_dir, &opts)?;
        let db = Db {
            tenant,
            dir: dir.to_path_buf(),
            wal,
            opts,
            head,
            store,
            blocks: RwLock::new(blocks),
            tombstones: RwLock::new(tombstones),
            metadata: RwLock::new(metadata),
            stats: DbStats::default(),
            maintenance: Mutex::new(()),
            instance_id: NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed),
        };
        Ok(Arc::new(db))
    }

    /// The tenant this database belongs to.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Counters for self-monitoring.
    pub fn stats(&self) -> &DbStats {
        &self.stats
    }

    /// WAL counters for self-monitoring.
    pub fn wal_stats(&self) -> &wal::WalStats {
        self.wal.stats()
    }

    /// Number of series in the head.
    pub fn head_series(&self) -> usize {
        self.head.num_series()
    }

    /// Open blocks, oldest first.
    pub fn blocks(&self) -> Vec<Arc<BlockReader>> {
        self.blocks.read().clone()
    }

    /// Bytes on disk: blocks, WAL and checkpoints.
    pub fn disk_bytes(&self) -> u64 {
        self.store.size("blocks").unwrap_or(0) + self.store.size("wal").unwrap_or(0)
    }

    /// Bytes of blocks only.
    pub fn block_bytes(&self) -> u64 {
        self.store.size("blocks").unwrap_or(0)
    }

    /// Records metric metadata (kept across restarts through the WAL).
    pub fn put_metadata(&self, md: Vec<MetricMetadata>) -> Result<(), TsdbError> {
        let mut changed = Vec::new();
        {
            let mut map = self.metadata.write();
            for m in md {
                if map.get(&m.metric_family) != Some(&m) {
                    map.insert(m.metric_family.clone(), m.clone());
                    changed.push(m);
                }
            }
        }
        if !changed.is_empty() {
            let mut buf = Vec::new();
            record::encode_metadata(&changed, &mut buf);
            self.wal.append(&[&buf])?;
        }
        Ok(())
    }

    /// Metadata for `metric` (all if `None`), sorted by family.
    pub fn metadata(&self, metric: Option<&str>, limit: Option<usize>) -> Vec<MetricMetadata> {
        let map = self.metadata.read();
        let mut out: Vec<MetricMetadata> = map
            .values()
            .filter(|m| metric.is_none_or(|n| m.metric_family == n))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.metric_family.cmp(&b.metric_family));
        if let Some(l) = limit {
            out.truncate(l);
        }
        out
    }

    /// Marks samples of series matching `matchers` within `start..=end` as
    /// deleted. They disappear from queries at once and from disk on
    /// [`Db::clean_tombstones`].
    pub fn delete_series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<(), TsdbError> {
        if start > end {
            return Err(TsdbError::Invalid(format!("start {start} is after end {end}")));
        }
        let mut list = self.tombstones.write();
        list.push(Arc::new(Tombstone {
            matchers: matchers.to_vec(),
            start,
            end,
        }));
        save_tombstones(&self.dir, &list)?;
        Ok(())
    }

    /// Makes the WAL durable now (the periodic fsync policy calls this).
    pub fn sync_wal(&self) -> Result<(), TsdbError> {
        Ok(self.wal.sync()?)
    }

    /// Cardinality statistics of the head; `limit` entries per top list.
    pub fn head_stats(&self, limit: usize) -> HeadStats {
        let index = self.head.index.read();
        let mut by_metric = Vec::new();
        let mut values_by_name = Vec::new();
        let mut bytes_by_name = Vec::new();
        let mut by_pair = Vec::new();
        let mut num_pairs = 0;
        for (name, values) in index.postings_map() {
            num_pairs += values.len();
            values_by_name.push((name.to_string(), values.len() as u64));
            let mut bytes = 0u64;
            for (value, refs) in values {
                bytes += (value.len() * refs.len()) as u64;
                if &**name == model::METRIC_NAME {
                    by_metric.push((value.to_string(), refs.len() as u64));
                }
                by_pair.push((format!("{name}={value}"), refs.len() as u64));
            }
            bytes_by_name.push((name.to_string(), bytes));
        }
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let num_series = index.num_series();
        drop(index);
        let num_chunks = self.head.all_series().iter().map(|s| s.data.lock().num_chunks()).sum();
        HeadStats {
            num_series,
            num_label_pairs: num_pairs,
            num_chunks,
            min_time: self.head.min_t.load(Ordering::Relaxed),
            max_time: self.head.max_t.load(Ordering::Relaxed),
            series_count_by_metric_name: top(by_metric),
            label_value_count_by_label_name: top(values_by_name),
            memory_in_bytes_by_label_name: top(bytes_by_name),
            series_count_by_label_value_pair: top(by_pair),
        }
    }

    /// Periodic work: cut the head when it spans 1.5 block ranges, compact,
    /// apply retention. Safe to call at any time from one thread.
    pub fn maintain(&self) -> Result<(), TsdbError> {
        crate::compact::cut_head_if_due(self)?;
        crate::compact::compact(self)?;
        crate::compact::apply_retention(self)?;
        Ok(())
    }

    /// Tells whether the head spans more than 1.5 block ranges and should be cut.
    pub fn cut_due(&self) -> bool {
        crate::compact::cut_due(self)
    }

    /// Persists the whole head as blocks, compacts what can be compacted and
    /// truncates the WAL: afterwards the data directory holds the durable,
    /// compacted bytes.
    pub fn flush(&self) -> Result<(), TsdbError> {
        crate::compact::flush(self)
    }

    /// Writes a checkpoint of the head and truncates the WAL, so the next
    /// start is fast. Called on clean shutdown.
    pub fn close(&self) -> Result<(), TsdbError> {
        let _guard = self.maintenance.lock();
        let segment = self.wal.rotate()?;
        crate::replay::checkpoint(self, segment)?;
        self.wal.sync()?;
        Ok(())
    }

    /// Rewrites blocks without the deleted data and forgets the tombstones.
    pub fn clean_tombstones(&self) -> Result<(), TsdbError> {
        crate::compact::clean_tombstones(self)
    }

    /// Writes a snapshot of all blocks (and, unless `skip_head`, the head as
    /// a block) into `dir`. Returns the snapshot directory name.
    pub fn snapshot(&self, dir: &Path, skip_head: bool) -> Result<(), TsdbError> {
        crate::compact::snapshot(self, dir, skip_head)
    }
}

fn tombstones_path(dir: &Path) -> PathBuf {
    dir.join("tombstones.json")
}

pub(crate) fn tombstone_entry(t: &Tombstone) -> TombstoneEntry {
    TombstoneEntry {
        matchers: t
            .matchers
            .iter()
            .map(|m| {
                let op = match m.op() {
                    model::MatchOp::Equal => "=",
                    model::MatchOp::NotEqual => "!=",
                    model::MatchOp::RegexMatch => "=~",
                    model::MatchOp::RegexNoMatch => "!~",
                };
                (op.to_string(), m.name().to_string(), m.value().to_string())
            })
            .collect(),
        start: t.start,
        end: t.end,
    }
}

pub(crate) fn save_tombstones(dir: &Path, list: &[Arc<Tombstone>]) -> Result<(), TsdbError> {
    let entries: Vec<TombstoneEntry> = list.iter().map(|t| tombstone_entry(t)).collect();
    let json = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
    let tmp = dir.join("tombstones.json.tmp");
    std::fs::write(&tmp, json)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, tombstones_path(dir))?;
    wal::sync_dir(dir)?;
    Ok(())
}

fn load_tombstones(dir: &Path) -> Result<Vec<Arc<Tombstone>>, TsdbError> {
    let path = tombstones_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |reason: String| TsdbError::Corrupted {
        path: path.display().to_string(),
        reason,
    };
    let entries: Vec<TombstoneEntry> = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut out = Vec::new();
    for e in entries {
        let mut matchers = Vec::new();
        for (op, name, value) in e.matchers {
            let op = match op.as_str() {
                "=" => model::MatchOp::Equal,
                "!=" => model::MatchOp::NotEqual,
                "=~" => model::MatchOp::RegexMatch,
                "!~" => model::MatchOp::RegexNoMatch,
                other => return Err(corrupt(format!("unknown matcher op {other:?}"))),
            };
            matchers.push(Matcher::new(op, name, value).map_err(|e| corrupt(e.to_string()))?);
        }
        out.push(Arc::new(Tombstone {
            matchers,
            start: e.start,
            end: e.end,
        }));
    }
    Ok(out)
}

/// How often the periodic fsync policy syncs, if it is in force.
pub(crate) fn periodic_interval(opts: &DbOptions) -> Option<Duration> {
    match opts.wal.fsync {
        wal::FsyncPolicy::Periodic(d) => Some(d),
        _ => None,
    }
}

impl Db {
    /// A querier over this database as it is now.
    pub fn querier(self: &Arc<Self>) -> Arc<dyn storage_api::Querier> {
        Arc::new(crate::querier::DbQuerier::new(Arc::clone(self)))
    }
}
