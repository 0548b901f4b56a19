//! Digital signatures of AUTH payloads: private keys (PKCS#8, SEC1 and PKCS#1 DER or PEM),
//! the schemes of RFC 7427 (AUTH method 14 with its AlgorithmIdentifier: ECDSA with SHA-2,
//! RSASSA-PSS and PKCS#1 v1.5 with SHA-2, Ed25519 per RFC 8420) and the classic methods (RSA
//! PKCS#1 v1.5 method 1, ECDSA methods 9 and 10 of RFC 4754), signing with our key and
//! verifying with a certificate's.
//!
//! The signature mathematics are `ring`'s; the ASN.1 of keys and AlgorithmIdentifiers is the
//! RustCrypto `der`/`sec1`/`spki` crates'. Private key bytes read here are held in zeroizing
//! buffers and never printed (`ring` keeps its own copy of the key, which it does not zeroize).

use core::fmt;

use der::{Decode, Encode};
use ring::signature::{self as sig, KeyPair};
use zeroize::Zeroizing;

use crate::cert::{Certificate, KeyKind, oid, pem_blocks};

/// AUTH method numbers of signatures (RFC 7296 section 3.8, RFC 4754, RFC 7427).
pub mod method {
    /// RSA Digital Signature (PKCS#1 v1.5 with SHA-1).
    pub const RSA: u8 = 1;
    /// ECDSA with SHA-256 on the P-256 curve.
    pub const ECDSA_256: u8 = 9;
    /// ECDSA with SHA-384 on the P-384 curve.
    pub const ECDSA_384: u8 = 10;
    /// ECDSA with SHA-512 on the P-521 curve.
    pub const ECDSA_521: u8 = 11;
    /// Digital Signature (RFC 7427).
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// Hash algorithm numbers of SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4, RFC 8420).
pub mod hash {
    /// SHA1 (never used by Rampart to sign).
    pub const SHA1: u16 = 1;
    /// SHA2-256.
    pub const SHA2_256: u16 = 2;
    /// SHA2-384.
    pub const SHA2_384: u16 = 3;
    /// SHA2-512.
    pub const SHA2_512: u16 = 4;
    /// Identity (the message itself: Ed25519, RFC 8420).
    pub const IDENTITY: u16 = 5;
}

/// The hash algorithms Rampart announces: it verifies signatures with each of them.
pub const SUPPORTED_HASHES: [u16; 4] = [hash::SHA2_256, hash::SHA2_384, hash::SHA2_512, hash::IDENTITY];

/// The SIGNATURE_HASH_ALGORITHMS notification data for [`SUPPORTED_HASHES`].
pub fn hash_notify_data() -> Vec<u8> {
    SUPPORTED_HASHES.iter().flat_map(|h| h.to_be_bytes()).collect()
}

/// The hash algorithms a SIGNATURE_HASH_ALGORITHMS notification lists (odd bytes ignored).
pub fn parse_hash_notify(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect()
}

/// A signature scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// ECDSA (DER signature inside method 14, r||s in methods 9/10) with the hash named.
    Ecdsa(u16),
    /// RSASSA-PSS with the hash, MGF1 with the same hash, salt as long as the hash.
    RsaPss(u16),
    /// RSASSA-PKCS1-v1_5 with the hash (SHA-1 only for verifying method 1).
    RsaPkcs1(u16),
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = |h: &u16| match *h {
            hash::SHA1 => "sha1",
            hash::SHA2_256 => "sha256",
            hash::SHA2_384 => "sha384",
            hash::SHA2_512 => "sha512",
            _ => "?",
        };
        match self {
            Scheme::Ecdsa(x) => write!(f, "ecdsa-with-{}", h(x)),
            Scheme::RsaPss(x) => write!(f, "rsassa-pss-{}", h(x)),
            Scheme::RsaPkcs1(x) => write!(f, "{}WithRSAEncryption", h(x)),
            Scheme::Ed25519 => f.write_str("ed25519"),
        }
    }
}

/// Why a signature was not made or did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// Nothing in common between our key and what the peer accepts.
    NoCommonScheme(String),
    /// The AUTH data or its AlgorithmIdentifier does not parse, or names a scheme Rampart does
    /// not verify.
    Unsupported(String),
    /// The scheme does not fit the certificate's key.
    KeyMismatch(String),
    /// The signature is wrong.
    Invalid,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::NoCommonScheme(s) => write!(f, "no signature scheme in common: {s}"),
            SignatureError::Unsupported(s) => write!(f, "signature not supported: {s}"),
            SignatureError::KeyMismatch(s) => write!(f, "signature scheme does not fit the key: {s}"),
            SignatureError::Invalid => f.write_str("signature does not verify"),
        }
    }
}

enum KeyPairs {
    /// The ASN.1 (method 14) and fixed r||s (methods 9/10) signers of one key.
    Ecdsa {
        asn1: Box<sig::EcdsaKeyPair>,
        fixed: Box<sig::EcdsaKeyPair>,
        kind: KeyKind,
    },
    Rsa(sig::RsaKeyPair),
    Ed25519(sig::Ed25519KeyPair),
}

/// A private key for AUTH signatures. `Debug` shows its kind only.
pub struct PrivateKey {
    pairs: KeyPairs,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.kind())
    }
}

fn rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}

impl PrivateKey {
    /// Reads a key from PEM (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`) or PKCS#8 DER.
    /// Encrypted keys are refused (their passphrase would have to live in a file too).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<PrivateKey, String> {
        let blocks = pem_blocks(bytes)?;
        let Some((label, der)) = blocks.into_iter().find(|(l, _)| l.ends_with("PRIVATE KEY")) else {
            return PrivateKey::from_pkcs8(bytes);
        };
        match label.as_str() {
            "PRIVATE KEY" => PrivateKey::from_pkcs8(&der),
            "EC PRIVATE KEY" => PrivateKey::from_sec1(&der),
            "RSA PRIVATE KEY" => sig::RsaKeyPair::from_der(&der)
                .map(|k| PrivateKey { pairs: KeyPairs::Rsa(k) })
                .map_err(|e| format!("RSA key refused: {e}")),
            "ENCRYPTED PRIVATE KEY" => {
                Err("encrypted private keys are not supported: store it unencrypted with mode 0600".into())
            }
            other => Err(format!("{other} is not a key type Rampart reads")),
        }
    }

    /// Reads a PKCS#8 key (RSA 2048-4096 bits, ECDSA P-256 or P-384, Ed25519).
    pub fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, String> {
        if let Ok(k) = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(PrivateKey { pairs: KeyPairs::Ed25519(k) });
        }
        for (asn1, fixed, kind) in [
            (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &sig::ECDSA_P256_SHA256_FIXED_SIGNING, KeyKind::P256),
            (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &sig::ECDSA_P384_SHA384_FIXED_SIGNING, KeyKind::P384),
        ] {
            if let (Ok(a), Ok(f)) =
                (sig::EcdsaKeyPair::from_pkcs8(asn1, der, &rng()), sig::EcdsaKeyPair::from_pkcs8(fixed, der, &rng()))
            {
                return Ok(PrivateKey { pairs: KeyPairs::Ecdsa { asn1: Box::new(a), fixed: Box::new(f), kind } });
            }
        }
        sig::RsaKeyPair::from_pkcs8(der)
            .map(|k| PrivateKey { pairs: KeyPairs::Rsa(k) })
            .map_err(|e| format!("not an RSA (2048-4096 bit), ECDSA P-256/P-384 or Ed25519 key: {e}"))
    }

    /// Reads a SEC1 `ECPrivateKey` (what `pki --gen --type ecdsa` and OpenSSL write).
    pub fn from_sec1(der: &[u8]) -> Result<PrivateKey, String> {
        let k = sec1::EcPrivateKey::from_der(der).map_err(|e| format!("not an EC private key: {e}"))?;
        let curve = k.parameters.and_then(|p| p.named_curve());
        let (asn1, fixed, kind) = match curve {
            Some(c) if c == oid::P256 => {
                (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &sig::ECDSA_P256_SHA256_FIXED_SIGNING, KeyKind::P256)
            }
            Some(c) if c == oid::P384 => {
                (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &sig::ECDSA_P384_SHA384_FIXED_SIGNING, KeyKind::P384)
            }
            _ => return Err("EC key on a curve other than P-256 or P-384".into()),
        };
        let Some(public) = k.public_key else {
            return Err(
                "EC private key without its public key: convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)".into()
            );
        };
        let secret = Zeroizing::new(k.private_key.to_vec());
        let make = |alg| {
            sig::EcdsaKeyPair::from_private_key_and_public_key(alg, &secret, public, &rng())
                .map_err(|e| format!("EC key refused: {e}"))
        };
        Ok(PrivateKey { pairs: KeyPairs::Ecdsa { asn1: Box::new(make(asn1)?), fixed: Box::new(make(fixed)?), kind } })
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        match &self.pairs {
            KeyPairs::Ecdsa { kind, .. } => *kind,
            KeyPairs::Rsa(k) => KeyKind::Rsa(k.public().modulus_len() * 8),
            KeyPairs::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// Whether `cert` holds this key's public half.
    pub fn matches(&self, cert: &Certificate) -> bool {
        let public: &[u8] = match &self.pairs {
            KeyPairs::Ecdsa { asn1, .. } => asn1.public_key().as_ref(),
            KeyPairs::Rsa(k) => k.public_key().as_ref(),
            KeyPairs::Ed25519(k) => k.public_key().as_ref(),
        };
        public == cert.public_key.as_slice()
    }

    /// Our AUTH payload over `octets`: (method, data). With the peer's SIGNATURE_HASH_ALGORITHMS
    /// (`peer_hashes`, empty when it sent none) method 14 with the strongest fitting scheme
    /// (ECDSA with the curve's hash, RSASSA-PSS with SHA-256 or the next the peer lists,
    /// Ed25519 with Identity); without them the classic method of the key (ECDSA 9 or 10).
    pub fn sign(&self, octets: &[u8], peer_hashes: &[u16]) -> Result<(u8, Vec<u8>), SignatureError> {
        let has = |h: u16| peer_hashes.contains(&h);
        let rfc7427 = |scheme: Scheme, signature: Vec<u8>| {
            let alg = algorithm_identifier(scheme);
            let mut data = Vec::with_capacity(1 + alg.len() + signature.len());
            data.push(alg.len() as u8);
            data.extend_from_slice(&alg);
            data.extend_from_slice(&signature);
            (method::DIGITAL_SIGNATURE, data)
        };
        let failed = |_| SignatureError::Invalid;
        match &self.pairs {
            KeyPairs::Ecdsa { asn1, fixed, kind } => {
                let (h, classic) = if *kind == KeyKind::P256 {
                    (hash::SHA2_256, method::ECDSA_256)
                } else {
                    (hash::SHA2_384, method::ECDSA_384)
                };
                if has(h) {
                    let s = asn1.sign(&rng(), octets).map_err(failed)?;
                    Ok(rfc7427(Scheme::Ecdsa(h), s.as_ref().to_vec()))
                } else {
                    //= https://www.rfc-editor.org/rfc/rfc4754#section-7
                    //# The signature payload shall contain an encoding of the computed
                    //# signature consisting of the concatenation of a pair of integers r and s.
                    let s = fixed.sign(&rng(), octets).map_err(failed)?;
                    Ok((classic, s.as_ref().to_vec()))
                }
            }
            KeyPairs::Rsa(k) => {
                let (h, enc): (u16, &'static dyn sig::RsaEncoding) = if has(hash::SHA2_256) {
                    (hash::SHA2_256, &sig::RSA_PSS_SHA256)
                } else if has(hash::SHA2_384) {
                    (hash::SHA2_384, &sig::RSA_PSS_SHA384)
                } else if has(hash::SHA2_512) {
                    (hash::SHA2_512, &sig::RSA_PSS_SHA512)
                } else {
                    return Err(SignatureError::NoCommonScheme(
                        "the peer lists no SHA-2 hash (RFC 7427) and Rampart does not sign RSA with SHA-1 (method 1)"
                            .into(),
                    ));
                };
                let mut out = vec![0u8; k.public().modulus_len()];
                k.sign(enc, &rng(), octets, &mut out).map_err(failed)?;
                Ok(rfc7427(Scheme::RsaPss(h), out))
            }
            KeyPairs::Ed25519(k) => {
                if !has(hash::IDENTITY) {
                    return Err(SignatureError::NoCommonScheme(
                        "Ed25519 needs RFC 8420 (the peer's SIGNATURE_HASH_ALGORITHMS lacks Identity)".into(),
                    ));
                }
                Ok(rfc7427(Scheme::Ed25519, k.sign(octets).as_ref().to_vec()))
            }
        }
    }
}

//= https://www.rfc-editor.org/rfc/rfc7427#appendix-A
//# ecdsa-with-SHA256 ... 300a06082a8648ce3d040302
fn algorithm_identifier(s: Scheme) -> Vec<u8> {
    const ECDSA: [u8; 11] = [0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const RSA: [u8; 13] = [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x00];
    let hash_oid_last = |h: u16| match h {
        hash::SHA2_384 => 2u8,
        hash::SHA2_512 => 3,
        _ => 1,
    };
    match s {
        Scheme::Ecdsa(h) => {
            let mut v = ECDSA.to_vec();
            v.push(1 + hash_oid_last(h));
            v
        }
        Scheme::RsaPkcs1(h) => {
            let mut v = RSA.to_vec();
            v[12] = 0x0a + hash_oid_last(h);
            v.extend_from_slice(&[0x05, 0x00]);
            v
        }
        Scheme::RsaPss(h) => {
            let n = hash_oid_last(h);
            let hash_alg = [0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, n, 0x05, 0x00];
            let salt = [32u8, 48, 64][n as usize - 1];
            let mut v = vec![0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, 0x34];
            v.extend_from_slice(&[0xa0, 0x0f]);
            v.extend_from_slice(&hash_alg);
            v.extend_from_slice(&[
                0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
            ]);
            v.extend_from_slice(&hash_alg);
            v.extend_from_slice(&[0xa2, 0x03, 0x02, 0x01, salt]);
            v
        }
        Scheme::Ed25519 => vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
    }
}

/// RSASSA-PSS-params (RFC 4055 section 3.1).
#[derive(der::Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<spki::AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mgf: Option<spki::AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer: Option<u32>,
}

const SHA256: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const MGF1: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const RSASSA_PSS: der::asn1::ObjectIdentifier = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

fn hash_of(o: &der::asn1::ObjectIdentifier) -> Option<u16> {
    match *o {
        x if x == SHA256 => Some(hash::SHA2_256),
        x if x == SHA384 => Some(hash::SHA2_384),
        x if x == SHA512 => Some(hash::SHA2_512),
        _ => None,
    }
}

/// The scheme an RFC 7427 AlgorithmIdentifier names.
fn scheme_of(alg: &spki::AlgorithmIdentifierOwned) -> Result<Scheme, SignatureError> {
    let unsupported = || SignatureError::Unsupported(format!("AlgorithmIdentifier {}", alg.oid));
    let o = alg.oid.to_string();
    Ok(match o.as_str() {
        "1.2.840.10045.4.3.2" => Scheme::Ecdsa(hash::SHA2_256),
        "1.2.840.10045.4.3.3" => Scheme::Ecdsa(hash::SHA2_384),
        "1.2.840.10045.4.3.4" => Scheme::Ecdsa(hash::SHA2_512),
        "1.2.840.113549.1.1.11" => Scheme::RsaPkcs1(hash::SHA2_256),
        "1.2.840.113549.1.1.12" => Scheme::RsaPkcs1(hash::SHA2_384),
        "1.2.840.113549.1.1.13" => Scheme::RsaPkcs1(hash::SHA2_512),
        "1.3.101.112" => Scheme::Ed25519,
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" => {
            return Err(SignatureError::Unsupported("SHA-1 signatures are refused (RFC 8247)".into()));
        }
        _ if alg.oid == RSASSA_PSS => {
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| SignatureError::Unsupported("RSASSA-PSS without parameters (SHA-1)".into()))?;
            let p: PssParams =
                params.decode_as().map_err(|e| SignatureError::Unsupported(format!("RSASSA-PSS parameters: {e}")))?;
            let h = p.hash.as_ref().and_then(|a| hash_of(&a.oid)).ok_or_else(|| {
                SignatureError::Unsupported("RSASSA-PSS with a hash other than SHA-256/384/512".into())
            })?;
            let mgf_hash = p
                .mgf
                .as_ref()
                .filter(|m| m.oid == MGF1)
                .and_then(|m| m.parameters.as_ref())
                .and_then(|a| a.decode_as::<spki::AlgorithmIdentifierOwned>().ok())
                .and_then(|a| hash_of(&a.oid));
            let want_salt = match h {
                hash::SHA2_256 => 32,
                hash::SHA2_384 => 48,
                _ => 64,
            };
            if mgf_hash != Some(h) || p.salt != Some(want_salt) || p.trailer.unwrap_or(1) != 1 {
                return Err(SignatureError::Unsupported(
                    "RSASSA-PSS parameters other than MGF1 with the same hash and a salt of the hash's length".into(),
                ));
            }
            Scheme::RsaPss(h)
        }
        _ => return Err(unsupported()),
    })
}

/// Verifies an AUTH payload's signature (`method`, `data`) over `octets` with `cert`'s public
/// key; returns the scheme that verified.
pub fn verify(cert: &Certificate, method: u8, data: &[u8], octets: &[u8]) -> Result<Scheme, SignatureError> {
    let (scheme, signature, fixed) = match method {
        method::DIGITAL_SIGNATURE => {
            //= https://www.rfc-editor.org/rfc/rfc7427#section-3
            //# | ASN.1 Length | AlgorithmIdentifier ASN.1 object | Signature Value |
            let len = *data.first().ok_or(SignatureError::Unsupported("empty AUTH data".into()))? as usize;
            let alg = data
                .get(1..1 + len)
                .ok_or(SignatureError::Unsupported("AUTH data shorter than its ASN.1 length".into()))?;
            let alg = spki::AlgorithmIdentifierOwned::from_der(alg)
                .map_err(|e| SignatureError::Unsupported(format!("AlgorithmIdentifier: {e}")))?;
            (scheme_of(&alg)?, &data[1 + len..], false)
        }
        method::RSA => (Scheme::RsaPkcs1(hash::SHA1), data, false),
        method::ECDSA_256 => (Scheme::Ecdsa(hash::SHA2_256), data, true),
        method::ECDSA_384 => (Scheme::Ecdsa(hash::SHA2_384), data, true),
        method::ECDSA_521 => return Err(SignatureError::Unsupported("ECDSA P-521 (method 11)".into())),
        m => return Err(SignatureError::Unsupported(format!("AUTH method {m}"))),
    };
    let mismatch = || SignatureError::KeyMismatch(format!("{scheme} with a {} key", cert.key));
    let alg: &dyn sig::VerificationAlgorithm = match (scheme, cert.key, fixed) {
        (Scheme::Ecdsa(hash::SHA2_256), KeyKind::P256, false) => &sig::ECDSA_P256_SHA256_ASN1,
        (Scheme::Ecdsa(hash::SHA2_384), KeyKind::P256, false) => &sig::ECDSA_P256_SHA384_ASN1,
        (Scheme::Ecdsa(hash::SHA2_256), KeyKind::P384, false) => &sig::ECDSA_P384_SHA256_ASN1,
        (Scheme::Ecdsa(hash::SHA2_384), KeyKind::P384, false) => &sig::ECDSA_P384_SHA384_ASN1,
        (Scheme::Ecdsa(hash::SHA2_256), KeyKind::P256, true) => &sig::ECDSA_P256_SHA256_FIXED,
        (Scheme::Ecdsa(hash::SHA2_384), KeyKind::P384, true) => &sig::ECDSA_P384_SHA384_FIXED,
        (Scheme::Ed25519, KeyKind::Ed25519, _) => &sig::ED25519,
        (Scheme::RsaPss(h) | Scheme::RsaPkcs1(h), KeyKind::Rsa(bits), _) => {
            if bits < 2048 {
                return Err(SignatureError::KeyMismatch(format!("RSA key of {bits} bits (at least 2048)")));
            }
            match (scheme, h) {
                (Scheme::RsaPss(_), hash::SHA2_256) => &sig::RSA_PSS_2048_8192_SHA256,
                (Scheme::RsaPss(_), hash::SHA2_384) => &sig::RSA_PSS_2048_8192_SHA384,
                (Scheme::RsaPss(_), _) => &sig::RSA_PSS_2048_8192_SHA512,
                (_, hash::SHA1) => &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                (_, hash::SHA2_256) => &sig::RSA_PKCS1_2048_8192_SHA256,
                (_, hash::SHA2_384) => &sig::RSA_PKCS1_2048_8192_SHA384,
                _ => &sig::RSA_PKCS1_2048_8192_SHA512,
            }
        }
        (Scheme::Ecdsa(_), KeyKind::P256 | KeyKind::P384, _) => {
            return Err(SignatureError::Unsupported(format!("{scheme} on {}", cert.key)));
        }
        _ => return Err(mismatch()),
    };
    sig::UnparsedPublicKey::new(alg, &cert.public_key)
        .verify(octets, signature)
        .map_err(|_| SignatureError::Invalid)?;
    Ok(scheme)
}

/// Checks an encoding round trip of our AlgorithmIdentifiers (used by tests).
#[doc(hidden)]
pub fn scheme_round_trip(s: Scheme) -> Option<Scheme> {
    let alg = spki::AlgorithmIdentifierOwned::from_der(&algorithm_identifier(s)).ok()?;
    let _ = alg.to_der().ok()?;
    scheme_of(&alg).ok()
}
