//! Pseudorandom functions and integrity algorithms of the IKE SA (RFC 7296 section 2.13,
//! RFC 4868), on `ring`'s HMAC.
//!
//! Outputs holding key material are returned in `Zeroizing` buffers. Never logs anything.

use ring::hmac;
use zeroize::Zeroizing;

/// A PRF transform (IKEv2 transform type 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prf {
    /// PRF_HMAC_SHA2_256 (5).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (6).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (7).
    HmacSha512,
    /// PRF_HMAC_SHA1 (2). Only for known-answer tests of the key derivation (the NIST CAVP
    /// vector uses it); never offered nor accepted in a negotiation.
    HmacSha1ForTestsOnly,
}

impl Prf {
    /// IANA transform ID.
    pub fn id(self) -> u16 {
        match self {
            Prf::HmacSha256 => 5,
            Prf::HmacSha384 => 6,
            Prf::HmacSha512 => 7,
            Prf::HmacSha1ForTestsOnly => 2,
        }
    }

    /// The swanctl.conf keyword.
    pub fn name(self) -> &'static str {
        match self {
            Prf::HmacSha256 => "prfsha256",
            Prf::HmacSha384 => "prfsha384",
            Prf::HmacSha512 => "prfsha512",
            Prf::HmacSha1ForTestsOnly => "prfsha1",
        }
    }

    /// The negotiable PRF with this transform ID.
    pub fn from_id(id: u16) -> Option<Prf> {
        match id {
            5 => Some(Prf::HmacSha256),
            6 => Some(Prf::HmacSha384),
            7 => Some(Prf::HmacSha512),
            _ => None,
        }
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Prf::HmacSha256 => hmac::HMAC_SHA256,
            Prf::HmacSha384 => hmac::HMAC_SHA384,
            Prf::HmacSha512 => hmac::HMAC_SHA512,
            Prf::HmacSha1ForTestsOnly => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        }
    }

    /// Output length in bytes (also the preferred key length, RFC 7296 section 2.13).
    pub fn output_len(self) -> usize {
        match self {
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
            Prf::HmacSha1ForTestsOnly => 20,
        }
    }

    /// prf(key, data).
    pub fn compute(self, key: &[u8], data: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        let key = hmac::Key::new(self.algorithm(), key);
        let mut ctx = hmac::Context::with_key(&key);
        for d in data {
            ctx.update(d);
        }
        Zeroizing::new(ctx.sign().as_ref().to_vec())
    }

    /// prf+(key, seed) truncated to `len` bytes (RFC 7296 section 2.13).
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.13
    //# prf+ (K,S) = T1 | T2 | T3 | T4 | ...
    //# where:
    //# T1 = prf (K, S | 0x01)
    //# T2 = prf (K, T1 | S | 0x02)
    pub fn plus(self, key: &[u8], seed: &[&[u8]], len: usize) -> Zeroizing<Vec<u8>> {
        let hkey = hmac::Key::new(self.algorithm(), key);
        let mut out = Zeroizing::new(Vec::with_capacity(len + self.output_len()));
        let mut t = Zeroizing::new(Vec::new());
        let mut counter = 1u8;
        // The counter is one octet: prf+ is defined for at most 255 blocks.
        while out.len() < len && counter != 0 {
            let mut ctx = hmac::Context::with_key(&hkey);
            ctx.update(&t);
            for s in seed {
                ctx.update(s);
            }
            ctx.update(&[counter]);
            *t = ctx.sign().as_ref().to_vec();
            out.extend_from_slice(&t);
            counter = counter.wrapping_add(1);
        }
        out.truncate(len);
        out
    }
}

/// An integrity transform of the IKE SA (IKEv2 transform type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Integ {
    /// AUTH_HMAC_SHA2_256_128 (12).
    HmacSha256_128,
    /// AUTH_HMAC_SHA2_384_192 (13).
    HmacSha384_192,
    /// AUTH_HMAC_SHA2_512_256 (14).
    HmacSha512_256,
}

impl Integ {
    /// IANA transform ID.
    pub fn id(self) -> u16 {
        match self {
            Integ::HmacSha256_128 => 12,
            Integ::HmacSha384_192 => 13,
            Integ::HmacSha512_256 => 14,
        }
    }

    /// The swanctl.conf keyword.
    pub fn name(self) -> &'static str {
        match self {
            Integ::HmacSha256_128 => "sha256",
            Integ::HmacSha384_192 => "sha384",
            Integ::HmacSha512_256 => "sha512",
        }
    }

    /// The integrity algorithm with this transform ID.
    pub fn from_id(id: u16) -> Option<Integ> {
        match id {
            12 => Some(Integ::HmacSha256_128),
            13 => Some(Integ::HmacSha384_192),
            14 => Some(Integ::HmacSha512_256),
            _ => None,
        }
    }

    /// Key length in bytes (RFC 4868 section 2.1.1).
    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }

    /// ICV length in bytes.
    pub fn icv_len(self) -> usize {
        self.key_len() / 2
    }

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Integ::HmacSha256_128 => hmac::HMAC_SHA256,
            Integ::HmacSha384_192 => hmac::HMAC_SHA384,
            Integ::HmacSha512_256 => hmac::HMAC_SHA512,
        }
    }

    /// The truncated ICV over `data`.
    pub fn icv(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let tag = hmac::sign(&hmac::Key::new(self.algorithm(), key), data);
        tag.as_ref()[..self.icv_len()].to_vec()
    }

    /// Checks an ICV in constant time.
    pub fn verify(self, key: &[u8], data: &[u8], icv: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        icv.len() == self.icv_len() && bool::from(self.icv(key, data).ct_eq(icv))
    }
}
