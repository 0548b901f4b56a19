//! Interop with an independent ESP implementation: scapy's `SecurityAssociation`, driven through
//! `tests/oracle/esp_oracle.py`. Packets Rampart encapsulates are decapsulated by scapy, packets
//! scapy builds are decapsulated by Rampart: every suite, tunnel (four family pairs) and
//! transport, ESN on and off, UDP-encapsulated or not, every backend.
//!
//! Needs python3 with scapy and cryptography (`scripts/setup.sh` installs them).

mod common;

use common::oracle::*;
use common::*;
use rampart_crypto::{Encryption, Integrity};
use rampart_esp::{Direction, InboundSa, Mode, OutboundSa, PacketBuf};
use serde_json::{Value, json};

/// The request fields that describe the SA to scapy.
fn sa_json(case: &Case, seq: u64) -> Value {
    let cfg = case.config(Direction::Outbound);
    let crypt = match case.suite.encryption() {
        Encryption::AesGcm16 { .. } => "AES-GCM",
        Encryption::ChaCha20Poly1305 => "CHACHA20-POLY1305",
        Encryption::AesCbc { .. } => "AES-CBC",
        Encryption::Null => "NULL",
    };
    let auth = match case.suite.integrity() {
        Integrity::None => Value::Null,
        Integrity::HmacSha256_128 => json!("SHA2-256-128"),
        Integrity::HmacSha384_192 => json!("SHA2-384-192"),
        Integrity::HmacSha512_256 => json!("SHA2-512-256"),
        Integrity::AesGmac { .. } => panic!("AES-GMAC integrity is an AH suite"),
    };
    let (src, dst) = case.outer();
    json!({
        "crypt": crypt, "auth": auth,
        "ekey": hex(&cfg.encryption_key), "akey": hex(&cfg.integrity_key),
        "spi": cfg.spi, "mode": if case.mode == Mode::Tunnel { "tunnel" } else { "transport" },
        "esn": case.esn, "seq": seq, "natt": case.natt, "sport": 4500, "dport": 4500,
        "outer_src": src.to_string(), "outer_dst": dst.to_string(),
    })
}

fn with(mut base: Value, op: &str, packet: &[u8]) -> Value {
    base["op"] = json!(op);
    base["packet"] = json!(hex(packet));
    base
}

const SEQS_32: &[u64] = &[1, 2, 77, 1000];
const SEQS_ESN: &[u64] = &[(1 << 32) - 2, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, (1 << 32) + (1 << 30)];

#[test]
fn rampart_to_scapy() {
    let mut oracle = Oracle::start();
    let mut checked = 0;
    for case in all_cases() {
        for backend in backends(case.suite) {
            let mut tx = OutboundSa::new(&case.config(Direction::Outbound), backend).unwrap();
            let seqs = if case.esn { SEQS_ESN } else { SEQS_32 };
            for (i, &seq) in seqs.iter().enumerate() {
                tx.resume_at(seq);
                let inner = inner_packet(&case, [0, 17, 333, 1400][i % 4], i as u8);
                let mut frame = frame_with(&inner);
                let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
                tx.encapsulate(&mut pkt).unwrap();
                let got = oracle
                    .ask(&with(sa_json(&case, seq), "decrypt", pkt.data()))
                    .unwrap_or_else(|e| panic!("{} seq {seq}: scapy refused Rampart's packet: {e}", case.name()));
                assert_eq!(hex(&got), hex(&inner), "{} seq {seq}: scapy decrypted something else", case.name());
                checked += 1;
            }
        }
    }
    assert!(checked >= 240 * 4, "only {checked} packets checked");
}

#[test]
fn scapy_to_rampart() {
    let mut oracle = Oracle::start();
    let mut checked = 0;
    for case in all_cases() {
        for backend in backends(case.suite) {
            let mut rx = InboundSa::new(&case.config(Direction::Inbound), backend).unwrap();
            let seqs = if case.esn { SEQS_ESN } else { SEQS_32 };
            for (i, &seq) in seqs.iter().enumerate() {
                let inner = inner_packet(&case, [0, 17, 333, 1400][i % 4], i as u8);
                let wire = oracle
                    .ask(&with(sa_json(&case, seq), "encrypt", &inner))
                    .unwrap_or_else(|e| panic!("{}: scapy could not encrypt: {e}", case.name()));
                let mut frame = frame_with(&wire);
                let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
                let out = rx
                    .decapsulate(&mut pkt, 4500)
                    .unwrap_or_else(|e| panic!("{} seq {seq}: Rampart refused scapy's packet: {e:?}", case.name()));
                assert_eq!(out.seq, seq, "{}: sequence number inferred wrongly", case.name());
                // Transport mode restores length, protocol and checksum: the host packet comes back
                // byte for byte, as the tunnel's inner packet does.
                assert_eq!(hex(pkt.data()), hex(&inner), "{} seq {seq}", case.name());
                checked += 1;
            }
        }
    }
    assert!(checked >= 240 * 4, "only {checked} packets checked");
}

#[test]
fn scapy_detects_rampart_tampering() {
    // The oracle must be able to say no: a flipped ICV bit is refused by scapy.
    let mut oracle = Oracle::start();
    let case = Case { suite: gcm128(), mode: Mode::Tunnel, esn: false, natt: false, outer_v6: false, inner_v6: false };
    let mut tx = OutboundSa::new(&case.config(Direction::Outbound), backends(case.suite)[0]).unwrap();
    let inner = inner_packet(&case, 64, 3);
    let mut frame = frame_with(&inner);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
    tx.encapsulate(&mut pkt).unwrap();
    let mut wire = pkt.data().to_vec();
    *wire.last_mut().unwrap() ^= 1;
    assert!(oracle.ask(&with(sa_json(&case, 1), "decrypt", &wire)).is_err());
}
