//! What the push endpoints (Influx line protocol, OTLP/HTTP, Prometheus text
//! import) share: body reading with `Content-Encoding: gzip`, grouping
//! samples into series, appending with per-series error messages, the
//! delta-to-cumulative state of OTLP, and their self-metrics.
//!
//! Layer 4. Decoding lives in `wire`; this module only moves bytes and
//! samples between HTTP, `wire` and [`storage_api::SampleAppender`].

use crate::{ApiError, AppState, MetricsWriter};
use axum::body::Body;
use axum::http::{header, HeaderMap};
use model::{Labels, Sample, TenantId};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use storage_api::{AppendReport, RejectReason, SeriesSamples};

/// Most errors spelled out in one 400 message.
pub(crate) const MAX_ERRORS_IN_MESSAGE: usize = 10;

/// State and counters of the push endpoints, shared by all requests.
#[derive(Debug, Default)]
pub struct PushState {
    /// Running totals of OTLP delta sums and histograms.
    pub deltas: crate::DeltaAccumulator,
    /// Requests by protocol (`influx`, `otlp`, `import`).
    requests: Mutex<BTreeMap<&'static str, u64>>,
    /// Samples decoded by protocol, before storage.
    samples: Mutex<BTreeMap<&'static str, u64>>,
    /// Lines, points or fields refused before storage, by (protocol, reason).
    rejected: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl PushState {
    /// Push state whose OTLP delta totals are `deltas` (see [`crate::DeltaAccumulator::open`]).
    pub fn with_deltas(deltas: crate::DeltaAccumulator) -> Self {
        PushState {
            deltas,
            ..PushState::default()
        }
    }

    pub(crate) fn count_request(&self, protocol: &'static str) {
        *self.requests.lock().entry(protocol).or_default() += 1;
    }

    pub(crate) fn count_samples(&self, protocol: &'static str, n: usize) {
        *self.samples.lock().entry(protocol).or_default() += n as u64;
    }

    pub(crate) fn count_rejected(&self, protocol: &'static str, reason: &'static str, n: usize) {
        if n > 0 {
            *self.rejected.lock().entry((protocol, reason)).or_default() += n as u64;
        }
    }

    /// Appends the push counters in Prometheus text format.
    pub fn write_metrics(&self, w: &mut MetricsWriter) {
        w.family(
            "haetae_push_requests_total",
            "counter",
            "Push requests received, by protocol (influx, otlp, import).",
        );
        for (protocol, n) in self.requests.lock().iter() {
            w.sample("haetae_push_requests_total", &[("protocol", protocol)], *n as f64);
        }
        w.family(
            "haetae_push_samples_received_total",
            "counter",
            "Samples decoded from push requests, before storage, by protocol.",
        );
        for (protocol, n) in self.samples.lock().iter() {
            w.sample(
                "haetae_push_samples_received_total",
                &[("protocol", protocol)],
                *n as f64,
            );
        }
        w.family(
            "haetae_push_rejected_total",
            "counter",
            "Lines, data points or fields refused by push endpoints before storage, by protocol and reason.",
        );
        for ((protocol, reason), n) in self.rejected.lock().iter() {
            w.sample(
                "haetae_push_rejected_total",
                &[("protocol", protocol), ("reason", reason)],
                *n as f64,
            );
        }
        w.single(
            "haetae_otlp_delta_series",
            "gauge",
            "Series whose OTLP delta values are accumulated into cumulative totals.",
            self.deltas.num_series() as f64,
        );
    }
}

/// Reads a whole body (at most `max_compressed_bytes`), decompressing it when
/// `Content-Encoding` is `gzip` (at most `max_decompressed_bytes`).
/// `identity` or no header means as is; anything else is refused.
pub(crate) async fn read_push_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::BadData(format!(
                "unsupported Content-Encoding {other:?}; use gzip or none"
            )))
        }
    };
    let limits = &state.limits.decode;
    let raw = crate::remote::read_body(body, limits.max_compressed_bytes, state.limits.body_timeout).await?;
    if !gzip {
        return Ok(raw.to_vec());
    }
    let limit = limits.max_decompressed_bytes;
    tokio::task::spawn_blocking(move || gunzip(&raw, limit))
        .await
        .map_err(|e| ApiError::Internal(format!("gzip task failed: {e}")))?
}

/// Decompresses a gzip body, refusing more than `limit` bytes of output.
pub(crate) fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let decoder = flate2::read::MultiGzDecoder::new(raw);
    decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadData(format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(format!(
            "gzip body decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Groups samples by series, keeping the order in which series first appear.
pub(crate) fn group_by_series(samples: impl IntoIterator<Item = (Labels, Sample)>) -> Vec<SeriesSamples> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<SeriesSamples> = Vec::new();
    for (labels, sample) in samples {
        match index.get(&labels) {
            Some(&i) => out[i].samples.push(sample),
            None => {
                index.insert(labels.clone(), out.len());
                out.push(SeriesSamples {
                    labels,
                    samples: vec![sample],
                });
            }
        }
    }
    out
}

/// Appends a batch and returns one message per series (and reason) that the
/// storage refused, with the total number of refusals.
pub(crate) fn append(
    state: &AppState,
    tenant: &TenantId,
    batch: Vec<SeriesSamples>,
) -> Result<(usize, Vec<String>), ApiError> {
    if batch.is_empty() {
        return Ok((0, Vec::new()));
    }
    let report = state.appender.append(tenant, batch)?;
    Ok(describe_rejections(&report))
}

/// The number of refusals in a report and messages for the first few.
pub(crate) fn describe_rejections(report: &AppendReport) -> (usize, Vec<String>) {
    let mut messages = Vec::new();
    for r in report.rejected.iter().take(MAX_ERRORS_IN_MESSAGE) {
        let what = match r.reason {
            RejectReason::TooOld => "too old: older than the out-of-order window allows",
            RejectReason::TooFarInFuture => "too far in the future",
            RejectReason::DuplicateTimestamp => "duplicate sample for timestamp: a different value is already stored",
            RejectReason::SeriesLimit => "series limit of the tenant reached",
            _ => "refused",
        };
        messages.push(format!(
            "series {}: {} sample(s) {what} (first at {})",
            r.labels, r.num_samples, r.first_t
        ));
    }
    (report.rejected.len(), messages)
}

/// Joins the first messages into one line, saying how many were left out.
pub(crate) fn join_errors(messages: &[String], num_errors: usize) -> String {
    let mut msg = messages
        .iter()
        .take(MAX_ERRORS_IN_MESSAGE)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    let shown = messages.len().min(MAX_ERRORS_IN_MESSAGE);
    if num_errors > shown {
        msg.push_str(&format!("; and {} more", num_errors - shown));
    }
    msg
}

/// The server's time in milliseconds, for samples sent without a timestamp.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
