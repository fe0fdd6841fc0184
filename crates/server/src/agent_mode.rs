//! `haetae agent`: the host agent. Collects this host's metrics and scrapes
//! the `scrape_configs` of its configuration file, and forwards everything
//! to a Haetae server by remote write through an on-disk queue (crate
//! `agent`). No storage engine runs in this mode.

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
    let manager = if scrape_configs.scrape_configs.is_empty() {
        None
    } else {
        let (tx, rx) = agent::ingest_channel(1024);
        opts.ingest = Some(rx);
        let m = Arc::new(scrape::ScrapeManager::new(
            Arc::new(IngestAppender(tx)),
            Arc::new(NoMetadata),
            TenantId::default(),
        ));
        m.apply_config(&scrape_configs.scrape_configs, &scrape_configs.global)
            .map_err(|e| anyhow::anyhow!("cannot apply scrape configuration: {e}"))?;
        Some(m)
    };
    tracing::info!(server = %cmd.server_url, data_dir = %cmd.data_dir.display(), "agent starting");
    let result = agent::run(opts, crate::shutdown_signal()).await;
    if let Some(m) = manager {
        m.shutdown().await;
    }
    result
}
