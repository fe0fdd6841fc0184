//! Re-encodes the chunks of a real block and prints bytes/sample in total and per
//! metric name (each name's chunks framed alone), encode and decode times.
//!
//! Dump a block first with tsdb's example:
//! `cargo run --release -p tsdb --example dump_block -- <data>/tenants/default/blocks/<ulid> /tmp/dump.bin`,
//! then
//! `cargo run --release -p codec --example block_dump -- /tmp/dump.bin`.
//! With `MERGE=1`, consecutive chunks of a series are merged first (what chunks
//! spanning the whole block would cost).

use codec::{compress_frame, decode_chunk, encode_chunk};
use model::Sample;
use std::collections::BTreeMap;

const FRAME_BYTES: usize = 64 * 1024;
const LEVEL: i32 = 9;

fn load(path: &str) -> Vec<(String, Vec<Sample>)> {
    let b = std::fs::read(path).expect("read dump");
    let mut pos = 0;
    let mut out = Vec::new();
    let u32_at = |p: usize| u32::from_le_bytes(b[p..p + 4].try_into().expect("4")) as usize;
    while pos < b.len() {
        let nl = u32_at(pos);
        pos += 4;
        let name = String::from_utf8(b[pos..pos + nl].to_vec()).expect("utf8");
        pos += nl;
        let n = u32_at(pos);
        pos += 4;
        let mut s = Vec::with_capacity(n);
        for _ in 0..n {
            let t = i64::from_le_bytes(b[pos..pos + 8].try_into().expect("8"));
            let v = f64::from_bits(u64::from_le_bytes(b[pos + 8..pos + 16].try_into().expect("8")));
            s.push(Sample { t, v });
            pos += 16;
        }
        out.push((name, s));
    }
    out
}

fn framed_size(chunks: &[Vec<u8>]) -> usize {
    let mut total = 0;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        if buf.len() >= FRAME_BYTES {
            out.clear();
            compress_frame(&buf, LEVEL, &mut out);
            total += out.len();
            buf.clear();
        }
    }
    if !buf.is_empty() {
        out.clear();
        compress_frame(&buf, LEVEL, &mut out);
        total += out.len();
    }
    total
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/tmp/compress-dump.bin".into());
    let mut chunks = load(&path);
    if std::env::var("MERGE").is_ok() {
        let mut merged: Vec<(String, Vec<Sample>)> = Vec::new();
        for (name, s) in chunks {
            if let Some(last) = merged.last_mut() {
                if last.0 == name && last.1.last().map(|x| x.t + 15_000) == s.first().map(|x| x.t) {
                    last.1.extend(s);
                    continue;
                }
            }
            merged.push((name, s));
        }
        chunks = merged;
    }
    let samples: usize = chunks.iter().map(|c| c.1.len()).sum();
    let t0 = std::time::Instant::now();
    let encoded: Vec<Vec<u8>> = chunks
        .iter()
        .map(|(_, s)| {
            let mut v = Vec::new();
            encode_chunk(s, &mut v);
            v
        })
        .collect();
    let enc_s = t0.elapsed().as_secs_f64();
    let raw: usize = encoded.iter().map(Vec::len).sum();
    let t2 = std::time::Instant::now();
    let mut out = Vec::new();
    for e in &encoded {
        out.clear();
        decode_chunk(e, &mut out).expect("own chunk decodes");
    }
    println!(
        "decode {:.2} ns/sample",
        t2.elapsed().as_secs_f64() * 1e9 / samples.max(1) as f64
    );
    let t1 = std::time::Instant::now();
    let total = framed_size(&encoded);
    let z_s = t1.elapsed().as_secs_f64();
    println!(
        "chunks {} samples {samples}: raw {raw} ({:.3} B/s), framed {total} ({:.4} B/s); encode {enc_s:.2} s, zstd {z_s:.2} s",
        chunks.len(),
        raw as f64 / samples as f64,
        total as f64 / samples as f64
    );
    let zeroed: Vec<Vec<u8>> = chunks
        .iter()
        .map(|(_, s)| {
            let z: Vec<Sample> = s.iter().map(|x| Sample { t: x.t, v: 0.0 }).collect();
            let mut v = Vec::new();
            encode_chunk(&z, &mut v);
            v
        })
        .collect();
    let zs = framed_size(&zeroed);
    println!(
        "timestamps + headers only (values all 0): {zs} ({:.4} B/s)",
        zs as f64 / samples as f64
    );
    let mut by_name: BTreeMap<&str, (usize, Vec<Vec<u8>>)> = BTreeMap::new();
    for ((name, s), e) in chunks.iter().zip(&encoded) {
        let g = by_name.entry(name).or_default();
        g.0 += s.len();
        g.1.push(e.clone());
    }
    let mut rows: Vec<(usize, String)> = by_name
        .iter()
        .map(|(name, (n, es))| {
            let raw: usize = es.iter().map(Vec::len).sum();
            let z = framed_size(es);
            (
                z,
                format!(
                    "{name:50} {n:9} raw {:7.3} z {:7.3} B/s  z {z:9}",
                    raw as f64 / *n as f64,
                    z as f64 / *n as f64
                ),
            )
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.0));
    let sum: usize = rows.iter().map(|r| r.0).sum();
    println!(
        "sum of per-name framed sizes: {sum} ({:.4} B/s)",
        sum as f64 / samples as f64
    );
    for (_, r) in rows {
        println!("{r}");
    }
}
