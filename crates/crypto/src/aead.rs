//! The AEAD primitives (AES-GCM with a 16-byte tag, ChaCha20-Poly1305) of each backend behind
//! one enum: a 12-byte nonce, arbitrary AAD, a detached 16-byte tag, in place.
//!
//! This module knows nothing of ESP (the salt, the IV and the AAD layout live in `esp.rs`). It
//! must never leave plaintext in the buffer when a tag does not verify: [`AeadKey::open`]
//! zeroes the buffer on failure, whatever the backend did with it.

use rampart_sa::suite::{Encryption, Suite};

use crate::backend::{Backend, CryptoError};

/// Bytes of an AEAD nonce (RFC 4106 section 4, RFC 7634 section 2: salt || IV).
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes of an AEAD tag (the ICV of AES-GCM-16 and ChaCha20-Poly1305).
pub(crate) const TAG_LEN: usize = 16;

/// One AEAD key, expanded by one backend.
///
/// No variant exposes key bytes. The RustCrypto types zeroize their key schedules on drop
/// (their `zeroize` features are on); `ring` keeps its key schedule private and does not wipe
/// it on drop, which is a limitation of that crate.
pub(crate) enum AeadKey {
    /// `ring::aead` (AES-128-GCM, AES-256-GCM or ChaCha20-Poly1305).
    #[cfg(feature = "ring")]
    Ring(ring::aead::LessSafeKey),
    /// RustCrypto `aes-gcm`, 128-bit key.
    #[cfg(feature = "rustcrypto")]
    Aes128Gcm(aes_gcm::Aes128Gcm),
    /// RustCrypto `aes-gcm`, 256-bit key.
    #[cfg(feature = "rustcrypto")]
    Aes256Gcm(aes_gcm::Aes256Gcm),
    /// RustCrypto `chacha20poly1305`.
    #[cfg(feature = "rustcrypto")]
    ChaCha20Poly1305(chacha20poly1305::ChaCha20Poly1305),
}

// The RustCrypto key schedules must wipe themselves (their `zeroize` features): checked here so
// that a dependency change cannot silently drop it.
#[cfg(feature = "rustcrypto")]
const _: () = {
    const fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<aes_gcm::Aes128Gcm>();
    wiped_on_drop::<aes_gcm::Aes256Gcm>();
    wiped_on_drop::<chacha20poly1305::ChaCha20Poly1305>();
};

impl AeadKey {
    /// Expands `key` (without the salt) for `suite`, which must be an AEAD suite.
    pub(crate) fn new(backend: Backend, suite: Suite, key: &[u8]) -> Result<AeadKey, CryptoError> {
        let encryption = suite.encryption();
        let expected = match encryption {
            Encryption::AesGcm16 { key_bits } => usize::from(key_bits) / 8,
            Encryption::ChaCha20Poly1305 => 32,
            Encryption::AesCbc { .. } | Encryption::Null => return Err(CryptoError::Unsupported { backend, suite }),
        };
        if key.len() != expected {
            return Err(CryptoError::KeyLength { which: "encryption", expected, got: key.len() });
        }
        match backend {
            // The multi-buffer backend has its own key type (`vaes::GcmKey`) and no HMAC.
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes => Err(CryptoError::Unsupported { backend, suite }),
            #[cfg(feature = "ring")]
            Backend::Ring => {
                let algorithm = match encryption {
                    Encryption::AesGcm16 { key_bits: 128 } => &ring::aead::AES_128_GCM,
                    Encryption::AesGcm16 { .. } => &ring::aead::AES_256_GCM,
                    _ => &ring::aead::CHACHA20_POLY1305,
                };
                let unbound = ring::aead::UnboundKey::new(algorithm, key).map_err(|_| CryptoError::KeyLength {
                    which: "encryption",
                    expected,
                    got: key.len(),
                })?;
                Ok(AeadKey::Ring(ring::aead::LessSafeKey::new(unbound)))
            }
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => {
                use aes_gcm::KeyInit;
                let bad = |_| CryptoError::KeyLength { which: "encryption", expected, got: key.len() };
                Ok(match encryption {
                    Encryption::AesGcm16 { key_bits: 128 } => {
                        AeadKey::Aes128Gcm(aes_gcm::Aes128Gcm::new_from_slice(key).map_err(bad)?)
                    }
                    Encryption::AesGcm16 { .. } => {
                        AeadKey::Aes256Gcm(aes_gcm::Aes256Gcm::new_from_slice(key).map_err(bad)?)
                    }
                    _ => {
                        AeadKey::ChaCha20Poly1305(chacha20poly1305::ChaCha20Poly1305::new_from_slice(key).map_err(bad)?)
                    }
                })
            }
        }
    }

    /// Encrypts `in_out` in place and returns the tag.
    ///
    /// The caller guarantees that `nonce` is never used twice under this key.
    pub(crate) fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; TAG_LEN] {
        match self {
            #[cfg(feature = "ring")]
            AeadKey::Ring(key) => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(*nonce);
                match key.seal_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), in_out) {
                    Ok(tag) => {
                        let mut out = [0u8; TAG_LEN];
                        out.copy_from_slice(tag.as_ref());
                        out
                    }
                    // ring refuses only inputs beyond the AEAD's length limits (2^36 bytes for
                    // GCM, 2^38 for ChaCha20), which no packet buffer reaches.
                    Err(_) => unreachable_length_limit(in_out),
                }
            }
            #[cfg(feature = "rustcrypto")]
            AeadKey::Aes128Gcm(key) => rustcrypto_seal(key, nonce, aad, in_out),
            #[cfg(feature = "rustcrypto")]
            AeadKey::Aes256Gcm(key) => rustcrypto_seal(key, nonce, aad, in_out),
            #[cfg(feature = "rustcrypto")]
            AeadKey::ChaCha20Poly1305(key) => rustcrypto_seal(key, nonce, aad, in_out),
        }
    }

    /// Verifies `tag` over `aad` and the ciphertext in `in_out` (compared in constant time by
    /// the backend) and decrypts in place. On failure `in_out` is zeroed and false is returned.
    pub(crate) fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
        let verified = match self {
            #[cfg(feature = "ring")]
            AeadKey::Ring(key) => {
                let nonce = ring::aead::Nonce::assume_unique_for_key(*nonce);
                let tag = ring::aead::Tag::from(*tag);
                key.open_in_place_separate_tag(nonce, ring::aead::Aad::from(aad), tag, in_out, 0..).is_ok()
            }
            #[cfg(feature = "rustcrypto")]
            AeadKey::Aes128Gcm(key) => rustcrypto_open(key, nonce, aad, in_out, tag),
            #[cfg(feature = "rustcrypto")]
            AeadKey::Aes256Gcm(key) => rustcrypto_open(key, nonce, aad, in_out, tag),
            #[cfg(feature = "rustcrypto")]
            AeadKey::ChaCha20Poly1305(key) => rustcrypto_open(key, nonce, aad, in_out, tag),
        };
        if !verified {
            in_out.fill(0);
        }
        verified
    }
}

#[cfg(feature = "rustcrypto")]
fn rustcrypto_seal<A>(key: &A, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8]) -> [u8; TAG_LEN]
where
    A: aes_gcm::AeadInOut<NonceSize = aes_gcm::aead::consts::U12, TagSize = aes_gcm::aead::consts::U16>,
{
    match key.encrypt_inout_detached(&(*nonce).into(), aad, in_out.into()) {
        Ok(tag) => tag.into(),
        // RustCrypto refuses only inputs beyond the AEAD's length limits, as ring does.
        Err(_) => unreachable_length_limit(in_out),
    }
}

#[cfg(feature = "rustcrypto")]
fn rustcrypto_open<A>(key: &A, nonce: &[u8; NONCE_LEN], aad: &[u8], in_out: &mut [u8], tag: &[u8; TAG_LEN]) -> bool
where
    A: aes_gcm::AeadInOut<NonceSize = aes_gcm::aead::consts::U12, TagSize = aes_gcm::aead::consts::U16>,
{
    key.decrypt_inout_detached(&(*nonce).into(), aad, in_out.into(), &(*tag).into()).is_ok()
}

/// What a seal does with an input beyond the AEAD's length limit (more than 64 GiB): it
/// destroys the plaintext and returns a tag that cannot verify. Kept out of line and cold: no
/// ESP packet can be that long, so this is never reached from the network.
#[cold]
#[inline(never)]
fn unreachable_length_limit(in_out: &mut [u8]) -> [u8; TAG_LEN] {
    in_out.fill(0);
    [0u8; TAG_LEN]
}
