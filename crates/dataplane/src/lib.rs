//! Rampart's data plane: AF_XDP workers that encrypt cleartext from the LAN into ESP on the WAN
//! and decrypt ESP from the WAN onto the LAN, reading their SAs and policies from the shared SA
//! database and their next hops from a mirror of the kernel's neighbour and route tables.
//!
//! # Threads and what each owns
//!
//! | thread | owns | shares (read) | shares (write) |
//! |---|---|---|---|
//! | worker k (pinned to its core) | its [`rampart_nic::Umem`], the LAN and WAN sockets of its queue pairs, its SA runtimes (expanded keys), its counters | [`tables::Tables`], [`mirror::NetState`] (immutable `Arc`s) | per-SA sequence counters and expiry flags (atomics), the database's usage area and event ring (once per SA per burst), its own [`stats::WorkerStats`] |
//! | control | the [`rampart_sadb::Snapshot`], the [`tables::TableBuilder`], the XDP programs' maps | the database | new [`tables::Tables`], LAN prefixes and WAN addresses in the XDP maps |
//! | mirror | the rtnetlink sockets | the kernel's tables | new [`mirror::NetState`] |
//! | main | the XDP programs (attach/detach), signals, the stats output | every [`stats::WorkerStats`] | the stats file |
//! | `rampart-metrics` | the metrics endpoint's listener | every [`stats::WorkerStats`], at each scrape ([`Dataplane::metrics_source`]) | nothing |
//!
//! # Modules
//!
//! | module | what it is for |
//! |---|---|
//! | [`config`] | the TOML file |
//! | `running`, `control`, `error` | [`Dataplane`]: starting it step by step, the control thread, [`Error`] |
//! | `run` | [`run`]: what `rampart dataplane` does until a signal |
//! | [`worker`] | the worker loop: rx bursts in, tx bursts out, kicks, idling |
//! | `ctx` | what a worker's burst paths work with (SA runtimes, tables, counters), no sockets |
//! | `outbound`, `inbound` | the two burst paths (LAN -> WAN, WAN -> LAN) over UMEM frames, on `rampart_esp::burst` |
//! | [`frame`] | Ethernet/IP handling outside ESP: flows, TTL, headers, ICMP errors |
//! | [`reasm`] | reassembly of outer IPv4 fragments |
//! | [`tables`] | compiled SPD and SA index, per-SA shared state, the sequence counter |
//! | [`mirror`], `netlink` | the neighbour/route/address mirror over rtnetlink |
//! | [`stats`] | per-worker counters and their output |
//!
//! This crate never uses `unsafe` (the kernel interfaces are in `rampart-nic` and
//! `rampart-sadb`), and its hot paths never allocate, lock or make a system call beyond the
//! tx kick.
#![forbid(unsafe_code)]

pub mod config;
mod control;
mod ctx;
mod error;
pub mod frame;
mod inbound;
pub mod mirror;
mod netlink;
mod outbound;
pub mod reasm;
mod run;
mod running;
pub mod stats;
pub mod tables;
pub mod worker;

#[cfg(test)]
mod burst_tests;

pub use config::Config;
pub use error::Error;
pub use run::run;
pub use running::{Dataplane, sa_usage};
