//! Sending remote-write bodies to a server with a few concurrent senders, counting what was
//! acknowledged.
//!
//! Each sender owns a fixed shard of hosts and sends its bodies in order, so every series'
//! samples arrive in time order even though shards run concurrently (as with the shards of a
//! Prometheus remote-write queue). Retryable failures (5xx, 429, transport errors) are retried
//! with a short backoff up to 5 times; a 4xx other than 429 is counted as failed and not retried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One encoded request and how many samples it carries.
pub(crate) struct Body {
    /// The snappy-compressed protobuf.
    pub(crate) bytes: Vec<u8>,
    /// Samples in it.
    pub(crate) samples: u64,
}

/// What happened while sending.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Requests acknowledged with 2xx.
    pub(crate) ok_requests: AtomicU64,
    /// Samples in acknowledged requests.
    pub(crate) ok_samples: AtomicU64,
    /// Requests never acknowledged (4xx, or retries exhausted).
    pub(crate) failed_requests: AtomicU64,
    /// Retries of retryable failures.
    pub(crate) retries: AtomicU64,
    /// The first few error messages.
    pub(crate) errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, msg: String) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() < 5 {
            e.push(msg);
        }
    }

    /// Acknowledged samples.
    pub(crate) fn ok_samples(&self) -> u64 {
        self.ok_samples.load(Ordering::Relaxed)
    }

    /// Requests never acknowledged.
    pub(crate) fn failed(&self) -> u64 {
        self.failed_requests.load(Ordering::Relaxed)
    }

    /// The retries made.
    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The first error messages.
    pub(crate) fn first_errors(&self) -> Vec<String> {
        self.errors.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Posts one body to `url`, retrying retryable failures.
pub(crate) fn send(agent: &ureq::Agent, url: &str, body: &Body, tally: &Tally) {
    for attempt in 0..=5u32 {
        let res = agent
            .post(url)
            .set("Content-Type", wire::remote_write::CONTENT_TYPE)
            .set("Content-Encoding", wire::remote_write::CONTENT_ENCODING)
            .set(wire::remote_write::VERSION_HEADER, wire::remote_write::VERSION)
            .set("User-Agent", "haetae-bench")
            .send_bytes(&body.bytes);
        let retryable = match res {
            Ok(resp) => {
                // Drain the body so the connection can be reused.
                let _ = resp.into_string();
                tally.ok_requests.fetch_add(1, Ordering::Relaxed);
                tally.ok_samples.fetch_add(body.samples, Ordering::Relaxed);
                return;
            }
            Err(ureq::Error::Status(code, resp)) => {
                let msg = resp.into_string().unwrap_or_default();
                tally.error(format!(
                    "HTTP {code}: {}",
                    msg.trim().chars().take(300).collect::<String>()
                ));
                code == 429 || code >= 500
            }
            Err(e) => {
                tally.error(format!("transport: {e}"));
                true
            }
        };
        if !retryable || attempt == 5 {
            break;
        }
        tally.retries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100 << attempt));
    }
    tally.failed_requests.fetch_add(1, Ordering::Relaxed);
}

/// Prints a progress line to stderr every `every` until `done` returns true.
pub(crate) fn progress_loop(label: &str, total: u64, tally: &Tally, every: Duration, done: impl Fn() -> bool) {
    let start = Instant::now();
    let mut last = Instant::now();
    while !done() {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= every {
            last = Instant::now();
            let sent = tally.ok_samples();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "  {label}: {:>5.1}% {sent}/{total} samples, {:.0} samples/s, {} failed requests",
                100.0 * sent as f64 / total.max(1) as f64,
                sent as f64 / secs.max(1e-9),
                tally.failed()
            );
        }
    }
}
