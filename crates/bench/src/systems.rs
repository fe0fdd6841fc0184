//! The systems under test: how to start Haetae, Prometheus and VictoriaMetrics on a fresh data
//! directory, wait until they are ready, make them persist what they hold, and stop them.
//!
//! Each server runs as a child process listening on a free port of 127.0.0.1; its stdout and
//! stderr go to `<work dir>/<system>.log`, whose tail is printed when something goes wrong.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::procfs;

/// One of the benchmarked systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum System {
    /// Haetae (`haetae serve`).
    Haetae,
    /// Prometheus 2.x with the remote-write receiver enabled.
    Prometheus,
    /// Single-node VictoriaMetrics.
    #[value(name = "victoriametrics", alias = "vm")]
    VictoriaMetrics,
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            System::Haetae => "haetae",
            System::Prometheus => "prometheus",
            System::VictoriaMetrics => "victoriametrics",
        })
    }
}

/// Where the server binaries are.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    /// The `haetae` binary.
    pub(crate) haetae: PathBuf,
    /// The `prometheus` binary.
    pub(crate) prometheus: PathBuf,
    /// The `victoria-metrics` binary.
    pub(crate) victoriametrics: PathBuf,
}

/// A started server.
pub(crate) struct Server {
    /// Which system this is.
    pub(crate) system: System,
    /// The child process.
    pub(crate) child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// Its data directory.
    pub(crate) data_dir: PathBuf,
    /// Where its output goes.
    pub(crate) log: PathBuf,
    port: u16,
    bin: PathBuf,
    config: Option<PathBuf>,
}

/// An HTTP agent with generous timeouts (flushes of big heads take a while).
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(timeout)
        .max_idle_connections_per_host(16)
        .build()
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

impl Server {
    /// Starts `system` on an empty data directory `work_dir/<system>-data` (removed first).
    pub(crate) fn start(system: System, bins: &Binaries, work_dir: &Path) -> Result<Server> {
        Server::start_with_config(system, bins, work_dir, None)
    }

    /// Like [`Server::start`], with `config` (YAML) as the configuration file of Haetae
    /// (`serve --config`) or Prometheus (`--config.file`) instead of the defaults
    /// (Haetae: none; Prometheus: no scrape configs). Ignored for VictoriaMetrics.
    pub(crate) fn start_with_config(
        system: System,
        bins: &Binaries,
        work_dir: &Path,
        config: Option<&str>,
    ) -> Result<Server> {
        let data_dir = work_dir.join(format!("{system}-data"));
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir).with_context(|| format!("removing {}", data_dir.display()))?;
        }
        std::fs::create_dir_all(&data_dir)?;
        let bin = match system {
            System::Haetae => bins.haetae.clone(),
            System::Prometheus => bins.prometheus.clone(),
            System::VictoriaMetrics => bins.victoriametrics.clone(),
        };
        if !bin.exists() {
            bail!("{system}: binary {} not found", bin.display());
        }
        let log = work_dir.join(format!("{system}.log"));
        let port = free_port()?;
        let config = match config {
            Some(text) => {
                let path = work_dir.join(format!("{system}-config.yml"));
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                Some(path)
            }
            None => None,
        };
        let child = spawn(system, &bin, port, &data_dir, &log, work_dir, config.as_deref())?;
        Ok(Server {
            system,
            child,
            config,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
            log,
            port,
            bin,
        })
    }

    /// The process id of the server.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    fn ready_path(&self) -> &'static str {
        match self.system {
            System::VictoriaMetrics => "/health",
            _ => "/-/ready",
        }
    }

    /// Waits until the readiness endpoint answers 200; returns how long that took.
    pub(crate) fn wait_ready(&mut self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        let agent = agent(Duration::from_secs(2));
        let url = format!("{}{}", self.base, self.ready_path());
        loop {
            if let Ok(resp) = agent.get(&url).call() {
                if resp.status() == 200 {
                    return Ok(start.elapsed());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready\n{}",
                    self.system,
                    self.log_tail()
                );
            }
            if start.elapsed() > limit {
                bail!("{} not ready after {limit:?}\n{}", self.system, self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the server's log.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(15);
        format!(
            "--- last lines of {} ---\n{}",
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// Sends a signal to the server.
    pub(crate) fn signal(&self, sig: i32) -> Result<()> {
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(self.pid() as i32, sig) } != 0 {
            bail!("kill({}, {sig}): {}", self.pid(), std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops the server with SIGTERM and waits for it to exit (SIGKILL after `limit`).
    pub(crate) fn stop(&mut self, limit: Duration) -> Result<Duration> {
        let start = Instant::now();
        if self.child.try_wait()?.is_some() {
            return Ok(Duration::ZERO);
        }
        self.signal(libc::SIGTERM)?;
        while start.elapsed() < limit {
            if self.child.try_wait()?.is_some() {
                return Ok(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{}: still running {limit:?} after SIGTERM, killing it", self.system);
        self.kill()?;
        Ok(start.elapsed())
    }

    /// Kills the server with SIGKILL and reaps it.
    pub(crate) fn kill(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            self.signal(libc::SIGKILL)?;
            self.child.wait()?;
        }
        Ok(())
    }

    /// Starts the same server again on the same data directory and port.
    pub(crate) fn restart(&mut self, work_dir: &Path) -> Result<()> {
        if self.child.try_wait()?.is_none() {
            bail!("{} is still running", self.system);
        }
        self.child = spawn(
            self.system,
            &self.bin,
            self.port,
            &self.data_dir,
            &self.log,
            work_dir,
            self.config.as_deref(),
        )?;
        Ok(())
    }

    /// Makes the server persist what it holds. Returns a note on what was done.
    pub(crate) fn flush(&self) -> Result<String> {
        let agent = agent(Duration::from_secs(3600));
        match self.system {
            System::Haetae => {
                let url = format!("{}/api/v1/admin/tsdb/flush", self.base);
                match agent.post(&url).call() {
                    Ok(_) => Ok("flushed (POST /api/v1/admin/tsdb/flush)".into()),
                    Err(ureq::Error::Status(404, _)) => Ok("flush endpoint missing (404): nothing flushed".into()),
                    Err(e) => Err(anyhow::anyhow!("POST {url}: {e}")),
                }
            }
            System::VictoriaMetrics => {
                agent
                    .get(&format!("{}/internal/force_flush", self.base))
                    .call()
                    .context("VictoriaMetrics /internal/force_flush")?;
                agent
                    .get(&format!("{}/internal/force_merge", self.base))
                    .call()
                    .context("VictoriaMetrics /internal/force_merge")?;
                // The merge runs in the background: wait until no merge is active and the
                // directory size stops changing.
                let start = Instant::now();
                let mut last = procfs::dir_bytes(&self.data_dir);
                let mut stable = 0;
                while stable < 3 && start.elapsed() < Duration::from_secs(600) {
                    std::thread::sleep(Duration::from_secs(2));
                    let now = procfs::dir_bytes(&self.data_dir);
                    let merging = self.vm_active_merges(&agent).unwrap_or(0.0) > 0.0;
                    if now == last && !merging {
                        stable += 1;
                    } else {
                        stable = 0;
                    }
                    last = now;
                }
                Ok(format!(
                    "force_flush + force_merge, settled after {:.0} s",
                    start.elapsed().as_secs_f64()
                ))
            }
            System::Prometheus => {
                // Prometheus has no flush: let any head compaction finish.
                procfs::wait_idle(self.pid(), 0.05, Duration::from_secs(2), Duration::from_secs(300));
                Ok("no flush in Prometheus; waited for compactions to settle".into())
            }
        }
    }

    fn vm_active_merges(&self, agent: &ureq::Agent) -> Option<f64> {
        let text = agent
            .get(&format!("{}/metrics", self.base))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        Some(
            text.lines()
                .filter(|l| l.starts_with("vm_active_merges"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum(),
        )
    }
}

fn spawn(
    system: System,
    bin: &Path,
    port: u16,
    data_dir: &Path,
    log: &Path,
    work_dir: &Path,
    config: Option<&Path>,
) -> Result<Child> {
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(bin);
    match system {
        System::Haetae => {
            // Like the other systems here: no self-scrape, no host metrics,
            // only the benchmark's own data.
            // A given config must carry the same `self_monitoring` section itself.
            let cfg = match config {
                Some(cfg) => cfg.to_path_buf(),
                None => {
                    let cfg = work_dir.join("haetae-bench.yml");
                    std::fs::write(&cfg, "self_monitoring:\n  host_metrics: false\n  scrape_self: false\n")?;
                    cfg
                }
            };
            cmd.arg("serve")
                .arg("--config")
                .arg(&cfg)
                .arg("--listen")
                .arg(&addr)
                .arg("--data-dir")
                .arg(data_dir);
        }
        System::Prometheus => {
            let cfg = match config {
                Some(cfg) => cfg.to_path_buf(),
                None => {
                    let cfg = work_dir.join("prometheus-empty.yml");
                    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\nscrape_configs: []\n")?;
                    cfg
                }
            };
            cmd.arg("--web.enable-remote-write-receiver")
                .arg("--web.enable-admin-api")
                .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                .arg("--storage.tsdb.retention.time=100y")
                .arg(format!("--web.listen-address={addr}"))
                .arg(format!("--config.file={}", cfg.display()));
        }
        System::VictoriaMetrics => {
            cmd.arg(format!("-storageDataPath={}", data_dir.display()))
                .arg(format!("-httpListenAddr={addr}"))
                .arg("-retentionPeriod=100y");
        }
    }
    let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    cmd.stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out);
    cmd.spawn().with_context(|| format!("starting {}", bin.display()))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(60));
    }
}
