//! Classifies every failure once, at the edge: HTTP status, Prometheus'
//! `errorType`, and the JSON error body `{"status":"error",...}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use storage_api::StorageError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request is malformed (400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The request body is too large (413, `bad_data`).
    #[error("{0}")]
    TooLarge(String),
    /// The query failed while running (422, `execution`).
    #[error("{0}")]
    Execution(String),
    /// The query timed out (503, `timeout`).
    #[error("{0}")]
    Timeout(String),
    /// The query was canceled (503, `canceled`).
    #[error("{0}")]
    Canceled(String),
    /// A limit refuses the request for now (429, `unavailable`).
    #[error("{0}")]
    TooManyRequests(String),
    /// The server failed; retrying may help (500/503, `internal`/`unavailable`).
    #[error("{0}")]
    Internal(String),
    /// The server is not ready or shutting down (503, `unavailable`).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// Status code and Prometheus error type.
    pub fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadData(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "bad_data"),
            ApiError::Execution(_) => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
            ApiError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::Canceled(_) => (StatusCode::SERVICE_UNAVAILABLE, "canceled"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::TooManySamples { .. } | StorageError::TooManySeries { .. } => {
                ApiError::Execution(e.to_string())
            }
            StorageError::BadRequest(m) => ApiError::BadData(m),
            StorageError::LimitExceeded(m) => ApiError::TooManyRequests(m),
            StorageError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<wire::WireError> for ApiError {
    fn from(e: wire::WireError) -> Self {
        match e {
            wire::WireError::BodyTooLarge { .. } | wire::WireError::DecompressedTooLarge { .. } => {
                ApiError::TooLarge(e.to_string())
            }
            other => ApiError::BadData(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = self.status_and_type();
        let body = serde_json::json!({"status": "error", "errorType": error_type, "error": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}
