//! Haetae's HTTP APIs, compatible with Prometheus': remote write and read,
//! PromQL queries, series metadata, status, admin, health and self-metrics.
//!
//! Layer 4: depends on `model`, `storage-api`, `promql`, `wire` and `codec`, never on
//! `tsdb`. The API defines the traits it needs beyond `storage-api`
//! ([`AdminHandler`]) and `server` implements them. Handlers stay thin:
//! parse and validate the request, call a trait, format the answer. CPU-heavy
//! or blocking work goes through `spawn_blocking`.
#![warn(missing_docs)]

mod admin;
mod delta;
mod error;
mod import;
mod influx;
mod metrics;
mod otlp;
pub mod params;
mod push;
mod query;
mod remote;
mod series;
mod status;
mod targets;

pub use delta::{DeltaAccumulator, DeltaError};
pub use error::ApiError;
pub use metrics::{ApiMetrics, MetricsWriter};
pub use push::PushState;
pub use query::{QueryLimits, QueryService};
pub use status::ServerInfo;
pub use targets::{control_router, ReloadHandler, TargetsHandler};

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use storage_api::{MetadataStore, Queryable, SampleAppender, StorageError};

/// Head cardinality statistics, as `/api/v1/status/tsdb` shows them.
#[derive(Debug, Clone, Default)]
pub struct TsdbStatus {
    /// Series in the head.
    pub num_series: u64,
    /// Distinct label pairs in the head.
    pub num_label_pairs: u64,
    /// Chunks in the head.
    pub chunk_count: u64,
    /// Smallest timestamp in the head (ms).
    pub min_time: i64,
    /// Largest timestamp in the head (ms).
    pub max_time: i64,
    /// Top metric names by series count.
    pub series_count_by_metric_name: Vec<(String, u64)>,
    /// Top label names by value count.
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Top label names by bytes used.
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    /// Top label pairs by series count.
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

/// Operations on the storage engine that the admin and status endpoints need.
pub trait AdminHandler: Send + Sync {
    /// Persists the head as blocks, compacts, truncates the WAL.
    fn flush(&self) -> Result<(), StorageError>;
    /// Writes a snapshot; returns its directory name.
    fn snapshot(&self, skip_head: bool) -> Result<String, StorageError>;
    /// Deletes data of matching series within `start..=end` for `tenant`.
    fn delete_series(
        &self,
        tenant: &model::TenantId,
        matchers: &[model::Matcher],
        start: i64,
        end: i64,
    ) -> Result<(), StorageError>;
    /// Rewrites blocks without deleted data.
    fn clean_tombstones(&self) -> Result<(), StorageError>;
    /// Head statistics of `tenant`, `limit` entries per list.
    fn tsdb_status(&self, tenant: &model::TenantId, limit: usize) -> TsdbStatus;
    /// Appends the storage's self-metrics in Prometheus text format.
    fn write_metrics(&self, out: &mut MetricsWriter);
}

/// Limits the API enforces on requests.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// Remote-write and remote-read decoding limits.
    pub decode: wire::DecodeLimits,
    /// A request body must arrive within this time.
    pub body_timeout: Duration,
    /// Samples a remote-read request may return in total.
    pub max_read_samples: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            decode: wire::DecodeLimits::default(),
            body_timeout: Duration::from_secs(30),
            max_read_samples: 50_000_000,
        }
    }
}

/// Everything the handlers need.
#[derive(Clone)]
pub struct AppState {
    /// The write path.
    pub appender: Arc<dyn SampleAppender>,
    /// The read path.
    pub queryable: Arc<dyn Queryable>,
    /// Metric metadata.
    pub metadata: Arc<dyn MetadataStore>,
    /// Admin and status operations.
    pub admin: Arc<dyn AdminHandler>,
    /// The API's own counters.
    pub metrics: Arc<ApiMetrics>,
    /// Request limits.
    pub limits: Arc<ApiLimits>,
    /// Flipped to true once the server is ready to serve.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    /// The PromQL query pool and its limits.
    pub query: Arc<QueryService>,
    /// Build, runtime and configuration facts for the status endpoints.
    pub info: Arc<ServerInfo>,
    /// State of the push endpoints (Influx, OTLP, import): OTLP delta
    /// totals and counters.
    pub push: Arc<PushState>,
}

/// The Prometheus-compatible API routes. Further routes (queries, UI) are
/// merged in by the server.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/v1/write", post(remote::write))
        .route("/api/v1/read", post(remote::read))
        .route("/api/v1/series", get(series::series).post(series::series))
        .route("/api/v1/labels", get(series::labels).post(series::labels))
        .route("/api/v1/label/{name}/values", get(series::label_values))
        .route("/api/v1/metadata", get(series::metadata))
        .route("/api/v1/status/tsdb", get(series::tsdb_status))
        .route("/api/v1/query", get(query::instant_query).post(query::instant_query))
        .route("/api/v1/query_range", get(query::range_query).post(query::range_query))
        .route(
            "/api/v1/format_query",
            get(query::format_query).post(query::format_query),
        )
        .route(
            "/api/v1/query_exemplars",
            get(query::query_exemplars).post(query::query_exemplars),
        )
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/config", get(status::config))
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
        .route("/api/v1/admin/tsdb/flush", post(admin::flush).put(admin::flush))
        .route("/metrics", get(metrics::metrics))
        .route("/-/healthy", get(admin::healthy).head(admin::healthy))
        .route("/-/ready", get(admin::ready).head(admin::ready))
        .merge(push_routes());
    finish(routes, state)
}

/// Request counting and the state; bodies are bounded by the decode limits,
/// checked while reading, not by axum's default limit.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .with_state(state)
}

/// The push protocols: Influx line protocol, OTLP/HTTP, Prometheus text import.
fn push_routes() -> Router<AppState> {
    Router::new()
        .route("/write", post(influx::write_v1))
        .route("/api/v2/write", post(influx::write_v2))
        .route("/ping", get(influx::ping).head(influx::ping))
        .route("/v1/metrics", post(otlp::export))
        .route("/api/v1/import/prometheus", post(import::prometheus))
}

/// Only the write side, for `haetae agent --listen`: remote write, the push
/// protocols, health and `/metrics`. `state.appender` receives everything;
/// the read side of `state` is never used.
pub fn push_router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/v1/write", post(remote::write))
        .route("/metrics", get(metrics::metrics))
        .route("/-/healthy", get(admin::healthy).head(admin::healthy))
        .route("/-/ready", get(admin::ready).head(admin::ready))
        .merge(push_routes());
    finish(routes, state)
}

pub use params::tenant_from_headers;
