//! Pure encodings for Haetae's storage: bit streams, varints, Prometheus XOR chunks
//! (the head and remote read), the decimal chunk codec for persisted blocks, and
//! bounded zstd frames.
//!
//! Layer 1: depends only on `model`.
//!
//! **Architecture Invariant:** `codec` does no I/O and reads no clock. Encoders append
//! to a `&mut Vec<u8>` the caller owns and never touch what is already in it;
//! decoders take a slice, never panic on any input bytes, and report
//! [`DecodeError`]s with byte offsets. Byte layouts are drawn in `FORMAT.md`.
//!
//! Not here: chunk cutting, series, indexes, checksums (callers use `crc32c`), files.
#![warn(missing_docs)]

pub mod bitstream;
pub mod decimal;
mod error;
pub mod frame;
pub mod varint;
pub mod xor;

pub use decimal::{decode_chunk, decode_chunk_range, encode_chunk};
pub use error::DecodeError;
pub use frame::{compress_frame, decompress_frame, decompress_frame_into};
pub use xor::{decode_xor, XorEncoder, XorIter};
