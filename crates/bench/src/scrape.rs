//! The `scrape` benchmark (issue 4): N synthetic node_exporter-like targets, each on its own
//! port of one local fixture server, scraped by Haetae (`haetae serve --config` with a
//! `scrape_configs` section) and by Prometheus, one system at a time, for the same duration
//! and with the identical `scrape_configs` section. Prints samples/s scraped, server CPU seconds
//! per million scraped samples, peak RSS, and the ratio Haetae/Prometheus.
//!
//! The fixture ([`Fixture`]) runs in this process on a small tokio runtime: one listener per
//! target on 127.0.0.1, HTTP/1.1 with keep-alive, a text-format body generated per request
//! from [`workload::Host`] (node_exporter names plus a classic histogram), so counters move
//! between scrapes. It counts the requests and samples it served; those counts, taken only
//! while the measured window is open, are the "samples scraped". The scraper's CPU comes from
//! `/proc/<pid>/stat`, its peak RSS from `VmHWM`.
//!
//! Per system: start with the config → wait two intervals (first scrapes create the series;
//! steady state is what is measured) → measure `--duration` seconds → check with
//! `count(up == 1)` that every target was scraped and up → stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::procfs;
use crate::query::HAETAE_QUIET_CONFIG;
use crate::systems::{agent, Binaries, Server, System};
use crate::workload::Host;

/// Parameters of the scrape benchmark.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Systems to run, in order.
    pub(crate) systems: Vec<System>,
    /// Number of targets (one port each).
    pub(crate) targets: usize,
    /// Histogram handlers per target (14 series each) on top of ~313 node_exporter series.
    pub(crate) histogram_handlers: usize,
    /// Scrape interval, seconds.
    pub(crate) interval_secs: u64,
    /// Measured seconds per system (after the warm-up).
    pub(crate) duration_secs: u64,
    /// Warm-up intervals before measuring.
    pub(crate) warmup_intervals: u64,
    /// Workload seed.
    pub(crate) seed: u64,
    /// Binaries.
    pub(crate) bins: Binaries,
    /// Scratch directory.
    pub(crate) work_dir: PathBuf,
    /// Write the results as JSON here.
    pub(crate) json: Option<PathBuf>,
}

/// One synthetic target: its series, their current state, and the pre-formatted line heads.
struct Target {
    host: Host,
    /// Series of `host` that are exposed (the scraper adds `up` and `scrape_*` itself).
    exposed: Vec<usize>,
    /// `name{labels} ` per exposed series.
    heads: Vec<String>,
}

impl Target {
    fn new(seed: u64, id: u64, handlers: usize) -> Target {
        let host = Host::with_histograms(seed, id, handlers);
        let mut exposed = Vec::new();
        let mut heads = Vec::new();
        for (i, def) in host.series.iter().enumerate() {
            let name = def
                .labels
                .iter()
                .find(|l| l.name == "__name__")
                .map_or("", |l| l.value.as_str());
            if name == "up" || name.starts_with("scrape_") {
                continue;
            }
            let labels: Vec<String> = def
                .labels
                .iter()
                .filter(|l| !matches!(l.name.as_str(), "__name__" | "instance" | "job"))
                .map(|l| format!("{}=\"{}\"", l.name, l.value))
                .collect();
            heads.push(if labels.is_empty() {
                format!("{name} ")
            } else {
                format!("{name}{{{}}} ", labels.join(","))
            });
            exposed.push(i);
        }
        Target { host, exposed, heads }
    }

    /// The exposition body of one scrape at `t_ms`; every series advances by one step.
    fn body(&mut self, t_ms: i64) -> Vec<u8> {
        use std::fmt::Write;
        let mut s = String::with_capacity(self.heads.len() * 80);
        for (k, &i) in self.exposed.iter().enumerate() {
            let v = self.host.step(i, t_ms);
            s.push_str(&self.heads[k]);
            let _ = writeln!(s, "{v}");
        }
        s.into_bytes()
    }
}

/// Counters of what the fixture served.
#[derive(Default)]
struct Served {
    requests: AtomicU64,
    samples: AtomicU64,
    bytes: AtomicU64,
}

/// The fixture: N targets on N ports, served until dropped.
struct Fixture {
    ports: Vec<u16>,
    series_per_target: usize,
    served: Arc<Served>,
    counting: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn start(p: &Params) -> Result<Fixture> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("fixture")
            .build()?;
        let served = Arc::new(Served::default());
        let counting = Arc::new(AtomicBool::new(false));
        let mut ports = Vec::with_capacity(p.targets);
        let mut series_per_target = 0;
        for id in 0..p.targets {
            let target = Target::new(p.seed, id as u64, p.histogram_handlers);
            series_per_target = target.exposed.len();
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a fixture port")?;
            std_listener.set_nonblocking(true)?;
            ports.push(std_listener.local_addr()?.port());
            let target = Arc::new(Mutex::new(target));
            let (served, counting) = (served.clone(), counting.clone());
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            runtime.spawn(async move {
                loop {
                    let Ok((conn, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let (target, served, counting) = (target.clone(), served.clone(), counting.clone());
                    tokio::spawn(async move {
                        let _ = serve_conn(conn, target, served, counting).await;
                    });
                }
            });
        }
        Ok(Fixture {
            ports,
            series_per_target,
            served,
            counting,
            _runtime: runtime,
        })
    }
}

/// Serves HTTP/1.1 requests on one connection until the peer closes it.
async fn serve_conn(
    mut conn: tokio::net::TcpStream,
    target: Arc<Mutex<Target>>,
    served: Arc<Served>,
    counting: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        // Read one request head (GET, no body).
        let end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let close = head.contains("connection: close");
        buf.drain(..end);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let (body, samples) = {
            let mut t = target.lock().unwrap_or_else(|p| p.into_inner());
            (t.body(now_ms), t.exposed.len() as u64)
        };
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        conn.write_all(header.as_bytes()).await?;
        conn.write_all(&body).await?;
        if counting.load(Ordering::Relaxed) {
            served.requests.fetch_add(1, Ordering::Relaxed);
            served.samples.fetch_add(samples, Ordering::Relaxed);
            served.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        }
        if close {
            return Ok(());
        }
    }
}

/// The `scrape_configs` section (with `global`), the same for both systems.
fn scrape_config(p: &Params, ports: &[u16]) -> String {
    let mut s = format!(
        "global:\n  scrape_interval: {i}s\n  scrape_timeout: {t}s\nscrape_configs:\n  - job_name: node\n    \
         scrape_interval: {i}s\n    scrape_timeout: {t}s\n    static_configs:\n      - targets:\n",
        i = p.interval_secs,
        t = p.interval_secs.clamp(1, 10)
    );
    for port in ports {
        s.push_str(&format!("          - 127.0.0.1:{port}\n"));
    }
    s
}

/// The figures of one system.
#[derive(Debug, Clone, Default)]
struct Outcome {
    system: String,
    wall_s: f64,
    requests: u64,
    samples: u64,
    bytes: u64,
    cpu_s: f64,
    peak_rss: u64,
    rss: u64,
    checks: Vec<String>,
}

impl Outcome {
    fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.wall_s.max(1e-9)
    }
    fn cpu_per_m(&self) -> f64 {
        self.cpu_s / (self.samples as f64 / 1e6).max(1e-9)
    }
}

/// Runs the benchmark and prints the report.
pub(crate) fn run(p: &Params) -> Result<()> {
    std::fs::create_dir_all(&p.work_dir)?;
    let fixture = Fixture::start(p)?;
    eprintln!(
        "fixture: {} targets x {} series on ports {}..{}, scraped every {} s; {} s measured per system",
        p.targets,
        fixture.series_per_target,
        fixture.ports.iter().min().copied().unwrap_or(0),
        fixture.ports.iter().max().copied().unwrap_or(0),
        p.interval_secs,
        p.duration_secs
    );
    let prom_cfg = scrape_config(p, &fixture.ports);
    let haetae_cfg = format!("{HAETAE_QUIET_CONFIG}{prom_cfg}");
    let mut outcomes = Vec::new();
    for &system in &p.systems {
        eprintln!("== {system} ==");
        let cfg = if system == System::Haetae {
            &haetae_cfg
        } else {
            &prom_cfg
        };
        match run_one(system, p, &fixture, cfg) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("{system}: benchmark failed: {e:#}");
                outcomes.push(Outcome {
                    system: system.to_string(),
                    checks: vec![format!("FAILED: {e:#}")],
                    ..Outcome::default()
                });
            }
        }
    }
    let text = report(p, &fixture, &outcomes);
    println!("{text}");
    if let Some(path) = &p.json {
        let v = to_json(p, &fixture, &outcomes);
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_one(system: System, p: &Params, fixture: &Fixture, cfg: &str) -> Result<Outcome> {
    let mut server = Server::start_with_config(system, &p.bins, &p.work_dir, Some(cfg))?;
    let ready = server.wait_ready(Duration::from_secs(120))?;
    let pid = server.pid();
    let warmup = Duration::from_secs(p.interval_secs * p.warmup_intervals.max(1) + 2);
    eprintln!(
        "  ready after {:.2} s (pid {pid}); warming up {:.0} s",
        ready.as_secs_f64(),
        warmup.as_secs_f64()
    );
    std::thread::sleep(warmup);
    let base = (
        fixture.served.requests.load(Ordering::Relaxed),
        fixture.served.samples.load(Ordering::Relaxed),
        fixture.served.bytes.load(Ordering::Relaxed),
    );
    fixture.counting.store(true, Ordering::Relaxed);
    let cpu0 = procfs::cpu_seconds(pid)?;
    let start = Instant::now();
    let mut last = Instant::now();
    while start.elapsed() < Duration::from_secs(p.duration_secs) {
        std::thread::sleep(Duration::from_millis(200));
        if last.elapsed() >= Duration::from_secs(15) {
            last = Instant::now();
            let cpu = procfs::cpu_seconds(pid)? - cpu0;
            let samples = fixture.served.samples.load(Ordering::Relaxed) - base.1;
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "  {secs:.0} s: {:.0} samples/s scraped, {:.3} cores",
                samples as f64 / secs,
                cpu / secs
            );
        }
    }
    let cpu1 = procfs::cpu_seconds(pid)?;
    let wall = start.elapsed().as_secs_f64();
    fixture.counting.store(false, Ordering::Relaxed);
    let mem = procfs::memory(pid)?;
    let o = Outcome {
        system: system.to_string(),
        wall_s: wall,
        requests: fixture.served.requests.load(Ordering::Relaxed) - base.0,
        samples: fixture.served.samples.load(Ordering::Relaxed) - base.1,
        bytes: fixture.served.bytes.load(Ordering::Relaxed) - base.2,
        cpu_s: cpu1 - cpu0,
        peak_rss: mem.peak_rss,
        rss: mem.rss,
        checks: verify(&server, p.targets, fixture.series_per_target),
    };
    for c in &o.checks {
        eprintln!("  check: {c}");
    }
    server.stop(Duration::from_secs(120))?;
    Ok(o)
}

/// Asks the server whether every target is up and how much it scraped last time.
fn verify(server: &Server, targets: usize, per_target: usize) -> Vec<String> {
    let ag = agent(Duration::from_secs(60));
    let instant = |q: &str| -> Result<Option<f64>> {
        let v: Value = ag
            .get(&format!("{}/api/v1/query", server.base))
            .query("query", q)
            .call()
            .with_context(|| format!("query {q}"))?
            .into_json()?;
        Ok(v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse().ok()))
    };
    let mut checks = Vec::new();
    for (q, want) in [
        ("count(up == 1)", targets as f64),
        ("sum(scrape_samples_scraped)", (targets * per_target) as f64),
    ] {
        checks.push(match instant(q) {
            Ok(Some(got)) => format!(
                "{q} = {got} (want {want}) {}",
                if got == want { "ok" } else { "MISMATCH" }
            ),
            Ok(None) => format!("{q}: empty result MISMATCH"),
            Err(e) => format!("{q}: {e:#}"),
        });
    }
    let targets_api = ag
        .get(&format!("{}/api/v1/targets", server.base))
        .call()
        .ok()
        .and_then(|r| r.into_json::<Value>().ok());
    if let Some(v) = targets_api {
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        checks.push(format!(
            "/api/v1/targets: {} active, {up} up {}",
            active.len(),
            if up == targets { "ok" } else { "MISMATCH" }
        ));
    }
    checks
}

fn report(p: &Params, fixture: &Fixture, outcomes: &[Outcome]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nScrape benchmark: {} targets x {} series (node_exporter-like, {} histogram handlers), every {} s; {} s \
         measured per system after {} warm-up interval(s)\n",
        p.targets,
        fixture.series_per_target,
        p.histogram_handlers,
        p.interval_secs,
        p.duration_secs,
        p.warmup_intervals
    );
    let _ = writeln!(
        s,
        "{:<12} {:>9} {:>12} {:>12} {:>9} {:>8} {:>10} {:>10} {:>10}",
        "system", "scrapes", "samples", "samples/s", "CPU s", "cores", "CPU s/M", "peak MiB", "RSS MiB"
    );
    for o in outcomes {
        let _ = writeln!(
            s,
            "{:<12} {:>9} {:>12} {:>12.0} {:>9.2} {:>8.3} {:>10.3} {:>10.1} {:>10.1}",
            o.system,
            o.requests,
            o.samples,
            o.samples_per_s(),
            o.cpu_s,
            o.cpu_s / o.wall_s.max(1e-9),
            o.cpu_per_m(),
            o.peak_rss as f64 / 1048576.0,
            o.rss as f64 / 1048576.0
        );
    }
    let _ = writeln!(s, "\nChecks:");
    for o in outcomes {
        for c in &o.checks {
            let _ = writeln!(s, "  {}: {c}", o.system);
        }
    }
    let find = |n: &str| outcomes.iter().find(|o| o.system == n && o.samples > 0);
    if let (Some(h), Some(pr)) = (find("haetae"), find("prometheus")) {
        let r = h.cpu_per_m() / pr.cpu_per_m();
        let _ = writeln!(
            s,
            "\nRatios haetae/prometheus: CPU s/M samples {r:.2}x, peak RSS {:.2}x, samples/s {:.2}x",
            h.peak_rss as f64 / pr.peak_rss.max(1) as f64,
            h.samples_per_s() / pr.samples_per_s()
        );
        let _ = writeln!(
            s,
            "Goal (issue 4): CPU per scraped sample <= 0.5x Prometheus: {r:.2}x {}",
            if r <= 0.5 { "PASS" } else { "FAIL" }
        );
    }
    let _ = writeln!(
        s,
        "\nSamples = series in the bodies the fixture served during the measured window (the scraper's own \
         up/scrape_* series not counted); CPU = server utime+stime from /proc/<pid>/stat in that window; peak RSS = VmHWM."
    );
    s
}

fn to_json(p: &Params, fixture: &Fixture, outcomes: &[Outcome]) -> Value {
    json!({
        "benchmark": "scrape",
        "targets": p.targets,
        "series_per_target": fixture.series_per_target,
        "interval_seconds": p.interval_secs,
        "duration_seconds": p.duration_secs,
        "systems": outcomes.iter().map(|o| json!({
            "system": o.system,
            "wall_seconds": o.wall_s,
            "scrapes": o.requests,
            "samples": o.samples,
            "bytes": o.bytes,
            "samples_per_second": o.samples_per_s(),
            "cpu_seconds": o.cpu_s,
            "cpu_seconds_per_million_samples": o.cpu_per_m(),
            "peak_rss_bytes": o.peak_rss,
            "rss_bytes": o.rss,
            "checks": o.checks,
        })).collect::<Vec<_>>(),
    })
}
