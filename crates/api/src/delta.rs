//! Turns OTLP delta values ("3 more requests since the last export") into
//! cumulative counters, the form PromQL's `rate()` expects, by keeping a
//! running total per tenant and series.
//!
//! The totals can be persisted ([`DeltaAccumulator::open`]), so that a
//! restart of `serve` or of `haetae agent` continues every counter instead of
//! starting it again from the next delta (which `rate` and `increase` would
//! read as a counter reset). They are saved at most once per
//! [`DeltaAccumulator::SAVE_INTERVAL`] after a request that changed them, and
//! at shutdown: a crash can lose the deltas of that last interval.
//!
//! File: JSON, written to `<file>.tmp`, fsynced and renamed:
//! `{"version":1,"series":[{"tenant":"default","labels":[["__name__","x"],…],"total":1.5},…]}`.
//!
//! Layer 4, used by the OTLP endpoint.

use model::{is_stale_nan, Label, Labels, TenantId};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the totals file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeltaError {
    /// Reading or writing the file failed.
    #[error("cannot access counter totals {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what [`DeltaAccumulator::save`] writes.
    #[error("counter totals {path} are corrupt: {source}")]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct FileSeries {
    tenant: String,
    labels: Vec<(String, String)>,
    total: f64,
}

#[derive(Serialize, Deserialize)]
struct FileContent {
    version: u32,
    series: Vec<FileSeries>,
}

#[derive(Debug, Default)]
struct Totals {
    by_series: HashMap<(TenantId, Labels), f64>,
    /// Changed since the last save.
    dirty: bool,
    last_save: Option<Instant>,
}

/// Running totals of delta series, in memory or persisted in a file.
#[derive(Debug, Default)]
pub struct DeltaAccumulator {
    totals: Mutex<Totals>,
    /// Where the totals are saved; `None` keeps them in memory only.
    path: Option<PathBuf>,
}

impl DeltaAccumulator {
    /// The most series tracked at once, all tenants together; values of
    /// further new series are refused, so that a cardinality explosion
    /// cannot exhaust memory.
    pub const MAX_SERIES: usize = 1_000_000;

    /// The longest a change waits before [`DeltaAccumulator::maybe_save`] writes it.
    pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

    /// Totals kept in `path`: loads them if the file exists, else starts from zero.
    pub fn open(path: &Path) -> Result<Self, DeltaError> {
        let by_series = match std::fs::read(path) {
            Ok(bytes) => {
                let content: FileContent = serde_json::from_slice(&bytes).map_err(|source| DeltaError::Corrupted {
                    path: path.to_path_buf(),
                    source,
                })?;
                let mut by_series = HashMap::with_capacity(content.series.len());
                for s in content.series {
                    let tenant = TenantId::new(&s.tenant).map_err(|e| DeltaError::Corrupted {
                        path: path.to_path_buf(),
                        source: serde::de::Error::custom(e),
                    })?;
                    let labels = Labels::new(s.labels.into_iter().map(|(n, v)| Label::new(n, v)).collect());
                    by_series.insert((tenant, labels), s.total);
                }
                by_series
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashMap::new(),
            Err(source) => {
                return Err(DeltaError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(DeltaAccumulator {
            totals: Mutex::new(Totals {
                by_series,
                ..Totals::default()
            }),
            path: Some(path.to_path_buf()),
        })
    }

    /// Adds `delta` to the series' total and returns the new total; `None`
    /// when the series is new and the accumulator is full. A staleness marker
    /// passes through unchanged and leaves the total alone.
    pub fn accumulate(&self, tenant: &TenantId, labels: &Labels, delta: f64) -> Option<f64> {
        if is_stale_nan(delta) {
            return Some(delta);
        }
        let mut totals = self.totals.lock();
        let key = (tenant.clone(), labels.clone());
        let total = if let Some(total) = totals.by_series.get_mut(&key) {
            *total += delta;
            *total
        } else {
            if totals.by_series.len() >= Self::MAX_SERIES {
                return None;
            }
            totals.by_series.insert(key, delta);
            delta
        };
        totals.dirty = true;
        Some(total)
    }

    /// The total of a series, if it was ever seen.
    pub fn total(&self, tenant: &TenantId, labels: &Labels) -> Option<f64> {
        self.totals
            .lock()
            .by_series
            .get(&(tenant.clone(), labels.clone()))
            .copied()
    }

    /// How many series have a running total.
    pub fn num_series(&self) -> usize {
        self.totals.lock().by_series.len()
    }

    /// Saves if the totals changed and the last save is older than
    /// [`DeltaAccumulator::SAVE_INTERVAL`]. Does nothing in memory-only mode.
    pub fn maybe_save(&self) -> Result<(), DeltaError> {
        let due = {
            let t = self.totals.lock();
            t.dirty && t.last_save.is_none_or(|at| at.elapsed() >= Self::SAVE_INTERVAL)
        };
        if due {
            self.save()
        } else {
            Ok(())
        }
    }

    /// Writes the totals durably (temporary file, fsync, rename) if they
    /// changed since the last save. Does nothing in memory-only mode.
    pub fn save(&self) -> Result<(), DeltaError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = {
            let mut t = self.totals.lock();
            if !t.dirty {
                return Ok(());
            }
            let content = FileContent {
                version: 1,
                series: t
                    .by_series
                    .iter()
                    .map(|((tenant, labels), total)| FileSeries {
                        tenant: tenant.as_str().to_string(),
                        labels: labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                        total: *total,
                    })
                    .collect(),
            };
            t.dirty = false;
            t.last_save = Some(Instant::now());
            serde_json::to_vec(&content)
        };
        let io = |source| DeltaError::Io {
            path: path.clone(),
            source,
        };
        let result = bytes.map_err(|e| io(std::io::Error::other(e))).and_then(|bytes| {
            let mut tmp = path.clone().into_os_string();
            tmp.push(".tmp");
            let tmp = PathBuf::from(tmp);
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_data().map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)
        });
        if result.is_err() {
            // Try again next time.
            self.totals.lock().dirty = true;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otlp-delta-totals.json");
        let tenant = TenantId::default();
        let other = TenantId::new("team-b").unwrap();
        let series = Labels::from_pairs(&[("__name__", "events_total"), ("kind", "a")]);
        let acc = DeltaAccumulator::open(&path).unwrap();
        assert_eq!(acc.accumulate(&tenant, &series, 3.0), Some(3.0));
        assert_eq!(acc.accumulate(&tenant, &series, 2.0), Some(5.0));
        assert_eq!(acc.accumulate(&other, &series, 1.0), Some(1.0));
        assert!(is_stale_nan(
            acc.accumulate(&tenant, &series, model::STALE_NAN).unwrap()
        ));
        acc.maybe_save().unwrap();
        assert_eq!(acc.accumulate(&tenant, &series, 1.0), Some(6.0));
        // Within the save interval: not written yet; an explicit save writes it.
        assert_eq!(
            DeltaAccumulator::open(&path).unwrap().total(&tenant, &series),
            Some(5.0)
        );
        acc.save().unwrap();
        let acc = DeltaAccumulator::open(&path).unwrap();
        assert_eq!(acc.total(&tenant, &series), Some(6.0));
        assert_eq!(acc.total(&other, &series), Some(1.0));
        assert_eq!(
            acc.accumulate(&tenant, &series, 1.0),
            Some(7.0),
            "no reset after restart"
        );
    }

    #[test]
    fn memory_only_never_writes() {
        let acc = DeltaAccumulator::default();
        let series = Labels::from_pairs(&[("__name__", "x")]);
        assert_eq!(acc.accumulate(&TenantId::default(), &series, 1.0), Some(1.0));
        acc.save().unwrap();
        acc.maybe_save().unwrap();
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("totals.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            DeltaAccumulator::open(&path),
            Err(DeltaError::Corrupted { .. })
        ));
    }
}
