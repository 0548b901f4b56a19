//! AH (RFC 4302) against an implementation nobody here wrote: scapy's `SecurityAssociation(AH)`
//! through `tests/oracle/esp_oracle.py` (for AES-GMAC, which scapy lacks for AH, the packet is
//! scapy's and the tag the `cryptography` package's AES-GCM). Both ways, every algorithm, tunnel
//! (four family pairs) and transport, ESN on and off, every backend; IPv4 options and IPv6
//! extension headers present; then what AH must catch and what it must let through: every bit of
//! the immutable fields flipped, the mutable ones changed in flight, replays, window edges,
//! truncation, unknown SPIs, and the refusals of its configuration.

mod common;

use common::oracle::*;
use common::*;
use rampart_crypto::{Backend, Integrity, Suite};
use rampart_esp::{Direction, DropReason, InboundSa, Mode, OutboundSa, PacketBuf, Protocol, SaConfig, SaError};
use serde_json::{Value, json};

fn ah_case(suite: Suite, mode: Mode, esn: bool, outer_v6: bool, inner_v6: bool) -> Case {
    Case { suite, mode, esn, natt: false, outer_v6, inner_v6 }
}

fn ah_config(case: &Case, direction: Direction) -> SaConfig {
    let mut c = case.config(direction);
    c.protocol = Protocol::Ah;
    c
}

fn ah_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for suite in Suite::ah_all() {
        for esn in [false, true] {
            for (outer_v6, inner_v6) in [(false, false), (true, true), (false, true), (true, false)] {
                out.push(ah_case(suite, Mode::Tunnel, esn, outer_v6, inner_v6));
            }
            for v6 in [false, true] {
                out.push(ah_case(suite, Mode::Transport, esn, v6, v6));
            }
        }
    }
    out
}

fn sa_json(case: &Case, seq: u64) -> Value {
    let cfg = ah_config(case, Direction::Outbound);
    let auth = match case.suite.integrity() {
        Integrity::HmacSha256_128 => "SHA2-256-128",
        Integrity::HmacSha384_192 => "SHA2-384-192",
        Integrity::HmacSha512_256 => "SHA2-512-256",
        Integrity::AesGmac { key_bits: 128 } => "AES-GMAC-128",
        Integrity::AesGmac { .. } => "AES-GMAC-256",
        Integrity::None => panic!("AH needs integrity"),
    };
    let (src, dst) = case.outer();
    json!({
        "proto": "ah", "auth": auth, "akey": hex(&cfg.integrity_key),
        "spi": cfg.spi, "mode": if case.mode == Mode::Tunnel { "tunnel" } else { "transport" },
        "esn": case.esn, "seq": seq, "outer_src": src.to_string(), "outer_dst": dst.to_string(),
    })
}

fn with(mut base: Value, op: &str, packet: &[u8]) -> Value {
    base["op"] = json!(op);
    base["packet"] = json!(hex(packet));
    base
}

const SEQS_32: &[u64] = &[1, 2, 1000];
const SEQS_ESN: &[u64] = &[(1 << 32) - 1, 1 << 32, (1 << 32) + 5];

/// IPv4 options in a host's packet (transport mode): Record Route (mutable) and Router Alert
/// (immutable), then End of List padding.
fn with_ipv4_options(p: &[u8]) -> Vec<u8> {
    let opts = [7u8, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0, 0];
    let mut out = Vec::with_capacity(p.len() + opts.len());
    out.extend_from_slice(&p[..20]);
    out.extend_from_slice(&opts);
    out.extend_from_slice(&p[20..]);
    out[0] = 0x40 | ((20 + opts.len()) / 4) as u8;
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    out[10..12].copy_from_slice(&[0, 0]);
    let c = rampart_wire::checksum::checksum(&out[..20 + opts.len()]);
    out[10..12].copy_from_slice(&c.to_be_bytes());
    out
}

/// A Hop-by-Hop header (with an option that may change en route) and a Destination Options
/// header in a host's IPv6 packet (transport mode).
fn with_ipv6_extensions(p: &[u8]) -> Vec<u8> {
    let upper = p[6];
    let mut out = p[..40].to_vec();
    out[6] = 0; // Hop-by-Hop
    out.extend_from_slice(&[60, 0, 0x3e, 2, 0xaa, 0xbb, 1, 0]); // may change: 0x3e; PadN
    out.extend_from_slice(&[upper, 0, 0x1e, 2, 0xcc, 0xdd, 1, 0]); // may not change
    out.extend_from_slice(&p[40..]);
    let plen = (out.len() - 40) as u16;
    out[4..6].copy_from_slice(&plen.to_be_bytes());
    out
}

/// The packets each case is tried with: plain ones, and in transport mode ones with options or
/// extension headers.
fn packets(case: &Case) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = [0usize, 17, 1300].iter().map(|&n| inner_packet(case, n, n as u8)).collect();
    if case.mode == Mode::Transport {
        let p = inner_packet(case, 100, 9);
        out.push(if case.inner_v6 { with_ipv6_extensions(&p) } else { with_ipv4_options(&p) });
    }
    out
}

#[test]
fn rampart_to_scapy() {
    let mut oracle = Oracle::start();
    let mut checked = 0;
    for case in ah_cases() {
        for backend in Backend::for_suite(case.suite) {
            let mut tx = OutboundSa::new(&ah_config(&case, Direction::Outbound), backend).unwrap();
            let seqs = if case.esn { SEQS_ESN } else { SEQS_32 };
            for (i, inner) in packets(&case).iter().enumerate() {
                tx.resume_at(seqs[i % seqs.len()]);
                let seq = tx.next_seq();
                let mut frame = frame_with(inner);
                frame.resize(frame.len() + 512, 0);
                let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
                tx.encapsulate(&mut pkt).unwrap_or_else(|e| panic!("{} {backend:?}: {e:?}", case.name()));
                let wire = pkt.data().to_vec();
                let proto = if wire[0] >> 4 == 4 {
                    wire[9]
                } else if case.mode == Mode::Tunnel {
                    wire[6]
                } else {
                    51
                };
                assert_eq!(proto, 51, "{}: AH", case.name());
                let got = oracle.ask(&with(sa_json(&case, seq), "decrypt", &wire)).unwrap_or_else(|e| {
                    panic!("{} {backend:?} seq {seq}: scapy refused Rampart's AH: {e}", case.name())
                });
                assert_eq!(hex(&got), hex(inner), "{} seq {seq}: scapy's view of the packet differs", case.name());
                checked += 1;
            }
        }
    }
    assert!(checked >= 5 * 2 * 6 * 3, "only {checked} packets checked");
}

#[test]
fn scapy_to_rampart() {
    let mut oracle = Oracle::start();
    let mut checked = 0;
    for case in ah_cases() {
        for backend in Backend::for_suite(case.suite) {
            let mut rx = InboundSa::new(&ah_config(&case, Direction::Inbound), backend).unwrap();
            let seqs = if case.esn { SEQS_ESN } else { SEQS_32 };
            for (i, inner) in packets(&case).iter().enumerate() {
                let seq = seqs[i % seqs.len()] + 10 * i as u64;
                let wire = oracle
                    .ask(&with(sa_json(&case, seq), "encrypt", inner))
                    .unwrap_or_else(|e| panic!("{}: scapy could not build AH: {e}", case.name()));
                let mut frame = frame_with(&wire);
                frame.resize(frame.len() + 512, 0);
                let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
                let out = rx.decapsulate(&mut pkt, 4500).unwrap_or_else(|e| {
                    panic!("{} {backend:?} seq {seq}: Rampart refused scapy's AH: {e:?}", case.name())
                });
                assert_eq!(out.seq, seq, "{}: sequence number inferred wrongly", case.name());
                assert_eq!(hex(pkt.data()), hex(inner), "{} seq {seq}", case.name());
                checked += 1;
            }
        }
    }
    assert!(checked >= 5 * 2 * 6 * 3, "only {checked} packets checked");
}

/// One AH packet from Rampart, the receiving SA, and the room to resend it as often as needed.
struct Sent {
    wire: Vec<u8>,
    inner: Vec<u8>,
}

fn send(case: &Case, tx: &mut OutboundSa, len: usize) -> Sent {
    let inner = inner_packet(case, len, 5);
    let mut frame = frame_with(&inner);
    frame.resize(frame.len() + 512, 0);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
    tx.encapsulate(&mut pkt).unwrap();
    Sent { wire: pkt.data().to_vec(), inner }
}

fn receive(rx: &mut InboundSa, wire: &[u8]) -> (Result<rampart_esp::Decapsulated, DropReason>, Vec<u8>) {
    let mut frame = frame_with(wire);
    frame.resize(frame.len() + 512, 0);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
    let r = rx.decapsulate(&mut pkt, 4500);
    (r, pkt.data().to_vec())
}

#[test]
fn every_immutable_bit_is_covered_and_mutable_fields_may_change() {
    for suite in Suite::ah_all() {
        for outer_v6 in [false, true] {
            let case = ah_case(suite, Mode::Tunnel, false, outer_v6, false);
            let backend = Backend::fastest(suite);
            let mut tx = OutboundSa::new(&ah_config(&case, Direction::Outbound), backend).unwrap();
            let sent = send(&case, &mut tx, 60);
            let mutable: Vec<usize> = if outer_v6 {
                // Traffic class, flow label (the low nibble of byte 0 and bytes 1-3), hop limit.
                vec![1, 2, 3, 7]
            } else {
                // DSCP/ECN, flags and fragment offset, TTL, checksum.
                vec![1, 6, 7, 8, 10, 11]
            };
            let mut caught = 0;
            for byte in 0..sent.wire.len() {
                for bit in 0..8 {
                    let mut w = sent.wire.clone();
                    w[byte] ^= 1 << bit;
                    // A fresh receiver each time: no flip may be judged against a moved window.
                    let mut rx = InboundSa::new(&ah_config(&case, Direction::Inbound), backend).unwrap();
                    let (r, _) = receive(&mut rx, &w);
                    let is_mutable = mutable.contains(&byte) || (outer_v6 && byte == 0 && bit < 4);
                    // A flip in an IPv4 header breaks its checksum (the outer header is checked
                    // before AH), except in the checksum, TTL and the other mutable fields, which
                    // AH does not cover: there the packet must still verify (the checksum is
                    // refused by the IP layer, never by AH).
                    if is_mutable {
                        if !outer_v6 && (byte == 10 || byte == 11 || byte == 1 || byte == 6 || byte == 7 || byte == 8) {
                            // Changed by a router, the checksum would be fixed too; here it is not,
                            // so the outer header is refused before AH runs.
                            assert!(
                                matches!(r, Err(DropReason::BadOuterHeader) | Ok(_)),
                                "{suite} byte {byte} bit {bit}: {r:?}"
                            );
                        } else {
                            assert!(r.is_ok(), "{suite} v6 byte {byte} bit {bit}: a mutable field broke AH: {r:?}");
                        }
                    } else {
                        assert!(r.is_err(), "{suite} outer_v6={outer_v6} byte {byte} bit {bit}: accepted");
                        caught += 1;
                    }
                }
            }
            assert!(caught > sent.wire.len() * 6, "{suite}: only {caught} flips checked");
        }
    }
}

#[test]
fn mutable_fields_changed_by_routers_still_verify() {
    for suite in Suite::ah_all() {
        for outer_v6 in [false, true] {
            let case = ah_case(suite, Mode::Tunnel, false, outer_v6, outer_v6);
            let backend = Backend::fastest(suite);
            let mut tx = OutboundSa::new(&ah_config(&case, Direction::Outbound), backend).unwrap();
            let mut rx = InboundSa::new(&ah_config(&case, Direction::Inbound), backend).unwrap();
            let sent = send(&case, &mut tx, 200);
            let mut w = sent.wire.clone();
            if outer_v6 {
                w[7] = 3; // hop limit
                w[1] = 0xb5; // traffic class and flow label
                w[2] = 0x12;
            } else {
                // A router's doing: TTL down, DSCP remarked, DF set, checksum fixed.
                w[8] = 17;
                w[1] = 0x88;
                w[6] |= 0x40;
                w[10..12].copy_from_slice(&[0, 0]);
                let c = rampart_wire::checksum::checksum(&w[..20]);
                w[10..12].copy_from_slice(&c.to_be_bytes());
            }
            let (r, data) = receive(&mut rx, &w);
            assert!(r.is_ok(), "{suite} outer_v6={outer_v6}: {r:?}");
            assert_eq!(data, sent.inner);
        }
    }
}

#[test]
fn replays_window_edges_truncation_and_unknown_spis() {
    let suite = Suite::ah(Integrity::HmacSha256_128).unwrap();
    let case = ah_case(suite, Mode::Tunnel, false, false, false);
    let mut cfg_in = ah_config(&case, Direction::Inbound);
    cfg_in.replay_window = 64;
    let backend = Backend::fastest(suite);
    let mut tx = OutboundSa::new(&ah_config(&case, Direction::Outbound), backend).unwrap();
    let mut rx = InboundSa::new(&cfg_in, backend).unwrap();
    let sent: Vec<Sent> = (0..100).map(|_| send(&case, &mut tx, 40)).collect();
    // 100 arrives first; 37 is exactly the left edge (100 - 64 + 1), 36 is beyond it.
    assert!(receive(&mut rx, &sent[99].wire).0.is_ok());
    assert_eq!(receive(&mut rx, &sent[99].wire).0, Err(DropReason::ReplayDuplicate));
    assert!(receive(&mut rx, &sent[36].wire).0.is_ok(), "the window's left edge");
    assert_eq!(receive(&mut rx, &sent[35].wire).0, Err(DropReason::ReplayTooOld));
    // A forged packet never moves the window: the genuine one with its number still passes.
    let mut forged = sent[50].wire.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(receive(&mut rx, &forged).0, Err(DropReason::AhBadIcv));
    assert!(receive(&mut rx, &sent[50].wire).0.is_ok());
    // Truncation: every cut is refused, none panics.
    for cut in 0..sent[60].wire.len() {
        assert!(receive(&mut rx, &sent[60].wire[..cut]).0.is_err(), "cut at {cut} accepted");
    }
    // A header length that does not fit the algorithm.
    let mut short = sent[61].wire.clone();
    short[21] -= 1;
    assert_eq!(receive(&mut rx, &short).0, Err(DropReason::AhBadLength));
    // Another SPI.
    let mut other = sent[62].wire.clone();
    other[24..28].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    assert_eq!(receive(&mut rx, &other).0, Err(DropReason::UnknownSpi));
}

#[test]
fn ah_configurations_are_refused_where_they_cannot_work() {
    let suite = Suite::ah(Integrity::HmacSha256_128).unwrap();
    let case = ah_case(suite, Mode::Tunnel, false, false, false);
    let mut natt = ah_config(&case, Direction::Outbound);
    natt.encap = Some(rampart_esp::UdpEncap::default());
    assert_eq!(OutboundSa::new(&natt, Backend::fastest(suite)).unwrap_err(), SaError::AhOverNat);
    assert!(SaError::AhOverNat.to_string().contains("NAT"));
    let mut encrypting = ah_config(&case, Direction::Outbound);
    encrypting.suite = gcm128();
    encrypting.encryption_key = key(gcm128().encryption_key_len(), 1);
    encrypting.integrity_key = key(0, 1);
    assert_eq!(OutboundSa::new(&encrypting, Backend::fastest(gcm128())).unwrap_err(), SaError::AhSuite);
    // AES-GMAC integrity is AH's only.
    let gmac = Suite::ah(Integrity::AesGmac { key_bits: 128 }).unwrap();
    let mut esp = case.config(Direction::Outbound);
    esp.suite = gmac;
    esp.integrity_key = key(gmac.integrity_key_len(), 1);
    assert_eq!(OutboundSa::new(&esp, Backend::fastest(gmac)).unwrap_err(), SaError::GmacForEsp);
    // MD5 and SHA-1 with their reasons.
    for (name, why) in [("md5", "broken"), ("sha1", "SHA-2")] {
        let e = Suite::ah_from_swanctl(name).unwrap_err().to_string();
        assert!(e.contains(why), "{name}: {e}");
    }
    assert!(Suite::ah_from_swanctl("aes192gmac").is_err());
    assert_eq!(Suite::ah_from_swanctl("aes256gmac").unwrap().integrity(), Integrity::AesGmac { key_bits: 256 });
}

#[test]
fn a_burst_mixes_esp_and_ah_sas() {
    use rampart_esp::burst;
    let ah_suite = Suite::ah(Integrity::AesGmac { key_bits: 256 }).unwrap();
    let ah = ah_case(ah_suite, Mode::Tunnel, true, false, false);
    let esp = Case { suite: gcm128(), mode: Mode::Tunnel, esn: false, natt: false, outer_v6: false, inner_v6: false };
    let mut ah_out = ah_config(&ah, Direction::Outbound);
    ah_out.spi = 2;
    let mut ah_in = ah_config(&ah, Direction::Inbound);
    ah_in.spi = 2;
    let mut tx: Vec<Option<OutboundSa>> = vec![
        Some(OutboundSa::new(&esp.config(Direction::Outbound), Backend::fastest(gcm128())).unwrap()),
        Some(OutboundSa::new(&ah_out, Backend::fastest(ah_suite)).unwrap()),
    ];
    let mut rx: Vec<Option<InboundSa>> = vec![
        Some(InboundSa::new(&esp.config(Direction::Inbound), Backend::fastest(gcm128())).unwrap()),
        Some(InboundSa::new(&ah_in, Backend::fastest(ah_suite)).unwrap()),
    ];
    let slots: Vec<u32> = (0..40).map(|i| (i % 3 == 0) as u32).collect();
    let inners: Vec<Vec<u8>> = (0..40).map(|i| inner_packet(&esp, 30 + 17 * i, i as u8)).collect();
    let mut frames: Vec<Vec<u8>> = inners.iter().map(|p| frame_with(p)).collect();
    for f in &mut frames {
        f.resize(f.len() + 512, 0);
    }
    let mut pkts: Vec<PacketBuf<'_>> =
        frames.iter_mut().zip(&inners).map(|(f, p)| PacketBuf::new(f, HEADROOM, p.len())).collect();
    let mut verdicts = vec![Err(DropReason::NoSa); pkts.len()];
    burst::encapsulate(&mut tx, &mut pkts, &slots, &mut verdicts);
    assert!(verdicts.iter().all(Result::is_ok), "{verdicts:?}");
    let wires: Vec<Vec<u8>> = pkts.iter().map(|p| p.data().to_vec()).collect();
    drop(pkts);
    for (w, &s) in wires.iter().zip(&slots) {
        assert_eq!(w[9], if s == 1 { 51 } else { 50 });
    }
    let mut frames: Vec<Vec<u8>> = wires.iter().map(|w| frame_with(w)).collect();
    for f in &mut frames {
        f.resize(f.len() + 512, 0);
    }
    let mut pkts: Vec<PacketBuf<'_>> =
        frames.iter_mut().zip(&wires).map(|(f, w)| PacketBuf::new(f, HEADROOM, w.len())).collect();
    let locs: Vec<rampart_esp::IpsecLocation> = wires
        .iter()
        .map(|w| match rampart_esp::parse_outer(w, 4500) {
            Ok(rampart_esp::Received::Ipsec(loc)) => loc,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut verdicts = vec![Err(DropReason::Truncated); pkts.len()];
    burst::decapsulate(&mut rx, &mut pkts, &slots, &locs, &mut verdicts);
    for (i, (v, p)) in verdicts.iter().zip(&pkts).enumerate() {
        assert!(v.is_ok(), "packet {i}: {v:?}");
        assert_eq!(p.data(), &inners[i][..]);
    }
}
