//! Rampart's telemetry: the metrics every process exports and the logging setup they share.
//!
//! Metrics are declared once, in [`schema`], and every output is generated from those
//! declarations: `/metrics` (Prometheus text format, [`http::MetricsServer`]), `rampart ctl
//! stats` ([`Snapshot::to_table`], served as `/stats`), the JSON dump (`/stats.json`) and the
//! sample names of benchmark reports ([`Snapshot::flat`], [`Snapshot::delta`]).
//!
//! Producers stay cheap:
//! - the data plane keeps [`dataplane::WorkerCounters`] in each worker's memory, publishes them
//!   once per burst into [`dataplane::PublishedCounters`] (relaxed stores), and a
//!   [`dataplane::DataplaneSource`] reads them into the registry only when scraped;
//! - latencies go into a thread's own [`LatencyRecorder`] (HDR histogram) and are flushed
//!   without waiting ([`LatencyRecorder::try_flush`]);
//! - the IKE daemon updates [`Counter`]/[`Gauge`] handles (one relaxed atomic each).
//!
//! Logging is `tracing` with [`log::init`]: per-module filters, journald-friendly lines, JSON
//! on request, and [`rate_limited!`] for the data path. This crate never logs a key; the
//! integration tests check that the key-holding types of the other crates don't either.
#![forbid(unsafe_code)]

pub mod dataplane;
pub mod http;
pub mod latency;
pub mod log;
pub mod ratelimit;
pub mod registry;
pub mod schema;
pub mod scrape;
pub mod snapshot;

pub use http::{DEFAULT_ADDR, MetricsServer};
pub use latency::{LatencyCell, LatencyRecorder, QuantileValues};
pub use log::{LogFormat, LogHandle, LogOptions};
pub use registry::{Counter, Gauge, HistogramHandle, Metrics, global};
pub use scrape::{Scrape, Source};
pub use snapshot::{Snapshot, Value};

/// The version every process reports in `rampart_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Metrics {
    /// Sets `rampart_build_info{version, process}` to 1; `process` is `run`, `dataplane` or `ike`.
    pub fn set_build_info(&self, process: &str) {
        self.gauge(&schema::BUILD_INFO, [VERSION, process]).set(1);
    }
}

#[doc(hidden)]
pub mod __private {
    pub use tracing;
}
