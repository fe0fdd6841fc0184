use super::*;

fn replay(dir: &Path) -> (Vec<Vec<u8>>, SegmentReadStats) {
    let mut out = Vec::new();
    let stats = read_records::<WalError>(dir, 0, |r| {
        out.push(r.to_vec());
        Ok(())
    })
    .unwrap();
    (out, stats)
}

#[test]
fn frame_layout_is_len_crc_payload() {
    let mut out = vec![0xAA];
    frame_record(b"hi", &mut out).unwrap();
    assert_eq!(out[0], 0xAA, "prefix untouched");
    assert_eq!(&out[1..5], &[2, 0, 0, 0]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[2, 0, 0, 0]), b"hi");
    assert_eq!(&out[5..9], &crc.to_le_bytes());
    assert_eq!(&out[9..], b"hi");
}

#[test]
fn append_replay_rotate_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 64,
            fsync: FsyncPolicy::Always,
        },
    )
    .unwrap();
    for i in 0..20u8 {
        wal.commit(&[&[i; 10]]).unwrap();
    }
    assert!(wal.current_segment() > 2, "small segments rotate");
    let (records, stats) = replay(dir.path());
    assert_eq!(records.len(), 20);
    assert_eq!(records[7], vec![7u8; 10]);
    assert_eq!(stats.truncated_at, None);
    let cut = wal.rotate().unwrap();
    wal.truncate_before(cut).unwrap();
    assert_eq!(replay(dir.path()).0.len(), 0);
    assert!(wal.stats().fsyncs.load(Ordering::Relaxed) > 0);
}

#[test]
fn torn_tail_is_truncated_and_later_segments_removed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.commit(&[b"one", b"two"]).unwrap();
        wal.commit(&[b"three"]).unwrap();
    }
    // Simulate a torn write: half a record at the end of segment 0, then a later segment.
    let seg0 = segment_path(dir.path(), 0);
    let mut f = OpenOptions::new().append(true).open(&seg0).unwrap();
    let mut torn = Vec::new();
    frame_record(b"four-is-torn", &mut torn).unwrap();
    f.write_all(&torn[..torn.len() - 3]).unwrap();
    drop(f);
    std::fs::write(segment_path(dir.path(), 1), b"garbage after the corrupt one").unwrap();
    let (records, stats) = replay(dir.path());
    assert_eq!(records, vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
    assert_eq!(stats.truncated_at.map(|t| t.0), Some(0));
    assert_eq!(stats.num_removed_segments, 1);
    // A second replay sees a clean log.
    let (again, stats) = replay(dir.path());
    assert_eq!(again.len(), 3);
    assert_eq!(stats.truncated_at, None);
    // And the WAL opens after it and keeps appending.
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    wal.commit(&[b"five"]).unwrap();
    assert_eq!(replay(dir.path()).0.len(), 4);
}

#[test]
fn zero_filled_tail_is_not_a_record() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.commit(&[b"x"]).unwrap();
    }
    let seg0 = segment_path(dir.path(), 0);
    let mut f = OpenOptions::new().append(true).open(&seg0).unwrap();
    f.write_all(&[0u8; 4096]).unwrap();
    drop(f);
    let (records, stats) = replay(dir.path());
    assert_eq!(records.len(), 1);
    assert!(stats.truncated_at.is_some());
}

proptest::proptest! {
    #[test]
    fn corrupting_any_byte_never_yields_a_wrong_record(
        payloads in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 1..40), 1..10),
        flip in proptest::num::usize::ANY,
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
            for p in &payloads { wal.commit(&[p]).unwrap(); }
        }
        let seg0 = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&seg0).unwrap();
        let i = flip % bytes.len();
        bytes[i] ^= 0x5a;
        std::fs::write(&seg0, &bytes).unwrap();
        let (records, _) = replay(dir.path());
        // Whatever survives is an exact prefix of what was written.
        proptest::prop_assert!(records.len() < payloads.len() || records == payloads);
        for (r, p) in records.iter().zip(&payloads) { proptest::prop_assert_eq!(r, p); }
    }
}
