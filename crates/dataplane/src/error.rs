//! Why the data plane could not start: one error type for every step of `Dataplane::start`.

use std::path::PathBuf;

use crate::config;

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// The SA database could not be attached.
    #[error("SA database {path}: {source}")]
    Database {
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: rampart_sadb::OpenError,
    },
    /// An interface named in the configuration does not exist.
    #[error("interface {0:?} not found in this network namespace")]
    NoInterface(String),
    /// The WAN interface has no address and none is configured.
    #[error("interface {0:?} has no address; set [wan] local_addresses")]
    NoAddress(String),
    /// AF_XDP or XDP setup.
    #[error("{what}: {source}")]
    Nic {
        /// What was being set up.
        what: String,
        /// Why it failed.
        #[source]
        source: rampart_nic::Error,
    },
    /// The rtnetlink mirror or a thread could not start.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A worker failed to set up its sockets.
    #[error("worker {worker}: {reason}")]
    Worker {
        /// Worker number.
        worker: usize,
        /// Why.
        reason: String,
    },
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint {addr}: {source} (set metrics_listen, or \"off\")")]
    Metrics {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn nic(what: impl Into<String>) -> impl FnOnce(rampart_nic::Error) -> Error {
    let what = what.into();
    move |source| Error::Nic { what, source }
}
