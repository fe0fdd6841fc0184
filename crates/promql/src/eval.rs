//! The evaluator: loads every selector once, then evaluates the expression
//! tree step by step (`Evaluator::eval(expr, t)`).
//!
//! Range queries evaluate what they can series by series over all steps
//! instead (`eval/range.rs`).
//!
//! Owns the engine entry points, the internal value types, selectors,
//! subqueries, sample accounting, timeouts and the final name removal.
//! Binary operators live in `eval/binary.rs`, functions and aggregations in
//! `functions/`. Layer 2.
//!
//! Invariants:
//! - Range windows and the lookback window are left-open: `(t - range, t]`.
//! - Staleness markers are never returned as values; a marker ends the lookback.
//! - Samples marked `drop_name` keep `__name__` until the end of evaluation.

mod annotations;
mod binary;
pub(crate) mod position;
pub(crate) mod range;
mod selector;

use crate::{EngineOptions, QueryError, QueryOutput, QueryStats, Value, VectorSample};
pub(crate) use annotations::Annotations;
use model::Labels;
use promql_parser::parser::{AtModifier, Expr, Offset};
use std::collections::{HashMap, HashSet};
use std::time::Instant;
use storage_api::{Querier, Series};

/// Default resolution of a subquery without an explicit step (Prometheus' 1m).
pub(crate) const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// One element of an instant vector during evaluation.
#[derive(Debug, Clone)]
pub(crate) struct InstantSample {
    pub(crate) labels: Labels,
    /// The timestamp of the underlying raw sample for plain selectors; the
    /// evaluation time for everything else.
    pub(crate) t: i64,
    pub(crate) v: f64,
    /// The metric name must be removed at the end of evaluation.
    pub(crate) drop_name: bool,
}

/// One series of a range vector during evaluation.
#[derive(Debug, Clone)]
pub(crate) struct RangeSeries {
    pub(crate) labels: Labels,
    pub(crate) points: Vec<model::Sample>,
    pub(crate) drop_name: bool,
}

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum EvalValue {
    Scalar(f64),
    String(String),
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
}

impl EvalValue {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            EvalValue::Scalar(_) => "scalar",
            EvalValue::String(_) => "string",
            EvalValue::Vector(_) => "vector",
            EvalValue::Matrix(_) => "matrix",
        }
    }
}

/// The PromQL engine. Cheap to share; holds only options.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    /// Creates an engine with the given limits.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// Evaluates `query` at `time_ms`.
    pub fn instant_query(&self, querier: &dyn Querier, query: &str, time_ms: i64) -> Result<QueryOutput, QueryError> {
        let expr = parse(query, 0, 0)?;
        let mut ev = Evaluator::new(&self.opts, query, time_ms, time_ms, 0);
        ev.prepare(querier, &expr)?;
        let value = ev.eval(&expr, time_ms)?;
        let value = match value {
            EvalValue::Scalar(v) => Value::Scalar { t: time_ms, v },
            EvalValue::String(v) => Value::String { t: time_ms, v },
            EvalValue::Vector(samples) => {
                let samples = finish_vector(samples)?;
                Value::Vector(
                    samples
                        .into_iter()
                        .map(|s| VectorSample {
                            labels: s.labels,
                            t: time_ms,
                            v: s.v,
                        })
                        .collect(),
                )
            }
            EvalValue::Matrix(series) => Value::Matrix(finish_matrix(series)?),
        };
        Ok(ev.output(value))
    }

    /// Evaluates `query` at every step from `start_ms` to `end_ms` inclusive.
    pub fn range_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        self.range_query_impl(querier, query, start_ms, end_ms, step_ms, true)
    }

    /// [`Engine::range_query`] with evaluation strictly step by step, to
    /// check the range evaluation (`eval/range.rs`) against.
    #[cfg(test)]
    pub(crate) fn range_query_stepwise(
        &self,
        querier: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryOutput, QueryError> {
        self.range_query_impl(querier, query, start_ms, end_ms, step_ms, false)
    }

    fn range_query_impl(
        &self,
        querier: &dyn Querier,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        by_series: bool,
    ) -> Result<QueryOutput, QueryError> {
        if step_ms <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end_ms < start_ms {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let num_points = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms) + 1;
        if num_points > self.opts.max_points_per_series as i128 {
            return Err(QueryError::BadData(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query resolution (?step=XX)",
                self.opts.max_points_per_series
            )));
        }
        let expr = parse(query, step_ms, end_ms.saturating_sub(start_ms))?;
        match expr.value_type() {
            promql_parser::parser::value::ValueType::Vector | promql_parser::parser::value::ValueType::Scalar => {}
            other => {
                let name = match other {
                    promql_parser::parser::value::ValueType::Matrix => "range vector",
                    _ => "string",
                };
                return Err(QueryError::BadData(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                )));
            }
        }
        let mut ev = Evaluator::new(&self.opts, query, start_ms, end_ms, step_ms);
        ev.prepare(querier, &expr)?;
        if by_series {
            if let Some(series) = ev.range_query_direct(&expr)? {
                let value = Value::Matrix(finish_matrix(series)?);
                return Ok(ev.output(value));
            }
            ev.precompute(&expr)?;
        }
        let mut series: Vec<RangeSeries> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut total_points = 0usize;
        let mut t = start_ms;
        while t <= end_ms {
            ev.check_deadline()?;
            ev.begin_step();
            match ev.eval(&expr, t)? {
                EvalValue::Scalar(v) => {
                    push_point(&mut series, &mut index, Labels::empty(), false, t, v)?;
                    total_points += 1;
                }
                EvalValue::Vector(samples) => {
                    for s in samples {
                        push_point(&mut series, &mut index, s.labels, s.drop_name, t, s.v)?;
                        total_points += 1;
                    }
                }
                other => {
                    return Err(QueryError::Execution(format!(
                        "invalid expression type \"{}\" for range query",
                        other.type_name()
                    )))
                }
            }
            if total_points > self.opts.max_samples {
                return Err(QueryError::TooManySamples {
                    limit: self.opts.max_samples,
                });
            }
            match t.checked_add(step_ms) {
                Some(next) => t = next,
                None => break,
            }
        }
        let value = Value::Matrix(finish_matrix(series)?);
        Ok(ev.output(value))
    }
}

fn push_point(
    series: &mut Vec<RangeSeries>,
    index: &mut HashMap<Labels, usize>,
    labels: Labels,
    drop_name: bool,
    t: i64,
    v: f64,
) -> Result<(), QueryError> {
    let idx = match index.get(&labels) {
        Some(&i) => i,
        None => {
            index.insert(labels.clone(), series.len());
            series.push(RangeSeries {
                labels,
                points: Vec::new(),
                drop_name,
            });
            series.len() - 1
        }
    };
    if series[idx].points.last().is_some_and(|p| p.t == t) {
        return Err(duplicate_labelset_error());
    }
    series[idx].points.push(model::Sample::new(t, v));
    Ok(())
}

/// Labels removed together with the metric name.
const NAME_LIKE_LABELS: [&str; 3] = [model::METRIC_NAME, "__type__", "__unit__"];

fn duplicate_labelset_error() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Drops marked names and checks that the result has unique label sets.
fn finish_vector(samples: Vec<InstantSample>) -> Result<Vec<InstantSample>, QueryError> {
    let mut seen = HashSet::with_capacity(samples.len());
    let mut out = Vec::with_capacity(samples.len());
    for mut s in samples {
        if s.drop_name {
            s.labels = s.labels.without(&NAME_LIKE_LABELS);
            s.drop_name = false;
        }
        if !seen.insert(s.labels.clone()) {
            return Err(duplicate_labelset_error());
        }
        out.push(s);
    }
    Ok(out)
}

/// Drops marked names, merges series that became equal (an error if they
/// have points at the same time) and sorts by labels.
fn finish_matrix(series: Vec<RangeSeries>) -> Result<Vec<Series>, QueryError> {
    let mut merged: HashMap<Labels, Vec<model::Sample>> = HashMap::with_capacity(series.len());
    let mut needs_sort = false;
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        let labels = if s.drop_name {
            s.labels.without(&NAME_LIKE_LABELS)
        } else {
            s.labels
        };
        match merged.entry(labels) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                e.get_mut().extend(s.points);
                needs_sort = true;
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(s.points);
            }
        }
    }
    let mut out: Vec<Series> = Vec::with_capacity(merged.len());
    for (labels, mut samples) in merged {
        if needs_sort {
            samples.sort_by_key(|p| p.t);
            if samples.windows(2).any(|w| w[0].t == w[1].t) {
                return Err(duplicate_labelset_error());
            }
        }
        out.push(Series { labels, samples });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Parses a query; duration expressions the parser does not know are
/// evaluated first (see `duration_expr`) with the query's step and range.
fn parse(query: &str, step_ms: i64, range_ms: i64) -> Result<Expr, QueryError> {
    let err = match parse_once(query) {
        Ok(expr) => return Ok(expr),
        Err(err) => err,
    };
    let rewritten = crate::duration_expr::rewrite(query, step_ms, range_ms).and_then(|q| parse_once(&q).ok());
    match (rewritten, err) {
        (Some(expr), _) => Ok(expr),
        (None, QueryError::Parse { message }) => Err(QueryError::Parse {
            message: crate::parse_error::with_position(query, &message),
        }),
        (None, err) => Err(err),
    }
}

pub(crate) fn parse_once(query: &str) -> Result<Expr, QueryError> {
    // Byte escapes as Go reads them (see `go_strings`).
    let rewritten = crate::go_strings::rewrite(query);
    let query = rewritten.as_deref().unwrap_or(query);
    // The parser is not hardened against every input; never let it take the process down.
    let parsed = std::panic::catch_unwind(|| promql_parser::parser::parse(query));
    match parsed {
        Ok(Ok(expr)) => Ok(expr),
        Ok(Err(message)) => Err(QueryError::Parse { message }),
        Err(_) => Err(QueryError::Parse {
            message: "invalid promql query".into(),
        }),
    }
}

/// Turns an offset into signed milliseconds.
pub(crate) fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

pub(crate) fn duration_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Evaluation state of one query.
pub(crate) struct Evaluator<'a> {
    pub(crate) opts: &'a EngineOptions,
    pub(crate) query: &'a str,
    /// The query's first and last evaluation times (`start()` / `end()`).
    pub(crate) start: i64,
    pub(crate) end: i64,
    /// The query's step (0 for instant queries).
    pub(crate) step: i64,
    /// Loaded series per selector node (keyed by the node's address).
    data: HashMap<usize, Vec<Series>>,
    deadline: Instant,
    steps_since_check: usize,
    pub(crate) annotations: Annotations,
    step_samples: usize,
    stats: QueryStats,
    /// Calls and aggregations in source order, for annotation positions.
    calls: Vec<(usize, String)>,
    /// Sub-expressions computed for the whole range (keyed by node address).
    precomputed: HashMap<usize, range::Precomputed>,
}

impl<'a> Evaluator<'a> {
    fn new(opts: &'a EngineOptions, query: &'a str, start: i64, end: i64, step: i64) -> Self {
        let now = Instant::now();
        Evaluator {
            opts,
            query,
            start,
            end,
            step,
            data: HashMap::new(),
            deadline: now
                .checked_add(opts.timeout)
                .unwrap_or(now + std::time::Duration::from_secs(3600)),
            steps_since_check: 0,
            annotations: Annotations::default(),
            step_samples: 0,
            stats: QueryStats::default(),
            calls: Vec::new(),
            precomputed: HashMap::new(),
        }
    }

    fn output(self, value: Value) -> QueryOutput {
        QueryOutput {
            value,
            warnings: self.annotations.into_strings(),
            stats: self.stats,
        }
    }

    pub(crate) fn check_deadline(&mut self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Checks the deadline every so many calls, so hot loops stay cheap.
    pub(crate) fn tick(&mut self) -> Result<(), QueryError> {
        self.steps_since_check += 1;
        if self.steps_since_check >= 64 {
            self.steps_since_check = 0;
            self.check_deadline()?;
        }
        Ok(())
    }

    fn begin_step(&mut self) {
        self.step_samples = 0;
    }

    /// Accounts for `n` samples touched in the current step.
    pub(crate) fn add_samples(&mut self, n: usize) -> Result<(), QueryError> {
        self.step_samples += n;
        self.stats.total_samples += n;
        if self.step_samples > self.stats.peak_samples {
            self.stats.peak_samples = self.step_samples;
        }
        if self.step_samples > self.opts.max_samples {
            return Err(QueryError::TooManySamples {
                limit: self.opts.max_samples,
            });
        }
        Ok(())
    }

    /// Resolves an `@` modifier to milliseconds.
    pub(crate) fn at_ms(&self, at: &AtModifier) -> i64 {
        match at {
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
            AtModifier::At(time) => match time.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => duration_ms(&d),
                Err(e) => -duration_ms(&e.duration()),
            },
        }
    }

    /// Evaluates `expr` at time `t` (ms).
    pub(crate) fn eval(&mut self, expr: &Expr, t: i64) -> Result<EvalValue, QueryError> {
        self.tick()?;
        if !self.precomputed.is_empty() {
            if let Some(v) = self.take_precomputed(expr, t)? {
                return Ok(EvalValue::Vector(v));
            }
        }
        match expr {
            Expr::NumberLiteral(n) => Ok(EvalValue::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(EvalValue::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                EvalValue::Scalar(v) => Ok(EvalValue::Scalar(-v)),
                EvalValue::Vector(mut samples) => {
                    for s in &mut samples {
                        s.v = -s.v;
                        s.drop_name = true;
                        s.t = t;
                    }
                    Ok(EvalValue::Vector(samples))
                }
                other => Err(QueryError::Execution(format!(
                    "unary expression only allowed on expressions of type scalar or vector, got: {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => self.eval_vector_selector(vs, t).map(EvalValue::Vector),
            Expr::MatrixSelector(ms) => self.eval_matrix_selector(ms, t).map(EvalValue::Matrix),
            Expr::Subquery(sq) => self.eval_subquery(sq, t).map(EvalValue::Matrix),
            Expr::Binary(b) => self.eval_binary(b, t),
            Expr::Aggregate(a) => self.eval_aggregate(a, t),
            Expr::Call(c) => self.eval_call(c, t),
            Expr::Extension(_) => Err(QueryError::Execution("extension expressions are not supported".into())),
        }
    }

    /// Evaluates `expr` and requires an instant vector.
    pub(crate) fn eval_vector(&mut self, expr: &Expr, t: i64) -> Result<Vec<InstantSample>, QueryError> {
        match self.eval(expr, t)? {
            EvalValue::Vector(v) => Ok(v),
            other => Err(QueryError::Execution(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `expr` and requires a scalar.
    pub(crate) fn eval_scalar(&mut self, expr: &Expr, t: i64) -> Result<f64, QueryError> {
        match self.eval(expr, t)? {
            EvalValue::Scalar(v) => Ok(v),
            other => Err(QueryError::Execution(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `expr` and requires a string.
    pub(crate) fn eval_string(&mut self, expr: &Expr, t: i64) -> Result<String, QueryError> {
        match self.eval(expr, t)? {
            EvalValue::String(v) => Ok(v),
            other => Err(QueryError::Execution(format!(
                "expected string, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates `expr` and requires a range vector.
    pub(crate) fn eval_matrix(&mut self, expr: &Expr, t: i64) -> Result<Vec<RangeSeries>, QueryError> {
        match self.eval(expr, t)? {
            EvalValue::Matrix(v) => Ok(v),
            other => Err(QueryError::Execution(format!(
                "expected range vector, got {}",
                other.type_name()
            ))),
        }
    }
}
