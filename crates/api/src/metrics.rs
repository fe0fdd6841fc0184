//! Self-monitoring: the API's own counters and the `/metrics` endpoint in
//! Prometheus text format 0.0.4. Metric names follow
//! `haetae_<subsystem>_<name>_<unit>[_total]`.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the HTTP layer.
#[derive(Debug, Default)]
pub struct ApiMetrics {
    /// Requests by (route, status code).
    pub requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// Remote-write requests received.
    pub remote_write_requests: AtomicU64,
    /// Samples received by remote write (before validation).
    pub remote_write_samples: AtomicU64,
    /// Samples and series refused by the API layer, by reason.
    pub remote_write_rejected: Mutex<BTreeMap<&'static str, u64>>,
    /// Remote-read requests served.
    pub remote_read_requests: AtomicU64,
}

impl ApiMetrics {
    /// Counts a refusal.
    pub fn reject(&self, reason: &'static str, n: u64) {
        *self.remote_write_rejected.lock().entry(reason).or_default() += n;
    }
}

/// Writes metric families in the Prometheus text format.
#[derive(Default)]
pub struct MetricsWriter {
    out: String,
}

impl MetricsWriter {
    /// Starts a family: `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes one sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.out, "{k}=\"{escaped}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Counts every request by matched route and status.
pub(crate) async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "other".into());
    let resp = next.run(req).await;
    *state
        .metrics
        .requests
        .lock()
        .entry((route, resp.status().as_u16()))
        .or_default() += 1;
    resp
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut w = MetricsWriter::default();
    let m = &state.metrics;
    w.family(
        "haetae_http_requests_total",
        "counter",
        "HTTP requests by route and status code.",
    );
    for ((route, code), n) in m.requests.lock().iter() {
        w.sample(
            "haetae_http_requests_total",
            &[("handler", route), ("code", &code.to_string())],
            *n as f64,
        );
    }
    w.single(
        "haetae_remote_write_requests_total",
        "counter",
        "Remote-write requests received.",
        m.remote_write_requests.load(Ordering::Relaxed) as f64,
    );
    w.single(
        "haetae_remote_write_samples_received_total",
        "counter",
        "Samples received by remote write, before validation.",
        m.remote_write_samples.load(Ordering::Relaxed) as f64,
    );
    w.family(
        "haetae_remote_write_rejected_total",
        "counter",
        "Series or samples refused by the remote-write endpoint before storage, by reason.",
    );
    for (reason, n) in m.remote_write_rejected.lock().iter() {
        w.sample("haetae_remote_write_rejected_total", &[("reason", reason)], *n as f64);
    }
    w.single(
        "haetae_remote_read_requests_total",
        "counter",
        "Remote-read requests served.",
        m.remote_read_requests.load(Ordering::Relaxed) as f64,
    );
    state.push.write_metrics(&mut w);
    let admin = std::sync::Arc::clone(&state.admin);
    let body = tokio::task::spawn_blocking(move || {
        admin.write_metrics(&mut w);
        w.finish()
    })
    .await
    .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
}
