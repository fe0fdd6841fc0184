//! Binary operators evaluated across all steps at once: arithmetic and
//! comparisons between a range-evaluated vector and a number literal, or
//! between two range-evaluated vectors with one-to-one matching. Layer 2.
//!
//! Series are matched once, by signature, for the whole range; then each
//! matched pair's points are combined step by step with a merge on the step
//! index. Results are those of `eval/binary.rs` at every step: same values,
//! labels, name marking and sample order within the step's vector.
//!
//! Declined (left to step-by-step evaluation): set operators, `group_left` /
//! `group_right`, fill modifiers, scalar operands other than number
//! literals, and any signature shared by two series of one side (those
//! raise matching errors at the steps where both are present).

use super::super::binary::{apply, result_labels, vector_scalar_value, BinOp, Matching};
use super::{Ctx, Evaluator, Info, OutSeries, Pt, RangeResult};
use crate::functions::rollup::unwrap_parens;
use crate::QueryError;
use model::Labels;
use promql_parser::parser::{BinaryExpr, Expr, VectorMatchCardinality};
use std::collections::HashMap;

/// One side of a binary operator.
enum Operand {
    Scalar(f64),
    Vector(RangeResult),
}

/// A number literal, possibly in parentheses.
fn literal(expr: &Expr) -> Option<f64> {
    match unwrap_parens(expr) {
        Expr::NumberLiteral(n) => Some(n.val),
        _ => None,
    }
}

/// Whether `b` has a shape evaluated here (operands may still decline).
pub(super) fn supported(b: &BinaryExpr) -> bool {
    let Some(op) = BinOp::parse(&b.op.to_string()) else {
        return false;
    };
    if op.is_set() {
        return false;
    }
    if let Some(m) = &b.modifier {
        if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
            return false;
        }
        if !matches!(m.card, VectorMatchCardinality::OneToOne) {
            return false;
        }
    }
    // Each side's shape is checked once: checking it twice per level made
    // chains like `a + b + c + …` exponential in their length.
    let vector_side = |e: &Expr| literal(e).is_none() && super::has_range_shape(e);
    let (lhs_literal, rhs_literal) = (literal(&b.lhs).is_some(), literal(&b.rhs).is_some());
    let lhs_vector = !lhs_literal && vector_side(&b.lhs);
    if !lhs_literal && !lhs_vector {
        return false;
    }
    let rhs_vector = !rhs_literal && vector_side(&b.rhs);
    rhs_vector || (rhs_literal && lhs_vector)
}

impl Evaluator<'_> {
    fn range_operand(&self, expr: &Expr) -> Result<Option<Operand>, QueryError> {
        if let Some(v) = literal(expr) {
            return Ok(Some(Operand::Scalar(v)));
        }
        Ok(self.eval_range_node(expr, Ctx::Operand)?.map(Operand::Vector))
    }

    /// Evaluates `b` at every step, or `None` if it has a shape left to
    /// step-by-step evaluation.
    pub(super) fn eval_range_binary(&self, b: &BinaryExpr) -> Result<Option<RangeResult>, QueryError> {
        if !supported(b) {
            return Ok(None);
        }
        let Some(op) = BinOp::parse(&b.op.to_string()) else {
            return Ok(None);
        };
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let Some(lhs) = self.range_operand(&b.lhs)? else {
            return Ok(None);
        };
        let Some(rhs) = self.range_operand(&b.rhs)? else {
            return Ok(None);
        };
        Ok(match (lhs, rhs) {
            (Operand::Vector(l), Operand::Scalar(r)) => Some(self.vector_scalar(op, l, r, false, return_bool)),
            (Operand::Scalar(l), Operand::Vector(r)) => Some(self.vector_scalar(op, r, l, true, return_bool)),
            (Operand::Vector(l), Operand::Vector(r)) => {
                let matching = Matching::new(b.modifier.as_ref());
                self.vector_vector(op, l, r, &matching, return_bool)?
            }
            (Operand::Scalar(_), Operand::Scalar(_)) => None,
        })
    }

    /// `vector op scalar` (or `scalar op vector` when `swap`) at every step.
    fn vector_scalar(&self, op: BinOp, input: RangeResult, scalar: f64, swap: bool, return_bool: bool) -> RangeResult {
        let mut series = Vec::with_capacity(input.series.len());
        for s in input.series {
            let mut points = Vec::with_capacity(s.points.len());
            for p in &s.points {
                let Some(v) = vector_scalar_value(op, p.v, scalar, swap, return_bool) else {
                    continue;
                };
                points.push(Pt {
                    k: p.k,
                    t: self.step_time(p.k),
                    v,
                    order: p.order,
                });
            }
            if !points.is_empty() {
                series.push(OutSeries {
                    labels: s.labels,
                    drop_name: s.drop_name || !op.is_comparison() || return_bool,
                    points,
                });
            }
        }
        RangeResult {
            series,
            counts: input.counts,
            infos: input.infos,
        }
    }

    /// `vector op vector` with one-to-one matching at every step; `None` if
    /// a signature is shared by two series of one side.
    fn vector_vector(
        &self,
        op: BinOp,
        lhs: RangeResult,
        rhs: RangeResult,
        matching: &Matching<'_>,
        return_bool: bool,
    ) -> Result<Option<RangeResult>, QueryError> {
        let mut rhs_by_sig: HashMap<Labels, usize> = HashMap::with_capacity(rhs.series.len());
        for (i, s) in rhs.series.iter().enumerate() {
            if rhs_by_sig.insert(matching.signature(&s.labels), i).is_some() {
                return Ok(None);
            }
        }
        let mut lhs_sigs: Vec<Labels> = Vec::with_capacity(lhs.series.len());
        {
            let mut seen = std::collections::HashSet::with_capacity(lhs.series.len());
            for s in &lhs.series {
                let sig = matching.signature(&s.labels);
                if !seen.insert(sig.clone()) {
                    return Ok(None);
                }
                lhs_sigs.push(sig);
            }
        }
        let drop_name = !op.is_comparison() || return_bool;
        let mut series = Vec::new();
        for (l, sig) in lhs.series.iter().zip(&lhs_sigs) {
            self.check_deadline_now()?;
            let Some(&ri) = rhs_by_sig.get(sig) else {
                continue;
            };
            let r = &rhs.series[ri];
            let mut points = Vec::new();
            let mut rp = r.points.iter().peekable();
            for lp in &l.points {
                while rp.next_if(|p| p.k < lp.k).is_some() {}
                let Some(rv) = rp.peek().filter(|p| p.k == lp.k).map(|p| p.v) else {
                    continue;
                };
                let (mut v, keep) = apply(op, lp.v, rv);
                if return_bool {
                    v = if keep { 1.0 } else { 0.0 };
                } else if !keep {
                    continue;
                }
                points.push(Pt {
                    k: lp.k,
                    t: self.step_time(lp.k),
                    v,
                    order: lp.order,
                });
            }
            if !points.is_empty() {
                series.push(OutSeries {
                    labels: result_labels(&l.labels, &r.labels, matching, drop_name),
                    drop_name: drop_name || l.drop_name,
                    points,
                });
            }
        }
        let counts = lhs.counts.iter().zip(&rhs.counts).map(|(a, b)| a + b).collect();
        Ok(Some(RangeResult {
            series,
            counts,
            infos: merge_infos(lhs.infos, rhs.infos),
        }))
    }
}

/// The infos of both sides, ordered as step-by-step evaluation raises them:
/// by step, the left side's before the right side's.
fn merge_infos(lhs: Vec<Info>, rhs: Vec<Info>) -> Vec<Info> {
    let shift = lhs.iter().map(|x| x.1 + 1).max().unwrap_or(0);
    let mut out = lhs;
    out.extend(rhs.into_iter().map(|(k, i, msg, pos)| (k, i + shift, msg, pos)));
    out.sort_by_key(|x| (x.0, x.1));
    out
}

#[cfg(test)]
mod tests {
    use crate::{Engine, EngineOptions};
    use std::time::{Duration, Instant};
    use storage_api::{MemStorage, Queryable};

    /// Found by the query fuzz target: a range query over `x + x + … + x`
    /// took time exponential in the number of terms (24 terms: 0.8 s).
    #[test]
    fn long_operator_chains_stay_cheap() {
        let store = MemStorage::new();
        let querier = store.querier(&model::TenantId::default()).expect("querier");
        let query = vec!["x"; 200].join(" + ");
        let started = Instant::now();
        let result = Engine::new(EngineOptions::default()).range_query(querier.as_ref(), &query, 0, 600_000, 15_000);
        assert!(result.is_ok(), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
