//! The integrity primitives of each backend behind one enum: HMAC-SHA-256/384/512, truncated
//! to the ESP ICV length (RFC 4868 section 2.3), computed over two pieces (the packet and, with
//! ESN, the high half of the sequence number).
//!
//! This module knows nothing of ESP framing beyond "data, then an optional tail". It must never
//! compare an ICV with anything but a constant-time comparison, and never expose key bytes.

use subtle::ConstantTimeEq;

use rampart_sa::suite::{Integrity, Suite};

use crate::backend::{Backend, CryptoError};

/// Longest HMAC output (SHA-512).
pub(crate) const MAX_MAC_LEN: usize = 64;

/// One HMAC key with its inner and outer pads already hashed, for one backend.
///
/// The RustCrypto states zeroize on drop (`hmac`/`sha2` `zeroize` features); `ring` keeps its
/// precomputed pads private and does not wipe them on drop, a limitation of that crate.
#[derive(Clone)]
pub(crate) enum IntegrityKey {
    /// `ring::hmac` with SHA-256, SHA-384 or SHA-512.
    #[cfg(feature = "ring")]
    Ring(ring::hmac::Key),
    /// RustCrypto `hmac` + `sha2`, SHA-256.
    #[cfg(feature = "rustcrypto")]
    Sha256(hmac::Hmac<sha2::Sha256>),
    /// RustCrypto `hmac` + `sha2`, SHA-384.
    #[cfg(feature = "rustcrypto")]
    Sha384(hmac::Hmac<sha2::Sha384>),
    /// RustCrypto `hmac` + `sha2`, SHA-512.
    #[cfg(feature = "rustcrypto")]
    Sha512(hmac::Hmac<sha2::Sha512>),
}

// The RustCrypto HMAC states (hashed pads) must wipe themselves: checked at compile time.
// `hmac` 0.13 does not mark `Hmac<D>` itself `ZeroizeOnDrop`, but all it holds are two cores of
// `D` (the hashed inner and outer pads) and a block buffer of `D`'s block size: the very types
// `D` is made of, so checking `D` checks them (`sha2` and `digest` built with `zeroize`).
#[cfg(feature = "rustcrypto")]
const _: () = {
    const fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<sha2::Sha256>();
    wiped_on_drop::<sha2::Sha384>();
    wiped_on_drop::<sha2::Sha512>();
};

impl IntegrityKey {
    /// Prepares the HMAC of `suite`'s integrity transform with `key`. Any key length is
    /// accepted here (HMAC allows it); [`crate::SaCrypto::new`] enforces RFC 4868's lengths.
    pub(crate) fn new(backend: Backend, suite: Suite, key: &[u8]) -> Result<IntegrityKey, CryptoError> {
        let integrity = suite.integrity();
        // AES-GMAC is not an HMAC: `SaCrypto` keys it as a GCM key (`Transform::Gmac`).
        if matches!(integrity, Integrity::None | Integrity::AesGmac { .. }) {
            return Err(CryptoError::Unsupported { backend, suite });
        }
        match backend {
            // The multi-buffer backend has its own key type (`vaes::GcmKey`) and no HMAC.
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes => Err(CryptoError::Unsupported { backend, suite }),
            #[cfg(feature = "ring")]
            Backend::Ring => {
                let algorithm = match integrity {
                    Integrity::HmacSha256_128 => ring::hmac::HMAC_SHA256,
                    Integrity::HmacSha384_192 => ring::hmac::HMAC_SHA384,
                    _ => ring::hmac::HMAC_SHA512,
                };
                Ok(IntegrityKey::Ring(ring::hmac::Key::new(algorithm, key)))
            }
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                use hmac::KeyInit;
                // HMAC takes keys of any length, so `new_from_slice` cannot fail; map it anyway.
                let bad = |_| CryptoError::KeyLength {
                    which: "integrity",
                    expected: suite.integrity_key_len(),
                    got: key.len(),
                };
                Ok(match integrity {
                    Integrity::HmacSha256_128 => IntegrityKey::Sha256(hmac::Hmac::new_from_slice(key).map_err(bad)?),
                    Integrity::HmacSha384_192 => IntegrityKey::Sha384(hmac::Hmac::new_from_slice(key).map_err(bad)?),
                    _ => IntegrityKey::Sha512(hmac::Hmac::new_from_slice(key).map_err(bad)?),
                })
            }
        }
    }

    /// The full HMAC of `data || tail`, and its length in bytes.
    pub(crate) fn full(&self, data: &[u8], tail: &[u8]) -> ([u8; MAX_MAC_LEN], usize) {
        let mut out = [0u8; MAX_MAC_LEN];
        let len = match self {
            #[cfg(feature = "ring")]
            IntegrityKey::Ring(key) => {
                let mut ctx = ring::hmac::Context::with_key(key);
                ctx.update(data);
                ctx.update(tail);
                let tag = ctx.sign();
                let tag = tag.as_ref();
                out[..tag.len()].copy_from_slice(tag);
                tag.len()
            }
            #[cfg(feature = "rustcrypto")]
            IntegrityKey::Sha256(key) => rustcrypto_full(key, data, tail, &mut out),
            #[cfg(feature = "rustcrypto")]
            IntegrityKey::Sha384(key) => rustcrypto_full(key, data, tail, &mut out),
            #[cfg(feature = "rustcrypto")]
            IntegrityKey::Sha512(key) => rustcrypto_full(key, data, tail, &mut out),
        };
        (out, len)
    }

    /// Writes the HMAC of `data || tail`, truncated to `icv.len()` bytes, into `icv`.
    pub(crate) fn sign(&self, data: &[u8], tail: &[u8], icv: &mut [u8]) {
        let (full, len) = self.full(data, tail);
        let n = icv.len().min(len);
        icv[..n].copy_from_slice(&full[..n]);
    }

    /// Whether `icv` is the HMAC of `data || tail` truncated to `icv.len()` bytes, compared in
    /// constant time. An empty `icv`, or one longer than the HMAC, never verifies.
    /// RFC 4868 section 2.3: the ICV is the leftmost half of the HMAC output, so only that prefix
    /// is compared.
    pub(crate) fn verify(&self, data: &[u8], tail: &[u8], icv: &[u8]) -> bool {
        let (full, len) = self.full(data, tail);
        if icv.is_empty() || icv.len() > len {
            return false;
        }
        full[..icv.len()].ct_eq(icv).into()
    }
}

#[cfg(feature = "rustcrypto")]
fn rustcrypto_full<M>(key: &M, data: &[u8], tail: &[u8], out: &mut [u8; MAX_MAC_LEN]) -> usize
where
    M: hmac::Mac + Clone,
{
    let mut mac = key.clone();
    mac.update(data);
    mac.update(tail);
    let tag = mac.finalize().into_bytes();
    out[..tag.len()].copy_from_slice(&tag);
    tag.len()
}
