//! PromQL functions and aggregation operators: the dispatcher from a call's
//! name to its implementation, plus numeric helpers shared by several of them
//! (Kahan summation, quantiles, Go-compatible min/max). Layer 2.
//!
//! - `rollup`: functions over range vectors (`rate`, `*_over_time`, …).
//! - `transform`: functions over instant vectors and scalars (`abs`,
//!   `label_replace`, `histogram_quantile`, date functions, …).
//! - `aggregate`: `sum`, `topk`, `quantile`, … with `by`/`without`.

pub(crate) mod aggregate;
pub(crate) mod rollup;
mod transform;

use crate::eval::{EvalValue, Evaluator};
use crate::QueryError;
use promql_parser::parser::Call;

impl Evaluator<'_> {
    /// Evaluates a function call at `t`.
    pub(crate) fn eval_call(&mut self, call: &Call, t: i64) -> Result<EvalValue, QueryError> {
        let name = call.func.name;
        if let Some(v) = self.eval_rollup(name, call, t)? {
            return Ok(v);
        }
        self.eval_transform(name, call, t)
    }
}

/// Adds `inc` to a Kahan-Neumaier running sum `(sum, c)`.
pub(crate) fn kahan_sum_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Go's `math.Max`: NaN wins, +0 beats -0.
pub(crate) fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b {
        a
    } else {
        b
    }
}

/// Go's `math.Min`: NaN wins, -0 beats +0.
pub(crate) fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b {
        a
    } else {
        b
    }
}

/// The φ-quantile of `values` with linear interpolation between the two
/// nearest ranks, as Prometheus' `quantile`: NaN for no values or φ = NaN,
/// -Inf for φ < 0, +Inf for φ > 1. NaN values sort first.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` plus Prometheus' spellings of
/// the special values, for labels made from values (`count_values`).
pub(crate) fn format_label_value(v: f64) -> String {
    crate::format_value_f64(v)
}

/// Natural order of strings: runs of digits compare as numbers (as the
/// `natsort` package Prometheus uses for `sort_by_label`).
pub(crate) fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let bytes = s.as_bytes();
        let mut start = 0;
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    if a.is_empty() || b.is_empty() {
        return a < b;
    }
    let ca = chunks(a);
    let cb = chunks(b);
    for (x, y) in ca.iter().zip(cb.iter()) {
        if x == y {
            continue;
        }
        let xd = x.as_bytes()[0].is_ascii_digit();
        let yd = y.as_bytes()[0].is_ascii_digit();
        if xd && yd {
            let xt = x.trim_start_matches('0');
            let yt = y.trim_start_matches('0');
            if xt.len() != yt.len() {
                return xt.len() < yt.len();
            }
            if xt != yt {
                return xt < yt;
            }
            return x.len() < y.len();
        }
        return x < y;
    }
    ca.len() < cb.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        assert!(natural_less("2", "10"));
        assert!(natural_less("4m5", "4m600"));
        assert!(natural_less("4m600", "4m1000"));
        assert!(!natural_less("10", "2"));
        assert!(natural_less("a", "b"));
    }

    #[test]
    fn quantile_interpolates() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(-1.0, &mut v), f64::NEG_INFINITY);
        assert!(quantile(0.5, &mut []).is_nan());
    }
}
