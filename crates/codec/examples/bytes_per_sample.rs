//! Prints bytes/sample of each chunk encoding on a synthetic node_exporter-like
//! workload: `cargo run --release -p codec --example bytes_per_sample -- [hosts] [jitter%]`.
//!
//! Series are emitted in block order (metric family, then host), 480 samples each
//! (2 h at 15 s). Encodings measured: raw XOR chunks of 120 samples (what Prometheus
//! keeps on disk), the same XOR chunks in 64 KiB zstd frames, and decimal chunks of
//! 480 samples in 64 KiB zstd frames at several zstd levels.

use codec::{compress_frame, decode_chunk, decompress_frame, encode_chunk, XorEncoder};
use model::Sample;
use std::time::Instant;

const SAMPLES_PER_CHUNK: usize = 480;
const INTERVAL_MS: i64 = 15_000;
const FRAME_BYTES: usize = 64 * 1024;
const XOR_CHUNK_SAMPLES: usize = 120;
const LEVELS: [i32; 5] = [1, 3, 6, 9, 15];

#[path = "support/rng.rs"]
mod rng;
use rng::Rng;

/// A metric family: how many series per host and how their values evolve.
#[derive(Clone, Copy)]
enum Kind {
    /// Counter in seconds with 2 decimals (USER_HZ = 100), mean increase per second.
    CpuSeconds(f64),
    /// Integer counter growing at a rate that drifts; `bursty` adds idle periods.
    ByteCounter { mean_rate: f64, bursty: bool },
    /// Integer counter that rarely moves (errors, drops).
    RareCounter,
    /// Memory gauge in bytes: pages of 4096, random walk; `fixed` never changes.
    MemoryBytes { fixed: bool },
    /// Load average, 2 decimals.
    Load,
    /// Filesystem gauge: mostly constant, occasionally moves by blocks.
    Filesystem,
    /// 0/1 gauge that flips rarely.
    Bool,
    /// Small integer gauge (procs running, open fds).
    SmallInt,
    /// Float with many digits (scrape durations, node_time_seconds-like).
    FullFloat,
    /// Temperature with 1 decimal.
    Celsius,
}

fn families() -> Vec<(&'static str, usize, Kind)> {
    vec![
        ("node_cpu_seconds_total{mode=idle}", 8, Kind::CpuSeconds(0.7)),
        ("node_cpu_seconds_total{mode=user}", 8, Kind::CpuSeconds(0.15)),
        ("node_cpu_seconds_total{mode=system}", 8, Kind::CpuSeconds(0.05)),
        ("node_cpu_seconds_total{mode=iowait}", 8, Kind::CpuSeconds(0.01)),
        ("node_cpu_seconds_total{mode=irq|softirq}", 16, Kind::CpuSeconds(0.002)),
        ("node_cpu_seconds_total{mode=nice|steal}", 16, Kind::CpuSeconds(0.0)),
        (
            "node_network_receive_bytes_total",
            4,
            Kind::ByteCounter {
                mean_rate: 200_000.0,
                bursty: false,
            },
        ),
        (
            "node_network_transmit_bytes_total",
            4,
            Kind::ByteCounter {
                mean_rate: 150_000.0,
                bursty: false,
            },
        ),
        (
            "node_network_receive_packets_total",
            4,
            Kind::ByteCounter {
                mean_rate: 300.0,
                bursty: false,
            },
        ),
        (
            "node_network_transmit_packets_total",
            4,
            Kind::ByteCounter {
                mean_rate: 250.0,
                bursty: false,
            },
        ),
        (
            "node_network_{receive,transmit}_{errs,drop}_total",
            16,
            Kind::RareCounter,
        ),
        (
            "node_disk_read_bytes_total",
            4,
            Kind::ByteCounter {
                mean_rate: 50_000.0,
                bursty: true,
            },
        ),
        (
            "node_disk_written_bytes_total",
            4,
            Kind::ByteCounter {
                mean_rate: 400_000.0,
                bursty: true,
            },
        ),
        (
            "node_disk_{reads,writes}_completed_total",
            8,
            Kind::ByteCounter {
                mean_rate: 20.0,
                bursty: true,
            },
        ),
        ("node_disk_io_time_seconds_total", 4, Kind::CpuSeconds(0.03)),
        ("node_disk_*_merged/time", 12, Kind::RareCounter),
        ("node_memory_*_bytes (changing)", 14, Kind::MemoryBytes { fixed: false }),
        ("node_memory_*_bytes (fixed)", 30, Kind::MemoryBytes { fixed: true }),
        ("node_load{1,5,15}", 3, Kind::Load),
        (
            "node_filesystem_{size,avail,free,files,files_free}",
            30,
            Kind::Filesystem,
        ),
        ("node_filesystem_{readonly,device_error}", 12, Kind::Bool),
        ("node_systemd_unit_state", 50, Kind::Bool),
        ("node_network_up/carrier", 8, Kind::Bool),
        ("node_procs_{running,blocked}, node_filefd_allocated", 3, Kind::SmallInt),
        (
            "node_context_switches/intr/forks_total",
            3,
            Kind::ByteCounter {
                mean_rate: 5_000.0,
                bursty: false,
            },
        ),
        ("node_hwmon_temp_celsius", 6, Kind::Celsius),
        (
            "scrape_duration_seconds, node_time_seconds, *_ratio",
            3,
            Kind::FullFloat,
        ),
        ("node_cpu_scaling_frequency_hertz", 8, Kind::SmallInt),
    ]
}

/// Timestamps of one host's scrapes: 15 s apart, with `jitter_pct` % of scrapes off
/// by a few milliseconds (Prometheus aligns timestamps within 2 ms of the schedule).
fn host_timestamps(host: u64, jitter_pct: u64) -> Vec<i64> {
    let mut rng = Rng::new(host * 7919 + 1);
    let start = 1_700_000_000_000i64 + rng.below(15_000) as i64;
    (0..SAMPLES_PER_CHUNK as i64)
        .map(|i| {
            let jitter = if rng.below(100) < jitter_pct {
                3 + rng.below(25) as i64
            } else {
                0
            };
            start + i * INTERVAL_MS + jitter
        })
        .collect()
}

fn series(kind: Kind, seed: u64, ts: &[i64]) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(ts.len());
    let push = |out: &mut Vec<Sample>, t: i64, v: f64| out.push(Sample::new(t, v));
    match kind {
        Kind::CpuSeconds(busy) => {
            let mut cents = rng.below(100_000_000) as i64;
            let busy = busy * (0.5 + rng.unit());
            for &t in ts {
                cents += (busy * 1500.0 * (0.8 + 0.4 * rng.unit())) as i64;
                push(&mut out, t, cents as f64 / 100.0);
            }
        }
        Kind::ByteCounter { mean_rate, bursty } => {
            let mut v = rng.below(1 << 40) as f64;
            let mut rate = mean_rate * (0.2 + 1.6 * rng.unit());
            for &t in ts {
                rate = (rate * (0.9 + 0.2 * rng.unit())).clamp(mean_rate * 0.05, mean_rate * 5.0);
                let idle = bursty && rng.below(3) == 0;
                if !idle {
                    v += (rate * 15.0 * (0.5 + rng.unit())).round();
                }
                push(&mut out, t, v);
            }
        }
        Kind::RareCounter => {
            let mut v = rng.below(50) as f64;
            for &t in ts {
                if rng.below(200) == 0 {
                    v += 1.0 + rng.below(5) as f64;
                }
                push(&mut out, t, v);
            }
        }
        Kind::MemoryBytes { fixed } => {
            let mut pages = 100_000 + rng.below(4_000_000) as i64;
            for &t in ts {
                if !fixed {
                    pages += rng.below(2001) as i64 - 1000;
                }
                push(&mut out, t, (pages * 4096) as f64);
            }
        }
        Kind::Load => {
            let mut load = 50 + rng.below(300) as i64;
            for &t in ts {
                load = (load + rng.below(21) as i64 - 10).max(0);
                push(&mut out, t, load as f64 / 100.0);
            }
        }
        Kind::Filesystem => {
            let mut blocks = rng.below(100_000_000) as i64;
            let moving = rng.below(3) == 0;
            for &t in ts {
                if moving && rng.below(4) == 0 {
                    blocks += rng.below(200) as i64 - 80;
                }
                push(&mut out, t, (blocks * 4096) as f64);
            }
        }
        Kind::Bool => {
            let mut v = (rng.below(4) != 0) as u8;
            for &t in ts {
                if rng.below(2000) == 0 {
                    v ^= 1;
                }
                push(&mut out, t, f64::from(v));
            }
        }
        Kind::SmallInt => {
            let mut v = rng.below(3000) as i64;
            for &t in ts {
                if rng.below(3) == 0 {
                    v = (v + rng.below(7) as i64 - 3).max(0);
                }
                push(&mut out, t, v as f64);
            }
        }
        Kind::FullFloat => {
            for &t in ts {
                push(&mut out, t, 0.001 + rng.unit() * 0.05);
            }
        }
        Kind::Celsius => {
            let mut tenths = 300 + rng.below(400) as i64;
            for &t in ts {
                tenths += rng.below(5) as i64 - 2;
                push(&mut out, t, tenths as f64 / 10.0);
            }
        }
    }
    out
}

/// Collects concatenated chunks and compresses them in frames of about 64 KiB.
struct Framer {
    pending: Vec<u8>,
    frames: Vec<Vec<u8>>,
}

impl Framer {
    fn new() -> Self {
        Framer {
            pending: Vec::new(),
            frames: Vec::new(),
        }
    }
    fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= FRAME_BYTES {
            self.frames.push(std::mem::take(&mut self.pending));
        }
    }
    fn finish(mut self) -> Vec<Vec<u8>> {
        if !self.pending.is_empty() {
            self.frames.push(std::mem::take(&mut self.pending));
        }
        self.frames
    }
}

fn compressed_size(frames: &[Vec<u8>], level: i32) -> (usize, f64, f64) {
    let mut total = 0;
    let mut buf = Vec::new();
    let start = Instant::now();
    let mut compressed = Vec::with_capacity(frames.len());
    for f in frames {
        buf.clear();
        compress_frame(f, level, &mut buf);
        total += buf.len();
        compressed.push(buf.clone());
    }
    let compress_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for c in &compressed {
        let d = decompress_frame(c, FRAME_BYTES * 2).expect("own frame");
        std::hint::black_box(d);
    }
    (total, compress_secs, start.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hosts: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(300);
    let jitter_pct: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let families = families();
    let series_per_host: usize = families.iter().map(|f| f.1).sum();
    let host_ts: Vec<Vec<i64>> = (0..hosts).map(|h| host_timestamps(h, jitter_pct)).collect();

    let mut num_samples = 0usize;
    let mut xor_raw = 0usize;
    let mut xor_framer = Framer::new();
    let mut dec_framer = Framer::new();
    let mut dec_raw = 0usize;
    let mut modes = [0usize; 8];
    let (mut xor_secs, mut dec_secs, mut dec_decode_secs) = (0.0, 0.0, 0.0);
    let mut chunk = Vec::new();
    let mut decoded = Vec::new();
    for (fi, &(_, count, kind)) in families.iter().enumerate() {
        for host in 0..hosts {
            for idx in 0..count {
                let seed = (fi as u64) << 40 | host << 16 | idx as u64;
                let samples = series(kind, seed, &host_ts[host as usize]);
                num_samples += samples.len();

                let start = Instant::now();
                for part in samples.chunks(XOR_CHUNK_SAMPLES) {
                    let mut enc = XorEncoder::new();
                    for s in part {
                        enc.append(s.t, s.v);
                    }
                    xor_raw += enc.bytes().len();
                    xor_framer.push(enc.bytes());
                }
                xor_secs += start.elapsed().as_secs_f64();

                chunk.clear();
                let start = Instant::now();
                encode_chunk(&samples, &mut chunk);
                dec_secs += start.elapsed().as_secs_f64();
                modes[usize::from(chunk[0] & 0b111)] += 1;
                dec_raw += chunk.len();
                dec_framer.push(&chunk);

                decoded.clear();
                let start = Instant::now();
                decode_chunk(&chunk, &mut decoded).expect("own chunk");
                dec_decode_secs += start.elapsed().as_secs_f64();
                assert!(decoded.iter().zip(&samples).all(|(a, b)| a.bit_eq(b)));
            }
        }
    }
    let xor_frames = xor_framer.finish();
    let dec_frames = dec_framer.finish();
    let n = num_samples as f64;
    println!(
        "workload: {hosts} hosts x {series_per_host} series x {SAMPLES_PER_CHUNK} samples = {num_samples} samples, \
         {jitter_pct}% of scrapes jittered"
    );
    println!(
        "decimal chunk modes (flags|encoding: count): {:?}",
        modes.iter().enumerate().filter(|m| *m.1 > 0).collect::<Vec<_>>()
    );
    println!(
        "{:<34} {:>10} {:>12} {:>14}",
        "encoding", "bytes/smpl", "encode Ms/s", "decode Ms/s"
    );
    println!(
        "{:<34} {:>10.3} {:>12.1} {:>14}",
        "xor (120-sample chunks)",
        xor_raw as f64 / n,
        n / xor_secs / 1e6,
        "-"
    );
    println!(
        "{:<34} {:>10.3} {:>12.1} {:>14.1}",
        "decimal (480-sample chunks)",
        dec_raw as f64 / n,
        n / dec_secs / 1e6,
        n / dec_decode_secs / 1e6
    );
    for level in LEVELS {
        let (xz, _, _) = compressed_size(&xor_frames, level);
        let (dz, csecs, dsecs) = compressed_size(&dec_frames, level);
        println!(
            "{:<34} {:>10.3}\n{:<34} {:>10.3} {:>12.1} {:>14.1}   (zstd only)",
            format!("xor + zstd -{level} (64 KiB frames)"),
            xz as f64 / n,
            format!("decimal + zstd -{level} (64 KiB frames)"),
            dz as f64 / n,
            n / csecs / 1e6,
            n / dsecs / 1e6
        );
    }
}
