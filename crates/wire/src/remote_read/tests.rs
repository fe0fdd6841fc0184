use super::*;
use proptest::prelude::*;

fn query(matchers: Vec<Matcher>) -> ReadQuery {
    ReadQuery {
        start_ms: 1000,
        end_ms: 2000,
        matchers,
        hints: None,
    }
}

fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).unwrap()
}

fn raw_request(matchers: Vec<prompb::LabelMatcher>) -> Vec<u8> {
    let request = prompb::ReadRequest {
        queries: vec![prompb::Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 1,
            matchers,
            hints: None,
        }],
        accepted_response_types: Vec::new(),
    };
    snappy(&prost::Message::encode_to_vec(&request))
}

#[test]
fn request_round_trip() {
    let queries = vec![
        query(vec![
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::NotEqual, "job", "x").unwrap(),
        ]),
        ReadQuery {
            hints: Some(ReadHints {
                step_ms: 15_000,
                func: "rate".into(),
                start_ms: 700,
                end_ms: 2000,
                grouping: vec!["job".into()],
                by: true,
                range_ms: 300_000,
            }),
            ..query(vec![
                Matcher::new(MatchOp::RegexMatch, "job", "node|api").unwrap(),
                Matcher::new(MatchOp::RegexNoMatch, "env", "dev.*").unwrap(),
            ])
        },
    ];
    let body = encode_request(&queries, &[ResponseType::StreamedXorChunks, ResponseType::Samples]).unwrap();
    let decoded = decode_request(&body, &DecodeLimits::default()).unwrap();
    assert_eq!(decoded.queries, queries);
    assert_eq!(
        decoded.accepted_response_types,
        [ResponseType::StreamedXorChunks, ResponseType::Samples]
    );
    assert_eq!(decoded.response_type(), ResponseType::StreamedXorChunks);
    assert!(decoded.queries[1].matchers[0].matches("api"));
    assert!(!decoded.queries[1].matchers[0].matches("xapi"));
}

#[test]
fn no_accepted_types_means_samples_and_unknown_types_are_dropped() {
    let request = prompb::ReadRequest {
        queries: Vec::new(),
        accepted_response_types: vec![7],
    };
    let decoded = decode_request(
        &snappy(&prost::Message::encode_to_vec(&request)),
        &DecodeLimits::default(),
    )
    .unwrap();
    assert!(decoded.accepted_response_types.is_empty());
    assert_eq!(decoded.response_type(), ResponseType::Samples);
}

#[test]
fn bad_regex_is_an_error() {
    let body = raw_request(vec![prompb::LabelMatcher {
        r#type: MatcherType::Re as i32,
        name: "job".into(),
        value: "(".into(),
    }]);
    let err = decode_request(&body, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, WireError::BadMatcher { query_idx: 0, .. }));
    assert!(
        err.to_string()
            .starts_with(r#"query 0: invalid regular expression "(": "#),
        "{err}"
    );
}

#[test]
fn unknown_matcher_type_is_an_error() {
    let body = raw_request(vec![prompb::LabelMatcher {
        r#type: 9,
        name: "job".into(),
        value: "x".into(),
    }]);
    assert_eq!(
        decode_request(&body, &DecodeLimits::default()).unwrap_err().to_string(),
        r#"query 0: unknown label matcher type 9 for label "job""#
    );
}

#[test]
fn bad_bodies() {
    let limits = DecodeLimits::default();
    assert_eq!(
        decode_request(b"", &limits).unwrap_err().to_string(),
        "empty request body"
    );
    assert_eq!(
        decode_request(&snappy(&[0x0a, 0x05]), &limits).unwrap_err().to_string(),
        "invalid protobuf ReadRequest: failed to decode Protobuf message: ReadRequest.queries: buffer underflow"
    );
    assert_eq!(
        decode_request(&[0x80, 0x80, 0x80, 0x80, 0x10], &limits)
            .unwrap_err()
            .to_string(),
        "snappy body would decompress to 4294967296 bytes, limit is 134217728"
    );
}

#[test]
fn samples_response_round_trip() {
    let results = vec![
        vec![
            (
                Labels::from_pairs(&[("__name__", "up"), ("job", "a")]),
                vec![Sample::new(1, 1.0), Sample::new(2, 0.5)],
            ),
            (Labels::from_pairs(&[("__name__", "up"), ("job", "b")]), vec![]),
        ],
        vec![],
    ];
    let body = encode_response(&results).unwrap();
    assert_eq!(decode_response(&body, &DecodeLimits::default()).unwrap(), results);
}

#[test]
fn chunked_frame_exact_bytes() {
    let labels = Labels::from_pairs(&[("a", "b")]);
    let mut out = b"prefix".to_vec();
    encode_chunked_frame(
        &mut out,
        3,
        &labels,
        &[XorChunk {
            min_time_ms: 1,
            max_time_ms: 2,
            data: &[0xaa],
        }],
    );
    let data: Vec<u8> = [
        // chunked_series(1), 19 bytes
        &[0x0a, 0x13][..],
        // labels(1) { name "a" value "b" }
        &[0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b'],
        // chunks(2) { min_time_ms(1) 1, max_time_ms(2) 2, type(3) XOR, data(4) [0xaa] }
        &[0x12, 0x09, 0x08, 0x01, 0x10, 0x02, 0x18, 0x01, 0x22, 0x01, 0xaa],
        // query_index(2) 3
        &[0x10, 0x03],
    ]
    .concat();
    let mut expected = b"prefix".to_vec();
    expected.push(data.len() as u8);
    expected.extend_from_slice(&crc32c::crc32c(&data).to_be_bytes());
    expected.extend_from_slice(&data);
    assert_eq!(out, expected);
    // CRC32C check value of the Castagnoli polynomial, to be sure of the variant.
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
}

#[test]
fn chunked_frames_round_trip() {
    let mut out = Vec::new();
    let a = Labels::from_pairs(&[("__name__", "up"), ("job", "a")]);
    let b = Labels::from_pairs(&[("__name__", "up"), ("job", "b")]);
    let big = vec![7u8; 300];
    let chunks = [
        XorChunk {
            min_time_ms: 0,
            max_time_ms: 119_000,
            data: &big,
        },
        XorChunk {
            min_time_ms: 120_000,
            max_time_ms: 130_000,
            data: &[1, 2, 3],
        },
    ];
    encode_chunked_frame(&mut out, 0, &a, &chunks);
    encode_chunked_frame(&mut out, 1, &b, &[]);
    let (first, n) = decode_chunked_frame(&out, 1 << 20).unwrap().unwrap();
    assert_eq!(first.query_index, 0);
    let series = &first.chunked_series[0];
    assert_eq!(series.labels, crate::remote_write::labels_to_prompb(&a));
    assert_eq!(series.chunks.len(), 2);
    assert_eq!(series.chunks[0].data, big);
    assert_eq!(series.chunks[1].r#type(), prompb::chunk::Encoding::Xor);
    assert_eq!(series.chunks[1].max_time_ms, 130_000);
    let (second, m) = decode_chunked_frame(&out[n..], 1 << 20).unwrap().unwrap();
    assert_eq!(second.query_index, 1);
    assert_eq!(n + m, out.len());
    assert!(decode_chunked_frame(&out[n + m..], 1 << 20).unwrap().is_none());
}

#[test]
fn chunked_frame_errors() {
    let mut out = Vec::new();
    encode_chunked_frame(&mut out, 0, &Labels::from_pairs(&[("a", "b")]), &[]);
    assert_eq!(
        decode_chunked_frame(&out, 4).unwrap_err().to_string(),
        "chunked-read frame of 10 bytes exceeds the limit of 4"
    );
    assert_eq!(
        decode_chunked_frame(&out[..out.len() - 2], 100)
            .unwrap_err()
            .to_string(),
        "truncated chunked-read frame: need 2 more bytes"
    );
    let mut corrupt = out.clone();
    *corrupt.last_mut().unwrap() ^= 1;
    assert!(decode_chunked_frame(&corrupt, 100)
        .unwrap_err()
        .to_string()
        .starts_with("chunked-read frame checksum mismatch: header says 0x"));
    assert_eq!(
        decode_chunked_frame(&[0xff; 11], 100).unwrap_err().to_string(),
        "chunked-read frame length is not a valid uvarint"
    );
    assert_eq!(
        decode_chunked_frame(&[0xff; 3], 100).unwrap_err().to_string(),
        "truncated chunked-read frame: need 1 more bytes"
    );
}

proptest! {
    #[test]
    fn random_request_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes, &DecodeLimits::default());
        let _ = decode_request(&snappy(&bytes), &DecodeLimits::default());
    }

    #[test]
    fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_chunked_frame(&bytes, 1 << 20);
    }

    #[test]
    fn frames_round_trip(
        query_idx in any::<i64>(),
        chunks in proptest::collection::vec((any::<i64>(), any::<i64>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..8),
    ) {
        let labels = Labels::from_pairs(&[("__name__", "m")]);
        let xor: Vec<XorChunk<'_>> = chunks
            .iter()
            .map(|(min, max, data)| XorChunk { min_time_ms: *min, max_time_ms: *max, data })
            .collect();
        let mut out = vec![0xee];
        encode_chunked_frame(&mut out, query_idx, &labels, &xor);
        let (msg, n) = decode_chunked_frame(&out[1..], usize::MAX).unwrap().unwrap();
        prop_assert_eq!(n, out.len() - 1);
        prop_assert_eq!(msg.query_index, query_idx);
        prop_assert_eq!(msg.chunked_series[0].chunks.len(), chunks.len());
        for (c, (min, max, data)) in msg.chunked_series[0].chunks.iter().zip(&chunks) {
            prop_assert_eq!((c.min_time_ms, c.max_time_ms, &c.data), (*min, *max, data));
        }
    }
}
