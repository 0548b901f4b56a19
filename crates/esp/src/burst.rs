//! Bursts of packets that belong to many SAs, through the one sequence of steps that the data
//! plane runs (and that every test of this crate runs too, through the single-SA wrappers
//! [`OutboundSa::encapsulate_burst`] and [`InboundSa::decapsulate_burst`]).
//!
//! ```text
//! outbound  prepare  (per packet, on its SA: sequence number, trailer, headers; in place)
//!           seal     (ONE crypto call for every prepared packet of the burst, any SA, any backend)
//!           finish   (per packet: what covers the ciphertext, the IPv6 UDP checksum)
//!
//! inbound   precheck (per packet, on its SA: length for the suite, replay check; no state moves)
//!           open     (ONE crypto call: integrity and decryption of every prechecked packet)
//!           complete (per packet: trailer, inner packet, traffic selectors; only then the
//!                     replay window moves, DESIGN.md rule 4)
//! ```
//!
//! The caller names each packet's SA by a slot in its own table of runtimes ([`SaSlots`]): the
//! data plane's per-worker arrays, a `Vec<Option<_>>`, or one SA ([`OneSa`]). A packet whose slot
//! holds no runtime is dropped with [`DropReason::NoSa`] (outbound) or
//! [`DropReason::UnknownSpi`] (inbound).
//!
//! A second transform (AH) is one more implementation of each step on the SA runtimes, its
//! crypto jobs batched in the same call; it is never a second pipeline.
//!
//! Never allocates, never panics on packet contents: the burst state lives on the stack in
//! arrays of [`MAX_BURST`], and longer bursts are cut into chunks of that size.

use arrayvec::ArrayVec;
use rampart_crypto::{MAX_BURST, OpenOp, SealOp};
use rampart_sa::DropReason;

use crate::buf::PacketBuf;
use crate::inbound::{Decapsulated, EspLocation, InboundSa, Received, parse_outer};
use crate::outbound::{OutboundSa, Prepared};

/// The SA runtimes a burst's packets refer to, by slot.
pub trait SaSlots<S> {
    /// The runtime in `slot`, if any.
    fn sa(&self, slot: u32) -> Option<&S>;
    /// The runtime in `slot`, mutable.
    fn sa_mut(&mut self, slot: u32) -> Option<&mut S>;
}

impl<S> SaSlots<S> for [Option<S>] {
    #[inline]
    fn sa(&self, slot: u32) -> Option<&S> {
        self.get(slot as usize).and_then(Option::as_ref)
    }

    #[inline]
    fn sa_mut(&mut self, slot: u32) -> Option<&mut S> {
        self.get_mut(slot as usize).and_then(Option::as_mut)
    }
}

impl<S> SaSlots<S> for Vec<Option<S>> {
    #[inline]
    fn sa(&self, slot: u32) -> Option<&S> {
        self.as_slice().sa(slot)
    }

    #[inline]
    fn sa_mut(&mut self, slot: u32) -> Option<&mut S> {
        self.as_mut_slice().sa_mut(slot)
    }
}

/// One SA as a table: every slot is that SA.
#[derive(Debug)]
pub struct OneSa<'a, S>(pub &'a mut S);

impl<S> SaSlots<S> for OneSa<'_, S> {
    #[inline]
    fn sa(&self, _slot: u32) -> Option<&S> {
        Some(self.0)
    }

    #[inline]
    fn sa_mut(&mut self, _slot: u32) -> Option<&mut S> {
        Some(self.0)
    }
}

/// Slot 0 for every packet of a chunk: the single-SA wrappers' table has one entry.
pub(crate) const SLOT_ZERO: [u32; MAX_BURST] = [0; MAX_BURST];

/// Encapsulates a burst in place: `pkts[i]` on the SA in `slots[i]`. `verdicts[i]` tells what
/// became of `pkts[i]`: sealed and finished (where its ESP part lies and the sequence number it
/// carries), or why it must be dropped (its bytes are then unspecified). Slices of different
/// lengths are processed up to the shortest.
pub fn encapsulate<T: SaSlots<OutboundSa> + ?Sized>(
    sas: &mut T,
    pkts: &mut [PacketBuf<'_>],
    slots: &[u32],
    verdicts: &mut [Result<Prepared, DropReason>],
) {
    let chunks = pkts.chunks_mut(MAX_BURST).zip(slots.chunks(MAX_BURST)).zip(verdicts.chunks_mut(MAX_BURST));
    for ((pkts, slots), verdicts) in chunks {
        encapsulate_chunk(sas, pkts, slots, verdicts);
    }
}

fn encapsulate_chunk<T: SaSlots<OutboundSa> + ?Sized>(
    sas: &mut T,
    pkts: &mut [PacketBuf<'_>],
    slots: &[u32],
    verdicts: &mut [Result<Prepared, DropReason>],
) {
    // Step 1: prepare, each packet on its SA (sequence numbers are taken here, in burst order).
    for ((pkt, &slot), verdict) in pkts.iter_mut().zip(slots).zip(verdicts.iter_mut()) {
        *verdict = match sas.sa_mut(slot) {
            Some(sa) => sa.prepare(pkt),
            None => Err(DropReason::NoSa),
        };
    }
    // Step 2: one seal over every prepared packet.
    let sealed = {
        let sas: &T = sas;
        let mut ops: ArrayVec<SealOp<'_>, MAX_BURST> = ArrayVec::new();
        for ((pkt, &slot), verdict) in pkts.iter_mut().zip(slots).zip(verdicts.iter_mut()) {
            let Ok(prepared) = verdict else { continue };
            match sas.sa(slot).and_then(|sa| sa.seal_op(pkt, prepared)) {
                Some(op) => ops.push(op),
                // A layout the SA produced itself: cannot happen, but never send unsealed data.
                None => *verdict = Err(DropReason::NoRoom),
            }
        }
        rampart_crypto::seal_burst(&mut ops).is_ok()
    };
    // Step 3: finish what covers the ciphertext.
    for ((pkt, &slot), verdict) in pkts.iter_mut().zip(slots).zip(verdicts.iter_mut()) {
        let Ok(prepared) = verdict else { continue };
        match sas.sa(slot) {
            Some(sa) if sealed => sa.finish(pkt, prepared),
            _ => *verdict = Err(DropReason::NoRoom),
        }
    }
}

/// Decapsulates a burst in place: `pkts[i]`, found by [`crate::parse_outer`] at `locs[i]`, on
/// the SA in `slots[i]` (looked up by SPI and destination). On `Ok` the inner packet is in
/// `pkts[i]`; on `Err` the packet must be dropped (nothing of it was accepted: the replay
/// window moved only for packets that verified). Slices of different lengths are processed up
/// to the shortest.
pub fn decapsulate<T: SaSlots<InboundSa> + ?Sized>(
    sas: &mut T,
    pkts: &mut [PacketBuf<'_>],
    slots: &[u32],
    locs: &[EspLocation],
    verdicts: &mut [Result<Decapsulated, DropReason>],
) {
    let chunks = pkts
        .chunks_mut(MAX_BURST)
        .zip(slots.chunks(MAX_BURST))
        .zip(locs.chunks(MAX_BURST))
        .zip(verdicts.chunks_mut(MAX_BURST));
    for (((pkts, slots), locs), verdicts) in chunks {
        decapsulate_chunk(sas, pkts, slots, locs, verdicts);
    }
}

fn decapsulate_chunk<T: SaSlots<InboundSa> + ?Sized>(
    sas: &mut T,
    pkts: &mut [PacketBuf<'_>],
    slots: &[u32],
    locs: &[EspLocation],
    verdicts: &mut [Result<Decapsulated, DropReason>],
) {
    // Step 1: precheck (length, replay), no state changes.
    let mut seqs: ArrayVec<Result<u64, DropReason>, MAX_BURST> = ArrayVec::new();
    for ((pkt, &slot), loc) in pkts.iter().zip(slots).zip(locs) {
        seqs.push(match sas.sa(slot) {
            Some(sa) => sa.precheck(pkt, loc),
            None => Err(DropReason::UnknownSpi),
        });
    }
    // Step 2: one open over every prechecked packet.
    let mut verified = [false; MAX_BURST];
    {
        let sas: &T = sas;
        let mut ops: ArrayVec<OpenOp<'_>, MAX_BURST> = ArrayVec::new();
        let mut index: ArrayVec<u8, MAX_BURST> = ArrayVec::new();
        for (i, (((pkt, &slot), loc), seq)) in pkts.iter_mut().zip(slots).zip(locs).zip(&seqs).enumerate() {
            if let Ok(seq) = seq
                && let Some(op) = sas.sa(slot).and_then(|sa| sa.open_op(pkt, loc, *seq))
            {
                ops.push(op);
                index.push(i as u8);
            }
        }
        rampart_crypto::open_burst(&mut ops);
        for (op, &i) in ops.iter().zip(&index) {
            verified[usize::from(i)] = op.verified;
        }
    }
    // Step 3: complete; the window moves here, for packets that verified.
    for (i, (((pkt, &slot), loc), verdict)) in pkts.iter_mut().zip(slots).zip(locs).zip(verdicts.iter_mut()).enumerate()
    {
        *verdict = match (seqs[i], sas.sa_mut(slot)) {
            (Ok(seq), Some(sa)) => sa.complete(pkt, loc, seq, verified[i]),
            (Err(e), _) => Err(e),
            (Ok(_), None) => Err(DropReason::UnknownSpi),
        };
    }
}

impl OutboundSa {
    /// Encapsulates a burst of packets of this SA in place, through the same steps as a
    /// mixed-SA burst ([`crate::burst::encapsulate`]). `verdicts[i]` tells what became of
    /// `pkts[i]`; on `Err` the packet's bytes are unspecified and it must be dropped.
    pub fn encapsulate_burst(&mut self, pkts: &mut [PacketBuf<'_>], verdicts: &mut [Result<Prepared, DropReason>]) {
        for (pkts, verdicts) in pkts.chunks_mut(MAX_BURST).zip(verdicts.chunks_mut(MAX_BURST)) {
            encapsulate(&mut OneSa(self), pkts, &SLOT_ZERO[..pkts.len()], verdicts);
        }
    }

    /// Encapsulates one packet (a burst of one).
    pub fn encapsulate(&mut self, pkt: &mut PacketBuf<'_>) -> Result<(), DropReason> {
        let mut verdict = [Err(DropReason::NoSa)];
        self.encapsulate_burst(core::slice::from_mut(pkt), &mut verdict);
        verdict[0].map(|_| ())
    }
}

impl InboundSa {
    /// Decapsulates a burst of this SA's packets in place, through the same steps as a
    /// mixed-SA burst ([`crate::burst::decapsulate`]); `locs[i]` comes from [`parse_outer`]
    /// for `pkts[i]`. On `Err` the packet must be dropped.
    pub fn decapsulate_burst(
        &mut self,
        pkts: &mut [PacketBuf<'_>],
        locs: &[EspLocation],
        verdicts: &mut [Result<Decapsulated, DropReason>],
    ) {
        let chunks = pkts.chunks_mut(MAX_BURST).zip(locs.chunks(MAX_BURST)).zip(verdicts.chunks_mut(MAX_BURST));
        for ((pkts, locs), verdicts) in chunks {
            decapsulate(&mut OneSa(self), pkts, &SLOT_ZERO[..pkts.len()], locs, verdicts);
        }
    }

    /// Classifies and decapsulates one received IP packet (a burst of one). A keepalive comes
    /// back as [`DropReason::NatKeepalive`], anything else that is not ESP as
    /// [`DropReason::BadOuterHeader`].
    pub fn decapsulate(&mut self, pkt: &mut PacketBuf<'_>, encap_port: u16) -> Result<Decapsulated, DropReason> {
        let loc = match parse_outer(pkt.data(), encap_port)? {
            Received::Esp(loc) => loc,
            Received::Keepalive => return Err(DropReason::NatKeepalive),
            Received::NotEsp => return Err(DropReason::BadOuterHeader),
        };
        let mut verdict = [Err(DropReason::Truncated)];
        self.decapsulate_burst(core::slice::from_mut(pkt), &[loc], &mut verdict);
        verdict[0]
    }
}
