//! Handler tests of the InfluxDB line-protocol endpoints (`/write`,
//! `/api/v2/write`, `/ping`) through the router, on in-memory storage.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use support::{gzip, send, test_server};

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri).body(body.into()).expect("request")
}

#[tokio::test]
async fn v1_write_stores_fields_as_series() {
    let srv = test_server();
    let body = "cpu,host=a usage_idle=90,usage_user=10i 1700000000\nmem,host=a value=42 1700000000\n";
    let (status, headers, resp) = send(&srv.state, post("/write?db=telegraf&precision=s&u=x&p=y", body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(headers["x-influxdb-version"], "1.8.10");
    assert_eq!(
        srv.dump(),
        r#"{__name__="cpu_usage_idle", db="telegraf", host="a"} 1700000000000=90
{__name__="cpu_usage_user", db="telegraf", host="a"} 1700000000000=10
{__name__="mem", db="telegraf", host="a"} 1700000000000=42
"#
    );
}

#[tokio::test]
async fn v2_write_with_gzip_and_bucket() {
    let srv = test_server();
    let body = gzip(b"disk,path=/ used=1.5 1700000000123\n");
    let req = Request::post("/api/v2/write?org=o&bucket=b1&precision=ms")
        .header("content-encoding", "gzip")
        .header("X-Scope-OrgID", "team-a")
        .body(Body::from(body))
        .expect("request");
    let (status, _, resp) = send(&srv.state, req).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(
        srv.dump_tenant("team-a"),
        "{__name__=\"disk_used\", db=\"b1\", path=\"/\"} 1700000000123=1.5\n"
    );
    assert_eq!(srv.dump(), "");
}

#[tokio::test]
async fn missing_timestamp_uses_server_time() {
    let srv = test_server();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let (status, _, _) = send(&srv.state, post("/write", "m x=1")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let dump = srv.dump();
    let t: i64 = dump
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|s| s.split('=').next())
        .and_then(|s| s.parse().ok())
        .expect("timestamp");
    assert!(t >= before && t < before + 60_000, "{dump}");
    assert!(dump.starts_with("{__name__=\"m_x\"}"), "{dump}");
}

#[tokio::test]
async fn bad_lines_give_400_naming_them_and_good_lines_are_stored() {
    let srv = test_server();
    let body = "ok x=1 1000000000\nbad x=oops 1\nok y=2 1000000000\nbad,t x=1\n";
    let (status, headers, resp) = send(&srv.state, post("/write?db=d", body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&resp).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"error": "partial write: 2 of 4 lines rejected: line 2: invalid value \"oops\" for field \"x\": expected a float, integer (1i), unsigned (1u), boolean or \"string\"; line 4: missing value for tag \"t\""})
    );
    assert_eq!(
        srv.dump(),
        "{__name__=\"ok_x\", db=\"d\"} 1000=1\n{__name__=\"ok_y\", db=\"d\"} 1000=2\n"
    );
    // v2 answers in its own error format.
    let (status, _, resp) = send(&srv.state, post("/api/v2/write?bucket=b", "m x=\"unterminated")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let json: serde_json::Value = serde_json::from_slice(&resp).expect("json");
    assert_eq!(json["code"], "invalid");
    assert_eq!(
        json["message"],
        "partial write: 1 of 1 lines rejected: line 1: unterminated string value for field \"x\""
    );
}

#[tokio::test]
async fn bad_parameters_and_bodies() {
    let srv = test_server();
    let (status, _, resp) = send(&srv.state, post("/write?precision=us2", "m x=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8_lossy(&resp),
        r#"{"error":"invalid precision \"us2\": expected ns, u, µ, ms, s, m or h"}"#
    );
    let (status, _, _) = send(&srv.state, post("/api/v2/write?precision=h", "m x=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let req = Request::post("/write")
        .header("content-encoding", "gzip")
        .body(Body::from("not gzip"))
        .expect("request");
    let (status, _, resp) = send(&srv.state, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&resp).contains("invalid gzip body"));
    let req = Request::post("/write")
        .header("content-encoding", "br")
        .body(Body::from("m x=1"))
        .expect("request");
    let (status, _, _) = send(&srv.state, req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(srv.dump(), "");
}

#[tokio::test]
async fn ping_answers_204_with_version() {
    let srv = test_server();
    for method in ["GET", "HEAD"] {
        let req = Request::builder()
            .method(method)
            .uri("/ping")
            .body(Body::empty())
            .expect("request");
        let (status, headers, _) = send(&srv.state, req).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(headers["x-influxdb-version"], "1.8.10");
    }
}

#[tokio::test]
async fn push_metrics_are_exposed() {
    let srv = test_server();
    send(&srv.state, post("/write", "m x=1,s=\"a\" 1\nbad")).await;
    let req = Request::get("/metrics").body(Body::empty()).expect("request");
    let (_, _, body) = send(&srv.state, req).await;
    let text = String::from_utf8_lossy(&body);
    for want in [
        "haetae_push_requests_total{protocol=\"influx\"} 1",
        "haetae_push_samples_received_total{protocol=\"influx\"} 1",
        "haetae_push_rejected_total{protocol=\"influx\",reason=\"invalid_line\"} 1",
        "haetae_push_rejected_total{protocol=\"influx\",reason=\"string_field\"} 1",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }
}
