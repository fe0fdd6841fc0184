//! The PromQL query endpoints: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/format_query` and `/api/v1/query_exemplars`, with Prometheus'
//! parameters, JSON and error types.
//!
//! Layer 4. The handlers parse and validate parameters, hand evaluation to
//! the query pool ([`QueryService`]) and render [`promql::QueryOutput`] as
//! Prometheus does, byte for byte where clients could notice.
//!
//! Design constraints:
//! - Evaluation never runs on the async threads. It runs on a dedicated pool
//!   of `max_concurrency` threads that lower their own scheduling priority
//!   (nice +10), so a heavy query shares the CPU with remote-write appends
//!   (which run on tokio's blocking pool at normal priority) without starving
//!   them. Queries beyond `max_concurrency` wait in the pool's queue.
//! - One deadline per query covers the time in the queue and the evaluation:
//!   `min(query.timeout, ?timeout=)`. The engine checks it while evaluating;
//!   the handler also stops waiting at the deadline (plus a grace second), so
//!   a client gets its `timeout` error even if evaluation overruns.
//! - Limits: samples in memory (`max_samples`, enforced by the engine), series
//!   in a result (`max_series`, checked before rendering), query text length.

use crate::params::{parse_duration, parse_time, Params};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use promql::{EngineOptions, QueryError, QueryOutput, Value};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The limits and defaults of the query endpoints.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Engine options: lookback delta, max samples, the default (and
    /// largest) timeout, max points per series.
    pub engine: EngineOptions,
    /// The most series a query may return; 0 means unlimited.
    pub max_series: usize,
    /// Queries evaluated at once; further ones queue.
    pub max_concurrency: usize,
    /// The longest query text accepted, in bytes.
    pub max_query_length: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            engine: EngineOptions::default(),
            max_series: 500_000,
            max_concurrency: 20,
            max_query_length: 128 * 1024,
        }
    }
}

/// The scheduling priority query threads give themselves (`nice` value):
/// lower than the default 0 of the ingestion threads, so that appends keep
/// their latency while a heavy query runs. Query threads never raise it back.
const QUERY_THREAD_NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs PromQL evaluations on a fixed pool of low-priority threads.
pub struct QueryService {
    limits: QueryLimits,
    jobs: std::sync::mpsc::Sender<Job>,
    queued: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService").field("limits", &self.limits).finish()
    }
}

impl QueryService {
    /// Starts `limits.max_concurrency` query threads (at least one).
    pub fn new(limits: QueryLimits) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..limits.max_concurrency.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new().name(format!("query-{i}")).spawn(move || {
                lower_thread_priority();
                loop {
                    let job = rx.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })?;
        }
        Ok(QueryService {
            limits,
            jobs: tx,
            queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Queries submitted and not finished (queued or running).
    pub fn in_flight(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` on a query thread and waits for it, until `deadline` plus a
    /// grace second. `f` gets the time it may still take.
    async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        f: impl FnOnce(Duration, Duration) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued_at = Instant::now();
        let in_flight = Arc::clone(&self.queued);
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let job: Job = Box::new(move || {
            let queue_time = queued_at.elapsed();
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = if remaining.is_zero() {
                Err(timeout_error())
            } else {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(remaining, queue_time)))
                    .unwrap_or_else(|_| Err(ApiError::Internal("query evaluation panicked".into())))
            };
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send(result);
        });
        if self.jobs.send(job).is_err() {
            self.queued.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::Unavailable("query threads are gone".into()));
        }
        let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ApiError::Internal("query task failed".into())),
            Err(_) => Err(timeout_error()),
        }
    }
}

#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    // SAFETY: setpriority has no memory-safety preconditions. On Linux,
    // PRIO_PROCESS with who = 0 changes the calling thread only.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, QUERY_THREAD_NICE) };
    if rc != 0 {
        tracing::debug!("cannot lower the query thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

fn timeout_error() -> ApiError {
    ApiError::Timeout(QueryError::Timeout.to_string())
}

fn invalid_param(name: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::BadData(format!("invalid parameter \"{name}\": {e}"))
}

/// Classifies an engine error as Prometheus' API does.
fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Parse { message } => invalid_param("query", message),
        QueryError::BadData(m) => ApiError::BadData(m),
        QueryError::Timeout => ApiError::Timeout(QueryError::Timeout.to_string()),
        QueryError::Canceled => ApiError::Canceled(QueryError::Canceled.to_string()),
        QueryError::TooManySamples { .. } => {
            ApiError::Execution("query processing would load too many samples into memory in query execution".into())
        }
        QueryError::Execution(m) => ApiError::Execution(m),
        QueryError::Storage(e) => match ApiError::from(e) {
            ApiError::Internal(m) => ApiError::Execution(m),
            other => other,
        },
        other => ApiError::Execution(other.to_string()),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What every query request carries besides its times.
struct Common {
    query: String,
    tenant: model::TenantId,
    deadline: Instant,
    limit: Option<usize>,
    stats: bool,
}

fn common_params(state: &AppState, headers: &HeaderMap, params: &Params) -> Result<Common, ApiError> {
    let tenant = crate::tenant_from_headers(headers)?;
    let limits = state.query.limits();
    let query = params.get("query").unwrap_or("").to_string();
    if query.len() > limits.max_query_length {
        return Err(invalid_param(
            "query",
            format!(
                "query is {} bytes long, more than the limit of {} bytes",
                query.len(),
                limits.max_query_length
            ),
        ));
    }
    let mut timeout = limits.engine.timeout;
    if let Some(s) = params.get("timeout").filter(|s| !s.is_empty()) {
        let ms = parse_duration(s).map_err(|e| invalid_param("timeout", e))?;
        if ms <= 0 {
            return Err(invalid_param("timeout", "timeout must be positive"));
        }
        timeout = timeout.min(Duration::from_millis(ms as u64));
    }
    let limit = params.limit()?;
    let stats = params.get("stats").is_some_and(|s| !s.is_empty());
    Ok(Common {
        query,
        tenant,
        deadline: Instant::now() + timeout,
        limit,
        stats,
    })
}

/// `GET|POST /api/v1/query`
pub(crate) async fn instant_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let common = common_params(&state, &headers, &params)?;
    let time = match params.get("time").filter(|s| !s.is_empty()) {
        None => now_ms(),
        Some(s) => parse_time(s).map_err(|e| invalid_param("time", e))?,
    };
    execute(&state, common, move |engine, querier, query| {
        engine.instant_query(querier, query, time)
    })
    .await
}

/// `GET|POST /api/v1/query_range`
pub(crate) async fn range_query(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let start = parse_time(params.get("start").unwrap_or("")).map_err(|e| invalid_param("start", e))?;
    let end = parse_time(params.get("end").unwrap_or("")).map_err(|e| invalid_param("end", e))?;
    if end < start {
        return Err(invalid_param("end", "end timestamp must not be before start time"));
    }
    let step = parse_duration(params.get("step").unwrap_or("")).map_err(|e| invalid_param("step", e))?;
    if step <= 0 {
        return Err(invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    let max_points = state.query.limits().engine.max_points_per_series as i128;
    if (i128::from(end) - i128::from(start)) / i128::from(step) >= max_points {
        return Err(ApiError::BadData(format!(
            "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
            format_thousands(max_points)
        )));
    }
    let common = common_params(&state, &headers, &params)?;
    execute(&state, common, move |engine, querier, query| {
        engine.range_query(querier, query, start, end, step)
    })
    .await
}

/// `11000` → `11,000`, as Prometheus writes the resolution limit.
fn format_thousands(n: i128) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    while end > 3 && digits.as_bytes()[end - 4].is_ascii_digit() {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

type EvalFn = dyn FnOnce(&promql::Engine, &dyn storage_api::Querier, &str) -> Result<QueryOutput, QueryError> + Send;

async fn execute(
    state: &AppState,
    common: Common,
    eval: impl FnOnce(&promql::Engine, &dyn storage_api::Querier, &str) -> Result<QueryOutput, QueryError> + Send + 'static,
) -> Result<Response, ApiError> {
    let eval: Box<EvalFn> = Box::new(eval);
    let queryable = Arc::clone(&state.queryable);
    let engine_opts = state.query.limits().engine.clone();
    let max_series = state.query.limits().max_series;
    let Common {
        query,
        tenant,
        deadline,
        limit,
        stats,
    } = common;
    let started = Instant::now();
    let body = state
        .query
        .run(deadline, move |remaining, queue_time| {
            let eval_started = Instant::now();
            let querier = queryable.querier(&tenant)?;
            let engine = promql::Engine::new(EngineOptions {
                timeout: remaining,
                ..engine_opts
            });
            let mut out = eval(&engine, &*querier, &query).map_err(query_error)?;
            let num_series = match &out.value {
                Value::Vector(v) => v.len(),
                Value::Matrix(m) => m.len(),
                _ => 0,
            };
            if max_series > 0 && num_series > max_series {
                return Err(ApiError::Execution(format!(
                    "query returned {num_series} series, more than the limit of {max_series} (query.max_series)"
                )));
            }
            if let Some(limit) = limit {
                if truncate_value(&mut out.value, limit) {
                    out.warnings.push("results truncated due to limit".into());
                }
            }
            let timings = stats.then(|| Timings {
                eval_total: eval_started.elapsed(),
                queue: queue_time,
                exec_total: started.elapsed(),
            });
            Ok(render_success(&out, timings.as_ref()))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Keeps the first `limit` series; true when some were dropped.
fn truncate_value(value: &mut Value, limit: usize) -> bool {
    match value {
        Value::Vector(v) if v.len() > limit => {
            v.truncate(limit);
            true
        }
        Value::Matrix(m) if m.len() > limit => {
            m.truncate(limit);
            true
        }
        _ => false,
    }
}

/// Durations reported under `stats.timings`.
struct Timings {
    eval_total: Duration,
    queue: Duration,
    exec_total: Duration,
}

/// Writes a millisecond timestamp as Prometheus does: Unix seconds with the
/// milliseconds as a fraction, omitted when zero (`1435781451.781`, `1435781451`).
pub(crate) fn write_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let abs = t.unsigned_abs();
    out.push_str(itoa::Buffer::new().format(abs / 1000));
    let fraction = abs % 1000;
    if fraction != 0 {
        // Three digits, trailing zeros kept (`.500`), as Prometheus writes them.
        let digit = |d: u64| char::from(b'0' + (d % 10) as u8);
        for c in ['.', digit(fraction / 100), digit(fraction / 10), digit(fraction)] {
            out.push(c);
        }
    }
}

/// The rendered timestamps of the last series written, reused for the next
/// ones: the series of a range query share the step times, so most points'
/// timestamps are copied instead of formatted again. Found by walking both
/// in time order, as points are sorted.
#[derive(Default)]
struct TimestampMemo {
    times: Vec<i64>,
    /// End of each time's text in `text` (the start is the previous end).
    ends: Vec<usize>,
    text: String,
}

impl TimestampMemo {
    /// Writes a series' points, then keeps its timestamps if it had any the
    /// memo did not.
    fn write_points(&mut self, out: &mut String, samples: &[model::Sample]) {
        let mut cursor = 0;
        let mut missed = false;
        for (j, p) in samples.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            while cursor < self.times.len() && self.times[cursor] < p.t {
                cursor += 1;
            }
            if self.times.get(cursor) == Some(&p.t) {
                let start = if cursor == 0 { 0 } else { self.ends[cursor - 1] };
                out.push_str(&self.text[start..self.ends[cursor]]);
            } else {
                write_timestamp(out, p.t);
                missed = true;
            }
            out.push_str(",\"");
            promql::write_value_f64(out, p.v);
            out.push_str("\"]");
        }
        if missed {
            self.times.clear();
            self.ends.clear();
            self.text.clear();
            for p in samples {
                write_timestamp(&mut self.text, p.t);
                self.times.push(p.t);
                self.ends.push(self.text.len());
            }
        }
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_timestamp(out, t);
    out.push_str(",\"");
    promql::write_value_f64(out, v);
    out.push_str("\"]");
}

fn write_metric(out: &mut String, labels: &model::Labels) {
    out.push_str("{\"metric\":{");
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, &l.name);
        out.push(':');
        write_json_str(out, &l.value);
    }
    out.push('}');
}

/// The whole success body of a query, rendered directly into a string
/// (results can hold millions of points; no intermediate JSON tree).
fn render_success(out: &QueryOutput, timings: Option<&Timings>) -> String {
    // Sized up front from the result (about 40 bytes per point, 100 per
    // series' labels), so a large matrix is not copied by repeated growth.
    let estimate = match &out.value {
        Value::Vector(samples) => samples.len() * 140,
        Value::Matrix(series) => series.iter().map(|s| 100 + s.samples.len() * 40).sum(),
        _ => 0,
    };
    let mut s = String::with_capacity(256 + estimate.min(1 << 30));
    s.push_str("{\"status\":\"success\",\"data\":{\"resultType\":\"");
    match &out.value {
        Value::Scalar { t, v } => {
            s.push_str("scalar\",\"result\":");
            write_point(&mut s, *t, *v);
        }
        Value::String { t, v } => {
            s.push_str("string\",\"result\":[");
            write_timestamp(&mut s, *t);
            s.push(',');
            write_json_str(&mut s, v);
            s.push(']');
        }
        Value::Vector(samples) => {
            s.push_str("vector\",\"result\":[");
            for (i, sample) in samples.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                write_metric(&mut s, &sample.labels);
                s.push_str(",\"value\":");
                write_point(&mut s, sample.t, sample.v);
                s.push('}');
            }
            s.push(']');
        }
        Value::Matrix(series) => {
            s.push_str("matrix\",\"result\":[");
            let mut memo = TimestampMemo::default();
            for (i, one) in series.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                write_metric(&mut s, &one.labels);
                s.push_str(",\"values\":[");
                memo.write_points(&mut s, &one.samples);
                s.push_str("]}");
            }
            s.push(']');
        }
    }
    if let Some(t) = timings {
        let _ = write!(
            s,
            ",\"stats\":{{\"timings\":{{\"evalTotalTime\":{},\"resultSortTime\":0,\"queryPreparationTime\":0,\
             \"innerEvalTime\":{},\"execQueueTime\":{},\"execTotalTime\":{}}},\
             \"samples\":{{\"totalQueryableSamples\":{},\"peakSamples\":{}}}}}",
            t.eval_total.as_secs_f64(),
            t.eval_total.as_secs_f64(),
            t.queue.as_secs_f64(),
            t.exec_total.as_secs_f64(),
            out.stats.total_samples,
            out.stats.peak_samples
        );
    }
    s.push('}');
    let (infos, warnings): (Vec<&String>, Vec<&String>) =
        out.warnings.iter().partition(|w| w.starts_with("PromQL info:"));
    for (key, list) in [("warnings", warnings), ("infos", infos)] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(s, ",\"{key}\":[");
        for (i, w) in list.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            write_json_str(&mut s, w);
        }
        s.push(']');
    }
    s.push('}');
    s
}

/// Parses `query` as the query endpoints do, for the endpoints that only
/// need its syntax tree.
fn parse_query(params: &Params) -> Result<promql_parser::parser::Expr, ApiError> {
    let query = params.get("query").unwrap_or("");
    promql::parse(query).map_err(|e| invalid_param("query", e))
}

/// `GET|POST /api/v1/format_query`
pub(crate) async fn format_query(params: Params) -> Result<Response, ApiError> {
    let expr = parse_query(&params)?;
    let pretty =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| expr.prettify())).unwrap_or_else(|_| expr.to_string());
    Ok(axum::Json(serde_json::json!({"status": "success", "data": pretty})).into_response())
}

/// `GET|POST /api/v1/query_exemplars`: Haetae stores no exemplars yet, so a
/// valid request gets an empty list.
pub(crate) async fn query_exemplars(params: Params) -> Result<Response, ApiError> {
    parse_query(&params)?;
    params.range()?;
    Ok(axum::Json(serde_json::json!({"status": "success", "data": []})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(t: i64) -> String {
        let mut s = String::new();
        write_timestamp(&mut s, t);
        s
    }

    #[test]
    fn timestamps_print_like_prometheus() {
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1_435_781_451_000), "1435781451");
        assert_eq!(ts(1_435_781_451_080), "1435781451.080");
        assert_eq!(ts(1_435_781_451_007), "1435781451.007");
        assert_eq!(ts(-1_500), "-1.500");
        assert_eq!(ts(-5), "-0.005");
        assert_eq!(ts(0), "0");
        assert_eq!(ts(i64::MIN), "-9223372036854775.808");
    }

    #[test]
    fn renders_every_result_type() {
        let out = |value| QueryOutput {
            value,
            warnings: vec!["PromQL warning: w".into(), "PromQL info: i".into()],
            stats: Default::default(),
        };
        let labels = model::Labels::from_pairs(&[("__name__", "up"), ("job", "a\"b")]);
        let vector = render_success(
            &out(Value::Vector(vec![promql::VectorSample {
                labels: labels.clone(),
                t: 1000,
                v: f64::NAN,
            }])),
            None,
        );
        assert_eq!(
            vector,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a\"b"},"value":[1,"NaN"]}]},"warnings":["PromQL warning: w"],"infos":["PromQL info: i"]}"#
        );
        let matrix = render_success(
            &QueryOutput {
                value: Value::Matrix(vec![storage_api::Series {
                    labels,
                    samples: vec![model::Sample::new(1500, f64::INFINITY), model::Sample::new(2500, -2.5)],
                }]),
                warnings: Vec::new(),
                stats: Default::default(),
            },
            None,
        );
        assert_eq!(
            matrix,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a\"b"},"values":[[1.500,"+Inf"],[2.500,"-2.5"]]}]}}"#
        );
        let scalar = render_success(
            &QueryOutput {
                value: Value::Scalar { t: 1, v: 1e21 },
                warnings: Vec::new(),
                stats: Default::default(),
            },
            None,
        );
        assert_eq!(
            scalar,
            r#"{"status":"success","data":{"resultType":"scalar","result":[0.001,"1000000000000000000000"]}}"#
        );
        let string = render_success(
            &QueryOutput {
                value: Value::String { t: 0, v: "a\nb".into() },
                warnings: Vec::new(),
                stats: Default::default(),
            },
            None,
        );
        assert_eq!(
            string,
            r#"{"status":"success","data":{"resultType":"string","result":[0,"a\nb"]}}"#
        );
        for body in [vector, matrix, scalar, string] {
            assert!(serde_json::from_str::<serde_json::Value>(&body).is_ok(), "{body}");
        }
    }

    #[test]
    fn matrix_timestamps_reused_across_series_match_fresh_ones() {
        // Series on a shared grid, on shifted and partial grids, and out of
        // step: every point must read as if formatted on its own.
        let grids: [Vec<i64>; 6] = [
            (0..50).map(|i| 1_000_000 + i * 15_000).collect(),
            (0..50).map(|i| 1_000_000 + i * 15_000).collect(),
            (10..30).map(|i| 1_000_000 + i * 15_000).collect(),
            (0..70).map(|i| 999_500 + i * 7_500).collect(),
            vec![-1_500, 0, 1, 1_000_000],
            (0..50).map(|i| 1_000_000 + i * 15_000).filter(|t| t % 2 == 0).collect(),
        ];
        let series: Vec<storage_api::Series> = grids
            .iter()
            .enumerate()
            .map(|(i, ts)| storage_api::Series {
                labels: model::Labels::from_pairs(&[("i", i.to_string())]),
                samples: ts.iter().map(|&t| model::Sample::new(t, t as f64 / 7.0)).collect(),
            })
            .collect();
        let mut expected = String::new();
        for one in &series {
            let points: Vec<String> = one
                .samples
                .iter()
                .map(|p| {
                    let mut s = String::new();
                    write_point(&mut s, p.t, p.v);
                    s
                })
                .collect();
            expected.push_str(&points.join(","));
        }
        let mut memo = TimestampMemo::default();
        let mut got = String::new();
        for one in &series {
            memo.write_points(&mut got, &one.samples);
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn thousands() {
        assert_eq!(format_thousands(11_000), "11,000");
        assert_eq!(format_thousands(999), "999");
        assert_eq!(format_thousands(1_000_000), "1,000,000");
    }
}
