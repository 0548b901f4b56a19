//! What the endpoint did not answer, and why (DESIGN.md rule 6: nothing dropped in silence):
//! every datagram the core drops without an answer is counted under one [`Ignored`] reason,
//! and the refusals an operator needs to read about (a datagram dropped, NO_PROPOSAL_CHOSEN
//! with what was offered and what is configured, an AH child refused over NAT,
//! AUTHENTICATION_FAILED with its precise cause)
//! are queued as [`Diagnostic`]s for the daemon to log, rate limited, with the peer's address.
//!
//! The core does no I/O, so it neither logs nor reads a clock here: the daemon drains
//! [`crate::Endpoint::poll_diagnostic`] and publishes [`crate::Endpoint::ignored`]. The queue
//! is bounded (a flood fills it and the rest is only counted). Nothing here holds a key, a
//! nonce or an AUTH value: causes are named, never shown.

use core::fmt;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Why a datagram was dropped without an answer ("drop reasons as data": each variant is a
/// counter label and a message).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// The datagram is not an IKEv2 message (truncated, bad lengths, IKEv1, a payload that does
    /// not parse).
    Unparseable,
    /// An IKE_SA_INIT request that parses but cannot start an IKE SA (no SA, KE or Nonce
    /// payload, a non-zero message ID, an Encrypted payload).
    MalformedInit,
    /// A peer address with `block_threshold` half-open IKE SAs already ("peer too aggressive").
    BlockedPeer,
    /// The IKE SPI names no IKE SA of ours.
    UnknownSpi,
    /// A message ID outside the window: an old request we no longer have the answer to, one
    /// ahead of the next expected, or a response to no request of ours.
    OutOfWindow,
    /// The Encrypted payload did not authenticate (bad ICV, or a padding that does not decrypt).
    BadIcv,
    /// A valid message the IKE SA cannot take in its state (an IKE_AUTH request on an
    /// established SA, flags pointing the wrong way, an exchange type Rampart does not know).
    Unexpected,
    /// An IKE_SA_INIT request again while its first copy is still being answered (the
    /// Diffie-Hellman computation runs), or a different one with the same SPI and address.
    DuplicateInit,
    /// An unprotected error answer (INVALID_MAJOR_VERSION) held back by its rate limit.
    RateLimited,
    /// A request retransmitted while its answer is being computed (the signature check of an
    /// IKE_AUTH on the worker pool).
    InProgress,
    /// An IKE fragment (RFC 7383) on an IKE SA that did not negotiate fragmentation.
    FragmentNotNegotiated,
    /// An IKE fragment whose Fragment Number is 0 or above its Total Fragments, or whose Total
    /// Fragments is 0 (RFC 7383 section 2.6).
    FragmentInvalid,
    /// An IKE fragment already held (same message, number and total: a replay or the peer's
    /// retransmission), or a fragment other than the first of a request already answered
    /// (RFC 7383 section 2.6.1).
    FragmentDuplicate,
    /// An IKE fragment whose Total Fragments is below that of the fragments held for its
    /// message; or, counted per fragment, the fragments held when one with a higher total
    /// started the reassembly over (RFC 7383 section 2.6).
    FragmentTotalChanged,
    /// An IKE fragment of a message announced in more than [`crate::fragment::MAX_FRAGMENTS`]
    /// fragments.
    FragmentTooMany,
    /// The fragments of a message that grew past [`crate::fragment::MAX_MESSAGE_BYTES`] (each
    /// one held, and the one that passed the limit).
    FragmentTooBig,
    /// An IKE fragment that would pass the memory for reassembly of its IKE SA
    /// ([`crate::fragment::MAX_SA_BYTES`]) or of all of them
    /// ([`crate::EndpointConfig::fragment_memory`]).
    FragmentMemory,
    /// The fragments of a message that was not complete within
    /// [`crate::EndpointConfig::fragment_timeout`].
    FragmentTimeout,
    /// The fragments of an incomplete message given up for a newer one in the same direction
    /// (RFC 7383 section 2.6.1), or for the same message that arrived whole.
    FragmentSuperseded,
}

impl Ignored {
    /// Every reason, in the order of [`crate::Endpoint::ignored`].
    pub const ALL: [Ignored; 19] = [
        Ignored::Unparseable,
        Ignored::MalformedInit,
        Ignored::BlockedPeer,
        Ignored::UnknownSpi,
        Ignored::OutOfWindow,
        Ignored::BadIcv,
        Ignored::Unexpected,
        Ignored::DuplicateInit,
        Ignored::RateLimited,
        Ignored::InProgress,
        Ignored::FragmentNotNegotiated,
        Ignored::FragmentInvalid,
        Ignored::FragmentDuplicate,
        Ignored::FragmentTotalChanged,
        Ignored::FragmentTooMany,
        Ignored::FragmentTooBig,
        Ignored::FragmentMemory,
        Ignored::FragmentTimeout,
        Ignored::FragmentSuperseded,
    ];

    /// The metric label (`rampart_ike_dropped_datagrams_total{reason}`).
    pub fn label(self) -> &'static str {
        match self {
            Ignored::Unparseable => "unparseable",
            Ignored::MalformedInit => "malformed_ike_sa_init",
            Ignored::BlockedPeer => "blocked_peer",
            Ignored::UnknownSpi => "unknown_spi",
            Ignored::OutOfWindow => "out_of_window",
            Ignored::BadIcv => "bad_icv",
            Ignored::Unexpected => "unexpected",
            Ignored::DuplicateInit => "duplicate_ike_sa_init",
            Ignored::RateLimited => "rate_limited",
            Ignored::InProgress => "in_progress",
            Ignored::FragmentNotNegotiated => "fragment_not_negotiated",
            Ignored::FragmentInvalid => "fragment_invalid",
            Ignored::FragmentDuplicate => "fragment_duplicate",
            Ignored::FragmentTotalChanged => "fragment_total_changed",
            Ignored::FragmentTooMany => "fragment_too_many",
            Ignored::FragmentTooBig => "fragment_too_big",
            Ignored::FragmentMemory => "fragment_memory",
            Ignored::FragmentTimeout => "fragment_timeout",
            Ignored::FragmentSuperseded => "fragment_superseded",
        }
    }

    /// What an operator reads in the log.
    pub fn message(self) -> &'static str {
        match self {
            Ignored::Unparseable => "unparseable datagram dropped",
            Ignored::MalformedInit => "IKE_SA_INIT request that cannot start an IKE SA dropped",
            Ignored::BlockedPeer => "peer too aggressive: IKE_SA_INIT dropped",
            Ignored::UnknownSpi => "message for an unknown IKE SPI dropped",
            Ignored::OutOfWindow => "message ID out of the window: dropped",
            Ignored::BadIcv => "message failed its integrity check (bad ICV): dropped",
            Ignored::Unexpected => "message the IKE SA does not expect dropped",
            Ignored::DuplicateInit => "retransmitted IKE_SA_INIT dropped while its answer is being computed",
            Ignored::RateLimited => "unprotected error answer held back by the rate limit",
            Ignored::InProgress => "request retransmitted while its answer is being computed: dropped",
            Ignored::FragmentNotNegotiated => "IKE fragment on an IKE SA without fragmentation dropped",
            Ignored::FragmentInvalid => "IKE fragment with an invalid Fragment Number or Total Fragments dropped",
            Ignored::FragmentDuplicate => "IKE fragment already received dropped",
            Ignored::FragmentTotalChanged => "IKE fragment whose Total Fragments changed dropped",
            Ignored::FragmentTooMany => "IKE fragment of a message in too many fragments dropped",
            Ignored::FragmentTooBig => "IKE fragments of a message too big to reassemble dropped",
            Ignored::FragmentMemory => "IKE fragment dropped: the reassembly memory is full",
            Ignored::FragmentTimeout => "IKE fragments of a message never completed dropped",
            Ignored::FragmentSuperseded => "IKE fragments of an incomplete message given up for a newer one",
        }
    }

    fn index(self) -> usize {
        Ignored::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// Why a responder refused a peer's AUTH (logged on the responder; the peer only ever gets
/// AUTHENTICATION_FAILED).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// No connection accepts this identity (the connection chosen at IKE_SA_INIT expects
    /// another one).
    NoConnectionForId {
        /// The identity the connection expects.
        expected: String,
    },
    /// The connection has no key for this identity (no PSK configured or found in the secrets).
    NoKeyForId,
    /// The peer authenticated with a method the connection does not use.
    MethodMismatch {
        /// The AUTH method number the peer sent (RFC 7296 section 3.8).
        peer_method: u8,
        /// The method configured.
        configured: &'static str,
    },
    /// The AUTH payload did not verify (with a PSK: most likely a different secret).
    NotVerified,
    /// The request lacks the IDi or the AUTH payload.
    Incomplete,
    /// Refused for a reason the authenticator names: the certificate chain (untrusted,
    /// expired, revoked with its serial, SHA-1), the identity not in the certificate, the
    /// signature scheme or value.
    Rejected(String),
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::NoConnectionForId { expected } => {
                write!(f, "no connection for this identity (the connection expects '{expected}')")
            }
            AuthFailure::NoKeyForId => f.write_str("no key for this identity (no PSK configured)"),
            AuthFailure::MethodMismatch { peer_method, configured } => {
                write!(f, "method mismatch: the peer used auth method {peer_method}, the connection uses {configured}")
            }
            AuthFailure::NotVerified => f.write_str("AUTH did not verify (a different pre-shared key?)"),
            AuthFailure::Incomplete => f.write_str("IKE_AUTH request without IDi or AUTH"),
            AuthFailure::Rejected(why) => f.write_str(why),
        }
    }
}

/// Why a protected message bigger than the fragment size went out whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfragmented {
    /// The peer did not announce IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (or we did not).
    NotNegotiated,
    /// The connection says `fragmentation = accept` (or `no`).
    Configured(crate::config::Fragmentation),
    /// The fragment size leaves no room for a fragment's contents.
    NoRoom,
}

impl fmt::Display for Unfragmented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unfragmented::NotNegotiated => {
                f.write_str("fragmentation is not negotiated (no IKEV2_FRAGMENTATION_SUPPORTED from both sides)")
            }
            Unfragmented::Configured(c) => write!(f, "the connection says fragmentation = {}", c.name()),
            Unfragmented::NoRoom => f.write_str("fragment_size leaves no room for a fragment"),
        }
    }
}

/// Something an operator should be able to read about, with the peer's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diagnostic {
    /// A datagram dropped without an answer.
    Dropped {
        /// Why.
        reason: Ignored,
        /// The peer's address and port.
        remote: SocketAddr,
        /// Details (the parse error, the threshold, the SPI or message ID).
        detail: String,
    },
    /// An IKE_SA_INIT or CHILD_SA request answered with NO_PROPOSAL_CHOSEN.
    NoProposalChosen {
        /// The peer's address and port.
        remote: SocketAddr,
        /// `IKE`, or for a CHILD_SA request the protocol of the peer's first proposal (`ESP`,
        /// `AH`); the offer and the configuration name the protocol of each proposal.
        protocol: &'static str,
        /// What the peer offered, in swanctl spelling.
        offered: String,
        /// What the connections that matched have configured (or why none matched).
        configured: String,
    },
    /// A key exchange value its group refuses (wrong length, not on the curve, out of range,
    /// small order), answered with NO_PROPOSAL_CHOSEN (IKE_SA_INIT) or INVALID_SYNTAX
    /// (CREATE_CHILD_SA).
    KeRefused {
        /// The peer's address and port.
        remote: SocketAddr,
        /// The group's keyword.
        group: &'static str,
        /// What was wrong with the value.
        reason: String,
    },
    /// An AH child not negotiated because its IKE SA uses NAT traversal: AH's ICV covers the
    /// outer addresses a NAT rewrites, and UDP encapsulation (RFC 3948) is defined for ESP only.
    /// As initiator the child is not proposed; as responder it is refused with
    /// NO_PROPOSAL_CHOSEN.
    AhOverNat {
        /// The peer's address and port.
        remote: SocketAddr,
        /// The connection.
        connection: String,
        /// The child.
        child: String,
        /// Whether we were to initiate the CHILD_SA (else the peer asked for it).
        initiator: bool,
        /// Which side the NAT was detected at (`local`, `remote`, `both`, or `forced` by
        /// `encap = yes`).
        nat: &'static str,
    },
    /// A peer's IKE_AUTH refused with AUTHENTICATION_FAILED.
    AuthenticationFailed {
        /// The peer's address and port.
        remote: SocketAddr,
        /// The connection chosen at IKE_SA_INIT.
        connection: String,
        /// The identity the peer claimed (empty when it sent none).
        peer_id: String,
        /// The precise cause.
        cause: AuthFailure,
    },
    /// A protected message that does not fit `fragment_size` was sent whole (the path may
    /// drop it, or its IP fragments). Noted once per message, not per retransmission.
    Unfragmented {
        /// The peer's address and port.
        remote: SocketAddr,
        /// The exchange of the message.
        exchange: &'static str,
        /// Bytes of the IP datagram it goes in.
        size: usize,
        /// The fragment size it exceeds.
        fragment_size: usize,
        /// Why it was not fragmented.
        why: Unfragmented,
    },
}

/// Diagnostics kept between two drains at most (the oldest stay, the newest are only counted).
pub const MAX_PENDING: usize = 1024;

/// The endpoint's drop counters and its queue of diagnostics.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics {
    counts: [u64; Ignored::ALL.len()],
    queue: VecDeque<Diagnostic>,
    /// Diagnostics that did not fit the queue.
    pub overflowed: u64,
}

impl Diagnostics {
    /// Counts a dropped datagram and queues its diagnostic; `detail` is only made when there is
    /// room for it.
    pub fn dropped(&mut self, reason: Ignored, remote: SocketAddr, detail: impl FnOnce() -> String) {
        self.counts[reason.index()] += 1;
        if self.queue.len() < MAX_PENDING {
            self.queue.push_back(Diagnostic::Dropped { reason, remote, detail: detail() });
        } else {
            self.overflowed += 1;
        }
    }

    /// Counts `n` datagrams dropped at once for `reason` (the fragments held for a message that
    /// is given up) with one diagnostic.
    pub fn discarded(&mut self, reason: Ignored, n: u64, remote: SocketAddr, detail: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        self.counts[reason.index()] += n;
        if self.queue.len() < MAX_PENDING {
            self.queue.push_back(Diagnostic::Dropped { reason, remote, detail: detail() });
        } else {
            self.overflowed += 1;
        }
    }

    /// Queues a diagnostic that is not a drop (the datagram was answered).
    pub fn note(&mut self, d: impl FnOnce() -> Diagnostic) {
        if self.queue.len() < MAX_PENDING {
            self.queue.push_back(d());
        } else {
            self.overflowed += 1;
        }
    }

    /// Datagrams dropped so far, by [`Ignored::ALL`] index.
    pub fn counts(&self) -> &[u64; Ignored::ALL.len()] {
        &self.counts
    }

    /// How many were dropped for `reason`.
    pub fn count(&self, reason: Ignored) -> u64 {
        self.counts[reason.index()]
    }

    /// The oldest diagnostic not taken yet.
    pub fn pop(&mut self) -> Option<Diagnostic> {
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_drop_and_bounds_the_queue() {
        let mut d = Diagnostics::default();
        let peer: SocketAddr = "192.0.2.9:500".parse().unwrap();
        for _ in 0..MAX_PENDING + 5 {
            d.dropped(Ignored::UnknownSpi, peer, || "spi".into());
        }
        d.dropped(Ignored::BadIcv, peer, || unreachable!("no room: the detail is not made"));
        assert_eq!(d.count(Ignored::UnknownSpi), (MAX_PENDING + 5) as u64);
        assert_eq!(d.count(Ignored::BadIcv), 1);
        assert_eq!(d.overflowed, 6);
        assert!(matches!(d.pop(), Some(Diagnostic::Dropped { reason: Ignored::UnknownSpi, .. })));
        let labels: std::collections::HashSet<_> = Ignored::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Ignored::ALL.len(), "labels are distinct");
    }
}
