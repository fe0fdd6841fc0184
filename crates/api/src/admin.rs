//! Health, readiness and the admin endpoints (`/api/v1/admin/tsdb/*`).

use crate::params::Params;
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::sync::atomic::Ordering;

pub(crate) async fn healthy() -> &'static str {
    "Haetae is Healthy.\n"
}

pub(crate) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "Haetae is Ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
    }
}

/// Runs blocking admin work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, storage_api::StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("admin task failed: {e}")))?
        .map_err(ApiError::from)
}

pub(crate) async fn snapshot(State(state): State<AppState>, params: Params) -> Result<impl IntoResponse, ApiError> {
    let skip_head = match params.get("skip_head") {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::BadData(format!(
                "cannot parse skip_head {other:?}: must be true or false"
            )))
        }
    };
    let admin = std::sync::Arc::clone(&state.admin);
    let name = blocking(move || admin.snapshot(skip_head)).await?;
    Ok(Json(serde_json::json!({"status": "success", "data": {"name": name}})))
}

pub(crate) async fn delete_series(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<impl IntoResponse, ApiError> {
    let tenant = crate::tenant_from_headers(&headers)?;
    let selectors = params.selectors()?;
    if selectors.is_empty() {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let (start, end) = params.range()?;
    let admin = std::sync::Arc::clone(&state.admin);
    blocking(move || {
        for matchers in &selectors {
            admin.delete_series(&tenant, matchers, start, end)?;
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn clean_tombstones(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let admin = std::sync::Arc::clone(&state.admin);
    blocking(move || admin.clean_tombstones()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn flush(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let admin = std::sync::Arc::clone(&state.admin);
    blocking(move || admin.flush()).await?;
    Ok(StatusCode::NO_CONTENT)
}
