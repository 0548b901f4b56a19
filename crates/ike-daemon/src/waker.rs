//! Waking the event loop from other threads (the worker pool, the control socket): an eventfd
//! the loop's epoll watches. Wake-ups coalesce; the loop drains its channels after each.
//!
//! Carries no data itself and never blocks the caller.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{EventfdFlags, eventfd};

/// An eventfd-based wake-up.
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
    armed: AtomicBool,
}

impl Waker {
    /// A new, quiet waker.
    pub fn new() -> io::Result<Waker> {
        let fd = eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::CLOEXEC)?;
        Ok(Waker { fd, armed: AtomicBool::new(false) })
    }

    /// Wakes the loop (cheap when it is already awake-pending).
    pub fn wake(&self) {
        if !self.armed.swap(true, Ordering::AcqRel) {
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }
    }

    /// The loop consumes the wake-up before draining its channels.
    pub fn reset(&self) {
        self.armed.store(false, Ordering::Release);
        let mut buf = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut buf);
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
