//! Functions over instant vectors and scalars: math, clamping, rounding,
//! `timestamp`, `time`, `vector`, `scalar`, `absent`, label rewriting, sorting,
//! date functions, classic-bucket `histogram_quantile`/`histogram_fraction`,
//! and the query-range functions `start`/`end`/`range`/`step`. Layer 2.
//!
//! Value-changing functions mark the metric name for removal; `label_*`,
//! `sort*` and `timestamp` of selectors behave as in Prometheus 3.

use super::{go_max, go_min, natural_less};
use crate::eval::{EvalValue, Evaluator, InstantSample};
use crate::QueryError;
use model::Labels;
use promql_parser::parser::{Call, Expr};
use std::collections::HashMap;

/// Labels for `absent`/`absent_over_time`: the equality matchers of a plain
/// selector argument (a name matched twice, or not by `=`, is left out).
pub(crate) fn absent_labels(arg: &Expr) -> Labels {
    let mut e = arg;
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    let vs = match e {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == model::METRIC_NAME {
            continue;
        }
        if matches!(m.op, promql_parser::label::MatchOp::Equal) && !has.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Evaluates a date function on Unix seconds `v` (truncated, as Go's `int64(v)`).
fn date_part(name: &str, v: f64) -> f64 {
    let secs = if v.is_nan() || v.is_infinite() {
        i64::MIN
    } else {
        v as i64
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((rem % 3600) / 60) as f64,
        "hour" => (rem / 3600) as f64,
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let before: i64 = (1..m).map(|mm| days_in_month(y, mm)).sum();
            (before + d) as f64
        }
        "days_in_month" => days_in_month(y, m) as f64,
        "month" => m as f64,
        "year" => y as f64,
        _ => f64::NAN,
    }
}

fn math_fn(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "sgn" => |v: f64| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Tells whether a label name is acceptable as a destination (Prometheus 3
/// accepts any non-empty UTF-8 name; U+FFFD stands for bytes of a string
/// literal that are not UTF-8, see `go_strings`).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(crate::go_strings::NOT_UTF8)
}

/// Classic buckets of one histogram: output labels, `(upper bound, cumulative
/// count)` pairs, and the metric name for annotations.
type BucketGroup = (Labels, Vec<(f64, f64)>, Option<String>);

impl Evaluator<'_> {
    pub(crate) fn eval_transform(&mut self, name: &str, call: &Call, t: i64) -> Result<EvalValue, QueryError> {
        let args = &call.args.args;
        let arg = |i: usize| -> Result<&Expr, QueryError> {
            args.get(i)
                .map(|b| b.as_ref())
                .ok_or_else(|| QueryError::Execution(format!("missing argument {i} to {name}")))
        };
        if let Some(f) = math_fn(name) {
            let mut v = self.eval_vector(arg(0)?, t)?;
            for s in &mut v {
                s.v = f(s.v);
                s.t = t;
                s.drop_name = true;
            }
            return Ok(EvalValue::Vector(v));
        }
        match name {
            "time" => Ok(EvalValue::Scalar(t as f64 / 1000.0)),
            "pi" => Ok(EvalValue::Scalar(std::f64::consts::PI)),
            "start" => Ok(EvalValue::Scalar(self.start as f64 / 1000.0)),
            "end" => Ok(EvalValue::Scalar(self.end as f64 / 1000.0)),
            "range" => Ok(EvalValue::Scalar((self.end as f64 - self.start as f64) / 1000.0)),
            "step" => Ok(EvalValue::Scalar(self.step as f64 / 1000.0)),
            "min_of" | "max_of" => {
                let mut acc: Option<f64> = None;
                for a in args {
                    let v = self.eval_scalar(a, t)?;
                    acc = Some(match acc {
                        None => v,
                        Some(prev) if name == "min_of" => go_min(prev, v),
                        Some(prev) => go_max(prev, v),
                    });
                }
                Ok(EvalValue::Scalar(acc.unwrap_or(f64::NAN)))
            }
            "vector" => {
                let v = self.eval_scalar(arg(0)?, t)?;
                Ok(EvalValue::Vector(vec![InstantSample {
                    labels: Labels::empty(),
                    t,
                    v,
                    drop_name: false,
                }]))
            }
            "scalar" => {
                let v = self.eval_vector(arg(0)?, t)?;
                Ok(EvalValue::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
            }
            "round" => {
                let to_nearest = match args.get(1) {
                    Some(a) => self.eval_scalar(a, t)?,
                    None => 1.0,
                };
                let mut v = self.eval_vector(arg(0)?, t)?;
                let inverse = 1.0 / to_nearest;
                for s in &mut v {
                    s.v = (s.v * inverse + 0.5).floor() / inverse;
                    s.t = t;
                    s.drop_name = true;
                }
                Ok(EvalValue::Vector(v))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut v = self.eval_vector(arg(0)?, t)?;
                let (min, max) = match name {
                    "clamp" => (self.eval_scalar(arg(1)?, t)?, self.eval_scalar(arg(2)?, t)?),
                    "clamp_min" => (self.eval_scalar(arg(1)?, t)?, f64::NAN),
                    _ => (f64::NAN, self.eval_scalar(arg(1)?, t)?),
                };
                if name == "clamp" && max < min {
                    return Ok(EvalValue::Vector(Vec::new()));
                }
                for s in &mut v {
                    s.v = match name {
                        "clamp" => go_max(min, go_min(max, s.v)),
                        "clamp_min" => go_max(s.v, min),
                        _ => go_min(s.v, max),
                    };
                    s.t = t;
                    s.drop_name = true;
                }
                Ok(EvalValue::Vector(v))
            }
            "timestamp" => {
                let mut v = self.eval_vector(arg(0)?, t)?;
                let mut inner = arg(0)?;
                while let Expr::Paren(p) = inner {
                    inner = &p.expr;
                }
                let from_selector = matches!(inner, Expr::VectorSelector(_));
                for s in &mut v {
                    let ts = if from_selector { s.t } else { t };
                    s.v = ts as f64 / 1000.0;
                    s.t = t;
                    s.drop_name = true;
                }
                Ok(EvalValue::Vector(v))
            }
            "absent" => {
                let v = self.eval_vector(arg(0)?, t)?;
                if !v.is_empty() {
                    return Ok(EvalValue::Vector(Vec::new()));
                }
                Ok(EvalValue::Vector(vec![InstantSample {
                    labels: absent_labels(arg(0)?),
                    t,
                    v: 1.0,
                    drop_name: false,
                }]))
            }
            "minute" | "hour" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "month" | "year" => {
                if args.is_empty() {
                    return Ok(EvalValue::Vector(vec![InstantSample {
                        labels: Labels::empty(),
                        t,
                        v: date_part(name, (t / 1000) as f64),
                        drop_name: false,
                    }]));
                }
                let mut v = self.eval_vector(arg(0)?, t)?;
                for s in &mut v {
                    s.v = date_part(name, s.v);
                    s.t = t;
                    s.drop_name = true;
                }
                Ok(EvalValue::Vector(v))
            }
            "label_replace" => self.label_replace(call, t),
            "label_join" => self.label_join(call, t),
            "sort" | "sort_desc" => {
                if self.step > 0 {
                    let pos = self.call_position(call);
                    self.annotations.warn(
                        "sort is ineffective for range queries since results are always ordered by labels",
                        pos,
                    );
                }
                let mut v = self.eval_vector(arg(0)?, t)?;
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    use std::cmp::Ordering;
                    match (a.v.is_nan(), b.v.is_nan()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Greater,
                        (false, true) => Ordering::Less,
                        _ if desc => b.v.partial_cmp(&a.v).unwrap_or(Ordering::Equal),
                        _ => a.v.partial_cmp(&b.v).unwrap_or(Ordering::Equal),
                    }
                });
                Ok(EvalValue::Vector(v))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                if self.step > 0 {
                    let pos = self.call_position(call);
                    self.annotations.warn(
                        "sort is ineffective for range queries since results are always ordered by labels",
                        pos,
                    );
                }
                let mut v = self.eval_vector(arg(0)?, t)?;
                let mut names = Vec::new();
                for a in args.iter().skip(1) {
                    names.push(self.eval_string(a, t)?);
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    use std::cmp::Ordering;
                    let mut ord = Ordering::Equal;
                    for n in &names {
                        let x = a.labels.get(n).unwrap_or("");
                        let y = b.labels.get(n).unwrap_or("");
                        if x == y {
                            continue;
                        }
                        ord = if natural_less(x, y) {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        };
                        break;
                    }
                    if ord == Ordering::Equal {
                        ord = a.labels.cmp(&b.labels);
                    }
                    if desc {
                        ord.reverse()
                    } else {
                        ord
                    }
                });
                Ok(EvalValue::Vector(v))
            }
            "histogram_quantile" => self.histogram_quantile(call, t),
            "histogram_fraction" => self.histogram_fraction(call, t),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
                // Only native histograms have these; float samples are ignored.
                let _ = self.eval_vector(arg(0)?, t)?;
                Ok(EvalValue::Vector(Vec::new()))
            }
            other => Err(QueryError::Execution(format!(
                "function {other:?} is not supported yet"
            ))),
        }
    }

    fn label_replace(&mut self, call: &Call, t: i64) -> Result<EvalValue, QueryError> {
        let args = &call.args.args;
        if args.len() != 5 {
            return Err(QueryError::Execution("label_replace() takes 5 arguments".into()));
        }
        let dst = self.eval_string(&args[1], t)?;
        let replacement = self.eval_string(&args[2], t)?;
        let src = self.eval_string(&args[3], t)?;
        let pattern = self.eval_string(&args[4], t)?;
        let re = regex::Regex::new(&format!("^(?s:{pattern})$"))
            .map_err(|e| QueryError::Execution(format!("invalid regular expression in label_replace(): {e}")))?;
        if !valid_label_name(&dst) {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut v = self.eval_vector(&args[0], t)?;
        for s in &mut v {
            let src_val = s.labels.get(&src).unwrap_or("");
            if let Some(caps) = re.captures(src_val) {
                let mut res = String::new();
                caps.expand(&replacement, &mut res);
                s.labels = s.labels.builder().set(&dst, &res).build();
                if dst == model::METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        Ok(EvalValue::Vector(v))
    }

    fn label_join(&mut self, call: &Call, t: i64) -> Result<EvalValue, QueryError> {
        let args = &call.args.args;
        if args.len() < 3 {
            return Err(QueryError::Execution("label_join() takes at least 3 arguments".into()));
        }
        let dst = self.eval_string(&args[1], t)?;
        let sep = self.eval_string(&args[2], t)?;
        let mut srcs = Vec::new();
        for a in &args[3..] {
            let s = self.eval_string(a, t)?;
            if !valid_label_name(&s) {
                return Err(QueryError::Execution(format!(
                    "invalid source label name in label_join(): {s}"
                )));
            }
            srcs.push(s);
        }
        if !valid_label_name(&dst) {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut v = self.eval_vector(&args[0], t)?;
        for s in &mut v {
            let joined = srcs
                .iter()
                .map(|n| s.labels.get(n).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            s.labels = s.labels.builder().set(&dst, &joined).build();
            if dst == model::METRIC_NAME {
                s.drop_name = false;
            }
        }
        Ok(EvalValue::Vector(v))
    }

    /// Groups classic `le` buckets by their labels without `le`; warns about
    /// unparsable `le` values.
    fn bucket_groups(&mut self, call: &Call, input: Vec<InstantSample>, arg_idx: usize) -> Vec<BucketGroup> {
        let mut groups: Vec<BucketGroup> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for s in input {
            let le = s.labels.get("le").unwrap_or("");
            let Some(upper) = parse_go_float(le) else {
                let pos = self.arg_position(call, arg_idx);
                let metric = s.labels.metric_name().unwrap_or("").to_string();
                self.annotations.warn(
                    &format!(
                        "bucket label \"le\" is missing or has a malformed value of \"{le}\" for metric name \"{metric}\""
                    ),
                    pos,
                );
                continue;
            };
            let key = s.labels.without(&["le"]);
            let i = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new(), s.labels.metric_name().map(str::to_string)));
                groups.len() - 1
            });
            groups[i].1.push((upper, s.v));
        }
        groups
    }

    fn histogram_quantile(&mut self, call: &Call, t: i64) -> Result<EvalValue, QueryError> {
        let args = &call.args.args;
        if args.len() != 2 {
            return Err(QueryError::Execution("histogram_quantile() takes 2 arguments".into()));
        }
        let q = self.eval_scalar(&args[0], t)?;
        let input = self.eval_vector(&args[1], t)?;
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
        let groups = self.bucket_groups(call, input, 1);
        let mut out = Vec::new();
        for (labels, mut buckets, metric) in groups {
            let (v, forced) = bucket_quantile(q, &mut buckets);
            if forced {
                let pos = self.arg_position(call, 1);
                self.annotations.info(
                    &format!(
                        "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name \"{}\"",
                        metric.unwrap_or_default()
                    ),
                    pos,
                );
            }
            out.push(InstantSample {
                labels,
                t,
                v,
                drop_name: true,
            });
        }
        Ok(EvalValue::Vector(out))
    }

    fn histogram_fraction(&mut self, call: &Call, t: i64) -> Result<EvalValue, QueryError> {
        let args = &call.args.args;
        if args.len() != 3 {
            return Err(QueryError::Execution("histogram_fraction() takes 3 arguments".into()));
        }
        let lower = self.eval_scalar(&args[0], t)?;
        let upper = self.eval_scalar(&args[1], t)?;
        let input = self.eval_vector(&args[2], t)?;
        let groups = self.bucket_groups(call, input, 2);
        let mut out = Vec::new();
        for (labels, mut buckets, _) in groups {
            out.push(InstantSample {
                labels,
                t,
                v: bucket_fraction(lower, upper, &mut buckets),
                drop_name: true,
            });
        }
        Ok(EvalValue::Vector(out))
    }
}

/// Parses a float as Go's `strconv.ParseFloat` does for bucket bounds.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t != s {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            });
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    t.parse::<f64>().ok()
}

/// Sorts, merges equal bounds, and repairs non-monotonic counts; returns
/// whether a decrease had to be removed.
fn prepare_buckets(buckets: &mut Vec<(f64, f64)>) -> bool {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for &(ub, c) in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => merged.push((ub, c)),
        }
    }
    *buckets = merged;
    let mut forced = false;
    if buckets.is_empty() {
        return false;
    }
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// The φ-quantile from classic cumulative buckets `(upper bound, count)`,
/// interpolating linearly inside the bucket; returns (value, forced monotonic).
fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(last) if last.0 == f64::INFINITY => {}
        _ => return (f64::NAN, false),
    }
    let forced = prepare_buckets(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let n = buckets.len();
    let b = buckets[..n - 1].partition_point(|x| x.1 < rank);
    if b == n - 1 {
        return (buckets[n - 2].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// The estimated fraction of observations between `lower` and `upper` from
/// classic buckets. Inside finite buckets observations are assumed spread
/// evenly (the first bucket starts at 0 when its bound is positive); in a
/// bucket with an infinite bound they are assumed to sit at that bound.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    match buckets.last() {
        Some(last) if last.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    prepare_buckets(buckets);
    let total = buckets[buckets.len() - 1].1;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let mut captured = 0.0;
    let mut prev_count = 0.0;
    for (i, &(hi, cum)) in buckets.iter().enumerate() {
        let count = cum - prev_count;
        prev_count = cum;
        let lo = if i > 0 {
            buckets[i - 1].0
        } else if hi > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        if count == 0.0 {
            continue;
        }
        captured += if hi == f64::INFINITY {
            if upper == f64::INFINITY && lower <= lo.max(lower) {
                count
            } else {
                0.0
            }
        } else if lo == f64::NEG_INFINITY {
            if lower == f64::NEG_INFINITY {
                count
            } else {
                0.0
            }
        } else {
            let overlap = upper.min(hi) - lower.max(lo);
            if overlap > 0.0 {
                count * overlap / (hi - lo)
            } else {
                0.0
            }
        };
    }
    captured / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        // 2020-02-29T12:34:56Z
        let ts = 1_582_979_696.0;
        assert_eq!(date_part("year", ts), 2020.0);
        assert_eq!(date_part("month", ts), 2.0);
        assert_eq!(date_part("day_of_month", ts), 29.0);
        assert_eq!(date_part("days_in_month", ts), 29.0);
        assert_eq!(date_part("day_of_year", ts), 60.0);
        assert_eq!(date_part("day_of_week", ts), 6.0);
        assert_eq!(date_part("hour", ts), 12.0);
        assert_eq!(date_part("minute", ts), 34.0);
    }

    #[test]
    fn classic_quantile() {
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, &mut b).0, 1.0);
        let mut b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.75, &mut b).0, 1.5);
    }
}
