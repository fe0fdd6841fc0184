//! `haetae agent --listen`: local programs push to the agent (OTLP/HTTP and
//! Influx line protocol here), which forwards through its queue to a real
//! `haetae serve`. An OTLP delta counter becomes a cumulative one whose total
//! survives an agent restart, so PromQL sees no counter reset.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

fn start_agent(server: &str, listen: u16, data: &std::path::Path, log: &std::path::Path) -> Child {
    let mut agent = Command::new(env!("CARGO_BIN_EXE_haetae"))
        .args(["agent", "--server", server, "--interval", "60s"])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(log)
                .expect("log"),
        )
        .spawn()
        .expect("agent");
    let client = reqwest::blocking::Client::new();
    let start = Instant::now();
    while client
        .get(format!("http://127.0.0.1:{listen}/-/ready"))
        .send()
        .map_or(true, |r| !r.status().is_success())
    {
        assert!(start.elapsed() < Duration::from_secs(30), "agent never listened");
        if let Ok(Some(status)) = agent.try_wait() {
            panic!(
                "agent exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    agent
}

fn otlp_delta(value: u64) -> String {
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"jobs_done","sum":{{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{{"asInt":"{value}","timeUnixNano":"{now_ns}"}}]}}}}]}}]}}]}}"#
    )
}

fn last_value(client: &reqwest::blocking::Client, base: &str, q: &str) -> Option<f64> {
    let v: serde_json::Value = client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .ok()?
        .json()
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

fn wait_value(client: &reqwest::blocking::Client, base: &str, q: &str, want: f64) {
    let start = Instant::now();
    loop {
        let got = last_value(client, base, q);
        if got == Some(want) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{q}: want {want}, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn agent_receives_pushes_and_keeps_delta_totals_across_restarts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start_haetae(&tmp.path().join("data"), &[]);
    let base = server.url();
    let port = free_port();
    let agent_data = tmp.path().join("agent-data");
    let log = tmp.path().join("agent.log");
    let client = reqwest::blocking::Client::new();
    let agent_url = format!("http://127.0.0.1:{port}");
    let push = |body: String| {
        let r = client
            .post(format!("{agent_url}/v1/metrics"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .expect("push");
        assert!(r.status().is_success(), "{:?}", r.text());
        // One sample per series per timestamp: keep pushes in distinct milliseconds.
        std::thread::sleep(Duration::from_millis(20));
    };

    let mut agent = start_agent(&base, port, &agent_data, &log);
    push(otlp_delta(5));
    push(otlp_delta(3));
    wait_value(&client, &base, "jobs_done_total", 8.0);
    let r = client
        .post(format!("{agent_url}/write"))
        .body("cpu,host=a usage=1.5")
        .send()
        .expect("influx");
    assert_eq!(r.status().as_u16(), 204);
    wait_value(&client, &base, "cpu_usage{host=\"a\"}", 1.5);

    // A clean restart of the agent: the total goes on from 8.
    unsafe {
        libc::kill(agent.id() as i32, libc::SIGTERM);
    }
    let _ = agent.wait();
    let mut agent = start_agent(&base, port, &agent_data, &log);
    push(otlp_delta(2));
    wait_value(&client, &base, "jobs_done_total", 10.0);
    wait_value(&client, &base, "resets(jobs_done_total[10m])", 0.0);
    let _ = agent.kill();
    let _ = agent.wait();
}
