//! Rampart's own multi-buffer AES-GCM for x86-64 (VAES/VPCLMULQDQ with AVX-512, and
//! AES-NI/PCLMULQDQ): interleaves the packets of a burst on the AES units.
//!
//! What it is for: sealing and opening whole bursts of ESP payloads (RFC 4106: 16-byte ICV,
//! nonce = 4-byte salt || 8-byte IV) faster than one library call per packet. Small packets (up
//! to 512 bytes of data and 64 of AAD) of a burst share the AES pipeline: the counter blocks of
//! up to 16 packets (and their pre-counter blocks J0, four packets to one 512-bit register) are
//! in flight together, 32 blocks at a time, and each packet's GHASH (AAD, data and length block)
//! is one sum of products with precomputed powers of H, reduced once, computed while the AES
//! rounds of later packets run. Long packets take a wide per-packet path: 16 blocks per
//! iteration on the VAES path with the GHASH of the previous 16 stitched between the AES rounds
//! (8 blocks per iteration on the AES-NI path).
//!
//! Measured against intel-ipsec-mb's direct GCM API, a one-packet-at-a-time version of this code
//! and `ring` in `bench/src/bin/gcm.rs`.
//!
//! What it must never do: run an instruction the CPU lacks (an [`Engine`] exists only after the
//! CPU was checked for its path), leave plaintext in a buffer whose tag did not verify (it is
//! zeroed), compare tags in variable time, or show key material in `Debug`.
//!
//! ```text
//! GcmKey::new(key)            once per SA: round keys, powers of H (zeroized on drop)
//! Engine::detect()            None when the CPU has neither path: use a library backend
//! engine.seal_burst(&mut ops) ops may mix keys, lengths, AAD lengths
//! engine.open_burst(&mut ops) sets each op's `verified`; failed ops are zeroed
//! ```
//!
//! GHASH is computed in the POLYVAL domain (RFC 8452 appendix A): blocks are byte-reversed, the
//! hash key is `mulX_POLYVAL(ByteReverse(H))`, and the product `a * b * x^-128` is reduced with
//! two carry-less multiplications by the constant `0xc2 << 56`.
#![allow(unsafe_code)]

mod aesni;
mod avx512;
mod key;

pub use key::GcmKey;

use core::fmt;

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

/// Which implementation an [`Engine`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// 512-bit VAES and VPCLMULQDQ with AVX-512 F/BW/VL: four blocks per instruction.
    Vaes512,
    /// 128-bit AES-NI and PCLMULQDQ (with SSSE3 and SSE4.1): one block per instruction.
    AesNi,
}

impl Path {
    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        let base = std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1");
        match self {
            Path::AesNi => base,
            Path::Vaes512 => {
                base && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("vaes")
                    && std::arch::is_x86_feature_detected!("vpclmulqdq")
            }
        }
    }

    /// A short name for reports: `vaes512` or `aesni`.
    pub fn name(self) -> &'static str {
        match self {
            Path::Vaes512 => "vaes512",
            Path::AesNi => "aesni",
        }
    }
}

/// Proof that the CPU runs one of the paths: only [`Engine::detect`] and [`Engine::with_path`]
/// make one, after checking the CPU, so no call can reach an instruction the CPU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    path: Path,
}

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

fn too_long(op: &GcmOp<'_>) -> bool {
    op.data.len() as u64 > MAX_DATA_LEN
}

impl Engine {
    /// The fastest path this CPU runs, or `None` when it has neither (callers then use a
    /// library backend).
    pub fn detect() -> Option<Engine> {
        Engine::with_path(Path::Vaes512).or_else(|| Engine::with_path(Path::AesNi))
    }

    /// The given path, if this CPU runs it (tests and benchmarks force the AES-NI path this way).
    pub fn with_path(path: Path) -> Option<Engine> {
        path.is_supported().then_some(Engine { path })
    }

    /// The path this engine runs.
    pub fn path(&self) -> Path {
        self.path
    }

    /// Encrypts every op's data in place and writes its tag, small packets interleaved.
    /// Checks every op first: on error nothing was sealed.
    pub fn seal_burst(&self, ops: &mut [GcmOp<'_>]) -> Result<(), GcmError> {
        if let Some(index) = ops.iter().position(too_long) {
            return Err(GcmError::TooLong { index });
        }
        match self.path {
            // Safety: `self` exists only if `Path::Vaes512.is_supported()` held on this CPU.
            Path::Vaes512 => unsafe { avx512::crypt_burst::<true>(ops) },
            // Safety: `self` exists only if `Path::AesNi.is_supported()` held on this CPU.
            Path::AesNi => unsafe { aesni::crypt_burst::<true>(ops) },
        }
        Ok(())
    }

    /// Verifies every op's tag (in constant time) and decrypts its data in place, small packets
    /// interleaved. Sets `verified`; the data of an op that failed is zeroed.
    pub fn open_burst(&self, ops: &mut [GcmOp<'_>]) {
        for op in ops.iter_mut() {
            op.verified = false;
        }
        // Ops too long for GCM cannot verify; they are left out (and stay unverified).
        if ops.iter().any(too_long) {
            for op in ops.iter_mut().filter(|op| !too_long(op)) {
                self.open_burst(core::slice::from_mut(op));
            }
            return;
        }
        match self.path {
            // Safety: `self` exists only if `Path::Vaes512.is_supported()` held on this CPU.
            Path::Vaes512 => unsafe { avx512::crypt_burst::<false>(ops) },
            // Safety: `self` exists only if `Path::AesNi.is_supported()` held on this CPU.
            Path::AesNi => unsafe { aesni::crypt_burst::<false>(ops) },
        }
    }

    /// [`Engine::seal_burst`] one op at a time, with no interleaving across packets: the
    /// reference that measures what interleaving gains.
    pub fn seal_each(&self, ops: &mut [GcmOp<'_>]) -> Result<(), GcmError> {
        if let Some(index) = ops.iter().position(too_long) {
            return Err(GcmError::TooLong { index });
        }
        for op in ops.iter_mut() {
            self.seal_burst(core::slice::from_mut(op))?;
        }
        Ok(())
    }

    /// [`Engine::open_burst`] one op at a time, with no interleaving across packets.
    pub fn open_each(&self, ops: &mut [GcmOp<'_>]) {
        for op in ops.iter_mut() {
            self.open_burst(core::slice::from_mut(op));
        }
    }
}

/// Whether an op takes the interleaved small-packet path.
fn is_small(op: &GcmOp<'_>) -> bool {
    op.data.len() <= SMALL_DATA_MAX && op.aad.len() <= SMALL_AAD_MAX
}

/// Finishes an op: seal writes `tag`; open compares it with the op's tag in constant time and
/// zeroes the data when they differ. (Both paths run SSE4.1: `Path::is_supported`.)
#[inline]
#[target_feature(enable = "sse2,sse4.1")]
fn finish<const SEAL: bool>(op: &mut GcmOp<'_>, tag: [u8; TAG_LEN]) {
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
fn schedule(
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
