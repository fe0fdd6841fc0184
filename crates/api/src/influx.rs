//! InfluxDB line protocol: `POST /write` (v1), `POST /api/v2/write` (v2) and
//! `GET|HEAD /ping`, enough for Telegraf and the `influx` CLI to write.
//!
//! Layer 4. Parsing and the measurement/field/tag mapping are
//! [`wire::influx`]'s; this module reads the parameters, the (possibly gzip)
//! body, stores the samples and answers as InfluxDB does:
//!
//! - 204 when every line was stored;
//! - 400 when some lines were bad or refused by the storage — the good lines
//!   are stored all the same (InfluxDB's "partial write"), and the message
//!   names the bad lines by number;
//! - 413 for a body over the limits, 429/5xx when retrying may help.
//!
//! Errors are `{"error": "..."}` on v1 and `{"code": "...", "message": "..."}`
//! on v2. The v1 `db` parameter and the v2 `bucket` parameter become the
//! label `db` (a tag named `db` wins); `rp`, `org`, `u`, `p` and
//! `consistency` are accepted and ignored. `/query` is not served.

use crate::push::{self, join_errors};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use model::Label;
use wire::influx::{self, ParseOptions, Precision};

/// The version we claim in `X-Influxdb-Version`: a 1.8 server is what
/// Telegraf's `influxdb` output and the 1.x CLI expect.
pub(crate) const INFLUXDB_VERSION: &str = "1.8.10";

const PROTOCOL: &str = "influx";

/// Which write API a request came through; decides the parameter names and
/// the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    V1,
    V2,
}

/// An answer in InfluxDB's error format.
struct InfluxError {
    api: Api,
    error: ApiError,
}

impl IntoResponse for InfluxError {
    fn into_response(self) -> Response {
        let (status, _) = self.error.status_and_type();
        let message = self.error.to_string();
        let body = match self.api {
            Api::V1 => serde_json::json!({ "error": message }),
            Api::V2 => {
                let code = match status {
                    StatusCode::BAD_REQUEST => "invalid",
                    StatusCode::PAYLOAD_TOO_LARGE => "request too large",
                    StatusCode::TOO_MANY_REQUESTS => "too many requests",
                    StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                    _ => "internal error",
                };
                serde_json::json!({ "code": code, "message": message })
            }
        };
        (status, version_headers(), axum::Json(body)).into_response()
    }
}

fn version_headers() -> [(HeaderName, HeaderValue); 2] {
    [
        (
            HeaderName::from_static("x-influxdb-version"),
            HeaderValue::from_static(INFLUXDB_VERSION),
        ),
        (
            HeaderName::from_static("x-influxdb-build"),
            HeaderValue::from_static("OSS"),
        ),
    ]
}

/// `GET|HEAD /ping`: 204 with the version headers, as InfluxDB answers.
pub(crate) async fn ping() -> Response {
    (StatusCode::NO_CONTENT, version_headers()).into_response()
}

/// `POST /write?db=&rp=&precision=`.
pub(crate) async fn write_v1(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    write(state, Api::V1, query, headers, body)
        .await
        .unwrap_or_else(|error| InfluxError { api: Api::V1, error }.into_response())
}

/// `POST /api/v2/write?bucket=&org=&precision=`.
pub(crate) async fn write_v2(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    write(state, Api::V2, query, headers, body)
        .await
        .unwrap_or_else(|error| InfluxError { api: Api::V2, error }.into_response())
}

async fn write(
    state: AppState,
    api: Api,
    query: Option<String>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    state.push.count_request(PROTOCOL);
    let params: Vec<(String, String)> = match query.as_deref() {
        Some(q) => {
            serde_urlencoded::from_str(q).map_err(|e| ApiError::BadData(format!("invalid query string: {e}")))?
        }
        None => Vec::new(),
    };
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let precision_text = param("precision").unwrap_or("");
    let precision = match api {
        Api::V1 => Precision::from_v1(precision_text),
        Api::V2 => Precision::from_v2(precision_text),
    }
    .ok_or_else(|| {
        ApiError::BadData(format!(
            "invalid precision {precision_text:?}: expected {}",
            match api {
                Api::V1 => "ns, u, µ, ms, s, m or h",
                Api::V2 => "ns, us, ms or s",
            }
        ))
    })?;
    let db = match api {
        Api::V1 => param("db"),
        Api::V2 => param("bucket"),
    }
    .unwrap_or("")
    .to_string();
    if db.len() > state.limits.decode.max_label_value_len {
        return Err(ApiError::BadData(format!(
            "database name of {} bytes exceeds the limit of {}",
            db.len(),
            state.limits.decode.max_label_value_len
        )));
    }
    let body = push::read_push_body(&state, &headers, body).await?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || write_blocking(&st, &tenant, precision, &db, &body))
        .await
        .map_err(|e| ApiError::Internal(format!("write task failed: {e}")))?
}

fn write_blocking(
    state: &AppState,
    tenant: &model::TenantId,
    precision: Precision,
    db: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let extra_labels: Vec<Label> = if db.is_empty() {
        Vec::new()
    } else {
        vec![Label::new("db", db)]
    };
    let opts = ParseOptions {
        precision,
        default_timestamp_ms: push::now_ms(),
        extra_labels: &extra_labels,
        limits: &state.limits.decode,
    };
    let parsed = influx::parse(body, &opts);
    state.push.count_samples(PROTOCOL, parsed.samples.len());
    state.push.count_rejected(PROTOCOL, "invalid_line", parsed.errors.len());
    state
        .push
        .count_rejected(PROTOCOL, "string_field", parsed.num_string_fields_skipped);
    let batch = push::group_by_series(parsed.samples);
    let (num_refused, refused) = push::append(state, tenant, batch)?;
    if parsed.errors.is_empty() && num_refused == 0 {
        return Ok((StatusCode::NO_CONTENT, version_headers()).into_response());
    }
    let mut messages: Vec<String> = parsed
        .errors
        .iter()
        .take(push::MAX_ERRORS_IN_MESSAGE)
        .map(|e| e.to_string())
        .collect();
    messages.extend(refused);
    let num_errors = parsed.errors.len() + num_refused;
    let prefix = if parsed.errors.is_empty() {
        String::from("partial write: ")
    } else {
        format!(
            "partial write: {} of {} lines rejected: ",
            parsed.errors.len(),
            parsed.num_lines
        )
    };
    Err(ApiError::BadData(format!(
        "{prefix}{}",
        join_errors(&messages, num_errors)
    )))
}
