//! Upper-layer ports for traffic-selector checks (RFC 4301 section 4.4.1.1): TCP, UDP and SCTP
//! all start with a 16-bit source port and a 16-bit destination port.
//!
//! Only the first four bytes of the upper-layer header are read. This module never decides what
//! a missing port means: for a non-initial fragment or a short header the caller gets `None`
//! and applies its own rule (OPAQUE in RFC 4301 terms). Nothing here allocates.

use crate::ip_protocol;

/// Source and destination port of a TCP, UDP or SCTP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
}

/// Whether `protocol` carries ports this module reads (TCP, UDP, SCTP).
pub const fn has_ports(protocol: u8) -> bool {
    matches!(protocol, ip_protocol::TCP | ip_protocol::UDP | ip_protocol::SCTP)
}

/// The ports at the start of `upper_layer`, the upper-layer header of a `protocol` packet.
///
/// `None` when `protocol` has no ports (see [`has_ports`]) or `upper_layer` is shorter than
/// the four bytes that hold them.
pub fn ports(protocol: u8, upper_layer: &[u8]) -> Option<Ports> {
    if !has_ports(protocol) {
        return None;
    }
    match *upper_layer {
        [s0, s1, d0, d1, ..] => Some(Ports { src: u16::from_be_bytes([s0, s1]), dst: u16::from_be_bytes([d0, d1]) }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three() {
        let hdr = [0x01, 0xf4, 0x11, 0x94, 0xff, 0xff];
        for p in [6, 17, 132] {
            assert_eq!(ports(p, &hdr), Some(Ports { src: 500, dst: 4500 }));
            assert_eq!(ports(p, &hdr[..4]), Some(Ports { src: 500, dst: 4500 }));
            for n in 0..4 {
                assert_eq!(ports(p, &hdr[..n]), None);
            }
        }
    }

    #[test]
    fn others_have_none() {
        let hdr = [0x01, 0xf4, 0x11, 0x94];
        for p in [0, 1, 47, 50, 51, 58, 59, 255] {
            assert!(!has_ports(p));
            assert_eq!(ports(p, &hdr), None);
        }
    }
}
