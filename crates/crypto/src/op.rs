//! The jobs of a burst: one packet to seal ([`SealOp`]) or to open ([`OpenOp`]) in place, on its
//! SA's context, and how many a backend interleaves at once ([`MAX_BURST`]).

use crate::sa::SaCrypto;

/// Largest burst a backend interleaves at once; longer bursts are cut into chunks of this size.
pub const MAX_BURST: usize = 64;

/// One packet to seal in place.
///
/// Before: `esp` holds SPI, Seq low, room for the IV, the plaintext payload with its padding,
/// pad length and next header, and room for the ICV. After: the IV is written (AEAD: the
/// 64-bit sequence number, big-endian; CBC: an unpredictable IV derived from it under a
/// per-SA random key), the payload is encrypted and the ICV is written.
pub struct SealOp<'a> {
    /// The SA's crypto context.
    pub sa: &'a SaCrypto,
    /// The whole ESP packet, SPI to ICV.
    pub esp: &'a mut [u8],
    /// The full 64-bit sequence number (its low half is already in `esp[4..8]`).
    pub seq: u64,
    /// Whether the SA uses extended sequence numbers (the high half is authenticated).
    pub esn: bool,
}

/// One packet to verify and decrypt in place.
pub struct OpenOp<'a> {
    /// The SA's crypto context.
    pub sa: &'a SaCrypto,
    /// The whole ESP packet, SPI to ICV, as received.
    pub esp: &'a mut [u8],
    /// The full 64-bit sequence number, high half inferred by the replay window when ESN is on.
    pub seq: u64,
    /// Whether the SA uses extended sequence numbers.
    pub esn: bool,
    /// Set by [`crate::open_burst`]: true when the ICV verified and the payload is decrypted in place.
    /// When false the payload bytes are unspecified and must not be handed on.
    pub verified: bool,
}

/// Longest tag a [`MacOp`] produces (HMAC-SHA-512-256).
pub const MAX_TAG_LEN: usize = 32;

/// One packet's integrity tag to compute (AH: the ICV over the packet with its mutable fields
/// zeroed, RFC 4302 section 3.3.3). Neither seals nor verifies by itself: the caller writes the
/// tag into the packet, or compares it with the one received in constant time.
pub struct MacOp<'a> {
    /// The SA's crypto context (an HMAC or AES-GMAC suite).
    pub sa: &'a SaCrypto,
    /// Everything the tag covers, in order.
    pub data: &'a [u8],
    /// AES-GMAC: the 8-byte IV of the nonce (salt || IV, RFC 4543 section 3.1); HMAC: unused.
    pub iv: [u8; 8],
    /// Set by [`crate::mac_burst`]: the tag, its first [`rampart_sa::Suite::icv_len`] bytes.
    pub tag: [u8; MAX_TAG_LEN],
}
