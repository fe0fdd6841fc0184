//! OTLP/HTTP metrics: `POST /v1/metrics` with an `ExportMetricsServiceRequest`
//! as protobuf (`application/x-protobuf`) or JSON (`application/json`),
//! optionally gzip-compressed.
//!
//! Layer 4. Decoding and the translation into Prometheus series are
//! [`wire::otlp`]'s; this module turns delta values into running totals
//! ([`crate::DeltaAccumulator`] in [`crate::PushState`]), stores the samples
//! and metadata, and answers as the OTLP/HTTP specification says:
//!
//! - 200 with an `ExportMetricsServiceResponse` in the request's format; when
//!   points were refused (exponential histograms, bad buckets, label limits,
//!   storage refusals) it carries `partial_success` with
//!   `rejected_data_points` and an `error_message` naming the metrics — the
//!   client must not retry those;
//! - 400 with a `google.rpc.Status` body for a payload that cannot be
//!   decoded, 413 for one over the size limits, 415 for other content types;
//! - 429/5xx (also with a `Status`) when the storage fails and a retry may help.

use crate::push::{self, join_errors};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use model::Sample;
use storage_api::MetricMetadata;
use wire::otlp::{self, Temporality};

const PROTOCOL: &str = "otlp";

/// The two encodings OTLP/HTTP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => otlp::CONTENT_TYPE_PROTOBUF,
            Format::Json => otlp::CONTENT_TYPE_JSON,
        }
    }
}

/// An error answered with a `google.rpc.Status` body.
struct OtlpError {
    format: Format,
    error: ApiError,
}

impl IntoResponse for OtlpError {
    fn into_response(self) -> Response {
        let (status, _) = self.error.status_and_type();
        // gRPC codes: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL.
        let code = match status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => otlp::STATUS_INVALID_ARGUMENT,
            StatusCode::TOO_MANY_REQUESTS => 8,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            _ => 13,
        };
        let message = self.error.to_string();
        let body = match self.format {
            Format::Protobuf => otlp::encode_status_protobuf(code, &message),
            Format::Json => otlp::encode_status_json(code, &message),
        };
        (status, [(header::CONTENT_TYPE, self.format.content_type())], body).into_response()
    }
}

/// `POST /v1/metrics`.
pub(crate) async fn export(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let format = match media_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Format::Protobuf,
        "application/json" => Format::Json,
        _ => {
            state.push.count_rejected(PROTOCOL, "unsupported_content_type", 1);
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type {content_type:?}: OTLP/HTTP takes application/x-protobuf or application/json"
                ),
            )
                .into_response();
        }
    };
    export_in(state, format, headers, body)
        .await
        .unwrap_or_else(|error| OtlpError { format, error }.into_response())
}

async fn export_in(state: AppState, format: Format, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    state.push.count_request(PROTOCOL);
    let body = push::read_push_body(&state, &headers, body).await?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || export_blocking(&st, &tenant, format, &body))
        .await
        .map_err(|e| ApiError::Internal(format!("export task failed: {e}")))?
}

fn export_blocking(
    state: &AppState,
    tenant: &model::TenantId,
    format: Format,
    body: &[u8],
) -> Result<Response, ApiError> {
    let decoded = match format {
        Format::Protobuf => otlp::decode_protobuf(body),
        Format::Json => otlp::decode_json(body),
    };
    let request = decoded.map_err(|e| {
        state.push.count_rejected(PROTOCOL, "malformed_request", 1);
        ApiError::BadData(e.to_string())
    })?;
    let translated = otlp::translate(&request, &state.limits.decode, push::now_ms());
    state.push.count_samples(PROTOCOL, translated.samples.len());
    state
        .push
        .count_rejected(PROTOCOL, "invalid_point", translated.num_rejected_points);
    let mut num_rejected = translated.num_rejected_points;
    let mut messages: Vec<String> = translated.errors.iter().map(|e| e.to_string()).collect();
    let mut num_errors = translated.errors.len();

    if !translated.metadata.is_empty() {
        let metadata = translated
            .metadata
            .into_iter()
            .map(|m| MetricMetadata {
                metric_family: m.family,
                metric_type: m.metric_type.to_string(),
                help: m.help,
                unit: m.unit,
            })
            .collect();
        state.metadata.put_metadata(tenant, metadata);
    }

    let mut samples = Vec::with_capacity(translated.samples.len());
    let mut num_delta_refused = 0usize;
    for s in translated.samples {
        let v = match s.temporality {
            Temporality::Cumulative => s.sample.v,
            Temporality::Delta => match state.push.deltas.accumulate(tenant, &s.labels, s.sample.v) {
                Some(total) => total,
                None => {
                    num_delta_refused += 1;
                    continue;
                }
            },
        };
        samples.push((s.labels, Sample::new(s.sample.t, v)));
    }
    if num_delta_refused > 0 {
        state
            .push
            .count_rejected(PROTOCOL, "delta_series_limit", num_delta_refused);
        num_rejected += num_delta_refused;
        num_errors += 1;
        messages.push(format!(
            "{num_delta_refused} delta sample(s) of new series rejected: the server tracks at most {} delta series",
            crate::DeltaAccumulator::MAX_SERIES
        ));
    }
    let batch = push::group_by_series(samples);
    let report = if batch.is_empty() {
        storage_api::AppendReport::default()
    } else {
        state.appender.append(tenant, batch)?
    };
    if let Err(e) = state.push.deltas.maybe_save() {
        tracing::warn!(error = %e, "cannot save OTLP delta totals; a restart would read as a counter reset");
    }
    let num_storage_refused: usize = report.rejected.iter().map(|r| r.num_samples).sum();
    if num_storage_refused > 0 {
        // The storage counts samples, not points; a histogram point is several samples.
        num_rejected += num_storage_refused;
        let (n, refused) = push::describe_rejections(&report);
        num_errors += n;
        messages.extend(refused);
    }
    let error_message = if num_errors > 0 {
        join_errors(&messages, num_errors)
    } else {
        String::new()
    };
    let response = otlp::response(num_rejected, &error_message);
    let body = match format {
        Format::Protobuf => otlp::encode_response_protobuf(&response),
        Format::Json => otlp::encode_response_json(&response),
    };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, format.content_type())], body).into_response())
}
