//! Prometheus remote write 1.0 (`POST /api/v1/write`) and remote read
//! (`POST /api/v1/read`).
//!
//! Status codes follow the remote-write spec: 204 when stored, 400 for data
//! that must not be retried (the message names the series and the reason;
//! valid series of the same request are stored all the same), 413 for a body
//! over the size limits, 429/5xx for failures worth retrying.

use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use model::Sample;
use std::sync::atomic::Ordering;
use std::time::Duration;
use storage_api::{MetricMetadata, SelectHints, SeriesSamples};

/// Reads a whole body, refusing more than `limit` bytes or a body that does
/// not arrive within `timeout`.
pub(crate) async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::BadData(format!(
            "request body not received within {}s",
            timeout.as_secs()
        ))),
        Ok(Err(e)) => {
            let msg = e.to_string();
            if std::error::Error::source(&e).is_some_and(|s| s.to_string().contains("length limit"))
                || msg.contains("length limit")
            {
                Err(ApiError::TooLarge(format!("request body larger than {limit} bytes")))
            } else {
                Err(ApiError::BadData(format!("cannot read request body: {msg}")))
            }
        }
        Ok(Ok(b)) => Ok(b),
    }
}

/// Most series named in one 400 message.
const MAX_ERRORS_IN_MESSAGE: usize = 10;

pub(crate) async fn write(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    if let Some(enc) = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()) {
        if !enc.eq_ignore_ascii_case("snappy") {
            return Err(ApiError::BadData(format!(
                "unsupported Content-Encoding {enc:?}; remote write uses snappy"
            )));
        }
    }
    state.metrics.remote_write_requests.fetch_add(1, Ordering::Relaxed);
    with_body(state, tenant, body, "write", write_blocking).await
}

/// Reads the body within the decode limits, then runs `f` on the blocking pool.
async fn with_body(
    state: AppState,
    tenant: model::TenantId,
    body: Body,
    what: &'static str,
    f: fn(&AppState, &model::TenantId, &[u8]) -> Result<Response, ApiError>,
) -> Result<Response, ApiError> {
    let body = read_body(
        body,
        state.limits.decode.max_compressed_bytes,
        state.limits.body_timeout,
    )
    .await?;
    tokio::task::spawn_blocking(move || f(&state, &tenant, &body))
        .await
        .map_err(|e| ApiError::Internal(format!("{what} task failed: {e}")))?
}

fn write_blocking(state: &AppState, tenant: &model::TenantId, body: &[u8]) -> Result<Response, ApiError> {
    let decoded = match wire::remote_write::decode(body, &state.limits.decode) {
        Ok(d) => d,
        Err(e) => {
            state.metrics.reject("malformed_request", 1);
            return Err(e.into());
        }
    };
    state
        .metrics
        .remote_write_samples
        .fetch_add(decoded.num_samples() as u64, Ordering::Relaxed);
    let mut errors: Vec<String> = Vec::new();
    let mut num_errors = 0usize;
    if !decoded.rejected.is_empty() {
        state.metrics.reject("invalid_series", decoded.rejected.len() as u64);
        num_errors += decoded.rejected.len();
        errors.extend(
            decoded
                .rejected
                .iter()
                .take(MAX_ERRORS_IN_MESSAGE)
                .map(|e| e.to_string()),
        );
    }
    let mut batch = Vec::with_capacity(decoded.series.len());
    for (labels, samples) in decoded.series {
        let (ok, bad): (Vec<Sample>, Vec<Sample>) = samples.into_iter().partition(|s| s.t >= 0);
        if let Some(first) = bad.first() {
            state.metrics.reject("before_1970", bad.len() as u64);
            num_errors += 1;
            if errors.len() < MAX_ERRORS_IN_MESSAGE {
                errors.push(format!(
                    "series {labels}: {} sample(s) with timestamps before 1970 (first {})",
                    bad.len(),
                    first.t
                ));
            }
        }
        if !ok.is_empty() {
            batch.push(SeriesSamples { labels, samples: ok });
        }
    }
    if !decoded.metadata.is_empty() {
        let md = decoded
            .metadata
            .into_iter()
            .map(|m| MetricMetadata {
                metric_family: m.family,
                metric_type: m.metric_type.to_string(),
                help: m.help,
                unit: m.unit,
            })
            .collect();
        state.metadata.put_metadata(tenant, md);
    }
    if !batch.is_empty() {
        let report = state.appender.append(tenant, batch)?;
        for r in &report.rejected {
            num_errors += 1;
            if errors.len() < MAX_ERRORS_IN_MESSAGE {
                let what = match r.reason {
                    storage_api::RejectReason::TooOld => "too old: older than the out-of-order window allows",
                    storage_api::RejectReason::TooFarInFuture => "too far in the future",
                    storage_api::RejectReason::DuplicateTimestamp => {
                        "duplicate sample for timestamp: a different value is already stored"
                    }
                    storage_api::RejectReason::SeriesLimit => "series limit of the tenant reached",
                    _ => "refused",
                };
                errors.push(format!(
                    "series {}: {} sample(s) {what} (first at {})",
                    r.labels, r.num_samples, r.first_t
                ));
            }
        }
    }
    if num_errors > 0 {
        let mut msg = errors.join("; ");
        if num_errors > errors.len() {
            msg.push_str(&format!("; and {} more", num_errors - errors.len()));
        }
        return Err(ApiError::BadData(msg));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn read(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    state.metrics.remote_read_requests.fetch_add(1, Ordering::Relaxed);
    with_body(state, tenant, body, "read", read_blocking).await
}

fn read_blocking(state: &AppState, tenant: &model::TenantId, body: &[u8]) -> Result<Response, ApiError> {
    use wire::remote_read::{self, ResponseType};
    let req = remote_read::decode_request(body, &state.limits.decode)?;
    let querier = state.queryable.querier(tenant)?;
    let mut remaining = state.limits.max_read_samples;
    let mut results = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        if q.end_ms < q.start_ms {
            return Err(ApiError::BadData(format!(
                "query end {} is before start {}",
                q.end_ms, q.start_ms
            )));
        }
        let hints = SelectHints {
            start: q.start_ms,
            end: q.end_ms,
            max_samples: Some(remaining),
        };
        let series = querier.select(&q.matchers, &hints)?;
        let n: usize = series.iter().map(|s| s.samples.len()).sum();
        remaining = remaining.saturating_sub(n);
        results.push(series.into_iter().map(|s| (s.labels, s.samples)).collect::<Vec<_>>());
    }
    match req.response_type() {
        ResponseType::Samples => {
            let body = remote_read::encode_response(&results)?;
            Ok((
                [
                    (header::CONTENT_TYPE, remote_read::CONTENT_TYPE),
                    (header::CONTENT_ENCODING, remote_read::CONTENT_ENCODING),
                ],
                body,
            )
                .into_response())
        }
        ResponseType::StreamedXorChunks => {
            let mut out = Vec::new();
            for (qi, series) in results.iter().enumerate() {
                for (labels, samples) in series {
                    let encoded = xor_chunks(samples);
                    let chunks: Vec<remote_read::XorChunk<'_>> = encoded
                        .iter()
                        .map(|(min, max, data)| remote_read::XorChunk {
                            min_time_ms: *min,
                            max_time_ms: *max,
                            data,
                        })
                        .collect();
                    remote_read::encode_chunked_frame(&mut out, qi as i64, labels, &chunks);
                }
            }
            Ok(([(header::CONTENT_TYPE, remote_read::STREAMED_CONTENT_TYPE)], out).into_response())
        }
    }
}

/// Encodes samples into Prometheus XOR chunks of at most 120 samples.
fn xor_chunks(samples: &[Sample]) -> Vec<(i64, i64, Vec<u8>)> {
    samples
        .chunks(120)
        .map(|part| {
            let mut enc = codec::XorEncoder::new();
            for s in part {
                enc.append(s.t, s.v);
            }
            (part[0].t, part[part.len() - 1].t, enc.bytes().to_vec())
        })
        .collect()
}
