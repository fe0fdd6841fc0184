//! The `global` and `scrape_configs` sections of a `prometheus.yml`, read as
//! they are and validated.
//!
//! Layer 3. Owns the configuration types and their defaults and checks; the
//! server owns the file (its other sections, reloading, reporting).
//!
//! - Defaults follow Prometheus 2.42: `scrape_interval` 1m and
//!   `scrape_timeout` 10s globally (the timeout is capped at the interval),
//!   each job inheriting the global values; `metrics_path` `/metrics`,
//!   `scheme` `http`, `honor_timestamps` true.
//! - Validation errors name the job and the field; YAML errors carry the
//!   line and column. Both are placed on the field's own line when read
//!   from text (`locate`): serde reports value errors at the job's line.
//! - Secrets (`password`, `credentials`, `bearer_token`) are [`Secret`]s:
//!   `Debug`, `Display` and serialization print `<secret>`, so
//!   [`ScrapeConfigs::redacted_yaml`] can be shown on a status page.

mod locate;

use crate::relabel::RelabelConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration the scraper refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The YAML does not match the expected structure; the message names
    /// the field and, when read from text, the line and column.
    #[error("{0}")]
    Yaml(String),
    /// A field of a job has an invalid value.
    #[error("scrape_configs: job {job:?}: {field}: {reason}")]
    Invalid {
        /// The job's `job_name`.
        job: String,
        /// The field, with its path inside the job (e.g. `static_configs[0].targets`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Two jobs with the same name.
    #[error("scrape_configs: found multiple scrape configs with job name {0:?}")]
    DuplicateJob(String),
    /// A field of the `global` section has an invalid value.
    #[error("global: {field}: {reason}")]
    Global {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// [`crate::ScrapeManager::apply_config`] was called outside a Tokio runtime.
    #[error("the scrape manager must be configured from within a Tokio runtime")]
    NoRuntime,
}

/// A duration written as Prometheus does: `15s`, `1m30s`, `500ms`, `1h`,
/// `2d`, `1w`, `1y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    /// Parses `1h30m`-style text.
    pub fn parse(text: &str) -> Result<PromDuration, String> {
        let bad = || format!("not a valid duration string: {text:?}");
        if text == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        if text.is_empty() {
            return Err(bad());
        }
        // Largest to smallest; each unit at most once, in this order.
        const UNITS: [(&str, u64); 7] = [
            ("y", 31_536_000_000),
            ("w", 604_800_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("ms", 1),
            ("m", 60_000),
            ("s", 1_000),
        ];
        const ORDER: [usize; 7] = [0, 1, 2, 3, 6, 4, 5];
        let mut rest = text;
        let mut total_ms: u64 = 0;
        let mut last_order: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            // "ms" is tried before "m".
            let i = UNITS.iter().position(|(u, _)| rest.starts_with(u)).ok_or_else(bad)?;
            if last_order.is_some_and(|o| ORDER[i] <= o) {
                return Err(bad());
            }
            last_order = Some(ORDER[i]);
            rest = &rest[UNITS[i].0.len()..];
            total_ms = n
                .checked_mul(UNITS[i].1)
                .and_then(|v| total_ms.checked_add(v))
                .ok_or_else(bad)?;
        }
        Ok(PromDuration(Duration::from_millis(total_ms)))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for PromDuration {
    /// Formats as Prometheus does: `1m`, `15s`, `1h30m`, `500ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        let units = [
            ("y", 31_536_000_000u64),
            ("w", 604_800_000),
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ];
        for (name, unit) in units {
            if ms >= unit {
                write!(f, "{}{name}", ms / unit)?;
                ms %= unit;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A password or token: printed and serialized as `<secret>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

fn default_global_interval() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}

/// The `global` section; fields other than the ones scraping uses are
/// accepted and kept in `other`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GlobalConfig {
    /// Default scrape interval; 1m.
    #[serde(default = "default_global_interval")]
    pub scrape_interval: PromDuration,
    /// Default scrape timeout; 10s, or the interval if that is shorter.
    #[serde(default)]
    pub scrape_timeout: Option<PromDuration>,
    /// Labels added to series and alerts leaving this server (kept here for
    /// the server; scraping does not add them to stored series).
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Other `global` fields (`evaluation_interval`, ...), not used here.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_norway::Value>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: default_global_interval(),
            scrape_timeout: None,
            external_labels: BTreeMap::new(),
            other: BTreeMap::new(),
        }
    }
}

impl GlobalConfig {
    /// The effective default timeout: as configured, else min(10s, interval).
    pub fn effective_scrape_timeout(&self) -> PromDuration {
        self.scrape_timeout
            .unwrap_or(PromDuration(Duration::from_secs(10).min(self.scrape_interval.0)))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.scrape_interval.0.is_zero() {
            return Err(ConfigError::Global {
                field: "scrape_interval",
                reason: "must be greater than 0".into(),
            });
        }
        if self.effective_scrape_timeout() > self.scrape_interval {
            return Err(ConfigError::Global {
                field: "scrape_timeout",
                reason: format!(
                    "global scrape timeout {} greater than scrape interval {}",
                    self.effective_scrape_timeout(),
                    self.scrape_interval
                ),
            });
        }
        for name in self.external_labels.keys() {
            if !crate::exposition::is_valid_label_name(name) {
                return Err(ConfigError::Global {
                    field: "external_labels",
                    reason: format!("{name:?} is not a valid label name"),
                });
            }
        }
        Ok(())
    }
}

/// `basic_auth:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// A file whose content (trailing newline trimmed) is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

/// `authorization:` — sends `Authorization: <type> <credentials>`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme; default `Bearer`.
    #[serde(default = "default_auth_type", rename = "type")]
    pub auth_type: String,
    /// The credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    /// A file whose content (trailing newline trimmed) is the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

/// `tls_config:`
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA bundle used to verify the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Skips verification of the target's certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The name to verify the certificate against. Accepted; the HTTP client
    /// verifies against the host of the URL (FIXME: not honoured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Minimum TLS version (`TLS12`, `TLS13`); accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
}

/// `static_configs:` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// `host:port` addresses.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Labels for all of them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_file_refresh() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

/// `file_sd_configs:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Globs of `.json`, `.yml` or `.yaml` files; only the last path
    /// component may hold a wildcard, as in Prometheus.
    pub files: Vec<String>,
    /// How often files are re-read even without a change; default 5m.
    #[serde(default = "default_file_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_http_refresh() -> PromDuration {
    PromDuration(Duration::from_secs(60))
}

/// `http_sd_configs:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    /// The URL returning a JSON list of `{targets, labels}`.
    pub url: String,
    /// Poll period; default 1m.
    #[serde(default = "default_http_refresh")]
    pub refresh_interval: PromDuration,
}

/// The record type of a `dns_sd_configs` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum DnsRecordType {
    /// SRV records: targets are `target:port` from the records.
    #[default]
    #[serde(rename = "SRV")]
    Srv,
    /// A records: targets are `ip:port` with the configured port.
    A,
    /// AAAA records: targets are `[ip]:port` with the configured port.
    #[serde(rename = "AAAA")]
    Aaaa,
}

fn default_dns_refresh() -> PromDuration {
    PromDuration(Duration::from_secs(30))
}

/// `dns_sd_configs:` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    /// Names to query.
    pub names: Vec<String>,
    /// Record type; default SRV.
    #[serde(default, rename = "type")]
    pub record_type: DnsRecordType,
    /// Port for A/AAAA targets (required for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Re-query period; default 30s.
    #[serde(default = "default_dns_refresh")]
    pub refresh_interval: PromDuration,
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

fn default_scheme() -> String {
    "http".to_string()
}

fn default_true() -> bool {
    true
}

/// One entry of `scrape_configs:`. After [`ScrapeConfigs`] loads it,
/// `scrape_interval` and `scrape_timeout` are always set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The job name, the `job` label of its targets; unique.
    pub job_name: String,
    /// Time between scrapes; default the global one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<PromDuration>,
    /// Time allowed per scrape; default the global one (capped at the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<PromDuration>,
    /// Path scraped; default `/metrics`.
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// `http` or `https`.
    #[serde(default = "default_scheme")]
    pub scheme: String,
    /// URL query parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// On a conflict between a scraped label and a target label, keep the
    /// scraped one (else it is renamed `exported_<name>`).
    #[serde(default)]
    pub honor_labels: bool,
    /// Use timestamps present in the scraped data; default true.
    #[serde(default = "default_true")]
    pub honor_timestamps: bool,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `Authorization` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    /// Legacy form of `authorization: {credentials}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// Legacy form of `authorization: {credentials_file}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// Follow HTTP redirects; default true.
    #[serde(default = "default_true")]
    pub follow_redirects: bool,
    /// Accepted for compatibility; HTTP/1.1 is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_http2: Option<bool>,
    /// Largest uncompressed body accepted (`10MB`, `512KiB`, bytes); 0 = no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size_limit: Option<serde_norway::Value>,
    /// More samples than this after metric relabeling fail the scrape; 0 = no limit.
    #[serde(default)]
    pub sample_limit: usize,
    /// More targets than this after relabeling are refused (accepted; not enforced).
    #[serde(default)]
    pub target_limit: usize,
    /// More labels per series fail the scrape; 0 = no limit.
    #[serde(default)]
    pub label_limit: usize,
    /// A longer label name fails the scrape; 0 = no limit.
    #[serde(default)]
    pub label_name_length_limit: usize,
    /// A longer label value fails the scrape; 0 = no limit.
    #[serde(default)]
    pub label_value_length_limit: usize,
    /// Fixed targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    /// Targets from files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    /// Targets from an HTTP endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// Targets from DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_sd_configs: Vec<DnsSdConfig>,
    /// Relabeling of discovered targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabeling of scraped series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl ScrapeConfig {
    /// The interval; the global default if the job did not set one.
    pub fn interval(&self) -> Duration {
        self.scrape_interval.map_or(Duration::from_secs(60), |d| d.0)
    }

    /// The timeout; the global default if the job did not set one.
    pub fn timeout(&self) -> Duration {
        self.scrape_timeout.map_or(Duration::from_secs(10), |d| d.0)
    }

    /// The body size limit in bytes (0 = none).
    pub fn body_size_limit_bytes(&self) -> Result<u64, String> {
        match &self.body_size_limit {
            None => Ok(0),
            Some(serde_norway::Value::Number(n)) => n.as_u64().ok_or_else(|| format!("invalid size {n}")),
            Some(serde_norway::Value::String(s)) => parse_size(s),
            Some(other) => Err(format!("invalid size {other:?}")),
        }
    }

    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            job: self.job_name.clone(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Fills in defaults from `global` and checks every field.
    fn resolve(&mut self, global: &GlobalConfig) -> Result<(), ConfigError> {
        if self.job_name.is_empty() {
            return Err(self.invalid("job_name", "must not be empty"));
        }
        let interval = self.scrape_interval.unwrap_or(global.scrape_interval);
        let timeout = self.scrape_timeout.unwrap_or_else(|| {
            let t = global.effective_scrape_timeout();
            t.min(interval)
        });
        self.scrape_interval = Some(interval);
        self.scrape_timeout = Some(timeout);
        if interval.0.is_zero() {
            return Err(self.invalid("scrape_interval", "must be greater than 0"));
        }
        if timeout.0.is_zero() {
            return Err(self.invalid("scrape_timeout", "must be greater than 0"));
        }
        if timeout > interval {
            return Err(self.invalid(
                "scrape_timeout",
                format!("scrape timeout {timeout} greater than scrape interval {interval}"),
            ));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(self.invalid("scheme", format!("{:?} is not http or https", self.scheme)));
        }
        if !self.metrics_path.starts_with('/') {
            return Err(self.invalid("metrics_path", format!("{:?} must start with /", self.metrics_path)));
        }
        self.body_size_limit_bytes()
            .map_err(|e| self.invalid("body_size_limit", e))?;
        self.validate_auth()?;
        for (i, sc) in self.static_configs.iter().enumerate() {
            for t in &sc.targets {
                if t.is_empty() || t.contains('/') {
                    return Err(self.invalid(
                        format!("static_configs[{i}].targets"),
                        format!("{t:?} is not a valid host:port address"),
                    ));
                }
            }
            for name in sc.labels.keys() {
                if !crate::exposition::is_valid_label_name(name) {
                    return Err(self.invalid(
                        format!("static_configs[{i}].labels"),
                        format!("{name:?} is not a valid label name"),
                    ));
                }
            }
        }
        for (i, f) in self.file_sd_configs.iter().enumerate() {
            for pattern in &f.files {
                let ok_ext = [".json", ".yml", ".yaml"].iter().any(|e| pattern.ends_with(e));
                if !ok_ext {
                    return Err(self.invalid(
                        format!("file_sd_configs[{i}].files"),
                        format!("{pattern:?}: only .json, .yml and .yaml files are supported"),
                    ));
                }
                if let Err(e) = glob::Pattern::new(pattern) {
                    return Err(self.invalid(format!("file_sd_configs[{i}].files"), format!("{pattern:?}: {e}")));
                }
            }
            if f.refresh_interval.0.is_zero() {
                return Err(self.invalid(
                    format!("file_sd_configs[{i}].refresh_interval"),
                    "must be greater than 0",
                ));
            }
        }
        for (i, h) in self.http_sd_configs.iter().enumerate() {
            match reqwest::Url::parse(&h.url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                Ok(_) => {
                    return Err(self.invalid(format!("http_sd_configs[{i}].url"), "URL scheme must be http or https"))
                }
                Err(e) => return Err(self.invalid(format!("http_sd_configs[{i}].url"), format!("{:?}: {e}", h.url))),
            }
            if h.refresh_interval.0.is_zero() {
                return Err(self.invalid(
                    format!("http_sd_configs[{i}].refresh_interval"),
                    "must be greater than 0",
                ));
            }
        }
        for (i, d) in self.dns_sd_configs.iter().enumerate() {
            if d.names.is_empty() {
                return Err(self.invalid(format!("dns_sd_configs[{i}].names"), "at least one name is required"));
            }
            if d.record_type != DnsRecordType::Srv && d.port.is_none() {
                return Err(self.invalid(
                    format!("dns_sd_configs[{i}].port"),
                    "a port is required for A and AAAA records",
                ));
            }
            if d.refresh_interval.0.is_zero() {
                return Err(self.invalid(
                    format!("dns_sd_configs[{i}].refresh_interval"),
                    "must be greater than 0",
                ));
            }
        }
        for (field, list) in [
            ("relabel_configs", &self.relabel_configs),
            ("metric_relabel_configs", &self.metric_relabel_configs),
        ] {
            for (i, r) in list.iter().enumerate() {
                r.validate()
                    .map_err(|e| self.invalid(format!("{field}[{i}]"), e.to_string()))?;
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(self.invalid(
                "bearer_token",
                "at most one of bearer_token and bearer_token_file may be set",
            ));
        }
        let methods = [self.basic_auth.is_some(), self.authorization.is_some(), bearer];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(self.invalid(
                "authorization",
                "at most one of basic_auth, authorization and bearer_token(_file) may be set",
            ));
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return Err(self.invalid("basic_auth", "at most one of password and password_file may be set"));
            }
        }
        if let Some(a) = &self.authorization {
            if a.auth_type.eq_ignore_ascii_case("basic") {
                return Err(self.invalid(
                    "authorization.type",
                    "use basic_auth instead of authorization type Basic",
                ));
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(self.invalid(
                    "authorization",
                    "at most one of credentials and credentials_file may be set",
                ));
            }
        }
        if let Some(t) = &self.tls_config {
            if t.cert_file.is_some() != t.key_file.is_some() {
                return Err(self.invalid("tls_config", "cert_file and key_file must be set together"));
            }
        }
        Ok(())
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: u64 = match &s[split..] {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {s:?} too large"))
}

/// `global` + `scrape_configs`, loaded, defaulted and validated.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ScrapeConfigs {
    /// The global section.
    pub global: GlobalConfig,
    /// The jobs, each with interval and timeout filled in.
    pub scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct Sections {
    #[serde(default)]
    global: Option<GlobalConfig>,
    #[serde(default)]
    scrape_configs: Option<Vec<ScrapeConfig>>,
}

impl ScrapeConfigs {
    /// Reads the `global` and `scrape_configs` sections of a whole YAML
    /// file (other top-level keys are ignored). Errors carry line numbers.
    pub fn from_yaml(text: &str) -> Result<ScrapeConfigs, ConfigError> {
        let sections: Sections =
            serde_norway::from_str(text).map_err(|e| locate::place(text, ConfigError::Yaml(e.to_string())))?;
        Self::build(
            sections.global.unwrap_or_default(),
            sections.scrape_configs.unwrap_or_default(),
        )
        .map_err(|e| locate::place(text, e))
    }

    /// Builds from already-parsed YAML values (as the server's config holds
    /// them). Errors name the field but not the line; prefer
    /// [`ScrapeConfigs::from_yaml`] when the text is at hand.
    pub fn from_values(
        global: Option<&serde_norway::Value>,
        scrape_configs: Option<&serde_norway::Value>,
    ) -> Result<ScrapeConfigs, ConfigError> {
        let global: GlobalConfig = match global {
            Some(v) if !v.is_null() => {
                serde_norway::from_value(v.clone()).map_err(|e| ConfigError::Yaml(format!("global: {e}")))?
            }
            _ => GlobalConfig::default(),
        };
        let jobs: Vec<ScrapeConfig> = match scrape_configs {
            Some(v) if !v.is_null() => {
                serde_norway::from_value(v.clone()).map_err(|e| ConfigError::Yaml(format!("scrape_configs: {e}")))?
            }
            _ => Vec::new(),
        };
        Self::build(global, jobs)
    }

    /// Validates and fills in defaults.
    pub fn build(global: GlobalConfig, mut jobs: Vec<ScrapeConfig>) -> Result<ScrapeConfigs, ConfigError> {
        global.validate()?;
        let mut names = HashSet::new();
        for job in &mut jobs {
            if !names.insert(job.job_name.clone()) {
                return Err(ConfigError::DuplicateJob(job.job_name.clone()));
            }
            job.resolve(&global)?;
        }
        Ok(ScrapeConfigs {
            global,
            scrape_configs: jobs,
        })
    }

    /// The configuration as YAML with every secret shown as `<secret>`.
    pub fn redacted_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests;
