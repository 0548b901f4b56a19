//! Property tests: no view or parser panics on arbitrary bytes, every `Repr` survives
//! emit -> parse, every cut of a valid packet is `Truncated`, and the IPv6 walker agrees with
//! the chain it was built from.

use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;
use rampart_wire::checksum::{self, AddrPair};
use rampart_wire::icmp::{self, Icmpv4Error, Icmpv6Error};
use rampart_wire::{
    Error, EspPacket, EspRepr, EspTrailer, EthernetAddress, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr, UdpChecksum, UdpEncap, UdpPacket, UdpRepr, VlanTag, ethernet, ip_protocol, ipv6, ports,
    udp_encap,
};

/// Arbitrary bytes, and arbitrary bytes with the first bytes nudged towards a plausible header
/// of the given kind so that `new_checked` passes often enough to exercise the accessors.
fn bytes_like(patch: fn(&mut [u8], u16)) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..200),
        (vec(any::<u8>(), 0..200), any::<u16>()).prop_map(move |(mut b, r)| {
            patch(&mut b, r);
            b
        }),
    ]
}

fn patch_ethernet(b: &mut [u8], r: u16) {
    let tpids = [ethernet::TPID_VLAN, ethernet::TPID_QINQ, ethernet::ETHERTYPE_IPV4];
    for (i, at) in [12usize, 16, 20].into_iter().enumerate() {
        if b.len() >= at + 2 {
            b[at..at + 2].copy_from_slice(&tpids[(usize::from(r) >> (2 * i)) % 3].to_be_bytes());
        }
    }
}

fn patch_ipv4(b: &mut [u8], r: u16) {
    if b.len() >= 4 {
        let ihl = 5 + (r % 11) as u8;
        b[0] = 0x40 | ihl;
        let total = (usize::from(r >> 4) % (b.len() + 8)) as u16;
        b[2..4].copy_from_slice(&total.to_be_bytes());
    }
}

fn patch_ipv6(b: &mut [u8], r: u16) {
    if b.len() >= 7 {
        b[0] = 0x60 | (b[0] & 0x0f);
        let len = (usize::from(r) % b.len().max(41).saturating_sub(39)) as u16;
        b[4..6].copy_from_slice(&len.to_be_bytes());
        b[6] = [0, 43, 44, 60, 17, 6, 58][usize::from(r >> 12) % 7];
    }
}

fn patch_udp(b: &mut [u8], r: u16) {
    if b.len() >= 6 {
        let len = (usize::from(r) % (b.len() + 4)) as u16;
        b[4..6].copy_from_slice(&len.to_be_bytes());
    }
}

fn ipv4_addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn ipv6_addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn addr_pair() -> impl Strategy<Value = AddrPair> {
    prop_oneof![
        (ipv4_addr(), ipv4_addr()).prop_map(|(src, dst)| AddrPair::V4 { src, dst }),
        (ipv6_addr(), ipv6_addr()).prop_map(|(src, dst)| AddrPair::V6 { src, dst }),
    ]
}

fn vlan_tag() -> impl Strategy<Value = VlanTag> {
    (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| VlanTag { pcp, dei, vid })
}

fn ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    (
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        proptest::option::of(vlan_tag()),
        proptest::option::of(vlan_tag()),
        any::<u16>(),
    )
        .prop_filter("EtherType must not be a TPID", |t| t.4 != ethernet::TPID_VLAN && t.4 != ethernet::TPID_QINQ)
        .prop_map(|(d, s, service_vlan, vlan, ethertype)| EthernetRepr {
            dst_addr: EthernetAddress(d),
            src_addr: EthernetAddress(s),
            service_vlan,
            vlan,
            ethertype,
        })
}

fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    (
        (ipv4_addr(), ipv4_addr(), any::<u8>(), 0usize..=65515, any::<u8>()),
        (0u8..64, 0u8..4, any::<u16>(), any::<bool>(), any::<bool>(), 0u16..8192),
    )
        .prop_map(|((src_addr, dst_addr, protocol, payload_len, ttl), (dscp, ecn, ident, df, mf, off))| Ipv4Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl,
            dscp,
            ecn,
            ident,
            dont_frag: df,
            more_frags: mf,
            frag_offset: off * 8,
        })
}

fn ipv6_repr() -> impl Strategy<Value = Ipv6Repr> {
    (ipv6_addr(), ipv6_addr(), any::<u8>(), 0usize..=65535, any::<u8>(), any::<u8>(), 0u32..0x10_0000).prop_map(
        |(src_addr, dst_addr, next_header, payload_len, hop_limit, traffic_class, flow_label)| Ipv6Repr {
            src_addr,
            dst_addr,
            next_header,
            payload_len,
            hop_limit,
            traffic_class,
            flow_label,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // ---- arbitrary bytes: checked views never panic ----

    #[test]
    fn ethernet_views_never_panic(b in bytes_like(patch_ethernet)) {
        if let Ok(f) = EthernetFrame::new_checked(&b[..]) {
            let _ = (f.dst_addr(), f.src_addr(), f.vlan(), f.service_vlan(), f.ethertype(), f.payload(), f.vlan_count());
            prop_assert_eq!(f.header_len() + f.payload().len(), b.len());
            // Written back, the header is byte for byte the one read.
            let repr = EthernetRepr::parse(&f).unwrap();
            let mut out = vec![0u8; repr.buffer_len()];
            prop_assert_eq!(repr.emit(&mut out), Ok(f.header_len()));
            prop_assert_eq!(&out[..], &b[..f.header_len()]);
        }
    }

    #[test]
    fn ipv4_views_never_panic(b in bytes_like(patch_ipv4)) {
        if let Ok(p) = Ipv4Packet::new_checked(&b[..]) {
            let _ = (p.version(), p.dscp(), p.ecn(), p.ident(), p.dont_frag(), p.more_frags(), p.frag_offset());
            let _ = (p.is_fragment(), p.ttl(), p.protocol(), p.checksum(), p.src_addr(), p.dst_addr());
            let _ = (p.header(), p.options(), p.packet(), p.verify_checksum(), p.compute_checksum());
            prop_assert_eq!(p.header_len() + p.payload().len(), usize::from(p.total_len()));
            match Ipv4Repr::parse(&p) {
                Ok(repr) => prop_assert!(p.verify_checksum() && repr.payload_len == p.payload().len()),
                Err(e) => prop_assert_eq!(e, Error::Checksum),
            }
            let mut copy = b.clone();
            let mut p = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
            p.fill_checksum();
            let ok = p.verify_checksum();
            prop_assert!(ok);
            if let Some(ttl) = p.decrement_ttl() {
                prop_assert_eq!(ttl, b[8] - 1);
                prop_assert!(p.verify_checksum());
            }
            let _ = (p.options_mut().len(), p.payload_mut().len());
        }
    }

    #[test]
    fn ipv6_views_never_panic(b in bytes_like(patch_ipv6), limit in 0usize..12) {
        if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
            let _ = (p.version(), p.traffic_class(), p.flow_label(), p.next_header(), p.hop_limit());
            let _ = (p.src_addr(), p.dst_addr(), p.packet());
            prop_assert_eq!(p.payload().len(), usize::from(p.payload_len()));
            prop_assert_eq!(Ipv6Repr::parse(&p).unwrap().payload_len, usize::from(p.payload_len()));
            match p.upper_layer(limit) {
                Ok(ul) => {
                    prop_assert!(ul.extensions <= limit);
                    prop_assert!(ul.offset <= p.total_len());
                    let rest = p.upper_layer_payload(&ul);
                    prop_assert_eq!(rest.len(), p.total_len() - ul.offset);
                    let _ = (ul.is_fragment(), ports::ports(ul.protocol, rest));
                }
                Err(e) => prop_assert!(matches!(e, Error::Truncated | Error::Malformed | Error::TooManyExtensions)),
            }
        }
    }

    #[test]
    fn udp_views_never_panic(b in bytes_like(patch_udp), addrs in addr_pair()) {
        if let Ok(p) = UdpPacket::new_checked(&b[..]) {
            let _ = (p.src_port(), p.dst_port(), p.checksum(), p.is_empty());
            prop_assert_eq!(p.payload().len() + 8, usize::from(p.len()));
            let computed = p.compute_checksum(&addrs);
            prop_assert_ne!(computed, 0);
            prop_assert_eq!(p.verify_checksum(&addrs), UdpRepr::parse(&p, &addrs).is_ok());
            let mut copy = b.clone();
            let mut p = UdpPacket::new_checked(&mut copy[..]).unwrap();
            p.fill_checksum(&addrs);
            prop_assert!(p.verify_checksum(&addrs));
        }
    }

    #[test]
    fn esp_views_and_trailer_never_panic(b in vec(any::<u8>(), 0..300)) {
        if let Ok(p) = EspPacket::new_checked(&b[..]) {
            prop_assert_eq!(p.payload().len() + 8, b.len());
            match EspRepr::parse(&p) {
                Ok(r) => prop_assert!(r.spi != 0 && r.seq_number == p.seq_number()),
                Err(e) => prop_assert!(e == Error::Malformed && p.spi() == 0),
            }
        }
        if let Ok(t) = EspTrailer::parse(&b) {
            // The trailer it found, written back, is the tail it read.
            prop_assert_eq!(t.total_len(), b.len());
            let mut out = b.clone();
            out[t.payload_len..].fill(0xee);
            prop_assert_eq!(t.emit(&mut out), Ok(b.len()));
            prop_assert_eq!(out, b);
        }
    }

    #[test]
    fn udp_encap_matches_rfc3948_model(b in prop_oneof![vec(any::<u8>(), 0..12), vec(0u8..2, 0..12)]) {
        let expected = if b == [0xff] {
            Ok(UdpEncap::Keepalive)
        } else if b.len() >= 4 && b[..4] == [0, 0, 0, 0] {
            Ok(UdpEncap::Ike)
        } else if b.len() >= 8 {
            Ok(UdpEncap::Esp)
        } else {
            Err(Error::Malformed)
        };
        prop_assert_eq!(udp_encap::classify(&b), expected);
    }

    #[test]
    fn ports_match_model(protocol in any::<u8>(), b in vec(any::<u8>(), 0..8)) {
        let got = ports::ports(protocol, &b);
        let has = [ip_protocol::TCP, ip_protocol::UDP, ip_protocol::SCTP].contains(&protocol);
        prop_assert_eq!(got.is_some(), has && b.len() >= 4);
        if let Some(p) = got {
            prop_assert_eq!((p.src, p.dst), (u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]])));
        }
    }

    #[test]
    fn icmpv4_errors_never_panic_and_verify(b in bytes_like(patch_ipv4), room in 0usize..700, mtu in any::<u16>()) {
        let mut out = vec![0u8; room];
        let error = if mtu % 2 == 0 { Icmpv4Error::TtlExceeded } else { Icmpv4Error::FragmentationNeeded { next_hop_mtu: mtu } };
        if let Ok(n) = icmp::emit_icmpv4_error(error, Ipv4Addr::new(192, 0, 2, 1), 9, &b, &mut out) {
            let original = Ipv4Packet::new_checked(&b[..]).unwrap();
            prop_assert!(n <= 576 && n <= room);
            let ip = Ipv4Packet::new_checked(&out[..n]).unwrap();
            prop_assert!(ip.verify_checksum());
            prop_assert_eq!(ip.dst_addr(), original.src_addr());
            prop_assert!(checksum::verify(ip.payload()));
            let quote = &ip.payload()[8..];
            prop_assert_eq!(quote, &original.packet()[..quote.len()]);
            prop_assert!(quote.len() >= original.packet().len().min(original.header_len() + 8));
        }
    }

    #[test]
    fn icmpv6_errors_never_panic_and_verify(b in bytes_like(patch_ipv6), room in 0usize..1400, mtu in any::<u32>()) {
        let mut out = vec![0u8; room];
        let error = if mtu % 2 == 0 { Icmpv6Error::HopLimitExceeded } else { Icmpv6Error::PacketTooBig { mtu } };
        if let Ok(n) = icmp::emit_icmpv6_error(error, "2001:db8::1".parse().unwrap(), &b, &mut out) {
            let original = Ipv6Packet::new_checked(&b[..]).unwrap();
            prop_assert!(n <= 1280 && n <= room);
            let ip = Ipv6Packet::new_checked(&out[..n]).unwrap();
            prop_assert_eq!(ip.dst_addr(), original.src_addr());
            let pair = AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() };
            prop_assert_eq!(pair.pseudo_header(58, ip.payload().len() as u32).add_bytes(ip.payload()).finish(), 0);
            let quote = &ip.payload()[8..];
            prop_assert_eq!(quote, &original.packet()[..quote.len()]);
        }
    }

    #[test]
    fn icmpv4_error_quote_length_model(
        src in 0x0100_0000u32..0xe000_0000, dst in 0x0100_0000u32..0xe000_0000,
        payload_len in 0usize..1500, room in 0usize..700,
    ) {
        let (src, dst) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        prop_assume!(!src.is_loopback() && !dst.is_loopback());
        let repr = Ipv4Repr {
            src_addr: src, dst_addr: dst, protocol: ip_protocol::UDP, payload_len, ttl: 1, dscp: 0, ecn: 0,
            ident: 0, dont_frag: true, more_frags: false, frag_offset: 0,
        };
        let mut offending = vec![0x77u8; repr.total_len()];
        repr.emit(&mut offending).unwrap();
        let mut out = vec![0u8; room];
        let got = icmp::emit_icmpv4_error(Icmpv4Error::TtlExceeded, Ipv4Addr::new(192, 0, 2, 1), 0, &offending, &mut out);
        let total = offending.len();
        let expected = if room >= 28 + total.min(28) { Ok(28 + total.min(548).min(room - 28)) } else { Err(Error::BufferTooSmall) };
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn icmpv6_error_quote_length_model(src in any::<u128>(), payload_len in 0usize..1500, room in 0usize..1400) {
        let src = Ipv6Addr::from((src & !(7 << 125)) | 1 << 125); // 2000::/3: global unicast
        let repr = Ipv6Repr {
            src_addr: src, dst_addr: "2001:db8::2".parse().unwrap(), next_header: ip_protocol::TCP, payload_len,
            hop_limit: 1, traffic_class: 0, flow_label: 0,
        };
        let mut offending = vec![0x77u8; 40 + payload_len];
        repr.emit(&mut offending).unwrap();
        let mut out = vec![0u8; room];
        let got = icmp::emit_icmpv6_error(Icmpv6Error::HopLimitExceeded, "2001:db8::1".parse().unwrap(), &offending, &mut out);
        let total = offending.len();
        let expected = if room >= 48 + total.min(48) { Ok(48 + total.min(1232).min(room - 48)) } else { Err(Error::BufferTooSmall) };
        prop_assert_eq!(got, expected);
    }

    // ---- Repr -> emit -> parse ----

    #[test]
    fn ethernet_round_trip(repr in ethernet_repr(), payload in vec(any::<u8>(), 0..20)) {
        let mut buf = vec![0u8; repr.buffer_len()];
        prop_assert_eq!(repr.emit(&mut buf), Ok(repr.buffer_len()));
        buf.extend_from_slice(&payload);
        let f = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&f), Ok(repr));
        prop_assert_eq!(f.payload(), &payload[..]);
        for n in 0..repr.buffer_len() {
            prop_assert_eq!(EthernetFrame::new_checked(&buf[..n]).unwrap_err(), Error::Truncated);
        }
    }

    #[test]
    fn ipv4_round_trip(repr in ipv4_repr()) {
        let payload_len = repr.payload_len.min(64);
        let repr = Ipv4Repr { payload_len, ..repr };
        let mut buf = vec![0u8; repr.total_len()];
        prop_assert_eq!(repr.emit(&mut buf), Ok(20));
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&p), Ok(repr));
        prop_assert_eq!(p.is_fragment(), repr.more_frags || repr.frag_offset != 0);
        for n in 0..buf.len() {
            prop_assert_eq!(Ipv4Packet::new_checked(&buf[..n]).unwrap_err(), Error::Truncated);
        }
    }

    #[test]
    fn ipv4_emit_header_only(repr in ipv4_repr()) {
        // Large payload lengths: the header alone is written and reads back.
        let mut buf = vec![0u8; 20];
        prop_assert_eq!(repr.emit(&mut buf), Ok(20));
        prop_assert!(checksum::verify(&buf));
        prop_assert_eq!(u16::from_be_bytes([buf[2], buf[3]]) as usize, repr.total_len());
    }

    #[test]
    fn ipv6_round_trip(repr in ipv6_repr()) {
        let repr = Ipv6Repr { payload_len: repr.payload_len.min(64), ..repr };
        let mut buf = vec![0u8; 40 + repr.payload_len];
        prop_assert_eq!(repr.emit(&mut buf), Ok(40));
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv6Repr::parse(&p), Ok(repr));
        for n in 0..buf.len() {
            prop_assert_eq!(Ipv6Packet::new_checked(&buf[..n]).unwrap_err(), Error::Truncated);
        }
    }

    #[test]
    fn udp_round_trip(src_port in any::<u16>(), dst_port in any::<u16>(), payload in vec(any::<u8>(), 0..64),
                      addrs in addr_pair(), zero in any::<bool>()) {
        let repr = UdpRepr { src_port, dst_port, payload_len: payload.len() };
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(&payload);
        let mode = if zero && addrs.is_ipv4() { UdpChecksum::Zero } else { UdpChecksum::Compute(addrs) };
        prop_assert_eq!(repr.emit(&mut buf, mode), Ok(8));
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&p, &addrs), Ok(repr));
        prop_assert_eq!(p.payload(), &payload[..]);
        for n in 0..buf.len() {
            prop_assert_eq!(UdpPacket::new_checked(&buf[..n]).unwrap_err(), Error::Truncated);
        }
        // Any single flipped bit is caught by a computed checksum.
        if let UdpChecksum::Compute(_) = mode {
            let mut bad = buf.clone();
            let bit = (usize::from(src_port) ^ usize::from(dst_port)) % (bad.len() * 8);
            bad[bit / 8] ^= 1 << (bit % 8);
            if let Ok(p) = UdpPacket::new_checked(&bad[..])
                && usize::from(p.len()) == buf.len()
                && p.checksum() != 0
            {
                prop_assert!(!p.verify_checksum(&addrs));
            }
        }
    }

    #[test]
    fn esp_round_trip(spi in 1u32.., seq_number in any::<u32>(), payload in vec(any::<u8>(), 0..32)) {
        let repr = EspRepr { spi, seq_number };
        let mut buf = vec![0u8; 8];
        prop_assert_eq!(repr.emit(&mut buf), Ok(8));
        buf.extend_from_slice(&payload);
        let p = EspPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EspRepr::parse(&p), Ok(repr));
        prop_assert_eq!(p.payload(), &payload[..]);
        for n in 0..8 {
            prop_assert_eq!(EspPacket::new_checked(&buf[..n]).unwrap_err(), Error::Truncated);
        }
    }

    #[test]
    fn esp_trailer_round_trip(payload in vec(any::<u8>(), 0..100), next_header in any::<u8>(), shift in 0u32..9) {
        let alignment = 1usize << shift;
        let t = EspTrailer::new(payload.len(), next_header, alignment).unwrap();
        let effective = alignment.max(4);
        prop_assert_eq!(t.total_len() % effective, 0);
        prop_assert!(usize::from(t.pad_len) < effective);
        let mut buf = payload.clone();
        buf.resize(t.total_len(), 0xaa);
        prop_assert_eq!(t.emit(&mut buf), Ok(t.total_len()));
        prop_assert_eq!(&buf[..payload.len()], &payload[..]);
        prop_assert_eq!(EspTrailer::parse(&buf), Ok(t));
        // Corrupting one padding byte is caught.
        if t.pad_len > 0 {
            let i = payload.len() + usize::from(next_header) % usize::from(t.pad_len);
            buf[i] ^= 0x80;
            prop_assert_eq!(EspTrailer::parse(&buf), Err(Error::BadPadding));
        }
    }

    // ---- the IPv6 walker against the chain it was built from ----

    #[test]
    fn ipv6_walker_matches_the_built_chain(
        kinds in vec((prop_oneof![Just(43u8), Just(60u8), Just(44u8)], 0u8..4), 0..7),
        hop_by_hop in any::<bool>(),
        upper in prop_oneof![Just(6u8), Just(17u8), Just(50u8), Just(58u8), Just(59u8)],
        frag_offset in 0u16..3,
    ) {
        // At most one fragment header, the HBH header only first.
        let mut chain: Vec<(u8, usize)> = Vec::new();
        if hop_by_hop {
            chain.push((0, 8));
        }
        let mut seen_fragment = false;
        for (kind, units) in kinds {
            if kind == 44 {
                if seen_fragment { continue; }
                seen_fragment = true;
                chain.push((44, 8));
            } else {
                chain.push((kind, (usize::from(units) + 1) * 8));
            }
        }
        let mut body = Vec::new();
        let mut fragment_at = None;
        for (i, &(kind, len)) in chain.iter().enumerate() {
            let next = chain.get(i + 1).map_or(upper, |c| c.0);
            let mut h = vec![0u8; len];
            h[0] = next;
            if kind == 44 {
                h[2..4].copy_from_slice(&(frag_offset * 8).to_be_bytes());
                fragment_at = Some(i);
            } else {
                h[1] = (len / 8 - 1) as u8;
            }
            body.extend_from_slice(&h);
        }
        body.extend_from_slice(&[0xab; 8]);
        let first = chain.first().map_or(upper, |c| c.0);
        let repr = Ipv6Repr {
            src_addr: Ipv6Addr::LOCALHOST,
            dst_addr: Ipv6Addr::LOCALHOST,
            next_header: first,
            payload_len: body.len(),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut buf = vec![0u8; 40];
        repr.emit(&mut buf).unwrap();
        buf.extend_from_slice(&body);
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        // A non-first fragment ends the walk right after its fragment header.
        let stop = match fragment_at {
            Some(i) if frag_offset != 0 => i + 1,
            _ => chain.len(),
        };
        let protocol = chain.get(stop).map_or(upper, |c| c.0);
        let offset = 40 + chain[..stop].iter().map(|c| c.1).sum::<usize>();
        let ul = p.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT).unwrap();
        prop_assert_eq!((ul.protocol, ul.offset, ul.extensions), (protocol, offset, stop));
        prop_assert_eq!(ul.fragment.is_some(), fragment_at.is_some_and(|i| i < stop));
        prop_assert_eq!(ul.is_fragment(), fragment_at.is_some() && frag_offset != 0);
        if stop > 0 {
            prop_assert_eq!(p.upper_layer(stop - 1).unwrap_err(), Error::TooManyExtensions);
        }
    }
}
