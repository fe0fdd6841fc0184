//! The `query` benchmark (issue 3, "Performance"): the same node_exporter-like data, with a
//! classic histogram added, is remote-written into Haetae and Prometheus, then one
//! dashboard-like battery of PromQL queries runs against both in the same run, alternating
//! which system goes first on every iteration. Prints median and p90 latency per query and
//! system and the ratio Haetae/Prometheus, after checking that both answered the same.
//!
//! With `--ingest-latency` it then measures remote-write latency of small steady write batches
//! into each system, first alone and then while a heavy 24 h range query over all series runs
//! in a loop (issue 3, "Limits": ingestion must keep its latency).
//!
//! Phases: encode the workload → start both servers (Haetae without self-monitoring, so both
//! hold exactly the same series) → ingest into Prometheus, then Haetae → flush Haetae, wait
//! for Prometheus' head compaction to settle → one untimed warm-up round whose answers are
//! compared → `--iterations` timed rounds → optional ingest-latency phase.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::ingest::{self, Encoded};
use crate::procfs;
use crate::sender::{self, Body, Tally};
use crate::systems::{agent, Server, System};
use crate::workload::{self, Host};

/// Haetae's configuration for the query benchmarks: no host metrics and no self-scrape, so it
/// holds exactly the series that Prometheus holds.
pub(crate) const HAETAE_QUIET_CONFIG: &str = "self_monitoring:\n  host_metrics: false\n  scrape_self: false\n";

/// Parameters of the query benchmark.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// The workload (its `systems` field is ignored: always Haetae and Prometheus).
    pub(crate) ingest: ingest::Params,
    /// Timed rounds of the battery (after one untimed warm-up round).
    pub(crate) iterations: usize,
    /// Only run queries whose name contains one of these (empty: all).
    pub(crate) only: Vec<String>,
    /// Also measure remote-write latency with and without a heavy query.
    pub(crate) ingest_latency: bool,
    /// Seconds of each ingest-latency phase.
    pub(crate) latency_secs: f64,
    /// Write requests per second in the ingest-latency phases.
    pub(crate) latency_rate: f64,
    /// The heavy query run in a loop (as a 24 h range query at 60 s step).
    pub(crate) heavy_query: String,
    /// Concurrent loops of the heavy query.
    pub(crate) heavy_loops: usize,
}

/// One query of the battery.
#[derive(Debug, Clone)]
struct Query {
    name: &'static str,
    expr: String,
    /// `None` for an instant query; else (range, step) in seconds.
    range: Option<(i64, i64)>,
}

const RANGES: [(i64, i64); 2] = [(3600, 15), (86_400, 60)];

fn battery() -> Vec<Query> {
    let range_queries: [(&str, &str); 7] = [
        (
            "rate_by_instance",
            r#"rate(node_cpu_seconds_total{instance="host-1:9100"}[5m])"#,
        ),
        (
            "sum_by_instance",
            r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
        ),
        (
            "topk5",
            "topk(5, sum by (instance) (rate(node_network_receive_bytes_total[5m])))",
        ),
        (
            "histogram_p99",
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
        ),
        (
            "regex_instance",
            r#"sum by (instance, device) (rate(node_disk_written_bytes_total{instance=~"host-1.*"}[5m]))"#,
        ),
        ("all_hosts_sum", "sum by (mode) (rate(node_cpu_seconds_total[5m]))"),
        (
            "all_hosts_mem_ratio",
            "avg(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
        ),
    ];
    let mut out = Vec::new();
    for (range, step) in RANGES {
        for (name, expr) in range_queries {
            out.push(Query {
                name,
                expr: expr.to_string(),
                range: Some((range, step)),
            });
        }
    }
    out.push(Query {
        name: "instant_sum_by_instance",
        expr: r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#.to_string(),
        range: None,
    });
    out.push(Query {
        name: "instant_count_all_series",
        expr: r#"count({__name__=~".+"})"#.to_string(),
        range: None,
    });
    out.push(Query {
        name: "instant_max_load_1h",
        expr: "max by (instance) (max_over_time(node_load1[1h]))".to_string(),
        range: None,
    });
    out
}

fn label(q: &Query) -> String {
    match q.range {
        None => format!("{} (instant)", q.name),
        Some((r, s)) => format!("{} ({}h/{}s)", q.name, r / 3600, s),
    }
}

/// The answer of one query: resultType and series (labels → values as text).
#[derive(Debug, Default, Clone, PartialEq)]
struct Answer {
    series: BTreeMap<String, Vec<(f64, String)>>,
}

impl Answer {
    fn points(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }
}

fn parse_answer(body: &[u8]) -> Result<Answer> {
    let v: Value = serde_json::from_slice(body).context("response is not JSON")?;
    if v["status"] != "success" {
        bail!(
            "status {}: {} {}",
            v["status"],
            v["errorType"],
            v["error"].as_str().unwrap_or("")
        );
    }
    let data = &v["data"];
    let mut a = Answer::default();
    let result = match data["result"].as_array() {
        Some(r) => r.clone(),
        None => vec![json!({"metric": {}, "value": data["result"].clone()})],
    };
    for s in result {
        let mut labels: Vec<(String, String)> = s["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        labels.sort();
        let key = labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let pts = match s["values"].as_array() {
            Some(vals) => vals.clone(),
            None => vec![s["value"].clone()],
        };
        let pts = pts
            .iter()
            .map(|p| {
                (
                    p[0].as_f64().unwrap_or(f64::NAN),
                    p[1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        a.series.insert(key, pts);
    }
    Ok(a)
}

fn num(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

/// Compares two answers: same series (labels), same timestamps, values within 1e-6 relative.
fn compare(h: &Answer, p: &Answer) -> String {
    if h.series.len() != p.series.len() {
        return format!("MISMATCH: {} series vs {} series", h.series.len(), p.series.len());
    }
    let (mut worst, mut compared) = (0.0f64, 0usize);
    for (k, hv) in &h.series {
        let Some(pv) = p.series.get(k) else {
            return format!("MISMATCH: series {{{k}}} only in haetae");
        };
        if hv.len() != pv.len() {
            return format!("MISMATCH: {{{k}}}: {} points vs {}", hv.len(), pv.len());
        }
        for ((ht, hs), (pt, ps)) in hv.iter().zip(pv) {
            if (ht - pt).abs() > 1e-6 {
                return format!("MISMATCH: {{{k}}}: timestamp {ht} vs {pt}");
            }
            let (a, b) = (num(hs), num(ps));
            if a.is_nan() && b.is_nan() || a == b {
                compared += 1;
                continue;
            }
            let rel = (a - b).abs() / a.abs().max(b.abs());
            if !rel.is_finite() || rel > 1e-6 {
                return format!("MISMATCH: {{{k}}} at {ht}: {hs} vs {ps}");
            }
            worst = worst.max(rel);
            compared += 1;
        }
    }
    if compared == 0 {
        return "EMPTY (both answered no data)".into();
    }
    format!(
        "equal: {} series, {compared} values (max rel. diff {worst:.1e})",
        h.series.len()
    )
}

/// Runs one query; returns its latency (until the body is read) and the raw body.
fn run_query(agent: &ureq::Agent, base: &str, q: &Query, end_ms: i64) -> Result<(Duration, Vec<u8>)> {
    let secs = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let req = match q.range {
        None => agent
            .get(&format!("{base}/api/v1/query"))
            .query("query", &q.expr)
            .query("time", &secs(end_ms)),
        Some((range, step)) => agent
            .get(&format!("{base}/api/v1/query_range"))
            .query("query", &q.expr)
            .query("start", &secs(end_ms - range * 1000))
            .query("end", &secs(end_ms))
            .query("step", &step.to_string()),
    };
    let start = Instant::now();
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let body = r.into_string().unwrap_or_default();
            bail!("HTTP {code}: {}", body.chars().take(300).collect::<String>());
        }
        Err(e) => bail!("{e}"),
    };
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body)?;
    Ok((start.elapsed(), body))
}

/// Latencies and the check of one query.
#[derive(Debug, Default, Clone)]
struct QueryOutcome {
    label: String,
    expr: String,
    haetae: Vec<f64>,
    prometheus: Vec<f64>,
    check: String,
    errors: Vec<String>,
}

fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let idx = ((s.len() - 1) as f64 * q).round() as usize;
    s[idx]
}

/// Runs the benchmark and prints the report.
pub(crate) fn run(p: &Params) -> Result<()> {
    std::fs::create_dir_all(p.work_dir())?;
    let enc = ingest::encode_workload(&p.ingest)?;
    let bins = &p.ingest.bins;
    let work = p.work_dir();

    eprintln!("== starting prometheus and haetae ==");
    let mut prom = Server::start(System::Prometheus, bins, &work)?;
    prom.wait_ready(Duration::from_secs(120))?;
    let mut haetae = Server::start_with_config(System::Haetae, bins, &work, Some(HAETAE_QUIET_CONFIG))?;
    haetae.wait_ready(Duration::from_secs(120))?;
    let mut ingest_notes = Vec::new();
    for server in [&prom, &haetae] {
        eprintln!("== ingesting into {} ==", server.system);
        let t = Instant::now();
        let tally = ingest::send_all(&server.base, &enc);
        let note = format!(
            "{}: {} samples acknowledged in {:.1} s, {} requests failed{}",
            server.system,
            tally.ok_samples(),
            t.elapsed().as_secs_f64(),
            tally.failed(),
            tally
                .first_errors()
                .first()
                .map_or(String::new(), |e| format!(" (first error: {e})"))
        );
        eprintln!("  {note}");
        ingest_notes.push(note);
    }
    let prom_done = Instant::now();
    eprintln!("  haetae: {}", haetae.flush()?);
    // Prometheus compacts its head at most a minute after the data arrived: wait for that, then
    // for both servers to go idle, so no background work lands in the timings.
    let settle = Duration::from_secs(70).saturating_sub(prom_done.elapsed());
    eprintln!(
        "  waiting {:.0} s for Prometheus' head compaction, then for both to go idle",
        settle.as_secs_f64()
    );
    std::thread::sleep(settle);
    for s in [&prom, &haetae] {
        procfs::wait_idle(s.pid(), 0.05, Duration::from_secs(3), Duration::from_secs(600));
    }

    // Evaluate a little before the last sample and off the 15 s grid, so no sample sits on a
    // window boundary (where Prometheus 2.x and 3.x differ).
    let end_ms = enc.range_ms.1 - 120_000 + 7_321;
    let queries: Vec<Query> = battery()
        .into_iter()
        .filter(|q| p.only.is_empty() || p.only.iter().any(|o| q.name.contains(o.as_str())))
        .collect();
    let outcomes = run_battery(&queries, &haetae, &prom, end_ms, p.iterations);

    let latency = if p.ingest_latency {
        let mut v = Vec::new();
        for server in [&haetae, &prom] {
            match ingest_latency(p, server, end_ms) {
                Ok(l) => v.extend(l),
                Err(e) => eprintln!("{}: ingest latency failed: {e:#}", server.system),
            }
        }
        v
    } else {
        Vec::new()
    };

    let mem = [&haetae, &prom].map(|s| procfs::memory(s.pid()).unwrap_or_default());
    haetae.stop(Duration::from_secs(120))?;
    prom.stop(Duration::from_secs(120))?;

    let text = report(p, &enc, &outcomes, &latency, &ingest_notes, mem);
    println!("{text}");
    if let Some(path) = &p.ingest.json {
        let v = to_json(p, &enc, &outcomes, &latency);
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

impl Params {
    fn work_dir(&self) -> PathBuf {
        self.ingest.work_dir.clone()
    }
}

fn run_battery(queries: &[Query], haetae: &Server, prom: &Server, end_ms: i64, iterations: usize) -> Vec<QueryOutcome> {
    let ag = agent(Duration::from_secs(600));
    let mut outcomes: Vec<QueryOutcome> = queries
        .iter()
        .map(|q| QueryOutcome {
            label: label(q),
            expr: q.expr.clone(),
            ..QueryOutcome::default()
        })
        .collect();
    let servers = [haetae, prom];
    for it in 0..=iterations {
        if it == 0 {
            eprintln!("== warm-up round (answers compared) ==");
        } else {
            eprintln!("== round {it}/{iterations} ==");
        }
        for (q, o) in queries.iter().zip(outcomes.iter_mut()) {
            // Alternate which system goes first.
            let order = if it % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut answers: [Option<Answer>; 2] = [None, None];
            for i in order {
                let s = servers[i];
                if it > 0 && o.errors.iter().any(|e| e.starts_with(&s.system.to_string())) {
                    continue;
                }
                match run_query(&ag, &s.base, q, end_ms) {
                    Ok((lat, body)) => {
                        let secs = lat.as_secs_f64();
                        if it == 0 {
                            match parse_answer(&body) {
                                Ok(a) => answers[i] = Some(a),
                                Err(e) => o.errors.push(format!("{}: {e:#}", s.system)),
                            }
                        } else if i == 0 {
                            o.haetae.push(secs);
                        } else {
                            o.prometheus.push(secs);
                        }
                    }
                    Err(e) => o.errors.push(format!("{}: {e:#}", s.system)),
                }
            }
            if it == 0 {
                o.check = match (&answers[0], &answers[1]) {
                    (Some(h), Some(p)) => compare(h, p),
                    _ => "not compared (error)".into(),
                };
                let pts = answers[1].as_ref().map_or(0, Answer::points);
                eprintln!("  {}: {} [{pts} points]", o.label, o.check);
            }
        }
    }
    outcomes
}

/// Remote-write latency figures of one phase.
#[derive(Debug, Clone, Default)]
struct LatencyOutcome {
    system: String,
    phase: String,
    requests: usize,
    p50: f64,
    p99: f64,
    max: f64,
    heavy_done: u64,
    heavy_failed: u64,
    heavy_mean_s: f64,
    heavy_error: String,
}

fn ingest_latency(p: &Params, server: &Server, end_ms: i64) -> Result<Vec<LatencyOutcome>> {
    eprintln!("== ingest latency: {} ==", server.system);
    // Probe hosts of their own (ids far above the workload's), so the writes are fresh series
    // with current timestamps in both systems.
    let mut hosts: Vec<Host> = (0..10).map(|i| Host::new(p.ingest.seed, 1_000_000 + i)).collect();
    let mut out = Vec::new();
    for loaded in [false, true] {
        let stop = AtomicBool::new(false);
        let done = AtomicU64::new(0);
        let failed = AtomicU64::new(0);
        let busy_ns = AtomicU64::new(0);
        let first_err = std::sync::Mutex::new(String::new());
        let lat = std::thread::scope(|s| -> Result<Vec<f64>> {
            if loaded {
                for _ in 0..p.heavy_loops.max(1) {
                    s.spawn(|| {
                        let ag = agent(Duration::from_secs(600));
                        let q = Query {
                            name: "heavy",
                            expr: p.heavy_query.clone(),
                            range: Some((86_400, 60)),
                        };
                        while !stop.load(Ordering::Relaxed) {
                            let t = Instant::now();
                            match run_query(&ag, &server.base, &q, end_ms).and_then(|(_, b)| parse_answer(&b)) {
                                Ok(_) => {
                                    done.fetch_add(1, Ordering::Relaxed);
                                    busy_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    let mut fe = first_err.lock().unwrap_or_else(|p| p.into_inner());
                                    if fe.is_empty() {
                                        *fe = format!("{e:#}").chars().take(200).collect();
                                    }
                                    std::thread::sleep(Duration::from_millis(200));
                                }
                            }
                        }
                    });
                }
                // Let the first heavy queries get going.
                std::thread::sleep(Duration::from_secs(2));
            }
            let r = write_probe(p, server, &mut hosts);
            stop.store(true, Ordering::Relaxed);
            r
        })?;
        let n = done.load(Ordering::Relaxed);
        let o = LatencyOutcome {
            system: server.system.to_string(),
            phase: if loaded {
                format!("with {} heavy query loop(s)", p.heavy_loops.max(1))
            } else {
                "alone".into()
            },
            requests: lat.len(),
            p50: quantile(&lat, 0.5),
            p99: quantile(&lat, 0.99),
            max: lat.iter().copied().fold(0.0, f64::max),
            heavy_done: n,
            heavy_failed: failed.load(Ordering::Relaxed),
            heavy_mean_s: busy_ns.load(Ordering::Relaxed) as f64 / 1e9 / n.max(1) as f64,
            heavy_error: first_err.into_inner().unwrap_or_default(),
        };
        eprintln!(
            "  {}: {} writes, p50 {:.1} ms, p99 {:.1} ms; heavy queries done {} (mean {:.2} s), failed {}",
            o.phase,
            o.requests,
            o.p50 * 1e3,
            o.p99 * 1e3,
            o.heavy_done,
            o.heavy_mean_s,
            o.heavy_failed
        );
        out.push(o);
    }
    Ok(out)
}

/// Sends one probe host's current scrape every 1/rate s for `latency_secs`; returns latencies.
fn write_probe(p: &Params, server: &Server, hosts: &mut [Host]) -> Result<Vec<f64>> {
    let ag = agent(Duration::from_secs(60));
    let url = format!("{}/api/v1/write", server.base);
    let tally = Tally::default();
    let period = Duration::from_secs_f64(1.0 / p.latency_rate.max(0.1));
    let start = Instant::now();
    let mut next = start;
    let mut lat = Vec::new();
    let mut i = 0;
    while start.elapsed().as_secs_f64() < p.latency_secs {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let n = hosts.len();
        let h = &mut hosts[i % n];
        i += 1;
        let mut series = Vec::with_capacity(h.series.len());
        h.append_series(&[now_ms], &mut series);
        let body = Body {
            samples: series.len() as u64,
            bytes: workload::encode(series)?,
        };
        let t = Instant::now();
        let before = tally.failed();
        sender::send(&ag, &url, &body, &tally);
        if tally.failed() == before {
            lat.push(t.elapsed().as_secs_f64());
        }
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    if tally.failed() > 0 {
        eprintln!("  {} write requests failed: {:?}", tally.failed(), tally.first_errors());
    }
    Ok(lat)
}

fn report(
    p: &Params,
    enc: &Encoded,
    outcomes: &[QueryOutcome],
    latency: &[LatencyOutcome],
    ingest_notes: &[String],
    mem: [procfs::Memory; 2],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nQuery benchmark: {} series ({} hosts x {} incl. a classic histogram of {} handlers), {} samples \
         ({:.1} h of 15 s scrapes); {} timed rounds per query and system, alternating which goes first\n",
        enc.series,
        p.ingest.hosts,
        enc.series_per_host,
        p.ingest.histogram_handlers,
        enc.samples,
        p.ingest.hours,
        p.iterations
    );
    let _ = writeln!(
        s,
        "{:<36} {:>10} {:>10} {:>10} {:>10} {:>8} {:>6}  check",
        "query (range/step)", "haetae p50", "p90", "prom p50", "p90", "p50 h/p", "goal"
    );
    let mut worst: Option<(f64, &str)> = None;
    for o in outcomes {
        let (h50, h90) = (quantile(&o.haetae, 0.5), quantile(&o.haetae, 0.9));
        let (p50, p90) = (quantile(&o.prometheus, 0.5), quantile(&o.prometheus, 0.9));
        let r = h50 / p50;
        if r.is_finite() && worst.is_none_or(|(w, _)| r > w) {
            worst = Some((r, &o.label));
        }
        let ms = |v: f64| {
            if v.is_nan() {
                "err".to_string()
            } else {
                format!("{:.1}", v * 1e3)
            }
        };
        let _ = writeln!(
            s,
            "{:<36} {:>10} {:>10} {:>10} {:>10} {:>8} {:>6}  {}",
            o.label,
            ms(h50),
            ms(h90),
            ms(p50),
            ms(p90),
            if r.is_finite() {
                format!("{r:.2}x")
            } else {
                "n/a".into()
            },
            if !r.is_finite() {
                "-"
            } else if r <= 0.5 {
                "PASS"
            } else {
                "FAIL"
            },
            o.check
        );
    }
    let _ = writeln!(
        s,
        "\nLatencies in ms, measured by the client until the whole body is read."
    );
    let _ = writeln!(s, "\nQueries:");
    for o in outcomes {
        let _ = writeln!(s, "  {:<36} {}", o.label, o.expr);
        for e in o.errors.iter().take(3) {
            let _ = writeln!(s, "    error: {e}");
        }
    }
    let passed = outcomes
        .iter()
        .filter(|o| quantile(&o.haetae, 0.5) / quantile(&o.prometheus, 0.5) <= 0.5)
        .count();
    let _ = writeln!(
        s,
        "\nGoal (issue 3): Haetae median <= 0.5x Prometheus for every query: {passed}/{} PASS{}",
        outcomes.len(),
        worst.map_or(String::new(), |(r, l)| format!("; worst {l} at {r:.2}x"))
    );
    let _ = writeln!(s, "\nIngest:");
    for n in ingest_notes {
        let _ = writeln!(s, "  {n}");
    }
    let _ = writeln!(
        s,
        "  RSS at the end: haetae {:.0} MiB (peak {:.0}), prometheus {:.0} MiB (peak {:.0})",
        mem[0].rss as f64 / 1048576.0,
        mem[0].peak_rss as f64 / 1048576.0,
        mem[1].rss as f64 / 1048576.0,
        mem[1].peak_rss as f64 / 1048576.0
    );
    if !latency.is_empty() {
        let _ = writeln!(
            s,
            "\nRemote-write latency: {:.0} requests/s of one probe host's scrape ({} samples each), {:.0} s per phase; \
             heavy query: `{}` over 24 h at 60 s step, in {} loop(s)\n",
            p.latency_rate,
            workload::series_per_host(),
            p.latency_secs,
            p.heavy_query,
            p.heavy_loops.max(1)
        );
        let _ = writeln!(
            s,
            "{:<12} {:<28} {:>8} {:>9} {:>9} {:>9} {:>12} {:>12}",
            "system", "phase", "writes", "p50 ms", "p99 ms", "max ms", "heavy done", "heavy mean s"
        );
        for l in latency {
            let _ = writeln!(
                s,
                "{:<12} {:<28} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>12} {:>12.2}",
                l.system,
                l.phase,
                l.requests,
                l.p50 * 1e3,
                l.p99 * 1e3,
                l.max * 1e3,
                if l.heavy_failed > 0 {
                    format!("{} ({} err)", l.heavy_done, l.heavy_failed)
                } else {
                    l.heavy_done.to_string()
                },
                l.heavy_mean_s
            );
            if !l.heavy_error.is_empty() {
                let _ = writeln!(s, "    heavy query error: {}", l.heavy_error);
            }
        }
        for sys in ["haetae", "prometheus"] {
            let alone = latency.iter().find(|l| l.system == sys && l.phase == "alone");
            let loaded = latency.iter().find(|l| l.system == sys && l.phase != "alone");
            if let (Some(a), Some(b)) = (alone, loaded) {
                let _ = writeln!(
                    s,
                    "  {sys}: p99 under load / alone = {:.2}x, p50 {:.2}x",
                    b.p99 / a.p99,
                    b.p50 / a.p50
                );
            }
        }
    }
    s
}

fn to_json(p: &Params, enc: &Encoded, outcomes: &[QueryOutcome], latency: &[LatencyOutcome]) -> Value {
    json!({
        "benchmark": "query",
        "hosts": p.ingest.hosts,
        "hours": p.ingest.hours,
        "series": enc.series,
        "samples": enc.samples,
        "iterations": p.iterations,
        "queries": outcomes.iter().map(|o| json!({
            "query": o.label,
            "expr": o.expr,
            "haetae_seconds": o.haetae,
            "prometheus_seconds": o.prometheus,
            "haetae_p50": quantile(&o.haetae, 0.5),
            "haetae_p90": quantile(&o.haetae, 0.9),
            "prometheus_p50": quantile(&o.prometheus, 0.5),
            "prometheus_p90": quantile(&o.prometheus, 0.9),
            "ratio_p50": quantile(&o.haetae, 0.5) / quantile(&o.prometheus, 0.5),
            "check": o.check,
            "errors": o.errors,
        })).collect::<Vec<_>>(),
        "ingest_latency": latency.iter().map(|l| json!({
            "system": l.system,
            "phase": l.phase,
            "writes": l.requests,
            "p50_seconds": l.p50,
            "p99_seconds": l.p99,
            "max_seconds": l.max,
            "heavy_queries_done": l.heavy_done,
            "heavy_queries_failed": l.heavy_failed,
            "heavy_query_mean_seconds": l.heavy_mean_s,
        })).collect::<Vec<_>>(),
    })
}
