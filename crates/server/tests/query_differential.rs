//! Differential test: the same generated data is remote-written to a real
//! Prometheus 2.42 and to Haetae, then a battery of instant and range
//! queries covering the language runs against both; results must be equal
//! (same series and labels, values within 1e-9 relative, NaN equal to NaN).
//!
//! Excluded on purpose, because Prometheus 2.x and 3.x (which Haetae
//! follows) differ there: `holt_winters`/`double_exponential_smoothing`,
//! samples exactly on a window boundary (the data's timestamps never have a
//! whole-second part, the queries only use whole seconds), regex `.`
//! against newlines (no label value holds one), and functions newer than
//! 2.42. Requires `/usr/bin/prometheus` (`apt-get install prometheus`).

mod query_support;

use query_support::{client, generate, remote_write_all, start_haetae, start_prometheus};
use serde_json::Value;
use std::collections::BTreeMap;

/// Instant and range queries; each runs as an instant query at three times
/// and as a range query.
const EXPRESSIONS: &[&str] = &[
    // Selectors and matchers.
    "up",
    r#"up{job="api"}"#,
    r#"up{job!="api"}"#,
    r#"http_requests_total{method=~"G.*",code!~"5.."}"#,
    r#"http_requests_total{instance=~"host-[02]"}"#,
    r#"{__name__=~"node_memory_.*",kind="free"}"#,
    r#"temperature_celsius{room="서울"}"#,
    r#"temperature_celsius{room=~".*room"}"#,
    r#"http_requests_total{job="api"} offset 10m"#,
    r#"http_requests_total{job="api"} offset -5m"#,
    "flaky_gauge",
    "flaky_gauge offset 3m",
    "weird_gauge",
    "timestamp(flaky_gauge)",
    "nonexistent_metric",
    // @ modifier.
    "up @ end()",
    "up @ start()",
    "rate(http_requests_total[5m] @ end())",
    // Rates and counters.
    "rate(http_requests_total[5m])",
    "rate(http_requests_total[1m])",
    "irate(http_requests_total[5m])",
    "increase(http_requests_total[10m])",
    "resets(http_requests_total[30m])",
    "changes(up[30m])",
    "rate(node_cpu_seconds_total[5m])",
    "increase(node_cpu_seconds_total{instance=\"host-3\"}[15m])",
    "rate(flaky_gauge[5m])",
    "delta(temperature_celsius[10m])",
    "idelta(temperature_celsius[5m])",
    "deriv(node_memory_bytes[10m])",
    "predict_linear(node_memory_bytes[30m], 3600)",
    "predict_linear(temperature_celsius[10m], 600)",
    // *_over_time.
    "avg_over_time(temperature_celsius[10m])",
    "min_over_time(temperature_celsius[10m])",
    "max_over_time(flaky_gauge[10m])",
    "sum_over_time(up[5m])",
    "count_over_time(flaky_gauge[10m])",
    "last_over_time(flaky_gauge[10m])",
    "present_over_time(flaky_gauge[10m])",
    "absent_over_time(flaky_gauge[2m])",
    r#"absent_over_time(nonexistent{job="x"}[5m])"#,
    "stddev_over_time(temperature_celsius[15m])",
    "stdvar_over_time(node_memory_bytes[15m])",
    "quantile_over_time(0.9, temperature_celsius[20m])",
    "quantile_over_time(0.5, weird_gauge[20m])",
    "max_over_time(weird_gauge[10m])",
    "avg_over_time(weird_gauge[10m])",
    // Subqueries.
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(sum by (job) (rate(http_requests_total[5m]))[20m:30s])",
    "min_over_time(temperature_celsius[10m:15s])",
    "rate(http_requests_total[10m:1m])",
    "max_over_time(deriv(node_memory_bytes[5m])[15m:5m] offset 5m)",
    // Aggregations.
    "sum(rate(http_requests_total[5m]))",
    "sum by (job) (rate(http_requests_total[5m]))",
    "sum without (instance, method) (rate(http_requests_total[5m]))",
    "avg by (instance) (temperature_celsius)",
    "min by (job) (up)",
    "max(node_memory_bytes)",
    "count(up == 1)",
    "count by (version) (build_info)",
    "group by (job) (http_requests_total)",
    "stddev(temperature_celsius)",
    "stdvar by (kind) (node_memory_bytes)",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, temperature_celsius)",
    "topk by (job) (1, rate(http_requests_total[5m]))",
    "quantile(0.9, rate(http_requests_total[5m]))",
    "quantile by (job) (0.25, rate(http_requests_total[5m]))",
    "count_values(\"value\", up)",
    "count_values by (job) (\"v\", up)",
    "sum(weird_gauge)",
    "avg(weird_gauge)",
    "max(weird_gauge)",
    // Histograms.
    "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.99, sum by (job, le) (rate(request_duration_seconds_bucket[10m])))",
    "histogram_quantile(0.1, sum by (le, instance) (increase(request_duration_seconds_bucket[15m])))",
    "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    // Binary operators and vector matching.
    "http_requests_total{code=\"500\"} / ignoring (code) http_requests_total{code=\"200\"}",
    "sum by (instance) (rate(http_requests_total{code=\"500\"}[5m])) / sum by (instance) (rate(http_requests_total[5m]))",
    "rate(http_requests_total[5m]) / on (instance) group_left sum by (instance) (rate(http_requests_total[5m]))",
    "sum by (instance) (rate(http_requests_total[5m])) * on (instance) group_right up",
    "up * on (instance) group_left (version) build_info",
    "node_memory_bytes{kind=\"used\"} / ignoring (kind) node_memory_bytes{kind=\"free\"}",
    "temperature_celsius > 15",
    "temperature_celsius > bool 15",
    "temperature_celsius < 10 or temperature_celsius > 25",
    "up == 0",
    "up != bool 1",
    "rate(http_requests_total[5m]) > 20",
    "http_requests_total and on (instance) up == 1",
    "http_requests_total unless on (instance) flaky_gauge",
    "flaky_gauge or on (instance) up",
    "up and flaky_gauge",
    "temperature_celsius - on (instance) group_left avg by (instance) (temperature_celsius)",
    "2 * up + 1",
    "-temperature_celsius",
    "temperature_celsius % 7",
    "temperature_celsius ^ 2",
    "node_memory_bytes / 1024 / 1024",
    "1 / (up - 1)",
    "0 / (up - 1)",
    "scalar(sum(up)) * up",
    "time() - timestamp(up)",
    "vector(1) + vector(2)",
    "sum(up) > bool 3",
    "weird_gauge > 0",
    "weird_gauge * -1",
    "atan2(temperature_celsius, 10)",
    // Math and transformations.
    "abs(temperature_celsius - 20)",
    "ceil(temperature_celsius)",
    "floor(temperature_celsius)",
    "round(temperature_celsius)",
    "round(temperature_celsius, 0.25)",
    "sqrt(abs(temperature_celsius))",
    "exp(temperature_celsius / 10)",
    "ln(node_memory_bytes)",
    "log2(node_memory_bytes)",
    "log10(node_memory_bytes)",
    "clamp(temperature_celsius, 10, 25)",
    "clamp_min(temperature_celsius, 15)",
    "clamp_max(temperature_celsius, 15)",
    "sgn(temperature_celsius - 20)",
    "sin(temperature_celsius)",
    "cos(temperature_celsius)",
    "tanh(temperature_celsius / 20)",
    "deg(temperature_celsius)",
    "rad(temperature_celsius)",
    "pi() * up",
    "sort(temperature_celsius)",
    "sort_desc(rate(http_requests_total[5m]))",
    // Labels.
    r#"label_replace(up, "host", "$1", "instance", "host-(.*)")"#,
    r#"label_replace(up, "instance", "", "instance", ".*")"#,
    r#"label_join(up, "both", "/", "job", "instance")"#,
    r#"absent(nonexistent{job="x"})"#,
    "absent(up)",
    // Scalars, time and dates.
    "time()",
    "scalar(up{instance=\"host-0\"})",
    "vector(time())",
    "minute(vector(time()))",
    "hour(timestamp(up))",
    "day_of_week(vector(time()))",
    "day_of_month(vector(time()))",
    "days_in_month(vector(time()))",
    "month(vector(time()))",
    "year(vector(time()))",
    "1 + 2 * 3",
    "(1 > bool 2) + 5",
];

/// Queries expected to fail on both, with the same error type.
const ERRORS: &[&str] = &[
    "http_requests_total / on (instance) up",
    "up + on (job) group_left rate(http_requests_total[5m])",
];

fn equal_values(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => {
            if x.is_nan() && y.is_nan() {
                return true;
            }
            let diff = (x - y).abs();
            diff <= 1e-9 * x.abs().max(y.abs()) || diff < 1e-12
        }
        _ => false,
    }
}

fn metric_key(m: &Value) -> String {
    let map: BTreeMap<String, String> = m
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    format!("{map:?}")
}

fn point(p: &Value) -> (String, String) {
    (p[0].to_string(), p[1].as_str().unwrap_or_default().to_string())
}

/// Compares two successful `data` objects; returns a description of the first difference.
fn compare_data(expr: &str, prom: &Value, ours: &Value) -> Result<(), String> {
    let rt = prom["resultType"].as_str().unwrap_or_default();
    if rt != ours["resultType"].as_str().unwrap_or_default() {
        return Err(format!("resultType {} vs {}", prom["resultType"], ours["resultType"]));
    }
    match rt {
        "scalar" | "string" => {
            let (pt, pv) = point(&prom["result"]);
            let (ot, ov) = point(&ours["result"]);
            if pt != ot || !equal_values(&pv, &ov) {
                return Err(format!("{} vs {}", prom["result"], ours["result"]));
            }
            Ok(())
        }
        "vector" | "matrix" => {
            let empty = Vec::new();
            let list = |d: &Value| -> Vec<(String, Vec<(String, String)>)> {
                d["result"]
                    .as_array()
                    .unwrap_or(&empty)
                    .iter()
                    .map(|s| {
                        let points = if rt == "vector" {
                            vec![point(&s["value"])]
                        } else {
                            s["values"].as_array().unwrap_or(&empty).iter().map(point).collect()
                        };
                        (metric_key(&s["metric"]), points)
                    })
                    .collect()
            };
            let mut p = list(prom);
            let mut o = list(ours);
            let ordered = rt == "vector" && expr.starts_with("sort");
            if !ordered {
                p.sort_by(|a, b| a.0.cmp(&b.0));
                o.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let pk: Vec<&String> = p.iter().map(|x| &x.0).collect();
            let ok: Vec<&String> = o.iter().map(|x| &x.0).collect();
            if pk != ok {
                return Err(format!("series differ:\n  prometheus {pk:?}\n  haetae     {ok:?}"));
            }
            for ((labels, pp), (_, op)) in p.iter().zip(&o) {
                if pp.len() != op.len() {
                    return Err(format!(
                        "{labels}: {} points vs {}\n  prometheus {pp:?}\n  haetae     {op:?}",
                        pp.len(),
                        op.len()
                    ));
                }
                for (a, b) in pp.iter().zip(op) {
                    if a.0 != b.0 || !equal_values(&a.1, &b.1) {
                        return Err(format!("{labels}: point {a:?} vs {b:?}"));
                    }
                }
            }
            Ok(())
        }
        other => Err(format!("unknown resultType {other}")),
    }
}

fn get(client: &reqwest::blocking::Client, base: &str, path: &str, params: &[(&str, String)]) -> Value {
    let r = client
        .post(format!("{base}{path}"))
        .form(params)
        .send()
        .unwrap_or_else(|e| panic!("POST {base}{path}: {e}"));
    r.json()
        .unwrap_or_else(|e| panic!("POST {base}{path} {params:?}: not JSON: {e}"))
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[test]
fn haetae_answers_like_prometheus() {
    let started = std::time::Instant::now();
    let prometheus = start_prometheus();
    let haetae = start_haetae(None);
    let data = generate();
    let client = client();
    remote_write_all(&client, &prometheus.url, &data.series);
    remote_write_all(&client, &haetae.url, &data.series);

    let instant_times = [data.at(20), data.at(61), data.at(118), data.at(125)];
    let ranges = [
        (data.at(30), data.at(119), 60_000),
        (data.at(55), data.at(70), 15_000),
        (data.at(0), data.at(12), 15_000),
    ];
    let mut failures = Vec::new();
    let mut compared = 0usize;
    let mut check = |what: String, path: &str, params: Vec<(&str, String)>, expr: &str| {
        let p = get(&client, &prometheus.url, path, &params);
        let o = get(&client, &haetae.url, path, &params);
        compared += 1;
        let result = match (p["status"].as_str(), o["status"].as_str()) {
            (Some("success"), Some("success")) => compare_data(expr, &p["data"], &o["data"]),
            (Some("error"), Some("error")) if p["errorType"] == o["errorType"] => Ok(()),
            _ => Err(format!("prometheus: {p}\n  haetae: {o}")),
        };
        if let Err(e) = result {
            failures.push(format!("{what}: {e}"));
        }
    };
    for expr in EXPRESSIONS.iter().chain(ERRORS) {
        for t in instant_times {
            check(
                format!("instant {expr} @ {}", secs(t)),
                "/api/v1/query",
                vec![("query", expr.to_string()), ("time", secs(t))],
                expr,
            );
        }
        for (start, end, step) in ranges {
            check(
                format!("range {expr} [{}, {}] step {}s", secs(start), secs(end), step / 1000),
                "/api/v1/query_range",
                vec![
                    ("query", expr.to_string()),
                    ("start", secs(start)),
                    ("end", secs(end)),
                    ("step", (step / 1000).to_string()),
                ],
                expr,
            );
        }
    }
    eprintln!(
        "compared {compared} queries ({} expressions) in {:.1}s; {} differ",
        EXPRESSIONS.len() + ERRORS.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        compared >= 200,
        "the battery must hold at least 200 queries, has {compared}"
    );
    assert!(
        failures.is_empty(),
        "{} of {compared} queries differ from Prometheus:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
