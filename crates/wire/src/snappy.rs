//! Snappy *block* format (not the framed stream format) with size limits, as
//! remote write and remote read use it (`Content-Encoding: snappy`).
//!
//! Layer 4: depends only on `model`. Design constraints:
//! - the compressed length is checked first, then the decompressed length
//!   announced by the block's varint preamble, both before any allocation;
//! - a preamble announcing more than snappy's densest encoding can produce
//!   from the body is refused too, so a small body never costs a large buffer;
//! - the output buffer is allocated once, at exactly the announced size, and
//!   the decoder refuses input that would write past it;
//! - nothing here panics on any input.

use crate::error::WireError;
use crate::DecodeLimits;

/// The stream identifier chunk that starts every snappy *framed* stream.
const FRAMED_STREAM_MAGIC: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// The most bytes one byte of a snappy block can expand to, rounded up: the
/// densest element is a copy with a 2-byte offset, 3 bytes long, producing up
/// to 64 bytes (64 / 3 < 22). A preamble announcing more than this times the
/// body length is corrupt, whatever the limits.
const MAX_EXPANSION_RATIO: usize = 22;

/// Decompresses a snappy block within `limits`.
pub(crate) fn decompress(body: &[u8], limits: &DecodeLimits) -> Result<Vec<u8>, WireError> {
    if body.is_empty() {
        return Err(WireError::EmptyBody);
    }
    if body.len() > limits.max_compressed_bytes {
        return Err(WireError::BodyTooLarge {
            len: body.len(),
            limit: limits.max_compressed_bytes,
        });
    }
    if body.starts_with(FRAMED_STREAM_MAGIC) {
        return Err(WireError::SnappyFramed);
    }
    let len = match snap::raw::decompress_len(body) {
        Ok(len) => len,
        // snap refuses lengths over 4 GiB itself; report them like our own limit.
        Err(snap::Error::TooBig { given, .. }) => {
            return Err(WireError::DecompressedTooLarge {
                claimed: given,
                limit: limits.max_decompressed_bytes,
            })
        }
        Err(source) => return Err(WireError::Snappy { source }),
    };
    if len > limits.max_decompressed_bytes {
        return Err(WireError::DecompressedTooLarge {
            claimed: len as u64,
            limit: limits.max_decompressed_bytes,
        });
    }
    if len > body.len().saturating_mul(MAX_EXPANSION_RATIO) {
        return Err(WireError::SnappyImpossibleLength {
            claimed: len as u64,
            body_len: body.len(),
        });
    }
    let mut out = vec![0; len];
    let written = snap::raw::Decoder::new()
        .decompress(body, &mut out)
        .map_err(|source| WireError::Snappy { source })?;
    out.truncate(written);
    Ok(out)
}

/// Compresses `data` into one snappy block.
pub(crate) fn compress(data: &[u8]) -> Result<Vec<u8>, WireError> {
    snap::raw::Encoder::new()
        .compress_vec(data)
        .map_err(|source| WireError::Compress {
            len: data.len(),
            source,
        })
}
