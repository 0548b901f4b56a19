//! The inbound ESP path on arbitrary bytes: `parse_outer`, then decapsulation by an SA whose
//! SPI the input may or may not carry (AES-GCM and AES-CBC + HMAC, tunnel and transport,
//! ESN on or off, chosen by the first input byte). With bit 3 of that byte set, the rest is
//! taken as the plaintext of a genuine packet instead (sealed with the SA's keys behind an
//! IPv4 header), so that trailer, next header, inner packet and selector checks see arbitrary
//! decrypted bytes. Must never panic; a packet that comes out must be an IP packet no longer
//! than the input, and must not come out a second time.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use rampart_crypto::{Backend, Suite};
use rampart_esp::{Direction, InboundSa, Lifetimes, Mode, PacketBuf, Protocol, SaConfig, TrafficSelector};
use zeroize::Zeroizing;

fn sa(selector: u8) -> InboundSa {
    let suite = if selector & 1 == 0 { "aes128gcm16" } else { "aes128-sha256" };
    let suite = Suite::from_swanctl(suite).unwrap();
    let config = SaConfig {
        spi: 0x0000_1000,
        direction: Direction::Inbound,
        protocol: Protocol::Esp,
        suite,
        encryption_key: Zeroizing::new(vec![7; suite.encryption_key_len()]),
        integrity_key: Zeroizing::new(vec![9; suite.integrity_key_len()]),
        mode: if selector & 2 == 0 { Mode::Tunnel } else { Mode::Transport },
        local: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        remote: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        encap: None,
        esn: selector & 4 != 0,
        replay_window: 64,
        local_ts: vec![TrafficSelector::any(false)],
        remote_ts: vec![TrafficSelector::any(false)],
        lifetimes: Lifetimes::default(),
    };
    InboundSa::new(&config, Backend::fastest(suite)).unwrap()
}

/// A genuine ESP packet (IPv4 outer header, sequence number 1) around `plaintext`, cut down to
/// the suite's alignment.
fn sealed(selector: u8, plaintext: &[u8]) -> Option<Vec<u8>> {
    let rx = sa(selector);
    let suite = rx.crypto().suite();
    let crypto = rampart_crypto::SaCrypto::new(
        suite,
        &vec![7; suite.encryption_key_len()],
        &vec![9; suite.integrity_key_len()],
        Backend::fastest(suite),
    )
    .ok()?;
    let body_len = plaintext.len() / suite.block_len() * suite.block_len();
    if body_len < 2 {
        return None;
    }
    let mut esp = vec![0u8; 8 + suite.iv_len() + body_len + suite.icv_len()];
    esp[0..4].copy_from_slice(&0x1000u32.to_be_bytes());
    esp[4..8].copy_from_slice(&1u32.to_be_bytes());
    esp[8 + suite.iv_len()..8 + suite.iv_len() + body_len].copy_from_slice(&plaintext[..body_len]);
    let esn = selector & 4 != 0;
    rampart_crypto::seal_burst(&mut [rampart_crypto::SealOp { sa: &crypto, esp: &mut esp, seq: 1, esn }]).ok()?;
    let total = u16::try_from(20 + esp.len()).ok()?;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 50, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = rampart_wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&esp);
    Some(ip)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let genuine;
    let packet = if selector & 8 != 0 {
        let Some(p) = sealed(selector, input) else { return };
        genuine = p;
        &genuine[..]
    } else {
        input
    };
    let mut rx = sa(selector);
    let mut frame = vec![0u8; packet.len() + 64];
    frame[32..32 + packet.len()].copy_from_slice(packet);
    let mut pkt = PacketBuf::new(&mut frame, 32, packet.len());
    if rx.decapsulate(&mut pkt, 4500).is_ok() {
        assert!(pkt.len() <= packet.len());
        assert!(matches!(pkt.data().first().map(|b| b >> 4), Some(4) | Some(6)));
        let mut again = vec![0u8; packet.len() + 64];
        again[32..32 + packet.len()].copy_from_slice(packet);
        let mut pkt = PacketBuf::new(&mut again, 32, packet.len());
        assert!(rx.decapsulate(&mut pkt, 4500).is_err(), "accepted twice");
    }
});
