//! The agent's bounded on-disk queue of remote-write batches: what has been
//! collected but not yet delivered, kept across agent restarts.
//!
//! Layer 5. Built on `wal` segment files (framing, checksums, rotation,
//! fsync, torn-tail repair). The queue owns the order of delivery, the
//! delivery cursor and the byte cap; it does not know HTTP (see `ship`) nor
//! what a batch contains beyond its sample count.
//!
//! Design constraints:
//! - A record is one batch: `version: u8 = 1 | num_samples: u32 LE | body`,
//!   the body being a snappy-compressed remote-write request, posted as is.
//! - Delivery is in append order, one batch at a time ([`DiskQueue::peek`],
//!   then [`DiskQueue::ack`] with the batch's [`BatchId`], so that a batch
//!   dropped by the cap while it was being sent is not confused with the next). The cursor `(segment, records acked)` is kept
//!   in the file `cursor` (written to `cursor.tmp`, then renamed); a segment
//!   is deleted once every record in it is acked and it is no longer written to.
//! - Delivery is at least once: a crash between a successful POST and the
//!   cursor update sends that batch again (the server drops the duplicate
//!   samples, they carry the same timestamps and values).
//! - The files never exceed [`QueueOptions::max_bytes`]: before an append
//!   that would, the oldest segments are deleted whole, delivered or not, and
//!   their undelivered samples are counted in [`QueueStats::dropped_samples`]
//!   (exported as `haetae_agent_queue_dropped_samples_total`).
//! - Appends are fsynced ([`wal::FsyncPolicy::Always`]): at one batch per
//!   collection interval this costs nothing and survives power loss.
//! - A corrupt record met while reading ends its segment: the rest of that
//!   segment is counted as dropped and delivery goes on with the next one.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use wal::{Wal, WalError, WalOptions};

/// The version byte that starts every record.
const RECORD_VERSION: u8 = 1;
/// Bytes of a record header (version + sample count).
const RECORD_HEADER: usize = 5;
/// Bytes of the WAL framing around each record (length + CRC).
const FRAME_OVERHEAD: u64 = 8;
const CURSOR_FILE: &str = "cursor";
const CURSOR_TMP_FILE: &str = "cursor.tmp";

/// Errors of the queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The segment log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Another file operation failed.
    #[error("queue I/O error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Sizes of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// The most bytes the queue's files may take (default 512 MiB).
    pub max_bytes: u64,
    /// The size at which a segment is closed (default 8 MiB; never more than
    /// a quarter of `max_bytes`, so that dropping one segment frees little).
    pub segment_size: u64,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_bytes: 512 << 20,
            segment_size: 8 << 20,
        }
    }
}

impl QueueOptions {
    /// Options with the given byte cap and the default segment size.
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        QueueOptions {
            max_bytes,
            ..QueueOptions::default()
        }
    }
}

/// One remote-write request waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The number of samples in `body`, for accounting drops.
    pub num_samples: u32,
    /// A snappy-compressed remote-write request.
    pub body: Vec<u8>,
}

/// Where a batch sits in the queue; hand it back to [`DiskQueue::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchId {
    segment: u64,
    index: usize,
}

/// Counters of the queue, for self-monitoring. They count since the process
/// started.
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Samples dropped because the queue was full or a record was corrupt.
    pub dropped_samples: AtomicU64,
    /// Batches dropped for the same reasons.
    pub dropped_batches: AtomicU64,
    /// Batches appended.
    pub appended_batches: AtomicU64,
    /// Batches acknowledged (delivered or given up by the shipper).
    pub acked_batches: AtomicU64,
}

#[derive(Debug)]
struct SegmentInfo {
    no: u64,
    bytes: u64,
    /// The sample count of each record, in order.
    samples: Vec<u32>,
    /// How many records from the start are acknowledged.
    acked: usize,
}

impl SegmentInfo {
    fn pending_samples(&self) -> u64 {
        self.samples[self.acked.min(self.samples.len())..]
            .iter()
            .map(|&n| u64::from(n))
            .sum()
    }

    fn is_done(&self) -> bool {
        self.acked >= self.samples.len()
    }
}

/// The on-disk queue. Not `Sync`: wrap it in a mutex to share it between the
/// collector and the shipper.
pub struct DiskQueue {
    dir: PathBuf,
    opts: QueueOptions,
    wal: Wal,
    /// Invariant: ascending by `no`; the last one is the WAL's current
    /// segment; every segment before the first with pending records is
    /// the current one (fully acked ones are deleted).
    segments: VecDeque<SegmentInfo>,
    total_bytes: u64,
    /// The records of one segment, read on demand.
    cache: Option<(u64, Vec<Vec<u8>>)>,
    stats: Arc<QueueStats>,
}

impl std::fmt::Debug for DiskQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskQueue")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .field("segments", &self.segments.len())
            .field("total_bytes", &self.total_bytes)
            .finish()
    }
}

/// Reads the records of one segment file, stopping at the first torn or
/// corrupt one (the WAL's framing: `len u32 | crc32c(len bytes ++ payload) | payload`).
fn read_segment(path: &Path) -> Result<(Vec<Vec<u8>>, bool), QueueError> {
    let buf = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < buf.len() {
        let Some(header) = buf.get(off..off + 8) else {
            return Ok((out, true));
        };
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let Some(payload) = buf.get(off + 8..off + 8 + len) else {
            return Ok((out, true));
        };
        if len == 0 || crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
            return Ok((out, true));
        }
        out.push(payload.to_vec());
        off += 8 + len;
    }
    Ok((out, false))
}

fn record_samples(payload: &[u8]) -> Option<u32> {
    if payload.len() < RECORD_HEADER || payload[0] != RECORD_VERSION {
        return None;
    }
    Some(u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]))
}

fn read_cursor(dir: &Path) -> (u64, usize) {
    let path = dir.join(CURSOR_FILE);
    let Ok(b) = std::fs::read(&path) else {
        return (0, 0);
    };
    if b.len() != 20 || crc32c::crc32c(&b[..16]).to_le_bytes() != b[16..20] {
        tracing::warn!(path = %path.display(), "queue cursor is corrupt; delivering every queued batch again");
        return (0, 0);
    }
    let mut seg = [0u8; 8];
    let mut idx = [0u8; 8];
    seg.copy_from_slice(&b[..8]);
    idx.copy_from_slice(&b[8..16]);
    (u64::from_le_bytes(seg), u64::from_le_bytes(idx) as usize)
}

impl DiskQueue {
    /// Opens (or creates) the queue in `dir`, repairing a torn tail and
    /// skipping what the saved cursor says was delivered.
    pub fn open(dir: &Path, opts: QueueOptions) -> Result<DiskQueue, QueueError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let segment_size = opts.segment_size.min((opts.max_bytes / 4).max(1));
        // Let the WAL repair a torn tail left by a crash.
        wal::read_records::<WalError>(dir, 0, |_| Ok(()))?;
        let (cursor_seg, cursor_idx) = read_cursor(dir);
        let stats = Arc::new(QueueStats::default());
        let mut segments = VecDeque::new();
        let existing = wal::list_segments(dir)?;
        let newest = existing.last().copied();
        for no in existing {
            let path = wal::segment_path(dir, no);
            if no < cursor_seg {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            let (records, _) = read_segment(&path)?;
            let bytes = std::fs::metadata(&path).map_err(io_err(&path))?.len();
            let samples: Vec<u32> = records.iter().map(|r| record_samples(r).unwrap_or(0)).collect();
            let acked = if no == cursor_seg {
                cursor_idx.min(samples.len())
            } else {
                0
            };
            let info = SegmentInfo {
                no,
                bytes,
                samples,
                acked,
            };
            // The newest file stays until the WAL has opened the next one:
            // the WAL numbers its new segment after the newest file, and a
            // reused number would meet a stale cursor.
            if info.is_done() && Some(no) != newest {
                std::fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            segments.push_back(info);
        }
        let wal = Wal::open(
            dir,
            WalOptions {
                segment_size,
                fsync: wal::FsyncPolicy::Always,
            },
        )?;
        segments.push_back(SegmentInfo {
            no: wal.current_segment(),
            bytes: 0,
            samples: Vec::new(),
            acked: 0,
        });
        let total_bytes = segments.iter().map(|s| s.bytes).sum();
        let mut queue = DiskQueue {
            dir: dir.to_path_buf(),
            opts: QueueOptions { segment_size, ..opts },
            wal,
            segments,
            total_bytes,
            cache: None,
            stats,
        };
        queue.remove_done_front()?;
        if queue.pending_batches() > 0 {
            tracing::info!(
                batches = queue.pending_batches(),
                samples = queue.pending_samples(),
                bytes = queue.total_bytes,
                "replaying undelivered batches from the queue"
            );
        }
        Ok(queue)
    }

    /// The counters of this queue.
    pub fn stats(&self) -> &Arc<QueueStats> {
        &self.stats
    }

    /// The options in force (the segment size possibly lowered to fit the cap).
    pub fn options(&self) -> &QueueOptions {
        &self.opts
    }

    /// Bytes of the queue's segment files.
    pub fn disk_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Batches appended and not yet acknowledged.
    pub fn pending_batches(&self) -> usize {
        self.segments
            .iter()
            .map(|s| s.samples.len() - s.acked.min(s.samples.len()))
            .sum()
    }

    /// Samples in the batches not yet acknowledged.
    pub fn pending_samples(&self) -> u64 {
        self.segments.iter().map(SegmentInfo::pending_samples).sum()
    }

    /// Appends a batch, first dropping the oldest segments if the queue would
    /// exceed its cap. A batch larger than the whole cap is dropped (and counted).
    pub fn push(&mut self, batch: &Batch) -> Result<(), QueueError> {
        let framed = FRAME_OVERHEAD + RECORD_HEADER as u64 + batch.body.len() as u64;
        if framed > self.opts.max_bytes {
            tracing::warn!(
                bytes = framed,
                max_bytes = self.opts.max_bytes,
                "batch larger than the whole queue; dropping it"
            );
            self.count_dropped(1, u64::from(batch.num_samples));
            return Ok(());
        }
        while self.total_bytes + framed > self.opts.max_bytes {
            self.drop_oldest_segment()?;
        }
        let mut payload = Vec::with_capacity(RECORD_HEADER + batch.body.len());
        payload.push(RECORD_VERSION);
        payload.extend_from_slice(&batch.num_samples.to_le_bytes());
        payload.extend_from_slice(&batch.body);
        self.wal.commit(&[&payload])?;
        let current = self.wal.current_segment();
        if self.segments.back().map(|s| s.no) != Some(current) {
            // The WAL rotated: the old current segment is an ordinary one now.
            self.segments.push_back(SegmentInfo {
                no: current,
                bytes: 0,
                samples: Vec::new(),
                acked: 0,
            });
            self.remove_done_front()?;
        }
        if let Some(back) = self.segments.back_mut() {
            back.samples.push(batch.num_samples);
            back.bytes += framed;
        }
        self.total_bytes += framed;
        self.stats.appended_batches.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn count_dropped(&self, batches: u64, samples: u64) {
        self.stats.dropped_batches.fetch_add(batches, Ordering::Relaxed);
        self.stats.dropped_samples.fetch_add(samples, Ordering::Relaxed);
    }

    /// Deletes the oldest segment, rotating first if it is the current one.
    fn drop_oldest_segment(&mut self) -> Result<(), QueueError> {
        if self.segments.len() == 1 {
            let no = self.wal.rotate()?;
            self.segments.push_back(SegmentInfo {
                no,
                bytes: 0,
                samples: Vec::new(),
                acked: 0,
            });
        }
        let Some(oldest) = self.segments.pop_front() else {
            return Ok(());
        };
        let batches = (oldest.samples.len() - oldest.acked.min(oldest.samples.len())) as u64;
        let samples = oldest.pending_samples();
        if batches > 0 {
            tracing::warn!(
                batches,
                samples,
                segment = oldest.no,
                "queue full; dropping its oldest undelivered data"
            );
        }
        self.count_dropped(batches, samples);
        self.delete_segment(&oldest)
    }

    fn delete_segment(&mut self, seg: &SegmentInfo) -> Result<(), QueueError> {
        let path = wal::segment_path(&self.dir, seg.no);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        self.total_bytes = self.total_bytes.saturating_sub(seg.bytes);
        if self.cache.as_ref().is_some_and(|(no, _)| *no == seg.no) {
            self.cache = None;
        }
        Ok(())
    }

    /// Deletes fully acknowledged segments at the front, except the current one.
    fn remove_done_front(&mut self) -> Result<(), QueueError> {
        while self.segments.len() > 1 && self.segments.front().is_some_and(SegmentInfo::is_done) {
            if let Some(seg) = self.segments.pop_front() {
                self.delete_segment(&seg)?;
            }
        }
        Ok(())
    }

    /// The oldest batch not yet acknowledged, or `None` if everything was
    /// delivered. Calling it again without [`DiskQueue::ack`] returns the
    /// same batch.
    pub fn peek(&mut self) -> Result<Option<(BatchId, Batch)>, QueueError> {
        loop {
            self.remove_done_front()?;
            let Some(seg) = self.segments.iter().find(|s| !s.is_done()) else {
                return Ok(None);
            };
            let (no, idx, expected) = (seg.no, seg.acked, seg.samples.len());
            let cached = self
                .cache
                .as_ref()
                .is_some_and(|(cached_no, records)| *cached_no == no && records.len() > idx);
            if !cached {
                let path = wal::segment_path(&self.dir, no);
                let (records, corrupt) = read_segment(&path)?;
                if corrupt || records.len() < expected {
                    tracing::warn!(segment = %path.display(), "corrupt record in the agent queue; skipping the rest of the segment");
                }
                self.cache = Some((no, records));
            }
            let record = self
                .cache
                .as_ref()
                .and_then(|(_, records)| records.get(idx))
                .and_then(|r| record_samples(r).map(|n| (n, r[RECORD_HEADER..].to_vec())));
            match record {
                Some((num_samples, body)) => {
                    let id = BatchId {
                        segment: no,
                        index: idx,
                    };
                    return Ok(Some((id, Batch { num_samples, body })));
                }
                None => {
                    // Corrupt or missing: give up on the rest of this segment.
                    if let Some(seg) = self.segments.iter_mut().find(|s| s.no == no) {
                        let batches = (seg.samples.len() - seg.acked) as u64;
                        let samples = seg.pending_samples();
                        seg.acked = seg.samples.len();
                        self.count_dropped(batches, samples);
                    }
                    if no == self.wal.current_segment() {
                        // Never append behind a corrupt record.
                        let next = self.wal.rotate()?;
                        self.segments.push_back(SegmentInfo {
                            no: next,
                            bytes: 0,
                            samples: Vec::new(),
                            acked: 0,
                        });
                    }
                    self.save_cursor()?;
                }
            }
        }
    }

    /// Acknowledges the batch `id` returned by [`DiskQueue::peek`]: it will
    /// not be returned again, even after a restart. Does nothing if the batch
    /// is no longer the oldest pending one (the cap dropped it meanwhile).
    pub fn ack(&mut self, id: BatchId) -> Result<(), QueueError> {
        let Some(seg) = self.segments.iter_mut().find(|s| !s.is_done()) else {
            return Ok(());
        };
        if seg.no != id.segment || seg.acked != id.index {
            return Ok(());
        }
        seg.acked += 1;
        self.stats.acked_batches.fetch_add(1, Ordering::Relaxed);
        self.save_cursor()?;
        self.remove_done_front()
    }

    fn save_cursor(&self) -> Result<(), QueueError> {
        // The first segment with pending records, or the current one.
        let Some(seg) = self.segments.iter().find(|s| !s.is_done()).or(self.segments.back()) else {
            return Ok(());
        };
        let mut buf = Vec::with_capacity(20);
        buf.extend_from_slice(&seg.no.to_le_bytes());
        buf.extend_from_slice(&(seg.acked as u64).to_le_bytes());
        let crc = crc32c::crc32c(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join(CURSOR_TMP_FILE);
        std::fs::write(&tmp, &buf).map_err(io_err(&tmp))?;
        let path = self.dir.join(CURSOR_FILE);
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests;
