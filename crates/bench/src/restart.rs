//! The `restart` benchmark (Haetae only): fill the head with N active series × hours of 15 s
//! samples, then time how long `serve` takes to answer `/-/ready` after a clean stop (SIGTERM)
//! and after `kill -9` (WAL replay), and report RSS per active series after ingest.
//!
//! The data is too large to pre-encode (1M series × 480 samples), so each sender has its own
//! generator thread that encodes bodies on the fly into a small bounded queue. Requests carry
//! one host's series over `--timestamps-per-request` consecutive scrapes; every shard walks
//! time windows in order, so all series advance in time order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::procfs;
use crate::sender::{self, Body, Tally};
use crate::systems::{agent, Binaries, Server, System};
use crate::workload::{self, Host, INTERVAL_MS};

/// Parameters of the restart benchmark.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Active series wanted (rounded up to whole hosts).
    pub(crate) series: u64,
    /// Hours of samples in the head.
    pub(crate) hours: f64,
    /// Scrapes pushed after the clean restart, before `kill -9`.
    pub(crate) extra_scrapes: usize,
    /// Consecutive scrape timestamps per request.
    pub(crate) timestamps_per_request: usize,
    /// Concurrent senders.
    pub(crate) senders: usize,
    /// Workload seed.
    pub(crate) seed: u64,
    /// Binaries.
    pub(crate) bins: Binaries,
    /// Scratch directory.
    pub(crate) work_dir: PathBuf,
    /// Write the results as JSON here.
    pub(crate) json: Option<PathBuf>,
    /// How long to wait for readiness.
    pub(crate) ready_timeout: Duration,
}

/// Generates and sends `timestamps` for every host, shard by shard, on the fly.
fn push(server: &Server, shards: &mut [Vec<Host>], timestamps: &[i64], w: usize, label: &str) -> Result<Tally> {
    let url = format!("{}/api/v1/write", server.base);
    let tally = Tally::default();
    let per_host = shards.iter().flatten().next().map_or(0, |h| h.series.len()) as u64;
    let total = shards.iter().map(|s| s.len() as u64).sum::<u64>() * per_host * timestamps.len() as u64;
    let finished = AtomicBool::new(false);
    let errors: Vec<Result<()>> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for hosts in shards.iter_mut() {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Body>(8);
            handles.push(s.spawn(move || -> Result<()> {
                for window in timestamps.chunks(w) {
                    for h in hosts.iter_mut() {
                        let mut series = Vec::with_capacity(h.series.len());
                        h.append_series(window, &mut series);
                        let samples = (series.len() * window.len()) as u64;
                        let body = Body {
                            bytes: workload::encode(series)?,
                            samples,
                        };
                        if tx.send(body).is_err() {
                            return Ok(());
                        }
                    }
                }
                Ok(())
            }));
            let (tally, url) = (&tally, &url);
            handles.push(s.spawn(move || -> Result<()> {
                let agent = agent(Duration::from_secs(300));
                for body in rx {
                    sender::send(&agent, url, &body, tally);
                }
                Ok(())
            }));
        }
        s.spawn(|| {
            sender::progress_loop(label, total, &tally, Duration::from_secs(10), || {
                finished.load(Ordering::Relaxed)
            })
        });
        let res = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("thread panicked"))))
            .collect();
        finished.store(true, Ordering::Relaxed);
        res
    });
    errors.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(tally)
}

/// Runs the restart benchmark and prints the report.
pub(crate) fn run(p: &Params) -> Result<()> {
    std::fs::create_dir_all(&p.work_dir)?;
    let per_host = workload::series_per_host() as u64;
    let hosts = p.series.div_ceil(per_host);
    let series = hosts * per_host;
    let n = ((p.hours * 3600.0 * 1000.0) / INTERVAL_MS as f64).round().max(1.0) as usize;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let end = (now / INTERVAL_MS - p.extra_scrapes as i64) * INTERVAL_MS;
    let first = end - (n as i64 - 1) * INTERVAL_MS;
    let main_ts: Vec<i64> = (0..n as i64).map(|i| first + i * INTERVAL_MS).collect();
    let extra_ts: Vec<i64> = (1..=p.extra_scrapes as i64).map(|i| end + i * INTERVAL_MS).collect();
    let w = p.timestamps_per_request.clamp(1, n);
    let senders = p.senders.max(1);
    eprintln!(
        "restart: {hosts} hosts x {per_host} = {series} active series x {n} scrapes = {} samples, then {} more \
         scrapes; {w} timestamps per request, {senders} senders",
        series * n as u64,
        p.extra_scrapes
    );
    eprintln!("building {hosts} hosts");
    let mut shards: Vec<Vec<Host>> = (0..senders).map(|_| Vec::new()).collect();
    for h in 0..hosts {
        shards[(h % senders as u64) as usize].push(Host::new(p.seed, h));
    }

    let mut server = Server::start(System::Haetae, &p.bins, &p.work_dir)?;
    server.wait_ready(p.ready_timeout)?;
    let pid = server.pid();
    let cpu0 = procfs::cpu_seconds(pid)?;
    let t0 = Instant::now();
    let tally = push(&server, &mut shards, &main_ts, w, "fill")?;
    let fill_s = t0.elapsed().as_secs_f64();
    let cpu_fill = procfs::cpu_seconds(pid)? - cpu0;
    let mem = procfs::memory(pid)?;
    eprintln!(
        "  filled in {fill_s:.1} s: {} samples acknowledged, {} requests failed; RSS {:.0} MiB (peak {:.0} MiB)",
        tally.ok_samples(),
        tally.failed(),
        mem.rss as f64 / 1048576.0,
        mem.peak_rss as f64 / 1048576.0
    );
    let disk_before = procfs::dir_bytes(&server.data_dir);

    eprintln!("  clean stop (SIGTERM)");
    let stop_s = server.stop(Duration::from_secs(600))?.as_secs_f64();
    server.restart(&p.work_dir)?;
    let clean_ready = server.wait_ready(p.ready_timeout)?.as_secs_f64();
    eprintln!("  stopped in {stop_s:.2} s; ready {clean_ready:.2} s after restart");
    let rss_after_clean = procfs::memory(server.pid())?.rss;

    let extra = push(&server, &mut shards, &extra_ts, w, "extra")?;
    eprintln!("  pushed {} more samples; kill -9", extra.ok_samples());
    let disk_before_kill = procfs::dir_bytes(&server.data_dir);
    server.kill()?;
    server.restart(&p.work_dir)?;
    let kill_ready = server.wait_ready(p.ready_timeout)?.as_secs_f64();
    eprintln!("  ready {kill_ready:.2} s after kill -9 and restart");
    let rss_after_kill = procfs::memory(server.pid())?.rss;

    let mut checks = Vec::new();
    let res = agent(Duration::from_secs(300))
        .get(&format!("{}/api/v1/series", server.base))
        .query("match[]", "up")
        .query("start", &(first / 1000 - 60).to_string())
        .query("end", &(now / 1000 + 120).to_string())
        .call();
    match res {
        Ok(r) => {
            let v: serde_json::Value = r.into_json()?;
            let got = v["data"].as_array().map_or(0, |a| a.len()) as u64;
            checks.push(format!(
                "series up after restarts: {got} (want {hosts}) {}",
                if got == hosts { "ok" } else { "MISMATCH" }
            ));
        }
        Err(ureq::Error::Status(404, _)) => checks.push("GET /api/v1/series: 404, skipped".into()),
        Err(e) => checks.push(format!("GET /api/v1/series failed: {e}")),
    }
    server.stop(Duration::from_secs(600))?;

    let per_series = mem.rss as f64 / series as f64;
    let peak_per_series = mem.peak_rss as f64 / series as f64;
    let mut out = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        out,
        "\nRestart benchmark (Haetae): {series} active series, {n} scrapes of 15 s in the head"
    );
    let _ = writeln!(
        out,
        "  fill: {} samples acked, {} failed requests, {fill_s:.1} s ({:.0} samples/s, {:.3} CPU s/M samples)",
        tally.ok_samples(),
        tally.failed(),
        tally.ok_samples() as f64 / fill_s,
        cpu_fill / (tally.ok_samples() as f64 / 1e6).max(1e-9)
    );
    let _ = writeln!(
        out,
        "  RSS after fill: {:.0} MiB = {per_series:.0} B/active series (peak {:.0} MiB = {peak_per_series:.0} B/series) {}",
        mem.rss as f64 / 1048576.0,
        mem.peak_rss as f64 / 1048576.0,
        if peak_per_series <= 1024.0 { "PASS (peak <= 1 KiB)" } else { "FAIL (peak > 1 KiB)" }
    );
    let _ = writeln!(
        out,
        "  data dir before clean stop: {:.0} MiB; before kill -9: {:.0} MiB",
        disk_before as f64 / 1048576.0,
        disk_before_kill as f64 / 1048576.0
    );
    let _ = writeln!(out, "  clean stop (SIGTERM) took {stop_s:.2} s");
    let _ = writeln!(
        out,
        "  ready after clean restart: {clean_ready:.2} s {}",
        if clean_ready < 10.0 {
            "PASS (< 10 s)"
        } else {
            "FAIL (>= 10 s)"
        }
    );
    let _ = writeln!(
        out,
        "  ready after kill -9:       {kill_ready:.2} s {}",
        if kill_ready < 30.0 {
            "PASS (< 30 s)"
        } else {
            "FAIL (>= 30 s)"
        }
    );
    let _ = writeln!(
        out,
        "  RSS right after ready: clean {:.0} MiB, kill -9 {:.0} MiB",
        rss_after_clean as f64 / 1048576.0,
        rss_after_kill as f64 / 1048576.0
    );
    for c in &checks {
        let _ = writeln!(out, "  check: {c}");
    }
    for e in tally.first_errors().iter().chain(extra.first_errors().iter()) {
        let _ = writeln!(out, "  error: {e}");
    }
    println!("{out}");
    if let Some(path) = &p.json {
        let v = json!({
            "benchmark": "restart",
            "series": series,
            "scrapes": n,
            "acked_samples": tally.ok_samples(),
            "failed_requests": tally.failed() + extra.failed(),
            "fill_seconds": fill_s,
            "fill_cpu_seconds": cpu_fill,
            "rss_bytes": mem.rss,
            "peak_rss_bytes": mem.peak_rss,
            "rss_bytes_per_series": per_series,
            "clean_stop_seconds": stop_s,
            "ready_after_clean_restart_seconds": clean_ready,
            "ready_after_kill_seconds": kill_ready,
            "checks": checks,
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
