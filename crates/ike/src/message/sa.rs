//! The Security Association payload: proposals, transforms and attributes
//! (RFC 7296 sections 3.3, 3.3.1, 3.3.2, 3.3.5).
//!
//! This is the wire form only: transform numbers as received. Which of them Rampart accepts is
//! decided in [`crate::proposal`]; this module never judges an algorithm.

use super::reader::{ParseError, Reader};

/// Protocol ID of a proposal, a notify or a delete (RFC 7296 section 3.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolId {
    /// IKE (1).
    Ike,
    /// AH (2).
    Ah,
    /// ESP (3).
    Esp,
    /// Anything else, including 0 where a notify carries none.
    Other(u8),
}

impl ProtocolId {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            ProtocolId::Ike => 1,
            ProtocolId::Ah => 2,
            ProtocolId::Esp => 3,
            ProtocolId::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> ProtocolId {
        match v {
            1 => ProtocolId::Ike,
            2 => ProtocolId::Ah,
            3 => ProtocolId::Esp,
            v => ProtocolId::Other(v),
        }
    }
}

impl From<rampart_sa::Protocol> for ProtocolId {
    /// The Protocol ID of a CHILD_SA's proposals, notifies and deletes (2 for AH, 3 for ESP).
    fn from(p: rampart_sa::Protocol) -> ProtocolId {
        match p {
            rampart_sa::Protocol::Esp => ProtocolId::Esp,
            rampart_sa::Protocol::Ah => ProtocolId::Ah,
        }
    }
}

/// Transform types (RFC 7296 section 3.3.2).
pub mod transform_type {
    /// Encryption algorithm (ENCR).
    pub const ENCR: u8 = 1;
    /// Pseudorandom function (PRF).
    pub const PRF: u8 = 2;
    /// Integrity algorithm (INTEG).
    pub const INTEG: u8 = 3;
    /// Diffie-Hellman group (D-H).
    pub const DH: u8 = 4;
    /// Extended sequence numbers (ESN).
    pub const ESN: u8 = 5;
}

/// Attribute type Key Length (RFC 7296 section 3.3.5), always in TV form.
pub const ATTR_KEY_LENGTH: u16 = 14;

/// One transform of a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    /// Transform type (see [`transform_type`]).
    pub kind: u8,
    /// Transform ID within the type.
    pub id: u16,
    /// Key Length attribute in bits, when present.
    pub key_length: Option<u16>,
    /// Whether attributes other than Key Length were present (such a transform is not
    /// understood and must not be selected, RFC 7296 section 3.3.6).
    pub unknown_attributes: bool,
}

impl Transform {
    /// A transform without attributes.
    pub fn new(kind: u8, id: u16) -> Transform {
        Transform { kind, id, key_length: None, unknown_attributes: false }
    }

    /// A transform with a Key Length attribute.
    pub fn with_key_length(kind: u8, id: u16, bits: u16) -> Transform {
        Transform { kind, id, key_length: Some(bits), unknown_attributes: false }
    }
}

/// One proposal of an SA payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal number (the responder echoes the number it selected).
    pub number: u8,
    /// Protocol.
    pub protocol: ProtocolId,
    /// Sender's SPI: empty in IKE_SA_INIT, 8 bytes for an IKE rekey, 4 bytes for ESP/AH.
    pub spi: Vec<u8>,
    /// Transforms, in order.
    pub transforms: Vec<Transform>,
}

/// Parses the body of an SA payload.
pub(super) fn parse_sa(body: &[u8]) -> Result<Vec<Proposal>, ParseError> {
    let mut r = Reader::new(body);
    let mut proposals = Vec::new();
    let mut expected_number = 1u8;
    loop {
        let last_or_more = r.u8("proposal header")?;
        let _reserved = r.u8("proposal header")?;
        let len = r.u16("proposal header")? as usize;
        if len < 8 {
            return Err(ParseError::BadLength { what: "proposal", length: len });
        }
        let mut p = Reader::new(r.take(len - 4, "proposal")?);
        let number = p.u8("proposal")?;
        //= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.1
        //# The first Proposal in an initiator's SA payload MUST be 1, and
        //# subsequent Proposals MUST be one more than the previous proposal
        //# (indicating an OR of the two proposals).
        // A response carries the one number that was chosen, so only a list of several is checked.
        if !proposals.is_empty() && number != expected_number {
            return Err(ParseError::Invalid("proposal numbers out of sequence"));
        }
        expected_number = number.wrapping_add(1);
        let protocol = ProtocolId::from_u8(p.u8("proposal")?);
        let spi_size = p.u8("proposal")? as usize;
        let num_transforms = p.u8("proposal")? as usize;
        let spi = p.take(spi_size, "proposal SPI")?.to_vec();
        let mut transforms = Vec::with_capacity(num_transforms);
        for i in 0..num_transforms {
            let t_last = p.u8("transform header")?;
            let _ = p.u8("transform header")?;
            let t_len = p.u16("transform header")? as usize;
            if t_len < 8 {
                return Err(ParseError::BadLength { what: "transform", length: t_len });
            }
            let mut t = Reader::new(p.take(t_len - 4, "transform")?);
            let kind = t.u8("transform")?;
            let _ = t.u8("transform")?;
            let id = t.u16("transform")?;
            let mut key_length = None;
            let mut unknown_attributes = false;
            while !t.is_empty() {
                let ty = t.u16("attribute")?;
                if ty & 0x8000 != 0 {
                    let value = t.u16("attribute")?;
                    if ty & 0x7fff == ATTR_KEY_LENGTH && key_length.is_none() {
                        key_length = Some(value);
                    } else {
                        unknown_attributes = true;
                    }
                } else {
                    let alen = t.u16("attribute")? as usize;
                    t.take(alen, "attribute value")?;
                    unknown_attributes = true;
                }
            }
            let is_last = i + 1 == num_transforms;
            if (t_last == 0) != is_last || (t_last != 0 && t_last != 3) {
                return Err(ParseError::Invalid("transform last/more flag disagrees with the count"));
            }
            transforms.push(Transform { kind, id, key_length, unknown_attributes });
        }
        if !p.is_empty() {
            return Err(ParseError::Invalid("trailing bytes in proposal"));
        }
        proposals.push(Proposal { number, protocol, spi, transforms });
        match last_or_more {
            0 if r.is_empty() => return Ok(proposals),
            0 => return Err(ParseError::Invalid("bytes after the last proposal")),
            2 if r.is_empty() => return Err(ParseError::Invalid("proposal marked 'more' is the last")),
            2 => {}
            _ => return Err(ParseError::Invalid("proposal last/more flag")),
        }
    }
}

/// Appends the body of an SA payload. Panics on nothing; lengths that do not fit the 16-bit
/// fields are the caller's bug and are truncated by construction (proposals are small).
pub(super) fn emit_sa(proposals: &[Proposal], out: &mut Vec<u8>) {
    for (i, p) in proposals.iter().enumerate() {
        let start = out.len();
        out.push(if i + 1 == proposals.len() { 0 } else { 2 });
        out.push(0);
        out.extend_from_slice(&[0, 0]);
        out.push(p.number);
        out.push(p.protocol.to_u8());
        out.push(p.spi.len() as u8);
        out.push(p.transforms.len() as u8);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let t_start = out.len();
            out.push(if j + 1 == p.transforms.len() { 0 } else { 3 });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            out.push(t.kind);
            out.push(0);
            out.extend_from_slice(&t.id.to_be_bytes());
            if let Some(bits) = t.key_length {
                out.extend_from_slice(&(0x8000 | ATTR_KEY_LENGTH).to_be_bytes());
                out.extend_from_slice(&bits.to_be_bytes());
            }
            let t_len = (out.len() - t_start) as u16;
            out[t_start + 2..t_start + 4].copy_from_slice(&t_len.to_be_bytes());
        }
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}
