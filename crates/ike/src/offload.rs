//! Diffie-Hellman work that the caller may run on other threads, so that a thousand IKE_SA_INIT
//! requests arriving at once do not hold up timers and retransmissions.
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

use crate::crypto::{DhGroup, KeError, KeyShare, RandomSource};
use crate::event::IkeSaId;

/// Where the endpoint takes its Diffie-Hellman key shares from.
pub trait KeyShareSource: Send {
    /// A fresh key share of `group`, never handed out before. `rng` may be used to make one on
    /// the spot when no precomputed share is at hand.
    fn take(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare;
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
    share: KeyShare,
    peer: Vec<u8>,
}

impl fmt::Debug for DhJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DhJob").field("owner", &self.owner).field("group", &self.share.group()).finish_non_exhaustive()
    }
}

impl DhJob {
    pub(crate) fn new(owner: DhOwner, share: KeyShare, peer: Vec<u8>) -> DhJob {
        DhJob { owner, share, peer }
    }

    /// Who waits for it.
    pub fn owner(&self) -> DhOwner {
        self.owner
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.share.group()
    }

    /// Computes g^ir (the expensive part: one scalar multiplication or modular exponentiation).
    pub fn run(self) -> DhDone {
        let result = self.share.agree(&self.peer);
        DhDone { owner: self.owner, share: self.share, result }
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
