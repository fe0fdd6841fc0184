//! The head: the in-memory part of a [`crate::Db`] holding the most recent
//! samples of every active series, before they are cut into a block.
//!
//! Design constraints:
//! - Memory per active series stays well under 1 KiB: labels are packed into
//!   one allocation ([`crate::packed`]), in-order samples go into Prometheus
//!   XOR chunks of at most [`MAX_CHUNK_SAMPLES`] samples, closed chunks move
//!   to files ([`chunk_file`]), and a chunk never spans a block-range
//!   boundary, so cutting a block takes whole chunks.
//! - In-order samples (newer than the series' last one, and not older than
//!   [`Head::min_inorder_t`]) are appended to the open chunk. Others within
//!   the out-of-order window go to a small sorted per-series buffer.
//! - A series is only ever visible once its `Series` record is in the WAL;
//!   removal marks it `removed` under its lock so that a racing appender
//!   retries with a fresh series instead of writing into a dead one.
//! - The head never refuses to answer a query while a block is being cut:
//!   cutting copies data out first and drops it only once the block is
//!   durable ([`Head::begin_cut`] then [`Head::finish_cut`]).

pub(crate) mod chunk_file;
pub(crate) mod ref_list;
pub(crate) mod series;

pub(crate) use chunk_file::HeadChunks;
use ref_list::RefList;
pub(crate) use series::{MemSeries, SeriesData};

use crate::packed;
use crate::postings::{self, PostingsSource};
use ahash::{AHashMap, AHashSet};
use model::{Labels, Matcher};
use parking_lot::RwLock;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// Which `u64` field of a series keys a [`SeriesMap`].
pub(crate) trait SeriesKey {
    fn key(s: &MemSeries) -> &u64;
}

/// Keys a [`SeriesMap`] by series ref.
pub(crate) struct ByRef;
impl SeriesKey for ByRef {
    fn key(s: &MemSeries) -> &u64 {
        &s.series_ref
    }
}

/// Keys a [`SeriesMap`] by label-set hash.
pub(crate) struct ByHash;
impl SeriesKey for ByHash {
    fn key(s: &MemSeries) -> &u64 {
        &s.hash
    }
}

struct Keyed<K>(Arc<MemSeries>, PhantomData<K>);

impl<K: SeriesKey> Borrow<u64> for Keyed<K> {
    fn borrow(&self) -> &u64 {
        K::key(&self.0)
    }
}

impl<K: SeriesKey> Hash for Keyed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        K::key(&self.0).hash(state)
    }
}

impl<K: SeriesKey> PartialEq for Keyed<K> {
    fn eq(&self, other: &Self) -> bool {
        K::key(&self.0) == K::key(&other.0)
    }
}

impl<K: SeriesKey> Eq for Keyed<K> {}

/// Series keyed by one of their own `u64` fields: a slot holds only the
/// `Arc` (8 bytes) rather than key and `Arc` (16), about 16 bytes less per
/// series and map at the hash table's usual load.
pub(crate) struct SeriesMap<K> {
    set: AHashSet<Keyed<K>>,
}

impl<K> Default for SeriesMap<K> {
    fn default() -> Self {
        SeriesMap { set: AHashSet::new() }
    }
}

impl<K: SeriesKey> SeriesMap<K> {
    pub(crate) fn get(&self, key: &u64) -> Option<&Arc<MemSeries>> {
        self.set.get(key).map(|k| &k.0)
    }

    /// Inserts `series` under `key` (which must be its key field), replacing any other.
    pub(crate) fn insert(&mut self, key: u64, series: Arc<MemSeries>) {
        debug_assert_eq!(key, *K::key(&series));
        self.set.replace(Keyed(series, PhantomData));
    }

    pub(crate) fn remove(&mut self, key: &u64) -> Option<Arc<MemSeries>> {
        self.set.take(key).map(|k| k.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &u64> {
        self.set.iter().map(|k| K::key(&k.0))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<MemSeries>> {
        self.set.iter().map(|k| &k.0)
    }
}

/// The series of the head and their label index.
#[derive(Default)]
pub(crate) struct SeriesIndex {
    by_ref: SeriesMap<ByRef>,
    /// Label-set hash to the series (not its ref: one probe less on the
    /// append path); a second series with the same hash goes to
    /// `collisions` (rare: 64-bit hashes).
    by_hash: SeriesMap<ByHash>,
    collisions: AHashMap<u64, Vec<u64>>,
    /// name → value → sorted series refs.
    postings: AHashMap<Box<str>, BTreeMap<Box<str>, RefList>>,
}

impl SeriesIndex {
    fn lookup(&self, hash: u64, packed: &[u8]) -> Option<&Arc<MemSeries>> {
        let first = self.by_hash.get(&hash)?;
        if *first.labels == *packed {
            return Some(first);
        }
        self.collisions
            .get(&hash)?
            .iter()
            .filter_map(|r| self.by_ref.get(r))
            .find(|s| &*s.labels == packed)
    }

    fn insert(&mut self, hash: u64, series: Arc<MemSeries>) {
        let r = series.series_ref;
        for (name, value) in packed::pairs(&series.labels) {
            let values = self.postings.entry(name.into()).or_default();
            let list = match values.get_mut(value) {
                Some(l) => l,
                None => values.entry(value.into()).or_default(),
            };
            list.insert(r);
        }
        if self.by_hash.get(&hash).is_none() {
            self.by_hash.insert(hash, Arc::clone(&series));
        } else {
            self.collisions.entry(hash).or_default().push(r);
        }
        self.by_ref.insert(r, series);
    }

    /// Removes series in bulk; postings lists are rewritten once.
    fn remove(&mut self, refs: &[u64]) {
        if refs.is_empty() {
            return;
        }
        let gone: ahash::AHashSet<u64> = refs.iter().copied().collect();
        for r in refs {
            if let Some(s) = self.by_ref.remove(r) {
                let hash = s.hash;
                if self.by_hash.get(&hash).is_some_and(|s| s.series_ref == *r) {
                    self.by_hash.remove(&hash);
                    // Promote a colliding series, if any.
                    if let Some(list) = self.collisions.get_mut(&hash) {
                        while let Some(next) = list.pop() {
                            if let Some(s) = self.by_ref.get(&next) {
                                self.by_hash.insert(hash, Arc::clone(s));
                                break;
                            }
                        }
                        if list.is_empty() {
                            self.collisions.remove(&hash);
                        }
                    }
                } else if let Some(list) = self.collisions.get_mut(&hash) {
                    list.retain(|x| x != r);
                    if list.is_empty() {
                        self.collisions.remove(&hash);
                    }
                }
            }
        }
        self.postings.retain(|_, values| {
            values.retain(|_, list| {
                list.retain_and_shrink(|r| !gone.contains(&r));
                !list.is_empty()
            });
            !values.is_empty()
        });
    }
}

impl SeriesIndex {
    /// name → value → refs, for statistics.
    pub(crate) fn postings_map(&self) -> &AHashMap<Box<str>, BTreeMap<Box<str>, RefList>> {
        &self.postings
    }

    pub(crate) fn num_series(&self) -> usize {
        self.by_ref.len()
    }
}

impl PostingsSource for SeriesIndex {
    fn all_postings(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.by_ref.keys().copied().collect();
        all.sort_unstable();
        all
    }

    fn postings(&self, name: &str, value: &str) -> Vec<u64> {
        self.postings
            .get(name)
            .and_then(|v| v.get(value))
            .map(RefList::to_vec)
            .unwrap_or_default()
    }

    fn label_values(&self, name: &str) -> Vec<String> {
        self.postings
            .get(name)
            .map(|v| v.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }
}

/// The in-memory head of one tenant's database.
pub(crate) struct Head {
    pub(crate) index: RwLock<SeriesIndex>,
    next_ref: AtomicU64,
    /// Largest timestamp appended so far (i64::MIN when empty).
    pub(crate) max_t: AtomicI64,
    /// Smallest in-order timestamp held (i64::MAX when empty).
    pub(crate) min_t: AtomicI64,
    /// In-order appends below this go to the out-of-order buffer: the range
    /// below has been (or is being) cut into a block.
    pub(crate) min_inorder_t: AtomicI64,
    /// Chunks never span a multiple of this many milliseconds.
    pub(crate) chunk_range: i64,
    /// Where closed chunks are kept.
    pub(crate) chunks: HeadChunks,
}

impl Head {
    pub(crate) fn new(chunk_range: i64, chunks: HeadChunks) -> Self {
        Head {
            index: RwLock::new(SeriesIndex::default()),
            next_ref: AtomicU64::new(1),
            max_t: AtomicI64::new(i64::MIN),
            min_t: AtomicI64::new(i64::MAX),
            min_inorder_t: AtomicI64::new(i64::MIN),
            chunk_range,
            chunks,
        }
    }

    /// Number of series in the head.
    pub(crate) fn num_series(&self) -> usize {
        self.index.read().by_ref.len()
    }

    /// Finds series by label set, under one acquisition of the index lock.
    pub(crate) fn get_many<'a>(
        &self,
        keys: impl ExactSizeIterator<Item = (u64, &'a [u8])>,
    ) -> Vec<Option<Arc<MemSeries>>> {
        let mut out = Vec::with_capacity(keys.len());
        let index = self.index.read();
        out.extend(keys.map(|(hash, packed)| index.lookup(hash, packed).cloned()));
        out
    }

    /// Creates the series that do not exist yet, under the index write lock.
    /// `log` is called with the new series before any of them becomes
    /// visible (it writes their WAL record); if it fails, nothing is created.
    pub(crate) fn get_or_create<E>(
        &self,
        wanted: &[(u64, &[u8])],
        log: impl FnOnce(&[(u64, &[u8])]) -> Result<(), E>,
    ) -> Result<Vec<Arc<MemSeries>>, E> {
        let mut index = self.index.write();
        let mut created: Vec<Arc<MemSeries>> = Vec::new();
        let mut out = Vec::with_capacity(wanted.len());
        for &(hash, packed) in wanted {
            if let Some(s) = index.lookup(hash, packed) {
                out.push(Arc::clone(s));
                continue;
            }
            if let Some(s) = created.iter().find(|s| s.hash == hash && &*s.labels == packed) {
                out.push(Arc::clone(s));
                continue;
            }
            let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
            let s = Arc::new(MemSeries::new(r, hash, packed.into()));
            created.push(Arc::clone(&s));
            out.push(s);
        }
        if !created.is_empty() {
            let records: Vec<(u64, &[u8])> = created.iter().map(|s| (s.series_ref, &*s.labels)).collect();
            log(&records)?;
            for s in created {
                index.insert(s.hash, s);
            }
        }
        Ok(out)
    }

    /// Inserts a series with a known ref during replay. Returns the series now
    /// holding these labels (an existing one wins).
    pub(crate) fn insert_replayed(&self, series_ref: u64, packed: &[u8]) -> Arc<MemSeries> {
        let hash = model_hash(packed);
        let mut index = self.index.write();
        if let Some(s) = index.lookup(hash, packed) {
            return Arc::clone(s);
        }
        if let Some(s) = index.by_ref.get(&series_ref) {
            // The ref is taken by other labels: should not happen, keep both apart.
            tracing::warn!(series_ref, existing = %packed::unpack(&s.labels), "WAL series ref reused; renumbering");
            let r = self.next_ref.fetch_add(1, Ordering::Relaxed);
            let s = Arc::new(MemSeries::new(r, hash, packed.into()));
            index.insert(hash, Arc::clone(&s));
            return s;
        }
        self.next_ref.fetch_max(series_ref + 1, Ordering::Relaxed);
        let s = Arc::new(MemSeries::new(series_ref, hash, packed.into()));
        index.insert(hash, Arc::clone(&s));
        s
    }

    /// Records that samples up to `t` were appended.
    pub(crate) fn observe(&self, min_t: i64, max_t: i64) {
        self.max_t.fetch_max(max_t, Ordering::Relaxed);
        self.min_t.fetch_min(min_t, Ordering::Relaxed);
    }

    /// Series matching `matchers`, sorted by labels.
    pub(crate) fn select_series(&self, matchers: &[Matcher]) -> Vec<Arc<MemSeries>> {
        let index = self.index.read();
        let refs = postings::select_postings(&*index, matchers);
        let mut out: Vec<Arc<MemSeries>> = refs.iter().filter_map(|r| index.by_ref.get(r).cloned()).collect();
        drop(index);
        out.sort_by(|a, b| packed::cmp(&a.labels, &b.labels));
        out
    }

    /// Label names present in the head, sorted.
    pub(crate) fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.index.read().postings.keys().map(|k| k.to_string()).collect();
        names.sort_unstable();
        names
    }

    /// Values of label `name` in the head, sorted.
    pub(crate) fn label_values(&self, name: &str) -> Vec<String> {
        self.index.read().label_values(name)
    }

    /// All series, in no particular order.
    pub(crate) fn all_series(&self) -> Vec<Arc<MemSeries>> {
        self.index.read().by_ref.values().cloned().collect()
    }

    /// Phase one of cutting a block: from now on in-order appends below
    /// `boundary` go to the out-of-order buffers; returns every series.
    /// The caller then copies each series' data below `boundary` with
    /// [`SeriesData::take_for_cut`].
    pub(crate) fn begin_cut(&self, boundary: i64) -> Vec<Arc<MemSeries>> {
        self.min_inorder_t.fetch_max(boundary, Ordering::SeqCst);
        self.all_series()
    }

    /// Phase two: the block holding everything below `boundary` is durable;
    /// drop that data and the series left empty.
    pub(crate) fn finish_cut(&self, boundary: i64) -> usize {
        let mut empty = Vec::new();
        let mut min_t = i64::MAX;
        for s in self.all_series() {
            let mut data = s.data.lock();
            data.drop_cut(boundary, &self.chunks);
            match data.min_time() {
                None => {
                    data.removed = true;
                    empty.push(s.series_ref);
                }
                Some(t) => min_t = min_t.min(t),
            }
        }
        let removed = empty.len();
        let mut index = self.index.write();
        index.remove(&empty);
        // Give the postings' growth slack back once per cut.
        for values in index.postings.values_mut() {
            for list in values.values_mut() {
                list.shrink_slack();
            }
        }
        drop(index);
        self.min_t.store(min_t.max(boundary), Ordering::Relaxed);
        if min_t == i64::MAX {
            self.min_t.store(i64::MAX, Ordering::Relaxed);
        }
        removed
    }
}

/// The in-memory hash of a packed label set (fixed seeds: the same in every run).
pub(crate) fn model_hash(packed: &[u8]) -> u64 {
    ahash::RandomState::with_seeds(0x6861_6574, 0x6165, 0x7473, 0x6462).hash_one(packed)
}

/// The packed label sets of a batch in one buffer, with their hashes: one
/// allocation per batch instead of one per series.
pub(crate) struct PackedBatch {
    buf: Vec<u8>,
    /// `(hash, end offset in buf)` per label set; each starts where the previous ends.
    items: Vec<(u64, usize)>,
}

impl PackedBatch {
    pub(crate) fn new<'a>(sets: impl ExactSizeIterator<Item = &'a Labels>) -> Self {
        let mut items = Vec::with_capacity(sets.len());
        let mut buf = Vec::with_capacity(sets.len() * 96);
        for labels in sets {
            let start = buf.len();
            packed::pack_into(labels, &mut buf);
            items.push((model_hash(&buf[start..]), buf.len()));
        }
        PackedBatch { buf, items }
    }

    /// The hash and packed form of the `i`th label set.
    pub(crate) fn get(&self, i: usize) -> (u64, &[u8]) {
        let start = if i == 0 { 0 } else { self.items[i - 1].1 };
        let (hash, end) = self.items[i];
        (hash, &self.buf[start..end])
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (u64, &[u8])> {
        (0..self.len()).map(|i| self.get(i))
    }
}
