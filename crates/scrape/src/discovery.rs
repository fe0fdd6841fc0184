//! Service discovery (static, file, HTTP, DNS) and the turning of
//! discovered target groups into scrape targets.
//!
//! Layer 3. Owns the providers' polling and the label conventions of a
//! target (`__address__`, `__scheme__`, `__metrics_path__`, `__param_*`,
//! `__scrape_interval__`, `__scrape_timeout__`, `job`, `__meta_*`); the
//! scrape pools in [`crate::manager`] consume the groups.
//!
//! - file_sd: files matching the globs are read as JSON (`.json`) or YAML;
//!   the set of files and their mtimes are polled every
//!   `min(refresh_interval, 5s)` and everything is re-read when either
//!   changed or `refresh_interval` passed. A file that fails to parse keeps
//!   its previous groups, as in Prometheus. Labels: `__meta_filepath`.
//! - http_sd: GET, JSON list of `{targets, labels}`; on failure the previous
//!   groups are kept. Labels: `__meta_url`.
//! - dns_sd: A, AAAA and SRV through `hickory-resolver` with the system's
//!   resolver configuration. Labels: `__meta_dns_name`,
//!   `__meta_dns_srv_record_target`, `__meta_dns_srv_record_port`.

use crate::config::{DnsRecordType, DnsSdConfig, FileSdConfig, HttpSdConfig, ScrapeConfig};
use crate::relabel::relabel;
use model::{Label, Labels};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Targets sharing labels, as one discovery source reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetGroup {
    /// Where the group came from (file path, URL, DNS name, `static/0`).
    pub source: String,
    /// Per-target labels, each with at least `__address__`.
    pub targets: Vec<BTreeMap<String, String>>,
    /// Labels common to the group (`__meta_*` included).
    pub labels: BTreeMap<String, String>,
}

/// The JSON/YAML shape of file_sd and http_sd entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDoc {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn group_from_doc(doc: GroupDoc, source: String, meta: (&str, &str)) -> TargetGroup {
    let mut labels = doc.labels;
    labels.insert(meta.0.to_string(), meta.1.to_string());
    TargetGroup {
        source,
        targets: doc
            .targets
            .into_iter()
            .map(|t| BTreeMap::from([("__address__".to_string(), t)]))
            .collect(),
        labels,
    }
}

/// The groups of a job's `static_configs`.
pub fn static_groups(cfg: &ScrapeConfig) -> Vec<TargetGroup> {
    cfg.static_configs
        .iter()
        .enumerate()
        .map(|(i, sc)| TargetGroup {
            source: i.to_string(),
            targets: sc
                .targets
                .iter()
                .map(|t| BTreeMap::from([("__address__".to_string(), t.clone())]))
                .collect(),
            labels: sc.labels.clone(),
        })
        .collect()
}

/// A discovery failure, reported in logs; the previous groups stay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file or response is not a list of `{targets, labels}`.
    #[error("cannot parse {source_name}: {reason}")]
    Parse {
        /// The file or URL.
        source_name: String,
        /// The parser's message.
        reason: String,
    },
    /// An HTTP request failed.
    #[error("cannot fetch {url}: {reason}")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A DNS lookup failed.
    #[error("DNS lookup of {name} failed: {reason}")]
    Dns {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Reads one file_sd file (JSON by extension `.json`, YAML otherwise).
pub fn read_sd_file(path: &std::path::Path) -> Result<Vec<TargetGroup>, DiscoveryError> {
    let text = std::fs::read_to_string(path).map_err(|source| DiscoveryError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path.display().to_string();
    let docs: Vec<GroupDoc> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| DiscoveryError::Parse {
            source_name: name.clone(),
            reason: e.to_string(),
        })?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_norway::from_str(&text).map_err(|e| DiscoveryError::Parse {
            source_name: name.clone(),
            reason: e.to_string(),
        })?
    };
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| group_from_doc(d, format!("{name}:{i}"), ("__meta_filepath", &name)))
        .collect())
}

/// Polls file_sd files; keeps per-file groups so a broken file keeps its
/// last good content.
pub(crate) struct FileWatcher {
    cfg: FileSdConfig,
    mtimes: BTreeMap<PathBuf, Option<SystemTime>>,
    groups: BTreeMap<PathBuf, Vec<TargetGroup>>,
    last_full_read: Option<Instant>,
}

impl FileWatcher {
    pub(crate) fn new(cfg: FileSdConfig) -> Self {
        FileWatcher {
            cfg,
            mtimes: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_full_read: None,
        }
    }

    /// How often [`FileWatcher::poll`] should run.
    pub(crate) fn poll_period(&self) -> Duration {
        self.cfg.refresh_interval.0.min(Duration::from_secs(5))
    }

    fn list_files(&self) -> BTreeMap<PathBuf, Option<SystemTime>> {
        let mut out = BTreeMap::new();
        for pattern in &self.cfg.files {
            let Ok(paths) = glob::glob(pattern) else { continue };
            for p in paths.flatten() {
                let mtime = std::fs::metadata(&p).and_then(|m| m.modified()).ok();
                out.insert(p, mtime);
            }
        }
        out
    }

    /// Returns the groups if anything changed since the last call (always on
    /// the first call).
    pub(crate) fn poll(&mut self) -> Option<Vec<TargetGroup>> {
        let files = self.list_files();
        let due = self
            .last_full_read
            .is_none_or(|t| t.elapsed() >= self.cfg.refresh_interval.0);
        if !due && files == self.mtimes {
            return None;
        }
        self.groups.retain(|p, _| files.contains_key(p));
        for path in files.keys() {
            match read_sd_file(path) {
                Ok(g) => {
                    self.groups.insert(path.clone(), g);
                }
                Err(e) => tracing::warn!(error = %e, "file_sd: keeping the previous targets of this file"),
            }
        }
        self.mtimes = files;
        self.last_full_read = Some(Instant::now());
        Some(self.groups.values().flatten().cloned().collect())
    }
}

/// Fetches an http_sd URL once.
pub(crate) async fn fetch_http_sd(
    client: &reqwest::Client,
    cfg: &HttpSdConfig,
) -> Result<Vec<TargetGroup>, DiscoveryError> {
    let http_err = |reason: String| DiscoveryError::Http {
        url: cfg.url.clone(),
        reason,
    };
    let resp = client
        .get(&cfg.url)
        .header(
            "X-Prometheus-Refresh-Interval-Seconds",
            cfg.refresh_interval.0.as_secs().to_string(),
        )
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| http_err(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(http_err(format!("server returned HTTP status {}", resp.status())));
    }
    let body = resp.bytes().await.map_err(|e| http_err(e.to_string()))?;
    let docs: Vec<GroupDoc> = serde_json::from_slice(&body).map_err(|e| DiscoveryError::Parse {
        source_name: cfg.url.clone(),
        reason: e.to_string(),
    })?;
    Ok(docs
        .into_iter()
        .enumerate()
        .map(|(i, d)| group_from_doc(d, format!("{}:{i}", cfg.url), ("__meta_url", &cfg.url)))
        .collect())
}

/// Resolves a dns_sd config once.
pub(crate) async fn resolve_dns_sd(cfg: &DnsSdConfig) -> Result<Vec<TargetGroup>, DiscoveryError> {
    use hickory_resolver::proto::rr::RData;
    let resolver = hickory_resolver::TokioResolver::builder_tokio()
        .and_then(|b| b.build())
        .map_err(|e| DiscoveryError::Dns {
            name: cfg.names.join(","),
            reason: format!("cannot set up the resolver: {e}"),
        })?;
    let mut groups = Vec::new();
    for name in &cfg.names {
        let dns_err = |e: &dyn std::fmt::Display| DiscoveryError::Dns {
            name: name.clone(),
            reason: e.to_string(),
        };
        let mut targets = Vec::new();
        let lookup = match cfg.record_type {
            DnsRecordType::Srv => resolver.srv_lookup(name.as_str()).await,
            DnsRecordType::A => resolver.ipv4_lookup(name.as_str()).await,
            DnsRecordType::Aaaa => resolver.ipv6_lookup(name.as_str()).await,
        }
        .map_err(|e| dns_err(&e))?;
        let port = cfg.port.unwrap_or(0);
        for record in lookup.answers() {
            let mut t = BTreeMap::new();
            match &record.data {
                RData::SRV(srv) => {
                    let target = srv.target.to_string();
                    let host = target.trim_end_matches('.').to_string();
                    t.insert("__address__".to_string(), format!("{host}:{}", srv.port));
                    t.insert("__meta_dns_srv_record_target".to_string(), target);
                    t.insert("__meta_dns_srv_record_port".to_string(), srv.port.to_string());
                }
                RData::A(a) => {
                    t.insert("__address__".to_string(), format!("{}:{port}", a.0));
                }
                RData::AAAA(a) => {
                    t.insert("__address__".to_string(), format!("[{}]:{port}", a.0));
                }
                _ => continue,
            }
            t.insert("__meta_dns_name".to_string(), name.clone());
            targets.push(t);
        }
        groups.push(TargetGroup {
            source: name.clone(),
            targets,
            labels: BTreeMap::new(),
        });
    }
    Ok(groups)
}

/// A target after relabeling, ready to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The labels before relabeling (`discoveredLabels` in the API).
    pub discovered: Labels,
    /// All labels after relabeling, `__`-prefixed ones included.
    pub full: Labels,
    /// The labels attached to scraped series (`labels` in the API): `full`
    /// without `__`-prefixed labels, `instance` defaulted to `__address__`.
    pub labels: Labels,
    /// `scheme://address/path?params`.
    pub url: String,
    /// From `__scrape_interval__`.
    pub interval: Duration,
    /// From `__scrape_timeout__`.
    pub timeout: Duration,
}

/// The result of turning groups into targets.
#[derive(Debug, Clone, Default)]
pub struct PopulatedTargets {
    /// Targets to scrape, unique by their full label set.
    pub active: Vec<Target>,
    /// Discovered label sets dropped by relabeling or refused, with the reason.
    pub dropped: Vec<(Labels, Option<String>)>,
}

/// Builds the targets of a job from its discovered groups: adds the default
/// `__` labels, relabels, checks the address, defaults `instance`.
pub fn populate_targets(cfg: &ScrapeConfig, groups: &[TargetGroup]) -> PopulatedTargets {
    let mut out = PopulatedTargets::default();
    let mut seen: HashMap<Labels, ()> = HashMap::new();
    for g in groups {
        for t in &g.targets {
            let mut labels: Vec<Label> = Vec::new();
            for (k, v) in g.labels.iter().chain(t.iter()) {
                labels.push(Label::new(k.as_str(), v.as_str()));
            }
            let discovered = with_defaults(cfg, Labels::new(labels));
            match target_from_labels(cfg, &discovered) {
                Ok(Some(target)) => {
                    if seen.insert(target.full.clone(), ()).is_none() {
                        out.active.push(target);
                    }
                }
                Ok(None) => out.dropped.push((discovered, None)),
                Err(reason) => {
                    tracing::warn!(job = %cfg.job_name, %reason, "target refused");
                    out.dropped.push((discovered, Some(reason)));
                }
            }
        }
    }
    out
}

fn with_defaults(cfg: &ScrapeConfig, labels: Labels) -> Labels {
    let mut b = labels.builder();
    let interval = crate::config::PromDuration(cfg.interval()).to_string();
    let timeout = crate::config::PromDuration(cfg.timeout()).to_string();
    let mut defaults: Vec<(String, String)> = vec![
        ("job".into(), cfg.job_name.clone()),
        ("__scrape_interval__".into(), interval),
        ("__scrape_timeout__".into(), timeout),
        ("__metrics_path__".into(), cfg.metrics_path.clone()),
        ("__scheme__".into(), cfg.scheme.clone()),
    ];
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            defaults.push((format!("__param_{k}"), first.clone()));
        }
    }
    for (k, v) in defaults {
        if labels.get(&k).is_none() {
            b.set(&k, &v);
        }
    }
    b.build()
}

fn target_from_labels(cfg: &ScrapeConfig, discovered: &Labels) -> Result<Option<Target>, String> {
    let Some(full) = relabel(discovered, &cfg.relabel_configs) else {
        return Ok(None);
    };
    let Some(address) = full.get("__address__") else {
        return Err("no address".to_string());
    };
    if address.contains('/') {
        return Err(format!("{address:?} is not a valid hostname"));
    }
    let scheme = full.get("__scheme__").unwrap_or("http");
    let path = full.get("__metrics_path__").unwrap_or("/metrics");
    let parse_dur = |name: &str, default: Duration| -> Result<Duration, String> {
        match full.get(name) {
            None => Ok(default),
            Some(v) => crate::config::PromDuration::parse(v)
                .map(|d| d.0)
                .map_err(|e| format!("{name}: {e}")),
        }
    };
    let interval = parse_dur("__scrape_interval__", cfg.interval())?;
    let timeout = parse_dur("__scrape_timeout__", cfg.timeout())?;
    if interval.is_zero() || timeout.is_zero() {
        return Err("scrape interval and timeout must be greater than 0".to_string());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout {} greater than scrape interval {}",
            crate::config::PromDuration(timeout),
            crate::config::PromDuration(interval)
        ));
    }
    let mut url = reqwest::Url::parse(&format!("{scheme}://{address}{path}"))
        .map_err(|e| format!("invalid scrape URL {scheme}://{address}{path}: {e}"))?;
    // Params: configured ones, the first value of each replaced by its __param_ label.
    let mut params: BTreeMap<String, Vec<String>> = cfg.params.clone();
    for l in full.iter() {
        if let Some(name) = l.name.strip_prefix("__param_") {
            let values = params.entry(name.to_string()).or_default();
            match values.first_mut() {
                Some(first) => *first = l.value.clone(),
                None => values.push(l.value.clone()),
            }
        }
    }
    if !params.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, vs) in &params {
            for v in vs {
                q.append_pair(k, v);
            }
        }
    }
    let mut public: Vec<Label> = full.iter().filter(|l| !l.name.starts_with("__")).cloned().collect();
    if full.get("instance").is_none() {
        public.push(Label::new("instance", address));
    }
    Ok(Some(Target {
        discovered: discovered.clone(),
        labels: Labels::new(public),
        full,
        url: url.to_string(),
        interval,
        timeout,
    }))
}

#[cfg(test)]
mod tests;
