//! Shared by the push-endpoint tests: an [`api::AppState`] over
//! [`storage_api::MemStorage`], with trivial admin and metadata handlers,
//! and helpers to read series back.
#![allow(dead_code, unreachable_pub)]

use api::{AdminHandler, AppState, MetricsWriter, TsdbStatus};
use model::{Labels, Matcher, TenantId};
use std::sync::{Arc, Mutex};
use storage_api::{MemStorage, MetadataStore, MetricMetadata, Queryable, SelectHints, StorageError};

/// Admin operations that do nothing.
pub struct NoAdmin;

impl AdminHandler for NoAdmin {
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn snapshot(&self, _skip_head: bool) -> Result<String, StorageError> {
        Ok(String::new())
    }
    fn delete_series(&self, _: &TenantId, _: &[Matcher], _: i64, _: i64) -> Result<(), StorageError> {
        Ok(())
    }
    fn clean_tombstones(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn tsdb_status(&self, _: &TenantId, _: usize) -> TsdbStatus {
        TsdbStatus::default()
    }
    fn write_metrics(&self, _: &mut MetricsWriter) {}
}

/// Metadata kept in a list, latest last.
#[derive(Default)]
pub struct ListMetadata(pub Mutex<Vec<MetricMetadata>>);

impl MetadataStore for ListMetadata {
    fn put_metadata(&self, _: &TenantId, metadata: Vec<MetricMetadata>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend(metadata);
    }
    fn metadata(&self, _: &TenantId, _: Option<&str>, _: Option<usize>) -> Vec<MetricMetadata> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub struct TestServer {
    pub storage: MemStorage,
    pub metadata: Arc<ListMetadata>,
    pub state: AppState,
}

pub fn test_server() -> TestServer {
    let storage = MemStorage::new();
    let metadata = Arc::new(ListMetadata::default());
    let state = AppState {
        appender: Arc::new(storage.clone()),
        queryable: Arc::new(storage.clone()),
        metadata: metadata.clone(),
        admin: Arc::new(NoAdmin),
        metrics: Arc::new(api::ApiMetrics::default()),
        limits: Arc::new(api::ApiLimits::default()),
        ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        query: Arc::new(api::QueryService::new(api::QueryLimits::default()).expect("query threads")),
        info: Arc::new(api::ServerInfo::default()),
        push: Arc::new(api::PushState::default()),
    };
    TestServer {
        storage,
        metadata,
        state,
    }
}

impl TestServer {
    /// Every series of `tenant` with its samples, rendered one per line as
    /// `labels t=v t=v`, sorted by labels.
    pub fn dump_tenant(&self, tenant: &str) -> String {
        let tenant = TenantId::new(tenant).expect("tenant");
        let querier = self.storage.querier(&tenant).expect("querier");
        let all = Matcher::new(model::MatchOp::RegexMatch, "__name__", ".+").expect("matcher");
        let series = querier
            .select(&[all], &SelectHints::range(i64::MIN, i64::MAX))
            .expect("select");
        let mut out = String::new();
        for s in series {
            out.push_str(&s.labels.to_string());
            for sample in &s.samples {
                let v = if model::is_stale_nan(sample.v) {
                    "stale".to_string()
                } else {
                    sample.v.to_string()
                };
                out.push_str(&format!(" {}={v}", sample.t));
            }
            out.push('\n');
        }
        out
    }

    pub fn dump(&self) -> String {
        self.dump_tenant("default")
    }

    /// Series of the default tenant, labels only.
    pub fn series(&self) -> Vec<Labels> {
        let querier = self.storage.querier(&TenantId::default()).expect("querier");
        let all = Matcher::new(model::MatchOp::RegexMatch, "__name__", ".+").expect("matcher");
        querier
            .select(&[all], &SelectHints::range(i64::MIN, i64::MAX))
            .expect("select")
            .into_iter()
            .map(|s| s.labels)
            .collect()
    }
}

/// Sends one request through the router and returns status, headers and body.
pub async fn send(
    state: &AppState,
    req: axum::http::Request<axum::body::Body>,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use tower::ServiceExt;
    let resp = api::router(state.clone()).oneshot(req).await.expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, headers, body.to_vec())
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}
