//! IKEv2 (RFC 7296) protocol core for Rampart: messages, proposals, key derivation,
//! authentication, exchanges, retransmission and timers.
//!
//! The protocol core does no I/O (DESIGN.md rule 1): an [`Endpoint`] takes datagrams and a clock
//! value and hands back datagrams to send ([`Transmit`]), SAs to install or remove ([`Event`]), and
//! when it next wants to be woken. Sockets, timers, threads and the SA database belong to the
//! daemon around it. Keys never reach a log or a `Debug` output.
//!
//! Module map:
//! - [`message`]: the wire codec (header, payload chain, every payload); [`sk`]: the Encrypted
//!   payload; [`crypto`]: PRF, integrity, ciphers, DH groups; [`keys`]: key derivation;
//!   [`proposal`]: swanctl keywords, RFC 8247 policy, selection; [`ts`]: selector narrowing;
//!   [`nat`], [`cookie`]: NAT detection and cookies; [`auth`]: authenticators and the proof.
//! - [`offload`]: Diffie-Hellman work a daemon runs on other threads (precomputed key shares,
//!   shared-secret jobs).
//! - [`state`]: an IKE SA and its CHILD_SAs as the exchanges see them, the context a task runs
//!   in and the task interface; [`tasks`]: one exchange per file, looking down to `state`;
//!   [`ike_sa`]: the driver of one IKE SA (messages in and out, retransmission, dispatch to the
//!   tasks, timers); [`endpoint`]: all IKE SAs, routing, half-open limits.
//!
//! Around the core, and the only modules that do I/O: [`conf`] reads the configuration file
//! (swanctl.conf keys in TOML), [`daemon`] drives the endpoint with sockets, a clock, a worker
//! pool, the SA database and a control socket (`rampart ike`).
#![forbid(unsafe_code)]

pub mod auth;
pub mod conf;
pub mod config;
pub mod cookie;
pub mod crypto;
pub mod daemon;
pub mod endpoint;
pub mod event;
pub mod exchange_log;
pub mod ike_sa;
pub mod keys;
pub mod message;
pub mod nat;
pub mod offload;
pub mod proposal;
pub mod sk;
pub mod state;
pub mod tasks;
pub mod ts;
pub mod util;

pub use config::{AuthConfig, AuthMethod, ChildConfig, ConnectionConfig, EndpointConfig, Psk, StartAction};
pub use endpoint::{ChildSaInfo, Endpoint, EndpointError, IkeSaInfo};
pub use event::{ChildSaId, DownReason, Event, IkeSaId, Transmit};
