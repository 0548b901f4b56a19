//! Outer fragment reassembly, the one part of the data path that keeps state across packets
//! from anyone on the WAN. Bit 0 of the first byte chooses:
//! - clear: the rest is a series of frames (`len(2) elapsed_ms(1) frame(len)`), each handed to
//!   the table at a clock that advances by its `elapsed_ms`; whatever completes must be a whole,
//!   unfragmented IPv4 or IPv6 packet with a valid header, and at the end, once every held
//!   datagram has timed out, every UMEM frame is free again (nothing leaked, nothing freed
//!   twice);
//! - set: the rest is a datagram's payload (up to what the table takes) followed by how to cut
//!   it: pieces of 8-byte multiples sent in an order the input picks, IPv4 or IPv6. The datagram
//!   must complete exactly when its last piece arrives, with the payload it was cut from.
//!
//! Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_dataplane::reasm::{MAX_PAYLOAD, Outcome, Reassembly};
use rampart_nic::{Desc, Umem, UmemConfig};
use rampart_wire::{Ipv4Packet, Ipv6Packet};

const ETH_V4: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
const ETH_V6: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];

fn umem() -> Umem {
    Umem::new(UmemConfig { frame_size: 2048, frame_count: 64, headroom: 0 }).unwrap()
}

/// A completed datagram: a whole IP packet, its header consistent with its length.
fn check_complete(u: &Umem, d: &Desc) -> Vec<u8> {
    let f = u.frame(d).expect("a completed datagram's descriptor is valid");
    let ip = &f[14..];
    match ip[0] >> 4 {
        4 => {
            let p = Ipv4Packet::new_checked(ip).expect("a valid IPv4 header");
            assert!(!p.is_fragment(), "still a fragment");
            assert!(p.verify_checksum(), "bad header checksum");
            assert_eq!(usize::from(p.total_len()), ip.len(), "total length disagrees with the frame");
            p.payload().to_vec()
        }
        6 => {
            let p = Ipv6Packet::new_checked(ip).expect("a valid IPv6 header");
            assert_eq!(usize::from(p.payload_len()) + 40, ip.len(), "payload length disagrees with the frame");
            ip[40..].to_vec()
        }
        v => panic!("version {v} came out"),
    }
}

fn arbitrary_frames(input: &[u8]) {
    let mut u = umem();
    let free0 = u.free_frames();
    let mut r = Reassembly::new(u.rx_offset());
    let (mut now, mut evicted, mut rest) = (0u64, 0u64, input);
    while let [hi, lo, elapsed, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        now += u64::from(*elapsed);
        r.expire(&mut u, now);
        if let Outcome::Complete(d) = r.add(&mut u, frame, 14, now, &mut evicted) {
            check_complete(&u, &d);
            u.free(d.addr).expect("a completed datagram's frame is the caller's to free");
        }
    }
    r.expire(&mut u, now + 10_000);
    assert_eq!(r.in_progress(), 0);
    assert_eq!(u.free_frames(), free0, "frames leaked");
}

/// The IPv4 fragment of `payload[off..off + len]` (documentation addresses).
fn fragment_v4(payload: &[u8], off: usize, len: usize, more: bool) -> Vec<u8> {
    let mut f = ETH_V4.to_vec();
    let mut ip = [0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
    ip[2..4].copy_from_slice(&((20 + len) as u16).to_be_bytes());
    let flags_off = (off / 8) as u16 | if more { 0x2000 } else { 0 };
    ip[6..8].copy_from_slice(&flags_off.to_be_bytes());
    let c = rampart_wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&payload[off..off + len]);
    f
}

/// The same in IPv6, with a Fragment header.
fn fragment_v6(payload: &[u8], off: usize, len: usize, more: bool) -> Vec<u8> {
    let mut f = ETH_V6.to_vec();
    let mut ip = [0u8; 40];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&((8 + len) as u16).to_be_bytes());
    ip[6] = 44;
    ip[7] = 64;
    ip[8..10].copy_from_slice(&[0x20, 0x01]);
    ip[10..12].copy_from_slice(&[0x0d, 0xb8]);
    ip[23] = 1;
    ip[24..26].copy_from_slice(&[0x20, 0x01]);
    ip[26..28].copy_from_slice(&[0x0d, 0xb8]);
    ip[39] = 2;
    f.extend_from_slice(&ip);
    let off_m = (off as u16) | u16::from(more);
    f.extend_from_slice(&[17, 0]);
    f.extend_from_slice(&off_m.to_be_bytes());
    f.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    f.extend_from_slice(&payload[off..off + len]);
    f
}

fn cut_and_reassemble(v6: bool, input: &[u8]) {
    let [n_hi, n_lo, cuts @ ..] = input else { return };
    let n = usize::from(u16::from_be_bytes([*n_hi, *n_lo])) % (MAX_PAYLOAD + 1);
    if n == 0 || cuts.len() < n {
        return;
    }
    let (payload, plan) = cuts.split_at(n);
    // Pieces: each plan byte gives a length in 8-byte units; the last piece takes the rest.
    let mut pieces = Vec::new();
    let (mut off, mut plan_bytes) = (0usize, plan.iter());
    while off < n {
        let units = plan_bytes.next().map_or(usize::MAX, |&b| usize::from(b).max(1));
        let len = units.saturating_mul(8).min(n - off);
        pieces.push((off, len, off + len < n));
        off += len;
    }
    // One piece is not a fragment; more than the table takes per datagram is refused by rule.
    if pieces.len() < 2 || pieces.len() > 64 {
        return;
    }
    // Order: the remaining plan bytes swap pieces.
    let rest: Vec<u8> = plan_bytes.copied().collect();
    for pair in rest.chunks_exact(2) {
        let (a, b) = (usize::from(pair[0]) % pieces.len(), usize::from(pair[1]) % pieces.len());
        pieces.swap(a, b);
    }
    let mut u = umem();
    let free0 = u.free_frames();
    let mut r = Reassembly::new(u.rx_offset());
    let mut evicted = 0;
    for (i, &(off, len, more)) in pieces.iter().enumerate() {
        let frame = if v6 { fragment_v6(payload, off, len, more) } else { fragment_v4(payload, off, len, more) };
        match r.add(&mut u, &frame, 14, 0, &mut evicted) {
            Outcome::Held => assert!(i + 1 < pieces.len(), "the last piece did not complete it"),
            Outcome::Complete(d) => {
                assert_eq!(i + 1, pieces.len(), "complete before its last piece");
                assert_eq!(check_complete(&u, &d), payload, "reassembled a different payload");
                u.free(d.addr).unwrap();
            }
            Outcome::Dropped(why) => panic!("piece {i} of {} dropped: {why:?}", pieces.len()),
        }
    }
    assert_eq!(r.in_progress(), 0);
    assert_eq!(u.free_frames(), free0, "frames leaked");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        arbitrary_frames(rest);
    } else {
        cut_and_reassemble(mode & 2 != 0, rest);
    }
});
