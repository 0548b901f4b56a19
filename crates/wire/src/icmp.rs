//! ICMP error messages the forwarding path originates: ICMPv4 Time Exceeded and Destination
//! Unreachable (Fragmentation Needed with the next-hop MTU, RFC 1191), ICMPv6 Time Exceeded,
//! Packet Too Big and Destination Unreachable. Each builder writes the whole IP packet (outer
//! header, ICMP header, quote of the offending packet) with both checksums.
//!
//! The builders refuse to answer what RFC 1122 and RFC 4443 forbid answering (other ICMP
//! errors, non-initial IPv4 fragments, multicast or unspecified addresses) with
//! [`Error::Suppressed`]. Rate limiting and link-layer broadcast checks stay with the caller,
//! which knows the clock and the frame. Nothing here allocates; the quote is copied straight
//! from the offending packet into the output buffer.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::{self, AddrPair};
use crate::{Error, ip_protocol, ipv4, ipv6};

/// Length of the ICMP header in front of the quote (type, code, checksum, four more bytes).
pub const HEADER_LEN: usize = 8;
/// Longest ICMPv4 error datagram (RFC 1812 section 4.3.2.3).
pub const ICMPV4_MAX_ERROR_LEN: usize = 576;
/// Longest ICMPv6 error packet: the IPv6 minimum MTU (RFC 4443 section 2.4 (c)).
pub const ICMPV6_MAX_ERROR_LEN: usize = 1280;
/// DSCP of ICMPv4 errors: CS6, precedence 6 "internetwork control" (RFC 1812 section 4.3.2.5).
pub const ICMPV4_ERROR_DSCP: u8 = 48;

/// An ICMPv4 error to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Error {
    /// Time Exceeded, code 0: TTL exceeded in transit (type 11).
    TtlExceeded,
    /// Time Exceeded, code 1: fragment reassembly time exceeded (type 11).
    ReassemblyTimeExceeded,
    /// Destination Unreachable, code 4: fragmentation needed and DF set, with the MTU of the
    /// next hop (type 3, RFC 1191).
    FragmentationNeeded {
        /// MTU of the next-hop link, in bytes.
        next_hop_mtu: u16,
    },
    /// Destination Unreachable with another code (0 net, 1 host, 3 port, 13 administratively
    /// prohibited, ...), type 3.
    DestinationUnreachable {
        /// The code.
        code: u8,
    },
}

impl Icmpv4Error {
    fn header(self) -> [u8; 4] {
        match self {
            Icmpv4Error::TtlExceeded => [11, 0, 0, 0],
            Icmpv4Error::ReassemblyTimeExceeded => [11, 1, 0, 0],
            //= https://www.rfc-editor.org/rfc/rfc1191#section-4
            //# The router MUST include the MTU of that next-hop network in the
            //# low-order 16 bits of the ICMP header field that is labelled
            //# "unused" in the ICMP specification.
            Icmpv4Error::FragmentationNeeded { next_hop_mtu } => {
                let [hi, lo] = next_hop_mtu.to_be_bytes();
                [3, 4, hi, lo]
            }
            Icmpv4Error::DestinationUnreachable { code } => [3, code, 0, 0],
        }
    }
}

/// An ICMPv6 error to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Error {
    /// Time Exceeded, code 0: hop limit exceeded in transit (type 3).
    HopLimitExceeded,
    /// Time Exceeded, code 1: fragment reassembly time exceeded (type 3).
    ReassemblyTimeExceeded,
    /// Packet Too Big with the MTU of the next hop (type 2).
    PacketTooBig {
        /// MTU of the next-hop link, in bytes.
        mtu: u32,
    },
    /// Destination Unreachable (type 1) with its code (0 no route, 1 administratively
    /// prohibited, 3 address unreachable, 4 port unreachable, ...).
    DestinationUnreachable {
        /// The code.
        code: u8,
    },
}

impl Icmpv6Error {
    fn header(self) -> [u8; 6] {
        match self {
            Icmpv6Error::HopLimitExceeded => [3, 0, 0, 0, 0, 0],
            Icmpv6Error::ReassemblyTimeExceeded => [3, 1, 0, 0, 0, 0],
            Icmpv6Error::PacketTooBig { mtu } => {
                let [a, b, c, d] = mtu.to_be_bytes();
                [2, 0, a, b, c, d]
            }
            Icmpv6Error::DestinationUnreachable { code } => [1, code, 0, 0, 0, 0],
        }
    }
}

/// ICMPv4 types that are queries or replies, not errors. Anything else (errors and unknown
/// types) never gets an error back.
fn is_icmpv4_informational(icmp_type: u8) -> bool {
    matches!(icmp_type, 0 | 8 | 9 | 10 | 13..=18)
}

/// Whether `addr` names a single host, as a source of a packet worth an ICMP error.
fn is_single_host_v4(addr: Ipv4Addr) -> bool {
    // Class E (240.0.0.0/4) includes the limited broadcast address.
    !(addr.is_unspecified() || addr.is_loopback() || addr.is_multicast() || addr.octets()[0] >= 240)
}

//= https://www.rfc-editor.org/rfc/rfc1122#section-3.2.2
//# An ICMP error message MUST NOT be sent as the result of
//# receiving:
//#
//# *    an ICMP error message, or
//#
//# *    a datagram destined to an IP broadcast or IP multicast
//#      address, or
//#
//# *    a datagram sent as a link-layer broadcast, or
//#
//# *    a non-initial fragment, or
//#
//# *    a datagram whose source address does not define a single
//#      host -- e.g., a zero address, a loopback address, a
//#      broadcast address, a multicast address, or a Class E
//#      address.
fn icmpv4_error_allowed(packet: &ipv4::Packet<&[u8]>) -> Result<(), Error> {
    if packet.frag_offset() != 0 {
        return Err(Error::Suppressed);
    }
    if packet.protocol() == ip_protocol::ICMP && !packet.payload().first().is_some_and(|&t| is_icmpv4_informational(t))
    {
        return Err(Error::Suppressed);
    }
    let dst = packet.dst_addr();
    if dst.is_multicast() || dst.is_broadcast() || !is_single_host_v4(packet.src_addr()) {
        return Err(Error::Suppressed);
    }
    Ok(())
}

/// Writes into `buf` an IPv4 packet from `src_addr` to the source of `offending` carrying the
/// ICMP `error`, and returns its length.
///
/// The quote is the offending packet (up to its total length) cut to keep the datagram within
/// 576 bytes and within `buf`; it always holds the offending IP header and at least 8 bytes of
/// its payload. The IP header gets TTL 64, DSCP CS6, identification `ident`, DF clear.
///
/// # Errors
/// The errors of [`ipv4::Packet::new_checked`] for `offending`; [`Error::Suppressed`] when no
/// error may be sent about it; [`Error::BufferTooSmall`] if `buf` cannot hold 28 bytes plus the
/// minimum quote.
//= https://www.rfc-editor.org/rfc/rfc1812#section-4.3.2.3
//# The ICMP datagram SHOULD contain as much of the original
//# datagram as possible without the length of the ICMP datagram
//# exceeding 576 bytes.
pub fn emit_icmpv4_error(
    error: Icmpv4Error,
    src_addr: Ipv4Addr,
    ident: u16,
    offending: &[u8],
    buf: &mut [u8],
) -> Result<usize, Error> {
    let packet = ipv4::Packet::new_checked(offending)?;
    icmpv4_error_allowed(&packet)?;
    let original = packet.packet();
    let headers = ipv4::HEADER_LEN + HEADER_LEN;
    let room = buf.len().checked_sub(headers).ok_or(Error::BufferTooSmall)?;
    let quote_len = original.len().min(ICMPV4_MAX_ERROR_LEN - headers).min(room);
    //= https://www.rfc-editor.org/rfc/rfc792
    //# Internet Header + 64 bits of Data Datagram
    if quote_len < original.len().min(packet.header_len() + 8) {
        return Err(Error::BufferTooSmall);
    }
    let ip = ipv4::Repr {
        src_addr,
        dst_addr: packet.src_addr(),
        protocol: ip_protocol::ICMP,
        payload_len: HEADER_LEN + quote_len,
        ttl: ipv4::DEFAULT_TTL,
        dscp: ICMPV4_ERROR_DSCP,
        ecn: 0,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    };
    ip.emit(buf)?;
    let icmp = &mut buf[ipv4::HEADER_LEN..headers + quote_len];
    let [t, c, r0, r1] = error.header();
    icmp[..HEADER_LEN].copy_from_slice(&[t, c, 0, 0, 0, 0, r0, r1]);
    icmp[HEADER_LEN..].copy_from_slice(&original[..quote_len]);
    let sum = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(headers + quote_len)
}

//= https://www.rfc-editor.org/rfc/rfc4443#section-2.4
//# (e) An ICMPv6 error message MUST NOT be originated as a result of
//#     receiving the following:
//#
//#     (e.1) An ICMPv6 error message.
//#
//#     (e.2) An ICMPv6 redirect message [IPv6-DISC].
//#
//#     (e.3) A packet destined to an IPv6 multicast address.  (There are
//#           two exceptions to this rule: (1) the Packet Too Big Message
//#           (Section 3.2) to allow Path MTU discovery to work for IPv6
//#           multicast, and (2) the Parameter Problem Message, Code 2
//#           (Section 3.4) reporting an unrecognized IPv6 option (see
//#           Section 4.2 of [IPv6]) that has the Option Type highest-
//#           order two bits set to 10).
//#
//#     (e.4) A packet sent as a link-layer multicast (the exceptions
//#           from e.3 apply to this case, too).
//#
//#     (e.5) A packet sent as a link-layer broadcast (the exceptions
//#           from e.3 apply to this case, too).
//#
//#     (e.6) A packet whose source address does not uniquely identify a
//#           single node -- e.g., the IPv6 Unspecified Address, an IPv6
//#           multicast address, or an address known by the ICMP message
//#           originator to be an IPv6 anycast address.
fn icmpv6_error_allowed(packet: &ipv6::Packet<&[u8]>, error: Icmpv6Error) -> Result<(), Error> {
    let src = packet.src_addr();
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return Err(Error::Suppressed);
    }
    if packet.dst_addr().is_multicast() && !matches!(error, Icmpv6Error::PacketTooBig { .. }) {
        return Err(Error::Suppressed);
    }
    let upper = packet.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT)?;
    let first_fragment = upper.fragment.is_none_or(|f| f.offset == 0);
    if upper.protocol == ip_protocol::ICMPV6 && first_fragment {
        // Types below 128 are errors (RFC 4443 section 2.1); 137 is Redirect.
        match packet.upper_layer_payload(&upper).first() {
            Some(&t) if t >= 128 && t != 137 => {}
            _ => return Err(Error::Suppressed),
        }
    }
    Ok(())
}

/// Writes into `buf` an IPv6 packet from `src_addr` to the source of `offending` carrying the
/// ICMPv6 `error`, and returns its length.
///
/// The quote is the offending packet (up to its payload length) cut to keep the error within
/// 1280 bytes and within `buf`; it always holds the offending IPv6 header and at least 8 more
/// bytes (or the whole packet if shorter). Hop limit 64, traffic class 0, flow label 0.
///
/// # Errors
/// The errors of [`ipv6::Packet::new_checked`] and [`ipv6::Packet::upper_layer`] for
/// `offending` (its header chain must be readable to rule out an ICMPv6 error);
/// [`Error::Suppressed`] when no error may be sent about it; [`Error::BufferTooSmall`] if `buf`
/// cannot hold 48 bytes plus the minimum quote.
//= https://www.rfc-editor.org/rfc/rfc4443#section-2.4
//# (c) Every ICMPv6 error message (type < 128) MUST include as much of
//#     the IPv6 offending (invoking) packet (the packet that caused the
//#     error) as possible without making the error message packet exceed
//#     the minimum IPv6 MTU [IPv6].
pub fn emit_icmpv6_error(
    error: Icmpv6Error,
    src_addr: Ipv6Addr,
    offending: &[u8],
    buf: &mut [u8],
) -> Result<usize, Error> {
    let packet = ipv6::Packet::new_checked(offending)?;
    icmpv6_error_allowed(&packet, error)?;
    let original = packet.packet();
    let headers = ipv6::HEADER_LEN + HEADER_LEN;
    let room = buf.len().checked_sub(headers).ok_or(Error::BufferTooSmall)?;
    let quote_len = original.len().min(ICMPV6_MAX_ERROR_LEN - headers).min(room);
    if quote_len < original.len().min(ipv6::HEADER_LEN + 8) {
        return Err(Error::BufferTooSmall);
    }
    let dst_addr = packet.src_addr();
    let icmp_len = HEADER_LEN + quote_len;
    let ip = ipv6::Repr {
        src_addr,
        dst_addr,
        next_header: ip_protocol::ICMPV6,
        payload_len: icmp_len,
        hop_limit: ipv6::DEFAULT_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    };
    ip.emit(buf)?;
    let icmp = &mut buf[ipv6::HEADER_LEN..headers + quote_len];
    let [t, c, r0, r1, r2, r3] = error.header();
    icmp[..HEADER_LEN].copy_from_slice(&[t, c, 0, 0, r0, r1, r2, r3]);
    icmp[HEADER_LEN..].copy_from_slice(&original[..quote_len]);
    // icmp_len <= 1240, so the cast is exact.
    let sum = AddrPair::V6 { src: src_addr, dst: dst_addr }
        .pseudo_header(ip_protocol::ICMPV6, icmp_len as u32)
        .add_bytes(icmp)
        .finish();
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(headers + quote_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const ROUTER4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

    fn v4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let repr = ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol,
            payload_len: payload.len(),
            ttl: 1,
            dscp: 0,
            ecn: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let mut b = std::vec![0u8; 20];
        repr.emit(&mut b).unwrap();
        b.extend_from_slice(payload);
        b
    }

    fn host(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, n)
    }

    #[test]
    fn v4_quote_is_capped_at_576() {
        let offending = v4_packet(host(1), host(2), 17, &[0xab; 1400]);
        let mut buf = [0u8; 2000];
        let n = emit_icmpv4_error(Icmpv4Error::TtlExceeded, ROUTER4, 7, &offending, &mut buf).unwrap();
        assert_eq!(n, 576);
        let ip = ipv4::Packet::new_checked(&buf[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.protocol(), ip.ttl()), (ROUTER4, host(1), 1, 64));
        assert!(checksum::verify(ip.payload()));
        assert_eq!(&ip.payload()[..8], &[11, 0, ip.payload()[2], ip.payload()[3], 0, 0, 0, 0]);
        assert_eq!(&ip.payload()[8..], &offending[..548]);
    }

    #[test]
    fn v4_short_packet_quoted_whole_and_buffer_limits() {
        let offending = v4_packet(host(1), host(2), 6, &[1, 2, 3]);
        let mut buf = [0u8; 100];
        let n = emit_icmpv4_error(
            Icmpv4Error::FragmentationNeeded { next_hop_mtu: 1400 },
            ROUTER4,
            0,
            &offending,
            &mut buf,
        )
        .unwrap();
        assert_eq!(n, 28 + 23);
        assert_eq!(&buf[20..22], &[3, 4]);
        assert_eq!(&buf[24..28], &[0, 0, 0x05, 0x78]);
        // A small buffer cuts the quote, but never below header + 8 bytes.
        let long = v4_packet(host(1), host(2), 6, &[9; 100]);
        assert_eq!(emit_icmpv4_error(Icmpv4Error::TtlExceeded, ROUTER4, 0, &long, &mut buf[..56]), Ok(56));
        assert_eq!(
            emit_icmpv4_error(Icmpv4Error::TtlExceeded, ROUTER4, 0, &long, &mut buf[..55]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn v4_suppressed_cases() {
        let err = Icmpv4Error::TtlExceeded;
        let mut buf = [0u8; 600];
        let mut send = |p: &[u8]| emit_icmpv4_error(err, ROUTER4, 0, p, &mut buf);
        // An ICMP error (time exceeded) and an unknown type: suppressed. An echo request: answered.
        assert_eq!(send(&v4_packet(host(1), host(2), 1, &[11, 0, 0, 0, 0, 0, 0, 0])), Err(Error::Suppressed));
        assert_eq!(send(&v4_packet(host(1), host(2), 1, &[200, 0, 0, 0])), Err(Error::Suppressed));
        assert_eq!(send(&v4_packet(host(1), host(2), 1, &[])), Err(Error::Suppressed));
        assert!(send(&v4_packet(host(1), host(2), 1, &[8, 0, 0, 0, 0, 0, 0, 0])).is_ok());
        // Addresses.
        for (src, dst) in [
            (host(1), Ipv4Addr::new(224, 0, 0, 5)),
            (host(1), Ipv4Addr::BROADCAST),
            (Ipv4Addr::UNSPECIFIED, host(2)),
            (Ipv4Addr::LOCALHOST, host(2)),
            (Ipv4Addr::new(239, 1, 1, 1), host(2)),
            (Ipv4Addr::new(240, 0, 0, 1), host(2)),
        ] {
            assert_eq!(send(&v4_packet(src, dst, 17, &[0; 8])), Err(Error::Suppressed), "{src} -> {dst}");
        }
        // Non-initial fragment suppressed; first fragment answered.
        let mut frag = v4_packet(host(1), host(2), 17, &[0; 16]);
        let mut p = ipv4::Packet::new_checked(&mut frag[..]).unwrap();
        p.set_frag(false, true, 0);
        assert!(send(&frag).is_ok());
        let mut p = ipv4::Packet::new_checked(&mut frag[..]).unwrap();
        p.set_frag(false, false, 8);
        assert_eq!(send(&frag), Err(Error::Suppressed));
        // Not IPv4 at all.
        assert_eq!(send(&[0x45, 0, 0]), Err(Error::Truncated));
    }

    fn v6_packet(src: &str, dst: &str, next_header: u8, payload: &[u8]) -> Vec<u8> {
        let repr = ipv6::Repr {
            src_addr: src.parse().unwrap(),
            dst_addr: dst.parse().unwrap(),
            next_header,
            payload_len: payload.len(),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut b = std::vec![0u8; 40];
        repr.emit(&mut b).unwrap();
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn v6_quote_is_capped_at_1280() {
        let router: Ipv6Addr = "2001:db8::fe".parse().unwrap();
        let offending = v6_packet("2001:db8:1::1", "2001:db8:2::2", 17, &[0x5a; 1460]);
        let mut buf = [0u8; 1500];
        let n = emit_icmpv6_error(Icmpv6Error::PacketTooBig { mtu: 1400 }, router, &offending, &mut buf).unwrap();
        assert_eq!(n, 1280);
        let ip = ipv6::Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!((ip.next_header(), ip.hop_limit(), ip.payload_len()), (58, 64, 1240));
        assert_eq!(ip.dst_addr(), "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        let pair = AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() };
        assert_eq!(pair.pseudo_header(58, 1240).add_bytes(ip.payload()).finish(), 0);
        assert_eq!(&ip.payload()[4..8], &1400u32.to_be_bytes());
        assert_eq!(&ip.payload()[8..], &offending[..1232]);
    }

    #[test]
    fn v6_suppressed_cases() {
        let router: Ipv6Addr = "2001:db8::fe".parse().unwrap();
        let mut buf = [0u8; 1280];
        let mut send = |e, p: &[u8]| emit_icmpv6_error(e, router, p, &mut buf);
        let hl = Icmpv6Error::HopLimitExceeded;
        let ptb = Icmpv6Error::PacketTooBig { mtu: 1280 };
        // ICMPv6 errors and redirects: suppressed; echo request: answered.
        assert_eq!(send(hl, &v6_packet("2001:db8::1", "2001:db8::2", 58, &[1, 0, 0, 0])), Err(Error::Suppressed));
        assert_eq!(send(hl, &v6_packet("2001:db8::1", "2001:db8::2", 58, &[137, 0, 0, 0])), Err(Error::Suppressed));
        assert!(send(hl, &v6_packet("2001:db8::1", "2001:db8::2", 58, &[128, 0, 0, 0])).is_ok());
        // Behind a destination options header, still seen.
        let mut behind = std::vec![58, 0, 1, 4, 0, 0, 0, 0];
        behind.extend_from_slice(&[3, 0, 0, 0]);
        assert_eq!(send(hl, &v6_packet("2001:db8::1", "2001:db8::2", 60, &behind)), Err(Error::Suppressed));
        // Multicast destination: only Packet Too Big.
        assert_eq!(send(hl, &v6_packet("2001:db8::1", "ff02::1", 17, &[0; 8])), Err(Error::Suppressed));
        assert!(send(ptb, &v6_packet("2001:db8::1", "ff02::1", 17, &[0; 8])).is_ok());
        // Sources that are not one node.
        assert_eq!(send(ptb, &v6_packet("::", "2001:db8::2", 17, &[0; 8])), Err(Error::Suppressed));
        assert_eq!(send(ptb, &v6_packet("ff05::1", "2001:db8::2", 17, &[0; 8])), Err(Error::Suppressed));
        // An unreadable header chain is not answered either.
        assert_eq!(send(hl, &v6_packet("2001:db8::1", "2001:db8::2", 60, &[58, 3])), Err(Error::Truncated));
    }
}
