//! zstd frames with a bounded decompressed size.
//!
//! Layer 1. It owns [`compress_frame`] and [`decompress_frame`]: one zstd frame per
//! call, with the content size recorded in the frame header. It deliberately does not
//! decide what goes in a frame (blocks concatenate ~64 KiB of decimal chunks), does
//! not checksum (callers use crc32c) and does not stream.
//!
//! Design constraints:
//! - a corrupt or hostile frame never makes the decoder allocate more than
//!   `max_decompressed` bytes (plus a constant);
//! - exactly one frame: trailing bytes after it are an error.

use crate::DecodeError;
use std::io::Read;

/// Appends `data` compressed as one zstd frame at `level` to `out`.
///
/// Levels outside zstd's range are clamped by libzstd. Bytes already in `out` are
/// left untouched.
///
/// # Panics
/// If libzstd fails although the output has `ZSTD_compressBound` room, which only an
/// allocation failure inside libzstd can cause.
pub fn compress_frame(data: &[u8], level: i32, out: &mut Vec<u8>) {
    if out.is_empty() {
        // zstd writes into the spare capacity: pages it does not reach are never
        // touched, so compressing a large index costs its compressed size in RSS.
        out.reserve(zstd::zstd_safe::compress_bound(data.len()));
        if let Err(code) = zstd::zstd_safe::compress(out, data, level) {
            panic!("zstd compression failed: {}", zstd::zstd_safe::get_error_name(code));
        }
        return;
    }
    let start = out.len();
    out.resize(start + zstd::zstd_safe::compress_bound(data.len()), 0);
    match zstd::zstd_safe::compress(&mut out[start..], data, level) {
        Ok(written) => out.truncate(start + written),
        Err(code) => panic!("zstd compression failed: {}", zstd::zstd_safe::get_error_name(code)),
    }
}

/// Decompresses one zstd frame that must fill `bytes` exactly, refusing to produce
/// more than `max_decompressed` bytes.
pub fn decompress_frame(bytes: &[u8], max_decompressed: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    decompress_frame_into(bytes, max_decompressed, &mut out)?;
    Ok(out)
}

/// [`decompress_frame`] into `out`, replacing its content and reusing its
/// allocation (readers decompressing frame after frame allocate once).
pub fn decompress_frame_into(bytes: &[u8], max_decompressed: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    out.clear();
    let frame_len = zstd::zstd_safe::find_frame_compressed_size(bytes).map_err(|code| DecodeError::Zstd {
        reason: zstd::zstd_safe::get_error_name(code),
    })?;
    if frame_len != bytes.len() {
        return Err(DecodeError::Corrupted {
            what: "zstd frame",
            offset: frame_len,
            reason: "trailing bytes after the frame",
        });
    }
    let declared = zstd::zstd_safe::get_frame_content_size(bytes).map_err(|_| DecodeError::Zstd {
        reason: "unreadable frame header",
    })?;
    match declared {
        Some(size) => {
            if size > max_decompressed as u64 {
                return Err(DecodeError::FrameTooLarge {
                    limit: max_decompressed,
                    declared,
                });
            }
            // Decompressed into the spare capacity: no zero-filling first.
            out.reserve(size as usize);
            let written = zstd::zstd_safe::decompress(out, bytes).map_err(|code| DecodeError::Zstd {
                reason: zstd::zstd_safe::get_error_name(code),
            });
            match written {
                Ok(n) if n as u64 == size && out.len() == n => Ok(()),
                Ok(_) => {
                    out.clear();
                    Err(DecodeError::Corrupted {
                        what: "zstd frame",
                        offset: 0,
                        reason: "content size differs from the header",
                    })
                }
                Err(e) => {
                    out.clear();
                    Err(e)
                }
            }
        }
        None => {
            // Frames written by other tools may omit the size: stream with a cap.
            let decoder = zstd::stream::read::Decoder::with_buffer(bytes).map_err(|_| DecodeError::Zstd {
                reason: "cannot create decoder",
            })?;
            let read = decoder.take(max_decompressed as u64 + 1).read_to_end(out);
            if read.is_err() {
                out.clear();
                return Err(DecodeError::Zstd {
                    reason: "corrupted frame data",
                });
            }
            if out.len() > max_decompressed {
                out.clear();
                return Err(DecodeError::FrameTooLarge {
                    limit: max_decompressed,
                    declared: None,
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_after_prefix() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = vec![1, 2, 3];
        compress_frame(&data, 3, &mut out);
        assert_eq!(out[..3], [1, 2, 3]);
        assert!(out.len() < 2000);
        assert_eq!(decompress_frame(&out[3..], data.len()).unwrap(), data);
        assert_eq!(
            decompress_frame(&out[3..], data.len() - 1),
            Err(DecodeError::FrameTooLarge {
                limit: data.len() - 1,
                declared: Some(data.len() as u64)
            })
        );
    }

    #[test]
    fn unknown_size_frames_are_capped() {
        let data = vec![7u8; 50_000];
        let mut frame = Vec::new();
        let mut enc = zstd::stream::write::Encoder::new(&mut frame, 3).unwrap();
        std::io::Write::write_all(&mut enc, &data).unwrap();
        enc.finish().unwrap();
        assert!(matches!(zstd::zstd_safe::get_frame_content_size(&frame), Ok(None)));
        assert_eq!(decompress_frame(&frame, 50_000).unwrap(), data);
        assert!(matches!(
            decompress_frame(&frame, 49_999),
            Err(DecodeError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut out = Vec::new();
        compress_frame(b"hello", 3, &mut out);
        out.push(0);
        assert!(decompress_frame(&out, 100).is_err());
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decompress_frame(&bytes, 1 << 16);
        }

        #[test]
        fn mutated_frames_never_panic(data in proptest::collection::vec(0u8..4, 0..2000), at in any::<usize>(), x in 1u8..) {
            let mut frame = Vec::new();
            compress_frame(&data, 3, &mut frame);
            let i = at % frame.len();
            frame[i] ^= x;
            if let Ok(got) = decompress_frame(&frame, 4096) {
                prop_assert!(got.len() <= 4096);
            }
        }
    }
}
