//! What an SA is made of: the parameters that the IKE daemon negotiates, the SA database stores
//! and the data plane turns into the runtimes of `rampart-esp`.
//!
//! Plain data, no behaviour beyond validation and selector matching.

use core::fmt;
use std::net::IpAddr;

use crate::suite::Suite;
use zeroize::Zeroizing;

/// ESP mode (RFC 4301 section 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A whole IP packet inside ESP, new outer header between the gateways.
    Tunnel,
    /// The payload of the host's own IP packet inside ESP, its header kept.
    Transport,
}

/// The IPsec protocol of an SA (RFC 4301 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Encapsulating Security Payload (RFC 4303): confidentiality and integrity.
    #[default]
    Esp,
    /// Authentication Header (RFC 4302): integrity of the packet and of the outer IP header's
    /// immutable fields, no confidentiality. Never over NAT (its ICV covers the addresses).
    Ah,
}

impl Protocol {
    /// The IP protocol number (50, 51).
    pub fn ip_protocol(self) -> u8 {
        match self {
            Protocol::Esp => 50,
            Protocol::Ah => 51,
        }
    }

    /// `esp` or `ah`, as the `ip xfrm` grammar and swanctl.conf write it.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Esp => "esp",
            Protocol::Ah => "ah",
        }
    }
}

/// Direction of an SA, seen from this gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Packets this gateway receives and decapsulates.
    Inbound,
    /// Packets this gateway encapsulates and sends.
    Outbound,
}

/// UDP encapsulation of ESP (RFC 3948): ports of the outer UDP header, seen from this gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpEncap {
    /// Our port (source port of what we send).
    pub local_port: u16,
    /// The peer's port (destination port of what we send).
    pub remote_port: u16,
}

impl Default for UdpEncap {
    fn default() -> Self {
        UdpEncap { local_port: 4500, remote_port: 4500 }
    }
}

/// A traffic selector (RFC 7296 section 3.13.1): an address range, an IP protocol and a port
/// range. Protocol 0 means any protocol; ports 0..=65535 mean any port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol number, 0 for any.
    pub protocol: u8,
    /// First address of the range (same family as `end`).
    pub start: IpAddr,
    /// Last address of the range.
    pub end: IpAddr,
    /// First port.
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
}

impl TrafficSelector {
    /// Every address of one family, any protocol and port.
    pub fn any(v6: bool) -> TrafficSelector {
        if v6 {
            TrafficSelector::from_prefix(IpAddr::V6(0.into()), 0)
        } else {
            TrafficSelector::from_prefix(IpAddr::V4(0.into()), 0)
        }
    }

    /// The addresses of a prefix such as 198.18.1.0/24, any protocol and port. A prefix
    /// length beyond the family's width is clamped to it.
    pub fn from_prefix(addr: IpAddr, prefix_len: u8) -> TrafficSelector {
        let (start, end) = match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let len = u32::from(prefix_len.min(32));
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                (IpAddr::V4((bits & mask).into()), IpAddr::V4((bits | !mask).into()))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let len = u32::from(prefix_len.min(128));
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                (IpAddr::V6((bits & mask).into()), IpAddr::V6((bits | !mask).into()))
            }
        };
        TrafficSelector { protocol: 0, start, end, start_port: 0, end_port: u16::MAX }
    }

    /// Whether the selector is IPv6.
    pub fn is_v6(&self) -> bool {
        self.start.is_ipv6()
    }

    /// Whether `addr` lies in the address range.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        match (self.start, self.end, addr) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => (s..=e).contains(&a),
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => (s..=e).contains(&a),
            _ => false,
        }
    }

    /// Whether this selector looks past the addresses (a protocol or a port range): packets
    /// checked against selectors that do not can skip parsing their upper-layer header.
    pub fn needs_upper_layer(&self) -> bool {
        self.protocol != 0 || self.start_port != 0 || self.end_port != u16::MAX
    }

    /// Whether a packet's address, protocol and port (0 when the protocol has none, or for
    /// a non-first fragment) match this selector.
    pub fn matches(&self, addr: IpAddr, protocol: u8, port: u16) -> bool {
        self.contains_addr(addr)
            && (self.protocol == 0 || self.protocol == protocol)
            && (self.start_port..=self.end_port).contains(&port)
    }
}

impl fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)?;
        if self.needs_upper_layer() {
            write!(f, "[{}/{}-{}]", self.protocol, self.start_port, self.end_port)?;
        }
        Ok(())
    }
}

/// Soft and hard lifetimes of an SA (RFC 4301 section 4.4.2.1). Zero means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lifetimes {
    /// Bytes after which a rekey is asked for.
    pub soft_bytes: u64,
    /// Bytes after which the SA stops.
    pub hard_bytes: u64,
    /// Packets after which a rekey is asked for.
    pub soft_packets: u64,
    /// Packets after which the SA stops.
    pub hard_packets: u64,
    /// Seconds after install after which a rekey is asked for.
    pub soft_seconds: u64,
    /// Seconds after install after which the SA stops.
    pub hard_seconds: u64,
}

/// Default anti-replay window, in packets (DESIGN.md: 1024 or more).
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;
/// Largest anti-replay window Rampart supports, in packets.
pub const MAX_REPLAY_WINDOW: u32 = 8192;

/// Everything needed to build one SA's runtime. Keys are zeroized on drop and `Debug` hides them.
#[derive(Clone)]
pub struct SaConfig {
    /// Security parameter index (chosen by the receiver).
    pub spi: u32,
    /// ESP or AH.
    pub protocol: Protocol,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Cipher suite (for AH: NULL encryption with the integrity transform).
    pub suite: Suite,
    /// Encryption key, including the 4-byte salt for AEADs.
    pub encryption_key: Zeroizing<Vec<u8>>,
    /// Integrity key (empty for AEADs).
    pub integrity_key: Zeroizing<Vec<u8>>,
    /// Tunnel or transport.
    pub mode: Mode,
    /// This gateway's outer address (source of what we send).
    pub local: IpAddr,
    /// The peer's outer address.
    pub remote: IpAddr,
    /// UDP encapsulation, when NAT traversal is on.
    pub encap: Option<UdpEncap>,
    /// Extended (64-bit) sequence numbers.
    pub esn: bool,
    /// Anti-replay window in packets (inbound); 0 turns replay protection off.
    pub replay_window: u32,
    /// Selectors of our side: inner source of outbound, inner destination of inbound packets.
    pub local_ts: Vec<TrafficSelector>,
    /// Selectors of the peer's side.
    pub remote_ts: Vec<TrafficSelector>,
    /// Lifetimes (enforced by the data plane and the IKE daemon from usage counters).
    pub lifetimes: Lifetimes,
}

impl fmt::Debug for SaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaConfig")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("protocol", &self.protocol)
            .field("direction", &self.direction)
            .field("suite", &self.suite)
            .field("mode", &self.mode)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("encap", &self.encap)
            .field("esn", &self.esn)
            .field("replay_window", &self.replay_window)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("lifetimes", &self.lifetimes)
            .finish_non_exhaustive()
    }
}
