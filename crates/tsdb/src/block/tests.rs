use super::reader::{BlockReader, FrameCache};
use super::writer::BlockWriter;
use super::BlockCompaction;
use crate::postings::{select_postings, PostingsSource};
use crate::store::{BlockStore, LocalStore};
use model::{Labels, MatchOp, Matcher, Sample};
use std::sync::Arc;

fn series(i: usize) -> (Labels, Vec<Sample>) {
    let labels = Labels::from_pairs(&[
        ("__name__", "node_cpu_seconds_total"),
        ("cpu", &(i % 4).to_string()),
        ("instance", &format!("host-{:03}", i / 4)),
    ]);
    let samples = (0..500)
        .map(|k| Sample::new(k * 15_000, (i * 1000 + k as usize) as f64 * 0.01))
        .collect();
    (labels, samples)
}

#[test]
fn write_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlockStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let mut all: Vec<(Labels, Vec<Sample>)> = (0..40).map(series).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let symbols = all.iter().flat_map(|(l, _)| {
        l.iter()
            .flat_map(|l| [l.name.clone(), l.value.clone()])
            .collect::<Vec<_>>()
    });
    let mut w = BlockWriter::new(&*store, "blocks", symbols.collect::<Vec<_>>()).unwrap();
    for (l, s) in &all {
        w.add_series(l, s).unwrap();
    }
    let meta = w.finish(BlockCompaction::default()).unwrap().unwrap();
    assert_eq!(meta.stats.num_series, 40);
    assert_eq!(meta.stats.num_samples, 40 * 500);
    assert_eq!(meta.min_time, 0);
    assert_eq!(meta.max_time, 499 * 15_000);

    let b = BlockReader::open(Arc::clone(&store), &format!("blocks/{}", meta.ulid)).unwrap();
    assert_eq!(b.label_values("cpu"), vec!["0", "1", "2", "3"]);
    let ids = select_postings(
        &b,
        &[
            Matcher::equal("cpu", "2"),
            Matcher::new(MatchOp::RegexMatch, "instance", "host-00[0-4]").unwrap(),
        ],
    );
    assert_eq!(ids.len(), 5);
    let mut cache = FrameCache::default();
    for id in ids {
        let (labels, chunks) = b.series(id).unwrap();
        assert_eq!(labels.get("cpu"), Some("2"));
        let mut got = Vec::new();
        for c in &chunks {
            b.read_chunk(c, &mut cache, 0, i64::MAX, &mut got).unwrap();
        }
        let want = &all.iter().find(|(l, _)| *l == labels).unwrap().1;
        assert_eq!(&got, want);
    }
    assert!(b.postings("cpu", "9").is_empty());
}

#[test]
fn corrupt_index_is_reported_not_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlockStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let (l, s) = series(1);
    let symbols: Vec<String> = l.iter().flat_map(|l| [l.name.clone(), l.value.clone()]).collect();
    let mut w = BlockWriter::new(&*store, "blocks", symbols).unwrap();
    w.add_series(&l, &s).unwrap();
    let meta = w.finish(BlockCompaction::default()).unwrap().unwrap();
    let path = dir.path().join("blocks").join(&meta.ulid).join("index");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = BlockReader::open(store, &format!("blocks/{}", meta.ulid))
        .err()
        .unwrap();
    assert!(matches!(err, crate::TsdbError::Corrupted { .. }), "{err}");
}

#[test]
fn version_1_blocks_with_a_raw_index_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlockStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    let (l, s) = series(3);
    // Within one 2-hour window: one frame, so the series entry reads the
    // same in every version (version 3 signs frame deltas).
    let s: Vec<Sample> = s.into_iter().take(400).collect();
    let symbols: Vec<String> = l.iter().flat_map(|l| [l.name.clone(), l.value.clone()]).collect();
    let mut w = BlockWriter::new(&*store, "blocks", symbols).unwrap();
    w.add_series(&l, &s).unwrap();
    let meta = w.finish(BlockCompaction::default()).unwrap().unwrap();
    // Turn it into a version 1 block: raw index, version 1 in header and meta.
    let block_dir = dir.path().join("blocks").join(&meta.ulid);
    let compressed = std::fs::read(block_dir.join("index")).unwrap();
    let mut raw = codec::frame::decompress_frame(&compressed, 1 << 30).unwrap();
    raw[4] = 1;
    let body_end = raw.len() - 8;
    let crc = super::writer::crc32c_of(&raw[..body_end]);
    raw[body_end..body_end + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(block_dir.join("index"), &raw).unwrap();
    let mut m = meta.clone();
    m.version = 1;
    std::fs::write(block_dir.join("meta.json"), serde_json::to_vec(&m).unwrap()).unwrap();

    let b = BlockReader::open(store, &format!("blocks/{}", meta.ulid)).unwrap();
    let (labels, chunks) = b.series(0).unwrap();
    assert_eq!(labels, l);
    let mut got = Vec::new();
    let mut cache = FrameCache::default();
    for c in &chunks {
        b.read_chunk(c, &mut cache, 0, i64::MAX, &mut got).unwrap();
    }
    assert_eq!(got, s);
}

#[test]
fn each_chunk_window_has_its_own_frames_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlockStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
    // 6 h of 15 s samples (three 2-hour windows), enough series for several frames per window.
    let mut all: Vec<(Labels, Vec<Sample>)> = (0..400)
        .map(|i| {
            let labels = Labels::from_pairs(&[("__name__", "m"), ("i", &format!("{i:04}"))]);
            let samples = (0..1440)
                .map(|k| Sample::new(k * 15_000, ((i * 7919 + k as usize * 104_729) % 100_003) as f64 * 0.37))
                .collect();
            (labels, samples)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let symbols: Vec<String> = all
        .iter()
        .flat_map(|(l, _)| {
            l.iter()
                .flat_map(|l| [l.name.clone(), l.value.clone()])
                .collect::<Vec<_>>()
        })
        .collect();
    let mut w = BlockWriter::new(&*store, "blocks", symbols).unwrap();
    for (l, s) in &all {
        w.add_series(l, s).unwrap();
    }
    let meta = w.finish(BlockCompaction::default()).unwrap().unwrap();
    assert_eq!(meta.version, super::FORMAT_VERSION);
    let b = BlockReader::open(Arc::clone(&store), &format!("blocks/{}", meta.ulid)).unwrap();
    let window = |t: i64| t.div_euclid(super::writer::BLOCK_CHUNK_RANGE_MS);
    let mut frame_windows: std::collections::HashMap<usize, i64> = std::collections::HashMap::new();
    let mut went_back = false;
    let mut cache = FrameCache::default();
    for (id, (labels, want)) in all.iter().enumerate() {
        let (got_labels, chunks) = b.series(id as u64).unwrap();
        assert_eq!(&got_labels, labels);
        assert_eq!(chunks.len(), 3);
        went_back |= chunks.windows(2).any(|c| c[1].frame < c[0].frame);
        let mut got = Vec::new();
        for c in &chunks {
            // Every frame holds chunks of one window only.
            assert_eq!(
                *frame_windows.entry(c.frame).or_insert(window(c.min_t)),
                window(c.min_t)
            );
            b.read_chunk(c, &mut cache, 0, i64::MAX, &mut got).unwrap();
        }
        assert_eq!(&got, want);
        // A range inside the last window reads only that window's chunk, in range.
        let mut tail = Vec::new();
        let last = chunks.last().unwrap();
        b.read_chunk(last, &mut cache, 21_000_000, 21_500_000, &mut tail)
            .unwrap();
        let want_tail: Vec<Sample> = want
            .iter()
            .filter(|s| s.t >= 21_000_000 && s.t <= 21_500_000)
            .copied()
            .collect();
        assert_eq!(tail, want_tail);
    }
    assert!(frame_windows.len() > 3, "several frames per window");
    assert!(
        went_back,
        "some series' frame numbers go down from one window to the next"
    );
}
