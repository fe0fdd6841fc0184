//! The traits that separate storage engines from the code that writes and
//! reads them: [`SampleAppender`] for the write path, [`Queryable`] and
//! [`Querier`] for the read path.
//!
//! Layer 1: depends only on `model`. The PromQL engine and the HTTP API see
//! storage only through these traits, so they can run on [`MemStorage`] in
//! tests and on the TSDB in production.
//!
//! Writers that append the same series again and again (scrape loops) use
//! [`SampleAppender::append_by_ref`]: the storage hands out a [`SeriesRef`]
//! per series on first sight, and later appends of that series skip the
//! label lookup.
//!
//! Time ranges are inclusive on both ends (`start..=end`, milliseconds), as
//! Prometheus' `mint`/`maxt`.
#![warn(missing_docs)]

mod mem;

pub use mem::MemStorage;

use model::{Labels, Matcher, Sample, TenantId};
use std::any::Any;
use std::sync::Arc;

/// What a reader asks for, beyond the matchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectHints {
    /// First millisecond of interest (inclusive).
    pub start: i64,
    /// Last millisecond of interest (inclusive).
    pub end: i64,
    /// Fail with [`StorageError::TooManySamples`] once more samples than this
    /// would be returned in total. `None` means no limit.
    pub max_samples: Option<usize>,
}

impl SelectHints {
    /// Hints for the inclusive range `start..=end`, with no sample limit.
    pub fn range(start: i64, end: i64) -> Self {
        SelectHints {
            start,
            end,
            max_samples: None,
        }
    }
}

/// A series with its samples in a time range, sorted by timestamp, without
/// duplicate timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Samples sorted by `t`, unique timestamps; may include staleness markers.
    pub samples: Vec<Sample>,
}

/// Storage failed to answer or to store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// A read would return more samples than allowed.
    #[error("query would load more than {limit} samples; narrow the time range or the selectors")]
    TooManySamples {
        /// The limit in force.
        limit: usize,
    },
    /// A read would return more series than allowed.
    #[error("query would select more than {limit} series")]
    TooManySeries {
        /// The limit in force.
        limit: usize,
    },
    /// The request itself is wrong; retrying it will not help.
    #[error("{0}")]
    BadRequest(String),
    /// A per-tenant limit refuses more data; the client may retry later.
    #[error("{0}")]
    LimitExceeded(String),
    /// Stored data failed a check.
    #[error("corrupted data in {path}: {reason}")]
    Corrupted {
        /// The file or block concerned.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// An I/O error; retryable.
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The engine is shutting down or not yet ready; retryable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl StorageError {
    /// Tells whether the same request may succeed if retried later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Io(_) | StorageError::Unavailable(_) | StorageError::LimitExceeded(_)
        )
    }
}

/// Reads one tenant's series. Implementations merge all their sources (head,
/// blocks) and return each series once.
pub trait Querier: Send + Sync {
    /// Series matching all `matchers` that have samples in the hinted range,
    /// with those samples. Series are sorted by labels.
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError>;

    /// Label sets of series matching all `matchers` with samples in
    /// `start..=end`, sorted, each once.
    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>, StorageError>;

    /// Sorted label names of the matching series (all series if `matchers` is empty).
    fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<String>, StorageError>;

    /// Sorted values of label `name` among the matching series.
    fn label_values(&self, name: &str, matchers: &[Matcher], start: i64, end: i64)
        -> Result<Vec<String>, StorageError>;
}

/// Hands out a [`Querier`] per tenant.
pub trait Queryable: Send + Sync {
    /// A querier over `tenant`'s data; a tenant never written to has no series.
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError>;
}

/// The samples of one series to append.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    /// Labels as received, already validated and normalised.
    pub labels: Labels,
    /// Samples in any order.
    pub samples: Vec<Sample>,
}

/// Why a sample was not stored. Each reason is counted separately in
/// self-metrics under its [`RejectReason::as_str`] name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// Older than the out-of-order window allows.
    TooOld,
    /// Too far in the future.
    TooFarInFuture,
    /// Same timestamp as a stored sample, different value.
    DuplicateTimestamp,
    /// The tenant has reached its series limit.
    SeriesLimit,
}

impl RejectReason {
    /// A short snake_case name, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TooOld => "too_old",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::SeriesLimit => "series_limit",
        }
    }
}

/// Samples of one series refused for one reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The series concerned.
    pub labels: Labels,
    /// Why.
    pub reason: RejectReason,
    /// How many samples of the series were refused for this reason.
    pub num_samples: usize,
    /// The first refused timestamp, for the error message.
    pub first_t: i64,
}

/// The outcome of an append: what was stored and what was refused.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendReport {
    /// Samples stored (and durable per the WAL's policy) when `append` returns.
    pub num_accepted: usize,
    /// Samples refused, grouped per series and reason.
    pub rejected: Vec<Rejection>,
}

/// An opaque handle to one series of one storage and tenant, handed out by
/// [`SampleAppender::append_by_ref`]. Only the storage that issued it can
/// read it; to anyone else (another storage, another tenant) it is simply
/// not valid, and the labels given with it are used instead.
#[derive(Clone)]
pub struct SeriesRef(Arc<dyn Any + Send + Sync>);

impl SeriesRef {
    /// Wraps a storage's own handle.
    pub fn new<T: Any + Send + Sync>(handle: Arc<T>) -> Self {
        SeriesRef(handle)
    }

    /// The storage's handle, if this ref holds one of type `T`.
    pub fn downcast<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }
}

impl std::fmt::Debug for SeriesRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SeriesRef(..)")
    }
}

/// One sample to append by reference, with the series' labels as the fallback.
#[derive(Debug, Clone, Copy)]
pub struct RefAppend<'a> {
    /// The series' labels, already validated and normalised. Used when
    /// `series_ref` is `None` or no longer valid.
    pub labels: &'a Labels,
    /// The reference the same storage returned for exactly these labels, if any.
    pub series_ref: Option<&'a SeriesRef>,
    /// The sample.
    pub sample: Sample,
}

/// The write path. An `Ok` return means the accepted samples are in the
/// write-ahead log and will survive a crash.
pub trait SampleAppender: Send + Sync {
    /// Appends a batch for `tenant`. Refusals of individual samples are in
    /// the report; an `Err` means nothing of the batch is guaranteed stored.
    fn append(&self, tenant: &TenantId, batch: Vec<SeriesSamples>) -> Result<AppendReport, StorageError>;

    /// Tells whether appends return without waiting for anything slow (no
    /// fsync per call, no network), so that a caller on an async worker may
    /// append small batches in place instead of handing them to a blocking
    /// thread. Writes to the page cache and short lock waits count as fast.
    /// The default is `false`.
    fn appends_without_waiting(&self) -> bool {
        false
    }

    /// Appends one sample per entry of `batch`, in order, with the same
    /// guarantees as [`SampleAppender::append`].
    ///
    /// Contract:
    /// - An entry's `series_ref` is only a shortcut for its labels: the caller
    ///   passes a ref only together with the labels it was returned for.
    /// - A ref that is no longer valid (the storage dropped the series, or
    ///   the ref comes from another storage or tenant) is ignored and the
    ///   labels are used; the caller never has to invalidate refs itself.
    /// - For entries appended by labels, the storage may push
    ///   `(index in batch, ref)` to `new_refs`; the caller keeps the ref for
    ///   the next append of the same labels. A storage that has no refs
    ///   (the default implementation) never pushes any.
    /// - Rejections name the series by its labels, as for `append`.
    fn append_by_ref(
        &self,
        tenant: &TenantId,
        batch: &[RefAppend<'_>],
        new_refs: &mut Vec<(usize, SeriesRef)>,
    ) -> Result<AppendReport, StorageError> {
        let _ = new_refs;
        let owned = batch
            .iter()
            .map(|e| SeriesSamples {
                labels: e.labels.clone(),
                samples: vec![e.sample],
            })
            .collect();
        self.append(tenant, owned)
    }
}

/// Help and type of a metric family, as remote write and scrapes send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    /// The metric family name.
    pub metric_family: String,
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset` or `unknown`.
    pub metric_type: String,
    /// The HELP text.
    pub help: String,
    /// The unit, often empty.
    pub unit: String,
}

/// Keeps the latest metadata seen per metric family and tenant.
pub trait MetadataStore: Send + Sync {
    /// Records metadata.
    fn put_metadata(&self, tenant: &TenantId, metadata: Vec<MetricMetadata>);
    /// Metadata for `metric` (all if `None`), at most `limit` families.
    fn metadata(&self, tenant: &TenantId, metric: Option<&str>, limit: Option<usize>) -> Vec<MetricMetadata>;
}
