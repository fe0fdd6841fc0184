//! Measurements taken from outside the measured process: CPU time and memory from
//! `/proc/<pid>/stat` and `/proc/<pid>/status`, and the size of a data directory.
//!
//! Nothing here asks the measured server about itself, so the same numbers mean the same
//! thing for Haetae, Prometheus and VictoriaMetrics.

use std::path::Path;

use anyhow::{Context, Result};

/// CPU seconds (user + system) the process has used so far.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')').context("malformed /proc/pid/stat")? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((utime + stime) as f64 / ticks)
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// Resident set size now (`VmRSS`).
    pub(crate) rss: u64,
    /// Peak resident set size (`VmHWM`).
    pub(crate) peak_rss: u64,
}

/// Reads `VmRSS` and `VmHWM` of a process.
pub(crate) fn memory(pid: u32) -> Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:"),
        peak_rss: field("VmHWM:"),
    })
}

/// The apparent size (sum of file lengths) of everything under `dir`, following no symlinks.
/// A file missing while we walk (a server deleting it) counts as zero.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            total += dir_bytes(&e.path());
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    total
}

/// Waits until the process uses less than `max_cores` of a core over `window`, at most `limit`.
/// Returns false on timeout. Used to let background compactions and merges settle.
pub(crate) fn wait_idle(pid: u32, max_cores: f64, window: std::time::Duration, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let Ok(before) = cpu_seconds(pid) else { return true };
        std::thread::sleep(window);
        let Ok(after) = cpu_seconds(pid) else { return true };
        if (after - before) / window.as_secs_f64() < max_cores {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        let m = memory(pid).unwrap();
        assert!(m.rss > 0 && m.peak_rss >= m.rss);
    }
}
