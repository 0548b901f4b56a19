//! IPv4 view: no panic on any input; a parsed `Repr` emits and parses back equal; the TTL
//! decrement keeps a valid checksum valid; port extraction never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wire::{Ipv4Packet, Ipv4Repr, ports};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Ipv4Packet::new_checked(data) else { return };
    let _ = (packet.dscp(), packet.ecn(), packet.ident(), packet.dont_frag(), packet.more_frags());
    let _ = (packet.frag_offset(), packet.is_fragment(), packet.ttl(), packet.src_addr(), packet.dst_addr());
    let _ = (packet.options(), packet.packet(), packet.compute_checksum());
    let _ = ports::ports(packet.protocol(), packet.payload());
    assert_eq!(packet.header_len() + packet.payload().len(), usize::from(packet.total_len()));

    if let Ok(repr) = Ipv4Repr::parse(&packet) {
        let mut out = vec![0u8; repr.total_len()];
        assert_eq!(repr.emit(&mut out), Ok(20));
        let again = Ipv4Packet::new_checked(&out[..]).expect("emitted header checks");
        assert_eq!(Ipv4Repr::parse(&again), Ok(repr));

        let mut copy = data.to_vec();
        let mut p = Ipv4Packet::new_checked(&mut copy[..]).expect("same bytes check");
        if p.decrement_ttl().is_some() {
            assert!(p.verify_checksum());
        }
    }
});
