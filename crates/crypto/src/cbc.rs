//! AES-CBC for ESP (RFC 3602) and the per-SA generator of its IVs. Both backends use this
//! module: `ring` has no AES-CBC, so the cipher comes from the RustCrypto `aes` and `cbc`
//! crates (AES-NI/VAES when the CPU has them) whichever backend computes the HMAC.
//!
//! The IV of a packet is AES-128-ECB, under a random key drawn when the SA is built, of the
//! 128-bit block `0^64 || seq` (NIST SP 800-38A appendix C, first method: the forward cipher
//! applied to a nonce). The sequence number never repeats under one SA, so neither does the IV;
//! the key is secret, so the IV is unpredictable to anyone who sees earlier packets.
//!
//! This module must never derive an IV from anything an attacker knows without the secret key,
//! and never leave key material behind: both key schedules zeroize on drop (`aes`'s `zeroize`
//! feature), and the random IV key is drawn into a `Zeroizing` buffer.

use aes::cipher::{Array, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, InnerIvInit, KeyInit};
use zeroize::Zeroizing;

/// AES block and CBC IV size.
pub(crate) const BLOCK_LEN: usize = 16;

/// An expanded AES key (both directions) for CBC.
pub(crate) enum AesCbcKey {
    /// AES-128.
    Aes128(aes::Aes128),
    /// AES-192.
    Aes192(aes::Aes192),
    /// AES-256.
    Aes256(aes::Aes256),
}

// The AES key schedules must wipe themselves (`aes`'s `zeroize` feature): checked at compile time.
const _: () = {
    const fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wiped_on_drop::<aes::Aes128>();
    wiped_on_drop::<aes::Aes192>();
    wiped_on_drop::<aes::Aes256>();
    wiped_on_drop::<aes::Aes128Enc>();
};

impl AesCbcKey {
    /// Expands a 16, 24 or 32-byte key; `None` for any other length.
    pub(crate) fn new(key: &[u8]) -> Option<AesCbcKey> {
        match key.len() {
            16 => aes::Aes128::new_from_slice(key).ok().map(AesCbcKey::Aes128),
            24 => aes::Aes192::new_from_slice(key).ok().map(AesCbcKey::Aes192),
            32 => aes::Aes256::new_from_slice(key).ok().map(AesCbcKey::Aes256),
            _ => None,
        }
    }

    /// CBC-encrypts `data` in place. `data.len()` is a multiple of [`BLOCK_LEN`] (checked by
    /// the caller); a partial last block would be left as it is.
    pub(crate) fn encrypt(&self, iv: &[u8; BLOCK_LEN], data: &mut [u8]) {
        let (blocks, _) = Array::slice_as_chunks_mut(data);
        let iv = Array::from(*iv);
        match self {
            AesCbcKey::Aes128(k) => cbc::Encryptor::inner_iv_init(k, &iv).encrypt_blocks(blocks),
            AesCbcKey::Aes192(k) => cbc::Encryptor::inner_iv_init(k, &iv).encrypt_blocks(blocks),
            AesCbcKey::Aes256(k) => cbc::Encryptor::inner_iv_init(k, &iv).encrypt_blocks(blocks),
        }
    }

    /// CBC-decrypts `data` in place (the blocks are independent, so the backend pipelines
    /// them). Same length rule as [`AesCbcKey::encrypt`].
    pub(crate) fn decrypt(&self, iv: &[u8; BLOCK_LEN], data: &mut [u8]) {
        let (blocks, _) = Array::slice_as_chunks_mut(data);
        let iv = Array::from(*iv);
        match self {
            AesCbcKey::Aes128(k) => cbc::Decryptor::inner_iv_init(k, &iv).decrypt_blocks(blocks),
            AesCbcKey::Aes192(k) => cbc::Decryptor::inner_iv_init(k, &iv).decrypt_blocks(blocks),
            AesCbcKey::Aes256(k) => cbc::Decryptor::inner_iv_init(k, &iv).decrypt_blocks(blocks),
        }
    }
}

/// Derives the unique, unpredictable CBC IV of each sequence number of one SA.
pub(crate) struct CbcIvGenerator {
    key: aes::Aes128Enc,
}

impl CbcIvGenerator {
    /// Draws a fresh random key from the operating system.
    pub(crate) fn new() -> Result<CbcIvGenerator, getrandom::Error> {
        let mut key = Zeroizing::new([0u8; 16]);
        getrandom::fill(key.as_mut_slice())?;
        Ok(CbcIvGenerator { key: aes::Aes128Enc::new((&*key).into()) })
    }

    /// The IV of the packet with sequence number `seq`.
    //= https://www.rfc-editor.org/rfc/rfc3602#section-2.4
    //# The IV MUST be chosen at random, and MUST be unpredictable.
    pub(crate) fn iv(&self, seq: u64) -> [u8; BLOCK_LEN] {
        let mut block = Array::from([0u8; BLOCK_LEN]);
        block[8..].copy_from_slice(&seq.to_be_bytes());
        self.key.encrypt_block(&mut block);
        block.into()
    }
}
