//! Aggregation operators: `sum`, `avg`, `min`, `max`, `count`, `group`,
//! `stddev`, `stdvar`, `quantile`, `count_values`, `topk`, `bottomk`,
//! `limitk`, `limit_ratio`, with `by`/`without` grouping. Layer 2.
//!
//! Groups are output in the order their first sample appears. `topk`,
//! `bottomk`, `limitk` and `limit_ratio` return input samples unchanged
//! (labels included); the others build one sample per group.

use super::{format_label_value, kahan_sum_inc, quantile};
use crate::eval::{EvalValue, Evaluator, InstantSample};
use crate::QueryError;
use model::Labels;
use promql_parser::parser::{AggregateExpr, LabelModifier};
use std::collections::HashMap;

/// Running state of one group.
pub(crate) struct Group {
    /// The group's labels.
    pub(crate) labels: Labels,
    /// Some sample of the group has its name marked for removal.
    pub(crate) drop_name: bool,
    value: f64,
    kahan_c: f64,
    mean: f64,
    count: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

impl Group {
    /// A group holding its first sample (value `v`) for aggregation `op`.
    pub(crate) fn start(op: &str, labels: Labels, v: f64, drop_name: bool) -> Self {
        let mut g = Group {
            labels,
            drop_name,
            value: v,
            kahan_c: 0.0,
            mean: v,
            count: 1.0,
            incremental_mean: false,
            values: Vec::new(),
        };
        match op {
            "stddev" | "stdvar" => {
                // The first sample goes through the update too, so NaN/Inf propagate.
                g.value = 0.0;
                g.mean = 0.0;
                g.count = 0.0;
                g.count += 1.0;
                let delta = v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (v - g.mean);
            }
            "quantile" => g.values.push(v),
            _ => {}
        }
        g
    }

    /// Adds one more sample to the group.
    pub(crate) fn add(&mut self, op: &str, v: f64, drop_name: bool) -> Result<(), QueryError> {
        let g = self;
        g.drop_name |= drop_name;
        match op {
            "sum" => {
                (g.value, g.kahan_c) = kahan_sum_inc(v, g.value, g.kahan_c);
            }
            "avg" => {
                g.count += 1.0;
                if !g.incremental_mean {
                    let (nv, nc) = kahan_sum_inc(v, g.value, g.kahan_c);
                    if !nv.is_infinite() {
                        g.value = nv;
                        g.kahan_c = nc;
                        return Ok(());
                    }
                    g.incremental_mean = true;
                    g.mean = g.value / (g.count - 1.0);
                    g.kahan_c /= g.count - 1.0;
                }
                let q = (g.count - 1.0) / g.count;
                (g.mean, g.kahan_c) = kahan_sum_inc(v / g.count, q * g.mean, q * g.kahan_c);
            }
            "count" => g.count += 1.0,
            "group" => {}
            "max" => {
                if g.value < v || g.value.is_nan() {
                    g.value = v;
                }
            }
            "min" => {
                if g.value > v || g.value.is_nan() {
                    g.value = v;
                }
            }
            "stddev" | "stdvar" => {
                g.count += 1.0;
                let delta = v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (v - g.mean);
            }
            "quantile" => g.values.push(v),
            other => return Err(QueryError::Execution(format!("aggregation {other:?} is not supported"))),
        }
        Ok(())
    }

    /// The group's result.
    pub(crate) fn finish(&mut self, op: &str, param: f64) -> f64 {
        let g = self;
        match op {
            "sum" => {
                if g.value.is_infinite() {
                    g.value
                } else {
                    g.value + g.kahan_c
                }
            }
            "avg" => {
                if g.incremental_mean {
                    g.mean + g.kahan_c
                } else if g.value.is_infinite() {
                    g.value / g.count
                } else {
                    g.value / g.count + g.kahan_c / g.count
                }
            }
            "count" => g.count,
            "group" => 1.0,
            "max" | "min" => g.value,
            "stdvar" => g.value / g.count,
            "stddev" => (g.value / g.count).sqrt(),
            "quantile" => quantile(param, &mut g.values),
            _ => f64::NAN,
        }
    }
}

/// Converts a `topk`/`limitk` parameter to a count, as Prometheus does.
fn param_to_k(param: f64) -> Result<i64, QueryError> {
    if param.is_nan() {
        return Err(QueryError::Execution("Parameter value is NaN".into()));
    }
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&param) {
        return Err(QueryError::Execution(format!(
            "Scalar value {} overflows int64",
            crate::format_value_f64(param)
        )));
    }
    Ok(param as i64)
}

/// Orders for `topk` (descending) and `bottomk` (ascending); NaN always last.
fn value_order(a: f64, b: f64, desc: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ if desc => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// The index of the sample that no other sample `before`s (the heap top).
fn extreme_index(g: &[InstantSample], before: impl Fn(f64, f64) -> bool) -> usize {
    let mut best = 0;
    for (i, s) in g.iter().enumerate().skip(1) {
        if before(s.v, g[best].v) {
            best = i;
        }
    }
    best
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&mut self, a: &AggregateExpr, t: i64) -> Result<EvalValue, QueryError> {
        let op = a.op.to_string().to_ascii_lowercase();
        let mut scalar_param = f64::NAN;
        let mut string_param = String::new();
        if let Some(p) = &a.param {
            if op == "count_values" {
                string_param = self.eval_string(p, t)?;
            } else {
                scalar_param = self.eval_scalar(p, t)?;
            }
        }
        let input = self.eval_vector(&a.expr, t)?;
        let grouping = Grouping::of(&a.modifier);
        let grouping = |labels: &Labels| grouping.key(labels);

        match op.as_str() {
            "topk" | "bottomk" | "limitk" => {
                let k = param_to_k(scalar_param)?;
                if k < 1 || input.is_empty() {
                    return Ok(EvalValue::Vector(Vec::new()));
                }
                let k = usize::try_from(k).unwrap_or(usize::MAX).min(input.len());
                let mut groups: Vec<Vec<InstantSample>> = Vec::new();
                let mut index: HashMap<Labels, usize> = HashMap::new();
                for s in input {
                    let key = grouping(&s.labels);
                    let i = *index.entry(key).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    let g = &mut groups[i];
                    if g.len() < k {
                        g.push(s);
                        continue;
                    }
                    match op.as_str() {
                        "topk" => {
                            // Replace the smallest kept sample (NaN counts as smallest).
                            let mi = extreme_index(g, |x, y| x.is_nan() || x < y);
                            let min = g[mi].v;
                            if min < s.v || (min.is_nan() && !s.v.is_nan()) {
                                g[mi] = s;
                            }
                        }
                        "bottomk" => {
                            // Replace the largest kept sample (NaN counts as largest).
                            let mi = extreme_index(g, |x, y| x.is_nan() || x > y);
                            let max = g[mi].v;
                            if max > s.v || (max.is_nan() && !s.v.is_nan()) {
                                g[mi] = s;
                            }
                        }
                        _ => {}
                    }
                }
                let mut out = Vec::new();
                for mut g in groups {
                    match op.as_str() {
                        "topk" => g.sort_by(|x, y| value_order(x.v, y.v, true)),
                        "bottomk" => g.sort_by(|x, y| value_order(x.v, y.v, false)),
                        _ => {}
                    }
                    out.extend(g);
                }
                Ok(EvalValue::Vector(out))
            }
            "limit_ratio" => {
                if scalar_param.is_nan() {
                    return Err(QueryError::Execution("Ratio value is NaN".into()));
                }
                let mut ratio = scalar_param;
                if !(-1.0..=1.0).contains(&ratio) {
                    let capped = ratio.clamp(-1.0, 1.0);
                    let pos = self.aggregate_param_position(a);
                    self.annotations.warn(
                        &format!(
                            "ratio value should be between -1 and 1, got {}, capping to {}",
                            crate::format_value_f64(ratio),
                            crate::format_value_f64(capped)
                        ),
                        pos,
                    );
                    ratio = capped;
                }
                let out = input
                    .into_iter()
                    .filter(|s| {
                        let offset = s.labels.stable_hash() as f64 / u64::MAX as f64;
                        if ratio >= 0.0 {
                            offset < ratio
                        } else {
                            offset >= 1.0 + ratio
                        }
                    })
                    .collect();
                Ok(EvalValue::Vector(out))
            }
            "count_values" => {
                if string_param.is_empty() {
                    return Err(QueryError::Execution(format!("invalid label name {string_param:?}")));
                }
                let mut groups: Vec<(Labels, f64)> = Vec::new();
                let mut index: HashMap<Labels, usize> = HashMap::new();
                for s in input {
                    let key = grouping(&s.labels)
                        .builder()
                        .set(&string_param, &format_label_value(s.v))
                        .build();
                    let i = *index.entry(key.clone()).or_insert_with(|| {
                        groups.push((key, 0.0));
                        groups.len() - 1
                    });
                    groups[i].1 += 1.0;
                }
                Ok(EvalValue::Vector(
                    groups
                        .into_iter()
                        .map(|(labels, v)| InstantSample {
                            labels,
                            t,
                            v,
                            drop_name: false,
                        })
                        .collect(),
                ))
            }
            _ => self.aggregate_values(&op, a, input, grouping, scalar_param, t),
        }
    }

    fn aggregate_values(
        &mut self,
        op: &str,
        a: &AggregateExpr,
        input: Vec<InstantSample>,
        grouping: impl Fn(&Labels) -> Labels,
        param: f64,
        t: i64,
    ) -> Result<EvalValue, QueryError> {
        if op == "quantile" && !(0.0..=1.0).contains(&param) {
            let pos = self.aggregate_param_position(a);
            self.annotations.warn(
                &format!(
                    "quantile value should be between 0 and 1, got {}",
                    crate::format_value_f64(param)
                ),
                pos,
            );
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for s in input {
            let key = grouping(&s.labels);
            match index.get(&key) {
                Some(&i) => groups[i].add(op, s.v, s.drop_name)?,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(Group::start(op, key, s.v, s.drop_name));
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for mut g in groups {
            let v = g.finish(op, param);
            out.push(InstantSample {
                labels: g.labels,
                t,
                v,
                drop_name: g.drop_name,
            });
        }
        Ok(EvalValue::Vector(out))
    }
}

/// The labels that put a series in its group for `by (…)` / `without (…)`
/// (`without` also drops the metric name).
pub(crate) struct Grouping<'a> {
    by: bool,
    names: Vec<&'a str>,
}

impl<'a> Grouping<'a> {
    pub(crate) fn of(modifier: &'a Option<LabelModifier>) -> Self {
        match modifier {
            Some(LabelModifier::Include(l)) => Grouping {
                by: true,
                names: l.labels.iter().map(String::as_str).collect(),
            },
            Some(LabelModifier::Exclude(l)) => Grouping {
                by: false,
                names: l
                    .labels
                    .iter()
                    .map(String::as_str)
                    .chain(std::iter::once(model::METRIC_NAME))
                    .collect(),
            },
            None => Grouping {
                by: true,
                names: Vec::new(),
            },
        }
    }

    /// The group key of a series.
    pub(crate) fn key(&self, labels: &Labels) -> Labels {
        if self.by {
            labels.keep(&self.names)
        } else {
            labels.without(&self.names)
        }
    }
}
