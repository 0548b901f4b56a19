//! IKEv2 messages on the wire (RFC 7296 section 3): the header, the payload chain and every
//! payload body Rampart reads or writes.
//!
//! Parsing validates every length once and builds owned values; nothing here can index past a
//! buffer, and every malformed input ends in a named [`ParseError`]. The Encrypted (SK) payload
//! is located here but opened in [`crate::sk`]. This module knows nothing of keys or state.

mod header;
mod notify;
mod reader;
mod sa;

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use self::reader::Reader;

pub use header::{ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, FLAG_VERSION, HEADER_LEN, Header};
pub use notify::NotifyType;
pub use rampart_sa::TrafficSelector;
pub use reader::{MAX_PAYLOADS, ParseError};
pub use sa::{ATTR_KEY_LENGTH, Proposal, ProtocolId, Transform, transform_type};

/// Payload type numbers (RFC 7296 section 3.2, RFC 7383).
pub mod payload_type {
    /// No next payload.
    pub const NONE: u8 = 0;
    /// Security Association.
    pub const SA: u8 = 33;
    /// Key Exchange.
    pub const KE: u8 = 34;
    /// Identification - Initiator.
    pub const IDI: u8 = 35;
    /// Identification - Responder.
    pub const IDR: u8 = 36;
    /// Certificate.
    pub const CERT: u8 = 37;
    /// Certificate Request.
    pub const CERTREQ: u8 = 38;
    /// Authentication.
    pub const AUTH: u8 = 39;
    /// Nonce.
    pub const NONCE: u8 = 40;
    /// Notify.
    pub const NOTIFY: u8 = 41;
    /// Delete.
    pub const DELETE: u8 = 42;
    /// Vendor ID.
    pub const VENDOR: u8 = 43;
    /// Traffic Selector - Initiator.
    pub const TSI: u8 = 44;
    /// Traffic Selector - Responder.
    pub const TSR: u8 = 45;
    /// Encrypted and Authenticated.
    pub const SK: u8 = 46;
    /// Configuration.
    pub const CP: u8 = 47;
    /// Extensible Authentication.
    pub const EAP: u8 = 48;
    /// Encrypted and Authenticated Fragment (RFC 7383).
    pub const SKF: u8 = 53;
}

/// Identification types (RFC 7296 section 3.5).
pub mod id_type {
    /// ID_IPV4_ADDR.
    pub const IPV4_ADDR: u8 = 1;
    /// ID_FQDN.
    pub const FQDN: u8 = 2;
    /// ID_RFC822_ADDR.
    pub const RFC822_ADDR: u8 = 3;
    /// ID_IPV6_ADDR.
    pub const IPV6_ADDR: u8 = 5;
    /// ID_DER_ASN1_DN.
    pub const DER_ASN1_DN: u8 = 9;
    /// ID_DER_ASN1_GN.
    pub const DER_ASN1_GN: u8 = 10;
    /// ID_KEY_ID.
    pub const KEY_ID: u8 = 11;
}

/// An IKE identity: the body of an IDi/IDr payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identification {
    /// ID type (see [`id_type`]).
    pub kind: u8,
    /// Identification data.
    pub data: Vec<u8>,
}

impl Identification {
    /// An ID_FQDN.
    pub fn fqdn(name: &str) -> Identification {
        Identification { kind: id_type::FQDN, data: name.as_bytes().to_vec() }
    }

    /// An ID_RFC822_ADDR.
    pub fn rfc822(addr: &str) -> Identification {
        Identification { kind: id_type::RFC822_ADDR, data: addr.as_bytes().to_vec() }
    }

    /// An ID_KEY_ID (opaque bytes).
    pub fn key_id(id: &[u8]) -> Identification {
        Identification { kind: id_type::KEY_ID, data: id.to_vec() }
    }

    /// An ID_IPV4_ADDR or ID_IPV6_ADDR.
    pub fn addr(addr: IpAddr) -> Identification {
        match addr {
            IpAddr::V4(a) => Identification { kind: id_type::IPV4_ADDR, data: a.octets().to_vec() },
            IpAddr::V6(a) => Identification { kind: id_type::IPV6_ADDR, data: a.octets().to_vec() },
        }
    }

    /// Whether this identity, taken as a pattern (a template's `remote.id`), matches `id`: equal,
    /// or of the same type with wildcards (`*.branch.example.net`, `*@example.net`, a
    /// distinguished name with `CN=*`).
    pub fn matches(&self, id: &Identification) -> bool {
        if self == id {
            return true;
        }
        if self.kind != id.kind {
            return false;
        }
        match self.kind {
            id_type::FQDN | id_type::RFC822_ADDR => {
                match (core::str::from_utf8(&self.data), core::str::from_utf8(&id.data)) {
                    (Ok(p), Ok(n)) => crate::identity::name_matches(p, n),
                    _ => false,
                }
            }
            id_type::DER_ASN1_DN => crate::identity::dn_matches(&self.data, &id.data),
            _ => false,
        }
    }

    /// Whether this identity has wildcards (it stands for many peers, and is never sent as IDr).
    pub fn is_pattern(&self) -> bool {
        match self.kind {
            id_type::FQDN | id_type::RFC822_ADDR => self.data.first() == Some(&b'*'),
            id_type::DER_ASN1_DN => crate::identity::dn_has_wildcard(&self.data),
            _ => false,
        }
    }

    /// Parses an identity as swanctl.conf writes `id`: an IP address, `@name` or a name with dots
    /// (FQDN), `user@domain` (RFC822), `@#hex` (KEY_ID), a distinguished name
    /// (`C=DE, O=Example, CN=gw`), or `fqdn:`, `email:`, `keyid:#hex`, `asn1dn:` prefixes.
    pub fn from_swanctl(s: &str) -> Option<Identification> {
        if let Some(rest) = s.strip_prefix("fqdn:") {
            return Some(Identification::fqdn(rest));
        }
        if let Some(rest) = s.strip_prefix("email:").or_else(|| s.strip_prefix("rfc822:")) {
            return Some(Identification::rfc822(rest));
        }
        if let Some(hex) = s.strip_prefix("keyid:#").or_else(|| s.strip_prefix("@#")) {
            return Some(Identification::key_id(&crate::hex::decode(hex)?));
        }
        if let Some(rest) = s.strip_prefix("keyid:") {
            return Some(Identification::key_id(rest.as_bytes()));
        }
        if let Ok(a) = s.parse::<IpAddr>() {
            return Some(Identification::addr(a));
        }
        // A distinguished name: "C=DE, O=Example, CN=gw" (strongSwan's order), "asn1dn:...".
        let dn = s.strip_prefix("asn1dn:").unwrap_or(s);
        if dn.contains('=') && !dn.starts_with('@') {
            return crate::identity::dn_from_text(dn).map(|data| Identification { kind: id_type::DER_ASN1_DN, data });
        }
        if let Some(rest) = s.strip_prefix('@') {
            return Some(Identification::fqdn(rest));
        }
        if s.contains('@') {
            return Some(Identification::rfc822(s));
        }
        if s.is_empty() {
            return None;
        }
        Some(Identification::fqdn(s))
    }
}

impl fmt::Display for Identification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.data.len()) {
            (id_type::IPV4_ADDR, 4) => {
                write!(f, "{}", Ipv4Addr::new(self.data[0], self.data[1], self.data[2], self.data[3]))
            }
            (id_type::IPV6_ADDR, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&self.data);
                write!(f, "{}", Ipv6Addr::from(b))
            }
            (id_type::FQDN, _) | (id_type::RFC822_ADDR, _) => f.write_str(&String::from_utf8_lossy(&self.data)),
            (id_type::DER_ASN1_DN, _) if crate::identity::dn_text(&self.data).is_some() => {
                f.write_str(&crate::identity::dn_text(&self.data).unwrap_or_default())
            }
            _ => {
                write!(f, "type{}:#", self.kind)?;
                for b in &self.data {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// A Notify payload (RFC 7296 section 3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// Protocol the notify is about (0 when none).
    pub protocol: ProtocolId,
    /// SPI of the SA it is about (empty when none).
    pub spi: Vec<u8>,
    /// Notify message type.
    pub kind: NotifyType,
    /// Notification data.
    pub data: Vec<u8>,
}

impl Notify {
    /// A notify about no SA.
    pub fn new(kind: NotifyType, data: Vec<u8>) -> Notify {
        Notify { protocol: ProtocolId::Other(0), spi: Vec::new(), kind, data }
    }
}

/// A Delete payload (RFC 7296 section 3.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// IKE (the SA the message travels on; no SPIs) or ESP/AH.
    pub protocol: ProtocolId,
    /// SPIs of the deleted SAs, as the sender receives on them (4 bytes each for ESP/AH).
    pub spis: Vec<u32>,
}

/// Traffic selector types (RFC 7296 section 3.13.1).
pub mod ts_type {
    /// TS_IPV4_ADDR_RANGE.
    pub const IPV4_ADDR_RANGE: u8 = 7;
    /// TS_IPV6_ADDR_RANGE.
    pub const IPV6_ADDR_RANGE: u8 = 8;
}

/// One payload, as parsed or to be emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Security Association.
    Sa(Vec<Proposal>),
    /// Key Exchange.
    Ke {
        /// Diffie-Hellman group number.
        group: u16,
        /// Public value.
        data: Vec<u8>,
    },
    /// Identification - Initiator.
    IdI(Identification),
    /// Identification - Responder.
    IdR(Identification),
    /// Certificate (passed through).
    Cert {
        /// Certificate encoding.
        encoding: u8,
        /// Certificate data.
        data: Vec<u8>,
    },
    /// Certificate Request (passed through).
    CertReq {
        /// Certificate encoding.
        encoding: u8,
        /// Certification authority data.
        data: Vec<u8>,
    },
    /// Authentication.
    Auth {
        /// Auth method.
        method: u8,
        /// Authentication data.
        data: Vec<u8>,
    },
    /// Nonce.
    Nonce(Vec<u8>),
    /// Notify.
    Notify(Notify),
    /// Delete.
    Delete(Delete),
    /// Vendor ID.
    Vendor(Vec<u8>),
    /// Traffic Selector - Initiator.
    TsI(Vec<TrafficSelector>),
    /// Traffic Selector - Responder.
    TsR(Vec<TrafficSelector>),
    /// Configuration (read and ignored).
    Cp {
        /// CFG type.
        cfg_type: u8,
        /// Raw attributes.
        attributes: Vec<u8>,
    },
    /// EAP (carried for a later authenticator).
    Eap(Vec<u8>),
    /// A payload type Rampart does not know.
    Unknown {
        /// The payload type.
        kind: u8,
        /// Whether the critical bit was set.
        critical: bool,
        /// The body.
        body: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number.
    pub fn kind(&self) -> u8 {
        use payload_type as t;
        match self {
            Payload::Sa(_) => t::SA,
            Payload::Ke { .. } => t::KE,
            Payload::IdI(_) => t::IDI,
            Payload::IdR(_) => t::IDR,
            Payload::Cert { .. } => t::CERT,
            Payload::CertReq { .. } => t::CERTREQ,
            Payload::Auth { .. } => t::AUTH,
            Payload::Nonce(_) => t::NONCE,
            Payload::Notify(_) => t::NOTIFY,
            Payload::Delete(_) => t::DELETE,
            Payload::Vendor(_) => t::VENDOR,
            Payload::TsI(_) => t::TSI,
            Payload::TsR(_) => t::TSR,
            Payload::Cp { .. } => t::CP,
            Payload::Eap(_) => t::EAP,
            Payload::Unknown { kind, .. } => *kind,
        }
    }

    /// A notify with no SPI.
    pub fn notify(kind: NotifyType, data: Vec<u8>) -> Payload {
        Payload::Notify(Notify::new(kind, data))
    }

    fn parse_body(kind: u8, critical: bool, body: &[u8]) -> Result<Payload, ParseError> {
        use payload_type as t;
        let mut r = Reader::new(body);
        let p = match kind {
            t::SA => Payload::Sa(sa::parse_sa(body)?),
            t::KE => {
                let group = r.u16("KE payload")?;
                r.u16("KE payload")?;
                let data = r.rest().to_vec();
                if data.is_empty() {
                    return Err(ParseError::Invalid("empty key exchange data"));
                }
                Payload::Ke { group, data }
            }
            t::IDI | t::IDR => {
                let id_kind = r.u8("ID payload")?;
                r.take(3, "ID payload")?;
                let id = Identification { kind: id_kind, data: r.rest().to_vec() };
                if id.data.is_empty() {
                    return Err(ParseError::Invalid("empty identification data"));
                }
                if kind == t::IDI { Payload::IdI(id) } else { Payload::IdR(id) }
            }
            t::CERT | t::CERTREQ => {
                let encoding = r.u8("CERT payload")?;
                let data = r.rest().to_vec();
                if kind == t::CERT { Payload::Cert { encoding, data } } else { Payload::CertReq { encoding, data } }
            }
            t::AUTH => {
                let method = r.u8("AUTH payload")?;
                r.take(3, "AUTH payload")?;
                let data = r.rest().to_vec();
                if data.is_empty() {
                    return Err(ParseError::Invalid("empty authentication data"));
                }
                Payload::Auth { method, data }
            }
            t::NONCE => {
                //= https://www.rfc-editor.org/rfc/rfc7296#section-3.9
                //# The size of the Nonce Data MUST be between 16 and 256 octets, inclusive.
                if !(16..=256).contains(&body.len()) {
                    return Err(ParseError::Invalid("nonce must be 16 to 256 bytes"));
                }
                Payload::Nonce(body.to_vec())
            }
            t::NOTIFY => {
                let protocol = ProtocolId::from_u8(r.u8("Notify payload")?);
                let spi_size = r.u8("Notify payload")? as usize;
                let kind = NotifyType(r.u16("Notify payload")?);
                let spi = r.take(spi_size, "Notify SPI")?.to_vec();
                Payload::Notify(Notify { protocol, spi, kind, data: r.rest().to_vec() })
            }
            t::DELETE => {
                let protocol = ProtocolId::from_u8(r.u8("Delete payload")?);
                let spi_size = r.u8("Delete payload")?;
                let count = r.u16("Delete payload")? as usize;
                let mut spis = Vec::new();
                match (protocol, spi_size) {
                    (ProtocolId::Ike, 0) if count == 0 => {}
                    (ProtocolId::Esp | ProtocolId::Ah, 4) => {
                        if r.len() != count * 4 {
                            return Err(ParseError::Invalid("Delete SPI count disagrees with the length"));
                        }
                        for _ in 0..count {
                            spis.push(r.u32("Delete SPI")?);
                        }
                    }
                    _ => return Err(ParseError::Invalid("Delete payload protocol/SPI size")),
                }
                if !r.is_empty() {
                    return Err(ParseError::Invalid("trailing bytes in Delete payload"));
                }
                Payload::Delete(Delete { protocol, spis })
            }
            t::VENDOR => Payload::Vendor(body.to_vec()),
            t::TSI | t::TSR => {
                let ts = parse_ts(body)?;
                if kind == t::TSI { Payload::TsI(ts) } else { Payload::TsR(ts) }
            }
            t::CP => {
                let cfg_type = r.u8("CP payload")?;
                r.take(3, "CP payload")?;
                Payload::Cp { cfg_type, attributes: r.rest().to_vec() }
            }
            t::EAP => Payload::Eap(body.to_vec()),
            _ => Payload::Unknown { kind, critical, body: body.to_vec() },
        };
        Ok(p)
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(proposals) => sa::emit_sa(proposals, out),
            Payload::Ke { group, data } => {
                out.extend_from_slice(&group.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(data);
            }
            Payload::IdI(id) | Payload::IdR(id) => {
                out.push(id.kind);
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(&id.data);
            }
            Payload::Cert { encoding, data } | Payload::CertReq { encoding, data } => {
                out.push(*encoding);
                out.extend_from_slice(data);
            }
            Payload::Auth { method, data } => {
                out.push(*method);
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(data);
            }
            Payload::Nonce(n) | Payload::Vendor(n) | Payload::Eap(n) => out.extend_from_slice(n),
            Payload::Notify(n) => {
                out.push(n.protocol.to_u8());
                out.push(n.spi.len() as u8);
                out.extend_from_slice(&n.kind.0.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Payload::Delete(d) => {
                out.push(d.protocol.to_u8());
                let spi_size = if matches!(d.protocol, ProtocolId::Ike) { 0 } else { 4 };
                out.push(spi_size);
                out.extend_from_slice(&(d.spis.len() as u16).to_be_bytes());
                for spi in &d.spis {
                    out.extend_from_slice(&spi.to_be_bytes());
                }
            }
            Payload::TsI(ts) | Payload::TsR(ts) => emit_ts(ts, out),
            Payload::Cp { cfg_type, attributes } => {
                out.push(*cfg_type);
                out.extend_from_slice(&[0, 0, 0]);
                out.extend_from_slice(attributes);
            }
            Payload::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }
}

fn parse_ts(body: &[u8]) -> Result<Vec<TrafficSelector>, ParseError> {
    let mut r = Reader::new(body);
    let count = r.u8("TS payload")? as usize;
    r.take(3, "TS payload")?;
    if count == 0 {
        return Err(ParseError::Invalid("traffic selector payload without selectors"));
    }
    let mut out = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let ts_type = r.u8("traffic selector")?;
        let protocol = r.u8("traffic selector")?;
        let len = r.u16("traffic selector")? as usize;
        if len < 8 {
            return Err(ParseError::BadLength { what: "traffic selector", length: len });
        }
        let mut s = Reader::new(r.take(len - 4, "traffic selector")?);
        let start_port = s.u16("traffic selector")?;
        let end_port = s.u16("traffic selector")?;
        let (start, end) = match (ts_type, len) {
            (ts_type::IPV4_ADDR_RANGE, 16) => {
                let a = s.u32("traffic selector")?;
                let b = s.u32("traffic selector")?;
                (IpAddr::V4(a.into()), IpAddr::V4(b.into()))
            }
            (ts_type::IPV6_ADDR_RANGE, 40) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(s.take(16, "traffic selector")?);
                let mut b = [0u8; 16];
                b.copy_from_slice(s.take(16, "traffic selector")?);
                (IpAddr::V6(a.into()), IpAddr::V6(b.into()))
            }
            (ts_type::IPV4_ADDR_RANGE | ts_type::IPV6_ADDR_RANGE, _) => {
                return Err(ParseError::Invalid("traffic selector length for its type"));
            }
            // Other selector types (RFC 4595 Fibre Channel, ...) are skipped: none of ours.
            _ => continue,
        };
        out.push(TrafficSelector { protocol, start, end, start_port, end_port });
    }
    if !r.is_empty() {
        return Err(ParseError::Invalid("trailing bytes in TS payload"));
    }
    Ok(out)
}

fn emit_ts(ts: &[TrafficSelector], out: &mut Vec<u8>) {
    out.push(ts.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    for t in ts {
        match (t.start, t.end) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                out.extend_from_slice(&[ts_type::IPV4_ADDR_RANGE, t.protocol, 0, 16]);
                out.extend_from_slice(&t.start_port.to_be_bytes());
                out.extend_from_slice(&t.end_port.to_be_bytes());
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                out.extend_from_slice(&[ts_type::IPV6_ADDR_RANGE, t.protocol, 0, 40]);
                out.extend_from_slice(&t.start_port.to_be_bytes());
                out.extend_from_slice(&t.end_port.to_be_bytes());
                out.extend_from_slice(&a.octets());
                out.extend_from_slice(&b.octets());
            }
            // A selector mixing families cannot be written; TrafficSelector constructors never
            // build one. It is written as an empty IPv4 range so that the count stays right.
            _ => {
                out.extend_from_slice(&[ts_type::IPV4_ADDR_RANGE, t.protocol, 0, 16, 0xff, 0xff, 0, 0]);
                out.extend_from_slice(&[255, 255, 255, 255, 0, 0, 0, 0]);
            }
        }
    }
}

/// The fields an Encrypted Fragment payload (SKF, RFC 7383 section 2.5) has before its IV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentNumber {
    /// Fragment Number, from 1 (as received: [`crate::fragment`] checks it).
    pub number: u16,
    /// Total Fragments.
    pub total: u16,
}

/// Where the Encrypted payload (SK), or the Encrypted Fragment payload (SKF), sits in a parsed
/// message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncryptedLocation {
    /// Type of the first payload inside (an SKF's Next Payload: the first inner payload's type
    /// in fragment 1, zero in the others).
    pub first_inner: u8,
    /// Offset of the SK or SKF payload's generic header in the message.
    pub header_offset: usize,
    /// Offset of the IV; the rest of the message is IV, ciphertext and ICV. Everything before
    /// it (the SKF's fragment fields too) is what an AEAD authenticates as associated data.
    pub body_offset: usize,
    /// `Some` for an Encrypted Fragment payload: its Fragment Number and Total Fragments.
    pub fragment: Option<FragmentNumber>,
}

/// A parsed message: the header, the cleartext payloads, and where the SK payload is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// Payloads outside the Encrypted payload.
    pub payloads: Vec<Payload>,
    /// The Encrypted payload, when present (always last).
    pub encrypted: Option<EncryptedLocation>,
}

impl Message {
    /// Parses a whole datagram.
    pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
        let header = Header::parse(buf)?;
        let (payloads, encrypted) = parse_chain(buf, HEADER_LEN, header.next_payload, true)?;
        Ok(Message { header, payloads, encrypted })
    }

    /// Builds a message without an Encrypted payload; sets the header's next payload and length.
    pub fn emit_plain(mut header: Header, payloads: &[Payload]) -> Vec<u8> {
        let mut body = Vec::new();
        header.next_payload = emit_chain(payloads, &mut body);
        header.length = (HEADER_LEN + body.len()) as u32;
        let mut out = Vec::with_capacity(header.length as usize);
        header.emit(&mut out);
        out.extend_from_slice(&body);
        out
    }

    /// The first notify of a type.
    pub fn notify(&self, kind: NotifyType) -> Option<&Notify> {
        find_notify(&self.payloads, kind)
    }
}

/// The first error notify in a list (RFC 7296 section 3.10.1: types below 16384).
pub fn error_notify(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind.is_error() => Some(n.kind),
        _ => None,
    })
}

/// The first notify of a type in a payload list.
pub fn find_notify(payloads: &[Payload], kind: NotifyType) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind == kind => Some(n),
        _ => None,
    })
}

/// The first unknown payload with the critical bit set (RFC 7296 section 2.5).
pub fn unsupported_critical(payloads: &[Payload]) -> Option<u8> {
    payloads.iter().find_map(|p| match p {
        Payload::Unknown { kind, critical: true, .. } => Some(*kind),
        _ => None,
    })
}

/// Parses a payload chain starting at `offset` of `buf` with payload type `first`.
/// With `allow_sk` the chain may end in an Encrypted payload, which must then be last.
pub(crate) fn parse_chain(
    buf: &[u8],
    offset: usize,
    first: u8,
    allow_sk: bool,
) -> Result<(Vec<Payload>, Option<EncryptedLocation>), ParseError> {
    let mut payloads = Vec::new();
    let mut next = first;
    let mut pos = offset;
    while next != payload_type::NONE {
        if payloads.len() >= MAX_PAYLOADS {
            return Err(ParseError::TooManyPayloads);
        }
        let rest = buf.get(pos..).unwrap_or(&[]);
        let mut r = Reader::new(rest);
        let following = r.u8("payload header")?;
        let flags = r.u8("payload header")?;
        let len = r.u16("payload header")? as usize;
        //= https://www.rfc-editor.org/rfc/rfc7296#section-3.2
        //# Payload Length (2 octets, unsigned integer) - Length in octets of
        //# the current payload, including the generic payload header.
        if len < 4 {
            return Err(ParseError::BadLength { what: "payload", length: len });
        }
        let body = r.take(len - 4, "payload body")?;
        if next == payload_type::SK || next == payload_type::SKF {
            if !allow_sk {
                return Err(ParseError::Invalid("Encrypted payload where none may be"));
            }
            //= https://www.rfc-editor.org/rfc/rfc7383#section-2.5
            //# As is the case for the Encrypted payload, the Encrypted Fragment payload, if
            //# present in a message, MUST be the last payload in the message.
            if pos + len != buf.len() {
                return Err(ParseError::EncryptedNotLast);
            }
            let (fragment, body_offset) = if next == payload_type::SKF {
                let mut f = Reader::new(body);
                let number = f.u16("Encrypted Fragment payload")?;
                let total = f.u16("Encrypted Fragment payload")?;
                (Some(FragmentNumber { number, total }), pos + 8)
            } else {
                (None, pos + 4)
            };
            return Ok((
                payloads,
                Some(EncryptedLocation { first_inner: following, header_offset: pos, body_offset, fragment }),
            ));
        }
        payloads.push(Payload::parse_body(next, flags & 0x80 != 0, body)?);
        pos += len;
        next = following;
    }
    if pos != buf.len() {
        return Err(ParseError::Invalid("bytes after the last payload"));
    }
    Ok((payloads, None))
}

/// Appends a payload chain to `out` and returns the type of its first payload.
pub(crate) fn emit_chain(payloads: &[Payload], out: &mut Vec<u8>) -> u8 {
    for (i, p) in payloads.iter().enumerate() {
        let start = out.len();
        let following = payloads.get(i + 1).map_or(payload_type::NONE, Payload::kind);
        out.push(following);
        let critical = matches!(p, Payload::Unknown { critical: true, .. });
        out.push(if critical { 0x80 } else { 0 });
        out.extend_from_slice(&[0, 0]);
        p.emit_body(out);
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    payloads.first().map_or(payload_type::NONE, Payload::kind)
}
