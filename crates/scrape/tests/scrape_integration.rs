//! End-to-end scraping: the real `prometheus-node-exporter` through a
//! relabeling config, and a tiny local HTTP fixture whose series disappear
//! and which then fails, checked for staleness markers and `up`.

use model::{is_stale_nan, Matcher, TenantId};
use parking_lot::Mutex;
use scrape::{ScrapeConfigs, ScrapeManager};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage_api::{MemStorage, MetadataStore, MetricMetadata, Queryable, SelectHints, Series};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Default)]
struct MemMetadata(Mutex<Vec<MetricMetadata>>);

impl MetadataStore for MemMetadata {
    fn put_metadata(&self, _tenant: &TenantId, metadata: Vec<MetricMetadata>) {
        let mut all = self.0.lock();
        for m in metadata {
            all.retain(|o| o.metric_family != m.metric_family);
            all.push(m);
        }
    }
    fn metadata(&self, _tenant: &TenantId, metric: Option<&str>, _limit: Option<usize>) -> Vec<MetricMetadata> {
        self.0
            .lock()
            .iter()
            .filter(|m| metric.is_none_or(|n| n == m.metric_family))
            .cloned()
            .collect()
    }
}

fn select(storage: &MemStorage, matchers: &[Matcher]) -> Vec<Series> {
    storage
        .querier(&TenantId::default())
        .expect("querier")
        .select(matchers, &SelectHints::range(0, i64::MAX))
        .expect("select")
}

fn name(n: &str) -> Matcher {
    Matcher::equal("__name__", n)
}

/// Polls `cond` every 100 ms for up to `secs`.
async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn manager(storage: &MemStorage, metadata: &Arc<MemMetadata>) -> ScrapeManager {
    ScrapeManager::new(
        Arc::new(storage.clone()),
        Arc::clone(metadata) as Arc<dyn MetadataStore>,
        TenantId::default(),
    )
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_the_real_node_exporter_through_relabeling() {
    let bin = "/usr/bin/prometheus-node-exporter";
    assert!(
        std::path::Path::new(bin).exists(),
        "{bin} is missing: install it with `apt-get install prometheus-node-exporter`"
    );
    let port = free_port();
    let _child = Child(
        std::process::Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node exporter"),
    );
    let cfg = ScrapeConfigs::from_yaml(&format!(
        r#"
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:{port}']
        labels: {{env: test}}
    relabel_configs:
      - source_labels: [__address__]
        regex: '([^:]+):\d+'
        target_label: host
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
"#
    ))
    .expect("config");
    let storage = MemStorage::new();
    let metadata = Arc::new(MemMetadata::default());
    let mgr = manager(&storage, &metadata);
    mgr.apply_config(&cfg.scrape_configs, &cfg.global).expect("apply");
    // Two successful scrapes; on a loaded machine one may exceed the 1 s timeout (up = 0).
    wait_for(30, "node exporter scraped twice", || {
        select(&storage, &[name("up")])
            .first()
            .is_some_and(|s| s.samples.iter().filter(|x| x.v == 1.0).count() >= 2)
    })
    .await;
    let up = select(&storage, &[name("up")]);
    assert_eq!(up[0].labels.get("host"), Some("127.0.0.1"));
    assert_eq!(up[0].labels.get("env"), Some("test"));
    assert_eq!(up[0].labels.get("instance"), Some(format!("127.0.0.1:{port}").as_str()));
    assert_eq!(up[0].labels.get("job"), Some("node"));
    let load = select(&storage, &[name("node_load1")]);
    assert_eq!(load.len(), 1, "node_load1 scraped");
    assert_eq!(load[0].labels.get("host"), Some("127.0.0.1"));
    assert!(
        select(&storage, &[name("go_goroutines")]).is_empty(),
        "dropped by metric relabeling"
    );
    let scraped = select(&storage, &[name("scrape_samples_scraped")]);
    let post = select(&storage, &[name("scrape_samples_post_metric_relabeling")]);
    let (Some(a), Some(b)) = (scraped[0].samples.last(), post[0].samples.last()) else {
        panic!("report series missing")
    };
    assert!(a.v > 100.0 && b.v < a.v, "scraped {} post-relabel {}", a.v, b.v);
    assert!(!metadata
        .metadata(&TenantId::default(), Some("node_load1"), None)
        .is_empty());

    let view = mgr.targets();
    assert_eq!(view.active_targets.len(), 1);
    let t = &view.active_targets[0];
    assert_eq!(t.health, "up", "{t:?}");
    assert_eq!(t.scrape_url, format!("http://127.0.0.1:{port}/metrics"));
    let json = serde_json::to_value(&view).expect("json");
    for field in [
        "discoveredLabels",
        "labels",
        "scrapePool",
        "scrapeUrl",
        "globalUrl",
        "lastError",
        "lastScrape",
        "lastScrapeDuration",
        "health",
        "scrapeInterval",
        "scrapeTimeout",
    ] {
        assert!(json["activeTargets"][0].get(field).is_some(), "missing {field}");
    }
    let meta = mgr.targets_metadata(&|_| true, Some("node_load1"), None);
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].metric_type, "gauge");
    mgr.shutdown().await;
}

/// Serves whatever `body` holds (or a 500 if it is `None`).
async fn fixture(body: Arc<Mutex<Option<String>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = Arc::clone(&body);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = match body.lock().clone() {
                    Some(b) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                        b.len()
                    ),
                    None => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                };
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    port
}

fn last_is_stale(storage: &MemStorage, n: &str) -> bool {
    select(storage, &[name(n)])
        .first()
        .and_then(|s| s.samples.last())
        .is_some_and(|s| is_stale_nan(s.v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappearing_series_and_a_failing_target_go_stale() {
    let body = Arc::new(Mutex::new(Some(
        "# TYPE a gauge\na 1\nb{x=\"1\"} 2\nbad{l=\"\\q\"} 3\n".to_string(),
    )));
    let port = fixture(Arc::clone(&body)).await;
    let cfg = ScrapeConfigs::from_yaml(&format!(
        "scrape_configs:\n  - job_name: fx\n    scrape_interval: 1s\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    ))
    .expect("config");
    let storage = MemStorage::new();
    let metadata = Arc::new(MemMetadata::default());
    let mgr = manager(&storage, &metadata);
    mgr.apply_config(&cfg.scrape_configs, &cfg.global).expect("apply");
    wait_for(10, "first scrape", || !select(&storage, &[name("b")]).is_empty()).await;
    // A bad line is counted; the scrape stays up.
    let t = &mgr.targets().active_targets[0];
    assert_eq!(t.health, "up");
    assert!(t.last_error.contains("1 invalid lines skipped"), "{}", t.last_error);
    assert_eq!(
        select(&storage, &[name("scrape_series_added")])[0].samples[0].v,
        2.0,
        "a and b are new"
    );

    // b disappears -> stale marker for b only.
    *body.lock() = Some("a 1\n".to_string());
    wait_for(10, "b stale", || last_is_stale(&storage, "b")).await;
    assert!(!last_is_stale(&storage, "a"));

    // The target fails -> up 0 and a stale.
    *body.lock() = None;
    wait_for(10, "up 0", || {
        select(&storage, &[name("up")])[0]
            .samples
            .last()
            .is_some_and(|s| s.v == 0.0)
    })
    .await;
    assert!(last_is_stale(&storage, "a"));
    let t = &mgr.targets().active_targets[0];
    assert_eq!(t.health, "down");
    assert!(t.last_error.contains("500"), "{}", t.last_error);

    // Back up, then the target is removed by a reload -> everything stale.
    *body.lock() = Some("a 5\n".to_string());
    wait_for(10, "a back", || {
        select(&storage, &[name("a")])[0]
            .samples
            .last()
            .is_some_and(|s| s.v == 5.0)
    })
    .await;
    mgr.apply_config(&[], &cfg.global).expect("reload");
    wait_for(10, "all stale after removal", || {
        last_is_stale(&storage, "a") && last_is_stale(&storage, "up")
    })
    .await;
    assert!(mgr.targets().active_targets.is_empty());
    mgr.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_limit_fails_the_scrape_and_reload_keeps_unchanged_loops() {
    let body = Arc::new(Mutex::new(Some("a 1\nb 2\nc 3\n".to_string())));
    let port = fixture(Arc::clone(&body)).await;
    let yaml = |limit: usize| {
        format!(
            "scrape_configs:\n  - job_name: fx\n    scrape_interval: 1s\n    sample_limit: {limit}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
        )
    };
    let cfg = ScrapeConfigs::from_yaml(&yaml(2)).expect("config");
    let storage = MemStorage::new();
    let metadata = Arc::new(MemMetadata::default());
    let mgr = manager(&storage, &metadata);
    mgr.apply_config(&cfg.scrape_configs, &cfg.global).expect("apply");
    wait_for(10, "a scrape", || !select(&storage, &[name("up")]).is_empty()).await;
    assert_eq!(select(&storage, &[name("up")])[0].samples[0].v, 0.0);
    assert!(
        select(&storage, &[name("a")]).is_empty(),
        "nothing appended over the limit"
    );
    assert!(mgr.targets().active_targets[0]
        .last_error
        .contains("sample limit exceeded"));

    // Raising the limit on reload reuses the loop: the next scrape succeeds.
    let cfg = ScrapeConfigs::from_yaml(&yaml(10)).expect("config");
    mgr.apply_config(&cfg.scrape_configs, &cfg.global).expect("reload");
    wait_for(10, "up 1", || {
        select(&storage, &[name("up")])[0]
            .samples
            .last()
            .is_some_and(|s| s.v == 1.0)
    })
    .await;
    assert_eq!(select(&storage, &[name("c")]).len(), 1);

    // An invalid reload is refused and the old config stays.
    let bad = ScrapeConfigs::from_yaml(&yaml(10)).expect("config");
    let mut jobs = bad.scrape_configs.clone();
    jobs.push(jobs[0].clone());
    assert!(mgr.apply_config(&jobs, &bad.global).is_err());
    assert_eq!(mgr.targets().active_targets.len(), 1);
    mgr.shutdown().await;
}
