//! Rampart's NIC layer: AF_XDP sockets over a per-worker UMEM, and the XDP program that steers
//! ESP from the WAN and protected cleartext from the LAN to them.
//!
//! # The pieces
//!
//! * [`Umem`]: one per worker. Page-aligned memory cut into 2048- or 4096-byte frames, and the
//!   worker's frame allocator (a lock-free, single-threaded free list).
//! * [`XskSocket`]: one per (interface, queue) per worker, all bound to the worker's one
//!   [`Umem`] (the first registers it, the others share it with `XDP_SHARED_UMEM`), each with
//!   its own fill, completion, rx and tx rings. Forwarding a frame from the LAN socket to the WAN
//!   socket is passing its [`Desc`]: no copy.
//! * [`SteeringProgram`]: the XDP program of one interface ([`Role::Wan`] or [`Role::Lan`]), its
//!   maps (queue -> socket, local addresses, protected prefixes, counters), and its BPF link.
//! * [`KernelTap`]: a TUN device through which whole packets the data plane took but does not
//!   process (IKE in reassembled UDP fragments) reach the kernel's receive path.
//!
//! # Frame ownership
//!
//! Every frame of a [`Umem`] is at any time owned by exactly one party:
//!
//! | state | owner | enters by | leaves by |
//! |---|---|---|---|
//! | free | the [`Umem`] free list | [`Umem::free`], [`XskSocket::reap_completions`] | [`Umem::alloc`], [`XskSocket::refill`] |
//! | fill | kernel | [`XskSocket::refill`] | reception ([`XskSocket::rx_burst`]) |
//! | held | the worker | [`XskSocket::rx_burst`], [`Umem::alloc`] | [`XskSocket::tx_burst`] (accepted part), [`Umem::free`] |
//! | tx | kernel | [`XskSocket::tx_burst`] | completion ([`XskSocket::reap_completions`]) |
//!
//! The worker may read and write only frames it holds, through [`Umem::frame`],
//! [`Umem::frame_mut`] or [`Umem::frames_mut`] (a whole burst at once, checked disjoint). A
//! [`Desc`] is a plain copyable value: keeping one after giving its frame away is a bug in the
//! caller that yields stale bytes, not memory unsafety. Frames rejected by `tx_burst` (ring full)
//! stay held. Any socket of the worker may transmit any frame of the worker's UMEM, and its
//! completion comes back on that socket's completion ring.
//!
//! Received data starts [`Umem::rx_offset`] bytes into its frame (configured headroom plus the
//! kernel's 256-byte `XDP_PACKET_HEADROOM`): that is the room ESP encapsulation has in front of a
//! packet ([`Umem::push_front`]); the trailer goes behind it ([`Umem::push_back`]).
//!
//! # The hot path
//!
//! ```text
//! n = lan.rx_burst(&mut descs)          // ring reads only
//! ... umem.frames_mut(&descs[..n]) ...  // parse, encrypt, write headers in place
//! sent = wan.tx_burst(&descs[..n])      // ring writes only
//! wan.kick_tx()                         // sendto, looped (copy mode moves <= 32 per call)
//! wan.reap_completions(&mut umem)       // ring reads, free-list pushes
//! lan.refill(&mut umem, n)              // free-list pops, ring writes
//! ```
//!
//! None of these allocate or lock; only `kick_tx` (and the optional [`XskSocket::busy_poll`])
//! makes system calls.
//!
//! This crate is where Rampart's `unsafe` for AF_XDP and BPF lives: every block carries a
//! `// Safety:` comment. It must never depend on other Rampart crates.

pub mod bpf;
mod error;
pub mod netlink;
pub mod ring;
mod socket;
mod steer;
mod sys;
mod tun;
mod umem;

pub use error::{Error, FrameError, Result};
pub use ring::{CompletionRing, Desc, FillRing, RxRing, TxRing};
pub use socket::{BindMode, BusyPoll, BusyPollAccepted, XskConfig, XskCounters, XskMode, XskSocket, XskStatistics};
pub use steer::{
    AttachMode, AttachOptions, AttachReport, IpPrefix, LoadOptions, PROGRAM_NAME_PREFIX, RemovedVia, ReplacedProgram,
    Role, SteeringCounters, SteeringProgram, ifindex,
};
pub use tun::KernelTap;
pub use umem::{Umem, UmemConfig};
