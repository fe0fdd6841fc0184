//! Fuzzes `wire::remote_write::decode`: no input may panic, and the limits
//! must hold. Run with `scripts/fuzz remote_write_decode`.
//!
//! Half of the inputs are wrapped in a valid snappy block first, so that the
//! fuzzer spends its time in the protobuf decoder and the per-series checks
//! rather than in snappy's corruption checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = wire::DecodeLimits {
        max_compressed_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
        max_labels_per_series: 8,
        max_label_name_len: 16,
        max_label_value_len: 64,
    };
    let body = match data.split_first() {
        Some((&flag, rest)) if flag & 1 == 1 => match snap::raw::Encoder::new().compress_vec(rest) {
            Ok(compressed) => compressed,
            Err(_) => return,
        },
        _ => data.to_vec(),
    };
    if let Ok(decoded) = wire::remote_write::decode(&body, &limits) {
        for (labels, _) in &decoded.series {
            assert!(labels.len() <= limits.max_labels_per_series);
            assert!(labels.metric_name().is_some());
        }
    }
});
