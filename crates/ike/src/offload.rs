//! Diffie-Hellman and signature work that the caller may run on other threads, so that a
//! thousand IKE_SA_INIT or IKE_AUTH requests arriving at once do not hold up timers and
//! retransmissions.
//!
//! Two halves: fresh key shares come from a [`KeyShareSource`] (a daemon keeps a supply that
//! worker threads generate ahead of need; [`InlineShares`] makes them on the spot), and the
//! shared-secret computation of IKE_SA_INIT, when [`crate::EndpointConfig::offload_dh`] is set,
//! leaves the endpoint as a [`DhJob`] and comes back as a [`DhDone`] through
//! [`crate::Endpoint::dh_done`].
//!
//! This module starts no thread and reads no clock (DESIGN.md rule 1); private values stay in
//! [`KeyShare`]s (zeroized on drop) and no `Debug` output shows a secret.

use core::fmt;

use zeroize::Zeroizing;

use crate::auth::{AuthError, AuthInput, AuthVerified, Authenticator, PeerAuth};
use crate::crypto::{DhGroup, KeError, KeyShare, Prf, RandomSource};
use crate::event::IkeSaId;
use crate::message::Identification;

/// Where the endpoint takes its Diffie-Hellman key shares from.
pub trait KeyShareSource: Send {
    /// A fresh key share of `group`, never handed out before. `rng` may be used to make one on
    /// the spot when no precomputed share is at hand.
    fn take(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare;

    /// A fresh key share if one is ready without computing it here; `None` lets a [`DhJob`]
    /// make it on a worker (the responder's IKE_SA_INIT, whose answer waits for the job anyway).
    fn take_ready(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> Option<KeyShare> {
        Some(self.take(group, rng))
    }
}

/// Makes every key share when asked, on the calling thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct InlineShares;

impl KeyShareSource for InlineShares {
    fn take(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare {
        KeyShare::generate(group, rng)
    }
}

/// Which exchange waits for a [`DhJob`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhOwner {
    /// The answer to an IKE_SA_INIT request; the IKE SA gets this handle once it exists.
    Responder(IkeSaId),
    /// Our IKE_SA_INIT was answered; this IKE SA goes on to IKE_AUTH when the secret is known.
    Initiator(IkeSaId),
}

/// One shared-secret computation: our key share with the peer's (already validated) public
/// value. `Send`: run it anywhere with [`DhJob::run`], then hand the result back to the endpoint.
pub struct DhJob {
    owner: DhOwner,
    group: DhGroup,
    /// Our share; made by [`DhJob::run`] when none was ready.
    share: Option<KeyShare>,
    peer: Vec<u8>,
}

impl fmt::Debug for DhJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhJob").field("owner", &self.owner).field("group", &self.group).finish_non_exhaustive()
    }
}

impl DhJob {
    pub(crate) fn new(owner: DhOwner, share: KeyShare, peer: Vec<u8>) -> DhJob {
        DhJob { owner, group: share.group(), share: Some(share), peer }
    }

    /// A job that also makes our key share.
    pub(crate) fn with_new_share(owner: DhOwner, group: DhGroup, peer: Vec<u8>) -> DhJob {
        DhJob { owner, group, share: None, peer }
    }

    /// Who waits for it.
    pub fn owner(&self) -> DhOwner {
        self.owner
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Computes g^ir (the expensive part: one scalar multiplication or modular exponentiation),
    /// making our key share first when the job carries none (from the operating system's
    /// generator).
    pub fn run(self) -> DhDone {
        let share = match self.share {
            Some(s) => s,
            None => KeyShare::generate(self.group, &mut crate::crypto::SystemRandom::new()),
        };
        let result = share.agree(&self.peer);
        DhDone { owner: self.owner, share, result }
    }
}

/// A finished [`DhJob`], for [`crate::Endpoint::dh_done`].
pub struct DhDone {
    pub(crate) owner: DhOwner,
    pub(crate) share: KeyShare,
    pub(crate) result: Result<Zeroizing<Vec<u8>>, KeError>,
}

impl fmt::Debug for DhDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhDone").field("owner", &self.owner).field("ok", &self.result.is_ok()).finish_non_exhaustive()
    }
}

impl DhDone {
    /// Who waits for it.
    pub fn owner(&self) -> DhOwner {
        self.owner
    }
}

/// The signature work of a responder's IKE_AUTH: the peer's chain and AUTH checked, then our
/// AUTH signed (strongSwan's `pubkey_authenticator` steps, done off the event loop). `Send`: run
/// it anywhere with [`AuthJob::run`] and hand the [`AuthDone`] to
/// [`crate::Endpoint::auth_done`]. Holds no secret of its own beyond the authenticators (whose
/// `Debug` shows none).
pub struct AuthJob {
    pub(crate) owner: IkeSaId,
    pub(crate) verifier: Box<dyn Authenticator>,
    pub(crate) verify_octets: Vec<u8>,
    pub(crate) prf: Prf,
    pub(crate) peer_id: Identification,
    pub(crate) method: u8,
    pub(crate) data: Vec<u8>,
    pub(crate) certs: Vec<Vec<u8>>,
    pub(crate) unix_time: u64,
    pub(crate) signer: Box<dyn Authenticator>,
    pub(crate) sign_octets: Vec<u8>,
    pub(crate) peer_hashes: Vec<u16>,
}

impl fmt::Debug for AuthJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthJob")
            .field("owner", &self.owner)
            .field("peer", &self.peer_id.to_string())
            .finish_non_exhaustive()
    }
}

impl AuthJob {
    /// The IKE SA waiting for it.
    pub fn owner(&self) -> IkeSaId {
        self.owner
    }

    /// Verifies the peer (chain, identity, signature), then, if that passed, signs our AUTH.
    pub fn run(self) -> AuthDone {
        let input = AuthInput { octets: &self.verify_octets, prf: self.prf };
        let peer = PeerAuth {
            id: &self.peer_id,
            method: self.method,
            data: &self.data,
            certs: &self.certs,
            unix_time: self.unix_time,
        };
        let verified = self.verifier.verify(&input, &peer);
        let signed = match &verified {
            Ok(_) => self.signer.sign(&AuthInput { octets: &self.sign_octets, prf: self.prf }, &self.peer_hashes),
            Err(_) => Err(AuthError::NoCredential),
        };
        AuthDone { owner: self.owner, verified, signed }
    }
}

/// A finished [`AuthJob`].
pub struct AuthDone {
    pub(crate) owner: IkeSaId,
    pub(crate) verified: Result<AuthVerified, AuthError>,
    pub(crate) signed: Result<(u8, Vec<u8>), AuthError>,
}

impl fmt::Debug for AuthDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthDone")
            .field("owner", &self.owner)
            .field("ok", &self.verified.is_ok())
            .finish_non_exhaustive()
    }
}

impl AuthDone {
    /// The IKE SA waiting for it.
    pub fn owner(&self) -> IkeSaId {
        self.owner
    }
}
