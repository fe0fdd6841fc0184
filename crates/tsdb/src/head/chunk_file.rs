//! Closed head chunks kept in files (`chunks_head/`) instead of the heap.
//!
//! Once a head chunk is closed it never changes, and it is read only by
//! queries, block cuts and checkpoints. Keeping its bytes in the heap would
//! cost several hundred bytes per active series (one chunk per 30 minutes
//! held); here the head keeps only `(min_t, max_t, location)` per closed
//! chunk and the bytes go through the page cache, which the kernel may evict.
//! Reads use `pread`, not `mmap`, so they never count towards the process'
//! resident memory.
//!
//! Design constraints:
//! - The files are a cache, not a source of truth: the WAL and its
//!   checkpoints hold every sample (a checkpoint copies the chunk bytes), so
//!   the directory is deleted at every start and the files are never synced.
//!   A crash can leave anything in it.
//! - Chunks are appended to the active file through a write buffer; a read of
//!   a chunk still in the buffer is served from it.
//! - Each chunk carries a CRC32C; a mismatch (disk corruption) is an error
//!   the caller logs and skips, never a panic.
//! - A file is deleted once none of its chunks is referenced by the head,
//!   even the active one (the next chunk then opens a new file), so after a
//!   cut or flush that empties the head no chunk bytes stay on disk. File
//!   numbers wrap around, skipping those in use.
//! - If a file cannot be written (disk full, no directory), chunks stay in
//!   the heap (the "overflow" store) and a warning is logged once; appends
//!   never fail because of this cache.
//!
//! Layout (`docs/format/head_chunks.md`): each file starts with the 8-byte
//! header `HTHC` + version `1` + 3 zero bytes, then chunk records
//! `XOR chunk bytes | CRC32C of them (u32 LE)`, back to back.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

/// Name of the directory under a database's directory.
pub(crate) const DIR_NAME: &str = "chunks_head";
const MAGIC: &[u8; 4] = b"HTHC";
const VERSION: u8 = 1;
const HEADER_LEN: u64 = 8;
/// A file is closed once it holds this many bytes (offsets fit in 32 bits).
const MAX_FILE_BYTES: u64 = 64 << 20;
/// The write buffer is written out once it holds this many bytes.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// File number of chunks kept in the heap.
const OVERFLOW_FILE: u16 = u16::MAX;

/// Where a closed chunk is: `file (16 bits) | length (16 bits) | offset (32 bits)`.
/// The length counts the chunk bytes only (the CRC follows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLoc(u64);

impl ChunkLoc {
    fn new(file: u16, len: u16, offset: u32) -> Self {
        ChunkLoc((u64::from(file) << 48) | (u64::from(len) << 32) | u64::from(offset))
    }

    fn file(self) -> u16 {
        (self.0 >> 48) as u16
    }

    fn len(self) -> usize {
        ((self.0 >> 32) & 0xffff) as usize
    }

    fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// Errors reading a chunk back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChunkReadError {
    #[error("head chunk file {file}: {source}")]
    Io { file: u16, source: std::io::Error },
    #[error("head chunk in file {file} at offset {offset}: checksum mismatch")]
    Checksum { file: u16, offset: u32 },
    #[error("head chunk reference to unknown file {0}")]
    UnknownFile(u16),
}

struct ChunkFile {
    file: File,
    path: PathBuf,
    /// Chunks of this file still referenced by the head.
    live: AtomicU32,
}

struct Active {
    no: u16,
    file: Arc<ChunkFile>,
    /// Bytes written to the file (header included).
    flushed: u64,
    /// Bytes appended after `flushed`, not yet written.
    buf: Vec<u8>,
}

/// Heap store for chunks that could not go to a file (slot per chunk).
#[derive(Default)]
struct Overflow {
    slots: Vec<Option<Box<[u8]>>>,
    free: Vec<u32>,
}

/// The closed chunks of one head.
pub(crate) struct HeadChunks {
    dir: Option<PathBuf>,
    active: Mutex<Option<Active>>,
    files: RwLock<HashMap<u16, Arc<ChunkFile>>>,
    next_file: AtomicU32,
    overflow: Mutex<Overflow>,
    warned: AtomicBool,
}

impl HeadChunks {
    /// Chunk files under `db_dir/chunks_head`, which is emptied first (it is
    /// a cache of what the WAL holds).
    pub(crate) fn open(db_dir: &Path) -> std::io::Result<Self> {
        let dir = db_dir.join(DIR_NAME);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self::with_dir(Some(dir)))
    }

    /// Keeps every chunk in the heap (tests, or no directory).
    #[cfg(test)]
    pub(crate) fn in_memory() -> Self {
        Self::with_dir(None)
    }

    fn with_dir(dir: Option<PathBuf>) -> Self {
        HeadChunks {
            dir,
            active: Mutex::new(None),
            files: RwLock::new(HashMap::new()),
            next_file: AtomicU32::new(0),
            overflow: Mutex::new(Overflow::default()),
            warned: AtomicBool::new(false),
        }
    }

    /// Stores a closed chunk and tells where it is.
    pub(crate) fn write(&self, chunk: &[u8]) -> ChunkLoc {
        if self.dir.is_some() && chunk.len() <= usize::from(u16::MAX) {
            match self.write_to_file(chunk) {
                Ok(loc) => return loc,
                Err(err) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        tracing::warn!(%err, "cannot write head chunk file; keeping closed chunks in memory");
                    }
                }
            }
        }
        let mut o = self.overflow.lock();
        let slot = match o.free.pop() {
            Some(i) => {
                o.slots[i as usize] = Some(chunk.into());
                i
            }
            None => {
                o.slots.push(Some(chunk.into()));
                (o.slots.len() - 1) as u32
            }
        };
        ChunkLoc::new(OVERFLOW_FILE, 0, slot)
    }

    fn write_to_file(&self, chunk: &[u8]) -> std::io::Result<ChunkLoc> {
        let mut guard = self.active.lock();
        let need = (chunk.len() + 4) as u64;
        let rotate = match &*guard {
            None => true,
            Some(a) => a.flushed + a.buf.len() as u64 + need > MAX_FILE_BYTES,
        };
        if rotate {
            if let Some(mut old) = guard.take() {
                flush(&mut old)?;
                if old.file.live.load(Ordering::Acquire) == 0 {
                    self.delete_file(old.no);
                }
            }
            *guard = Some(self.new_file()?);
        }
        let Some(a) = guard.as_mut() else {
            return Err(std::io::Error::other("no active head chunk file"));
        };
        let offset = a.flushed + a.buf.len() as u64;
        a.buf.extend_from_slice(chunk);
        a.buf.extend_from_slice(&crc32c::crc32c(chunk).to_le_bytes());
        a.file.live.fetch_add(1, Ordering::AcqRel);
        let loc = ChunkLoc::new(a.no, chunk.len() as u16, offset as u32);
        if a.buf.len() >= WRITE_BUFFER_BYTES {
            if let Err(err) = flush(a) {
                // The bytes stay in the buffer; the next flush retries. Reads are served from it.
                tracing::debug!(%err, "head chunk buffer not written yet");
            }
        }
        Ok(loc)
    }

    fn new_file(&self) -> std::io::Result<Active> {
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no chunk directory"))?;
        // File numbers wrap around, skipping those still in use.
        let no = {
            let files = self.files.read();
            let mut found = None;
            for _ in 0..OVERFLOW_FILE {
                let n = (self.next_file.fetch_add(1, Ordering::Relaxed) % u32::from(OVERFLOW_FILE)) as u16;
                if !files.contains_key(&n) {
                    found = Some(n);
                    break;
                }
            }
            found.ok_or_else(|| std::io::Error::other("too many head chunk files"))?
        };
        let path = dir.join(format!("{no:06}"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..4].copy_from_slice(MAGIC);
        header[4] = VERSION;
        file.write_all(&header)?;
        let cf = Arc::new(ChunkFile {
            file,
            path,
            live: AtomicU32::new(0),
        });
        self.files.write().insert(no, Arc::clone(&cf));
        Ok(Active {
            no,
            file: cf,
            flushed: HEADER_LEN,
            buf: Vec::with_capacity(WRITE_BUFFER_BYTES + 4096),
        })
    }

    /// Appends the bytes of the chunk at `loc` to `out`.
    pub(crate) fn read(&self, loc: ChunkLoc, out: &mut Vec<u8>) -> Result<(), ChunkReadError> {
        let file = loc.file();
        if file == OVERFLOW_FILE {
            let o = self.overflow.lock();
            match o.slots.get(loc.offset() as usize) {
                Some(Some(b)) => {
                    out.extend_from_slice(b);
                    return Ok(());
                }
                _ => return Err(ChunkReadError::UnknownFile(file)),
            }
        }
        let offset = u64::from(loc.offset());
        let len = loc.len() + 4;
        let start = out.len();
        out.resize(start + len, 0);
        let in_buffer = {
            let guard = self.active.lock();
            match &*guard {
                // A chunk is flushed whole or not at all.
                Some(a) if a.no == file && offset >= a.flushed => {
                    let from = (offset - a.flushed) as usize;
                    match a.buf.get(from..from + len) {
                        Some(src) => {
                            out[start..].copy_from_slice(src);
                            true
                        }
                        None => {
                            out.truncate(start);
                            return Err(ChunkReadError::UnknownFile(file));
                        }
                    }
                }
                _ => false,
            }
        };
        if !in_buffer {
            let cf = self.files.read().get(&file).cloned();
            let Some(cf) = cf else {
                out.truncate(start);
                return Err(ChunkReadError::UnknownFile(file));
            };
            if let Err(source) = cf.file.read_exact_at(&mut out[start..], offset) {
                out.truncate(start);
                return Err(ChunkReadError::Io { file, source });
            }
        }
        let body_end = start + loc.len();
        let crc = u32::from_le_bytes([out[body_end], out[body_end + 1], out[body_end + 2], out[body_end + 3]]);
        out.truncate(body_end);
        if crc32c::crc32c(&out[start..]) != crc {
            out.truncate(start);
            return Err(ChunkReadError::Checksum {
                file,
                offset: loc.offset(),
            });
        }
        Ok(())
    }

    /// The head no longer references the chunk at `loc`.
    pub(crate) fn release(&self, loc: ChunkLoc) {
        let file = loc.file();
        if file == OVERFLOW_FILE {
            let mut o = self.overflow.lock();
            let slot = loc.offset();
            if let Some(s) = o.slots.get_mut(slot as usize) {
                if s.take().is_some() {
                    o.free.push(slot);
                }
            }
            return;
        }
        let cf = self.files.read().get(&file).cloned();
        let Some(cf) = cf else { return };
        if cf.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut active = self.active.lock();
            // Re-check under the lock: the active file may have gained a chunk.
            if cf.live.load(Ordering::Acquire) == 0 {
                if active.as_ref().is_some_and(|a| a.no == file) {
                    // Nothing in it is referenced: start afresh rather than
                    // keep its dead bytes on disk (the next write opens a new file).
                    *active = None;
                }
                drop(active);
                self.delete_file(file);
            }
        }
    }

    fn delete_file(&self, no: u16) {
        if let Some(cf) = self.files.write().remove(&no) {
            if let Err(err) = std::fs::remove_file(&cf.path) {
                tracing::warn!(%err, path = %cf.path.display(), "cannot delete head chunk file");
            }
        }
    }

    /// Bytes of chunks kept in the heap because no file could be written.
    #[cfg(test)]
    fn overflow_chunks(&self) -> usize {
        self.overflow.lock().slots.iter().filter(|s| s.is_some()).count()
    }

    /// Number of chunk files on disk.
    #[cfg(test)]
    fn num_files(&self) -> usize {
        self.files.read().len()
    }
}

fn flush(a: &mut Active) -> std::io::Result<()> {
    if a.buf.is_empty() {
        return Ok(());
    }
    a.file.file.write_all_at(&a.buf, a.flushed)?;
    a.flushed += a.buf.len() as u64;
    a.buf.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_through_buffer_and_file_and_files_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let hc = HeadChunks::open(dir.path()).unwrap();
        let chunks: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| vec![(i % 251) as u8; 100 + (i % 300) as usize])
            .collect();
        let locs: Vec<ChunkLoc> = chunks.iter().map(|c| hc.write(c)).collect();
        let mut out = Vec::new();
        for (c, l) in chunks.iter().zip(&locs) {
            out.clear();
            hc.read(*l, &mut out).unwrap();
            assert_eq!(&out, c);
        }
        assert_eq!(hc.overflow_chunks(), 0);
        assert_eq!(hc.num_files(), 1);
        for l in &locs {
            hc.release(*l);
        }
        // Even the active file goes once nothing in it is referenced.
        assert_eq!(hc.num_files(), 0);
        assert_eq!(std::fs::read_dir(dir.path().join(DIR_NAME)).unwrap().count(), 0);
        let again = hc.write(b"after");
        out.clear();
        hc.read(again, &mut out).unwrap();
        assert_eq!(out, b"after");
    }

    #[test]
    fn a_corrupt_chunk_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let hc = HeadChunks::open(dir.path()).unwrap();
        let big = vec![7u8; 2000];
        let locs: Vec<ChunkLoc> = (0..1000).map(|_| hc.write(&big)).collect();
        let path = dir.path().join(DIR_NAME).join("000000");
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.write_all_at(&[0], HEADER_LEN + 10).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            hc.read(locs[0], &mut out),
            Err(ChunkReadError::Checksum { .. })
        ));
        assert!(out.is_empty());
        hc.read(locs[1], &mut out).unwrap();
        assert_eq!(out, big);
    }

    #[test]
    fn without_a_directory_chunks_stay_in_memory() {
        let hc = HeadChunks::in_memory();
        let a = hc.write(b"abc");
        let b = hc.write(b"defg");
        let mut out = Vec::new();
        hc.read(b, &mut out).unwrap();
        assert_eq!(out, b"defg");
        hc.release(a);
        let c = hc.write(b"xy");
        out.clear();
        hc.read(c, &mut out).unwrap();
        assert_eq!(out, b"xy");
        assert_eq!(hc.overflow_chunks(), 2);
    }
}
