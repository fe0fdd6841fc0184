//! Helpers for the query tests: start Haetae in-process and a real
//! Prometheus 2.42 on free loopback ports, generate one data set, and write
//! it to both through remote write.
//!
//! A missing Prometheus fails the test with a message naming the Debian
//! package; it never skips silently.
//!
//! Data design: every sample timestamp has a millisecond part in 1..=999,
//! and every query time, range, offset and step is a whole number of
//! seconds, so no sample ever sits exactly on a window boundary (where
//! Prometheus 2.x, closed windows, and 3.x, left-open windows, differ).
//! Counters start far from zero: when a window holds a series' first
//! sample, 2.x and 3.x limit `rate`'s extrapolation towards the counter's
//! zero point in a different order (3.x first caps it at half an interval),
//! so a counter starting near zero would give different (both defensible)
//! answers there.

#![allow(dead_code, unreachable_pub)]

use model::{Labels, Sample, STALE_NAN};
use rand::{Rng, SeedableRng};
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

/// The path of an installed program, or a panic naming the package to install.
pub fn require(program: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let p = Path::new(dir).join(program);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "{program} is required by this test (the real Prometheus 2.42 to compare against): \
         apt-get install -y prometheus"
    );
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn wait_ready(base: &str, what: &str, timeout: Duration, mut alive: impl FnMut() -> Result<(), String>) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let start = Instant::now();
    loop {
        if let Ok(r) = c.get(format!("{base}/-/ready")).send() {
            if r.status().is_success() {
                return;
            }
        }
        if let Err(e) = alive() {
            panic!("{what} exited before becoming ready: {e}");
        }
        assert!(start.elapsed() < timeout, "{what} not ready after {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Haetae running in this process, on a thread of its own; it lives until
/// the test process exits.
pub struct Haetae {
    pub url: String,
    _dir: tempfile::TempDir,
}

pub fn start_haetae(config: Option<&str>) -> Haetae {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    // Only the test's own data: no host metrics, no self-scrape, so answers
    // can be compared with a Prometheus holding the same data.
    const QUIET: &str = "self_monitoring:\n  host_metrics: false\n  scrape_self: false\n";
    let text = match config {
        Some(t) if t.contains("self_monitoring") => t.to_string(),
        Some(t) => format!("{QUIET}{t}"),
        None => QUIET.to_string(),
    };
    let config_file = {
        let p = dir.path().join("haetae.yml");
        std::fs::write(&p, text).expect("config");
        Some(p)
    };
    let opts = server::ServeOptions {
        config_file,
        listen: Some(format!("127.0.0.1:{port}").parse().expect("addr")),
        data_dir: Some(dir.path().join("data")),
    };
    let handle = std::thread::Builder::new()
        .name("haetae-serve".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(server::serve(opts))
        })
        .expect("thread");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, "haetae", Duration::from_secs(60), || {
        if handle.is_finished() {
            Err("serve returned".into())
        } else {
            Ok(())
        }
    });
    Haetae { url, _dir: dir }
}

/// A real Prometheus, killed on drop.
pub struct Prometheus {
    pub url: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub fn start_prometheus() -> Prometheus {
    let bin = require("prometheus");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").expect("config");
    let log = dir.path().join("prometheus.log");
    let out = std::fs::File::create(&log).expect("log");
    let err = out.try_clone().expect("log");
    let mut child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("cannot start prometheus");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&url, "prometheus", Duration::from_secs(60), || match child.try_wait() {
        Ok(Some(status)) => Err(format!(
            "{status}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )),
        _ => Ok(()),
    });
    Prometheus {
        url,
        child,
        log,
        _dir: dir,
    }
}

/// Sends series through remote write, in time-ordered batches (Prometheus'
/// head refuses samples far older than what it already holds).
pub fn remote_write_all(client: &reqwest::blocking::Client, base: &str, data: &[(Labels, Vec<Sample>)]) {
    let min_t = data.iter().flat_map(|(_, s)| s.first()).map(|s| s.t).min().unwrap_or(0);
    let max_t = data.iter().flat_map(|(_, s)| s.last()).map(|s| s.t).max().unwrap_or(0);
    let batch_ms = 20 * 60_000;
    let mut from = min_t;
    while from <= max_t {
        let to = from + batch_ms;
        let batch: Vec<(Labels, Vec<Sample>)> = data
            .iter()
            .map(|(l, s)| {
                (
                    l.clone(),
                    s.iter()
                        .filter(|p| p.t >= from && p.t < to)
                        .copied()
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        let body = wire::remote_write::encode(&batch, &[]).expect("encode");
        let r = client
            .post(format!("{base}/api/v1/write"))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .unwrap_or_else(|e| panic!("remote write to {base}: {e}"));
        let status = r.status();
        assert!(
            status.is_success(),
            "remote write to {base}: {status} {}",
            r.text().unwrap_or_default()
        );
        from = to;
    }
}

/// The generated data set and the times it spans.
pub struct DataSet {
    pub series: Vec<(Labels, Vec<Sample>)>,
    /// Start of the data, a whole minute (ms).
    pub t0: i64,
    /// Number of 15 s scrape steps.
    pub steps: i64,
}

impl DataSet {
    /// A whole-second time `minutes` minutes and 7 seconds after `t0`
    /// (never a multiple of 5 s, so subquery steps never land on it).
    pub fn at(&self, minutes: i64) -> i64 {
        self.t0 + minutes * 60_000 + 7_000
    }
}

const INSTANCES: [&str; 4] = ["host-0", "host-1", "host-2", "host-3"];

fn job_of(instance_idx: usize) -> &'static str {
    if instance_idx < 2 {
        "api"
    } else {
        "web"
    }
}

/// Two hours of 15 s samples ending about now: counters with resets,
/// gauges, classic histograms, gaps, stale series, NaN and ±Inf values.
pub fn generate() -> DataSet {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let t0 = now / 60_000 * 60_000 - 2 * 3_600_000;
    let steps: i64 = 2 * 60 * 4;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x4ae7ae);
    let mut series: Vec<(Labels, Vec<Sample>)> = Vec::new();
    // A timestamp on scrape `i`: the millisecond part is never 0.
    let stamp = |rng: &mut rand::rngs::StdRng, i: i64, phase_ms: i64| -> i64 {
        t0 + i * 15_000 + phase_ms + rng.gen_range(1..=999)
    };
    let mut push = |pairs: &[(&str, &str)], samples: Vec<Sample>| {
        series.push((Labels::from_pairs(pairs), samples));
    };

    for (ii, inst) in INSTANCES.iter().enumerate() {
        let job = job_of(ii);
        let phase = (ii as i64) * 3_000;
        // Counters with occasional resets.
        for method in ["GET", "POST"] {
            for code in ["200", "500"] {
                let base = if code == "200" { 10.0 } else { 0.5 } * if method == "GET" { 3.0 } else { 1.0 };
                let mut v = rng.gen_range(1000.0..5000.0f64).floor();
                let mut samples = Vec::new();
                for i in 0..steps {
                    if rng.gen_bool(0.004) {
                        v = 0.0;
                    }
                    v += (base * rng.gen_range(0.5..1.5f64)).round();
                    samples.push(Sample::new(stamp(&mut rng, i, phase), v));
                }
                push(
                    &[
                        ("__name__", "http_requests_total"),
                        ("job", job),
                        ("instance", inst),
                        ("method", method),
                        ("code", code),
                    ],
                    samples,
                );
            }
        }
        for cpu in ["0", "1"] {
            for (mode, rate) in [("idle", 12.0), ("user", 2.5), ("system", 0.5)] {
                let mut v = rng.gen_range(1000.0..5000.0f64);
                let mut samples = Vec::new();
                for i in 0..steps {
                    if ii == 3 && i == steps / 2 {
                        v = 0.0;
                    }
                    v += rate * rng.gen_range(0.8..1.2f64);
                    samples.push(Sample::new(stamp(&mut rng, i, phase), v));
                }
                push(
                    &[
                        ("__name__", "node_cpu_seconds_total"),
                        ("job", "node"),
                        ("instance", inst),
                        ("cpu", cpu),
                        ("mode", mode),
                    ],
                    samples,
                );
            }
        }
        for (kind, base) in [("used", 3.0e9), ("free", 5.0e9)] {
            let samples = (0..steps)
                .map(|i| {
                    let v = (base + 1.0e9 * ((i as f64) / 37.0 + ii as f64).sin() + rng.gen_range(0.0..1.0e7)).round();
                    Sample::new(stamp(&mut rng, i, phase), v)
                })
                .collect();
            push(
                &[
                    ("__name__", "node_memory_bytes"),
                    ("job", "node"),
                    ("instance", inst),
                    ("kind", kind),
                ],
                samples,
            );
        }
        let room = ["server room", "서울", "lab-1", "lab-2"][ii];
        let samples = (0..steps)
            .map(|i| {
                let v = 20.0 + 15.0 * ((i as f64) / 50.0 + ii as f64).cos() + rng.gen_range(-0.5..0.5) - 10.0;
                Sample::new(stamp(&mut rng, i, phase), v)
            })
            .collect();
        push(
            &[("__name__", "temperature_celsius"), ("instance", inst), ("room", room)],
            samples,
        );
        // A classic histogram.
        let bounds = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
        let mut counts: [f64; 7] = std::array::from_fn(|b| 1000.0 * (b as f64 + 1.0));
        let mut sum = 5000.0;
        let mut bucket_samples: Vec<Vec<Sample>> = vec![Vec::new(); 7];
        let mut sum_samples = Vec::new();
        let mut count_samples = Vec::new();
        for i in 0..steps {
            let t = stamp(&mut rng, i, phase);
            for _ in 0..rng.gen_range(0..20) {
                let d: f64 = rng.gen_range(0.0..1.0f64).powi(3) * 4.0 * (1.0 + ii as f64 / 2.0);
                sum += d;
                let b = bounds.iter().position(|&ub| d <= ub).unwrap_or(6);
                for c in counts.iter_mut().skip(b) {
                    *c += 1.0;
                }
            }
            for (b, c) in counts.iter().enumerate() {
                bucket_samples[b].push(Sample::new(t, *c));
            }
            sum_samples.push(Sample::new(t, sum));
            count_samples.push(Sample::new(t, counts[6]));
        }
        for (b, samples) in bucket_samples.into_iter().enumerate() {
            let le = if b < 6 { bounds[b].to_string() } else { "+Inf".into() };
            push(
                &[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", job),
                    ("instance", inst),
                    ("le", &le),
                ],
                samples,
            );
        }
        push(
            &[
                ("__name__", "request_duration_seconds_sum"),
                ("job", job),
                ("instance", inst),
            ],
            sum_samples,
        );
        push(
            &[
                ("__name__", "request_duration_seconds_count"),
                ("job", job),
                ("instance", inst),
            ],
            count_samples,
        );
        // Gaps and staleness.
        let mut flaky = Vec::new();
        for i in 0..steps {
            let minute = i / 4;
            let t = stamp(&mut rng, i, phase);
            let v = (i % 17) as f64 - 3.0;
            match ii {
                0 if (40..55).contains(&minute) => continue,
                1 if minute == 60 && i % 4 == 0 => flaky.push(Sample::new(t, STALE_NAN)),
                1 if (60..70).contains(&minute) => continue,
                2 if minute == 90 && i % 4 == 0 => flaky.push(Sample::new(t, STALE_NAN)),
                2 if minute >= 90 => continue,
                3 if minute < 50 => continue,
                _ => flaky.push(Sample::new(t, v)),
            }
        }
        push(&[("__name__", "flaky_gauge"), ("instance", inst), ("job", job)], flaky);
        let up = (0..steps)
            .map(|i| {
                let down = ii == 3 && (30..40).contains(&(i / 4));
                Sample::new(stamp(&mut rng, i, phase), if down { 0.0 } else { 1.0 })
            })
            .collect();
        push(&[("__name__", "up"), ("job", job), ("instance", inst)], up);
        let version = if ii < 3 { "1.2.3" } else { "1.3.0" };
        let info = (0..steps)
            .map(|i| Sample::new(stamp(&mut rng, i, phase), 1.0))
            .collect();
        push(
            &[("__name__", "build_info"), ("instance", inst), ("version", version)],
            info,
        );
        if ii < 2 {
            let weird = (0..steps)
                .map(|i| {
                    let v = match i % 29 {
                        5 => f64::NAN,
                        11 if ii == 0 => f64::INFINITY,
                        17 if ii == 1 => f64::NEG_INFINITY,
                        _ => (i as f64 * 0.37).sin() * 100.0,
                    };
                    Sample::new(stamp(&mut rng, i, phase), v)
                })
                .collect();
            push(&[("__name__", "weird_gauge"), ("instance", inst)], weird);
        }
    }
    DataSet { series, t0, steps }
}
