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
