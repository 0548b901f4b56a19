//! Cipher suites and the RFC 8221 algorithm policy.
//!
//! A [`Suite`] can only be built through [`Suite::new`] (or the parsers that call it), so a
//! suite that exists is one the policy allows. This module never touches key material.

use core::fmt;

/// ESP encryption transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// AES-GCM with a 16-byte ICV (RFC 4106); `key_bits` is 128 or 256.
    AesGcm16 {
        /// AES key size in bits, without the 32-bit salt.
        key_bits: u16,
    },
    /// ChaCha20-Poly1305 (RFC 7634), 256-bit key.
    ChaCha20Poly1305,
    /// AES-CBC (RFC 3602); `key_bits` is 128, 192 or 256.
    AesCbc {
        /// AES key size in bits.
        key_bits: u16,
    },
    /// No encryption (RFC 2410): integrity only.
    Null,
}

/// ESP integrity transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// No separate integrity transform: only valid with an AEAD.
    None,
    /// HMAC-SHA-256 truncated to 128 bits (RFC 4868).
    HmacSha256_128,
    /// HMAC-SHA-384 truncated to 192 bits (RFC 4868).
    HmacSha384_192,
    /// HMAC-SHA-512 truncated to 256 bits (RFC 4868).
    HmacSha512_256,
    /// AES-GMAC with a 128-bit ICV (RFC 4543), for AH only; `key_bits` is 128 or 256 (the key
    /// material carries a 4-byte salt besides).
    AesGmac {
        /// AES key size in bits, without the 32-bit salt.
        key_bits: u16,
    },
}

/// Why a suite was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// The algorithm is forbidden by RFC 8221 / RFC 8247 (DES, 3DES, Blowfish, MD5, ...).
    Forbidden {
        /// The algorithm as the user named it.
        algorithm: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A non-AEAD cipher without an integrity transform (RFC 8221 section 5: MUST NOT).
    EncryptionWithoutIntegrity,
    /// An AEAD combined with a separate integrity transform (RFC 8221 section 5).
    AeadWithIntegrity,
    /// A key size the algorithm does not have.
    UnsupportedKeySize {
        /// The algorithm.
        algorithm: &'static str,
        /// The key size asked for, in bits.
        bits: u16,
    },
    /// A name or transform number Rampart does not know.
    Unknown {
        /// The name or number as given.
        algorithm: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::Forbidden { algorithm, reason } => {
                write!(f, "algorithm '{algorithm}' is refused: {reason}")
            }
            PolicyError::EncryptionWithoutIntegrity => f.write_str(
                "encryption without integrity is refused (RFC 8221 section 5): add an integrity algorithm or use an AEAD",
            ),
            PolicyError::AeadWithIntegrity => f.write_str(
                "an AEAD cipher carries its own integrity: a separate integrity algorithm is not allowed with it",
            ),
            PolicyError::UnsupportedKeySize { algorithm, bits } => {
                write!(f, "{algorithm} has no {bits}-bit key size")
            }
            PolicyError::Unknown { algorithm } => write!(f, "unknown algorithm '{algorithm}'"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// A policy-checked pair of encryption and integrity transforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Suite {
    encryption: Encryption,
    integrity: Integrity,
}

/// IKEv2 transform type 1 (encryption) numbers, IANA "IKEv2 Parameters".
pub mod encr_id {
    /// ENCR_DES (forbidden).
    pub const DES: u16 = 2;
    /// ENCR_3DES (forbidden).
    pub const TRIPLE_DES: u16 = 3;
    /// ENCR_BLOWFISH (forbidden).
    pub const BLOWFISH: u16 = 7;
    /// ENCR_NULL.
    pub const NULL: u16 = 11;
    /// ENCR_AES_CBC.
    pub const AES_CBC: u16 = 12;
    /// ENCR_AES_GCM_16.
    pub const AES_GCM_16: u16 = 20;
    /// ENCR_CHACHA20_POLY1305.
    pub const CHACHA20_POLY1305: u16 = 28;
}

/// IKEv2 transform type 3 (integrity) numbers, IANA "IKEv2 Parameters".
pub mod integ_id {
    /// NONE.
    pub const NONE: u16 = 0;
    /// AUTH_HMAC_MD5_96 (forbidden).
    pub const HMAC_MD5_96: u16 = 1;
    /// AUTH_HMAC_SHA1_96 (not offered by Rampart: RFC 8221 lets it go).
    pub const HMAC_SHA1_96: u16 = 2;
    /// AUTH_HMAC_SHA2_256_128.
    pub const HMAC_SHA2_256_128: u16 = 12;
    /// AUTH_HMAC_SHA2_384_192.
    pub const HMAC_SHA2_384_192: u16 = 13;
    /// AUTH_HMAC_SHA2_512_256.
    pub const HMAC_SHA2_512_256: u16 = 14;
    /// AUTH_AES_128_GMAC (RFC 4543).
    pub const AES_128_GMAC: u16 = 9;
    /// AUTH_AES_192_GMAC (RFC 4543; not offered by Rampart).
    pub const AES_192_GMAC: u16 = 10;
    /// AUTH_AES_256_GMAC (RFC 4543).
    pub const AES_256_GMAC: u16 = 11;
}

impl Suite {
    /// Checks a combination against the policy.
    //= https://www.rfc-editor.org/rfc/rfc8221#section-5
    //# ENCR_NULL ... MUST be combined with an integrity algorithm; encryption without
    //# authentication MUST NOT be used.
    pub fn new(encryption: Encryption, integrity: Integrity) -> Result<Suite, PolicyError> {
        match encryption {
            Encryption::AesGcm16 { key_bits } if key_bits != 128 && key_bits != 256 => {
                return Err(PolicyError::UnsupportedKeySize { algorithm: "AES-GCM-16", bits: key_bits });
            }
            Encryption::AesCbc { key_bits } if ![128, 192, 256].contains(&key_bits) => {
                return Err(PolicyError::UnsupportedKeySize { algorithm: "AES-CBC", bits: key_bits });
            }
            _ => {}
        }
        if let Integrity::AesGmac { key_bits } = integrity {
            if key_bits != 128 && key_bits != 256 {
                return Err(PolicyError::UnsupportedKeySize { algorithm: "AES-GMAC", bits: key_bits });
            }
            //= https://www.rfc-editor.org/rfc/rfc4543#section-3
            //# AES-GMAC ... in AH; in ESP it is ENCR_NULL_AUTH_AES_GMAC, an encryption transform
            if encryption != Encryption::Null {
                return Err(PolicyError::Unknown {
                    algorithm: "AES-GMAC as the integrity of an encrypting suite (AES-GMAC integrity is for AH)"
                        .to_string(),
                });
            }
        }
        let aead = matches!(encryption, Encryption::AesGcm16 { .. } | Encryption::ChaCha20Poly1305);
        match (aead, integrity) {
            (true, Integrity::None) => {}
            (true, _) => return Err(PolicyError::AeadWithIntegrity),
            (false, Integrity::None) => return Err(PolicyError::EncryptionWithoutIntegrity),
            (false, _) => {}
        }
        Ok(Suite { encryption, integrity })
    }

    /// Builds a suite from IKEv2 transform numbers (transform type 1 and 3) and the key length
    /// attribute (in bits, when present), refusing forbidden algorithms by name.
    pub fn from_ikev2(encr: u16, key_bits: Option<u16>, integ: u16) -> Result<Suite, PolicyError> {
        let encryption = match encr {
            encr_id::DES => return Err(forbidden("ENCR_DES", "DES is broken (RFC 8221 section 5)")),
            encr_id::TRIPLE_DES => {
                return Err(forbidden(
                    "ENCR_3DES",
                    "3DES has a 64-bit block (RFC 8221 section 5: SHOULD NOT, refused here)",
                ));
            }
            encr_id::BLOWFISH => {
                return Err(forbidden("ENCR_BLOWFISH", "Blowfish has a 64-bit block (RFC 8221 section 5)"));
            }
            encr_id::NULL => Encryption::Null,
            encr_id::AES_CBC => Encryption::AesCbc { key_bits: key_bits.unwrap_or(0) },
            encr_id::AES_GCM_16 => Encryption::AesGcm16 { key_bits: key_bits.unwrap_or(0) },
            encr_id::CHACHA20_POLY1305 => Encryption::ChaCha20Poly1305,
            other => return Err(PolicyError::Unknown { algorithm: format!("encryption transform {other}") }),
        };
        let integrity = match integ {
            integ_id::NONE => Integrity::None,
            integ_id::HMAC_MD5_96 => return Err(forbidden("AUTH_HMAC_MD5_96", "MD5 is broken (RFC 8221 section 6)")),
            integ_id::HMAC_SHA1_96 => {
                return Err(forbidden("AUTH_HMAC_SHA1_96", "Rampart offers only SHA-2 integrity (RFC 8221 section 6)"));
            }
            integ_id::HMAC_SHA2_256_128 => Integrity::HmacSha256_128,
            integ_id::HMAC_SHA2_384_192 => Integrity::HmacSha384_192,
            integ_id::HMAC_SHA2_512_256 => Integrity::HmacSha512_256,
            integ_id::AES_128_GMAC => Integrity::AesGmac { key_bits: 128 },
            integ_id::AES_256_GMAC => Integrity::AesGmac { key_bits: 256 },
            other => return Err(PolicyError::Unknown { algorithm: format!("integrity transform {other}") }),
        };
        Suite::new(encryption, integrity)
    }

    /// The suite of an AH SA (integrity only), refusing what RFC 8221 refuses for AH.
    //= https://www.rfc-editor.org/rfc/rfc8221#section-6
    //# AUTH_HMAC_MD5_96 ... MUST NOT; AUTH_HMAC_SHA1_96 ... (Rampart offers SHA-2 only)
    pub fn ah(integrity: Integrity) -> Result<Suite, PolicyError> {
        if integrity == Integrity::None {
            return Err(PolicyError::Unknown { algorithm: "AH without an integrity algorithm".to_string() });
        }
        Suite::new(Encryption::Null, integrity)
    }

    /// Parses an AH proposal in swanctl.conf spelling: `sha256`, `sha384`, `sha512`,
    /// `aes128gmac`, `aes256gmac` (MD5 and SHA-1 refused with the policy's reason).
    pub fn ah_from_swanctl(name: &str) -> Result<Suite, PolicyError> {
        let lower = name.to_ascii_lowercase();
        for (bad, reason) in FORBIDDEN_NAMES {
            if lower == *bad {
                return Err(forbidden(bad, reason));
            }
        }
        let integrity = match lower.as_str() {
            "sha256" | "sha2_256" => Integrity::HmacSha256_128,
            "sha384" | "sha2_384" => Integrity::HmacSha384_192,
            "sha512" | "sha2_512" => Integrity::HmacSha512_256,
            "aes128gmac" => Integrity::AesGmac { key_bits: 128 },
            "aes256gmac" => Integrity::AesGmac { key_bits: 256 },
            "aes192gmac" => return Err(PolicyError::UnsupportedKeySize { algorithm: "AES-GMAC", bits: 192 }),
            _ => return Err(PolicyError::Unknown { algorithm: name.to_string() }),
        };
        Suite::ah(integrity)
    }

    /// The AH suites (integrity only) that tests and benchmarks cover: each HMAC-SHA-2 and
    /// AES-GMAC with both key sizes.
    pub fn ah_all() -> [Suite; 5] {
        use Encryption as E;
        use Integrity as I;
        [
            Suite { encryption: E::Null, integrity: I::HmacSha256_128 },
            Suite { encryption: E::Null, integrity: I::HmacSha384_192 },
            Suite { encryption: E::Null, integrity: I::HmacSha512_256 },
            Suite { encryption: E::Null, integrity: I::AesGmac { key_bits: 128 } },
            Suite { encryption: E::Null, integrity: I::AesGmac { key_bits: 256 } },
        ]
    }

    /// Whether the integrity transform is AES-GMAC (an AH-only suite).
    pub fn is_gmac(&self) -> bool {
        matches!(self.integrity, Integrity::AesGmac { .. })
    }

    /// Parses an ESP proposal in swanctl.conf spelling, e.g. `aes256gcm16`, `aes128gcm128`,
    /// `chacha20poly1305`, `aes256-sha256`, `aes128-sha512`, `null-sha256`. A trailing
    /// `-esn` / `-noesn` or a DH group is not part of the suite and is refused here: the caller
    /// splits those off.
    pub fn from_swanctl(name: &str) -> Result<Suite, PolicyError> {
        let lower = name.to_ascii_lowercase();
        let mut parts = lower.split('-');
        let enc = parts.next().unwrap_or("");
        let integ = parts.next();
        if let Some(extra) = parts.next() {
            return Err(PolicyError::Unknown { algorithm: format!("{name} (unexpected '{extra}')") });
        }
        for (bad, reason) in FORBIDDEN_NAMES {
            if enc == *bad || integ == Some(*bad) {
                return Err(forbidden(bad, reason));
            }
        }
        let encryption = match enc {
            "aes128gcm16" | "aes128gcm128" | "aes128gcm" => Encryption::AesGcm16 { key_bits: 128 },
            "aes256gcm16" | "aes256gcm128" | "aes256gcm" => Encryption::AesGcm16 { key_bits: 256 },
            "chacha20poly1305" => Encryption::ChaCha20Poly1305,
            "aes128" | "aes" => Encryption::AesCbc { key_bits: 128 },
            "aes192" => Encryption::AesCbc { key_bits: 192 },
            "aes256" => Encryption::AesCbc { key_bits: 256 },
            "null" => Encryption::Null,
            _ => return Err(PolicyError::Unknown { algorithm: enc.to_string() }),
        };
        let integrity = match integ {
            None => Integrity::None,
            Some("sha256") | Some("sha2_256") => Integrity::HmacSha256_128,
            Some("sha384") | Some("sha2_384") => Integrity::HmacSha384_192,
            Some("sha512") | Some("sha2_512") => Integrity::HmacSha512_256,
            Some(other) => return Err(PolicyError::Unknown { algorithm: other.to_string() }),
        };
        Suite::new(encryption, integrity)
    }

    /// The suites that tests and benchmarks cover by default: both AES-GCM-16 key sizes,
    /// ChaCha20-Poly1305, AES-CBC-128/256 with HMAC-SHA-256, AES-CBC-256 with each HMAC, and
    /// NULL with each HMAC. The other AES-CBC pairs (AES-192, AES-128 with SHA-384/512) are
    /// implemented as well and accepted by [`Suite::new`].
    pub fn all() -> [Suite; 10] {
        use Encryption as E;
        use Integrity as I;
        [
            Suite { encryption: E::AesGcm16 { key_bits: 128 }, integrity: I::None },
            Suite { encryption: E::AesGcm16 { key_bits: 256 }, integrity: I::None },
            Suite { encryption: E::ChaCha20Poly1305, integrity: I::None },
            Suite { encryption: E::AesCbc { key_bits: 128 }, integrity: I::HmacSha256_128 },
            Suite { encryption: E::AesCbc { key_bits: 256 }, integrity: I::HmacSha256_128 },
            Suite { encryption: E::AesCbc { key_bits: 256 }, integrity: I::HmacSha384_192 },
            Suite { encryption: E::AesCbc { key_bits: 256 }, integrity: I::HmacSha512_256 },
            Suite { encryption: E::Null, integrity: I::HmacSha256_128 },
            Suite { encryption: E::Null, integrity: I::HmacSha384_192 },
            Suite { encryption: E::Null, integrity: I::HmacSha512_256 },
        ]
    }

    /// The encryption transform.
    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    /// The integrity transform.
    pub fn integrity(&self) -> Integrity {
        self.integrity
    }

    /// Whether the suite is an AEAD (no separate integrity key).
    pub fn is_aead(&self) -> bool {
        matches!(self.encryption, Encryption::AesGcm16 { .. } | Encryption::ChaCha20Poly1305)
    }

    /// Bytes of explicit IV carried in each packet.
    pub fn iv_len(&self) -> usize {
        match self.encryption {
            Encryption::AesGcm16 { .. } | Encryption::ChaCha20Poly1305 => 8,
            Encryption::AesCbc { .. } => 16,
            Encryption::Null => 0,
        }
    }

    /// Bytes of integrity check value at the end of each packet.
    pub fn icv_len(&self) -> usize {
        match self.integrity {
            Integrity::None => 16,
            Integrity::HmacSha256_128 => 16,
            Integrity::HmacSha384_192 => 24,
            Integrity::HmacSha512_256 => 32,
            Integrity::AesGmac { .. } => 16,
        }
    }

    /// Alignment of the encrypted region (payload, padding, pad length, next header):
    /// the cipher block for CBC, 4 bytes otherwise (RFC 4303 section 2.4).
    pub fn block_len(&self) -> usize {
        match self.encryption {
            Encryption::AesCbc { .. } => 16,
            _ => 4,
        }
    }

    /// Bytes of encryption key material, including the 4-byte salt of the AEADs.
    pub fn encryption_key_len(&self) -> usize {
        match self.encryption {
            Encryption::AesGcm16 { key_bits } => key_bits as usize / 8 + 4,
            Encryption::ChaCha20Poly1305 => 36,
            Encryption::AesCbc { key_bits } => key_bits as usize / 8,
            Encryption::Null => 0,
        }
    }

    /// Bytes of integrity key material (RFC 4868: the HMAC output size; RFC 4543: the AES key
    /// and a 4-byte salt).
    pub fn integrity_key_len(&self) -> usize {
        match self.integrity {
            Integrity::None => 0,
            Integrity::HmacSha256_128 => 32,
            Integrity::HmacSha384_192 => 48,
            Integrity::HmacSha512_256 => 64,
            Integrity::AesGmac { key_bits } => key_bits as usize / 8 + 4,
        }
    }

    /// IKEv2 encryption transform number.
    pub fn encr_id(&self) -> u16 {
        match self.encryption {
            Encryption::AesGcm16 { .. } => encr_id::AES_GCM_16,
            Encryption::ChaCha20Poly1305 => encr_id::CHACHA20_POLY1305,
            Encryption::AesCbc { .. } => encr_id::AES_CBC,
            Encryption::Null => encr_id::NULL,
        }
    }

    /// IKEv2 key length attribute in bits, where the transform has one.
    pub fn key_bits(&self) -> Option<u16> {
        match self.encryption {
            Encryption::AesGcm16 { key_bits } | Encryption::AesCbc { key_bits } => Some(key_bits),
            _ => None,
        }
    }

    /// IKEv2 integrity transform number.
    pub fn integ_id(&self) -> u16 {
        match self.integrity {
            Integrity::None => integ_id::NONE,
            Integrity::HmacSha256_128 => integ_id::HMAC_SHA2_256_128,
            Integrity::HmacSha384_192 => integ_id::HMAC_SHA2_384_192,
            Integrity::HmacSha512_256 => integ_id::HMAC_SHA2_512_256,
            Integrity::AesGmac { key_bits: 128 } => integ_id::AES_128_GMAC,
            Integrity::AesGmac { .. } => integ_id::AES_256_GMAC,
        }
    }

    /// The integrity transform in swanctl.conf spelling (an AH proposal's name).
    pub fn integrity_name(&self) -> String {
        match self.integrity {
            Integrity::None => "none".to_string(),
            Integrity::HmacSha256_128 => "sha256".to_string(),
            Integrity::HmacSha384_192 => "sha384".to_string(),
            Integrity::HmacSha512_256 => "sha512".to_string(),
            Integrity::AesGmac { key_bits } => format!("aes{key_bits}gmac"),
        }
    }

    /// The suite in swanctl.conf spelling (what [`Suite::from_swanctl`] reads back).
    pub fn name(&self) -> String {
        let enc = match self.encryption {
            Encryption::AesGcm16 { key_bits } => format!("aes{key_bits}gcm16"),
            Encryption::ChaCha20Poly1305 => "chacha20poly1305".to_string(),
            Encryption::AesCbc { key_bits } => format!("aes{key_bits}"),
            Encryption::Null => "null".to_string(),
        };
        match self.integrity {
            Integrity::None => enc,
            _ => format!("{enc}-{}", self.integrity_name()),
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

const FORBIDDEN_NAMES: &[(&str, &str)] = &[
    ("des", "DES is broken (RFC 8221 section 5)"),
    ("3des", "3DES has a 64-bit block (RFC 8221 section 5)"),
    ("blowfish", "Blowfish has a 64-bit block (RFC 8221 section 5)"),
    ("blowfish128", "Blowfish has a 64-bit block (RFC 8221 section 5)"),
    ("blowfish256", "Blowfish has a 64-bit block (RFC 8221 section 5)"),
    ("md5", "MD5 is broken (RFC 8221 section 6)"),
    ("md5_128", "MD5 is broken (RFC 8221 section 6)"),
    ("sha1", "Rampart offers only SHA-2 integrity (RFC 8221 section 6)"),
    ("sha", "Rampart offers only SHA-2 integrity (RFC 8221 section 6)"),
    ("sha1_160", "Rampart offers only SHA-2 integrity (RFC 8221 section 6)"),
];

fn forbidden(algorithm: &str, reason: &'static str) -> PolicyError {
    PolicyError::Forbidden { algorithm: algorithm.to_string(), reason }
}
