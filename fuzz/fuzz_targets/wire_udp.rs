//! UDP view: no panic on any input; the checksum it computes verifies, over IPv4 and IPv6
//! pseudo-headers taken from the input; a parsed `Repr` emits the same header back.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use rampart_wire::{AddrPair, UdpChecksum, UdpPacket, UdpRepr};

fuzz_target!(|data: &[u8]| {
    if data.len() < 32 {
        return;
    }
    let (addrs, data) = data.split_at(32);
    let v6 = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap());
    let v4 = |b: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap());
    let pairs = [
        AddrPair::V4 { src: v4(&addrs[..4]), dst: v4(&addrs[4..8]) },
        AddrPair::V6 { src: v6(&addrs[..16]), dst: v6(&addrs[16..]) },
    ];
    let Ok(packet) = UdpPacket::new_checked(data) else { return };
    let _ = (packet.src_port(), packet.dst_port(), packet.checksum(), packet.payload());
    for pair in pairs {
        let verified = packet.verify_checksum(&pair);
        assert_eq!(UdpRepr::parse(&packet, &pair).is_ok(), verified);
        let len = usize::from(packet.len());
        let mut copy = data[..len].to_vec();
        let repr = UdpRepr { src_port: packet.src_port(), dst_port: packet.dst_port(), payload_len: len - 8 };
        copy[..8].fill(0);
        assert_eq!(repr.emit(&mut copy, UdpChecksum::Compute(pair)), Ok(8));
        let emitted = UdpPacket::new_checked(&copy[..]).expect("emitted datagram checks");
        assert!(emitted.verify_checksum(&pair));
        assert_eq!(UdpRepr::parse(&emitted, &pair), Ok(repr));
    }
});
