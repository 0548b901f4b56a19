//! The fixed 28-byte IKE header (RFC 7296 section 3.1).
//!
//! Parsing checks the length field against the datagram once; the header never reads past it.

use super::reader::ParseError;

/// Length of the IKE header on the wire.
pub const HEADER_LEN: usize = 28;

/// Exchange types (RFC 7296 section 3.1, IANA "IKEv2 Exchange Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeType {
    /// IKE_SA_INIT (34).
    IkeSaInit,
    /// IKE_AUTH (35).
    IkeAuth,
    /// CREATE_CHILD_SA (36).
    CreateChildSa,
    /// INFORMATIONAL (37).
    Informational,
    /// Any other value, kept so that the message can be answered or dropped deliberately.
    Other(u8),
}

impl ExchangeType {
    /// The wire value.
    pub fn to_u8(self) -> u8 {
        match self {
            ExchangeType::IkeSaInit => 34,
            ExchangeType::IkeAuth => 35,
            ExchangeType::CreateChildSa => 36,
            ExchangeType::Informational => 37,
            ExchangeType::Other(v) => v,
        }
    }

    /// From the wire value.
    pub fn from_u8(v: u8) -> ExchangeType {
        match v {
            34 => ExchangeType::IkeSaInit,
            35 => ExchangeType::IkeAuth,
            36 => ExchangeType::CreateChildSa,
            37 => ExchangeType::Informational,
            v => ExchangeType::Other(v),
        }
    }
}

/// Header flag: the sender is the original initiator of the IKE SA.
pub const FLAG_INITIATOR: u8 = 0x08;
/// Header flag: the sender could speak a higher major version.
pub const FLAG_VERSION: u8 = 0x10;
/// Header flag: this message is a response.
pub const FLAG_RESPONSE: u8 = 0x20;

/// The IKE header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// IKE SA initiator's SPI.
    pub spi_i: u64,
    /// IKE SA responder's SPI (0 in the first IKE_SA_INIT request).
    pub spi_r: u64,
    /// Type of the first payload.
    pub next_payload: u8,
    /// Major version (2).
    pub major: u8,
    /// Minor version (0).
    pub minor: u8,
    /// Exchange type.
    pub exchange: ExchangeType,
    /// Raw flags (I, V, R bits).
    pub flags: u8,
    /// Message ID.
    pub message_id: u32,
    /// Total message length, header included.
    pub length: u32,
}

impl Header {
    /// Whether the R (response) flag is set.
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    /// Whether the I (original initiator) flag is set.
    pub fn is_initiator(&self) -> bool {
        self.flags & FLAG_INITIATOR != 0
    }

    /// Parses the header of `buf`, checking that the length field equals the datagram length.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.1
    //# Length (4 octets, unsigned integer) - Length of the total message
    //# (header + payloads) in octets.
    pub fn parse(buf: &[u8]) -> Result<Header, ParseError> {
        if buf.len() < HEADER_LEN {
            return Err(ParseError::Truncated { what: "IKE header", need: HEADER_LEN, have: buf.len() });
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let version = buf[17];
        let length = u32::from_be_bytes([buf[24], buf[25], buf[26], buf[27]]);
        let header = Header {
            spi_i: u64_at(0),
            spi_r: u64_at(8),
            next_payload: buf[16],
            major: version >> 4,
            minor: version & 0x0f,
            exchange: ExchangeType::from_u8(buf[18]),
            flags: buf[19],
            message_id: u32::from_be_bytes([buf[20], buf[21], buf[22], buf[23]]),
            length,
        };
        if header.major != 2 {
            return Err(ParseError::MajorVersion(header.major));
        }
        if length as usize != buf.len() {
            return Err(ParseError::MessageLength { field: length, datagram: buf.len() });
        }
        Ok(header)
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i.to_be_bytes());
        out.extend_from_slice(&self.spi_r.to_be_bytes());
        out.push(self.next_payload);
        out.push((self.major << 4) | (self.minor & 0x0f));
        out.push(self.exchange.to_u8());
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}
