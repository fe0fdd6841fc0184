//! The Haetae agent (`haetae agent`): collects host metrics under
//! node_exporter's names, buffers them in a bounded on-disk queue and forwards
//! them by Prometheus remote write to a Haetae server, so that a server outage
//! loses nothing.
//!
//! Layer 5. **Architecture invariant:** depends on `model`, `wal` and `wire`
//! only — never on `tsdb`, `promql` or `server` — so that it stays a small
//! process that can run on every host.
//!
//! The agent path is collect → queue → ship:
//! - [`collect`]: host metrics from `/proc` and `/sys` ([`collect::HostCollector`],
//!   also run by `haetae serve` for its own host);
//! - [`queue`]: the on-disk queue of remote-write batches, built on `wal` segments;
//! - [`ship`]: the forwarder (HTTP POST, retries with backoff, 400 → drop);
//! - [`run`]: wires them together until shutdown.
//!
//! Local scraping (`scrape_configs`) and the push receiver (`--listen`:
//! remote write, Influx, OTLP with delta sums turned into persisted
//! cumulative counters, text import) are not done here: the `scrape` and
//! `api` crates own them, and the binary feeds their series into the agent
//! through [`IngestSender`] (see [`AgentOptions::ingest`]).
#![warn(missing_docs)]

pub mod collect;
pub mod queue;
mod run;
pub mod ship;

pub use run::{ingest_channel, run, AgentOptions, IngestClosed, IngestReceiver, IngestSender, IngestSeries};
