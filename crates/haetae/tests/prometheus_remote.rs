//! A real Prometheus scrapes the real node_exporter and remote-writes to
//! Haetae; a second real Prometheus reads Haetae through `remote_read`.
//! PromQL answers of the second must equal those of the first over the same
//! range: Haetae stored every sample, bit for bit, and serves them back.

mod support;

use std::time::{Duration, Instant};
use support::*;

fn query_range(client: &reqwest::blocking::Client, base: &str, q: &str, start: f64, end: f64) -> serde_json::Value {
    let url = format!("{base}/api/v1/query_range");
    let r = client
        .get(url)
        .query(&[
            ("query", q),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", "1"),
        ])
        .send()
        .expect("query");
    let v: serde_json::Value = r.json().expect("json");
    assert_eq!(v["status"], "success", "{q}: {v}");
    let mut result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    result.sort_by_key(|s| s["metric"].to_string());
    serde_json::Value::Array(result)
}

#[test]
fn prometheus_remote_write_then_remote_read_gives_identical_answers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let node = start_node_exporter(tmp.path());
    let haetae = start_haetae(&tmp.path().join("haetae"), &[]);
    let writer_cfg = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{}']\nremote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n    metadata_config:\n      send_interval: 1s\n",
        node.port,
        haetae.url()
    );
    let writer = start_prometheus(&tmp.path().join("prom-writer"), &writer_cfg, &[]);
    let reader_cfg = format!(
        "remote_read:\n  - url: {}/api/v1/read\n    read_recent: true\n",
        haetae.url()
    );
    let reader = start_prometheus(&tmp.path().join("prom-reader"), &reader_cfg, &[]);

    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    std::thread::sleep(Duration::from_secs(15));
    let end = start + 12.0;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    // Wait until Haetae holds samples past `end` (remote write lags a little).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = remote_read(
            &client,
            &haetae.url(),
            vec![model::Matcher::equal("__name__", "up")],
            0,
            i64::MAX,
        );
        let newest = got.iter().flat_map(|(_, s)| s.iter().map(|s| s.t)).max().unwrap_or(0);
        if newest as f64 / 1000.0 > end + 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Haetae never received samples past the range end; writer log:\n{}",
            writer.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let queries = [
        "up",
        "node_load1",
        "node_memory_MemAvailable_bytes",
        "rate(node_cpu_seconds_total[5s])",
        "sum by (mode) (rate(node_cpu_seconds_total[5s]))",
        "count by (__name__) ({job=\"node\", __name__=~\"node_network_.*\"})",
        "scrape_samples_scraped",
        "max_over_time(node_procs_running[10s])",
        "increase(node_context_switches_total[5s])",
    ];
    for q in queries {
        let a = query_range(&client, &writer.url(), q, start + 2.0, end);
        let b = query_range(&client, &reader.url(), q, start + 2.0, end);
        assert!(
            a.as_array().is_some_and(|r| !r.is_empty()),
            "{q}: the writer has no data"
        );
        assert_eq!(
            a, b,
            "{q}: answers differ between Prometheus' own data and Haetae via remote read"
        );
    }
    // The metadata Prometheus sent was kept.
    let md = get_json(&client, &format!("{}/api/v1/metadata?metric=node_load1", haetae.url()));
    assert_eq!(md["node_load1"][0]["type"], "gauge", "{md}");
    // The series API sees what was written.
    let series = get_json(&client, &format!("{}/api/v1/series?match[]=node_load1", haetae.url()));
    assert_eq!(series.as_array().map(Vec::len), Some(1), "{series}");
    drop(reader);
    drop(writer);
    drop(node);
}
