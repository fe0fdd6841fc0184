//! Host metrics read from `/proc` and `/sys` under node_exporter's metric
//! names, label names and semantics, so that node_exporter dashboards and
//! alert rules work on them unchanged.
//!
//! Layer 5 (part of `agent`). This module owns the reading and parsing of
//! kernel files; it does not add target labels (`instance`, `job`: the caller
//! does), does not buffer and does not ship. One file per subsystem, each with
//! a pure `parse_*` function over the file's text (unit-tested on fixtures)
//! and a `collect` function that reads the file and emits samples.
//!
//! Design constraints:
//! - Bad or unexpected kernel content never panics: a subsystem that fails
//!   emits nothing, is reported once per failure streak with a warning, and
//!   sets `node_scrape_collector_success{collector}` to 0, as node_exporter does.
//! - Counters are forwarded as the kernel counts them (cumulative since boot),
//!   so an agent restart never creates a counter reset. CPU counters that the
//!   kernel lets run backwards (idle/iowait on some kernels) are held at their
//!   last value, as node_exporter does.
//! - `statfs` runs on a helper thread with a timeout, so a hung network mount
//!   stalls only itself (node_exporter's "stuck mount" handling).
//!
//! Families claimed (checked against node_exporter by `tests/node_exporter_compat.rs`):
//! `node_cpu_seconds_total`, `node_cpu_guest_seconds_total`, `node_memory_*`,
//! `node_vmstat_*`, `node_filesystem_{size,free,avail}_bytes`,
//! `node_filesystem_{files,files_free,readonly,device_error}`, `node_disk_*`
//! (not `node_disk_info`), `node_network_{receive,transmit}_*_total`,
//! `node_load{1,5,15}`, `node_boot_time_seconds`, `node_time_seconds`,
//! `node_context_switches_total`, `node_forks_total`, `node_intr_total`,
//! `node_procs_{running,blocked}`, `node_uname_info`.

mod cpu;
mod diskstats;
mod filesystem;
mod loadavg;
mod meminfo;
mod netdev;
mod stat;
mod uname;
mod vmstat;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::{Label, Labels, Sample, METRIC_NAME};
use regex::Regex;

pub use filesystem::{DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE};

/// node_exporter's default `--collector.diskstats.device-exclude` (1.6 and later).
pub const DEFAULT_DISK_DEVICE_EXCLUDE: &str = r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
/// node_exporter's default `--collector.netdev.device-exclude` upstream: none
/// (Debian's package patches in `^lo$`; we follow upstream).
pub const DEFAULT_NETDEV_DEVICE_EXCLUDE: &str = "";

/// Errors of one collector. They never leave [`HostCollector::collect`]:
/// they are logged and turned into `node_scrape_collector_success 0`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what the kernel documents.
    #[error("cannot parse {path} line {line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A regular expression option is invalid.
    #[error("invalid regex for {option}: {source}")]
    Regex {
        /// The option's name.
        option: &'static str,
        /// The underlying error.
        #[source]
        source: regex::Error,
    },
}

/// A parse failure without a path; the collector adds the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub(crate) line: usize,
    pub(crate) reason: &'static str,
}

impl ParseError {
    pub(crate) fn at(line: usize, reason: &'static str) -> Self {
        ParseError { line, reason }
    }

    fn with_path(self, path: &Path) -> CollectError {
        CollectError::Parse {
            path: path.to_path_buf(),
            line: self.line,
            reason: self.reason,
        }
    }
}

/// Where the collector reads from and what it leaves out. The defaults are
/// node_exporter's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostOptions {
    /// The procfs mount point (node_exporter `--path.procfs`).
    pub proc_path: PathBuf,
    /// The sysfs mount point (node_exporter `--path.sysfs`).
    pub sys_path: PathBuf,
    /// The host's root as seen by the agent (node_exporter `--path.rootfs`);
    /// `statfs` is called under it and it is stripped from mount points.
    pub rootfs_path: PathBuf,
    /// Mount points to leave out (regex).
    pub mount_points_exclude: String,
    /// Filesystem types to leave out (regex).
    pub fs_types_exclude: String,
    /// Block devices to leave out (regex).
    pub disk_device_exclude: String,
    /// Network devices to leave out (regex; empty: none).
    pub netdev_device_exclude: String,
    /// How long one `statfs` may take before its mount is treated as stuck.
    pub statfs_timeout: std::time::Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            proc_path: PathBuf::from("/proc"),
            sys_path: PathBuf::from("/sys"),
            rootfs_path: PathBuf::from("/"),
            mount_points_exclude: DEFAULT_MOUNT_POINTS_EXCLUDE.to_string(),
            fs_types_exclude: DEFAULT_FS_TYPES_EXCLUDE.to_string(),
            disk_device_exclude: DEFAULT_DISK_DEVICE_EXCLUDE.to_string(),
            netdev_device_exclude: DEFAULT_NETDEV_DEVICE_EXCLUDE.to_string(),
            statfs_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// Collects host metrics; keep one per host and call [`HostCollector::collect`]
/// at each interval (it keeps a little state: CPU counters, stuck mounts).
pub struct HostCollector {
    opts: HostOptions,
    mount_points_exclude: Regex,
    fs_types_exclude: Regex,
    disk_device_exclude: Regex,
    netdev_device_exclude: Option<Regex>,
    cpu: cpu::CpuState,
    stuck_mounts: filesystem::StuckMounts,
    /// Collectors whose last run failed; used to warn once per failure streak.
    failing: BTreeMap<&'static str, bool>,
}

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCollector")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn compile(option: &'static str, re: &str) -> Result<Regex, CollectError> {
    Regex::new(re).map_err(|source| CollectError::Regex { option, source })
}

impl HostCollector {
    /// Creates a collector with node_exporter's defaults.
    pub fn new() -> Self {
        // The default regexes are constants that compile.
        Self::with_options(HostOptions::default()).unwrap_or_else(|_| unreachable!("default regexes compile"))
    }

    /// Creates a collector; fails only if a regex option does not compile.
    pub fn with_options(opts: HostOptions) -> Result<Self, CollectError> {
        Ok(HostCollector {
            mount_points_exclude: compile("mount_points_exclude", &opts.mount_points_exclude)?,
            fs_types_exclude: compile("fs_types_exclude", &opts.fs_types_exclude)?,
            disk_device_exclude: compile("disk_device_exclude", &opts.disk_device_exclude)?,
            netdev_device_exclude: if opts.netdev_device_exclude.is_empty() {
                None
            } else {
                Some(compile("netdev_device_exclude", &opts.netdev_device_exclude)?)
            },
            cpu: cpu::CpuState::default(),
            stuck_mounts: filesystem::StuckMounts::default(),
            failing: BTreeMap::new(),
            opts,
        })
    }

    /// The options in force.
    pub fn options(&self) -> &HostOptions {
        &self.opts
    }

    /// Reads every subsystem once and returns its samples, all stamped
    /// `now_ms`, without target labels. Never fails: a failing subsystem is
    /// logged and reported through `node_scrape_collector_success`.
    pub fn collect(&mut self, now_ms: i64) -> Vec<(Labels, Sample)> {
        let mut out = Vec::with_capacity(512);
        let mut e = Emitter {
            t: now_ms,
            out: &mut out,
        };
        let proc_path = self.opts.proc_path.clone();
        let stat_path = proc_path.join("stat");
        let cpu = &mut self.cpu;
        let result = with_file(&stat_path, |t| cpu.collect(t, &mut e));
        self.report("cpu", result, &mut e);
        let result = with_file(&stat_path, |t| stat::collect(t, &mut e));
        self.report("stat", result, &mut e);
        let result = with_file(&proc_path.join("meminfo"), |t| meminfo::collect(t, &mut e));
        self.report("meminfo", result, &mut e);
        let result = with_file(&proc_path.join("vmstat"), |t| vmstat::collect(t, &mut e));
        self.report("vmstat", result, &mut e);
        let result = with_file(&proc_path.join("loadavg"), |t| loadavg::collect(t, &mut e));
        self.report("loadavg", result, &mut e);
        let exclude = &self.disk_device_exclude;
        let result = with_file(&proc_path.join("diskstats"), |t| diskstats::collect(t, exclude, &mut e));
        self.report("diskstats", result, &mut e);
        let exclude = self.netdev_device_exclude.as_ref();
        let sys_path = &self.opts.sys_path;
        let result = with_file(&proc_path.join("net/dev"), |t| {
            netdev::collect(t, exclude, sys_path, &mut e)
        });
        self.report("netdev", result, &mut e);
        let result = filesystem::collect(
            &self.opts,
            &self.mount_points_exclude,
            &self.fs_types_exclude,
            &self.stuck_mounts,
            &mut e,
        );
        self.report("filesystem", result, &mut e);
        e.emit("node_time_seconds", &[], now_ms as f64 / 1000.0);
        let result = uname::collect(&mut e);
        self.report("uname", result, &mut e);
        out
    }

    fn report(&mut self, collector: &'static str, result: Result<(), CollectError>, e: &mut Emitter<'_>) {
        let ok = result.is_ok();
        let was_failing = self.failing.insert(collector, !ok).unwrap_or(false);
        if let Err(err) = result {
            if !was_failing {
                tracing::warn!(collector, error = %err, "host collector failed");
            }
        }
        e.emit(
            "node_scrape_collector_success",
            &[("collector", collector)],
            if ok { 1.0 } else { 0.0 },
        );
    }
}

impl Default for HostCollector {
    fn default() -> Self {
        Self::new()
    }
}

fn read(path: &Path) -> Result<String, CollectError> {
    std::fs::read_to_string(path).map_err(|source| CollectError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn with_file(path: &Path, f: impl FnOnce(&str) -> Result<(), ParseError>) -> Result<(), CollectError> {
    let text = read(path)?;
    f(&text).map_err(|p| p.with_path(path))
}

/// Appends samples stamped with one timestamp.
pub(crate) struct Emitter<'a> {
    t: i64,
    out: &'a mut Vec<(Labels, Sample)>,
}

impl Emitter<'_> {
    /// Emits one sample of metric `name` with `labels` (which must not repeat names).
    pub(crate) fn emit(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut all = Vec::with_capacity(labels.len() + 1);
        all.push(Label::new(METRIC_NAME, name));
        all.extend(labels.iter().map(|(n, v)| Label::new(*n, *v)));
        self.out.push((Labels::new(all), Sample::new(self.t, v)));
    }
}

/// Splits a line into whitespace-separated fields and parses field `idx` as a number.
pub(crate) fn field_f64(fields: &[&str], idx: usize, line: usize) -> Result<f64, ParseError> {
    fields
        .get(idx)
        .ok_or(ParseError::at(line, "missing field"))?
        .parse::<f64>()
        .map_err(|_| ParseError::at(line, "field is not a number"))
}

#[cfg(test)]
pub(crate) fn emit_for_test(f: impl FnOnce(&mut Emitter<'_>)) -> Vec<(Labels, Sample)> {
    let mut out = Vec::new();
    let mut e = Emitter { t: 1000, out: &mut out };
    f(&mut e);
    out
}

/// Renders samples as `name{labels} value` lines, sorted, for fixture tests.
#[cfg(test)]
pub(crate) fn render(samples: &[(Labels, Sample)]) -> String {
    let mut lines: Vec<String> = samples.iter().map(|(l, s)| format!("{l} {}", s.v)).collect();
    lines.sort();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn missing_files_report_failure_without_panicking() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("loadavg"), "1.0 2.0 3.0 1/2 3\n").unwrap();
        std::fs::write(dir.path().join("meminfo"), "garbage\n").unwrap();
        let opts = HostOptions {
            proc_path: dir.path().to_path_buf(),
            sys_path: dir.path().to_path_buf(),
            ..HostOptions::default()
        };
        let mut c = HostCollector::with_options(opts).unwrap();
        let out = c.collect(5);
        let success = |name: &str| {
            out.iter()
                .find(|(l, _)| {
                    l.metric_name() == Some("node_scrape_collector_success") && l.get("collector") == Some(name)
                })
                .map(|(_, s)| s.v)
        };
        assert_eq!(success("loadavg"), Some(1.0));
        assert_eq!(success("meminfo"), Some(0.0));
        assert_eq!(success("cpu"), Some(0.0));
        assert_eq!(success("filesystem"), Some(0.0));
        assert!(out
            .iter()
            .any(|(l, s)| l.metric_name() == Some("node_load15") && s.v == 3.0 && s.t == 5));
    }

    #[test]
    fn invalid_regex_option_is_an_error() {
        let opts = HostOptions {
            disk_device_exclude: "(".into(),
            ..HostOptions::default()
        };
        assert!(matches!(
            HostCollector::with_options(opts),
            Err(CollectError::Regex { .. })
        ));
    }

    proptest! {
        /// No kernel file content, however odd, makes a parser panic.
        #[test]
        fn parsers_never_panic(text in "[ -~\n:()]{0,400}", lines in prop::collection::vec("[a-z0-9 :()\\\\]{0,60}", 0..8)) {
            let joined = lines.join("\n");
            let none = Regex::new("^$").unwrap();
            for t in [text.as_str(), joined.as_str()] {
                let mut sink = Vec::new();
                let mut e = Emitter { t: 0, out: &mut sink };
                let _ = cpu::CpuState::default().collect(t, &mut e);
                let _ = stat::collect(t, &mut e);
                let _ = meminfo::collect(t, &mut e);
                let _ = vmstat::collect(t, &mut e);
                let _ = loadavg::collect(t, &mut e);
                let _ = diskstats::collect(t, &none, &mut e);
                let _ = netdev::collect(t, None, Path::new("/nonexistent"), &mut e);
                let _ = filesystem::parse_mounts(t);
            }
        }
    }
}
