//! Rampart's IKE daemon (`rampart ike`, and the IKE half of `rampart run`): the IKEv2 core
//! (`rampart-ike`, which does no I/O) driven by real sockets, a clock, a worker pool, the SA
//! database and a control socket, with the configuration file that sets it up.
//! # Threads
//!
//! | thread | owns | talks to |
//! |---|---|---|
//! | `ike-loop` (the event loop, `event_loop`) | the [`rampart_ike::Endpoint`], the UDP sockets, the [`database::Database`] writer, the configuration | everything below through channels, woken by an eventfd |
//! | `ike-dh-N` (the worker pool, [`pool`]) | nothing shared | computes Diffie-Hellman shared secrets ([`rampart_ike::offload::DhJob`]) and keeps precomputed key shares ready |
//! | `ike-control` (+ one per client) | the unix control socket ([`control`]) | hands requests to the loop and waits for the answer |
//!
//! The loop waits in `epoll` on every socket and the wake-up eventfd, with a timeout at the
//! endpoint's next timer or the next database tick (usage counters and events every
//! `daemon.usage_interval`). Per wake-up it reads what the sockets hold, hands finished DH work
//! back, serves control requests, runs due timers, then sends, installs and submits what all
//! that produced.
//!
//! # Restart and re-attach
//!
//! Stopping the daemon (SIGTERM, or SIGKILL) leaves every SA and policy in the database: the
//! data plane keeps forwarding. A new daemon attaches as the database's writer and treats what
//! it finds as *stale*: kept forwarding, never touched until replaced. At start it initiates
//! every connection with a child that has `start_action = start` or stale SAs in the file (and
//! an address to reach the peer); the peer, seeing INITIAL_CONTACT, drops its old SAs; the new
//! CHILD_SA takes over the tunnel's policies make-before-break, and the stale SAs of that
//! tunnel are deleted `daemon.stale_grace` later. Stale SAs of tunnels the daemon cannot
//! re-initiate (responder-only connections) stay until the peer comes back or their hard
//! lifetime; those of children no longer configured go after `stale_grace`.
//!
//! # Modules
//!
//! [`config_file`] reads the configuration file (swanctl.conf keys in TOML, through
//! `rampart-config`); [`control`] is the control socket and its protocol; [`database`] the SA
//! database writer; [`pool`] the Diffie-Hellman workers; [`sockets`] the UDP sockets and the
//! non-ESP marker; [`metrics`] and [`stats`] what the daemon counts; [`diagnostic_log`] the
//! rate-limited log lines of what the endpoint dropped or refused; [`host_addrs`] the host's
//! addresses, bound for connections with `local_addrs = %any`. Each looks down to the
//! core and to the modules it names, never back up to the loop.
//!
//! What the daemon must never do: block the loop on Diffie-Hellman (it goes to the pool), log a
//! key, or remove an SA that still carries outbound traffic before its successor is bound.
#![forbid(unsafe_code)]

pub mod config_file;
pub mod control;
pub mod database;
pub mod diagnostic_log;
mod event_loop;
pub mod host_addrs;
pub mod metrics;
pub mod pool;
pub mod sockets;
pub mod stats;
mod waker;

pub use event_loop::{
    ConfigLoader, DaemonError, DaemonHandle, Options, list_sas, memory, memory_of, run, run_with, spawn, spawn_with,
};
pub use waker::Waker;
