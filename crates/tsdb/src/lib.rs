//! Haetae's time-series database: a write-ahead log, an in-memory head of
//! XOR chunks, immutable blocks with an inverted index and decimal/zstd
//! chunks, compaction and retention.
//!
//! Layer 2: depends on `model`, `storage-api`, `codec` and `wal`; knows
//! nothing of HTTP or PromQL. [`Storage`] is the entry point: it holds one
//! [`Db`] per tenant and implements the `storage-api` traits.
//!
//! Write path: [`Db::append`] (or [`Db::append_by_ref`]) validates, creates series (their WAL record is
//! written before they become visible), applies samples to the head, writes
//! one WAL record and syncs it per the fsync policy, then acknowledges.
//! Read path: [`Db::querier`] merges head and blocks per series.
//! Background work ([`Db::maintain`]): cut the head into blocks, compact,
//! enforce retention, checkpoint the WAL.
#![warn(missing_docs)]

mod append;
pub mod block;
mod compact;
mod db;
mod encoding;
mod head;
mod packed;
mod postings;
mod querier;
mod record;
mod replay;
mod storage;
pub mod store;

pub use block::frame_cache::{FrameCacheStats, SharedFrameCache, DEFAULT_FRAME_CACHE_BYTES};
pub use block::reader::BlockReader;
pub use block::BlockMeta;
pub use db::{Db, DbOptions, DbStats, HeadStats};
pub use storage::{Storage, TsdbStatus};
pub use wal::{FsyncPolicy, WalOptions, FSYNC_BUCKETS_SECONDS};

/// Errors of the TSDB.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TsdbError {
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A WAL error.
    #[error(transparent)]
    Wal(#[from] wal::WalError),
    /// A file failed a check.
    #[error("corrupted {path}: {reason}")]
    Corrupted {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The database is closed.
    #[error("database is closed")]
    Closed,
    /// An invalid request, e.g. a bad deletion range.
    #[error("{0}")]
    Invalid(String),
}

impl From<TsdbError> for storage_api::StorageError {
    fn from(e: TsdbError) -> Self {
        use storage_api::StorageError as S;
        match e {
            TsdbError::Io(e) => S::Io(e),
            TsdbError::Wal(e) => S::Io(std::io::Error::other(e)),
            TsdbError::Corrupted { path, reason } => S::Corrupted { path, reason },
            TsdbError::Closed => S::Unavailable("database is closed".into()),
            TsdbError::Invalid(m) => S::BadRequest(m),
        }
    }
}
