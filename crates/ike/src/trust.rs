//! Whom Rampart trusts: the CA certificates and CRLs of the configuration (swanctl's `x509ca`
//! and `x509crl` folders, `remote.cacerts`) and the validation of a peer's certificate chain
//! against them (RFC 5280 section 6: path building through intermediates, validity, basic
//! constraints, key usage, revocation by CRL).
//!
//! Path building, signatures, validity and CRLs are `rustls-webpki`'s (a verifier that is kept
//! for the Web PKI, used here with IKE's own key-usage policy); Rampart adds the checks IKE needs
//! on top: no SHA-1 or MD5 signature in a chain, keyUsage of the end entity and the CAs, the
//! serial and subject of what failed. The time comes from the caller (no clock is read here).

use core::fmt;
use std::time::Duration;

use pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, OwnedCertRevocationList};

use crate::cert::{CertError, Certificate};

/// A certificate revocation list, checked for its signature when a chain uses it.
pub struct Crl {
    owned: OwnedCertRevocationList,
    /// The issuer as text, for `rampart ctl list-certs`.
    pub issuer_text: String,
    /// How many certificates it revokes.
    pub revoked: usize,
    der: Vec<u8>,
}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl").field("issuer", &self.issuer_text).field("revoked", &self.revoked).finish()
    }
}

impl Clone for Crl {
    fn clone(&self) -> Self {
        // The bytes parsed once already; they parse again.
        Crl::from_der(&self.der).unwrap_or_else(|_| unreachable!("a CRL that parsed once parses again"))
    }
}

impl Crl {
    /// Reads a DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Crl, CertError> {
        let owned =
            OwnedCertRevocationList::from_der(der).map_err(|e| CertError(format!("not a usable CRL: {e:?}")))?;
        let parsed = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
            .map_err(|e| CertError(format!("not a CRL: {e}")))?;
        let issuer_text = der::Encode::to_der(&parsed.tbs_cert_list.issuer)
            .ok()
            .and_then(|d| crate::identity::dn_text(&d))
            .unwrap_or_default();
        let revoked = parsed.tbs_cert_list.revoked_certificates.as_ref().map_or(0, Vec::len);
        Ok(Crl { owned, issuer_text, revoked, der: der.to_vec() })
    }

    /// Every CRL in PEM text (`X509 CRL` blocks), or the one DER CRL the bytes are.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Vec<Crl>, CertError> {
        let blocks = crate::cert::pem_blocks(bytes).map_err(CertError)?;
        if blocks.is_empty() {
            return Ok(vec![Crl::from_der(bytes)?]);
        }
        blocks.iter().filter(|(l, _)| l == "X509 CRL").map(|(_, d)| Crl::from_der(d)).collect()
    }

    /// Whether the serial (colon hex) of a certificate it could be about is on it.
    fn lists(&self, serial: &[u8]) -> bool {
        matches!(webpki::CertRevocationList::from(self.owned.clone()).find_serial(serial), Ok(Some(_)))
    }
}

use der::Decode;

/// The trusted CAs and the CRLs.
#[derive(Clone, Debug, Default)]
pub struct TrustStore {
    /// Trust anchors (every certificate in `x509ca`, intermediates included, as strongSwan
    /// trusts them).
    pub cas: Vec<Certificate>,
    /// Revocation lists.
    pub crls: Vec<Crl>,
}

/// Why a peer's certificate was refused (logged on our side; the peer gets
/// AUTHENTICATION_FAILED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// A CERT payload that is not a certificate.
    Unparseable(String),
    /// A certificate of the chain is signed with SHA-1 or MD5.
    WeakSignature {
        /// Its subject.
        subject: String,
    },
    /// The end entity's validity ended.
    Expired {
        /// Its subject.
        subject: String,
        /// Its serial.
        serial: String,
    },
    /// The end entity is not valid yet.
    NotYetValid {
        /// Its subject.
        subject: String,
    },
    /// Revoked by a CRL.
    Revoked {
        /// The revoked certificate's subject.
        subject: String,
        /// Its serial number.
        serial: String,
    },
    /// No path to a trusted CA.
    Untrusted {
        /// The end entity's issuer.
        issuer: String,
    },
    /// keyUsage forbids it: the end entity may not sign, or a CA may not sign certificates.
    KeyUsage {
        /// The subject.
        subject: String,
    },
    /// Anything else the verifier said.
    Invalid(String),
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Unparseable(e) => write!(f, "certificate does not parse: {e}"),
            ChainError::WeakSignature { subject } => {
                write!(f, "certificate '{subject}' is signed with SHA-1 or MD5 (refused)")
            }
            ChainError::Expired { subject, serial } => {
                write!(f, "certificate '{subject}' (serial {serial}) has expired")
            }
            ChainError::NotYetValid { subject } => write!(f, "certificate '{subject}' is not valid yet"),
            ChainError::Revoked { subject, serial } => {
                write!(f, "certificate '{subject}' with serial {serial} is revoked (CRL)")
            }
            ChainError::Untrusted { issuer } => write!(f, "no trusted CA for issuer '{issuer}'"),
            ChainError::KeyUsage { subject } => write!(f, "keyUsage of '{subject}' does not allow this use"),
            ChainError::Invalid(e) => write!(f, "certificate chain invalid: {e}"),
        }
    }
}

/// The extended key usages an IKE peer's certificate may carry (when it carries the extension):
/// RFC 4945 section 5.1.3.12 leaves EKU to policy; strongSwan accepts TLS server and client
/// certificates, and RFC 4809's id-kp-ipsecIKE.
struct IkeUsage;

const ACCEPTED_EKUS: &[&[usize]] = &[
    &[1, 3, 6, 1, 5, 5, 7, 3, 1],  // serverAuth
    &[1, 3, 6, 1, 5, 5, 7, 3, 2],  // clientAuth
    &[1, 3, 6, 1, 5, 5, 7, 3, 17], // id-kp-ipsecIKE (RFC 4945)
    &[1, 3, 6, 1, 5, 5, 7, 3, 5],  // ipsecEndSystem
    &[1, 3, 6, 1, 5, 5, 7, 3, 6],  // ipsecTunnel
    &[1, 3, 6, 1, 5, 5, 7, 3, 7],  // ipsecUser
    &[2, 5, 29, 37, 0],            // anyExtendedKeyUsage
];

impl ExtendedKeyUsageValidator for IkeUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut empty = true;
        for id in iter {
            empty = false;
            if ACCEPTED_EKUS.contains(&id?.to_decoded_oid().as_slice()) {
                return Ok(());
            }
        }
        if empty {
            Ok(())
        } else {
            Err(webpki::Error::RequiredEkuNotFoundContext(webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::required(&[]),
                present: Vec::new(),
            }))
        }
    }
}

/// The signature algorithms a chain may use: ECDSA, RSA PKCS#1 v1.5 and PSS with SHA-2, Ed25519
/// (no SHA-1, no MD5).
static CHAIN_ALGS: &[&dyn pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// A chain that validated: the end entity, parsed.
#[derive(Clone, Debug)]
pub struct ValidatedChain {
    /// The peer's certificate.
    pub end_entity: Certificate,
    /// The subject of the trust anchor the path ended at.
    pub anchor: String,
}

impl TrustStore {
    /// Validates `end_entity` (DER, the first CERT payload) with `intermediates` (the other CERT
    /// payloads) at `unix_time` against the CAs: `only` when given (a connection's
    /// `remote.cacerts`), else every CA of the store; the store's CRLs are checked along the
    /// path (a CA without a CRL is not an error: OCSP is not done).
    pub fn validate(
        &self,
        end_entity: &[u8],
        intermediates: &[Vec<u8>],
        only: Option<&[Certificate]>,
        unix_time: u64,
    ) -> Result<ValidatedChain, ChainError> {
        let ee = Certificate::from_der(end_entity).map_err(|e| ChainError::Unparseable(e.0))?;
        let mut chain = vec![ee.clone()];
        for i in intermediates {
            chain.push(Certificate::from_der(i).map_err(|e| ChainError::Unparseable(e.0))?);
        }
        if let Some(weak) = chain.iter().find(|c| c.weak_signature) {
            return Err(ChainError::WeakSignature { subject: weak.subject_text.clone() });
        }
        //= https://www.rfc-editor.org/rfc/rfc5280#section-4.2.1.3
        //# The digitalSignature bit is asserted when the subject public key is used for
        //# verifying digital signatures, other than signatures on certificates
        if ee.may_sign == Some(false) {
            return Err(ChainError::KeyUsage { subject: ee.subject_text.clone() });
        }
        if unix_time > ee.not_after {
            return Err(ChainError::Expired { subject: ee.subject_text.clone(), serial: ee.serial.clone() });
        }
        if unix_time < ee.not_before {
            return Err(ChainError::NotYetValid { subject: ee.subject_text.clone() });
        }
        let anchors_src: &[Certificate] = only.unwrap_or(&self.cas);
        let ders: Vec<CertificateDer<'_>> = anchors_src.iter().map(|c| CertificateDer::from(c.der())).collect();
        let anchors: Vec<_> = ders.iter().filter_map(|d| webpki::anchor_from_trusted_cert(d).ok()).collect();
        // The store's CAs also serve as intermediates (an intermediate in x509ca, the root in
        // remote.cacerts).
        let mut inter: Vec<CertificateDer<'_>> =
            intermediates.iter().map(|d| CertificateDer::from(d.as_slice())).collect();
        inter.extend(self.cas.iter().map(|c| CertificateDer::from(c.der())));
        let ee_der = CertificateDer::from(end_entity);
        let cert = EndEntityCert::try_from(&ee_der).map_err(|e| ChainError::Unparseable(format!("{e:?}")))?;
        let crls: Vec<webpki::CertRevocationList<'_>> =
            self.crls.iter().map(|c| webpki::CertRevocationList::from(c.owned.clone())).collect();
        let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
        let revocation = webpki::RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Allow)
                .with_expiration_policy(webpki::ExpirationPolicy::Ignore)
                .build()
        });
        let time = UnixTime::since_unix_epoch(Duration::from_secs(unix_time));
        let ca_usage = |path: &webpki::VerifiedPath<'_>| -> Result<(), webpki::Error> {
            for c in path.intermediate_certificates() {
                if Certificate::from_der(c.der().as_ref()).is_ok_and(|c| c.may_sign_certs == Some(false)) {
                    return Err(webpki::Error::CaUsedAsEndEntity);
                }
            }
            Ok(())
        };
        let path = cert
            .verify_for_usage(CHAIN_ALGS, &anchors, &inter, time, IkeUsage, revocation, Some(&ca_usage))
            .map_err(|e| self.explain(e, &chain))?;
        let anchor = anchors_src
            .iter()
            .find(|c| c.subject.ends_with(path.anchor().subject.as_ref()))
            .map(|c| c.subject_text.clone())
            .unwrap_or_default();
        Ok(ValidatedChain { end_entity: ee, anchor })
    }

    fn explain(&self, e: webpki::Error, chain: &[Certificate]) -> ChainError {
        use webpki::Error as E;
        match e {
            E::CertRevoked => {
                // Name the one a CRL lists: the end entity, or a CA above it.
                let mut candidates: Vec<&Certificate> = chain.iter().collect();
                candidates.extend(self.cas.iter());
                let hit = candidates.into_iter().find(|c| {
                    let serial: Vec<u8> = c.serial.split(':').filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
                    self.crls.iter().any(|crl| crl.lists(&serial))
                });
                let c = hit.unwrap_or(&chain[0]);
                ChainError::Revoked { subject: c.subject_text.clone(), serial: c.serial.clone() }
            }
            E::UnknownIssuer => ChainError::Untrusted { issuer: chain[0].issuer_text.clone() },
            E::CertExpired { .. } => ChainError::Expired { subject: "a CA of the chain".into(), serial: String::new() },
            E::CertNotValidYet { .. } => ChainError::NotYetValid { subject: "a CA of the chain".into() },
            E::CaUsedAsEndEntity => ChainError::KeyUsage { subject: "a CA of the chain (keyCertSign)".into() },
            E::RequiredEkuNotFoundContext(_) => {
                ChainError::KeyUsage { subject: format!("{} (extendedKeyUsage)", chain[0].subject_text) }
            }
            other => ChainError::Invalid(format!("{other:?}")),
        }
    }
}
