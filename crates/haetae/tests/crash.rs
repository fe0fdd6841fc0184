//! Crash safety: a writer sends batches and records which were
//! acknowledged; Haetae is killed with SIGKILL at random moments 20 times
//! and restarted. Every acknowledged sample must be present afterwards,
//! nothing duplicated, and the process must always restart.

mod support;

use model::{Labels, Matcher, Sample};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

const SERIES: usize = 50;

fn batch(seq: i64, base: i64) -> Vec<(Labels, Vec<Sample>)> {
    (0..SERIES)
        .map(|i| {
            let labels = Labels::from_pairs(&[("__name__", "crash_test"), ("series", &i.to_string())]);
            (
                labels,
                vec![Sample::new(base + seq * 1000, (seq * 1000 + i as i64) as f64)],
            )
        })
        .collect()
}

#[test]
fn acknowledged_samples_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let port = free_port();
    let mut haetae = start_haetae_on(&data, port, &[]);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        - 3_600_000;
    let acked: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let acked = Arc::clone(&acked);
        let stop = Arc::clone(&stop);
        let url = haetae.url();
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            let mut seq = 0i64;
            while !stop.load(Ordering::Relaxed) {
                match remote_write(&client, &url, &batch(seq, base)) {
                    Ok(s) if s.is_success() => {
                        acked.lock().expect("lock").push(seq);
                        seq += 1;
                    }
                    // Refused or down: retry the same batch, as Prometheus would.
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for round in 0..20 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..600)));
        haetae.kill9();
        let n = acked.lock().expect("lock").len();
        haetae = start_haetae_on(&data, port, &[]);
        eprintln!("round {round}: killed after {n} acknowledged batches, restarted");
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > 100, "the writer made progress: {}", acked.len());

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let got = remote_read(
        &client,
        &haetae.url(),
        vec![Matcher::equal("__name__", "crash_test")],
        0,
        i64::MAX,
    );
    assert_eq!(got.len(), SERIES);
    for (labels, samples) in &got {
        let i: i64 = labels.get("series").and_then(|s| s.parse().ok()).expect("series label");
        let by_t: BTreeMap<i64, f64> = samples.iter().map(|s| (s.t, s.v)).collect();
        assert_eq!(by_t.len(), samples.len(), "{labels}: duplicated timestamps");
        for seq in &acked {
            let t = base + seq * 1000;
            assert_eq!(
                by_t.get(&t),
                Some(&((seq * 1000 + i) as f64)),
                "{labels}: acknowledged sample at seq {seq} lost"
            );
        }
    }
    // A clean stop after all this still works.
    assert!(
        haetae.terminate().success(),
        "clean shutdown failed:\n{}",
        haetae.log_text()
    );
}
