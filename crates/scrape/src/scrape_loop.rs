//! One target's scrape loop: fetch, parse, label, limit, append, report,
//! staleness.
//!
//! Layer 3, private to the crate; [`crate::manager`] starts and stops loops.
//!
//! Design constraints:
//! - A steady target costs one hash lookup per line: parsed, merged and
//!   relabeled label sets are cached by the line's raw series text
//!   ([`crate::exposition::SampleLine::series`]); the cache is cleared when
//!   the loop's parameters change and entries unused for 8 scrapes are evicted.
//! - Staleness: series appended (without explicit timestamp) by the last
//!   successful scrape and absent now get `STALE_NAN` at this scrape's
//!   timestamp; a failed scrape (HTTP error, limit exceeded) makes all of
//!   them stale; a removed target makes all of them and its report series
//!   stale at the time its next scrape would have run. A loop stopped for
//!   shutdown writes no markers, so a restart continues its series.
//! - Parsing and appending run on the blocking pool: the storage's append
//!   may wait for a WAL write.
//! - Label sets are identified by [`Labels::stable_hash`]; a 64-bit
//!   collision between two series of one target would merge their
//!   staleness tracking (accepted).

use crate::exposition::{parse_series, Entry, Format, Parser, ACCEPT_HEADER};
use crate::relabel::{relabel, RelabelConfig};
use ahash::{AHashMap, AHashSet};
use model::{Label, Labels, Sample, TenantId, METRIC_NAME, STALE_NAN};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use storage_api::{MetadataStore, MetricMetadata, SampleAppender, SeriesSamples};
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

struct CacheEntry {
    /// `None`: dropped by metric relabeling.
    series: Option<(Labels, u64)>,
    last_used: u64,
}

/// State kept between scrapes.
#[derive(Default)]
struct LoopState {
    cache: AHashMap<Box<str>, CacheEntry>,
    /// Series appended by the last successful scrape (without explicit timestamps).
    prev: AHashMap<u64, Labels>,
    generation: u64,
    metadata_hash: u64,
    report_labels: Vec<Labels>,
    params_id: usize,
    scratch: Vec<Label>,
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
        let sinks2 = sinks.clone();
        let params2 = Arc::clone(&params);
        let job = tokio::task::spawn_blocking(move || {
            let outcome = st.scrape(fetched, body, ts, duration, &params2, &sinks2);
            (st, outcome)
        })
        .await;
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
    let mut batch = Vec::new();
    state.stale_all(ts, &mut batch);
    for l in std::mem::take(&mut state.report_labels) {
        batch.push(SeriesSamples {
            labels: l,
            samples: vec![Sample::new(ts, STALE_NAN)],
        });
    }
    let sinks = sinks.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = sinks.appender.append(&sinks.tenant, batch) {
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
    let mut req = params
        .client
        .get(&params.url)
        .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
        .header(
            reqwest::header::USER_AGENT,
            concat!("Haetae/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", params.timeout.as_secs_f64()),
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
    /// Series of the last successful scrape, stale at `ts`.
    fn stale_all(&mut self, ts: i64, batch: &mut Vec<SeriesSamples>) {
        for (_, labels) in self.prev.drain() {
            batch.push(SeriesSamples {
                labels,
                samples: vec![Sample::new(ts, STALE_NAN)],
            });
        }
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
            self.cache.clear();
            self.params_id = params_id;
            self.report_labels = REPORT_NAMES
                .iter()
                .map(|n| {
                    let mut b = params.target_labels.builder();
                    b.set(METRIC_NAME, n);
                    b.build()
                })
                .collect();
        }
        self.generation += 1;
        let mut batch: Vec<SeriesSamples> = Vec::new();
        let mut outcome = match fetched {
            Ok(format) => self.process_body(&body, format, ts, params, sinks, &mut batch),
            Err(error) => Outcome {
                up: false,
                error,
                samples_scraped: 0,
                samples_post_relabel: 0,
                series_added: 0,
            },
        };
        if !outcome.up {
            batch.clear();
            self.stale_all(ts, &mut batch);
        }
        if !batch.is_empty() {
            if let Err(e) = sinks.appender.append(&sinks.tenant, batch) {
                outcome.up = false;
                outcome.error = format!("cannot append samples: {e}");
            }
        }
        let values = [
            if outcome.up { 1.0 } else { 0.0 },
            duration.as_secs_f64(),
            outcome.samples_scraped as f64,
            outcome.samples_post_relabel as f64,
            outcome.series_added as f64,
        ];
        let report: Vec<SeriesSamples> = self
            .report_labels
            .iter()
            .zip(values)
            .map(|(l, v)| SeriesSamples {
                labels: l.clone(),
                samples: vec![Sample::new(ts, v)],
            })
            .collect();
        if let Err(e) = sinks.appender.append(&sinks.tenant, report) {
            tracing::warn!(error = %e, "cannot append scrape report series");
        }
        if self.generation & 15 == 0 {
            let g = self.generation;
            self.cache.retain(|_, e| e.last_used + 8 >= g);
        }
        (outcome, body)
    }

    fn process_body(
        &mut self,
        body: &[u8],
        format: Format,
        ts: i64,
        params: &LoopParams,
        sinks: &Sinks,
        batch: &mut Vec<SeriesSamples>,
    ) -> Outcome {
        let mut out = Outcome {
            up: true,
            error: String::new(),
            samples_scraped: 0,
            samples_post_relabel: 0,
            series_added: 0,
        };
        let mut bad_lines = 0usize;
        let mut first_bad = String::new();
        let mut current: AHashSet<u64> = AHashSet::with_capacity(self.prev.len());
        let mut explicit: AHashSet<u64> = AHashSet::new();
        let mut added: Vec<(u64, Labels)> = Vec::new();
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
            let entry = match self.cache.get_mut(sample.series) {
                Some(e) => e,
                None => match self.resolve_series(sample.series, params) {
                    Ok(series) => self
                        .cache
                        .entry(sample.series.into())
                        .or_insert(CacheEntry { series, last_used: 0 }),
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
            entry.last_used = generation;
            let Some((labels, hash)) = &entry.series else { continue };
            out.samples_post_relabel += 1;
            if params.sample_limit > 0 && out.samples_post_relabel > params.sample_limit {
                out.up = false;
                out.error = format!("sample limit exceeded (limit {})", params.sample_limit);
                return out;
            }
            let explicit_ts = params.honor_timestamps && sample.timestamp_ms.is_some();
            let fresh = if explicit_ts {
                explicit.insert(*hash) && !current.contains(hash)
            } else {
                !explicit.contains(hash) && current.insert(*hash)
            };
            if !fresh {
                bad_lines += 1;
                if first_bad.is_empty() {
                    first_bad = format!("line {}: duplicate series {labels}", sample.line);
                }
                continue;
            }
            if !explicit_ts && !self.prev.contains_key(hash) {
                out.series_added += 1;
                added.push((*hash, labels.clone()));
            }
            let t = if explicit_ts {
                sample.timestamp_ms.unwrap_or(ts)
            } else {
                ts
            };
            batch.push(SeriesSamples {
                labels: labels.clone(),
                samples: vec![Sample::new(t, sample.value)],
            });
        }
        // Staleness for series gone since the last scrape.
        let gone: Vec<u64> = self.prev.keys().filter(|h| !current.contains(h)).copied().collect();
        for h in gone {
            if let Some(labels) = self.prev.remove(&h) {
                batch.push(SeriesSamples {
                    labels,
                    samples: vec![Sample::new(ts, STALE_NAN)],
                });
            }
        }
        self.prev.extend(added);
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

    /// Parses, merges and relabels a series not in the cache.
    fn resolve_series(&mut self, series: &str, params: &LoopParams) -> Result<Option<(Labels, u64)>, Resolve> {
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
        Ok(Some((labels, hash)))
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
