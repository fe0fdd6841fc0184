//! The OpenTelemetry Python SDK with its OTLP/HTTP exporter pushes a counter
//! and a histogram (gzip-compressed) to `/v1/metrics` of an in-process
//! server; the stored series and values are checked.
//!
//! The test fails, rather than skips, when Python or the SDK is missing: CI
//! must run `scripts/install-test-deps` (PyPI packages `opentelemetry-sdk` and
//! `opentelemetry-exporter-otlp-proto-http`).

mod support;

use std::process::Command;
use support::test_server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_pushes_counter_and_histogram() {
    let srv = test_server();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = api::router(srv.state.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/otlp_push.py");
    let endpoint = format!("http://127.0.0.1:{port}/v1/metrics");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(endpoint)
            .env("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "gzip")
            .output()
    })
    .await
    .expect("join")
    .unwrap_or_else(|e| panic!("cannot run python3 ({e}); install Python 3 and run scripts/install-test-deps"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("MISSING-PACKAGES"),
        "the OpenTelemetry Python SDK is missing: {stdout}\nrun: pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http (scripts/install-test-deps)"
    );
    assert!(out.status.success(), "the Python exporter failed:\n{stdout}\n{stderr}");
    server.abort();

    // Timestamps come from the SDK's clock; compare label sets and values.
    let dump = srv.dump();
    let values: Vec<String> = dump
        .lines()
        .map(|line| {
            let (labels, samples) = line.split_once("} ").expect("labels");
            // The SDK exports on flush and again on shutdown; values are
            // cumulative, so the last sample must carry the totals.
            let value = samples.rsplit('=').next().expect("value");
            format!("{labels}}} {value}")
        })
        .collect();
    let common = r#"instance="inst-1", job="checkout", otel_scope_name="haetae.test", otel_scope_version="0.1""#;
    let mut want: Vec<String> = vec![
        format!(r#"{{__name__="test_requests_total", {common}, route="/a"}} 7"#),
        format!(r#"{{__name__="test_requests_total", {common}, route="/b"}} 1"#),
        format!(r#"{{__name__="test_duration_milliseconds_count", {common}, route="/a"}} 4"#),
        format!(r#"{{__name__="test_duration_milliseconds_sum", {common}, route="/a"}} 740"#),
    ];
    let buckets = [
        ("0", 0),
        ("5", 1),
        ("10", 2),
        ("25", 2),
        ("50", 3),
        ("75", 3),
        ("100", 3),
        ("250", 3),
        ("500", 3),
        ("750", 4),
        ("1000", 4),
        ("2500", 4),
        ("5000", 4),
        ("7500", 4),
        ("10000", 4),
        ("+Inf", 4),
    ];
    for (le, n) in buckets {
        want.push(format!(
            r#"{{__name__="test_duration_milliseconds_bucket", instance="inst-1", job="checkout", le="{le}", otel_scope_name="haetae.test", otel_scope_version="0.1", route="/a"}} {n}"#
        ));
    }
    for w in &want {
        assert!(values.contains(w), "missing {w}\nin:\n{dump}");
    }
    // target_info carries the other resource attributes.
    let target_info = values
        .iter()
        .find(|l| l.starts_with("{__name__=\"target_info\""))
        .unwrap_or_else(|| panic!("no target_info in:\n{dump}"));
    for part in [
        "deployment_environment=\"test\"",
        "job=\"checkout\"",
        "instance=\"inst-1\"",
        "telemetry_sdk_language=\"python\"",
    ] {
        assert!(target_info.contains(part), "{part} missing in {target_info}");
    }
    assert!(target_info.ends_with(" 1"));
    assert_eq!(values.len(), want.len() + 1, "unexpected series:\n{dump}");
}
