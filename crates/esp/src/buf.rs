//! A packet inside a larger frame buffer, with headroom in front and tailroom behind, so that
//! headers and trailers are added and removed in place (no copy of the payload).
//!
//! The data plane builds one over a UMEM frame, the tests over a `Vec`. Every method checks its
//! bounds and reports a lack of room as an error instead of panicking.

use rampart_sa::DropReason;

/// `buf[start..end]` is the packet; `buf[..start]` is headroom, `buf[end..]` tailroom.
#[derive(Debug)]
pub struct PacketBuf<'a> {
    buf: &'a mut [u8],
    start: usize,
    end: usize,
}

impl<'a> PacketBuf<'a> {
    /// A packet of `len` bytes starting `start` bytes into `buf`. Out-of-range values are
    /// clamped to the buffer.
    pub fn new(buf: &'a mut [u8], start: usize, len: usize) -> PacketBuf<'a> {
        let start = start.min(buf.len());
        let end = start.saturating_add(len).min(buf.len());
        PacketBuf { buf, start, end }
    }

    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// The packet bytes, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Packet length.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether the packet is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Offset of the packet's first byte in the frame.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Free bytes in front of the packet.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Free bytes behind the packet.
    pub fn tailroom(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Grows the packet by `n` bytes at the front and returns them.
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], DropReason> {
        if n > self.start {
            return Err(DropReason::NoRoom);
        }
        self.start -= n;
        Ok(&mut self.buf[self.start..self.start + n])
    }

    /// Removes `n` bytes from the front.
    pub fn pull_front(&mut self, n: usize) -> Result<(), DropReason> {
        if n > self.len() {
            return Err(DropReason::Truncated);
        }
        self.start += n;
        Ok(())
    }

    /// Grows the packet by `n` bytes at the back and returns them.
    pub fn push_back(&mut self, n: usize) -> Result<&mut [u8], DropReason> {
        if n > self.tailroom() {
            return Err(DropReason::NoRoom);
        }
        let old = self.end;
        self.end += n;
        Ok(&mut self.buf[old..self.end])
    }

    /// Removes `n` bytes from the back.
    pub fn trim_back(&mut self, n: usize) -> Result<(), DropReason> {
        if n > self.len() {
            return Err(DropReason::Truncated);
        }
        self.end -= n;
        Ok(())
    }

    /// Moves the first `n` bytes of the packet `by` bytes towards the front, growing the packet
    /// at the front by `by` bytes and opening a gap of `by` bytes after the moved bytes (used to
    /// slide a transport-mode IP header over the ESP header that follows it).
    pub fn open_gap(&mut self, n: usize, by: usize) -> Result<(), DropReason> {
        if n > self.len() {
            return Err(DropReason::Truncated);
        }
        if by > self.start {
            return Err(DropReason::NoRoom);
        }
        let s = self.start;
        self.buf.copy_within(s..s + n, s - by);
        self.start -= by;
        Ok(())
    }

    /// The reverse of [`PacketBuf::open_gap`]: moves the first `n` bytes `by` bytes towards the
    /// back, over the `by` bytes that follow them, shrinking the packet at the front.
    pub fn close_gap(&mut self, n: usize, by: usize) -> Result<(), DropReason> {
        if n.checked_add(by).is_none_or(|total| total > self.len()) {
            return Err(DropReason::Truncated);
        }
        let s = self.start;
        self.buf.copy_within(s..s + n, s + by);
        self.start += by;
        Ok(())
    }

    /// The packet and the first `n` bytes of tailroom behind it, as one slice (what a MAC
    /// covers when the caller put more input there, AH's high sequence bits); `None` when the
    /// tailroom is shorter.
    pub fn with_tail(&self, n: usize) -> Option<&[u8]> {
        self.buf.get(self.start..self.end.checked_add(n)?)
    }

    /// The packet and the first `n` bytes of tailroom, apart and both writable: scratch space
    /// behind a packet that is not part of it.
    pub fn data_and_tail_mut(&mut self, n: usize) -> Option<(&mut [u8], &mut [u8])> {
        let end = self.end.checked_add(n)?;
        let len = self.end - self.start;
        Some(self.buf.get_mut(self.start..end)?.split_at_mut(len))
    }

    /// Splits the frame into the packet bytes and nothing else, for handing a sub-slice to the
    /// crypto layer with the frame's lifetime.
    pub fn data_range_mut(&mut self, from: usize, to: usize) -> Option<&mut [u8]> {
        let a = self.start.checked_add(from)?;
        let b = self.start.checked_add(to)?;
        if a > b || b > self.end {
            return None;
        }
        Some(&mut self.buf[a..b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_checked() {
        let mut frame = [0u8; 32];
        let mut p = PacketBuf::new(&mut frame, 8, 16);
        assert_eq!(p.headroom(), 8);
        assert_eq!(p.tailroom(), 8);
        assert!(p.push_front(9).is_err());
        assert!(p.push_back(9).is_err());
        p.push_front(8).unwrap().fill(1);
        p.push_back(8).unwrap().fill(2);
        assert_eq!(p.len(), 32);
        assert!(p.pull_front(33).is_err());
        p.pull_front(8).unwrap();
        p.trim_back(8).unwrap();
        assert_eq!(p.len(), 16);
    }

    #[test]
    fn gaps_move_headers() {
        let mut frame = [0u8; 16];
        frame[4..8].copy_from_slice(&[1, 2, 3, 4]);
        frame[8..12].copy_from_slice(&[5, 6, 7, 8]);
        let mut p = PacketBuf::new(&mut frame, 4, 8);
        p.open_gap(2, 3).unwrap();
        assert_eq!(&p.data()[..2], &[1, 2]);
        assert_eq!(p.len(), 11);
        assert_eq!(&p.data()[5..], &[3, 4, 5, 6, 7, 8]);
        p.close_gap(2, 3).unwrap();
        assert_eq!(p.data(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(p.close_gap(7, 2).is_err());
    }
}
