//! IPv4 headers (RFC 791) with options: a checked view, the header checksum, the RFC 1624
//! incremental update used when the forwarding path decrements the TTL, and a `Repr` for the
//! fixed header.
//!
//! After [`Packet::new_checked`] the header (IHL) and the total length both fit in the buffer,
//! so no accessor can panic. The view never allocates and never trusts a length field it has
//! not checked; bytes after the total length (link padding) are never part of the payload.

use core::net::Ipv4Addr;

use crate::Error;
use crate::bytes::{get_u16, put_u16};
use crate::checksum;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header: IHL 15.
pub const MAX_HEADER_LEN: usize = 60;
/// TTL Rampart writes into the headers it originates.
pub const DEFAULT_TTL: u8 = 64;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
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

    /// Checks what every accessor relies on: version 4, 20 <= IHL * 4 <= total length <= buffer.
    /// Call it again after changing the IHL or the total length through a setter.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than the header or the total length;
    /// [`Error::Malformed`] for another version, an IHL below 5 or a total length below the
    /// header length.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let header_len = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < header_len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(get_u16(b, field::LENGTH));
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if b.len() < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The IP version field (4 once checked).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length field: header plus payload.
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field times 8).
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment (MF set or a non-zero offset) that needs reassembly.
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload (see [`crate::ip_protocol`]).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The header, options included.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The options (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// The packet up to its total length (without link padding).
    pub fn packet(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.total_len())]
    }

    /// Whether the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }

    /// The header checksum computed over the header as it is now (the checksum field counted
    /// as zero).
    pub fn compute_checksum(&self) -> u16 {
        let h = self.header();
        checksum::Checksum::new().add_bytes(&h[..field::CHECKSUM]).add_bytes(&h[field::CHECKSUM + 2..]).finish()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60). Changes what
    /// [`Packet::check_len`] checked: check again before reading options or payload.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP (6 bits) and ECN (2 bits).
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Sets the total length. Changes what [`Packet::check_len`] checked: check again before
    /// reading the payload.
    pub fn set_total_len(&mut self, len: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets the flags and fragment offset (`offset` in bytes, a multiple of 8).
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let value = (u16::from(dont_frag) * FLAG_DF) | (u16::from(more_frags) * FLAG_MF) | (offset >> 3);
        put_u16(self.buffer.as_mut(), field::FLG_OFF, value);
    }

    /// Sets the TTL (the checksum is not updated; see [`Packet::decrement_ttl`]).
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        let c = self.compute_checksum();
        self.set_checksum(c);
    }

    /// The forwarding step: decrements the TTL and updates the checksum incrementally
    /// (RFC 1624), returning the new TTL. When the TTL is 0 or 1 the packet must not be
    /// forwarded: nothing is changed and `None` comes back (the caller sends Time Exceeded).
    //= https://www.rfc-editor.org/rfc/rfc1812#section-5.3.1
    //# If the TTL is reduced to zero (or less), the packet MUST be
    //# discarded
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return None;
        }
        let protocol = self.protocol();
        let old = u16::from_be_bytes([ttl, protocol]);
        let new = u16::from_be_bytes([ttl - 1, protocol]);
        let updated = checksum::update_word(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(updated);
        Some(ttl - 1)
    }

    /// The options, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }
}

/// The fixed IPv4 header fields. Options are not represented: [`Repr::parse`] accepts packets
/// with options (their length is not part of `payload_len`) and [`Repr::emit`] writes a
/// 20-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP, 0..=63.
    pub dscp: u8,
    /// ECN, 0..=3.
    pub ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
    /// More Fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes, a multiple of 8.
    pub frag_offset: u16,
}

impl Repr {
    /// Reads a checked packet, verifying the header checksum.
    ///
    /// # Errors
    /// [`Error::Checksum`] if the header checksum does not verify.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Length of the header this writes (20).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Total length of the packet this describes.
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes a 20-byte header with its checksum at the start of `buf` and returns 20. The
    /// payload is not touched.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than 20 bytes; [`Error::Malformed`] for a
    /// field out of range (DSCP, ECN, an offset not a multiple of 8 or above 65528, a total
    /// length above 65535).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::BufferTooSmall);
        }
        let total_len = u16::try_from(self.total_len()).map_err(|_| Error::Malformed)?;
        if self.dscp > 63 || self.ecn > 3 || !self.frag_offset.is_multiple_of(8) {
            return Err(Error::Malformed);
        }
        let mut packet = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp_ecn(self.dscp, self.ecn);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.set_checksum(0);
        packet.fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 28] {
        let mut b = [0u8; 28];
        let repr = Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 1),
            dst_addr: Ipv4Addr::new(198, 51, 100, 7),
            protocol: 17,
            payload_len: 8,
            ttl: 64,
            dscp: 46,
            ecn: 1,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        repr.emit(&mut b).unwrap();
        b
    }

    #[test]
    fn check_len_errors() {
        let b = sample();
        let mut bad = b;
        bad[0] = 0x65;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed); // version 6
        bad[0] = 0x44;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed); // IHL 4
        bad[0] = 0x48;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Truncated); // IHL 8: 32 > 28
        let mut bad = b;
        bad[3] = 19;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed); // total < header
        bad[3] = 29;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Truncated); // total > buffer
        for n in 0..b.len() {
            assert_eq!(Packet::new_checked(&b[..n]).unwrap_err(), Error::Truncated, "length {n}");
        }
    }

    #[test]
    fn link_padding_is_not_payload() {
        let mut b = [0u8; 46];
        b[..28].copy_from_slice(&sample());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
        assert_eq!(p.packet().len(), 28);
    }

    #[test]
    fn fragment_flags() {
        let mut b = sample();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.dont_frag() && !p.is_fragment());
        p.set_frag(false, true, 0);
        assert!(p.is_fragment() && p.more_frags() && p.frag_offset() == 0);
        p.set_frag(false, false, 1480);
        assert!(p.is_fragment() && !p.more_frags() && p.frag_offset() == 1480);
        p.set_frag(false, false, 65528);
        assert_eq!(p.frag_offset(), 65528);
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut b = sample();
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.verify_checksum());
        for expected in (1..64).rev() {
            assert_eq!(p.decrement_ttl(), Some(expected));
            assert!(p.verify_checksum(), "ttl {expected}");
            assert_eq!(p.checksum(), p.compute_checksum());
        }
        assert_eq!(p.ttl(), 1);
        assert_eq!(p.decrement_ttl(), None);
        assert_eq!(p.ttl(), 1);
        p.set_ttl(0);
        assert_eq!(p.decrement_ttl(), None);
    }

    #[test]
    fn parse_rejects_bad_checksum() {
        let mut b = sample();
        b[15] ^= 0x40;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p), Err(Error::Checksum));
    }

    #[test]
    fn emit_refuses_bad_reprs() {
        let p = Packet::new_checked(sample()).unwrap();
        let r = Repr::parse(&p).unwrap();
        let mut buf = [0u8; 20];
        assert_eq!(Repr { frag_offset: 4, ..r }.emit(&mut buf), Err(Error::Malformed));
        assert_eq!(Repr { dscp: 64, ..r }.emit(&mut buf), Err(Error::Malformed));
        assert_eq!(Repr { ecn: 4, ..r }.emit(&mut buf), Err(Error::Malformed));
        assert_eq!(Repr { payload_len: 65516, ..r }.emit(&mut buf), Err(Error::Malformed));
        assert_eq!(Repr { payload_len: 65515, ..r }.emit(&mut buf), Ok(20));
        assert_eq!(r.emit(&mut buf[..19]), Err(Error::BufferTooSmall));
    }
}
