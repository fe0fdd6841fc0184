//! Range evaluation across all steps at once, for the expressions where it
//! pays: selectors, range functions over a matrix selector (`rate`,
//! `increase`, `*_over_time`, …), the simple aggregations (`sum`, `avg`,
//! `count`, `group`, `min`, `max`, `stddev`, `stdvar`) and binary operators
//! (`range/binary.rs`) over any of these. Layer 2.
//!
//! Prometheus-style: each series is walked once over the whole range with
//! two pointers sliding over its sorted samples, producing the value at every
//! step; an aggregation computes each series' group once and accumulates per
//! step into that group's cells. Results are exactly those of step-by-step
//! evaluation (same functions, same summation order per group and step, same
//! sample accounting and annotations at the same steps).
//!
//! A range query whose whole expression has this shape is answered directly;
//! otherwise such sub-expressions are computed up front and handed out step
//! by step when `Evaluator::eval` reaches them (`take_precomputed`).

mod binary;

use super::{offset_ms, Evaluator, InstantSample};
use crate::functions::aggregate::Group;
use crate::functions::rollup::{
    extrapolated_rate, not_counter_message, not_counter_name, rollup_value, unwrap_parens, Window,
};
use crate::QueryError;
use model::{is_stale_nan, Labels, Sample};
use promql_parser::parser::{AggregateExpr, Call, Expr, MatrixSelector, VectorSelector};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Instant;

/// Range functions without scalar parameters, evaluated series by series.
pub(crate) const SLIDING_FUNCS: [&str; 23] = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "resets",
    "changes",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "first_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
];

/// Aggregations without a parameter, accumulated per group and step.
const AGG_OPS: [&str; 8] = ["sum", "avg", "count", "group", "max", "min", "stddev", "stdvar"];

/// Output series × steps above which a sub-expression under a step-by-step
/// parent is left to step-by-step evaluation (memory bound).
const MAX_PRECOMPUTED_POINTS: usize = 4_000_000;

/// Where a range evaluation is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    /// The whole query: no size bound.
    Whole,
    /// A sub-expression handed out step by step to a step-by-step parent:
    /// bounded, and not a plain selector.
    Precompute,
    /// The operand of a range-evaluated aggregation or binary operator: bounded.
    Operand,
}

/// An expression producing one output series per loaded series.
enum Source<'e> {
    Selector(&'e VectorSelector),
    Rollup {
        name: &'e str,
        call: &'e Call,
        ms: &'e MatrixSelector,
    },
}

impl<'e> Source<'e> {
    fn of(expr: &'e Expr) -> Option<Self> {
        match unwrap_parens(expr) {
            Expr::VectorSelector(vs) => Some(Source::Selector(vs)),
            Expr::Call(call) => {
                let name = call.func.name;
                if !SLIDING_FUNCS.contains(&name) {
                    return None;
                }
                if call.args.args.len() != 1 {
                    return None;
                }
                match unwrap_parens(&call.args.args[0]) {
                    Expr::MatrixSelector(ms) => Some(Source::Rollup { name, call, ms }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn selector(&self) -> &'e VectorSelector {
        match self {
            Source::Selector(vs) => vs,
            Source::Rollup { ms, .. } => &ms.vs,
        }
    }

    /// Whether the output samples are marked for name removal.
    fn drop_name(&self) -> bool {
        match self {
            Source::Selector(_) => false,
            Source::Rollup { name, .. } => !matches!(*name, "first_over_time" | "last_over_time"),
        }
    }
}

/// An info first raised at (step, series index), with its text and position.
type Info = (usize, usize, String, Option<(usize, usize)>);

/// One point of a range result.
#[derive(Debug, Clone, Copy)]
struct Pt {
    /// The step index.
    k: usize,
    /// The sample's time as step-by-step evaluation reports it.
    t: i64,
    v: f64,
    /// Position of the sample in the step's vector (smaller first).
    order: usize,
}

/// One output series over the range.
struct OutSeries {
    labels: Labels,
    drop_name: bool,
    points: Vec<Pt>,
}

/// An expression evaluated at every step of the range.
pub(crate) struct RangeResult {
    series: Vec<OutSeries>,
    /// Samples loaded from storage per step.
    counts: Vec<usize>,
    /// Infos first raised at (step, series) with their position.
    infos: Vec<Info>,
}

/// A precomputed sub-expression, handed out step by step.
pub(crate) struct Precomputed {
    res: RangeResult,
    /// Per series, the next point to hand out.
    cursors: Vec<usize>,
    /// The next step expected.
    next_step: usize,
}

impl Evaluator<'_> {
    /// The number of steps of the range query.
    fn num_steps(&self) -> usize {
        usize::try_from((self.end - self.start) / self.step + 1).unwrap_or(0)
    }

    fn step_time(&self, k: usize) -> i64 {
        self.start + k as i64 * self.step
    }

    fn check_deadline_now(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Evaluates `expr` at every step if it has a supported shape, in the
    /// given context (see [`Ctx`]); `None` when it has not, or when holding
    /// its result for the whole range would take too much memory.
    fn eval_range_node(&self, expr: &Expr, ctx: Ctx) -> Result<Option<RangeResult>, QueryError> {
        if self.step <= 0 {
            return Ok(None);
        }
        if let Some(src) = Source::of(expr) {
            if ctx != Ctx::Whole {
                // Not results too big to hold for the whole range, nor plain
                // selectors under step-by-step parents (nothing to gain).
                let points = self.loaded(src.selector()).len().saturating_mul(self.num_steps());
                if (ctx == Ctx::Precompute && matches!(src, Source::Selector(_))) || points > MAX_PRECOMPUTED_POINTS {
                    return Ok(None);
                }
            }
            return self.eval_source(&src).map(Some);
        }
        match unwrap_parens(expr) {
            Expr::Aggregate(a) => self.eval_range_aggregate(a, ctx != Ctx::Whole),
            Expr::Binary(b) => self.eval_range_binary(b),
            _ => Ok(None),
        }
    }

    /// Computes the points of series `i` of `src` into `buf` (step index,
    /// sample time, value), counting loaded samples and noting infos.
    fn source_series(
        &self,
        src: &Source<'_>,
        series: &storage_api::Series,
        i: usize,
        buf: &mut Vec<(usize, i64, f64)>,
        counts: &mut [usize],
        infos: &mut Vec<Info>,
    ) {
        buf.clear();
        match src {
            Source::Selector(vs) => {
                let off = offset_ms(&vs.offset);
                let lookback = self.opts.lookback_delta_ms;
                let samples = &series.samples;
                let mut idx = 0;
                for (k, count) in counts.iter_mut().enumerate() {
                    let reft = self.reference_time(&vs.at, off, self.step_time(k));
                    while idx < samples.len() && samples[idx].t <= reft {
                        idx += 1;
                    }
                    if idx == 0 {
                        continue;
                    }
                    let p = samples[idx - 1];
                    if p.t <= reft.saturating_sub(lookback) || is_stale_nan(p.v) {
                        continue;
                    }
                    *count += 1;
                    buf.push((k, p.t, p.v));
                }
            }
            Source::Rollup { name, call, ms } => {
                let off = offset_ms(&ms.vs.offset);
                let range = super::duration_ms(&ms.range);
                let samples: Cow<'_, [Sample]> = if series.samples.iter().any(|p| is_stale_nan(p.v)) {
                    Cow::Owned(series.samples.iter().copied().filter(|p| !is_stale_nan(p.v)).collect())
                } else {
                    Cow::Borrowed(&series.samples)
                };
                let mut info_at: Option<usize> = None;
                // Counter resets (a sample below its predecessor) by position:
                // windows without one skip `rate`'s and `increase`'s reset scan.
                let counter = matches!(*name, "rate" | "increase");
                let resets: Vec<usize> = if counter {
                    (1..samples.len())
                        .filter(|&j| samples[j].v < samples[j - 1].v)
                        .collect()
                } else {
                    Vec::new()
                };
                let mut next_reset = 0;
                let (mut lo, mut hi) = (0, 0);
                for (k, count) in counts.iter_mut().enumerate() {
                    let t = self.step_time(k);
                    let reft = self.reference_time(&ms.vs.at, off, t);
                    let mint = reft.saturating_sub(range);
                    while lo < samples.len() && samples[lo].t <= mint {
                        lo += 1;
                    }
                    hi = hi.max(lo);
                    while hi < samples.len() && samples[hi].t <= reft {
                        hi += 1;
                    }
                    if lo >= hi {
                        continue;
                    }
                    let points = &samples[lo..hi];
                    *count += points.len();
                    if points.len() >= 2 && info_at.is_none() {
                        info_at = Some(k);
                    }
                    let window = Window { start: mint, end: reft };
                    let value = if counter {
                        while next_reset < resets.len() && resets[next_reset] <= lo {
                            next_reset += 1;
                        }
                        let reset_inside = resets.get(next_reset).is_some_and(|&j| j < hi);
                        extrapolated_rate(points, window, true, *name == "rate", reset_inside)
                    } else {
                        rollup_value(name, points, window, t, &[])
                    };
                    if let Some(v) = value {
                        buf.push((k, t, v));
                    }
                }
                if let Some(k) = info_at {
                    if let Some(metric) = not_counter_name(name, &series.labels) {
                        let msg = not_counter_message(metric);
                        match infos.iter_mut().find(|x| x.2 == msg) {
                            Some(x) => {
                                if (k, i) < (x.0, x.1) {
                                    x.0 = k;
                                    x.1 = i;
                                }
                            }
                            None => infos.push((k, i, msg, self.arg_position(call, 0))),
                        }
                    }
                }
            }
        }
    }

    fn loaded(&self, vs: &VectorSelector) -> &[storage_api::Series] {
        self.data
            .get(&super::selector::key(vs))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn eval_source(&self, src: &Source<'_>) -> Result<RangeResult, QueryError> {
        let n = self.num_steps();
        let mut counts = vec![0usize; n];
        let mut infos = Vec::new();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        let drop_name = src.drop_name();
        for (i, s) in self.loaded(src.selector()).iter().enumerate() {
            if i % 64 == 0 {
                self.check_deadline_now()?;
            }
            self.source_series(src, s, i, &mut buf, &mut counts, &mut infos);
            if buf.is_empty() {
                continue;
            }
            out.push(OutSeries {
                labels: s.labels.clone(),
                drop_name,
                points: buf.iter().map(|&(k, t, v)| Pt { k, t, v, order: i }).collect(),
            });
        }
        infos.sort_by_key(|x| (x.0, x.1));
        Ok(RangeResult {
            series: out,
            counts,
            infos,
        })
    }

    fn eval_range_aggregate(&self, a: &AggregateExpr, bounded: bool) -> Result<Option<RangeResult>, QueryError> {
        let op = a.op.to_string().to_ascii_lowercase();
        if !AGG_OPS.contains(&op.as_str()) || a.param.is_some() {
            return Ok(None);
        }
        let grouping = crate::functions::aggregate::Grouping::of(&a.modifier);
        let grouping = |labels: &Labels| grouping.key(labels);
        let Some(src) = Source::of(&a.expr) else {
            if !has_range_shape(&a.expr) {
                return Ok(None);
            }
            return match self.eval_range_node(&a.expr, Ctx::Operand)? {
                Some(input) => self.aggregate_result(&op, grouping, input, bounded),
                None => Ok(None),
            };
        };
        let loaded = self.loaded(src.selector());
        // Each series' group, once for the whole range.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
        for (i, s) in loaded.iter().enumerate() {
            let key = grouping(&s.labels);
            match index.get(&key) {
                Some(&g) => groups[g].1.push(i),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![i]));
                }
            }
        }
        drop(index);
        let n = self.num_steps();
        if bounded && groups.len().saturating_mul(n) > MAX_PRECOMPUTED_POINTS {
            return Ok(None);
        }
        let mut counts = vec![0usize; n];
        let mut infos = Vec::new();
        let mut out = Vec::with_capacity(groups.len());
        let mut buf = Vec::new();
        let drop_name = src.drop_name();
        let mut cells: Vec<Option<(Group, usize)>> = Vec::new();
        for (labels, members) in groups {
            self.check_deadline_now()?;
            cells.clear();
            cells.resize_with(n, || None);
            for &i in &members {
                self.source_series(&src, &loaded[i], i, &mut buf, &mut counts, &mut infos);
                for &(k, _, v) in &buf {
                    match &mut cells[k] {
                        Some((g, _)) => g.add(&op, v, drop_name)?,
                        cell => *cell = Some((Group::start(&op, Labels::empty(), v, drop_name), i)),
                    }
                }
            }
            let mut points = Vec::new();
            for (k, cell) in cells.iter_mut().enumerate() {
                if let Some((g, first)) = cell {
                    points.push(Pt {
                        k,
                        t: self.step_time(k),
                        v: g.finish(&op, f64::NAN),
                        order: *first,
                    });
                }
            }
            if !points.is_empty() {
                out.push(OutSeries {
                    labels,
                    drop_name,
                    points,
                });
            }
        }
        infos.sort_by_key(|x| (x.0, x.1));
        Ok(Some(RangeResult {
            series: out,
            counts,
            infos,
        }))
    }

    /// Answers a whole range query if its expression has a supported shape:
    /// the result series (points at step times) after the same per-step
    /// accounting as step-by-step evaluation.
    pub(crate) fn range_query_direct(&mut self, expr: &Expr) -> Result<Option<Vec<super::RangeSeries>>, QueryError> {
        let Some(res) = self.eval_range_node(expr, Ctx::Whole)? else {
            return Ok(None);
        };
        let n = self.num_steps();
        let mut out_counts = vec![0usize; n];
        for s in &res.series {
            for p in &s.points {
                out_counts[p.k] += 1;
            }
        }
        let mut total_points = 0usize;
        for (k, out_count) in out_counts.iter().enumerate() {
            self.check_deadline()?;
            self.begin_step();
            self.add_samples(res.counts[k])?;
            for (_, _, msg, pos) in res.infos.iter().filter(|x| x.0 == k) {
                self.annotations.info(msg, *pos);
            }
            total_points += out_count;
            if total_points > self.opts.max_samples {
                return Err(QueryError::TooManySamples {
                    limit: self.opts.max_samples,
                });
            }
        }
        Ok(Some(
            res.series
                .into_iter()
                .map(|s| super::RangeSeries {
                    labels: s.labels,
                    points: s.points.iter().map(|p| Sample::new(self.step_time(p.k), p.v)).collect(),
                    drop_name: s.drop_name,
                })
                .collect(),
        ))
    }

    /// Aggregates a range-evaluated `input` per group and step, as
    /// step-by-step evaluation would: members in the order of the step's
    /// vector, groups ordered by their first sample. `None` when the input's
    /// series are not in vector order at every step, or when a group mixes
    /// samples with and without their name marked for removal.
    fn aggregate_result(
        &self,
        op: &str,
        grouping: impl Fn(&Labels) -> Labels,
        input: RangeResult,
        bounded: bool,
    ) -> Result<Option<RangeResult>, QueryError> {
        let n = self.num_steps();
        // Series order must be the vector order at every step, so that adding
        // members series by series keeps the step-by-step summation order.
        let mut last_order = vec![usize::MAX; n];
        for s in &input.series {
            for p in &s.points {
                let last = &mut last_order[p.k];
                if *last != usize::MAX && *last >= p.order {
                    return Ok(None);
                }
                *last = p.order;
            }
        }
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, bool, Vec<usize>)> = Vec::new();
        for (i, s) in input.series.iter().enumerate() {
            let key = grouping(&s.labels);
            match index.get(&key) {
                Some(&g) => {
                    if groups[g].1 != s.drop_name {
                        return Ok(None);
                    }
                    groups[g].2.push(i);
                }
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, s.drop_name, vec![i]));
                }
            }
        }
        drop(index);
        if bounded && groups.len().saturating_mul(n) > MAX_PRECOMPUTED_POINTS {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(groups.len());
        let mut cells: Vec<Option<(Group, usize)>> = Vec::new();
        for (labels, drop_name, members) in groups {
            self.check_deadline_now()?;
            cells.clear();
            cells.resize_with(n, || None);
            for &i in &members {
                for p in &input.series[i].points {
                    match &mut cells[p.k] {
                        Some((g, _)) => g.add(op, p.v, drop_name)?,
                        cell => *cell = Some((Group::start(op, Labels::empty(), p.v, drop_name), p.order)),
                    }
                }
            }
            let points: Vec<Pt> = cells
                .iter_mut()
                .enumerate()
                .filter_map(|(k, cell)| {
                    let (g, order) = cell.as_mut()?;
                    Some(Pt {
                        k,
                        t: self.step_time(k),
                        v: g.finish(op, f64::NAN),
                        order: *order,
                    })
                })
                .collect();
            if !points.is_empty() {
                out.push(OutSeries {
                    labels,
                    drop_name,
                    points,
                });
            }
        }
        Ok(Some(RangeResult {
            series: out,
            counts: input.counts,
            infos: input.infos,
        }))
    }

    /// Computes the supported sub-expressions of `expr` (aggregations and
    /// range functions outside subqueries) over the whole range.
    pub(crate) fn precompute(&mut self, expr: &Expr) -> Result<(), QueryError> {
        if matches!(expr, Expr::Aggregate(_) | Expr::Call(_) | Expr::Binary(_)) {
            if let Some(res) = self.eval_range_node(expr, Ctx::Precompute)? {
                let cursors = vec![0; res.series.len()];
                self.precomputed.insert(
                    expr as *const Expr as usize,
                    Precomputed {
                        res,
                        cursors,
                        next_step: 0,
                    },
                );
                return Ok(());
            }
        }
        match expr {
            Expr::Paren(p) => self.precompute(&p.expr),
            Expr::Unary(u) => self.precompute(&u.expr),
            Expr::Binary(b) => {
                self.precompute(&b.lhs)?;
                self.precompute(&b.rhs)
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.precompute(p)?;
                }
                self.precompute(&a.expr)
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.precompute(a)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The precomputed vector of `expr` at `t`, if there is one for this step.
    pub(crate) fn take_precomputed(&mut self, expr: &Expr, t: i64) -> Result<Option<Vec<InstantSample>>, QueryError> {
        let Some(pre) = self.precomputed.get_mut(&(expr as *const Expr as usize)) else {
            return Ok(None);
        };
        if self.step <= 0 || t < self.start || (t - self.start) % self.step != 0 {
            return Ok(None);
        }
        let Ok(k) = usize::try_from((t - self.start) / self.step) else {
            return Ok(None);
        };
        if k != pre.next_step || k >= pre.res.counts.len() {
            return Ok(None);
        }
        pre.next_step = k + 1;
        let mut out: Vec<(usize, InstantSample)> = Vec::new();
        for (s, c) in pre.res.series.iter().zip(pre.cursors.iter_mut()) {
            while *c < s.points.len() && s.points[*c].k < k {
                *c += 1;
            }
            if let Some(p) = s.points.get(*c).filter(|p| p.k == k) {
                out.push((
                    p.order,
                    InstantSample {
                        labels: s.labels.clone(),
                        t: p.t,
                        v: p.v,
                        drop_name: s.drop_name,
                    },
                ));
                *c += 1;
            }
        }
        out.sort_by_key(|x| x.0);
        let count = pre.res.counts[k];
        let infos: Vec<(String, Option<(usize, usize)>)> = pre
            .res
            .infos
            .iter()
            .filter(|x| x.0 == k)
            .map(|x| (x.2.clone(), x.3))
            .collect();
        self.add_samples(count)?;
        for (msg, pos) in infos {
            self.annotations.info(&msg, pos);
        }
        Ok(Some(out.into_iter().map(|x| x.1).collect()))
    }
}

/// Whether `expr` has a shape [`Evaluator::eval_range_node`] may evaluate
/// as an operand (it may still decline for size), checked before any work.
fn has_range_shape(expr: &Expr) -> bool {
    if Source::of(expr).is_some() {
        return true;
    }
    match unwrap_parens(expr) {
        Expr::Aggregate(a) => {
            let op = a.op.to_string().to_ascii_lowercase();
            AGG_OPS.contains(&op.as_str()) && a.param.is_none() && has_range_shape(&a.expr)
        }
        Expr::Binary(b) => binary::supported(b),
        _ => false,
    }
}
