//! Reassembly of outer IPv4 and IPv6 fragments before IPsec processing (RFC 4303 section
//! 3.4.1, DESIGN.md "The data path"): a small per-worker table, bounded in entries, size, time
//! and fragments per datagram.
//!
//! Each entry owns one UMEM frame into which the fragments' payloads are copied at their
//! offsets (the headers of the first fragment go in front once it is known), and a bitmap of
//! the 8-byte units received. When the last unit is in, the entry's frame comes out as one whole
//! Ethernet + IP packet, which the worker classifies like any received frame: ESP (plain or in
//! UDP) goes on to decapsulation, anything else (IKE over fragmented UDP, say) to the kernel.
//!
//! Limits, each with its drop reason: [`SLOTS`] datagrams in progress per worker, of which one
//! source address may hold [`SLOTS_PER_SOURCE`] (`fragment_table_full`; when the table is full
//! a new datagram takes the place of the oldest one, so that a flood of incomplete datagrams
//! from many sources cannot keep complete ones out for long), reassembled datagrams up to what
//! fits one frame behind the headroom ([`MAX_PAYLOAD`] bytes of fragmentable payload, enough for
//! ESP from a 1500-byte path; `fragment_too_large`), [`MAX_FRAGMENTS`] fragments per datagram
//! (`fragment_too_many`), [`TIMEOUT_MS`] to complete (`fragment_timeout`), and no overlapping
//! fragments (an overlap drops the whole datagram: RFC 5722's rule for IPv6, applied to IPv4
//! too; `fragment_overlap`). Never allocates: frames come from the worker's UMEM.

use rampart_esp::DropReason;
use rampart_nic::{Desc, Umem};
use rampart_wire::{Ipv4Packet, Ipv6Packet, ethernet, ip_protocol, ipv6};

/// Datagrams in progress per worker.
pub const SLOTS: usize = 32;
/// Datagrams in progress per worker from one source address.
pub const SLOTS_PER_SOURCE: usize = 8;
/// Fragments one datagram may arrive in.
pub const MAX_FRAGMENTS: u16 = 64;
/// Milliseconds a datagram may take to complete.
pub const TIMEOUT_MS: u64 = 1000;
/// The longest IPv6 unfragmentable part taken (the header and extension headers in front of
/// the Fragment header).
const MAX_V6_HEADERS: usize = ipv6::HEADER_LEN + 64;
/// Room reserved in front of the payload for the Ethernet header and the largest IP headers.
const FRONT: usize = ethernet::HEADER_LEN + MAX_V6_HEADERS;
/// Largest fragmentable payload reassembled (a 2048-byte frame behind the 256-byte rx headroom).
pub const MAX_PAYLOAD: usize = 2048 - 256 - FRONT;
const UNITS: usize = MAX_PAYLOAD.div_ceil(8);
const WORDS: usize = UNITS.div_ceil(64);

const _: () = assert!(MAX_PAYLOAD >= 1500 && 60 <= MAX_V6_HEADERS);

/// Which datagram a fragment belongs to (RFC 791 section 3.2, RFC 8200 section 4.5).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    v6: bool,
    src: u128,
    dst: u128,
    ident: u32,
    /// IPv4: the protocol; IPv6: 0 (the identification is per source and destination).
    proto: u8,
}

#[derive(Clone, Copy)]
struct Slot {
    key: Key,
    /// Base of the frame holding the datagram.
    frame: u64,
    started_ms: u64,
    /// Received 8-byte units.
    got: [u64; WORDS],
    /// Fragmentable payload length, known once the last fragment arrived.
    total: Option<usize>,
    /// Length of the headers in front of the payload, known once the first fragment arrived.
    header: Option<usize>,
    fragments: u16,
}

/// What became of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Kept; the datagram is not complete yet.
    Held,
    /// The datagram is complete: this descriptor (a new frame) holds it, Ethernet header
    /// included.
    Complete(Desc),
    /// Dropped, and why; the datagram it belonged to, if any, is gone too.
    Dropped(DropReason),
}

/// One worker's reassembly table.
pub struct Reassembly {
    slots: [Option<Slot>; SLOTS],
    rx_offset: usize,
}

impl std::fmt::Debug for Reassembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembly").field("in_progress", &self.in_progress()).finish()
    }
}

fn mark(got: &mut [u64; WORDS], from: usize, to: usize) -> bool {
    for u in from..to {
        let (w, b) = (u / 64, u % 64);
        if got[w] & (1 << b) != 0 {
            return false;
        }
        got[w] |= 1 << b;
    }
    true
}

fn complete(got: &[u64; WORDS], units: usize) -> bool {
    (0..units).all(|u| got[u / 64] & (1 << (u % 64)) != 0)
}

/// One fragment, parsed: its datagram, where its data goes, and its first fragment's headers.
struct Piece<'a> {
    key: Key,
    /// Offset of the data in the fragmentable payload.
    offset: usize,
    data: &'a [u8],
    last: bool,
    /// The headers to put in front of the payload (the first fragment only).
    headers: Option<Headers<'a>>,
}

/// The headers of a first fragment.
struct Headers<'a> {
    /// IPv4: the header. IPv6: the unfragmentable part (header and extension headers up to the
    /// Fragment header).
    bytes: &'a [u8],
    /// IPv6: where the next-header byte that names the Fragment header lies in `bytes`, and
    /// what the Fragment header names (the reassembled packet has no Fragment header).
    v6_next_header: Option<(usize, u8)>,
}

fn addr_key(a: std::net::IpAddr) -> u128 {
    match a {
        std::net::IpAddr::V4(v) => u128::from(u32::from(v)),
        std::net::IpAddr::V6(v) => u128::from(v),
    }
}

fn parse_v4(ip_bytes: &[u8]) -> Option<Piece<'_>> {
    let ip = Ipv4Packet::new_checked(ip_bytes).ok()?;
    let key = Key {
        v6: false,
        src: addr_key(ip.src_addr().into()),
        dst: addr_key(ip.dst_addr().into()),
        ident: u32::from(ip.ident()),
        proto: ip.protocol(),
    };
    let offset = usize::from(ip.frag_offset());
    let headers = (offset == 0).then(|| Headers { bytes: &ip_bytes[..ip.header_len()], v6_next_header: None });
    let end = usize::from(ip.total_len()).min(ip_bytes.len());
    let data = ip_bytes.get(ip.header_len()..end)?;
    Some(Piece { key, offset, data, last: !ip.more_frags(), headers })
}

fn parse_v6(ip_bytes: &[u8]) -> Option<Piece<'_>> {
    let ip = Ipv6Packet::new_checked(ip_bytes).ok()?;
    let packet = &ip_bytes[..ip.total_len().min(ip_bytes.len())];
    // Walk to the Fragment header: Hop-by-Hop, Routing and Destination Options may precede it.
    let mut nh = ip.next_header();
    let mut nh_pos = 6;
    let mut pos = ipv6::HEADER_LEN;
    for _ in 0..ipv6::DEFAULT_EXTENSION_LIMIT {
        match nh {
            ip_protocol::IPV6_FRAG => {
                let frag = packet.get(pos..pos + 8)?;
                let off_m = u16::from_be_bytes([frag[2], frag[3]]);
                let key = Key {
                    v6: true,
                    src: addr_key(ip.src_addr().into()),
                    dst: addr_key(ip.dst_addr().into()),
                    ident: u32::from_be_bytes([frag[4], frag[5], frag[6], frag[7]]),
                    proto: 0,
                };
                let offset = usize::from(off_m & 0xfff8);
                let headers = (offset == 0 && pos <= MAX_V6_HEADERS)
                    .then(|| Headers { bytes: &packet[..pos], v6_next_header: Some((nh_pos, frag[0])) });
                if offset == 0 && headers.is_none() {
                    return None;
                }
                return Some(Piece { key, offset, data: &packet[pos + 8..], last: off_m & 1 == 0, headers });
            }
            ip_protocol::HOPOPT | ip_protocol::IPV6_ROUTE | ip_protocol::IPV6_OPTS => {
                let len = (usize::from(*packet.get(pos + 1)?) + 1) * 8;
                nh = *packet.get(pos)?;
                nh_pos = pos;
                pos += len;
            }
            _ => return None,
        }
    }
    None
}

impl Reassembly {
    /// An empty table for a UMEM whose received data starts `rx_offset` bytes into a frame.
    pub fn new(rx_offset: u32) -> Reassembly {
        Reassembly { slots: [None; SLOTS], rx_offset: rx_offset as usize }
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Drops datagrams older than [`TIMEOUT_MS`]; returns how many (each a `fragment_timeout`).
    pub fn expire(&mut self, umem: &mut Umem, now_ms: u64) -> usize {
        let mut n = 0;
        for s in &mut self.slots {
            if let Some(slot) = s
                && now_ms.saturating_sub(slot.started_ms) > TIMEOUT_MS
            {
                let _ = umem.free(slot.frame);
                *s = None;
                n += 1;
            }
        }
        n
    }

    /// Takes one IPv4 or IPv6 fragment: `frame` is the whole received frame, `eth_len` the
    /// length of its Ethernet header. The caller still owns (and frees) the fragment's frame.
    /// A datagram that had to make room for this one is counted in `evicted`.
    pub fn add(&mut self, umem: &mut Umem, frame: &[u8], eth_len: usize, now_ms: u64, evicted: &mut u64) -> Outcome {
        let Some(ip_bytes) = frame.get(eth_len..) else { return Outcome::Dropped(DropReason::FragmentMalformed) };
        let piece = match ip_bytes.first().map(|b| b >> 4) {
            Some(4) => parse_v4(ip_bytes),
            Some(6) => parse_v6(ip_bytes),
            _ => None,
        };
        let Some(p) = piece else { return Outcome::Dropped(DropReason::FragmentMalformed) };
        let key = p.key;
        let (start, end) = (p.offset, p.offset + p.data.len());
        //= https://www.rfc-editor.org/rfc/rfc791#section-3.2
        //# the fragment offset is measured in units of 8 octets
        if p.data.is_empty() || (!p.last && !p.data.len().is_multiple_of(8)) {
            return self.abandon(umem, key, DropReason::FragmentMalformed);
        }
        if end > MAX_PAYLOAD {
            return self.abandon(umem, key, DropReason::FragmentTooLarge);
        }
        let idx = match self.slots.iter().position(|s| s.is_some_and(|s| s.key == key)) {
            Some(i) => i,
            None => match self.new_slot(umem, key, now_ms, evicted) {
                Ok(i) => i,
                Err(r) => return Outcome::Dropped(r),
            },
        };
        let Some(mut slot) = self.slots[idx] else { return Outcome::Dropped(DropReason::FragmentMalformed) };
        slot.fragments += 1;
        if slot.fragments > MAX_FRAGMENTS {
            return self.abandon(umem, key, DropReason::FragmentTooMany);
        }
        if p.last {
            if slot.total.is_some_and(|t| t != end) {
                return self.abandon(umem, key, DropReason::FragmentOverlap);
            }
            slot.total = Some(end);
        }
        //= https://www.rfc-editor.org/rfc/rfc5722#section-4
        //# If any of the fragments being reassembled overlap with any other fragments being
        //# reassembled for the same packet, reassembly of that packet must be abandoned
        if slot.total.is_some_and(|t| end > t) || !mark(&mut slot.got, start / 8, end.div_ceil(8)) {
            return self.abandon(umem, key, DropReason::FragmentOverlap);
        }
        let rx = self.rx_offset;
        let Ok(chunk) = umem.chunk_mut(slot.frame) else {
            return self.abandon(umem, key, DropReason::FragmentMalformed);
        };
        let at = rx + FRONT + start;
        let Some(dst) = chunk.get_mut(at..at + p.data.len()) else {
            return self.abandon(umem, key, DropReason::FragmentTooLarge);
        };
        dst.copy_from_slice(p.data);
        if let Some(h) = &p.headers {
            // Ethernet and IP headers of the first fragment, right in front of the payload.
            let hl = h.bytes.len();
            let hdr_at = rx + FRONT - hl;
            let Some(eth) = frame.get(..ethernet::HEADER_LEN) else {
                return self.abandon(umem, key, DropReason::FragmentMalformed);
            };
            chunk[hdr_at..hdr_at + hl].copy_from_slice(h.bytes);
            if let Some((pos, nh)) = h.v6_next_header {
                chunk[hdr_at + pos] = nh;
            }
            chunk[hdr_at - ethernet::HEADER_LEN..hdr_at].copy_from_slice(eth);
            // The frame's own EtherType must name the IP version even if the fragment came
            // VLAN-tagged.
            let ethertype = if key.v6 { ethernet::ETHERTYPE_IPV6 } else { ethernet::ETHERTYPE_IPV4 };
            chunk[hdr_at - 2..hdr_at].copy_from_slice(&ethertype.to_be_bytes());
            slot.header = Some(hl);
        }
        self.slots[idx] = Some(slot);
        match (slot.total, slot.header) {
            (Some(total), Some(hl)) if complete(&slot.got, total.div_ceil(8)) => {
                self.slots[idx] = None;
                self.finish(umem, slot.frame, key.v6, hl, total)
            }
            _ => Outcome::Held,
        }
    }

    /// A free slot for a new datagram from `key.src`: refused when that source holds its
    /// share; when the table is full the oldest datagram makes room (counted in `evicted`).
    fn new_slot(&mut self, umem: &mut Umem, key: Key, now_ms: u64, evicted: &mut u64) -> Result<usize, DropReason> {
        let same_source = self.slots.iter().flatten().filter(|s| s.key.src == key.src && s.key.v6 == key.v6).count();
        if same_source >= SLOTS_PER_SOURCE {
            return Err(DropReason::FragmentTableFull);
        }
        let i = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let oldest = (0..SLOTS).min_by_key(|&i| self.slots[i].map_or(u64::MAX, |s| s.started_ms)).unwrap_or(0);
                if let Some(old) = self.slots[oldest].take() {
                    let _ = umem.free(old.frame);
                    *evicted += 1;
                }
                oldest
            }
        };
        let base = umem.alloc().ok_or(DropReason::FragmentTableFull)?;
        self.slots[i] = Some(Slot {
            key,
            frame: base,
            started_ms: now_ms,
            got: [0; WORDS],
            total: None,
            header: None,
            fragments: 0,
        });
        Ok(i)
    }

    /// The complete datagram: lengths (and the IPv4 checksum) fixed, as one frame.
    fn finish(&self, umem: &mut Umem, frame: u64, v6: bool, hl: usize, total: usize) -> Outcome {
        let hdr_at = self.rx_offset + FRONT - hl;
        let len = hl + total;
        let Ok(chunk) = umem.chunk_mut(frame) else { return Outcome::Dropped(DropReason::FragmentMalformed) };
        let Some(ip) = chunk.get_mut(hdr_at..hdr_at + len) else {
            return Outcome::Dropped(DropReason::FragmentTooLarge);
        };
        if v6 {
            let mut p = Ipv6Packet::new_unchecked(ip);
            p.set_payload_len((len - ipv6::HEADER_LEN) as u16);
        } else {
            let mut p = Ipv4Packet::new_unchecked(ip);
            p.set_total_len(len as u16);
            p.set_frag(p.dont_frag(), false, 0);
            p.fill_checksum();
        }
        let start = frame + (hdr_at - ethernet::HEADER_LEN) as u64;
        Outcome::Complete(Desc::new(start, (ethernet::HEADER_LEN + len) as u32))
    }

    fn abandon(&mut self, umem: &mut Umem, key: Key, reason: DropReason) -> Outcome {
        for s in &mut self.slots {
            if s.is_some_and(|s| s.key == key)
                && let Some(slot) = s.take()
            {
                let _ = umem.free(slot.frame);
            }
        }
        Outcome::Dropped(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_nic::UmemConfig;

    /// An Ethernet frame with an IPv4 fragment of `payload[off..off+len]`.
    fn fragment(payload: &[u8], off: usize, len: usize, more: bool, ident: u16) -> Vec<u8> {
        fragment_from(payload, off, len, more, ident, "192.0.2.1")
    }

    fn fragment_from(payload: &[u8], off: usize, len: usize, more: bool, ident: u16, src: &str) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let repr = rampart_wire::Ipv4Repr {
            src_addr: src.parse().unwrap(),
            dst_addr: "192.0.2.2".parse().unwrap(),
            protocol: 50,
            payload_len: len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident,
            dont_frag: false,
            more_frags: more,
            frag_offset: off as u16,
        };
        let mut ip = vec![0u8; 20];
        repr.emit(&mut ip).unwrap();
        f.extend_from_slice(&ip);
        f.extend_from_slice(&payload[off..off + len]);
        f
    }

    /// An Ethernet frame with an IPv6 fragment (a Destination Options header in front of the
    /// Fragment header) of `payload[off..off+len]`, next header `nh`.
    fn fragment6(payload: &[u8], off: usize, len: usize, more: bool, ident: u32, nh: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&((8 + 8 + len) as u16).to_be_bytes());
        ip[6] = ip_protocol::IPV6_OPTS;
        ip[7] = 64;
        ip[8..24].copy_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        ip[24..40].copy_from_slice(&"2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[ip_protocol::IPV6_FRAG, 0, 1, 4, 0, 0, 0, 0]); // PadN
        let off_m = (off as u16) | u16::from(more);
        f.extend_from_slice(&[nh, 0]);
        f.extend_from_slice(&off_m.to_be_bytes());
        f.extend_from_slice(&ident.to_be_bytes());
        f.extend_from_slice(&payload[off..off + len]);
        f
    }

    fn umem() -> Umem {
        Umem::new(UmemConfig { frame_size: 2048, frame_count: 128, headroom: 0 }).unwrap()
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn add(r: &mut Reassembly, u: &mut Umem, f: &[u8]) -> Outcome {
        let mut evicted = 0;
        r.add(u, f, 14, 0, &mut evicted)
    }

    #[test]
    fn reassembles_ipv4_in_any_order() {
        let mut u = umem();
        let free0 = u.free_frames();
        let mut r = Reassembly::new(u.rx_offset());
        let p = payload(1400);
        let frags = [fragment(&p, 1000, 400, false, 9), fragment(&p, 0, 504, true, 9), fragment(&p, 504, 496, true, 9)];
        assert_eq!(add(&mut r, &mut u, &frags[0]), Outcome::Held);
        assert_eq!(add(&mut r, &mut u, &frags[1]), Outcome::Held);
        let Outcome::Complete(d) = add(&mut r, &mut u, &frags[2]) else { panic!("not complete") };
        let f = u.frame(&d).unwrap();
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(usize::from(ip.total_len()), 1420);
        assert!(!ip.is_fragment());
        assert!(ip.verify_checksum());
        assert_eq!(ip.payload(), &p[..]);
        assert_eq!(r.in_progress(), 0);
        u.free(d.addr).unwrap();
        assert_eq!(u.free_frames(), free0, "frames leaked");
    }

    #[test]
    fn reassembles_ipv6_in_eight_pieces_out_of_order() {
        let mut u = umem();
        let free0 = u.free_frames();
        let mut r = Reassembly::new(u.rx_offset());
        let p = payload(1400);
        let mut frags: Vec<Vec<u8>> =
            (0..8).map(|i| fragment6(&p, i * 176, if i == 7 { 1400 - 7 * 176 } else { 176 }, i != 7, 77, 50)).collect();
        frags.swap(0, 5);
        frags.swap(2, 7);
        let mut out = None;
        for (i, f) in frags.iter().enumerate() {
            match add(&mut r, &mut u, f) {
                Outcome::Held => assert!(i < 7),
                Outcome::Complete(d) => out = Some(d),
                Outcome::Dropped(why) => panic!("dropped: {why:?}"),
            }
        }
        let d = out.expect("complete");
        let f = u.frame(&d).unwrap();
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
        // The Destination Options header stays; it now names ESP; no Fragment header is left.
        assert_eq!(ip.next_header(), ip_protocol::IPV6_OPTS);
        assert_eq!(f[14 + 40], 50);
        assert_eq!(ip.total_len(), 40 + 8 + 1400);
        assert_eq!(&f[14 + 48..], &p[..]);
        u.free(d.addr).unwrap();
        assert_eq!(u.free_frames(), free0, "frames leaked");
    }

    #[test]
    fn overlaps_limits_and_timeouts_drop_under_their_reasons() {
        let mut u = umem();
        let free0 = u.free_frames();
        let mut r = Reassembly::new(u.rx_offset());
        let p = payload(1800);
        assert_eq!(add(&mut r, &mut u, &fragment(&p, 0, 512, true, 1)), Outcome::Held);
        assert_eq!(
            add(&mut r, &mut u, &fragment(&p, 504, 512, true, 1)),
            Outcome::Dropped(DropReason::FragmentOverlap)
        );
        assert_eq!(r.in_progress(), 0);
        assert_eq!(
            add(&mut r, &mut u, &fragment(&p, 1600, 200, false, 2)),
            Outcome::Dropped(DropReason::FragmentTooLarge)
        );
        assert_eq!(add(&mut r, &mut u, &fragment(&p, 8, 12, true, 3)), Outcome::Dropped(DropReason::FragmentMalformed));
        // Too many fragments for one datagram.
        for i in 0..MAX_FRAGMENTS as usize {
            assert_eq!(add(&mut r, &mut u, &fragment(&p, i * 8, 8, true, 4)), Outcome::Held);
        }
        assert_eq!(add(&mut r, &mut u, &fragment(&p, 800, 8, true, 4)), Outcome::Dropped(DropReason::FragmentTooMany));
        // One source holds at most its share.
        for id in 0..SLOTS_PER_SOURCE as u16 {
            assert_eq!(add(&mut r, &mut u, &fragment(&p, 0, 8, true, 100 + id)), Outcome::Held);
        }
        assert_eq!(
            add(&mut r, &mut u, &fragment(&p, 0, 8, true, 999)),
            Outcome::Dropped(DropReason::FragmentTableFull)
        );
        assert_eq!(r.expire(&mut u, TIMEOUT_MS + 1), SLOTS_PER_SOURCE);
        assert_eq!(u.free_frames(), free0, "frames leaked");
        // Malformed input never panics.
        for cut in 0..80 {
            let f = fragment(&p, 8, 16, true, 5);
            let _ = add(&mut r, &mut u, &f[..cut.min(f.len())]);
            let f = fragment6(&p, 8, 16, true, 5, 17);
            let _ = add(&mut r, &mut u, &f[..cut.min(f.len())]);
        }
    }

    #[test]
    fn a_flood_of_incomplete_datagrams_from_many_sources_leaves_room_for_new_ones() {
        let mut u = umem();
        let free0 = u.free_frames();
        let mut r = Reassembly::new(u.rx_offset());
        let p = payload(1400);
        let mut evicted = 0;
        for i in 0..200u16 {
            let src = format!("198.51.100.{}", i % 100);
            assert_eq!(
                r.add(&mut u, &fragment_from(&p, 0, 8, true, i, &src), 14, i.into(), &mut evicted),
                Outcome::Held
            );
        }
        assert!(r.in_progress() <= SLOTS);
        assert_eq!(evicted, 200 - SLOTS as u64);
        // A genuine datagram still goes through, both halves.
        assert_eq!(r.add(&mut u, &fragment(&p, 0, 704, true, 7), 14, 300, &mut evicted), Outcome::Held);
        let Outcome::Complete(d) = r.add(&mut u, &fragment(&p, 704, 696, false, 7), 14, 300, &mut evicted) else {
            panic!("the genuine datagram did not complete")
        };
        u.free(d.addr).unwrap();
        r.expire(&mut u, 10_000);
        assert_eq!(u.free_frames(), free0, "frames leaked");
    }
}
