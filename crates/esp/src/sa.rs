//! What the inbound and outbound runtimes share: configuration checks, counters, errors, and
//! where ESP goes in an IPv6 packet.

use core::fmt;

use rampart_crypto::CryptoError;
use rampart_wire::ip_protocol;

use rampart_sa::{Direction, MAX_REPLAY_WINDOW, Protocol, SaConfig};

/// Packets and bytes an SA has carried (inner bytes, without ESP overhead).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaCounters {
    /// Packets.
    pub packets: u64,
    /// Bytes of the protected payload.
    pub bytes: u64,
}

/// Why an SA runtime could not be built from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaError {
    /// The keys do not fit the suite, or the backend lacks it.
    Crypto(CryptoError),
    /// SPI 0 is reserved (RFC 4303 section 2.1).
    ZeroSpi,
    /// The configuration is for the other direction.
    WrongDirection {
        /// The direction the runtime needs.
        expected: Direction,
    },
    /// The outer addresses are of different families.
    MixedAddressFamilies,
    /// The anti-replay window is larger than Rampart supports.
    ReplayWindowTooLarge {
        /// Requested size.
        size: u32,
    },
    /// ESN without an anti-replay window (RFC 4303 section 2.2.1: the window infers the high bits).
    EsnWithoutReplayWindow,
    /// AH with UDP encapsulation: AH's ICV covers the outer addresses a NAT rewrites, and RFC
    /// 3948 encapsulates ESP only.
    AhOverNat,
    /// An AH SA whose suite encrypts or has no integrity transform (AH is integrity only).
    AhSuite,
    /// AES-GMAC integrity on an ESP SA (it is AH's; ESP's GMAC is an encryption transform,
    /// ENCR_NULL_AUTH_AES_GMAC, which Rampart does not implement).
    GmacForEsp,
}

impl fmt::Display for SaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaError::Crypto(e) => write!(f, "{e}"),
            SaError::ZeroSpi => f.write_str("SPI 0 is reserved"),
            SaError::WrongDirection { expected } => write!(f, "not an {expected:?} SA"),
            SaError::MixedAddressFamilies => f.write_str("local and remote addresses are of different families"),
            SaError::ReplayWindowTooLarge { size } => {
                write!(f, "replay window {size} exceeds the maximum of {MAX_REPLAY_WINDOW}")
            }
            SaError::EsnWithoutReplayWindow => f.write_str("ESN needs an anti-replay window"),
            SaError::AhOverNat => f.write_str(
                "AH cannot cross NAT: its ICV covers the addresses a NAT rewrites (RFC 3948 encapsulates ESP only)",
            ),
            SaError::AhSuite => f.write_str("an AH SA takes an integrity algorithm only (no encryption)"),
            SaError::GmacForEsp => f.write_str("AES-GMAC integrity is for AH; ESP with AES-GMAC is not implemented"),
        }
    }
}

impl std::error::Error for SaError {}

impl From<CryptoError> for SaError {
    fn from(e: CryptoError) -> Self {
        SaError::Crypto(e)
    }
}

pub(crate) fn check_config(config: &SaConfig, direction: Direction) -> Result<(), SaError> {
    if config.direction != direction {
        return Err(SaError::WrongDirection { expected: direction });
    }
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.1
    //# The SPI value of zero (0) is reserved for local, implementation-specific use and MUST NOT
    //# be sent on the wire.
    if config.spi == 0 {
        return Err(SaError::ZeroSpi);
    }
    if config.local.is_ipv4() != config.remote.is_ipv4() {
        return Err(SaError::MixedAddressFamilies);
    }
    if config.replay_window > MAX_REPLAY_WINDOW {
        return Err(SaError::ReplayWindowTooLarge { size: config.replay_window });
    }
    if config.esn && config.replay_window == 0 && direction == Direction::Inbound {
        return Err(SaError::EsnWithoutReplayWindow);
    }
    match config.protocol {
        Protocol::Ah => {
            //= https://www.rfc-editor.org/rfc/rfc3948#section-1
            //# Because of the way AH works ... it cannot be used with NAT traversal
            if config.encap.is_some() {
                return Err(SaError::AhOverNat);
            }
            if config.suite.encryption() != rampart_sa::Encryption::Null
                || config.suite.integrity() == rampart_sa::Integrity::None
            {
                return Err(SaError::AhSuite);
            }
        }
        Protocol::Esp if config.suite.is_gmac() => return Err(SaError::GmacForEsp),
        Protocol::Esp => {}
    }
    Ok(())
}

/// Where ESP goes in an IPv6 packet in transport mode (RFC 4303 section 3.1.1): after the
/// Hop-by-Hop, Routing, Fragment and Destination Options headers that precede the upper layer.
pub(crate) struct Ipv6InsertionPoint {
    /// Offset of the upper-layer header (where ESP goes).
    pub offset: usize,
    /// The upper-layer protocol (the ESP next header).
    pub protocol: u8,
    /// Offset of the next-header byte that names the upper layer (and will name ESP).
    pub next_header_pos: usize,
}

/// Walks the extension headers of a whole IPv6 packet to its upper layer; `None` when the
/// chain is malformed or longer than 8 headers, and, unless `allow_fragment_header`, when it
/// holds a Fragment header (transport mode protects whole datagrams; on the inbound side the
/// caller has already refused real fragments, so only atomic ones remain).
pub(crate) fn ipv6_upper_layer(packet: &[u8], allow_fragment_header: bool) -> Option<Ipv6InsertionPoint> {
    const FIXED: usize = 40;
    const FRAGMENT_HEADER: usize = 8;
    let mut protocol = *packet.get(6)?;
    let mut next_header_pos = 6;
    let mut offset = FIXED;
    for _ in 0..8 {
        let len = match protocol {
            ip_protocol::HOPOPT | ip_protocol::IPV6_ROUTE | ip_protocol::IPV6_OPTS => {
                (usize::from(*packet.get(offset + 1)?) + 1) * 8
            }
            ip_protocol::IPV6_FRAG if allow_fragment_header => FRAGMENT_HEADER,
            ip_protocol::IPV6_FRAG => return None,
            _ => return Some(Ipv6InsertionPoint { offset, protocol, next_header_pos }),
        };
        if offset + len > packet.len() {
            return None;
        }
        next_header_pos = offset;
        protocol = packet[offset];
        offset += len;
    }
    None
}

/// Whether a counter reached a limit (0: no limit).
pub(crate) fn exceeds(value: u64, limit: u64) -> bool {
    limit != 0 && value >= limit
}
