//! IKEv2 (RFC 7296) protocol core for Rampart: messages, proposals, key derivation,
//! authentication, exchanges, retransmission and timers.
//!
//! This crate does no I/O (DESIGN.md rule 1): an [`Endpoint`] takes datagrams and a clock value
//! and hands back datagrams to send, SAs to install or remove, and when it next wants to be
//! woken. Sockets, timers, threads and the SA database belong to the daemon around it.
#![forbid(unsafe_code)]

pub mod crypto;
pub mod keys;
pub mod message;
pub mod proposal;
pub mod sk;
pub mod util;
