//! What `serve` collects by itself: `scrape_configs` jobs, its own
//! `/metrics` (job `haetae`) and its host's metrics under node_exporter's
//! names (job `node`), so that a fresh server shows real data with no
//! configuration. Also the configuration reload (SIGHUP, `POST /-/reload`).

use crate::config::Config;
use model::{Label, Labels, TenantId};
use scrape::{ScrapeConfig, ScrapeManager};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use storage_api::{SampleAppender, SeriesSamples};

/// Scraping for the server, and the reload of its configuration.
pub(crate) struct Collection {
    manager: Arc<ScrapeManager>,
    config_file: Option<PathBuf>,
    self_address: String,
}

impl Collection {
    pub(crate) fn new(manager: Arc<ScrapeManager>, config_file: Option<PathBuf>, self_address: String) -> Self {
        Collection {
            manager,
            config_file,
            self_address,
        }
    }

    /// Applies the scrape part of `config`. On error nothing changes.
    pub(crate) fn apply(&self, config: &Config) -> Result<(), String> {
        let mut jobs: Vec<ScrapeConfig> = config.scrape.scrape_configs.clone();
        if config.self_monitoring.scrape_self && !jobs.iter().any(|j| j.job_name == "haetae") {
            jobs.push(self_scrape_job(&self.self_address, config.self_monitoring.interval)?);
        }
        self.manager
            .apply_config(&jobs, &config.scrape.global)
            .map_err(|e| e.to_string())?;
        tracing::info!(jobs = jobs.len(), "scrape configuration applied");
        Ok(())
    }

    pub(crate) fn manager(&self) -> &Arc<ScrapeManager> {
        &self.manager
    }
}

impl api::ReloadHandler for Collection {
    fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        let config = Config::load(path).map_err(|e| format!("{e:#}"))?;
        self.apply(&config).map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), "configuration reloaded");
        Ok(())
    }
}

impl api::TargetsHandler for Collection {
    fn targets(&self) -> scrape::TargetsView {
        self.manager.targets()
    }

    fn targets_metadata(
        &self,
        filter: &dyn Fn(&Labels) -> bool,
        metric: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<scrape::TargetMetadata> {
        self.manager.targets_metadata(filter, metric, limit)
    }
}

fn self_scrape_job(address: &str, interval: Duration) -> Result<ScrapeConfig, String> {
    let yaml = format!(
        "scrape_configs:\n  - job_name: haetae\n    scrape_interval: {}ms\n    static_configs:\n      - targets: ['{address}']\n",
        interval.as_millis()
    );
    let mut c = scrape::ScrapeConfigs::from_yaml(&yaml).map_err(|e| e.to_string())?;
    c.scrape_configs
        .pop()
        .ok_or_else(|| "cannot build the self-scrape job".to_string())
}

/// The address to scrape ourselves at: the listen address, with an
/// unspecified IP replaced by loopback.
pub(crate) fn self_address(listen: std::net::SocketAddr) -> String {
    let ip = if listen.ip().is_unspecified() {
        match listen {
            std::net::SocketAddr::V4(_) => "127.0.0.1".to_string(),
            std::net::SocketAddr::V6(_) => "[::1]".to_string(),
        }
    } else if listen.is_ipv6() {
        format!("[{}]", listen.ip())
    } else {
        listen.ip().to_string()
    };
    format!("{ip}:{}", listen.port())
}

/// Collects this host's metrics every `interval` into the default tenant,
/// labelled `job="node"` and `instance="<hostname>"`, until `stop` fires.
pub(crate) async fn host_metrics_loop(
    appender: Arc<dyn SampleAppender>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let instance = hostname();
    let mut collector = agent::collect::HostCollector::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        let appender = Arc::clone(&appender);
        let instance = instance.clone();
        let result = tokio::task::spawn_blocking(move || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let collected = collector.collect(now);
            let batch: Vec<SeriesSamples> = collected
                .into_iter()
                .map(|(labels, sample)| {
                    let mut all: Vec<Label> = labels.into_vec();
                    all.push(Label::new("job", "node"));
                    all.push(Label::new("instance", instance.as_str()));
                    SeriesSamples {
                        labels: Labels::new(all),
                        samples: vec![sample],
                    }
                })
                .collect();
            let r = appender.append(&TenantId::default(), batch);
            (collector, r)
        })
        .await;
        match result {
            Ok((c, r)) => {
                collector = c;
                if let Err(err) = r {
                    tracing::warn!(%err, "cannot store host metrics");
                }
            }
            Err(err) => {
                tracing::error!(%err, "host metrics collection failed; stopping it");
                return;
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
