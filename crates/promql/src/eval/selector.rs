//! Selectors and subqueries: loading series from storage before evaluation
//! (`prepare`), and reading instant vectors, range windows and subquery
//! results at one evaluation time. Layer 2.
//!
//! Windows are left-open: a vector selector at `t` sees `(t - lookback, t]`,
//! a range selector `[r]` sees `(t - r, t]`. Staleness markers end the lookback
//! and are dropped from range windows.

use super::{duration_ms, offset_ms, EvalValue, Evaluator, InstantSample, RangeSeries, DEFAULT_SUBQUERY_STEP_MS};
use crate::QueryError;
use model::{is_stale_nan, MatchOp, Matcher};
use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use std::collections::HashMap;
use storage_api::{Querier, SelectHints, Series};

/// The node address used to key preloaded data.
pub(super) fn key(vs: &VectorSelector) -> usize {
    vs as *const VectorSelector as usize
}

/// Converts the parser's matchers into ours, one conjunction per `or` branch.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, QueryError> {
    let convert = |m: &promql_parser::label::Matcher| -> Result<Matcher, QueryError> {
        let op = match m.op {
            promql_parser::label::MatchOp::Equal => MatchOp::Equal,
            promql_parser::label::MatchOp::NotEqual => MatchOp::NotEqual,
            promql_parser::label::MatchOp::Re(_) => MatchOp::RegexMatch,
            promql_parser::label::MatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| QueryError::Parse { message: e.to_string() })
    };
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        base.push(Matcher::equal(model::METRIC_NAME, name.clone()));
    }
    let mut groups = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        let mut g = base.clone();
        for m in &vs.matchers.matchers {
            g.push(convert(m)?);
        }
        groups.push(g);
    } else {
        for alt in &vs.matchers.or_matchers {
            let mut g = base.clone();
            for m in alt.iter().chain(vs.matchers.matchers.iter()) {
                g.push(convert(m)?);
            }
            groups.push(g);
        }
    }
    Ok(groups)
}

impl Evaluator<'_> {
    /// Loads every selector of `expr` for the whole range of times it can be
    /// evaluated at.
    pub(crate) fn prepare(&mut self, querier: &dyn Querier, expr: &Expr) -> Result<(), QueryError> {
        super::position::collect_calls(expr, &mut self.calls);
        let mut needs: Vec<(&VectorSelector, i64, i64)> = Vec::new();
        self.collect_ranges(expr, self.start, self.end, &mut needs);
        for (vs, mint, maxt) in needs {
            let groups = selector_matchers(vs)?;
            let hints = SelectHints {
                start: mint,
                end: maxt,
                max_samples: Some(self.opts.max_samples),
            };
            let mut series: Vec<Series> = Vec::new();
            if groups.len() == 1 {
                series = querier.select(&groups[0], &hints)?;
            } else {
                let mut merged: HashMap<model::Labels, Series> = HashMap::new();
                for g in &groups {
                    for s in querier.select(g, &hints)? {
                        merged.entry(s.labels.clone()).or_insert(s);
                    }
                }
                series.extend(merged.into_values());
                series.sort_by(|a, b| a.labels.cmp(&b.labels));
            }
            let entry = self.data.entry(key(vs)).or_default();
            if entry.is_empty() {
                *entry = series;
            } else {
                // The same node reached twice (cannot happen in a tree, but stay safe).
                entry.extend(series);
            }
            self.check_deadline()?;
        }
        Ok(())
    }

    /// Finds, for each selector, the time range `[mint, maxt]` it reads when
    /// its expression is evaluated at times in `[start, end]`.
    fn collect_ranges<'e>(&self, expr: &'e Expr, start: i64, end: i64, out: &mut Vec<(&'e VectorSelector, i64, i64)>) {
        let lookback = self.opts.lookback_delta_ms;
        let resolve = |at: &Option<promql_parser::parser::AtModifier>, off: i64| match at {
            Some(a) => {
                let t = self.at_ms(a) - off;
                (t, t)
            }
            None => (start.saturating_sub(off), end.saturating_sub(off)),
        };
        match expr {
            Expr::VectorSelector(vs) => {
                let (s, e) = resolve(&vs.at, offset_ms(&vs.offset));
                out.push((vs, s.saturating_sub(lookback).saturating_add(1), e));
            }
            Expr::MatrixSelector(ms) => {
                let (s, e) = resolve(&ms.vs.at, offset_ms(&ms.vs.offset));
                out.push((&ms.vs, s.saturating_sub(duration_ms(&ms.range)).saturating_add(1), e));
            }
            Expr::Subquery(sq) => {
                let (s, e) = resolve(&sq.at, offset_ms(&sq.offset));
                self.collect_ranges(&sq.expr, s.saturating_sub(duration_ms(&sq.range)), e, out);
            }
            Expr::Paren(p) => self.collect_ranges(&p.expr, start, end, out),
            Expr::Unary(u) => self.collect_ranges(&u.expr, start, end, out),
            Expr::Binary(b) => {
                self.collect_ranges(&b.lhs, start, end, out);
                self.collect_ranges(&b.rhs, start, end, out);
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.collect_ranges(p, start, end, out);
                }
                self.collect_ranges(&a.expr, start, end, out);
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.collect_ranges(a, start, end, out);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    pub(super) fn reference_time(&self, at: &Option<promql_parser::parser::AtModifier>, offset: i64, t: i64) -> i64 {
        match at {
            Some(a) => self.at_ms(a),
            None => t,
        }
        .saturating_sub(offset)
    }

    /// The instant vector of `vs` at `t`: per series, the latest sample in
    /// `(t - lookback, t]` unless it is a staleness marker.
    pub(crate) fn eval_vector_selector(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> Result<Vec<InstantSample>, QueryError> {
        let reft = self.reference_time(&vs.at, offset_ms(&vs.offset), t);
        let mint = reft.saturating_sub(self.opts.lookback_delta_ms);
        let mut out = Vec::new();
        if let Some(series) = self.data.get(&key(vs)) {
            for s in series {
                let idx = s.samples.partition_point(|p| p.t <= reft);
                if idx == 0 {
                    continue;
                }
                let p = s.samples[idx - 1];
                if p.t <= mint || is_stale_nan(p.v) {
                    continue;
                }
                out.push(InstantSample {
                    labels: s.labels.clone(),
                    t: p.t,
                    v: p.v,
                    drop_name: false,
                });
            }
        }
        self.add_samples(out.len())?;
        Ok(out)
    }

    /// The range vector of `ms` at `t`: per series, the samples in
    /// `(t - range, t]` without staleness markers; series without samples are left out.
    pub(crate) fn eval_matrix_selector(&mut self, ms: &MatrixSelector, t: i64) -> Result<Vec<RangeSeries>, QueryError> {
        let mut out = Vec::new();
        self.for_each_window(ms, t, |labels, points| {
            out.push(RangeSeries {
                labels: labels.clone(),
                points: points.to_vec(),
                drop_name: false,
            });
        })?;
        Ok(out)
    }

    /// Calls `f` with each series' samples of the range vector of `ms` at
    /// `t` (see [`Self::eval_matrix_selector`]), borrowed from the loaded
    /// data where no staleness marker has to be dropped, and counts them
    /// against the sample limit.
    pub(crate) fn for_each_window(
        &mut self,
        ms: &MatrixSelector,
        t: i64,
        mut f: impl FnMut(&model::Labels, &[model::Sample]),
    ) -> Result<(), QueryError> {
        let reft = self.reference_time(&ms.vs.at, offset_ms(&ms.vs.offset), t);
        let mint = reft.saturating_sub(duration_ms(&ms.range));
        let mut n = 0;
        let mut without_stale: Vec<model::Sample> = Vec::new();
        if let Some(series) = self.data.get(&key(&ms.vs)) {
            for s in series {
                let lo = s.samples.partition_point(|p| p.t <= mint);
                let hi = s.samples.partition_point(|p| p.t <= reft);
                let Some(window) = s.samples.get(lo..hi) else {
                    continue;
                };
                let points = if window.iter().any(|p| is_stale_nan(p.v)) {
                    without_stale.clear();
                    without_stale.extend(window.iter().copied().filter(|p| !is_stale_nan(p.v)));
                    &without_stale[..]
                } else {
                    window
                };
                if points.is_empty() {
                    continue;
                }
                n += points.len();
                f(&s.labels, points);
            }
        }
        self.add_samples(n)
    }

    /// Evaluates the inner expression of a subquery at its steps in
    /// `(t - range, t]`, aligned to multiples of the step.
    pub(crate) fn eval_subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<Vec<RangeSeries>, QueryError> {
        let reft = self.reference_time(&sq.at, offset_ms(&sq.offset), t);
        let step = match &sq.step {
            Some(d) if duration_ms(d) > 0 => duration_ms(d),
            _ => DEFAULT_SUBQUERY_STEP_MS,
        };
        let range_start = reft.saturating_sub(duration_ms(&sq.range));
        // Fail before evaluating when the subquery would certainly hold more
        // samples than allowed: its steps times the fewest samples the inner
        // expression yields at any step. (Step by step it would fail the same
        // way, but only after evaluating `max_samples` steps.)
        let num_steps = reft.div_euclid(step).saturating_sub(range_start.div_euclid(step));
        let at_least = u128::try_from(num_steps)
            .unwrap_or(0)
            .saturating_mul(min_samples_per_step(&sq.expr) as u128);
        if at_least.saturating_add(self.step_samples as u128) > self.opts.max_samples as u128 {
            return Err(QueryError::TooManySamples {
                limit: self.opts.max_samples,
            });
        }
        let mut ts = (range_start.div_euclid(step) + 1).saturating_mul(step);
        let mut out: Vec<RangeSeries> = Vec::new();
        let mut index: HashMap<model::Labels, usize> = HashMap::new();
        let mut n = 0;
        while ts <= reft {
            self.check_deadline()?;
            match self.eval(&sq.expr, ts)? {
                EvalValue::Scalar(v) => {
                    push(&mut out, &mut index, model::Labels::empty(), false, ts, v);
                    n += 1;
                }
                EvalValue::Vector(samples) => {
                    for s in samples {
                        push(&mut out, &mut index, s.labels, s.drop_name, ts, s.v);
                        n += 1;
                    }
                }
                other => {
                    return Err(QueryError::Execution(format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        other.type_name()
                    )))
                }
            }
            self.add_samples(std::mem::take(&mut n))?;
            match ts.checked_add(step) {
                Some(next) => ts = next,
                None => break,
            }
        }
        Ok(out)
    }
}

fn push(
    out: &mut Vec<RangeSeries>,
    index: &mut HashMap<model::Labels, usize>,
    labels: model::Labels,
    drop_name: bool,
    t: i64,
    v: f64,
) {
    let i = match index.get(&labels) {
        Some(&i) => i,
        None => {
            index.insert(labels.clone(), out.len());
            out.push(RangeSeries {
                labels,
                points: Vec::new(),
                drop_name,
            });
            out.len() - 1
        }
    };
    out[i].points.push(model::Sample::new(t, v));
}

/// A lower bound of the number of samples `expr` yields at any evaluation
/// time: 1 for scalars and for expressions that always return one sample
/// (`vector(…)`, aggregations without grouping of such), 0 when it depends on
/// the data.
fn min_samples_per_step(expr: &Expr) -> usize {
    use promql_parser::parser::value::ValueType;
    match expr {
        Expr::NumberLiteral(_) => 1,
        Expr::Paren(p) => min_samples_per_step(&p.expr),
        Expr::Unary(u) => min_samples_per_step(&u.expr),
        Expr::Call(c) => match c.func.name {
            "vector" | "time" | "scalar" | "pi" => 1,
            "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "round" | "sgn" | "clamp"
            | "clamp_min" | "clamp_max" | "timestamp" | "sort" | "sort_desc" => {
                c.args.args.first().map_or(0, |a| min_samples_per_step(a))
            }
            _ => 0,
        },
        Expr::Binary(b) => {
            let filters = b.op.is_comparison_operator() && !b.modifier.as_ref().is_some_and(|m| m.return_bool);
            match (b.lhs.value_type(), b.rhs.value_type()) {
                (ValueType::Scalar, ValueType::Scalar) => 1,
                _ if filters => 0,
                (ValueType::Vector, ValueType::Scalar) => min_samples_per_step(&b.lhs),
                (ValueType::Scalar, ValueType::Vector) => min_samples_per_step(&b.rhs),
                _ => 0,
            }
        }
        Expr::Aggregate(a) => match a.op.to_string().to_ascii_lowercase().as_str() {
            "sum" | "avg" | "count" | "group" | "min" | "max" | "stddev" | "stdvar" => {
                min_samples_per_step(&a.expr).min(1)
            }
            _ => 0,
        },
        _ => 0,
    }
}
