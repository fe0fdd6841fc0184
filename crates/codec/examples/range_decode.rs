//! Prints the time to decode one decimal chunk of 480 samples (2 h at 15 s) whole, and
//! to get its last 20 samples (the 5 minutes an instant query reads) by decoding it
//! whole and copying the tail, as block reads did, or with `decode_chunk_range`:
//! `cargo run --release -p codec --example range_decode -- [rounds]`.
//!
//! Chunks are of the kinds an instant query over a node_exporter-like host meets most:
//! counters, gauges and histogram buckets, several series of each.

use codec::{decode_chunk, decode_chunk_range, encode_chunk};
use model::Sample;
use std::hint::black_box;
use std::time::Instant;

const SAMPLES: i64 = 480;
const INTERVAL_MS: i64 = 15_000;
const T0: i64 = 1_700_000_000_000;
/// Samples an instant query with a 5-minute window reads from the last chunk.
const TAIL: i64 = 20;

// This example does not use every method.
#[allow(dead_code)]
#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

fn series(mut value: impl FnMut(i64) -> f64) -> Vec<Sample> {
    (0..SAMPLES)
        .map(|i| Sample::new(T0 + i * INTERVAL_MS, value(i)))
        .collect()
}

/// (kind, chunks) for each kind of series.
fn workload() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut rng = Rng::new(42);
    let mut kinds: Vec<(&'static str, Vec<Vec<Sample>>)> = vec![
        ("counter (cpu seconds)", vec![]),
        ("counter (bytes)", vec![]),
        ("gauge (memory bytes)", vec![]),
        ("gauge (load, 2 decimals)", vec![]),
        ("histogram bucket", vec![]),
    ];
    for _ in 0..20 {
        let mut cents = rng.below(1 << 30) as f64;
        kinds[0].1.push(series(|_| {
            cents += (1000 + rng.below(500)) as f64;
            cents / 100.0
        }));
        let mut bytes = rng.below(1 << 40) as f64;
        let rate = 1 + rng.below(1 << 20);
        kinds[1].1.push(series(|_| {
            bytes += rng.below(rate) as f64;
            bytes
        }));
        let mut pages = (1u64 << 20) + rng.below(1 << 20);
        kinds[2].1.push(series(|_| {
            if rng.below(10) >= 6 {
                pages = pages + rng.below(600) - 300;
            }
            (pages * 4096) as f64
        }));
        let mut load = rng.below(400) as i64;
        kinds[3].1.push(series(|_| {
            load = (load + rng.below(21) as i64 - 10).max(0);
            load as f64 / 100.0
        }));
        // Request-duration bucket: a few observations per scrape, fewer in a low bucket.
        let mut count = rng.below(1 << 20) as f64;
        let per_scrape = 1 + rng.below(8);
        kinds[4].1.push(series(|_| {
            count += rng.below(per_scrape) as f64;
            count
        }));
    }
    kinds
        .into_iter()
        .map(|(kind, all)| {
            let chunks = all
                .iter()
                .map(|samples| {
                    let mut bytes = Vec::new();
                    encode_chunk(samples, &mut bytes);
                    bytes
                })
                .collect();
            (kind, chunks)
        })
        .collect()
}

/// Nanoseconds per chunk of `f` over `chunks`, the best of a few passes of `rounds`.
fn time(chunks: &[Vec<u8>], rounds: usize, mut f: impl FnMut(&[u8], &mut Vec<Sample>, &mut Vec<Sample>)) -> f64 {
    let (mut out, mut scratch) = (Vec::with_capacity(512), Vec::with_capacity(512));
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..rounds {
            for c in chunks {
                out.clear();
                f(black_box(c), &mut out, &mut scratch);
                black_box(&out);
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / (rounds * chunks.len()) as f64);
    }
    best
}

fn main() {
    let rounds = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let (start, end) = (T0 + (SAMPLES - TAIL) * INTERVAL_MS, i64::MAX);
    println!(
        "{:<26} {:>6} {:>12} {:>16} {:>14} {:>7}",
        "ns per chunk of 480", "bytes", "full decode", "full + copy 20", "range (20)", "ratio"
    );
    for (kind, chunks) in workload() {
        let bytes = chunks.iter().map(Vec::len).sum::<usize>() / chunks.len();
        let full = time(&chunks, rounds, |c, out, _| {
            decode_chunk(c, out).expect("own chunk");
        });
        let copy = time(&chunks, rounds, |c, out, scratch| {
            scratch.clear();
            decode_chunk(c, scratch).expect("own chunk");
            let lo = scratch.partition_point(|s| s.t < start);
            out.extend_from_slice(&scratch[lo..]);
        });
        let range = time(&chunks, rounds, |c, out, _| {
            decode_chunk_range(c, start, end, out).expect("own chunk");
            assert_eq!(out.len(), TAIL as usize);
        });
        println!(
            "{kind:<26} {bytes:>6} {full:>12.0} {copy:>16.0} {range:>14.0} {:>6.1}x",
            copy / range
        );
    }
}
