//! Authentication of the IKE SA (RFC 7296 section 2.15): the octets each side signs, the
//! [`Authenticator`] trait, its PSK implementation, and the [`AuthVerified`] proof that only a
//! successful check can produce.
//!
//! Certificates (RFC 7427 signatures, [`SignatureAuthenticator`]) are one more authenticator
//! beside the PSK's; EAP would be another. This module never logs secrets and compares MACs in
//! constant time.

use core::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::crypto::Prf;
use crate::message::Identification;
use crate::sign::{self, PrivateKey, SignatureError};
use crate::trust::{ChainError, TrustStore};

/// AUTH method numbers (RFC 7296 section 3.8, RFC 7427).
pub mod auth_method {
    /// Shared Key Message Integrity Code.
    pub const SHARED_KEY_MIC: u8 = 2;
    /// Digital Signature (RFC 7427).
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// The inputs to an AUTH payload: one side's first message, the other side's nonce, and the
/// MACed ID (RFC 7296 section 2.15).
pub struct SignedOctets<'a> {
    /// RealMessage1 (initiator) or RealMessage2 (responder), exactly as sent.
    pub message: &'a [u8],
    /// The peer's nonce data (NonceRData or NonceIData).
    pub peer_nonce: &'a [u8],
    /// The signer's identity.
    pub id: &'a Identification,
    /// SK_pi or SK_pr.
    pub sk_p: &'a [u8],
    /// The IKE SA's PRF.
    pub prf: Prf,
}

impl SignedOctets<'_> {
    /// The concatenation the RFC defines.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.15
    //# InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
    //# GenIDri = IDType | RESERVED | InitIDData
    //# MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut rest = vec![self.id.kind, 0, 0, 0];
        rest.extend_from_slice(&self.id.data);
        let maced = self.prf.compute(self.sk_p, &[&rest]);
        let mut out = Vec::with_capacity(self.message.len() + self.peer_nonce.len() + maced.len());
        out.extend_from_slice(self.message);
        out.extend_from_slice(self.peer_nonce);
        out.extend_from_slice(&maced);
        out
    }
}

/// Proof that the peer's AUTH payload verified. Only authenticators in this crate can make one,
/// and a CHILD_SA cannot be installed without it.
#[derive(Debug)]
pub struct AuthVerified {
    peer: Identification,
}

impl AuthVerified {
    pub(crate) fn new(peer: &Identification) -> AuthVerified {
        AuthVerified { peer: peer.clone() }
    }

    /// The same proof for an IKE SA that rekeyed the authenticated one (RFC 7296 section 2.18:
    /// the new SA inherits the authentication of the old).
    pub(crate) fn inherit(&self) -> AuthVerified {
        AuthVerified { peer: self.peer.clone() }
    }

    /// The identity that was authenticated.
    pub fn peer(&self) -> &Identification {
        &self.peer
    }
}

/// Why authentication failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The peer used an auth method this authenticator does not do.
    Method(u8),
    /// The AUTH value did not verify.
    Mismatch,
    /// The peer's identity is not the one configured.
    Identity,
    /// No key configured for this peer (or, signing, no key of ours).
    NoCredential,
    /// The peer sent no certificate (no CERT payload of type X.509 signature).
    NoCertificate,
    /// The peer's certificate chain was refused.
    Certificate(ChainError),
    /// The peer's certificate does not carry its IKE identity.
    IdentityNotInCertificate {
        /// The identity the peer claimed.
        id: String,
        /// The certificate's subject.
        subject: String,
    },
    /// The signature could not be made or checked (scheme, key, format).
    Signature(SignatureError),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Method(m) => write!(f, "auth method {m} not expected"),
            AuthError::Mismatch => f.write_str("AUTH payload did not verify"),
            AuthError::Identity => f.write_str("peer identity does not match the configuration"),
            AuthError::NoCredential => f.write_str("no credential for this peer"),
            AuthError::NoCertificate => f.write_str("no certificate sent (CERT payload)"),
            AuthError::Certificate(e) => write!(f, "{e}"),
            AuthError::IdentityNotInCertificate { id, subject } => {
                write!(f, "identity '{id}' is not in the certificate '{subject}'")
            }
            AuthError::Signature(e) => write!(f, "{e}"),
        }
    }
}

/// The octets an AUTH payload covers ([`SignedOctets::to_bytes`]) and the IKE SA's PRF.
pub struct AuthInput<'a> {
    /// InitiatorSignedOctets or ResponderSignedOctets.
    pub octets: &'a [u8],
    /// The IKE SA's PRF (a PSK's MAC uses it).
    pub prf: Prf,
}

/// What the peer sent to authenticate.
pub struct PeerAuth<'a> {
    /// Its identity (IDi or IDr).
    pub id: &'a Identification,
    /// The AUTH method.
    pub method: u8,
    /// The AUTH data.
    pub data: &'a [u8],
    /// Its CERT payloads of type X.509 signature, its own first (RFC 7296 section 3.6).
    pub certs: &'a [Vec<u8>],
    /// Seconds since 1970, for the certificates' validity.
    pub unix_time: u64,
}

/// One way of authenticating: builds our AUTH payload and checks the peer's. A connection may
/// use one way for its own AUTH and another for the peer's (`local.auth = psk`, `remote.auth =
/// pubkey`): each side gets its own authenticator.
pub trait Authenticator: fmt::Debug + Send + Sync {
    /// Our AUTH payload over `input`: (method, data). `peer_hashes`: the hash algorithms of the
    /// peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4; empty when it sent none).
    fn sign(&self, input: &AuthInput<'_>, peer_hashes: &[u16]) -> Result<(u8, Vec<u8>), AuthError>;
    /// Checks the peer's AUTH payload over its `input`.
    fn verify(&self, input: &AuthInput<'_>, peer: &PeerAuth<'_>) -> Result<AuthVerified, AuthError>;
}

/// PSK authentication (RFC 7296 section 2.15).
pub struct PskAuthenticator {
    secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for PskAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PskAuthenticator(..)")
    }
}

impl PskAuthenticator {
    /// An authenticator for one shared secret.
    pub fn new(secret: &[u8]) -> PskAuthenticator {
        PskAuthenticator { secret: Zeroizing::new(secret.to_vec()) }
    }

    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.15
    //# AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <InitiatorSignedOctets>)
    fn mac(&self, input: &AuthInput<'_>) -> Zeroizing<Vec<u8>> {
        let pad_key = input.prf.compute(&self.secret, &[b"Key Pad for IKEv2"]);
        input.prf.compute(&pad_key, &[input.octets])
    }
}

impl Authenticator for PskAuthenticator {
    fn sign(&self, input: &AuthInput<'_>, _peer_hashes: &[u16]) -> Result<(u8, Vec<u8>), AuthError> {
        Ok((auth_method::SHARED_KEY_MIC, self.mac(input).to_vec()))
    }

    fn verify(&self, input: &AuthInput<'_>, peer: &PeerAuth<'_>) -> Result<AuthVerified, AuthError> {
        if peer.method != auth_method::SHARED_KEY_MIC {
            return Err(AuthError::Method(peer.method));
        }
        let expected = self.mac(input);
        if expected.len() == peer.data.len() && bool::from(expected.ct_eq(peer.data)) {
            Ok(AuthVerified::new(peer.id))
        } else {
            Err(AuthError::Mismatch)
        }
    }
}

/// Certificate authentication (RFC 7296 section 2.15 with RFC 7427 signatures): signs with our
/// private key; verifies the peer's chain to a trusted CA, that its certificate carries its IKE
/// identity, and the signature with the certificate's key.
pub struct SignatureAuthenticator {
    key: Option<Arc<PrivateKey>>,
    trust: Arc<TrustStore>,
    cacerts: Vec<Certificate>,
}

impl fmt::Debug for SignatureAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureAuthenticator").field("key", &self.key).finish_non_exhaustive()
    }
}

impl SignatureAuthenticator {
    /// Signs with `key`.
    pub fn signer(key: Arc<PrivateKey>) -> SignatureAuthenticator {
        SignatureAuthenticator { key: Some(key), trust: Arc::new(TrustStore::default()), cacerts: Vec::new() }
    }

    /// Verifies chains against `trust`, limited to `cacerts` when that is not empty.
    pub fn verifier(trust: Arc<TrustStore>, cacerts: Vec<Certificate>) -> SignatureAuthenticator {
        SignatureAuthenticator { key: None, trust, cacerts }
    }
}

impl Authenticator for SignatureAuthenticator {
    fn sign(&self, input: &AuthInput<'_>, peer_hashes: &[u16]) -> Result<(u8, Vec<u8>), AuthError> {
        let key = self.key.as_ref().ok_or(AuthError::NoCredential)?;
        key.sign(input.octets, peer_hashes).map_err(AuthError::Signature)
    }

    fn verify(&self, input: &AuthInput<'_>, peer: &PeerAuth<'_>) -> Result<AuthVerified, AuthError> {
        if !matches!(peer.method, 1 | 9 | 10 | 11 | 14) {
            return Err(AuthError::Method(peer.method));
        }
        let (ee, intermediates) = peer.certs.split_first().ok_or(AuthError::NoCertificate)?;
        let only = (!self.cacerts.is_empty()).then_some(self.cacerts.as_slice());
        let chain = self.trust.validate(ee, intermediates, only, peer.unix_time).map_err(AuthError::Certificate)?;
        //= https://www.rfc-editor.org/rfc/rfc4945#section-3.1
        //# Implementations MUST support ... the ID payload ... to be contained in the end-entity
        //# certificate (subjectAltName, or the subject for ID_DER_ASN1_DN).
        if !chain.end_entity.has_identity(peer.id.kind, &peer.id.data) {
            return Err(AuthError::IdentityNotInCertificate {
                id: peer.id.to_string(),
                subject: chain.end_entity.subject_text.clone(),
            });
        }
        sign::verify(&chain.end_entity, peer.method, peer.data, input.octets).map_err(AuthError::Signature)?;
        Ok(AuthVerified::new(peer.id))
    }
}
