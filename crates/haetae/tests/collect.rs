//! Collection end to end, with real programs: `serve` scrapes the real
//! node_exporter through relabeling and a Python `prometheus_client`
//! target (whose series go stale when it stops), reloads its configuration
//! on SIGHUP and `/-/reload` (a bad file is refused, the old one kept), and
//! `haetae agent` forwards its host metrics and local scrapes to `serve`.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn query(client: &reqwest::blocking::Client, base: &str, q: &str) -> Vec<serde_json::Value> {
    let r = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .expect("query");
    let v: serde_json::Value = r.json().expect("json");
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn python_target(port: u16) -> std::process::Child {
    let script = format!(
        "import time\nfrom prometheus_client import start_http_server, Counter\nc = Counter('demo_requests', 'Demo requests.', ['path'])\nstart_http_server({port}, addr='127.0.0.1')\nwhile True:\n    c.labels('/a').inc()\n    time.sleep(0.1)\n"
    );
    Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required: apt-get install -y python3")
}

#[test]
fn serve_scrapes_reloads_and_agent_forwards() {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the Python package prometheus_client is required: pip install prometheus-client (scripts/install-test-deps)"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let node = start_node_exporter(tmp.path());
    let py_port = free_port();
    let mut py = python_target(py_port);
    let cfg_path = tmp.path().join("haetae.yml");
    let config = |label: &str| {
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: node_exporter\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n    relabel_configs:\n      - target_label: {label}\n        replacement: test\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: node_scrape_collector_.*\n        action: drop\n  - job_name: py\n    static_configs:\n      - targets: ['127.0.0.1:{py_port}']\nself_monitoring:\n  interval: 1s\n",
            node.port
        )
    };
    std::fs::write(&cfg_path, config("env")).expect("config");
    let cfg_arg = cfg_path.display().to_string();
    let mut haetae = start_haetae(&tmp.path().join("data"), &["--config", &cfg_arg]);
    let base = haetae.url();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    wait_for("node_exporter and python scraped", Duration::from_secs(30), || {
        !query(&client, &base, "node_load1{job=\"node_exporter\",env=\"test\"}").is_empty()
            && !query(&client, &base, "demo_requests_total").is_empty()
    });
    let targets = get_json(&client, &format!("{base}/api/v1/targets"));
    let active = targets["activeTargets"].as_array().cloned().unwrap_or_default();
    let pools: Vec<&str> = active.iter().filter_map(|t| t["scrapePool"].as_str()).collect();
    for pool in ["node_exporter", "py", "haetae"] {
        assert!(pools.contains(&pool), "{pool} missing from targets: {pools:?}");
    }
    assert!(query(
        &client,
        &base,
        "{__name__=~\"node_scrape_collector_.*\", job=\"node_exporter\"}"
    )
    .is_empty());
    // Zero-config self monitoring: host metrics and our own /metrics.
    assert!(!query(&client, &base, "node_cpu_seconds_total{job=\"node\"}").is_empty());
    wait_for("self scrape", Duration::from_secs(20), || {
        !query(&client, &base, "haetae_tsdb_head_series{job=\"haetae\"}").is_empty()
    });

    // The python target stops: its series go stale and up becomes 0.
    let _ = py.kill();
    let _ = py.wait();
    wait_for("python series stale", Duration::from_secs(20), || {
        query(&client, &base, "demo_requests_total").is_empty()
            && query(&client, &base, "up{job=\"py\"}")
                .first()
                .and_then(|s| s["value"][1].as_str())
                == Some("0")
    });

    // A bad configuration is refused with file, line and reason; the old one stays.
    std::fs::write(
        &cfg_path,
        "scrape_configs:\n  - job_name: x\n    scrape_interval: nope\n",
    )
    .expect("config");
    let r = client.post(format!("{base}/-/reload")).send().expect("reload");
    assert_eq!(r.status().as_u16(), 500);
    let text = r.text().unwrap_or_default();
    assert!(
        text.contains("haetae.yml") && text.contains("line ") && text.contains("nope"),
        "{text}"
    );
    let targets = get_json(&client, &format!("{base}/api/v1/targets"));
    assert!(
        targets.to_string().contains("node_exporter"),
        "old config still in force"
    );

    // SIGHUP applies a new one.
    std::fs::write(&cfg_path, config("stage")).expect("config");
    unsafe {
        libc::kill(haetae.child.id() as i32, libc::SIGHUP);
    }
    wait_for("relabeled series after SIGHUP", Duration::from_secs(20), || {
        !query(&client, &base, "node_load1{job=\"node_exporter\",stage=\"test\"}").is_empty()
    });

    // The agent forwards host metrics and its own scrapes.
    let agent_cfg = tmp.path().join("agent.yml");
    std::fs::write(
        &agent_cfg,
        format!(
            "scrape_configs:\n  - job_name: agent_node\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            node.port
        ),
    )
    .expect("agent config");
    let agent_log = std::fs::File::create(tmp.path().join("agent.log")).expect("log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_haetae"))
        .args([
            "agent",
            "--server",
            &base,
            "--interval",
            "1s",
            "--config",
            &agent_cfg.display().to_string(),
        ])
        .arg("--data-dir")
        .arg(tmp.path().join("agent-data"))
        .stdout(Stdio::null())
        .stderr(agent_log)
        .spawn()
        .expect("agent");
    wait_for("agent data", Duration::from_secs(30), || {
        !query(&client, &base, "node_load1{job=\"agent_node\"}").is_empty()
            && !query(&client, &base, "count(node_memory_MemTotal_bytes{job=\"node\"})").is_empty()
    });
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(haetae.terminate().success(), "{}", haetae.log_text());
}
