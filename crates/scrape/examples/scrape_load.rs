//! Load check: N targets served by one local fixture with a node_exporter
//! body (`BODY_FILE`), scraped every `INTERVAL_MS` into a counting appender
//! that drops the data; prints samples/s and the process CPU per sample.
//!
//! `cargo run --release -p scrape --example scrape_load -- 1000 15000 body.txt 60`

use model::TenantId;
use scrape::{ScrapeConfigs, ScrapeManager};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use storage_api::{
    AppendReport, MetadataStore, MetricMetadata, RefAppend, SampleAppender, SeriesRef, SeriesSamples, StorageError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct Counting(AtomicUsize);

impl SampleAppender for Counting {
    fn append(&self, _t: &TenantId, batch: Vec<SeriesSamples>) -> Result<AppendReport, StorageError> {
        let n: usize = batch.iter().map(|s| s.samples.len()).sum();
        self.0.fetch_add(n, Ordering::Relaxed);
        Ok(AppendReport {
            num_accepted: n,
            rejected: Vec::new(),
        })
    }

    fn append_by_ref(
        &self,
        _t: &TenantId,
        batch: &[RefAppend<'_>],
        _new_refs: &mut Vec<(usize, SeriesRef)>,
    ) -> Result<AppendReport, StorageError> {
        self.0.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(AppendReport {
            num_accepted: batch.len(),
            rejected: Vec::new(),
        })
    }

    fn appends_without_waiting(&self) -> bool {
        true
    }
}

struct NoMeta;

impl MetadataStore for NoMeta {
    fn put_metadata(&self, _t: &TenantId, _m: Vec<MetricMetadata>) {}
    fn metadata(&self, _t: &TenantId, _m: Option<&str>, _l: Option<usize>) -> Vec<MetricMetadata> {
        Vec::new()
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let interval_ms: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(15_000);
    let body = std::fs::read(args.get(3).map_or("body.txt", String::as_str)).expect("body file");
    let secs: u64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(60);
    let resp: Arc<Vec<u8>> = Arc::new(
        [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes(),
            body,
        ]
        .concat(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let resp = Arc::clone(&resp);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                // Keep-alive: answer every request on the connection.
                while let Ok(k) = sock.read(&mut buf).await {
                    if k == 0 || sock.write_all(&resp).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    // Distinct targets: the same port, distinct `__param_t` values.
    let mut yaml = format!("scrape_configs:\n  - job_name: load\n    scrape_interval: {interval_ms}ms\n    scrape_timeout: {interval_ms}ms\n    static_configs:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "      - targets: ['127.0.0.1:{port}']\n        labels: {{__param_t: '{i}', shard: '{i}'}}\n"
        ));
    }
    let cfg = ScrapeConfigs::from_yaml(&yaml).expect("config");
    let counting = Arc::new(Counting::default());
    let mgr = ScrapeManager::new(
        Arc::clone(&counting) as Arc<dyn SampleAppender>,
        Arc::new(NoMeta),
        TenantId::default(),
    );
    mgr.apply_config(&cfg.scrape_configs, &cfg.global).expect("apply");
    // Warm up one interval (first scrapes fill the caches), then measure.
    tokio::time::sleep(std::time::Duration::from_millis(interval_ms + 1000)).await;
    let (c0, s0) = (cpu_seconds(), counting.0.load(Ordering::Relaxed));
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
    let (c1, s1) = (cpu_seconds(), counting.0.load(Ordering::Relaxed));
    let samples = (s1 - s0) as f64;
    let up = mgr.targets().active_targets.iter().filter(|t| t.health == "up").count();
    println!(
        "targets={n} up={up} samples/s={:.0} cpu={:.2} cores, {:.3} µs CPU/sample (includes the fixture server)",
        samples / secs as f64,
        (c1 - c0) / secs as f64,
        (c1 - c0) * 1e6 / samples.max(1.0)
    );
    mgr.shutdown().await;
}
