//! Handler tests of the Prometheus text import (`POST
//! /api/v1/import/prometheus`) through the router, on in-memory storage.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::{gzip, send, test_server};

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).body(body.into()).expect("request")
}

#[tokio::test]
async fn backfill_with_timestamps_extra_labels_and_metadata() {
    let srv = test_server();
    let body = r#"# HELP batch_rows_total Rows processed.
# TYPE batch_rows_total counter
batch_rows_total{table="a",env="dev"} 10 1700000000000
batch_rows_total{table="a",env="dev"} 25 1700000060000
batch_rows_total{table="b"} 3 1700000000000
# TYPE batch_last_success gauge
batch_last_success 1.7e9 1700000000000
"#;
    let uri = "/api/v1/import/prometheus?extra_label=job=nightly&extra_label=env=prod";
    let (status, _, resp) = send(&srv.state, post(uri, body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(
        srv.dump(),
        r#"{__name__="batch_last_success", env="prod", job="nightly"} 1700000000000=1700000000
{__name__="batch_rows_total", env="prod", job="nightly", table="a"} 1700000000000=10 1700000060000=25
{__name__="batch_rows_total", env="prod", job="nightly", table="b"} 1700000000000=3
"#
    );
    let metadata = srv.metadata.0.lock().expect("lock").clone();
    let got: Vec<(String, String, String)> = metadata
        .into_iter()
        .map(|m| (m.metric_family, m.metric_type, m.help))
        .collect();
    assert_eq!(
        got,
        vec![
            ("batch_last_success".into(), "gauge".into(), String::new()),
            ("batch_rows_total".into(), "counter".into(), "Rows processed.".into()),
        ]
    );
}

#[tokio::test]
async fn bad_lines_are_named_and_good_lines_stored() {
    let srv = test_server();
    let body = "ok 1 1000\nbad{x=\"\\q\"} 1 1000\nok 2 1000\n9bad 1\nok2 NaNa\nok3 1 1000\n";
    let req = Request::post("/api/v1/import/prometheus")
        .header("content-encoding", "gzip")
        .body(Body::from(gzip(body.as_bytes())))
        .expect("request");
    let (status, _, resp) = send(&srv.state, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let json: serde_json::Value = serde_json::from_slice(&resp).expect("json");
    let msg = json["error"].as_str().expect("error");
    assert!(msg.starts_with("line 2: "), "{msg}");
    assert!(
        msg.contains("line 3: duplicate sample for series {__name__=\"ok\"} at timestamp 1000"),
        "{msg}"
    );
    assert!(msg.contains("line 4: "), "{msg}");
    assert!(msg.contains("line 5: "), "{msg}");
    assert_eq!(srv.dump(), "{__name__=\"ok\"} 1000=1\n{__name__=\"ok3\"} 1000=1\n");
}

#[tokio::test]
async fn bad_extra_label_is_refused() {
    let srv = test_server();
    for uri in [
        "/api/v1/import/prometheus?extra_label=novalue",
        "/api/v1/import/prometheus?extra_label=1x=y",
        "/api/v1/import/prometheus?extra_label=__name__=y",
    ] {
        let (status, _, _) = send(&srv.state, post(uri, "m 1 1000\n")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
    }
    assert_eq!(srv.dump(), "");
}

#[tokio::test]
async fn samples_without_timestamp_get_server_time() {
    let srv = test_server();
    let (status, _, _) = send(&srv.state, post("/api/v1/import/prometheus", "m 1\n")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let dump = srv.dump();
    let t: i64 = dump
        .trim()
        .split(' ')
        .nth(1)
        .and_then(|s| s.split('=').next())
        .and_then(|s| s.parse().ok())
        .expect("timestamp");
    assert!(t > 1_600_000_000_000, "{dump}");
}
