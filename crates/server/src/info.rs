//! Builds the [`api::ServerInfo`] the status endpoints report: build facts,
//! start time, effective settings under Prometheus' flag names, and the
//! configuration text with its secrets redacted.
//!
//! Layer 5. Redaction follows Prometheus' `Secret` fields: any key that
//! names a password, token, credential or private key is shown as `<secret>`;
//! `*_file` keys (paths to secrets) are kept.

use crate::Config;
use std::path::Path;

/// The placeholder Prometheus shows for secrets.
const SECRET: &str = "<secret>";

/// Whether a configuration key holds a secret value.
fn is_secret_key(key: &str) -> bool {
    if key.ends_with("_file") {
        return false;
    }
    matches!(
        key,
        "password"
            | "bearer_token"
            | "credentials"
            | "client_secret"
            | "secret_key"
            | "api_key"
            | "auth_token"
            | "token"
            | "key"
            | "routing_key"
            | "service_key"
            | "api_url"
            | "webhook_url"
            | "auth_password"
            | "auth_secret"
    ) || key.ends_with("_password")
        || key.ends_with("_secret")
        || key.ends_with("_token")
}

fn redact(value: &mut serde_norway::Value) {
    match value {
        serde_norway::Value::Mapping(m) => {
            for (k, v) in m.iter_mut() {
                let secret = k.as_str().is_some_and(is_secret_key);
                if secret && !v.is_null() {
                    *v = serde_norway::Value::String(SECRET.into());
                } else {
                    redact(v);
                }
            }
        }
        serde_norway::Value::Sequence(s) => s.iter_mut().for_each(redact),
        serde_norway::Value::Tagged(t) => redact(&mut t.value),
        _ => {}
    }
}

/// The configuration text with every secret replaced by `<secret>`. Text
/// that does not parse is not shown at all (it could not have been loaded).
pub(crate) fn redacted_config_yaml(text: &str) -> String {
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(serde_norway::Value::Null) => String::new(),
        Ok(mut v) => {
            redact(&mut v);
            serde_norway::to_string(&v).unwrap_or_default()
        }
        Err(_) => String::new(),
    }
}

/// A duration as Prometheus prints one (`15d`, `2m`, `1h30m`, `0s`).
fn format_duration(d: std::time::Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [
        ("y", 365 * 86_400_000u64),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ] {
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

/// Everything the status endpoints report about this process.
pub(crate) fn server_info(
    config: &Config,
    config_text: Option<&str>,
    data_dir: &Path,
    listen: &str,
) -> api::ServerInfo {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let t = &config.storage.tsdb;
    let q = &config.query;
    let retention = match (t.retention_time.is_zero(), t.retention_size) {
        (true, 0) => "unlimited".to_string(),
        (false, 0) => format_duration(t.retention_time),
        (true, b) => format!("{b}B"),
        (false, b) => format!("{} or {b}B", format_duration(t.retention_time)),
    };
    let flags = [
        ("config.file", config_text.map(|_| "set").unwrap_or("").to_string()),
        ("web.listen-address", listen.to_string()),
        ("storage.tsdb.path", data_dir.display().to_string()),
        ("storage.tsdb.retention.time", format_duration(t.retention_time)),
        ("storage.tsdb.retention.size", t.retention_size.to_string()),
        (
            "storage.tsdb.out-of-order-time-window",
            format_duration(t.out_of_order_time_window),
        ),
        ("query.timeout", format_duration(q.timeout)),
        ("query.max-samples", q.max_samples.to_string()),
        ("query.max-series", q.max_series.to_string()),
        ("query.max-concurrency", q.max_concurrency.to_string()),
        ("query.lookback-delta", format_duration(q.lookback_delta)),
        ("web.enable-remote-write-receiver", "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    api::ServerInfo {
        start_time: now.clone(),
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        last_config_time: now,
        storage_retention: retention,
        flags,
        config_yaml: config_text.map(redacted_config_yaml).unwrap_or_default(),
        ..api::ServerInfo::for_this_build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let text = "scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password: hunter2\n      password_file: /etc/p\n    authorization:\n      credentials: abc\nstorage:\n  tsdb:\n    path: /data\n";
        let out = redacted_config_yaml(text);
        assert!(!out.contains("hunter2") && !out.contains("abc"), "{out}");
        assert!(
            out.contains("<secret>") && out.contains("/etc/p") && out.contains("/data"),
            "{out}"
        );
    }

    #[test]
    fn durations_print_like_prometheus() {
        assert_eq!(format_duration(std::time::Duration::from_secs(15 * 86400)), "2w1d");
        assert_eq!(format_duration(std::time::Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(std::time::Duration::ZERO), "0s");
    }
}
