//! Helpers for process-level tests: start the real `haetae` binary and real
//! Prometheus programs on free loopback ports, wait for readiness, kill.
//!
//! A test that needs a program that is not installed fails with a message
//! naming the Debian package; it never skips silently.

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Path of a program, or a panic naming the package to install.
pub fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!("{program} is required by this test: apt-get install -y {package}");
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL and wait.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().expect("wait")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, program: &Path, args: &[String], port: u16, log_dir: &Path) -> Proc {
    let log = log_dir.join(format!("{name}-{port}.log"));
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    Proc { child, port, name, log }
}

/// Polls `url` until it answers 200, or panics after `timeout` with the log.
pub fn wait_ready(p: &mut Proc, path: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    loop {
        if let Ok(r) = client.get(format!("{}{path}", p.url())).send() {
            if r.status().is_success() {
                return start.elapsed();
            }
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!(
                "{} exited with {status} before becoming ready:\n{}",
                p.name,
                p.log_text()
            );
        }
        if start.elapsed() > timeout {
            panic!("{} not ready after {timeout:?}:\n{}", p.name, p.log_text());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `haetae serve` on a free port with `data_dir`; waits for `/-/ready`.
pub fn start_haetae(data_dir: &Path, extra: &[&str]) -> Proc {
    start_haetae_on(data_dir, free_port(), extra)
}

pub fn start_haetae_on(data_dir: &Path, port: u16, extra: &[&str]) -> Proc {
    let mut args = vec![
        "serve".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let log_dir = data_dir.parent().unwrap_or(data_dir);
    if !extra.contains(&"--config") {
        // Only the test's own data: no host metrics, no self-scrape.
        let cfg = log_dir.join(format!("quiet-{port}.yml"));
        std::fs::write(&cfg, "self_monitoring:\n  host_metrics: false\n  scrape_self: false\n").expect("config");
        args.push("--config".into());
        args.push(cfg.display().to_string());
    }
    let mut p = spawn("haetae", Path::new(env!("CARGO_BIN_EXE_haetae")), &args, port, log_dir);
    wait_ready(&mut p, "/-/ready", Duration::from_secs(60));
    p
}

/// Starts a real Prometheus with `config` (YAML text) on a free port.
pub fn start_prometheus(dir: &Path, config: &str, extra: &[&str]) -> Proc {
    let bin = require("prometheus", "prometheus");
    let port = free_port();
    std::fs::create_dir_all(dir).expect("dir");
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("config");
    let mut args = vec![
        format!("--config.file={}", cfg.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut p = spawn("prometheus", &bin, &args, port, dir);
    wait_ready(&mut p, "/-/ready", Duration::from_secs(60));
    p
}

/// Starts the real node_exporter on a free port.
pub fn start_node_exporter(dir: &Path) -> Proc {
    let bin = require("prometheus-node-exporter", "prometheus-node-exporter");
    let port = free_port();
    let args = vec![format!("--web.listen-address=127.0.0.1:{port}")];
    let mut p = spawn("node_exporter", &bin, &args, port, dir);
    wait_ready(&mut p, "/metrics", Duration::from_secs(30));
    p
}

/// Sends one remote-write request; returns the HTTP status.
pub fn remote_write(
    client: &reqwest::blocking::Client,
    base: &str,
    series: &[(model::Labels, Vec<model::Sample>)],
) -> reqwest::Result<reqwest::StatusCode> {
    let body = wire::remote_write::encode(series, &[]).expect("encode");
    let r = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()?;
    Ok(r.status())
}

/// Reads every sample of series matching `matchers` in `start..=end` by remote read.
pub fn remote_read(
    client: &reqwest::blocking::Client,
    base: &str,
    matchers: Vec<model::Matcher>,
    start: i64,
    end: i64,
) -> Vec<(model::Labels, Vec<model::Sample>)> {
    use wire::remote_read::{ReadQuery, ResponseType};
    let q = ReadQuery {
        start_ms: start,
        end_ms: end,
        matchers,
        hints: None,
    };
    let body = wire::remote_read::encode_request(&[q], &[ResponseType::Samples]).expect("encode");
    let r = client
        .post(format!("{base}/api/v1/read"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Read-Version", "0.1.0")
        .body(body)
        .send()
        .expect("remote read");
    assert!(r.status().is_success(), "remote read failed: {}", r.status());
    let bytes = r.bytes().expect("body");
    let mut results = wire::remote_read::decode_response(&bytes, &wire::DecodeLimits::default()).expect("decode");
    results.pop().unwrap_or_default()
}

/// GETs a JSON API endpoint and returns `data`.
pub fn get_json(client: &reqwest::blocking::Client, url: &str) -> serde_json::Value {
    let r = client.get(url).send().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status();
    let v: serde_json::Value = r.json().unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"));
    assert!(status.is_success(), "GET {url}: {status} {v}");
    v["data"].clone()
}
