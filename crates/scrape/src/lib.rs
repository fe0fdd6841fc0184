//! Prometheus-compatible scraping: everything between a `scrape_configs`
//! section and [`storage_api::SampleAppender::append_by_ref`].
//!
//! Layer 3: depends on `model` and `storage-api` only; the server (layer 5)
//! wires a [`ScrapeManager`] to its storage and serves its [`TargetsView`]
//! on `/api/v1/targets`.
//!
//! Code map:
//! - [`exposition`]: the Prometheus text format 0.0.4 and OpenMetrics 1.0 parser;
//! - [`relabel`]: `relabel_configs` / `metric_relabel_configs` with every action;
//! - [`config`]: `global` + `scrape_configs` as in `prometheus.yml`, validated;
//! - [`discovery`]: static, file, HTTP and DNS service discovery, and the
//!   turning of discovered groups into targets;
//! - [`manager`]: scrape pools, scrape loops, staleness, hot reload, the
//!   targets API views.
//!
//! Not done here: native histograms, Kubernetes/Consul/cloud discovery.
#![warn(missing_docs)]

pub mod config;
pub mod discovery;
pub mod exposition;
pub mod manager;
pub mod relabel;
mod scrape_loop;
mod time_fmt;

pub use config::{ConfigError, GlobalConfig, ScrapeConfig, ScrapeConfigs};
pub use manager::{ActiveTarget, DroppedTarget, ScrapeManager, TargetMetadata, TargetsView};
pub use relabel::{relabel, RelabelConfig};
