//! Binary operators: arithmetic, comparisons (with and without `bool`),
//! `atan2`, the set operators `and`/`or`/`unless`, vector matching with
//! `on`/`ignoring`/`group_left`/`group_right`, and `fill` modifiers.
//! Layer 2.
//!
//! Result labels follow Prometheus: arithmetic and `bool` comparisons mark the
//! metric name for removal; filtering comparisons and set operators keep it.

use super::{EvalValue, Evaluator, InstantSample};
use crate::QueryError;
use model::Labels;
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::{HashMap, HashSet};

/// The operators, decoded once from the parser's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub(super) fn parse(s: &str) -> Option<BinOp> {
        Some(match s {
            "+" => BinOp::Add,
            "-" => BinOp::Sub,
            "*" => BinOp::Mul,
            "/" => BinOp::Div,
            "%" => BinOp::Mod,
            "^" => BinOp::Pow,
            "atan2" => BinOp::Atan2,
            "==" => BinOp::Eq,
            "!=" => BinOp::Ne,
            ">" => BinOp::Gt,
            "<" => BinOp::Lt,
            ">=" => BinOp::Ge,
            "<=" => BinOp::Le,
            "and" => BinOp::And,
            "or" => BinOp::Or,
            "unless" => BinOp::Unless,
            _ => return None,
        })
    }

    pub(super) fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    pub(super) fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }
}

/// Applies an arithmetic or comparison operator to two floats. For
/// comparisons, returns the left value and whether the comparison holds.
pub(super) fn apply(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Mod => (l % r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (l, true),
    }
}

/// How two vectors' samples are matched.
pub(super) struct Matching<'m> {
    on: bool,
    names: Vec<&'m str>,
    pub(super) card: &'m VectorMatchCardinality,
    include: Vec<&'m str>,
}

impl<'m> Matching<'m> {
    pub(super) fn new(modifier: Option<&'m BinModifier>) -> Self {
        static ONE_TO_ONE: VectorMatchCardinality = VectorMatchCardinality::OneToOne;
        let (on, names) = match modifier.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => (true, l.labels.iter().map(String::as_str).collect()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.iter().map(String::as_str).collect()),
            None => (false, Vec::new()),
        };
        let card = modifier.map(|m| &m.card).unwrap_or(&ONE_TO_ONE);
        let include = card
            .labels()
            .map(|l| l.labels.iter().map(String::as_str).collect())
            .unwrap_or_default();
        Matching {
            on,
            names,
            card,
            include,
        }
    }

    /// The labels two samples must share to match.
    pub(super) fn signature(&self, labels: &Labels) -> Labels {
        if self.on {
            labels.keep(&self.names)
        } else {
            let mut drop = self.names.clone();
            drop.push(model::METRIC_NAME);
            labels.without(&drop)
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr, t: i64) -> Result<EvalValue, QueryError> {
        let op_text = b.op.to_string();
        let op = BinOp::parse(&op_text)
            .ok_or_else(|| QueryError::Execution(format!("unsupported binary operator {op_text:?}")))?;
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        match (lhs, rhs) {
            (EvalValue::Scalar(l), EvalValue::Scalar(r)) => {
                let (v, keep) = apply(op, l, r);
                if op.is_comparison() {
                    Ok(EvalValue::Scalar(if keep { 1.0 } else { 0.0 }))
                } else {
                    Ok(EvalValue::Scalar(v))
                }
            }
            (EvalValue::Vector(l), EvalValue::Scalar(r)) => {
                Ok(EvalValue::Vector(vector_scalar(op, l, r, false, return_bool, t)))
            }
            (EvalValue::Scalar(l), EvalValue::Vector(r)) => {
                Ok(EvalValue::Vector(vector_scalar(op, r, l, true, return_bool, t)))
            }
            (EvalValue::Vector(l), EvalValue::Vector(r)) => {
                let matching = Matching::new(b.modifier.as_ref());
                if op.is_set() {
                    Ok(EvalValue::Vector(set_op(op, l, r, &matching)))
                } else {
                    let fill = b.modifier.as_ref().map(|m| (m.fill_values.lhs, m.fill_values.rhs));
                    vector_vector(op, l, r, &matching, return_bool, fill.unwrap_or((None, None)), t)
                        .map(EvalValue::Vector)
                }
            }
            (l, r) => Err(QueryError::Execution(format!(
                "binary operator {op_text} not allowed between {} and {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

/// The value of one sample of `vector op scalar` (or `scalar op vector`
/// when `swap`); `None` when a comparison without `bool` filters it out.
pub(crate) fn vector_scalar_value(op: BinOp, sample: f64, scalar: f64, swap: bool, return_bool: bool) -> Option<f64> {
    let (l, r) = if swap { (scalar, sample) } else { (sample, scalar) };
    let (mut v, keep) = apply(op, l, r);
    // A comparison keeps the vector's value even when the vector is on the right.
    if op.is_comparison() && swap {
        v = r;
    }
    if return_bool {
        Some(if keep { 1.0 } else { 0.0 })
    } else {
        keep.then_some(v)
    }
}

fn vector_scalar(
    op: BinOp,
    vector: Vec<InstantSample>,
    scalar: f64,
    swap: bool,
    return_bool: bool,
    t: i64,
) -> Vec<InstantSample> {
    let mut out = Vec::with_capacity(vector.len());
    for mut s in vector {
        let Some(v) = vector_scalar_value(op, s.v, scalar, swap, return_bool) else {
            continue;
        };
        if !op.is_comparison() || return_bool {
            s.drop_name = true;
        }
        s.v = v;
        s.t = t;
        out.push(s);
    }
    out
}

fn set_op(op: BinOp, lhs: Vec<InstantSample>, rhs: Vec<InstantSample>, matching: &Matching<'_>) -> Vec<InstantSample> {
    match op {
        BinOp::And => {
            let sigs: HashSet<Labels> = rhs.iter().map(|s| matching.signature(&s.labels)).collect();
            lhs.into_iter()
                .filter(|s| sigs.contains(&matching.signature(&s.labels)))
                .collect()
        }
        BinOp::Unless => {
            let sigs: HashSet<Labels> = rhs.iter().map(|s| matching.signature(&s.labels)).collect();
            lhs.into_iter()
                .filter(|s| !sigs.contains(&matching.signature(&s.labels)))
                .collect()
        }
        _ => {
            let sigs: HashSet<Labels> = lhs.iter().map(|s| matching.signature(&s.labels)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !sigs.contains(&matching.signature(&s.labels))),
            );
            out
        }
    }
}

/// The labels of a vector-vector result: the "many" side's labels, reduced
/// for one-to-one matching, plus `group_x` labels from the "one" side.
pub(super) fn result_labels(many: &Labels, one: &Labels, matching: &Matching<'_>, drop_name: bool) -> Labels {
    let mut labels = if matches!(matching.card, VectorMatchCardinality::OneToOne) {
        if matching.on {
            let mut keep = matching.names.clone();
            if !drop_name {
                // Filtering comparisons keep the name until the end; `on` keeps only listed labels.
                keep.retain(|n| *n != model::METRIC_NAME || matching.names.contains(&model::METRIC_NAME));
            }
            many.keep(&keep)
        } else {
            many.without(&matching.names)
        }
    } else {
        many.clone()
    };
    if !matching.include.is_empty() {
        let mut b = labels.builder();
        for name in &matching.include {
            match one.get(name) {
                Some(v) => b.set(name, v),
                None => b.del(name),
            };
        }
        labels = b.build();
    }
    labels
}

fn vector_vector(
    op: BinOp,
    lhs: Vec<InstantSample>,
    rhs: Vec<InstantSample>,
    matching: &Matching<'_>,
    return_bool: bool,
    fill: (Option<f64>, Option<f64>),
    t: i64,
) -> Result<Vec<InstantSample>, QueryError> {
    let one_to_many = matches!(matching.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(matching.card, VectorMatchCardinality::OneToOne);
    // "many" is the side whose samples each produce an output; "one" is looked up.
    // As in Prometheus, fill values apply to these internal sides: with
    // group_right, `fill_left` fills a missing "many" (right-hand) sample.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let (fill_many, fill_one) = fill;
    let mut one_by_sig: HashMap<Labels, usize> = HashMap::with_capacity(one.len());
    for (i, s) in one.iter().enumerate() {
        let sig = matching.signature(&s.labels);
        if let Some(&prev) = one_by_sig.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                one[prev].labels, s.labels
            )));
        }
        one_by_sig.insert(sig, i);
    }
    let drop_name = !op.is_comparison() || return_bool;
    let mut matched_sigs: HashSet<Labels> = HashSet::new();
    let mut inserted: HashSet<Labels> = HashSet::new();
    let mut matched_one: HashSet<usize> = HashSet::new();
    let mut out = Vec::new();
    let mut emit = |many_s: &InstantSample,
                    one_s: Option<&InstantSample>,
                    many_v: f64,
                    one_v: f64,
                    out: &mut Vec<InstantSample>|
     -> Result<(), QueryError> {
        let (l, r) = if one_to_many { (one_v, many_v) } else { (many_v, one_v) };
        let (mut v, keep) = apply(op, l, r);
        if return_bool {
            v = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            return Ok(());
        }
        let filled = one_s.is_some_and(|o| std::ptr::eq(o, many_s));
        let labels = match one_s {
            Some(o) => result_labels(&many_s.labels, &o.labels, matching, drop_name),
            None => result_labels(&many_s.labels, &Labels::empty(), matching, drop_name),
        };
        if !one_to_one && !inserted.insert(labels.clone()) {
            return Err(QueryError::Execution(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        out.push(InstantSample {
            labels,
            t,
            v,
            drop_name: drop_name || many_s.drop_name || filled,
        });
        Ok(())
    };
    for s in &many {
        let sig = matching.signature(&s.labels);
        match one_by_sig.get(&sig) {
            Some(&i) => {
                if one_to_one && !matched_sigs.insert(sig) {
                    return Err(QueryError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                matched_one.insert(i);
                emit(s, Some(&one[i]), s.v, one[i].v, &mut out)?;
            }
            None => {
                if let Some(fv) = fill_one {
                    emit(s, None, s.v, fv, &mut out)?;
                }
            }
        }
    }
    if let Some(fv) = fill_many {
        for (i, o) in one.iter().enumerate() {
            if !matched_one.contains(&i) {
                emit(o, Some(o), fv, o.v, &mut out)?;
            }
        }
    }
    Ok(out)
}
