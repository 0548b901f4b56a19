//! LAN -> WAN: one burst of cleartext frames from a LAN socket, processed to completion.
//!
//! 1. Per frame: Ethernet/VLAN and IP checked, TTL or hop limit decremented (expired: ICMP time
//!    exceeded back to the sender, rate limited), flow read, outbound SPD looked up.
//!    Discard / no policy: dropped. Bypass: routed like a router would. Protect without an SA:
//!    `no_sa` and an acquire event (rate limited per policy). Protect: the SA's runtime, and the
//!    MTU check (too big: ICMP fragmentation needed / packet too big, rate limited; IPv4 with DF
//!    clear is counted as `too_big`, not fragmented).
//! 2. Per SA of the burst: next hop of the peer from the mirror (cached per mirror generation;
//!    unknown neighbour: `no_route` and a resolve request), and one block of sequence numbers
//!    from the SA's shared counter for all of the SA's packets in the burst.
//! 3. The whole burst through `rampart_esp::burst::encapsulate` (`prepare` per packet, one
//!    `seal_burst` over every SA's packets, `finish`), then the Ethernet header, onto the WAN tx
//!    list for the worker to send.
//!
//! Must never allocate, lock or make a system call, and never sees a socket; frames that do not
//! go out go back to the UMEM, each counted once.

use arrayvec::ArrayVec;
use rampart_esp::{DropReason, PacketBuf, Prepared};
use rampart_nic::{Desc, Umem};
use rampart_sadb::{Event, SpdAction};

use crate::ctx::{BURST, BurstOut, Ctx, OutboundSas, SaBurst, free_frames};
use crate::frame::{self, FlowKey, IcmpKind, IpInFrame};
use crate::stats::Counter;
use crate::tables::{Tables, TakeError};

/// Where an SA's packets of this burst go: MACs and the side.
#[derive(Clone, Copy)]
struct Hop {
    dst: [u8; 6],
    src: [u8; 6],
    to_wan: bool,
}

/// A frame that step 1 found to need protection: its SA's slot, and (from step 2) the index of
/// its SA in the burst's per-SA list.
#[derive(Clone, Copy)]
struct Protect {
    desc: Desc,
    slot: u32,
    info: IpInFrame,
    sa_index: u8,
}

/// What step 1 made of one frame.
enum Classified {
    /// Cleartext to protect.
    Protect(Protect),
    /// A frame to send as it is now: a bypassed packet, or an ICMP error built in its frame.
    Send { desc: Desc, to_wan: bool },
    /// Dropped (and counted).
    Drop,
}

/// Sends an ICMP error about the packet in `d` back out of the LAN, reusing its frame.
/// Returns the descriptor to transmit, or `None` (frame to be freed) when no error may or can
/// be sent.
pub(crate) fn icmp_reply(ctx: &mut Ctx, umem: &mut Umem, d: Desc, info: IpInFrame, kind: IcmpKind) -> Option<Desc> {
    if !ctx.icmp.take(ctx.now_ms) {
        ctx.values.add(Counter::IcmpRateLimited, 1);
        return None;
    }
    let v6 = info.version == 6;
    let src_ip = ctx.net.address_on(ctx.lan_ifindex, v6)?;
    let src_mac = ctx.net.links.get(&ctx.lan_ifindex).and_then(|l| l.mac)?;
    let len = {
        let frame = umem.frame(&d).ok()?;
        let dst_mac: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
        let offending = frame.get(info.eth_len..info.eth_len + info.ip_len)?;
        ctx.icmp_ident = ctx.icmp_ident.wrapping_add(1);
        let from = frame::IcmpFrom { ip: src_ip, mac: src_mac, ident: ctx.icmp_ident };
        frame::build_icmp_error(kind, offending, info.version, from, dst_mac, &mut ctx.scratch[..])?
    };
    let base = umem.frame_base(d.addr);
    let off = (umem.rx_offset() as usize).min(umem.frame_size() as usize - len);
    let chunk = umem.chunk_mut(base).ok()?;
    chunk.get_mut(off..off + len)?.copy_from_slice(ctx.scratch.get(..len)?);
    ctx.values.add(Counter::IcmpSent, 1);
    Some(Desc::new(base + off as u64, len as u32))
}

/// Processes one LAN rx burst; what is to be sent goes to `out`.
pub(crate) fn process(ctx: &mut Ctx, tables: &Tables, umem: &mut Umem, rx: &[Desc], out: &mut BurstOut) {
    let mut drop_frames: ArrayVec<u64, BURST> = ArrayVec::new();
    let mut protect: ArrayVec<Protect, BURST> = ArrayVec::new();
    let wan_mtu = ctx.wan_mtu() as usize;

    // Step 1: classify.
    for &d in rx {
        ctx.values.add(Counter::LanRxPackets, 1);
        ctx.values.add(Counter::LanRxBytes, u64::from(d.len));
        match classify(ctx, tables, umem, d, wan_mtu) {
            Classified::Protect(p) => protect.push(p),
            Classified::Send { desc, to_wan: true } => out.wan_tx.push(desc),
            Classified::Send { desc, to_wan: false } => out.lan_tx.push(desc),
            Classified::Drop => drop_frames.push(d.addr),
        }
    }

    // Step 2: per SA of the burst, next hop and one block of sequence numbers.
    let mut bursts: ArrayVec<SaBurst, BURST> = ArrayVec::new();
    for p in &mut protect {
        let i = match bursts.iter().position(|b| b.slot == p.slot) {
            Some(i) => i,
            None => {
                bursts.push(SaBurst { slot: p.slot, packets: 0, bytes: 0, max_seq: 0 });
                bursts.len() - 1
            }
        };
        bursts[i].packets += 1;
        p.sa_index = i as u8;
    }
    let mut hops: ArrayVec<Result<Hop, DropReason>, BURST> = ArrayVec::new();
    for b in &mut bursts {
        hops.push(prepare_sa(ctx, b.slot, b.packets));
        b.packets = 0;
    }

    // Step 3: encapsulate and seal the whole burst.
    let mut kept: ArrayVec<Protect, BURST> = ArrayVec::new();
    for p in protect {
        match hops[usize::from(p.sa_index)] {
            Ok(_) => kept.push(p),
            Err(r) => {
                ctx.values.drop(r);
                drop_frames.push(p.desc.addr);
            }
        }
    }
    if !kept.is_empty() {
        seal(ctx, umem, &kept, &hops, &mut bursts, out, &mut drop_frames);
    }

    ctx.account(&bursts, true);
    free_frames(umem, &drop_frames);
}

/// Step 1 for one frame: Ethernet/IP, TTL (expired: ICMP time exceeded), flow, policy, and for
/// a protect policy its SA, expiry and the MTU check (too big: ICMP, where DF is set).
fn classify(ctx: &mut Ctx, tables: &Tables, umem: &mut Umem, d: Desc, wan_mtu: usize) -> Classified {
    let Ok(frame) = umem.frame_mut(&d) else {
        ctx.values.drop(DropReason::Truncated);
        return Classified::Drop;
    };
    let Some(info) = frame::ip_in_frame_counted(frame, &mut ctx.values) else { return Classified::Drop };
    let ip = &mut frame[info.eth_len..info.eth_len + info.ip_len];
    if let Err(r) = frame::decrement_ttl(ip, info.version) {
        ctx.values.drop(r);
        return match (r == DropReason::TtlExpired).then(|| icmp_reply(ctx, umem, d, info, IcmpKind::TimeExceeded)) {
            Some(Some(desc)) => Classified::Send { desc, to_wan: false },
            _ => Classified::Drop,
        };
    }
    let flow = match frame::flow_of(ip, info.version) {
        Ok(f) => f,
        Err(r) => {
            ctx.values.drop(r);
            return Classified::Drop;
        }
    };
    let dont_frag = info.version == 6 || rampart_wire::Ipv4Packet::new_unchecked(&*ip).dont_frag();
    let m = match flow {
        FlowKey::V4(f) => tables.spd_out.lookup_v4(&f),
        FlowKey::V6(f) => tables.spd_out.lookup_v6(&f),
    };
    let Some(m) = m else {
        ctx.values.drop(DropReason::NoPolicy);
        return Classified::Drop;
    };
    let slot = match m.action {
        SpdAction::Discard => {
            ctx.values.drop(DropReason::NoPolicy);
            return Classified::Drop;
        }
        SpdAction::Bypass => {
            return match bypass(ctx, umem, d, info, flow) {
                Ok((desc, to_wan)) => {
                    ctx.values.add(Counter::BypassPackets, 1);
                    Classified::Send { desc, to_wan }
                }
                Err(r) => {
                    ctx.values.drop(r);
                    Classified::Drop
                }
            };
        }
        SpdAction::Protect { sa: None } => {
            no_sa(ctx, tables, m.rank, flow);
            return Classified::Drop;
        }
        SpdAction::Protect { sa: Some(slot) } => slot,
    };
    let Some(rt) = ctx.out_rt.get(slot as usize).and_then(Option::as_ref) else {
        // Installed but not usable here (its runtime could not be built).
        no_sa(ctx, tables, m.rank, flow);
        return Classified::Drop;
    };
    if rt.entry.shared.expired.load(std::sync::atomic::Ordering::Relaxed) {
        ctx.values.drop(DropReason::SaExpired);
        return Classified::Drop;
    }
    if rt.sa.encapsulated_len(info.ip_len) > wan_mtu {
        ctx.values.drop(DropReason::TooBig);
        let mtu = wan_mtu.saturating_sub(rt.overhead) as u32;
        return match dont_frag.then(|| icmp_reply(ctx, umem, d, info, IcmpKind::TooBig { mtu })) {
            Some(Some(desc)) => Classified::Send { desc, to_wan: false },
            _ => Classified::Drop,
        };
    }
    Classified::Protect(Protect { desc: d, slot, info, sa_index: 0 })
}

/// Step 3: the ESP burst (prepare, seal, finish) over every kept packet, then the Ethernet
/// header of its SA's next hop, the per-SA accounting and the tx lists.
fn seal(
    ctx: &mut Ctx,
    umem: &mut Umem,
    kept: &[Protect],
    hops: &[Result<Hop, DropReason>],
    bursts: &mut [SaBurst],
    out: &mut BurstOut,
    drop_frames: &mut ArrayVec<u64, BURST>,
) {
    let whole: ArrayVec<Desc, BURST> =
        kept.iter().map(|p| Desc::new(umem.frame_base(p.desc.addr), umem.frame_size())).collect();
    let mut frames: [&mut [u8]; BURST] = std::array::from_fn(|_| <&mut [u8]>::default());
    let n = match umem.frames_mut(&whole, &mut frames) {
        Ok(n) => n,
        Err(_) => {
            // Two descriptors in one frame cannot come from the kernel; drop the burst.
            for p in kept {
                ctx.values.drop(DropReason::NoRoom);
                drop_frames.push(p.desc.addr);
            }
            return;
        }
    };
    let mut pkts: ArrayVec<PacketBuf<'_>, BURST> = ArrayVec::new();
    for ((f, p), w) in frames.into_iter().take(n).zip(kept).zip(&whole) {
        let off = (p.desc.addr - w.addr) as usize;
        pkts.push(PacketBuf::new(f, off + p.info.eth_len, p.info.ip_len));
    }
    let slots: ArrayVec<u32, BURST> = kept.iter().map(|p| p.slot).collect();
    let mut verdicts: [Result<Prepared, DropReason>; BURST] = [Err(DropReason::NoSa); BURST];
    rampart_esp::burst::encapsulate(&mut OutboundSas(&mut ctx.out_rt), &mut pkts, &slots, &mut verdicts);

    for (((pkt, p), w), verdict) in pkts.iter_mut().zip(kept).zip(&whole).zip(verdicts) {
        let sent = verdict.and_then(|prep| {
            let b = &mut bursts[usize::from(p.sa_index)];
            b.packets += 1;
            b.bytes += p.info.ip_len as u64;
            b.max_seq = b.max_seq.max(prep.seq);
            let Ok(Hop { dst, src, to_wan }) = hops[usize::from(p.sa_index)] else { return Err(DropReason::NoRoute) };
            let version = if pkt.data().first().is_some_and(|b| b >> 4 == 6) { 6 } else { 4 };
            frame::write_ethernet(pkt.push_front(rampart_wire::ethernet::HEADER_LEN)?, dst, src, version)?;
            Ok(to_wan)
        });
        match sent {
            Ok(to_wan) => {
                ctx.values.add(Counter::EncryptedPackets, 1);
                ctx.values.add(Counter::EncryptedBytes, p.info.ip_len as u64);
                let d = Desc::new(w.addr + pkt.start() as u64, pkt.len() as u32);
                if to_wan { out.wan_tx.push(d) } else { out.lan_tx.push(d) }
            }
            Err(r) => {
                ctx.values.drop(r);
                drop_frames.push(w.addr);
            }
        }
    }
}

/// Step 2 for one SA: next hop and `count` sequence numbers.
fn prepare_sa(ctx: &mut Ctx, slot: u32, count: u64) -> Result<Hop, DropReason> {
    let net_gen = ctx.net.generation;
    let (remote, cached) = {
        let rt = ctx.out_rt.get(slot as usize).and_then(Option::as_ref).ok_or(DropReason::NoSa)?;
        (rt.entry.config.remote, rt.next_hop.filter(|(g, _)| *g == net_gen).map(|(_, h)| h))
    };
    let hop = match cached {
        Some(h) => h,
        None => {
            let h = ctx.net.next_hop(remote);
            if let Some(rt) = ctx.out_rt.get_mut(slot as usize).and_then(Option::as_mut) {
                rt.next_hop = Some((net_gen, h));
            }
            h
        }
    };
    let hop = hop.ok_or(DropReason::NoRoute)?;
    let to_wan = if hop.oif == ctx.wan_ifindex {
        true
    } else if hop.oif == ctx.lan_ifindex {
        false
    } else {
        return Err(DropReason::NoRoute);
    };
    let Some(dst) = hop.dst_mac else {
        ctx.request_resolve(hop.oif, hop.neighbour);
        return Err(DropReason::NoRoute);
    };
    let rt = ctx.out_rt.get_mut(slot as usize).and_then(Option::as_mut).ok_or(DropReason::NoSa)?;
    let Some(seq) = rt.entry.shared.seq.as_ref() else { return Err(DropReason::NoSa) };
    match seq.take(count) {
        Ok((first, last)) => {
            rt.sa.resume_at(first);
            rt.sa.set_seq_limit(last);
            ctx.values.add(Counter::SeqBlocks, 1);
            Ok(Hop { dst, src: hop.src_mac, to_wan })
        }
        Err(TakeError::Exhausted) => {
            rt.entry.shared.expired.store(true, std::sync::atomic::Ordering::Relaxed);
            Err(DropReason::SeqExhausted)
        }
        Err(TakeError::Busy) => Err(DropReason::SeqExhausted),
        Err(TakeError::Replaced) => Err(DropReason::NoSa),
    }
}

/// Protect policy without a usable SA: count, and ask the IKE daemon for one (at most once a
/// second per policy).
fn no_sa(ctx: &mut Ctx, tables: &crate::tables::Tables, rank: u32, flow: FlowKey) {
    ctx.values.drop(DropReason::NoSa);
    let Some(policy) = tables.spd_out.policy(rank) else { return };
    if !tables.claim_acquire(rank, ctx.now_ms.max(1)) {
        ctx.values.add(Counter::AcquiresRateLimited, 1);
        return;
    }
    //= https://www.rfc-editor.org/rfc/rfc4301#section-5.2
    //# If no SA exists, the IPsec implementation ... invokes the SA management protocol
    if ctx.reader.push_event(&Event::Acquire { policy, flow: flow.to_flow() }).is_ok() {
        ctx.values.add(Counter::AcquiresSent, 1);
    }
}

/// Bypass: routes the cleartext packet like a router (TTL already decremented).
fn bypass(ctx: &mut Ctx, umem: &mut Umem, d: Desc, info: IpInFrame, flow: FlowKey) -> Result<(Desc, bool), DropReason> {
    let hop = ctx.net.next_hop(flow.dst()).ok_or(DropReason::NoRoute)?;
    let to_wan = if hop.oif == ctx.wan_ifindex {
        true
    } else if hop.oif == ctx.lan_ifindex {
        false
    } else {
        return Err(DropReason::NoRoute);
    };
    let Some(dst) = hop.dst_mac else {
        ctx.request_resolve(hop.oif, hop.neighbour);
        return Err(DropReason::NoRoute);
    };
    // A fresh untagged header right in front of the IP packet.
    let eth = rampart_wire::ethernet::HEADER_LEN;
    let start = d.addr + info.eth_len as u64 - eth as u64;
    let out = Desc::new(start, (eth + info.ip_len) as u32);
    let f = umem.frame_mut(&out).map_err(|_| DropReason::NoRoom)?;
    frame::write_ethernet(f, dst, hop.src_mac, info.version)?;
    Ok((out, to_wan))
}
