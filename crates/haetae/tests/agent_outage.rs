//! `haetae agent` through a 60-second outage of a real `haetae serve`: the
//! server is killed with SIGKILL, stays down for 60 s and comes back on the
//! same address and data directory; the agent keeps collecting into its disk
//! queue, retries, and delivers everything, so its host metrics have no gap
//! afterwards and nothing it sent before the crash is lost.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

const OUTAGE: Duration = Duration::from_secs(60);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The timestamps (ms) of the raw samples of `selector` in the last `window_s` seconds.
fn sample_times(client: &reqwest::blocking::Client, base: &str, selector: &str, window_s: u64) -> Vec<i64> {
    let q = format!("{selector}[{window_s}s]");
    let v = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q.as_str())])
        .send()
        .and_then(|r| r.json::<serde_json::Value>())
        .unwrap_or_default();
    let series = v["data"]["result"].as_array().cloned().unwrap_or_default();
    assert!(series.len() <= 1, "one series expected for {selector}: {v}");
    series
        .first()
        .and_then(|s| s["values"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p[0].as_f64())
        .map(|t| (t * 1000.0).round() as i64)
        .collect()
}

#[test]
fn agent_buffers_through_a_server_outage_without_gaps() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let port = free_port();
    let mut server = start_haetae_on(&data, port, &[]);
    let base = server.url();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");

    let agent_log = tmp.path().join("agent.log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_haetae"))
        .args(["agent", "--server", &base, "--interval", "1s"])
        .arg("--data-dir")
        .arg(tmp.path().join("agent-data"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&agent_log).expect("log"))
        .spawn()
        .expect("agent");
    let selector = "node_load1{job=\"node\"}";
    let start = Instant::now();
    while sample_times(&client, &base, selector, 60).len() < 5 {
        assert!(start.elapsed() < Duration::from_secs(60), "agent data never arrived");
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = sample_times(&client, &base, selector, 60);

    // SIGKILL: whatever the server acknowledged must survive too.
    server.kill9();
    let down_at = now_ms();
    std::thread::sleep(OUTAGE);
    let server = start_haetae_on(&data, port, &[]);
    let up_at = now_ms();

    // The agent retries with backoff; give it time to drain its queue.
    let window = 240;
    let start = Instant::now();
    let times = loop {
        let times = sample_times(&client, &server.url(), selector, window);
        let delivered_after_restart = times.last().is_some_and(|&t| t > up_at + 3_000);
        if delivered_after_restart && times.iter().filter(|&&t| t > down_at && t < up_at).count() > 50 {
            break times;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the agent did not deliver the outage's samples: {} samples, {} inside the outage; agent log:\n{}",
            times.len(),
            times.iter().filter(|&&t| t > down_at && t < up_at).count(),
            std::fs::read_to_string(&agent_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let _ = agent.kill();
    let _ = agent.wait();

    for t in &before {
        assert!(times.contains(t), "sample at {t} acknowledged before the crash is gone");
    }
    let first = before.first().copied().unwrap_or(down_at);
    let covered: Vec<i64> = times.iter().copied().filter(|&t| t >= first).collect();
    let largest_gap = covered.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        largest_gap <= 3_000,
        "a gap of {largest_gap} ms in a 1 s series across a {} s outage ({} samples since {first})",
        OUTAGE.as_secs(),
        covered.len()
    );
    eprintln!(
        "agent outage: {} samples over {:.0} s, largest gap {largest_gap} ms",
        covered.len(),
        (covered.last().copied().unwrap_or(first) - first) as f64 / 1000.0
    );
}
