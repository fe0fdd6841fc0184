//! `/api/v1/targets`, `/api/v1/targets/metadata` and `/-/reload`: the
//! control endpoints of scraping. The server implements the handler traits
//! and merges [`control_router`] into the main router.

use crate::params::{parse_selector, Params};
use crate::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::Labels;
use serde_json::json;
use std::sync::Arc;

/// What the targets endpoints need from the scraper.
pub trait TargetsHandler: Send + Sync {
    /// Active and dropped targets.
    fn targets(&self) -> scrape::TargetsView;
    /// Metadata of targets passing `filter`.
    fn targets_metadata(
        &self,
        filter: &dyn Fn(&Labels) -> bool,
        metric: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<scrape::TargetMetadata>;
}

/// Re-reads the configuration file and applies it; on error the old
/// configuration stays in force and the error says why (file, line, field).
pub trait ReloadHandler: Send + Sync {
    /// Reloads.
    fn reload(&self) -> Result<(), String>;
}

#[derive(Clone)]
struct ControlState {
    targets: Arc<dyn TargetsHandler>,
    reload: Arc<dyn ReloadHandler>,
}

/// Routes for targets and reload.
pub fn control_router(targets: Arc<dyn TargetsHandler>, reload: Arc<dyn ReloadHandler>) -> Router {
    Router::new()
        .route("/api/v1/targets", get(targets_handler))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .route("/-/reload", post(reload_handler).put(reload_handler))
        .with_state(ControlState { targets, reload })
}

async fn targets_handler(State(st): State<ControlState>, params: Params) -> Result<Json<serde_json::Value>, ApiError> {
    let state = params.get("state").unwrap_or("any").to_ascii_lowercase();
    if !matches!(state.as_str(), "" | "any" | "active" | "dropped") {
        return Err(ApiError::BadData(format!(
            "invalid state {state:?}: must be active, dropped or any"
        )));
    }
    let pool = params.get("scrapePool").filter(|p| !p.is_empty()).map(str::to_string);
    let mut view = st.targets.targets();
    if let Some(pool) = &pool {
        view.active_targets.retain(|t| &t.scrape_pool == pool);
        view.dropped_targets
            .retain(|t| t.discovered_labels.get("job") == Some(pool));
    }
    let mut data = json!({});
    if state != "dropped" {
        data["activeTargets"] = json!(view.active_targets);
    }
    if state != "active" {
        data["droppedTargets"] = json!(view.dropped_targets);
    }
    Ok(Json(json!({"status": "success", "data": data})))
}

async fn targets_metadata(State(st): State<ControlState>, params: Params) -> Result<Json<serde_json::Value>, ApiError> {
    let matchers = match params.get("match_target").filter(|m| !m.is_empty()) {
        Some(sel) => parse_selector_allow_empty(sel)?,
        None => Vec::new(),
    };
    let metric = params.get("metric").filter(|m| !m.is_empty()).map(str::to_string);
    let limit = params.limit()?;
    let filter = move |l: &Labels| matchers.iter().all(|m| m.matches(l.get(m.name()).unwrap_or("")));
    let md = st.targets.targets_metadata(&filter, metric.as_deref(), limit);
    if md.is_empty() && metric.is_some() {
        return Err(ApiError::BadData("specified metadata not found".into()));
    }
    Ok(Json(json!({"status": "success", "data": md})))
}

/// `match_target` is a label selector such as `{job="node"}`.
fn parse_selector_allow_empty(s: &str) -> Result<Vec<model::Matcher>, ApiError> {
    match parse_selector(s) {
        Ok(m) => Ok(m),
        // `{}` or all-empty matchers select every target here.
        Err(_) if s.trim() == "{}" => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

async fn reload_handler(State(st): State<ControlState>) -> Response {
    let reload = Arc::clone(&st.reload);
    match tokio::task::spawn_blocking(move || reload.reload()).await {
        Ok(Ok(())) => (StatusCode::OK, "").into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("reload task failed: {e}\n")).into_response(),
    }
}
