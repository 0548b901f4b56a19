//! AF_XDP sockets: one per (interface, queue) per worker, all bound to the worker's one
//! [`Umem`], each with its own fill, completion, rx and tx rings.
//!
//! The first socket bound to a UMEM registers it with the kernel (`XDP_UMEM_REG`); every later
//! socket binds with `XDP_SHARED_UMEM` naming the first. Since Linux 5.10 a socket that shares a
//! UMEM on a different device or queue gets its own fill and completion rings, which is what lets
//! a frame received on the LAN socket be transmitted on the WAN socket by passing its descriptor:
//! no copy in user space.
//!
//! Hot-path calls ([`XskSocket::rx_burst`], [`XskSocket::tx_burst`],
//! [`XskSocket::reap_completions`], [`XskSocket::refill`]) touch only the rings and the UMEM's
//! free list; [`XskSocket::kick_tx`] is the only one that makes system calls (`sendto`, looped,
//! because a copy-mode kick transmits at most 32 frames). Nothing here allocates after
//! [`XskSocket::bind`] or takes a lock on the hot path.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ring::{CompletionRing, Desc, FillRing, RxRing, TxRing};
use crate::sys;
use crate::umem::{Umem, UmemOwner, UmemRegion};

/// How to bind a socket to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindMode {
    /// Let the kernel choose: zero-copy when the driver supports it, copy otherwise.
    #[default]
    Auto,
    /// Force copy mode (`XDP_COPY`): the only mode veth offers.
    Copy,
    /// Force zero-copy (`XDP_ZEROCOPY`): fails with `EOPNOTSUPP` where the driver lacks it.
    ZeroCopy,
}

/// The mode the kernel actually bound the socket in (read back with `XDP_OPTIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XskMode {
    /// Frames are copied between the driver's buffers and the UMEM.
    Copy,
    /// The driver receives into and transmits from the UMEM directly.
    ZeroCopy,
}

/// Busy-polling settings (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`, `SO_BUSY_POLL_BUDGET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyPoll {
    /// Microseconds a `poll`/`recvfrom` may busy-loop on the device queue.
    pub usecs: u32,
    /// Packets per busy-poll round.
    pub budget: u32,
    /// Prefer busy polling over softirq processing (pairs with the device's
    /// `napi_defer_hard_irqs` and `gro_flush_timeout`).
    pub prefer: bool,
}

impl Default for BusyPoll {
    fn default() -> Self {
        BusyPoll { usecs: 20, budget: 64, prefer: true }
    }
}

/// Which busy-poll options the kernel accepted on this socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BusyPollAccepted {
    /// `SO_PREFER_BUSY_POLL` accepted.
    pub prefer: bool,
    /// `SO_BUSY_POLL` accepted.
    pub usecs: bool,
    /// `SO_BUSY_POLL_BUDGET` accepted.
    pub budget: bool,
}

/// Ring sizes and binding options of one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XskConfig {
    /// Rx ring entries (power of two).
    pub rx_size: u32,
    /// Tx ring entries (power of two).
    pub tx_size: u32,
    /// Fill ring entries (power of two).
    pub fill_size: u32,
    /// Completion ring entries (power of two, at least `tx_size` so that completions never
    /// hold back transmission).
    pub comp_size: u32,
    /// Copy, zero-copy or let the kernel choose. Only the first socket of a UMEM chooses; sockets
    /// sharing it inherit its mode.
    pub bind_mode: BindMode,
    /// Bind with `XDP_USE_NEED_WAKEUP` so that kicks are skipped when the kernel does not need
    /// them (inherited like `bind_mode`).
    pub need_wakeup: bool,
    /// Busy polling, applied where the kernel accepts it.
    pub busy_poll: Option<BusyPoll>,
}

impl Default for XskConfig {
    fn default() -> Self {
        XskConfig {
            rx_size: 2048,
            tx_size: 2048,
            fill_size: 2048,
            comp_size: 2048,
            bind_mode: BindMode::Auto,
            need_wakeup: true,
            busy_poll: None,
        }
    }
}

/// The kernel's per-socket ring statistics (`getsockopt(XDP_STATISTICS)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XskStatistics {
    /// Packets dropped for reasons other than the two rx ring counters below.
    pub rx_dropped: u64,
    /// Invalid descriptors on the rx ring. (Invalid fill ring addresses are skipped by the kernel
    /// without being counted here; they show up as `rx_fill_ring_empty_descs` when the ring runs dry.)
    pub rx_invalid_descs: u64,
    /// Tx descriptors the kernel found invalid (out of the UMEM, crossing a frame, too long).
    /// In copy mode the kernel still returns them on the completion ring.
    pub tx_invalid_descs: u64,
    /// Packets dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Packets dropped because the fill ring was empty.
    pub rx_fill_ring_empty_descs: u64,
    /// Times the kernel found the tx ring empty when asked to send (counted by the zero-copy tx
    /// path; stays 0 in copy mode on Linux 6.18).
    pub tx_ring_empty_descs: u64,
}

/// Counters kept by the socket itself (plain integers: the socket belongs to one thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XskCounters {
    /// Descriptors taken from the rx ring.
    pub rx_packets: u64,
    /// Bytes of those packets.
    pub rx_bytes: u64,
    /// `rx_burst` calls that returned at least one packet.
    pub rx_bursts: u64,
    /// Descriptors put on the tx ring.
    pub tx_packets: u64,
    /// Descriptors refused by `tx_burst` because the tx ring was full.
    pub tx_ring_full: u64,
    /// Frames returned by the completion ring.
    pub tx_completed: u64,
    /// Completed addresses the UMEM refused (outside it, or already free): the caller
    /// transmitted a frame it did not hold.
    pub tx_completion_refused: u64,
    /// `sendto` kicks made.
    pub tx_kicks: u64,
    /// Kicks that ended with the kernel not consuming anything (completion ring full or device
    /// busy): the next kick retries.
    pub tx_kick_stalls: u64,
    /// Frames put on the fill ring.
    pub fill_frames: u64,
    /// Refills that got fewer frames than asked because the UMEM's free list ran dry.
    pub fill_starved: u64,
}

/// One AF_XDP socket bound to one queue of one interface.
pub struct XskSocket {
    // Rings first: they unmap before the socket closes.
    fill: FillRing,
    comp: CompletionRing,
    rx: RxRing,
    tx: TxRing,
    fd: OwnedFd,
    region: Arc<UmemRegion>,
    ifindex: u32,
    queue: u32,
    mode: XskMode,
    shared: bool,
    need_wakeup: bool,
    busy_poll: BusyPollAccepted,
    counters: XskCounters,
    completions: [u64; 64],
}

impl std::fmt::Debug for XskSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskSocket")
            .field("fd", &self.fd.as_raw_fd())
            .field("ifindex", &self.ifindex)
            .field("queue", &self.queue)
            .field("mode", &self.mode)
            .field("shared_umem", &self.shared)
            .finish()
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, val: &T, op: &'static str) -> Result<()> {
    // Safety: `val` is a live, properly sized value of the type the option expects.
    let r = unsafe { libc::setsockopt(fd, level, name, (val as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    if r < 0 { Err(Error::last_os(op)) } else { Ok(()) }
}

fn getsockopt<T: Default>(fd: RawFd, level: libc::c_int, name: libc::c_int, op: &'static str) -> Result<T> {
    let mut val = T::default();
    let mut len = size_of::<T>() as libc::socklen_t;
    // Safety: `val` is writable for `len` bytes; the kernel writes at most `len` and updates it.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut val as *mut T).cast(), &mut len) };
    if r < 0 {
        return Err(Error::last_os(op));
    }
    if len as usize != size_of::<T>() {
        return Err(Error::Config(format!("{op}: kernel returned {len} bytes, expected {}", size_of::<T>())));
    }
    Ok(val)
}

fn check_ring_size(what: &str, n: u32) -> Result<()> {
    if !n.is_power_of_two() || n < 2 {
        return Err(Error::Config(format!("{what} ring size {n}: must be a power of two >= 2")));
    }
    Ok(())
}

impl XskSocket {
    /// Creates an AF_XDP socket for queue `queue` of interface `ifindex` (in the calling thread's
    /// network namespace), with its four rings, bound to `umem`: the first socket of a UMEM
    /// registers it, later ones share it.
    ///
    /// The socket receives nothing until its fd is in the XSKMAP of the interface's steering
    /// program ([`SteeringProgram::register_socket`](crate::SteeringProgram::register_socket))
    /// and frames are on its fill ring ([`XskSocket::refill`]).
    pub fn bind(umem: &Umem, ifindex: u32, queue: u32, config: &XskConfig) -> Result<Self> {
        check_ring_size("rx", config.rx_size)?;
        check_ring_size("tx", config.tx_size)?;
        check_ring_size("fill", config.fill_size)?;
        check_ring_size("completion", config.comp_size)?;
        let region = Arc::clone(umem.region());
        // Safety: plain socket(2); the result is checked before use.
        let raw = unsafe { libc::socket(sys::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(Error::last_os("socket(AF_XDP)"));
        }
        // Safety: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let raw = fd.as_raw_fd();

        // Held across register + bind so that two threads binding to one UMEM cannot both
        // register it. Setup path only.
        let mut owner = region.owner.lock().unwrap_or_else(|p| p.into_inner());
        let shared_with = *owner;
        if shared_with.is_none() {
            let reg = sys::XdpUmemReg {
                addr: region.base.as_ptr() as u64,
                len: region.len as u64,
                chunk_size: region.frame_size,
                headroom: region.headroom,
                flags: 0,
                tx_metadata_len: 0,
            };
            setsockopt(raw, sys::SOL_XDP, sys::XDP_UMEM_REG, &reg, "setsockopt(XDP_UMEM_REG)")?;
        }
        // Every socket gets its own fill and completion ring (the first as owner of the UMEM,
        // the others because they share it on another device or queue).
        setsockopt(raw, sys::SOL_XDP, sys::XDP_UMEM_FILL_RING, &config.fill_size, "setsockopt(XDP_UMEM_FILL_RING)")?;
        setsockopt(
            raw,
            sys::SOL_XDP,
            sys::XDP_UMEM_COMPLETION_RING,
            &config.comp_size,
            "setsockopt(XDP_UMEM_COMPLETION_RING)",
        )?;
        setsockopt(raw, sys::SOL_XDP, sys::XDP_RX_RING, &config.rx_size, "setsockopt(XDP_RX_RING)")?;
        setsockopt(raw, sys::SOL_XDP, sys::XDP_TX_RING, &config.tx_size, "setsockopt(XDP_TX_RING)")?;
        let off: sys::XdpMmapOffsets =
            getsockopt(raw, sys::SOL_XDP, sys::XDP_MMAP_OFFSETS, "getsockopt(XDP_MMAP_OFFSETS)")?;
        let map_err = |op| move |e| Error::sys(op, e);
        let fill = FillRing::map(raw, &off.fr, config.fill_size).map_err(map_err("mmap(fill ring)"))?;
        let comp = CompletionRing::map(raw, &off.cr, config.comp_size).map_err(map_err("mmap(completion ring)"))?;
        let rx = RxRing::map(raw, &off.rx, config.rx_size).map_err(map_err("mmap(rx ring)"))?;
        let tx = TxRing::map(raw, &off.tx, config.tx_size).map_err(map_err("mmap(tx ring)"))?;

        let mut sa = sys::SockaddrXdp {
            sxdp_family: sys::AF_XDP as u16,
            sxdp_flags: 0,
            sxdp_ifindex: ifindex,
            sxdp_queue_id: queue,
            sxdp_shared_umem_fd: 0,
        };
        match shared_with {
            // The kernel refuses mode flags on a sharing socket: it inherits them from the owner.
            Some(o) => {
                sa.sxdp_flags = sys::XDP_SHARED_UMEM;
                sa.sxdp_shared_umem_fd = o.fd as u32;
            }
            None => {
                sa.sxdp_flags = match config.bind_mode {
                    BindMode::Auto => 0,
                    BindMode::Copy => sys::XDP_COPY,
                    BindMode::ZeroCopy => sys::XDP_ZEROCOPY,
                };
                if config.need_wakeup {
                    sa.sxdp_flags |= sys::XDP_USE_NEED_WAKEUP;
                }
            }
        }
        // Safety: `sa` is a valid sockaddr_xdp of the size passed.
        let r = unsafe {
            libc::bind(raw, (&sa as *const sys::SockaddrXdp).cast(), size_of::<sys::SockaddrXdp>() as libc::socklen_t)
        };
        if r < 0 {
            return Err(Error::last_os(if shared_with.is_some() {
                "bind(AF_XDP, XDP_SHARED_UMEM)"
            } else {
                "bind(AF_XDP)"
            }));
        }
        if shared_with.is_none() {
            *owner = Some(UmemOwner { fd: raw, need_wakeup: config.need_wakeup });
        }
        drop(owner);

        let opts: u32 = getsockopt(raw, sys::SOL_XDP, sys::XDP_OPTIONS, "getsockopt(XDP_OPTIONS)")?;
        let mode = if opts & sys::XDP_OPTIONS_ZEROCOPY != 0 { XskMode::ZeroCopy } else { XskMode::Copy };

        let mut sock = XskSocket {
            fill,
            comp,
            rx,
            tx,
            fd,
            region,
            ifindex,
            queue,
            mode,
            shared: shared_with.is_some(),
            // A sharing socket inherits the owner's choice.
            need_wakeup: shared_with.map_or(config.need_wakeup, |o| o.need_wakeup),
            busy_poll: BusyPollAccepted::default(),
            counters: XskCounters::default(),
            completions: [0; 64],
        };
        if let Some(bp) = config.busy_poll {
            sock.busy_poll = sock.set_busy_poll(bp);
        }
        Ok(sock)
    }

    /// Applies busy-poll options one by one; returns which ones the kernel accepted.
    pub fn set_busy_poll(&mut self, bp: BusyPoll) -> BusyPollAccepted {
        let fd = self.fd.as_raw_fd();
        let prefer: libc::c_int = bp.prefer.into();
        let usecs = bp.usecs as libc::c_int;
        let budget = bp.budget as libc::c_int;
        let accepted = BusyPollAccepted {
            prefer: setsockopt(fd, libc::SOL_SOCKET, sys::SO_PREFER_BUSY_POLL, &prefer, "SO_PREFER_BUSY_POLL").is_ok(),
            usecs: setsockopt(fd, libc::SOL_SOCKET, sys::SO_BUSY_POLL, &usecs, "SO_BUSY_POLL").is_ok(),
            budget: setsockopt(fd, libc::SOL_SOCKET, sys::SO_BUSY_POLL_BUDGET, &budget, "SO_BUSY_POLL_BUDGET").is_ok(),
        };
        self.busy_poll = accepted;
        accepted
    }

    /// Busy-poll options the kernel accepted.
    pub fn busy_poll_accepted(&self) -> BusyPollAccepted {
        self.busy_poll
    }

    /// The mode the kernel bound the socket in.
    pub fn mode(&self) -> XskMode {
        self.mode
    }

    /// Whether this socket shares a UMEM registered by another socket.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Queue the socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The socket's own counters.
    pub fn counters(&self) -> &XskCounters {
        &self.counters
    }

    /// Reads the kernel's ring statistics (a system call: control path only).
    pub fn statistics(&self) -> Result<XskStatistics> {
        let s: sys::XdpStatisticsRaw =
            getsockopt(self.fd.as_raw_fd(), sys::SOL_XDP, sys::XDP_STATISTICS, "getsockopt(XDP_STATISTICS)")?;
        Ok(XskStatistics {
            rx_dropped: s.rx_dropped,
            rx_invalid_descs: s.rx_invalid_descs,
            tx_invalid_descs: s.tx_invalid_descs,
            rx_ring_full: s.rx_ring_full,
            rx_fill_ring_empty_descs: s.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: s.tx_ring_empty_descs,
        })
    }

    /// Takes up to `out.len()` received packets. The caller owns their frames from now on.
    #[inline]
    pub fn rx_burst(&mut self, out: &mut [Desc]) -> usize {
        let n = self.rx.consume(out);
        if n > 0 {
            self.counters.rx_packets += n as u64;
            self.counters.rx_bursts += 1;
            self.counters.rx_bytes += out[..n].iter().map(|d| u64::from(d.len)).sum::<u64>();
        }
        n
    }

    /// Queues as many of `descs` as the tx ring takes, in order; returns how many. The frames of
    /// the accepted descriptors belong to the kernel until [`XskSocket::reap_completions`] returns
    /// them; the rest stay with the caller. Call [`XskSocket::kick_tx`] afterwards.
    #[inline]
    pub fn tx_burst(&mut self, descs: &[Desc]) -> usize {
        let n = self.tx.produce(descs);
        self.counters.tx_packets += n as u64;
        self.counters.tx_ring_full += (descs.len() - n) as u64;
        n
    }

    /// Makes the kernel transmit what is on the tx ring. In copy mode one `sendto` sends at most
    /// 32 frames, so this loops while the kernel makes progress; it stops when the ring is empty or
    /// when a kick moved nothing (completion ring full: reap, then kick again). Returns the number
    /// of descriptors still waiting. Errors other than "try again" are returned.
    pub fn kick_tx(&mut self) -> io::Result<u32> {
        let mut outstanding = self.tx.outstanding();
        while outstanding > 0 {
            if self.need_wakeup && !self.tx.needs_wakeup() {
                // Zero-copy driver already working on it.
                break;
            }
            // Safety: a zero-length sendto on our own socket; no buffers are passed.
            let r = unsafe {
                libc::sendto(self.fd.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0)
            };
            self.counters.tx_kicks += 1;
            if r < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    // EAGAIN: batch exhausted or completion ring full; EBUSY: another sender
                    // holds the queue; ENOBUFS: the device dropped. Progress decides below.
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) | Some(libc::EINTR) => {}
                    _ => return Err(e),
                }
            }
            let now = self.tx.outstanding();
            if now >= outstanding {
                self.counters.tx_kick_stalls += 1;
                return Ok(now);
            }
            outstanding = now;
        }
        Ok(outstanding)
    }

    /// Moves transmitted frames from the completion ring back to the UMEM's free list; returns
    /// how many.
    #[inline]
    pub fn reap_completions(&mut self, umem: &mut Umem) -> usize {
        let mut total = 0;
        loop {
            let n = self.comp.consume(&mut self.completions);
            for &addr in &self.completions[..n] {
                // A completion names a frame the caller put on the tx ring (invalid descriptors
                // included: copy mode completes them too). A refusal is a caller bug.
                if umem.free(addr).is_err() {
                    self.counters.tx_completion_refused += 1;
                }
            }
            total += n;
            if n < self.completions.len() {
                break;
            }
        }
        self.counters.tx_completed += total as u64;
        total
    }

    /// Moves transmitted frames from the completion ring into `out` instead of the free list, for
    /// callers that recycle them directly; returns how many.
    #[inline]
    pub fn take_completions(&mut self, out: &mut [u64]) -> usize {
        let n = self.comp.consume(out);
        self.counters.tx_completed += n as u64;
        n
    }

    /// Puts up to `max` free frames from `umem` on the fill ring (bounded by its free slots);
    /// returns how many.
    #[inline]
    pub fn refill(&mut self, umem: &mut Umem, max: u32) -> u32 {
        let want = max.min(self.fill.free());
        let n = self.fill.produce_with(want, || umem.alloc());
        if n < want {
            self.counters.fill_starved += 1;
        }
        self.counters.fill_frames += u64::from(n);
        n
    }

    /// Waits up to `timeout_ms` (negative: forever) for received packets with `poll(2)`; returns
    /// whether the rx ring has any. For idle periods, not for the busy loop.
    pub fn poll_rx(&mut self, timeout_ms: i32) -> io::Result<bool> {
        if self.rx.available() > 0 {
            return Ok(true);
        }
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // Safety: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EINTR) { Ok(false) } else { Err(e) };
        }
        Ok(self.rx.available() > 0)
    }

    /// One non-blocking `recvfrom`: with busy polling enabled this runs the device's NAPI loop in
    /// this thread (and wakes a need-wakeup fill ring). Costs a system call: use it when the rx
    /// ring came back empty, not per packet.
    pub fn busy_poll(&mut self) {
        // Safety: zero-length recvfrom on our own socket; AF_XDP never writes to the buffer.
        unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Whether the fill ring asks for a wakeup (zero-copy drivers with need-wakeup).
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }

    /// The fill ring, for callers that manage it directly.
    pub fn fill_ring(&mut self) -> &mut FillRing {
        &mut self.fill
    }

    /// The completion ring.
    pub fn completion_ring(&mut self) -> &mut CompletionRing {
        &mut self.comp
    }

    /// The rx ring.
    pub fn rx_ring(&mut self) -> &mut RxRing {
        &mut self.rx
    }

    /// The tx ring.
    pub fn tx_ring(&mut self) -> &mut TxRing {
        &mut self.tx
    }
}

impl AsFd for XskSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for XskSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for XskSocket {
    fn drop(&mut self) {
        // If this socket registered the UMEM, later sockets can no longer name it: forget it
        // before the fd number can be reused. The kernel keeps the UMEM alive for sockets that
        // still share it.
        let mut owner = self.region.owner.lock().unwrap_or_else(|p| p.into_inner());
        if owner.is_some_and(|o| o.fd == self.fd.as_raw_fd()) {
            *owner = None;
        }
    }
}
