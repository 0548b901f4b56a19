//! The vocabulary both planes share: what an SA is made of and why a packet is dropped.
//!
//! The IKE daemon negotiates [`SaConfig`]s, the SA database stores them, the data plane turns
//! them into runtimes (`rampart-esp`) and counts its drops by [`DropReason`]; the telemetry
//! names the same reasons. None of them needs another's code for that: this crate is plain
//! data with its validation (the RFC 8221 suite policy, selector matching) and nothing else.
//!
//! It must never gain a dependency on crypto backends, packet processing or I/O.
//!
//! | module     | what it is for                                                         |
//! |------------|------------------------------------------------------------------------|
//! | [`suite`]  | [`Suite`] = [`Encryption`] + [`Integrity`], the RFC 8221 policy        |
//! | [`config`] | [`SaConfig`], [`TrafficSelector`], [`Mode`], [`Direction`], lifetimes   |
//! | [`mod@drop`] | [`DropReason`] and per-worker [`DropCounters`]                          |
#![forbid(unsafe_code)]

pub mod config;
pub mod drop;
pub mod suite;

pub use config::{
    DEFAULT_REPLAY_WINDOW, Direction, Lifetimes, MAX_REPLAY_WINDOW, Mode, Protocol, SaConfig, TrafficSelector, UdpEncap,
};
pub use drop::{DropCounters, DropReason};
pub use suite::{Encryption, Integrity, PolicyError, Suite, encr_id, integ_id};
