//! Encryption transforms of the IKE SA: AES-GCM-16 with 128 and 256-bit keys (RFC 5282),
//! ChaCha20-Poly1305 (RFC 7634), AES-CBC with 128, 192 and 256-bit keys (RFC 3602), as used by
//! the Encrypted payload.
//!
//! Only the primitive operations; the SK payload layout lives in [`crate::sk`]. Keys are taken
//! by reference and never stored or printed here.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
use ring::aead;

/// An encryption transform (IKEv2 transform type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encr {
    /// ENCR_AES_CBC (12), 128, 192 or 256-bit key.
    AesCbc {
        /// Key size in bits.
        key_bits: u16,
    },
    /// ENCR_AES_GCM_16 (20), 128 or 256-bit key.
    AesGcm16 {
        /// Key size in bits, without the salt.
        key_bits: u16,
    },
    /// ENCR_CHACHA20_POLY1305 (28).
    ChaCha20Poly1305,
}

/// Length of the AEAD ICV of the IKE SA (GCM-16 and Poly1305).
pub const AEAD_ICV_LEN: usize = 16;

/// The AEAD (or decryption) check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptError;

impl Encr {
    /// IANA transform ID.
    pub fn id(self) -> u16 {
        match self {
            Encr::AesCbc { .. } => 12,
            Encr::AesGcm16 { .. } => 20,
            Encr::ChaCha20Poly1305 => 28,
        }
    }

    /// The swanctl.conf keyword (`aes256`, `aes128gcm16`, `chacha20poly1305`).
    pub fn name(self) -> String {
        match self {
            Encr::AesCbc { key_bits } => format!("aes{key_bits}"),
            Encr::AesGcm16 { key_bits } => format!("aes{key_bits}gcm16"),
            Encr::ChaCha20Poly1305 => "chacha20poly1305".into(),
        }
    }

    /// Key Length attribute, where the transform has one.
    pub fn key_length_attribute(self) -> Option<u16> {
        match self {
            Encr::AesCbc { key_bits } | Encr::AesGcm16 { key_bits } => Some(key_bits),
            Encr::ChaCha20Poly1305 => None,
        }
    }

    /// The transform for an ID and Key Length attribute, if Rampart implements it for IKE.
    pub fn from_transform(id: u16, key_bits: Option<u16>) -> Option<Encr> {
        match (id, key_bits) {
            (12, Some(b @ (128 | 192 | 256))) => Some(Encr::AesCbc { key_bits: b }),
            (20, Some(b @ (128 | 256))) => Some(Encr::AesGcm16 { key_bits: b }),
            (28, None) => Some(Encr::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// Whether the transform is an AEAD (no separate integrity transform).
    pub fn is_aead(self) -> bool {
        !matches!(self, Encr::AesCbc { .. })
    }

    /// Bytes of SK_e: the cipher key, plus the 4-byte salt of the AEADs (RFC 5282 section 7.1,
    /// RFC 7634 section 2).
    pub fn key_len(self) -> usize {
        match self {
            Encr::AesCbc { key_bits } => key_bits as usize / 8,
            Encr::AesGcm16 { key_bits } => key_bits as usize / 8 + 4,
            Encr::ChaCha20Poly1305 => 36,
        }
    }

    /// Bytes of IV in each SK payload.
    pub fn iv_len(self) -> usize {
        match self {
            Encr::AesCbc { .. } => 16,
            _ => 8,
        }
    }

    /// Block size the padded plaintext must be a multiple of.
    pub fn block_len(self) -> usize {
        match self {
            Encr::AesCbc { .. } => 16,
            _ => 1,
        }
    }

    fn aead_key(self, key: &[u8]) -> Option<(aead::LessSafeKey, [u8; 4])> {
        let alg = match self {
            Encr::AesGcm16 { key_bits: 128 } => &aead::AES_128_GCM,
            Encr::AesGcm16 { key_bits: 256 } => &aead::AES_256_GCM,
            Encr::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
            _ => return None,
        };
        if key.len() != self.key_len() {
            return None;
        }
        let (k, salt) = key.split_at(key.len() - 4);
        let unbound = aead::UnboundKey::new(alg, k).ok()?;
        let mut s = [0u8; 4];
        s.copy_from_slice(salt);
        Some((aead::LessSafeKey::new(unbound), s))
    }

    fn nonce(salt: [u8; 4], iv: &[u8]) -> Option<aead::Nonce> {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&salt);
        if iv.len() != 8 {
            return None;
        }
        n[4..].copy_from_slice(iv);
        Some(aead::Nonce::assume_unique_for_key(n))
    }

    /// AEAD: encrypts `buf` in place and appends the ICV. Returns false on a key or IV length
    /// that does not fit the transform (a caller bug; nothing is encrypted then).
    pub fn aead_seal(self, key: &[u8], iv: &[u8], aad: &[u8], buf: &mut Vec<u8>) -> bool {
        let Some((k, salt)) = self.aead_key(key) else { return false };
        let Some(nonce) = Self::nonce(salt, iv) else { return false };
        k.seal_in_place_append_tag(nonce, aead::Aad::from(aad), buf).is_ok()
    }

    /// AEAD: verifies and decrypts `ct_and_icv`, returning the plaintext.
    pub fn aead_open(self, key: &[u8], iv: &[u8], aad: &[u8], ct_and_icv: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let (k, salt) = self.aead_key(key).ok_or(DecryptError)?;
        let nonce = Self::nonce(salt, iv).ok_or(DecryptError)?;
        let mut buf = ct_and_icv.to_vec();
        let len = k.open_in_place(nonce, aead::Aad::from(aad), &mut buf).map_err(|_| DecryptError)?.len();
        buf.truncate(len);
        Ok(buf)
    }

    /// AES-CBC: encrypts `buf` (a multiple of 16 bytes) in place.
    pub fn cbc_encrypt(self, key: &[u8], iv: &[u8], buf: &mut [u8]) -> bool {
        let len = buf.len();
        if !len.is_multiple_of(16) {
            return false;
        }
        match self {
            Encr::AesCbc { key_bits: 128 } => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
                .is_ok_and(|c| c.encrypt_padded::<NoPadding>(buf, len).is_ok()),
            Encr::AesCbc { key_bits: 192 } => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
                .is_ok_and(|c| c.encrypt_padded::<NoPadding>(buf, len).is_ok()),
            Encr::AesCbc { key_bits: 256 } => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
                .is_ok_and(|c| c.encrypt_padded::<NoPadding>(buf, len).is_ok()),
            _ => false,
        }
    }

    /// AES-CBC: decrypts `buf` (a multiple of 16 bytes) in place.
    pub fn cbc_decrypt(self, key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), DecryptError> {
        if !buf.len().is_multiple_of(16) || buf.is_empty() {
            return Err(DecryptError);
        }
        let ok = match self {
            Encr::AesCbc { key_bits: 128 } => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                .is_ok_and(|c| c.decrypt_padded::<NoPadding>(buf).is_ok()),
            Encr::AesCbc { key_bits: 192 } => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
                .is_ok_and(|c| c.decrypt_padded::<NoPadding>(buf).is_ok()),
            Encr::AesCbc { key_bits: 256 } => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                .is_ok_and(|c| c.decrypt_padded::<NoPadding>(buf).is_ok()),
            _ => false,
        };
        if ok { Ok(()) } else { Err(DecryptError) }
    }
}
