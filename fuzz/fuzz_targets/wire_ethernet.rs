//! Ethernet/VLAN view: no panic on any input; a parsed header written back by its `Repr` is the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wire::{EthernetFrame, EthernetRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else { return };
    let _ = (frame.dst_addr(), frame.src_addr(), frame.vlan(), frame.service_vlan(), frame.ethertype());
    assert_eq!(frame.header_len() + frame.payload().len(), data.len());
    let repr = EthernetRepr::parse(&frame).expect("a checked frame parses");
    let mut out = [0u8; 22];
    let n = repr.emit(&mut out).expect("a parsed repr emits");
    assert_eq!(&out[..n], &data[..frame.header_len()]);
});
