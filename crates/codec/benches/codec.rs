//! Encode/decode speed of the XOR and decimal chunk codecs on a counter-like series.

use codec::{decode_chunk, decode_xor, encode_chunk, XorEncoder};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use model::Sample;
use std::hint::black_box;
use std::time::Duration;

/// 480 samples (2 h at 15 s) of a CPU-seconds counter with 2 decimals.
fn counter_series() -> Vec<Sample> {
    let mut cents = 123_456_789i64;
    (0..480)
        .map(|i| {
            cents += 1000 + (i * 37 % 101);
            Sample::new(1_700_000_000_000 + i * 15_000, cents as f64 / 100.0)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let samples = counter_series();
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    group.bench_function("xor_encode", |b| {
        b.iter(|| {
            let mut enc = XorEncoder::new();
            for s in &samples {
                enc.append(s.t, s.v);
            }
            black_box(enc.bytes().len())
        })
    });
    let mut enc = XorEncoder::new();
    for s in &samples {
        enc.append(s.t, s.v);
    }
    let xor_bytes = enc.bytes().to_vec();
    group.bench_function("xor_decode", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(480),
            |out| decode_xor(black_box(&xor_bytes), out).unwrap(),
            BatchSize::SmallInput,
        )
    });

    group.bench_function("decimal_encode", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(2048),
            |out| encode_chunk(black_box(&samples), out),
            BatchSize::SmallInput,
        )
    });
    let mut dec_bytes = Vec::new();
    encode_chunk(&samples, &mut dec_bytes);
    group.bench_function("decimal_decode", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(480),
            |out| decode_chunk(black_box(&dec_bytes), out).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(codec_benches, benches);
criterion_main!(codec_benches);
