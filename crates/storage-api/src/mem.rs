//! An in-memory [`Queryable`] + [`SampleAppender`], for tests of the layers
//! above storage. Not built for speed or size.

use crate::{AppendReport, Querier, Queryable, SampleAppender, SelectHints, Series, SeriesSamples, StorageError};
use model::{Labels, Matcher, Sample, TenantId};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

type TenantData = BTreeMap<Labels, BTreeMap<i64, f64>>;

/// Series kept in sorted maps, per tenant. Appends never refuse a sample;
/// a later sample at the same timestamp overwrites.
#[derive(Default, Clone)]
pub struct MemStorage {
    tenants: Arc<RwLock<HashMap<TenantId, TenantData>>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds samples to the default tenant; a test convenience.
    pub fn add(&self, labels: Labels, samples: &[Sample]) {
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        let series = tenants
            .entry(TenantId::default())
            .or_default()
            .entry(labels)
            .or_default();
        for s in samples {
            series.insert(s.t, s.v);
        }
    }
}

impl SampleAppender for MemStorage {
    fn append(&self, tenant: &TenantId, batch: Vec<SeriesSamples>) -> Result<AppendReport, StorageError> {
        let mut tenants = self.tenants.write().unwrap_or_else(|e| e.into_inner());
        let data = tenants.entry(tenant.clone()).or_default();
        let mut report = AppendReport::default();
        for s in batch {
            let series = data.entry(s.labels).or_default();
            for sample in s.samples {
                series.insert(sample.t, sample.v);
                report.num_accepted += 1;
            }
        }
        Ok(report)
    }

    fn appends_without_waiting(&self) -> bool {
        true
    }
}

impl Queryable for MemStorage {
    fn querier(&self, tenant: &TenantId) -> Result<Arc<dyn Querier>, StorageError> {
        let tenants = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::new(MemQuerier {
            data: tenants.get(tenant).cloned().unwrap_or_default(),
        }))
    }
}

/// A snapshot of one tenant's data.
struct MemQuerier {
    data: TenantData,
}

fn matches_all(labels: &Labels, matchers: &[Matcher]) -> bool {
    matchers.iter().all(|m| m.matches(labels.get(m.name()).unwrap_or("")))
}

impl MemQuerier {
    fn matching<'a>(
        &'a self,
        matchers: &'a [Matcher],
        start: i64,
        end: i64,
    ) -> impl Iterator<Item = (&'a Labels, &'a BTreeMap<i64, f64>)> + 'a {
        self.data
            .iter()
            .filter(move |(l, s)| start <= end && matches_all(l, matchers) && s.range(start..=end).next().is_some())
    }
}

impl Querier for MemQuerier {
    fn select(&self, matchers: &[Matcher], hints: &SelectHints) -> Result<Vec<Series>, StorageError> {
        let mut out = Vec::new();
        let mut total = 0usize;
        for (labels, samples) in self.matching(matchers, hints.start, hints.end) {
            let samples: Vec<Sample> = samples
                .range(hints.start..=hints.end)
                .map(|(&t, &v)| Sample::new(t, v))
                .collect();
            total += samples.len();
            if let Some(limit) = hints.max_samples {
                if total > limit {
                    return Err(StorageError::TooManySamples { limit });
                }
            }
            out.push(Series {
                labels: labels.clone(),
                samples,
            });
        }
        Ok(out)
    }

    fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>, StorageError> {
        Ok(self.matching(matchers, start, end).map(|(l, _)| l.clone()).collect())
    }

    fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<String>, StorageError> {
        let names: BTreeSet<String> = self
            .matching(matchers, start, end)
            .flat_map(|(l, _)| l.iter().map(|l| l.name.clone()))
            .collect();
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StorageError> {
        let values: BTreeSet<String> = self
            .matching(matchers, start, end)
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        Ok(values.into_iter().collect())
    }
}
