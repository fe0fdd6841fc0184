//! The forwarder: takes batches from the [`DiskQueue`] in order and POSTs
//! them as Prometheus remote write to `<server>/api/v1/write`.
//!
//! Layer 5. Owns the HTTP exchange, the classification of answers and the
//! retry policy; it never drops data on its own except what the server
//! refuses as bad (the queue's cap is the only other source of loss).
//!
//! Outcomes, as Prometheus' remote-write client treats them:
//! - 2xx: delivered, acknowledged in the queue;
//! - 5xx, 429, connection errors and timeouts: retried with exponential
//!   backoff ([`Backoff`], 100 ms doubling to 30 s, with jitter) — meanwhile
//!   collection goes on into the queue;
//! - any other status (400 above all): the batch can never succeed; it is
//!   logged, counted in `rejected_samples` and acknowledged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::queue::DiskQueue;

/// The most bytes of an error answer kept for the log.
const MAX_ERROR_BODY_CHARS: usize = 512;

/// How one POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The server took the batch (2xx).
    Delivered,
    /// The server refused the batch for good (4xx other than 429).
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        message: String,
    },
    /// Try again later (5xx, 429, no connection, timeout).
    Retry {
        /// What went wrong, for the log.
        reason: String,
    },
}

/// Classifies an HTTP status as Prometheus' remote-write client does.
pub fn classify_status(status: u16) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Delivered,
        429 | 500..=599 => SendOutcome::Retry {
            reason: format!("server answered {status}"),
        },
        _ => SendOutcome::Rejected {
            status,
            message: String::new(),
        },
    }
}

/// Errors building the HTTP client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Counters of the forwarder, for self-monitoring.
#[derive(Debug, Default)]
pub struct ShipStats {
    /// Batches delivered.
    pub sent_batches: AtomicU64,
    /// Samples delivered.
    pub sent_samples: AtomicU64,
    /// Failed attempts that will be retried.
    pub retries: AtomicU64,
    /// Batches refused by the server and dropped.
    pub rejected_batches: AtomicU64,
    /// Samples in those batches.
    pub rejected_samples: AtomicU64,
}

/// Exponential backoff with jitter: each delay is drawn uniformly from the
/// upper half of the current step, which doubles from `min` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
    rng: u64,
}

impl Backoff {
    /// A backoff from `min` to `max` (100 ms and 30 s for the agent).
    pub fn new(min: Duration, max: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Backoff {
            min,
            max: max.max(min),
            step: min,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt; doubles the step for the one after.
    pub fn next_delay(&mut self) -> Duration {
        // xorshift64: jitter needs no cryptographic quality.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        let delay = self.step.mul_f64(0.5 + 0.5 * unit);
        self.step = (self.step * 2).min(self.max);
        delay
    }

    /// Starts again from `min` (after a success).
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

/// Posts remote-write bodies to one server.
#[derive(Debug, Clone)]
pub struct Shipper {
    client: reqwest::Client,
    url: String,
}

/// The remote-write URL for a server base URL (`http://host:9090` →
/// `http://host:9090/api/v1/write`); a URL that already names the endpoint is kept.
pub fn write_url(server_url: &str) -> String {
    let base = server_url.trim_end_matches('/');
    if base.ends_with("/api/v1/write") {
        base.to_string()
    } else {
        format!("{base}/api/v1/write")
    }
}

impl Shipper {
    /// A shipper for `server_url` (the Haetae base URL) with a per-request timeout.
    pub fn new(server_url: &str, timeout: Duration) -> Result<Self, ShipError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("haetae-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ShipError::Client)?;
        Ok(Shipper {
            client,
            url: write_url(server_url),
        })
    }

    /// The URL batches are posted to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// POSTs one snappy-compressed remote-write body.
    pub async fn send(&self, body: Vec<u8>) -> SendOutcome {
        let response = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, wire::remote_write::CONTENT_TYPE)
            .header(reqwest::header::CONTENT_ENCODING, wire::remote_write::CONTENT_ENCODING)
            .header(wire::remote_write::VERSION_HEADER, wire::remote_write::VERSION)
            .body(body)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return SendOutcome::Retry {
                    reason: format!("cannot reach {}: {e}", self.url),
                }
            }
        };
        let status = response.status().as_u16();
        match classify_status(status) {
            SendOutcome::Rejected { status, .. } => {
                let text = response.text().await.unwrap_or_default();
                SendOutcome::Rejected {
                    status,
                    message: text.chars().take(MAX_ERROR_BODY_CHARS).collect(),
                }
            }
            other => other,
        }
    }
}

async fn blocking<T: Send + 'static>(
    queue: &Arc<Mutex<DiskQueue>>,
    f: impl FnOnce(&mut DiskQueue) -> T + Send + 'static,
) -> Option<T> {
    let queue = Arc::clone(queue);
    tokio::task::spawn_blocking(move || f(&mut queue.lock())).await.ok()
}

/// Delivers the queue's batches until `shutdown` turns true. `wake` is
/// notified when a batch is pushed, so an idle forwarder sends it at once.
pub async fn forward(
    queue: Arc<Mutex<DiskQueue>>,
    shipper: Shipper,
    mut backoff: Backoff,
    stats: Arc<ShipStats>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (batch_id, batch) = match blocking(&queue, |q| q.peek()).await {
            Some(Ok(Some(found))) => found,
            Some(Ok(None)) => {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot read the agent queue");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            None => return, // the blocking task panicked; nothing sensible left to do
        };
        let num_samples = u64::from(batch.num_samples);
        let outcome = tokio::select! {
            o = shipper.send(batch.body) => o,
            _ = shutdown.changed() => return,
        };
        let ack = match outcome {
            SendOutcome::Delivered => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        url = shipper.url(),
                        after_secs = since.elapsed().as_secs(),
                        "remote write recovered; delivering the queued batches"
                    );
                }
                backoff.reset();
                stats.sent_batches.fetch_add(1, Ordering::Relaxed);
                stats.sent_samples.fetch_add(num_samples, Ordering::Relaxed);
                true
            }
            SendOutcome::Rejected { status, message } => {
                tracing::error!(url = shipper.url(), status, %message, samples = num_samples, "server refused a batch; dropping it");
                stats.rejected_batches.fetch_add(1, Ordering::Relaxed);
                stats.rejected_samples.fetch_add(num_samples, Ordering::Relaxed);
                true
            }
            SendOutcome::Retry { reason } => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay();
                if failing_since.is_none() {
                    failing_since = Some(std::time::Instant::now());
                    tracing::warn!(%reason, "remote write failed; buffering on disk and retrying with backoff");
                } else {
                    tracing::debug!(%reason, delay_ms = delay.as_millis() as u64, "remote write failed again");
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return,
                }
                false
            }
        };
        if ack {
            match blocking(&queue, move |q| q.ack(batch_id)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => tracing::error!(error = %e, "cannot acknowledge a batch in the agent queue"),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_prometheus_does() {
        assert_eq!(classify_status(204), SendOutcome::Delivered);
        assert!(matches!(classify_status(503), SendOutcome::Retry { .. }));
        assert!(matches!(classify_status(429), SendOutcome::Retry { .. }));
        assert!(matches!(
            classify_status(400),
            SendOutcome::Rejected { status: 400, .. }
        ));
        assert!(matches!(
            classify_status(404),
            SendOutcome::Rejected { status: 404, .. }
        ));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        let delays: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400) && delays[3] <= Duration::from_millis(800));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        assert!(delays[19] >= Duration::from_secs(15));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn write_url_appends_the_endpoint_once() {
        assert_eq!(write_url("http://h:9090/"), "http://h:9090/api/v1/write");
        assert_eq!(write_url("http://h:9090/api/v1/write"), "http://h:9090/api/v1/write");
    }
}
