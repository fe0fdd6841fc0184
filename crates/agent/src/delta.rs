//! Turns sources that report only deltas ("3 more requests since last time")
//! into cumulative counters, the form PromQL's `rate()` expects, with the
//! running totals persisted so that an agent restart does not reset them.
//!
//! Layer 5. Owns the totals and their file; it does not decide when to
//! save (the caller saves after each collection, before shipping what it
//! accumulated, so that a crash can only repeat a delta, never lose the total).
//!
//! The file is JSON, written to `<file>.tmp`, fsynced and renamed:
//! `{"version":1,"series":[{"labels":[["__name__","x"],…],"total":1.5},…]}`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use model::{Label, Labels, Sample};
use serde::{Deserialize, Serialize};

/// Errors of the accumulator's file.
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
    labels: Vec<(String, String)>,
    total: f64,
}

#[derive(Serialize, Deserialize)]
struct FileContent {
    version: u32,
    series: Vec<FileSeries>,
}

/// Running totals of delta-only counters, keyed by series.
#[derive(Debug)]
pub struct DeltaAccumulator {
    path: PathBuf,
    totals: HashMap<Labels, f64>,
}

impl DeltaAccumulator {
    /// Loads the totals saved in `path`, or starts from zero if there is no file.
    pub fn open(path: &Path) -> Result<Self, DeltaError> {
        let totals = match std::fs::read(path) {
            Ok(bytes) => {
                let content: FileContent = serde_json::from_slice(&bytes).map_err(|source| DeltaError::Corrupted {
                    path: path.to_path_buf(),
                    source,
                })?;
                content
                    .series
                    .into_iter()
                    .map(|s| {
                        let labels = Labels::new(s.labels.into_iter().map(|(n, v)| Label::new(n, v)).collect());
                        (labels, s.total)
                    })
                    .collect()
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
            path: path.to_path_buf(),
            totals,
        })
    }

    /// Adds `delta` to the series' total and returns the new total. A
    /// negative or non-finite delta cannot belong to a counter: it is ignored
    /// (and logged), so the counter never runs backwards.
    pub fn add(&mut self, labels: &Labels, delta: f64) -> f64 {
        let total = self.totals.entry(labels.clone()).or_insert(0.0);
        if delta.is_finite() && delta >= 0.0 {
            *total += delta;
        } else {
            tracing::warn!(series = %labels, delta, "ignoring a negative or non-finite counter delta");
        }
        *total
    }

    /// The total of a series, if it was ever seen.
    pub fn total(&self, labels: &Labels) -> Option<f64> {
        self.totals.get(labels).copied()
    }

    /// Every total as a sample at time `t`.
    pub fn samples(&self, t: i64) -> Vec<(Labels, Sample)> {
        self.totals
            .iter()
            .map(|(l, v)| (l.clone(), Sample::new(t, *v)))
            .collect()
    }

    /// Writes the totals durably (temporary file, fsync, rename).
    pub fn save(&self) -> Result<(), DeltaError> {
        let content = FileContent {
            version: 1,
            series: self
                .totals
                .iter()
                .map(|(l, v)| FileSeries {
                    labels: l.iter().map(|l| (l.name.clone(), l.value.clone())).collect(),
                    total: *v,
                })
                .collect(),
        };
        let io = |source| DeltaError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(&content).map_err(|e| io(std::io::Error::other(e)))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters.json");
        let series = Labels::from_pairs(&[("__name__", "events_total"), ("kind", "a")]);
        let mut acc = DeltaAccumulator::open(&path).unwrap();
        assert_eq!(acc.add(&series, 3.0), 3.0);
        assert_eq!(acc.add(&series, 2.0), 5.0);
        assert_eq!(acc.add(&series, -1.0), 5.0);
        assert_eq!(acc.add(&series, f64::NAN), 5.0);
        acc.save().unwrap();
        let mut acc = DeltaAccumulator::open(&path).unwrap();
        assert_eq!(acc.total(&series), Some(5.0));
        assert_eq!(acc.add(&series, 1.0), 6.0, "no reset after restart");
        assert_eq!(acc.samples(7), vec![(series, Sample::new(7, 6.0))]);
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            DeltaAccumulator::open(&path),
            Err(DeltaError::Corrupted { .. })
        ));
    }
}
