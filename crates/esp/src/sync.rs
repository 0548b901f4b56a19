//! The atomics the lock-free structures of this crate use: `std`'s, or loom's when the crate is
//! built with `--cfg loom` for model checking (`tests/loom.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
