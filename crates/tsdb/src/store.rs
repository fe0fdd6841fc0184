//! The one interface through which block files are written and read, so that
//! blocks can later live in an object store (S3-compatible) instead of the
//! local data directory. Paths are `/`-separated and relative to the store.
//!
//! The WAL is not behind this interface: it needs appends and fsync, which
//! object stores do not offer, and always stays on local disk.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file being written; it becomes visible only on [`ObjectWriter::finish`].
pub trait ObjectWriter: Write + Send {
    /// Makes the file durable and visible under its final path.
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Where blocks live.
pub trait BlockStore: Send + Sync {
    /// Starts writing `path`, replacing it when finished.
    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>>;
    /// Reads a whole file.
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Reads `len` bytes at `offset`.
    fn read_range(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// [`BlockStore::read_range`] into `out`, replacing its content (a
    /// store may reuse `out`'s allocation).
    fn read_range_into(&self, path: &str, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        *out = self.read_range(path, offset, len)?;
        Ok(())
    }
    /// Names directly under `prefix` (directories or files), sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    /// Deletes everything under `prefix`.
    fn delete_all(&self, prefix: &str) -> io::Result<()>;
    /// Total bytes of files under `prefix`.
    fn size(&self, prefix: &str) -> io::Result<u64>;
    /// Makes everything written under `prefix` durable as one unit (the local
    /// store fsyncs the directory; object stores need nothing).
    fn commit_dir(&self, prefix: &str) -> io::Result<()>;
    /// A local directory where block readers may keep decompressed copies
    /// (a cache, see [`crate::block::index_file`]); `None` keeps them in memory.
    fn cache_dir(&self) -> Option<&Path> {
        None
    }
}

/// Blocks in a local directory.
pub struct LocalStore {
    root: PathBuf,
    cache_dir: PathBuf,
    open_files: Mutex<HashMap<String, Arc<File>>>,
}

impl LocalStore {
    /// A store rooted at `root` (created if missing).
    pub fn new(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        Ok(LocalStore {
            root: root.to_path_buf(),
            cache_dir: root.join(crate::block::index_file::DIR_NAME),
            open_files: Mutex::new(HashMap::new()),
        })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    fn file(&self, path: &str) -> io::Result<Arc<File>> {
        let mut files = self.open_files.lock();
        if let Some(f) = files.get(path) {
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(File::open(self.path(path))?);
        if files.len() > 4096 {
            files.clear();
        }
        files.insert(path.to_string(), Arc::clone(&f));
        Ok(f)
    }
}

struct LocalWriter {
    tmp: PathBuf,
    dst: PathBuf,
    file: io::BufWriter<File>,
}

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWriter for LocalWriter {
    fn finish(self: Box<Self>) -> io::Result<()> {
        let file = self.file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&self.tmp, &self.dst)
    }
}

impl BlockStore for LocalStore {
    fn create(&self, path: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let dst = self.path(path);
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = dst.with_extension("tmp");
        let file = io::BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        self.open_files.lock().remove(path);
        Ok(Box::new(LocalWriter { tmp, dst, file }))
    }

    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(path))
    }

    fn read_range(&self, path: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_range_into(path, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(&self, path: &str, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = self.file(path)?;
        out.clear();
        out.resize(len, 0);
        f.read_exact_at(out, offset)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let dir = self.path(prefix);
        let mut out = Vec::new();
        match fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries {
                    if let Some(name) = e?.file_name().to_str() {
                        out.push(name.to_string());
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        out.sort();
        Ok(out)
    }

    fn delete_all(&self, prefix: &str) -> io::Result<()> {
        let p = self.path(prefix);
        self.open_files.lock().retain(|k, _| !k.starts_with(prefix));
        match fs::remove_dir_all(&p) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => fs::remove_file(&p),
            r => r,
        }
    }

    fn size(&self, prefix: &str) -> io::Result<u64> {
        fn walk(p: &Path) -> io::Result<u64> {
            let md = match fs::metadata(p) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            if md.is_file() {
                return Ok(md.len());
            }
            let mut total = 0;
            for e in fs::read_dir(p)? {
                total += walk(&e?.path())?;
            }
            Ok(total)
        }
        walk(&self.path(prefix))
    }

    fn commit_dir(&self, prefix: &str) -> io::Result<()> {
        let p = self.path(prefix);
        File::open(&p)?.sync_all()?;
        if let Some(parent) = p.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    fn cache_dir(&self) -> Option<&Path> {
        Some(&self.cache_dir)
    }
}
