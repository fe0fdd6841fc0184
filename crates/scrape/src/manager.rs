//! The scrape manager: one pool per job, one loop per target, hot reload,
//! and the views behind `/api/v1/targets` and `/api/v1/targets/metadata`.
//!
//! Layer 3. Owns the lifecycle of discovery tasks and scrape loops; the
//! server owns reading the file and the HTTP API.
//!
//! Reload ([`ScrapeManager::apply_config`]) semantics:
//! - the new configuration is fully validated and its HTTP clients built
//!   before anything changes; on error the old one stays in force;
//! - jobs whose configuration is unchanged keep their discovery and loops;
//! - in a changed job, discovery restarts if its SD sections changed (old
//!   targets stay until every new provider has reported once); loops of
//!   targets whose labels are unchanged keep running and take the new
//!   parameters at their next scrape (no gap, no staleness);
//! - removed targets and jobs get staleness markers for everything they
//!   exposed, at the time their next scrape would have run.

use crate::config::{ConfigError, GlobalConfig, ScrapeConfig, ScrapeConfigs};
use crate::discovery::{self, populate_targets, FileWatcher, Target, TargetGroup};
use crate::scrape_loop::{self, Auth, Health, LoopParams, Sinks, StopMode, TargetStatus};
use model::{Labels, TenantId};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use storage_api::{MetadataStore, SampleAppender};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// `/api/v1/targets` data, with Prometheus' JSON field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TargetsView {
    /// Targets being scraped.
    #[serde(rename = "activeTargets")]
    pub active_targets: Vec<ActiveTarget>,
    /// Discovered targets dropped by relabeling.
    #[serde(rename = "droppedTargets")]
    pub dropped_targets: Vec<DroppedTarget>,
}

/// One active target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    /// Labels before relabeling.
    pub discovered_labels: BTreeMap<String, String>,
    /// Labels attached to the target's series.
    pub labels: BTreeMap<String, String>,
    /// The job name.
    pub scrape_pool: String,
    /// The URL scraped.
    pub scrape_url: String,
    /// The URL as seen from outside (same as `scrape_url` here).
    pub global_url: String,
    /// The last scrape's error, empty if none.
    pub last_error: String,
    /// RFC 3339 time of the last scrape; `0001-01-01T00:00:00Z` if never.
    pub last_scrape: String,
    /// Seconds the last scrape took.
    pub last_scrape_duration: f64,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// Like `15s`.
    pub scrape_interval: String,
    /// Like `10s`.
    pub scrape_timeout: String,
}

/// One dropped target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTarget {
    /// Labels before relabeling.
    pub discovered_labels: BTreeMap<String, String>,
}

/// One entry of `/api/v1/targets/metadata`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetMetadata {
    /// The target's labels.
    pub target: BTreeMap<String, String>,
    /// The metric family.
    pub metric: String,
    /// Its type (`counter`, `gauge`, ..., `unknown`).
    #[serde(rename = "type")]
    pub metric_type: String,
    /// Its HELP text.
    pub help: String,
    /// Its unit.
    pub unit: String,
}

fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter().map(|l| (l.name.clone(), l.value.clone())).collect()
}

/// Runs the scrape pools of one tenant.
pub struct ScrapeManager {
    sinks: Sinks,
    pools: Mutex<BTreeMap<String, PoolHandle>>,
}

struct LoopHandle {
    target: Target,
    status: Arc<Mutex<TargetStatus>>,
    params_tx: watch::Sender<Arc<LoopParams>>,
    stop_tx: watch::Sender<Option<StopMode>>,
    task: JoinHandle<()>,
}

/// What the API reads of a pool.
#[derive(Default)]
struct PoolShared {
    active: Vec<(Target, Arc<Mutex<TargetStatus>>)>,
    dropped: Vec<Labels>,
}

/// Per-job settings shared by its loops.
struct JobRuntime {
    config: Arc<ScrapeConfig>,
    client: reqwest::Client,
    auth: Auth,
    body_size_limit: u64,
}

enum PoolCmd {
    Discovered {
        generation: u64,
        provider: usize,
        groups: Vec<TargetGroup>,
    },
    Reload(Arc<JobRuntime>),
    Stop(StopMode),
}

struct PoolHandle {
    config: Arc<ScrapeConfig>,
    cmd_tx: mpsc::UnboundedSender<PoolCmd>,
    shared: Arc<Mutex<PoolShared>>,
    task: JoinHandle<()>,
}

impl ScrapeManager {
    /// A manager with no jobs, writing to `appender` and `metadata` as `tenant`.
    pub fn new(appender: Arc<dyn SampleAppender>, metadata: Arc<dyn MetadataStore>, tenant: TenantId) -> Self {
        ScrapeManager {
            sinks: Sinks {
                appender,
                metadata,
                tenant,
            },
            pools: Mutex::new(BTreeMap::new()),
        }
    }

    /// Applies a whole configuration (initial load or reload). The jobs are
    /// re-validated with `global` (as [`ScrapeConfigs::build`] does); on
    /// error nothing changes. Must be called within a Tokio runtime.
    pub fn apply_config(&self, configs: &[ScrapeConfig], global: &GlobalConfig) -> Result<(), ConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let resolved = ScrapeConfigs::build(global.clone(), configs.to_vec())?;
        let mut runtimes = Vec::with_capacity(resolved.scrape_configs.len());
        for cfg in resolved.scrape_configs {
            runtimes.push(Arc::new(build_runtime(cfg)?));
        }
        let mut pools = self.pools.lock();
        let wanted: HashMap<&str, &Arc<JobRuntime>> =
            runtimes.iter().map(|r| (r.config.job_name.as_str(), r)).collect();
        let removed: Vec<String> = pools
            .keys()
            .filter(|k| !wanted.contains_key(k.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(p) = pools.remove(&name) {
                let _ = p.cmd_tx.send(PoolCmd::Stop(StopMode::Removed));
            }
        }
        for rt in &runtimes {
            match pools.get_mut(&rt.config.job_name) {
                Some(p) if *p.config == *rt.config => {}
                Some(p) => {
                    p.config = Arc::clone(&rt.config);
                    let _ = p.cmd_tx.send(PoolCmd::Reload(Arc::clone(rt)));
                }
                None => {
                    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
                    let shared = Arc::new(Mutex::new(PoolShared::default()));
                    let pool = Pool {
                        runtime: Arc::clone(rt),
                        sinks: self.sinks.clone(),
                        cmd_tx: cmd_tx.clone(),
                        shared: Arc::clone(&shared),
                        generation: 0,
                        groups: Vec::new(),
                        providers: Vec::new(),
                        loops: HashMap::new(),
                    };
                    let task = tokio::spawn(pool.run(cmd_rx));
                    pools.insert(
                        rt.config.job_name.clone(),
                        PoolHandle {
                            config: Arc::clone(&rt.config),
                            cmd_tx,
                            shared,
                            task,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// The targets of all pools, sorted by pool then labels.
    pub fn targets(&self) -> TargetsView {
        let pools = self.pools.lock();
        let mut view = TargetsView::default();
        for (job, p) in pools.iter() {
            let shared = p.shared.lock();
            for (t, status) in &shared.active {
                let s = status.lock().clone();
                view.active_targets.push(ActiveTarget {
                    discovered_labels: label_map(&t.discovered),
                    labels: label_map(&t.labels),
                    scrape_pool: job.clone(),
                    scrape_url: t.url.clone(),
                    global_url: t.url.clone(),
                    last_error: s.last_error,
                    last_scrape: crate::time_fmt::rfc3339(s.last_scrape),
                    last_scrape_duration: s.last_scrape_duration.as_secs_f64(),
                    health: match s.health {
                        Health::Up => "up",
                        Health::Down => "down",
                        Health::Unknown => "unknown",
                    }
                    .to_string(),
                    scrape_interval: crate::config::PromDuration(t.interval).to_string(),
                    scrape_timeout: crate::config::PromDuration(t.timeout).to_string(),
                });
            }
            for d in &shared.dropped {
                view.dropped_targets.push(DroppedTarget {
                    discovered_labels: label_map(d),
                });
            }
        }
        view
    }

    /// Metadata per target for `/api/v1/targets/metadata`: targets whose
    /// labels pass `target_filter` (the API's `match_target`), families named
    /// `metric` (all if `None`), at most `limit` entries.
    pub fn targets_metadata(
        &self,
        target_filter: &dyn Fn(&Labels) -> bool,
        metric: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<TargetMetadata> {
        let pools = self.pools.lock();
        let mut out = Vec::new();
        for p in pools.values() {
            let shared = p.shared.lock();
            for (t, status) in &shared.active {
                if !target_filter(&t.labels) {
                    continue;
                }
                let meta = Arc::clone(&status.lock().metadata);
                for m in meta.iter() {
                    if metric.is_some_and(|name| name != m.metric_family) {
                        continue;
                    }
                    if limit.is_some_and(|l| out.len() >= l) {
                        return out;
                    }
                    out.push(TargetMetadata {
                        target: label_map(&t.labels),
                        metric: m.metric_family.clone(),
                        metric_type: m.metric_type.clone(),
                        help: m.help.clone(),
                        unit: m.unit.clone(),
                    });
                }
            }
        }
        out
    }

    /// Stops every pool and loop and waits for them. No staleness markers are
    /// written, so series continue after a restart.
    pub async fn shutdown(&self) {
        let pools: Vec<PoolHandle> = std::mem::take(&mut *self.pools.lock()).into_values().collect();
        for p in &pools {
            let _ = p.cmd_tx.send(PoolCmd::Stop(StopMode::Quiet));
        }
        for p in pools {
            let _ = p.task.await;
        }
    }
}

fn build_runtime(cfg: ScrapeConfig) -> Result<JobRuntime, ConfigError> {
    let invalid = |field: &str, reason: String| ConfigError::Invalid {
        job: cfg.job_name.clone(),
        field: field.to_string(),
        reason,
    };
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .gzip(true)
        .redirect(if cfg.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        })
        .pool_max_idle_per_host(4)
        // As Prometheus 2.42: no proxy from the environment (and no per-request proxy matching).
        .no_proxy();
    if let Some(tls) = &cfg.tls_config {
        if let Some(ca) = &tls.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| invalid("tls_config.ca_file", format!("cannot read {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| invalid("tls_config.ca_file", format!("{}: {e}", ca.display())))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let mut pem = std::fs::read(cert)
                .map_err(|e| invalid("tls_config.cert_file", format!("cannot read {}: {e}", cert.display())))?;
            pem.extend(
                std::fs::read(key)
                    .map_err(|e| invalid("tls_config.key_file", format!("cannot read {}: {e}", key.display())))?,
            );
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| invalid("tls_config", e.to_string()))?;
            builder = builder.identity(id);
        }
        if tls.insecure_skip_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
    }
    let client = builder.build().map_err(|e| invalid("tls_config", e.to_string()))?;
    let auth = if let Some(b) = &cfg.basic_auth {
        Auth::Basic {
            username: b.username.clone(),
            password: b.password.as_ref().map(|p| p.expose().to_string()),
            password_file: b.password_file.clone(),
        }
    } else if let Some(a) = &cfg.authorization {
        Auth::Header {
            auth_type: a.auth_type.clone(),
            credentials: a.credentials.as_ref().map(|c| c.expose().to_string()),
            credentials_file: a.credentials_file.clone(),
        }
    } else if cfg.bearer_token.is_some() || cfg.bearer_token_file.is_some() {
        Auth::Header {
            auth_type: "Bearer".to_string(),
            credentials: cfg.bearer_token.as_ref().map(|c| c.expose().to_string()),
            credentials_file: cfg.bearer_token_file.clone(),
        }
    } else {
        Auth::None
    };
    let body_size_limit = cfg.body_size_limit_bytes().map_err(|e| invalid("body_size_limit", e))?;
    Ok(JobRuntime {
        config: Arc::new(cfg),
        client,
        auth,
        body_size_limit,
    })
}

/// The discovery providers of a job, in a fixed order.
enum Provider {
    Static(Vec<TargetGroup>),
    File(crate::config::FileSdConfig),
    Http(crate::config::HttpSdConfig),
    Dns(crate::config::DnsSdConfig),
}

fn providers_of(cfg: &ScrapeConfig) -> Vec<Provider> {
    let mut out = vec![Provider::Static(discovery::static_groups(cfg))];
    out.extend(cfg.file_sd_configs.iter().cloned().map(Provider::File));
    out.extend(cfg.http_sd_configs.iter().cloned().map(Provider::Http));
    out.extend(cfg.dns_sd_configs.iter().cloned().map(Provider::Dns));
    out
}

fn same_discovery(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    a.static_configs == b.static_configs
        && a.file_sd_configs == b.file_sd_configs
        && a.http_sd_configs == b.http_sd_configs
        && a.dns_sd_configs == b.dns_sd_configs
}

struct Pool {
    runtime: Arc<JobRuntime>,
    sinks: Sinks,
    cmd_tx: mpsc::UnboundedSender<PoolCmd>,
    shared: Arc<Mutex<PoolShared>>,
    generation: u64,
    groups: Vec<Option<Vec<TargetGroup>>>,
    providers: Vec<JoinHandle<()>>,
    loops: HashMap<Labels, LoopHandle>,
}

impl Pool {
    async fn run(mut self, mut cmd_rx: mpsc::UnboundedReceiver<PoolCmd>) {
        self.start_providers();
        while let Some(cmd) = cmd_rx.recv().await {
            match cmd {
                PoolCmd::Discovered {
                    generation,
                    provider,
                    groups,
                } => {
                    if generation != self.generation {
                        continue;
                    }
                    if let Some(slot) = self.groups.get_mut(provider) {
                        *slot = Some(groups);
                    }
                    self.sync();
                }
                PoolCmd::Reload(rt) => {
                    let rediscover = !same_discovery(&self.runtime.config, &rt.config);
                    self.runtime = rt;
                    if rediscover {
                        self.start_providers();
                    } else {
                        self.sync();
                    }
                }
                PoolCmd::Stop(mode) => {
                    for p in self.providers.drain(..) {
                        p.abort();
                    }
                    let loops: Vec<LoopHandle> = self.loops.drain().map(|(_, l)| l).collect();
                    for l in &loops {
                        let _ = l.stop_tx.send(Some(mode));
                    }
                    if mode == StopMode::Quiet {
                        for l in loops {
                            let _ = l.task.await;
                        }
                    }
                    return;
                }
            }
        }
    }

    fn start_providers(&mut self) {
        for p in self.providers.drain(..) {
            p.abort();
        }
        self.generation += 1;
        let providers = providers_of(&self.runtime.config);
        self.groups = vec![None; providers.len()];
        for (i, provider) in providers.into_iter().enumerate() {
            let tx = self.cmd_tx.clone();
            let generation = self.generation;
            let send = move |groups: Vec<TargetGroup>| {
                tx.send(PoolCmd::Discovered {
                    generation,
                    provider: i,
                    groups,
                })
                .is_ok()
            };
            let client = self.runtime.client.clone();
            let job = self.runtime.config.job_name.clone();
            self.providers
                .push(tokio::spawn(run_provider(provider, send, client, job)));
        }
    }

    /// Recomputes targets from the groups and reconciles the loops.
    fn sync(&mut self) {
        if self.groups.iter().any(Option::is_none) {
            return;
        }
        let all: Vec<TargetGroup> = self.groups.iter().flatten().flatten().cloned().collect();
        let cfg = Arc::clone(&self.runtime.config);
        let populated = populate_targets(&cfg, &all);
        let mut next: HashMap<Labels, LoopHandle> = HashMap::new();
        for target in populated.active {
            let params = Arc::new(self.loop_params(&target));
            match self.loops.remove(&target.full) {
                Some(mut h) => {
                    let _ = h.params_tx.send(params);
                    h.target = target;
                    next.insert(h.target.full.clone(), h);
                }
                None => {
                    let (params_tx, params_rx) = watch::channel(params);
                    let (stop_tx, stop_rx) = watch::channel(None);
                    let status = Arc::new(Mutex::new(TargetStatus::default()));
                    let seed = target.full.stable_hash() ^ target.url.len() as u64;
                    let task = tokio::spawn(scrape_loop::run(
                        params_rx,
                        stop_rx,
                        self.sinks.clone(),
                        Arc::clone(&status),
                        seed,
                    ));
                    next.insert(
                        target.full.clone(),
                        LoopHandle {
                            target,
                            status,
                            params_tx,
                            stop_tx,
                            task,
                        },
                    );
                }
            }
        }
        for (_, old) in self.loops.drain() {
            let _ = old.stop_tx.send(Some(StopMode::Removed));
            drop(old.task);
        }
        self.loops = next;
        let mut shared = self.shared.lock();
        let mut active: Vec<(Target, Arc<Mutex<TargetStatus>>)> = self
            .loops
            .values()
            .map(|h| (h.target.clone(), Arc::clone(&h.status)))
            .collect();
        active.sort_by(|a, b| a.0.labels.cmp(&b.0.labels));
        shared.active = active;
        shared.dropped = populated.dropped.into_iter().map(|(l, _)| l).collect();
    }

    fn loop_params(&self, target: &Target) -> LoopParams {
        let cfg = &self.runtime.config;
        LoopParams {
            client: self.runtime.client.clone(),
            url: target.url.clone(),
            parsed_url: reqwest::Url::parse(&target.url).ok(),
            timeout_header: scrape_loop::timeout_header(target.timeout),
            interval: target.interval,
            timeout: target.timeout,
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            sample_limit: cfg.sample_limit,
            label_limit: cfg.label_limit,
            label_name_length_limit: cfg.label_name_length_limit,
            label_value_length_limit: cfg.label_value_length_limit,
            body_size_limit: self.runtime.body_size_limit,
            metric_relabel: cfg.metric_relabel_configs.clone(),
            auth: self.runtime.auth.clone(),
            target_labels: target.labels.clone(),
        }
    }
}

async fn run_provider(
    provider: Provider,
    send: impl Fn(Vec<TargetGroup>) -> bool,
    client: reqwest::Client,
    job: String,
) {
    match provider {
        Provider::Static(groups) => {
            send(groups);
        }
        Provider::File(cfg) => {
            let mut watcher = FileWatcher::new(cfg);
            let period = watcher.poll_period();
            loop {
                let w = watcher;
                let Ok((w, groups)) = tokio::task::spawn_blocking(move || {
                    let mut w = w;
                    let g = w.poll();
                    (w, g)
                })
                .await
                else {
                    return;
                };
                watcher = w;
                if let Some(groups) = groups {
                    if !send(groups) {
                        return;
                    }
                }
                tokio::time::sleep(period).await;
            }
        }
        Provider::Http(cfg) => {
            let mut reported = false;
            loop {
                match discovery::fetch_http_sd(&client, &cfg).await {
                    Ok(groups) => {
                        reported = true;
                        if !send(groups) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%job, error = %e, "http_sd refresh failed; keeping previous targets");
                        if !reported {
                            reported = true;
                            if !send(Vec::new()) {
                                return;
                            }
                        }
                    }
                }
                tokio::time::sleep(cfg.refresh_interval.0).await;
            }
        }
        Provider::Dns(cfg) => {
            let mut reported = false;
            loop {
                match discovery::resolve_dns_sd(&cfg).await {
                    Ok(groups) => {
                        reported = true;
                        if !send(groups) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%job, error = %e, "dns_sd refresh failed; keeping previous targets");
                        if !reported {
                            reported = true;
                            if !send(Vec::new()) {
                                return;
                            }
                        }
                    }
                }
                tokio::time::sleep(cfg.refresh_interval.0.max(Duration::from_secs(1))).await;
            }
        }
    }
}
