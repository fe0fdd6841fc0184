//! The configuration file: one YAML document whose sections reuse
//! Prometheus' names where they exist, so an existing `prometheus.yml` loads
//! (sections Haetae does not implement yet are accepted and reported).
//!
//! ```yaml
//! web:
//!   listen_address: 0.0.0.0:9201
//! storage:
//!   tsdb:
//!     path: ./data
//!     retention_time: 15d           # 0 disables
//!     retention_size: 0             # bytes; 0 disables (also "10GB", "512MiB")
//!     out_of_order_time_window: 1h
//!     block_duration: 30m
//!     max_series: 0                 # per tenant; 0 = unlimited
//!     wal_fsync: periodic           # always | periodic | never
//!     wal_fsync_interval: 1s
//!     wal_segment_size: 128MiB
//!     frame_cache_size: 64MiB       # decompressed block data kept for queries; 0 disables
//! limits:
//!   remote_write:
//!     max_body_bytes: 32MiB
//!     max_decompressed_bytes: 128MiB
//!     max_labels_per_series: 64
//!     max_label_name_length: 1024
//!     max_label_value_length: 4096
//! query:
//!   timeout: 2m                     # the `timeout` parameter can only lower it
//!   max_samples: 50000000           # samples in memory at once, per query
//!   max_series: 500000              # series in one result; 0 = unlimited
//!   max_concurrency: 20             # queries evaluated at once; more queue
//!   lookback_delta: 5m
//!   max_query_length: 128KiB
//! self_monitoring:
//!   host_metrics: true              # this host's metrics, node_exporter names, job="node"
//!   scrape_self: true               # the server's own /metrics, job="haetae"
//!   interval: 15s
//! global:                           # Prometheus' global and scrape_configs, as in prometheus.yml
//!   scrape_interval: 15s
//! scrape_configs: []
//! ```
//!
//! Errors name the file, the line and the field.

use anyhow::{anyhow, Context};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP server.
    #[serde(default)]
    pub web: WebConfig,
    /// Storage settings.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// PromQL query limits.
    #[serde(default)]
    pub query: QueryConfig,
    /// What the server collects by itself.
    #[serde(default)]
    pub self_monitoring: SelfMonitoringConfig,
    /// `global` and `scrape_configs`, parsed and validated by the `scrape` crate.
    #[serde(skip)]
    pub scrape: scrape::ScrapeConfigs,
    /// Prometheus' `global` section (scrape defaults; see `scrape`).
    #[serde(default)]
    pub global: Option<serde_norway::Value>,
    /// Prometheus' `scrape_configs` (parsed into `scrape`).
    #[serde(default)]
    pub scrape_configs: Option<serde_norway::Value>,
    /// Prometheus' `rule_files` (accepted, not yet acted upon).
    #[serde(default)]
    pub rule_files: Option<serde_norway::Value>,
    /// Prometheus' `alerting` (accepted, not yet acted upon).
    #[serde(default)]
    pub alerting: Option<serde_norway::Value>,
    /// Prometheus' `remote_write` (accepted, not yet acted upon).
    #[serde(default)]
    pub remote_write: Option<serde_norway::Value>,
    /// Prometheus' `remote_read` (accepted, not yet acted upon).
    #[serde(default)]
    pub remote_read: Option<serde_norway::Value>,
}

/// `self_monitoring:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfMonitoringConfig {
    /// Collect this host's metrics (node_exporter names, `job="node"`).
    #[serde(default = "yes")]
    pub host_metrics: bool,
    /// Scrape the server's own `/metrics` (`job="haetae"`).
    #[serde(default = "yes")]
    pub scrape_self: bool,
    /// How often.
    #[serde(default = "default_self_interval", deserialize_with = "de_duration")]
    pub interval: Duration,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        SelfMonitoringConfig {
            host_metrics: true,
            scrape_self: true,
            interval: default_self_interval(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_self_interval() -> Duration {
    Duration::from_secs(15)
}

/// `web:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    pub listen_address: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: default_listen(),
        }
    }
}

fn default_listen() -> String {
    crate::DEFAULT_LISTEN.to_string()
}

/// `storage:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `storage.tsdb:`
    #[serde(default)]
    pub tsdb: TsdbConfig,
}

/// `storage.tsdb:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsdbConfig {
    /// Data directory.
    #[serde(default = "default_path")]
    pub path: String,
    /// Retention by age.
    #[serde(default = "default_retention", deserialize_with = "de_duration")]
    pub retention_time: Duration,
    /// Retention by size, in bytes.
    #[serde(default, deserialize_with = "de_bytes")]
    pub retention_size: u64,
    /// How late a sample may arrive.
    #[serde(default = "default_ooo", deserialize_with = "de_duration")]
    pub out_of_order_time_window: Duration,
    /// Range of blocks cut from the head.
    #[serde(default = "default_block", deserialize_with = "de_duration")]
    pub block_duration: Duration,
    /// Per-tenant series limit; 0 = unlimited.
    #[serde(default)]
    pub max_series: usize,
    /// `always`, `periodic` or `never`.
    #[serde(default = "default_fsync")]
    pub wal_fsync: String,
    /// Interval of the periodic fsync.
    #[serde(default = "default_fsync_interval", deserialize_with = "de_duration")]
    pub wal_fsync_interval: Duration,
    /// WAL segment size in bytes.
    #[serde(default = "default_segment", deserialize_with = "de_bytes")]
    pub wal_segment_size: u64,
    /// Bytes of decompressed block frames kept for queries; 0 disables.
    #[serde(default = "default_frame_cache", deserialize_with = "de_bytes")]
    pub frame_cache_size: u64,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            path: default_path(),
            retention_time: default_retention(),
            retention_size: 0,
            out_of_order_time_window: default_ooo(),
            block_duration: default_block(),
            max_series: 0,
            wal_fsync: default_fsync(),
            wal_fsync_interval: default_fsync_interval(),
            wal_segment_size: default_segment(),
            frame_cache_size: default_frame_cache(),
        }
    }
}

fn default_path() -> String {
    crate::DEFAULT_DATA_DIR.to_string()
}
fn default_retention() -> Duration {
    Duration::from_secs(15 * 86400)
}
fn default_ooo() -> Duration {
    Duration::from_secs(3600)
}
fn default_block() -> Duration {
    Duration::from_secs(1800)
}
fn default_fsync() -> String {
    "periodic".into()
}
fn default_fsync_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_segment() -> u64 {
    128 << 20
}

fn default_frame_cache() -> u64 {
    tsdb::DEFAULT_FRAME_CACHE_BYTES as u64
}

/// `limits:`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// `limits.remote_write:`
    #[serde(default)]
    pub remote_write: RemoteWriteLimits,
}

/// `limits.remote_write:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteLimits {
    /// Largest compressed body.
    #[serde(default = "d_body", deserialize_with = "de_bytes")]
    pub max_body_bytes: u64,
    /// Largest decompressed body.
    #[serde(default = "d_decompressed", deserialize_with = "de_bytes")]
    pub max_decompressed_bytes: u64,
    /// Most labels per series.
    #[serde(default = "d_labels")]
    pub max_labels_per_series: usize,
    /// Longest label name.
    #[serde(default = "d_name")]
    pub max_label_name_length: usize,
    /// Longest label value.
    #[serde(default = "d_value")]
    pub max_label_value_length: usize,
}

impl Default for RemoteWriteLimits {
    fn default() -> Self {
        RemoteWriteLimits {
            max_body_bytes: d_body(),
            max_decompressed_bytes: d_decompressed(),
            max_labels_per_series: d_labels(),
            max_label_name_length: d_name(),
            max_label_value_length: d_value(),
        }
    }
}

fn d_body() -> u64 {
    wire::DecodeLimits::DEFAULT.max_compressed_bytes as u64
}
fn d_decompressed() -> u64 {
    wire::DecodeLimits::DEFAULT.max_decompressed_bytes as u64
}
fn d_labels() -> usize {
    wire::DecodeLimits::DEFAULT.max_labels_per_series
}
fn d_name() -> usize {
    wire::DecodeLimits::DEFAULT.max_label_name_len
}
fn d_value() -> usize {
    wire::DecodeLimits::DEFAULT.max_label_value_len
}

/// `query:`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// The longest a query may run (queue time included).
    #[serde(default = "d_query_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Samples a query may hold in memory.
    #[serde(default = "d_max_samples")]
    pub max_samples: usize,
    /// Series a result may hold; 0 = unlimited.
    #[serde(default = "d_max_result_series")]
    pub max_series: usize,
    /// Queries evaluated at once.
    #[serde(default = "d_max_concurrency")]
    pub max_concurrency: usize,
    /// How far back an instant selector looks.
    #[serde(default = "d_lookback", deserialize_with = "de_duration")]
    pub lookback_delta: Duration,
    /// Longest query text, in bytes.
    #[serde(default = "d_max_query_length", deserialize_with = "de_bytes")]
    pub max_query_length: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: d_query_timeout(),
            max_samples: d_max_samples(),
            max_series: d_max_result_series(),
            max_concurrency: d_max_concurrency(),
            lookback_delta: d_lookback(),
            max_query_length: d_max_query_length(),
        }
    }
}

fn d_query_timeout() -> Duration {
    Duration::from_secs(120)
}
fn d_max_samples() -> usize {
    50_000_000
}
fn d_max_result_series() -> usize {
    api::QueryLimits::default().max_series
}
fn d_max_concurrency() -> usize {
    20
}
fn d_lookback() -> Duration {
    Duration::from_secs(300)
}
fn d_max_query_length() -> u64 {
    api::QueryLimits::default().max_query_length as u64
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = serde_norway::Value::deserialize(d)?;
    let s = match &v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        _ => {
            return Err(serde::de::Error::custom(
                "expected a duration such as 15d, 1h30m or 500ms",
            ))
        }
    };
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = serde_norway::Value::deserialize(d)?;
    match &v {
        serde_norway::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("expected a byte size")),
        serde_norway::Value::String(s) => parse_bytes(s).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected a byte size such as 512MiB or 10GB")),
    }
}

/// Parses a Prometheus duration (`15d`, `1h30m`, `500ms`; `0` allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let ms = api::params::parse_duration(s).map_err(|e| e.to_string())?;
    if ms < 0 {
        return Err(format!("duration {s:?} is negative"));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Parses a byte size: a number with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("cannot parse byte size {s:?}"))?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0f64.powi(4),
        u => return Err(format!("unknown byte unit {u:?} in {s:?}")),
    };
    Ok((n * mult) as u64)
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    /// Parses and validates configuration text. Errors carry the line and field.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(loc) => {
                // Name the field on the offending line: custom value errors don't.
                let key = text
                    .lines()
                    .nth(loc.line().saturating_sub(1))
                    .and_then(|l| l.split_once(':'))
                    .map(|(k, _)| k.trim().trim_start_matches("- ").to_string())
                    .filter(|k| !k.is_empty() && !e.to_string().contains(k.as_str()));
                match key {
                    Some(k) => format!("line {}, column {}: field {k:?}: {e}", loc.line(), loc.column()),
                    None => format!("line {}, column {}: {e}", loc.line(), loc.column()),
                }
            }
            None => e.to_string(),
        })?;
        config.validate()?;
        let mut config = config;
        config.scrape = scrape::ScrapeConfigs::from_yaml(text).map_err(|e| e.to_string())?;
        for (name, present) in [
            ("rule_files", config.rule_files.is_some()),
            ("alerting", config.alerting.is_some()),
            ("remote_write", config.remote_write.is_some()),
            ("remote_read", config.remote_read.is_some()),
        ] {
            if present {
                tracing::warn!(
                    section = name,
                    "configuration section is accepted but not implemented yet"
                );
            }
        }
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        let t = &self.storage.tsdb;
        match t.wal_fsync.as_str() {
            "always" | "periodic" | "never" => {}
            other => {
                return Err(format!(
                    "storage.tsdb.wal_fsync: must be always, periodic or never, got {other:?}"
                ));
            }
        }
        if t.block_duration < Duration::from_secs(60) {
            return Err("storage.tsdb.block_duration: must be at least 1m".into());
        }
        if t.wal_fsync == "periodic" && t.wal_fsync_interval.is_zero() {
            return Err("storage.tsdb.wal_fsync_interval: must be positive with wal_fsync: periodic".into());
        }
        if t.wal_segment_size < (1 << 20) {
            return Err("storage.tsdb.wal_segment_size: must be at least 1MiB".into());
        }
        let q = &self.query;
        if q.timeout.is_zero() {
            return Err("query.timeout: must be positive".into());
        }
        if q.max_concurrency == 0 || q.max_concurrency > 1024 {
            return Err("query.max_concurrency: must be between 1 and 1024".into());
        }
        if q.max_samples == 0 {
            return Err("query.max_samples: must be positive".into());
        }
        if q.lookback_delta.is_zero() {
            return Err("query.lookback_delta: must be positive".into());
        }
        Ok(())
    }

    /// The storage options this configuration asks for.
    pub fn db_options(&self) -> tsdb::DbOptions {
        let t = &self.storage.tsdb;
        let fsync = match t.wal_fsync.as_str() {
            "always" => tsdb::FsyncPolicy::Always,
            "never" => tsdb::FsyncPolicy::Never,
            _ => tsdb::FsyncPolicy::Periodic(t.wal_fsync_interval),
        };
        tsdb::DbOptions {
            block_range_ms: t.block_duration.as_millis() as i64,
            out_of_order_window_ms: t.out_of_order_time_window.as_millis() as i64,
            retention_ms: t.retention_time.as_millis() as i64,
            retention_bytes: t.retention_size,
            max_series: t.max_series,
            wal: tsdb::WalOptions {
                segment_size: t.wal_segment_size,
                fsync,
            },
            frame_cache: std::sync::Arc::new(tsdb::SharedFrameCache::new(
                usize::try_from(t.frame_cache_size).unwrap_or(usize::MAX),
            )),
            ..tsdb::DbOptions::default()
        }
    }

    /// The query limits this configuration asks for.
    pub fn query_limits(&self) -> api::QueryLimits {
        let q = &self.query;
        api::QueryLimits {
            engine: promql::EngineOptions {
                lookback_delta_ms: q.lookback_delta.as_millis() as i64,
                max_samples: q.max_samples,
                timeout: q.timeout,
                ..promql::EngineOptions::default()
            },
            max_series: q.max_series,
            max_concurrency: q.max_concurrency,
            max_query_length: usize::try_from(q.max_query_length).unwrap_or(usize::MAX),
        }
    }

    /// The API limits this configuration asks for.
    pub fn api_limits(&self) -> api::ApiLimits {
        let rw = &self.limits.remote_write;
        api::ApiLimits {
            decode: wire::DecodeLimits {
                max_compressed_bytes: rw.max_body_bytes as usize,
                max_decompressed_bytes: rw.max_decompressed_bytes as usize,
                max_labels_per_series: rw.max_labels_per_series,
                max_label_name_len: rw.max_label_name_length,
                max_label_value_len: rw.max_label_value_length,
            },
            ..api::ApiLimits::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_values() {
        let c = Config::parse(
            "storage:\n  tsdb:\n    retention_time: 30d\n    retention_size: 10GB\n    wal_fsync: always\n",
        )
        .unwrap();
        assert_eq!(c.storage.tsdb.retention_time, Duration::from_secs(30 * 86400));
        assert_eq!(c.storage.tsdb.retention_size, 10_000_000_000);
        assert_eq!(c.db_options().wal.fsync, tsdb::FsyncPolicy::Always);
        assert!(Config::parse("").is_ok());
        assert!(Config::parse("global:\n  scrape_interval: 15s\nscrape_configs: []\n").is_ok());
    }

    #[test]
    fn errors_name_line_and_field() {
        let e = Config::parse("storage:\n  tsdb:\n    retention_time: soon\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("retention_time"), "{e}");
        let e = Config::parse("storage:\n  tsdb:\n    bogus: 1\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("bogus"), "{e}");
        let e = Config::parse("storage:\n  tsdb:\n    wal_fsync: sometimes\n").unwrap_err();
        assert!(e.contains("storage.tsdb.wal_fsync"), "{e}");
    }
}
