//! External wire formats: Prometheus remote write 1.0 and remote read
//! (snappy-compressed protobuf), InfluxDB line protocol and OTLP metrics,
//! converted to and from `model` types.
//!
//! Layer 4: depends only on `model`. It owns the byte formats and their
//! validation; it does no I/O, knows nothing about HTTP (content types are
//! exported as constants for `api`), and never touches storage: the caller
//! appends [`remote_write::DecodedWrite::series`] and answers queries from
//! [`remote_read::DecodedRead::queries`].
//!
//! Architecture invariant: no input, however malformed or hostile, makes this
//! crate panic or allocate more than [`DecodeLimits`] allows (plus the decoded
//! messages, which are bounded by the decompressed size).
//!
//! - [`influx`]: InfluxDB line protocol, parsed into series line by line;
//! - [`names`]: foreign names made valid Prometheus metric and label names;
//! - [`otlp`]: OTLP/HTTP metrics (protobuf and JSON) translated into series
//!   by the OpenTelemetry-to-Prometheus compatibility rules;
//! - [`prompb`]: the protobuf messages, hand-written `prost` structs;
//! - [`remote_write`]: decode a write request into series, metadata and
//!   per-series rejections; encode one (for tests, benchmarks, the agent);
//! - [`remote_read`]: decode a read request into queries; encode SAMPLES
//!   responses and STREAMED_XOR_CHUNKS frames.
#![warn(missing_docs)]

mod error;
pub mod influx;
pub mod names;
pub mod otlp;
pub mod prompb;
pub mod remote_read;
pub mod remote_write;
mod snappy;

pub use error::WireError;

/// Size limits applied while decoding a request body.
///
/// The defaults follow what Prometheus and Mimir accept in practice: a
/// Prometheus remote-write queue sends at most 2000 samples per request by
/// default (a few hundred KiB), so 32 MiB compressed / 128 MiB decompressed
/// leaves ample headroom for backfills while bounding the memory per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The largest snappy body accepted, in bytes.
    pub max_compressed_bytes: usize,
    /// The largest decompressed protobuf accepted, in bytes; checked against
    /// the snappy preamble before allocating.
    pub max_decompressed_bytes: usize,
    /// The most labels one series may have, `__name__` included.
    pub max_labels_per_series: usize,
    /// The longest label name, in bytes.
    pub max_label_name_len: usize,
    /// The longest label value, in bytes.
    pub max_label_value_len: usize,
}

impl DecodeLimits {
    /// 32 MiB compressed, 128 MiB decompressed, 64 labels per series, label
    /// names up to 1024 bytes and values up to 4096 bytes.
    pub const DEFAULT: DecodeLimits = DecodeLimits {
        max_compressed_bytes: 32 << 20,
        max_decompressed_bytes: 128 << 20,
        max_labels_per_series: 64,
        max_label_name_len: 1024,
        max_label_value_len: 4096,
    };
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
