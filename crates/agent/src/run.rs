//! The agent's lifecycle: open the queue, collect host metrics every
//! interval into it, forward it, stop on shutdown.
//!
//! Layer 5. Owns the wiring and the options; the pieces live in `collect`,
//! `queue` and `ship`. Uses `anyhow` (this is the binary's edge).
//!
//! Design constraints:
//! - Collection never waits for delivery: each interval's samples become one
//!   batch in the on-disk queue, whatever the server's state.
//! - The first collection happens at start, so a restart leaves a gap no
//!   longer than the downtime; undelivered batches from before the restart
//!   are delivered first (the queue is FIFO and persisted).
//! - Target labels (`instance`, `job` by default) are added to every series
//!   that lacks them, as Prometheus' external labels are.
//! - Blocking work (`/proc` reads, `statfs`, queue I/O) runs on
//!   `spawn_blocking`, never on the async workers.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use model::{Label, Labels, Sample, METRIC_NAME};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};

use crate::collect::{HostCollector, HostOptions};
use crate::queue::{Batch, DiskQueue, QueueOptions, QueueStats};
use crate::ship::{forward, Backoff, ShipStats, Shipper};

/// How the agent runs. Build it with [`AgentOptions::new`] and change fields.
#[non_exhaustive]
pub struct AgentOptions {
    /// The Haetae server's base URL; batches go to `<server_url>/api/v1/write`.
    pub server_url: String,
    /// Holds the queue (`<data_dir>/queue`) and checkpoints.
    pub data_dir: PathBuf,
    /// The agent's config file; its `scrape_configs` are scraped by the
    /// `scrape` crate, which the binary wires in through [`AgentOptions::ingest`].
    pub config_file: Option<PathBuf>,
    /// How often host metrics are collected (default 15 s).
    pub interval: Duration,
    /// Labels added to every series that lacks them (default
    /// `instance=<hostname>`, `job=node`, so node_exporter dashboards work).
    pub labels: Vec<(String, String)>,
    /// The queue's cap in bytes (default 512 MiB).
    pub queue_max_bytes: u64,
    /// Where and what the host collector reads.
    pub host: HostOptions,
    /// Whether host metrics are collected at all (default true).
    pub collect_host: bool,
    /// The first retry delay (default 100 ms).
    pub retry_min_backoff: Duration,
    /// The longest retry delay (default 30 s).
    pub retry_max_backoff: Duration,
    /// The timeout of one POST (default 30 s).
    pub request_timeout: Duration,
    /// Series pushed by other sources (local scraping), queued and forwarded
    /// like host metrics. The hook for `scrape_configs`: the binary creates
    /// the pair with [`ingest_channel`] and hands the sender to the scraper.
    pub ingest: Option<IngestReceiver>,
}

impl std::fmt::Debug for AgentOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentOptions")
            .field("server_url", &self.server_url)
            .field("data_dir", &self.data_dir)
            .field("config_file", &self.config_file)
            .field("interval", &self.interval)
            .field("labels", &self.labels)
            .field("queue_max_bytes", &self.queue_max_bytes)
            .field("collect_host", &self.collect_host)
            .field("ingest", &self.ingest.is_some())
            .finish_non_exhaustive()
    }
}

impl AgentOptions {
    /// The defaults for forwarding to `server_url` with state in `data_dir`.
    pub fn new(server_url: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        AgentOptions {
            server_url: server_url.into(),
            data_dir: data_dir.into(),
            config_file: None,
            interval: Duration::from_secs(15),
            labels: vec![
                ("instance".to_string(), hostname()),
                ("job".to_string(), "node".to_string()),
            ],
            queue_max_bytes: QueueOptions::default().max_bytes,
            host: HostOptions::default(),
            collect_host: true,
            retry_min_backoff: Duration::from_millis(100),
            retry_max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            ingest: None,
        }
    }
}

/// The host's name from `gethostname(2)`, or `localhost`.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// Series handed to the agent by another source, e.g. a scrape.
pub type IngestSeries = Vec<(Labels, Vec<Sample>)>;

/// The sending half of [`ingest_channel`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestSender(mpsc::Sender<IngestSeries>);

/// The receiving half of [`ingest_channel`]; goes into [`AgentOptions::ingest`].
#[derive(Debug)]
pub struct IngestReceiver(mpsc::Receiver<IngestSeries>);

/// The agent stopped; nothing more can be ingested.
#[derive(Debug, thiserror::Error)]
#[error("the agent is not running")]
pub struct IngestClosed;

impl IngestSender {
    /// Queues series for forwarding, waiting while `capacity` sends are pending.
    pub async fn send(&self, series: IngestSeries) -> Result<(), IngestClosed> {
        self.0.send(series).await.map_err(|_| IngestClosed)
    }

    /// Queues series without waiting; fails when the agent stopped or
    /// `capacity` sends are already pending (the caller may retry later).
    pub fn try_send(&self, series: IngestSeries) -> Result<(), IngestClosed> {
        self.0.try_send(series).map_err(|_| IngestClosed)
    }
}

/// A channel through which other sources feed series into a running agent.
pub fn ingest_channel(capacity: usize) -> (IngestSender, IngestReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (IngestSender(tx), IngestReceiver(rx))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Adds the target labels a series lacks.
fn with_labels(labels: Labels, extra: &[(String, String)]) -> Labels {
    if extra.iter().all(|(n, _)| labels.contains(n)) {
        return labels;
    }
    let mut all = labels.into_vec();
    for (n, v) in extra {
        if !all.iter().any(|l| &l.name == n) {
            all.push(Label::new(n.as_str(), v.as_str()));
        }
    }
    Labels::new(all)
}

/// Encodes series into a batch; `None` when there is nothing to send.
fn encode_batch(series: Vec<(Labels, Vec<Sample>)>, extra: &[(String, String)]) -> anyhow::Result<Option<Batch>> {
    let series: Vec<(Labels, Vec<Sample>)> = series
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(l, s)| (with_labels(l, extra), s))
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let num_samples = series.iter().map(|(_, s)| s.len()).sum::<usize>();
    let body = wire::remote_write::encode(&series, &[]).context("failed to encode a remote-write batch")?;
    Ok(Some(Batch {
        num_samples: u32::try_from(num_samples).unwrap_or(u32::MAX),
        body,
    }))
}

/// The agent's own counters, sent along with host metrics.
fn self_metrics(
    t: i64,
    num_collections: u64,
    collect_seconds: f64,
    queue: &DiskQueue,
    qstats: &QueueStats,
    sstats: &ShipStats,
) -> Vec<(Labels, Sample)> {
    let m = |name: &str, v: f64| (Labels::from_pairs(&[(METRIC_NAME, name)]), Sample::new(t, v));
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    vec![
        m("haetae_agent_collections_total", num_collections as f64),
        m("haetae_agent_collect_duration_seconds", collect_seconds),
        m("haetae_agent_queue_bytes", queue.disk_bytes() as f64),
        m("haetae_agent_queue_pending_batches", queue.pending_batches() as f64),
        m("haetae_agent_queue_pending_samples", queue.pending_samples() as f64),
        m(
            "haetae_agent_queue_dropped_samples_total",
            load(&qstats.dropped_samples),
        ),
        m(
            "haetae_agent_queue_dropped_batches_total",
            load(&qstats.dropped_batches),
        ),
        m("haetae_agent_sent_batches_total", load(&sstats.sent_batches)),
        m("haetae_agent_sent_samples_total", load(&sstats.sent_samples)),
        m("haetae_agent_send_retries_total", load(&sstats.retries)),
        m("haetae_agent_rejected_samples_total", load(&sstats.rejected_samples)),
    ]
}

/// Runs the agent until `shutdown` resolves: collects host metrics every
/// [`AgentOptions::interval`] (and whatever arrives on
/// [`AgentOptions::ingest`]) into the on-disk queue and forwards the queue to
/// the server. Undelivered batches stay on disk for the next run.
///
/// Must be called within a Tokio runtime.
pub async fn run(mut opts: AgentOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    if let Some(path) = &opts.config_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        if text.contains("scrape_configs") && opts.ingest.is_none() {
            // TODO(agent): the binary wires crate `scrape` to `opts.ingest` (issue 4, item 3).
            tracing::warn!(config = %path.display(), "scrape_configs are not scraped: no local scraper is wired to this agent");
        }
    }
    let queue_dir = opts.data_dir.join("queue");
    let queue = {
        let dir = queue_dir.clone();
        let qopts = QueueOptions::with_max_bytes(opts.queue_max_bytes);
        tokio::task::spawn_blocking(move || DiskQueue::open(&dir, qopts))
            .await
            .context("failed to open the agent queue")?
            .with_context(|| format!("cannot open the agent queue in {}", queue_dir.display()))?
    };
    let qstats = Arc::clone(queue.stats());
    let queue = Arc::new(Mutex::new(queue));
    let shipper = Shipper::new(&opts.server_url, opts.request_timeout).context("cannot start the forwarder")?;
    let sstats = Arc::new(ShipStats::default());
    let wake = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    tracing::info!(url = shipper.url(), data_dir = %opts.data_dir.display(), interval = ?opts.interval, "agent started");
    let forwarder = tokio::spawn(forward(
        Arc::clone(&queue),
        shipper,
        Backoff::new(opts.retry_min_backoff, opts.retry_max_backoff),
        Arc::clone(&sstats),
        Arc::clone(&wake),
        stop_rx,
    ));

    let collector = Arc::new(Mutex::new(
        HostCollector::with_options(opts.host.clone()).context("invalid host collector options")?,
    ));
    let labels = Arc::new(opts.labels.clone());
    let mut ingest = opts.ingest.take();
    let mut ticker = tokio::time::interval(opts.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut num_collections = 0u64;
    tokio::pin!(shutdown);
    let result: anyhow::Result<()> = loop {
        let series: IngestSeries = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = ticker.tick() => {
                num_collections += 1;
                let collector = Arc::clone(&collector);
                let queue = Arc::clone(&queue);
                let (qstats, sstats) = (Arc::clone(&qstats), Arc::clone(&sstats));
                let collect_host = opts.collect_host;
                let n = num_collections;
                let collected = tokio::task::spawn_blocking(move || {
                    let t = now_ms();
                    let start = std::time::Instant::now();
                    let mut samples = if collect_host { collector.lock().collect(t) } else { Vec::new() };
                    let secs = start.elapsed().as_secs_f64();
                    samples.extend(self_metrics(t, n, secs, &queue.lock(), &qstats, &sstats));
                    samples
                })
                .await
                .context("host collection failed")?;
                collected.into_iter().map(|(l, s)| (l, vec![s])).collect()
            }
            Some(series) = async { match ingest.as_mut() { Some(rx) => rx.0.recv().await, None => None } } => series,
        };
        let labels = Arc::clone(&labels);
        let queue_for_push = Arc::clone(&queue);
        let pushed = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            if let Some(batch) = encode_batch(series, &labels)? {
                queue_for_push
                    .lock()
                    .push(&batch)
                    .context("cannot append to the agent queue")?;
            }
            Ok(())
        })
        .await
        .context("queueing a batch failed")?;
        if let Err(e) = pushed {
            tracing::error!(error = format!("{e:#}"), "dropping a batch");
        }
        wake.notify_one();
    };
    let _ = stop_tx.send(true);
    let _ = forwarder.await;
    tracing::info!(
        pending_batches = queue.lock().pending_batches(),
        "agent stopped; undelivered batches stay queued"
    );
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_labels_do_not_override() {
        let extra = vec![
            ("instance".to_string(), "h".to_string()),
            ("job".to_string(), "node".to_string()),
        ];
        let l = with_labels(Labels::from_pairs(&[("__name__", "up"), ("job", "mine")]), &extra);
        assert_eq!(
            l,
            Labels::from_pairs(&[("__name__", "up"), ("job", "mine"), ("instance", "h")])
        );
    }

    #[test]
    fn batches_decode_back() {
        let series = vec![(Labels::from_pairs(&[("__name__", "x")]), vec![Sample::new(1, 2.0)])];
        let batch = encode_batch(series, &[("job".into(), "node".into())]).unwrap().unwrap();
        assert_eq!(batch.num_samples, 1);
        let decoded = wire::remote_write::decode(&batch.body, &wire::DecodeLimits::DEFAULT).unwrap();
        assert_eq!(
            decoded.series[0].0,
            Labels::from_pairs(&[("__name__", "x"), ("job", "node")])
        );
        assert!(encode_batch(Vec::new(), &[]).unwrap().is_none());
    }

    #[test]
    fn hostname_is_not_empty() {
        assert!(!hostname().is_empty());
    }
}
