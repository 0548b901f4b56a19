//! The UMEM: one page-aligned memory area per worker, cut into equal frames, registered with the
//! kernel and shared by all of that worker's AF_XDP sockets (LAN and WAN), plus the worker's
//! frame allocator.
//!
//! A frame is identified by the UMEM offset of its first byte (its *base*, a multiple of the frame
//! size). A [`Desc`] points at packet data somewhere inside one frame; all helpers here map a
//! descriptor back to its frame by masking the low bits, which is why frame sizes are powers of
//! two (2048 or 4096, the kernel's aligned mode).
//!
//! Layout of a received frame (aligned mode, copy or zero-copy):
//!
//! ```text
//! base                                  base + rx_offset()                   base + frame_size
//! |<- headroom ->|<- XDP_PACKET_HEADROOM ->|<------- packet (rx len) ------->|<- tailroom ->|
//! ```
//!
//! The space in front of the packet is where ESP encapsulation writes the outer headers (up to
//! ~100 bytes) in place with [`Umem::push_front`]; the space behind it takes the ESP trailer and
//! ICV with [`Umem::push_back`]. The kernel accepts a tx descriptor anywhere inside one frame.
//!
//! The allocator is a plain stack of free frame bases owned by the worker: no lock, no atomic, no
//! allocation after [`Umem::new`]. A membership bitmap makes double frees a named error instead
//! of a corrupted free list.
//!
//! This module must never be shared between threads for mutation (the allocator is
//! single-threaded by design), and never hand out two `&mut` views of one frame.

use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use crate::error::{Error, FrameError, Result};
use crate::ring::Desc;
use crate::sys;

/// Size and count of a UMEM's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemConfig {
    /// Bytes per frame: 2048 or 4096.
    pub frame_size: u32,
    /// Number of frames. Size it well above the sum of the fill and tx rings of all sockets that
    /// share the UMEM: rings overflow when the worker is descheduled.
    pub frame_count: u32,
    /// Extra headroom the kernel leaves in front of received data, on top of its fixed
    /// `XDP_PACKET_HEADROOM` (256 bytes). Zero is enough for ESP's outer headers.
    pub headroom: u32,
}

impl Default for UmemConfig {
    fn default() -> Self {
        UmemConfig { frame_size: 2048, frame_count: 8192, headroom: 0 }
    }
}

/// The mapped memory, shared (by reference count) with every socket bound to it so that it
/// outlives them all.
pub(crate) struct UmemRegion {
    pub(crate) base: NonNull<u8>,
    pub(crate) len: usize,
    pub(crate) frame_size: u32,
    pub(crate) headroom: u32,
    /// The socket that registered this memory with the kernel (XDP_UMEM_REG) and is bound, which
    /// later sockets name in `sxdp_shared_umem_fd`. Only touched at bind and close.
    pub(crate) owner: Mutex<Option<UmemOwner>>,
}

/// The registering socket of a UMEM and the bind options sharing sockets inherit from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UmemOwner {
    pub(crate) fd: RawFd,
    pub(crate) need_wakeup: bool,
}

// Safety: the region is plain memory; `UmemRegion` itself never reads or writes it. All access to
// frame contents goes through `Umem`, whose borrow rules prevent aliasing `&mut` views.
unsafe impl Send for UmemRegion {}
// Safety: as above; the only interior mutability is the `Mutex`.
unsafe impl Sync for UmemRegion {}

impl Drop for UmemRegion {
    fn drop(&mut self) {
        // Safety: `base`/`len` are what mmap returned; every socket holding the region has been
        // dropped (we are the last `Arc`), so the kernel no longer uses the memory through them.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// One worker's packet memory and frame allocator.
///
/// Create it on (or move it to) the worker's thread, bind the worker's sockets to it with
/// [`XskSocket::bind`](crate::XskSocket::bind), and keep using it there.
pub struct Umem {
    region: Arc<UmemRegion>,
    frame_size: u32,
    frame_shift: u32,
    frame_count: u32,
    /// Stack of free frame bases.
    free: Vec<u64>,
    /// One bit per frame: set while the frame is on `free`.
    on_free_list: Vec<u64>,
    /// Scratch bitmap for the disjointness check of [`Umem::frames_mut`]; all zero between calls.
    scratch: Vec<u64>,
    double_frees: u64,
}

impl std::fmt::Debug for Umem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Umem")
            .field("frame_size", &self.frame_size)
            .field("frame_count", &self.frame_count)
            .field("free", &self.free.len())
            .finish()
    }
}

impl Umem {
    /// Maps `frame_count * frame_size` bytes of page-aligned, pre-faulted anonymous memory and puts
    /// every frame on the free list. The kernel registration happens when the first socket binds.
    pub fn new(config: UmemConfig) -> Result<Self> {
        let UmemConfig { frame_size, frame_count, headroom } = config;
        if frame_size != 2048 && frame_size != 4096 {
            return Err(Error::Config(format!("frame size {frame_size}: must be 2048 or 4096")));
        }
        if frame_count == 0 || frame_count > (1 << 22) {
            return Err(Error::Config(format!("frame count {frame_count}: must be 1..=4194304")));
        }
        // Leave at least a minimum Ethernet frame behind the fixed headroom.
        if headroom > frame_size - sys::XDP_PACKET_HEADROOM - 128 {
            return Err(Error::Config(format!("headroom {headroom} leaves no room in a {frame_size}-byte frame")));
        }
        let len = frame_size as usize * frame_count as usize;
        // Safety: anonymous private mapping, no file; the kernel picks a page-aligned address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::last_os("mmap(UMEM)"));
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| Error::Config("mmap returned null".into()))?;
        let region = Arc::new(UmemRegion { base, len, frame_size, headroom, owner: Mutex::new(None) });
        let words = (frame_count as usize).div_ceil(64);
        let mut umem = Umem {
            region,
            frame_size,
            frame_shift: frame_size.trailing_zeros(),
            frame_count,
            free: Vec::with_capacity(frame_count as usize),
            on_free_list: vec![0; words],
            scratch: vec![0; words],
            double_frees: 0,
        };
        // Push in reverse so that allocation starts at frame 0 (friendlier to read in traces).
        for i in (0..frame_count).rev() {
            let base = u64::from(i) << umem.frame_shift;
            umem.free.push(base);
            umem.on_free_list[(i / 64) as usize] |= 1 << (i % 64);
        }
        Ok(umem)
    }

    pub(crate) fn region(&self) -> &Arc<UmemRegion> {
        &self.region
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.frame_size
    }

    /// Number of frames.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Offset inside a frame where the kernel writes received data: the configured headroom plus
    /// `XDP_PACKET_HEADROOM`. This is the room available in front of a received packet.
    pub fn rx_offset(&self) -> u32 {
        self.region.headroom + sys::XDP_PACKET_HEADROOM
    }

    /// Frames currently on the free list.
    pub fn free_frames(&self) -> u32 {
        self.free.len() as u32
    }

    /// Double frees refused so far (each one is a bug in the caller's frame accounting).
    pub fn double_frees(&self) -> u64 {
        self.double_frees
    }

    /// Base (UMEM offset of the first byte) of the frame holding `addr`.
    #[inline]
    pub fn frame_base(&self, addr: u64) -> u64 {
        addr & !(u64::from(self.frame_size) - 1)
    }

    /// Takes one free frame; returns its base, or `None` when the pool is empty.
    #[inline]
    pub fn alloc(&mut self) -> Option<u64> {
        let base = self.free.pop()?;
        let idx = (base >> self.frame_shift) as usize;
        self.on_free_list[idx / 64] &= !(1 << (idx % 64));
        Some(base)
    }

    /// Returns the frame holding `addr` to the free list.
    #[inline]
    pub fn free(&mut self, addr: u64) -> std::result::Result<(), FrameError> {
        let idx = self.frame_index(addr)?;
        let bit = 1u64 << (idx % 64);
        let word = &mut self.on_free_list[idx / 64];
        if *word & bit != 0 {
            self.double_frees += 1;
            return Err(FrameError::DoubleFree);
        }
        *word |= bit;
        self.free.push(self.frame_base(addr));
        Ok(())
    }

    /// Returns the frames of all `descs` to the free list; returns how many were refused (out of
    /// range or double frees, see [`Umem::double_frees`]).
    pub fn free_descs(&mut self, descs: &[Desc]) -> usize {
        descs.iter().filter(|d| self.free(d.addr).is_err()).count()
    }

    #[inline]
    fn frame_index(&self, addr: u64) -> std::result::Result<usize, FrameError> {
        let idx = addr >> self.frame_shift;
        if idx >= u64::from(self.frame_count) {
            return Err(FrameError::OutOfRange);
        }
        Ok(idx as usize)
    }

    /// Checks that `desc` lies inside one frame; returns its byte offset in the region.
    #[inline]
    fn check(&self, desc: &Desc) -> std::result::Result<usize, FrameError> {
        self.frame_index(desc.addr)?;
        let in_frame = desc.addr - self.frame_base(desc.addr);
        if in_frame + u64::from(desc.len) > u64::from(self.frame_size) {
            return Err(FrameError::CrossesFrame);
        }
        Ok(desc.addr as usize)
    }

    /// The packet bytes `desc` points at.
    #[inline]
    pub fn frame(&self, desc: &Desc) -> std::result::Result<&[u8], FrameError> {
        let off = self.check(desc)?;
        // Safety: `check` proved [off, off+len) lies inside one frame of the live mapping. The
        // shared borrow of `self` excludes any `&mut` view handed out by this `Umem`. (A frame that
        // the caller gave back to the kernel may be rewritten by it: that is a frame-ownership bug
        // of the caller and yields stale bytes, never an out-of-bounds access.)
        Ok(unsafe { std::slice::from_raw_parts(self.region.base.as_ptr().add(off), desc.len as usize) })
    }

    /// The packet bytes `desc` points at, writable.
    #[inline]
    pub fn frame_mut(&mut self, desc: &Desc) -> std::result::Result<&mut [u8], FrameError> {
        let off = self.check(desc)?;
        // Safety: as in `frame`; the exclusive borrow of `self` makes this the only view.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.region.base.as_ptr().add(off), desc.len as usize) })
    }

    /// The whole frame holding `addr` (all `frame_size` bytes), writable, for building a packet
    /// from scratch in a frame from [`Umem::alloc`].
    pub fn chunk_mut(&mut self, addr: u64) -> std::result::Result<&mut [u8], FrameError> {
        self.frame_index(addr)?;
        let base = self.frame_base(addr) as usize;
        // Safety: the frame lies inside the mapping (index checked); exclusive borrow of `self`.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.region.base.as_ptr().add(base), self.frame_size as usize) })
    }

    /// Writable views of the packets of a whole burst at once, for batch processing (crypto over
    /// the burst). Fills `out[i]` for each `descs[i]` and returns the count. Refuses the burst if
    /// any descriptor is out of range, crosses its frame, or shares a frame with another one
    /// (which would alias two `&mut`). Costs O(len) and never allocates.
    pub fn frames_mut<'a>(
        &'a mut self,
        descs: &[Desc],
        out: &mut [&'a mut [u8]],
    ) -> std::result::Result<usize, FrameError> {
        let n = descs.len().min(out.len());
        let mut result = Ok(n);
        let mut marked = 0;
        for d in &descs[..n] {
            let idx = match self.check(d).and_then(|_| self.frame_index(d.addr)) {
                Ok(i) => i,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            let bit = 1u64 << (idx % 64);
            if self.scratch[idx / 64] & bit != 0 {
                result = Err(FrameError::Overlap);
                break;
            }
            self.scratch[idx / 64] |= bit;
            marked += 1;
        }
        for d in &descs[..marked] {
            let idx = (d.addr >> self.frame_shift) as usize;
            self.scratch[idx / 64] &= !(1 << (idx % 64));
        }
        let n = result?;
        let base = self.region.base.as_ptr();
        for (o, d) in out.iter_mut().zip(&descs[..n]) {
            // Safety: every descriptor was checked to lie inside its own frame and no two share a
            // frame, so the slices are disjoint; they borrow `self` exclusively for 'a.
            *o = unsafe { std::slice::from_raw_parts_mut(base.add(d.addr as usize), d.len as usize) };
        }
        Ok(n)
    }

    /// Bytes available in front of the packet inside its frame.
    #[inline]
    pub fn headroom(&self, desc: &Desc) -> u32 {
        (desc.addr - self.frame_base(desc.addr)) as u32
    }

    /// Bytes available behind the packet inside its frame (zero if the descriptor is invalid).
    #[inline]
    pub fn tailroom(&self, desc: &Desc) -> u32 {
        self.frame_size.saturating_sub(self.headroom(desc)).saturating_sub(desc.len)
    }

    /// Grows the packet by `n` bytes at the front (room for outer headers): moves `desc.addr`
    /// back and adds `n` to `desc.len`. The new bytes are whatever the frame held there.
    #[inline]
    pub fn push_front(&self, desc: &mut Desc, n: u32) -> std::result::Result<(), FrameError> {
        if self.headroom(desc) < n {
            return Err(FrameError::NoRoom);
        }
        desc.addr -= u64::from(n);
        desc.len += n;
        Ok(())
    }

    /// Shrinks the packet by `n` bytes at the front (strips outer headers).
    #[inline]
    pub fn pull_front(&self, desc: &mut Desc, n: u32) -> std::result::Result<(), FrameError> {
        if desc.len < n {
            return Err(FrameError::NoRoom);
        }
        desc.addr += u64::from(n);
        desc.len -= n;
        Ok(())
    }

    /// Grows the packet by `n` bytes at the back (ESP trailer, ICV).
    #[inline]
    pub fn push_back(&self, desc: &mut Desc, n: u32) -> std::result::Result<(), FrameError> {
        self.check(desc)?;
        if self.tailroom(desc) < n {
            return Err(FrameError::NoRoom);
        }
        desc.len += n;
        Ok(())
    }

    /// Shrinks the packet by `n` bytes at the back.
    #[inline]
    pub fn pull_back(&self, desc: &mut Desc, n: u32) -> std::result::Result<(), FrameError> {
        if desc.len < n {
            return Err(FrameError::NoRoom);
        }
        desc.len -= n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn umem(n: u32) -> Umem {
        Umem::new(UmemConfig { frame_size: 2048, frame_count: n, headroom: 0 }).unwrap()
    }

    #[test]
    fn alloc_free_round_trip_and_double_free() {
        let mut u = umem(4);
        let a: Vec<u64> = (0..4).map(|_| u.alloc().unwrap()).collect();
        assert_eq!(a, vec![0, 2048, 4096, 6144]);
        assert_eq!(u.alloc(), None);
        u.free(2048 + 300).unwrap();
        assert_eq!(u.free(2048), Err(FrameError::DoubleFree));
        assert_eq!(u.double_frees(), 1);
        assert_eq!(u.free(4 * 2048), Err(FrameError::OutOfRange));
        assert_eq!(u.alloc(), Some(2048));
    }

    #[test]
    fn frame_bounds_are_checked() {
        let mut u = umem(2);
        assert!(u.frame(&Desc::new(2048 + 256, 1792)).is_ok());
        assert_eq!(u.frame(&Desc::new(2048 + 256, 1793)).unwrap_err(), FrameError::CrossesFrame);
        assert_eq!(u.frame_mut(&Desc::new(4096, 1)).unwrap_err(), FrameError::OutOfRange);
        assert_eq!(u.chunk_mut(4095).unwrap().len(), 2048);
    }

    #[test]
    fn burst_views_refuse_shared_frames() {
        let mut u = umem(4);
        let descs = [Desc::new(256, 10), Desc::new(2048 + 256, 10), Desc::new(100, 10)];
        let mut out: [&mut [u8]; 3] = [&mut [], &mut [], &mut []];
        assert_eq!(u.frames_mut(&descs, &mut out), Err(FrameError::Overlap));
        // The scratch bitmap is clean again: a disjoint burst passes.
        let ok = [Desc::new(256, 10), Desc::new(2048 + 256, 10), Desc::new(3 * 2048, 2048)];
        let mut out: [&mut [u8]; 3] = [&mut [], &mut [], &mut []];
        assert_eq!(u.frames_mut(&ok, &mut out), Ok(3));
        out[0][0] = 1;
        out[2][2047] = 2;
        assert_eq!(u.frame(&Desc::new(256, 1)).unwrap(), &[1]);
    }

    #[test]
    fn push_and_pull_stay_inside_the_frame() {
        let u = umem(2);
        let mut d = Desc::new(2048 + 256, 1000);
        u.push_front(&mut d, 100).unwrap();
        assert_eq!(d, Desc::new(2048 + 156, 1100));
        assert_eq!(u.push_front(&mut d, 157), Err(FrameError::NoRoom));
        u.push_back(&mut d, 2048 - 156 - 1100).unwrap();
        assert_eq!(u.push_back(&mut d, 1), Err(FrameError::NoRoom));
        u.pull_front(&mut d, 100).unwrap();
        u.pull_back(&mut d, 10).unwrap();
        assert_eq!(d.addr, 2048 + 256);
    }
}
