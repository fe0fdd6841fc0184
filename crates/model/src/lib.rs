//! The vocabulary every other crate speaks: [`Labels`], [`Matcher`], [`Sample`],
//! [`TenantId`] and the staleness marker.
//!
//! Layer 0: depends on nothing of ours. It owns no I/O and no encoding; on-disk
//! formats live in `codec`/`tsdb`, wire formats in `wire`.
#![warn(missing_docs)]

mod labels;
mod matcher;
mod sample;
mod tenant;

pub use labels::{Label, Labels, LabelsBuilder, METRIC_NAME};
pub use matcher::{MatchOp, Matcher, MatcherError};
pub use sample::{is_stale_nan, Sample, STALE_NAN, STALE_NAN_BITS};
pub use tenant::{TenantError, TenantId, DEFAULT_TENANT};

/// Milliseconds since the Unix epoch, as Prometheus counts time.
pub type Timestamp = i64;
