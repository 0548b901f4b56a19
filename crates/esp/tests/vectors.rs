//! RFC 7634 Appendix A through the whole ESP pipeline: the ESP packet from the inner packet,
//! the keys and the sequence number, byte for byte, and back.
//!
//! The example's IV (0x1011121314151617) is not the sequence number Rampart would use as IV, so
//! the test injects it at the seal step; everything else (trailer, padding, header, AAD) is
//! Rampart's own output.

use std::net::{IpAddr, Ipv4Addr};

use rampart_crypto::{Backend, Encryption, Integrity, Suite};
use rampart_esp::{Direction, InboundSa, Lifetimes, Mode, OutboundSa, PacketBuf, SaConfig};
use zeroize::Zeroizing;

fn vector() -> std::collections::HashMap<String, Vec<u8>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crypto/tests/data/rfc7634_appA_esp_chacha20poly1305.txt");
    let text = std::fs::read_to_string(path).expect("vector file");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                (0..v.len()).step_by(2).map(|i| u8::from_str_radix(&v[i..i + 2], 16).unwrap()).collect(),
            )
        })
        .collect()
}

fn config(direction: Direction, keymat: &[u8]) -> SaConfig {
    let a: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let b: IpAddr = Ipv4Addr::new(192, 0, 2, 2).into();
    SaConfig {
        protocol: rampart_esp::Protocol::Esp,
        spi: 0x0102_0304,
        direction,
        suite: Suite::new(Encryption::ChaCha20Poly1305, Integrity::None).unwrap(),
        encryption_key: Zeroizing::new(keymat.to_vec()),
        integrity_key: Zeroizing::new(Vec::new()),
        mode: Mode::Tunnel,
        local: if direction == Direction::Outbound { a } else { b },
        remote: if direction == Direction::Outbound { b } else { a },
        encap: None,
        esn: false,
        replay_window: 64,
        local_ts: Vec::new(),
        remote_ts: Vec::new(),
        lifetimes: Lifetimes::default(),
    }
}

#[test]
fn rfc7634_appendix_a_whole_packet() {
    let v = vector();
    let plaintext = &v["plaintext"];
    // The inner packet is the plaintext without its trailer (padding 01 02, pad length 02, next header 04).
    assert_eq!(&plaintext[plaintext.len() - 4..], &[1, 2, 2, 4]);
    let inner = &plaintext[..plaintext.len() - 4];
    for backend in Backend::for_suite(config(Direction::Outbound, &v["keymat"]).suite) {
        let mut tx = OutboundSa::new(&config(Direction::Outbound, &v["keymat"]), backend).unwrap();
        tx.resume_at(5);
        let mut frame = vec![0u8; 256 + inner.len()];
        frame[128..128 + inner.len()].copy_from_slice(inner);
        let mut pkt = PacketBuf::new(&mut frame, 128, inner.len());
        let prepared = tx.prepare(&mut pkt).unwrap();
        assert_eq!(prepared.seq, 5);
        {
            let mut op = tx.seal_op(&mut pkt, &prepared).unwrap();
            rampart_crypto::raw::seal_with_iv(&mut op, &v["iv"]).unwrap();
        }
        tx.finish(&mut pkt, &prepared);
        let esp = &pkt.data()[prepared.header_offset..];
        assert_eq!(hex(esp), hex(&v["esp_packet"]), "{backend:?}: ESP packet differs from RFC 7634 Appendix A");

        // And back: the packet from the RFC, behind an outer header, decapsulates to the inner packet.
        let wire = pkt.data().to_vec();
        let mut rx = InboundSa::new(&config(Direction::Inbound, &v["keymat"]), backend).unwrap();
        let mut frame = wire.clone();
        let mut pkt = PacketBuf::new(&mut frame, 0, wire.len());
        let out = rx.decapsulate(&mut pkt, 4500).unwrap();
        assert_eq!(out.seq, 5);
        assert_eq!(pkt.data(), inner);
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
