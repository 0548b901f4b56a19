//! ICMPv4/ICMPv6 error builders fed arbitrary "offending" packets and output sizes: no panic;
//! what they write is a valid IP packet with valid checksums whose quote is a prefix of the
//! offending packet and fits the RFC size limits.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rampart_wire::icmp::{self, Icmpv4Error, Icmpv6Error};
use rampart_wire::{AddrPair, Ipv4Packet, Ipv6Packet, checksum};

fuzz_target!(|data: &[u8]| {
    let [selector, room_hi, room_lo, offending @ ..] = data else { return };
    let room = usize::from(u16::from_be_bytes([*room_hi, *room_lo]) % 1600);
    let mut out = vec![0u8; room];
    if selector % 2 == 0 {
        let error = match selector % 8 {
            0 => Icmpv4Error::TtlExceeded,
            2 => Icmpv4Error::FragmentationNeeded { next_hop_mtu: u16::from(*room_lo) * 8 },
            4 => Icmpv4Error::ReassemblyTimeExceeded,
            _ => Icmpv4Error::DestinationUnreachable { code: *room_hi },
        };
        if let Ok(n) = icmp::emit_icmpv4_error(error, Ipv4Addr::new(192, 0, 2, 1), 1, offending, &mut out) {
            assert!(n <= icmp::ICMPV4_MAX_ERROR_LEN && n <= room);
            let original = Ipv4Packet::new_checked(offending).unwrap();
            let ip = Ipv4Packet::new_checked(&out[..n]).unwrap();
            assert!(ip.verify_checksum());
            assert!(checksum::verify(ip.payload()));
            let quote = &ip.payload()[8..];
            assert_eq!(quote, &original.packet()[..quote.len()]);
        }
    } else {
        let error = match selector % 8 {
            1 => Icmpv6Error::HopLimitExceeded,
            3 => Icmpv6Error::PacketTooBig { mtu: u32::from(*room_lo) * 8 },
            5 => Icmpv6Error::ReassemblyTimeExceeded,
            _ => Icmpv6Error::DestinationUnreachable { code: *room_hi },
        };
        let router: Ipv6Addr = "2001:db8::1".parse().unwrap();
        if let Ok(n) = icmp::emit_icmpv6_error(error, router, offending, &mut out) {
            assert!(n <= icmp::ICMPV6_MAX_ERROR_LEN && n <= room);
            let original = Ipv6Packet::new_checked(offending).unwrap();
            let ip = Ipv6Packet::new_checked(&out[..n]).unwrap();
            let pair = AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() };
            assert_eq!(pair.pseudo_header(58, ip.payload().len() as u32).add_bytes(ip.payload()).finish(), 0);
            let quote = &ip.payload()[8..];
            assert_eq!(quote, &original.packet()[..quote.len()]);
        }
    }
});
