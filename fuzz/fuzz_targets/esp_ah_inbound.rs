//! The inbound AH path (RFC 4302) on arbitrary bytes and on genuine packets. The first input
//! byte picks the algorithm (every AH suite), tunnel or transport mode and ESN; with bit 5 of
//! it clear the rest is handed to the receiving SA as it is. With bit 5 set, the rest is the
//! payload of an IPv4 packet that the sending SA protects first; then
//! - the packet must come back out exactly as it went in, and not a second time;
//! - with bit 6 set, the outer TTL (mutable: zeroed for the ICV) is changed, as a router would
//!   (header checksum updated), and the packet must still be accepted;
//! - with bit 7 set, one byte past the outer IPv4 header (AH header, ICV or protected payload;
//!   position and XOR value from the input) is changed and the packet must be refused.
//!
//! Never a panic; nothing accepted that is not an IP packet no longer than the input.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use rampart_crypto::{Backend, Suite};
use rampart_esp::{Direction, InboundSa, Lifetimes, Mode, OutboundSa, PacketBuf, Protocol, SaConfig, TrafficSelector};
use zeroize::Zeroizing;

/// Room in front of a packet and behind it: what the sending side needs to insert AH and what
/// the receiving side uses as scratch.
const HEADROOM: usize = 128;
const TAILROOM: usize = 512;

const SENDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const RECEIVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn config(selector: u8, direction: Direction) -> SaConfig {
    let suites = Suite::ah_all();
    let suite = suites[usize::from(selector & 7) % suites.len()];
    let (local, remote) = match direction {
        Direction::Outbound => (SENDER, RECEIVER),
        Direction::Inbound => (RECEIVER, SENDER),
    };
    SaConfig {
        spi: 0x0000_2000,
        direction,
        protocol: Protocol::Ah,
        suite,
        encryption_key: Zeroizing::new(vec![]),
        integrity_key: Zeroizing::new(vec![9; suite.integrity_key_len()]),
        mode: if selector & 8 == 0 { Mode::Tunnel } else { Mode::Transport },
        local: IpAddr::V4(local),
        remote: IpAddr::V4(remote),
        encap: None,
        esn: selector & 16 != 0,
        replay_window: 64,
        local_ts: vec![TrafficSelector::any(false)],
        remote_ts: vec![TrafficSelector::any(false)],
        lifetimes: Lifetimes::default(),
    }
}

/// An IPv4 packet (protocol 17, the sender to the receiver) around `payload`.
fn ipv4(payload: &[u8]) -> Option<Vec<u8>> {
    let total = u16::try_from(20 + payload.len()).ok()?;
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&SENDER.octets());
    ip.extend_from_slice(&RECEIVER.octets());
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    let c = rampart_wire::checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(payload);
    Some(ip)
}

fn framed(packet: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; HEADROOM + packet.len() + TAILROOM];
    frame[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    frame
}

/// Hands `packet` to `rx`; the packet that comes out, if any.
fn receive(rx: &mut InboundSa, packet: &[u8]) -> Option<Vec<u8>> {
    let mut frame = framed(packet);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, packet.len());
    rx.decapsulate(&mut pkt, 4500).ok()?;
    let out = pkt.data().to_vec();
    assert!(out.len() <= packet.len(), "came out longer than it went in");
    assert!(matches!(out.first().map(|b| b >> 4), Some(4) | Some(6)), "not an IP packet");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let rx_config = config(selector, Direction::Inbound);
    let mut rx = InboundSa::new(&rx_config, Backend::fastest(rx_config.suite)).unwrap();
    if selector & 32 == 0 {
        if receive(&mut rx, rest).is_some() {
            assert!(receive(&mut rx, rest).is_none(), "accepted twice");
        }
        return;
    }
    let [where_hi, where_lo, flip, ttl, payload @ ..] = rest else { return };
    let Some(inner) = ipv4(payload) else { return };
    let tx_config = config(selector, Direction::Outbound);
    let mut tx = OutboundSa::new(&tx_config, Backend::fastest(tx_config.suite)).unwrap();
    let mut frame = framed(&inner);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
    if tx.encapsulate(&mut pkt).is_err() {
        // Only a packet too big for an IPv4 datagram once AH is added may be refused.
        assert!(inner.len() + 20 + 4 + 64 + 12 > usize::from(u16::MAX), "refused a {} byte packet", inner.len());
        return;
    }
    let mut wire = pkt.data().to_vec();
    if selector & 64 != 0 {
        // What a router on the way does: a new TTL, the header checksum updated with it.
        wire[8] = *ttl;
        wire[10..12].copy_from_slice(&[0, 0]);
        let c = rampart_wire::checksum::checksum(&wire[..20]);
        wire[10..12].copy_from_slice(&c.to_be_bytes());
    }
    if selector & 128 != 0 {
        let at = 20 + usize::from(u16::from_be_bytes([*where_hi, *where_lo])) % (wire.len() - 20);
        wire[at] ^= (*flip).max(1);
        assert!(receive(&mut rx, &wire).is_none(), "accepted with byte {at} changed");
        return;
    }
    let out = receive(&mut rx, &wire).expect("a genuine AH packet refused");
    let mut expected = inner;
    if selector & 8 != 0 {
        // Transport mode: the packet's own header travelled, TTL and all.
        expected[8] = wire[8];
        expected[10..12].copy_from_slice(&[0, 0]);
        let c = rampart_wire::checksum::checksum(&expected[..20]);
        expected[10..12].copy_from_slice(&c.to_be_bytes());
    }
    assert_eq!(out, expected, "came out different");
    assert!(receive(&mut rx, &wire).is_none(), "accepted twice");
});
