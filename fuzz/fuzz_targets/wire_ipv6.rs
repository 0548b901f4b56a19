//! IPv6 view and extension-header walker: no panic on any input, the walk stays inside the
//! packet and within its limit; a parsed `Repr` emits and parses back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wire::{Ipv6Packet, Ipv6Repr, ports};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, data)) = data.split_first() else { return };
    let limit = usize::from(limit % 16);
    let Ok(packet) = Ipv6Packet::new_checked(data) else { return };
    let _ = (packet.traffic_class(), packet.flow_label(), packet.hop_limit(), packet.src_addr(), packet.dst_addr());
    assert_eq!(packet.payload().len(), usize::from(packet.payload_len()));
    if let Ok(upper) = packet.upper_layer(limit) {
        assert!(upper.extensions <= limit);
        assert!(upper.offset <= packet.total_len());
        let rest = packet.upper_layer_payload(&upper);
        assert_eq!(rest.len(), packet.total_len() - upper.offset);
        let _ = (upper.is_fragment(), ports::ports(upper.protocol, rest));
    }
    let repr = Ipv6Repr::parse(&packet).expect("a checked packet parses");
    let mut out = vec![0u8; 40 + repr.payload_len];
    assert_eq!(repr.emit(&mut out), Ok(40));
    assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&out[..]).expect("emitted header checks")), Ok(repr));
});
