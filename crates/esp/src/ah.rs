//! What AH (RFC 4302) needs beyond the steps it shares with ESP: the layout of its header for
//! an SA's algorithm and address family, and the ICV input made in place from the packet.
//!
//! The ICV covers the whole packet with the mutable fields of the IP header(s) in front of AH
//! zeroed (RFC 4302 section 3.3.3.1, appendix A), the ICV field zeroed, and, with ESN, the high
//! 32 bits of the sequence number behind the packet (section 2.5.1; sent nowhere). Rather than
//! copy the packet, the steps zero those fields in place and keep what they overwrote in the
//! frame's tailroom, behind the packet, where the ESN bits go too:
//!
//! ```text
//! | packet (headers zeroed as the ICV needs)  | ESN high (4, if ESN) | headers as they were | ICV received |
//!                                             ^ packet end           (stash)
//! ```
//!
//! so one burst call can MAC every packet where it lies, and the last step puts the headers back
//! (and, inbound, compares the ICV with the one received, in constant time).
//!
//! Mutable, zeroed: IPv4 DSCP/ECN, flags, fragment offset, TTL, header checksum, and every
//! option but End of List, No Operation, Security, Extended Security, Commercial Security,
//! Router Alert and Sender Directed Multi-Destination Delivery (appendix A.1; an unknown option
//! is mutable, the whole option is zeroed); IPv6 traffic class, flow label, hop limit, and the
//! data of Hop-by-Hop and Destination options whose type has the "may change" bit (appendix
//! A.2). A Routing header is taken as it arrives at the final destination (segments left 0); one
//! still to be routed cannot be predicted here and is refused.
//!
//! Never allocates, never panics on packet contents.

use rampart_sa::DropReason;
use rampart_wire::ip_protocol;

use crate::buf::PacketBuf;

/// The longest run of IP headers in front of AH that is stashed (IPv4: 60; IPv6: the fixed
/// header and extension headers).
pub(crate) const MAX_HEADERS: usize = 128;
/// The longest ICV field (HMAC-SHA-512-256: 32 bytes, padded for IPv6 to 36; GMAC: 8 + 16).
pub(crate) const MAX_ICV_FIELD: usize = 40;
/// Tailroom the steps need behind a packet: ESN bits, the stashed headers, the received ICV field.
pub(crate) const TAILROOM: usize = 4 + MAX_HEADERS + MAX_ICV_FIELD;

/// IPv4 options included in the ICV as they are (RFC 4302 appendix A.1): the full option type
/// octets of Security, Extended Security, Commercial Security, Router Alert and Sender Directed
/// Multi-Destination Delivery (End of List and No Operation are single octets, also kept).
const IMMUTABLE_V4_OPTIONS: [u8; 5] = [0x82, 0x85, 0x86, 0x94, 0x95];

/// The AH header of one SA: how long its ICV field is for each address family, and what of it is
/// the ICV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AhLayout {
    /// Bytes of IV in front of the ICV (AES-GMAC: 8, RFC 4543 section 3.1; HMAC: 0).
    pub iv_len: usize,
    /// Bytes of ICV.
    pub icv_len: usize,
}

impl AhLayout {
    /// The ICV field's length, padded so that the header is a multiple of 4 bytes (IPv4) or 8
    /// bytes (IPv6), RFC 4302 section 2.6.
    //= https://www.rfc-editor.org/rfc/rfc4302#section-2.6
    //# this field is variable length ... so that the AH header is a multiple of 32 bits (for IPv4)
    //# or 64 bits (for IPv6)
    pub fn icv_field_len(&self, v6: bool) -> usize {
        let unpadded = rampart_wire::ah::FIXED_LEN + self.iv_len + self.icv_len;
        let align = if v6 { 8 } else { 4 };
        unpadded.div_ceil(align) * align - rampart_wire::ah::FIXED_LEN
    }

    /// The whole header's length.
    pub fn header_len(&self, v6: bool) -> usize {
        rampart_wire::ah::FIXED_LEN + self.icv_field_len(v6)
    }
}

/// Offsets in the tailroom (see the module doc).
const TAIL_ESN: usize = 0;
const TAIL_HEADERS: usize = 4;
const TAIL_ICV: usize = 4 + MAX_HEADERS;

/// Makes the packet the ICV input: keeps the `header_offset` bytes of IP headers in front of AH
/// in the tailroom, zeroes their mutable fields in place, and puts the high sequence bits
/// behind the packet (`esn_high`, with ESN). The AH header's ICV field must already be zero.
pub(crate) fn stash_and_zero(
    pkt: &mut PacketBuf<'_>,
    header_offset: usize,
    esn_high: Option<u32>,
) -> Result<(), DropReason> {
    if header_offset > MAX_HEADERS {
        return Err(DropReason::AhBadHeader);
    }
    let (data, tail) = pkt.data_and_tail_mut(TAILROOM).ok_or(DropReason::NoRoom)?;
    let headers = data.get_mut(..header_offset).ok_or(DropReason::Truncated)?;
    tail[TAIL_HEADERS..TAIL_HEADERS + header_offset].copy_from_slice(headers);
    if let Some(hi) = esn_high {
        //= https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.2
        //# the high-order 32 bits of the ESN ... are included in the ICV computation
        tail[TAIL_ESN..TAIL_ESN + 4].copy_from_slice(&hi.to_be_bytes());
    }
    zero_mutable(headers)
}

/// Inbound, before [`stash_and_zero`]: keeps the received ICV field (`field`: its offset in the
/// packet and length) in the tailroom and zeroes it in the packet.
pub(crate) fn stash_icv(pkt: &mut PacketBuf<'_>, at: usize, len: usize) -> Result<(), DropReason> {
    if len > MAX_ICV_FIELD {
        return Err(DropReason::AhBadLength);
    }
    let (data, tail) = pkt.data_and_tail_mut(TAILROOM).ok_or(DropReason::NoRoom)?;
    let icv = data.get_mut(at..at + len).ok_or(DropReason::AhBadLength)?;
    tail[TAIL_ICV..TAIL_ICV + len].copy_from_slice(icv);
    icv.fill(0);
    Ok(())
}

/// Inbound: the ICV field kept by [`stash_icv`].
pub(crate) fn received_icv<'p>(pkt: &'p PacketBuf<'_>, len: usize) -> Option<&'p [u8]> {
    pkt.with_tail(TAILROOM)?.get(pkt.len() + TAIL_ICV..pkt.len() + TAIL_ICV + len)
}

/// Puts back the headers [`stash_and_zero`] kept.
pub(crate) fn restore(pkt: &mut PacketBuf<'_>, header_offset: usize) -> Result<(), DropReason> {
    let (data, tail) = pkt.data_and_tail_mut(TAILROOM).ok_or(DropReason::NoRoom)?;
    let headers = data.get_mut(..header_offset).ok_or(DropReason::Truncated)?;
    headers.copy_from_slice(tail.get(TAIL_HEADERS..TAIL_HEADERS + header_offset).ok_or(DropReason::AhBadHeader)?);
    Ok(())
}

/// Zeroes, in place, the mutable fields of the IP header(s) in `headers` (everything in front
/// of AH: an IPv4 header with its options, or the IPv6 header and its extension headers), as the
/// ICV needs them. The caller has stashed `headers` first.
pub(crate) fn zero_mutable(headers: &mut [u8]) -> Result<(), DropReason> {
    match headers.first().map(|b| b >> 4) {
        Some(4) => zero_mutable_v4(headers),
        Some(6) => zero_mutable_v6(headers),
        _ => Err(DropReason::AhBadHeader),
    }
}

fn zero_mutable_v4(h: &mut [u8]) -> Result<(), DropReason> {
    let ihl = usize::from(h.first().ok_or(DropReason::AhBadHeader)? & 0x0f) * 4;
    if ihl < 20 || ihl > h.len() {
        return Err(DropReason::AhBadHeader);
    }
    //= https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.1.1.1
    //# Mutable Fields: ... DSCP ... ECN ... Flags ... Fragment Offset ... TTL ... Header Checksum
    h[1] = 0;
    h[6] = 0;
    h[7] = 0;
    h[8] = 0;
    h[10] = 0;
    h[11] = 0;
    let mut i = 20;
    while i < ihl {
        match h[i] {
            // End of List: the rest is padding, included as it is.
            0 => break,
            1 => i += 1,
            ty => {
                let len = usize::from(*h.get(i + 1).ok_or(DropReason::AhBadHeader)?);
                if len < 2 || i + len > ihl {
                    return Err(DropReason::AhBadHeader);
                }
                //= https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.1.1.2
                //# For a mutable option, the entire option is zeroed
                if !IMMUTABLE_V4_OPTIONS.contains(&ty) {
                    h[i..i + len].fill(0);
                }
                i += len;
            }
        }
    }
    Ok(())
}

fn zero_mutable_v6(h: &mut [u8]) -> Result<(), DropReason> {
    if h.len() < 40 {
        return Err(DropReason::AhBadHeader);
    }
    //= https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.1.2.1
    //# Mutable but predictable ... Mutable (zero prior to ICV calculation): Class, Flow Label, Hop Limit
    h[0] &= 0xf0;
    h[1] = 0;
    h[2] = 0;
    h[3] = 0;
    h[7] = 0;
    let mut next = h[6];
    let mut at = 40;
    while at < h.len() {
        let len = (usize::from(*h.get(at + 1).ok_or(DropReason::AhBadHeader)?) + 1) * 8;
        if at + len > h.len() {
            return Err(DropReason::AhBadHeader);
        }
        match next {
            ip_protocol::HOPOPT | ip_protocol::IPV6_OPTS => zero_mutable_options(&mut h[at + 2..at + len])?,
            ip_protocol::IPV6_ROUTE => {
                // Taken as the final destination sees it; one still to be routed is refused.
                if h[at + 3] != 0 {
                    return Err(DropReason::AhBadHeader);
                }
            }
            // A Fragment header in front of AH is for a datagram reassembled before AH runs;
            // anything else cannot precede AH.
            _ => return Err(DropReason::AhBadHeader),
        }
        next = h[at];
        at += len;
    }
    Ok(())
}

/// The TLV options of a Hop-by-Hop or Destination Options header: the data of those whose type
/// says "may change en route" (the third-highest bit) is zeroed.
fn zero_mutable_options(opts: &mut [u8]) -> Result<(), DropReason> {
    let mut i = 0;
    while i < opts.len() {
        let ty = opts[i];
        if ty == 0 {
            // Pad1.
            i += 1;
            continue;
        }
        let len = usize::from(*opts.get(i + 1).ok_or(DropReason::AhBadHeader)?);
        let end = i + 2 + len;
        if end > opts.len() {
            return Err(DropReason::AhBadHeader);
        }
        //= https://www.rfc-editor.org/rfc/rfc4302#section-3.3.3.1.2.2
        //# If the bit is set, the entire Option Data field ... MUST be treated as zero-valued octets
        if ty & 0x20 != 0 {
            opts[i + 2..end].fill(0);
        }
        i = end;
    }
    Ok(())
}

/// Where AH goes in the IPv6 packet `p` of a transport-mode SA (RFC 4302 section 3.1.1: after
/// Hop-by-Hop, Routing and Fragment headers; Destination Options before or after it). Placed as
/// Linux and scapy place it: after the Hop-by-Hop, Routing and Destination Options headers, but
/// before Destination Options that follow a Routing header (those are for the final
/// destination). Returns the offset, the offset of the next-header byte that will name AH, and
/// the protocol AH's own Next Header will name.
pub(crate) fn ipv6_insertion_point(p: &[u8]) -> Result<(usize, usize, u8), DropReason> {
    let mut next = *p.get(6).ok_or(DropReason::BadInnerPacket)?;
    let mut nh_pos = 6;
    let mut at = 40;
    let mut routed = false;
    for _ in 0..8 {
        match next {
            ip_protocol::IPV6_OPTS if routed => return Ok((at, nh_pos, next)),
            ip_protocol::HOPOPT | ip_protocol::IPV6_ROUTE | ip_protocol::IPV6_OPTS => {
                let len = (usize::from(*p.get(at + 1).ok_or(DropReason::BadInnerPacket)?) + 1) * 8;
                if at + len > p.len() {
                    return Err(DropReason::BadInnerPacket);
                }
                routed |= next == ip_protocol::IPV6_ROUTE;
                nh_pos = at;
                next = p[at];
                at += len;
            }
            // Transport mode protects whole datagrams.
            ip_protocol::IPV6_FRAG => return Err(DropReason::BadInnerPacket),
            _ => return Ok((at, nh_pos, next)),
        }
    }
    Err(DropReason::BadInnerPacket)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v4(options: &[u8]) -> Vec<u8> {
        let ihl = 20 + options.len();
        let mut h = vec![0u8; ihl];
        h[0] = 0x40 | (ihl / 4) as u8;
        h[1] = 0xb8;
        h[2..4].copy_from_slice(&100u16.to_be_bytes());
        h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        h[6] = 0x40;
        h[8] = 64;
        h[9] = 51;
        h[10] = 0xab;
        h[11] = 0xcd;
        h[12..16].copy_from_slice(&[192, 0, 2, 1]);
        h[16..20].copy_from_slice(&[192, 0, 2, 2]);
        h[20..].copy_from_slice(options);
        h
    }

    #[test]
    fn ipv4_mutable_fields_and_options() {
        // Record Route (7, mutable), Router Alert (148, immutable), NOP, End of List.
        let opts = [7, 7, 4, 1, 2, 3, 4, 148, 4, 0, 0, 1, 0];
        let mut h = v4(&opts);
        zero_mutable(&mut h).unwrap();
        assert_eq!(h[1], 0, "DSCP/ECN");
        assert_eq!(&h[6..12], &[0, 0, 0, 51, 0, 0], "flags, offset, TTL, checksum; protocol kept");
        assert_eq!(&h[2..6], &[0, 100, 0x12, 0x34], "length and identification kept");
        assert_eq!(&h[20..27], &[0; 7], "record route zeroed, type and length too");
        assert_eq!(&h[27..31], &[148, 4, 0, 0], "router alert kept");
        assert_eq!(&h[31..], &[1, 0]);
        // Malformed options are refused.
        assert_eq!(zero_mutable(&mut v4(&[7, 1, 0, 0])), Err(DropReason::AhBadHeader));
        assert_eq!(zero_mutable(&mut v4(&[7, 9, 0, 0])), Err(DropReason::AhBadHeader));
    }

    #[test]
    fn ipv6_mutable_fields_and_options() {
        let mut h = vec![0u8; 40];
        h[0] = 0x6a;
        h[1] = 0xbc;
        h[2] = 0xde;
        h[3] = 0xf0;
        h[6] = ip_protocol::HOPOPT;
        h[7] = 64;
        // Hop-by-Hop: an option that may change (0x3e), one that may not (0x1e), PadN.
        h.extend_from_slice(&[ip_protocol::IPV6_OPTS, 1, 0x3e, 2, 0xaa, 0xbb, 0x1e, 2, 0xcc, 0xdd, 1, 4, 0, 0, 0, 0]);
        // Destination options: Pad1 x2, one that may change.
        h.extend_from_slice(&[51, 0, 0, 0, 0x20, 2, 0xee, 0xff]);
        zero_mutable(&mut h).unwrap();
        assert_eq!(&h[..4], &[0x60, 0, 0, 0]);
        assert_eq!(h[7], 0);
        assert_eq!(&h[40..56], &[ip_protocol::IPV6_OPTS, 1, 0x3e, 2, 0, 0, 0x1e, 2, 0xcc, 0xdd, 1, 4, 0, 0, 0, 0]);
        assert_eq!(&h[56..], &[51, 0, 0, 0, 0x20, 2, 0, 0]);
        // A Routing header still to be routed cannot be predicted.
        let mut r = vec![0u8; 40];
        r[0] = 0x60;
        r[6] = ip_protocol::IPV6_ROUTE;
        r.extend_from_slice(&[51, 2, 0, 1, 0, 0, 0, 0]);
        r.extend_from_slice(&[0; 16]);
        assert_eq!(zero_mutable(&mut r), Err(DropReason::AhBadHeader));
        r[43] = 0;
        assert_eq!(zero_mutable(&mut r), Ok(()));
    }

    #[test]
    fn header_lengths_follow_the_alignment_of_the_family() {
        let hmac256 = AhLayout { iv_len: 0, icv_len: 16 };
        assert_eq!((hmac256.header_len(false), hmac256.header_len(true)), (28, 32));
        let hmac384 = AhLayout { iv_len: 0, icv_len: 24 };
        assert_eq!((hmac384.header_len(false), hmac384.header_len(true)), (36, 40));
        let hmac512 = AhLayout { iv_len: 0, icv_len: 32 };
        assert_eq!((hmac512.header_len(false), hmac512.header_len(true)), (44, 48));
        let gmac = AhLayout { iv_len: 8, icv_len: 16 };
        assert_eq!((gmac.header_len(false), gmac.header_len(true)), (36, 40));
        assert!(gmac.icv_field_len(true) <= MAX_ICV_FIELD);
    }

    proptest! {
        /// The rules as a model: for random IPv4 headers with random options, exactly the mutable
        /// bytes change, whatever the options are, and nothing panics.
        #[test]
        fn ipv4_only_mutable_bytes_change(opts in proptest::collection::vec(any::<u8>(), 0..40), ttl in any::<u8>(), tos in any::<u8>()) {
            let mut opts = opts;
            opts.truncate(opts.len() / 4 * 4);
            let mut h = v4(&opts);
            h[1] = tos;
            h[8] = ttl;
            let before = h.clone();
            if zero_mutable(&mut h).is_ok() {
                for i in [0usize, 2, 3, 4, 5, 9, 12, 13, 14, 15, 16, 17, 18, 19] {
                    prop_assert_eq!(h[i], before[i], "immutable byte {} changed", i);
                }
                for i in [1usize, 6, 7, 8, 10, 11] {
                    prop_assert_eq!(h[i], 0, "mutable byte {} kept", i);
                }
                // A second pass changes nothing more.
                let once = h.clone();
                zero_mutable(&mut h).unwrap();
                prop_assert_eq!(h, once);
            }
        }

        /// Any bytes as IPv6 headers: refused or normalized, never a panic; the fixed fields that
        /// are immutable (payload length, next header, addresses) never change.
        #[test]
        fn ipv6_never_panics_and_keeps_immutable_fields(ext in proptest::collection::vec(any::<u8>(), 0..80), nh in any::<u8>()) {
            let mut h = vec![0u8; 40];
            h[0] = 0x61;
            h[4] = 0x12;
            h[6] = nh;
            h[7] = 9;
            h[8..40].copy_from_slice(&[7u8; 32]);
            h.extend_from_slice(&ext);
            let before = h.clone();
            if zero_mutable(&mut h).is_ok() {
                prop_assert_eq!(&h[4..7], &before[4..7]);
                prop_assert_eq!(&h[8..40], &before[8..40]);
                prop_assert_eq!(h[7], 0);
            }
        }
    }
}
