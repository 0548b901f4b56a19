//! The inbound anti-replay window (RFC 4303 section 3.4.3) with extended sequence number
//! inference (RFC 4303 Appendix A), lock-free so that several data-plane workers can share the
//! window of one SA.
//!
//! Two steps, so that the window only moves after the integrity check (DESIGN.md rule 4):
//! [`ReplayWindow::check`] infers the full 64-bit sequence number and rejects duplicates and
//! packets left of the window without changing anything; [`ReplayWindow::accept`] is called
//! once the packet is authenticated, re-checks (another packet, on this worker or another, may
//! have taken the number meanwhile) and records it.
//!
//! Layout: a ring of words, each covering one block of 32 consecutive sequence numbers: the
//! upper half of a word holds the block's number (mod 2^32), the lower half one bit per
//! sequence number. A word is claimed for a newer block with a compare-and-swap; the ring has
//! at least `W + 32` bits, so a word is only reclaimed once its old block lies wholly left of
//! the window. A number is recorded by exactly one successful compare-and-swap, so no number is
//! ever accepted twice, whatever the interleaving. The highest number seen moves with
//! `fetch_max`. Nothing is allocated after [`ReplayWindow::new`].
//!
//! Block numbers are compared modulo 2^32 (as within 2^31 blocks of each other): a word left
//! untouched while the window moves on by 2^36 sequence numbers could be taken for a newer
//! block and its numbers dropped as too old (never accepted). A sender counts up by one
//! (RFC 4303 section 3.3.3), which touches every word once per window length.

use crate::sync::{AtomicU64, Ordering};
use rampart_sa::DropReason;

/// Sequence numbers per bitmap word.
const BLOCK: u64 = 32;

/// A sliding anti-replay window over sequence numbers, shareable between threads.
#[derive(Debug)]
pub struct ReplayWindow {
    /// Window size W in packets; 0 turns replay checking off.
    size: u64,
    /// Extended sequence numbers: only the low 32 bits travel.
    esn: bool,
    /// Highest sequence number accepted so far (T); 0 before the first packet.
    top: AtomicU64,
    /// Ring of block words, a power-of-two count of at least (W + 32) / 32.
    words: Box<[AtomicU64]>,
}

impl ReplayWindow {
    /// A window of `size` packets (0: no replay protection) over 32-bit or, with `esn`, 64-bit
    /// sequence numbers. The caller bounds `size` (see [`crate::MAX_REPLAY_WINDOW`]).
    pub fn new(size: u32, esn: bool) -> ReplayWindow {
        let count = (u64::from(size).div_ceil(BLOCK) + 1).next_power_of_two();
        ReplayWindow {
            size: u64::from(size),
            esn,
            top: AtomicU64::new(0),
            words: (0..count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Window size in packets.
    pub fn size(&self) -> u32 {
        self.size as u32
    }

    /// Highest sequence number accepted so far (0 before the first).
    pub fn top(&self) -> u64 {
        self.top.load(Ordering::Acquire)
    }

    /// Infers the full sequence number of a packet whose header carries `seq_low`, and checks
    /// it against the window without changing the window.
    pub fn check(&self, seq_low: u32) -> Result<u64, DropReason> {
        let seq = self.infer(seq_low);
        self.verdict(seq, self.word(seq).load(Ordering::Acquire))?;
        Ok(seq)
    }

    /// Records `seq` (as returned by [`ReplayWindow::check`]) as received, after the packet's
    /// integrity was verified. Fails if `seq` became a duplicate or fell left of the window
    /// since the check.
    pub fn accept(&self, seq: u64) -> Result<(), DropReason> {
        if self.size == 0 {
            self.verdict(seq, 0)?;
            self.top.fetch_max(seq, Ordering::AcqRel);
            return Ok(());
        }
        let word = self.word(seq);
        let mut current = word.load(Ordering::Acquire);
        loop {
            let recorded = self.verdict(seq, current)?;
            match word.compare_exchange_weak(current, recorded, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        self.top.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }

    fn word(&self, seq: u64) -> &AtomicU64 {
        &self.words[((seq / BLOCK) as usize) & (self.words.len() - 1)]
    }

    /// Whether `seq` may be accepted given the current value of its word; if so, the value the
    /// word takes once `seq` is recorded.
    fn verdict(&self, seq: u64, word: u64) -> Result<u64, DropReason> {
        //= https://www.rfc-editor.org/rfc/rfc4303#section-3.4.3
        //# the receiver MUST verify that the packet does not duplicate the sequence number of
        //# any other packet received during the life of this SA.
        if seq == 0 {
            // The sender starts at 1 (RFC 4303 section 3.3.3): 0 is never a fresh number.
            return Err(DropReason::ReplayTooOld);
        }
        if self.size == 0 {
            return Ok(0);
        }
        let top = self.top.load(Ordering::Acquire);
        if seq <= top && top - seq >= self.size {
            return Err(DropReason::ReplayTooOld);
        }
        let block = (seq / BLOCK) as u32;
        let bit = 1u32 << (seq % BLOCK);
        let word_block = (word >> 32) as u32;
        let bits = word as u32;
        let new_bits = if word_block == block {
            if bits & bit != 0 {
                return Err(DropReason::ReplayDuplicate);
            }
            bits | bit
        } else if (word_block.wrapping_sub(block) as i32) > 0 {
            // The word already belongs to a newer block: this one is left of the window.
            return Err(DropReason::ReplayTooOld);
        } else {
            // An older block, wholly left of the window: the word starts afresh for ours.
            bit
        };
        Ok((u64::from(block) << 32) | u64::from(new_bits))
    }

    /// RFC 4303 Appendix A2.2: the high half of a 64-bit sequence number from its low half and
    /// the window position.
    fn infer(&self, seq_low: u32) -> u64 {
        if !self.esn {
            return u64::from(seq_low);
        }
        let w = self.size.max(1);
        let top = self.top.load(Ordering::Acquire);
        let th = top >> 32;
        let tl = top & 0xffff_ffff;
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fresh_window_accepts_in_order() {
        let w = ReplayWindow::new(64, false);
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
        let w = ReplayWindow::new(1024, false);
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
        let w = ReplayWindow::new(128, false);
        let a = w.check(5).unwrap();
        let b = w.check(5).unwrap();
        w.accept(a).unwrap();
        assert_eq!(w.accept(b), Err(DropReason::ReplayDuplicate));
    }

    #[test]
    fn esn_crosses_the_32_bit_boundary() {
        let w = ReplayWindow::new(1024, true);
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
        let w = ReplayWindow::new(0, false);
        w.accept(w.check(5).unwrap()).unwrap();
        assert!(w.check(5).is_ok());
        assert!(w.check(0).is_err());
    }

    #[test]
    fn threads_never_accept_a_number_twice() {
        use std::sync::Arc;
        let w = Arc::new(ReplayWindow::new(1024, false));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let w = Arc::clone(&w);
                std::thread::spawn(move || {
                    let mut accepted = Vec::new();
                    // Every thread offers every number, each in its own order, jittered.
                    for i in 0..20_000u64 {
                        let seq = 1 + (i ^ (t * 7)) % 20_000 + (i / 512) * 3;
                        if let Ok(full) = w.check(seq as u32)
                            && w.accept(full).is_ok()
                        {
                            accepted.push(full);
                        }
                    }
                    accepted
                })
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|h| h.join().unwrap()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a sequence number was accepted twice");
        assert!(n > 10_000, "only {n} accepted");
    }
}
