//! Authentication of the IKE SA (RFC 7296 section 2.15): the octets each side signs, the
//! [`Authenticator`] trait, its PSK implementation, and the [`AuthVerified`] proof that only a
//! successful check can produce.
//!
//! Room is left for certificates (RFC 7427) and EAP: they are further authenticators. This
//! module never logs secrets and compares MACs in constant time.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::Prf;
use crate::message::Identification;

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
    /// No key configured for this peer.
    NoCredential,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Method(m) => write!(f, "auth method {m} not expected"),
            AuthError::Mismatch => f.write_str("AUTH payload did not verify"),
            AuthError::Identity => f.write_str("peer identity does not match the configuration"),
            AuthError::NoCredential => f.write_str("no credential for this peer"),
        }
    }
}

/// One way of authenticating: builds our AUTH payload and checks the peer's.
pub trait Authenticator: fmt::Debug + Send + Sync {
    /// The AUTH method number we send.
    fn method(&self) -> u8;
    /// Our AUTH data over `octets`.
    fn sign(&self, octets: &SignedOctets<'_>) -> Vec<u8>;
    /// Checks the peer's AUTH payload over its `octets`.
    fn verify(&self, octets: &SignedOctets<'_>, method: u8, data: &[u8]) -> Result<AuthVerified, AuthError>;
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
    fn mac(&self, octets: &SignedOctets<'_>) -> Zeroizing<Vec<u8>> {
        let pad_key = octets.prf.compute(&self.secret, &[b"Key Pad for IKEv2"]);
        octets.prf.compute(&pad_key, &[&octets.to_bytes()])
    }
}

impl Authenticator for PskAuthenticator {
    fn method(&self) -> u8 {
        auth_method::SHARED_KEY_MIC
    }

    fn sign(&self, octets: &SignedOctets<'_>) -> Vec<u8> {
        self.mac(octets).to_vec()
    }

    fn verify(&self, octets: &SignedOctets<'_>, method: u8, data: &[u8]) -> Result<AuthVerified, AuthError> {
        if method != auth_method::SHARED_KEY_MIC {
            return Err(AuthError::Method(method));
        }
        let expected = self.mac(octets);
        if expected.len() == data.len() && bool::from(expected.ct_eq(data)) {
            Ok(AuthVerified::new(octets.id))
        } else {
            Err(AuthError::Mismatch)
        }
    }
}
