//! Shared helpers of the ESP integration tests: SA configurations for every suite, and inner
//! packets built byte by byte (checksums from `rampart-wire`).
#![allow(dead_code)]

pub mod oracle;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rampart_crypto::{Backend, Encryption, Integrity, Suite};
use rampart_esp::{Direction, Lifetimes, Mode, SaConfig, TrafficSelector, UdpEncap};
use rampart_wire::checksum::{AddrPair, checksum};
use zeroize::Zeroizing;

pub const GW_A4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const GW_B4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const HOST_A4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
pub const HOST_B4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 10);

pub fn gw_a6() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}
pub fn gw_b6() -> Ipv6Addr {
    "2001:db8::2".parse().unwrap()
}
pub fn host_a6() -> Ipv6Addr {
    "2001:db8:1::10".parse().unwrap()
}
pub fn host_b6() -> Ipv6Addr {
    "2001:db8:2::10".parse().unwrap()
}

/// Deterministic key bytes of a given length.
pub fn key(len: usize, seed: u8) -> Zeroizing<Vec<u8>> {
    Zeroizing::new((0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect())
}

/// One test scenario: which suite, mode, families and options.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub suite: Suite,
    pub mode: Mode,
    pub esn: bool,
    pub natt: bool,
    pub outer_v6: bool,
    pub inner_v6: bool,
}

impl Case {
    pub fn name(&self) -> String {
        format!(
            "{} {:?} esn={} natt={} outer=v{} inner=v{}",
            self.suite,
            self.mode,
            self.esn as u8,
            self.natt as u8,
            if self.outer_v6 { 6 } else { 4 },
            if self.inner_v6 { 6 } else { 4 }
        )
    }

    /// The addresses of the outer header (tunnel endpoints, or the hosts in transport mode).
    pub fn outer(&self) -> (IpAddr, IpAddr) {
        match (self.mode, self.outer_v6) {
            (Mode::Tunnel, false) => (GW_A4.into(), GW_B4.into()),
            (Mode::Tunnel, true) => (gw_a6().into(), gw_b6().into()),
            (Mode::Transport, false) => (HOST_A4.into(), HOST_B4.into()),
            (Mode::Transport, true) => (host_a6().into(), host_b6().into()),
        }
    }

    pub fn inner_addrs(&self) -> (IpAddr, IpAddr) {
        if self.mode == Mode::Transport {
            return self.outer();
        }
        if self.inner_v6 { (host_a6().into(), host_b6().into()) } else { (HOST_A4.into(), HOST_B4.into()) }
    }

    /// The SA from A to B, seen from A (`Outbound`) or from B (`Inbound`).
    pub fn config(&self, direction: Direction) -> SaConfig {
        let (a, b) = self.outer();
        let (local, remote) = if direction == Direction::Outbound { (a, b) } else { (b, a) };
        let (ia, ib) = self.inner_addrs();
        let ts_a = TrafficSelector::from_prefix(ia, if ia.is_ipv4() { 24 } else { 48 });
        let ts_b = TrafficSelector::from_prefix(ib, if ib.is_ipv4() { 24 } else { 48 });
        let (local_ts, remote_ts) = if direction == Direction::Outbound { (ts_a, ts_b) } else { (ts_b, ts_a) };
        SaConfig {
            protocol: rampart_esp::Protocol::Esp,
            spi: 0x1000_0001,
            direction,
            suite: self.suite,
            encryption_key: key(self.suite.encryption_key_len(), 1),
            integrity_key: key(self.suite.integrity_key_len(), 101),
            mode: self.mode,
            local,
            remote,
            encap: self.natt.then(UdpEncap::default),
            esn: self.esn,
            replay_window: 1024,
            local_ts: vec![local_ts],
            remote_ts: vec![remote_ts],
            lifetimes: Lifetimes::default(),
        }
    }
}

/// Every combination the issue asks for: every suite, tunnel (four family pairs) and transport
/// (two families), ESN on and off, UDP-encapsulated or not.
pub fn all_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for suite in Suite::all() {
        for esn in [false, true] {
            for natt in [false, true] {
                for (outer_v6, inner_v6) in [(false, false), (true, true), (false, true), (true, false)] {
                    out.push(Case { suite, mode: Mode::Tunnel, esn, natt, outer_v6, inner_v6 });
                }
                for v6 in [false, true] {
                    out.push(Case { suite, mode: Mode::Transport, esn, natt, outer_v6: v6, inner_v6: v6 });
                }
            }
        }
    }
    out
}

/// Every available backend that implements `suite` (the multi-buffer one does AES-GCM only).
pub fn backends(suite: Suite) -> Vec<Backend> {
    Backend::for_suite(suite)
}

/// An IPv4 UDP datagram with `payload_len` bytes of payload (UDP checksum filled).
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload_len: usize, seed: u8) -> Vec<u8> {
    let total = 20 + 8 + payload_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[1] = 0x28; // DSCP 10, ECN 0
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    fill_udp(&mut p[20..], sport, dport, payload_len, seed, AddrPair::V4 { src, dst });
    p
}

/// An IPv6 UDP datagram with `payload_len` bytes of payload (UDP checksum filled).
pub fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload_len: usize, seed: u8) -> Vec<u8> {
    let total = 40 + 8 + payload_len;
    let mut p = vec![0u8; total];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    p[6] = 17;
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    fill_udp(&mut p[40..], sport, dport, payload_len, seed, AddrPair::V6 { src, dst });
    p
}

fn fill_udp(udp: &mut [u8], sport: u16, dport: u16, payload_len: usize, seed: u8, addrs: AddrPair) {
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    for (i, b) in udp[8..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_add(seed);
    }
    let mut datagram = rampart_wire::UdpPacket::new_unchecked(&mut udp[..]);
    datagram.fill_checksum(&addrs);
}

/// An inner packet for a case, with `payload_len` bytes of UDP payload.
pub fn inner_packet(case: &Case, payload_len: usize, seed: u8) -> Vec<u8> {
    match case.inner_addrs() {
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4_udp(s, d, 40000, 5001, payload_len, seed),
        (IpAddr::V6(s), IpAddr::V6(d)) => ipv6_udp(s, d, 40000, 5001, payload_len, seed),
        _ => unreachable!(),
    }
}

/// A frame with 128 bytes of headroom and 128 of tailroom around `packet`.
pub const HEADROOM: usize = 128;
pub fn frame_with(packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; HEADROOM + packet.len() + 128];
    f[HEADROOM..HEADROOM + packet.len()].copy_from_slice(packet);
    f
}

/// Payload lengths exercising every padding remainder and a large packet.
pub const PAYLOAD_LENS: &[usize] = &[0, 1, 2, 3, 13, 14, 15, 16, 17, 100, 1000, 1372];

/// Suite with a readable shorthand, for tests that want one.
pub fn gcm128() -> Suite {
    Suite::new(Encryption::AesGcm16 { key_bits: 128 }, Integrity::None).unwrap()
}
