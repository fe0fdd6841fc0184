//! The `ingest` benchmark: the same pre-encoded remote-write bodies are pushed to each system in
//! turn, then each is made to persist its data, and ingest speed, CPU, memory and bytes on disk
//! per sample are compared.
//!
//! Phases per system: start on an empty data dir → wait ready → send all bodies with
//! `--senders` concurrent senders (timed; server CPU from `/proc`) → flush (Haetae:
//! `/api/v1/admin/tsdb/flush`; VictoriaMetrics: force_flush + force_merge; Prometheus: none) →
//! measure the data directory → verify by querying series back → stop.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::procfs;
use crate::sender::{self, Body, Tally};
use crate::systems::{agent, Binaries, Server, System};
use crate::workload::{self, Host, INTERVAL_MS};

/// Parameters of the ingest benchmark.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Systems to run, in order.
    pub(crate) systems: Vec<System>,
    /// Number of hosts.
    pub(crate) hosts: u64,
    /// Hours of data.
    pub(crate) hours: f64,
    /// Consecutive scrape timestamps per request.
    pub(crate) timestamps_per_request: usize,
    /// Target samples per request.
    pub(crate) batch_samples: usize,
    /// Handlers of the optional classic histogram per host (0 = none, as in `ingest`).
    pub(crate) histogram_handlers: usize,
    /// Concurrent senders.
    pub(crate) senders: usize,
    /// Workload seed.
    pub(crate) seed: u64,
    /// Binaries.
    pub(crate) bins: Binaries,
    /// Scratch directory for data dirs and logs.
    pub(crate) work_dir: PathBuf,
    /// Write the results as JSON here.
    pub(crate) json: Option<PathBuf>,
}

/// The encoded workload: per sender, its bodies in send order.
pub(crate) struct Encoded {
    shards: Vec<Vec<Body>>,
    /// Samples in all bodies.
    pub(crate) samples: u64,
    /// Series in the workload.
    pub(crate) series: u64,
    /// Scrape timestamps per series.
    pub(crate) timestamps: usize,
    /// First and last timestamp, ms.
    pub(crate) range_ms: (i64, i64),
    /// Series per host.
    pub(crate) series_per_host: usize,
    bytes: u64,
    requests: u64,
}

/// Generates and encodes the workload (before anything is timed).
pub(crate) fn encode_workload(p: &Params) -> Result<Encoded> {
    let n = ((p.hours * 3600.0 * 1000.0) / INTERVAL_MS as f64).round().max(1.0) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let end = now / INTERVAL_MS * INTERVAL_MS;
    let first = end - (n as i64 - 1) * INTERVAL_MS;
    let per_host = workload::series_per_host_with(p.histogram_handlers);
    let w = p.timestamps_per_request.clamp(1, n);
    let hosts_per_req = (p.batch_samples / (w * per_host)).max(1) as u64;
    let groups: Vec<(u64, u64)> = (0..p.hosts)
        .step_by(hosts_per_req as usize)
        .map(|h| (h, (h + hosts_per_req).min(p.hosts)))
        .collect();
    let senders = p.senders.max(1);
    eprintln!(
        "workload: {} hosts x {per_host} series = {} series, {n} scrapes of 15 s ({:.1} h) = {} samples; \
         {w} timestamps x {hosts_per_req} host(s) per request, {senders} senders",
        p.hosts,
        p.hosts * per_host as u64,
        p.hours,
        p.hosts * per_host as u64 * n as u64
    );
    let started = Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    let total_windows = n.div_ceil(w) as u64;
    let shards: Vec<Result<Vec<Body>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..senders)
            .map(|shard| {
                let my_groups: Vec<(u64, u64)> = groups.iter().copied().skip(shard).step_by(senders).collect();
                let done = &done;
                s.spawn(move || -> Result<Vec<Body>> {
                    let mut hosts: Vec<Vec<Host>> = my_groups
                        .iter()
                        .map(|&(a, b)| {
                            (a..b)
                                .map(|h| Host::with_histograms(p.seed, h, p.histogram_handlers))
                                .collect()
                        })
                        .collect();
                    let mut bodies = Vec::new();
                    let ts: Vec<i64> = (0..n as i64).map(|i| first + i * INTERVAL_MS).collect();
                    for (wi, window) in ts.chunks(w).enumerate() {
                        for group in hosts.iter_mut() {
                            let mut series = Vec::with_capacity(group.len() * per_host);
                            for h in group.iter_mut() {
                                h.append_series(window, &mut series);
                            }
                            let samples = (series.len() * window.len()) as u64;
                            bodies.push(Body {
                                bytes: workload::encode(series)?,
                                samples,
                            });
                        }
                        if shard == 0 {
                            done.store(wi as u64 + 1, Ordering::Relaxed);
                        }
                    }
                    Ok(bodies)
                })
            })
            .collect();
        let mut last = Instant::now();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() > Duration::from_secs(5) {
                last = Instant::now();
                eprintln!(
                    "  encoding: {:.0}%",
                    100.0 * done.load(Ordering::Relaxed) as f64 / total_windows as f64
                );
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("encoder panicked"))))
            .collect()
    });
    let shards = shards.into_iter().collect::<Result<Vec<_>>>()?;
    let samples = shards.iter().flatten().map(|b| b.samples).sum();
    let bytes = shards.iter().flatten().map(|b| b.bytes.len() as u64).sum();
    let requests = shards.iter().map(|s| s.len() as u64).sum();
    eprintln!(
        "encoded {requests} requests, {:.1} MiB, {:.1} bytes/sample on the wire, in {:.1} s",
        bytes as f64 / 1048576.0,
        bytes as f64 / samples as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(Encoded {
        shards,
        samples,
        series: p.hosts * per_host as u64,
        timestamps: n,
        range_ms: (first, end),
        series_per_host: per_host,
        bytes,
        requests,
    })
}

/// The figures measured for one system.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    /// Which system.
    pub(crate) system: String,
    /// Samples acknowledged.
    pub(crate) ok_samples: u64,
    /// Requests never acknowledged.
    pub(crate) failed_requests: u64,
    /// Retries.
    pub(crate) retries: u64,
    /// Wall time of the send phase, s.
    pub(crate) wall_s: f64,
    /// Server CPU during the send phase, s.
    pub(crate) cpu_ingest_s: f64,
    /// Server CPU during the flush phase, s.
    pub(crate) cpu_flush_s: f64,
    /// Peak RSS (VmHWM) at the end, bytes.
    pub(crate) peak_rss: u64,
    /// RSS right after ingest, bytes.
    pub(crate) rss_after_ingest: u64,
    /// Bytes on disk used for bytes/sample.
    pub(crate) disk_bytes: u64,
    /// Samples those bytes hold.
    pub(crate) disk_samples: u64,
    /// What the disk figure covers.
    pub(crate) disk_note: String,
    /// Flush note.
    pub(crate) flush_note: String,
    /// Verification results.
    pub(crate) checks: Vec<String>,
    /// First errors while sending.
    pub(crate) errors: Vec<String>,
}

impl Outcome {
    fn samples_per_s(&self) -> f64 {
        self.ok_samples as f64 / self.wall_s.max(1e-9)
    }
    fn cpu_per_m(&self) -> f64 {
        self.cpu_ingest_s / (self.ok_samples as f64 / 1e6).max(1e-9)
    }
    fn bytes_per_sample(&self) -> f64 {
        self.disk_bytes as f64 / self.disk_samples.max(1) as f64
    }
    fn rss_per_series(&self, series: u64) -> f64 {
        self.peak_rss as f64 / series.max(1) as f64
    }
}

/// Runs the benchmark on every requested system and prints the report.
pub(crate) fn run(p: &Params) -> Result<()> {
    std::fs::create_dir_all(&p.work_dir)?;
    let enc = encode_workload(p)?;
    let mut outcomes = Vec::new();
    for &system in &p.systems {
        eprintln!("== {system} ==");
        match run_one(system, p, &enc) {
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
    let report = report(&enc, &outcomes);
    println!("{report}");
    if let Some(path) = &p.json {
        let v = to_json(p, &enc, &outcomes);
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_one(system: System, p: &Params, enc: &Encoded) -> Result<Outcome> {
    let mut server = Server::start(system, &p.bins, &p.work_dir)?;
    let ready = server.wait_ready(Duration::from_secs(120))?;
    eprintln!(
        "  ready after {:.2} s (pid {}, {})",
        ready.as_secs_f64(),
        server.pid(),
        server.base
    );
    let pid = server.pid();
    let cpu0 = procfs::cpu_seconds(pid)?;
    let start = Instant::now();
    let tally = send_all(&server.base, enc);
    let wall = start.elapsed().as_secs_f64();
    let cpu1 = procfs::cpu_seconds(pid)?;
    let rss_after = procfs::memory(pid)?.rss;
    eprintln!(
        "  sent in {wall:.1} s: {} samples acknowledged, {} requests failed, {} retries; flushing",
        tally.ok_samples(),
        tally.failed(),
        tally.retries()
    );
    let flush_note = server.flush()?;
    let cpu2 = procfs::cpu_seconds(pid)?;
    let mem = procfs::memory(pid)?;
    let (disk_bytes, disk_samples, disk_note) = disk_usage(&server, tally.ok_samples())?;
    eprintln!("  {flush_note}; {disk_note}");
    let checks = verify(&server, enc, p.hosts)?;
    for c in &checks {
        eprintln!("  check: {c}");
    }
    server.stop(Duration::from_secs(120))?;
    Ok(Outcome {
        system: system.to_string(),
        ok_samples: tally.ok_samples(),
        failed_requests: tally.failed(),
        retries: tally.retries(),
        wall_s: wall,
        cpu_ingest_s: cpu1 - cpu0,
        cpu_flush_s: cpu2 - cpu1,
        peak_rss: mem.peak_rss,
        rss_after_ingest: rss_after,
        disk_bytes,
        disk_samples,
        disk_note,
        flush_note,
        checks,
        errors: tally.first_errors(),
    })
}

/// Sends every body of `enc` to `base`/api/v1/write, one thread per shard, printing progress.
pub(crate) fn send_all(base: &str, enc: &Encoded) -> Tally {
    let url = format!("{base}/api/v1/write");
    let tally = Tally::default();
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = enc
            .shards
            .iter()
            .map(|bodies| {
                let (tally, url) = (&tally, &url);
                s.spawn(move || {
                    let agent = agent(Duration::from_secs(300));
                    for body in bodies {
                        sender::send(&agent, url, body, tally);
                    }
                })
            })
            .collect();
        s.spawn(|| {
            sender::progress_loop("ingest", enc.samples, &tally, Duration::from_secs(5), || {
                finished.load(Ordering::Relaxed)
            })
        });
        for h in handles {
            let _ = h.join();
        }
        finished.store(true, Ordering::Relaxed);
    });
    tally
}

/// Prometheus block directories (those with a meta.json) under `dir`: (bytes, samples, count).
fn prometheus_blocks(dir: &std::path::Path) -> (u64, u64, usize) {
    let (mut bytes, mut samples, mut n) = (0, 0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = e.path().join("meta.json");
        let Ok(text) = std::fs::read_to_string(&meta) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        samples += v["stats"]["numSamples"].as_u64().unwrap_or(0);
        bytes += procfs::dir_bytes(&e.path());
        n += 1;
    }
    (bytes, samples, n)
}

fn disk_usage(server: &Server, acked: u64) -> Result<(u64, u64, String)> {
    let total = procfs::dir_bytes(&server.data_dir);
    if server.system == System::Haetae {
        // Where the bytes are: blocks (chunks + index), the mapped index cache, the rest (WAL, head).
        let (mut blocks, mut cache) = (0, 0);
        for tenant in std::fs::read_dir(server.data_dir.join("tenants"))
            .into_iter()
            .flatten()
            .flatten()
        {
            blocks += procfs::dir_bytes(&tenant.path().join("blocks"));
            cache += procfs::dir_bytes(&tenant.path().join("index_cache"));
        }
        let per = |b: u64| b as f64 / acked.max(1) as f64;
        let other = total.saturating_sub(blocks + cache);
        let note = format!(
            "whole data dir after flush: {total} bytes (blocks {blocks} = {:.3} B/sample, index_cache/ {cache} = {:.3} \
             B/sample, other {other})",
            per(blocks),
            per(cache),
        );
        return Ok((total, acked, note));
    }
    if server.system != System::Prometheus {
        let note = format!("whole data dir after flush: {total} bytes");
        return Ok((total, acked, note));
    }
    let (bytes, samples, n) = prometheus_blocks(&server.data_dir);
    let mut note = format!(
        "persisted blocks: {n} blocks, {bytes} bytes, {samples} samples ({:.3} B/sample); whole dir incl. WAL \
         and head chunks: {total} bytes ({:.3} B/sample)",
        bytes as f64 / samples.max(1) as f64,
        total as f64 / acked.max(1) as f64
    );
    // A snapshot writes the head out as a block too: all data as blocks (not compacted further).
    let snap = agent(Duration::from_secs(600))
        .post(&format!("{}/api/v1/admin/tsdb/snapshot", server.base))
        .call()
        .ok()
        .and_then(|r| r.into_json::<Value>().ok())
        .and_then(|v| v["data"]["name"].as_str().map(str::to_owned));
    if let Some(name) = snap {
        let (sb, ss, sn) = prometheus_blocks(&server.data_dir.join("snapshots").join(name));
        note.push_str(&format!(
            "; snapshot incl. head: {sn} blocks, {sb} bytes, {ss} samples ({:.3} B/sample)",
            sb as f64 / ss.max(1) as f64
        ));
    }
    if samples == 0 {
        return Ok((total, acked, note + " [bytes/sample column: whole dir]"));
    }
    Ok((bytes, samples, note + " [bytes/sample column: persisted blocks]"))
}

/// Queries series back so that a broken ingest cannot produce good numbers.
fn verify(server: &Server, enc: &Encoded, hosts: u64) -> Result<Vec<String>> {
    let agent = agent(Duration::from_secs(120));
    let (first, end) = enc.range_ms;
    let (start_s, end_s) = (first / 1000 - 60, end / 1000 + 60);
    let mut checks = Vec::new();
    let series_count = |matcher: &str| -> Result<Option<usize>> {
        let res = agent
            .get(&format!("{}/api/v1/series", server.base))
            .query("match[]", matcher)
            .query("start", &start_s.to_string())
            .query("end", &end_s.to_string())
            .call();
        match res {
            Ok(r) => {
                let v: Value = r.into_json()?;
                Ok(Some(v["data"].as_array().map_or(0, |a| a.len())))
            }
            Err(ureq::Error::Status(404, _)) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("GET /api/v1/series {matcher}: {e}")),
        }
    };
    for (matcher, want) in [
        ("up".to_string(), hosts as usize),
        ("node_cpu_seconds_total{instance=\"host-0:9100\"}".to_string(), 64),
        ("{instance=\"host-0:9100\"}".to_string(), enc.series_per_host),
    ] {
        match series_count(&matcher)? {
            None => checks.push("GET /api/v1/series: 404, skipped".into()),
            Some(got) => checks.push(format!(
                "series {matcher}: {got} (want {want}) {}",
                if got == want { "ok" } else { "MISMATCH" }
            )),
        }
    }
    // Evaluate a minute before the last sample: VictoriaMetrics hides the newest 30 s from
    // queries (-search.latencyOffset). The window covers everything up to that time.
    let at = end - 60_000;
    let range = (at - first) / 1000 + 15;
    let q = format!("count_over_time(up{{instance=\"host-0:9100\"}}[{range}s])");
    match agent
        .get(&format!("{}/api/v1/query", server.base))
        .query("query", &q)
        .query("time", &(at as f64 / 1000.0).to_string())
        .call()
    {
        Ok(r) => {
            let v: Value = r.into_json()?;
            let got = v["data"]["result"][0]["value"][1]
                .as_str()
                .unwrap_or("none")
                .to_string();
            let want = enc.timestamps.saturating_sub(4).to_string();
            checks.push(format!(
                "{q}: {got} (want {want}) {}",
                if got == want { "ok" } else { "MISMATCH" }
            ));
        }
        Err(ureq::Error::Status(code, _)) if code == 404 || code == 501 => {
            checks.push(format!("GET /api/v1/query: {code}, skipped"));
        }
        Err(e) => checks.push(format!("GET /api/v1/query failed: {e}")),
    }
    Ok(checks)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (a > 0.0 && b > 0.0 && a.is_finite() && b.is_finite()).then(|| a / b)
}

fn report(enc: &Encoded, outcomes: &[Outcome]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nIngest benchmark: {} series, {} samples ({} x 15 s scrapes), {} requests, {:.1} MiB of remote-write bodies\n",
        enc.series,
        enc.samples,
        enc.timestamps,
        enc.requests,
        enc.bytes as f64 / 1048576.0
    );
    let _ = writeln!(
        s,
        "{:<16} {:>12} {:>7} {:>9} {:>12} {:>10} {:>10} {:>10} {:>12} {:>10} {:>9}",
        "system",
        "acked",
        "failed",
        "wall s",
        "samples/s",
        "CPU s",
        "CPU s/M",
        "peak MiB",
        "RSS B/series",
        "disk MiB",
        "B/sample"
    );
    for o in outcomes {
        let _ = writeln!(
            s,
            "{:<16} {:>12} {:>7} {:>9.1} {:>12.0} {:>10.2} {:>10.3} {:>10.1} {:>12.0} {:>10.1} {:>9.3}",
            o.system,
            o.ok_samples,
            o.failed_requests,
            o.wall_s,
            o.samples_per_s(),
            o.cpu_ingest_s,
            o.cpu_per_m(),
            o.peak_rss as f64 / 1048576.0,
            o.rss_per_series(enc.series),
            o.disk_bytes as f64 / 1048576.0,
            o.bytes_per_sample()
        );
    }
    let _ = writeln!(s, "\nNotes:");
    for o in outcomes {
        let _ = writeln!(s, "  {}: {}; {}", o.system, o.flush_note, o.disk_note);
        for c in &o.checks {
            let _ = writeln!(s, "    check: {c}");
        }
        for e in &o.errors {
            let _ = writeln!(s, "    error: {e}");
        }
    }
    let find = |name: &str| outcomes.iter().find(|o| o.system == name && o.ok_samples > 0);
    if let Some(h) = find("haetae") {
        let _ = writeln!(s, "\nRatios (Haetae / other; lower is better except samples/s):");
        for other in [find("victoriametrics"), find("prometheus")].into_iter().flatten() {
            let fmt = |r: Option<f64>| r.map_or("n/a".to_string(), |r| format!("{r:.2}x"));
            let _ = writeln!(
                s,
                "  haetae/{:<16} bytes/sample {:>7}  CPU s/M {:>7}  RSS/series {:>7}  samples/s {:>7}",
                other.system,
                fmt(ratio(h.bytes_per_sample(), other.bytes_per_sample())),
                fmt(ratio(h.cpu_per_m(), other.cpu_per_m())),
                fmt(ratio(h.rss_per_series(enc.series), other.rss_per_series(enc.series))),
                fmt(ratio(h.samples_per_s(), other.samples_per_s())),
            );
        }
        let _ = writeln!(s, "\nGoals (issue 2):");
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        if let Some(vm) = find("victoriametrics") {
            if let Some(r) = ratio(h.bytes_per_sample(), vm.bytes_per_sample()) {
                let _ = writeln!(
                    s,
                    "  bytes/sample <= 0.75x VictoriaMetrics: {r:.2}x {}",
                    verdict(r <= 0.75)
                );
            }
            if let Some(r) = ratio(h.rss_per_series(enc.series), vm.rss_per_series(enc.series)) {
                let _ = writeln!(
                    s,
                    "  peak RSS/series < VictoriaMetrics:     {r:.2}x {}",
                    verdict(r < 1.0)
                );
            }
        }
        if let Some(pr) = find("prometheus") {
            if let Some(r) = ratio(h.cpu_per_m(), pr.cpu_per_m()) {
                let _ = writeln!(
                    s,
                    "  CPU s/M samples <= 0.5x Prometheus:    {r:.2}x {}",
                    verdict(r <= 0.5)
                );
            }
        }
        let per = h.rss_per_series(enc.series);
        if enc.series >= 500_000 {
            let _ = writeln!(
                s,
                "  peak RSS/series <= 1 KiB:              {per:.0} B {}",
                verdict(per <= 1024.0)
            );
        } else {
            // The process's fixed memory dominates a per-series figure of a few
            // thousand series; the goal is about a million (`scripts/bench restart`).
            let _ = writeln!(
                s,
                "  peak RSS/series <= 1 KiB:              {per:.0} B (not judged below 500k series: \
                 fixed process memory dominates; see `scripts/bench restart`, 1M series)"
            );
        }
    }
    let _ = writeln!(
        s,
        "\nCPU and RSS are of the server process (/proc/<pid>/stat utime+stime during the send phase; VmHWM at the \
         end). Disk sizes are apparent file sizes."
    );
    s
}

fn to_json(p: &Params, enc: &Encoded, outcomes: &[Outcome]) -> Value {
    json!({
        "benchmark": "ingest",
        "hosts": p.hosts,
        "hours": p.hours,
        "series": enc.series,
        "samples": enc.samples,
        "requests": enc.requests,
        "wire_bytes": enc.bytes,
        "senders": p.senders,
        "timestamps_per_request": p.timestamps_per_request,
        "seed": p.seed,
        "systems": outcomes.iter().map(|o| json!({
            "system": o.system,
            "acked_samples": o.ok_samples,
            "failed_requests": o.failed_requests,
            "retries": o.retries,
            "wall_seconds": o.wall_s,
            "samples_per_second": o.samples_per_s(),
            "cpu_ingest_seconds": o.cpu_ingest_s,
            "cpu_seconds_per_million_samples": o.cpu_per_m(),
            "cpu_flush_seconds": o.cpu_flush_s,
            "peak_rss_bytes": o.peak_rss,
            "rss_after_ingest_bytes": o.rss_after_ingest,
            "peak_rss_bytes_per_series": o.rss_per_series(enc.series),
            "disk_bytes": o.disk_bytes,
            "disk_samples": o.disk_samples,
            "bytes_per_sample": o.bytes_per_sample(),
            "disk_note": o.disk_note,
            "flush_note": o.flush_note,
            "checks": o.checks,
            "errors": o.errors,
        })).collect::<Vec<_>>(),
    })
}
