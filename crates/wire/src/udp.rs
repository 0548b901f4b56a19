//! UDP headers (RFC 768): a checked view, the checksum over the IPv4 or IPv6 pseudo-header,
//! and a `Repr`.
//!
//! After [`Packet::new_checked`] the UDP length is at least 8 and fits in the buffer, so no
//! accessor can panic. The payload ends at the UDP length, never at the end of the buffer.
//! Nothing here allocates.

use crate::bytes::{get_u16, put_u16};
use crate::checksum::AddrPair;
use crate::{Error, ip_protocol};

/// Length of the header.
pub const HEADER_LEN: usize = 8;

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// A view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without validating it; accessors may panic if it is inconsistent.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Packet { buffer };
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the header fits and 8 <= UDP length <= buffer. Call it again after changing
    /// the length through a setter.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than the header or the UDP length;
    /// [`Error::Malformed`] for a UDP length below 8.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(get_u16(b, field::LENGTH));
        if len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }

    /// Checksum field (0: none, allowed on IPv4 only).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the UDP length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// The checksum this datagram should carry, computed with the checksum field counted as
    /// zero. Never 0: a computed 0 is sent as 0xffff (RFC 768).
    pub fn compute_checksum(&self, addrs: &AddrPair) -> u16 {
        let b = &self.buffer.as_ref()[..usize::from(self.len())];
        let sum = addrs
            .pseudo_header(ip_protocol::UDP, u32::from(self.len()))
            .add_bytes(&b[..field::CHECKSUM])
            .add_bytes(&b[field::CHECKSUM + 2..])
            .finish();
        //= https://www.rfc-editor.org/rfc/rfc768
        //# If the computed  checksum  is zero,  it is transmitted  as all ones
        if sum == 0 { 0xffff } else { sum }
    }

    /// Whether the checksum verifies. A zero checksum means "none" and passes on IPv4; on IPv6
    /// it fails.
    //= https://www.rfc-editor.org/rfc/rfc8200#section-8.1
    //# IPv6 receivers must discard UDP packets containing a zero checksum
    //# and should log the error.
    pub fn verify_checksum(&self, addrs: &AddrPair) -> bool {
        if self.checksum() == 0 {
            return addrs.is_ipv4();
        }
        let b = &self.buffer.as_ref()[..usize::from(self.len())];
        addrs.pseudo_header(ip_protocol::UDP, u32::from(self.len())).add_bytes(b).finish() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the length. Changes what [`Packet::check_len`] checked: check again before reading
    /// the payload.
    pub fn set_len(&mut self, len: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, checksum);
    }

    /// Computes and writes the checksum.
    pub fn fill_checksum(&mut self, addrs: &AddrPair) {
        let c = self.compute_checksum(addrs);
        self.set_checksum(c);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// How [`Repr::emit`] fills the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpChecksum {
    /// Zero: no checksum. Valid over IPv4 only; RFC 3948 section 3.1 says ESP-in-UDP senders
    /// SHOULD do this.
    Zero,
    /// Computed over this pseudo-header and the payload already in the buffer.
    Compute(AddrPair),
}

/// The UDP header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length in bytes.
    pub payload_len: usize,
}

impl Repr {
    /// Reads a checked datagram, verifying its checksum against `addrs`.
    ///
    /// # Errors
    /// [`Error::Checksum`] if the checksum does not verify (a zero checksum over IPv6 included).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, addrs: &AddrPair) -> Result<Repr, Error> {
        if !packet.verify_checksum(addrs) {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// Length of the header this writes (8).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header at the start of `buf`, whose next `payload_len` bytes must already hold
    /// the payload (the checksum covers it), and returns 8.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than header plus payload;
    /// [`Error::Malformed`] if the length does not fit 16 bits.
    pub fn emit(&self, buf: &mut [u8], checksum: UdpChecksum) -> Result<usize, Error> {
        let len = HEADER_LEN + self.payload_len;
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        let len16 = u16::try_from(len).map_err(|_| Error::Malformed)?;
        let mut packet = Packet::new_unchecked(&mut buf[..len]);
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len16);
        match checksum {
            UdpChecksum::Zero => packet.set_checksum(0),
            UdpChecksum::Compute(addrs) => packet.fill_checksum(&addrs),
        }
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const V4: AddrPair = AddrPair::V4 { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 0, 0, 2) };

    fn v6() -> AddrPair {
        AddrPair::V6 { src: "fe80::1".parse::<Ipv6Addr>().unwrap(), dst: "fe80::2".parse().unwrap() }
    }

    #[test]
    fn check_len_errors() {
        let mut b = [0u8; 12];
        Repr { src_port: 1, dst_port: 2, payload_len: 4 }.emit(&mut b, UdpChecksum::Zero).unwrap();
        assert!(Packet::new_checked(&b[..]).is_ok());
        for n in 0..12 {
            assert_eq!(Packet::new_checked(&b[..n]).unwrap_err(), Error::Truncated, "{n}");
        }
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn zero_checksum_v4_only() {
        let mut b = [0u8; 12];
        Repr { src_port: 4500, dst_port: 4500, payload_len: 4 }.emit(&mut b, UdpChecksum::Zero).unwrap();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(&V4));
        assert!(!p.verify_checksum(&v6()));
        assert_eq!(Repr::parse(&p, &v6()), Err(Error::Checksum));
    }

    #[test]
    fn computed_checksum_verifies_and_detects_changes() {
        for addrs in [V4, v6()] {
            let mut b = [0u8; 13];
            b[8..].copy_from_slice(b"hello");
            Repr { src_port: 500, dst_port: 4500, payload_len: 5 }.emit(&mut b, UdpChecksum::Compute(addrs)).unwrap();
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_ne!(p.checksum(), 0);
            assert!(p.verify_checksum(&addrs));
            b[12] ^= 1;
            assert!(!Packet::new_checked(&b[..]).unwrap().verify_checksum(&addrs));
        }
    }

    #[test]
    fn computed_zero_is_sent_as_ones() {
        // Choose the payload so that the sum is 0xffff: then the checksum would be 0.
        let mut b = [0u8; 10];
        Repr { src_port: 0, dst_port: 0, payload_len: 2 }.emit(&mut b, UdpChecksum::Zero).unwrap();
        let partial = V4.pseudo_header(17, 10).add_bytes(&b).sum();
        b[8..10].copy_from_slice(&(!partial).to_be_bytes());
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(&V4);
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(&V4));
    }
}
