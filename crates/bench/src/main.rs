//! `haetae-bench`: the benchmarks of issue 2, run by `scripts/bench`.
//!
//! - `ingest`: Haetae, Prometheus and VictoriaMetrics side by side on one node_exporter-like
//!   remote-write workload: samples/s, server CPU seconds per million samples, peak RSS per
//!   active series, bytes on disk per sample after flush, and the ratios Haetae/other.
//! - `restart`: Haetae alone with ~1M active series × 2 h in the head: time to `/-/ready`
//!   after a clean stop and after `kill -9`, and RSS per active series.
//! - `query` (issue 3): one dashboard-like PromQL battery against Haetae and Prometheus holding
//!   the same data, median/p90 latency and ratio; `--ingest-latency` adds remote-write latency
//!   with and without a heavy query running.
//! - `scrape` (issue 4): N synthetic node_exporter-like targets scraped by Haetae and by
//!   Prometheus in turn: samples/s, CPU s per million scraped samples, peak RSS.
//!
//! Module map: [`workload`] generates the data, [`sender`] pushes it, [`systems`] starts and
//! drives the servers, [`procfs`] measures them from outside, [`ingest`], [`restart`],
//! [`query`] and [`scrape`] are the benchmarks.

mod ingest;
mod procfs;
mod query;
mod restart;
mod scrape;
mod sender;
mod systems;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use systems::{Binaries, System};

/// Benchmarks of Haetae's metrics storage against Prometheus and VictoriaMetrics.
///
/// All servers run on 127.0.0.1 on free ports with data under --work-dir; progress goes to
/// stderr, the report to stdout.
#[derive(Parser, Debug)]
#[command(name = "haetae-bench", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest the same remote-write workload into each system in turn and compare samples/s,
    /// CPU s per million samples, peak RSS per series and bytes per sample on disk.
    Ingest(IngestArgs),
    /// Haetae only: fill the head with N active series, then time readiness after a clean
    /// stop (SIGTERM) and after kill -9.
    Restart(RestartArgs),
    /// Ingest the same data (node_exporter-like plus a classic histogram) into Haetae and
    /// Prometheus, then time one dashboard-like PromQL battery against both, alternating, and
    /// compare median/p90 latency after checking that the answers are equal.
    Query(QueryArgs),
    /// Scrape N synthetic node_exporter-like targets with Haetae, then with Prometheus, and
    /// compare samples/s, CPU s per million scraped samples and peak RSS.
    Scrape(ScrapeArgs),
}

#[derive(Args, Debug)]
struct QueryArgs {
    /// Hosts, ~374 series each (node_exporter-like + a 4-handler classic histogram).
    #[arg(long, default_value_t = 50)]
    hosts: u64,
    /// Hours of 15 s scrapes, ending now (the battery has 24 h range queries).
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    /// Handlers of the classic histogram `http_request_duration_seconds` per host (14 series each).
    #[arg(long, default_value_t = 4)]
    histogram_handlers: usize,
    /// Consecutive scrape timestamps carried per series in one request.
    #[arg(long, default_value_t = 20)]
    timestamps_per_request: usize,
    /// Target samples per request (whole hosts are added until it is reached).
    #[arg(long, default_value_t = 4000)]
    batch_samples: usize,
    /// Timed rounds of the battery per query and system (after one untimed warm-up round).
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Only run the queries whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Then measure remote-write latency (p50/p99) of small steady writes into each system,
    /// alone and while a heavy query runs in a loop.
    #[arg(long)]
    ingest_latency: bool,
    /// Seconds of each ingest-latency phase.
    #[arg(long, default_value_t = 20.0)]
    latency_secs: f64,
    /// Write requests per second in the ingest-latency phases (one host's scrape each).
    #[arg(long, default_value_t = 10.0)]
    latency_rate: f64,
    /// The heavy query of the ingest-latency phase, run as a 24 h range query at 60 s step.
    #[arg(long, default_value = "sum by (mode) (rate(node_cpu_seconds_total[5m]))")]
    heavy_query: String,
    /// Concurrent loops of the heavy query.
    #[arg(long, default_value_t = 1)]
    heavy_loops: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ScrapeArgs {
    /// Systems to run, comma-separated, in this order (one at a time).
    #[arg(long, value_delimiter = ',', default_value = "haetae,prometheus")]
    systems: Vec<System>,
    /// Targets, each on its own port of the local fixture.
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// Handlers of a classic histogram per target (14 series each) on top of ~313
    /// node_exporter series; 13 makes ~500 series per target.
    #[arg(long, default_value_t = 13)]
    histogram_handlers: usize,
    /// Scrape interval in seconds.
    #[arg(long, default_value_t = 15)]
    interval: u64,
    /// Seconds measured per system.
    #[arg(long, default_value_t = 120)]
    duration: u64,
    /// Scrape intervals to wait before measuring (the first scrapes create the series).
    #[arg(long, default_value_t = 2)]
    warmup_intervals: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct Common {
    /// The haetae binary [default: $CARGO_TARGET_DIR/release/haetae, else target/release/haetae].
    #[arg(long, value_name = "PATH")]
    haetae_bin: Option<PathBuf>,
    /// The Prometheus binary (Debian package `prometheus`, 2.42).
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/prometheus")]
    prometheus_bin: PathBuf,
    /// The VictoriaMetrics binary (Debian package `victoria-metrics`).
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/victoria-metrics")]
    victoriametrics_bin: PathBuf,
    /// Scratch directory for data directories and server logs (emptied per system).
    #[arg(long, value_name = "DIR", default_value = "/tmp/haetae-bench")]
    work_dir: PathBuf,
    /// Seed of the deterministic workload.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Concurrent senders (each owns a fixed shard of hosts, so series stay in time order; `query` always uses 1).
    #[arg(long, default_value_t = 3)]
    senders: usize,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct IngestArgs {
    /// Systems to run, comma-separated, in this order.
    #[arg(long, value_delimiter = ',', default_value = "haetae,prometheus,victoriametrics")]
    systems: Vec<System>,
    /// Hosts, ~330 node_exporter series each.
    #[arg(long, default_value_t = 200)]
    hosts: u64,
    /// Hours of 15 s scrapes, ending now (4 h makes Prometheus cut at least one 2 h block).
    #[arg(long, default_value_t = 4.0)]
    hours: f64,
    /// Consecutive scrape timestamps carried per series in one request.
    #[arg(long, default_value_t = 4)]
    timestamps_per_request: usize,
    /// Target samples per request (whole hosts are added until it is reached).
    #[arg(long, default_value_t = 4000)]
    batch_samples: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct RestartArgs {
    /// Active series (rounded up to whole hosts of ~330 series).
    #[arg(long, default_value_t = 1_000_000)]
    series: u64,
    /// Hours of 15 s samples in the head before the restarts.
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    /// Scrapes pushed after the clean restart and before kill -9.
    #[arg(long, default_value_t = 4)]
    extra_scrapes: usize,
    /// Consecutive scrape timestamps carried per series in one request (one host per request).
    #[arg(long, default_value_t = 20)]
    timestamps_per_request: usize,
    /// Give up waiting for /-/ready after this many seconds.
    #[arg(long, default_value_t = 600)]
    ready_timeout_secs: u64,
    #[command(flatten)]
    common: Common,
}

impl Common {
    fn binaries(&self) -> Binaries {
        let haetae = self.haetae_bin.clone().unwrap_or_else(|| {
            let dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
            dir.join("release").join("haetae")
        });
        Binaries {
            haetae,
            prometheus: self.prometheus_bin.clone(),
            victoriametrics: self.victoriametrics_bin.clone(),
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ingest(a) => ingest::run(&ingest::Params {
            systems: a.systems.clone(),
            hosts: a.hosts,
            hours: a.hours,
            timestamps_per_request: a.timestamps_per_request,
            batch_samples: a.batch_samples,
            histogram_handlers: 0,
            senders: a.common.senders,
            seed: a.common.seed,
            bins: a.common.binaries(),
            work_dir: a.common.work_dir.clone(),
            json: a.common.json.clone(),
        }),
        Command::Query(a) => query::run(&query::Params {
            ingest: ingest::Params {
                systems: vec![System::Prometheus, System::Haetae],
                hosts: a.hosts,
                hours: a.hours,
                timestamps_per_request: a.timestamps_per_request,
                batch_samples: a.batch_samples,
                histogram_handlers: a.histogram_handlers,
                // One sender keeps all series in time order together: with several shards
                // drifting apart, Prometheus refuses samples older than its head's max time
                // minus 1 h ("out of bounds") and the two systems would hold different data.
                senders: 1,
                seed: a.common.seed,
                bins: a.common.binaries(),
                work_dir: a.common.work_dir.clone(),
                json: a.common.json.clone(),
            },
            iterations: a.iterations.max(1),
            only: a.only.clone(),
            ingest_latency: a.ingest_latency,
            latency_secs: a.latency_secs,
            latency_rate: a.latency_rate,
            heavy_query: a.heavy_query.clone(),
            heavy_loops: a.heavy_loops,
        }),
        Command::Scrape(a) => scrape::run(&scrape::Params {
            systems: a.systems.clone(),
            targets: a.targets,
            histogram_handlers: a.histogram_handlers,
            interval_secs: a.interval.max(1),
            duration_secs: a.duration,
            warmup_intervals: a.warmup_intervals,
            seed: a.common.seed,
            bins: a.common.binaries(),
            work_dir: a.common.work_dir.clone(),
            json: a.common.json.clone(),
        }),
        Command::Restart(a) => restart::run(&restart::Params {
            series: a.series,
            hours: a.hours,
            extra_scrapes: a.extra_scrapes,
            timestamps_per_request: a.timestamps_per_request,
            senders: a.common.senders,
            seed: a.common.seed,
            bins: a.common.binaries(),
            work_dir: a.common.work_dir.clone(),
            json: a.common.json.clone(),
            ready_timeout: Duration::from_secs(a.ready_timeout_secs),
        }),
    }
}
