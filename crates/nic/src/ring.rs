//! The four AF_XDP rings as safe single-producer/single-consumer wrappers over the memory the
//! kernel maps for a socket.
//!
//! Each ring is an array of `size` (a power of two) entries plus a producer and a consumer index
//! that run freely and wrap at 2^32. One side only ever writes the producer, the other only the
//! consumer. The memory ordering follows the kernel's `xsk_queue.h`:
//!
//! * a producer writes entries, then publishes them with a *release* store of the producer index;
//!   it learns about free slots with an *acquire* load of the consumer index;
//! * a consumer learns about entries with an *acquire* load of the producer index, reads them,
//!   then hands the slots back with a *release* store of the consumer index.
//!
//! Both sides keep cached copies of the other index and only reload it when the cache says the
//! ring is full (or empty), so that a burst costs one shared-cache-line read at most.
//!
//! Rampart produces on the fill ([`FillRing`]) and tx ([`TxRing`]) rings and consumes on the
//! completion ([`CompletionRing`]) and rx ([`RxRing`]) rings. This module never performs a
//! system call besides `munmap` on drop, never allocates after construction and never blocks.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::sys;

/// One packet descriptor, as the kernel lays it out in the rx and tx rings (`struct xdp_desc`).
///
/// `addr` is an offset into the UMEM (not a pointer) of the first byte of packet data; `len` is
/// the packet length. A descriptor does not own anything by itself: ownership of the frame it
/// points into follows the rules in the crate documentation.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Desc {
    /// Offset of the first packet byte in the UMEM.
    pub addr: u64,
    /// Packet length in bytes.
    pub len: u32,
    /// Kernel option bits (`XDP_PKT_CONTD` etc.); zero for single-buffer packets.
    pub options: u32,
}

const _: () = assert!(std::mem::size_of::<Desc>() == 16);

impl Desc {
    /// A descriptor for `len` bytes at UMEM offset `addr`.
    pub const fn new(addr: u64, len: u32) -> Self {
        Desc { addr, len, options: 0 }
    }
}

/// The pages of one mapped ring; unmapped on drop.
struct RingMap {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // Safety: `ptr`/`len` are exactly what `mmap` returned for this ring and nothing borrows
        // from the mapping any more (the ring that owns it is being dropped).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The ring machinery shared by producer and consumer rings.
struct RawRing<T: Copy> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    entries: NonNull<T>,
    mask: u32,
    size: u32,
    cached_prod: u32,
    cached_cons: u32,
    // Declared last so that it is dropped after nothing else can use the pointers above.
    _map: RingMap,
}

// Safety: the ring owns its mapping; the raw pointers point into it and are only dereferenced
// through `&mut self` (or `&self` for atomic loads), so moving the ring to another thread moves the
// only user-space handle to that side of the ring with it.
unsafe impl<T: Copy + Send> Send for RawRing<T> {}

impl<T: Copy> RawRing<T> {
    /// Maps the ring of `size` entries at page offset `pgoff` of socket `fd`.
    fn map(fd: libc::c_int, off: &sys::XdpRingOffset, size: u32, pgoff: libc::off_t) -> std::io::Result<Self> {
        debug_assert!(size.is_power_of_two());
        let len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // Safety: plain mmap of a socket's ring area; the kernel validates `pgoff` and `len` against
        // the ring it allocated for `fd` and fails otherwise.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = ptr.cast::<u8>();
        let map = RingMap { ptr: NonNull::new(base).expect("mmap never returns null on success"), len };
        // Safety: the offsets come from XDP_MMAP_OFFSETS for this very ring and lie inside `len`;
        // producer, consumer and flags are 4-byte aligned u32s the kernel accesses atomically.
        let (producer, consumer, flags, entries) = unsafe {
            (
                base.add(off.producer as usize).cast::<AtomicU32>(),
                base.add(off.consumer as usize).cast::<AtomicU32>(),
                base.add(off.flags as usize).cast::<AtomicU32>(),
                base.add(off.desc as usize).cast::<T>(),
            )
        };
        let mut ring = RawRing {
            producer: NonNull::new(producer).expect("inside a non-null mapping"),
            consumer: NonNull::new(consumer).expect("inside a non-null mapping"),
            flags: NonNull::new(flags).expect("inside a non-null mapping"),
            entries: NonNull::new(entries).expect("inside a non-null mapping"),
            mask: size - 1,
            size,
            cached_prod: 0,
            cached_cons: 0,
            _map: map,
        };
        ring.cached_prod = ring.producer().load(Ordering::Acquire);
        ring.cached_cons = ring.consumer().load(Ordering::Acquire);
        Ok(ring)
    }

    fn producer(&self) -> &AtomicU32 {
        // Safety: points into the live mapping (see `map`), properly aligned, shared with the
        // kernel which only touches it atomically.
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    /// Pointer to the entry slot for free-running index `idx`.
    fn slot(&self, idx: u32) -> *mut T {
        // Safety: `idx & mask < size`, and the mapping holds `size` entries after `desc`.
        unsafe { self.entries.as_ptr().add((idx & self.mask) as usize) }
    }

    // ---- producer side ----

    /// Free slots, reloading the consumer index only when the cache shows fewer than `want`.
    fn prod_free(&mut self, want: u32) -> u32 {
        let free = self.size - self.cached_prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        self.cached_cons = self.consumer().load(Ordering::Acquire);
        self.size - self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Writes up to `n` entries produced by `next` and publishes them; returns how many.
    fn produce_with(&mut self, n: u32, mut next: impl FnMut() -> Option<T>) -> u32 {
        let n = n.min(self.prod_free(n));
        let mut done = 0;
        while done < n {
            let Some(item) = next() else { break };
            // Safety: the slot is free (between the producer and the consumer + size), so the
            // kernel does not read it until we publish the new producer index below.
            unsafe { self.slot(self.cached_prod.wrapping_add(done)).write_volatile(item) };
            done += 1;
        }
        if done > 0 {
            self.cached_prod = self.cached_prod.wrapping_add(done);
            self.producer().store(self.cached_prod, Ordering::Release);
        }
        done
    }

    /// Entries published but not yet consumed by the kernel.
    fn prod_outstanding(&mut self) -> u32 {
        self.cached_cons = self.consumer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    // ---- consumer side ----

    /// Entries ready to read, reloading the producer index only when the cache shows fewer than
    /// `want`.
    fn cons_avail(&mut self, want: u32) -> u32 {
        let avail = self.cached_prod.wrapping_sub(self.cached_cons);
        if avail >= want {
            return avail;
        }
        self.cached_prod = self.producer().load(Ordering::Acquire);
        self.cached_prod.wrapping_sub(self.cached_cons)
    }

    /// Reads up to `out.len()` entries and releases their slots; returns how many.
    fn consume_into(&mut self, out: &mut [T]) -> usize {
        let want = u32::try_from(out.len()).unwrap_or(u32::MAX);
        let n = want.min(self.cons_avail(want));
        for (i, o) in out.iter_mut().take(n as usize).enumerate() {
            // Safety: the entry lies between our consumer index and the producer index we loaded
            // with acquire ordering, so the kernel has finished writing it and will not touch it
            // until we release the slot below.
            *o = unsafe { self.slot(self.cached_cons.wrapping_add(i as u32)).read_volatile() };
        }
        if n > 0 {
            self.cached_cons = self.cached_cons.wrapping_add(n);
            self.consumer().store(self.cached_cons, Ordering::Release);
        }
        n as usize
    }

    fn needs_wakeup(&self) -> bool {
        self.flags().load(Ordering::Relaxed) & sys::XDP_RING_NEED_WAKEUP != 0
    }
}

macro_rules! ring_common {
    ($name:ident) => {
        impl $name {
            /// Number of entries the ring holds.
            pub fn size(&self) -> u32 {
                self.0.size
            }

            /// Whether the kernel set `XDP_RING_NEED_WAKEUP` on this ring (only meaningful when the
            /// socket was bound with need-wakeup).
            pub fn needs_wakeup(&self) -> bool {
                self.0.needs_wakeup()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("size", &self.0.size)
                    .field("cached_prod", &self.0.cached_prod)
                    .field("cached_cons", &self.0.cached_cons)
                    .finish()
            }
        }
    };
}

/// Fill ring: Rampart hands empty frames (UMEM addresses) to the kernel for reception.
pub struct FillRing(RawRing<u64>);
/// Completion ring: the kernel hands back frames whose transmission finished.
pub struct CompletionRing(RawRing<u64>);
/// Rx ring: the kernel hands over received packets.
pub struct RxRing(RawRing<Desc>);
/// Tx ring: Rampart hands packets to the kernel for transmission.
pub struct TxRing(RawRing<Desc>);

ring_common!(FillRing);
ring_common!(CompletionRing);
ring_common!(RxRing);
ring_common!(TxRing);

impl FillRing {
    pub(crate) fn map(fd: libc::c_int, off: &sys::XdpRingOffset, size: u32) -> std::io::Result<Self> {
        RawRing::map(fd, off, size, sys::XDP_UMEM_PGOFF_FILL_RING).map(FillRing)
    }

    /// Free slots (frames the ring could take now).
    pub fn free(&mut self) -> u32 {
        self.0.prod_free(self.0.size)
    }

    /// Frames handed to the kernel that it has not taken for a packet yet.
    pub fn pending(&mut self) -> u32 {
        self.0.prod_outstanding()
    }

    /// Publishes up to `n` frame addresses taken from `next`; returns how many.
    pub fn produce_with(&mut self, n: u32, next: impl FnMut() -> Option<u64>) -> u32 {
        self.0.produce_with(n, next)
    }

    /// Publishes as many of `addrs` as fit; returns how many.
    pub fn produce(&mut self, addrs: &[u64]) -> usize {
        let mut it = addrs.iter().copied();
        self.0.produce_with(u32::try_from(addrs.len()).unwrap_or(u32::MAX), || it.next()) as usize
    }
}

impl CompletionRing {
    pub(crate) fn map(fd: libc::c_int, off: &sys::XdpRingOffset, size: u32) -> std::io::Result<Self> {
        RawRing::map(fd, off, size, sys::XDP_UMEM_PGOFF_COMPLETION_RING).map(CompletionRing)
    }

    /// Completed frame addresses ready to read.
    pub fn available(&mut self) -> u32 {
        self.0.cons_avail(self.0.size)
    }

    /// Reads up to `out.len()` completed frame addresses; returns how many.
    pub fn consume(&mut self, out: &mut [u64]) -> usize {
        self.0.consume_into(out)
    }
}

impl RxRing {
    pub(crate) fn map(fd: libc::c_int, off: &sys::XdpRingOffset, size: u32) -> std::io::Result<Self> {
        RawRing::map(fd, off, size, sys::XDP_PGOFF_RX_RING).map(RxRing)
    }

    /// Received packets ready to read.
    pub fn available(&mut self) -> u32 {
        self.0.cons_avail(self.0.size)
    }

    /// Reads up to `out.len()` received descriptors; returns how many.
    pub fn consume(&mut self, out: &mut [Desc]) -> usize {
        self.0.consume_into(out)
    }
}

impl TxRing {
    pub(crate) fn map(fd: libc::c_int, off: &sys::XdpRingOffset, size: u32) -> std::io::Result<Self> {
        RawRing::map(fd, off, size, sys::XDP_PGOFF_TX_RING).map(TxRing)
    }

    /// Free slots.
    pub fn free(&mut self) -> u32 {
        self.0.prod_free(self.0.size)
    }

    /// Publishes as many of `descs` as fit; returns how many.
    pub fn produce(&mut self, descs: &[Desc]) -> usize {
        let mut it = descs.iter().copied();
        self.0.produce_with(u32::try_from(descs.len()).unwrap_or(u32::MAX), || it.next()) as usize
    }

    /// Descriptors published that the kernel has not consumed (sent or refused) yet.
    pub fn outstanding(&mut self) -> u32 {
        self.0.prod_outstanding()
    }
}
