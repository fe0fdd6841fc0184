//! `haetae serve`: reads the configuration, opens the storage, wires it to
//! the HTTP API, runs background work and shuts down cleanly.
//!
//! Layer 5: the only place where engines (`tsdb`) meet the API (`api`).
//! It implements the traits `api` defines ([`api::AdminHandler`]).
#![warn(missing_docs)]

mod admin;
mod agent_mode;
mod collect;
pub mod config;
mod info;
mod lenient;
mod process;
pub mod promql_test;

pub use agent_mode::{run_agent, AgentCommand};
pub use config::Config;

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The address `serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9201";
/// The data directory `serve` uses by default.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// What `haetae serve` was asked to do.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration file, if any.
    pub config_file: Option<PathBuf>,
    /// Overrides the listen address.
    pub listen: Option<SocketAddr>,
    /// Overrides the data directory.
    pub data_dir: Option<PathBuf>,
}

/// Runs the server until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let config = match &opts.config_file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let config_text = match &opts.config_file {
        Some(path) => std::fs::read_to_string(path).ok(),
        None => None,
    };
    let data_dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&config.storage.tsdb.path));
    let listen: SocketAddr = match opts.listen {
        Some(a) => a,
        None => config.web.listen_address.parse().with_context(|| {
            format!(
                "cannot parse web.listen_address {:?} as host:port",
                config.web.listen_address
            )
        })?,
    };
    let db_opts = config.db_options();
    tracing::info!(data_dir = %data_dir.display(), "opening storage");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listener.local_addr().unwrap_or(listen), "listening");

    let ready = Arc::new(AtomicBool::new(false));
    let (storage_tx, storage_rx) = tokio::sync::oneshot::channel();
    let dir = data_dir.clone();
    // Opening replays the WAL, which can take a while: serve /-/healthy and
    // a 503 /-/ready meanwhile.
    std::thread::Builder::new().name("storage-open".into()).spawn(move || {
        let _ = storage_tx.send(tsdb::Storage::open(&dir, db_opts));
    })?;
    let pending = axum::Router::new()
        .route("/-/healthy", axum::routing::get(|| async { "Haetae is Healthy.\n" }))
        .fallback(|| async {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: opening storage\n",
            )
        });
    let (stop_pending_tx, stop_pending_rx) = tokio::sync::oneshot::channel::<()>();
    let std_listener = listener.into_std()?;
    let pending_listener = tokio::net::TcpListener::from_std(std_listener.try_clone()?)?;
    let pending_server = tokio::spawn(async move {
        let _ = axum::serve(pending_listener, pending)
            .with_graceful_shutdown(async move {
                let _ = stop_pending_rx.await;
            })
            .await;
    });
    let storage = storage_rx
        .await
        .context("storage opening thread died")?
        .context("cannot open storage")?;
    let _ = stop_pending_tx.send(());
    let _ = pending_server.await;
    storage.start_background(Duration::from_secs(30));

    let admin = Arc::new(admin::Admin::new(Arc::clone(&storage), data_dir.clone()));
    let deltas = api::DeltaAccumulator::open(&data_dir.join(agent_mode::DELTA_TOTALS_FILE))?;
    let push = Arc::new(api::PushState::with_deltas(deltas));
    let state = api::AppState {
        appender: storage.clone(),
        queryable: storage.clone(),
        metadata: storage.clone(),
        admin,
        metrics: Arc::new(api::ApiMetrics::default()),
        limits: Arc::new(config.api_limits()),
        ready: Arc::clone(&ready),
        push: Arc::clone(&push),
        query: Arc::new(api::QueryService::new(config.query_limits()).context("cannot start query threads")?),
        info: Arc::new(info::server_info(
            &config,
            config_text.as_deref(),
            &data_dir,
            &listen.to_string(),
        )),
    };
    let appender: Arc<dyn storage_api::SampleAppender> = storage.clone();
    let manager = Arc::new(scrape::ScrapeManager::new(
        Arc::clone(&appender),
        storage.clone(),
        model::TenantId::default(),
    ));
    let collection = Arc::new(collect::Collection::new(
        Arc::clone(&manager),
        opts.config_file.clone(),
        collect::self_address(listen),
    ));
    collection
        .apply(&config)
        .map_err(|e| anyhow::anyhow!("cannot apply scrape configuration: {e}"))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if config.self_monitoring.host_metrics {
        tokio::spawn(collect::host_metrics_loop(
            Arc::clone(&appender),
            config.self_monitoring.interval,
            stop_rx.clone(),
        ));
    }
    tokio::spawn(reload_on_sighup(Arc::clone(&collection), stop_rx));
    let app = api::router(state).merge(api::control_router(collection.clone(), collection.clone()));
    ready.store(true, Ordering::Release);
    tracing::info!("ready");
    let listener = lenient::LenientListener(tokio::net::TcpListener::from_std(std_listener)?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server failed")?;
    ready.store(false, Ordering::Release);
    let _ = stop_tx.send(true);
    collection.manager().shutdown().await;
    if let Err(e) = push.deltas.save() {
        tracing::error!(error = %e, "cannot save OTLP delta totals");
    }
    tracing::info!("shutting down: checkpointing the head");
    let st = Arc::clone(&storage);
    tokio::task::spawn_blocking(move || st.close())
        .await?
        .context("cannot close storage cleanly")?;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads the configuration on SIGHUP until `stop` fires.
async fn reload_on_sighup(collection: Arc<collect::Collection>, mut stop: tokio::sync::watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%err, "cannot listen for SIGHUP");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("received SIGHUP: reloading configuration");
                let c = Arc::clone(&collection);
                match tokio::task::spawn_blocking(move || api::ReloadHandler::reload(&*c)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::error!(%err, "configuration reload failed; the old one stays in force"),
                    Err(err) => tracing::error!(%err, "configuration reload task failed"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%err, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
