//! IPv6 headers (RFC 8200): a checked view of the fixed header, a `Repr`, and a bounded walker
//! over the extension headers a router must step over (Hop-by-Hop, Routing, Fragment,
//! Destination Options) to find the upper-layer protocol.
//!
//! After [`Packet::new_checked`] the fixed header and the payload length fit in the buffer, so
//! no accessor can panic. The walker reads only inside the payload, stops after a caller-given
//! number of extension headers, and never allocates. Jumbograms (RFC 2675) are not supported:
//! a zero payload length means an empty payload.

use core::net::Ipv6Addr;

use crate::Error;
use crate::bytes::{get_u16, get_u32, put_u16, put_u32};
use crate::ip_protocol;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Hop limit Rampart writes into the headers it originates.
pub const DEFAULT_HOP_LIMIT: u8 = 64;
/// A sensible bound for [`Packet::upper_layer`]: more extension headers than this are refused.
pub const DEFAULT_EXTENSION_LIMIT: usize = 8;
/// Length of a Fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: usize = 0;
    pub const LENGTH: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without validating it; accessors may panic if it is inconsistent.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Packet { buffer };
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks what every accessor relies on: version 6 and 40 + payload length <= buffer. Call
    /// it again after changing the payload length through a setter.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than the header or the payload length;
    /// [`Error::Malformed`] for another version.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        if b.len() < HEADER_LEN + usize::from(get_u16(b, field::LENGTH)) {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The IP version field (6 once checked).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// Traffic class (DSCP << 2 | ECN).
    pub fn traffic_class(&self) -> u8 {
        (get_u16(self.buffer.as_ref(), field::VER_TC_FLOW) >> 4) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Length of the packet: 40 + payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        Ipv6Addr::from(a)
    }

    /// The payload (extension headers included), up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }

    /// The packet up to its total length (without link padding).
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }

    /// Walks the extension headers to the upper-layer header, stepping over at most
    /// `max_extensions` of them.
    ///
    /// Hop-by-Hop, Routing, Fragment and Destination Options headers are stepped over; any other
    /// next-header value (TCP, UDP, ICMPv6, ESP, AH, No Next Header, ...) ends the walk. After
    /// a Fragment header with a non-zero offset the rest is fragment data, so the walk ends
    /// there with the Fragment header's next-header value.
    ///
    /// # Errors
    /// [`Error::Truncated`] if a header runs past the payload; [`Error::Malformed`] for a
    /// Hop-by-Hop header that is not first or a second Fragment header;
    /// [`Error::TooManyExtensions`] when more than `max_extensions` headers would be needed.
    pub fn upper_layer(&self, max_extensions: usize) -> Result<UpperLayer, Error> {
        let payload = self.payload();
        let mut next_header = self.next_header();
        let mut offset = 0usize;
        let mut count = 0usize;
        let mut fragment: Option<FragmentHeader> = None;
        loop {
            let len = match next_header {
                ip_protocol::HOPOPT | ip_protocol::IPV6_ROUTE | ip_protocol::IPV6_OPTS => {
                    //= https://www.rfc-editor.org/rfc/rfc8200#section-4.1
                    //# except for the Hop-by-Hop Options header, which is restricted to
                    //# appear immediately after an IPv6 header only.
                    if next_header == ip_protocol::HOPOPT && count != 0 {
                        return Err(Error::Malformed);
                    }
                    match payload.get(offset + 1) {
                        Some(&hdr_ext_len) => (usize::from(hdr_ext_len) + 1) * 8,
                        None => {
                            return Err(if count >= max_extensions {
                                Error::TooManyExtensions
                            } else {
                                Error::Truncated
                            });
                        }
                    }
                }
                ip_protocol::IPV6_FRAG => FRAGMENT_HEADER_LEN,
                _ => break,
            };
            if count >= max_extensions {
                return Err(Error::TooManyExtensions);
            }
            let Some(header) = payload.get(offset..offset + len) else {
                return Err(Error::Truncated);
            };
            count += 1;
            offset += len;
            let this = next_header;
            next_header = header[0];
            if this == ip_protocol::IPV6_FRAG {
                if fragment.is_some() {
                    return Err(Error::Malformed);
                }
                let frag = FragmentHeader::parse(header);
                fragment = Some(frag);
                if frag.offset != 0 {
                    break;
                }
            }
        }
        Ok(UpperLayer { protocol: next_header, offset: HEADER_LEN + offset, extensions: count, fragment })
    }

    /// The bytes of this packet after the headers that [`Packet::upper_layer`] found, up to the
    /// total length; empty if `upper` does not fit this packet.
    pub fn upper_layer_payload(&self, upper: &UpperLayer) -> &[u8] {
        self.packet().get(upper.offset..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, the traffic class and the flow label (20 bits).
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        put_u32(self.buffer.as_mut(), field::VER_TC_FLOW, word);
    }

    /// Sets the payload length. Changes what [`Packet::check_len`] checked: check again before
    /// reading the payload.
    pub fn set_payload_len(&mut self, len: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the next header.
    pub fn set_next_header(&mut self, next_header: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = next_header;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// The forwarding step: decrements the hop limit and returns the new value. When it is 0 or
    /// 1 the packet must not be forwarded: nothing is changed and `None` comes back (the caller
    /// sends Time Exceeded).
    //= https://www.rfc-editor.org/rfc/rfc8200#section-3
    //# When forwarding, the packet is discarded if Hop
    //# Limit was zero when received or is decremented to
    //# zero.
    pub fn decrement_hop_limit(&mut self) -> Option<u8> {
        let hop_limit = self.hop_limit();
        if hop_limit <= 1 {
            return None;
        }
        self.set_hop_limit(hop_limit - 1);
        Some(hop_limit - 1)
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The fields of an IPv6 Fragment header (RFC 8200 section 4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    /// Offset of the fragment data in bytes (the field times 8).
    pub offset: u16,
    /// More Fragments flag.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

impl FragmentHeader {
    /// Reads the 8 bytes of a Fragment header.
    fn parse(header: &[u8]) -> FragmentHeader {
        let off_m = get_u16(header, 2);
        FragmentHeader { offset: off_m & 0xfff8, more_frags: off_m & 1 != 0, ident: get_u32(header, 4) }
    }

    /// Whether the packet needs reassembly (an "atomic fragment", offset 0 without M, does not;
    /// RFC 6946).
    pub fn needs_reassembly(&self) -> bool {
        self.offset != 0 || self.more_frags
    }
}

/// Where the upper-layer header of an IPv6 packet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// Upper-layer protocol (the last next-header value). For a non-first fragment, the
    /// next-header value of its Fragment header.
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header (40 plus the
    /// extension headers).
    pub offset: usize,
    /// Number of extension headers stepped over.
    pub extensions: usize,
    /// The Fragment header, if one was found.
    pub fragment: Option<FragmentHeader>,
}

impl UpperLayer {
    /// Whether the packet is a fragment that needs reassembly before its upper layer can be
    /// read.
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some_and(|f| f.needs_reassembly())
    }
}

/// The fixed IPv6 header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length in bytes (extension headers included).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label, 0..=0xfffff.
    pub flow_label: u32,
}

impl Repr {
    /// Reads a checked packet.
    ///
    /// # Errors
    /// None today; the `Result` keeps the signature alike across headers.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Length of the header this writes (40).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header at the start of `buf` and returns 40. The payload is not touched.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than 40 bytes; [`Error::Malformed`] for a
    /// flow label above 20 bits or a payload length above 65535.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        let payload_len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        if self.flow_label > 0x000f_ffff {
            return Err(Error::Malformed);
        }
        let mut packet = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        packet.set_version_tc_flow(self.traffic_class, self.flow_label);
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// An IPv6 packet with the given extension headers (each: next header, bytes) and payload.
    fn packet(first: u8, extensions: &[&[u8]], payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in extensions {
            body.extend_from_slice(e);
        }
        body.extend_from_slice(payload);
        let repr = Repr {
            src_addr: "2001:db8::1".parse().unwrap(),
            dst_addr: "2001:db8::2".parse().unwrap(),
            next_header: first,
            payload_len: body.len(),
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        };
        let mut b = std::vec![0u8; 40];
        repr.emit(&mut b).unwrap();
        b.extend_from_slice(&body);
        b
    }

    const HBH_TO_ROUTE: &[u8] = &[43, 0, 1, 4, 0, 0, 0, 0]; // PadN
    const ROUTE_TO_FRAG: &[u8] = &[44, 0, 4, 0, 0, 0, 0, 0]; // type 4 (SRH), segments left 0
    const FRAG_TO_DST_FIRST: &[u8] = &[60, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]; // offset 0, M
    const DST_TO_UDP: &[u8] = &[17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

    #[test]
    fn fixed_header_fields() {
        let b = packet(17, &[], &[0; 8]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.version(), p.traffic_class(), p.flow_label()), (6, 0xb8, 0x12345));
        assert_eq!((p.payload_len(), p.next_header(), p.hop_limit()), (8, 17, 64));
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        let ul = p.upper_layer(DEFAULT_EXTENSION_LIMIT).unwrap();
        assert_eq!(ul, UpperLayer { protocol: 17, offset: 40, extensions: 0, fragment: None });
    }

    #[test]
    fn walks_all_four_kinds() {
        let b = packet(0, &[HBH_TO_ROUTE, ROUTE_TO_FRAG, FRAG_TO_DST_FIRST, DST_TO_UDP], b"udp-hdr!");
        let p = Packet::new_checked(&b[..]).unwrap();
        let ul = p.upper_layer(DEFAULT_EXTENSION_LIMIT).unwrap();
        assert_eq!(ul.protocol, 17);
        assert_eq!(ul.offset, 40 + 8 + 8 + 8 + 16);
        assert_eq!(ul.extensions, 4);
        assert_eq!(ul.fragment, Some(FragmentHeader { offset: 0, more_frags: true, ident: 0xdeadbeef }));
        assert!(ul.is_fragment());
        assert_eq!(p.upper_layer_payload(&ul), b"udp-hdr!");
        assert_eq!(p.upper_layer(3).unwrap_err(), Error::TooManyExtensions);
        assert!(p.upper_layer(4).is_ok());
    }

    #[test]
    fn non_first_fragment_stops() {
        let frag: &[u8] = &[6, 0, 0x05, 0xa8, 0, 0, 0, 7]; // offset 1448 (181*8), M=0
        let b = packet(44, &[frag], b"tcp data, not a header");
        let ul = Packet::new_checked(&b[..]).unwrap().upper_layer(DEFAULT_EXTENSION_LIMIT).unwrap();
        assert_eq!(ul.protocol, 6);
        assert_eq!(ul.offset, 48);
        assert_eq!(ul.fragment, Some(FragmentHeader { offset: 1448, more_frags: false, ident: 7 }));
        assert!(ul.is_fragment());
    }

    #[test]
    fn atomic_fragment_is_not_a_fragment() {
        let frag: &[u8] = &[58, 0, 0, 0, 0, 0, 0, 9];
        let b = packet(44, &[frag], &[128, 0, 0, 0]);
        let ul = Packet::new_checked(&b[..]).unwrap().upper_layer(DEFAULT_EXTENSION_LIMIT).unwrap();
        assert_eq!((ul.protocol, ul.offset, ul.is_fragment()), (58, 48, false));
    }

    #[test]
    fn malformed_chains() {
        // Hop-by-Hop after another header.
        let b = packet(60, &[&[0, 0, 1, 4, 0, 0, 0, 0], HBH_TO_ROUTE, ROUTE_TO_FRAG], &[]);
        assert_eq!(Packet::new_checked(&b[..]).unwrap().upper_layer(8).unwrap_err(), Error::Malformed);
        // Two fragment headers.
        let b = packet(44, &[&[44, 0, 0, 1, 0, 0, 0, 1], &[17, 0, 0, 1, 0, 0, 0, 1]], &[]);
        assert_eq!(Packet::new_checked(&b[..]).unwrap().upper_layer(8).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn long_chains_stop_at_the_limit() {
        let opts: &[u8] = &[60, 0, 1, 4, 0, 0, 0, 0];
        let chain = [opts; 100];
        let b = packet(60, &chain, &[]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.upper_layer(8).unwrap_err(), Error::TooManyExtensions);
        assert_eq!(p.upper_layer(1000).unwrap_err(), Error::Truncated); // the last one points at more
    }

    #[test]
    fn every_cut_of_the_chain_is_truncated() {
        let full = packet(0, &[HBH_TO_ROUTE, ROUTE_TO_FRAG, FRAG_TO_DST_FIRST, DST_TO_UDP], &[]);
        for payload_len in 0..(full.len() - 40) {
            let mut b = full.clone();
            Packet::new_unchecked(&mut b[..]).set_payload_len(payload_len as u16);
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(p.upper_layer(8).unwrap_err(), Error::Truncated, "payload length {payload_len}");
        }
        for n in 0..full.len() {
            assert_eq!(Packet::new_checked(&full[..n]).unwrap_err(), Error::Truncated, "length {n}");
        }
    }

    #[test]
    fn decrement_hop_limit() {
        let mut b = packet(17, &[], &[]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_hop_limit(2);
        assert_eq!(p.decrement_hop_limit(), Some(1));
        assert_eq!(p.decrement_hop_limit(), None);
        assert_eq!(p.hop_limit(), 1);
    }

    #[test]
    fn version_checked() {
        let mut b = packet(17, &[], &[]);
        b[0] = 0x45;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }
}
