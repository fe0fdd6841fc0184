//! Fuzzes `wire::influx::parse`: no input may panic, every sample has a
//! metric name, the label limit holds, and no more lines fail than exist.
//! Run with `scripts/fuzz influx_parse`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = wire::DecodeLimits {
        max_labels_per_series: 8,
        max_label_name_len: 16,
        max_label_value_len: 64,
        ..wire::DecodeLimits::default()
    };
    let extra = [model::Label::new("db", "fuzz")];
    let opts = wire::influx::ParseOptions {
        precision: wire::influx::Precision::Nanoseconds,
        default_timestamp_ms: 0,
        extra_labels: &extra,
        limits: &limits,
    };
    let batch = wire::influx::parse(data, &opts);
    assert!(batch.errors.len() <= batch.num_lines);
    for (labels, sample) in &batch.samples {
        assert!(labels.metric_name().is_some());
        assert!(labels.len() <= limits.max_labels_per_series);
        assert!(sample.t >= 0);
    }
});
