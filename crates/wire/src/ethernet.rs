//! Ethernet II frames with at most two VLAN tags: none, one 802.1Q C-tag (TPID 0x8100), one
//! 802.1ad S-tag (TPID 0x88a8), or an S-tag followed by a C-tag (QinQ).
//!
//! The view finds the tags once in [`Frame::new_checked`] and remembers their number, so that no
//! setter can move the payload under a later accessor. It never allocates and never looks past
//! the buffer; deeper tag stacks are refused as [`Error::Malformed`].

use core::fmt;

use crate::Error;
use crate::bytes::{get_u16, put_u16};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// TPID of an 802.1Q customer VLAN tag (C-tag).
pub const TPID_VLAN: u16 = 0x8100;
/// TPID of an 802.1ad service VLAN tag (S-tag, QinQ outer tag).
pub const TPID_QINQ: u16 = 0x88a8;

/// Length of the untagged header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TPID and TCI).
pub const VLAN_TAG_LEN: usize = 4;

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    /// EtherType of an untagged frame, or the TPID of the first tag.
    pub const TYPE: usize = 12;
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Address = Address([0xff; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast, including broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// The tag control information of one VLAN tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
}

impl VlanTag {
    /// Splits a 16-bit TCI.
    pub const fn from_tci(tci: u16) -> Self {
        VlanTag { pcp: (tci >> 13) as u8, dei: tci & 0x1000 != 0, vid: tci & 0x0fff }
    }

    /// The 16-bit TCI, or `None` when `pcp` or `vid` is out of range.
    pub const fn tci(&self) -> Option<u16> {
        if self.pcp > 7 || self.vid > 0x0fff {
            return None;
        }
        Some(((self.pcp as u16) << 13) | ((self.dei as u16) << 12) | self.vid)
    }
}

fn is_tpid(value: u16) -> bool {
    value == TPID_VLAN || value == TPID_QINQ
}

/// Counts the VLAN tags of `buf`, checking that the header they imply fits.
fn scan_tags(buf: &[u8]) -> Result<u8, Error> {
    if buf.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let first = get_u16(buf, field::TYPE);
    if !is_tpid(first) {
        return Ok(0);
    }
    if buf.len() < HEADER_LEN + VLAN_TAG_LEN {
        return Err(Error::Truncated);
    }
    let second = get_u16(buf, field::TYPE + VLAN_TAG_LEN);
    match (first, second) {
        (TPID_QINQ, TPID_VLAN) => {
            if buf.len() < HEADER_LEN + 2 * VLAN_TAG_LEN {
                return Err(Error::Truncated);
            }
            if is_tpid(get_u16(buf, field::TYPE + 2 * VLAN_TAG_LEN)) {
                return Err(Error::Malformed);
            }
            Ok(2)
        }
        (_, s) if is_tpid(s) => Err(Error::Malformed),
        _ => Ok(1),
    }
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
    tags: u8,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without validating it; accessors may panic if it is too short. The tags
    /// present in the bytes that are there are counted.
    pub fn new_unchecked(buffer: T) -> Self {
        let tags = scan_tags(buffer.as_ref()).unwrap_or(0);
        Frame { buffer, tags }
    }

    /// Wraps `buffer` after checking that the header, with its VLAN tags, fits.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the header does not fit, [`Error::Malformed`] for a tag stack
    /// other than none, C, S, or S+C.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let tags = scan_tags(buffer.as_ref())?;
        Ok(Frame { buffer, tags })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Destination MAC address.
    pub fn dst_addr(&self) -> Address {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        Address(a)
    }

    /// Source MAC address.
    pub fn src_addr(&self) -> Address {
        let mut a = [0; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        Address(a)
    }

    /// Number of VLAN tags: 0, 1 or 2.
    pub fn vlan_count(&self) -> usize {
        usize::from(self.tags)
    }

    /// Header length including the VLAN tags: 14, 18 or 22.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * self.vlan_count()
    }

    fn tag_at(&self, index: usize) -> (u16, VlanTag) {
        let b = self.buffer.as_ref();
        let at = field::TYPE + VLAN_TAG_LEN * index;
        (get_u16(b, at), VlanTag::from_tci(get_u16(b, at + 2)))
    }

    /// The 802.1ad service tag (S-tag, TPID 0x88a8), if any.
    pub fn service_vlan(&self) -> Option<VlanTag> {
        if self.tags == 0 {
            return None;
        }
        let (tpid, tag) = self.tag_at(0);
        (tpid == TPID_QINQ).then_some(tag)
    }

    /// The 802.1Q customer tag (C-tag, TPID 0x8100), if any: the only tag, or the inner one
    /// after an S-tag.
    pub fn vlan(&self) -> Option<VlanTag> {
        match self.tags {
            0 => None,
            1 => {
                let (tpid, tag) = self.tag_at(0);
                (tpid == TPID_VLAN).then_some(tag)
            }
            _ => Some(self.tag_at(1).1),
        }
    }

    /// The EtherType after the tags.
    pub fn ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), self.header_len() - 2)
    }

    /// Everything after the header (for IP, the IP packet plus any link padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC address.
    pub fn set_dst_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC address.
    pub fn set_src_addr(&mut self, addr: Address) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&addr.0);
    }

    /// Sets the EtherType after the tags (the tag layout found at construction is kept).
    pub fn set_ethertype(&mut self, ethertype: u16) {
        let at = self.header_len() - 2;
        put_u16(self.buffer.as_mut(), at, ethertype);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Destination MAC address.
    pub dst_addr: Address,
    /// Source MAC address.
    pub src_addr: Address,
    /// 802.1ad S-tag (outermost when present).
    pub service_vlan: Option<VlanTag>,
    /// 802.1Q C-tag (inside the S-tag when both are present).
    pub vlan: Option<VlanTag>,
    /// EtherType after the tags.
    pub ethertype: u16,
}

impl Repr {
    /// Reads the header of a checked frame.
    ///
    /// # Errors
    /// None today; the `Result` keeps the signature alike across headers.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<Repr, Error> {
        Ok(Repr {
            dst_addr: frame.dst_addr(),
            src_addr: frame.src_addr(),
            service_vlan: frame.service_vlan(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        })
    }

    /// Length of the header this writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * (usize::from(self.service_vlan.is_some()) + usize::from(self.vlan.is_some()))
    }

    /// Writes the header at the start of `buf` and returns its length.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] if `buf` is shorter than [`Repr::buffer_len`];
    /// [`Error::Malformed`] for a tag field out of range or an EtherType that is itself a TPID.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.buffer_len();
        if buf.len() < len {
            return Err(Error::BufferTooSmall);
        }
        let tci = |tag: Option<VlanTag>| tag.map(|t| t.tci().ok_or(Error::Malformed)).transpose();
        let tags = [(TPID_QINQ, tci(self.service_vlan)?), (TPID_VLAN, tci(self.vlan)?)];
        if is_tpid(self.ethertype) {
            return Err(Error::Malformed);
        }
        let mut at = field::TYPE;
        for (tpid, tci) in tags {
            if let Some(tci) = tci {
                put_u16(buf, at, tpid);
                put_u16(buf, at + 2, tci);
                at += VLAN_TAG_LEN;
            }
        }
        buf[field::DST].copy_from_slice(&self.dst_addr.0);
        buf[field::SRC].copy_from_slice(&self.src_addr.0);
        put_u16(buf, at, self.ethertype);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

    fn frame(types: &[u16]) -> std::vec::Vec<u8> {
        let mut v = std::vec::Vec::new();
        v.extend_from_slice(&DST);
        v.extend_from_slice(&SRC);
        for (i, t) in types.iter().enumerate() {
            v.extend_from_slice(&t.to_be_bytes());
            if i + 1 < types.len() {
                v.extend_from_slice(&[0x20, 0x64 + i as u8]); // pcp 1, vid 0x064, then 0x065
            }
        }
        v.extend_from_slice(b"payload");
        v
    }

    #[test]
    fn untagged() {
        let bytes = frame(&[ETHERTYPE_IPV4]);
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(f.dst_addr(), Address(DST));
        assert_eq!(f.src_addr(), Address(SRC));
        assert_eq!((f.vlan_count(), f.header_len(), f.ethertype()), (0, 14, ETHERTYPE_IPV4));
        assert_eq!((f.vlan(), f.service_vlan()), (None, None));
        assert_eq!(f.payload(), b"payload");
    }

    #[test]
    fn single_c_tag() {
        let bytes = frame(&[TPID_VLAN, ETHERTYPE_IPV6]);
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!((f.vlan_count(), f.header_len(), f.ethertype()), (1, 18, ETHERTYPE_IPV6));
        assert_eq!(f.vlan(), Some(VlanTag { pcp: 1, dei: false, vid: 0x064 }));
        assert_eq!(f.service_vlan(), None);
        assert_eq!(f.payload(), b"payload");
    }

    #[test]
    fn single_s_tag_and_qinq() {
        let bytes = frame(&[TPID_QINQ, ETHERTYPE_IPV4]);
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!((f.vlan_count(), f.vlan(), f.service_vlan().map(|t| t.vid)), (1, None, Some(0x064)));

        let bytes = frame(&[TPID_QINQ, TPID_VLAN, ETHERTYPE_IPV4]);
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!((f.vlan_count(), f.header_len(), f.ethertype()), (2, 22, ETHERTYPE_IPV4));
        assert_eq!(f.service_vlan(), Some(VlanTag { pcp: 1, dei: false, vid: 0x064 }));
        assert_eq!(f.vlan(), Some(VlanTag { pcp: 1, dei: false, vid: 0x065 }));
        assert_eq!(f.payload(), b"payload");
    }

    #[test]
    fn refuses_other_stacks() {
        for types in [
            &[TPID_VLAN, TPID_VLAN, ETHERTYPE_IPV4][..],
            &[TPID_VLAN, TPID_QINQ, ETHERTYPE_IPV4],
            &[TPID_QINQ, TPID_QINQ, ETHERTYPE_IPV4],
            &[TPID_QINQ, TPID_VLAN, TPID_VLAN, ETHERTYPE_IPV4],
        ] {
            assert_eq!(Frame::new_checked(&frame(types)[..]).unwrap_err(), Error::Malformed, "{types:x?}");
        }
    }

    #[test]
    fn truncations() {
        for types in [&[ETHERTYPE_IPV4][..], &[TPID_VLAN, ETHERTYPE_IPV4], &[TPID_QINQ, TPID_VLAN, ETHERTYPE_IPV4]] {
            let bytes = frame(types);
            let header_len = 12 + 4 * types.len() - 2;
            for n in 0..header_len {
                assert_eq!(Frame::new_checked(&bytes[..n]).unwrap_err(), Error::Truncated, "{types:x?} at {n}");
            }
            assert!(Frame::new_checked(&bytes[..header_len]).is_ok());
        }
    }

    #[test]
    fn setters_keep_layout() {
        let mut bytes = frame(&[TPID_VLAN, ETHERTYPE_IPV4]);
        let mut f = Frame::new_checked(&mut bytes[..]).unwrap();
        f.set_ethertype(TPID_VLAN);
        f.set_dst_addr(Address::BROADCAST);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), b"payload");
        assert!(f.dst_addr().is_broadcast());
    }

    #[test]
    fn emit_refuses_bad_reprs() {
        let mut buf = [0u8; 22];
        let mut r = Repr {
            dst_addr: Address(DST),
            src_addr: Address(SRC),
            service_vlan: None,
            vlan: Some(VlanTag { pcp: 8, dei: false, vid: 1 }),
            ethertype: ETHERTYPE_IPV4,
        };
        assert_eq!(r.emit(&mut buf), Err(Error::Malformed));
        r.vlan = Some(VlanTag { pcp: 7, dei: true, vid: 4095 });
        assert_eq!(r.emit(&mut buf[..17]), Err(Error::BufferTooSmall));
        assert_eq!(r.emit(&mut buf), Ok(18));
        r.ethertype = TPID_QINQ;
        assert_eq!(r.emit(&mut buf), Err(Error::Malformed));
    }

    #[test]
    fn address_display() {
        assert_eq!(std::format!("{}", Address([0, 0x1b, 0x21, 0xa, 0xbc, 0xff])), "00:1b:21:0a:bc:ff");
        assert!(Address([0x01, 0, 0x5e, 0, 0, 1]).is_multicast());
    }
}
