//! Unit tests of the engine through its public API: each test loads a small
//! fixture into `MemStorage`, runs a query and compares the rendered result
//! with the expected text (`check`-style tests).

use crate::{format_value_f64, Engine, EngineOptions, QueryError, Value};
use model::{Labels, Sample, STALE_NAN};
use storage_api::{MemStorage, Queryable};

/// A fixture series: labels as pairs, then values.
type FixtureSeries<'a> = (&'a [(&'a str, &'a str)], &'a [f64]);

/// Loads `series` with samples every `step_ms` from 0.
fn storage(series: &[FixtureSeries<'_>], step_ms: i64) -> MemStorage {
    let s = MemStorage::new();
    for (labels, values) in series {
        let samples: Vec<Sample> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * step_ms, *v))
            .collect();
        s.add(Labels::from_pairs(labels), &samples);
    }
    s
}

fn fixture() -> MemStorage {
    storage(
        &[
            (
                &[("__name__", "http_requests_total"), ("job", "api"), ("instance", "0")],
                &[0.0, 10.0, 20.0, 30.0, 40.0],
            ),
            (
                &[("__name__", "http_requests_total"), ("job", "api"), ("instance", "1")],
                &[0.0, 20.0, 40.0, 60.0, 80.0],
            ),
            (
                &[("__name__", "http_requests_total"), ("job", "web"), ("instance", "0")],
                &[5.0, 5.0, 0.0, 5.0, 10.0],
            ),
            (
                &[("__name__", "up"), ("job", "api"), ("instance", "0")],
                &[1.0, 1.0, 1.0, 1.0, STALE_NAN],
            ),
        ],
        60_000,
    )
}

fn render(v: &Value) -> String {
    match v {
        Value::Scalar { v, .. } => format!("scalar {}", format_value_f64(*v)),
        Value::String { v, .. } => format!("string {v:?}"),
        Value::Vector(samples) => {
            let mut lines: Vec<String> = samples
                .iter()
                .map(|s| format!("{} {}", s.labels, format_value_f64(s.v)))
                .collect();
            lines.sort();
            lines.join("\n")
        }
        Value::Matrix(series) => series
            .iter()
            .map(|s| {
                let pts: Vec<String> = s
                    .samples
                    .iter()
                    .map(|p| format!("{}@{}", format_value_f64(p.v), p.t / 1000))
                    .collect();
                format!("{} {}", s.labels, pts.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn instant(query: &str, t_ms: i64) -> String {
    let s = fixture();
    let q = s.querier(&model::TenantId::default()).expect("querier");
    match Engine::new(EngineOptions::default()).instant_query(q.as_ref(), query, t_ms) {
        Ok(out) => render(&out.value),
        Err(e) => format!("error: {e}"),
    }
}

fn check(query: &str, t_ms: i64, expected: &str) {
    assert_eq!(instant(query, t_ms), expected.trim(), "query: {query}");
}

fn check_range(query: &str, start: i64, end: i64, step: i64, expected: &str) {
    let s = fixture();
    let q = s.querier(&model::TenantId::default()).expect("querier");
    let got = match Engine::new(EngineOptions::default()).range_query(q.as_ref(), query, start, end, step) {
        Ok(out) => render(&out.value),
        Err(e) => format!("error: {e}"),
    };
    assert_eq!(got, expected.trim(), "query: {query}");
}

#[test]
fn vector_selector_uses_latest_sample_and_staleness() {
    check(r#"up"#, 150_000, r#"{__name__="up", instance="0", job="api"} 1"#);
    // The staleness marker at 240s ends the series.
    check("up", 250_000, "");
    check(
        r#"http_requests_total{job=~"a.*", instance!="1"}"#,
        240_000,
        r#"{__name__="http_requests_total", instance="0", job="api"} 40"#,
    );
}

#[test]
fn rate_extrapolates_and_drops_the_name() {
    check(
        "rate(http_requests_total[4m])",
        240_000,
        r#"
{instance="0", job="api"} 0.16666666666666666
{instance="0", job="web"} 0.05555555555555555
{instance="1", job="api"} 0.3333333333333333"#,
    );
}

#[test]
fn aggregation_by_label() {
    check(
        "sum by (job) (http_requests_total)",
        240_000,
        r#"
{job="api"} 120
{job="web"} 10"#,
    );
    check(
        "topk(1, http_requests_total)",
        240_000,
        r#"{__name__="http_requests_total", instance="1", job="api"} 80"#,
    );
}

#[test]
fn binary_matching_and_errors() {
    check(
        "http_requests_total / on(job, instance) up",
        120_000,
        r#"{instance="0", job="api"} 20"#,
    );
    check(
        "http_requests_total + on(job) http_requests_total",
        120_000,
        "error: found duplicate series for the match group {job=\"api\"} on the right hand-side of the operation: [{__name__=\"http_requests_total\", instance=\"0\", job=\"api\"}, {__name__=\"http_requests_total\", instance=\"1\", job=\"api\"}];many-to-many matching not allowed: matching labels must be unique on one side",
    );
    check("1 + 2 * 3", 0, "scalar 7");
    check(r#""hello""#, 0, r#"string "hello""#);
}

#[test]
fn range_query_is_sorted_and_scalar_becomes_a_series() {
    check_range(
        r#"http_requests_total{job="api"}"#,
        0,
        120_000,
        60_000,
        r#"
{__name__="http_requests_total", instance="0", job="api"} 0@0 10@60 20@120
{__name__="http_requests_total", instance="1", job="api"} 0@0 20@60 40@120"#,
    );
    check_range("time()", 0, 120_000, 60_000, "{} 0@0 60@60 120@120");
    check_range(
        "up[1m]",
        0,
        60_000,
        60_000,
        r#"error: invalid expression type "range vector" for range query, must be Scalar or instant Vector"#,
    );
}

#[test]
fn subquery_and_offset() {
    check(
        "max_over_time(rate(http_requests_total{job=\"web\"}[2m])[4m:1m])",
        240_000,
        r#"{instance="0", job="web"} 0.08333333333333333"#,
    );
    check(
        "http_requests_total{job=\"api\", instance=\"0\"} offset 2m",
        240_000,
        r#"{__name__="http_requests_total", instance="0", job="api"} 20"#,
    );
}

#[test]
fn limits_are_enforced() {
    let s = fixture();
    let q = s.querier(&model::TenantId::default()).expect("querier");
    let engine = Engine::new(EngineOptions {
        max_samples: 3,
        ..EngineOptions::default()
    });
    let err = engine.instant_query(q.as_ref(), "http_requests_total[5m]", 240_000);
    assert!(matches!(err, Err(QueryError::TooManySamples { limit: 3 })), "{err:?}");
    let engine = Engine::new(EngineOptions {
        max_points_per_series: 10,
        ..EngineOptions::default()
    });
    let err = engine.range_query(q.as_ref(), "up", 0, 100_000, 1000);
    assert!(matches!(err, Err(QueryError::BadData(_))), "{err:?}");
    let err = Engine::default().instant_query(q.as_ref(), "sum(", 0);
    assert!(matches!(err, Err(QueryError::Parse { .. })), "{err:?}");
}

#[test]
fn float_formatting_matches_go() {
    let cases = [
        (1.0, "1"),
        (0.1, "0.1"),
        (-0.0, "-0"),
        (1e21, "1000000000000000000000"),
        (1.5e-7, "0.00000015"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (123456.789, "123456.789"),
    ];
    for (v, want) in cases {
        assert_eq!(format_value_f64(v), want);
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const TOKENS: &[&str] = &[
        "sum",
        "rate",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        "5m",
        ":",
        "1m",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "offset",
        "@",
        "start()",
        "-",
        "+",
        "*",
        "/",
        "^",
        "%",
        "==",
        "!=",
        ">",
        "bool",
        "and",
        "or",
        "unless",
        "http_requests_total",
        "up",
        "job=\"api\"",
        "job=~\".*\"",
        ",",
        "1",
        "0",
        "-1e309",
        "NaN",
        "Inf",
        "\"x\"",
        "topk",
        "quantile",
        "count_values",
        "histogram_quantile",
        "label_replace",
        "absent",
        "scalar",
        "vector",
        "time()",
        "round",
        "clamp",
        "sort_desc",
        "predict_linear",
        "holt_winters",
        "1e18",
        "9223372036854775807",
        "limit_ratio",
        "limitk",
        "stddev",
        "avg_over_time",
        "0.5",
        " ",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn random_queries_never_panic(idx in proptest::collection::vec(0..TOKENS.len(), 1..14), t in -1_000_000i64..1_000_000_000) {
            let query: String = idx.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" ");
            let s = fixture();
            let q = s.querier(&model::TenantId::default()).expect("querier");
            let engine = Engine::new(EngineOptions { timeout: std::time::Duration::from_secs(2), ..EngineOptions::default() });
            let _ = engine.instant_query(q.as_ref(), &query, t);
            let _ = engine.range_query(q.as_ref(), &query, t, t + 600_000, 60_000);
        }

        #[test]
        fn random_bytes_never_panic(query in "\\PC{0,40}") {
            let s = fixture();
            let q = s.querier(&model::TenantId::default()).expect("querier");
            let _ = Engine::default().instant_query(q.as_ref(), &query, 0);
        }
    }
}
