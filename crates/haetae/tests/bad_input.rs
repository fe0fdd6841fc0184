//! Bad remote-write input gets a clear 4xx with a message, is counted in
//! `/metrics`, and harms nothing already stored.

mod support;

use model::{Label, Labels, Matcher, Sample};
use std::io::{Read, Write};
use std::time::Duration;
use support::*;

fn post_raw(client: &reqwest::blocking::Client, base: &str, body: Vec<u8>) -> (u16, String) {
    let r = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(body)
        .send()
        .expect("post");
    let status = r.status().as_u16();
    (status, r.text().unwrap_or_default())
}

/// Encodes series without any validation (labels may be invalid on purpose).
fn encode_raw(series: Vec<(Vec<Label>, Vec<Sample>)>) -> Vec<u8> {
    use wire::prompb;
    let req = prompb::WriteRequest {
        timeseries: series
            .into_iter()
            .map(|(labels, samples)| prompb::TimeSeries {
                labels: labels
                    .into_iter()
                    .map(|l| prompb::Label {
                        name: l.name,
                        value: l.value,
                    })
                    .collect(),
                samples: samples
                    .into_iter()
                    .map(|s| prompb::Sample {
                        value: s.v,
                        timestamp: s.t,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    wire::remote_write::encode_write_request(&req).expect("encode")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[test]
fn bad_remote_write_input_is_refused_clearly_and_harms_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let haetae = start_haetae(&tmp.path().join("data"), &[]);
    let base = haetae.url();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let t = now_ms() - 60_000;
    let good = Labels::from_pairs(&[("__name__", "good"), ("job", "x")]);
    assert!(
        remote_write(&client, &base, &[(good.clone(), vec![Sample::new(t, 1.0)])])
            .expect("write")
            .is_success()
    );

    let name = |n: &str| Label::new("__name__", n);
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "malformed protobuf",
            snap::raw::Encoder::new()
                .compress_vec(b"\xff\xff\xff\xff")
                .expect("snappy"),
            400,
            "protobuf",
        ),
        ("bad snappy", b"definitely not snappy".to_vec(), 400, "snappy"),
        (
            "empty label name",
            encode_raw(vec![(vec![name("m"), Label::new("", "v")], vec![Sample::new(t, 1.0)])]),
            400,
            "empty",
        ),
        (
            "duplicate labels",
            encode_raw(vec![(
                vec![name("m"), Label::new("a", "1"), Label::new("a", "2")],
                vec![Sample::new(t, 1.0)],
            )]),
            400,
            "duplicate label",
        ),
        (
            "huge label value",
            encode_raw(vec![(
                vec![name("m"), Label::new("a", "x".repeat(100_000))],
                vec![Sample::new(t, 1.0)],
            )]),
            400,
            "exceeding the limit",
        ),
        (
            "before 1970",
            encode_raw(vec![(vec![name("m")], vec![Sample::new(-5000, 1.0)])]),
            400,
            "before 1970",
        ),
        (
            "far in the future",
            encode_raw(vec![(vec![name("m")], vec![Sample::new(now_ms() + 86_400_000, 1.0)])]),
            400,
            "future",
        ),
        (
            "decompression bomb",
            {
                // A snappy preamble that claims 4 GiB.
                let mut b = vec![0x80, 0x80, 0x80, 0x80, 0x10];
                b.extend_from_slice(&[0u8; 16]);
                b
            },
            400,
            "",
        ),
    ];
    for (what, body, want, needle) in cases {
        let (status, text) = post_raw(&client, &base, body);
        assert!(
            status == want || (what == "decompression bomb" && status == 413),
            "{what}: got {status} {text}"
        );
        assert!(
            text.to_lowercase().contains(&needle.to_lowercase()),
            "{what}: message {text:?} lacks {needle:?}"
        );
        assert!(
            text.contains("\"status\":\"error\""),
            "{what}: not Prometheus' error format: {text}"
        );
    }

    // Invalid UTF-8 in a label value: build the protobuf by hand.
    let mut ts = Vec::new();
    let label = |n: &[u8], v: &[u8]| {
        let mut l = vec![0x0a, n.len() as u8];
        l.extend_from_slice(n);
        l.push(0x12);
        l.push(v.len() as u8);
        l.extend_from_slice(v);
        l
    };
    for l in [label(b"__name__", b"m"), label(b"a", b"\xff\xfe")] {
        ts.push(0x0a);
        ts.push(l.len() as u8);
        ts.extend_from_slice(&l);
    }
    let mut req = vec![0x0a, ts.len() as u8];
    req.extend_from_slice(&ts);
    let (status, text) = post_raw(
        &client,
        &base,
        snap::raw::Encoder::new().compress_vec(&req).expect("snappy"),
    );
    assert_eq!(status, 400, "invalid UTF-8: {text}");
    assert!(text.contains("UTF-8"), "{text}");

    // A body over the size limit is refused before it is read whole: a 413,
    // or, when the server answers and closes while the client is still
    // sending, a broken pipe on the client's side.
    let big = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .body(vec![0u8; 40 << 20])
        .send();
    match big {
        Ok(r) => assert_eq!(r.status().as_u16(), 413, "{:?}", r.text()),
        Err(e) => assert!(e.is_request() || e.is_body(), "oversize body: {e}"),
    }

    // A request that stops sending its body is answered, not left hanging forever.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", haetae.port)).expect("connect");
    s.write_all(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial")
        .expect("send");
    s.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 400") || n == 0, "stalled body: {head}");

    // The good series is intact and the refusals are counted.
    let got = remote_read(&client, &base, vec![Matcher::equal("__name__", "good")], 0, i64::MAX);
    assert_eq!(got, vec![(good, vec![Sample::new(t, 1.0)])]);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    for needle in [
        "haetae_remote_write_rejected_total{reason=\"malformed_request\"}",
        "haetae_remote_write_rejected_total{reason=\"invalid_series\"}",
        "haetae_remote_write_rejected_total{reason=\"before_1970\"}",
        "haetae_tsdb_samples_rejected_total{tenant=\"default\",reason=\"too_far_in_future\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing from /metrics");
    }
}
