//! The logging and metrics options of the long-running commands (`dataplane`, `ike`, `run`):
//! `--log`, `--log-format` and `--metrics-listen`, with their environment variables, and the
//! one place that turns them into a tracing subscriber and a metrics endpoint. It never logs a
//! value of its own and never opens anything but the listening socket it is asked for.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Args;
use rampart_telemetry::log::{LogError, LogFormat, LogHandle, LogOptions};
use rampart_telemetry::{Metrics, MetricsServer};

use super::CmdError;

/// `--log` and `--log-format`.
#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log filter (`info`, `rampart_ike=debug`, ...); RUST_LOG wins when set.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
    /// Log format: auto (journald when stderr is the journal), plain, journald or json.
    #[arg(long, value_name = "FORMAT", env = "RAMPART_LOG_FORMAT")]
    pub log_format: Option<String>,
}

impl LogArgs {
    /// Installs the process's subscriber: the command line first, then `file_filter` and
    /// `file_format` (from a configuration file), then the defaults (`info`, `auto`).
    pub fn init(&self, file_filter: Option<&str>, file_format: Option<&str>) -> Result<LogHandle, CmdError> {
        let format_text = self.log_format.as_deref().or(file_format).unwrap_or("auto");
        let format: LogFormat = format_text.parse().map_err(|e: LogError| CmdError(e.to_string()))?;
        let filter = self.log.as_deref().or(file_filter);
        rampart_telemetry::log::init(&LogOptions::from_env(filter, format)).map_err(|e| CmdError(e.to_string()))
    }
}

/// Where `rampart ike` serves its metrics unless told otherwise (the data plane and `rampart
/// run` take 9184, so that both processes of a gateway fit on one loopback).
pub const IKE_METRICS_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9185);

/// `--metrics-listen`.
#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Where /metrics, /stats and /stats.json listen: IP:PORT, or "off" (overrides the file).
    #[arg(long, value_name = "ADDR", env = "RAMPART_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
}

impl MetricsArgs {
    /// The address to listen on: the command line, else the configuration's `file` value.
    pub fn resolve(&self, file: Option<SocketAddr>) -> Result<Option<SocketAddr>, CmdError> {
        match &self.metrics_listen {
            Some(s) => {
                rampart_dataplane::config::parse_listen(s).map_err(|e| CmdError(format!("--metrics-listen: {e}")))
            }
            None => Ok(file),
        }
    }
}

/// A registry for this process, with `rampart_build_info{process}` set.
pub fn registry(process: &str) -> Arc<Metrics> {
    let m = Arc::new(Metrics::new());
    m.set_build_info(process);
    m
}

/// Starts the endpoint on `addr` (none for `None`), logging where it is.
pub fn serve(addr: Option<SocketAddr>, metrics: &Arc<Metrics>) -> Result<Option<MetricsServer>, CmdError> {
    let Some(addr) = addr else { return Ok(None) };
    MetricsServer::start(addr, metrics.clone())
        .map(Some)
        .map_err(|e| CmdError(format!("metrics endpoint {addr}: {e} (use --metrics-listen ADDR, or off)")))
}
