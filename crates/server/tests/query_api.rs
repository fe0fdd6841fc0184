//! The query API's contract with clients: parameters, error types and
//! status codes, limits from the `query:` config section, and the status
//! endpoints (build info, flags, runtime info, redacted config).

mod query_support;

use query_support::{client, start_haetae};
use serde_json::Value;

fn call(c: &reqwest::blocking::Client, url: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let r = c.post(url).form(params).send().expect("request");
    let status = r.status().as_u16();
    (status, r.json().expect("JSON body"))
}

#[test]
fn query_api_errors_limits_and_status() {
    let haetae = start_haetae(Some(
        "query:\n  max_samples: 1000\n  max_series: 3\n  timeout: 30s\n\
         scrape_configs:\n  - job_name: x\n    basic_auth:\n      username: u\n      password: hunter2\n",
    ));
    let c = client();
    let q = format!("{}/api/v1/query", haetae.url);
    let qr = format!("{}/api/v1/query_range", haetae.url);

    let (s, v) = call(&c, &q, &[("query", "1 + 1"), ("time", "1435781451.781")]);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType": "scalar", "result": [1435781451.781, "2"]})
    );

    let (s, v) = call(&c, &q, &[("query", "sum(")]);
    assert_eq!((s, v["errorType"].as_str()), (400, Some("bad_data")), "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("invalid parameter \"query\": 1:5: parse error:"),
        "{v}"
    );
    // The position points at the first token that cannot continue the query, on its line.
    let (s, v) = call(&c, &q, &[("query", "sum(rate(a[5m]))\n  + * 2")]);
    assert_eq!((s, v["errorType"].as_str()), (400, Some("bad_data")), "{v}");
    assert_eq!(
        v["error"].as_str(),
        Some("invalid parameter \"query\": 2:5: parse error: unexpected \"*\" in expression"),
        "{v}"
    );
    let fq = format!("{}/api/v1/format_query", haetae.url);
    let (s, v) = call(&c, &fq, &[("query", "foo{a=\"b\" c=\"d\"}")]);
    assert_eq!((s, v["errorType"].as_str()), (400, Some("bad_data")), "{v}");
    assert!(
        v["error"].as_str().unwrap_or("").contains(": 1:11: parse error:"),
        "{v}"
    );

    let (s, v) = call(&c, &q, &[("query", "1"), ("time", "yesterday")]);
    assert_eq!((s, v["errorType"].as_str()), (400, Some("bad_data")), "{v}");

    let (s, v) = call(
        &c,
        &qr,
        &[("query", "1"), ("start", "100"), ("end", "10"), ("step", "1")],
    );
    assert_eq!(s, 400, "{v}");

    let (s, v) = call(
        &c,
        &qr,
        &[("query", "1"), ("start", "0"), ("end", "100000"), ("step", "1")],
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("exceeded maximum resolution of 11,000 points"),
        "{v}"
    );

    for step in ["0", "-5", "abc"] {
        let (s, v) = call(
            &c,
            &qr,
            &[("query", "1"), ("start", "0"), ("end", "10"), ("step", step)],
        );
        assert_eq!(s, 400, "step {step}: {v}");
    }

    // Too many samples: a range query of 2,000 points of one series.
    let (s, v) = call(
        &c,
        &qr,
        &[("query", "vector(1)"), ("start", "0"), ("end", "1999"), ("step", "1")],
    );
    assert_eq!((s, v["errorType"].as_str()), (422, Some("execution")), "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("too many samples"), "{v}");

    // Too many series (limit 3).
    let four = "label_replace(vector(1), \"a\", \"1\", \"\", \"\") or label_replace(vector(1), \"a\", \"2\", \"\", \"\") \
                or label_replace(vector(1), \"a\", \"3\", \"\", \"\") or label_replace(vector(1), \"a\", \"4\", \"\", \"\")";
    let (s, v) = call(&c, &q, &[("query", four), ("time", "100")]);
    assert_eq!((s, v["errorType"].as_str()), (422, Some("execution")), "{v}");

    // `limit` truncates with a warning.
    let three =
        "label_replace(vector(1), \"a\", \"1\", \"\", \"\") or label_replace(vector(1), \"a\", \"2\", \"\", \"\")";
    let (s, v) = call(&c, &q, &[("query", three), ("time", "100"), ("limit", "1")]);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["warnings"][0], "results truncated due to limit", "{v}");

    // stats=all
    let (s, v) = call(&c, &q, &[("query", "vector(1)"), ("time", "100"), ("stats", "all")]);
    assert_eq!(s, 200, "{v}");
    assert!(v["data"]["stats"]["timings"]["evalTotalTime"].is_number(), "{v}");
    assert!(
        v["data"]["stats"]["samples"]["totalQueryableSamples"].is_number(),
        "{v}"
    );

    let (s, v) = call(
        &c,
        &format!("{}/api/v1/format_query", haetae.url),
        &[("query", "sum(rate(x[5m]))by(job)")],
    );
    assert_eq!(
        (s, v["data"].as_str()),
        (200, Some("sum by (job) (rate(x[5m]))")),
        "{v}"
    );

    let (s, v) = call(
        &c,
        &format!("{}/api/v1/query_exemplars", haetae.url),
        &[("query", "up")],
    );
    assert_eq!((s, &v["data"]), (200, &serde_json::json!([])), "{v}");

    let get = |path: &str| -> Value {
        let r = c.get(format!("{}{path}", haetae.url)).send().expect("request");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().expect("JSON")
    };
    let v = get("/api/v1/status/buildinfo");
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"), "{v}");
    let v = get("/api/v1/status/flags");
    assert_eq!(v["data"]["query.max-samples"], "1000", "{v}");
    let v = get("/api/v1/status/runtimeinfo");
    assert!(
        v["data"]["startTime"].is_string() && v["data"]["storageRetention"].is_string(),
        "{v}"
    );
    let v = get("/api/v1/status/config");
    let yaml = v["data"]["yaml"].as_str().unwrap_or("");
    assert!(
        yaml.contains("<secret>") && !yaml.contains("hunter2") && yaml.contains("max_samples"),
        "{v}"
    );
    // A query that cannot finish within its `timeout` (default limits).
    let default_limits = start_haetae(None);
    let (s, v) = call(
        &c,
        &format!("{}/api/v1/query", default_limits.url),
        &[
            // 7.2M steps: within max_samples (a larger subquery fails at once
            // with an execution error), but far longer than the timeout.
            ("query", "count_over_time(vector(1)[2h:1ms])"),
            ("timeout", "50ms"),
            ("time", "100000000"),
        ],
    );
    assert_eq!((s, v["errorType"].as_str()), (503, Some("timeout")), "{v}");
    // Six months of 1 ms steps fails before evaluating, not after the timeout.
    let started = std::time::Instant::now();
    let (s, v) = call(
        &c,
        &format!("{}/api/v1/query", default_limits.url),
        &[("query", "count_over_time(vector(1)[180d:1ms])"), ("time", "100000000")],
    );
    assert_eq!((s, v["errorType"].as_str()), (422, Some("execution")), "{v}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
