//! Prometheus remote read: a snappy-compressed [`prompb::ReadRequest`] in,
//! either one snappy-compressed [`prompb::ReadResponse`] (SAMPLES) or a stream
//! of framed [`prompb::ChunkedReadResponse`]s (STREAMED_XOR_CHUNKS) out.
//!
//! Layer 4: depends only on `model`. Owns request decoding (queries become
//! [`model::Matcher`]s, bad regexes are errors), response encoding and the
//! chunked frame format. It does not run queries, choose frame sizes or
//! encode chunks: the caller passes XOR chunks already encoded by the TSDB.
//!
//! Frame layout of a STREAMED_XOR_CHUNKS response body (one frame after the
//! other, no outer compression):
//!
//! ```text
//! ┌──────────────────┬──────────────────────────┬──────────────────────────────┐
//! │ len: uvarint     │ crc32c(data): u32 BE     │ data: ChunkedReadResponse    │
//! │ 1 to 10 bytes    │ 4 bytes                  │ len bytes, protobuf          │
//! └──────────────────┴──────────────────────────┴──────────────────────────────┘
//! ```
//!
//! The checksum is CRC32 with the Castagnoli polynomial. Prometheus cuts a
//! frame at about 1 MiB of chunk data, and its client refuses frames over
//! 50 MB by default, so callers should keep frames small.

use model::{Labels, MatchOp, Matcher, Sample};

use crate::error::WireError;
use crate::prompb;
use crate::prompb::label_matcher::Type as MatcherType;
use crate::{snappy, DecodeLimits};

/// The `Content-Type` of a read request and of a SAMPLES response.
pub const CONTENT_TYPE: &str = "application/x-protobuf";
/// The `Content-Encoding` of a read request and of a SAMPLES response.
pub const CONTENT_ENCODING: &str = "snappy";
/// The `Content-Type` of a STREAMED_XOR_CHUNKS response (which is not snappy-compressed).
pub const STREAMED_CONTENT_TYPE: &str = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// The header in which clients announce the remote-read version.
pub const VERSION_HEADER: &str = "X-Prometheus-Remote-Read-Version";
/// The protocol version this module implements.
pub const VERSION: &str = "0.1.0";

/// The series that answer one query, each with its samples sorted by time.
pub type QueryResult = Vec<(Labels, Vec<Sample>)>;

/// How the client wants the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseType {
    /// One snappy-compressed `ReadResponse` with raw samples; see [`encode_response`].
    Samples,
    /// Framed `ChunkedReadResponse`s with XOR chunks; see [`encode_chunked_frame`].
    StreamedXorChunks,
}

/// Advisory hints about what the client's PromQL engine will do with the data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadHints {
    /// The query step, in milliseconds.
    pub step_ms: i64,
    /// The function applied to the data, e.g. `rate`.
    pub func: String,
    /// The start of the data the function needs, in milliseconds.
    pub start_ms: i64,
    /// The end of the data the function needs, in milliseconds.
    pub end_ms: i64,
    /// The labels of an enclosing aggregation.
    pub grouping: Vec<String>,
    /// Whether `grouping` is a `by` (true) or `without` (false) list.
    pub by: bool,
    /// The range of a range-vector selector, in milliseconds.
    pub range_ms: i64,
}

/// One query of a read request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadQuery {
    /// Inclusive start, in milliseconds since the epoch.
    pub start_ms: i64,
    /// Inclusive end, in milliseconds since the epoch.
    pub end_ms: i64,
    /// The series selector.
    pub matchers: Vec<Matcher>,
    /// Hints, when the client sent them.
    pub hints: Option<ReadHints>,
}

/// A decoded read request.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRead {
    /// The queries, in request order; responses must keep this order.
    pub queries: Vec<ReadQuery>,
    /// The response types the client accepts, in order of preference; types
    /// we do not know are left out. Empty means SAMPLES.
    pub accepted_response_types: Vec<ResponseType>,
}

impl DecodedRead {
    /// The response type to answer with: the client's first preference, or
    /// SAMPLES when it states none (as Prometheus servers do).
    pub fn response_type(&self) -> ResponseType {
        self.accepted_response_types
            .first()
            .copied()
            .unwrap_or(ResponseType::Samples)
    }
}

/// Decodes a snappy-compressed read request.
///
/// Fails on a bad body (see [`WireError`]), an unknown matcher type, or a
/// matcher regex that does not compile.
pub fn decode_request(body: &[u8], limits: &DecodeLimits) -> Result<DecodedRead, WireError> {
    let raw = snappy::decompress(body, limits)?;
    let request: prompb::ReadRequest =
        prost::Message::decode(raw.as_slice()).map_err(|e| WireError::protobuf("ReadRequest", e))?;
    let queries = request
        .queries
        .into_iter()
        .enumerate()
        .map(|(query_idx, q)| convert_query(query_idx, q))
        .collect::<Result<_, _>>()?;
    let accepted_response_types = request
        .accepted_response_types
        .into_iter()
        .filter_map(|t| match prompb::read_request::ResponseType::try_from(t) {
            Ok(prompb::read_request::ResponseType::Samples) => Some(ResponseType::Samples),
            Ok(prompb::read_request::ResponseType::StreamedXorChunks) => Some(ResponseType::StreamedXorChunks),
            Err(_) => None,
        })
        .collect();
    Ok(DecodedRead {
        queries,
        accepted_response_types,
    })
}

fn convert_query(query_idx: usize, q: prompb::Query) -> Result<ReadQuery, WireError> {
    let matchers = q
        .matchers
        .into_iter()
        .map(|m| {
            let op = match MatcherType::try_from(m.r#type) {
                Ok(MatcherType::Eq) => MatchOp::Equal,
                Ok(MatcherType::Neq) => MatchOp::NotEqual,
                Ok(MatcherType::Re) => MatchOp::RegexMatch,
                Ok(MatcherType::Nre) => MatchOp::RegexNoMatch,
                Err(_) => {
                    return Err(WireError::UnknownMatcherType {
                        query_idx,
                        name: m.name,
                        value: m.r#type,
                    })
                }
            };
            Matcher::new(op, m.name, m.value).map_err(|source| WireError::BadMatcher { query_idx, source })
        })
        .collect::<Result<_, _>>()?;
    Ok(ReadQuery {
        start_ms: q.start_timestamp_ms,
        end_ms: q.end_timestamp_ms,
        matchers,
        hints: q.hints.map(|h| ReadHints {
            step_ms: h.step_ms,
            func: h.func,
            start_ms: h.start_ms,
            end_ms: h.end_ms,
            grouping: h.grouping,
            by: h.by,
            range_ms: h.range_ms,
        }),
    })
}

/// Encodes a read request as a snappy-compressed body (for clients and tests).
pub fn encode_request(queries: &[ReadQuery], accepted_response_types: &[ResponseType]) -> Result<Vec<u8>, WireError> {
    let request = prompb::ReadRequest {
        queries: queries
            .iter()
            .map(|q| prompb::Query {
                start_timestamp_ms: q.start_ms,
                end_timestamp_ms: q.end_ms,
                matchers: q
                    .matchers
                    .iter()
                    .map(|m| prompb::LabelMatcher {
                        r#type: match m.op() {
                            MatchOp::Equal => MatcherType::Eq,
                            MatchOp::NotEqual => MatcherType::Neq,
                            MatchOp::RegexMatch => MatcherType::Re,
                            MatchOp::RegexNoMatch => MatcherType::Nre,
                        } as i32,
                        name: m.name().to_string(),
                        value: m.value().to_string(),
                    })
                    .collect(),
                hints: q.hints.as_ref().map(|h| prompb::ReadHints {
                    step_ms: h.step_ms,
                    func: h.func.clone(),
                    start_ms: h.start_ms,
                    end_ms: h.end_ms,
                    grouping: h.grouping.clone(),
                    by: h.by,
                    range_ms: h.range_ms,
                }),
            })
            .collect(),
        accepted_response_types: accepted_response_types
            .iter()
            .map(|t| match t {
                ResponseType::Samples => prompb::read_request::ResponseType::Samples as i32,
                ResponseType::StreamedXorChunks => prompb::read_request::ResponseType::StreamedXorChunks as i32,
            })
            .collect(),
    };
    snappy::compress(&prost::Message::encode_to_vec(&request))
}

/// Encodes a SAMPLES response: one result per query, in query order, each a
/// list of series with their samples (which should be sorted by time).
/// The body is snappy-compressed protobuf; send it with [`CONTENT_TYPE`] and
/// [`CONTENT_ENCODING`].
///
/// Fails only when the response exceeds snappy's 4 GiB block limit; callers
/// should enforce a much smaller sample limit before encoding.
pub fn encode_response(results: &[QueryResult]) -> Result<Vec<u8>, WireError> {
    let response = prompb::ReadResponse {
        results: results
            .iter()
            .map(|series| prompb::QueryResult {
                timeseries: series
                    .iter()
                    .map(|(labels, samples)| prompb::TimeSeries {
                        labels: crate::remote_write::labels_to_prompb(labels),
                        samples: samples
                            .iter()
                            .map(|s| prompb::Sample {
                                value: s.v,
                                timestamp: s.t,
                            })
                            .collect(),
                        exemplars: Vec::new(),
                        histograms: Vec::new(),
                    })
                    .collect(),
            })
            .collect(),
    };
    snappy::compress(&prost::Message::encode_to_vec(&response))
}

/// Decodes a SAMPLES response body (for clients and tests): one list of
/// series per query.
pub fn decode_response(body: &[u8], limits: &DecodeLimits) -> Result<Vec<QueryResult>, WireError> {
    let raw = snappy::decompress(body, limits)?;
    let response: prompb::ReadResponse =
        prost::Message::decode(raw.as_slice()).map_err(|e| WireError::protobuf("ReadResponse", e))?;
    Ok(response
        .results
        .into_iter()
        .map(|r| {
            r.timeseries
                .into_iter()
                .map(|ts| {
                    let labels = Labels::new(
                        ts.labels
                            .into_iter()
                            .map(|l| model::Label::new(l.name, l.value))
                            .collect(),
                    );
                    let samples = ts.samples.iter().map(|s| Sample::new(s.timestamp, s.value)).collect();
                    (labels, samples)
                })
                .collect()
        })
        .collect())
}

/// One XOR chunk, already encoded by the storage, for a chunked response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XorChunk<'a> {
    /// The time of the first sample, inclusive, in milliseconds.
    pub min_time_ms: i64,
    /// The time of the last sample, inclusive, in milliseconds.
    pub max_time_ms: i64,
    /// The chunk bytes in Prometheus' XOR chunk encoding (sample count
    /// header included), exactly as `chunkenc.XORChunk.Bytes()` returns them.
    pub data: &'a [u8],
}

/// Appends one STREAMED_XOR_CHUNKS frame holding one series to `out`,
/// leaving what `out` already holds intact.
///
/// `query_idx` is the index of the query (in the request) this series
/// answers; `chunks` should be sorted by time. Frames of one query may be
/// written in any number; the caller flushes them to the client.
pub fn encode_chunked_frame(out: &mut Vec<u8>, query_idx: i64, labels: &Labels, chunks: &[XorChunk<'_>]) {
    let message = prompb::ChunkedReadResponse {
        chunked_series: vec![prompb::ChunkedSeries {
            labels: crate::remote_write::labels_to_prompb(labels),
            chunks: chunks
                .iter()
                .map(|c| prompb::Chunk {
                    min_time_ms: c.min_time_ms,
                    max_time_ms: c.max_time_ms,
                    r#type: prompb::chunk::Encoding::Xor as i32,
                    data: c.data.to_vec(),
                })
                .collect(),
        }],
        query_index: query_idx,
    };
    let len = prost::Message::encoded_len(&message);
    out.reserve(MAX_UVARINT_LEN + 4 + len);
    put_uvarint(out, len as u64);
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    prost::Message::encode_raw(&message, out);
    let crc = crc32c::crc32c(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads the first STREAMED_XOR_CHUNKS frame of `input` (for clients and
/// tests). Returns `None` at the end of the input, otherwise the message and
/// the number of bytes the frame took. Frames longer than `max_frame_bytes`
/// are refused before their data is read.
pub fn decode_chunked_frame(
    input: &[u8],
    max_frame_bytes: usize,
) -> Result<Option<(prompb::ChunkedReadResponse, usize)>, WireError> {
    if input.is_empty() {
        return Ok(None);
    }
    let (len, varint_len) = read_uvarint(input)?;
    if len > max_frame_bytes as u64 {
        return Err(WireError::FrameTooLarge {
            len,
            limit: max_frame_bytes,
        });
    }
    // Cannot truncate: len <= max_frame_bytes, a usize.
    let len = len as usize;
    let data_at = varint_len + 4;
    let frame_len = data_at.saturating_add(len);
    if input.len() < frame_len {
        return Err(WireError::FrameTruncated {
            needed: frame_len - input.len(),
        });
    }
    let expected = u32::from_be_bytes([
        input[varint_len],
        input[varint_len + 1],
        input[varint_len + 2],
        input[varint_len + 3],
    ]);
    let data = &input[data_at..frame_len];
    let actual = crc32c::crc32c(data);
    if expected != actual {
        return Err(WireError::FrameChecksum { expected, actual });
    }
    let message = prost::Message::decode(data).map_err(|e| WireError::protobuf("ChunkedReadResponse", e))?;
    Ok(Some((message, frame_len)))
}

/// The longest encoding of a u64 as a uvarint.
const MAX_UVARINT_LEN: usize = 10;

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a uvarint, returning it and its length in bytes.
fn read_uvarint(input: &[u8]) -> Result<(u64, usize), WireError> {
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(MAX_UVARINT_LEN) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Ok((v, i + 1));
        }
    }
    if input.len() < MAX_UVARINT_LEN {
        return Err(WireError::FrameTruncated { needed: 1 });
    }
    Err(WireError::FrameBadLength)
}

#[cfg(test)]
mod tests;
