//! The daemon's counters in the shared metrics registry (`rampart-telemetry`'s schema: the
//! `rampart_ike_*` families), so that `/metrics`, `rampart ctl stats` and bench reports show the
//! same numbers: [`Published::publish`] adds what each counter of [`Counters`] and of the
//! endpoint's [`ExchangeLog`] gained since the last tick, records the exchanges' round-trip
//! times in the latency family (HDR histogram, exported as quantiles) and sets the state gauges.
//! Failed negotiations are counted by reason as they happen ([`Published::ike_down`],
//! [`Published::child_failed`]); every datagram the endpoint dropped without an answer is in
//! `rampart_ike_dropped_datagrams_total{reason}`, the reason its [`Ignored`] label, beside the
//! daemon's own (runts, ESP on the IKE socket, send errors).
//!
//! Runs on the event loop, once per tick; never on a per-packet path, never with a key.

use std::collections::HashMap;
use std::sync::Arc;

use rampart_telemetry::schema::{
    IKE_ACQUIRES, IKE_CHILD_SA_EVENTS, IKE_CHILD_SAS, IKE_CONFIG_RELOADS, IKE_CONTROL_REQUESTS, IKE_DROPPED_DATAGRAMS,
    IKE_EXCHANGE_SECONDS, IKE_EXCHANGES, IKE_FAILURES, IKE_FRAGMENTATION, IKE_MESSAGES, IKE_NAT_KEEPALIVES,
    IKE_RETRANSMITS, IKE_SA_EVENTS, IKE_SAS,
};
use rampart_telemetry::{Counter, Gauge, LatencyCell, Metrics};

use crate::stats::Counters;
use rampart_ike::diagnostic::Ignored;
use rampart_ike::event::DownReason;
use rampart_ike::exchange_log::{EXCHANGES, ExchangeLog, FragmentCounts, exchange_label};
use rampart_ike::message::NotifyType;
use rampart_ike::state::IkeState;

/// Reads one field of [`Counters`].
type Field = fn(&Counters) -> u64;

/// Reads one field of the exchange log's [`FragmentCounts`].
type FragmentField = fn(&FragmentCounts) -> u64;

/// Registry handles, each tied to one field of [`Counters`].
pub struct Published {
    counters: Vec<(Field, Counter)>,
    ike_states: Vec<(IkeState, Gauge)>,
    children: Gauge,
    last: Counters,
    /// `rampart_ike_exchanges_total`, by [`EXCHANGES`] index and role (initiator, responder).
    exchanges: [[Counter; 2]; 4],
    retransmits: [Counter; 4],
    exchange_seconds: [LatencyCell; 4],
    /// The exchange log's counts at the last publish.
    last_completed: [[u64; 2]; 4],
    last_retransmits: [u64; 4],
    /// `rampart_ike_fragmentation_total`, each with the field of [`FragmentCounts`] it counts.
    fragmentation: Vec<(FragmentField, Counter)>,
    last_fragmentation: FragmentCounts,
    /// `rampart_ike_failures_total` for IKE SAs, by [`IKE_FAILURE_REASONS`] index.
    ike_failures: [Counter; 3],
    /// `rampart_ike_dropped_datagrams_total` for each reason the endpoint drops a datagram.
    ignored: [Counter; Ignored::ALL.len()],
    last_ignored: [u64; Ignored::ALL.len()],
    /// `rampart_ike_failures_total` for CHILD_SAs, by notify (taken on first use).
    child_failures: HashMap<NotifyType, Counter>,
    metrics: Arc<Metrics>,
}

/// The reasons an IKE SA went down that are failed negotiations, as failure labels.
const IKE_FAILURE_REASONS: [&str; 3] = ["authentication_failed", "half_open_timeout", "ike_sa_refused"];

/// The index in [`IKE_FAILURE_REASONS`] of a reason an IKE SA went down, when it is a failed
/// negotiation (authentication failed, not authenticated in time, refused with an error notify).
fn ike_failure(reason: &DownReason) -> Option<usize> {
    match reason {
        DownReason::AuthenticationFailed => Some(0),
        DownReason::HalfOpenTimeout => Some(1),
        DownReason::Failed(_) => Some(2),
        _ => None,
    }
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published").finish_non_exhaustive()
    }
}

/// The label of an IKE SA state in `rampart_ike_sas{state}`.
pub fn state_label(s: IkeState) -> &'static str {
    match s {
        IkeState::Connecting => "connecting",
        IkeState::Authenticating => "authenticating",
        IkeState::HalfOpen => "half_open",
        IkeState::Established => "established",
        IkeState::Deleting => "deleting",
        IkeState::Dead => "dead",
    }
}

impl Published {
    /// Takes the handles from `m`.
    pub fn new(m: &Arc<Metrics>) -> Published {
        let c = |f: Field, h: Counter| (f, h);
        let counters = vec![
            c(|x| x.datagrams_in, m.counter(&IKE_MESSAGES, ["rx"])),
            c(|x| x.datagrams_out, m.counter(&IKE_MESSAGES, ["tx"])),
            c(|x| x.runts, m.counter(&IKE_DROPPED_DATAGRAMS, ["runt"])),
            c(|x| x.esp_on_ike_socket, m.counter(&IKE_DROPPED_DATAGRAMS, ["esp_on_ike_socket"])),
            c(|x| x.send_errors, m.counter(&IKE_DROPPED_DATAGRAMS, ["send_error"])),
            c(|x| x.keepalives_in, m.counter(&IKE_NAT_KEEPALIVES, [])),
            c(|x| x.ike_up, m.counter(&IKE_SA_EVENTS, ["established"])),
            c(|x| x.ike_down, m.counter(&IKE_SA_EVENTS, ["down"])),
            c(|x| x.ike_dead, m.counter(&IKE_SA_EVENTS, ["peer_dead"])),
            c(|x| x.ike_failed, m.counter(&IKE_SA_EVENTS, ["failed"])),
            c(|x| x.ike_rekeys, m.counter(&IKE_SA_EVENTS, ["rekeyed"])),
            c(|x| x.child_installed, m.counter(&IKE_CHILD_SA_EVENTS, ["installed"])),
            c(|x| x.child_rekeys, m.counter(&IKE_CHILD_SA_EVENTS, ["rekeyed"])),
            c(|x| x.child_deleted, m.counter(&IKE_CHILD_SA_EVENTS, ["deleted"])),
            c(|x| x.child_failed, m.counter(&IKE_CHILD_SA_EVENTS, ["failed"])),
            c(|x| x.usage_rekeys, m.counter(&IKE_CHILD_SA_EVENTS, ["usage_rekey"])),
            c(|x| x.usage_deletes, m.counter(&IKE_CHILD_SA_EVENTS, ["usage_delete"])),
            c(|x| x.acquires, m.counter(&IKE_ACQUIRES, [])),
            c(|x| x.control_requests, m.counter(&IKE_CONTROL_REQUESTS, [])),
            c(|x| x.reloads, m.counter(&IKE_CONFIG_RELOADS, ["applied"])),
            c(|x| x.reload_errors, m.counter(&IKE_CONFIG_RELOADS, ["refused"])),
        ];
        let ike_states = [
            IkeState::Connecting,
            IkeState::Authenticating,
            IkeState::HalfOpen,
            IkeState::Established,
            IkeState::Deleting,
        ]
        .into_iter()
        .map(|s| (s, m.gauge(&IKE_SAS, [state_label(s)])))
        .collect();
        let exchanges = EXCHANGES
            .map(|e| ["initiator", "responder"].map(|role| m.counter(&IKE_EXCHANGES, [exchange_label(e), role])));
        Published {
            counters,
            ike_states,
            children: m.gauge(&IKE_CHILD_SAS, ["installed"]),
            last: Counters::default(),
            exchanges,
            retransmits: EXCHANGES.map(|e| m.counter(&IKE_RETRANSMITS, [exchange_label(e)])),
            exchange_seconds: EXCHANGES.map(|e| m.latency(&IKE_EXCHANGE_SECONDS, [exchange_label(e)])),
            last_completed: [[0; 2]; 4],
            last_retransmits: [0; 4],
            fragmentation: vec![
                (|f| f.messages_sent, m.counter(&IKE_FRAGMENTATION, ["messages_sent"])),
                (|f| f.fragments_sent, m.counter(&IKE_FRAGMENTATION, ["fragments_sent"])),
                (|f| f.fragments_received, m.counter(&IKE_FRAGMENTATION, ["fragments_received"])),
                (|f| f.messages_reassembled, m.counter(&IKE_FRAGMENTATION, ["messages_reassembled"])),
            ],
            last_fragmentation: FragmentCounts::default(),
            ike_failures: IKE_FAILURE_REASONS.map(|r| m.counter(&IKE_FAILURES, [r])),
            ignored: Ignored::ALL.map(|r| m.counter(&IKE_DROPPED_DATAGRAMS, [r.label()])),
            last_ignored: [0; Ignored::ALL.len()],
            child_failures: HashMap::new(),
            metrics: Arc::clone(m),
        }
    }

    /// Counts an IKE SA that went down as a failed negotiation in
    /// `rampart_ike_failures_total{reason}` when its reason is one (authentication failed, not
    /// authenticated in time, refused with an error notify), and says whether it was.
    pub fn ike_down(&self, reason: &DownReason) -> bool {
        let Some(i) = ike_failure(reason) else { return false };
        self.ike_failures[i].inc();
        true
    }

    /// Counts a CHILD_SA refused with an error notify in `rampart_ike_failures_total{reason}`,
    /// the notify's name in lower case as the reason (`no_proposal_chosen`, `ts_unacceptable`).
    pub fn child_failed(&mut self, notify: NotifyType) {
        let metrics = &self.metrics;
        self.child_failures
            .entry(notify)
            .or_insert_with(|| metrics.counter(&IKE_FAILURES, [&notify.name().to_ascii_lowercase()]))
            .inc();
    }

    /// Adds the counters' gains since the last call (the daemon's, the exchange log's, the
    /// endpoint's drops by [`Ignored::ALL`] index) and the exchanges' round-trip times; sets the
    /// gauges.
    pub fn publish(
        &mut self,
        now: &Counters,
        log: &mut ExchangeLog,
        ignored: &[u64; Ignored::ALL.len()],
        states: &[(IkeState, usize)],
        children: usize,
    ) {
        for (get, h) in &self.counters {
            h.add(get(now).saturating_sub(get(&self.last)));
        }
        for (i, h) in self.ignored.iter().enumerate() {
            h.add(ignored[i].saturating_sub(self.last_ignored[i]));
        }
        self.last_ignored = *ignored;
        self.last = now.clone();
        for (i, roles) in self.exchanges.iter().enumerate() {
            for (r, h) in roles.iter().enumerate() {
                h.add(log.completed[i][r].saturating_sub(self.last_completed[i][r]));
            }
            self.retransmits[i].add(log.retransmits[i].saturating_sub(self.last_retransmits[i]));
        }
        self.last_completed = log.completed;
        self.last_retransmits = log.retransmits;
        for (get, h) in &self.fragmentation {
            h.add(get(&log.fragments).saturating_sub(get(&self.last_fragmentation)));
        }
        self.last_fragmentation = log.fragments;
        for (exchange, rtt) in log.take_rtts() {
            if let Some(i) = EXCHANGES.iter().position(|e| *e == exchange) {
                self.exchange_seconds[i].record(rtt);
            }
        }
        for (s, g) in &self.ike_states {
            let n = states.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n);
            g.set(n as i64);
        }
        self.children.set(children as i64);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use rampart_ike::message::ExchangeType;

    #[test]
    fn exchanges_retransmits_round_trips_and_failures_reach_the_registry() {
        let m = Arc::new(Metrics::new());
        let mut p = Published::new(&m);
        let mut log = ExchangeLog::default();
        log.answered(ExchangeType::IkeSaInit, Duration::from_millis(2));
        log.answered(ExchangeType::IkeAuth, Duration::from_millis(4));
        log.responded(ExchangeType::CreateChildSa);
        log.retransmitted(ExchangeType::IkeAuth);
        log.fragments.messages_sent = 1;
        log.fragments.fragments_sent = 4;
        let mut drops = [0u64; Ignored::ALL.len()];
        drops[0] = 3;
        p.publish(&Counters::default(), &mut log, &drops, &[], 0);
        // Published again: only the gains are added, the round trips were taken once.
        log.responded(ExchangeType::CreateChildSa);
        drops[0] = 4;
        drops[Ignored::ALL.iter().position(|r| *r == Ignored::RateLimited).unwrap()] = 2;
        p.publish(&Counters::default(), &mut log, &drops, &[], 0);
        p.ike_down(&DownReason::AuthenticationFailed);
        p.ike_down(&DownReason::Rekeyed);
        p.ike_down(&DownReason::DeletedByPeer);
        p.child_failed(NotifyType::TS_UNACCEPTABLE);

        let flat = m.snapshot().flat();
        let get = |k: &str| flat.get(k).copied().unwrap_or_else(|| panic!("{k} missing in {flat:#?}"));
        assert_eq!(get("rampart_ike_exchanges_total{exchange=\"ike_sa_init\",role=\"initiator\"}"), 1.0);
        assert_eq!(get("rampart_ike_exchanges_total{exchange=\"ike_auth\",role=\"initiator\"}"), 1.0);
        assert_eq!(get("rampart_ike_exchanges_total{exchange=\"create_child_sa\",role=\"responder\"}"), 2.0);
        assert_eq!(get("rampart_ike_exchanges_total{exchange=\"informational\",role=\"responder\"}"), 0.0);
        assert_eq!(get("rampart_ike_retransmits_total{exchange=\"ike_auth\"}"), 1.0);
        assert_eq!(get("rampart_ike_fragmentation_total{what=\"fragments_sent\"}"), 4.0);
        assert_eq!(get("rampart_ike_fragmentation_total{what=\"messages_reassembled\"}"), 0.0);
        assert_eq!(get("rampart_ike_exchange_seconds_count{exchange=\"ike_auth\"}"), 1.0);
        assert_eq!(get("rampart_ike_exchange_seconds_count{exchange=\"create_child_sa\"}"), 0.0);
        let median = get("rampart_ike_exchange_seconds{exchange=\"ike_auth\",quantile=\"0.5\"}");
        assert!((median - 0.004).abs() < 0.0001, "{median}");
        assert_eq!(get("rampart_ike_failures_total{reason=\"authentication_failed\"}"), 1.0);
        assert_eq!(get("rampart_ike_dropped_datagrams_total{reason=\"unparseable\"}"), 4.0);
        assert_eq!(get("rampart_ike_dropped_datagrams_total{reason=\"rate_limited\"}"), 2.0);
        assert_eq!(get("rampart_ike_dropped_datagrams_total{reason=\"bad_icv\"}"), 0.0);
        assert_eq!(get("rampart_ike_failures_total{reason=\"ts_unacceptable\"}"), 1.0);
        let failures: f64 =
            flat.iter().filter(|(k, _)| k.starts_with("rampart_ike_failures_total")).map(|(_, v)| v).sum();
        assert_eq!(failures, 2.0, "a rekey or a peer's delete is not a failure");
    }
}
