//! WAN -> LAN: one burst of frames from a WAN socket, processed to completion.
//!
//! 1. Per frame: Ethernet/VLAN, then `parse_outer` (ESP or ESP-in-UDP; a NAT keepalive is
//!    consumed and counted). Outer IPv4 and IPv6 fragments (of ESP and of any UDP to a local
//!    address: only the first fragment says whether it is ESP-in-UDP or IKE) go to the
//!    reassembly table (`reasm`); a datagram it completes is classified in their place. What is
//!    not ESP after reassembly (IKE, other UDP) goes to the kernel whole (`Ctx::hand_to_kernel`).
//!    SA by SPI and destination from the compiled index; unknown: `unknown_spi` (logged at most
//!    once a second per worker).
//! 2. The whole burst through `rampart_esp::burst::decapsulate`: `precheck` (length, replay
//!    check without moving the window), one `open_burst` over every SA's packets, `complete`
//!    (trailer, inner packet, traffic selectors; only then the window moves, DESIGN.md rule 4).
//! 3. Per inner packet: TTL or hop limit decremented, next hop from the mirror, Ethernet header,
//!    onto the LAN tx list for the worker to send. Usage written to the database once per SA
//!    per burst.
//!
//! Must never allocate, lock or make a system call; never sees a socket.

use arrayvec::ArrayVec;
use rampart_esp::burst;
use rampart_esp::{Decapsulated, DropReason, IpsecLocation, PacketBuf, Received};
use rampart_nic::{Desc, Umem};

use crate::ctx::{BURST, BurstOut, Ctx, InboundSas, SaBurst, free_frames};
use crate::frame::{self, IpInFrame};
use crate::mirror::NextHop;
use crate::reasm;
use crate::stats::Counter;
use crate::tables::Tables;

/// A frame of ESP that step 1 found an SA for.
#[derive(Clone, Copy)]
struct Decap {
    desc: Desc,
    slot: u32,
    info: IpInFrame,
}

/// The burst's ESP frames after step 1, with their locations beside them (the ESP burst takes
/// the SA slots and the locations as slices of their own).
#[derive(Default)]
struct Decaps {
    frames: ArrayVec<Decap, BURST>,
    slots: ArrayVec<u32, BURST>,
    locs: ArrayVec<IpsecLocation, BURST>,
}

impl Decaps {
    fn push(&mut self, desc: Desc, slot: u32, info: IpInFrame, loc: IpsecLocation) {
        self.frames.push(Decap { desc, slot, info });
        self.slots.push(slot);
        self.locs.push(loc);
    }
}

/// Processes one WAN rx burst; what is to be sent goes to `out.lan_tx`.
pub(crate) fn process(ctx: &mut Ctx, tables: &Tables, umem: &mut Umem, rx: &[Desc], out: &mut BurstOut) {
    let mut drop_frames: ArrayVec<u64, BURST> = ArrayVec::new();
    let mut decap = Decaps::default();

    // Step 1: classify and find the SA.
    for &d in rx {
        ctx.values.add(Counter::WanRxPackets, 1);
        ctx.values.add(Counter::WanRxBytes, u64::from(d.len));
        classify(ctx, tables, umem, d, true, &mut decap, &mut drop_frames);
    }

    // Step 2 and 3.
    let mut bursts: ArrayVec<SaBurst, BURST> = ArrayVec::new();
    if !decap.frames.is_empty() {
        open(ctx, umem, &decap, &mut bursts, &mut out.lan_tx, &mut drop_frames);
    }
    ctx.account(&bursts, false);
    free_frames(umem, &drop_frames);
}

/// Step 1 for one frame: a decapsulation job in `decap`, or the frame in `drop_frames` (counted).
/// An outer IPv4 fragment goes to the reassembly table (`reassemble`); a datagram it completes
/// is classified in its place.
fn classify(
    ctx: &mut Ctx,
    tables: &Tables,
    umem: &mut Umem,
    d: Desc,
    reassemble: bool,
    decap: &mut Decaps,
    drop_frames: &mut ArrayVec<u64, BURST>,
) {
    let Ok(frame) = umem.frame(&d) else {
        ctx.values.drop(DropReason::Truncated);
        drop_frames.push(d.addr);
        return;
    };
    let Some(info) = frame::ip_in_frame_counted(frame, &mut ctx.values) else {
        drop_frames.push(d.addr);
        return;
    };
    let ip = &frame[info.eth_len..info.eth_len + info.ip_len];
    let loc = match rampart_esp::parse_outer(ip, ctx.encap_port) {
        Ok(Received::Ipsec(loc)) => loc,
        Ok(Received::Keepalive) => {
            //= https://www.rfc-editor.org/rfc/rfc3948#section-2.3
            //# The sender SHOULD use a one-octet long payload with the value 0xFF. The receiver
            //# SHOULD ignore a received NAT-keepalive packet.
            ctx.values.drop(DropReason::NatKeepalive);
            drop_frames.push(d.addr);
            return;
        }
        Ok(Received::NotEsp) => {
            // Not ESP: the kernel's (IKE in a reassembled UDP datagram, say), handed to it whole.
            ctx.hand_to_kernel(ip);
            drop_frames.push(d.addr);
            return;
        }
        Err(DropReason::Fragment) if reassemble => {
            ctx.values.add(Counter::Fragments, 1);
            // Copied out first: the table writes into another frame of the same UMEM.
            let n = info.eth_len + info.ip_len;
            let Some(copy) = ctx.scratch.get_mut(..n) else {
                ctx.values.drop(DropReason::FragmentTooLarge);
                drop_frames.push(d.addr);
                return;
            };
            copy.copy_from_slice(&frame[..n]);
            drop_frames.push(d.addr);
            let mut evicted = 0;
            let outcome = ctx.reasm.add(umem, &ctx.scratch[..n], info.eth_len, ctx.now_ms, &mut evicted);
            for _ in 0..evicted {
                ctx.values.drop(DropReason::FragmentTableFull);
            }
            match outcome {
                reasm::Outcome::Held => {}
                reasm::Outcome::Dropped(r) => ctx.values.drop(r),
                reasm::Outcome::Complete(whole) => {
                    ctx.values.add(Counter::Reassembled, 1);
                    classify(ctx, tables, umem, whole, false, decap, drop_frames);
                }
            }
            return;
        }
        Err(r) => {
            ctx.values.drop(r);
            drop_frames.push(d.addr);
            return;
        }
    };
    let found = tables.sa_index.lookup(loc.spi, loc.dst).and_then(|id| {
        ctx.in_rt.get(id.slot as usize).and_then(Option::as_ref).filter(|r| r.entry.id == id).map(|r| (id.slot, r))
    });
    match found {
        Some((_, rt)) if rt.entry.shared.expired.load(std::sync::atomic::Ordering::Relaxed) => {
            ctx.values.drop(DropReason::SaExpired);
            drop_frames.push(d.addr);
        }
        Some((slot, _)) => decap.push(d, slot, info, loc),
        None => {
            ctx.values.drop(DropReason::UnknownSpi);
            if ctx.now_ms.saturating_sub(ctx.unknown_spi_logged_ms) >= 1000 || ctx.unknown_spi_logged_ms == 0 {
                ctx.unknown_spi_logged_ms = ctx.now_ms.max(1);
                tracing::warn!(
                    worker = ctx.index,
                    spi = format_args!("{:#010x}", loc.spi),
                    src = %loc.src,
                    dst = %loc.dst,
                    "ESP with an unknown SPI (further ones counted under drop_unknown_spi, logged at most once a second)"
                );
            }
            drop_frames.push(d.addr);
        }
    }
}

fn open(
    ctx: &mut Ctx,
    umem: &mut Umem,
    decaps: &Decaps,
    bursts: &mut ArrayVec<SaBurst, BURST>,
    lan_tx: &mut ArrayVec<Desc, BURST>,
    drop_frames: &mut ArrayVec<u64, BURST>,
) {
    let decap = &decaps.frames;
    let whole: ArrayVec<Desc, BURST> =
        decap.iter().map(|p| Desc::new(umem.frame_base(p.desc.addr), umem.frame_size())).collect();
    let mut frames: [&mut [u8]; BURST] = std::array::from_fn(|_| <&mut [u8]>::default());
    let n = match umem.frames_mut(&whole, &mut frames) {
        Ok(n) => n,
        Err(_) => {
            for p in decap {
                ctx.values.drop(DropReason::NoRoom);
                drop_frames.push(p.desc.addr);
            }
            return;
        }
    };
    let mut pkts: ArrayVec<PacketBuf<'_>, BURST> = ArrayVec::new();
    for ((f, p), w) in frames.into_iter().take(n).zip(decap).zip(&whole) {
        let off = (p.desc.addr - w.addr) as usize;
        pkts.push(PacketBuf::new(f, off + p.info.eth_len, p.info.ip_len));
    }
    let mut verdicts = [Err(DropReason::UnknownSpi); BURST];
    burst::decapsulate(&mut InboundSas(&mut ctx.in_rt), &mut pkts, &decaps.slots, &decaps.locs, &mut verdicts);
    // The next hop of the last destination: a burst mostly goes to few hosts, and the kernel's
    // tables (`ctx.net`) do not change during a burst.
    let mut last_hop: Option<(std::net::IpAddr, Option<NextHop>)> = None;
    for (((pkt, p), w), done) in pkts.iter_mut().zip(decap).zip(&whole).zip(verdicts) {
        let verdict = done.and_then(|dec: Decapsulated| {
            let inner_len = pkt.len() as u64;
            match bursts.iter_mut().find(|b| b.slot == p.slot) {
                Some(b) => {
                    b.packets += 1;
                    b.bytes += inner_len;
                    b.max_seq = b.max_seq.max(dec.seq);
                }
                None => {
                    bursts.push(SaBurst { slot: p.slot, packets: 1, bytes: inner_len, max_seq: dec.seq });
                }
            }
            let hop = match last_hop {
                Some((dst, hop)) if dst == dec.dst => hop,
                _ => {
                    let hop = ctx.net.next_hop(dec.dst);
                    last_hop = Some((dec.dst, hop));
                    hop
                }
            };
            forward(ctx, pkt, dec.version, hop)
        });
        match verdict {
            Ok(()) => {
                ctx.values.add(Counter::DecryptedPackets, 1);
                ctx.values.add(Counter::DecryptedBytes, pkt.len() as u64);
                lan_tx.push(Desc::new(w.addr + pkt.start() as u64, pkt.len() as u32));
            }
            Err(r) => {
                ctx.values.drop(r);
                drop_frames.push(w.addr);
            }
        }
    }
}

/// Routes a decapsulated packet onto the LAN through `hop`, its destination's next hop: TTL,
/// Ethernet header.
fn forward(ctx: &mut Ctx, pkt: &mut PacketBuf<'_>, version: u8, hop: Option<NextHop>) -> Result<(), DropReason> {
    frame::decrement_ttl(pkt.data_mut(), version)?;
    let hop = hop.ok_or(DropReason::NoRoute)?;
    // Decrypted traffic leaves only on the cleartext side: never back out of the WAN in clear.
    if hop.oif != ctx.lan_ifindex {
        return Err(DropReason::NoRoute);
    }
    let Some(mac) = hop.dst_mac else {
        ctx.request_resolve(hop.oif, hop.neighbour);
        return Err(DropReason::NoRoute);
    };
    let h = pkt.push_front(rampart_wire::ethernet::HEADER_LEN)?;
    frame::write_ethernet(h, mac, hop.src_mac, version)?;
    Ok(())
}
