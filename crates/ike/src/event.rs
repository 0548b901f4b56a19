//! What the core hands to the daemon: datagrams to send ([`Transmit`]) and things that happened
//! ([`Event`]): SAs to install, switch or remove, IKE SAs up and down.
//!
//! Plain data. `SaConfig` hides its keys in `Debug`; nothing here prints a key.

use core::fmt;
use std::net::SocketAddr;

use rampart_sa::SaConfig;

use crate::message::{Identification, NotifyType};

/// Handle of an IKE SA inside one [`crate::Endpoint`]; a rekeyed IKE SA gets a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IkeSaId(pub u64);

/// Handle of a CHILD_SA (a pair of ESP or AH SAs) inside one [`crate::Endpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildSaId(pub u64);

impl fmt::Display for IkeSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ike#{}", self.0)
    }
}

impl fmt::Display for ChildSaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "child#{}", self.0)
    }
}

/// A datagram to send. When either port is 4500 the daemon prepends the four-byte non-ESP
/// marker (RFC 3948 section 2.2); a one-byte `0xff` payload is a NAT keepalive and goes
/// without it.
#[derive(Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Our address and port to send from.
    pub from: SocketAddr,
    /// The peer's address and port.
    pub to: SocketAddr,
    /// The IKE message (or keepalive byte).
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transmit({} -> {}, {} bytes)", self.from, self.to, self.bytes.len())
    }
}

/// Why an IKE SA went down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We deleted it (operator, expiry of a rekeyed SA, ...).
    Deleted,
    /// The peer deleted it.
    DeletedByPeer,
    /// Retransmissions were exhausted: the peer is dead (DPD or any exchange).
    PeerDead,
    /// Replaced by a rekeyed IKE SA (its children live on there).
    Rekeyed,
    /// The IKE SA's hard lifetime passed without a rekey.
    Expired,
    /// A responder's IKE SA was not authenticated in time.
    HalfOpenTimeout,
    /// The peer answered with an error notify, or we refused its answer.
    Failed(String),
    /// Authentication failed, on either side.
    AuthenticationFailed,
    /// The peer authenticated a new IKE SA with INITIAL_CONTACT: this older one is stale
    /// (RFC 7296 section 2.4).
    Replaced,
}

/// Something the daemon must act on.
#[derive(Debug)]
pub enum Event {
    /// The IKE SA is authenticated and established.
    IkeSaUp {
        /// The IKE SA.
        ike: IkeSaId,
        /// Its connection's name.
        connection: String,
        /// Our address as the peer sees... as we send from.
        local: SocketAddr,
        /// The peer's address.
        remote: SocketAddr,
        /// Our identity.
        local_id: Identification,
        /// The peer's authenticated identity.
        remote_id: Identification,
    },
    /// The IKE SA is gone; its children were removed first (each with [`Event::DeleteChildSa`]),
    /// except when it was rekeyed.
    IkeSaDown {
        /// The IKE SA.
        ike: IkeSaId,
        /// Why.
        reason: DownReason,
    },
    /// The IKE SA was rekeyed: `new` replaces `old` and now owns its children.
    IkeSaRekeyed {
        /// The old IKE SA (going down with [`DownReason::Rekeyed`]).
        old: IkeSaId,
        /// The new IKE SA.
        new: IkeSaId,
    },
    /// Install a new CHILD_SA: the inbound SA and the outbound SA with its policies
    /// (`outbound.local_ts` -> `outbound.remote_ts`).
    InstallChildSa {
        /// The IKE SA it belongs to.
        ike: IkeSaId,
        /// The CHILD_SA.
        child: ChildSaId,
        /// The child config's name.
        name: String,
        /// Inbound SA (our SPI), ESP or AH.
        inbound: SaConfig,
        /// Outbound SA (the peer's SPI).
        outbound: SaConfig,
    },
    /// Make-before-break rekey: install `inbound` now, keeping `old`'s inbound SA until its
    /// [`Event::DeleteChildSa`]. When `outbound` is set, switch the policies' outbound SA to it
    /// now; otherwise keep sending on `old` until [`Event::SwitchOutbound`].
    RekeyedChildSa {
        /// The IKE SA.
        ike: IkeSaId,
        /// The CHILD_SA being replaced.
        old: ChildSaId,
        /// The new CHILD_SA.
        new: ChildSaId,
        /// The new inbound SA.
        inbound: SaConfig,
        /// The new outbound SA, when traffic switches to it now.
        outbound: Option<SaConfig>,
    },
    /// Switch outbound traffic to this CHILD_SA's outbound SA (the responder of a rekey does
    /// so when the initiator deletes the old SA).
    SwitchOutbound {
        /// The IKE SA.
        ike: IkeSaId,
        /// The CHILD_SA now carrying outbound traffic.
        child: ChildSaId,
        /// Its outbound SA.
        outbound: SaConfig,
    },
    /// Remove both SAs of a CHILD_SA (and its policies, unless a successor took them).
    DeleteChildSa {
        /// The IKE SA.
        ike: IkeSaId,
        /// The CHILD_SA.
        child: ChildSaId,
        /// Our inbound SPI.
        inbound_spi: u32,
        /// The peer's SPI (our outbound).
        outbound_spi: u32,
    },
    /// A CHILD_SA could not be created (the IKE SA stays).
    ChildSaFailed {
        /// The IKE SA.
        ike: IkeSaId,
        /// The child config's name.
        name: String,
        /// The error notify the peer sent or that we sent.
        reason: NotifyType,
    },
}
