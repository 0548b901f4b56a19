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
//! AH is one more implementation of each step on the same SA runtimes: `prepare` builds its
//! header and makes the packet its own ICV input in place, its crypto job is a MAC
//! (`rampart_crypto::mac_burst`, run in the same step as the ESP seal or open), and the last
//! step writes (outbound) or checks (inbound) the ICV and puts the mutable header fields back.
//! One pipeline for both; a burst may mix ESP and AH SAs.
//!
//! Never allocates, never panics on packet contents: the burst state lives on the stack in
//! arrays of [`MAX_BURST`], and longer bursts are cut into chunks of that size.

use arrayvec::ArrayVec;
use rampart_crypto::{MAX_BURST, MAX_TAG_LEN, MacOp, OpenOp, SealOp};
use rampart_sa::{DropReason, Protocol};

use crate::buf::PacketBuf;
use crate::inbound::{Decapsulated, InboundSa, IpsecLocation, Received, parse_outer};
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
    // Step 2: one seal over every prepared ESP packet, one MAC pass over every AH packet.
    let mut tags: ArrayVec<[u8; MAX_TAG_LEN], MAX_BURST> = ArrayVec::new();
    let mut tag_of = [u8::MAX; MAX_BURST];
    let sealed = {
        let sas: &T = sas;
        let mut seals: ArrayVec<SealOp<'_>, MAX_BURST> = ArrayVec::new();
        let mut macs: ArrayVec<MacOp<'_>, MAX_BURST> = ArrayVec::new();
        for (i, ((pkt, &slot), verdict)) in pkts.iter_mut().zip(slots).zip(verdicts.iter_mut()).enumerate() {
            let Ok(prepared) = verdict else { continue };
            let Some(sa) = sas.sa(slot) else {
                *verdict = Err(DropReason::NoSa);
                continue;
            };
            let pushed = match sa.protocol() {
                Protocol::Esp => sa.seal_op(pkt, prepared).map(|op| seals.push(op)),
                Protocol::Ah => sa.mac_op(pkt, prepared).map(|op| {
                    tag_of[i] = macs.len() as u8;
                    macs.push(op);
                }),
            };
            // A layout the SA produced itself: cannot fail, but never send unprotected data.
            if pushed.is_none() {
                *verdict = Err(DropReason::NoRoom);
            }
        }
        rampart_crypto::mac_burst(&mut macs);
        tags.extend(macs.iter().map(|op| op.tag));
        rampart_crypto::seal_burst(&mut seals).is_ok()
    };
    // Step 3: finish what covers the ciphertext (ESP) or the ICV into its field (AH).
    for (i, ((pkt, &slot), verdict)) in pkts.iter_mut().zip(slots).zip(verdicts.iter_mut()).enumerate() {
        let Ok(prepared) = verdict else { continue };
        match (sas.sa(slot), tags.get(usize::from(tag_of[i]))) {
            (Some(sa), Some(tag)) => {
                if let Err(r) = sa.finish_ah(pkt, prepared, tag) {
                    *verdict = Err(r);
                }
            }
            (Some(sa), None) if sealed && sa.protocol() == Protocol::Esp => sa.finish(pkt, prepared),
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
    locs: &[IpsecLocation],
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
    locs: &[IpsecLocation],
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
    // Step 2: AH packets made into their ICV input, then one open over every prechecked ESP
    // packet and one MAC pass over every AH packet.
    for (((pkt, &slot), loc), seq) in pkts.iter_mut().zip(slots).zip(locs).zip(seqs.iter_mut()) {
        if let (Ok(s), Some(sa)) = (*seq, sas.sa(slot))
            && sa.protocol() == Protocol::Ah
            && let Err(r) = sa.prepare_verify(pkt, loc, s)
        {
            *seq = Err(r);
        }
    }
    let mut verified = [false; MAX_BURST];
    {
        let sas: &T = sas;
        let mut opens: ArrayVec<OpenOp<'_>, MAX_BURST> = ArrayVec::new();
        let mut open_index: ArrayVec<u8, MAX_BURST> = ArrayVec::new();
        let mut macs: ArrayVec<MacOp<'_>, MAX_BURST> = ArrayVec::new();
        let mut mac_index: ArrayVec<u8, MAX_BURST> = ArrayVec::new();
        let mut mac_pkts: ArrayVec<(&PacketBuf<'_>, &InboundSa), MAX_BURST> = ArrayVec::new();
        for (i, (((pkt, &slot), loc), seq)) in pkts.iter_mut().zip(slots).zip(locs).zip(&seqs).enumerate() {
            let (Ok(seq), Some(sa)) = (seq, sas.sa(slot)) else { continue };
            match sa.protocol() {
                Protocol::Esp => {
                    if let Some(op) = sa.open_op(pkt, loc, *seq) {
                        opens.push(op);
                        open_index.push(i as u8);
                    }
                }
                Protocol::Ah => {
                    let pkt: &PacketBuf<'_> = pkt;
                    if let Some(op) = sa.mac_op(pkt, loc) {
                        macs.push(op);
                        mac_index.push(i as u8);
                        mac_pkts.push((pkt, sa));
                    }
                }
            }
        }
        rampart_crypto::open_burst(&mut opens);
        rampart_crypto::mac_burst(&mut macs);
        for (op, &i) in opens.iter().zip(&open_index) {
            verified[usize::from(i)] = op.verified;
        }
        for ((op, &i), (pkt, sa)) in macs.iter().zip(&mac_index).zip(&mac_pkts) {
            verified[usize::from(i)] = sa.ah_verified(pkt, &op.tag);
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
        locs: &[IpsecLocation],
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
            Received::Ipsec(loc) => loc,
            Received::Keepalive => return Err(DropReason::NatKeepalive),
            Received::NotEsp => return Err(DropReason::BadOuterHeader),
        };
        let mut verdict = [Err(DropReason::Truncated)];
        self.decapsulate_burst(core::slice::from_mut(pkt), &[loc], &mut verdict);
        verdict[0]
    }
}
