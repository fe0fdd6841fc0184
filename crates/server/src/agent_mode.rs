//! `haetae agent`: the host agent. Collects this host's metrics, scrapes
//! the `scrape_configs` of its configuration file and, with `--listen`,
//! receives pushes (remote write, Influx line protocol, OTLP/HTTP, text
//! import) from local programs, and forwards everything to a Haetae server
//! by remote write through an on-disk queue (crate `agent`). No storage
//! engine runs in this mode. OTLP delta sums and histograms are turned into
//! cumulative counters whose totals persist in the data directory, so an
//! agent restart is not read as a counter reset.

use anyhow::Context;
use model::TenantId;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use storage_api::{AppendReport, MetadataStore, MetricMetadata, SampleAppender, SeriesSamples, StorageError};

/// What `haetae agent` was asked to do.
#[derive(Debug, Clone)]
pub struct AgentCommand {
    /// Configuration file with `global`/`scrape_configs` (optional).
    pub config_file: Option<PathBuf>,
    /// Base URL of the Haetae server, e.g. `http://haetae:9201`.
    pub server_url: String,
    /// Directory for the queue and checkpoints.
    pub data_dir: PathBuf,
    /// Host metrics collection interval.
    pub interval: Duration,
    /// Largest on-disk queue, in bytes.
    pub queue_max_bytes: u64,
    /// Where to receive pushes from local programs; `None` receives none.
    pub listen: Option<std::net::SocketAddr>,
}

/// File of the OTLP delta totals, in the agent's data directory (and in
/// `serve`'s).
pub(crate) const DELTA_TOTALS_FILE: &str = "otlp-delta-totals.json";

/// The agent has no storage to administer or query.
struct NoStorage;

impl api::AdminHandler for NoStorage {
    fn flush(&self) -> Result<(), StorageError> {
        Err(unavailable())
    }
    fn snapshot(&self, _skip_head: bool) -> Result<String, StorageError> {
        Err(unavailable())
    }
    fn delete_series(&self, _: &TenantId, _: &[model::Matcher], _: i64, _: i64) -> Result<(), StorageError> {
        Err(unavailable())
    }
    fn clean_tombstones(&self) -> Result<(), StorageError> {
        Err(unavailable())
    }
    fn tsdb_status(&self, _tenant: &TenantId, _limit: usize) -> api::TsdbStatus {
        api::TsdbStatus::default()
    }
    fn write_metrics(&self, _out: &mut api::MetricsWriter) {}
}

fn unavailable() -> StorageError {
    StorageError::Unavailable("haetae agent stores nothing; ask the server".into())
}

/// The push receiver's state: everything goes to `appender` (the agent's queue).
fn push_state(appender: Arc<dyn SampleAppender>, push: Arc<api::PushState>) -> anyhow::Result<api::AppState> {
    let query_limits = api::QueryLimits {
        max_concurrency: 1,
        ..api::QueryLimits::default()
    };
    Ok(api::AppState {
        appender,
        queryable: Arc::new(storage_api::MemStorage::new()),
        metadata: Arc::new(NoMetadata),
        admin: Arc::new(NoStorage),
        metrics: Arc::new(api::ApiMetrics::default()),
        limits: Arc::new(api::ApiLimits::default()),
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        query: Arc::new(api::QueryService::new(query_limits).context("cannot start query threads")?),
        info: Arc::new(api::ServerInfo::for_this_build()),
        push,
    })
}

/// Hands scraped series to the running agent.
struct IngestAppender(agent::IngestSender);

impl SampleAppender for IngestAppender {
    fn append(&self, _tenant: &TenantId, batch: Vec<SeriesSamples>) -> Result<AppendReport, StorageError> {
        let n = batch.iter().map(|s| s.samples.len()).sum();
        let series = batch.into_iter().map(|s| (s.labels, s.samples)).collect();
        self.0
            .try_send(series)
            .map_err(|e| StorageError::Unavailable(format!("agent queue: {e}")))?;
        Ok(AppendReport {
            num_accepted: n,
            rejected: Vec::new(),
        })
    }

    /// A `try_send` to the agent's channel never waits.
    fn appends_without_waiting(&self) -> bool {
        true
    }
}

/// The agent does not keep metadata.
struct NoMetadata;

impl MetadataStore for NoMetadata {
    fn put_metadata(&self, _tenant: &TenantId, _metadata: Vec<MetricMetadata>) {}
    fn metadata(&self, _tenant: &TenantId, _metric: Option<&str>, _limit: Option<usize>) -> Vec<MetricMetadata> {
        Vec::new()
    }
}

/// Runs the agent until SIGTERM or SIGINT.
pub async fn run_agent(cmd: AgentCommand) -> anyhow::Result<()> {
    let scrape_configs = match &cmd.config_file {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            scrape::ScrapeConfigs::from_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => scrape::ScrapeConfigs::default(),
    };
    let mut opts = agent::AgentOptions::new(cmd.server_url.clone(), cmd.data_dir.clone());
    opts.interval = cmd.interval;
    opts.queue_max_bytes = cmd.queue_max_bytes;
    let wants_ingest = !scrape_configs.scrape_configs.is_empty() || cmd.listen.is_some();
    let appender: Option<Arc<dyn SampleAppender>> = wants_ingest.then(|| {
        let (tx, rx) = agent::ingest_channel(1024);
        opts.ingest = Some(rx);
        Arc::new(IngestAppender(tx)) as Arc<dyn SampleAppender>
    });
    let manager = match &appender {
        Some(appender) if !scrape_configs.scrape_configs.is_empty() => {
            let m = Arc::new(scrape::ScrapeManager::new(
                Arc::clone(appender),
                Arc::new(NoMetadata),
                TenantId::default(),
            ));
            m.apply_config(&scrape_configs.scrape_configs, &scrape_configs.global)
                .map_err(|e| anyhow::anyhow!("cannot apply scrape configuration: {e}"))?;
            Some(m)
        }
        _ => None,
    };
    let mut push = None;
    let receiver = match (cmd.listen, &appender) {
        (Some(addr), Some(appender)) => {
            std::fs::create_dir_all(&cmd.data_dir)
                .with_context(|| format!("cannot create data directory {}", cmd.data_dir.display()))?;
            let deltas = api::DeltaAccumulator::open(&cmd.data_dir.join(DELTA_TOTALS_FILE))?;
            let state = Arc::new(api::PushState::with_deltas(deltas));
            push = Some(Arc::clone(&state));
            let router = api::push_router(push_state(Arc::clone(appender), state)?);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(%addr, "agent receiving pushes (remote write, Influx, OTLP, import)");
            Some(tokio::spawn(async move {
                axum::serve(listener, router)
                    .with_graceful_shutdown(crate::shutdown_signal())
                    .await
            }))
        }
        _ => None,
    };
    tracing::info!(server = %cmd.server_url, data_dir = %cmd.data_dir.display(), "agent starting");
    let result = agent::run(opts, crate::shutdown_signal()).await;
    if let Some(receiver) = receiver {
        receiver.abort();
    }
    if let Some(m) = manager {
        m.shutdown().await;
    }
    if let Some(push) = push {
        if let Err(e) = push.deltas.save() {
            tracing::error!(error = %e, "cannot save OTLP delta totals");
        }
    }
    result
}
