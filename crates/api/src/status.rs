//! Prometheus' status endpoints about the server itself:
//! `/api/v1/status/buildinfo`, `/status/flags`, `/status/runtimeinfo` and
//! `/status/config`.
//!
//! Layer 4. The server fills a [`ServerInfo`] once at start (the config text
//! arrives with its secrets already redacted); the handlers only render it.

use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

/// What the status endpoints report, filled by the server at start.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// The release, e.g. `0.1.0` (clients such as Grafana parse it).
    pub version: String,
    /// The source revision, or `unknown`.
    pub revision: String,
    /// The source branch, or `unknown`.
    pub branch: String,
    /// Who built the binary.
    pub build_user: String,
    /// When the binary was built.
    pub build_date: String,
    /// The compiler, in the place of Prometheus' `goVersion`.
    pub compiler_version: String,
    /// Start time, RFC 3339.
    pub start_time: String,
    /// The working directory at start.
    pub cwd: String,
    /// When the configuration was loaded, RFC 3339.
    pub last_config_time: String,
    /// Retention as Prometheus prints it (`15d`, `10GB`, `15d or 10GB`).
    pub storage_retention: String,
    /// Effective settings under Prometheus' flag names where one exists.
    pub flags: Vec<(String, String)>,
    /// The configuration as YAML, with secrets replaced by `<secret>`.
    pub config_yaml: String,
}

impl ServerInfo {
    /// Build facts of this binary; the server fills in the rest.
    pub fn for_this_build() -> Self {
        ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            revision: option_env!("HAETAE_GIT_REVISION").unwrap_or("unknown").to_string(),
            branch: option_env!("HAETAE_GIT_BRANCH").unwrap_or("unknown").to_string(),
            build_user: option_env!("HAETAE_BUILD_USER").unwrap_or("unknown").to_string(),
            build_date: option_env!("HAETAE_BUILD_DATE").unwrap_or("unknown").to_string(),
            compiler_version: option_env!("HAETAE_RUSTC_VERSION").unwrap_or("rust").to_string(),
            ..ServerInfo::default()
        }
    }
}

fn success(data: Value) -> Json<Value> {
    Json(json!({"status": "success", "data": data}))
}

pub(crate) async fn buildinfo(State(state): State<AppState>) -> Json<Value> {
    let i = &state.info;
    success(json!({
        "version": i.version,
        "revision": i.revision,
        "branch": i.branch,
        "buildUser": i.build_user,
        "buildDate": i.build_date,
        "goVersion": i.compiler_version,
    }))
}

pub(crate) async fn flags(State(state): State<AppState>) -> Json<Value> {
    let mut m = Map::new();
    for (k, v) in &state.info.flags {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    success(Value::Object(m))
}

pub(crate) async fn runtimeinfo(State(state): State<AppState>) -> Json<Value> {
    let i = &state.info;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    success(json!({
        "startTime": i.start_time,
        "CWD": i.cwd,
        "reloadConfigSuccess": true,
        "lastConfigTime": i.last_config_time,
        "corruptionCount": 0,
        "goroutineCount": 0,
        "GOMAXPROCS": threads,
        "GOGC": "",
        "GODEBUG": "",
        "storageRetention": i.storage_retention,
    }))
}

pub(crate) async fn config(State(state): State<AppState>) -> Json<Value> {
    success(json!({"yaml": state.info.config_yaml}))
}
