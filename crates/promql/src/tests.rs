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

/// A subquery certain to exceed the sample limit fails before evaluating its
/// steps (issue 3: `count_over_time(vector(1)[1000d:1ms])` ran ~50 s before
/// failing); one that may stay under the limit is evaluated.
#[test]
fn oversized_subquery_fails_fast() {
    let s = fixture();
    let q = s.querier(&model::TenantId::default()).expect("querier");
    let engine = Engine::default();
    for query in [
        "count_over_time(vector(1)[1000d:1ms])",
        "sum_over_time((vector(time()) * 2)[100d:100ms])",
        "max_over_time(sum(vector(1) + 1)[1000d:1ms])",
    ] {
        let started = std::time::Instant::now();
        let err = engine.instant_query(q.as_ref(), query, 240_000);
        assert!(
            matches!(err, Err(QueryError::TooManySamples { .. })),
            "{query}: {err:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{query}");
        let err = engine.range_query(q.as_ref(), query, 0, 240_000, 60_000);
        assert!(
            matches!(err, Err(QueryError::TooManySamples { .. })),
            "{query}: {err:?}"
        );
    }
    let small = Engine::new(EngineOptions {
        max_samples: 100,
        ..EngineOptions::default()
    });
    // 100 steps: at the limit, allowed; 101 steps: refused up front.
    let ok = small.instant_query(q.as_ref(), "count_over_time(vector(1)[100s:1s])", 240_000);
    assert!(ok.is_ok(), "{ok:?}");
    let err = small.instant_query(q.as_ref(), "count_over_time(vector(1)[101s:1s])", 240_000);
    assert!(matches!(err, Err(QueryError::TooManySamples { limit: 100 })), "{err:?}");
    // The selector may be empty at every step: evaluated, not refused.
    let ok = small.instant_query(q.as_ref(), "count_over_time(nonexistent[200s:1s])", 240_000);
    assert!(ok.is_ok(), "{ok:?}");
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
        (-2.5, "-2.5"),
        (1e15, "1000000000000000"),
        (-123456789012345.0, "-123456789012345"),
    ];
    for (v, want) in cases {
        assert_eq!(format_value_f64(v), want);
    }
    // Rust's Display prints the same shortest digits without an exponent.
    for v in [
        5e-324,
        f64::MIN_POSITIVE,
        f64::MAX,
        -f64::MAX,
        1e16,
        0.3,
        2.0 / 3.0,
        1e-7,
        9.999e22,
    ] {
        assert_eq!(format_value_f64(v), format!("{v}"));
    }
    // Exact ties between two shortest candidates: Go (as Prometheus 2.42
    // prints them) rounds to even, where Rust's Display rounds up.
    for (v, want) in [
        // The exact values 1 + 2^-17, 99552201059253.625, -1545498534492127.25.
        (1.0 + 2f64.powi(-17), "1.0000076293945312"),
        (99_552_201_059_253.0 + 0.625, "99552201059253.62"),
        (-1_545_498_534_492_127.0 - 0.25, "-1545498534492127.2"),
    ] {
        assert_eq!(format_value_f64(v), want);
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn float_formatting_matches_display(bits in any::<u64>(), small in -1e6f64..1e6, big in -1e17f64..1e17) {
            for v in [f64::from_bits(bits), small, small / 1e9, big, big.trunc() + 0.25] {
                if v.is_finite() {
                    // Shortest round-trip digits (as long as Display's), no exponent.
                    let text = format_value_f64(v);
                    prop_assert_eq!(text.parse::<f64>().ok(), Some(v));
                    prop_assert_eq!(text.len(), format!("{v}").len());
                    prop_assert!(!text.contains('e'));
                }
            }
        }
    }

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

/// ~3,200 series (node CPU counters and histogram buckets) with samples
/// every 15 s for 1 h 10 m, for the timing test below.
fn bench_storage() -> MemStorage {
    let s = MemStorage::new();
    let n_samples = 280;
    for inst in 0..100 {
        let instance = format!("host-{inst}");
        for cpu in 0..2 {
            for mode in ["idle", "user", "system", "iowait", "irq", "nice", "softirq", "steal"] {
                let cpu = cpu.to_string();
                let labels = Labels::from_pairs(&[
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", cpu.as_str()),
                    ("instance", instance.as_str()),
                    ("mode", mode),
                ]);
                let samples: Vec<Sample> = (0..n_samples)
                    .map(|i| Sample::new(i as i64 * 15_000, (i * (inst + 1)) as f64 * 0.37))
                    .collect();
                s.add(labels, &samples);
            }
        }
        for (bi, le) in [
            "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "30", "60", "120", "240", "+Inf",
        ]
        .iter()
        .enumerate()
        {
            for handler in ["/a", "/b"] {
                let labels = Labels::from_pairs(&[
                    ("__name__", "http_request_duration_seconds_bucket"),
                    ("handler", handler),
                    ("instance", instance.as_str()),
                    ("le", le),
                ]);
                let samples: Vec<Sample> = (0..n_samples)
                    .map(|i| Sample::new(i as i64 * 15_000, (i * (bi + 1) * (inst % 7 + 1)) as f64))
                    .collect();
                s.add(labels, &samples);
            }
        }
    }
    s
}

/// Times range queries over ~3,200 series × 1 h at 15 s; prints only.
/// Prints timings only when `HAETAE_PROMQL_TIMING` is set:
/// `HAETAE_PROMQL_TIMING=1 cargo test -p promql --release range_query_timing -- --nocapture`.
#[test]
fn range_query_timing() {
    if std::env::var_os("HAETAE_PROMQL_TIMING").is_none() {
        return;
    }
    let s = bench_storage();
    let q = s.querier(&model::TenantId::default()).expect("querier");
    let engine = Engine::default();
    for query in [
        "sum by (instance) (rate(node_cpu_seconds_total[5m]))",
        "sum by (mode) (node_cpu_seconds_total)",
        "rate(node_cpu_seconds_total[5m])",
        "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    ] {
        let started = std::time::Instant::now();
        let mut points = 0;
        for _ in 0..3 {
            let out = engine
                .range_query(&*q, query, 600_000, 4_200_000, 15_000)
                .expect("query");
            if let Value::Matrix(m) = out.value {
                points = m.iter().map(|s| s.samples.len()).sum::<usize>();
            }
        }
        println!("{query}: {:?} per query, {points} points", started.elapsed() / 3);
    }
}

/// Renders a whole query output (values bit for bit, warnings, stats).
fn render_output(out: &Result<crate::QueryOutput, QueryError>) -> String {
    match out {
        Err(e) => format!("error: {e}"),
        Ok(o) => {
            let value = match &o.value {
                Value::Matrix(m) => m
                    .iter()
                    .map(|s| {
                        let pts: Vec<String> = s
                            .samples
                            .iter()
                            .map(|p| format!("{}@{:x}", p.t, p.v.to_bits()))
                            .collect();
                        format!("{} {}", s.labels, pts.join(" "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
                other => render(other),
            };
            format!("{value}\nwarnings: {:?}\nstats: {:?}", o.warnings, o.stats)
        }
    }
}

/// Range evaluation series by series gives exactly the step-by-step results.
#[test]
fn range_evaluation_matches_step_by_step() {
    let s = MemStorage::new();
    for (i, (name, job, inst)) in [
        ("c_total", "a", "0"),
        ("c_total", "a", "1"),
        ("c_total", "b", "0"),
        ("g", "a", "0"),
        ("g", "b", "1"),
        ("g", "b", "2"),
    ]
    .iter()
    .enumerate()
    {
        let mut samples = Vec::new();
        for j in 0..200i64 {
            // Gaps, resets, staleness markers, NaN, negative zero and infinities.
            if (j + i as i64) % 17 == 3 || (i == 2 && (60..90).contains(&j)) {
                continue;
            }
            let v = match (i, j % 41) {
                (_, 40) => STALE_NAN,
                (3, 7) => f64::NAN,
                (4, 9) => f64::INFINITY,
                (5, 11) => -0.0,
                _ if name.ends_with("_total") => ((j * (i as i64 + 1)) % 137) as f64 * 1.5,
                _ => ((j * 7919 + i as i64 * 13) % 101) as f64 / 3.0 - 10.0,
            };
            samples.push(Sample::new(j * 13_000 + i as i64 * 1_000, v));
        }
        s.add(
            Labels::from_pairs(&[("__name__", name), ("job", job), ("instance", inst)]),
            &samples,
        );
    }
    // Sparse series on step-aligned times, so window and lookback edges matter.
    for (name, inst) in [("g", "3"), ("c_total", "3")] {
        let samples: Vec<Sample> = (0..45i64)
            .filter(|j| j % 7 < 2 || j % 11 == 0)
            .map(|j| Sample::new(j * 60_000, (j % 5) as f64))
            .collect();
        s.add(
            Labels::from_pairs(&[("__name__", name), ("job", "c"), ("instance", inst)]),
            &samples,
        );
    }
    // Many series (64 per name), some with staleness markers and gaps: results,
    // sample counts and infos must come out in series order.
    for i in 0..64i64 {
        for name in ["h_total", "h"] {
            let samples: Vec<Sample> = (0..200i64)
                .filter(|j| (j + i) % 23 != 5)
                .map(|j| {
                    let v = if (j + i) % 53 == 0 {
                        STALE_NAN
                    } else {
                        ((j * (i + 3)) % 97) as f64
                    };
                    Sample::new(j * 13_000 + i * 100, v)
                })
                .collect();
            s.add(
                Labels::from_pairs(&[
                    ("__name__", name),
                    ("i", &i.to_string()),
                    ("job", if i % 3 == 0 { "x" } else { "y" }),
                ]),
                &samples,
            );
        }
    }
    let q = s.querier(&model::TenantId::default()).expect("querier");
    let engine = Engine::default();
    let mut queries: Vec<String> = [
        "rate(h_total[1m])",
        "rate(h[1m])",
        "increase({__name__=~\"h|h_total\"}[2m])",
        "h",
        "max_over_time(h[45s])",
        "sum by (job) (rate(h_total[1m]))",
        "rate(h_total[1m]) / on(i, job) rate(h[1m])",
    ]
    .iter()
    .map(|q| q.to_string())
    .collect();
    // Every function the series-by-series path handles.
    let funcs = crate::eval::range::SLIDING_FUNCS;
    for f in funcs {
        queries.push(format!("{f}(c_total[1m])"));
        queries.push(format!("{f}({{__name__=~\"g|c_total\"}}[2m] offset 30s)"));
        queries.push(format!("sum by (job) ({f}(g[45s]))"));
    }
    for op in ["sum", "avg", "count", "group", "max", "min", "stddev", "stdvar"] {
        for m in [
            "",
            " by (job)",
            " without (instance)",
            " by (__name__)",
            " without (job, instance)",
        ] {
            queries.push(format!("{op}{m} ({{__name__=~\"g|c_total\"}})"));
            queries.push(format!("{op}{m} (rate({{__name__=~\"g|c_total\"}}[1m]))"));
            queries.push(format!("{op}{m} (last_over_time(g[1m] @ 1000))"));
        }
    }
    for extra in [
        "g",
        "g offset 1m",
        "c_total @ 600",
        "(g)",
        "histogram_quantile(0.9, sum by (le) (rate(c_total[1m])))",
        "sum(rate(c_total[1m])) / sum(rate(g[1m]))",
        "-sum by (job) (g) + on(job) group_left count by (job) (g)",
        "topk(2, sum by (job, instance) (rate(c_total[1m])))",
        "timestamp(g) - sum(g)",
        "sum(g) or sum(c_total)",
        "max_over_time(sum(rate(c_total[1m]))[2m:30s])",
        "sum(rate(g[1m])) + sum(rate(g[1m]))",
        "label_replace(sum by (job) (g), \"x\", \"$1\", \"job\", \"(.*)\")",
        "count by (job) (g) > 1",
        "sum(g{job=\"none\"})",
        "absent(sum(nonexistent))",
        // Binary operators evaluated series by series (and those declined).
        "avg(1 - g / on(job, instance) c_total)",
        "g / ignoring(__name__) g",
        "g * 2",
        "2 - g",
        "(g) > 3",
        "3 < g",
        "g >= bool 3",
        "2 == bool g",
        "g + on(instance) c_total",
        "g - ignoring(job) c_total",
        "rate(c_total[1m]) / on(job, instance) g",
        "sum by (job) (g) / sum by (job) (c_total)",
        "sum by (job) (rate(c_total[1m])) > bool on(job) sum by (job) (g)",
        "max by (job) (g * 2)",
        "sum without (instance) (g % 7 ^ 2)",
        "count by (__name__) (g > 0)",
        "avg(g / c_total)",
        "sum(sum by (job) (g))",
        "max(g) - min(g)",
        "topk(1, g / on(job, instance) c_total)",
        "histogram_quantile(0.5, sum by (le) (g * 2))",
        "g / on(job) group_left c_total",
        "g and c_total",
        "g atan2 c_total",
        "-g + 1",
        "g offset 1m / g",
        "c_total @ 600 * g",
        "last_over_time(g[1m] @ 1000) - g",
    ] {
        queries.push(extra.to_string());
    }
    for query in &queries {
        for (start, end, step) in [
            (0, 2_600_000, 15_000),
            (100_000, 1_000_000, 7_000),
            (-300_000, 400_000, 60_000),
        ] {
            let fast = engine.range_query(&*q, query, start, end, step);
            let slow = engine.range_query_stepwise(&*q, query, start, end, step);
            assert_eq!(
                render_output(&fast),
                render_output(&slow),
                "{query} {start} {end} {step}"
            );
        }
    }
    // Limits give the same errors.
    let small = Engine::new(EngineOptions {
        max_samples: 40,
        ..EngineOptions::default()
    });
    for query in [
        "sum(rate(c_total[5m]))",
        "g",
        "rate(g[1m])",
        "sum(rate(c_total[5m])) * 2",
        "g / c_total",
        "avg(1 - g / on(job, instance) c_total)",
    ] {
        let fast = small.range_query(&*q, query, 0, 2_600_000, 15_000);
        let slow = small.range_query_stepwise(&*q, query, 0, 2_600_000, 15_000);
        assert_eq!(render_output(&fast), render_output(&slow), "{query}");
    }
}
