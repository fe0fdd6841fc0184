//! Series metadata endpoints: `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values`, `/api/v1/metadata`, `/api/v1/status/tsdb`.

use crate::params::Params;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use model::Labels;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use storage_api::Querier;

/// A successful answer, with `warnings` when there are some.
fn success(data: Value, warnings: Vec<String>) -> Json<Value> {
    let mut body = json!({"status": "success", "data": data});
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    Json(body)
}

/// Runs a querier call off the async threads.
async fn with_querier<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    f: impl FnOnce(&dyn Querier) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let tenant = crate::tenant_from_headers(headers)?;
    let queryable = Arc::clone(&state.queryable);
    tokio::task::spawn_blocking(move || {
        let q = queryable.querier(&tenant)?;
        f(&*q)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("query task failed: {e}")))?
}

fn truncate<T>(items: &mut Vec<T>, limit: Option<usize>, warnings: &mut Vec<String>) {
    if let Some(l) = limit {
        if items.len() > l {
            items.truncate(l);
            warnings.push("results truncated due to limit".into());
        }
    }
}

pub(crate) fn labels_json(labels: &Labels) -> Value {
    let mut m = Map::new();
    for l in labels {
        m.insert(l.name.clone(), Value::String(l.value.clone()));
    }
    Value::Object(m)
}

pub(crate) async fn series(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let selectors = params.selectors()?;
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let (start, end) = params.range()?;
    let limit = params.limit()?;
    let mut all = with_querier(&state, &headers, move |q| {
        let mut set = BTreeSet::new();
        for m in &selectors {
            set.extend(q.series(m, start, end)?);
        }
        Ok(set.into_iter().collect::<Vec<Labels>>())
    })
    .await?;
    let mut warnings = Vec::new();
    truncate(&mut all, limit, &mut warnings);
    Ok(success(Value::Array(all.iter().map(labels_json).collect()), warnings))
}

pub(crate) async fn labels(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let selectors = params.selectors()?;
    let (start, end) = params.range()?;
    let limit = params.limit()?;
    let mut names = with_querier(&state, &headers, move |q| {
        if selectors.is_empty() {
            return Ok(q.label_names(&[], start, end)?);
        }
        let mut set = BTreeSet::new();
        for m in &selectors {
            set.extend(q.label_names(m, start, end)?);
        }
        Ok(set.into_iter().collect())
    })
    .await?;
    let mut warnings = Vec::new();
    truncate(&mut names, limit, &mut warnings);
    Ok(success(json!(names), warnings))
}

pub(crate) async fn label_values(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    if name.is_empty() {
        return Err(ApiError::BadData("invalid label name: empty".into()));
    }
    let selectors = params.selectors()?;
    let (start, end) = params.range()?;
    let limit = params.limit()?;
    let mut values = with_querier(&state, &headers, move |q| {
        if selectors.is_empty() {
            return Ok(q.label_values(&name, &[], start, end)?);
        }
        let mut set = BTreeSet::new();
        for m in &selectors {
            set.extend(q.label_values(&name, m, start, end)?);
        }
        Ok(set.into_iter().collect())
    })
    .await?;
    let mut warnings = Vec::new();
    truncate(&mut values, limit, &mut warnings);
    Ok(success(json!(values), warnings))
}

pub(crate) async fn metadata(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    let limit = params.limit()?;
    let metric = params.get("metric").filter(|m| !m.is_empty());
    let md = state.metadata.metadata(&tenant, metric, limit);
    let mut data = Map::new();
    for m in md {
        data.insert(
            m.metric_family,
            json!([{"type": m.metric_type, "help": m.help, "unit": m.unit}]),
        );
    }
    Ok(success(Value::Object(data), Vec::new()))
}

pub(crate) async fn tsdb_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    let limit = params.limit()?.unwrap_or(10);
    let admin = Arc::clone(&state.admin);
    let s = tokio::task::spawn_blocking(move || admin.tsdb_status(&tenant, limit))
        .await
        .map_err(|e| ApiError::Internal(format!("status task failed: {e}")))?;
    let list = |v: &[(String, u64)]| -> Value { v.iter().map(|(n, c)| json!({"name": n, "value": c})).collect() };
    let (min, max) = if s.num_series == 0 {
        (0, 0)
    } else {
        (s.min_time, s.max_time)
    };
    Ok(success(
        json!({
            "headStats": {"numSeries": s.num_series, "numLabelPairs": s.num_label_pairs, "chunkCount": s.chunk_count, "minTime": min, "maxTime": max},
            "seriesCountByMetricName": list(&s.series_count_by_metric_name),
            "labelValueCountByLabelName": list(&s.label_value_count_by_label_name),
            "memoryInBytesByLabelName": list(&s.memory_in_bytes_by_label_name),
            "seriesCountByLabelValuePair": list(&s.series_count_by_label_value_pair),
        }),
        Vec::new(),
    ))
}
