//! A runner for Prometheus' PromQL test scripts (`*.test` files: `load`,
//! `clear`, `eval instant|range …` with expected results), as specified in
//! the conformance suite's `DSL.md`. Layer 2 test support: it only uses the
//! public engine API and `storage_api::MemStorage`.
//!
//! Each eval is reported as passed, failed (with expected vs got) or skipped
//! with a reason, for features the engine declares unsupported: native
//! histograms, start timestamps, `info()`, and experimental syntax the parser
//! does not know (duration expressions, `anchored`/`smoothed`).
//!
//! Not implemented: the reference runner's extra `@`-pinned and range-mode
//! re-runs of instant evals (DSL §7).

mod compare;
mod series;

use crate::{Engine, EngineOptions, QueryError};
use model::{Labels, Matcher};
use series::{parse_duration, parse_series, Item};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use storage_api::{MemStorage, Querier, Queryable, SelectHints, Series, StorageError};

/// The outcome of one eval.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalOutcome {
    /// The result matched every expectation.
    Passed,
    /// Some expectation did not hold.
    Failed {
        /// What the script expected.
        expected: String,
        /// What the engine returned.
        got: String,
    },
    /// Not run, or not judged, because it needs an unsupported feature.
    Skipped {
        /// The unsupported feature.
        reason: String,
    },
}

/// One eval of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// The 1-based line of the eval header.
    pub line: usize,
    /// The PromQL expression.
    pub expr: String,
    /// What happened.
    pub outcome: EvalOutcome,
}

/// The result of running one script.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The script.
    pub path: PathBuf,
    /// Every eval, in file order.
    pub evals: Vec<EvalReport>,
    /// Set when the file itself could not be read or parsed; evals after
    /// the error are not run.
    pub error: Option<String>,
}

impl FileReport {
    /// The number of passed evals.
    pub fn passed(&self) -> usize {
        self.evals.iter().filter(|e| e.outcome == EvalOutcome::Passed).count()
    }

    /// The number of failed evals.
    pub fn failed(&self) -> usize {
        self.evals
            .iter()
            .filter(|e| matches!(e.outcome, EvalOutcome::Failed { .. }))
            .count()
    }

    /// The number of skipped evals.
    pub fn skipped(&self) -> usize {
        self.evals
            .iter()
            .filter(|e| matches!(e.outcome, EvalOutcome::Skipped { .. }))
            .count()
    }

    /// Skip counts by reason.
    pub fn skip_reasons(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in &self.evals {
            if let EvalOutcome::Skipped { reason } = &e.outcome {
                *out.entry(reason.clone()).or_insert(0) += 1;
            }
        }
        out
    }
}

/// Runs every `*.test` file of `dir`, in name order, with default options.
pub fn run_dir(dir: &Path) -> Vec<FileReport> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "test"))
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    paths.iter().map(|p| run_file(p, EngineOptions::default())).collect()
}

/// Runs one script.
pub fn run_file(path: &Path, engine_opts: EngineOptions) -> FileReport {
    let mut report = FileReport {
        path: path.to_path_buf(),
        evals: Vec::new(),
        error: None,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            report.error = Some(format!("cannot read {}: {e}", path.display()));
            return report;
        }
    };
    let mut runner = Runner::new(Engine::new(engine_opts));
    if let Err(e) = runner.run(&text, &mut report.evals) {
        report.error = Some(e);
    }
    report
}

/// Why a series makes evals that read it unsupported.
const HISTOGRAM_REASON: &str = "native histograms";
const START_TIMESTAMP_REASON: &str = "start timestamps (@st)";

/// State of a script run: the storage and the series the engine cannot read faithfully.
struct Runner {
    engine: Engine,
    storage: MemStorage,
    /// Series holding samples the engine cannot see, with the reason.
    special: Vec<(Labels, &'static str)>,
}

/// A querier that notes when a query selects a special series.
struct TrackingQuerier<'a> {
    inner: Arc<dyn Querier>,
    special: &'a [(Labels, &'static str)],
    touched: Mutex<BTreeSet<&'static str>>,
}

impl Querier for TrackingQuerier<'_> {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        for (labels, reason) in self.special {
            if matchers.iter().all(|m| m.matches(labels.get(m.name()).unwrap_or(""))) {
                if let Ok(mut t) = self.touched.lock() {
                    t.insert(reason);
                }
            }
        }
        self.inner.select(matchers, hints)
    }
    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>, StorageError> {
        self.inner.series(matchers, start, end)
    }
    fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<String>, StorageError> {
        self.inner.label_names(matchers, start, end)
    }
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StorageError> {
        self.inner.label_values(name, matchers, start, end)
    }
}

/// The parsed header and body of an eval.
#[derive(Debug, Default)]
pub(crate) struct EvalSpec {
    pub(crate) expr: String,
    pub(crate) range: Option<(i64, i64, i64)>,
    pub(crate) at: i64,
    pub(crate) expect_fail: Option<Option<Match>>,
    pub(crate) warn: Vec<Option<Match>>,
    pub(crate) info: Vec<Option<Match>>,
    pub(crate) no_warn: bool,
    pub(crate) no_info: bool,
    pub(crate) any_warn: bool,
    pub(crate) any_info: bool,
    pub(crate) ordered: bool,
    pub(crate) range_vector: Option<(i64, i64, i64)>,
    pub(crate) string: Option<String>,
    pub(crate) scalar: Option<f64>,
    pub(crate) series: Vec<(Labels, Vec<Item>)>,
    pub(crate) has_histograms: bool,
}

/// An expected message: exact text or a regular expression.
#[derive(Debug, Clone)]
pub(crate) enum Match {
    Exact(String),
    Regex(String),
}

impl Match {
    pub(crate) fn matches(&self, s: &str) -> bool {
        match self {
            Match::Exact(e) => e == s,
            Match::Regex(r) => regex::Regex::new(r).map(|re| re.is_match(s)).unwrap_or(false),
        }
    }
}

fn parse_match(rest: &str) -> Result<Option<Match>, String> {
    let rest = rest.trim();
    if rest.is_empty() {
        return Ok(None);
    }
    if let Some(m) = rest.strip_prefix("msg:") {
        return Ok(Some(Match::Exact(m.trim().to_string())));
    }
    if let Some(r) = rest.strip_prefix("regex:") {
        return Ok(Some(Match::Regex(r.trim().to_string())));
    }
    Err(format!("bad expectation {rest:?}"))
}

fn take_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

impl Runner {
    fn new(engine: Engine) -> Self {
        Runner {
            engine,
            storage: MemStorage::new(),
            special: Vec::new(),
        }
    }

    fn run(&mut self, text: &str, evals: &mut Vec<EvalReport>) -> Result<(), String> {
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| {
                let l = l.trim();
                if l.starts_with('#') {
                    ""
                } else {
                    l
                }
            })
            .collect();
        let mut i = 0;
        while i < lines.len() {
            let header = lines[i];
            if header.is_empty() {
                i += 1;
                continue;
            }
            let header_line = i + 1;
            let (word, _) = take_word(header);
            let word = word.to_ascii_lowercase();
            let mut body = Vec::new();
            i += 1;
            if word == "clear" {
                self.storage = MemStorage::new();
                self.special.clear();
                continue;
            }
            let is_eval = word.starts_with("eval");
            while i < lines.len() && !lines[i].is_empty() {
                body.push((i + 1, lines[i]));
                i += 1;
                // A scalar expectation ends an eval block.
                if is_eval && body.last().is_some_and(|(_, l)| series::parse_number(l).is_some()) {
                    break;
                }
            }
            if word.starts_with("load") {
                self.load(header, &body)
                    .map_err(|e| format!("line {header_line}: {e}"))?;
            } else if is_eval {
                let spec = parse_eval(header_line, header, &body).map_err(|e| format!("line {header_line}: {e}"))?;
                let outcome = self.eval(&spec);
                evals.push(EvalReport {
                    line: header_line,
                    expr: spec.expr.clone(),
                    outcome,
                });
            } else {
                return Err(format!("line {header_line}: unknown command {header:?}"));
            }
        }
        Ok(())
    }

    fn load(&mut self, header: &str, body: &[(usize, &str)]) -> Result<(), String> {
        let (cmd, rest) = take_word(header);
        let step = parse_duration(rest.trim())?;
        let nhcb = cmd.eq_ignore_ascii_case("load_with_nhcb");
        let mut defs: BTreeMap<Labels, Vec<Item>> = BTreeMap::new();
        for (line, text) in body {
            let (first, _) = take_word(text);
            if first.ends_with("@st") {
                let metric = first.trim_end_matches("@st");
                let (labels, _) = series::parse_metric(metric).map_err(|e| format!("line {line}: {e}"))?;
                self.special.push((labels, START_TIMESTAMP_REASON));
                continue;
            }
            let desc = parse_series(text).map_err(|e| format!("line {line}: {e}"))?;
            defs.insert(desc.labels, desc.items);
        }
        for (labels, items) in defs {
            if items.contains(&Item::Histogram) {
                self.special.push((labels.clone(), HISTOGRAM_REASON));
            }
            if nhcb {
                if let Some(name) = labels.metric_name() {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        if let Some(base) = name.strip_suffix(suffix) {
                            let base_labels = labels.builder().set(model::METRIC_NAME, base).del("le").build();
                            self.special.push((base_labels, HISTOGRAM_REASON));
                        }
                    }
                }
            }
            let samples: Vec<model::Sample> = items
                .iter()
                .enumerate()
                .filter_map(|(k, item)| match item {
                    Item::Float(v) => Some(model::Sample::new(k as i64 * step, *v)),
                    _ => None,
                })
                .collect();
            if !samples.is_empty() {
                self.storage.add(labels, &samples);
            }
        }
        Ok(())
    }

    fn eval(&self, spec: &EvalSpec) -> EvalOutcome {
        if let Some(reason) = unsupported_syntax(&spec.expr) {
            return EvalOutcome::Skipped { reason: reason.into() };
        }
        if spec.has_histograms {
            return EvalOutcome::Skipped {
                reason: HISTOGRAM_REASON.into(),
            };
        }
        let inner = match self.storage.querier(&model::TenantId::default()) {
            Ok(q) => q,
            Err(e) => {
                return EvalOutcome::Failed {
                    expected: "a querier".into(),
                    got: e.to_string(),
                }
            }
        };
        let querier = TrackingQuerier {
            inner,
            special: &self.special,
            touched: Mutex::new(BTreeSet::new()),
        };
        let result = match spec.range {
            Some((start, end, step)) => self.engine.range_query(&querier, &spec.expr, start, end, step),
            None => self.engine.instant_query(&querier, &spec.expr, spec.at),
        };
        if let Some(reason) = querier.touched.lock().ok().and_then(|t| t.iter().next().copied()) {
            return EvalOutcome::Skipped { reason: reason.into() };
        }
        if let Err(QueryError::Parse { message }) = &result {
            if let Some(reason) = experimental_syntax(&spec.expr) {
                // Without the position, so that skips group by reason.
                let message = message.split_once("parse error: ").map_or(message.as_str(), |(_, m)| m);
                return EvalOutcome::Skipped {
                    reason: format!("{reason} (parser: {message})"),
                };
            }
        }
        let was_scalar = matches!(&result, Ok(out) if matches!(out.value, crate::Value::Scalar { .. }));
        let outcome = compare::check(spec, result);
        if outcome != EvalOutcome::Passed || !needs_range_cross_check(spec) {
            return outcome;
        }
        // DSL §7.2: the instant query must give the same result when run as a range query.
        let t = spec.at;
        let ranged = self
            .engine
            .range_query(&querier, &spec.expr, t - 60_000, t + 60_000, 60_000);
        let ranged = match ranged {
            Ok(out) => out,
            Err(e) => {
                return EvalOutcome::Failed {
                    expected: "range-mode cross-check to succeed".into(),
                    got: e.to_string(),
                }
            }
        };
        if spec.ordered {
            return EvalOutcome::Passed;
        }
        let crate::Value::Matrix(series) = ranged.value else {
            return EvalOutcome::Passed;
        };
        let at_t: Vec<crate::VectorSample> = series
            .into_iter()
            .filter_map(|s| {
                s.samples.iter().find(|p| p.t == t).map(|p| crate::VectorSample {
                    labels: s.labels.clone(),
                    t,
                    v: p.v,
                })
            })
            .collect();
        let value = if was_scalar {
            match at_t.first() {
                Some(s) if at_t.len() == 1 => crate::Value::Scalar { t, v: s.v },
                _ => crate::Value::Vector(at_t),
            }
        } else {
            crate::Value::Vector(at_t)
        };
        match compare::check_value(spec, &value) {
            Ok(()) => EvalOutcome::Passed,
            Err(why) => EvalOutcome::Failed {
                expected: format!("(range-mode cross-check) {why}"),
                got: compare::render_value(&value),
            },
        }
    }
}

/// Tells whether an instant eval is also run in range mode (DSL §7.2).
fn needs_range_cross_check(spec: &EvalSpec) -> bool {
    spec.range.is_none()
        && spec.range_vector.is_none()
        && spec.string.is_none()
        && spec.expect_fail.is_none()
        && !["start()", "end()", "range()", "step()"]
            .iter()
            .any(|f| spec.expr.contains(f))
}

/// Features the engine declares unsupported, recognised from the query text.
fn unsupported_syntax(expr: &str) -> Option<&'static str> {
    let re = |p: &str, s: &str| regex::Regex::new(p).map(|r| r.is_match(s)).unwrap_or(false);
    if re(r"\binfo\s*\(", expr) {
        return Some("info() function");
    }
    if re(r"\bstart_timestamp\s*\(", expr) {
        return Some(START_TIMESTAMP_REASON);
    }
    if re(r"\bhistogram_quantiles\s*\(", expr) {
        return Some(HISTOGRAM_REASON);
    }
    None
}

/// Experimental syntax that promql-parser 0.11 does not parse.
fn experimental_syntax(expr: &str) -> Option<&'static str> {
    let re = |p: &str| regex::Regex::new(p).map(|r| r.is_match(expr)).unwrap_or(false);
    if re(r"\b(anchored|smoothed)\b") {
        return Some("extended range selectors (anchored/smoothed)");
    }
    if re(r"[<>]/") {
        return Some("native histogram trim operators (>/, </)");
    }
    None
}

fn parse_eval(line: usize, header: &str, body: &[(usize, &str)]) -> Result<EvalSpec, String> {
    let _ = line;
    let mut spec = EvalSpec::default();
    let (cmd, rest) = take_word(header);
    let cmd = cmd.to_ascii_lowercase();
    match cmd.as_str() {
        "eval" => {}
        "eval_fail" => spec.expect_fail = Some(None),
        "eval_warn" => spec.any_warn = true,
        "eval_info" => spec.any_info = true,
        "eval_ordered" => spec.ordered = true,
        _ => return Err(format!("unknown eval command {cmd:?}")),
    }
    let (kind, rest) = take_word(rest);
    match kind {
        "instant" => {
            let (at, rest) = take_word(rest);
            if at != "at" {
                return Err("expected 'at' in instant eval".into());
            }
            let (time, rest) = take_word(rest);
            spec.at = parse_duration(time)?;
            spec.expr = rest.trim().to_string();
        }
        "range" => {
            let (from, rest) = take_word(rest);
            let (start, rest) = take_word(rest);
            let (to, rest) = take_word(rest);
            let (end, rest) = take_word(rest);
            let (stepw, rest) = take_word(rest);
            let (step, rest) = take_word(rest);
            if from != "from" || to != "to" || stepw != "step" {
                return Err("malformed range eval".into());
            }
            spec.range = Some((parse_duration(start)?, parse_duration(end)?, parse_duration(step)?));
            spec.expr = rest.trim().to_string();
        }
        _ => return Err(format!("unknown eval kind {kind:?}")),
    }
    for (_, text) in body {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("expect range vector") {
            let (from, rest) = take_word(rest);
            let (start, rest) = take_word(rest);
            let (to, rest) = take_word(rest);
            let (end, rest) = take_word(rest);
            let (stepw, rest) = take_word(rest);
            if from != "from" || to != "to" || stepw != "step" {
                return Err("malformed 'expect range vector'".into());
            }
            spec.range_vector = Some((
                parse_duration(start)?,
                parse_duration(end)?,
                parse_duration(rest.trim())?,
            ));
            continue;
        }
        if let Some(rest) = text.strip_prefix("expect string") {
            spec.string = Some(series::unquote(rest.trim())?);
            continue;
        }
        let (first, rest) = take_word(text);
        if first == "expect" {
            let (kind, rest) = take_word(rest);
            match kind {
                "fail" => spec.expect_fail = Some(parse_match(rest)?),
                "warn" => spec.warn.push(parse_match(rest)?),
                "info" => spec.info.push(parse_match(rest)?),
                "no_warn" => spec.no_warn = true,
                "no_info" => spec.no_info = true,
                "ordered" => spec.ordered = true,
                _ => return Err(format!("unknown expectation {text:?}")),
            }
            continue;
        }
        if let Some(v) = series::parse_number(text) {
            spec.scalar = Some(v);
            continue;
        }
        let desc = parse_series(text)?;
        if desc.items.contains(&Item::Histogram) {
            spec.has_histograms = true;
        }
        spec.series.push((desc.labels, desc.items));
    }
    Ok(spec)
}
