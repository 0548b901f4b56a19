//! What both paths of the engine share: the constants, one packet's
//! job ([`GcmOp`]) and its error, and the steps around the AES and GHASH work (grouping a burst,
//! finishing a tag in constant time). No intrinsics beyond SSE4.1 here.
#![allow(unsafe_code)]

use core::fmt;

use super::key::GcmKey;

/// Length of a GCM nonce for ESP: 4-byte salt || 8-byte IV (RFC 4106 section 4).
pub const NONCE_LEN: usize = 12;

/// Length of the tag (the ESP ICV of AES-GCM-16, RFC 4106 section 6).
pub const TAG_LEN: usize = 16;

/// Longest plaintext GCM allows under one nonce: 2^39 - 256 bits (NIST SP 800-38D section 5.2.1.1).
pub const MAX_DATA_LEN: u64 = (1 << 36) - 32;

/// Packets up to this many bytes (and with at most [`SMALL_AAD_MAX`] bytes of AAD) share the
/// pipeline with the other small packets of their burst; longer ones take the wide path.
pub(crate) const SMALL_DATA_MAX: usize = 512;

/// Longest AAD of a packet on the interleaved path (ESP uses 8 or 12 bytes).
pub(crate) const SMALL_AAD_MAX: usize = 64;

/// At most this many small packets are interleaved at once.
pub(crate) const GROUP_MAX: usize = 16;

/// One packet of a burst: encrypted or decrypted in place.
pub struct GcmOp<'a> {
    /// The SA's key. Ops of one burst may use different keys (and key sizes).
    pub key: &'a GcmKey,
    /// Salt || IV (RFC 4106 section 4). Never reuse one under a key.
    pub nonce: [u8; NONCE_LEN],
    /// Additional authenticated data: SPI || Seq, or SPI || Seq high || Seq low with ESN
    /// (RFC 4106 section 5). Any length works; up to 64 bytes takes the interleaved path.
    pub aad: &'a [u8],
    /// Plaintext before sealing and ciphertext after it (and the reverse for opening).
    pub data: &'a mut [u8],
    /// The ICV: written by sealing, checked by opening.
    pub tag: &'a mut [u8; TAG_LEN],
    /// Set by opening: true when the tag verified and `data` holds the plaintext. When false,
    /// `data` is all zeros (or, for an op longer than [`MAX_DATA_LEN`], untouched).
    pub verified: bool,
}

impl fmt::Debug for GcmOp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcmOp")
            .field("aad_len", &self.aad.len())
            .field("data_len", &self.data.len())
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

/// A burst that cannot be sealed (nothing in it was sealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcmError {
    /// The op's data is longer than [`MAX_DATA_LEN`].
    TooLong {
        /// Index of the op in the burst.
        index: usize,
    },
}

impl fmt::Display for GcmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GcmError::TooLong { index } => write!(f, "op {index} is longer than GCM allows under one nonce"),
        }
    }
}

impl std::error::Error for GcmError {}

pub(super) fn too_long(op: &GcmOp<'_>) -> bool {
    op.data.len() as u64 > MAX_DATA_LEN
}

/// Whether an op takes the interleaved small-packet path.
pub(super) fn is_small(op: &GcmOp<'_>) -> bool {
    op.data.len() <= SMALL_DATA_MAX && op.aad.len() <= SMALL_AAD_MAX
}

/// Finishes an op: seal writes `tag`; open compares it with the op's tag in constant time and
/// zeroes the data when they differ. (Both paths run SSE4.1: `Path::is_supported`.)
#[inline]
#[target_feature(enable = "sse2,sse4.1")]
pub(super) fn finish<const SEAL: bool>(op: &mut GcmOp<'_>, tag: [u8; TAG_LEN]) {
    use core::arch::x86_64::{_mm_loadu_si128, _mm_testz_si128, _mm_xor_si128};
    if SEAL {
        *op.tag = tag;
    } else {
        //= https://www.rfc-editor.org/rfc/rfc4303#section-3.4.4.1
        //# If the test fails, then the receiver MUST discard the received IP datagram as invalid
        // (here: no plaintext is left behind, and `verified` stays false).
        // Safety: both tags are 16 readable bytes.
        let (a, b) = unsafe { (_mm_loadu_si128(tag.as_ptr().cast()), _mm_loadu_si128(op.tag.as_ptr().cast())) };
        let d = _mm_xor_si128(a, b);
        // One PTEST over all 128 bits: no early exit, so the time does not depend on where the
        // tags differ; only the (public) outcome picks a branch.
        let ok = _mm_testz_si128(d, d) == 1;
        if !ok {
            zeroize::Zeroize::zeroize(&mut *op.data);
        }
        op.verified = ok;
    }
}

/// Walks a burst: collects the ops that `grouped` accepts into groups of at most [`GROUP_MAX`]
/// with one round count and hands each group to `small`; hands every other op to `wide`.
pub(super) fn schedule(
    ops: &mut [GcmOp<'_>],
    grouped: impl Fn(&GcmOp<'_>) -> bool,
    mut small: impl FnMut(&mut [GcmOp<'_>], &[usize], usize),
    mut wide: impl FnMut(&mut GcmOp<'_>),
) {
    let mut group = [0usize; GROUP_MAX];
    let mut n = 0;
    let mut rounds = 0;
    for i in 0..ops.len() {
        if !grouped(&ops[i]) {
            wide(&mut ops[i]);
            continue;
        }
        let r = ops[i].key.rounds();
        if n == GROUP_MAX || (n > 0 && r != rounds) {
            small(ops, &group[..n], rounds);
            n = 0;
        }
        rounds = r;
        group[n] = i;
        n += 1;
    }
    if n > 0 {
        small(ops, &group[..n], rounds);
    }
}
