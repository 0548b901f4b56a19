//! `rampart dataplane`: runs the AF_XDP data plane of a configuration file until SIGINT or
//! SIGTERM, then detaches the XDP programs, closes the sockets and prints the counters.
//! Everything else (the file format, the workers) lives in `rampart-dataplane`; this module only
//! reads the command line, sets up logging and the metrics registry.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CmdError;
use super::telemetry::{LogArgs, MetricsArgs, registry};

/// `rampart dataplane`.
#[derive(Args, Debug)]
pub struct DataplaneArgs {
    /// Configuration file (TOML; see the rampart-dataplane README).
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Print per-worker counters every SECONDS (fractions allowed).
    #[arg(long, value_name = "SECONDS")]
    stats_interval: Option<f64>,
    /// Check the configuration file and exit.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

/// Runs `rampart dataplane`.
pub fn run(args: DataplaneArgs) -> Result<(), CmdError> {
    let mut config = rampart_dataplane::Config::load(&args.config).map_err(|e| CmdError(e.to_string()))?;
    config.metrics_listen = args.metrics.resolve(config.metrics_listen)?;
    if args.check {
        println!("{}: ok", args.config.display());
        return Ok(());
    }
    let interval = match args.stats_interval {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => return Err(CmdError(format!("--stats-interval {s}: must be a positive number of seconds"))),
        None => None,
    };
    let _log = args.log.init(None, None)?;
    rampart_dataplane::run(&config, interval, registry("dataplane")).map(|_| ()).map_err(|e| CmdError(e.to_string()))
}
