//! The exchanges, one task per file in strongSwan's manner: each has an initiator half (a
//! [`crate::state::Task`]: `build_i` makes the request, `process_i` reads the answer) and a
//! responder half (`process_r` reads the request and returns the answer, i.e. `build_r`).
//!
//! Tasks change the IKE SA they run on ([`crate::state`]) and emit events through its context;
//! the driver in [`crate::ike_sa`] routes messages to them. Tasks look down to the state and
//! across to each other, never up to the driver, and never do I/O.

pub mod child_create;
pub mod child_delete;
pub mod child_rekey;
pub mod ike_auth;
pub mod ike_delete;
pub mod ike_dpd;
pub mod ike_init;
pub mod ike_rekey;
