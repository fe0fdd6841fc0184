//! `haetae-bench`: the benchmarks of issue 2, run by `scripts/bench`.
//!
//! - `ingest`: Haetae, Prometheus and VictoriaMetrics side by side on one node_exporter-like
//!   remote-write workload: samples/s, server CPU seconds per million samples, peak RSS per
//!   active series, bytes on disk per sample after flush, and the ratios Haetae/other.
//! - `restart`: Haetae alone with ~1M active series × 2 h in the head: time to `/-/ready`
//!   after a clean stop and after `kill -9`, and RSS per active series.
//!
//! Module map: [`workload`] generates the data, [`sender`] pushes it, [`systems`] starts and
//! drives the servers, [`procfs`] measures them from outside, [`ingest`] and [`restart`] are
//! the two benchmarks.

mod ingest;
mod procfs;
mod restart;
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
    /// Concurrent senders (each owns a fixed shard of hosts, so series stay in time order).
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
            senders: a.common.senders,
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
