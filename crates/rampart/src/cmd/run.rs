//! `rampart run`: both planes in one process, for small sites: the AF_XDP data plane and the
//! IKE daemon of one configuration file ([`config`]), sharing the SA database, one metrics
//! endpoint and one log. SIGHUP (or `rampart ctl reload`) re-reads the file: the IKE daemon
//! applies the difference in connections, the log filter follows; the data plane's interfaces
//! and cores need a restart. SIGINT or SIGTERM stops both: the IKE daemon first (SAs stay in
//! the database), then the workers, whose XDP programs are detached.
//!
//! Production runs the same two planes as two processes (`rampart dataplane`, `rampart ike`)
//! sharing the database; this module only wires the libraries together and never handles a key.

pub mod config;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use rampart_ike_daemon::config_file::ConfError;
use rampart_telemetry::LogHandle;
use tracing::{info, warn};

use self::config::RunConfig;
use super::CmdError;
use super::telemetry::{LogArgs, MetricsArgs, registry, serve};

/// `rampart run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Configuration file: the IKE daemon's file with a [dataplane] table (see the rampart README).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Check the configuration file (and its secrets file) and exit.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

/// Runs `rampart run`.
pub fn run(args: RunArgs) -> Result<(), CmdError> {
    let cfg = RunConfig::load(&args.config).map_err(|e| CmdError(e.to_string()))?;
    let listen = args.metrics.resolve(cfg.metrics_listen)?;
    if args.check {
        for w in &cfg.ike.warnings {
            eprintln!("warning: {w}");
        }
        println!(
            "{}: ok ({} connections; data plane on {} and {}, cores {:?}; SA database {})",
            args.config.display(),
            cfg.ike.connections.len(),
            cfg.dataplane.lan.name,
            cfg.dataplane.wan.name,
            cfg.dataplane.cores,
            cfg.database().display()
        );
        return Ok(());
    }
    let log = args.log.init(cfg.log.as_deref(), cfg.log_format.as_deref())?;
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| CmdError(format!("signal handler: {e}")))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| CmdError(format!("signal handler: {e}")))?;

    let metrics = registry("run");
    // Listen first: a taken port refuses the start before anything is attached.
    let server = serve(listen, &metrics)?;

    // The database exists before the data plane attaches to it: create it with the IKE
    // daemon's capacities (the daemon opens it as its writer right after).
    let d = &cfg.ike.daemon;
    let caps = rampart_sadb::Capacities { sas: d.sa_capacity, policies: d.policy_capacity, ..Default::default() };
    drop(
        rampart_sadb::Writer::open_or_create(&d.database, caps)
            .map_err(|e| CmdError(format!("SA database {}: {e}", d.database.display())))?,
    );

    let dataplane =
        rampart_dataplane::Dataplane::start(&cfg.dataplane).map_err(|e| CmdError(format!("data plane: {e}")))?;
    dataplane.register_metrics(&metrics).map_err(|e| CmdError(format!("data plane: {e}")))?;
    for line in &dataplane.report {
        info!("data plane: {line}");
    }

    // The log filter follows the file on reload unless the command line or RUST_LOG set it.
    let follow_log = args.log.log.is_none() && std::env::var_os("RUST_LOG").is_none();
    let loader = reloader(cfg.dataplane.clone(), follow_log.then(|| log.clone()));
    let options = rampart_ike_daemon::Options { metrics: metrics.clone(), loader: Some(loader) };
    let ike = match rampart_ike_daemon::spawn_with(&args.config, options) {
        Ok(h) => h,
        Err(e) => {
            dataplane.stop();
            return Err(CmdError(format!("IKE daemon: {e}")));
        }
    };
    if let Some(s) = &server {
        info!(addr = %s.local_addr(), "metrics on http://{}/metrics", s.local_addr());
    }
    info!(
        control = %ike.control_socket().display(),
        connections = cfg.ike.connections.len(),
        "rampart run: both planes running"
    );

    let mut last_file = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if hup.swap(false, Ordering::Relaxed) {
            info!("SIGHUP: reloading the configuration");
            ike.reload();
        }
        if let Some(path) = &cfg.dataplane.stats_file
            && last_file.elapsed() >= Duration::from_millis(250)
        {
            last_file = Instant::now();
            rampart_dataplane::stats::write_file(path, &dataplane.snapshot());
        }
    }
    info!("stopping: the IKE daemon (its SAs stay in the database), then the data plane");
    ike.stop();
    let last = dataplane.stop();
    if let Some(path) = &cfg.dataplane.stats_file {
        rampart_dataplane::stats::write_file(path, &last);
    }
    drop(server);
    info!("stopped (XDP programs detached, sockets closed)");
    Ok(())
}

/// What the IKE daemon calls to read the file at every reload: the whole file is checked (a
/// mistake in `[dataplane]` refuses the reload as one in a connection does), the log filter
/// follows the file, and changes to the data plane's settings are reported as needing a
/// restart.
fn reloader(running: rampart_dataplane::Config, log: Option<LogHandle>) -> rampart_ike_daemon::ConfigLoader {
    Arc::new(move |path: &Path| -> Result<rampart_ike_daemon::config_file::Config, ConfError> {
        let new = RunConfig::load(path)?;
        if new.dataplane != running {
            warn!("changes to [dataplane] take effect at the next restart of rampart run");
        }
        if let Some(log) = &log
            && let Err(e) = log.set_filter(new.log.as_deref().unwrap_or(rampart_telemetry::log::DEFAULT_FILTER))
        {
            warn!(error = %e, "log filter not changed");
        }
        Ok(new.ike)
    })
}
