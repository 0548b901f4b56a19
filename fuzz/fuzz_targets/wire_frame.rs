//! The inbound parse chain of the data plane on one frame: Ethernet/VLAN -> IPv4 or IPv6 (with
//! the extension walk) -> ESP, or UDP/4500 -> keepalive / IKE / ESP, and ports for anything
//! else. No input may panic any step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wire::{
    AddrPair, EspPacket, EthernetFrame, Ipv4Packet, Ipv6Packet, UdpEncap, UdpPacket, ethernet, ip_protocol, ipv6,
    ports, udp_encap,
};

fn upper(protocol: u8, payload: &[u8], addrs: &AddrPair) {
    match protocol {
        ip_protocol::ESP => {
            if let Ok(esp) = EspPacket::new_checked(payload) {
                let _ = (esp.spi(), esp.seq_number(), esp.payload().len());
            }
        }
        ip_protocol::UDP => {
            let Ok(udp) = UdpPacket::new_checked(payload) else { return };
            let _ = udp.verify_checksum(addrs);
            if udp.dst_port() == udp_encap::PORT
                && let Ok(UdpEncap::Esp) = udp_encap::classify(udp.payload())
            {
                let esp = EspPacket::new_checked(udp.payload()).expect("classified ESP has a header");
                assert_ne!(esp.spi(), 0);
            }
        }
        _ => {
            let _ = ports::ports(protocol, payload);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else { return };
    match frame.ethertype() {
        ethernet::ETHERTYPE_IPV4 => {
            let Ok(ip) = Ipv4Packet::new_checked(frame.payload()) else { return };
            if ip.is_fragment() {
                return;
            }
            upper(ip.protocol(), ip.payload(), &AddrPair::V4 { src: ip.src_addr(), dst: ip.dst_addr() });
        }
        ethernet::ETHERTYPE_IPV6 => {
            let Ok(ip) = Ipv6Packet::new_checked(frame.payload()) else { return };
            let Ok(ul) = ip.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT) else { return };
            if ul.is_fragment() {
                return;
            }
            upper(ul.protocol, ip.upper_layer_payload(&ul), &AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() });
        }
        _ => {}
    }
});
