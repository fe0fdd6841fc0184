//! Filesystem space and inodes per mount, as node_exporter's `filesystem`
//! collector: `node_filesystem_{size,free,avail}_bytes`,
//! `node_filesystem_{files,files_free}`, `node_filesystem_readonly` and
//! `node_filesystem_device_error`, labelled `{device,fstype,mountpoint}`.
//!
//! Layer 5. Mounts come from `/proc/1/mounts` (the host's namespace when the
//! agent runs in a container with the host's procfs), falling back to
//! `/proc/mounts`; sizes from `statfs(2)` in units of `f_bsize`, exactly as
//! node_exporter computes them. A mount listed twice is reported once.
//!
//! Design constraints:
//! - `statfs` on a hung NFS/FUSE mount can block forever, so it runs on a
//!   helper thread; after [`HostOptions::statfs_timeout`] the mount is marked
//!   stuck and skipped until that thread returns.
//! - A failing `statfs` yields `device_error 1` and `readonly` only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use parking_lot::Mutex;
use regex::Regex;

use super::{CollectError, Emitter, HostOptions};

/// node_exporter's default `--collector.filesystem.mount-points-exclude` (1.7 and later).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default `--collector.filesystem.fs-types-exclude` (1.7 and later).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|\
hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

/// Mount points whose `statfs` has not returned yet.
pub(crate) type StuckMounts = Arc<Mutex<HashSet<PathBuf>>>;

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) device: String,
    pub(crate) mount_point: String,
    pub(crate) fstype: String,
    pub(crate) readonly: bool,
}

/// Decodes the octal escapes (`\040` for a space) the kernel writes in mounts files.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a mounts file; lines with fewer than four fields are skipped.
pub(crate) fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            if fields.len() < 4 {
                return None;
            }
            Some(Mount {
                device: unescape(fields[0]),
                mount_point: unescape(fields[1]),
                fstype: fields[2].to_string(),
                readonly: fields[3].split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

struct FsStats {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statfs(path: &Path) -> std::io::Result<FsStats> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: statfs is plain old data, filled by the call.
    let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `buf` is writable.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut buf) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let bsize = buf.f_bsize as f64;
    Ok(FsStats {
        size: buf.f_blocks as f64 * bsize,
        free: buf.f_bfree as f64 * bsize,
        avail: buf.f_bavail as f64 * bsize,
        files: buf.f_files as f64,
        files_free: buf.f_ffree as f64,
    })
}

/// Runs `statfs` on a helper thread; `None` when it did not return in time
/// (the mount is then in `stuck` until the thread finishes).
fn statfs_with_timeout(
    path: PathBuf,
    timeout: std::time::Duration,
    stuck: &StuckMounts,
) -> Option<std::io::Result<FsStats>> {
    let (tx, rx) = mpsc::channel();
    let stuck_for_thread = Arc::clone(stuck);
    let path_for_thread = path.clone();
    let spawned = std::thread::Builder::new().name("statfs".into()).spawn(move || {
        let result = statfs(&path_for_thread);
        if tx.send(result).is_err() {
            // The collector gave up on us: the mount is usable again.
            stuck_for_thread.lock().remove(&path_for_thread);
        }
    });
    if let Err(err) = spawned {
        return Some(Err(err));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => Some(result),
        Err(_) => {
            tracing::warn!(mount_point = %path.display(), "statfs timed out; treating the mount as stuck");
            stuck.lock().insert(path);
            None
        }
    }
}

pub(crate) fn collect(
    opts: &HostOptions,
    mount_points_exclude: &Regex,
    fs_types_exclude: &Regex,
    stuck: &StuckMounts,
    e: &mut Emitter<'_>,
) -> Result<(), CollectError> {
    let mut path = opts.proc_path.join("1/mounts");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(_) => {
            path = opts.proc_path.join("mounts");
            std::fs::read_to_string(&path).map_err(|source| CollectError::Io { path, source })?
        }
    };
    let rootfs = opts.rootfs_path.to_string_lossy();
    let rootfs = rootfs.trim_end_matches('/');
    let mut seen = HashSet::new();
    for m in parse_mounts(&text) {
        // node_exporter's rootfsStripPrefix: mounts outside the rootfs keep their path.
        let label_mount = match m.mount_point.strip_prefix(rootfs) {
            Some("") => "/".to_string(),
            Some(rest) if !rootfs.is_empty() && rest.starts_with('/') => rest.to_string(),
            _ => m.mount_point.clone(),
        };
        if mount_points_exclude.is_match(&label_mount) || fs_types_exclude.is_match(&m.fstype) {
            continue;
        }
        if !seen.insert((m.device.clone(), label_mount.clone(), m.fstype.clone())) {
            continue;
        }
        let stat_path = PathBuf::from(format!("{rootfs}{label_mount}"));
        if stuck.lock().contains(&stat_path) {
            tracing::debug!(mount_point = %label_mount, "skipping stuck mount");
            continue;
        }
        let labels = [
            ("device", m.device.as_str()),
            ("fstype", m.fstype.as_str()),
            ("mountpoint", label_mount.as_str()),
        ];
        let readonly = if m.readonly { 1.0 } else { 0.0 };
        match statfs_with_timeout(stat_path, opts.statfs_timeout, stuck) {
            None => continue,
            Some(Err(err)) => {
                tracing::debug!(mount_point = %label_mount, error = %err, "statfs failed");
                e.emit("node_filesystem_device_error", &labels, 1.0);
                e.emit("node_filesystem_readonly", &labels, readonly);
            }
            Some(Ok(s)) => {
                e.emit("node_filesystem_device_error", &labels, 0.0);
                e.emit("node_filesystem_readonly", &labels, readonly);
                e.emit("node_filesystem_size_bytes", &labels, s.size);
                e.emit("node_filesystem_free_bytes", &labels, s.free);
                e.emit("node_filesystem_avail_bytes", &labels, s.avail);
                e.emit("node_filesystem_files", &labels, s.files);
                e.emit("node_filesystem_files_free", &labels, s.files_free);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unescapes_mounts() {
        let text = "/dev/vda / ext4 rw,relatime 0 0\nserver:/x /mnt/my\\040share nfs ro,vers=4 0 0\nshort line\n";
        let mounts = parse_mounts(text);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].mount_point, "/mnt/my share");
        assert!(mounts[1].readonly);
        assert!(!mounts[0].readonly);
        assert_eq!(unescape("a\\134b\\0"), "a\\b\\0");
    }

    #[test]
    fn default_excludes_match_node_exporter() {
        let mp = Regex::new(DEFAULT_MOUNT_POINTS_EXCLUDE).unwrap();
        let fs = Regex::new(DEFAULT_FS_TYPES_EXCLUDE).unwrap();
        for excluded in [
            "/dev",
            "/dev/shm",
            "/proc",
            "/sys/fs/cgroup",
            "/run/credentials/x",
            "/var/lib/docker/overlay",
        ] {
            assert!(mp.is_match(excluded), "{excluded}");
        }
        for kept in ["/", "/home", "/run", "/var/lib/docker", "/devices"] {
            assert!(!mp.is_match(kept), "{kept}");
        }
        assert!(fs.is_match("cgroup2") && !fs.is_match("tmpfs") && fs.is_match("erofs"));
    }

    #[test]
    fn statfs_of_root_works() {
        let stuck = StuckMounts::default();
        let s = statfs_with_timeout("/".into(), std::time::Duration::from_secs(5), &stuck)
            .unwrap()
            .unwrap();
        assert!(s.size > 0.0 && s.avail <= s.free && s.free <= s.size);
        assert!(statfs(Path::new("/nonexistent/path")).is_err());
    }
}
