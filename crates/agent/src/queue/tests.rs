use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

fn batch(id: u32, len: usize) -> Batch {
    let mut body = id.to_le_bytes().to_vec();
    body.resize(len.max(4), 0xab);
    Batch {
        num_samples: id % 7 + 1,
        body,
    }
}

fn ack_next(q: &mut DiskQueue) -> Batch {
    let (id, b) = q.peek().unwrap().unwrap();
    q.ack(id).unwrap();
    b
}

fn id_of(b: &Batch) -> u32 {
    u32::from_le_bytes([b.body[0], b.body[1], b.body[2], b.body[3]])
}

#[test]
fn fifo_with_acks_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(dir.path(), QueueOptions::default()).unwrap();
    assert_eq!(q.peek().unwrap(), None);
    for i in 0..5 {
        q.push(&batch(i, 100)).unwrap();
    }
    assert_eq!(id_of(&q.peek().unwrap().unwrap().1), 0);
    let (id, b) = q.peek().unwrap().unwrap();
    assert_eq!(id_of(&b), 0);
    q.ack(id).unwrap();
    q.ack(id).unwrap(); // acking twice is a no-op
    assert_eq!(id_of(&q.peek().unwrap().unwrap().1), 1);
    ack_next(&mut q);
    assert_eq!(id_of(&q.peek().unwrap().unwrap().1), 2);
    drop(q);
    let mut q = DiskQueue::open(dir.path(), QueueOptions::default()).unwrap();
    assert_eq!(q.pending_batches(), 3);
    for want in 2..5 {
        assert_eq!(id_of(&ack_next(&mut q)), want);
    }
    assert_eq!(q.peek().unwrap(), None);
    q.push(&batch(9, 10)).unwrap();
    assert_eq!(id_of(&q.peek().unwrap().unwrap().1), 9);
}

#[test]
fn full_queue_drops_oldest_and_counts_samples() {
    let dir = tempfile::tempdir().unwrap();
    let opts = QueueOptions {
        max_bytes: 4096,
        segment_size: 1024,
    };
    let mut q = DiskQueue::open(dir.path(), opts).unwrap();
    let mut pushed_samples = 0u64;
    for i in 0..100 {
        let b = batch(i, 200);
        pushed_samples += u64::from(b.num_samples);
        q.push(&b).unwrap();
        assert!(q.disk_bytes() <= 4096, "{} bytes", q.disk_bytes());
    }
    let dropped = q.stats().dropped_samples.load(Ordering::Relaxed);
    assert!(dropped > 0);
    let mut delivered = 0u64;
    let mut last = None;
    while let Some((batch_id, b)) = q.peek().unwrap() {
        let id = id_of(&b);
        assert!(
            last.is_none_or(|l| id == l + 1),
            "delivery is contiguous after the drop"
        );
        last = Some(id);
        delivered += u64::from(b.num_samples);
        q.ack(batch_id).unwrap();
    }
    assert_eq!(last, Some(99), "the newest data is kept");
    assert_eq!(delivered + dropped, pushed_samples);
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 4096 + 40, "{on_disk}");
}

#[test]
fn oversized_batch_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(dir.path(), QueueOptions::with_max_bytes(100)).unwrap();
    q.push(&batch(3, 500)).unwrap();
    assert_eq!(q.stats().dropped_samples.load(Ordering::Relaxed), 4);
    assert_eq!(q.peek().unwrap(), None);
}

#[test]
fn ack_of_a_batch_dropped_while_in_flight_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let opts = QueueOptions {
        max_bytes: 1000,
        segment_size: 250,
    };
    let mut q = DiskQueue::open(dir.path(), opts).unwrap();
    q.push(&batch(0, 200)).unwrap();
    let (in_flight, b) = q.peek().unwrap().unwrap();
    assert_eq!(id_of(&b), 0);
    for i in 1..6 {
        q.push(&batch(i, 200)).unwrap(); // drops batch 0 and more
    }
    q.ack(in_flight).unwrap();
    let (_, next) = q.peek().unwrap().unwrap();
    assert!(id_of(&next) > 0, "a dropped batch is not delivered");
    let pending_before = q.pending_batches();
    q.ack(in_flight).unwrap();
    assert_eq!(
        q.pending_batches(),
        pending_before,
        "a stale ack acknowledges nothing else"
    );
}

#[test]
fn torn_tail_is_repaired_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut q = DiskQueue::open(dir.path(), QueueOptions::default()).unwrap();
        q.push(&batch(1, 50)).unwrap();
        q.push(&batch(2, 50)).unwrap();
    }
    let last = *wal::list_segments(dir.path()).unwrap().last().unwrap();
    let path = wal::segment_path(dir.path(), last);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    let mut q = DiskQueue::open(dir.path(), QueueOptions::default()).unwrap();
    assert_eq!(id_of(&ack_next(&mut q)), 1);
    assert_eq!(q.peek().unwrap(), None);
}

#[test]
fn corrupt_record_skips_rest_of_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut q = DiskQueue::open(dir.path(), QueueOptions::default()).unwrap();
    q.push(&batch(1, 50)).unwrap();
    q.push(&batch(2, 50)).unwrap();
    let seg = q.wal.current_segment();
    let path = wal::segment_path(dir.path(), seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 5] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(id_of(&ack_next(&mut q)), 1);
    assert_eq!(q.peek().unwrap(), None);
    assert_eq!(q.stats().dropped_batches.load(Ordering::Relaxed), 1);
    q.push(&batch(3, 50)).unwrap();
    assert_eq!(id_of(&q.peek().unwrap().unwrap().1), 3);
}

#[derive(Debug, Clone)]
enum Op {
    Push(usize),
    Peek,
    Ack,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..400).prop_map(Op::Push),
        2 => Just(Op::Peek),
        3 => Just(Op::Ack),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Without hitting the cap, the queue behaves exactly as a VecDeque,
    /// across restarts.
    #[test]
    fn behaves_like_a_vecdeque(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = QueueOptions { max_bytes: 1 << 30, segment_size: 700 };
        let mut q = DiskQueue::open(dir.path(), opts).unwrap();
        let mut model: VecDeque<Batch> = VecDeque::new();
        let mut next_id = 0;
        for op in ops {
            match op {
                Op::Push(len) => {
                    let b = batch(next_id, len);
                    next_id += 1;
                    q.push(&b).unwrap();
                    model.push_back(b);
                }
                Op::Peek => prop_assert_eq!(q.peek().unwrap().map(|(_, b)| b), model.front().cloned()),
                Op::Ack => {
                    if model.pop_front().is_some() {
                        ack_next(&mut q);
                    }
                }
                Op::Reopen => {
                    drop(q);
                    q = DiskQueue::open(dir.path(), opts).unwrap();
                }
            }
            prop_assert_eq!(q.pending_batches(), model.len());
        }
    }

    /// With a small cap, every pushed sample is delivered once or counted as
    /// dropped, delivery keeps append order, and the files stay under the cap.
    #[test]
    fn capped_queue_accounts_for_every_sample(ops in prop::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = QueueOptions { max_bytes: 2000, segment_size: 500 };
        let mut q = DiskQueue::open(dir.path(), opts).unwrap();
        let mut pushed = 0u64;
        let mut delivered = 0u64;
        let mut dropped_before = 0u64;
        let mut last_id: Option<u32> = None;
        let mut next_id = 0;
        for op in ops {
            match op {
                Op::Push(len) => {
                    let b = batch(next_id, len);
                    next_id += 1;
                    pushed += u64::from(b.num_samples);
                    q.push(&b).unwrap();
                }
                Op::Peek => {}
                Op::Ack => {
                    if let Some((batch_id, b)) = q.peek().unwrap() {
                        let id = id_of(&b);
                        prop_assert!(last_id.is_none_or(|l| id > l));
                        last_id = Some(id);
                        delivered += u64::from(b.num_samples);
                        q.ack(batch_id).unwrap();
                    }
                }
                Op::Reopen => {
                    dropped_before += q.stats().dropped_samples.load(Ordering::Relaxed);
                    drop(q);
                    q = DiskQueue::open(dir.path(), opts).unwrap();
                }
            }
            prop_assert!(q.disk_bytes() <= opts.max_bytes);
            let dropped = dropped_before + q.stats().dropped_samples.load(Ordering::Relaxed);
            prop_assert_eq!(delivered + dropped + q.pending_samples(), pushed);
        }
    }
}
