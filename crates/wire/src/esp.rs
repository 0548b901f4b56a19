//! ESP (RFC 4303): a checked view of the header (SPI, sequence number), its `Repr`, and the
//! trailer at the end of the decrypted region (padding, pad length, next header), parsed and
//! built.
//!
//! The view knows nothing about ciphers: what follows the header (IV, ciphertext, ICV) is one
//! opaque payload. The trailer functions work on the plaintext region once the caller removed
//! the IV and the ICV. Nothing here allocates, and padding is checked in full before the
//! payload length is trusted.

use crate::Error;
use crate::bytes::{get_u32, put_u32};

/// Length of the header: SPI and sequence number.
pub const HEADER_LEN: usize = 8;
/// Length of the fixed part of the trailer: pad length and next header.
pub const TRAILER_LEN: usize = 2;
/// Next header of a dummy packet ("no next header"), to be dropped silently (RFC 4303
/// section 2.6).
pub const NEXT_HEADER_DUMMY: u8 = crate::ip_protocol::NO_NEXT_HEADER;
/// Longest padding.
pub const MAX_PAD_LEN: usize = 255;

mod field {
    pub const SPI: usize = 0;
    pub const SEQ: usize = 4;
}

/// A view of an ESP packet (header, then everything else as the payload).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without validating it; accessors may panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the header fits.
    ///
    /// # Errors
    /// [`Error::Truncated`] if `buffer` is shorter than 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Security parameters index.
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SPI)
    }

    /// Sequence number (the low 32 bits when ESN is in use).
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// Everything after the header: IV, ciphertext, ICV.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: u32) {
        put_u32(self.buffer.as_mut(), field::SPI, spi);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, seq: u32) {
        put_u32(self.buffer.as_mut(), field::SEQ, seq);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// The ESP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Security parameters index, never 0 on the wire.
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub seq_number: u32,
}

impl Repr {
    /// Reads a checked packet.
    ///
    /// # Errors
    /// [`Error::Malformed`] for SPI 0.
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.1
    //# The SPI value of zero (0) is reserved for local, implementation-
    //# specific use and MUST NOT be sent on the wire.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        let spi = packet.spi();
        if spi == 0 {
            return Err(Error::Malformed);
        }
        Ok(Repr { spi, seq_number: packet.seq_number() })
    }

    /// Length of the header this writes (8).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header at the start of `buf` and returns 8.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than 8 bytes; [`Error::Malformed`] for
    /// SPI 0.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        if self.spi == 0 {
            return Err(Error::Malformed);
        }
        let mut packet = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        packet.set_spi(self.spi);
        packet.set_seq_number(self.seq_number);
        Ok(HEADER_LEN)
    }
}

/// The ESP trailer of a plaintext region: `payload_len` bytes of payload, `pad_len` padding
/// bytes 1, 2, 3, ..., the pad length byte and the next header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trailer {
    /// Length of the payload before the padding.
    pub payload_len: usize,
    /// Number of padding bytes, 0..=255.
    pub pad_len: u8,
    /// Next header: the protocol of the payload (4: IPv4, 41: IPv6 in tunnel mode), or 59 for a
    /// dummy packet.
    pub next_header: u8,
}

impl Trailer {
    /// Reads the trailer from the end of `plaintext` (IV and ICV already removed) and checks the
    /// padding bytes.
    ///
    /// # Errors
    /// [`Error::Truncated`] if `plaintext` is shorter than 2 bytes; [`Error::BadPadding`] if the
    /// pad length runs past the start or a padding byte is not its position (1, 2, 3, ...).
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.4
    //# The Padding bytes are initialized with a series of (unsigned, 1-byte)
    //# integer values.  The first padding byte appended to the plaintext is
    //# numbered 1, with subsequent padding bytes making up a monotonically
    //# increasing sequence: 1, 2, 3, ....
    pub fn parse(plaintext: &[u8]) -> Result<Trailer, Error> {
        let [.., pad_len, next_header] = *plaintext else {
            return Err(Error::Truncated);
        };
        let payload_len = plaintext.len().checked_sub(TRAILER_LEN + usize::from(pad_len)).ok_or(Error::BadPadding)?;
        let padding = &plaintext[payload_len..plaintext.len() - TRAILER_LEN];
        // Check every byte without an early exit on the first bad one.
        let mut bad = 0u8;
        for (i, &b) in padding.iter().enumerate() {
            bad |= b ^ (i as u8).wrapping_add(1);
        }
        if bad != 0 {
            return Err(Error::BadPadding);
        }
        Ok(Trailer { payload_len, pad_len, next_header })
    }

    /// The trailer for `payload_len` bytes of payload such that payload, padding and the two
    /// trailer bytes end on a multiple of `alignment` (the cipher block size; at least 4, as
    /// RFC 4303 section 2.4 requires the ciphertext to end on a 4-byte boundary).
    ///
    /// # Errors
    /// [`Error::Malformed`] if `alignment` is not a power of two between 1 and 256.
    pub fn new(payload_len: usize, next_header: u8, alignment: usize) -> Result<Trailer, Error> {
        if !alignment.is_power_of_two() || alignment > 256 {
            return Err(Error::Malformed);
        }
        //= https://www.rfc-editor.org/rfc/rfc4303#section-2.4
        //# the Pad Length and Next Header fields must be right aligned within a 4-byte word
        let alignment = alignment.max(4);
        let unpadded = payload_len % alignment + TRAILER_LEN;
        let pad_len = (alignment - unpadded % alignment) % alignment;
        Ok(Trailer { payload_len, pad_len: pad_len as u8, next_header })
    }

    /// Length of padding plus the two trailer bytes.
    pub const fn len(&self) -> usize {
        self.pad_len as usize + TRAILER_LEN
    }

    /// Never true: a trailer has at least its two fixed bytes.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Length of the whole plaintext region: payload, padding and trailer.
    pub const fn total_len(&self) -> usize {
        self.payload_len + self.len()
    }

    /// Whether this is a dummy packet (next header 59) to be dropped silently.
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.6
    //# A transmitter MUST be capable of generating dummy packets marked with
    //# this value in the next protocol field, and a receiver MUST be
    //# prepared to discard such packets, without indicating an error.
    pub const fn is_dummy(&self) -> bool {
        self.next_header == NEXT_HEADER_DUMMY
    }

    /// Writes padding, pad length and next header into `plaintext` after the payload (which
    /// starts at `plaintext[0]` and is left alone) and returns the length of the whole region.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `plaintext` is shorter than [`Trailer::total_len`].
    pub fn emit(&self, plaintext: &mut [u8]) -> Result<usize, Error> {
        let total = self.total_len();
        let Some(region) = plaintext.get_mut(self.payload_len..total) else {
            return Err(Error::BufferTooSmall);
        };
        let (padding, fixed) = region.split_at_mut(usize::from(self.pad_len));
        for (i, b) in padding.iter_mut().enumerate() {
            *b = (i as u8).wrapping_add(1);
        }
        fixed[0] = self.pad_len;
        fixed[1] = self.next_header;
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_view() {
        let b = [0x00, 0x00, 0x10, 0x01, 0x00, 0x00, 0x00, 0x2a, 0xaa, 0xbb];
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.spi(), p.seq_number(), p.payload()), (0x1001, 42, &[0xaa, 0xbb][..]));
        assert_eq!(Repr::parse(&p), Ok(Repr { spi: 0x1001, seq_number: 42 }));
        for n in 0..8 {
            assert_eq!(Packet::new_checked(&b[..n]).unwrap_err(), Error::Truncated);
        }
        let zero = [0u8; 8];
        assert_eq!(Repr::parse(&Packet::new_checked(&zero[..]).unwrap()), Err(Error::Malformed));
        assert_eq!(Repr { spi: 0, seq_number: 1 }.emit(&mut [0; 8]), Err(Error::Malformed));
    }

    #[test]
    fn trailer_known_layout() {
        // 5 bytes of payload, 4-byte alignment: 5 + 1 pad + 2 = 8.
        let t = Trailer::new(5, 4, 4).unwrap();
        assert_eq!((t.pad_len, t.len(), t.total_len()), (1, 3, 8));
        let mut buf = *b"HELLO...";
        assert_eq!(t.emit(&mut buf), Ok(8));
        assert_eq!(&buf, b"HELLO\x01\x01\x04");
        assert_eq!(Trailer::parse(&buf), Ok(t));

        // 16-byte blocks: 20 + 10 + 2 = 32.
        let t = Trailer::new(20, 41, 16).unwrap();
        assert_eq!(t.pad_len, 10);
        let mut buf = [0u8; 32];
        t.emit(&mut buf).unwrap();
        assert_eq!(&buf[20..], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 41]);
        assert_eq!(Trailer::parse(&buf), Ok(t));
    }

    #[test]
    fn alignment_one_still_gives_four() {
        for len in 0..64 {
            let t = Trailer::new(len, 4, 1).unwrap();
            assert_eq!(t.total_len() % 4, 0);
            assert!(t.pad_len < 4);
        }
        assert_eq!(Trailer::new(1, 4, 12), Err(Error::Malformed));
        assert_eq!(Trailer::new(1, 4, 0), Err(Error::Malformed));
        assert_eq!(Trailer::new(1, 4, 512), Err(Error::Malformed));
    }

    #[test]
    fn trailer_rejects_bad_padding() {
        assert_eq!(Trailer::parse(&[]), Err(Error::Truncated));
        assert_eq!(Trailer::parse(&[4]), Err(Error::Truncated));
        assert_eq!(Trailer::parse(&[0, 4]), Ok(Trailer { payload_len: 0, pad_len: 0, next_header: 4 }));
        assert_eq!(Trailer::parse(&[9, 1, 1, 4]), Ok(Trailer { payload_len: 1, pad_len: 1, next_header: 4 }));
        assert_eq!(Trailer::parse(&[1, 4]), Err(Error::BadPadding)); // pad length past start
        assert_eq!(Trailer::parse(&[1, 3, 2, 4]), Err(Error::BadPadding)); // 1,3 not 1,2
        assert_eq!(Trailer::parse(&[0, 1, 2, 0, 3, 4]), Err(Error::BadPadding)); // 1,2,0 not 1,2,3
        assert_eq!(Trailer::parse(&[0, 0, 0, 3, 4]), Err(Error::BadPadding)); // zero padding
        let mut full = [0u8; 257];
        for (i, b) in full[..255].iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        full[255] = 255;
        full[256] = 59;
        let t = Trailer::parse(&full).unwrap();
        assert_eq!((t.payload_len, t.pad_len, t.is_dummy()), (0, 255, true));
    }

    #[test]
    fn emit_needs_room() {
        let t = Trailer::new(5, 4, 4).unwrap();
        assert_eq!(t.emit(&mut [0u8; 7]), Err(Error::BufferTooSmall));
    }
}
