//! Source positions for annotations. The parser's AST carries no positions,
//! so a call's position is recovered from the query text: the k-th call of a
//! function in the AST (in source order) is the k-th `name(` in the text
//! outside string literals and comments. Layer 2.
//!
//! Positions are 1-based `(line, column)`, columns counted in bytes, as
//! Prometheus prints them.

use crate::duration_expr::skip_string;

use super::Evaluator;
use promql_parser::parser::{AggregateExpr, Call, Expr};

/// Calls and aggregations in source order: (node address, keyword).
pub(crate) fn collect_calls(expr: &Expr, out: &mut Vec<(usize, String)>) {
    match expr {
        Expr::Call(c) => {
            out.push((c as *const Call as usize, c.func.name.to_string()));
            for a in &c.args.args {
                collect_calls(a, out);
            }
        }
        Expr::Aggregate(a) => {
            out.push((
                a as *const AggregateExpr as usize,
                a.op.to_string().to_ascii_lowercase(),
            ));
            if let Some(p) = &a.param {
                collect_calls(p, out);
            }
            collect_calls(&a.expr, out);
        }
        Expr::Binary(b) => {
            collect_calls(&b.lhs, out);
            collect_calls(&b.rhs, out);
        }
        Expr::Paren(p) => collect_calls(&p.expr, out),
        Expr::Unary(u) => collect_calls(&u.expr, out),
        Expr::Subquery(s) => collect_calls(&s.expr, out),
        _ => {}
    }
}

/// Byte offsets of the starts of identifier `word` that are followed by `(`
/// (or, for aggregations, by `by`/`without`), outside strings and comments.
pub(crate) fn occurrences(query: &str, word: &str) -> Vec<usize> {
    let b = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i = skip_string(b, i);
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            if query[start..i].eq_ignore_ascii_case(word) {
                let mut j = i;
                while j < b.len() && b[j].is_ascii_whitespace() {
                    j += 1;
                }
                let rest = &query[j..];
                if rest.starts_with('(') || rest.starts_with("by") || rest.starts_with("without") {
                    out.push(start);
                }
            }
            continue;
        }
        i += 1;
    }
    out
}

/// The offset of the start of argument `idx` of the call whose name starts at `start`.
pub(crate) fn argument_offset(query: &str, start: usize, idx: usize) -> Option<usize> {
    let b = query.as_bytes();
    let mut i = start;
    // Find the argument list's opening parenthesis, skipping a `by (...)` clause.
    loop {
        while i < b.len() && b[i] != b'(' {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let before = query[start..i].trim_end();
        if before.ends_with("by") || before.ends_with("without") {
            i = skip_group(b, i)?;
            continue;
        }
        break;
    }
    i += 1;
    let mut depth = 0usize;
    let mut arg = 0usize;
    let mut arg_start = i;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
            }
            b',' if depth == 0 => {
                if arg == idx {
                    break;
                }
                arg += 1;
                arg_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if arg != idx {
        return None;
    }
    let mut j = arg_start;
    while j < b.len() && b[j].is_ascii_whitespace() {
        j += 1;
    }
    Some(j)
}

fn skip_group(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open;
    while i < b.len() && b[i] != b')' {
        i += 1;
    }
    (i < b.len()).then_some(i + 1)
}

pub(crate) fn line_col(query: &str, offset: usize) -> (usize, usize) {
    let before = &query[..offset.min(query.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|n| offset - n).unwrap_or(offset + 1);
    (line, col)
}

impl Evaluator<'_> {
    fn node_start(&self, addr: usize) -> Option<usize> {
        let idx = self.calls.iter().position(|(a, _)| *a == addr)?;
        let name = &self.calls[idx].1;
        let ordinal = self.calls[..idx].iter().filter(|(_, n)| n == name).count();
        occurrences(self.query, name).get(ordinal).copied()
    }

    /// The position of a call's name.
    pub(crate) fn call_position(&self, call: &Call) -> Option<(usize, usize)> {
        let start = self.node_start(call as *const Call as usize)?;
        Some(line_col(self.query, start))
    }

    /// The position of a call's argument `idx`.
    pub(crate) fn arg_position(&self, call: &Call, idx: usize) -> Option<(usize, usize)> {
        let start = self.node_start(call as *const Call as usize)?;
        let off = argument_offset(self.query, start, idx)?;
        Some(line_col(self.query, off))
    }

    /// The position of an aggregation's parameter.
    pub(crate) fn aggregate_param_position(&self, a: &AggregateExpr) -> Option<(usize, usize)> {
        let start = self.node_start(a as *const AggregateExpr as usize)?;
        let off = argument_offset(self.query, start, 0)?;
        Some(line_col(self.query, off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_argument_offsets() {
        let q = "count(limit_ratio(-1.1, http_requests) and http_requests)";
        let occ = occurrences(q, "limit_ratio");
        assert_eq!(occ, vec![6]);
        assert_eq!(argument_offset(q, 6, 0), Some(18));
        assert_eq!(line_col(q, 18), (1, 19));
        let q = "sum by (x) (rate(a[5m]))";
        assert_eq!(argument_offset(q, 0, 0), Some(12));
    }
}
