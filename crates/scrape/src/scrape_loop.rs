//! One target's scrape loop: fetch, parse, label, limit, append, report,
//! staleness.
//!
//! Layer 3, private to the crate; [`crate::manager`] starts and stops loops.
//!
//! Design constraints:
//! - A steady target costs one hash lookup per line and one append by
//!   reference per sample: the raw series text of a line
//!   ([`crate::exposition::SampleLine::series`]) leads to a *slot* holding
//!   the parsed, merged and relabeled labels (or "dropped by metric
//!   relabeling") and the storage's [`SeriesRef`] for them
//!   ([`SampleAppender::append_by_ref`]); labels are parsed and relabeled
//!   only on a cache miss. The text cache is cleared when the loop's
//!   parameters change; texts and slots unused for 8 scrapes are evicted.
//! - Staleness is tracked per slot by scrape generation, without hashing:
//!   series appended (without explicit timestamp) by the last successful
//!   scrape and absent now get `STALE_NAN` at this scrape's timestamp; a
//!   failed scrape (HTTP error, limit exceeded) makes all of them stale; a
//!   removed target makes all of them and its report series stale at the
//!   time its next scrape would have run. A loop stopped for shutdown
//!   writes no markers, so a restart continues its series.
//! - One append call per scrape carries the samples, the staleness markers
//!   and the report series.
//! - A body of up to [`INLINE_BODY_MAX`] bytes is parsed and appended on
//!   the async worker when the storage says its appends do not wait (no
//!   fsync per append): handing ~0.5 ms of work to the blocking pool and
//!   back costs more than the work. Larger bodies, and every body when
//!   appends may wait, go to the blocking pool.
//! - Two texts with the same labels after relabeling share a slot, so they
//!   are one series (the second is a duplicate) as in Prometheus.

use crate::exposition::{parse_series, Entry, Format, Parser, ACCEPT_HEADER};
use crate::relabel::{relabel, RelabelConfig};
use ahash::AHashMap;
use model::{Label, Labels, Sample, TenantId, METRIC_NAME, STALE_NAN};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use storage_api::{MetadataStore, MetricMetadata, RefAppend, SampleAppender, SeriesRef, StorageError};
use tokio::sync::watch;

/// How a request authenticates.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Auth {
    None,
    Basic {
        username: String,
        password: Option<String>,
        password_file: Option<PathBuf>,
    },
    Header {
        auth_type: String,
        credentials: Option<String>,
        credentials_file: Option<PathBuf>,
    },
}

/// What a loop needs to scrape; replaced as a whole on reload.
pub(crate) struct LoopParams {
    pub(crate) client: reqwest::Client,
    pub(crate) url: String,
    /// `url` parsed once, so a scrape does not parse it again; `None` if it
    /// does not parse (each scrape then fails with the client's error).
    pub(crate) parsed_url: Option<reqwest::Url>,
    /// The `X-Prometheus-Scrape-Timeout-Seconds` value for `timeout`.
    pub(crate) timeout_header: reqwest::header::HeaderValue,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    pub(crate) honor_labels: bool,
    pub(crate) honor_timestamps: bool,
    pub(crate) sample_limit: usize,
    pub(crate) label_limit: usize,
    pub(crate) label_name_length_limit: usize,
    pub(crate) label_value_length_limit: usize,
    pub(crate) body_size_limit: u64,
    pub(crate) metric_relabel: Vec<RelabelConfig>,
    pub(crate) auth: Auth,
    /// The target's public labels, attached to every series.
    pub(crate) target_labels: Labels,
}

/// The `X-Prometheus-Scrape-Timeout-Seconds` header value for `timeout`.
pub(crate) fn timeout_header(timeout: Duration) -> reqwest::header::HeaderValue {
    let text = format!("{}", timeout.as_secs_f64());
    reqwest::header::HeaderValue::from_str(&text).unwrap_or(reqwest::header::HeaderValue::from_static("10"))
}

/// Health of a target, as `/api/v1/targets` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Unknown,
    Up,
    Down,
}

/// What the API reads about a running loop.
#[derive(Debug, Clone)]
pub(crate) struct TargetStatus {
    pub(crate) health: Health,
    pub(crate) last_error: String,
    pub(crate) last_scrape: Option<SystemTime>,
    pub(crate) last_scrape_duration: Duration,
    pub(crate) metadata: Arc<Vec<MetricMetadata>>,
}

impl Default for TargetStatus {
    fn default() -> Self {
        TargetStatus {
            health: Health::Unknown,
            last_error: String::new(),
            last_scrape: None,
            last_scrape_duration: Duration::ZERO,
            metadata: Arc::new(Vec::new()),
        }
    }
}

/// Where a loop writes.
#[derive(Clone)]
pub(crate) struct Sinks {
    pub(crate) appender: Arc<dyn SampleAppender>,
    pub(crate) metadata: Arc<dyn MetadataStore>,
    pub(crate) tenant: TenantId,
}

/// Why a loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// The target went away: mark everything stale.
    Removed,
    /// Shutdown: write nothing.
    Quiet,
}

/// A series of this target as it is stored: scraped labels merged with the
/// target's and relabeled. Several raw series texts may lead to one slot.
struct SeriesSlot {
    labels: Labels,
    /// `labels.stable_hash()`.
    hash: u64,
    /// The storage's ref for `labels`, once it has handed one out.
    series_ref: Option<SeriesRef>,
    /// Generation of the last scrape that had it without an explicit timestamp.
    seen: u64,
    /// Generation of the last scrape that had it with an explicit timestamp.
    seen_explicit: u64,
    /// Generation of the last scrape that had it at all.
    last_used: u64,
}

/// What a raw series text leads to.
struct TextEntry {
    /// Index in [`LoopState::slots`]; `None`: dropped by metric relabeling.
    slot: Option<u32>,
    last_used: u64,
}

/// One of the series the loop writes about each scrape (`up`, ...).
struct ReportSeries {
    labels: Labels,
    series_ref: Option<SeriesRef>,
}

/// State kept between scrapes.
///
/// Invariants:
/// - A slot's `last_used` is at least that of every text entry leading to
///   it, so evicting slots unused for 8 scrapes never leaves an entry
///   pointing at a freed slot.
/// - `prev` lists exactly the slots whose `seen` is `prev_gen`; `prev_gen`
///   is 0 (no generation) when `prev` is empty after a failed scrape.
#[derive(Default)]
struct LoopState {
    /// Raw series text (`name{labels}` as scraped) to its slot.
    cache: AHashMap<Box<str>, TextEntry>,
    slots: Vec<Option<SeriesSlot>>,
    free_slots: Vec<u32>,
    /// Label-set hash to slot, to find a slot already made for the same
    /// labels under another text (or before a reload cleared `cache`).
    by_hash: AHashMap<u64, u32>,
    /// Slots appended (without explicit timestamps) by the last successful scrape.
    prev: Vec<u32>,
    prev_gen: u64,
    generation: u64,
    metadata_hash: u64,
    report: Vec<ReportSeries>,
    params_id: usize,
    scratch: Vec<Label>,
    /// Samples of this scrape to append, by slot.
    pending: Vec<(u32, Sample)>,
    /// Slots appended without explicit timestamps by this scrape.
    current: Vec<u32>,
    /// Metadata that changed in the last scrape, for the status.
    pending_metadata: Option<Arc<Vec<MetricMetadata>>>,
}

/// The outcome of one scrape, for the report series and the status.
struct Outcome {
    up: bool,
    error: String,
    samples_scraped: usize,
    samples_post_relabel: usize,
    series_added: usize,
}

const REPORT_NAMES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The offset of this target's scrapes within the interval, from a hash of
/// its identity, so that targets spread over the interval.
pub(crate) fn initial_delay(seed: u64, interval: Duration, now: SystemTime) -> Duration {
    let interval_ms = (interval.as_millis() as u64).max(1);
    let now_ms = unix_ms(now).max(0) as u64;
    let offset = seed % interval_ms;
    let base = now_ms - now_ms % interval_ms;
    let mut next = base + offset;
    if next < now_ms {
        next += interval_ms;
    }
    Duration::from_millis(next - now_ms)
}

/// Bodies up to this size are parsed and appended on the async worker,
/// larger ones on the blocking pool. At about 0.5 µs per line of ~70 bytes
/// (parse, cache lookup, append by ref), 64 KiB is about 0.5 ms of work.
const INLINE_BODY_MAX: usize = 64 << 10;

/// Runs until stopped.
pub(crate) async fn run(
    mut params_rx: watch::Receiver<Arc<LoopParams>>,
    mut stop_rx: watch::Receiver<Option<StopMode>>,
    sinks: Sinks,
    status: Arc<Mutex<TargetStatus>>,
    seed: u64,
) {
    let mut state = Some(LoopState::default());
    let mut body: Vec<u8> = Vec::new();
    let first = params_rx.borrow().interval;
    let mut next = tokio::time::Instant::now() + initial_delay(seed, first, SystemTime::now());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop_rx.changed() => {}
        }
        let stop = *stop_rx.borrow();
        if let Some(mode) = stop {
            if mode == StopMode::Removed {
                end_of_run_staleness(state.take(), &mut stop_rx, next, &sinks).await;
            }
            return;
        }
        let params = params_rx.borrow_and_update().clone();
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let fetched = fetch(&params, &mut body).await;
        let duration = start.elapsed();
        let ts = unix_ms(start_wall);
        let mut st = state.take().unwrap_or_default();
        let job = if body.len() <= INLINE_BODY_MAX && sinks.appender.appends_without_waiting() {
            // Small bodies are processed here: a hand-off to the blocking
            // pool costs more than processing them.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let outcome = st.scrape(fetched, body, ts, duration, &params, &sinks);
                (st, outcome)
            }))
            .map_err(|_| "panicked".to_string())
        } else {
            let sinks2 = sinks.clone();
            let params2 = Arc::clone(&params);
            tokio::task::spawn_blocking(move || {
                let outcome = st.scrape(fetched, body, ts, duration, &params2, &sinks2);
                (st, outcome)
            })
            .await
            .map_err(|e| e.to_string())
        };
        let outcome = match job {
            Ok((st, (outcome, returned_body))) => {
                state = Some(st);
                body = returned_body;
                outcome
            }
            Err(e) => {
                body = Vec::new();
                Outcome {
                    up: false,
                    error: format!("scrape processing failed: {e}"),
                    samples_scraped: 0,
                    samples_post_relabel: 0,
                    series_added: 0,
                }
            }
        };
        let changed_metadata = state.as_mut().and_then(|st| st.pending_metadata.take());
        {
            let mut s = status.lock();
            s.health = if outcome.up { Health::Up } else { Health::Down };
            s.last_error = outcome.error;
            s.last_scrape = Some(start_wall);
            s.last_scrape_duration = duration;
            if let Some(meta) = changed_metadata {
                s.metadata = meta;
            }
        }
        // Next tick on the grid; missed ticks are skipped.
        let interval = params_rx.borrow().interval.max(Duration::from_millis(1));
        next += interval;
        let now = tokio::time::Instant::now();
        while next <= now {
            next += interval;
        }
    }
}

async fn end_of_run_staleness(
    state: Option<LoopState>,
    stop_rx: &mut watch::Receiver<Option<StopMode>>,
    next: tokio::time::Instant,
    sinks: &Sinks,
) {
    let Some(mut state) = state else { return };
    // Wait until the next scrape would have run, unless shutdown comes first.
    tokio::select! {
        _ = tokio::time::sleep_until(next) => {}
        _ = stop_rx.changed() => {}
    }
    if *stop_rx.borrow() == Some(StopMode::Quiet) {
        return;
    }
    let ts = unix_ms(SystemTime::now());
    let sinks = sinks.clone();
    let _ = tokio::task::spawn_blocking(move || {
        state.pending.clear();
        state.stale_all(ts);
        if let Err(e) = state.append_pending(&sinks, ts, [STALE_NAN; REPORT_NAMES.len()]) {
            tracing::warn!(error = %e, "cannot append end-of-run staleness markers");
        }
    })
    .await;
}

fn read_secret_file(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// GETs the target into `body`; returns the format.
async fn fetch(params: &LoopParams, body: &mut Vec<u8>) -> Result<Format, String> {
    body.clear();
    use reqwest::header::{HeaderName, HeaderValue};
    let req = match &params.parsed_url {
        Some(url) => params.client.get(url.clone()),
        None => params.client.get(&params.url),
    };
    let mut req = req
        .header(reqwest::header::ACCEPT, HeaderValue::from_static(ACCEPT_HEADER))
        .header(
            reqwest::header::USER_AGENT,
            HeaderValue::from_static(concat!("Haetae/", env!("CARGO_PKG_VERSION"))),
        )
        .header(
            HeaderName::from_static("x-prometheus-scrape-timeout-seconds"),
            params.timeout_header.clone(),
        )
        .timeout(params.timeout);
    match &params.auth {
        Auth::None => {}
        Auth::Basic {
            username,
            password,
            password_file,
        } => {
            let pw = match (password, password_file) {
                (Some(p), _) => Some(p.clone()),
                (None, Some(f)) => Some(read_secret_file(f)?),
                (None, None) => None,
            };
            req = req.basic_auth(username, pw);
        }
        Auth::Header {
            auth_type,
            credentials,
            credentials_file,
        } => {
            let c = match (credentials, credentials_file) {
                (Some(c), _) => c.clone(),
                (None, Some(f)) => read_secret_file(f)?,
                (None, None) => String::new(),
            };
            req = req.header(reqwest::header::AUTHORIZATION, format!("{auth_type} {c}"));
        }
    }
    let deadline = tokio::time::Instant::now() + params.timeout;
    let timed_out = || format!("scrape timed out after {}", crate::config::PromDuration(params.timeout));
    let mut resp = req
        .send()
        .await
        .map_err(|e| if e.is_timeout() { timed_out() } else { error_chain(&e) })?;
    if !resp.status().is_success() {
        return Err(format!("server returned HTTP status {}", resp.status()));
    }
    let format = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or(Format::PrometheusText, Format::from_content_type);
    loop {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| if e.is_timeout() { timed_out() } else { error_chain(&e) })?;
        let Some(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        if params.body_size_limit > 0 && body.len() as u64 > params.body_size_limit {
            return Err(format!("body size limit exceeded ({} bytes)", params.body_size_limit));
        }
    }
    Ok(format)
}

/// Merges target labels into scraped labels (`honor_labels` semantics).
fn merge_target_labels(scraped: &mut Vec<Label>, target: &Labels, honor_labels: bool) {
    for t in target.iter() {
        let existing = scraped.iter().position(|l| l.name == t.name && !l.value.is_empty());
        match existing {
            Some(_) if honor_labels => {}
            Some(i) => {
                let mut name = format!("exported_{}", t.name);
                while scraped.iter().any(|l| l.name == name && !l.value.is_empty()) {
                    name.insert_str(0, "exported_");
                }
                scraped[i].name = name;
                scraped.push(t.clone());
            }
            None => {
                scraped.retain(|l| l.name != t.name);
                scraped.push(t.clone());
            }
        }
    }
}

impl LoopState {
    /// Queues staleness markers at `ts` for every series of the last
    /// successful scrape, and forgets them.
    fn stale_all(&mut self, ts: i64) {
        for idx in self.prev.drain(..) {
            self.pending.push((idx, Sample::new(ts, STALE_NAN)));
        }
        self.prev_gen = 0;
    }

    /// Appends the pending samples and one sample per report series (value
    /// `report_values[i]` at `ts`) in one call, then keeps the refs the
    /// storage handed out.
    fn append_pending(
        &mut self,
        sinks: &Sinks,
        ts: i64,
        report_values: [f64; REPORT_NAMES.len()],
    ) -> Result<(), StorageError> {
        let slots = &self.slots;
        // Pending slots are live (slots are only freed between scrapes); this keeps batch index = pending index.
        self.pending
            .retain(|&(idx, _)| slots.get(idx as usize).is_some_and(Option::is_some));
        let mut new_refs = Vec::new();
        let result = {
            let mut batch = Vec::with_capacity(self.pending.len() + self.report.len());
            for &(idx, sample) in &self.pending {
                if let Some(slot) = self.slots.get(idx as usize).and_then(Option::as_ref) {
                    batch.push(RefAppend {
                        labels: &slot.labels,
                        series_ref: slot.series_ref.as_ref(),
                        sample,
                    });
                }
            }
            let num_scraped = batch.len();
            for (r, v) in self.report.iter().zip(report_values) {
                batch.push(RefAppend {
                    labels: &r.labels,
                    series_ref: r.series_ref.as_ref(),
                    sample: Sample::new(ts, v),
                });
            }
            sinks
                .appender
                .append_by_ref(&sinks.tenant, &batch, &mut new_refs)
                .map(|_| num_scraped)
        };
        let num_scraped = result?;
        for (i, series_ref) in new_refs {
            if i < num_scraped {
                let idx = self.pending[i].0 as usize;
                if let Some(slot) = self.slots.get_mut(idx).and_then(Option::as_mut) {
                    slot.series_ref = Some(series_ref);
                }
            } else if let Some(r) = self.report.get_mut(i - num_scraped) {
                r.series_ref = Some(series_ref);
            }
        }
        Ok(())
    }

    /// Processes one fetched body; returns the outcome and the body buffer.
    fn scrape(
        &mut self,
        fetched: Result<Format, String>,
        body: Vec<u8>,
        ts: i64,
        duration: Duration,
        params: &Arc<LoopParams>,
        sinks: &Sinks,
    ) -> (Outcome, Vec<u8>) {
        let params_id = Arc::as_ptr(params) as usize;
        if params_id != self.params_id {
            // Slots stay: a series whose labels do not change keeps its ref
            // and its staleness tracking.
            self.cache.clear();
            self.params_id = params_id;
            self.report = REPORT_NAMES
                .iter()
                .map(|n| {
                    let mut b = params.target_labels.builder();
                    b.set(METRIC_NAME, n);
                    ReportSeries {
                        labels: b.build(),
                        series_ref: None,
                    }
                })
                .collect();
        }
        self.generation += 1;
        self.pending.clear();
        self.current.clear();
        let mut outcome = match fetched {
            Ok(format) => self.process_body(&body, format, ts, params, sinks),
            Err(error) => Outcome {
                up: false,
                error,
                samples_scraped: 0,
                samples_post_relabel: 0,
                series_added: 0,
            },
        };
        if !outcome.up {
            self.pending.clear();
            self.current.clear();
            self.stale_all(ts);
        }
        let mut report_values = [
            if outcome.up { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            outcome.samples_scraped as f64,
            outcome.samples_post_relabel as f64,
            outcome.series_added as f64,
        ];
        if let Err(e) = self.append_pending(sinks, ts, report_values) {
            outcome.up = false;
            outcome.error = format!("cannot append samples: {e}");
            report_values[0] = 0.0;
            self.pending.clear();
            if let Err(e) = self.append_pending(sinks, ts, report_values) {
                tracing::warn!(error = %e, "cannot append scrape report series");
            }
        }
        if self.generation & 15 == 0 {
            self.evict_unused();
        }
        (outcome, body)
    }

    /// Forgets texts and slots not seen for 8 scrapes.
    fn evict_unused(&mut self) {
        let g = self.generation;
        self.cache.retain(|_, e| e.last_used + 8 >= g);
        for (idx, entry) in self.slots.iter_mut().enumerate() {
            if entry.as_ref().is_some_and(|s| s.last_used + 8 < g) {
                if let Some(slot) = entry.take() {
                    if self.by_hash.get(&slot.hash) == Some(&(idx as u32)) {
                        self.by_hash.remove(&slot.hash);
                    }
                    self.free_slots.push(idx as u32);
                }
            }
        }
    }

    fn process_body(&mut self, body: &[u8], format: Format, ts: i64, params: &LoopParams, sinks: &Sinks) -> Outcome {
        let mut out = Outcome {
            up: true,
            error: String::new(),
            samples_scraped: 0,
            samples_post_relabel: 0,
            series_added: 0,
        };
        let mut bad_lines = 0usize;
        let mut first_bad = String::new();
        let mut meta_lines: Vec<(&str, &'static str, std::borrow::Cow<'_, str>)> = Vec::new();
        // Compared only with the previous scrape's: fixed seeds are enough.
        let mut meta_hasher = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        let generation = self.generation;
        for item in Parser::new(body, format) {
            let sample = match item {
                Ok(Entry::Sample(s)) => s,
                Ok(Entry::Help { family, help }) => {
                    (family, "HELP", &help).hash(&mut meta_hasher);
                    meta_lines.push((family, "HELP", help));
                    continue;
                }
                Ok(Entry::Type { family, metric_type }) => {
                    (family, "TYPE", metric_type.as_str()).hash(&mut meta_hasher);
                    meta_lines.push((family, "TYPE", metric_type.as_str().into()));
                    continue;
                }
                Ok(Entry::Unit { family, unit }) => {
                    (family, "UNIT", unit).hash(&mut meta_hasher);
                    meta_lines.push((family, "UNIT", unit.into()));
                    continue;
                }
                Err(e) => {
                    bad_lines += 1;
                    if first_bad.is_empty() {
                        first_bad = e.to_string();
                    }
                    continue;
                }
            };
            out.samples_scraped += 1;
            let slot_idx = match self.cache.get_mut(sample.series) {
                Some(e) => {
                    e.last_used = generation;
                    e.slot
                }
                None => match self.resolve_series(sample.series, params) {
                    Ok(slot) => {
                        let entry = TextEntry {
                            slot,
                            last_used: generation,
                        };
                        self.cache.insert(sample.series.into(), entry);
                        slot
                    }
                    Err(Resolve::BadLine(e)) => {
                        bad_lines += 1;
                        if first_bad.is_empty() {
                            first_bad = format!("line {}: {e}", sample.line);
                        }
                        continue;
                    }
                    Err(Resolve::Limit(reason)) => {
                        out.up = false;
                        out.error = reason;
                        return out;
                    }
                },
            };
            let Some(slot_idx) = slot_idx else { continue };
            let Some(slot) = self.slots.get_mut(slot_idx as usize).and_then(Option::as_mut) else {
                continue;
            };
            out.samples_post_relabel += 1;
            if params.sample_limit > 0 && out.samples_post_relabel > params.sample_limit {
                out.up = false;
                out.error = format!("sample limit exceeded (limit {})", params.sample_limit);
                return out;
            }
            slot.last_used = generation;
            if slot.seen == generation || slot.seen_explicit == generation {
                bad_lines += 1;
                if first_bad.is_empty() {
                    first_bad = format!("line {}: duplicate series {}", sample.line, slot.labels);
                }
                continue;
            }
            let t = match sample.timestamp_ms {
                Some(t) if params.honor_timestamps => {
                    slot.seen_explicit = generation;
                    t
                }
                _ => {
                    if self.prev_gen == 0 || slot.seen != self.prev_gen {
                        out.series_added += 1;
                    }
                    slot.seen = generation;
                    self.current.push(slot_idx);
                    ts
                }
            };
            self.pending.push((slot_idx, Sample::new(t, sample.value)));
        }
        // Staleness for series gone since the last scrape.
        for &idx in &self.prev {
            if self
                .slots
                .get(idx as usize)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.seen != generation)
            {
                self.pending.push((idx, Sample::new(ts, STALE_NAN)));
            }
        }
        std::mem::swap(&mut self.prev, &mut self.current);
        self.current.clear();
        self.prev_gen = generation;
        if bad_lines > 0 {
            out.error = format!("{bad_lines} invalid lines skipped; first: {first_bad}");
        }
        let meta_hash = meta_hasher.finish();
        if meta_hash != self.metadata_hash {
            self.metadata_hash = meta_hash;
            let metadata = build_metadata(&meta_lines);
            sinks.metadata.put_metadata(&sinks.tenant, metadata.clone());
            self.pending_metadata = Some(Arc::new(metadata));
        }
        out
    }

    /// Parses, merges and relabels a series text not in the cache, and
    /// finds or makes its slot; `None` when metric relabeling drops it.
    fn resolve_series(&mut self, series: &str, params: &LoopParams) -> Result<Option<u32>, Resolve> {
        parse_series(series, &mut self.scratch).map_err(|e| Resolve::BadLine(e.to_string()))?;
        let mut labels = std::mem::take(&mut self.scratch);
        merge_target_labels(&mut labels, &params.target_labels, params.honor_labels);
        let labels = Labels::new(labels);
        let labels = if params.metric_relabel.is_empty() {
            Some(labels)
        } else {
            relabel(&labels, &params.metric_relabel)
        };
        let Some(labels) = labels.filter(|l| l.metric_name().is_some()) else {
            return Ok(None);
        };
        if params.label_limit > 0 && labels.len() > params.label_limit {
            return Err(Resolve::Limit(format!(
                "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
                labels.metric_name().unwrap_or(""),
                labels.len(),
                params.label_limit
            )));
        }
        for l in labels.iter() {
            if params.label_name_length_limit > 0 && l.name.len() > params.label_name_length_limit {
                return Err(Resolve::Limit(format!(
                    "label_name_length_limit exceeded (label name: {}, limit: {})",
                    l.name, params.label_name_length_limit
                )));
            }
            if params.label_value_length_limit > 0 && l.value.len() > params.label_value_length_limit {
                return Err(Resolve::Limit(format!(
                    "label_value_length_limit exceeded (label: {}, limit: {})",
                    l.name, params.label_value_length_limit
                )));
            }
        }
        let hash = labels.stable_hash();
        let generation = self.generation;
        if let Some(&idx) = self.by_hash.get(&hash) {
            if let Some(slot) = self.slots.get_mut(idx as usize).and_then(Option::as_mut) {
                if slot.labels == labels {
                    slot.last_used = generation;
                    return Ok(Some(idx));
                }
            }
        }
        let slot = SeriesSlot {
            labels,
            hash,
            series_ref: None,
            seen: 0,
            seen_explicit: 0,
            last_used: generation,
        };
        let idx = match self.free_slots.pop() {
            Some(idx) => {
                self.slots[idx as usize] = Some(slot);
                idx
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        // A 64-bit collision with other labels keeps the first slot in the map.
        self.by_hash.entry(hash).or_insert(idx);
        Ok(Some(idx))
    }
}

enum Resolve {
    BadLine(String),
    Limit(String),
}

fn build_metadata(lines: &[(&str, &'static str, std::borrow::Cow<'_, str>)]) -> Vec<MetricMetadata> {
    let mut out: Vec<MetricMetadata> = Vec::new();
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for (family, kind, text) in lines {
        let i = *idx.entry(family).or_insert_with(|| {
            out.push(MetricMetadata {
                metric_family: family.to_string(),
                metric_type: "unknown".to_string(),
                help: String::new(),
                unit: String::new(),
            });
            out.len() - 1
        });
        match *kind {
            "HELP" => out[i].help = text.to_string(),
            "TYPE" => out[i].metric_type = text.to_string(),
            _ => out[i].unit = text.to_string(),
        }
    }
    out
}

#[cfg(test)]
mod tests;
