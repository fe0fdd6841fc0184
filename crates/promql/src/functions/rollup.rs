//! Functions over range vectors: `rate`, `increase`, `delta` (with
//! Prometheus' extrapolation), `irate`, `idelta`, `deriv`, `predict_linear`,
//! `resets`, `changes`, `double_exponential_smoothing`, every `*_over_time`
//! and `ts_of_*_over_time`. Layer 2.
//!
//! Each takes the samples of one series in the window `(t - range, t]` and
//! returns at most one value; series without enough samples give nothing.

use super::{kahan_sum_inc, quantile};
use crate::eval::{duration_ms, offset_ms, EvalValue, Evaluator, InstantSample};
use crate::QueryError;
use model::Sample;
use promql_parser::parser::{Call, Expr};

/// The window a range argument covers at one evaluation: `(start, end]` in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: i64,
    pub(crate) end: i64,
}

pub(crate) fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl Evaluator<'_> {
    fn window_of(&self, arg: &Expr, t: i64) -> Window {
        let (range, offset, at) = match unwrap_parens(arg) {
            Expr::MatrixSelector(ms) => (duration_ms(&ms.range), offset_ms(&ms.vs.offset), ms.vs.at.as_ref()),
            Expr::Subquery(sq) => (duration_ms(&sq.range), offset_ms(&sq.offset), sq.at.as_ref()),
            _ => (0, 0, None),
        };
        let end = at.map(|a| self.at_ms(a)).unwrap_or(t).saturating_sub(offset);
        Window {
            start: end.saturating_sub(range),
            end,
        }
    }

    /// Evaluates `name` if it is a range-vector function; `None` otherwise.
    pub(crate) fn eval_rollup(&mut self, name: &str, call: &Call, t: i64) -> Result<Option<EvalValue>, QueryError> {
        let args = &call.args.args;
        let matrix_idx = match name {
            "quantile_over_time" => 1,
            "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "resets"
            | "changes"
            | "double_exponential_smoothing"
            | "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "first_over_time"
            | "last_over_time"
            | "present_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "mad_over_time"
            | "absent_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time" => 0,
            _ => return Ok(None),
        };
        let Some(arg) = args.get(matrix_idx) else {
            return Err(QueryError::Execution(format!("missing range argument to {name}")));
        };
        // Scalar parameters are evaluated first, as Prometheus does.
        let mut params = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if i != matrix_idx {
                params.push(self.eval_scalar(a, t)?);
            }
        }
        let window = self.window_of(arg, t);
        if name == "absent_over_time" {
            if !self.eval_matrix(arg, t)?.is_empty() {
                return Ok(Some(EvalValue::Vector(Vec::new())));
            }
            let labels = crate::functions::transform::absent_labels(arg);
            return Ok(Some(EvalValue::Vector(vec![InstantSample {
                labels,
                t,
                v: 1.0,
                drop_name: false,
            }])));
        }
        match name {
            "quantile_over_time" => {
                let q = params.first().copied().unwrap_or(f64::NAN);
                if !(0.0..=1.0).contains(&q) {
                    let pos = self.arg_position(call, 0);
                    self.annotations.warn(
                        &format!(
                            "quantile value should be between 0 and 1, got {}",
                            crate::format_value_f64(q)
                        ),
                        pos,
                    );
                }
            }
            "double_exponential_smoothing" => {
                let sf = params.first().copied().unwrap_or(f64::NAN);
                let tf = params.get(1).copied().unwrap_or(f64::NAN);
                if !(sf > 0.0 && sf < 1.0) {
                    return Err(QueryError::Execution(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
                        go_float_f(sf)
                    )));
                }
                if !(tf > 0.0 && tf < 1.0) {
                    return Err(QueryError::Execution(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {}",
                        go_float_f(tf)
                    )));
                }
            }
            _ => {}
        }
        let keep_name = matches!(name, "first_over_time" | "last_over_time");
        let mut out = Vec::new();
        // Metric names that do not look like counters, for the info
        // annotation that rate-like functions give (one per name).
        let mut not_counters: Vec<String> = Vec::new();
        let mut one = |labels: &model::Labels, points: &[Sample]| {
            let v = rollup_value(name, points, window, t, &params);
            if points.len() >= 2 {
                if let Some(metric) = not_counter_name(name, labels) {
                    if !not_counters.iter().any(|m| m == metric) {
                        not_counters.push(metric.to_string());
                    }
                }
            }
            if let Some(v) = v {
                out.push(InstantSample {
                    labels: labels.clone(),
                    t,
                    v,
                    drop_name: !keep_name,
                });
            }
        };
        match unwrap_parens(arg) {
            // Straight from the loaded samples, without copying windows.
            Expr::MatrixSelector(ms) => self.for_each_window(ms, t, &mut one)?,
            _ => {
                for series in self.eval_matrix(arg, t)? {
                    one(&series.labels, &series.points);
                }
            }
        }
        for metric in not_counters {
            let pos = self.arg_position(call, 0);
            self.annotations.info(&not_counter_message(&metric), pos);
        }
        Ok(Some(EvalValue::Vector(out)))
    }
}

/// The value of range function `name` over the non-empty `points` of one
/// series in `window`, evaluated at `t` with scalar parameters `params`.
pub(crate) fn rollup_value(name: &str, points: &[Sample], window: Window, t: i64, params: &[f64]) -> Option<f64> {
    match name {
        "rate" => extrapolated_rate(points, window, true, true, true),
        "increase" => extrapolated_rate(points, window, true, false, true),
        "delta" => extrapolated_rate(points, window, false, false, true),
        "irate" => instant_value(points, true),
        "idelta" => instant_value(points, false),
        "deriv" => (points.len() >= 2).then(|| linear_regression(points, points[0].t).0),
        "predict_linear" => (points.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(points, t);
            slope * params.first().copied().unwrap_or(f64::NAN) + intercept
        }),
        "resets" => Some(points.windows(2).filter(|w| w[1].v < w[0].v).count() as f64),
        "changes" => Some(
            points
                .windows(2)
                .filter(|w| !(w[1].v == w[0].v || (w[1].v.is_nan() && w[0].v.is_nan())))
                .count() as f64,
        ),
        "double_exponential_smoothing" => double_exponential_smoothing(
            points,
            params.first().copied().unwrap_or(f64::NAN),
            params.get(1).copied().unwrap_or(f64::NAN),
        ),
        "avg_over_time" => Some(avg_over_time(points)),
        "sum_over_time" => Some(sum_over_time(points)),
        "count_over_time" => Some(points.len() as f64),
        "min_over_time" => Some(
            points
                .iter()
                .skip(1)
                .fold(points[0].v, |m, p| if p.v < m || m.is_nan() { p.v } else { m }),
        ),
        "max_over_time" => Some(
            points
                .iter()
                .skip(1)
                .fold(points[0].v, |m, p| if p.v > m || m.is_nan() { p.v } else { m }),
        ),
        "first_over_time" => points.first().map(|p| p.v),
        "last_over_time" => points.last().map(|p| p.v),
        "present_over_time" => Some(1.0),
        "stddev_over_time" => Some(variance_over_time(points).sqrt()),
        "stdvar_over_time" => Some(variance_over_time(points)),
        "quantile_over_time" => {
            let mut values: Vec<f64> = points.iter().map(|p| p.v).collect();
            Some(quantile(params.first().copied().unwrap_or(f64::NAN), &mut values))
        }
        "mad_over_time" => {
            let mut values: Vec<f64> = points.iter().map(|p| p.v).collect();
            let median = quantile(0.5, &mut values);
            let mut dev: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
            Some(quantile(0.5, &mut dev))
        }
        "ts_of_first_over_time" => points.first().map(|p| p.t as f64 / 1000.0),
        "ts_of_last_over_time" => points.last().map(|p| p.t as f64 / 1000.0),
        "ts_of_min_over_time" => ts_of_extreme(points, |a, b| a <= b),
        "ts_of_max_over_time" => ts_of_extreme(points, |a, b| a >= b),
        _ => None,
    }
}

/// The metric name of a series `rate`/`increase` should warn about: one whose
/// name does not look like a counter's (callers check for two samples or more).
pub(crate) fn not_counter_name<'l>(name: &str, labels: &'l model::Labels) -> Option<&'l str> {
    if name != "rate" && name != "increase" {
        return None;
    }
    let metric = labels.metric_name()?;
    (!["_total", "_sum", "_count", "_bucket"]
        .iter()
        .any(|s| metric.ends_with(s)))
    .then_some(metric)
}

/// The info for [`not_counter_name`].
pub(crate) fn not_counter_message(metric: &str) -> String {
    format!("metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"{metric}\"")
}

/// Formats like Go's `%f` (six decimals), for error messages.
fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated
/// towards the window's edges (at most half a sample interval beyond the
/// first/last sample when they are far from the edges, and never below zero
/// for counters).
/// `rate`, `increase` and `delta` over the window's `points`. A caller that
/// knows no sample is below its predecessor may pass `scan_resets = false`:
/// the counter-reset scan would add nothing.
pub(crate) fn extrapolated_rate(
    points: &[Sample],
    w: Window,
    is_counter: bool,
    is_rate: bool,
    scan_resets: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let first = points[0];
    let last = points[points.len() - 1];
    let mut result = last.v - first.v;
    if is_counter && scan_resets {
        let mut prev = first.v;
        for p in &points[1..] {
            if p.v < prev {
                result += prev;
            }
            prev = p.v;
        }
    }
    let mut duration_to_start = (first.t as f64 - w.start as f64) / 1000.0;
    let mut duration_to_end = (w.end as f64 - last.t as f64) / 1000.0;
    let sampled_interval = (last.t as f64 - first.t as f64) / 1000.0;
    let avg_between = sampled_interval / (points.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if duration_to_start >= threshold {
        duration_to_start = avg_between / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        let duration_to_zero = sampled_interval * (first.v / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = avg_between / 2.0;
    }
    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= (w.end as f64 - w.start as f64) / 1000.0;
    }
    Some(result * factor)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(points: &[Sample], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let last = points[points.len() - 1];
    let prev = points[points.len() - 2];
    let mut result = if is_rate && last.v < prev.v {
        last.v
    } else {
        last.v - prev.v
    };
    let interval = last.t as f64 - prev.t as f64;
    if interval == 0.0 {
        return None;
    }
    if is_rate {
        result /= interval / 1000.0;
    }
    Some(result)
}

/// Least-squares fit of value over time (seconds from `intercept_t`):
/// returns (slope, intercept at `intercept_t`).
pub(crate) fn linear_regression(points: &[Sample], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points[0].v;
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t as f64 - intercept_t as f64) / 1e3;
        (sum_x, c_x) = kahan_sum_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_sum_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_sum_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_sum_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

fn double_exponential_smoothing(points: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let mut s0;
    let mut s1 = points[0].v;
    let mut b = points[1].v - points[0].v;
    s0 = 0.0;
    for (i, p) in points.iter().enumerate().skip(1) {
        let x = sf * p.v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

fn sum_over_time(points: &[Sample]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for p in points {
        (sum, c) = kahan_sum_inc(p.v, sum, c);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + c
    }
}

/// The mean, summed directly with Kahan compensation until the sum would
/// overflow, then incrementally.
fn avg_over_time(points: &[Sample]) -> f64 {
    let mut sum = points[0].v;
    let mut count = 1.0;
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in points.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_sum_inc(p.v, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_sum_inc(p.v / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn variance_over_time(points: &[Sample]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_sum_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_sum_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// The timestamp (seconds) of the sample that wins `better(candidate, best)`,
/// the later one on ties; NaN values lose to any number.
fn ts_of_extreme(points: &[Sample], better: impl Fn(f64, f64) -> bool) -> Option<f64> {
    let mut best = *points.first()?;
    for p in &points[1..] {
        if better(p.v, best.v) || best.v.is_nan() {
            best = *p;
        }
    }
    Some(best.t as f64 / 1000.0)
}
