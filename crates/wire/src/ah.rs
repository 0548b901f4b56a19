//! AH (RFC 4302 section 2): a checked view of the Authentication Header (next header, payload
//! length, SPI, sequence number, then the ICV field with its padding) and its `Repr`.
//!
//! The view knows nothing about integrity algorithms: the ICV field is opaque bytes whose length
//! the Payload Length says. `new_checked` validates that length against the buffer once; no
//! accessor can panic after it.

use crate::Error;
use crate::bytes::{get_u32, put_u32};

/// Length of the fixed part, before the ICV field: next header, payload length, reserved, SPI,
/// sequence number.
pub const FIXED_LEN: usize = 12;

mod field {
    pub const NEXT_HEADER: usize = 0;
    pub const PAYLOAD_LEN: usize = 1;
    pub const RESERVED: usize = 2;
    pub const SPI: usize = 4;
    pub const SEQ: usize = 8;
}

/// A view of an AH header (and whatever follows it in the buffer).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without validating it; accessors may panic if it is shorter than the
    /// header it claims.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the fixed part fits and that the header the Payload
    /// Length announces (RFC 4302 section 2.2: its length in 32-bit words, minus 2) is at least
    /// the fixed part and fits the buffer.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than the header; [`Error::Malformed`] if
    /// the announced length is shorter than the fixed part.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let b = buffer.as_ref();
        let Some(&len_field) = b.get(field::PAYLOAD_LEN) else { return Err(Error::Truncated) };
        if b.len() < FIXED_LEN {
            return Err(Error::Truncated);
        }
        let len = (usize::from(len_field) + 2) * 4;
        if len < FIXED_LEN {
            return Err(Error::Malformed);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The protocol of what follows the header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// Length of the whole header, ICV field included, in bytes.
    pub fn header_len(&self) -> usize {
        (usize::from(self.buffer.as_ref()[field::PAYLOAD_LEN]) + 2) * 4
    }

    /// Security parameters index.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SPI)
    }

    /// Sequence number (the low 32 bits when ESN is in use).
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// The ICV field, padding included (and, for AES-GMAC, the IV in front of the ICV).
    pub fn icv_field(&self) -> &[u8] {
        &self.buffer.as_ref()[FIXED_LEN..self.header_len()]
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The ICV field, writable.
    pub fn icv_field_mut(&mut self) -> &mut [u8] {
        let len = self.header_len();
        &mut self.buffer.as_mut()[FIXED_LEN..len]
    }
}

/// The AH header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The protocol of what follows.
    pub next_header: u8,
    /// Security parameters index, never 0 on the wire.
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub seq_number: u32,
    /// Length of the ICV field, padding included: a multiple of 4 bytes (IPv4) or such that the
    /// whole header is a multiple of 8 bytes (IPv6), RFC 4302 section 2.6.
    pub icv_field_len: usize,
}

impl Repr {
    /// Reads a checked header.
    ///
    /// # Errors
    /// [`Error::Malformed`] for SPI 0.
    //= https://www.rfc-editor.org/rfc/rfc4302#section-2.4
    //# The SPI value of zero (0) is reserved for local, implementation-
    //# specific use and MUST NOT be sent on the wire.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        let spi = packet.spi();
        if spi == 0 {
            return Err(Error::Malformed);
        }
        Ok(Repr {
            next_header: packet.next_header(),
            spi,
            seq_number: packet.seq_number(),
            icv_field_len: packet.header_len() - FIXED_LEN,
        })
    }

    /// Length of the header this writes.
    pub const fn buffer_len(&self) -> usize {
        FIXED_LEN + self.icv_field_len
    }

    /// Writes the header at the start of `buf` with the ICV field zeroed (as the ICV is
    /// computed) and returns its length.
    ///
    /// # Errors
    /// [`Error::Truncated`] if `buf` is too short; [`Error::Malformed`] if the ICV field is not
    /// a multiple of 4 bytes or the header would be longer than its 8-bit length field allows.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        if !self.icv_field_len.is_multiple_of(4) || len / 4 - 2 > usize::from(u8::MAX) {
            return Err(Error::Malformed);
        }
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b[field::NEXT_HEADER] = self.next_header;
        b[field::PAYLOAD_LEN] = (len / 4 - 2) as u8;
        b[field::RESERVED] = 0;
        b[field::RESERVED + 1] = 0;
        put_u32(b, field::SPI, self.spi);
        put_u32(b, field::SEQ, self.seq_number);
        b[FIXED_LEN..].fill(0);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_and_parses_back() {
        let repr = Repr { next_header: 4, spi: 0x1234_5678, seq_number: 9, icv_field_len: 16 };
        let mut buf = [0xaa_u8; 40];
        assert_eq!(repr.emit(&mut buf), Ok(28));
        // Payload Length: 28 bytes = 7 words, minus 2 (RFC 4302 section 2.2).
        assert_eq!(buf[1], 5);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Repr::parse(&p), Ok(repr));
        assert_eq!(p.icv_field(), &[0; 16]);
        assert_eq!(p.payload().len(), 12);
    }

    #[test]
    fn lengths_are_checked_once() {
        assert_eq!(Packet::new_checked(&[4u8][..]).unwrap_err(), Error::Truncated);
        let mut buf = [0u8; 28];
        buf[1] = 5;
        assert!(Packet::new_checked(&buf[..]).is_ok());
        assert_eq!(Packet::new_checked(&buf[..27]).unwrap_err(), Error::Truncated);
        buf[1] = 0; // 8 bytes: shorter than the fixed part
        assert_eq!(Packet::new_checked(&buf[..]).unwrap_err(), Error::Malformed);
        buf[1] = 255;
        assert_eq!(Packet::new_checked(&buf[..]).unwrap_err(), Error::Truncated);
        let zero_spi = Repr { next_header: 4, spi: 0, seq_number: 1, icv_field_len: 16 };
        zero_spi.emit(&mut buf).unwrap();
        assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), Err(Error::Malformed));
        let odd = Repr { icv_field_len: 10, ..zero_spi };
        assert_eq!(odd.emit(&mut buf), Err(Error::Malformed));
    }
}
