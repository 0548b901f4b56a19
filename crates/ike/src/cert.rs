//! X.509 certificates as IKE uses them (RFC 7296 sections 3.6 and 3.7, RFC 4945 section 3):
//! what Rampart reads from one (subject, alternative names, validity, key, CA flags), the key
//! hash a CERTREQ names a CA by, and whether a certificate stands for an IKE identity.
//!
//! Certificates come in as DER or PEM bytes (the daemon reads the files); the ASN.1 is decoded
//! by the `x509-cert` crate. Nothing here validates a chain (that is [`crate::trust`]) or holds a
//! private key (that is [`crate::sign`]).

use core::fmt;
use std::net::IpAddr;

use der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectAltName, name::GeneralName};
use zeroize::Zeroizing;

/// ASN.1 object identifiers Rampart compares against.
pub(crate) mod oid {
    use der::asn1::ObjectIdentifier as Oid;
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const ED25519: Oid = Oid::new_unwrap("1.3.101.112");
    pub const P256: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const P384: Oid = Oid::new_unwrap("1.3.132.0.34");
    pub const P521: Oid = Oid::new_unwrap("1.3.132.0.35");
    pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
    pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
    pub const DSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10040.4.3");
    pub const MD5_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.4");
}

/// The kind and size of a certificate's public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this many modulus bits.
    Rsa(usize),
    /// ECDSA on NIST P-256.
    P256,
    /// ECDSA on NIST P-384.
    P384,
    /// ECDSA on NIST P-521 (read, not used: no signatures with it).
    P521,
    /// Ed25519 (RFC 8410).
    Ed25519,
    /// Anything else.
    Other,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
            KeyKind::P256 => f.write_str("ECDSA-P256"),
            KeyKind::P384 => f.write_str("ECDSA-P384"),
            KeyKind::P521 => f.write_str("ECDSA-P521"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Other => f.write_str("unknown key type"),
        }
    }
}

/// Why bytes are not a certificate Rampart can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertError(pub String);

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertError {}

/// One X.509 certificate: its DER and what IKE needs of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    /// The subject as DER (what ID_DER_ASN1_DN carries).
    pub subject: Vec<u8>,
    /// The subject as text (`C=DE, O=Example, CN=gw`).
    pub subject_text: String,
    /// The issuer as DER.
    pub issuer: Vec<u8>,
    /// The issuer as text.
    pub issuer_text: String,
    /// The serial number as colon-separated hex (`01:a3:...`), as CRLs and logs show it.
    pub serial: String,
    /// notBefore, seconds since 1970.
    pub not_before: u64,
    /// notAfter, seconds since 1970.
    pub not_after: u64,
    /// subjectAltName dNSName entries.
    pub dns_names: Vec<String>,
    /// subjectAltName rfc822Name entries.
    pub emails: Vec<String>,
    /// subjectAltName iPAddress entries.
    pub ips: Vec<IpAddr>,
    /// The SubjectPublicKeyInfo as DER.
    pub spki: Vec<u8>,
    /// The key's algorithm and size.
    pub key: KeyKind,
    /// The subjectPublicKey bits (RSAPublicKey DER, an EC point, 32 Ed25519 bytes).
    pub public_key: Vec<u8>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// keyUsage, when present: digitalSignature or nonRepudiation.
    pub may_sign: Option<bool>,
    /// keyUsage, when present: keyCertSign.
    pub may_sign_certs: Option<bool>,
    /// The certificate is signed with SHA-1 or MD5 (refused in a chain, RFC 8247 section 2.4).
    pub weak_signature: bool,
    /// Issuer and subject are the same name.
    pub self_issued: bool,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_text)
            .field("serial", &self.serial)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

fn unix(t: &x509_cert::time::Time) -> u64 {
    t.to_unix_duration().as_secs()
}

impl Certificate {
    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        let c =
            x509_cert::Certificate::from_der(der).map_err(|e| CertError(format!("not an X.509 certificate: {e}")))?;
        let tbs = c.tbs_certificate();
        let enc = |r: der::Result<Vec<u8>>| r.map_err(|e| CertError(format!("cannot encode a field: {e}")));
        let subject = enc(tbs.subject().to_der())?;
        let issuer = enc(tbs.issuer().to_der())?;
        let spki_info = tbs.subject_public_key_info();
        let spki = enc(spki_info.to_der())?;
        let public_key = spki_info.subject_public_key.raw_bytes().to_vec();
        let key = match spki_info.algorithm.oid {
            o if o == oid::RSA_ENCRYPTION => KeyKind::Rsa(rsa_bits(&public_key)),
            o if o == oid::ED25519 => KeyKind::Ed25519,
            o if o == oid::EC_PUBLIC_KEY => {
                let curve = spki_info
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
                match curve {
                    Some(c) if c == oid::P256 => KeyKind::P256,
                    Some(c) if c == oid::P384 => KeyKind::P384,
                    Some(c) if c == oid::P521 => KeyKind::P521,
                    _ => KeyKind::Other,
                }
            }
            _ => KeyKind::Other,
        };
        let (mut dns_names, mut emails, mut ips) = (Vec::new(), Vec::new(), Vec::new());
        if let Ok(Some((_, san))) = tbs.get_extension::<SubjectAltName>() {
            for n in san.0 {
                match n {
                    GeneralName::DnsName(s) => dns_names.push(s.to_string()),
                    GeneralName::Rfc822Name(s) => emails.push(s.to_string()),
                    GeneralName::IpAddress(o) => match o.as_bytes().len() {
                        4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(o.as_bytes()).unwrap_or_default())),
                        16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(o.as_bytes()).unwrap_or_default())),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        let is_ca = matches!(tbs.get_extension::<BasicConstraints>(), Ok(Some((_, b))) if b.ca);
        let ku = match tbs.get_extension::<KeyUsage>() {
            Ok(Some((_, k))) => Some(k),
            _ => None,
        };
        let may_sign =
            ku.as_ref().map(|k| k.0.contains(KeyUsages::DigitalSignature) || k.0.contains(KeyUsages::NonRepudiation));
        let may_sign_certs = ku.as_ref().map(|k| k.0.contains(KeyUsages::KeyCertSign));
        let sig = c.signature_algorithm().oid;
        let weak_signature =
            [oid::SHA1_WITH_RSA, oid::ECDSA_WITH_SHA1, oid::DSA_WITH_SHA1, oid::MD5_WITH_RSA].contains(&sig);
        let serial = tbs.serial_number().as_bytes().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let validity = tbs.validity();
        Ok(Certificate {
            der: der.to_vec(),
            subject_text: crate::identity::dn_text(&subject).unwrap_or_default(),
            issuer_text: crate::identity::dn_text(&issuer).unwrap_or_default(),
            self_issued: subject == issuer,
            subject,
            issuer,
            serial,
            not_before: unix(&validity.not_before),
            not_after: unix(&validity.not_after),
            dns_names,
            emails,
            ips,
            spki,
            key,
            public_key,
            is_ca,
            may_sign,
            may_sign_certs,
            weak_signature,
        })
    }

    /// Every certificate in PEM text (`-----BEGIN CERTIFICATE-----` blocks), or the one DER
    /// certificate the bytes are.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Vec<Certificate>, CertError> {
        let blocks = pem_blocks(bytes).map_err(CertError)?;
        if blocks.is_empty() {
            return Ok(vec![Certificate::from_der(bytes)?]);
        }
        let certs: Vec<Certificate> = blocks
            .iter()
            .filter(|(label, _)| label == "CERTIFICATE" || label == "X509 CERTIFICATE")
            .map(|(_, der)| Certificate::from_der(der))
            .collect::<Result<_, _>>()?;
        if certs.is_empty() {
            return Err(CertError("no CERTIFICATE block in the PEM text".into()));
        }
        Ok(certs)
    }

    /// The DER bytes (what a CERT payload carries).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.7
    //# Each is encoded as the SHA-1 hash of the Subject Public Key Info element ... from each
    //# Trust Anchor certificate.
    /// The SHA-1 hash of the SubjectPublicKeyInfo: how a CERTREQ names this CA.
    pub fn key_hash(&self) -> [u8; 20] {
        let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.spki);
        let mut out = [0u8; 20];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Whether the certificate stands for identity `kind`/`data` (RFC 4945 section 3.1:
    /// ID_FQDN and ID_RFC822_ADDR against subjectAltName dNSName and rfc822Name, IP identities
    /// against iPAddress, ID_DER_ASN1_DN against the subject).
    pub fn has_identity(&self, kind: u8, data: &[u8]) -> bool {
        use crate::message::id_type;
        let text = || core::str::from_utf8(data).ok();
        match kind {
            id_type::FQDN => text().is_some_and(|t| self.dns_names.iter().any(|n| n.eq_ignore_ascii_case(t))),
            id_type::RFC822_ADDR => text().is_some_and(|t| self.emails.iter().any(|n| n.eq_ignore_ascii_case(t))),
            id_type::IPV4_ADDR => <[u8; 4]>::try_from(data).is_ok_and(|a| self.ips.contains(&IpAddr::from(a))),
            id_type::IPV6_ADDR => <[u8; 16]>::try_from(data).is_ok_and(|a| self.ips.contains(&IpAddr::from(a))),
            id_type::DER_ASN1_DN => {
                crate::identity::dn_matches(data, &self.subject) && !crate::identity::dn_has_wildcard(data)
            }
            _ => false,
        }
    }
}

/// The modulus size of an RSAPublicKey (`SEQUENCE { modulus INTEGER, publicExponent INTEGER }`).
fn rsa_bits(public_key: &[u8]) -> usize {
    #[derive(der::Sequence)]
    struct RsaPublicKey<'a> {
        modulus: der::asn1::UintRef<'a>,
        _exponent: der::asn1::UintRef<'a>,
    }
    RsaPublicKey::from_der(public_key).map_or(0, |k| {
        let m = k.modulus.as_bytes();
        let lead = m.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
        m.len().saturating_sub(1) * 8 + lead
    })
}

/// One PEM block: its label and DER.
pub type PemBlock = (String, Zeroizing<Vec<u8>>);

/// The PEM blocks of a text: (label, DER), zeroized when dropped (a private key may be among
/// them). Bytes that hold no `-----BEGIN` line give an empty list.
pub fn pem_blocks(bytes: &[u8]) -> Result<Vec<PemBlock>, String> {
    let Ok(text) = core::str::from_utf8(bytes) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(label_end) = block[11..].find("-----") else { return Err("PEM: unterminated BEGIN line".into()) };
        let label = &block[11..11 + label_end];
        let end_line = format!("-----END {label}-----");
        let Some(end) = block.find(&end_line) else { return Err(format!("PEM: no END line for {label}")) };
        let one = &block[..end + end_line.len()];
        let (l, der) = der::pem::decode_vec(one.as_bytes()).map_err(|e| format!("PEM {label}: {e}"))?;
        out.push((l.to_string(), Zeroizing::new(der)));
        rest = &block[end + end_line.len()..];
    }
    Ok(out)
}
