//! Reassembly of outer IPv4 fragments before ESP processing (DESIGN.md, "The data path"): a
//! small per-worker table, bounded in entries, size and time.
//!
//! Each entry owns one UMEM frame into which the fragments' payloads are copied at their
//! offsets (the IP header of the first fragment goes in front once it is known), and a bitmap
//! of the 8-byte units received. When the last unit is in, the entry's frame comes out as one
//! whole Ethernet + IPv4 packet, which the worker handles like any received frame.
//!
//! Limits, each counted under the `fragment` drop reason: [`SLOTS`] datagrams in progress per
//! worker (a new datagram when all are busy is dropped), reassembled packets up to what fits
//! one frame behind the headroom ([`MAX_PAYLOAD`] bytes of IP payload, enough for ESP from a
//! 1500-byte path), [`TIMEOUT_MS`] to complete, and no overlapping fragments (an overlap drops
//! the whole datagram: RFC 5722's rule for IPv6, applied to IPv4 too). IPv6 fragments are not
//! reassembled. Never allocates: frames come from the worker's UMEM.

use rampart_nic::{Desc, Umem};
use rampart_wire::{Ipv4Packet, ethernet, ipv4};

/// Datagrams in progress per worker.
pub const SLOTS: usize = 16;
/// Milliseconds a datagram may take to complete.
pub const TIMEOUT_MS: u64 = 1000;
/// Room reserved in front of the payload for the Ethernet and the largest IPv4 header.
const FRONT: usize = ethernet::HEADER_LEN + 60;
/// Largest IP payload reassembled (a 2048-byte frame behind the 256-byte rx headroom).
pub const MAX_PAYLOAD: usize = 2048 - 256 - FRONT;
const UNITS: usize = MAX_PAYLOAD.div_ceil(8);
const WORDS: usize = UNITS.div_ceil(64);

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    src: u32,
    dst: u32,
    ident: u16,
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
    /// Payload length, known once the last fragment arrived.
    total: Option<usize>,
    /// IP header length, known once the first fragment arrived.
    header: Option<usize>,
}

/// What became of a fragment.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Kept; the datagram is not complete yet.
    Held,
    /// The datagram is complete: this descriptor (a new frame) holds it, Ethernet header
    /// included.
    Complete(Desc),
    /// Dropped (limit, overlap, malformed); the datagram it belonged to, if any, is gone too.
    Dropped,
}

/// One worker's reassembly table.
pub struct Reassembly {
    slots: [Option<Slot>; SLOTS],
    rx_offset: usize,
}

impl std::fmt::Debug for Reassembly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reassembly").field("in_progress", &self.slots.iter().flatten().count()).finish()
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

impl Reassembly {
    /// An empty table for a UMEM whose received data starts `rx_offset` bytes into a frame.
    pub fn new(rx_offset: u32) -> Reassembly {
        Reassembly { slots: [None; SLOTS], rx_offset: rx_offset as usize }
    }

    /// Datagrams in progress.
    pub fn in_progress(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Drops datagrams older than [`TIMEOUT_MS`]; returns how many.
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

    /// Takes one IPv4 fragment: `frame` is the whole received frame, `eth_len` the length of
    /// its Ethernet header. The caller still owns (and frees) the fragment's frame.
    pub fn add(&mut self, umem: &mut Umem, frame: &[u8], eth_len: usize, now_ms: u64) -> Outcome {
        let Some(ip_bytes) = frame.get(eth_len..) else { return Outcome::Dropped };
        let Ok(ip) = Ipv4Packet::new_checked(ip_bytes) else { return Outcome::Dropped };
        let key = Key { src: ip.src_addr().into(), dst: ip.dst_addr().into(), ident: ip.ident(), proto: ip.protocol() };
        let off = usize::from(ip.frag_offset());
        let hl = ip.header_len();
        let payload = ip.payload();
        let (start, end) = (off, off + payload.len());
        let last = !ip.more_frags();
        //= https://www.rfc-editor.org/rfc/rfc791#section-3.2
        //# the fragment offset is measured in units of 8 octets
        if end > MAX_PAYLOAD || (!last && !payload.len().is_multiple_of(8)) || payload.is_empty() {
            return self.abandon(umem, key);
        }
        let idx = match self.slots.iter().position(|s| s.is_some_and(|s| s.key == key)) {
            Some(i) => i,
            None => {
                let Some(i) = self.slots.iter().position(Option::is_none) else { return Outcome::Dropped };
                let Some(base) = umem.alloc() else { return Outcome::Dropped };
                self.slots[i] =
                    Some(Slot { key, frame: base, started_ms: now_ms, got: [0; WORDS], total: None, header: None });
                i
            }
        };
        let Some(mut slot) = self.slots[idx] else { return Outcome::Dropped };
        if last {
            if slot.total.is_some_and(|t| t != end) {
                return self.abandon(umem, key);
            }
            slot.total = Some(end);
        }
        if slot.total.is_some_and(|t| end > t) || !mark(&mut slot.got, start / 8, end.div_ceil(8)) {
            return self.abandon(umem, key);
        }
        let rx = self.rx_offset;
        let Ok(chunk) = umem.chunk_mut(slot.frame) else { return self.abandon(umem, key) };
        let at = rx + FRONT + start;
        let Some(dst) = chunk.get_mut(at..at + payload.len()) else { return self.abandon(umem, key) };
        dst.copy_from_slice(payload);
        if off == 0 {
            // Ethernet and IP header of the first fragment, right in front of the payload.
            let hdr_at = rx + FRONT - hl;
            let (Some(eth), Some(hdr)) = (frame.get(..ethernet::HEADER_LEN), ip_bytes.get(..hl)) else {
                return self.abandon(umem, key);
            };
            chunk[hdr_at..hdr_at + hl].copy_from_slice(hdr);
            chunk[hdr_at - ethernet::HEADER_LEN..hdr_at].copy_from_slice(eth);
            // The frame's own EtherType must say IPv4 even if the fragment came VLAN-tagged.
            chunk[hdr_at - 2..hdr_at].copy_from_slice(&ethernet::ETHERTYPE_IPV4.to_be_bytes());
            slot.header = Some(hl);
        }
        self.slots[idx] = Some(slot);
        match (slot.total, slot.header) {
            (Some(total), Some(hl)) if complete(&slot.got, total.div_ceil(8)) => {
                self.slots[idx] = None;
                let hdr_at = rx + FRONT - hl;
                let len = hl + total;
                let Ok(chunk) = umem.chunk_mut(slot.frame) else { return Outcome::Dropped };
                let Some(ip) = chunk.get_mut(hdr_at..hdr_at + len) else { return Outcome::Dropped };
                let mut p = Ipv4Packet::new_unchecked(ip);
                p.set_total_len(len as u16);
                p.set_frag(p.dont_frag(), false, 0);
                p.fill_checksum();
                let start = slot.frame + (hdr_at - ethernet::HEADER_LEN) as u64;
                Outcome::Complete(Desc::new(start, (ethernet::HEADER_LEN + len) as u32))
            }
            _ => Outcome::Held,
        }
    }

    fn abandon(&mut self, umem: &mut Umem, key: Key) -> Outcome {
        for s in &mut self.slots {
            if s.is_some_and(|s| s.key == key)
                && let Some(slot) = s.take()
            {
                let _ = umem.free(slot.frame);
            }
        }
        Outcome::Dropped
    }
}

/// Whether an IPv4 packet is a fragment (and not an atomic one).
pub fn is_ipv4_fragment(ip: &[u8]) -> bool {
    Ipv4Packet::new_checked(ip).is_ok_and(|p| p.version() == 4 && p.is_fragment())
}

const _: () = assert!(MAX_PAYLOAD >= 1500 && ipv4::HEADER_LEN <= 60);

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_nic::UmemConfig;

    /// An Ethernet frame with an IPv4 fragment of `payload[off..off+len]`.
    fn fragment(payload: &[u8], off: usize, len: usize, more: bool, ident: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        let repr = rampart_wire::Ipv4Repr {
            src_addr: "192.0.2.1".parse().unwrap(),
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

    fn umem() -> Umem {
        Umem::new(UmemConfig { frame_size: 2048, frame_count: 64, headroom: 0 }).unwrap()
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn reassembles_in_any_order() {
        let mut u = umem();
        let free0 = u.free_frames();
        let mut r = Reassembly::new(u.rx_offset());
        let p = payload(1400);
        let frags = [fragment(&p, 1000, 400, false, 9), fragment(&p, 0, 504, true, 9), fragment(&p, 504, 496, true, 9)];
        assert_eq!(r.add(&mut u, &frags[0], 14, 0), Outcome::Held);
        assert_eq!(r.add(&mut u, &frags[1], 14, 0), Outcome::Held);
        let Outcome::Complete(d) = r.add(&mut u, &frags[2], 14, 0) else { panic!("not complete") };
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
    fn overlaps_limits_and_timeouts_drop() {
        let mut u = umem();
        let free0 = u.free_frames();
        let mut r = Reassembly::new(u.rx_offset());
        let p = payload(1800);
        // Overlap: the second fragment covers bytes of the first.
        assert_eq!(r.add(&mut u, &fragment(&p, 0, 512, true, 1), 14, 0), Outcome::Held);
        assert_eq!(r.add(&mut u, &fragment(&p, 504, 512, true, 1), 14, 0), Outcome::Dropped);
        assert_eq!(r.in_progress(), 0);
        // Too big for a frame.
        assert_eq!(r.add(&mut u, &fragment(&p, 1600, 200, false, 2), 14, 0), Outcome::Dropped);
        // A table full of incomplete datagrams refuses a new one; they expire.
        for id in 0..SLOTS as u16 {
            assert_eq!(r.add(&mut u, &fragment(&p, 0, 8, true, 100 + id), 14, 0), Outcome::Held);
        }
        assert_eq!(r.add(&mut u, &fragment(&p, 0, 8, true, 999), 14, 0), Outcome::Dropped);
        assert_eq!(r.expire(&mut u, TIMEOUT_MS + 1), SLOTS);
        assert_eq!(u.free_frames(), free0, "frames leaked");
        // Malformed input never panics.
        for cut in 0..40 {
            let f = fragment(&p, 8, 16, true, 5);
            let _ = r.add(&mut u, &f[..cut.min(f.len())], 14, 0);
        }
    }
}
