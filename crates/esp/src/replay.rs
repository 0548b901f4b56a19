//! The inbound anti-replay window (RFC 4303 section 3.4.3) with extended sequence number
//! inference (RFC 4303 Appendix A).
//!
//! Two steps, so that the window only moves after the integrity check (DESIGN.md rule 4):
//! [`ReplayWindow::check`] infers the full 64-bit sequence number and rejects duplicates and
//! packets left of the window without changing anything; [`ReplayWindow::accept`] is called
//! once the packet is authenticated, re-checks (an earlier packet of the same burst may have
//! taken the number) and moves the window. The bitmap is allocated once, when the SA is built.

use crate::drop::DropReason;

/// A sliding anti-replay window over sequence numbers.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Window size W in packets; 0 turns replay checking off.
    size: u64,
    /// Extended sequence numbers: only the low 32 bits travel.
    esn: bool,
    /// Highest sequence number accepted so far (T); 0 before the first packet.
    top: u64,
    /// Ring of `bitmap.len() * 64` bits (a power of two, at least `size`); the bit of sequence
    /// number `s` is `s mod (bitmap.len() * 64)`. Bits of numbers in `(top - ring, top]` are valid.
    bitmap: Box<[u64]>,
}

impl ReplayWindow {
    /// A window of `size` packets (0: no replay protection) over 32-bit or, with `esn`, 64-bit
    /// sequence numbers. The caller bounds `size` (see [`crate::MAX_REPLAY_WINDOW`]).
    pub fn new(size: u32, esn: bool) -> ReplayWindow {
        let ring_bits = u64::from(size).max(64).next_power_of_two();
        ReplayWindow {
            size: u64::from(size),
            esn,
            top: 0,
            bitmap: vec![0; (ring_bits / 64) as usize].into_boxed_slice(),
        }
    }

    /// Window size in packets.
    pub fn size(&self) -> u32 {
        self.size as u32
    }

    /// Highest sequence number accepted so far (0 before the first).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Infers the full sequence number of a packet whose header carries `seq_low`, and checks
    /// it against the window without changing the window.
    pub fn check(&self, seq_low: u32) -> Result<u64, DropReason> {
        let seq = self.infer(seq_low);
        self.check_full(seq)?;
        Ok(seq)
    }

    /// Marks `seq` (as returned by [`ReplayWindow::check`]) as received, after the packet's
    /// integrity was verified. Fails if `seq` became a duplicate or fell left of the window
    /// since the check (another packet of the same burst).
    pub fn accept(&mut self, seq: u64) -> Result<(), DropReason> {
        self.check_full(seq)?;
        if self.size == 0 {
            self.top = self.top.max(seq);
            return Ok(());
        }
        let ring = self.ring_bits();
        if seq > self.top {
            let advance = seq - self.top;
            if advance >= ring {
                self.bitmap.fill(0);
            } else {
                // Clear the bits of the numbers that slide into the window: top+1 ..= seq.
                let mut s = self.top + 1;
                while s <= seq {
                    let bit = s & (ring - 1);
                    if bit.is_multiple_of(64) && seq - s >= 63 {
                        self.bitmap[(bit / 64) as usize] = 0;
                        s += 64;
                    } else {
                        self.bitmap[(bit / 64) as usize] &= !(1u64 << (bit % 64));
                        s += 1;
                    }
                }
            }
            self.top = seq;
        }
        let bit = seq & (ring - 1);
        self.bitmap[(bit / 64) as usize] |= 1u64 << (bit % 64);
        Ok(())
    }

    fn ring_bits(&self) -> u64 {
        self.bitmap.len() as u64 * 64
    }

    fn check_full(&self, seq: u64) -> Result<(), DropReason> {
        //= https://www.rfc-editor.org/rfc/rfc4303#section-3.4.3
        //# the receiver MUST verify that the packet does not duplicate the sequence number of
        //# any other packet received during the life of this SA.
        if seq == 0 {
            // The sender starts at 1 (RFC 4303 section 3.3.3): 0 is never a fresh number.
            return Err(DropReason::ReplayTooOld);
        }
        if self.size == 0 || seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(DropReason::ReplayTooOld);
        }
        let bit = seq & (self.ring_bits() - 1);
        if self.bitmap[(bit / 64) as usize] & (1u64 << (bit % 64)) != 0 {
            return Err(DropReason::ReplayDuplicate);
        }
        Ok(())
    }

    /// RFC 4303 Appendix A2.2: the high half of a 64-bit sequence number from its low half and
    /// the window position.
    fn infer(&self, seq_low: u32) -> u64 {
        if !self.esn {
            return u64::from(seq_low);
        }
        let w = self.size.max(1);
        let th = self.top >> 32;
        let tl = self.top & 0xffff_ffff;
        let sl = u64::from(seq_low);
        let seq_high = if tl >= w - 1 {
            //= https://www.rfc-editor.org/rfc/rfc4303#appendix-A2.2
            //# Case A: Tl >= (W - 1). In this case, the window is within one sequence number
            //# subspace.
            if sl >= tl - (w - 1) { th } else { th.wrapping_add(1) }
        } else {
            //# Case B: Tl < (W - 1). In this case, the window spans two sequence number
            //# subspaces.
            let bottom = (tl + (1 << 32) - (w - 1)) & 0xffff_ffff;
            if sl >= bottom && th > 0 { th - 1 } else { th }
        };
        (seq_high << 32) | sl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_window_accepts_in_order() {
        let mut w = ReplayWindow::new(64, false);
        for s in 1..200u32 {
            let full = w.check(s).unwrap();
            w.accept(full).unwrap();
        }
        assert_eq!(w.top(), 199);
        assert_eq!(w.check(199), Err(DropReason::ReplayDuplicate));
        // W = 64: 136..=199 are inside the window, 135 is the first number left of it.
        assert_eq!(w.check(136), Err(DropReason::ReplayDuplicate));
        assert_eq!(w.check(135), Err(DropReason::ReplayTooOld));
        assert_eq!(w.check(0), Err(DropReason::ReplayTooOld));
    }

    #[test]
    fn out_of_order_within_window() {
        let mut w = ReplayWindow::new(1024, false);
        w.accept(w.check(1000).unwrap()).unwrap();
        let s = w.check(10).unwrap();
        w.accept(s).unwrap();
        assert_eq!(w.check(10), Err(DropReason::ReplayDuplicate));
        assert!(w.check(11).is_ok());
        w.accept(w.check(2000).unwrap()).unwrap();
        assert_eq!(w.check(2000 - 1024), Err(DropReason::ReplayTooOld));
        assert!(w.check(2000 - 1023).is_ok());
    }

    #[test]
    fn accept_rechecks_duplicates_of_the_same_burst() {
        let mut w = ReplayWindow::new(128, false);
        let a = w.check(5).unwrap();
        let b = w.check(5).unwrap();
        w.accept(a).unwrap();
        assert_eq!(w.accept(b), Err(DropReason::ReplayDuplicate));
    }

    #[test]
    fn esn_crosses_the_32_bit_boundary() {
        let mut w = ReplayWindow::new(1024, true);
        let start = (1u64 << 32) - 10;
        w.accept(start).unwrap();
        for s in start + 1..start + 30 {
            let full = w.check(s as u32).unwrap();
            assert_eq!(full, s);
            w.accept(full).unwrap();
        }
        // A late packet from before the boundary is recognised as such.
        assert_eq!(w.check((start - 5) as u32), Ok(start - 5));
        assert_eq!(w.check(start as u32), Err(DropReason::ReplayDuplicate));
    }

    #[test]
    fn disabled_window_accepts_repeats_but_not_zero() {
        let mut w = ReplayWindow::new(0, false);
        w.accept(w.check(5).unwrap()).unwrap();
        assert!(w.check(5).is_ok());
        assert!(w.check(0).is_err());
    }
}
