//! `rampart ike`: runs the IKE daemon of a configuration file until SIGINT or SIGTERM (SIGHUP
//! reloads the file). Everything else (the file format, the event loop, the SA database side)
//! lives in `rampart_ike_daemon` (and its `config_file`); this module reads the command line,
//! sets up logging, the metrics registry and endpoint, and signals, and must never print a
//! secret.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;
use rampart_ike_daemon::Options;
use rampart_ike_daemon::config_file::Config;

use super::CmdError;
use super::telemetry::{LogArgs, MetricsArgs, registry, serve};

/// `rampart ike`.
#[derive(Args, Debug)]
pub struct IkeArgs {
    /// Configuration file (TOML with swanctl.conf keys; see the rampart-ike README).
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

/// Runs `rampart ike`.
pub fn run(args: IkeArgs) -> Result<(), CmdError> {
    if args.check {
        let cfg = Config::load(&args.config).map_err(|e| CmdError(e.to_string()))?;
        for w in &cfg.warnings {
            eprintln!("warning: {w}");
        }
        println!("{}: ok ({} connections)", args.config.display(), cfg.connections.len());
        return Ok(());
    }
    let listen = args.metrics.resolve(Some(super::telemetry::IKE_METRICS_LISTEN))?;
    let _log = args.log.init(None, None)?;
    let metrics = registry("ike");
    let _server = serve(listen, &metrics)?;
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| CmdError(format!("signal handler: {e}")))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .map_err(|e| CmdError(format!("signal handler: {e}")))?;
    rampart_ike_daemon::run_with(&args.config, stop, reload, Options { metrics, loader: None })
        .map_err(|e| CmdError(e.to_string()))
}
