//! Bad input on the inbound path: truncated packets at every length, a flipped bit anywhere,
//! bad pad length, bad padding, unknown SPI, wrong next header, dummy packets, inner packets
//! outside the traffic selectors. Each gives its drop reason and changes no SA state: the
//! replay window and counters stay, and the next genuine packet is accepted.

mod common;

use std::net::IpAddr;

use common::*;
use rampart_crypto::{SaCrypto, SealOp, Suite};
use rampart_esp::{Direction, DropReason, InboundSa, Mode, OutboundSa, PacketBuf};

fn tunnel_case(suite: Suite, natt: bool, v6: bool) -> Case {
    Case { suite, mode: Mode::Tunnel, esn: false, natt, outer_v6: v6, inner_v6: v6 }
}

/// Encapsulates `inner` with a fresh outbound SA at sequence number `seq`.
fn encapsulate(case: &Case, seq: u64, inner: &[u8]) -> Vec<u8> {
    let mut tx = OutboundSa::new(&case.config(Direction::Outbound), backends(case.suite)[0]).unwrap();
    tx.resume_at(seq);
    let mut frame = frame_with(inner);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
    tx.encapsulate(&mut pkt).unwrap();
    pkt.data().to_vec()
}

fn decapsulate(rx: &mut InboundSa, wire: &[u8]) -> Result<Vec<u8>, DropReason> {
    let mut frame = frame_with(wire);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
    rx.decapsulate(&mut pkt, 4500).map(|_| pkt.data().to_vec())
}

/// The state that bad input must not change.
fn state(rx: &InboundSa) -> (u64, u64, u64) {
    (rx.replay_window().top(), rx.counters().packets, rx.counters().bytes)
}

/// A receiver that has accepted sequence numbers 1..=10.
fn primed_receiver(case: &Case) -> InboundSa {
    let mut rx = InboundSa::new(&case.config(Direction::Inbound), backends(case.suite)[0]).unwrap();
    for seq in 1..=10 {
        let inner = inner_packet(case, 20, seq as u8);
        decapsulate(&mut rx, &encapsulate(case, seq, &inner)).unwrap();
    }
    rx
}

/// After bad input: state unchanged and a genuine packet (seq 11) still goes through.
fn assert_untouched(case: &Case, rx: &mut InboundSa, before: (u64, u64, u64), what: &str) {
    assert_eq!(state(rx), before, "{}: {what} changed SA state", case.name());
}

#[test]
fn truncated_at_every_length() {
    for suite in Suite::all() {
        for (natt, v6) in [(false, false), (true, false), (false, true), (true, true)] {
            let case = tunnel_case(suite, natt, v6);
            let mut rx = primed_receiver(&case);
            let before = state(&rx);
            let wire = encapsulate(&case, 11, &inner_packet(&case, 40, 1));
            for len in 0..wire.len() {
                let got = decapsulate(&mut rx, &wire[..len]);
                assert!(got.is_err(), "{}: {len} of {} bytes accepted", case.name(), wire.len());
                assert_untouched(&case, &mut rx, before, "a truncated packet");
            }
            // Truncated inside a valid outer header (lengths fixed up) is a length or ICV failure.
            decapsulate(&mut rx, &wire).unwrap();
        }
    }
}

#[test]
fn every_flipped_bit_is_caught_or_harmless() {
    for suite in Suite::all() {
        for (natt, v6) in [(false, false), (true, false), (false, true), (true, true)] {
            let case = tunnel_case(suite, natt, v6);
            let mut rx = primed_receiver(&case);
            let inner = inner_packet(&case, 24, 9);
            let wire = encapsulate(&case, 11, &inner);
            let esp_start = if v6 { 40 } else { 20 } + if natt { 8 } else { 0 };
            for bit in 0..wire.len() * 8 {
                let before = state(&rx);
                let mut bad = wire.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                match decapsulate(&mut rx, &bad) {
                    Err(reason) => {
                        assert_untouched(&case, &mut rx, before, "a corrupted packet");
                        if bit / 8 >= esp_start + 8 {
                            assert_eq!(reason, DropReason::AuthFailed, "{}: bit {bit}", case.name());
                        }
                    }
                    Ok(got) => {
                        // Only fields that ESP does not cover and Rampart need not check may
                        // change: the IPv6 traffic class and flow label, the UDP source port and
                        // checksum. The packet is then genuine: it must come out intact.
                        assert!(bit / 8 < esp_start, "{}: corrupted ESP bit {bit} accepted", case.name());
                        assert_eq!(got, inner, "{}: bit {bit}", case.name());
                        // Genuine, so it moved the window: start again from a fresh receiver.
                        rx = primed_receiver(&case);
                    }
                }
            }
        }
    }
}

/// Builds an ESP packet (IPv4 outer, tunnel SA of `case`) around an arbitrary plaintext, sealed
/// with the SA's keys: a peer that follows the crypto but breaks the framing.
fn seal_raw(case: &Case, seq: u64, plaintext: &[u8]) -> Vec<u8> {
    let cfg = case.config(Direction::Outbound);
    let suite = cfg.suite;
    let crypto = SaCrypto::new(suite, &cfg.encryption_key, &cfg.integrity_key, backends(suite)[0]).unwrap();
    let esp_len = 8 + suite.iv_len() + plaintext.len() + suite.icv_len();
    let mut esp = vec![0u8; esp_len];
    esp[0..4].copy_from_slice(&cfg.spi.to_be_bytes());
    esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
    esp[8 + suite.iv_len()..8 + suite.iv_len() + plaintext.len()].copy_from_slice(plaintext);
    rampart_crypto::seal_burst(&mut [SealOp { sa: &crypto, esp: &mut esp, seq, esn: false }]).unwrap();
    let (IpAddr::V4(src), IpAddr::V4(dst)) = case.outer() else { unreachable!() };
    let ip = rampart_wire::Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: 50,
        payload_len: esp.len(),
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    let mut out = vec![0u8; 20];
    ip.emit(&mut out).unwrap();
    out.extend_from_slice(&esp);
    out
}

/// Plaintext = payload || padding || pad length || next header, aligned for the suite unless
/// the caller breaks it.
fn framed(payload: &[u8], pad: &[u8], pad_len: u8, next_header: u8) -> Vec<u8> {
    let mut p = payload.to_vec();
    p.extend_from_slice(pad);
    p.push(pad_len);
    p.push(next_header);
    p
}

fn std_pad(payload_len: usize, block: usize) -> Vec<u8> {
    let n = (block - (payload_len + 2) % block) % block;
    (1..=n as u8).collect()
}

#[test]
fn framing_errors_have_their_reasons() {
    for suite in Suite::all() {
        let case = tunnel_case(suite, false, false);
        let block = suite.block_len();
        let inner = inner_packet(&case, 30, 5);
        let pad = std_pad(inner.len(), block);
        let mut rx = primed_receiver(&case);
        let before = state(&rx);

        // Sanity: the hand-framed packet is accepted when nothing is wrong (seq 11 is then used).
        let good = seal_raw(&case, 11, &framed(&inner, &pad, pad.len() as u8, 4));
        let mut control = primed_receiver(&case);
        assert_eq!(decapsulate(&mut control, &good).unwrap(), inner, "{}", case.name());

        let check = |rx: &mut InboundSa, wire: Vec<u8>, expected: DropReason, what: &str| {
            assert_eq!(decapsulate(rx, &wire), Err(expected), "{}: {what}", case.name());
            assert_untouched(&case, rx, before, what);
        };
        // Pad length larger than everything decrypted.
        let mut p = framed(&inner, &pad, pad.len() as u8, 4);
        let n = p.len();
        p[n - 2] = 255;
        check(&mut rx, seal_raw(&case, 11, &p), DropReason::BadPadLength, "pad length 255");
        // Padding bytes not 1, 2, 3, ...
        if !pad.is_empty() {
            let mut wrong = pad.clone();
            wrong[0] ^= 0x80;
            check(
                &mut rx,
                seal_raw(&case, 11, &framed(&inner, &wrong, pad.len() as u8, 4)),
                DropReason::BadPadding,
                "padding bytes",
            );
        }
        let mut extra = std_pad(inner.len() + block, block);
        extra.extend((extra.len() as u8 + 1..).take(block));
        let mut wrong = extra.clone();
        *wrong.last_mut().unwrap() = 0;
        check(
            &mut rx,
            seal_raw(&case, 11, &framed(&inner, &wrong, wrong.len() as u8, 4)),
            DropReason::BadPadding,
            "last pad byte",
        );
        // Next header TCP in a tunnel SA.
        check(
            &mut rx,
            seal_raw(&case, 11, &framed(&inner, &pad, pad.len() as u8, 6)),
            DropReason::BadNextHeader,
            "next header 6",
        );
        // Next header says IPv6, the packet is IPv4.
        check(
            &mut rx,
            seal_raw(&case, 11, &framed(&inner, &pad, pad.len() as u8, 41)),
            DropReason::BadInnerPacket,
            "IPv6 next header, IPv4 packet",
        );
        // Garbage inner packet.
        let garbage = vec![0x45u8; inner.len()];
        check(
            &mut rx,
            seal_raw(&case, 11, &framed(&garbage, &pad, pad.len() as u8, 4)),
            DropReason::BadInnerPacket,
            "garbage inner",
        );
        // Inner packet outside the traffic selectors.
        let stranger = ipv4_udp([203, 0, 113, 7].into(), HOST_B4, 1, 2, 30, 5);
        check(
            &mut rx,
            seal_raw(&case, 11, &framed(&stranger, &pad, pad.len() as u8, 4)),
            DropReason::TrafficSelector,
            "selectors",
        );
        // A misaligned ciphertext for block ciphers.
        if block > 4 {
            // (The crypto layer refuses to seal it: add a byte to a sealed packet instead.)
            let mut odd = good.clone();
            odd.insert(odd.len() - suite.icv_len(), 0);
            let len = odd.len() as u16;
            odd[2..4].copy_from_slice(&len.to_be_bytes());
            refill_ipv4_checksum(&mut odd);
            check(&mut rx, odd, DropReason::BadLength, "misaligned");
        }

        // Dummy packets (next header 59) are dropped silently but are genuine: the window moves.
        let dummy = seal_raw(&case, 11, &framed(&[0u8; 14], &std_pad(14, block), std_pad(14, block).len() as u8, 59));
        assert_eq!(decapsulate(&mut rx, &dummy), Err(DropReason::Dummy));
        assert_eq!(rx.replay_window().top(), 11, "{}: a dummy packet is authentic", case.name());
        assert_eq!(rx.counters().packets, before.1, "{}: dummy packets are not traffic", case.name());
        // And the next genuine packet still passes.
        let next = encapsulate(&case, 12, &inner);
        assert_eq!(decapsulate(&mut rx, &next).unwrap(), inner);
    }
}

#[test]
fn unknown_spi_and_wrong_keys() {
    let case = tunnel_case(gcm128(), false, false);
    let wire = encapsulate(&case, 1, &inner_packet(&case, 10, 1));
    // An SA with another SPI does not take it.
    let mut cfg = case.config(Direction::Inbound);
    cfg.spi = 0x2000;
    let mut other = InboundSa::new(&cfg, backends(case.suite)[0]).unwrap();
    assert_eq!(decapsulate(&mut other, &wire), Err(DropReason::UnknownSpi));
    // The same SPI with other keys: integrity fails, nothing moves.
    let mut cfg = case.config(Direction::Inbound);
    cfg.encryption_key[0] ^= 1;
    let mut wrong = InboundSa::new(&cfg, backends(case.suite)[0]).unwrap();
    assert_eq!(decapsulate(&mut wrong, &wire), Err(DropReason::AuthFailed));
    assert_eq!(state(&wrong), (0, 0, 0));
}

#[test]
fn old_and_duplicate_packets() {
    let case = tunnel_case(gcm128(), false, false);
    let mut rx = InboundSa::new(&case.config(Direction::Inbound), backends(case.suite)[0]).unwrap();
    let inner = inner_packet(&case, 10, 1);
    decapsulate(&mut rx, &encapsulate(&case, 5000, &inner)).unwrap();
    let before = state(&rx);
    assert_eq!(decapsulate(&mut rx, &encapsulate(&case, 5000, &inner)), Err(DropReason::ReplayDuplicate));
    assert_eq!(decapsulate(&mut rx, &encapsulate(&case, 5000 - 1024, &inner)), Err(DropReason::ReplayTooOld));
    assert_untouched(&case, &mut rx, before, "replays");
    assert!(decapsulate(&mut rx, &encapsulate(&case, 5000 - 1023, &inner)).is_ok());
}

#[test]
fn keepalive_and_ike_are_not_esp() {
    use rampart_esp::{Received, parse_outer};
    let case = tunnel_case(gcm128(), true, false);
    let wire = encapsulate(&case, 1, &inner_packet(&case, 10, 1));
    // Same IP/UDP headers with a one-byte 0xff payload, then with a non-ESP marker.
    let mut keepalive = wire[..29].to_vec();
    keepalive[28] = 0xff;
    keepalive[2..4].copy_from_slice(&29u16.to_be_bytes());
    keepalive[24..26].copy_from_slice(&9u16.to_be_bytes());
    refill_ipv4_checksum(&mut keepalive);
    assert_eq!(parse_outer(&keepalive, 4500), Ok(Received::Keepalive));
    let mut ike = wire.clone();
    ike[28..32].fill(0);
    assert_eq!(parse_outer(&ike, 4500), Ok(Received::NotEsp));
    // A two-byte payload is neither.
    let mut short = wire[..30].to_vec();
    short[2..4].copy_from_slice(&30u16.to_be_bytes());
    short[24..26].copy_from_slice(&10u16.to_be_bytes());
    refill_ipv4_checksum(&mut short);
    assert_eq!(parse_outer(&short, 4500), Err(DropReason::BadUdpEncap));
}

fn refill_ipv4_checksum(p: &mut [u8]) {
    p[10..12].fill(0);
    let c = rampart_wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Selectors with a protocol and ports are checked on the inner packet's upper-layer header;
/// those without look at addresses alone. Both refuse a stranger, and the window does not move
/// for a refused packet.
#[test]
fn selectors_with_ports_check_the_upper_layer() {
    let case = tunnel_case(gcm128(), false, false);
    let mut cfg = case.config(Direction::Inbound);
    // Only UDP from ports 1000-2000 of the peer's hosts.
    for t in &mut cfg.remote_ts {
        t.protocol = 17;
        t.start_port = 1000;
        t.end_port = 2000;
    }
    let mut rx = InboundSa::new(&cfg, backends(case.suite)[0]).unwrap();
    let right = ipv4_udp(HOST_A4, HOST_B4, 1500, 53, 30, 1);
    assert_eq!(decapsulate(&mut rx, &encapsulate(&case, 1, &right)).unwrap(), right);
    for (seq, (sport, what)) in [(999, "port below the range"), (2001, "port above the range")].into_iter().enumerate()
    {
        let wrong = ipv4_udp(HOST_A4, HOST_B4, sport, 53, 30, 2);
        let wire = encapsulate(&case, 2 + seq as u64, &wrong);
        assert_eq!(decapsulate(&mut rx, &wire), Err(DropReason::TrafficSelector), "{what}");
    }
    assert_eq!(rx.replay_window().top(), 1, "refused packets do not move the window");
    let stranger = ipv4_udp([203, 0, 113, 7].into(), HOST_B4, 1500, 53, 30, 3);
    assert_eq!(decapsulate(&mut rx, &encapsulate(&case, 4, &stranger)), Err(DropReason::TrafficSelector));

    // The same ports through an address-only SA pass.
    let mut any_port = InboundSa::new(&case.config(Direction::Inbound), backends(case.suite)[0]).unwrap();
    let port_999 = ipv4_udp(HOST_A4, HOST_B4, 999, 53, 30, 4);
    assert_eq!(decapsulate(&mut any_port, &encapsulate(&case, 1, &port_999)).unwrap(), port_999);
}
