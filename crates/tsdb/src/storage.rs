//! All tenants' databases behind the `storage-api` traits.

use crate::db::{Db, DbOptions, HeadStats};
use crate::querier::DbQuerier;
use crate::TsdbError;
use model::TenantId;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use storage_api::{
    AppendReport, MetadataStore, MetricMetadata, Querier, Queryable, RefAppend, SampleAppender, SeriesRef,
    SeriesSamples, StorageError,
};

/// Head statistics for the status endpoint.
pub type TsdbStatus = HeadStats;

/// One [`Db`] per tenant under `<root>/tenants/<tenant>/`, opened at start
/// for tenants that exist and created on first write for new ones.
pub struct Storage {
    root: PathBuf,
    opts: DbOptions,
    tenants: RwLock<HashMap<TenantId, Arc<Db>>>,
    closed: AtomicBool,
}

impl Storage {
    /// Opens every tenant database under `root`.
    pub fn open(root: &Path, opts: DbOptions) -> Result<Arc<Storage>, TsdbError> {
        let tenants_dir = root.join("tenants");
        std::fs::create_dir_all(&tenants_dir)?;
        let mut tenants = HashMap::new();
        for e in std::fs::read_dir(&tenants_dir)? {
            let e = e?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(tenant) = TenantId::new(&name) else {
                tracing::warn!(dir = %e.path().display(), "ignoring directory that is not a valid tenant id");
                continue;
            };
            let db = Db::open(tenant.clone(), &e.path(), opts.clone())?;
            tenants.insert(tenant, db);
        }
        Ok(Arc::new(Storage {
            root: root.to_path_buf(),
            opts,
            tenants: RwLock::new(tenants),
            closed: AtomicBool::new(false),
        }))
    }

    /// The database of `tenant`, created if needed.
    pub fn db(&self, tenant: &TenantId) -> Result<Arc<Db>, TsdbError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(TsdbError::Closed);
        }
        if let Some(db) = self.tenants.read().get(tenant) {
            return Ok(Arc::clone(db));
        }
        let mut tenants = self.tenants.write();
        if let Some(db) = tenants.get(tenant) {
            return Ok(Arc::clone(db));
        }
        let db = Db::open(
            tenant.clone(),
            &self.root.join("tenants").join(tenant.as_str()),
            self.opts.clone(),
        )?;
        tenants.insert(tenant.clone(), Arc::clone(&db));
        Ok(db)
    }

    /// The database of `tenant` if it exists.
    pub fn existing_db(&self, tenant: &TenantId) -> Option<Arc<Db>> {
        self.tenants.read().get(tenant).cloned()
    }

    /// All open databases.
    pub fn all(&self) -> Vec<Arc<Db>> {
        self.tenants.read().values().cloned().collect()
    }

    /// The options every tenant database uses.
    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// Runs maintenance for every tenant.
    pub fn maintain(&self) {
        for db in self.all() {
            if let Err(err) = db.maintain() {
                tracing::error!(tenant = %db.tenant(), %err, "maintenance failed");
            }
        }
    }

    /// Flushes every tenant (see [`Db::flush`]).
    pub fn flush(&self) -> Result<(), TsdbError> {
        for db in self.all() {
            db.flush()?;
        }
        Ok(())
    }

    /// Starts the background threads: maintenance every `interval`, and the
    /// periodic WAL fsync if that policy is configured. They stop after
    /// [`Storage::close`].
    pub fn start_background(self: &Arc<Self>, interval: Duration) {
        let me = Arc::clone(self);
        let spawn = std::thread::Builder::new()
            .name("tsdb-maintenance".into())
            .spawn(move || {
                while !me.closed.load(Ordering::Acquire) {
                    let mut slept = Duration::ZERO;
                    // Wake early when a head is due for a cut, so a fast backfill never
                    // piles hours of samples into memory.
                    while slept < interval
                        && !me.closed.load(Ordering::Acquire)
                        && !me.all().iter().any(|db| db.cut_due())
                    {
                        std::thread::sleep(Duration::from_millis(200));
                        slept += Duration::from_millis(200);
                    }
                    if !me.closed.load(Ordering::Acquire) {
                        me.maintain();
                    }
                }
            });
        if let Err(err) = spawn {
            tracing::error!(%err, "cannot start the maintenance thread");
        }
        if let Some(every) = crate::db::periodic_interval(&self.opts) {
            let me = Arc::clone(self);
            let spawn = std::thread::Builder::new().name("wal-sync".into()).spawn(move || {
                while !me.closed.load(Ordering::Acquire) {
                    std::thread::sleep(every);
                    for db in me.all() {
                        if let Err(err) = db.sync_wal() {
                            tracing::error!(tenant = %db.tenant(), %err, "WAL fsync failed");
                        }
                    }
                }
            });
            if let Err(err) = spawn {
                tracing::error!(%err, "cannot start the WAL sync thread");
            }
        }
    }

    /// Stops accepting writes and checkpoints every tenant so that the next
    /// start is fast.
    pub fn close(&self) -> Result<(), TsdbError> {
        self.closed.store(true, Ordering::Release);
        for db in self.all() {
            db.close()?;
        }
        Ok(())
    }
}

impl SampleAppender for Storage {
    fn append(&self, tenant: &TenantId, batch: Vec<SeriesSamples>) -> Result<AppendReport, StorageError> {
        Ok(self.db(tenant)?.append(batch)?)
    }

    /// True unless every append waits for an fsync ([`wal::FsyncPolicy::Always`]).
    fn appends_without_waiting(&self) -> bool {
        !matches!(self.opts.wal.fsync, wal::FsyncPolicy::Always)
    }

    fn append_by_ref(
        &self,
        tenant: &TenantId,
        batch: &[RefAppend<'_>],
        new_refs: &mut Vec<(usize, SeriesRef)>,
    ) -> Result<AppendReport, StorageError> {
        Ok(self.db(tenant)?.append_by_ref(batch, new_refs)?)
    }
}

impl Queryable for Storage {
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError> {
        match self.existing_db(tenant) {
            Some(db) => Ok(Arc::new(DbQuerier::new(db))),
            // A tenant never written to has no series.
            None => storage_api::MemStorage::new().querier(tenant),
        }
    }
}

impl MetadataStore for Storage {
    fn put_metadata(&self, tenant: &TenantId, metadata: Vec<MetricMetadata>) {
        match self.db(tenant).and_then(|db| db.put_metadata(metadata)) {
            Ok(()) => {}
            Err(err) => tracing::warn!(%tenant, %err, "cannot store metric metadata"),
        }
    }

    fn metadata(&self, tenant: &TenantId, metric: Option<&str>, limit: Option<usize>) -> Vec<MetricMetadata> {
        self.existing_db(tenant)
            .map(|db| db.metadata(metric, limit))
            .unwrap_or_default()
    }
}
