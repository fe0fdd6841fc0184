//! The decompressed index of an open block, kept in a local cache file and
//! mapped read-only, so that it costs page cache rather than heap.
//!
//! A block's `index` is stored compressed (one zstd frame), so it cannot be
//! mapped as it is. Holding it decompressed in the heap cost about 45 bytes
//! per series and block (plus 8 for the series offsets): with a million
//! active series, every 30-minute block kept open added some 50 MiB of
//! resident memory. Here the reader writes the decompressed bytes and the
//! series offsets once into `index_cache/` and maps that file: only pages a
//! query touches become resident, and the kernel may drop them again.
//!
//! Design constraints:
//! - The files are a cache: [`crate::Db::open`] empties the directory, they
//!   are never synced, and each file is deleted when its reader is dropped.
//!   Names are unique in the process (`<block id>-<n>`), so a block opened
//!   twice never truncates a file another reader has mapped.
//! - Indexes smaller than [`MIN_MAPPED_BYTES`] stay in the heap: the file is
//!   a second, decompressed copy of the index on disk (the stored index is
//!   one zstd frame about 14 times smaller: a 30-minute block of a million
//!   series has a 3.3 MB index, 46 MB decompressed, next to 50 to 85 MB of
//!   chunks), worth it only where the heap saving matters.
//! - A store without a local cache directory, or any failure to write or map
//!   the file, keeps the index in the heap instead (logged once): opening a
//!   block never fails because of this cache.
//!
//! File layout (`docs/format/block.md`, "index cache"): the series offsets as
//! little-endian `u64`s, then the decompressed index bytes.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Name of the cache directory under a local store's root.
pub(crate) const DIR_NAME: &str = "index_cache";

/// Indexes (with their series offsets) below this many bytes stay in the
/// heap. 16 MiB is a block of roughly 300,000 series: a million active series
/// make 30-minute blocks of ~50 MiB each, which the head's memory budget
/// cannot carry, while small blocks cost little heap and would add a copy on
/// disk for nothing.
pub(crate) const MIN_MAPPED_BYTES: usize = 16 << 20;

/// Makes cache file names unique within the process.
static NEXT_FILE: AtomicU64 = AtomicU64::new(0);
/// Set once the fallback to the heap has been logged.
static WARNED: AtomicBool = AtomicBool::new(false);

/// The index bytes (what this derefs to) and the series offsets of a block.
pub(crate) struct IndexData {
    mem: Mem,
    num_series: usize,
}

enum Mem {
    Heap { index: Vec<u8>, offsets: Vec<u64> },
    Mapped(Mapping),
}

/// A read-only shared mapping of a whole cache file, unmapped and deleted on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
    path: PathBuf,
}

// SAFETY: the mapping is read-only and owned by this value; reading it from
// several threads is as safe as reading a shared `&[u8]`.
unsafe impl Send for Mapping {}
// SAFETY: as above, nothing writes through the mapping.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until `drop`; the file is
        // private to this process (unique name, emptied directory) and never
        // truncated while mapped.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` come from a successful `mmap`, unmapped only here.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
        if let Err(err) = std::fs::remove_file(&self.path) {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), %err, "cannot delete a block index cache file");
            }
        }
    }
}

impl IndexData {
    /// Keeps `index` and `offsets` in a mapped file under `cache_dir` (named
    /// after `block_id`), or in the heap if they are smaller than
    /// [`MIN_MAPPED_BYTES`], `cache_dir` is `None` or the file cannot be
    /// written or mapped.
    pub(crate) fn new(index: Vec<u8>, offsets: Vec<u64>, cache_dir: Option<&Path>, block_id: &str) -> Self {
        Self::new_mapped_from(index, offsets, cache_dir, block_id, MIN_MAPPED_BYTES)
    }

    fn new_mapped_from(
        index: Vec<u8>,
        offsets: Vec<u64>,
        cache_dir: Option<&Path>,
        block_id: &str,
        min_mapped_bytes: usize,
    ) -> Self {
        let num_series = offsets.len();
        let big_enough = index.len() + offsets.len() * 8 >= min_mapped_bytes;
        let Some(dir) = cache_dir.filter(|_| big_enough) else {
            return IndexData {
                mem: Mem::Heap { index, offsets },
                num_series,
            };
        };
        let n = NEXT_FILE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{block_id}-{n}"));
        match map_new_file(&path, &index, &offsets) {
            Ok(mapping) => IndexData {
                mem: Mem::Mapped(mapping),
                num_series,
            },
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(path = %path.display(), %err, "cannot cache a block index in a file; keeping block indexes in memory");
                }
                IndexData {
                    mem: Mem::Heap { index, offsets },
                    num_series,
                }
            }
        }
    }

    /// Number of series (of offsets).
    pub(crate) fn num_series(&self) -> usize {
        self.num_series
    }

    /// The offset of series `i` in the index's series section.
    pub(crate) fn series_offset(&self, i: usize) -> Option<u64> {
        match &self.mem {
            Mem::Heap { offsets, .. } => offsets.get(i).copied(),
            Mem::Mapped(m) => {
                if i >= self.num_series {
                    return None;
                }
                let b = m.bytes().get(i * 8..i * 8 + 8)?;
                Some(u64::from_le_bytes(b.try_into().ok()?))
            }
        }
    }

    /// Tells whether the index lives in a mapped file (for tests).
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self.mem, Mem::Mapped(_))
    }
}

impl Deref for IndexData {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.mem {
            Mem::Heap { index, .. } => index,
            Mem::Mapped(m) => &m.bytes()[self.num_series * 8..],
        }
    }
}

fn map_new_file(path: &Path, index: &[u8], offsets: &[u64]) -> io::Result<Mapping> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Read access too: `mmap` needs it.
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    let mut w = BufWriter::with_capacity(1 << 16, &file);
    for off in offsets {
        w.write_all(&off.to_le_bytes())?;
    }
    w.write_all(index)?;
    w.flush()?;
    drop(w);
    let len = offsets.len() * 8 + index.len();
    if len == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty index"));
    }
    use std::os::fd::AsRawFd;
    // SAFETY: maps `len` bytes of a file we just wrote that long, read-only;
    // the fd may be closed afterwards, the mapping keeps the file.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(Mapping {
        ptr,
        len,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_heap_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let index: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let offsets: Vec<u64> = (0..1000u64).map(|i| i * 7 + (1 << 40)).collect();
        let cache = dir.path().join(DIR_NAME);
        let mapped = IndexData::new_mapped_from(index.clone(), offsets.clone(), Some(&cache), "b", 0);
        let heap = IndexData::new_mapped_from(index.clone(), offsets.clone(), None, "b", 0);
        let small = IndexData::new(index.clone(), offsets.clone(), Some(&cache), "b");
        assert!(mapped.is_mapped());
        assert!(!heap.is_mapped());
        assert!(!small.is_mapped(), "below MIN_MAPPED_BYTES the index stays in the heap");
        for d in [&mapped, &heap, &small] {
            assert_eq!(&**d, &index[..]);
            assert_eq!(d.num_series(), 1000);
            assert_eq!(d.series_offset(999), Some(999 * 7 + (1 << 40)));
            assert_eq!(d.series_offset(1000), None);
        }
        let files = std::fs::read_dir(dir.path().join(DIR_NAME)).unwrap().count();
        assert_eq!(files, 1);
        drop(mapped);
        let files = std::fs::read_dir(dir.path().join(DIR_NAME)).unwrap().count();
        assert_eq!(files, 0, "the cache file goes with its reader");
    }

    #[test]
    fn unwritable_cache_falls_back_to_the_heap() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let d = IndexData::new_mapped_from(vec![1, 2, 3], vec![0], Some(&not_a_dir.join("sub")), "b", 0);
        assert!(!d.is_mapped());
        assert_eq!(&*d, &[1, 2, 3]);
    }
}
