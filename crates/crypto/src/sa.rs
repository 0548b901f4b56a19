//! One SA's expanded keys for one backend ([`SaCrypto`]): built once, zeroized on drop, never
//! shown by `Debug`.

use core::fmt;

use rampart_sa::suite::{Encryption, Integrity, Suite};
use zeroize::Zeroizing;

use crate::backend::{Backend, CryptoError};
#[cfg(target_arch = "x86_64")]
use crate::vaes;
use crate::{aead, cbc, mac};

/// One SA's expanded keys for one backend. Zeroized on drop; `Debug` shows no key.
///
/// The RustCrypto key schedules and HMAC states wipe themselves on drop, as do the salt and the
/// CBC IV key; `ring` keeps its AES-GCM/ChaCha20 keys and HMAC pads private and does not wipe
/// them (no raw copy of a key is kept anywhere else).
pub struct SaCrypto {
    pub(crate) suite: Suite,
    backend: Backend,
    pub(crate) transform: Transform,
}

/// The expanded keys of each suite family.
///
/// Kept inline (no `Box`): a worker reaches the key schedule of every packet without another
/// pointer to chase, and an SA is built once.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Transform {
    /// AES-GCM-16 or ChaCha20-Poly1305, with the 4-byte salt of the nonce.
    Aead { key: aead::AeadKey, salt: Zeroizing<[u8; 4]> },
    /// AES-CBC with its IV generator, and the HMAC.
    Cbc { cipher: cbc::AesCbcKey, iv_gen: cbc::CbcIvGenerator, mac: mac::IntegrityKey },
    /// No encryption, HMAC only (ESP with NULL, AH with HMAC).
    Null { mac: mac::IntegrityKey },
    /// AES-GMAC (AH, RFC 4543): a GCM key whose tags cover additional data only, and the salt.
    Gmac { key: aead::AeadKey, salt: Zeroizing<[u8; 4]> },
    /// AES-GCM-16 on the multi-buffer engine: round keys and powers of H expanded once.
    #[cfg(target_arch = "x86_64")]
    VaesGcm { key: vaes::GcmKey, salt: Zeroizing<[u8; 4]>, engine: vaes::Engine },
}

// Workers and the IKE daemon hand SA contexts across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<SaCrypto>();
};

impl fmt::Debug for SaCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaCrypto").field("suite", &self.suite).field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl SaCrypto {
    /// Expands the keys of one SA. `encryption_key` includes the 4-byte salt of the AEADs
    /// (RFC 4106 section 8.1, RFC 7634 section 4); `integrity_key` is empty for AEADs.
    ///
    /// Refuses keys of the wrong length ([`CryptoError::KeyLength`]). AES-CBC suites draw a
    /// random IV key from the operating system ([`CryptoError::RandomUnavailable`] if it fails).
    pub fn new(
        suite: Suite,
        encryption_key: &[u8],
        integrity_key: &[u8],
        backend: Backend,
    ) -> Result<SaCrypto, CryptoError> {
        if !backend.supports(suite) {
            return Err(CryptoError::Unsupported { backend, suite });
        }
        let expected = suite.encryption_key_len();
        if encryption_key.len() != expected {
            return Err(CryptoError::KeyLength { which: "encryption", expected, got: encryption_key.len() });
        }
        let expected = suite.integrity_key_len();
        if integrity_key.len() != expected {
            return Err(CryptoError::KeyLength { which: "integrity", expected, got: integrity_key.len() });
        }
        let transform = match suite.encryption() {
            Encryption::AesGcm16 { .. } | Encryption::ChaCha20Poly1305 => {
                //= https://www.rfc-editor.org/rfc/rfc4106#section-8.1
                //# The first 32 octets are the 256-bit AES key, and the
                //# remaining four octets are used as the salt value in the nonce.
                // (Likewise 16 + 4 for AES-128, and 32 + 4 for ChaCha20, RFC 7634 section 4.)
                let (key, salt_bytes) = encryption_key.split_at(encryption_key.len() - 4);
                let mut salt = Zeroizing::new([0u8; 4]);
                salt.copy_from_slice(salt_bytes);
                #[cfg(target_arch = "x86_64")]
                if backend == Backend::Vaes {
                    let unsupported = CryptoError::Unsupported { backend, suite };
                    if !backend.supports(suite) {
                        return Err(unsupported);
                    }
                    let engine = vaes::Engine::detect().ok_or(unsupported.clone())?;
                    let key = vaes::GcmKey::new(key).ok_or(unsupported)?;
                    return Ok(SaCrypto { suite, backend, transform: Transform::VaesGcm { key, salt, engine } });
                }
                Transform::Aead { key: aead::AeadKey::new(backend, suite, key)?, salt }
            }
            Encryption::AesCbc { .. } => Transform::Cbc {
                cipher: cbc::AesCbcKey::new(encryption_key).ok_or(CryptoError::KeyLength {
                    which: "encryption",
                    expected: suite.encryption_key_len(),
                    got: encryption_key.len(),
                })?,
                iv_gen: cbc::CbcIvGenerator::new().map_err(|_| CryptoError::RandomUnavailable)?,
                mac: mac::IntegrityKey::new(backend, suite, integrity_key)?,
            },
            Encryption::Null if suite.is_gmac() => {
                //= https://www.rfc-editor.org/rfc/rfc4543#section-7
                //# The remaining four octets are used as the salt value in the nonce.
                let (key, salt_bytes) = integrity_key.split_at(integrity_key.len() - 4);
                let mut salt = Zeroizing::new([0u8; 4]);
                salt.copy_from_slice(salt_bytes);
                let bits = match suite.integrity() {
                    Integrity::AesGmac { key_bits } => key_bits,
                    _ => 0,
                };
                let gcm = Suite::new(Encryption::AesGcm16 { key_bits: bits }, Integrity::None)
                    .map_err(|_| CryptoError::Unsupported { backend, suite })?;
                Transform::Gmac { key: aead::AeadKey::new(backend, gcm, key)?, salt }
            }
            Encryption::Null => Transform::Null { mac: mac::IntegrityKey::new(backend, suite, integrity_key)? },
        };
        Ok(SaCrypto { suite, backend, transform })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this SA's packets go to the multi-buffer engine as a group.
    pub(crate) fn is_multi_buffer(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return matches!(self.transform, Transform::VaesGcm { .. });
        #[cfg(not(target_arch = "x86_64"))]
        return false;
    }
}
