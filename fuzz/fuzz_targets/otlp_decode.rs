//! Fuzzes OTLP metrics decoding and translation: `wire::otlp::decode_protobuf`
//! or `decode_json` (chosen by the first byte), then `translate`. No input
//! may panic, and every translated series has a metric name within the
//! label limits. Run with `scripts/fuzz otlp_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = wire::DecodeLimits {
        max_labels_per_series: 8,
        max_label_name_len: 16,
        max_label_value_len: 64,
        ..wire::DecodeLimits::default()
    };
    let decoded = match data.split_first() {
        Some((&flag, rest)) if flag & 1 == 1 => wire::otlp::decode_json(rest),
        Some((_, rest)) => wire::otlp::decode_protobuf(rest),
        None => return,
    };
    if let Ok(request) = decoded {
        let out = wire::otlp::translate(&request, &limits, 0);
        assert!(out.num_rejected_points <= out.num_points);
        for s in &out.samples {
            assert!(s.labels.metric_name().is_some());
            assert!(s.labels.len() <= limits.max_labels_per_series);
        }
    }
});
