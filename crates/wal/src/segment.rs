//! Reading segments back: listing, record iteration, torn-tail repair.

use crate::{io_err, WalError};
use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The path of segment `n` in `dir`.
pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Segment numbers present in `dir`, ascending. Other files are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse() {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// What a replay saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentReadStats {
    /// Segments read.
    pub num_segments: usize,
    /// Records handed to the callback.
    pub num_records: u64,
    /// Bytes read.
    pub num_bytes: u64,
    /// Set when a torn or corrupt record was found: (segment, offset) where
    /// the log was cut.
    pub truncated_at: Option<(u64, u64)>,
    /// Later segments deleted because they followed a corrupt one.
    pub num_removed_segments: usize,
}

/// Reads every record of segments numbered `from` and above, in order,
/// handing each payload to `f`. A torn or corrupt record ends the log: its
/// segment is truncated there, later segments are deleted, and a warning is
/// logged. Errors returned by `f` stop the replay and are passed through.
pub fn read_records<E: From<WalError>>(
    dir: &Path,
    from: u64,
    mut f: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<SegmentReadStats, E> {
    let mut stats = SegmentReadStats::default();
    let segments: Vec<u64> = list_segments(dir)?.into_iter().filter(|&n| n >= from).collect();
    let mut buf = Vec::new();
    for (i, &n) in segments.iter().enumerate() {
        let path = segment_path(dir, n);
        buf.clear();
        std::fs::File::open(&path)
            .and_then(|mut file| file.read_to_end(&mut buf))
            .map_err(io_err(&path))?;
        stats.num_segments += 1;
        stats.num_bytes += buf.len() as u64;
        let mut off = 0usize;
        let mut bad: Option<&'static str> = None;
        while off < buf.len() {
            match next_record(&buf[off..]) {
                Ok((payload, used)) => {
                    f(payload)?;
                    stats.num_records += 1;
                    off += used;
                }
                Err(reason) => {
                    bad = Some(reason);
                    break;
                }
            }
        }
        if let Some(reason) = bad {
            tracing::warn!(segment = %path.display(), offset = off, reason, "WAL ends in a torn or corrupt record; truncating it");
            let file = OpenOptions::new().write(true).open(&path).map_err(io_err(&path))?;
            file.set_len(off as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
            stats.truncated_at = Some((n, off as u64));
            for &later in &segments[i + 1..] {
                let p = segment_path(dir, later);
                tracing::warn!(segment = %p.display(), "removing WAL segment that follows a corrupt one");
                std::fs::remove_file(&p).map_err(io_err(&p))?;
                stats.num_removed_segments += 1;
            }
            break;
        }
    }
    Ok(stats)
}

/// Decodes the record at the start of `buf`: its payload and framed length.
fn next_record(buf: &[u8]) -> Result<(&[u8], usize), &'static str> {
    if buf.len() < 8 {
        return Err("truncated record header");
    }
    let len_bytes: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 {
        return Err("zero-length record (zero-filled tail)");
    }
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let Some(payload) = buf.get(8..8 + len) else {
        return Err("truncated record payload");
    };
    let actual = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload);
    if actual != crc {
        return Err("checksum mismatch");
    }
    Ok((payload, 8 + len))
}
