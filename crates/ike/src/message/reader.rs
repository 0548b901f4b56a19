//! The bounds-checked cursor every payload parser reads with, and the error every parser
//! returns: shared by the message codec ([`super`]) and its payload modules, which import it
//! from here and never from each other's parents.
//!
//! Reads name what they read and fail with a [`ParseError`] instead of panicking; nothing here
//! allocates or knows a payload.

use core::fmt;

/// Most payloads accepted in one message (or inside one SK payload): bounds the work a peer can
/// ask for. Real messages carry fewer than 20.
pub const MAX_PAYLOADS: usize = 64;

/// Why a message could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer bytes than a structure needs.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// A length field below the structure's minimum.
    BadLength {
        /// Which structure.
        what: &'static str,
        /// The length field.
        length: usize,
    },
    /// The header's length field differs from the datagram's length.
    MessageLength {
        /// The header's length field.
        field: u32,
        /// The datagram's length.
        datagram: usize,
    },
    /// A major version other than 2 (RFC 7296 section 2.5: INVALID_MAJOR_VERSION).
    MajorVersion(u8),
    /// More than [`MAX_PAYLOADS`] payloads.
    TooManyPayloads,
    /// The Encrypted payload is not the last payload.
    EncryptedNotLast,
    /// Any other structural violation, named.
    Invalid(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated { what, need, have } => write!(f, "{what}: need {need} bytes, {have} left"),
            ParseError::BadLength { what, length } => write!(f, "{what}: length {length} is too small"),
            ParseError::MessageLength { field, datagram } => {
                write!(f, "header says {field} bytes, datagram has {datagram}")
            }
            ParseError::MajorVersion(v) => write!(f, "IKE major version {v}"),
            ParseError::TooManyPayloads => write!(f, "more than {MAX_PAYLOADS} payloads"),
            ParseError::EncryptedNotLast => f.write_str("the Encrypted payload is not the last payload"),
            ParseError::Invalid(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for ParseError {}

/// A bounds-checked cursor: every read names what it reads and fails instead of panicking.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Bytes not read yet.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        if self.buf.len() < n {
            return Err(ParseError::Truncated { what, need: n, have: self.buf.len() });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, ParseError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, ParseError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, ParseError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}
