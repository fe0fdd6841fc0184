//! The payloads the TSDB writes into the WAL and into checkpoints. The `wal`
//! crate frames and checksums them; this module gives them meaning.
//!
//! Every record starts with a type byte ([`RecordType`], never renumbered).
//! Layouts (uvarint/varint = LEB128, zigzag for signed):
//!
//! ```text
//! Series     1 | n | n × (ref uvarint | packed labels: len uvarint, bytes)
//! Samples    2 | n | base_ref uvarint | base_t varint | n × (ref-base varint | t-base varint | value u64 LE)
//! (type 3 is reserved)
//! Metadata   4 | n | n × (family bytes | type bytes | help bytes | unit bytes)
//! Chunk      5 | ref uvarint | encoding u8 (1 = Prometheus XOR) | chunk bytes   (checkpoints only)
//! Closed     6 | ref uvarint | min_t varint | max_t varint | last value u64 LE | encoding u8 | chunk bytes
//!                (checkpoints only: a closed chunk, restored without decoding it)
//! ```

use crate::encoding::{put_bytes, put_uvarint, put_varint, DecodeError, Reader};
use storage_api::MetricMetadata;

/// Record type bytes; persisted, never renumbered.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordType {
    Series = 1,
    Samples = 2,
    Metadata = 4,
    Chunk = 5,
    ClosedChunk = 6,
}

/// A decoded record.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    Series(Vec<(u64, &'a [u8])>),
    Samples(Vec<RefSample>),
    Metadata(Vec<MetricMetadata>),
    Chunk {
        series_ref: u64,
        data: &'a [u8],
    },
    ClosedChunk {
        series_ref: u64,
        min_t: i64,
        max_t: i64,
        last_v: f64,
        data: &'a [u8],
    },
}

/// A sample addressed by series ref.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RefSample {
    pub(crate) series_ref: u64,
    pub(crate) t: i64,
    pub(crate) v: f64,
}

pub(crate) fn encode_series(series: &[(u64, &[u8])], out: &mut Vec<u8>) {
    out.push(RecordType::Series as u8);
    put_uvarint(out, series.len() as u64);
    for (r, packed) in series {
        put_uvarint(out, *r);
        put_bytes(out, packed);
    }
}

pub(crate) fn encode_samples(samples: &[RefSample], out: &mut Vec<u8>) {
    out.push(RecordType::Samples as u8);
    put_uvarint(out, samples.len() as u64);
    let Some(first) = samples.first() else { return };
    put_uvarint(out, first.series_ref);
    put_varint(out, first.t);
    for s in samples {
        put_varint(out, s.series_ref.wrapping_sub(first.series_ref) as i64);
        put_varint(out, s.t.wrapping_sub(first.t));
        out.extend_from_slice(&s.v.to_bits().to_le_bytes());
    }
}

pub(crate) fn encode_metadata(md: &[MetricMetadata], out: &mut Vec<u8>) {
    out.push(RecordType::Metadata as u8);
    put_uvarint(out, md.len() as u64);
    for m in md {
        put_bytes(out, m.metric_family.as_bytes());
        put_bytes(out, m.metric_type.as_bytes());
        put_bytes(out, m.help.as_bytes());
        put_bytes(out, m.unit.as_bytes());
    }
}

pub(crate) const CHUNK_ENCODING_XOR: u8 = 1;

pub(crate) fn encode_chunk(series_ref: u64, xor_chunk: &[u8], out: &mut Vec<u8>) {
    out.push(RecordType::Chunk as u8);
    put_uvarint(out, series_ref);
    out.push(CHUNK_ENCODING_XOR);
    out.extend_from_slice(xor_chunk);
}

/// A closed chunk of a checkpoint: `(min_t, max_t, last value)` and its XOR bytes.
pub(crate) fn encode_closed_chunk(series_ref: u64, range: (i64, i64, f64), xor_chunk: &[u8], out: &mut Vec<u8>) {
    out.push(RecordType::ClosedChunk as u8);
    put_uvarint(out, series_ref);
    put_varint(out, range.0);
    put_varint(out, range.1);
    out.extend_from_slice(&range.2.to_bits().to_le_bytes());
    out.push(CHUNK_ENCODING_XOR);
    out.extend_from_slice(xor_chunk);
}

/// Bounds a count read from disk so a corrupt record cannot trigger a huge allocation.
fn capacity(n: u64, remaining: usize) -> usize {
    (n as usize).min(remaining)
}

pub(crate) fn decode(buf: &[u8]) -> Result<Record<'_>, DecodeError> {
    let mut r = Reader::new(buf);
    let ty = r.u8()?;
    match ty {
        t if t == RecordType::Series as u8 => {
            let n = r.uvarint()?;
            let mut out = Vec::with_capacity(capacity(n, buf.len()));
            for _ in 0..n {
                let series_ref = r.uvarint()?;
                out.push((series_ref, r.bytes()?));
            }
            Ok(Record::Series(out))
        }
        t if t == RecordType::Samples as u8 => {
            let n = r.uvarint()?;
            let mut out = Vec::with_capacity(capacity(n, buf.len() / 10));
            if n > 0 {
                let base_ref = r.uvarint()?;
                let base_t = r.varint()?;
                for _ in 0..n {
                    let series_ref = base_ref.wrapping_add(r.varint()? as u64);
                    let t = base_t.wrapping_add(r.varint()?);
                    let v = f64::from_bits(r.u64_le()?);
                    out.push(RefSample { series_ref, t, v });
                }
            }
            Ok(Record::Samples(out))
        }
        t if t == RecordType::Metadata as u8 => {
            let n = r.uvarint()?;
            let mut out = Vec::with_capacity(capacity(n, buf.len()));
            for _ in 0..n {
                out.push(MetricMetadata {
                    metric_family: r.str()?.to_string(),
                    metric_type: r.str()?.to_string(),
                    help: r.str()?.to_string(),
                    unit: r.str()?.to_string(),
                });
            }
            Ok(Record::Metadata(out))
        }
        t if t == RecordType::Chunk as u8 => {
            let series_ref = r.uvarint()?;
            let pos = r.pos();
            if r.u8()? != CHUNK_ENCODING_XOR {
                return Err(DecodeError {
                    what: "unknown chunk encoding",
                    offset: pos,
                });
            }
            Ok(Record::Chunk {
                series_ref,
                data: &buf[r.pos()..],
            })
        }
        t if t == RecordType::ClosedChunk as u8 => {
            let series_ref = r.uvarint()?;
            let min_t = r.varint()?;
            let max_t = r.varint()?;
            let last_v = f64::from_bits(r.u64_le()?);
            let pos = r.pos();
            if r.u8()? != CHUNK_ENCODING_XOR {
                return Err(DecodeError {
                    what: "unknown chunk encoding",
                    offset: pos,
                });
            }
            Ok(Record::ClosedChunk {
                series_ref,
                min_t,
                max_t,
                last_v,
                data: &buf[r.pos()..],
            })
        }
        _ => Err(DecodeError {
            what: "unknown record type",
            offset: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut buf = Vec::new();
        encode_series(&[(1, b"a\xffb\xff"), (2, b"")], &mut buf);
        match decode(&buf).unwrap() {
            Record::Series(s) => assert_eq!(s, vec![(1, &b"a\xffb\xff"[..]), (2, &b""[..])]),
            r => panic!("unexpected {r:?}"),
        }
        buf.clear();
        let samples = vec![
            RefSample {
                series_ref: 5,
                t: 1000,
                v: 1.5,
            },
            RefSample {
                series_ref: 3,
                t: 900,
                v: f64::from_bits(model::STALE_NAN_BITS),
            },
        ];
        encode_samples(&samples, &mut buf);
        match decode(&buf).unwrap() {
            Record::Samples(s) => {
                assert_eq!(s.len(), 2);
                assert_eq!(s[0], samples[0]);
                assert!(model::is_stale_nan(s[1].v));
            }
            r => panic!("unexpected {r:?}"),
        }
    }

    #[test]
    fn closed_chunk_round_trips() {
        let mut buf = Vec::new();
        encode_closed_chunk(7, (-5, 1_000_000, 2.5), b"\x00\x01xyz", &mut buf);
        match decode(&buf).unwrap() {
            Record::ClosedChunk {
                series_ref,
                min_t,
                max_t,
                last_v,
                data,
            } => assert_eq!(
                (series_ref, min_t, max_t, last_v, data),
                (7, -5, 1_000_000, 2.5, &b"\x00\x01xyz"[..])
            ),
            r => panic!("unexpected {r:?}"),
        }
        assert!(decode(&buf[..buf.len() - 6]).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x09",
            b"\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            b"\x01\x05\x01",
        ] {
            assert!(decode(bad).is_err());
        }
    }
}
