//! Test hooks: the primitives of each backend with arbitrary inputs, so that known-answer and
//! Wycheproof vectors whose AAD, nonce or IV no ESP packet would carry can be checked.
//!
//! Hidden from the documentation and not part of the stable API. Nothing on the data path may
//! call this module: [`seal_with_iv`] in particular lets the caller choose the IV, which is how
//! a nonce gets reused.

use crate::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::esp;
use crate::mac::IntegrityKey;
#[cfg(target_arch = "x86_64")]
use crate::vaes;
use rampart_sa::suite::Suite;

use crate::backend::{Backend, CryptoError};
use crate::op::SealOp;

/// Encrypts `in_out` in place under `key` (AES-GCM or ChaCha20-Poly1305 key without a salt, as
/// `suite` says) and returns the 16-byte tag.
pub fn aead_seal(
    backend: Backend,
    suite: Suite,
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut [u8],
) -> Result<[u8; TAG_LEN], CryptoError> {
    #[cfg(target_arch = "x86_64")]
    if backend == Backend::Vaes {
        let (key, engine) = vaes_key(backend, suite, key)?;
        let mut tag = [0u8; TAG_LEN];
        let mut ops = [vaes::GcmOp { key: &key, nonce: *nonce, aad, data: in_out, tag: &mut tag, verified: false }];
        engine.seal_burst(&mut ops).map_err(|_| CryptoError::BadLayout { index: 0 })?;
        return Ok(tag);
    }
    Ok(AeadKey::new(backend, suite, key)?.seal(nonce, aad, in_out))
}

/// The multi-buffer engine's key and engine for a raw AES-GCM call.
#[cfg(target_arch = "x86_64")]
fn vaes_key(backend: Backend, suite: Suite, key: &[u8]) -> Result<(vaes::GcmKey, vaes::Engine), CryptoError> {
    let unsupported = CryptoError::Unsupported { backend, suite };
    if !backend.supports(suite) {
        return Err(unsupported);
    }
    let engine = vaes::Engine::detect().ok_or(unsupported.clone())?;
    let expected = suite.encryption_key_len() - 4;
    if key.len() != expected {
        return Err(CryptoError::KeyLength { which: "encryption", expected, got: key.len() });
    }
    Ok((vaes::GcmKey::new(key).ok_or(unsupported)?, engine))
}

/// Verifies `tag` and decrypts `in_out` in place; `Ok(false)` (and `in_out` zeroed) when the
/// tag does not verify.
pub fn aead_open(
    backend: Backend,
    suite: Suite,
    key: &[u8],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    in_out: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<bool, CryptoError> {
    #[cfg(target_arch = "x86_64")]
    if backend == Backend::Vaes {
        let (key, engine) = vaes_key(backend, suite, key)?;
        let mut tag = *tag;
        let mut ops = [vaes::GcmOp { key: &key, nonce: *nonce, aad, data: in_out, tag: &mut tag, verified: false }];
        engine.open_burst(&mut ops);
        return Ok(ops[0].verified);
    }
    Ok(AeadKey::new(backend, suite, key)?.open(nonce, aad, in_out, tag))
}

/// The full (untruncated) HMAC of `data` under `key` (any length) with `suite`'s integrity
/// transform.
pub fn hmac(backend: Backend, suite: Suite, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (full, len) = IntegrityKey::new(backend, suite, key)?.full(data, &[]);
    Ok(full[..len].to_vec())
}

/// Whether `icv` is the HMAC of `data` truncated to `icv.len()` bytes, through the same
/// constant-time comparison that [`crate::open_burst`] uses.
pub fn icv_verify(backend: Backend, suite: Suite, key: &[u8], data: &[u8], icv: &[u8]) -> Result<bool, CryptoError> {
    Ok(IntegrityKey::new(backend, suite, key)?.verify(data, &[], icv))
}

/// Seals one packet like [`crate::seal_burst`] but with the IV given (8 bytes for the AEADs,
/// 16 for AES-CBC, empty for NULL) instead of the one derived from the sequence number.
/// [`CryptoError::BadLayout`] (index 0) when the packet or the IV does not fit.
pub fn seal_with_iv(op: &mut SealOp<'_>, iv: &[u8]) -> Result<(), CryptoError> {
    let region = esp::Region::of(op.sa, op.esp.len(), true)
        .filter(|_| esp::seq_matches(op.esp, op.seq, op.esn) && iv.len() == op.sa.suite.iv_len())
        .ok_or(CryptoError::BadLayout { index: 0 })?;
    esp::seal(op.sa, op.esp, op.seq, op.esn, region, Some(iv));
    Ok(())
}
