//! Judging one eval: failure expectations, annotations, and result values
//! compared as Prometheus' runner does (relative epsilon 1e-6, NaN equals
//! NaN, the staleness marker only equals itself). Layer 2 test support.

use super::series::Item;
use super::{EvalOutcome, EvalSpec};
use crate::{format_value_f64, QueryError, QueryOutput, Value};
use model::is_stale_nan;

const EPSILON: f64 = 1e-6;

/// Float equality of the reference runner.
pub(crate) fn almost_equal(a: f64, b: f64) -> bool {
    const MIN_NORMAL: f64 = 2.2250738585072014e-308;
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < EPSILON
}

fn fail(expected: impl Into<String>, got: impl Into<String>) -> EvalOutcome {
    EvalOutcome::Failed {
        expected: expected.into(),
        got: got.into(),
    }
}

fn render_items(items: &[Item]) -> String {
    items
        .iter()
        .map(|i| match i {
            Item::Omitted => "_".to_string(),
            Item::Float(v) if is_stale_nan(*v) => "stale".to_string(),
            Item::Float(v) => format_value_f64(*v),
            Item::Histogram => "{{…}}".to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn render_expected(spec: &EvalSpec) -> String {
    if let Some(v) = spec.scalar {
        return format!("scalar {}", format_value_f64(v));
    }
    if let Some(s) = &spec.string {
        return format!("string {s:?}");
    }
    let mut lines: Vec<String> = spec
        .series
        .iter()
        .map(|(l, items)| format!("{l} {}", render_items(items)))
        .collect();
    if lines.is_empty() {
        lines.push("(empty)".into());
    }
    lines.join("\n")
}

pub(crate) fn render_value(v: &Value) -> String {
    match v {
        Value::Scalar { v, .. } => format!("scalar {}", format_value_f64(*v)),
        Value::String { v, .. } => format!("string {v:?}"),
        Value::Vector(samples) => {
            if samples.is_empty() {
                return "(empty vector)".into();
            }
            samples
                .iter()
                .map(|s| format!("{} {}", s.labels, format_value_f64(s.v)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        Value::Matrix(series) => {
            if series.is_empty() {
                return "(empty matrix)".into();
            }
            series
                .iter()
                .map(|s| {
                    let pts: Vec<String> = s
                        .samples
                        .iter()
                        .map(|p| format!("{}@{}", format_value_f64(p.v), p.t))
                        .collect();
                    format!("{} {}", s.labels, pts.join(" "))
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
    }
}

/// Judges the outcome of an eval.
pub(crate) fn check(spec: &EvalSpec, result: Result<QueryOutput, QueryError>) -> EvalOutcome {
    let out = match result {
        Err(e) => {
            let msg = e.to_string();
            return match &spec.expect_fail {
                Some(None) => EvalOutcome::Passed,
                Some(Some(m)) if m.matches(&msg) => EvalOutcome::Passed,
                Some(Some(m)) => fail(format!("error {m:?}"), msg),
                None => fail(render_expected(spec), format!("error: {msg}")),
            };
        }
        Ok(out) => out,
    };
    if spec.expect_fail.is_some() {
        return fail("an error", render_value(&out.value));
    }
    if let Some(problem) = check_annotations(spec, &out.warnings) {
        return fail(problem, out.warnings.join("; "));
    }
    match check_value(spec, &out.value) {
        Ok(()) => EvalOutcome::Passed,
        Err(why) => fail(
            format!("{}\n  ({why})", render_expected(spec)),
            render_value(&out.value),
        ),
    }
}

fn check_annotations(spec: &EvalSpec, annotations: &[String]) -> Option<String> {
    let warnings: Vec<&str> = annotations
        .iter()
        .filter(|a| a.starts_with("PromQL warning"))
        .map(String::as_str)
        .collect();
    let infos: Vec<&str> = annotations
        .iter()
        .filter(|a| a.starts_with("PromQL info"))
        .map(String::as_str)
        .collect();
    let check_kind = |kind: &str, expected: &[Option<super::Match>], got: &[&str], none: bool, any: bool| {
        if !expected.is_empty() {
            if got.is_empty() {
                return Some(format!("a {kind} annotation"));
            }
            for e in expected.iter().flatten() {
                if !got.iter().any(|g| e.matches(g)) {
                    return Some(format!("{kind} matching {e:?}"));
                }
            }
            let any_bare = expected.iter().any(Option::is_none);
            if !any_bare {
                for g in got {
                    if !expected.iter().flatten().any(|e| e.matches(g)) {
                        return Some(format!("no unexpected {kind} (got {g:?})"));
                    }
                }
            }
        } else if none && !got.is_empty() {
            return Some(format!("no {kind} annotations"));
        } else if any && got.is_empty() {
            return Some(format!("a {kind} annotation"));
        }
        None
    };
    check_kind("warning", &spec.warn, &warnings, spec.no_warn, spec.any_warn)
        .or_else(|| check_kind("info", &spec.info, &infos, spec.no_info, spec.any_info))
}

pub(crate) fn check_value(spec: &EvalSpec, value: &Value) -> Result<(), String> {
    if let Some(range) = spec.range.or(spec.range_vector) {
        let Value::Matrix(series) = value else {
            return Err("expected a range vector".into());
        };
        return check_matrix(spec, series, range);
    }
    match value {
        Value::Scalar { v, .. } => match spec.scalar {
            Some(e) if almost_equal(e, *v) => Ok(()),
            Some(_) => Err("scalar value differs".into()),
            None => Err("expected a vector, got a scalar".into()),
        },
        Value::String { v, .. } => {
            if spec.string.as_deref().unwrap_or("") == v && spec.series.is_empty() {
                Ok(())
            } else {
                Err("string differs".into())
            }
        }
        Value::Matrix(_) => Err("received range result on instant evaluation".into()),
        Value::Vector(samples) => {
            if spec.scalar.is_some() {
                return Err("expected a scalar, got a vector".into());
            }
            if samples.len() != spec.series.len() {
                return Err(format!("expected {} samples, got {}", spec.series.len(), samples.len()));
            }
            for (k, s) in samples.iter().enumerate() {
                let pos = if spec.ordered {
                    (spec.series[k].0 == s.labels).then_some(k)
                } else {
                    spec.series.iter().position(|(l, _)| *l == s.labels)
                };
                let Some(pos) = pos else {
                    return Err(format!("unexpected or misplaced series {}", s.labels));
                };
                let items = &spec.series[pos].1;
                match items.as_slice() {
                    [Item::Float(e)] if almost_equal(*e, s.v) => {}
                    [Item::Float(_)] => return Err(format!("value differs for {}", s.labels)),
                    _ => return Err("instant expectation must have exactly one float value".into()),
                }
            }
            Ok(())
        }
    }
}

fn check_matrix(
    spec: &EvalSpec,
    series: &[storage_api::Series],
    (start, _end, step): (i64, i64, i64),
) -> Result<(), String> {
    if series.len() != spec.series.len() {
        return Err(format!("expected {} series, got {}", spec.series.len(), series.len()));
    }
    if series.windows(2).any(|w| w[0].labels > w[1].labels) {
        return Err("matrix not sorted by labels".into());
    }
    for s in series {
        let Some((_, items)) = spec.series.iter().find(|(l, _)| *l == s.labels) else {
            return Err(format!("unexpected series {}", s.labels));
        };
        let expected: Vec<(i64, f64)> = items
            .iter()
            .enumerate()
            .filter_map(|(k, i)| match i {
                Item::Float(v) => Some((start + k as i64 * step, *v)),
                _ => None,
            })
            .collect();
        if expected.len() != s.samples.len() {
            return Err(format!(
                "expected {} points for {}, got {}",
                expected.len(),
                s.labels,
                s.samples.len()
            ));
        }
        for ((et, ev), p) in expected.iter().zip(&s.samples) {
            if *et != p.t || !almost_equal(*ev, p.v) {
                return Err(format!("point differs for {} at {}", s.labels, et));
            }
        }
    }
    Ok(())
}
