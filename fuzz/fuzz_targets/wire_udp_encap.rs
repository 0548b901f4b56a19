//! RFC 3948 classification of UDP/4500 payloads: no panic, and the same answer as the rules
//! written out plainly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wire::{Error, UdpEncap, udp_encap};

fuzz_target!(|data: &[u8]| {
    let expected = if data == [0xff] {
        Ok(UdpEncap::Keepalive)
    } else if data.len() >= 4 && data[..4] == [0; 4] {
        Ok(UdpEncap::Ike)
    } else if data.len() >= 8 {
        Ok(UdpEncap::Esp)
    } else {
        Err(Error::Malformed)
    };
    assert_eq!(udp_encap::classify(data), expected);
});
