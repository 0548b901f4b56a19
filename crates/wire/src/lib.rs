//! Checked zero-copy views of the headers Rampart handles on the data path.
//!
//! Each header lives in its own module, in the smoltcp style: a `Packet<T: AsRef<[u8]>>`
//! view whose `new_checked` validates lengths once, after which no accessor can panic, setters
//! for `T: AsMut<[u8]>`, and a `Repr` with `parse`, `emit` and `buffer_len`.
//!
//! | module        | what it covers                                                        |
//! |---------------|-----------------------------------------------------------------------|
//! | [`ethernet`]  | Ethernet II with one 802.1Q tag or an 802.1ad S-tag + C-tag pair       |
//! | [`ipv4`]      | IPv4 with options, header checksum, RFC 1624 TTL decrement             |
//! | [`ipv6`]      | IPv6 fixed header and a bounded extension-header walker                |
//! | [`udp`]       | UDP with the IPv4/IPv6 pseudo-header checksum                          |
//! | [`esp`]       | ESP header, trailer parsing and building (RFC 4303)                    |
//! | [`ah`]        | the Authentication Header (RFC 4302)                                   |
//! | [`udp_encap`] | RFC 3948 classification of UDP/4500 payloads                           |
//! | [`icmp`]      | ICMPv4/ICMPv6 error messages quoting the offending packet              |
//! | [`ports`]     | TCP/UDP/SCTP port extraction for traffic-selector checks               |
//! | [`checksum`]  | the Internet checksum (RFC 1071) and its incremental update (RFC 1624) |
//!
//! This crate never allocates and never does I/O: it is `no_std` without `alloc`, so the views,
//! parsers and emitters can run on the data path's hot loop. Malformed input gets an [`Error`],
//! never a panic.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod ah;
mod bytes;
pub mod checksum;
mod error;
pub mod esp;
pub mod ethernet;
pub mod icmp;
pub mod ip_protocol;
pub mod ipv4;
pub mod ipv6;
pub mod ports;
pub mod udp;
pub mod udp_encap;

pub use ah::{Packet as AhPacket, Repr as AhRepr};
pub use checksum::{AddrPair, Checksum};
pub use error::Error;
pub use esp::{Packet as EspPacket, Repr as EspRepr, Trailer as EspTrailer};
pub use ethernet::{Address as EthernetAddress, Frame as EthernetFrame, Repr as EthernetRepr, VlanTag};
pub use icmp::{Icmpv4Error, Icmpv6Error};
pub use ipv4::{Packet as Ipv4Packet, Repr as Ipv4Repr};
pub use ipv6::{Packet as Ipv6Packet, Repr as Ipv6Repr, UpperLayer};
pub use ports::Ports;
pub use udp::{Packet as UdpPacket, Repr as UdpRepr, UdpChecksum};
pub use udp_encap::UdpEncap;
