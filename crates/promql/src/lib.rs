//! The PromQL evaluation engine: parses a query with `promql-parser` and
//! evaluates it over a [`storage_api::Querier`], with Prometheus 3 semantics
//! for float samples.
//!
//! Layer 2: depends on `model` and `storage-api` only. It knows nothing about
//! HTTP or the TSDB; the API layer calls [`Engine::instant_query`] and
//! [`Engine::range_query`] and renders [`QueryOutput`].
//!
//! Design:
//! - Every selector in the query is loaded from storage once, before
//!   evaluation, for the whole time range it can touch (`eval::prepare`).
//! - Evaluation then runs step by step: `eval(expr, t)` computes the value of
//!   an expression at one time, reading the preloaded samples with binary
//!   searches. Subqueries evaluate their inner expression at their own steps.
//! - Range queries first evaluate selectors, range functions over matrix
//!   selectors, simple aggregations and arithmetic/comparison operators
//!   (one-to-one matching, or with a number literal) of those series by
//!   series over all steps (sliding windows, group and match of each series
//!   computed once), with the same results as step-by-step evaluation
//!   (`eval/range.rs`).
//! - A subquery that would certainly exceed `max_samples` (its steps times
//!   the fewest samples its expression yields per step) fails before its
//!   steps are evaluated.
//! - The metric name is removed late ("delayed name removal", as Prometheus 3
//!   with `promql-delayed-name-removal`): operations only mark samples, and
//!   names are dropped when the result is returned.
//! - Native histograms are not supported yet; queries only see float samples.
//!
//! Not done here: query result caching, query statistics beyond sample counts,
//! HTTP JSON rendering (only [`format_value_f64`] is provided for it).
#![warn(missing_docs)]

mod duration_expr;
mod eval;
mod functions;
mod go_strings;
mod parse_error;
pub mod test_script;

use std::time::Duration;

pub use eval::Engine;

/// Parses a query into `promql-parser`'s syntax tree, with Prometheus' error
/// form (`line:col: parse error: …`) when it does not parse. Duration
/// expressions (`[5m+step()]`) are left to the engine, which knows the step.
pub fn parse(query: &str) -> Result<promql_parser::parser::Expr, QueryError> {
    eval::parse_once(query).map_err(|err| match err {
        QueryError::Parse { message } => QueryError::Parse {
            message: parse_error::with_position(query, &message),
        },
        other => other,
    })
}

/// Limits and defaults of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back a vector selector looks for the latest sample (Prometheus' 5m).
    pub lookback_delta_ms: i64,
    /// The most samples a query may hold at one step (and load in total per select).
    pub max_samples: usize,
    /// The longest a query may run.
    pub timeout: Duration,
    /// The most points a range query may return per series (Prometheus' 11,000).
    pub max_points_per_series: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
        }
    }
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    /// The series' labels.
    pub labels: model::Labels,
    /// The evaluation time, in milliseconds.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A single number.
    Scalar {
        /// Evaluation time, ms.
        t: i64,
        /// The value.
        v: f64,
    },
    /// A string literal.
    String {
        /// Evaluation time, ms.
        t: i64,
        /// The string.
        v: String,
    },
    /// An instant vector.
    Vector(Vec<VectorSample>),
    /// A range vector (or a range query result), sorted by labels.
    Matrix(Vec<storage_api::Series>),
}

/// Sample counts of one query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Samples loaded from storage and touched during evaluation, in total.
    pub total_samples: usize,
    /// The most samples held at one evaluation step.
    pub peak_samples: usize,
}

/// What a successful query returns: the value plus soft problems.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    /// The result.
    pub value: Value,
    /// Warnings and infos, rendered as `PromQL warning: …` / `PromQL info: …`.
    pub warnings: Vec<String>,
    /// Sample counts.
    pub stats: QueryStats,
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The query does not parse or does not type-check.
    #[error("{message}")]
    Parse {
        /// `line:col: parse error: …`, as Prometheus words it.
        message: String,
    },
    /// The request parameters are wrong (bad range, step, …).
    #[error("{0}")]
    BadData(String),
    /// The query ran longer than the timeout.
    #[error("query timed out in expression evaluation")]
    Timeout,
    /// The query was canceled.
    #[error("query was canceled in expression evaluation")]
    Canceled,
    /// The query would hold more samples than allowed.
    #[error("query processing would load too many samples into memory in query execution (limit {limit})")]
    TooManySamples {
        /// The limit in force.
        limit: usize,
    },
    /// Evaluation failed (e.g. many-to-many matching, bad function argument).
    #[error("{0}")]
    Execution(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(storage_api::StorageError),
}

impl From<storage_api::StorageError> for QueryError {
    fn from(e: storage_api::StorageError) -> Self {
        match e {
            storage_api::StorageError::TooManySamples { limit } => QueryError::TooManySamples { limit },
            other => QueryError::Storage(other),
        }
    }
}

/// Formats a float as Prometheus' JSON does: `NaN`, `+Inf`, `-Inf`, else
/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` (shortest round-trip digits,
/// never an exponent).
pub fn format_value_f64(v: f64) -> String {
    let mut out = String::new();
    write_value_f64(&mut out, v);
    out
}

/// Appends [`format_value_f64`]'s text to `out`, without allocating.
pub fn write_value_f64(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Integral and exact in i64: the common case of counts and counters.
        out.push_str(itoa::Buffer::new().format(v as i64));
    } else {
        // ryu finds Go's shortest round-trip digits, ties broken to even as
        // Go does (Rust's Display rounds ties up: `99552201059253.625` is
        // `…253.62` in Go and ryu, `…253.63` in Display), but may print them
        // with an exponent: place the point.
        let mut buf = ryu::Buffer::new();
        let text = buf.format_finite(v);
        if (1e-5..1e16).contains(&v.abs()) {
            // Already plain (ryu writes an exponent only below 1e-5 and from
            // 1e16 on): at most an integral `.0` to drop.
            out.push_str(text.strip_suffix(".0").unwrap_or(text));
        } else {
            write_plain_decimal(out, text);
        }
    }
}

/// Rewrites ryu's rendering of a finite non-zero float (`-1.5e-7`, `123.25`,
/// `1e21`) without an exponent (`-0.00000015`, `123.25`, `1000000000000000000000`).
fn write_plain_decimal(out: &mut String, text: &str) {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (text, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits = [0u8; 40];
    let mut len = 0;
    for b in int_part.bytes().chain(frac_part.bytes()).take(digits.len()) {
        digits[len] = b;
        len += 1;
    }
    // The decimal point sits after `point` digits.
    let mut point = int_part.len() as i64 + exp;
    let lead = digits[..len].iter().take_while(|&&b| b == b'0').count();
    point -= lead as i64;
    let trail = digits[lead..len].iter().rev().take_while(|&&b| b == b'0').count();
    let digits = &digits[lead..len - trail];
    let digits = std::str::from_utf8(digits).unwrap_or("0");
    if negative {
        out.push('-');
    }
    if digits.is_empty() {
        out.push('0');
    } else if point <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
        out.push_str(digits);
    } else if point as usize >= digits.len() {
        out.push_str(digits);
        out.extend(std::iter::repeat_n('0', point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
}

#[cfg(test)]
mod tests;
