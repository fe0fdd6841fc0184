//! The append path of a [`Db`]: samples addressed by labels ([`Db::append`],
//! remote write and the push protocols) or by series reference
//! ([`Db::append_by_ref`], scrape loops), into the head and the WAL.
//!
//! Design constraints:
//! - A series is created, and its `Series` WAL record written, before any
//!   sample of it is applied ([`Db::create_series`]).
//! - Samples of a series are applied under the series' lock, and
//!   [`crate::head::Head::min_inorder_t`] is read after taking it: a
//!   concurrent head cut either finds the sample in the chunk it copies or
//!   the sample goes to the out-of-order buffer.
//! - One `Samples` WAL record per call, written after the head is updated
//!   and synced per the fsync policy before the call returns.
//! - A [`SeriesRef`] issued by a database holds the series itself and the
//!   database's instance id. A ref of another database (another tenant, a
//!   reopened database) is not valid here and the labels given with it are
//!   used; a series dropped from the head after a cut (`removed`) is
//!   recreated from those labels and a new ref is handed back. So a caller
//!   never invalidates refs itself, and a stale ref costs one label lookup.

use crate::db::{now_ms, Db};
use crate::head::{model_hash, MemSeries, PackedBatch, SeriesData};
use crate::packed;
use crate::record::{self, RefSample};
use crate::TsdbError;
use model::{Labels, Sample};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use storage_api::{AppendReport, RefAppend, RejectReason, Rejection, SeriesRef, SeriesSamples};

/// What a [`SeriesRef`] issued by a [`Db`] holds.
struct HeadRef {
    /// The issuing database's [`Db::instance_id`].
    db_instance: u64,
    series: Arc<MemSeries>,
}

/// The bounds every sample of one append call is checked against.
struct Bounds {
    /// Older samples are refused: retention would delete them at once.
    min_valid: i64,
    /// Newer samples are too far in the future.
    max_valid: i64,
    /// The out-of-order window.
    window: i64,
}

/// What one append call stored and refused so far.
struct AppendState {
    wal_samples: Vec<RefSample>,
    min_t: i64,
    max_t: i64,
    report: AppendReport,
}

impl AppendState {
    fn with_capacity(num_samples: usize) -> Self {
        AppendState {
            wal_samples: Vec::with_capacity(num_samples),
            min_t: i64::MAX,
            max_t: i64::MIN,
            report: AppendReport::default(),
        }
    }

    fn accept(&mut self, series_ref: u64, s: Sample) {
        self.wal_samples.push(RefSample {
            series_ref,
            t: s.t,
            v: s.v,
        });
        self.min_t = self.min_t.min(s.t);
        self.max_t = self.max_t.max(s.t);
    }

    /// Counts a refused sample, grouped with recent refusals of the same series and reason.
    fn reject(&mut self, labels: &Labels, reason: RejectReason, t: i64) {
        let mut recent = self.report.rejected.iter_mut().rev().take(4);
        match recent.find(|r| r.reason == reason && r.labels == *labels) {
            Some(r) => r.num_samples += 1,
            None => self.report.rejected.push(Rejection {
                labels: labels.clone(),
                reason,
                num_samples: 1,
                first_t: t,
            }),
        }
    }
}

impl Db {
    /// Appends a batch. Accepted samples are in the WAL (and synced per the
    /// fsync policy) when this returns `Ok`; refused ones are in the report.
    pub fn append(&self, batch: Vec<SeriesSamples>) -> Result<AppendReport, TsdbError> {
        let bounds = self.bounds();
        let packed = PackedBatch::new(batch.iter().map(|s| &s.labels));
        let mut st = AppendState::with_capacity(batch.iter().map(|s| s.samples.len()).sum());
        let series = self.resolve_series(&packed, |i| (&batch[i].labels, &batch[i].samples[..]), &mut st.report)?;
        for (input, series) in batch.iter().zip(series) {
            let Some(series) = series else { continue };
            self.append_series(&series, &input.labels, &input.samples, &bounds, &mut st)?;
        }
        self.finish_append(st)
    }

    /// Appends one sample per entry, by the entry's ref when it is one of
    /// this database's and still valid, else by its labels; see
    /// [`storage_api::SampleAppender::append_by_ref`] for the contract.
    /// Pushes a ref to `new_refs` for every entry appended by labels.
    pub fn append_by_ref(
        &self,
        batch: &[RefAppend<'_>],
        new_refs: &mut Vec<(usize, SeriesRef)>,
    ) -> Result<AppendReport, TsdbError> {
        let bounds = self.bounds();
        let mut st = AppendState::with_capacity(batch.len());
        // Entries without a valid ref, found or created by labels in one go.
        let missing: Vec<usize> = (0..batch.len())
            .filter(|&i| self.own_series(batch[i].series_ref).is_none())
            .collect();
        let mut resolved = Vec::new();
        if !missing.is_empty() {
            let packed = PackedBatch::new(missing.iter().map(|&i| batch[i].labels));
            let info = |k: usize| {
                let e = &batch[missing[k]];
                (e.labels, std::slice::from_ref(&e.sample))
            };
            resolved = self.resolve_series(&packed, info, &mut st.report)?;
        }
        let mut resolved = resolved.into_iter();
        for (i, e) in batch.iter().enumerate() {
            let samples = std::slice::from_ref(&e.sample);
            let issue = match self.own_series(e.series_ref) {
                Some(series) => self.append_series(series, e.labels, samples, &bounds, &mut st)?,
                None => {
                    // `resolved` holds one item per entry of `missing`, in order.
                    let Some(Some(series)) = resolved.next() else { continue };
                    let recreated = self.append_series(&series, e.labels, samples, &bounds, &mut st)?;
                    Some(recreated.unwrap_or(series))
                }
            };
            if let Some(series) = issue {
                let series_ref = SeriesRef::new(Arc::new(HeadRef {
                    db_instance: self.instance_id,
                    series,
                }));
                match new_refs.last_mut() {
                    // A series recreated right after being resolved: the newest ref wins.
                    Some(last) if last.0 == i => last.1 = series_ref,
                    _ => new_refs.push((i, series_ref)),
                }
            }
        }
        self.finish_append(st)
    }

    /// The series behind `series_ref` if this database issued it.
    fn own_series<'a>(&self, series_ref: Option<&'a SeriesRef>) -> Option<&'a MemSeries> {
        let head_ref = series_ref?.downcast::<HeadRef>()?;
        (head_ref.db_instance == self.instance_id).then_some(&*head_ref.series)
    }

    fn bounds(&self) -> Bounds {
        let max_t = self.head.max_t.load(Ordering::Relaxed);
        let min_valid = if max_t == i64::MIN || self.opts.retention_ms <= 0 {
            i64::MIN
        } else {
            max_t.saturating_sub(self.opts.retention_ms.max(self.opts.out_of_order_window_ms))
        };
        Bounds {
            min_valid,
            max_valid: now_ms().saturating_add(self.opts.max_future_ms),
            window: self.opts.out_of_order_window_ms,
        }
    }

    /// Applies `samples` to `series` under its lock. If the series was
    /// dropped from the head meanwhile, it is recreated from `labels` and
    /// returned; the samples went there.
    fn append_series(
        &self,
        series: &MemSeries,
        labels: &Labels,
        samples: &[Sample],
        bounds: &Bounds,
        st: &mut AppendState,
    ) -> Result<Option<Arc<MemSeries>>, TsdbError> {
        let mut recreated: Option<Arc<MemSeries>> = None;
        loop {
            let target = recreated.as_deref().unwrap_or(series);
            let mut data = target.data.lock();
            if data.removed {
                // Dropped from the head while we were looking: make a new one.
                drop(data);
                let mut buf = Vec::with_capacity(labels.byte_size() + 2 * labels.len());
                packed::pack_into(labels, &mut buf);
                recreated = self.create_series(&[(model_hash(&buf), &buf)])?.pop();
                if recreated.is_none() {
                    return Err(TsdbError::Invalid("series creation returned nothing".into()));
                }
                continue;
            }
            let min_inorder = self.head.min_inorder_t.load(Ordering::Relaxed);
            for &s in samples {
                match self.apply_sample(&mut data, s, bounds, min_inorder) {
                    None => st.accept(target.series_ref, s),
                    Some(reason) => st.reject(labels, reason, s.t),
                }
            }
            drop(data);
            return Ok(recreated);
        }
    }

    /// Applies one sample to a locked series; `None` when it is stored (or
    /// is a harmless repeat of the last one).
    fn apply_sample(
        &self,
        data: &mut SeriesData,
        s: Sample,
        bounds: &Bounds,
        min_inorder: i64,
    ) -> Option<RejectReason> {
        if s.t > bounds.max_valid {
            return Some(RejectReason::TooFarInFuture);
        }
        if s.t < bounds.min_valid {
            return Some(RejectReason::TooOld);
        }
        match data.last_t() {
            Some(last) if s.t == last => {
                if data.last().map(|(_, v)| v.to_bits()) == Some(s.v.to_bits()) {
                    None
                } else {
                    Some(RejectReason::DuplicateTimestamp)
                }
            }
            // Out of order for its series: accepted within the window.
            Some(last) if s.t < last => self.append_late(data, s.t, s.v, bounds.window),
            None if data.newest_t().is_some_and(|n| s.t < n) => self.append_late(data, s.t, s.v, bounds.window),
            // In order for its series, but in a range already cut into a
            // block (a lagging writer): kept aside, flushed at the next cut.
            _ if s.t < min_inorder => self.append_ooo(data, s.t, s.v),
            _ => {
                data.append_in_order(s.t, s.v, self.head.chunk_range, &self.head.chunks);
                None
            }
        }
    }

    /// Writes the call's `Samples` record and updates the statistics.
    fn finish_append(&self, st: AppendState) -> Result<AppendReport, TsdbError> {
        let AppendState {
            wal_samples,
            min_t,
            max_t,
            mut report,
        } = st;
        if !wal_samples.is_empty() {
            let mut buf = Vec::with_capacity(wal_samples.len() * 12 + 16);
            record::encode_samples(&wal_samples, &mut buf);
            self.wal.commit(&[&buf])?;
            self.head.observe(min_t, max_t);
        }
        report.num_accepted = wal_samples.len();
        self.stats
            .samples_appended
            .fetch_add(wal_samples.len() as u64, Ordering::Relaxed);
        if !report.rejected.is_empty() {
            let mut counts = self.stats.samples_rejected.lock();
            for r in &report.rejected {
                *counts.entry(r.reason.as_str()).or_default() += r.num_samples as u64;
            }
        }
        Ok(report)
    }

    /// A sample older than the newest of its series: accepted within `window`.
    fn append_late(&self, data: &mut SeriesData, t: i64, v: f64, window: i64) -> Option<RejectReason> {
        let newest = data.newest_t().unwrap_or(t);
        if window <= 0 || t < newest.saturating_sub(window) {
            return Some(RejectReason::TooOld);
        }
        self.append_ooo(data, t, v)
    }

    fn append_ooo(&self, data: &mut SeriesData, t: i64, v: f64) -> Option<RejectReason> {
        match data.insert_ooo(t, v) {
            crate::head::series::AppendOutcome::Conflict => Some(RejectReason::DuplicateTimestamp),
            _ => None,
        }
    }

    /// Finds or creates the series of a batch; `None` for series refused by
    /// the series limit (recorded in the report). `info(i)` gives the labels
    /// and samples of the `i`th packed set, for the report.
    fn resolve_series<'b>(
        &self,
        packed: &PackedBatch,
        info: impl Fn(usize) -> (&'b Labels, &'b [Sample]),
        report: &mut AppendReport,
    ) -> Result<Vec<Option<Arc<MemSeries>>>, TsdbError> {
        let mut out = self.head.get_many(packed.iter());
        let missing: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let mut allowed = missing.len();
        if self.opts.max_series > 0 {
            allowed = self
                .opts
                .max_series
                .saturating_sub(self.head.num_series())
                .min(missing.len());
        }
        let wanted: Vec<(u64, &[u8])> = missing[..allowed].iter().map(|&i| packed.get(i)).collect();
        let created = self.create_series(&wanted)?;
        for (&i, s) in missing.iter().zip(created) {
            out[i] = Some(s);
        }
        for &i in &missing[allowed..] {
            let (labels, samples) = info(i);
            report.rejected.push(Rejection {
                labels: labels.clone(),
                reason: RejectReason::SeriesLimit,
                num_samples: samples.len(),
                first_t: samples.first().map_or(0, |s| s.t),
            });
        }
        Ok(out)
    }

    /// Finds or creates series by packed labels; new ones get their WAL
    /// record before they become visible.
    pub(crate) fn create_series(&self, wanted: &[(u64, &[u8])]) -> Result<Vec<Arc<MemSeries>>, TsdbError> {
        self.head.get_or_create(wanted, |new| {
            let mut buf = Vec::new();
            record::encode_series(new, &mut buf);
            self.wal.append(&[&buf])?;
            self.stats.series_created.fetch_add(new.len() as u64, Ordering::Relaxed);
            Ok::<(), TsdbError>(())
        })
    }
}
