//! The one error type every decoder of this crate returns.
//!
//! Layer 1. It owns [`DecodeError`] and nothing else; encoders in this crate cannot
//! fail (they append to a caller's buffer), so there is no encode error.

/// Why a byte sequence could not be decoded.
///
/// Offsets are byte offsets into the slice given to the decoder that failed, so a
/// caller holding a larger file can add its own base offset when it reports them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("unexpected end of input at byte {offset} while reading {what}")]
    UnexpectedEof {
        /// The field that was being read.
        what: &'static str,
        /// Byte offset where more input was needed.
        offset: usize,
    },
    /// A varint ran over 10 bytes or 64 bits.
    #[error("varint at byte {offset} overflows 64 bits")]
    VarintOverflow {
        /// Byte offset of the varint's first byte.
        offset: usize,
    },
    /// The leading mode/version byte names no format this build knows.
    #[error("unknown encoding byte {byte:#04x}")]
    UnknownEncoding {
        /// The byte found.
        byte: u8,
    },
    /// The bytes are well-formed so far but say something impossible.
    #[error("corrupted {what} at byte {offset}: {reason}")]
    Corrupted {
        /// The field that is wrong.
        what: &'static str,
        /// Byte offset of (or near) the bad field.
        offset: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A compressed frame would decompress to more than the caller allows.
    #[error("frame decompresses to more than the limit of {limit} bytes")]
    FrameTooLarge {
        /// The caller's limit.
        limit: usize,
        /// The size the frame header declares, when it declares one.
        declared: Option<u64>,
    },
    /// libzstd rejected a frame.
    #[error("invalid zstd frame: {reason}")]
    Zstd {
        /// libzstd's error name.
        reason: &'static str,
    },
}
