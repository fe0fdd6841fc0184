//! Prometheus text import (`POST /api/v1/import/prometheus`); being written.

use axum::http::StatusCode;

pub(crate) async fn prometheus() -> StatusCode {
    StatusCode::NOT_IMPLEMENTED
}
