//! What the workers do to a frame outside ESP itself: find the IP packet behind the Ethernet
//! header (VLAN tags included), read its flow for the SPD, decrement TTL or hop limit, write a
//! new Ethernet header in front of a packet, and build ICMP errors in place.
//!
//! Every function here validates lengths before touching bytes and returns a [`DropReason`]
//! instead of panicking; none allocates.

use std::net::IpAddr;

use rampart_esp::DropReason;
use rampart_sadb::{FlowV4, FlowV6};
use rampart_wire::{EthernetFrame, Ipv4Packet, Ipv6Packet, ethernet, ip_protocol, ipv6};

use crate::stats::{Counter, Values};

/// The IP packet inside a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInFrame {
    /// Length of the Ethernet header with its tags.
    pub eth_len: usize,
    /// IP version, 4 or 6.
    pub version: u8,
    /// Length of the IP packet by its own header (link padding excluded).
    pub ip_len: usize,
}

/// [`ip_in_frame`] for a received frame, counting what it refuses: a drop reason, or
/// `not_ip` for a frame that is not IP (ARP and the like that reached the socket). `None`: the
/// caller frees the frame.
#[inline]
pub fn ip_in_frame_counted(frame: &[u8], values: &mut Values) -> Option<IpInFrame> {
    match ip_in_frame(frame) {
        Ok(info) => Some(info),
        Err(Some(r)) => {
            values.drop(r);
            None
        }
        Err(None) => {
            values.add(Counter::NotIp, 1);
            None
        }
    }
}

/// Finds the IP packet in an Ethernet frame and checks that its header and length fit.
pub fn ip_in_frame(frame: &[u8]) -> Result<IpInFrame, Option<DropReason>> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Some(DropReason::Truncated))?;
    let eth_len = eth.header_len();
    let ip = frame.get(eth_len..).ok_or(Some(DropReason::Truncated))?;
    match eth.ethertype() {
        ethernet::ETHERTYPE_IPV4 => {
            let p = Ipv4Packet::new_checked(ip).map_err(|_| Some(DropReason::BadInnerPacket))?;
            Ok(IpInFrame { eth_len, version: 4, ip_len: usize::from(p.total_len()) })
        }
        ethernet::ETHERTYPE_IPV6 => {
            let p = Ipv6Packet::new_checked(ip).map_err(|_| Some(DropReason::BadInnerPacket))?;
            Ok(IpInFrame { eth_len, version: 6, ip_len: p.total_len() })
        }
        // Not IP: no drop reason of ESP's; the caller counts it as `not_ip`.
        _ => Err(None),
    }
}

/// A packet's selector fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKey {
    /// IPv4.
    V4(FlowV4),
    /// IPv6.
    V6(FlowV6),
}

impl FlowKey {
    /// Source, destination, protocol and ports, for events.
    pub fn to_flow(&self) -> rampart_sadb::Flow {
        match *self {
            FlowKey::V4(f) => rampart_sadb::Flow {
                src: IpAddr::V4(f.src.into()),
                dst: IpAddr::V4(f.dst.into()),
                proto: f.proto,
                sport: f.sport,
                dport: f.dport,
            },
            FlowKey::V6(f) => rampart_sadb::Flow {
                src: IpAddr::V6(f.src.into()),
                dst: IpAddr::V6(f.dst.into()),
                proto: f.proto,
                sport: f.sport,
                dport: f.dport,
            },
        }
    }

    /// Destination address.
    pub fn dst(&self) -> IpAddr {
        match *self {
            FlowKey::V4(f) => IpAddr::V4(f.dst.into()),
            FlowKey::V6(f) => IpAddr::V6(f.dst.into()),
        }
    }
}

/// Ports of the upper layer as the SPD sees them: TCP/UDP/SCTP ports, ICMP type and code,
/// 0 for anything else and for non-first fragments.
fn ports(protocol: u8, upper: &[u8]) -> (u16, u16) {
    if let Some(p) = rampart_wire::ports::ports(protocol, upper) {
        return (p.src, p.dst);
    }
    match (protocol, upper) {
        (ip_protocol::ICMP | ip_protocol::ICMPV6, [t, c, ..]) => (u16::from(*t), u16::from(*c)),
        _ => (0, 0),
    }
}

/// Reads the flow of an IP packet (checked by [`ip_in_frame`]).
pub fn flow_of(ip: &[u8], version: u8) -> Result<FlowKey, DropReason> {
    if version == 4 {
        let p = Ipv4Packet::new_checked(ip).map_err(|_| DropReason::BadInnerPacket)?;
        let (sport, dport) = if p.frag_offset() != 0 { (0, 0) } else { ports(p.protocol(), p.payload()) };
        Ok(FlowKey::V4(FlowV4 {
            src: p.src_addr().into(),
            dst: p.dst_addr().into(),
            proto: p.protocol(),
            sport,
            dport,
        }))
    } else {
        let p = Ipv6Packet::new_checked(ip).map_err(|_| DropReason::BadInnerPacket)?;
        let upper = p.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT).map_err(|_| DropReason::BadInnerPacket)?;
        let first = upper.fragment.is_none_or(|f| f.offset == 0);
        let (sport, dport) = if first { ports(upper.protocol, p.upper_layer_payload(&upper)) } else { (0, 0) };
        Ok(FlowKey::V6(FlowV6 {
            src: p.src_addr().into(),
            dst: p.dst_addr().into(),
            proto: upper.protocol,
            sport,
            dport,
        }))
    }
}

/// The forwarding step on an IP packet: decrements TTL (with the RFC 1624 checksum update) or
/// hop limit. `Err(TtlExpired)` when it must not be forwarded (nothing changed then).
pub fn decrement_ttl(ip: &mut [u8], version: u8) -> Result<(), DropReason> {
    if version == 4 {
        let mut p = Ipv4Packet::new_checked(ip).map_err(|_| DropReason::BadInnerPacket)?;
        p.decrement_ttl().map(|_| ()).ok_or(DropReason::TtlExpired)
    } else {
        let mut p = Ipv6Packet::new_checked(ip).map_err(|_| DropReason::BadInnerPacket)?;
        p.decrement_hop_limit().map(|_| ()).ok_or(DropReason::TtlExpired)
    }
}

/// Writes an untagged Ethernet header into `hdr` (14 bytes).
#[inline]
pub fn write_ethernet(hdr: &mut [u8], dst: [u8; 6], src: [u8; 6], version: u8) -> Result<(), DropReason> {
    let h = hdr.get_mut(..ethernet::HEADER_LEN).ok_or(DropReason::NoRoom)?;
    h[..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    let ty = if version == 4 { ethernet::ETHERTYPE_IPV4 } else { ethernet::ETHERTYPE_IPV6 };
    h[12..14].copy_from_slice(&ty.to_be_bytes());
    Ok(())
}

/// The ICMP error to send about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    /// TTL or hop limit exceeded in transit.
    TimeExceeded,
    /// Too big for the path: the largest packet that fits.
    TooBig {
        /// MTU to report.
        mtu: u32,
    },
}

/// Who sends an ICMP error: the gateway's address and MAC on the interface it leaves by, and
/// the IPv4 identification to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpFrom {
    /// Source address (same family as the offending packet).
    pub ip: IpAddr,
    /// Source MAC.
    pub mac: [u8; 6],
    /// IPv4 identification.
    pub ident: u16,
}

/// Builds in `out` the whole Ethernet frame of an ICMP error about the IP packet `offending`,
/// addressed back to the frame's sender (`dst_mac`). Returns the frame length; `None` when the
/// RFCs forbid an error about this packet or the addresses do not fit.
pub fn build_icmp_error(
    kind: IcmpKind,
    offending: &[u8],
    version: u8,
    from: IcmpFrom,
    dst_mac: [u8; 6],
    out: &mut [u8],
) -> Option<usize> {
    let IcmpFrom { ip: src_ip, mac: src_mac, ident } = from;
    //= https://www.rfc-editor.org/rfc/rfc1122#section-3.2.2
    //# An ICMP error message MUST NOT be sent as the result of receiving: ... a datagram sent as
    //# a link-layer broadcast
    if dst_mac[0] & 1 != 0 {
        return None;
    }
    let (hdr, body) = out.split_at_mut_checked(ethernet::HEADER_LEN)?;
    let len = match (version, src_ip) {
        (4, IpAddr::V4(src)) => {
            let e = match kind {
                IcmpKind::TimeExceeded => rampart_wire::Icmpv4Error::TtlExceeded,
                IcmpKind::TooBig { mtu } => rampart_wire::Icmpv4Error::FragmentationNeeded {
                    next_hop_mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
                },
            };
            rampart_wire::icmp::emit_icmpv4_error(e, src, ident, offending, body).ok()?
        }
        (6, IpAddr::V6(src)) => {
            let e = match kind {
                IcmpKind::TimeExceeded => rampart_wire::Icmpv6Error::HopLimitExceeded,
                //= https://www.rfc-editor.org/rfc/rfc8200#section-5
                //# IPv6 requires that every link in the Internet have an MTU of 1280 octets or greater.
                IcmpKind::TooBig { mtu } => rampart_wire::Icmpv6Error::PacketTooBig { mtu: mtu.max(1280) },
            };
            rampart_wire::icmp::emit_icmpv6_error(e, src, offending, body).ok()?
        }
        _ => return None,
    };
    write_ethernet(hdr, dst_mac, src_mac, version).ok()?;
    Some(ethernet::HEADER_LEN + len)
}

/// A token bucket: `rate` tokens per second, bursts of up to `rate`.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    rate: u64,
    tokens: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32) -> TokenBucket {
        TokenBucket { rate: u64::from(rate), tokens: u64::from(rate), last_ms: 0 }
    }

    /// Takes a token if there is one at `now_ms`.
    #[inline]
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        let refill = elapsed * self.rate / 1000;
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(self.rate);
            self.last_ms = now_ms;
        }
        if self.tokens > 0 {
            self.tokens -= 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_frame(ttl: u8, df: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let repr = rampart_wire::Ipv4Repr {
            src_addr: "10.1.0.2".parse().unwrap(),
            dst_addr: "10.2.0.2".parse().unwrap(),
            protocol: ip_protocol::UDP,
            payload_len: payload.len(),
            ttl,
            dscp: 0,
            ecn: 0,
            ident: 7,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
        };
        let mut ip = vec![0u8; 20];
        repr.emit(&mut ip).unwrap();
        f.extend_from_slice(&ip);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn refused_frames_are_counted_by_reason() {
        let mut values = Values::default();
        let good = v4_frame(64, true, &[0u8; 12]);
        let info = ip_in_frame_counted(&good, &mut values).unwrap();
        assert_eq!((info.eth_len, info.version, info.ip_len), (14, 4, 32));
        let mut arp = good.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(ip_in_frame_counted(&arp, &mut values).is_none());
        assert!(ip_in_frame_counted(&good[..10], &mut values).is_none());
        assert_eq!(values.0[Counter::NotIp as usize], 1);
        assert_eq!(values.drops(DropReason::Truncated), 1);
    }

    #[test]
    fn parses_flow_and_decrements_ttl() {
        let mut f = v4_frame(2, true, &[0x04, 0xd2, 0x00, 0x35, 0, 12, 0, 0, 1, 2, 3, 4]);
        f.extend_from_slice(&[0; 6]); // link padding
        let info = ip_in_frame(&f).unwrap();
        assert_eq!(info, IpInFrame { eth_len: 14, version: 4, ip_len: 32 });
        let ip = &mut f[14..14 + 32];
        let FlowKey::V4(flow) = flow_of(ip, 4).unwrap() else { panic!() };
        assert_eq!((flow.proto, flow.sport, flow.dport), (17, 1234, 53));
        decrement_ttl(ip, 4).unwrap();
        let p = Ipv4Packet::new_checked(&*ip).unwrap();
        assert_eq!(p.ttl(), 1);
        assert!(p.verify_checksum());
        assert_eq!(decrement_ttl(ip, 4), Err(DropReason::TtlExpired));
    }

    #[test]
    fn icmp_error_goes_back_to_the_sender() {
        let f = v4_frame(1, true, &[0; 16]);
        let mut out = [0u8; 600];
        let n = build_icmp_error(
            IcmpKind::TooBig { mtu: 1400 },
            &f[14..],
            4,
            IcmpFrom { ip: "10.1.0.1".parse().unwrap(), mac: [2, 0, 0, 0, 0, 9], ident: 1 },
            [2, 0, 0, 0, 0, 1],
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..6], &[2, 0, 0, 0, 0, 1]);
        let ip = Ipv4Packet::new_checked(&out[14..n]).unwrap();
        assert_eq!(ip.dst_addr(), "10.1.0.2".parse::<std::net::Ipv4Addr>().unwrap());
        assert_eq!(ip.protocol(), ip_protocol::ICMP);
        assert_eq!(&ip.payload()[..2], &[3, 4]);
        assert_eq!(u16::from_be_bytes([ip.payload()[6], ip.payload()[7]]), 1400);
        // Never about a link-layer broadcast.
        assert!(
            build_icmp_error(
                IcmpKind::TimeExceeded,
                &f[14..],
                4,
                IcmpFrom { ip: "10.1.0.1".parse().unwrap(), mac: [2; 6], ident: 1 },
                [0xff; 6],
                &mut out
            )
            .is_none()
        );
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..80 {
            for seed in 0..50u32 {
                let mut f: Vec<u8> =
                    (0..len).map(|i| (seed.wrapping_mul(31).wrapping_add(i as u32 * 17)) as u8).collect();
                if len > 14 {
                    f[12] = if seed % 2 == 0 { 0x08 } else { 0x86 };
                    f[13] = if seed % 2 == 0 { 0x00 } else { 0xdd };
                }
                if let Ok(info) = ip_in_frame(&f) {
                    let ip = &mut f[info.eth_len..info.eth_len + info.ip_len];
                    let _ = flow_of(ip, info.version);
                    let _ = decrement_ttl(ip, info.version);
                }
            }
        }
    }

    #[test]
    fn token_bucket_limits() {
        let mut b = TokenBucket::new(10);
        let n = (0..100).filter(|_| b.take(0)).count();
        assert_eq!(n, 10);
        assert!(!b.take(50));
        assert!(b.take(200));
    }
}
