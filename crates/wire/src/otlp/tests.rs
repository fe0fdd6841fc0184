use super::*;
use proptest::prelude::*;

const NOW: i64 = 1_700_000_000_000;

/// Decodes an OTLP/JSON request, checks that its protobuf encoding decodes
/// to the same message, translates it and renders the result.
fn render(json_body: &str) -> String {
    let request = decode_json(json_body.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let bytes = prost::Message::encode_to_vec(&request);
    let again = decode_protobuf(&bytes).expect("protobuf round trip");
    assert_eq!(again, request);
    let limits = DecodeLimits {
        max_labels_per_series: 10,
        ..DecodeLimits::default()
    };
    let translated = translate(&request, &limits, NOW);
    let mut out = String::new();
    for s in &translated.samples {
        let v = if model::is_stale_nan(s.sample.v) {
            "stale".to_string()
        } else {
            s.sample.v.to_string()
        };
        let delta = if s.temporality == Temporality::Delta {
            " (delta)"
        } else {
            ""
        };
        out.push_str(&format!("{} {} {v}{delta}\n", s.labels, s.sample.t));
    }
    for m in &translated.metadata {
        out.push_str(&format!("# {} {} {:?} {:?}\n", m.family, m.metric_type, m.help, m.unit));
    }
    for e in &translated.errors {
        out.push_str(&format!("ERR {e}\n"));
    }
    out.push_str(&format!(
        "points: {}, rejected: {}\n",
        translated.num_points, translated.num_rejected_points
    ));
    out
}

fn check(json_body: &str, expect: &str) {
    let got = render(json_body);
    assert_eq!(got.trim_end(), expect.trim(), "--- got:\n{got}");
}

/// Wraps metrics in a request with one resource and one scope.
fn request(metrics: &str) -> String {
    format!(
        r#"{{"resourceMetrics":[{{
            "resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"api"}}}},
                {{"key":"service.namespace","value":{{"stringValue":"shop"}}}},
                {{"key":"service.instance.id","value":{{"stringValue":"pod-1"}}}}
            ]}},
            "scopeMetrics":[{{"scope":{{"name":"meter","version":"1.0"}},"metrics":[{metrics}]}}]
        }}]}}"#
    )
}

#[test]
fn gauge_and_counter() {
    check(
        &request(
            r#"
            {"name":"queue.size","unit":"{items}","description":"Items waiting.","gauge":{"dataPoints":[
                {"asInt":"7","timeUnixNano":"1700000000500000000","attributes":[{"key":"queue","value":{"stringValue":"q1"}}]}]}},
            {"name":"http.requests","unit":"1","sum":{"aggregationTemporality":2,"isMonotonic":true,"dataPoints":[
                {"asDouble":42.5,"timeUnixNano":1700000001000000000}]}},
            {"name":"cpu.utilization","unit":"1","gauge":{"dataPoints":[{"asDouble":0.25,"timeUnixNano":"1700000001000000000"}]}},
            {"name":"active.requests","unit":"","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","isMonotonic":false,"dataPoints":[
                {"asInt":3,"timeUnixNano":"0"}]}}
            "#,
        ),
        r#"
{__name__="queue_size", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0", queue="q1"} 1700000000500 7
{__name__="http_requests_total", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000001000 42.5
{__name__="cpu_utilization_ratio", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000001000 0.25
{__name__="active_requests", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 3
# queue_size gauge "Items waiting." "{items}"
# http_requests_total counter "" "1"
# cpu_utilization_ratio gauge "" "1"
# active_requests gauge "" ""
points: 4, rejected: 0"#,
    );
}

#[test]
fn histogram_and_summary() {
    check(
        &request(
            r#"
            {"name":"http.server.duration","unit":"ms","histogram":{"aggregationTemporality":2,"dataPoints":[
                {"timeUnixNano":"1700000000000000000","count":"6","sum":123.5,"bucketCounts":["1","2","3"],"explicitBounds":[10,100.5],
                 "attributes":[{"key":"http.method","value":{"stringValue":"GET"}}]}]}},
            {"name":"rpc.latency","unit":"s","summary":{"dataPoints":[
                {"timeUnixNano":"1700000000000000000","count":"10","sum":2.5,"quantileValues":[{"quantile":0.5,"value":0.2},{"quantile":0.99,"value":1.5}]}]}}
            "#,
        ),
        r#"
{__name__="http_server_duration_milliseconds_bucket", http_method="GET", instance="pod-1", job="shop/api", le="10", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 1
{__name__="http_server_duration_milliseconds_bucket", http_method="GET", instance="pod-1", job="shop/api", le="100.5", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 3
{__name__="http_server_duration_milliseconds_bucket", http_method="GET", instance="pod-1", job="shop/api", le="+Inf", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 6
{__name__="http_server_duration_milliseconds_sum", http_method="GET", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 123.5
{__name__="http_server_duration_milliseconds_count", http_method="GET", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 6
{__name__="rpc_latency_seconds", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0", quantile="0.5"} 1700000000000 0.2
{__name__="rpc_latency_seconds", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0", quantile="0.99"} 1700000000000 1.5
{__name__="rpc_latency_seconds_sum", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 2.5
{__name__="rpc_latency_seconds_count", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 10
# http_server_duration_milliseconds histogram "" "ms"
# rpc_latency_seconds summary "" "s"
points: 2, rejected: 0"#,
    );
}

#[test]
fn delta_stale_and_rejected_points() {
    check(
        &request(
            r#"
            {"name":"net.sent","unit":"By","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
                {"asInt":"100","timeUnixNano":"1700000000000000000"},
                {"flags":1,"timeUnixNano":"1700000060000000000"}]}},
            {"name":"latency","exponentialHistogram":{"aggregationTemporality":2,"dataPoints":[{},{}]}},
            {"name":"broken","histogram":{"aggregationTemporality":2,"dataPoints":[
                {"count":"1","bucketCounts":["1"],"explicitBounds":[1,2]}]}},
            {"name":"nope","sum":{"isMonotonic":true,"dataPoints":[{"asInt":"1"}]}},
            {"name":"novalue","gauge":{"dataPoints":[{"timeUnixNano":"1"}]}},
            {"name":"...","gauge":{"dataPoints":[{"asInt":"1"}]}}
            "#,
        ),
        r#"
{__name__="net_sent_bytes_total", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000000000 100 (delta)
{__name__="net_sent_bytes_total", instance="pod-1", job="shop/api", otel_scope_name="meter", otel_scope_version="1.0"} 1700000060000 stale (delta)
# net_sent_bytes_total counter "" "By"
# broken histogram "" ""
# novalue gauge "" ""
ERR metric "latency": 2 data point(s) rejected: exponential histograms are not supported yet (native histograms come later); configure the SDK to export explicit-bucket histograms
ERR metric "broken": 1 data point(s) rejected: 1 bucket counts for 2 explicit bounds (need bounds + 1)
ERR metric "nope": 1 data point(s) rejected: aggregation temporality is unspecified
ERR metric "novalue": 1 data point(s) rejected: data point has no value
ERR metric "...": 1 data point(s) rejected: empty metric name
points: 8, rejected: 6"#,
    );
}

#[test]
fn attributes_target_info_and_collisions() {
    check(
        r#"{"resourceMetrics":[{
            "resource":{"attributes":[
                {"key":"service.name","value":{"stringValue":"checkout"}},
                {"key":"host.name","value":{"stringValue":"h1"}},
                {"key":"k8s.pod.labels","value":{"kvlistValue":{"values":[{"key":"app","value":{"stringValue":"x"}}]}}},
                {"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":"2"}]}}},
                {"key":"raw","value":{"bytesValue":"AQID"}},
                {"key":"ok","value":{"boolValue":true}}
            ]},
            "scope_metrics":[{"metrics":[
                {"name":"temp","gauge":{"data_points":[{"as_double":21.5,"time_unix_nano":"1700000000000000000","attributes":[
                    {"key":"a.b","value":{"stringValue":"dot"}},
                    {"key":"a_b","value":{"stringValue":"underscore"}},
                    {"key":"2x","value":{"doubleValue":1.5}},
                    {"key":"__name__","value":{"stringValue":"evil"}},
                    {"key":"job","value":{"stringValue":"mine"}}
                ]}]}}
            ]}]
        }]}"#,
        r#"
{__name__="temp", a_b="dot;underscore", job="checkout", key_2x="1.5", key__name__="evil"} 1700000000000 21.5
{__name__="target_info", host_name="h1", job="checkout", k8s_pod_labels="{\"app\":\"x\"}", ok="true", raw="AQID", tags="[\"a\",2]"} 1700000000000 1
# temp gauge "" ""
points: 1, rejected: 0"#,
    );
}

#[test]
fn metric_names_and_units() {
    let cases = [
        (
            "http.server.request.duration",
            "s",
            Kind::Histogram,
            "http_server_request_duration_seconds",
        ),
        ("process.cpu.time", "s", Kind::Counter, "process_cpu_time_seconds_total"),
        ("requests_total", "", Kind::Counter, "requests_total"),
        ("total.requests", "", Kind::Counter, "requests_total"),
        ("memory.usage.bytes", "By", Kind::Gauge, "memory_usage_bytes"),
        ("throughput", "By/s", Kind::Gauge, "throughput_bytes_per_second"),
        ("packets", "{packets}/s", Kind::Counter, "packets_per_second_total"),
        ("disk.io", "MiBy", Kind::Counter, "disk_io_mebibytes_total"),
        ("weird__name..x", "foo", Kind::Gauge, "weird_name_x_foo"),
        ("9lives", "", Kind::Gauge, "_9lives"),
        ("ratio", "1", Kind::Gauge, "ratio"),
        ("errors", "1", Kind::Counter, "errors_total"),
        ("temp", "Cel", Kind::Gauge, "temp_celsius"),
        ("a:b", "", Kind::Gauge, "a:b"),
    ];
    for (name, unit, kind, want) in cases {
        assert_eq!(prometheus_name(name, unit, kind), want, "{name:?} {unit:?}");
    }
}

#[test]
fn decode_errors_are_clear() {
    let err = |body: &[u8], json: bool| {
        if json {
            decode_json(body).unwrap_err().to_string()
        } else {
            decode_protobuf(body).unwrap_err().to_string()
        }
    };
    assert!(err(b"hello, this is not protobuf", false).starts_with("invalid protobuf ExportMetricsServiceRequest"));
    assert!(err(b"{", true).starts_with("invalid JSON: EOF while parsing"));
    assert_eq!(err(b"[]", true), "invalid OTLP/JSON at top level: expected an object");
    assert_eq!(
        err(
            br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","gauge":{"dataPoints":[{"timeUnixNano":"soon"}]}}]}]}]}"#,
            true
        ),
        "invalid OTLP/JSON at resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].timeUnixNano: expected an unsigned 64-bit integer, got \"soon\""
    );
    assert_eq!(
        err(br#"{"resourceMetrics":{}}"#, true),
        "invalid OTLP/JSON at resourceMetrics: expected an array"
    );
}

#[test]
fn responses() {
    let ok = response(0, "");
    assert_eq!(encode_response_json(&ok), b"{}");
    assert!(encode_response_protobuf(&ok).is_empty());
    let partial = response(3, "bad");
    assert_eq!(
        String::from_utf8_lossy(&encode_response_json(&partial)),
        r#"{"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"bad"}}"#
    );
    let decoded: proto::ExportMetricsServiceResponse =
        prost::Message::decode(encode_response_protobuf(&partial).as_slice()).expect("decode");
    assert_eq!(decoded, partial);
}

/// An exemplar's `as_double` is field 3 (a data point's is 4): found by the
/// fuzzer, this used to panic in the decoder.
#[test]
fn exemplars_with_double_values_decode() {
    let point = proto::NumberDataPoint {
        time_unix_nano: 1_000_000_000,
        value: Some(proto::number_data_point::Value::AsDouble(2.5)),
        exemplars: vec![proto::Exemplar {
            value: Some(proto::exemplar::Value::AsDouble(0.25)),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = prost::Message::encode_to_vec(&point);
    let decoded: proto::NumberDataPoint = prost::Message::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, point);
    // The bytes the fuzzer found: an exemplar holding field 3.
    let crash = [0x2a, 0x09, 0x19, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f];
    let _ = prost::Message::decode(crash.as_slice()).map(|p: proto::NumberDataPoint| p);
}

#[test]
fn base64() {
    for data in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff\x10\x80"] {
        let enc = json::base64_encode(data);
        assert_eq!(json::base64_decode(&enc).as_deref(), Some(data), "{enc}");
    }
    assert_eq!(json::base64_encode(b"\x01\x02\x03"), "AQID");
    assert_eq!(json::base64_decode("A"), None);
    assert_eq!(json::base64_decode("A*"), None);
}

proptest! {
    #[test]
    fn protobuf_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(req) = decode_protobuf(&body) {
            let _ = translate(&req, &DecodeLimits::default(), NOW);
        }
    }

    #[test]
    fn json_never_panics(body in r#"[\[\]{}":,0-9a-zA-Z.\- ]{0,200}"#) {
        if let Ok(req) = decode_json(body.as_bytes()) {
            let _ = translate(&req, &DecodeLimits::default(), NOW);
        }
    }

    #[test]
    fn translation_never_panics_on_structured_input(
        name in "[a-z._ ]{0,12}",
        unit in "[a-zA-Z{}/1%]{0,6}",
        bounds in proptest::collection::vec(any::<f64>(), 0..4),
        counts in proptest::collection::vec(any::<u64>(), 0..5),
        value in any::<f64>(),
        time in any::<u64>(),
        flags in any::<u32>(),
    ) {
        use proto::*;
        let point = HistogramDataPoint {
            time_unix_nano: time,
            count: counts.iter().fold(0u64, |a, b| a.wrapping_add(*b)),
            sum: Some(value),
            bucket_counts: counts,
            explicit_bounds: bounds,
            flags,
            ..Default::default()
        };
        let number = NumberDataPoint { time_unix_nano: time, value: Some(number_data_point::Value::AsDouble(value)), flags, ..Default::default() };
        let req = ExportMetricsServiceRequest { resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![
                Metric { name: name.clone(), unit: unit.clone(), data: Some(metric::Data::Histogram(Histogram { data_points: vec![point], aggregation_temporality: 2 })), ..Default::default() },
                Metric { name, unit, data: Some(metric::Data::Sum(Sum { data_points: vec![number], aggregation_temporality: 1, is_monotonic: true })), ..Default::default() },
            ], ..Default::default() }],
            ..Default::default()
        }] };
        let out = translate(&req, &DecodeLimits::default(), NOW);
        for s in &out.samples {
            prop_assert!(s.labels.metric_name().is_some());
        }
    }
}
