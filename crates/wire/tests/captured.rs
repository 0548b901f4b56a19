//! Packets built by scapy 2.8.0 (an independent implementation) and pasted here as hex: the
//! views must read every field scapy wrote, the checksums scapy computed must verify, and the
//! `Repr`s must write the same bytes back. `captured_gen.py` next to this file holds the scapy
//! commands.

use std::net::{Ipv4Addr, Ipv6Addr};

use rampart_wire::checksum::{self, AddrPair};
use rampart_wire::icmp::{self, Icmpv4Error, Icmpv6Error};
use rampart_wire::{
    Error, EspPacket, EspRepr, EthernetAddress, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr, Ports, UdpChecksum, UdpEncap, UdpPacket, UdpRepr, VlanTag, ethernet, ip_protocol, ipv6, ports, udp_encap,
};

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

// Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")/Dot1Q(prio=3, vlan=100)/
// IP(src="192.0.2.1", dst="198.51.100.2", id=0x1c46, flags="DF", ttl=64)/
// UDP(sport=4500, dport=4500)/ESP(spi=0x1001, seq=5, data=bytes(range(24)))
const P1: &str = "0200000000010200000000028100606408004500003c1c46400040113234c0000201c63364021194119400285ba8\
                  0000100100000005000102030405060708090a0b0c0d0e0f1011121314151617";

#[test]
fn vlan_ipv4_udp_esp() {
    let bytes = hex(P1);
    let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
    assert_eq!(frame.dst_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
    assert_eq!(frame.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 2]));
    assert_eq!(frame.vlan(), Some(VlanTag { pcp: 3, dei: false, vid: 100 }));
    assert_eq!(frame.service_vlan(), None);
    assert_eq!((frame.header_len(), frame.ethertype()), (18, ethernet::ETHERTYPE_IPV4));

    let ip = Ipv4Packet::new_checked(frame.payload()).unwrap();
    assert_eq!((ip.header_len(), ip.total_len(), ip.ident()), (20, 60, 0x1c46));
    assert!(ip.dont_frag() && !ip.more_frags() && !ip.is_fragment());
    assert_eq!((ip.ttl(), ip.protocol(), ip.checksum()), (64, ip_protocol::UDP, 0x3234));
    assert_eq!((ip.src_addr(), ip.dst_addr()), (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 2)));
    assert!(ip.verify_checksum());
    assert_eq!(ip.compute_checksum(), 0x3234);
    let ip_repr = Ipv4Repr::parse(&ip).unwrap();

    let addrs = AddrPair::V4 { src: ip.src_addr(), dst: ip.dst_addr() };
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((udp.src_port(), udp.dst_port(), udp.len(), udp.checksum()), (4500, 4500, 40, 0x5ba8));
    assert!(udp.verify_checksum(&addrs));
    assert_eq!(udp.compute_checksum(&addrs), 0x5ba8);
    let udp_repr = UdpRepr::parse(&udp, &addrs).unwrap();
    assert_eq!(udp_encap::classify(udp.payload()), Ok(UdpEncap::Esp));

    let esp = EspPacket::new_checked(udp.payload()).unwrap();
    assert_eq!((esp.spi(), esp.seq_number()), (0x1001, 5));
    assert_eq!(esp.payload(), (0u8..24).collect::<Vec<_>>());
    let esp_repr = EspRepr::parse(&esp).unwrap();

    // Written back by the Reprs, the frame is byte for byte what scapy produced.
    let eth_repr = EthernetRepr::parse(&frame).unwrap();
    let mut out = vec![0u8; bytes.len()];
    let mut at = eth_repr.emit(&mut out).unwrap();
    let ip_at = at;
    at += ip_repr.emit(&mut out[at..]).unwrap();
    let udp_at = at;
    at += 8;
    at += esp_repr.emit(&mut out[at..]).unwrap();
    out[at..].copy_from_slice(&(0u8..24).collect::<Vec<_>>());
    udp_repr.emit(&mut out[udp_at..], UdpChecksum::Compute(addrs)).unwrap();
    assert_eq!(out, bytes);
    // And the forwarding step keeps the checksum right.
    let mut ip = Ipv4Packet::new_checked(&mut out[ip_at..]).unwrap();
    assert_eq!(ip.decrement_ttl(), Some(63));
    assert!(ip.verify_checksum());
}

// IP(src="10.1.2.3", dst="10.4.5.6", id=1, ttl=1, options=[IPOption_Router_Alert()])/
// ICMP(type=8, id=0x42, seq=1)/b"ping"
const P2: &str = "4600002400010000010109c70a0102030a04050694040000080018ec0042000170696e67";

#[test]
fn ipv4_with_options() {
    let bytes = hex(P2);
    let mut copy = bytes.clone();
    let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!((ip.header_len(), ip.total_len(), ip.ttl(), ip.protocol()), (24, 36, 1, ip_protocol::ICMP));
    assert_eq!(ip.options(), &[0x94, 0x04, 0x00, 0x00]);
    assert!(ip.verify_checksum());
    assert_eq!(ip.payload(), &hex("080018ec0042000170696e67")[..]);
    assert!(checksum::verify(ip.payload()));
    assert_eq!(Ipv4Repr::parse(&ip).unwrap().payload_len, 12);
    // TTL 1 must not be forwarded; nothing changes.
    assert_eq!(Ipv4Packet::new_checked(&mut copy[..]).unwrap().decrement_ttl(), None);
    assert_eq!(copy, bytes);
    // Each shorter buffer is truncated.
    for n in 0..bytes.len() {
        assert_eq!(Ipv4Packet::new_checked(&bytes[..n]).unwrap_err(), Error::Truncated);
    }
    // An echo request may get Time Exceeded; the short packet is quoted whole.
    let mut out = [0u8; 600];
    let n = icmp::emit_icmpv4_error(Icmpv4Error::TtlExceeded, Ipv4Addr::new(10, 0, 0, 1), 0, &bytes, &mut out).unwrap();
    assert_eq!(n, 28 + 36);
    assert_eq!(&out[28..n], &bytes[..]);
}

// Ether(dst="33:33:00:00:00:01", src="02:00:00:00:00:03")/Dot1AD(vlan=10, prio=5)/Dot1Q(vlan=20)/
// IPv6(src="2001:db8::1", dst="2001:db8:1::2", hlim=17, tc=0x28, fl=0xbeef)/IPv6ExtHdrHopByHop()/
// IPv6ExtHdrFragment(offset=0, m=1, id=0x12345678)/UDP(sport=5353, dport=53)/b"query"
const P3: &str = "33330000000102000000000388a8a00a8100001486dd6280beef001d001120010db8000000000000000000000001\
                  20010db80001000000000000000000022c00010400000000110000011234567814e90035000d3f587175657279";

#[test]
fn qinq_ipv6_extension_headers() {
    let bytes = hex(P3);
    let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
    assert!(frame.dst_addr().is_multicast());
    assert_eq!(frame.service_vlan(), Some(VlanTag { pcp: 5, dei: false, vid: 10 }));
    assert_eq!(frame.vlan(), Some(VlanTag { pcp: 0, dei: false, vid: 20 }));
    assert_eq!((frame.vlan_count(), frame.header_len(), frame.ethertype()), (2, 22, ethernet::ETHERTYPE_IPV6));
    let mut out = vec![0u8; 22];
    EthernetRepr::parse(&frame).unwrap().emit(&mut out).unwrap();
    assert_eq!(out, bytes[..22]);

    let ip = Ipv6Packet::new_checked(frame.payload()).unwrap();
    assert_eq!((ip.traffic_class(), ip.flow_label(), ip.hop_limit()), (0x28, 0xbeef, 17));
    assert_eq!((ip.payload_len(), ip.next_header()), (29, ip_protocol::HOPOPT));
    assert_eq!(ip.dst_addr(), "2001:db8:1::2".parse::<Ipv6Addr>().unwrap());
    let upper = ip.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT).unwrap();
    assert_eq!((upper.protocol, upper.offset, upper.extensions), (ip_protocol::UDP, 56, 2));
    let frag = upper.fragment.unwrap();
    assert_eq!((frag.offset, frag.more_frags, frag.ident), (0, true, 0x12345678));
    assert!(upper.is_fragment());

    let udp = UdpPacket::new_checked(ip.upper_layer_payload(&upper)).unwrap();
    assert!(udp.verify_checksum(&AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() }));
    assert_eq!(udp.payload(), b"query");
    assert_eq!(ports::ports(upper.protocol, ip.upper_layer_payload(&upper)), Some(Ports { src: 5353, dst: 53 }));
}

// IPv6(src="2001:db8::a", dst="2001:db8::b")/IPv6ExtHdrRouting(addresses=["2001:db8::c"], segleft=0)/
// IPv6ExtHdrDestOpt()/TCP(sport=40000, dport=443, flags="S", seq=1)
const P4: &str = "6000000000342b4020010db800000000000000000000000a20010db800000000000000000000000b3c02000000000000\
                  20010db800000000000000000000000c06000104000000009c4001bb000000010000000050022000965f0000";

#[test]
fn ipv6_routing_and_destination_options() {
    let bytes = hex(P4);
    let ip = Ipv6Packet::new_checked(&bytes[..]).unwrap();
    let upper = ip.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT).unwrap();
    assert_eq!((upper.protocol, upper.offset, upper.extensions, upper.fragment), (ip_protocol::TCP, 72, 2, None));
    assert!(!upper.is_fragment());
    let tcp = ip.upper_layer_payload(&upper);
    assert_eq!(ports::ports(upper.protocol, tcp), Some(Ports { src: 40000, dst: 443 }));
    let pair = AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() };
    assert_eq!(pair.pseudo_header(ip_protocol::TCP, tcp.len() as u32).add_bytes(tcp).finish(), 0);
    assert_eq!(ip.upper_layer(1).unwrap_err(), Error::TooManyExtensions);
    let mut out = [0u8; 40];
    Ipv6Repr::parse(&ip).unwrap().emit(&mut out).unwrap();
    assert_eq!(out, bytes[..40]);
}

// IPv6(src="fe80::1", dst="fe80::2")/UDP(sport=500, dport=500)/b"ike-ish payload!"
const P5: &str = "6000000000181140fe800000000000000000000000000001fe80000000000000000000000000000201f401f40018a154\
                  696b652d697368207061796c6f616421";

#[test]
fn ipv6_udp_checksum() {
    let bytes = hex(P5);
    let ip = Ipv6Packet::new_checked(&bytes[..]).unwrap();
    let addrs = AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() };
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.checksum(), 0xa154);
    let repr = UdpRepr::parse(&udp, &addrs).unwrap();
    assert_eq!(repr, UdpRepr { src_port: 500, dst_port: 500, payload_len: 16 });
    let mut out = ip.payload().to_vec();
    out[..8].fill(0);
    repr.emit(&mut out, UdpChecksum::Compute(addrs)).unwrap();
    assert_eq!(out, ip.payload());
}

// IP(src="172.16.0.1", dst="172.16.0.2", id=99)/UDP(sport=12345, dport=4500)/b"\x00\x00\x00\x00odd"
const P6: &str = "450000230063000040112244ac100001ac10000230391194000f927a000000006f6464";

#[test]
fn ipv4_udp_odd_length_non_esp_marker() {
    let bytes = hex(P6);
    let ip = Ipv4Packet::new_checked(&bytes[..]).unwrap();
    let addrs = AddrPair::V4 { src: ip.src_addr(), dst: ip.dst_addr() };
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!((udp.len(), udp.checksum()), (15, 0x927a));
    assert!(udp.verify_checksum(&addrs));
    assert_eq!(udp.compute_checksum(&addrs), 0x927a);
    assert_eq!(udp_encap::classify(udp.payload()), Ok(UdpEncap::Ike));
    assert_eq!(&udp.payload()[udp_encap::NON_ESP_MARKER_LEN..], b"odd");
}

/// The 1400-byte IPv4/UDP packet of o7: scapy's header bytes, then the payload pattern.
// IP(src="198.51.100.1", dst="203.0.113.9", id=0x4242, ttl=1, flags="DF")/UDP(sport=1111, dport=2222)/
// bytes((i*7)&0xff for i in range(1372))
fn o7() -> Vec<u8> {
    let mut b = hex("45000578424240000111cbf4c6336401cb007109045708ae056411b3");
    b.extend((0..1372u32).map(|i| (i * 7) as u8));
    b
}

#[test]
fn icmpv4_time_exceeded_matches_scapy() {
    // IP(src="192.0.2.254", dst="198.51.100.1", id=7, tos=0xc0, ttl=64)/ICMP(type=11, code=0)/o7[:548]
    let original = o7();
    let mut out = [0u8; 1500];
    let n = icmp::emit_icmpv4_error(Icmpv4Error::TtlExceeded, Ipv4Addr::new(192, 0, 2, 254), 7, &original, &mut out)
        .unwrap();
    assert_eq!(n, 576);
    assert_eq!(out[..28], hex("45c002400007000040018ac3c00002fec63364010b00fbf300000000")[..]);
    assert_eq!(out[28..n], original[..548]);
}

#[test]
fn icmpv4_fragmentation_needed_matches_scapy() {
    // IP(src="192.0.2.254", dst="198.51.100.1", id=8, tos=0xc0, ttl=64)/
    // ICMP(type=3, code=4, nexthopmtu=1400)/o7[:548]
    let original = o7();
    let mut out = [0u8; 576];
    let error = Icmpv4Error::FragmentationNeeded { next_hop_mtu: 1400 };
    let n = icmp::emit_icmpv4_error(error, Ipv4Addr::new(192, 0, 2, 254), 8, &original, &mut out).unwrap();
    assert_eq!(n, 576);
    assert_eq!(out[..28], hex("45c002400008000040018ac2c00002fec63364010304fe7700000578")[..]);
    assert_eq!(out[28..n], original[..548]);
}

#[test]
fn icmpv6_packet_too_big_matches_scapy() {
    // IPv6(src="2001:db8:1::1", dst="2001:db8:2::2", hlim=1)/UDP(sport=3333, dport=4444)/
    // bytes((i*13)&0xff for i in range(1452))
    let mut original =
        hex("6000000005b4110120010db800010000000000000000000120010db80002000000000000000000020d05115c05b458b1");
    original.extend((0..1452u32).map(|i| (i * 13) as u8));
    // IPv6(src="2001:db8::fe", dst="2001:db8:1::1", hlim=64)/ICMPv6PacketTooBig(mtu=1400)/o9[:1232]
    let mut out = [0u8; 1500];
    let router: Ipv6Addr = "2001:db8::fe".parse().unwrap();
    let n = icmp::emit_icmpv6_error(Icmpv6Error::PacketTooBig { mtu: 1400 }, router, &original, &mut out).unwrap();
    assert_eq!(n, 1280);
    let expected =
        hex("6000000004d83a4020010db80000000000000000000000fe20010db800010000000000000000000102002ee900000578");
    assert_eq!(out[..48], expected[..]);
    assert_eq!(out[48..n], original[..1232]);
}

#[test]
fn icmpv6_time_exceeded_matches_scapy() {
    // IPv6(src="2001:db8:1::1", dst="2001:db8:2::2", hlim=1)/ICMPv6EchoRequest(id=1, seq=2, data=b"abc")
    let original =
        hex("60000000000b3a0120010db800010000000000000000000120010db800020000000000000000000280005fdc00010002616263");
    // IPv6(src="2001:db8::fe", dst="2001:db8:1::1", hlim=64)/ICMPv6TimeExceeded(code=0)/o10
    let expected = hex(
        "60000000003b3a4020010db80000000000000000000000fe20010db8000100000000000000000001030006510000000060000000000b\
         3a0120010db800010000000000000000000120010db800020000000000000000000280005fdc00010002616263",
    );
    let mut out = [0u8; 1280];
    let router: Ipv6Addr = "2001:db8::fe".parse().unwrap();
    let n = icmp::emit_icmpv6_error(Icmpv6Error::HopLimitExceeded, router, &original, &mut out).unwrap();
    assert_eq!(out[..n], expected[..]);
}
