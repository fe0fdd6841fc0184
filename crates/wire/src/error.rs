//! The one error type of this crate, [`WireError`]: why a whole request body
//! could not be decoded (or a response not encoded).
//!
//! Layer 4: depends only on `model`. Problems with single series of an
//! otherwise good remote-write request are not errors here: they are collected
//! as [`crate::remote_write::SeriesError`] so the valid series can still be
//! stored. Mapping errors to HTTP statuses is the job of `api`: every variant
//! is a client error (400), except [`WireError::BodyTooLarge`] and
//! [`WireError::DecompressedTooLarge`], which read best as 413.

/// A request body was refused as a whole, or a response could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The body is empty; a valid snappy block is at least one byte long.
    #[error("empty request body")]
    EmptyBody,
    /// The compressed body is larger than allowed.
    #[error("compressed body is {len} bytes, limit is {limit}")]
    BodyTooLarge {
        /// The body length.
        len: usize,
        /// `DecodeLimits::max_compressed_bytes`.
        limit: usize,
    },
    /// The snappy preamble announces more bytes than allowed. Checked before
    /// any buffer is allocated, so a tiny "decompression bomb" costs nothing.
    #[error("snappy body would decompress to {claimed} bytes, limit is {limit}")]
    DecompressedTooLarge {
        /// The length announced by the snappy preamble.
        claimed: u64,
        /// `DecodeLimits::max_decompressed_bytes`.
        limit: usize,
    },
    /// The body starts with the snappy *framed* stream identifier; Prometheus
    /// remote write uses the snappy *block* format.
    #[error("body uses the snappy framed format; remote write and remote read use the snappy block format")]
    SnappyFramed,
    /// The snappy preamble announces more bytes than a body of this size can
    /// possibly decompress to.
    #[error("invalid snappy block: preamble claims {claimed} bytes, more than {body_len} compressed bytes can hold")]
    SnappyImpossibleLength {
        /// The length announced by the snappy preamble.
        claimed: u64,
        /// The body length.
        body_len: usize,
    },
    /// The body is not a valid snappy block.
    #[error("invalid snappy block: {source}")]
    Snappy {
        /// What the snappy decoder said.
        #[source]
        source: snap::Error,
    },
    /// A string field holds bytes that are not UTF-8; protobuf `string` fields
    /// must be valid UTF-8.
    #[error("invalid {message}: a string field is not valid UTF-8 ({source})")]
    InvalidUtf8 {
        /// The top-level message being decoded, e.g. `WriteRequest`.
        message: &'static str,
        /// The decoder's error, which names the field.
        #[source]
        source: prost::DecodeError,
    },
    /// The decompressed body is not a valid protobuf message of the expected type.
    #[error("invalid protobuf {message}: {source}")]
    Protobuf {
        /// The top-level message being decoded, e.g. `WriteRequest`.
        message: &'static str,
        /// The decoder's error.
        #[source]
        source: prost::DecodeError,
    },
    /// A remote-read matcher has a type outside EQ/NEQ/RE/NRE.
    #[error("query {query_idx}: unknown label matcher type {value} for label {name:?}")]
    UnknownMatcherType {
        /// The index of the query in the request.
        query_idx: usize,
        /// The label name of the matcher.
        name: String,
        /// The matcher type as sent.
        value: i32,
    },
    /// A remote-read matcher could not be built, e.g. its regex does not compile.
    #[error("query {query_idx}: {source}")]
    BadMatcher {
        /// The index of the query in the request.
        query_idx: usize,
        /// Why the matcher was refused.
        #[source]
        source: model::MatcherError,
    },
    /// A response is too large for snappy's block format (4 GiB).
    #[error("cannot snappy-compress {len} bytes: {source}")]
    Compress {
        /// The uncompressed length.
        len: usize,
        /// What the snappy encoder said.
        #[source]
        source: snap::Error,
    },
    /// A STREAMED_XOR_CHUNKS frame is cut short.
    #[error("truncated chunked-read frame: need {needed} more bytes")]
    FrameTruncated {
        /// How many bytes are missing at least.
        needed: usize,
    },
    /// A STREAMED_XOR_CHUNKS frame's length prefix is not a valid uvarint
    /// (ten or more continuation bytes).
    #[error("chunked-read frame length is not a valid uvarint")]
    FrameBadLength,
    /// A STREAMED_XOR_CHUNKS frame announces more bytes than allowed.
    #[error("chunked-read frame of {len} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// The announced frame length.
        len: u64,
        /// The caller's limit.
        limit: usize,
    },
    /// A STREAMED_XOR_CHUNKS frame's checksum does not match its data.
    #[error("chunked-read frame checksum mismatch: header says {expected:#010x}, data has {actual:#010x}")]
    FrameChecksum {
        /// The CRC32C in the frame header.
        expected: u32,
        /// The CRC32C of the data.
        actual: u32,
    },
}

impl WireError {
    /// Wraps a prost decode error, telling UTF-8 problems apart.
    pub(crate) fn protobuf(message: &'static str, source: prost::DecodeError) -> Self {
        // prost exposes no error kind; its message for this case is stable and
        // pinned by a test in `remote_write`.
        if source.to_string().contains("not UTF-8 encoded") {
            WireError::InvalidUtf8 { message, source }
        } else {
            WireError::Protobuf { message, source }
        }
    }
}
