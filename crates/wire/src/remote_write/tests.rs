use super::*;
use crate::prompb::{self, histogram, Histogram, TimeSeries};
use proptest::prelude::*;

fn label(name: &str, value: &str) -> prompb::Label {
    prompb::Label {
        name: name.into(),
        value: value.into(),
    }
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: samples
            .iter()
            .map(|&(timestamp, value)| prompb::Sample { value, timestamp })
            .collect(),
        exemplars: Vec::new(),
        histograms: Vec::new(),
    }
}

fn body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
    encode_write_request(&prompb::WriteRequest {
        timeseries,
        metadata: Vec::new(),
    })
    .unwrap()
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

/// Decodes with default limits and returns the error message.
fn decode_err(body: &[u8]) -> String {
    decode(body, &DecodeLimits::default()).unwrap_err().to_string()
}

/// Decodes one series with default limits and returns the rejection messages.
fn rejections(ts: TimeSeries) -> Vec<String> {
    let decoded = decode(&body(vec![ts]), &DecodeLimits::default()).unwrap();
    decoded.rejected.iter().map(ToString::to_string).collect()
}

#[test]
fn round_trip_series_and_metadata() {
    let series = vec![
        (
            Labels::from_pairs(&[("__name__", "up"), ("job", "node")]),
            vec![Sample::new(1000, 1.0), Sample::new(2000, model::STALE_NAN)],
        ),
        (
            Labels::from_pairs(&[("__name__", "http_requests_total"), ("code", "200")]),
            vec![Sample::new(-5, f64::INFINITY)],
        ),
    ];
    let metadata = vec![MetricMetadata {
        family: "http_requests".into(),
        metric_type: "counter",
        help: "Requests served.".into(),
        unit: String::new(),
    }];
    let decoded = decode(&encode(&series, &metadata).unwrap(), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.series.len(), 2);
    for ((l1, s1), (l2, s2)) in series.iter().zip(&decoded.series) {
        assert_eq!(l1, l2);
        assert_eq!(s1.len(), s2.len());
        assert!(s1.iter().zip(s2).all(|(a, b)| a.bit_eq(b)));
    }
    assert_eq!(decoded.metadata, metadata);
    assert!(decoded.rejected.is_empty());
    assert_eq!(decoded.rejection_message(), None);
    assert_eq!(decoded.num_samples(), 3);
}

#[test]
fn empty_request_is_one_byte_and_decodes() {
    let b = encode(&[], &[]).unwrap();
    assert_eq!(b, [0x00]);
    assert_eq!(decode(&b, &DecodeLimits::default()).unwrap(), DecodedWrite::default());
}

#[test]
fn exact_protobuf_bytes_of_a_small_request() {
    // Checks the field numbers against a hand-assembled encoding:
    // WriteRequest.timeseries(1) { labels(1) { name(1) "a" value(2) "b" } samples(2) { value(1) 1.0 timestamp(2) 5 } }
    let req = prompb::WriteRequest {
        timeseries: vec![series(&[("a", "b")], &[(5, 1.0)])],
        metadata: vec![prompb::MetricMetadata {
            r#type: prompb::MetricType::Gauge as i32,
            metric_family_name: "m".into(),
            help: "h".into(),
            unit: "u".into(),
        }],
    };
    let bytes = prost::Message::encode_to_vec(&req);
    let expected: Vec<u8> = [
        &[0x0a, 0x15][..],
        &[0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b'],
        &[0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x05],
        &[
            0x1a, 0x0b, 0x08, 0x02, 0x12, 0x01, b'm', 0x22, 0x01, b'h', 0x2a, 0x01, b'u',
        ],
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn labels_are_normalised() {
    let decoded = decode(
        &body(vec![series(
            &[("job", "a"), ("__name__", "up"), ("empty", "")],
            &[(1, 1.0)],
        )]),
        &DecodeLimits::default(),
    )
    .unwrap();
    assert_eq!(decoded.series[0].0.to_string(), r#"{__name__="up", job="a"}"#);
}

#[test]
fn series_without_samples_are_skipped_silently() {
    let decoded = decode(
        &body(vec![series(&[("__name__", "up")], &[])]),
        &DecodeLimits::default(),
    )
    .unwrap();
    assert!(decoded.series.is_empty());
    assert!(decoded.rejected.is_empty());
}

#[test]
fn bad_snappy() {
    assert_eq!(decode_err(b"\x05garbage"), 
        "invalid snappy block: snappy: corrupt input (expected valid offset but got offset 1633841761; dst position: 0)"
    );
}

#[test]
fn empty_body() {
    assert_eq!(decode_err(b""), "empty request body");
}

#[test]
fn snappy_framed_format_is_named() {
    let mut framed = Vec::new();
    {
        use std::io::Write;
        let mut w = snap::write::FrameEncoder::new(&mut framed);
        w.write_all(b"hello").unwrap();
    }
    assert_eq!(
        decode_err(&framed),
        "body uses the snappy framed format; remote write and remote read use the snappy block format"
    );
}

#[test]
fn bad_protobuf() {
    // Field 1, wire type LEN, announcing 100 bytes that are not there.
    assert_eq!(
        decode_err(&snappy(&[0x0a, 0x64, 0x00])),
        "invalid protobuf WriteRequest: failed to decode Protobuf message: WriteRequest.timeseries: buffer underflow"
    );
    // Field 1 with wire type 7, which does not exist.
    assert_eq!(
        decode_err(&snappy(&[0x0f])),
        "invalid protobuf WriteRequest: failed to decode Protobuf message: invalid wire type value: 7"
    );
}

#[test]
fn invalid_utf8_in_a_label_value() {
    // timeseries { labels { name "a" value "\xff" } }
    let raw = [0x0a, 0x08, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, 0xff];
    assert_eq!(
        decode_err(&snappy(&raw)),
        "invalid WriteRequest: a string field is not valid UTF-8 (failed to decode Protobuf message: \
         Label.value: TimeSeries.labels: WriteRequest.timeseries: invalid string value: data is not UTF-8 encoded)"
    );
    assert!(matches!(
        decode(&snappy(&raw), &DecodeLimits::default()),
        Err(WireError::InvalidUtf8 { .. })
    ));
}

#[test]
fn decompression_bomb_is_refused_before_allocating() {
    // A 6-byte body whose preamble (uvarint 2^32) claims 4 GiB.
    let bomb = [0x80, 0x80, 0x80, 0x80, 0x10, 0x00];
    assert_eq!(
        decode_err(&bomb),
        "snappy body would decompress to 4294967296 bytes, limit is 134217728"
    );
    // Just over our limit, but within what snappy itself accepts.
    let limits = DecodeLimits {
        max_decompressed_bytes: 1 << 20,
        ..DecodeLimits::default()
    };
    let bomb = [0x81, 0x80, 0x40, 0x00]; // uvarint (1 << 20) + 1
    assert_eq!(
        decode(&bomb, &limits).unwrap_err().to_string(),
        "snappy body would decompress to 1048577 bytes, limit is 1048576"
    );
}

#[test]
fn preamble_beyond_snappy_expansion_is_corrupt() {
    // Within the limit, but 4 bytes cannot expand to 1 MiB.
    assert_eq!(
        decode_err(&[0x80, 0x80, 0x40, 0x00]),
        "invalid snappy block: preamble claims 1048576 bytes, more than 4 compressed bytes can hold"
    );
}

#[test]
fn highly_compressible_body_decodes() {
    // A long label value of one repeated byte compresses close to snappy's best ratio.
    let value = "a".repeat(4096);
    let series = vec![(
        Labels::from_pairs(&[("__name__", "m"), ("v", &value)]),
        vec![Sample::new(1, 1.0)],
    )];
    let many: Vec<_> = (0..64).flat_map(|_| series.clone()).collect();
    let body = encode(&many, &[]).unwrap();
    let decoded = decode(&body, &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.series.len(), 64);
}

#[test]
fn compressed_body_over_limit() {
    let limits = DecodeLimits {
        max_compressed_bytes: 4,
        ..DecodeLimits::default()
    };
    assert_eq!(
        decode(&[0; 5], &limits).unwrap_err().to_string(),
        "compressed body is 5 bytes, limit is 4"
    );
}

#[test]
fn duplicate_label_names() {
    assert_eq!(
        rejections(series(&[("__name__", "up"), ("job", "a"), ("job", "b")], &[(1, 1.0)])),
        [r#"series {__name__="up", job="a", job="b"}: duplicate label name "job""#]
    );
    // Unsorted input.
    assert_eq!(
        rejections(series(&[("job", "a"), ("__name__", "up"), ("job", "b")], &[(1, 1.0)])),
        [r#"series {job="a", __name__="up", job="b"}: duplicate label name "job""#]
    );
}

#[test]
fn empty_label_name() {
    assert_eq!(
        rejections(series(&[("__name__", "up"), ("", "x")], &[(1, 1.0)])),
        [r#"series {__name__="up", ""="x"}: label with empty name"#]
    );
}

#[test]
fn missing_metric_name() {
    assert_eq!(
        rejections(series(&[("job", "a")], &[(1, 1.0)])),
        [r#"series {job="a"}: missing metric name (label __name__)"#]
    );
    assert_eq!(
        rejections(series(&[("__name__", ""), ("job", "a")], &[(1, 1.0)])),
        [r#"series {__name__="", job="a"}: missing metric name (label __name__)"#]
    );
}

#[test]
fn label_limits() {
    let long_value = "v".repeat(5000);
    assert_eq!(
        rejections(series(&[("__name__", "up"), ("big", &long_value)], &[(1, 1.0)])),
        [format!(
            r#"series {{__name__="up", big="{}"...(5000 bytes)}}: value of label "big" is 5000 bytes, exceeding the limit of 4096"#,
            "v".repeat(100)
        )]
    );
    let long_name = "n".repeat(1025);
    assert_eq!(
        rejections(series(&[("__name__", "up"), (&long_name, "x")], &[(1, 1.0)])),
        [format!(
            r#"series {{__name__="up", "{}"...(1025 bytes)="x"}}: label name of 1025 bytes exceeds the limit of 1024"#,
            "n".repeat(100)
        )]
    );
    let names: Vec<String> = (0..70).map(|i| format!("l{i:02}")).collect();
    let mut labels: Vec<(&str, &str)> = vec![("__name__", "up")];
    labels.extend(names.iter().map(|n| (n.as_str(), "x")));
    let msgs = rejections(series(&labels, &[(1, 1.0)]));
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].ends_with(r#"l18="x", ...51 more}: 71 labels exceed the limit of 64"#),
        "{}",
        msgs[0]
    );
}

#[test]
fn native_histograms_are_refused_but_floats_kept() {
    let mut ts = series(&[("__name__", "lat")], &[(1, 2.0)]);
    ts.histograms = vec![
        Histogram {
            count: Some(histogram::Count::CountInt(3)),
            schema: 3,
            positive_deltas: vec![1, -1],
            ..Histogram::default()
        };
        2
    ];
    let decoded = decode(&body(vec![ts]), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.series.len(), 1);
    assert_eq!(
        decoded.rejection_message().unwrap(),
        r#"1 series rejected: series {__name__="lat"}: 2 native histogram samples dropped: native histograms are not supported"#
    );
}

#[test]
fn valid_series_survive_bad_neighbours() {
    let mut all = vec![series(&[("__name__", "good")], &[(1, 1.0)])];
    for i in 0..12 {
        all.push(series(&[("job", &i.to_string())], &[(1, 1.0)]));
    }
    let mut ts = series(&[("__name__", "x")], &[]);
    ts.exemplars.push(prompb::Exemplar::default());
    all.push(ts);
    let decoded = decode(&body(all), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.series.len(), 1);
    assert_eq!(decoded.rejected.len(), 12);
    assert_eq!(decoded.num_exemplars_ignored, 1);
    let msg = decoded.rejection_message().unwrap();
    assert!(msg.starts_with(
        r#"12 series rejected: series {job="0"}: missing metric name (label __name__); series {job="1"}"#
    ));
    assert!(
        msg.ends_with(r#"series {job="9"}: missing metric name (label __name__); and 2 more"#),
        "{msg}"
    );
}

#[test]
fn unknown_metadata_type_reads_as_unknown() {
    let req = prompb::WriteRequest {
        timeseries: Vec::new(),
        metadata: vec![prompb::MetricMetadata {
            r#type: 42,
            metric_family_name: "m".into(),
            help: String::new(),
            unit: String::new(),
        }],
    };
    let decoded = decode(&encode_write_request(&req).unwrap(), &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.metadata[0].metric_type, "unknown");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes, &DecodeLimits::default());
    }

    #[test]
    fn random_protobuf_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&snappy(&bytes), &DecodeLimits::default());
    }

    #[test]
    fn round_trip_any_valid_series(
        values in proptest::collection::vec(("[a-z]{1,8}", any::<i64>(), any::<f64>()), 1..20),
    ) {
        let series: Vec<(Labels, Vec<Sample>)> = values
            .iter()
            .map(|(v, t, x)| (Labels::from_pairs(&[("__name__", "m"), ("v", v.as_str())]), vec![Sample::new(*t, *x)]))
            .collect();
        let decoded = decode(&encode(&series, &[]).unwrap(), &DecodeLimits::default()).unwrap();
        prop_assert!(decoded.rejected.is_empty());
        prop_assert_eq!(decoded.series.len(), series.len());
        for ((l1, s1), (l2, s2)) in series.iter().zip(&decoded.series) {
            prop_assert_eq!(l1, l2);
            // Like upstream's generated code, prost leaves out a zero double,
            // so -0.0 arrives as 0.0.
            let sent = if s1[0].v == 0.0 { Sample::new(s1[0].t, 0.0) } else { s1[0] };
            prop_assert!(sent.bit_eq(&s2[0]));
        }
    }
}
