//! The agent buffers through a server outage and an agent restart without
//! losing, repeating or reordering a collection.
//!
//! A tiny in-process remote-write receiver (HTTP/1.1 over a tokio
//! `TcpListener`, bodies decoded with `wire::remote_write::decode`) stands in
//! for the server: the property under test is the agent's buffering, not the
//! server's storage. The agent collects the real host every second; its
//! `haetae_agent_collections_total` counter numbers the collections, so
//! "every collection arrived exactly once" is "the delivered values are
//! 1..=N, each once".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::queue::{DiskQueue, QueueOptions};
use agent::AgentOptions;
use model::{Labels, Sample};
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Accept,
    Fail503,
    Reject400,
}

#[derive(Default)]
struct Received {
    series: Vec<(Labels, Vec<Sample>)>,
    num_requests: usize,
}

/// A remote-write receiver that can answer 503 or be stopped and restarted
/// on the same port.
struct FakeReceiver {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Received>>,
    server: Option<JoinHandle<()>>,
}

impl FakeReceiver {
    async fn start() -> FakeReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut r = FakeReceiver {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            received: Arc::default(),
            server: None,
        };
        r.serve(listener);
        r
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: TcpListener) {
        let (mode, received) = (Arc::clone(&self.mode), Arc::clone(&self.received));
        self.server = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(handle_connection(stream, Arc::clone(&mode), Arc::clone(&received)));
            }
        }));
    }

    /// Stops listening and drops every open connection: the agent sees
    /// "connection refused".
    async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    async fn restart(&mut self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    fn set_mode(&self, mode: Mode) {
        *self.mode.lock() = mode;
    }

    /// Samples of one metric name, by timestamp.
    fn samples_of(&self, name: &str) -> Vec<Sample> {
        samples_of(&self.received.lock().series, name)
    }
}

fn samples_of(series: &[(Labels, Vec<Sample>)], name: &str) -> Vec<Sample> {
    let mut out: Vec<Sample> = series
        .iter()
        .filter(|(l, _)| l.metric_name() == Some(name))
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    out.sort_by_key(|s| s.t);
    out
}

async fn handle_connection(mut stream: TcpStream, mode: Arc<Mutex<Mode>>, received: Arc<Mutex<Received>>) {
    let mut buf = Vec::new();
    loop {
        // Headers.
        let header_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
        let content_length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < header_end + content_length {
            let mut chunk = [0u8; 65536];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..header_end + content_length).skip(header_end).collect();
        let answer: &[u8] = match *mode.lock() {
            Mode::Fail503 => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
            Mode::Reject400 => b"HTTP/1.1 400 Bad Request\r\ncontent-length: 11\r\n\r\nbad samples",
            Mode::Accept => {
                assert!(head.starts_with("post /api/v1/write "), "{head}");
                assert!(head.contains("content-encoding: snappy"));
                let decoded = wire::remote_write::decode(&body, &wire::DecodeLimits::DEFAULT).unwrap();
                assert!(decoded.rejected.is_empty());
                let mut r = received.lock();
                r.series.extend(decoded.series);
                r.num_requests += 1;
                b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
            }
        };
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

fn options(url: &str, data_dir: &Path) -> AgentOptions {
    let mut opts = AgentOptions::new(url, data_dir);
    opts.interval = Duration::from_secs(1);
    opts.retry_min_backoff = Duration::from_millis(100);
    // A 30 s cap would add up to 30 s of test time after recovery; the cap's
    // value is not the property under test.
    opts.retry_max_backoff = Duration::from_secs(2);
    opts.request_timeout = Duration::from_secs(2);
    opts
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Starts the agent; returns the trigger that stops it and its task.
fn start_agent(opts: AgentOptions) -> (tokio::sync::oneshot::Sender<()>, JoinHandle<anyhow::Result<()>>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(agent::run(opts, async move {
        let _ = rx.await;
    }));
    (tx, task)
}

/// Waits until the receiver holds a collection stamped at or after `t_ms`.
async fn wait_for_delivery_after(receiver: &FakeReceiver, t_ms: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if receiver
            .samples_of("haetae_agent_collections_total")
            .last()
            .is_some_and(|s| s.t >= t_ms)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not catch up within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Batches still in the queue after the agent stopped.
fn undelivered(data_dir: &Path) -> Vec<(Labels, Vec<Sample>)> {
    let mut q = DiskQueue::open(&data_dir.join("queue"), QueueOptions::default()).unwrap();
    let mut out = Vec::new();
    while let Some((id, batch)) = q.peek().unwrap() {
        out.extend(
            wire::remote_write::decode(&batch.body, &wire::DecodeLimits::DEFAULT)
                .unwrap()
                .series,
        );
        q.ack(id).unwrap();
    }
    out
}

/// Checks that no series has two samples at one timestamp.
fn assert_no_duplicates(series: &[(Labels, Vec<Sample>)]) {
    let mut by_series: BTreeMap<&Labels, Vec<i64>> = BTreeMap::new();
    for (l, samples) in series {
        by_series.entry(l).or_default().extend(samples.iter().map(|s| s.t));
    }
    for (l, mut ts) in by_series {
        let n = ts.len();
        ts.sort_unstable();
        ts.dedup();
        assert_eq!(ts.len(), n, "{l} has a sample delivered twice");
    }
}

/// A 60-second outage — 30 s of 503 answers, then 30 s with the server gone —
/// leaves no gap and no duplicate once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_second_outage_leaves_no_gap() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut receiver = FakeReceiver::start().await;
    let (stop, agent) = start_agent(options(&receiver.url(), data_dir.path()));
    let started = now_ms();

    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !receiver.samples_of("node_time_seconds").is_empty(),
        "delivery works before the outage"
    );
    let outage_start = now_ms();
    receiver.set_mode(Mode::Fail503);
    tokio::time::sleep(Duration::from_secs(30)).await;
    receiver.stop().await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    receiver.set_mode(Mode::Accept);
    receiver.restart().await;
    let outage_end = now_ms();

    wait_for_delivery_after(&receiver, outage_end + 1000, Duration::from_secs(15)).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let mut delivered = receiver.received.lock().series.clone();
    let num_requests = receiver.received.lock().num_requests;
    let queued = undelivered(data_dir.path());
    assert_no_duplicates(&delivered);
    delivered.extend(queued.iter().cloned());
    assert_no_duplicates(&delivered);

    // Every collection, numbered 1..=N, arrived (or is still queued) exactly once.
    let collections = samples_of(&delivered, "haetae_agent_collections_total");
    let numbers: Vec<u64> = collections.iter().map(|s| s.v as u64).collect();
    let n = numbers.len() as u64;
    assert_eq!(
        numbers,
        (1..=n).collect::<Vec<u64>>(),
        "collections lost, repeated or reordered"
    );
    assert!(n >= 65, "only {n} collections in ~70 s at 1 s");

    // The host series cover the outage second by second.
    let times = samples_of(&delivered, "node_time_seconds");
    assert_eq!(times.len() as u64, n);
    let max_step = times.windows(2).map(|w| w[1].t - w[0].t).max().unwrap();
    assert!(max_step <= 2_000, "a {max_step} ms gap between collections");
    let in_outage = times.iter().filter(|s| s.t > outage_start && s.t < outage_end).count();
    assert!(in_outage >= 55, "only {in_outage} collections during the 60 s outage");
    assert!(times[0].t >= started - 1000);

    // Cumulative counters never went backwards (no false reset).
    let ctxt = samples_of(&delivered, "node_context_switches_total");
    assert!(ctxt.windows(2).all(|w| w[1].v >= w[0].v));
    let dropped = samples_of(&delivered, "haetae_agent_queue_dropped_samples_total");
    assert!(dropped.iter().all(|s| s.v == 0.0), "the queue dropped data");
    eprintln!(
        "outage: {n} collections, {in_outage} during the outage, all delivered once in {num_requests} requests \
         ({} still queued at shutdown), largest step {max_step} ms",
        queued.len()
    );
}

/// An agent stopped during an outage delivers its queue after it restarts,
/// with no gap beyond the downtime and no counter reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_outage_replays_the_queue() {
    let data_dir = tempfile::tempdir().unwrap();
    let receiver = FakeReceiver::start().await;
    receiver.set_mode(Mode::Fail503);

    let (stop, agent) = start_agent(options(&receiver.url(), data_dir.path()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    let stopped = now_ms();
    assert!(receiver.samples_of("node_time_seconds").is_empty());

    tokio::time::sleep(Duration::from_secs(2)).await; // downtime
    receiver.set_mode(Mode::Accept);
    let restarted = now_ms();
    let (stop, agent) = start_agent(options(&receiver.url(), data_dir.path()));
    wait_for_delivery_after(&receiver, restarted + 2000, Duration::from_secs(15)).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let delivered = receiver.received.lock().series.clone();
    assert_no_duplicates(&delivered);
    let collections = samples_of(&delivered, "haetae_agent_collections_total");
    // The first run's collections (1..=k) come first, then the second run's (1..=m).
    let numbers: Vec<u64> = collections.iter().map(|s| s.v as u64).collect();
    let restart_idx = numbers.iter().skip(1).position(|&v| v == 1).map(|i| i + 1).unwrap();
    let (first, second) = numbers.split_at(restart_idx);
    assert!(first.len() >= 4, "first run: {first:?}");
    assert_eq!(first, (1..=first.len() as u64).collect::<Vec<_>>());
    assert_eq!(second, (1..=second.len() as u64).collect::<Vec<_>>());
    let gap = collections[restart_idx].t - collections[restart_idx - 1].t;
    let downtime = restarted - stopped;
    assert!(gap <= downtime + 2_000, "gap {gap} ms for a downtime of {downtime} ms");

    let ctxt = samples_of(&delivered, "node_context_switches_total");
    assert!(
        ctxt.windows(2).all(|w| w[1].v >= w[0].v),
        "a host counter reset across the restart"
    );
}

/// A 400 answer drops the batch (counted) instead of retrying it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_is_dropped_and_counted() {
    let data_dir = tempfile::tempdir().unwrap();
    let receiver = FakeReceiver::start().await;
    receiver.set_mode(Mode::Reject400);
    let (stop, agent) = start_agent(options(&receiver.url(), data_dir.path()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    receiver.set_mode(Mode::Accept);
    let accepted_from = now_ms();
    wait_for_delivery_after(&receiver, accepted_from + 2000, Duration::from_secs(10)).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let rejected = receiver.samples_of("haetae_agent_rejected_samples_total");
    assert!(rejected.last().unwrap().v > 0.0, "rejected samples are counted");
    let numbers: Vec<u64> = receiver
        .samples_of("haetae_agent_collections_total")
        .iter()
        .map(|s| s.v as u64)
        .collect();
    assert!(
        numbers[0] >= 3,
        "the rejected collections were not retried: {numbers:?}"
    );
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
}

/// A full queue drops its oldest data, counts it, and delivers the newest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_drops_oldest_and_counts() {
    let data_dir = tempfile::tempdir().unwrap();
    let receiver = FakeReceiver::start().await;
    receiver.set_mode(Mode::Fail503);
    let mut opts = options(&receiver.url(), data_dir.path());
    opts.queue_max_bytes = 24 << 10;
    let (stop, agent) = start_agent(opts);
    tokio::time::sleep(Duration::from_secs(8)).await;
    receiver.set_mode(Mode::Accept);
    let accepted_from = now_ms();
    wait_for_delivery_after(&receiver, accepted_from + 2000, Duration::from_secs(10)).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let dropped = receiver.samples_of("haetae_agent_queue_dropped_samples_total");
    assert!(dropped.last().unwrap().v > 0.0, "dropped samples are counted");
    let numbers: Vec<u64> = receiver
        .samples_of("haetae_agent_collections_total")
        .iter()
        .map(|s| s.v as u64)
        .collect();
    assert!(numbers[0] > 1, "the oldest collections were dropped: {numbers:?}");
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
    assert_eq!(
        *numbers.last().unwrap() as usize,
        numbers[0] as usize + numbers.len() - 1,
        "the newest are contiguous"
    );
    assert!(
        std::fs::read_dir(data_dir.path().join("queue"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum::<u64>()
            <= (24 << 10) + 64
    );
}
