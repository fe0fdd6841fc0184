//! Decompressed chunk frames shared by all queries of the process.
//!
//! Blocks keep their chunks in zstd frames of about 64 KiB
//! (`docs/format/block.md`). A dashboard asks the same queries every few
//! seconds, and each one would decompress the same recent frames again;
//! this cache keeps the most recently used decompressed frames up to a byte
//! budget, so a repeated query pays a map lookup per frame instead.
//!
//! Keys are a block reader's process-unique id and a frame number. Ids are
//! never reused, so frames of a block that compaction replaced are never
//! served again: they age out like any other entry. The map is split in
//! shards, each with its own lock and an equal share of the budget; the
//! least recently used entry of a shard goes first.
//!
//! Compaction and other whole-block reads do not go through this cache: they
//! would push the frames queries need out of it.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default budget of [`SharedFrameCache`]: a day of recent data for a few
/// thousand series, or the last hours of some ten thousand.
pub const DEFAULT_FRAME_CACHE_BYTES: usize = 64 << 20;

const SHARDS: usize = 8;

/// (block reader id, frame number).
type Key = (u64, usize);

/// A byte-bounded cache of decompressed frames, shared by every database of
/// a process ([`crate::DbOptions::frame_cache`]). A budget of 0 disables it.
pub struct SharedFrameCache {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    clock: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Key, Entry>,
    bytes: usize,
}

struct Entry {
    frame: Arc<Vec<u8>>,
    /// [`SharedFrameCache::clock`] at the last lookup or insertion.
    used: u64,
}

/// Counters of a [`SharedFrameCache`], for self-monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCacheStats {
    /// Lookups that found the frame.
    pub hits: u64,
    /// Lookups that did not (the frame was then read and decompressed).
    pub misses: u64,
    /// Decompressed bytes held now.
    pub bytes: usize,
    /// Frames held now.
    pub frames: usize,
}

impl SharedFrameCache {
    /// A cache holding at most about `budget_bytes` of decompressed frames.
    pub fn new(budget_bytes: usize) -> Self {
        SharedFrameCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: budget_bytes / SHARDS,
            clock: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Tells whether the cache can hold anything.
    pub(crate) fn is_enabled(&self) -> bool {
        self.shard_budget > 0
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        // Frames of one block spread over the shards; ids mix in so that
        // frame 0 of every block does not land in the same one.
        let h = key.0.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (key.1 as u64);
        &self.shards[(h % SHARDS as u64) as usize]
    }

    /// The frame, if held.
    pub(crate) fn get(&self, reader: u64, frame: usize) -> Option<Arc<Vec<u8>>> {
        let key = (reader, frame);
        let mut shard = self.shard(key).lock();
        match shard.entries.get_mut(&key) {
            Some(e) => {
                e.used = self.clock.fetch_add(1, Ordering::Relaxed);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&e.frame))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Adds a frame, evicting the least recently used ones of its shard
    /// beyond the budget. Frames larger than a shard's budget are not kept.
    pub(crate) fn insert(&self, reader: u64, frame: usize, data: Arc<Vec<u8>>) {
        let len = data.len();
        if len > self.shard_budget {
            return;
        }
        let key = (reader, frame);
        let used = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(key).lock();
        if let Some(old) = shard.entries.insert(key, Entry { frame: data, used }) {
            shard.bytes -= old.frame.len();
        }
        shard.bytes += len;
        while shard.bytes > self.shard_budget {
            // A shard holds some hundreds of frames: a scan is cheaper than
            // the decompression that brought the frame in.
            let Some(oldest) = shard.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) else {
                break;
            };
            if let Some(e) = shard.entries.remove(&oldest) {
                shard.bytes -= e.frame.len();
            }
        }
    }

    /// Hits, misses and what is held now.
    pub fn stats(&self) -> FrameCacheStats {
        let (mut bytes, mut frames) = (0, 0);
        for s in &self.shards {
            let s = s.lock();
            bytes += s.bytes;
            frames += s.entries.len();
        }
        FrameCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes,
            frames,
        }
    }
}

impl std::fmt::Debug for SharedFrameCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFrameCache")
            .field("budget_bytes", &(self.shard_budget * SHARDS))
            .field("stats", &self.stats())
            .finish()
    }
}

/// Gives each opened block reader its cache id.
pub(crate) fn next_reader_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize, byte: u8) -> Arc<Vec<u8>> {
        Arc::new(vec![byte; len])
    }

    #[test]
    fn hits_after_insert_and_counts() {
        let c = SharedFrameCache::new(1 << 20);
        assert!(c.get(1, 0).is_none());
        c.insert(1, 0, frame(100, 7));
        assert_eq!(c.get(1, 0).as_deref(), Some(&vec![7u8; 100]));
        assert!(c.get(2, 0).is_none(), "another reader's frame 0 is another key");
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.bytes, s.frames), (1, 2, 100, 1));
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        // One shard's budget is 1000 bytes; frames of 400 bytes of one reader
        // that land in the same shard.
        let c = SharedFrameCache::new(1000 * SHARDS);
        let same_shard: Vec<usize> = (0..1000)
            .filter(|f| std::ptr::eq(c.shard((9, *f)), c.shard((9, 0))))
            .take(3)
            .collect();
        let [a, b, d] = [same_shard[0], same_shard[1], same_shard[2]];
        c.insert(9, a, frame(400, 1));
        c.insert(9, b, frame(400, 2));
        assert!(c.get(9, a).is_some(), "a is now more recent than b");
        c.insert(9, d, frame(400, 3));
        assert!(c.get(9, b).is_none(), "b was the least recently used");
        assert!(c.get(9, a).is_some());
        assert!(c.get(9, d).is_some());
        assert!(c.stats().bytes <= 1000 * SHARDS);
    }

    #[test]
    fn disabled_and_oversized() {
        let c = SharedFrameCache::new(0);
        assert!(!c.is_enabled());
        c.insert(1, 0, frame(1, 0));
        assert!(c.get(1, 0).is_none());
        let c = SharedFrameCache::new(SHARDS * 10);
        c.insert(1, 0, frame(11, 0));
        assert_eq!(c.stats().frames, 0, "a frame above a shard's budget is not kept");
    }

    #[test]
    fn reinserting_a_key_keeps_the_byte_count() {
        let c = SharedFrameCache::new(1 << 20);
        c.insert(1, 1, frame(100, 0));
        c.insert(1, 1, frame(50, 0));
        assert_eq!(c.stats().bytes, 50);
    }
}
