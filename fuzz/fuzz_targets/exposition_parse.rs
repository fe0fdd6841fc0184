//! Fuzzes the scrape body parser in both formats: it must never panic, and
//! every sample it accepts must have a valid metric name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrape::exposition::{is_valid_metric_name, parse, Format};

fuzz_target!(|data: &[u8]| {
    for format in [Format::PrometheusText, Format::OpenMetrics] {
        let body = parse(data, format);
        for s in &body.samples {
            assert!(s.labels.metric_name().is_some_and(is_valid_metric_name));
        }
    }
});
