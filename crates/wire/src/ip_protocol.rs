//! IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by the IPv4
//! `protocol` and IPv6 `next_header` fields. Constants only; nothing here inspects packets.

/// IPv6 Hop-by-Hop Options (RFC 8200 section 4.3).
pub const HOPOPT: u8 = 0;
/// ICMP for IPv4 (RFC 792).
pub const ICMP: u8 = 1;
/// IPv4 encapsulated in IP (tunnel mode inner IPv4).
pub const IPV4: u8 = 4;
/// TCP.
pub const TCP: u8 = 6;
/// UDP.
pub const UDP: u8 = 17;
/// IPv6 encapsulated in IP (tunnel mode inner IPv6).
pub const IPV6: u8 = 41;
/// IPv6 Routing header (RFC 8200 section 4.4).
pub const IPV6_ROUTE: u8 = 43;
/// IPv6 Fragment header (RFC 8200 section 4.5).
pub const IPV6_FRAG: u8 = 44;
/// Encapsulating Security Payload (RFC 4303).
pub const ESP: u8 = 50;
/// Authentication Header (RFC 4302).
pub const AH: u8 = 51;
/// ICMP for IPv6 (RFC 4443).
pub const ICMPV6: u8 = 58;
/// No next header (RFC 8200 section 4.7); in ESP it marks a dummy packet (RFC 4303 section 2.6).
pub const NO_NEXT_HEADER: u8 = 59;
/// IPv6 Destination Options (RFC 8200 section 4.6).
pub const IPV6_OPTS: u8 = 60;
/// SCTP (RFC 9260).
pub const SCTP: u8 = 132;
