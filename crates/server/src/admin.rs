//! The storage side of the admin and status endpoints, and the storage's
//! self-metrics.

use api::{AdminHandler, MetricsWriter, TsdbStatus};
use model::{Matcher, TenantId};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use storage_api::StorageError;

pub(crate) struct Admin {
    storage: Arc<tsdb::Storage>,
    data_dir: PathBuf,
}

impl Admin {
    pub(crate) fn new(storage: Arc<tsdb::Storage>, data_dir: PathBuf) -> Self {
        crate::process::start_time_seconds();
        Admin { storage, data_dir }
    }
}

fn err(e: tsdb::TsdbError) -> StorageError {
    e.into()
}

impl AdminHandler for Admin {
    fn flush(&self) -> Result<(), StorageError> {
        self.storage.flush().map_err(err)
    }

    fn snapshot(&self, skip_head: bool) -> Result<String, StorageError> {
        let name = format!(
            "{}-{:016x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            rand::random::<u64>()
        );
        let dir = self.data_dir.join("snapshots").join(&name);
        for db in self.storage.all() {
            db.snapshot(&dir.join(db.tenant().as_str()), skip_head).map_err(err)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(name)
    }

    fn delete_series(&self, tenant: &TenantId, matchers: &[Matcher], start: i64, end: i64) -> Result<(), StorageError> {
        match self.storage.existing_db(tenant) {
            Some(db) => db.delete_series(matchers, start, end).map_err(err),
            None => Ok(()),
        }
    }

    fn clean_tombstones(&self) -> Result<(), StorageError> {
        for db in self.storage.all() {
            db.clean_tombstones().map_err(err)?;
        }
        Ok(())
    }

    fn tsdb_status(&self, tenant: &TenantId, limit: usize) -> TsdbStatus {
        let Some(db) = self.storage.existing_db(tenant) else {
            return TsdbStatus::default();
        };
        let s = db.head_stats(limit);
        TsdbStatus {
            num_series: s.num_series as u64,
            num_label_pairs: s.num_label_pairs as u64,
            chunk_count: s.num_chunks as u64,
            min_time: s.min_time,
            max_time: s.max_time,
            series_count_by_metric_name: s.series_count_by_metric_name,
            label_value_count_by_label_name: s.label_value_count_by_label_name,
            memory_in_bytes_by_label_name: s.memory_in_bytes_by_label_name,
            series_count_by_label_value_pair: s.series_count_by_label_value_pair,
        }
    }

    fn write_metrics(&self, w: &mut MetricsWriter) {
        let dbs = self.storage.all();
        let per_tenant = |w: &mut MetricsWriter, name: &str, kind: &str, help: &str, f: &dyn Fn(&tsdb::Db) -> f64| {
            w.family(name, kind, help);
            for db in &dbs {
                w.sample(name, &[("tenant", db.tenant().as_str())], f(db));
            }
        };
        per_tenant(
            w,
            "haetae_tsdb_samples_appended_total",
            "counter",
            "Samples stored.",
            &|db| db.stats().samples_appended.load(Ordering::Relaxed) as f64,
        );
        w.family(
            "haetae_tsdb_samples_rejected_total",
            "counter",
            "Samples refused by the storage, by reason.",
        );
        for db in &dbs {
            for (reason, n) in db.stats().samples_rejected.lock().iter() {
                w.sample(
                    "haetae_tsdb_samples_rejected_total",
                    &[("tenant", db.tenant().as_str()), ("reason", reason)],
                    *n as f64,
                );
            }
        }
        per_tenant(w, "haetae_tsdb_head_series", "gauge", "Series in the head.", &|db| {
            db.head_series() as f64
        });
        per_tenant(
            w,
            "haetae_tsdb_head_series_created_total",
            "counter",
            "Series created in the head.",
            &|db| db.stats().series_created.load(Ordering::Relaxed) as f64,
        );
        per_tenant(
            w,
            "haetae_tsdb_head_series_removed_total",
            "counter",
            "Series removed from the head.",
            &|db| db.stats().series_removed.load(Ordering::Relaxed) as f64,
        );
        per_tenant(w, "haetae_tsdb_blocks_loaded", "gauge", "Blocks open.", &|db| {
            db.blocks().len() as f64
        });
        per_tenant(
            w,
            "haetae_tsdb_head_cuts_total",
            "counter",
            "Blocks cut from the head.",
            &|db| db.stats().head_cuts.load(Ordering::Relaxed) as f64,
        );
        per_tenant(
            w,
            "haetae_tsdb_compactions_total",
            "counter",
            "Block compactions run.",
            &|db| db.stats().compactions.load(Ordering::Relaxed) as f64,
        );
        per_tenant(
            w,
            "haetae_tsdb_compaction_duration_seconds_total",
            "counter",
            "Time spent cutting and compacting blocks.",
            &|db| db.stats().compaction_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        );
        per_tenant(
            w,
            "haetae_tsdb_retention_deletions_total",
            "counter",
            "Blocks deleted by retention.",
            &|db| db.stats().retention_deletions.load(Ordering::Relaxed) as f64,
        );
        per_tenant(
            w,
            "haetae_tsdb_disk_bytes",
            "gauge",
            "Bytes of blocks, WAL and checkpoints on disk.",
            &|db| db.disk_bytes() as f64,
        );
        per_tenant(
            w,
            "haetae_tsdb_wal_written_bytes_total",
            "counter",
            "Bytes appended to the WAL.",
            &|db| db.wal_stats().bytes_written.load(Ordering::Relaxed) as f64,
        );
        w.family(
            "haetae_tsdb_wal_fsync_duration_seconds",
            "histogram",
            "Latency of WAL fsync calls.",
        );
        for db in &dbs {
            let s = db.wal_stats();
            let t = db.tenant().as_str();
            for (i, le) in tsdb::FSYNC_BUCKETS_SECONDS.iter().enumerate() {
                let n = s.fsync_buckets[i].load(Ordering::Relaxed) as f64;
                w.sample(
                    "haetae_tsdb_wal_fsync_duration_seconds_bucket",
                    &[("tenant", t), ("le", &le.to_string())],
                    n,
                );
            }
            let count = s.fsyncs.load(Ordering::Relaxed) as f64;
            w.sample(
                "haetae_tsdb_wal_fsync_duration_seconds_bucket",
                &[("tenant", t), ("le", "+Inf")],
                count,
            );
            w.sample(
                "haetae_tsdb_wal_fsync_duration_seconds_sum",
                &[("tenant", t)],
                s.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            );
            w.sample("haetae_tsdb_wal_fsync_duration_seconds_count", &[("tenant", t)], count);
        }
        let frames = self.storage.options().frame_cache.stats();
        w.single(
            "haetae_tsdb_frame_cache_hits_total",
            "counter",
            "Block frames queries found decompressed in the frame cache.",
            frames.hits as f64,
        );
        w.single(
            "haetae_tsdb_frame_cache_misses_total",
            "counter",
            "Block frames queries read and decompressed.",
            frames.misses as f64,
        );
        w.single(
            "haetae_tsdb_frame_cache_bytes",
            "gauge",
            "Decompressed bytes held by the frame cache.",
            frames.bytes as f64,
        );
        if let Some(cpu) = crate::process::cpu_seconds() {
            w.single(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
        }
        if let Some((rss, peak)) = crate::process::memory() {
            w.single(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss,
            );
            w.single(
                "haetae_process_peak_resident_memory_bytes",
                "gauge",
                "Peak resident memory size in bytes.",
                peak,
            );
        }
        w.single(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            crate::process::start_time_seconds(),
        );
    }
}
