//! What `rampart dataplane` does: the data plane of a configuration until SIGINT or SIGTERM,
//! with its metrics endpoint and its stats file. What it does is logged through `tracing`; the
//! counter tables (every `stats_interval` when asked for, and the final one) are the command's
//! output and go to stdout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rampart_telemetry::{Metrics, MetricsServer};

use crate::config::Config;
use crate::error::Error;
use crate::running::Dataplane;
use crate::stats;

/// Runs the data plane of `config` until SIGINT or SIGTERM: prints what it set up, the
/// counters every `stats_interval` (if given) and at exit, keeps `config.stats_file` up to
/// date (4 times a second), and serves the workers' counters through `metrics` on
/// `config.metrics_listen`. This is what `rampart dataplane` does.
pub fn run(config: &Config, stats_interval: Option<Duration>, metrics: Arc<Metrics>) -> Result<stats::Snapshot, Error> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|source| Error::Io { what: "signal handler", source })?;
    }
    // Listen first: a taken port refuses the start before any XDP program is attached.
    let server = match config.metrics_listen {
        Some(addr) => {
            Some(MetricsServer::start(addr, metrics.clone()).map_err(|source| Error::Metrics { addr, source })?)
        }
        None => None,
    };
    let dp = Dataplane::start(config)?;
    dp.register_metrics(&metrics)?;
    for line in &dp.report {
        tracing::info!("{line}");
    }
    if let Some(s) = &server {
        tracing::info!(addr = %s.local_addr(), "metrics on http://{}/metrics", s.local_addr());
    }
    tracing::info!("running");
    let write_stats = |snap: &stats::Snapshot| {
        if let Some(path) = &config.stats_file {
            stats::write_file(path, snap);
        }
    };
    let mut last_print = Instant::now();
    let mut last_file = Instant::now();
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(i) = stats_interval
            && last_print.elapsed() >= i
        {
            last_print = Instant::now();
            print!("{}", dp.snapshot().to_text());
            println!();
        }
        if last_file.elapsed() >= Duration::from_millis(250) {
            last_file = Instant::now();
            write_stats(&dp.snapshot());
        }
    }
    tracing::info!("stopping");
    let snap = dp.stop();
    write_stats(&snap);
    print!("{}", snap.to_text());
    tracing::info!("stopped (XDP programs detached, sockets closed)");
    Ok(snap)
}
