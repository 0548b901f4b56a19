//! What the endpoint's exchanges did, for metrics: exchanges completed by type and role,
//! requests retransmitted by type, the round-trip time of each exchange we initiated (from
//! the first send of the request to the answer), kept until the daemon drains them, and the
//! messages that went in IKE fragments (RFC 7383) each way.
//!
//! Counts only: no message content, no key, nothing per packet of the data plane.

use std::collections::VecDeque;
use std::time::Duration;

use crate::message::ExchangeType;

/// The exchange types counted, in the order of the arrays of [`ExchangeLog`].
pub const EXCHANGES: [ExchangeType; 4] =
    [ExchangeType::IkeSaInit, ExchangeType::IkeAuth, ExchangeType::CreateChildSa, ExchangeType::Informational];

/// Round-trip times kept between two drains at most (the oldest go first).
pub const MAX_PENDING_RTTS: usize = 4096;

/// The metric label of an exchange type (`rampart_ike_exchanges_total{exchange}`).
pub fn exchange_label(e: ExchangeType) -> &'static str {
    match e {
        ExchangeType::IkeSaInit => "ike_sa_init",
        ExchangeType::IkeAuth => "ike_auth",
        ExchangeType::CreateChildSa => "create_child_sa",
        ExchangeType::Informational => "informational",
        ExchangeType::Other(_) => "other",
    }
}

fn slot(e: ExchangeType) -> Option<usize> {
    EXCHANGES.iter().position(|x| *x == e)
}

/// Counters of one endpoint's exchanges (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct ExchangeLog {
    /// Exchanges completed, by [`EXCHANGES`] index and our role (0: initiator, 1: responder).
    pub completed: [[u64; 2]; 4],
    /// Requests we sent again, by [`EXCHANGES`] index.
    pub retransmits: [u64; 4],
    /// IKE fragmentation, both ways.
    pub fragments: FragmentCounts,
    rtts: VecDeque<(ExchangeType, Duration)>,
}

/// Messages sent in IKE fragments and reassembled from them (RFC 7383).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragmentCounts {
    /// Messages we sent in fragments (once each, not per retransmission).
    pub messages_sent: u64,
    /// The fragments those messages were cut into.
    pub fragments_sent: u64,
    /// Fragments received that authenticated and were kept for reassembly.
    pub fragments_received: u64,
    /// Messages reassembled from fragments and processed.
    pub messages_reassembled: u64,
}

impl ExchangeLog {
    /// An exchange we initiated got its answer `rtt` after the request was first sent.
    pub fn answered(&mut self, exchange: ExchangeType, rtt: Duration) {
        let Some(i) = slot(exchange) else { return };
        self.completed[i][0] += 1;
        if self.rtts.len() == MAX_PENDING_RTTS {
            self.rtts.pop_front();
        }
        self.rtts.push_back((exchange, rtt));
    }

    /// We answered a request of the peer.
    pub fn responded(&mut self, exchange: ExchangeType) {
        if let Some(i) = slot(exchange) {
            self.completed[i][1] += 1;
        }
    }

    /// We sent a request again.
    pub fn retransmitted(&mut self, exchange: ExchangeType) {
        if let Some(i) = slot(exchange) {
            self.retransmits[i] += 1;
        }
    }

    /// The round-trip times recorded since the last call, oldest first.
    pub fn take_rtts(&mut self) -> impl Iterator<Item = (ExchangeType, Duration)> + '_ {
        self.rtts.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_type_and_role_and_bounds_the_rtts() {
        let mut log = ExchangeLog::default();
        log.answered(ExchangeType::IkeAuth, Duration::from_millis(3));
        log.responded(ExchangeType::IkeAuth);
        log.responded(ExchangeType::Other(99));
        log.retransmitted(ExchangeType::Informational);
        assert_eq!(log.completed[1], [1, 1]);
        assert_eq!(log.completed.iter().flatten().sum::<u64>(), 2, "unknown exchange types are not counted");
        assert_eq!(log.retransmits, [0, 0, 0, 1]);
        assert_eq!(log.take_rtts().collect::<Vec<_>>(), vec![(ExchangeType::IkeAuth, Duration::from_millis(3))]);
        assert_eq!(log.take_rtts().count(), 0);
        for i in 0..MAX_PENDING_RTTS + 10 {
            log.answered(ExchangeType::Informational, Duration::from_micros(i as u64));
        }
        let kept: Vec<_> = log.take_rtts().collect();
        assert_eq!(kept.len(), MAX_PENDING_RTTS);
        assert_eq!(kept[0].1, Duration::from_micros(10), "the oldest went first");
        assert_eq!(log.completed[3][0], (MAX_PENDING_RTTS + 10) as u64, "every exchange is counted");
    }
}
