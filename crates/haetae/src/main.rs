//! The `haetae` binary: parses the command line and calls `server` (and,
//! later, `agent`). Layer 6; nothing here but the command-line edge.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Haetae collects metrics and logs, stores them, answers PromQL and
/// Prometheus API queries, and evaluates alerts: one binary in place of
/// Prometheus, Alertmanager, Loki and Grafana.
#[derive(Parser, Debug)]
#[command(name = "haetae", version, about, long_about = None)]
struct Cli {
    /// Log level filter (error, warn, info, debug, trace, or a tracing directive like `tsdb=debug`).
    #[arg(long, global = true, default_value = "info", env = "HAETAE_LOG")]
    log_level: String,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the all-in-one server with embedded storage: remote write/read,
    /// Prometheus query and metadata APIs, admin endpoints, /metrics.
    ///
    /// With no flags it stores data in ./data and listens on 0.0.0.0:9201.
    /// SIGTERM or SIGINT stop it cleanly (the head is checkpointed so the
    /// next start is fast).
    Serve {
        /// YAML configuration file (Prometheus-style sections; see README).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Address to listen on, overriding `web.listen_address`.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Data directory, overriding `storage.tsdb.path`.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Runs the host agent: collects this host's metrics (node_exporter
    /// names) and the targets of `scrape_configs`, and forwards them to a
    /// Haetae server by remote write through a bounded on-disk queue, so a
    /// server outage loses nothing.
    Agent {
        /// YAML file with Prometheus' `global` and `scrape_configs` sections.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Base URL of the Haetae server, e.g. http://haetae:9201.
        #[arg(long, value_name = "URL")]
        server: String,
        /// Directory for the queue and checkpoints.
        #[arg(long, value_name = "DIR", default_value = "./agent-data")]
        data_dir: PathBuf,
        /// Host metrics collection interval (e.g. 15s).
        #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
        interval: std::time::Duration,
        /// Largest on-disk queue in bytes; when full, the oldest data is dropped and counted.
        #[arg(long, value_name = "BYTES", default_value_t = 512 << 20)]
        queue_max_bytes: u64,
        /// Receive pushes from local programs on this address (e.g. 127.0.0.1:9202): remote
        /// write, Influx line protocol (/write, /api/v2/write), OTLP/HTTP (/v1/metrics; delta
        /// sums become persisted cumulative counters) and text import; all are forwarded.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Runs Prometheus' PromQL test scripts (`*.test`) against the engine.
    ///
    /// Prints one line per failing eval, the skipped evals by reason, and
    /// `N passed, N failed, N skipped`; exits with 1 if any eval failed.
    PromqlTest {
        /// Directories (or single files) holding `*.test` scripts.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
    },
    /// Validates files without starting anything.
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
}

#[derive(Subcommand, Debug)]
enum CheckCommand {
    /// Checks a configuration file; prints the error with file, line and field.
    Config {
        /// The file to check.
        file: PathBuf,
    },
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).with_context(|| format!("invalid --log-level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// jemalloc: faster than glibc's allocator on the head's many small
/// allocations and, with background threads, returns freed memory to the OS
/// (measured by `haetae-bench restart`).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options (read at its first allocation; the environment variable
/// `_RJEM_MALLOC_CONF` still overrides them). Freed pages go back to the OS
/// after 1 s instead of 10 s: a head cut frees tens of MiB at once, and
/// holding them for 10 s raised peak RSS by about 10 % in
/// `haetae-bench restart` (1,237 -> 1,110 B/series at 200k series).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"dirty_decay_ms:1000\0";

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    server::config::parse_duration(s)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format)?;
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(server::serve(server::ServeOptions {
                config_file: config,
                listen,
                data_dir,
            }))
        }
        Command::Agent {
            config,
            server,
            data_dir,
            interval,
            queue_max_bytes,
            listen,
        } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(server::run_agent(server::AgentCommand {
                config_file: config,
                server_url: server,
                data_dir,
                interval,
                queue_max_bytes,
                listen,
            }))
        }
        Command::PromqlTest { dirs } => {
            let stdout = std::io::stdout();
            let summary = server::promql_test::run(&dirs, &mut stdout.lock())?;
            if summary.failed > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Check {
            what: CheckCommand::Config { file },
        } => {
            server::Config::load(&file)?;
            eprintln!("{}: OK", file.display());
            Ok(())
        }
    }
}
