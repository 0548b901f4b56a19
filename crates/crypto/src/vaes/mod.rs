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
mod common;
mod cpu;
mod key;

pub use common::{GcmError, GcmOp, MAX_DATA_LEN, NONCE_LEN, TAG_LEN};
pub use cpu::Path;
pub use key::GcmKey;

use common::too_long;

/// Proof that the CPU runs one of the paths: only [`Engine::detect`] and [`Engine::with_path`]
/// make one, after checking the CPU, so no call can reach an instruction the CPU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engine {
    path: Path,
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
