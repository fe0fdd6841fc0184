//! The write-ahead log: an ordered list of segment files holding opaque,
//! checksummed records.
//!
//! Layer 1. The WAL moves bytes only: it never decodes a payload (record types
//! live in `tsdb::record`). It owns the framing, segment rotation, durability
//! (fsync policy, group commit) and repair of a torn tail on replay.
//!
//! Design constraints:
//! - A segment is a file named by its 8-digit decimal number in the WAL
//!   directory; segments are at most [`WalOptions::segment_size`] bytes
//!   (a record is never split; a record larger than that gets a segment alone).
//! - A record is `len: u32 LE | crc: u32 LE | payload`, where `crc` is the
//!   CRC32C of the four length bytes followed by the payload; `len` is never 0,
//!   so zero-filled space after a crash never reads as a record.
//! - [`Wal::append`] returns once the bytes are in the kernel (a `write(2)`
//!   done), so they survive `kill -9`. [`Wal::sync_to`] makes them survive a
//!   power loss; concurrent callers share one `fsync` (group commit).
//! - Replay stops at the first torn or corrupt record, truncates that segment
//!   there and removes later segments, logging a warning: a crash mid-write
//!   never prevents a restart.
//!
//! See `docs/format/wal.md` for the byte layout.
#![warn(missing_docs)]

mod segment;

pub use segment::{list_segments, read_records, segment_path, SegmentReadStats};

use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Errors of the WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// An I/O operation failed.
    #[error("WAL I/O error on {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record is larger than the framing allows (4 GiB).
    #[error("WAL record of {len} bytes is too large")]
    RecordTooLarge {
        /// The payload length.
        len: usize,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// When appended records are flushed to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every acknowledged write is fsynced before it is acknowledged;
    /// concurrent writers share one fsync (group commit). Survives power loss.
    Always,
    /// The owner calls [`Wal::sync`] at this interval; a power loss may lose
    /// up to one interval of acknowledged writes (a `kill -9` loses nothing).
    Periodic(Duration),
    /// Never fsync except when a segment is closed; the OS decides.
    Never,
}

/// How the WAL is laid out and synced.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// A segment is closed and a new one started once it exceeds this size.
    pub segment_size: u64,
    /// See [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 128 << 20,
            fsync: FsyncPolicy::Periodic(Duration::from_secs(1)),
        }
    }
}

/// Counters about the WAL, read by self-monitoring.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Number of fsync calls.
    pub fsyncs: AtomicU64,
    /// Total time spent in fsync, nanoseconds.
    pub fsync_nanos: AtomicU64,
    /// Bytes appended since start.
    pub bytes_written: AtomicU64,
    /// Records appended since start.
    pub records_written: AtomicU64,
    /// Histogram of fsync latency: counts of calls at or below
    /// [`FSYNC_BUCKETS_SECONDS`]`[i]`, cumulative as Prometheus expects.
    pub fsync_buckets: [AtomicU64; 8],
}

/// The upper bounds, in seconds, of the fsync latency histogram buckets.
pub const FSYNC_BUCKETS_SECONDS: [f64; 8] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0];

impl WalStats {
    fn observe_fsync(&self, d: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        let secs = d.as_secs_f64();
        for (i, le) in FSYNC_BUCKETS_SECONDS.iter().enumerate() {
            if secs <= *le {
                self.fsync_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Writer {
    file: File,
    segment: u64,
    size: u64,
    /// Sequence number of the last record written to the kernel.
    written_seq: u64,
    buf: Vec<u8>,
}

/// An open write-ahead log. Appends are serialised internally; the type is
/// `Sync` and meant to be shared.
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    writer: Mutex<Writer>,
    /// Held while fsyncing, so that one fsync serves every waiting writer.
    sync_lock: Mutex<()>,
    /// Sequence number known to be on stable storage.
    synced_seq: AtomicU64,
    stats: WalStats,
}

impl Wal {
    /// Opens the WAL in `dir` for appending, starting a new segment after the
    /// last existing one. Call [`read_records`] first to replay (and repair)
    /// what is there.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let next = list_segments(dir)?.last().map_or(0, |n| n + 1);
        let (file, _) = create_segment(dir, next)?;
        sync_dir(dir)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            writer: Mutex::new(Writer {
                file,
                segment: next,
                size: 0,
                written_seq: 0,
                buf: Vec::new(),
            }),
            sync_lock: Mutex::new(()),
            synced_seq: AtomicU64::new(0),
            stats: WalStats::default(),
        })
    }

    /// The directory of the WAL.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Statistics for self-monitoring.
    pub fn stats(&self) -> &WalStats {
        &self.stats
    }

    /// The options the WAL was opened with.
    pub fn options(&self) -> &WalOptions {
        &self.opts
    }

    /// Appends records in one `write(2)`, rotating to a new segment first if
    /// the current one is full. Returns the sequence number of the last
    /// record; pass it to [`Wal::sync_to`] or use [`Wal::commit`].
    pub fn append(&self, records: &[&[u8]]) -> Result<u64, WalError> {
        let mut w = self.writer.lock();
        let w = &mut *w;
        w.buf.clear();
        for r in records {
            frame_record(r, &mut w.buf)?;
        }
        if w.size > 0 && w.size + w.buf.len() as u64 > self.opts.segment_size {
            self.rotate_locked(w)?;
        }
        let path = segment_path(&self.dir, w.segment);
        w.file.write_all(&w.buf).map_err(io_err(&path))?;
        w.size += w.buf.len() as u64;
        w.written_seq += 1;
        self.stats
            .bytes_written
            .fetch_add(w.buf.len() as u64, Ordering::Relaxed);
        self.stats
            .records_written
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        if w.buf.capacity() > 4 << 20 {
            w.buf = Vec::new();
        }
        Ok(w.written_seq)
    }

    /// Appends and then makes the records as durable as the fsync policy
    /// promises before returning.
    pub fn commit(&self, records: &[&[u8]]) -> Result<(), WalError> {
        let seq = self.append(records)?;
        if self.opts.fsync == FsyncPolicy::Always {
            self.sync_to(seq)?;
        }
        Ok(())
    }

    /// Ensures everything up to sequence number `seq` is fsynced. Concurrent
    /// callers wait for one another's fsync rather than each issuing one.
    pub fn sync_to(&self, seq: u64) -> Result<(), WalError> {
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _guard = self.sync_lock.lock();
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        self.sync_locked()
    }

    /// Fsyncs whatever has been written so far.
    pub fn sync(&self) -> Result<(), WalError> {
        let _guard = self.sync_lock.lock();
        self.sync_locked()
    }

    fn sync_locked(&self) -> Result<(), WalError> {
        // Take a handle and the sequence number under the writer lock, then
        // fsync without it so that appends go on meanwhile.
        let (file, seq, segment) = {
            let w = self.writer.lock();
            let file = w.file.try_clone().map_err(io_err(&self.dir))?;
            (file, w.written_seq, w.segment)
        };
        let start = Instant::now();
        file.sync_data().map_err(io_err(&segment_path(&self.dir, segment)))?;
        self.stats.observe_fsync(start.elapsed());
        self.synced_seq.fetch_max(seq, Ordering::Release);
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts a new one. Returns the
    /// number of the new segment: every record appended before this call is
    /// in a segment with a smaller number.
    pub fn rotate(&self) -> Result<u64, WalError> {
        let mut w = self.writer.lock();
        self.rotate_locked(&mut w)?;
        Ok(w.segment)
    }

    fn rotate_locked(&self, w: &mut Writer) -> Result<(), WalError> {
        let old = segment_path(&self.dir, w.segment);
        let start = Instant::now();
        w.file.sync_data().map_err(io_err(&old))?;
        self.stats.observe_fsync(start.elapsed());
        let (file, _) = create_segment(&self.dir, w.segment + 1)?;
        sync_dir(&self.dir)?;
        w.file = file;
        w.segment += 1;
        w.size = 0;
        // Everything before the rotation is durable now.
        self.synced_seq.fetch_max(w.written_seq, Ordering::Release);
        Ok(())
    }

    /// Deletes every segment numbered below `segment`. The caller must have
    /// made their content redundant (blocks written, checkpoint taken).
    pub fn truncate_before(&self, segment: u64) -> Result<usize, WalError> {
        let current = self.writer.lock().segment;
        let mut removed = 0;
        for n in list_segments(&self.dir)? {
            if n < segment && n < current {
                let p = segment_path(&self.dir, n);
                std::fs::remove_file(&p).map_err(io_err(&p))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The number of the segment being appended to.
    pub fn current_segment(&self) -> u64 {
        self.writer.lock().segment
    }

    /// Total bytes of all segment files.
    pub fn disk_bytes(&self) -> u64 {
        list_segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| std::fs::metadata(segment_path(&self.dir, n)).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Appends one framed record to `out`.
pub fn frame_record(payload: &[u8], out: &mut Vec<u8>) -> Result<(), WalError> {
    let len = u32::try_from(payload.len()).map_err(|_| WalError::RecordTooLarge { len: payload.len() })?;
    if len == 0 {
        // An empty record would be indistinguishable from zero-filled space.
        return Err(WalError::RecordTooLarge { len: 0 });
    }
    let len_bytes = len.to_le_bytes();
    let mut crc = crc32c::crc32c(&len_bytes);
    crc = crc32c::crc32c_append(crc, payload);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

fn create_segment(dir: &Path, n: u64) -> Result<(File, PathBuf), WalError> {
    let path = segment_path(dir, n);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    Ok((file, path))
}

/// Fsyncs a directory so that file creations and renames in it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

#[cfg(test)]
mod tests;
