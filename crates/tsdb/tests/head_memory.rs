//! Heap bytes per active series in the head, counted by a wrapping global
//! allocator (jemalloc size classes, as in the `haetae` binary).
//!
//! Mirrors the restart benchmark at a smaller scale: two hours of 15 s
//! scrapes with maintenance (head cuts) every 20 scrapes, then the heap of
//! the blocks alone, a checkpoint and a replay. Blocks this small keep their
//! index in the heap (`block::index_file::MIN_MAPPED_BYTES`); the benchmark's
//! million-series blocks map it from `index_cache/` instead.
//!
//! Prints a breakdown by phase; run with
//! `cargo test --release -p tsdb --test head_memory -- --nocapture`.

use model::{Labels, Sample, TenantId};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering};
use storage_api::SeriesSamples;
use tsdb::{Db, DbOptions};

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static JE: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn usable(ptr: *mut u8) -> i64 {
    // SAFETY: `ptr` was returned by jemalloc and is still live.
    unsafe { tikv_jemallocator::usable_size(ptr) as i64 }
}

fn add(n: i64) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards to jemalloc unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = JE.alloc(layout);
        if !p.is_null() {
            add(usable(p));
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = JE.alloc_zeroed(layout);
        if !p.is_null() {
            add(usable(p));
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-usable(ptr));
        JE.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = usable(ptr);
        let p = JE.realloc(ptr, layout, new_size);
        if !p.is_null() {
            add(usable(p) - old);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// 64,000 series in release builds; a tenth in debug builds (`scripts/test`),
/// where the full run takes minutes and only checks that the phases run.
const HOSTS: usize = if cfg!(debug_assertions) { 20 } else { 200 };
const PER_HOST: usize = 320;
const STEP: i64 = 15_000;

/// node_exporter-like label sets: 8 CPUs × 8 modes, network devices, filesystems, plain gauges.
fn host_labels(h: usize) -> Vec<Labels> {
    let inst = format!("host-{h}:9100");
    let mut out = Vec::new();
    for cpu in 0..8 {
        for mode in ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"] {
            out.push(Labels::from_pairs(&[
                ("__name__", "node_cpu_seconds_total"),
                ("cpu", cpu.to_string().as_str()),
                ("instance", inst.as_str()),
                ("job", "node"),
                ("mode", mode),
            ]));
        }
    }
    let mut i = 0;
    while out.len() < PER_HOST {
        let dev = format!("dev{}", i % 6);
        let name = format!("node_metric_number_{}_total", i / 6);
        out.push(Labels::from_pairs(&[
            ("__name__", name.as_str()),
            ("device", dev.as_str()),
            ("instance", inst.as_str()),
            ("job", "node"),
        ]));
        i += 1;
    }
    out
}

fn value(series: usize, step: i64) -> f64 {
    let x = (series as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (step as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let noise = (x >> 40) as f64 / (1u64 << 24) as f64;
    match series % 4 {
        0 => {
            ((series as f64) * 1000.0 + step as f64 * 14.2 + noise)
                .mul_add(100.0, 0.0)
                .round()
                / 100.0
        }
        1 => (series as f64 * 1e6 + step as f64 * 2e6 * (1.0 + noise)).round(),
        2 => (1000.0 + 50.0 * noise).round(),
        _ => 8.0 * 1024.0 * 1024.0 * 1024.0,
    }
}

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn head_bytes_per_series() {
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<Labels> = (0..HOSTS).flat_map(host_labels).collect();
    let n = labels.len();
    let base0 = live();
    let db = Db::open(TenantId::default(), dir.path(), DbOptions::default()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two hours of 15 s scrapes, as the restart benchmark; maintenance (head
    // cuts) every 20 scrapes, as the server's 30 s timer during a fast fill.
    let steps: i64 = 480;
    let first = now - steps * STEP;
    let mut report = Vec::new();
    let base = live();
    report.push(format!("empty db: {} B", base - base0));
    for step in 0..steps {
        let t = first + step * STEP;
        for host in 0..HOSTS {
            let batch: Vec<SeriesSamples> = (host * PER_HOST..(host + 1) * PER_HOST)
                .map(|i| SeriesSamples {
                    labels: labels[i].clone(),
                    samples: vec![Sample::new(t, value(i, step))],
                })
                .collect();
            db.append(batch).unwrap();
        }
        if step % 20 == 19 {
            let before = live();
            PEAK.store(before, Ordering::Relaxed);
            let blocks = db.blocks().len();
            db.maintain().unwrap();
            if db.blocks().len() != blocks {
                report.push(format!(
                    "step {:3}: cut to {} blocks: {:6.1} -> {:6.1} B/series, peak during cut {:6.1}",
                    step + 1,
                    db.blocks().len(),
                    (before - base) as f64 / n as f64,
                    (live() - base) as f64 / n as f64,
                    (PEAK.load(Ordering::Relaxed) - base) as f64 / n as f64
                ));
            }
        }
        if [0, 1, 60, 119, 239, 359, 479].contains(&step) {
            report.push(format!(
                "after {:3} samples/series: {:6.1} B/series (peak so far {:6.1})",
                step + 1,
                (live() - base) as f64 / n as f64,
                (PEAK.load(Ordering::Relaxed) - base) as f64 / n as f64
            ));
        }
    }
    // What the loaded blocks alone cost: open a copy of the blocks without the WAL.
    let blocks_dir = tempfile::tempdir().unwrap();
    copy_dir(&dir.path().join("blocks"), &blocks_dir.path().join("blocks"));
    let before_blocks = live();
    let blocks_db = Db::open(TenantId::default(), blocks_dir.path(), DbOptions::default()).unwrap();
    report.push(format!(
        "{} blocks loaded alone: {:6.1} B/series",
        blocks_db.blocks().len(),
        (live() - before_blocks) as f64 / n as f64
    ));
    drop(blocks_db);
    PEAK.store(live(), Ordering::Relaxed);
    db.close().unwrap();
    report.push(format!(
        "after close (checkpoint): {:6.1} B/series, peak during checkpoint {:6.1}",
        (live() - base) as f64 / n as f64,
        (PEAK.load(Ordering::Relaxed) - base) as f64 / n as f64
    ));
    drop(db);
    PEAK.store(live(), Ordering::Relaxed);
    let before_open = live();
    let db = Db::open(TenantId::default(), dir.path(), DbOptions::default()).unwrap();
    report.push(format!(
        "reopened: {:6.1} B/series, peak during replay {:6.1}",
        (live() - before_open) as f64 / n as f64,
        (PEAK.load(Ordering::Relaxed) - before_open) as f64 / n as f64
    ));
    drop(db);
    println!("{n} series\n{}", report.join("\n"));
}
