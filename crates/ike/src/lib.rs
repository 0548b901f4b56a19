//! IKEv2 (RFC 7296) protocol core for Rampart: messages, proposals, key derivation,
//! authentication, exchanges, retransmission and timers.
//!
//! The protocol core does no I/O (DESIGN.md rule 1): an [`Endpoint`] takes datagrams and a clock
//! value and hands back datagrams to send ([`Transmit`]), SAs to install or remove ([`Event`]), and
//! when it next wants to be woken. Sockets, timers, threads, the SA database and the
//! configuration file belong to the daemon around it (`rampart-ike-daemon`); this crate depends
//! on nothing that could do I/O, and `tests/no_io.rs` fails if its sources name a socket, a
//! file, a thread, a process or the system clock. Keys never reach a log or a `Debug` output.
//!
//! Module map:
//! - [`message`]: the wire codec (header, payload chain, every payload); [`sk`]: the Encrypted
//!   payload and its fragments; [`fragment`]: IKE fragmentation's sizes, limits and
//!   reassembly (RFC 7383); [`crypto`]: PRF, integrity, ciphers, DH groups; [`keys`]: key derivation;
//!   [`proposal`]: swanctl keywords, RFC 8247 policy, ESP and AH selection; [`ts`]: selector narrowing;
//!   [`nat`], [`cookie`]: NAT detection and cookies; [`auth`]: authenticators and the proof;
//!   [`hex`]: hex decoding.
//! - [`config`]: what a connection, its children and the endpoint are configured with, as plain
//!   structs named after swanctl.conf keys (reading them from a file is the daemon's
//!   `config_file`).
//! - [`offload`]: Diffie-Hellman work a daemon runs on other threads (precomputed key shares,
//!   shared-secret jobs).
//! - [`state`]: an IKE SA and its CHILD_SAs as the exchanges see them, the context a task runs
//!   in and the task interface; [`tasks`]: one exchange per file, looking down to `state`;
//!   [`ike_sa`]: the driver of one IKE SA (messages in and out, retransmission, dispatch to the
//!   tasks, timers); [`endpoint`]: all IKE SAs, routing, half-open limits.
//! - [`event`]: what the endpoint hands back; [`exchange_log`]: exchange counts and round-trip
//!   times for a daemon's metrics; [`diagnostic`]: what was dropped without an answer and why,
//!   and the refusals (NO_PROPOSAL_CHOSEN, an AH child over NAT, AUTHENTICATION_FAILED) a
//!   daemon logs.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cert;
pub mod config;
pub mod cookie;
pub mod crypto;
pub mod diagnostic;
pub mod endpoint;
pub mod event;
pub mod exchange_log;
pub mod fragment;
pub mod hex;
pub mod identity;
pub mod ike_sa;
pub mod keys;
pub mod message;
pub mod nat;
pub mod offload;
pub mod proposal;
pub mod sign;
pub mod sk;
pub mod state;
pub mod tasks;
pub mod trust;
pub mod ts;

pub use config::{
    AuthConfig, AuthMethod, ChildConfig, ConnectionConfig, EndpointConfig, Fragmentation, Psk, StartAction,
};
pub use endpoint::{ChildSaInfo, Endpoint, EndpointError, IkeSaInfo};
pub use event::{ChildSaId, DownReason, Event, IkeSaId, Transmit};
