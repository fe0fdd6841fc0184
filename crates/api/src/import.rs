//! Prometheus text import: `POST /api/v1/import/prometheus` (VictoriaMetrics'
//! path), for batch jobs and backfills that push exposition text.
//!
//! Layer 4. The grammar is `scrape::exposition`'s (text format 0.0.4, or
//! OpenMetrics when the `Content-Type` says `application/openmetrics-text`);
//! this module stores what it parses:
//!
//! - samples keep their timestamps (milliseconds; seconds in OpenMetrics);
//!   samples without one get the server's time;
//! - unlike a scrape, the same series may appear many times with different
//!   timestamps (a backfill), and `# HELP`/`# TYPE` lines may repeat (the
//!   last wins); the same series twice at the same timestamp is refused;
//! - `extra_label=name=value` parameters (repeatable) are added to every
//!   sample and override labels of the same name, as in VictoriaMetrics;
//! - `# TYPE`, `# HELP` and `# UNIT` become metric metadata.
//!
//! Answers: 204 when every line was stored; 400 naming the bad lines (the
//! good ones are stored all the same); 413 for a body over the limits.

use crate::push::{self, join_errors};
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use model::{Label, Labels, Sample};
use scrape::exposition::{self, Entry, Format, LineError};
use std::collections::{BTreeMap, HashSet};
use storage_api::MetricMetadata;

const PROTOCOL: &str = "import";

/// `POST /api/v1/import/prometheus?extra_label=name=value`.
pub(crate) async fn prometheus(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
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
    let mut extra_labels = Vec::new();
    for (key, value) in &params {
        if key != "extra_label" {
            continue;
        }
        let Some((name, label_value)) = value.split_once('=') else {
            return Err(ApiError::BadData(format!(
                "invalid extra_label {value:?}: expected name=value"
            )));
        };
        if !exposition::is_valid_label_name(name) || name == model::METRIC_NAME {
            return Err(ApiError::BadData(format!(
                "invalid extra_label {value:?}: {name:?} is not a valid label name"
            )));
        }
        extra_labels.push(Label::new(name, label_value));
    }
    let format = Format::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    let body = push::read_push_body(&state, &headers, body).await?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || import_blocking(&st, &tenant, format, &extra_labels, &body))
        .await
        .map_err(|e| ApiError::Internal(format!("import task failed: {e}")))?
}

/// Metadata of one family as collected from the body.
#[derive(Default)]
struct Family {
    metric_type: Option<&'static str>,
    help: String,
    unit: String,
}

fn import_blocking(
    state: &AppState,
    tenant: &model::TenantId,
    format: Format,
    extra_labels: &[Label],
    body: &[u8],
) -> Result<Response, ApiError> {
    let limits = &state.limits.decode;
    let now = push::now_ms();
    let mut errors: Vec<String> = Vec::new();
    let mut samples: Vec<(Labels, Sample)> = Vec::new();
    let mut seen: HashSet<(Labels, i64)> = HashSet::new();
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut scratch = Vec::new();
    for item in exposition::Parser::new(body, format) {
        let entry = match item {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        match entry {
            Entry::Help { family, help } => families.entry(family.to_string()).or_default().help = help.into_owned(),
            Entry::Type { family, metric_type } => {
                families.entry(family.to_string()).or_default().metric_type = Some(metric_type.as_str())
            }
            Entry::Unit { family, unit } => families.entry(family.to_string()).or_default().unit = unit.to_string(),
            Entry::Sample(s) => {
                let line = s.line;
                if let Err(kind) = exposition::parse_series(s.series, &mut scratch) {
                    errors.push(LineError { line, kind }.to_string());
                    continue;
                }
                let mut labels = std::mem::take(&mut scratch);
                for extra in extra_labels {
                    match labels.iter_mut().find(|l| l.name == extra.name) {
                        Some(l) => l.value = extra.value.clone(),
                        None => labels.push(extra.clone()),
                    }
                }
                let labels = Labels::new(labels);
                if let Err(reason) = check_limits(&labels, limits) {
                    errors.push(format!("line {line}: series {labels}: {reason}"));
                    continue;
                }
                let t = s.timestamp_ms.unwrap_or(now);
                if t < 0 {
                    errors.push(format!("line {line}: timestamp {t} is before 1970"));
                    continue;
                }
                if !seen.insert((labels.clone(), t)) {
                    errors.push(format!(
                        "line {line}: duplicate sample for series {labels} at timestamp {t}"
                    ));
                    continue;
                }
                samples.push((labels, Sample::new(t, s.value)));
            }
        }
    }
    state.push.count_samples(PROTOCOL, samples.len());
    state.push.count_rejected(PROTOCOL, "invalid_line", errors.len());
    let metadata: Vec<MetricMetadata> = families
        .into_iter()
        .map(|(family, f)| MetricMetadata {
            metric_family: family,
            metric_type: f.metric_type.unwrap_or("unknown").to_string(),
            help: f.help,
            unit: f.unit,
        })
        .collect();
    if !metadata.is_empty() {
        state.metadata.put_metadata(tenant, metadata);
    }
    let (num_refused, refused) = push::append(state, tenant, push::group_by_series(samples))?;
    if errors.is_empty() && num_refused == 0 {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let mut messages: Vec<String> = errors.iter().take(push::MAX_ERRORS_IN_MESSAGE).cloned().collect();
    messages.extend(refused);
    Err(ApiError::BadData(join_errors(&messages, errors.len() + num_refused)))
}

/// Checks a label set against the decode limits.
fn check_limits(labels: &Labels, limits: &wire::DecodeLimits) -> Result<(), String> {
    if labels.len() > limits.max_labels_per_series {
        return Err(format!(
            "{} labels exceed the limit of {}",
            labels.len(),
            limits.max_labels_per_series
        ));
    }
    if let Some(l) = labels.iter().find(|l| l.name.len() > limits.max_label_name_len) {
        return Err(format!(
            "label name of {} bytes exceeds the limit of {}",
            l.name.len(),
            limits.max_label_name_len
        ));
    }
    if let Some(l) = labels.iter().find(|l| l.value.len() > limits.max_label_value_len) {
        return Err(format!(
            "value of label {:?} is {} bytes, exceeding the limit of {}",
            l.name,
            l.value.len(),
            limits.max_label_value_len
        ));
    }
    Ok(())
}
