//! The Internet checksum (RFC 1071): one's complement sums that can be accumulated across a
//! pseudo-header and the data in any number of pieces (even pieces of odd length), and the
//! incremental update of RFC 1624 for rewriting one field without summing the header again.
//!
//! Nothing here allocates or panics; the sums never look at memory outside the given slices.

use core::net::{Ipv4Addr, Ipv6Addr};

/// A running one's complement sum.
///
/// Pieces may have any length: a piece that starts at an odd offset of the whole message is
/// folded in byte-swapped, which is the byte-order independence of RFC 1071 section 2 (B).
///
/// ```
/// use rampart_wire::checksum::{self, Checksum};
/// let whole = checksum::checksum(b"\x45\x00\x00\x1c\x12");
/// let pieces = Checksum::new().add_bytes(b"\x45\x00\x00").add_bytes(b"\x1c\x12").finish();
/// assert_eq!(whole, pieces);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
    odd: bool,
}

impl Checksum {
    /// An empty sum.
    pub const fn new() -> Self {
        Checksum { sum: 0, odd: false }
    }

    /// Adds `data`, which follows whatever was added before.
    #[must_use]
    #[inline]
    pub fn add_bytes(self, data: &[u8]) -> Self {
        let mut piece = fold(raw_sum(data));
        if self.odd {
            piece = piece.swap_bytes();
        }
        Checksum { sum: self.sum + u64::from(piece), odd: self.odd ^ (data.len() % 2 == 1) }
    }

    /// Adds a 16-bit word in network byte order.
    #[must_use]
    #[inline]
    pub fn add_u16(self, value: u16) -> Self {
        self.add_bytes(&value.to_be_bytes())
    }

    /// Adds a 32-bit word in network byte order.
    #[must_use]
    #[inline]
    pub fn add_u32(self, value: u32) -> Self {
        self.add_bytes(&value.to_be_bytes())
    }

    /// The folded one's complement sum, not complemented.
    pub fn sum(self) -> u16 {
        fold(self.sum)
    }

    /// The checksum to write into a header: the complement of the folded sum.
    ///
    /// Over data that already contains a correct checksum this is 0.
    pub fn finish(self) -> u16 {
        !fold(self.sum)
    }
}

/// The Internet checksum of `data` (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    Checksum::new().add_bytes(data).finish()
}

/// Whether `data`, with its checksum field filled in, sums to all ones.
pub fn verify(data: &[u8]) -> bool {
    checksum(data) == 0
}

/// Updates `checksum` after one 16-bit word of the covered data changed from `old` to `new`,
/// without summing the data again.
///
/// ```
/// use rampart_wire::checksum;
/// let mut header = [0x45, 0x00, 0x00, 0x1c, 0, 0, 0, 0, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
/// let c = checksum::checksum(&header);
/// header[10..12].copy_from_slice(&c.to_be_bytes());
/// // TTL 64 -> 63: the word (TTL, protocol) changes from 0x4011 to 0x3f11.
/// let updated = checksum::update_word(c, 0x4011, 0x3f11);
/// header[8] = 0x3f;
/// header[10..12].copy_from_slice(&updated.to_be_bytes());
/// assert!(checksum::verify(&header));
/// ```
//= https://www.rfc-editor.org/rfc/rfc1624#section-3
//# HC' = ~(~HC + ~m + m')    --    [Eqn. 3]
pub fn update_word(checksum: u16, old: u16, new: u16) -> u16 {
    let sum = u64::from(!checksum) + u64::from(!old) + u64::from(new);
    !fold(sum)
}

/// The source and destination addresses of a pseudo-header (RFC 768, RFC 8200 section 8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrPair {
    /// IPv4 source and destination.
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
    /// IPv6 source and destination (the final destination when a routing header is present).
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address.
        dst: Ipv6Addr,
    },
}

impl AddrPair {
    /// The sum of the pseudo-header for an upper-layer message of `length` bytes carried as
    /// `protocol`.
    ///
    /// IPv4 (RFC 768): source, destination, zero, protocol, 16-bit length. IPv6 (RFC 8200
    /// section 8.1): source, destination, 32-bit length, three zero bytes, next header. Both
    /// start at an even offset, so the data that follows can simply be added.
    pub fn pseudo_header(&self, protocol: u8, length: u32) -> Checksum {
        match self {
            // A 32-bit length sums the same as the 16-bit field for every valid IPv4 length.
            AddrPair::V4 { src, dst } => Checksum::new()
                .add_bytes(&src.octets())
                .add_bytes(&dst.octets())
                .add_u16(u16::from(protocol))
                .add_u32(length),
            AddrPair::V6 { src, dst } => Checksum::new()
                .add_bytes(&src.octets())
                .add_bytes(&dst.octets())
                .add_u32(length)
                .add_u32(u32::from(protocol)),
        }
    }

    /// Whether this is an IPv4 pair.
    pub fn is_ipv4(&self) -> bool {
        matches!(self, AddrPair::V4 { .. })
    }
}

/// Folds a wide sum to 16 bits with end-around carries.
#[inline]
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The plain sum of `data` as big-endian 32-bit words (the last word zero-padded), as if it
/// started at an even offset. Summing 32-bit words and folding gives the same one's complement
/// sum as 16-bit words (RFC 1071 section 2 (C)); a `u64` cannot overflow below 16 GiB.
#[inline]
fn raw_sum(data: &[u8]) -> u64 {
    let mut acc = 0u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    match *words.remainder() {
        [a] => acc += u64::from(a) << 8,
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        _ => {}
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bytewise reference: sum of 16-bit big-endian words with end-around carry.
    fn reference_sum(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for (i, b) in data.iter().enumerate() {
            let word = if i % 2 == 0 { u32::from(*b) << 8 } else { u32::from(*b) };
            sum += word;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_numerical_example() {
        //= https://www.rfc-editor.org/rfc/rfc1071#section-3
        //# Byte-by-byte "Normal" Order: 00-01 + f2-03 + f4-f5 + f6-f7 = ... dd-f2
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(Checksum::new().add_bytes(&data).sum(), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
        // Sums in pieces, including odd-length pieces, agree.
        for split in 0..=data.len() {
            let (a, b) = data.split_at(split);
            assert_eq!(Checksum::new().add_bytes(a).add_bytes(b).sum(), 0xddf2, "split at {split}");
        }
    }

    #[test]
    fn known_ipv4_header() {
        // The header from the Wikipedia "IPv4 header checksum" example, checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10] = 0xb8;
        h[11] = 0x61;
        assert!(verify(&h));
        h[19] ^= 1;
        assert!(!verify(&h));
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(Checksum::new().add_bytes(&[0xab]).sum(), 0xab00);
        assert_eq!(Checksum::new().add_bytes(&[0xab]).add_bytes(&[0xcd]).sum(), 0xabcd);
    }

    #[test]
    fn pseudo_header_v4_known() {
        let pair = AddrPair::V4 { src: Ipv4Addr::new(192, 0, 2, 1), dst: Ipv4Addr::new(198, 51, 100, 2) };
        let by_hand = [192, 0, 2, 1, 198, 51, 100, 2, 0, 17, 0x01, 0x2c];
        assert_eq!(pair.pseudo_header(17, 300).sum(), reference_sum(&by_hand));
    }

    #[test]
    fn pseudo_header_v6_known() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:ffff::2".parse().unwrap();
        let mut by_hand = std::vec::Vec::new();
        by_hand.extend_from_slice(&src.octets());
        by_hand.extend_from_slice(&dst.octets());
        by_hand.extend_from_slice(&[0, 1, 0, 4, 0, 0, 0, 58]);
        let pair = AddrPair::V6 { src, dst };
        assert_eq!(pair.pseudo_header(58, 0x10004).sum(), reference_sum(&by_hand));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
                prop_assert_eq!(Checksum::new().add_bytes(&data).sum(), reference_sum(&data));
            }

            #[test]
            fn pieces_match_whole(data in proptest::collection::vec(any::<u8>(), 0..300),
                                  cuts in proptest::collection::vec(any::<usize>(), 0..5)) {
                let mut cuts: std::vec::Vec<usize> =
                    cuts.iter().map(|c| if data.is_empty() { 0 } else { c % (data.len() + 1) }).collect();
                cuts.sort_unstable();
                let mut acc = Checksum::new();
                let mut start = 0;
                for c in cuts.into_iter().chain([data.len()]) {
                    acc = acc.add_bytes(&data[start..c]);
                    start = c;
                }
                prop_assert_eq!(acc.sum(), reference_sum(&data));
            }

            #[test]
            fn incremental_update_matches_recompute(
                words in proptest::collection::vec(any::<u16>(), 2..30),
                index in any::<usize>(),
                new in any::<u16>(),
            ) {
                // Word 0 holds the checksum of the others.
                let mut words = words;
                let bytes = |w: &[u16]| w.iter().flat_map(|x| x.to_be_bytes()).collect::<std::vec::Vec<u8>>();
                words[0] = 0;
                words[0] = checksum(&bytes(&words));
                let i = 1 + index % (words.len() - 1);
                let old = words[i];
                words[i] = new;
                let updated = update_word(words[0], old, new);
                words[0] = 0;
                let recomputed = checksum(&bytes(&words));
                words[0] = updated;
                prop_assert!(verify(&bytes(&words)));
                // Equal, except that one's complement has two zeros: 0x0000 and 0xffff.
                prop_assert!(updated == recomputed || (updated, recomputed) == (0xffff, 0) || (updated, recomputed) == (0, 0xffff));
            }
        }
    }
}
