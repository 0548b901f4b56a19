//! The log lines of what the endpoint dropped or refused ([`rampart_ike::diagnostic`]): one
//! line per diagnostic with the peer's address and the reason, each kind rate limited on its
//! own (`rampart_telemetry::rate_limited!`, the suppressed ones counted in
//! `rampart_log_suppressed_total`), so that a flood of one kind neither fills the journal nor
//! hides the others.
//!
//! Diagnostics carry no key, nonce or AUTH value; nothing here adds one. The counters of the
//! same drops are published by [`crate::metrics`].

use rampart_ike::diagnostic::{Diagnostic, Ignored};
use rampart_telemetry::rate_limited;

/// Lines per second per kind at most.
const PER_SECOND: u32 = 10;

/// Logs one diagnostic of the endpoint.
pub fn log(d: &Diagnostic) {
    match d {
        Diagnostic::Dropped { reason, remote, detail } => dropped(*reason, remote, detail),
        Diagnostic::NoProposalChosen { remote, protocol, offered, configured } => rate_limited!(
            warn,
            PER_SECOND,
            peer = %remote,
            protocol = *protocol,
            offered = %offered,
            configured = %configured,
            "NO_PROPOSAL_CHOSEN: no proposal of the peer is configured"
        ),
        Diagnostic::KeRefused { remote, group, reason } => rate_limited!(
            warn,
            PER_SECOND,
            peer = %remote,
            group = *group,
            error = %reason,
            "key exchange value refused"
        ),
        Diagnostic::AhOverNat { remote, connection, child, initiator, nat } => rate_limited!(
            warn,
            PER_SECOND,
            peer = %remote,
            connection = %connection,
            child_name = %child,
            nat = *nat,
            role = if *initiator { "initiator" } else { "responder" },
            "AH CHILD_SA not negotiated: the IKE SA uses NAT traversal and AH cannot be UDP-encapsulated \
             (RFC 3948 covers ESP only); use esp_proposals for this child or remove the NAT"
        ),
        Diagnostic::AuthenticationFailed { remote, connection, peer_id, cause } => rate_limited!(
            warn,
            PER_SECOND,
            peer = %remote,
            connection = %connection,
            peer_id = %peer_id,
            cause = %cause,
            "AUTHENTICATION_FAILED: {cause}"
        ),
        Diagnostic::Unfragmented { remote, exchange, size, fragment_size, why } => rate_limited!(
            warn,
            PER_SECOND,
            peer = %remote,
            exchange = *exchange,
            size = *size,
            fragment_size = *fragment_size,
            why = %why,
            "IKE message bigger than fragment_size sent whole, the path may drop it: {why}"
        ),
    }
}

fn dropped(reason: Ignored, remote: &std::net::SocketAddr, detail: &str) {
    let (label, message) = (reason.label(), reason.message());
    match reason {
        Ignored::Unparseable => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, error = %detail, "{message}")
        }
        Ignored::MalformedInit => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::BlockedPeer => {
            rate_limited!(warn, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::UnknownSpi => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::OutOfWindow => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::BadIcv => {
            rate_limited!(warn, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::Unexpected => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::DuplicateInit | Ignored::InProgress => {
            rate_limited!(debug, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::RateLimited => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        // A broken fragment, or one past a limit: worth a warning.
        Ignored::FragmentInvalid => {
            rate_limited!(warn, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentTooMany => {
            rate_limited!(warn, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentTooBig => {
            rate_limited!(warn, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentMemory => {
            rate_limited!(warn, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentNotNegotiated => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentTotalChanged => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentTimeout => {
            rate_limited!(info, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        // Retransmissions and their leftovers: normal on a lossy path.
        Ignored::FragmentDuplicate => {
            rate_limited!(debug, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
        Ignored::FragmentSuperseded => {
            rate_limited!(debug, PER_SECOND, peer = %remote, reason = label, detail = %detail, "{message}")
        }
    }
}
