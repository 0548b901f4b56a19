//! The daemon's counters in the shared metrics registry (`rampart-telemetry`'s schema: the
//! `rampart_ike_*` families), so that `/metrics`, `rampart ctl stats` and bench reports show the
//! same numbers: [`Published::publish`] adds what each counter of [`Counters`] gained since the
//! last tick and sets the state gauges.
//!
//! Runs on the event loop, once per tick; never on a per-packet path, never with a key.

use rampart_telemetry::schema::{
    IKE_ACQUIRES, IKE_CHILD_SA_EVENTS, IKE_CHILD_SAS, IKE_CONFIG_RELOADS, IKE_CONTROL_REQUESTS, IKE_DROPPED_DATAGRAMS,
    IKE_MESSAGES, IKE_NAT_KEEPALIVES, IKE_SA_EVENTS, IKE_SAS,
};
use rampart_telemetry::{Counter, Gauge, Metrics};

use super::stats::Counters;
use crate::ike_sa::IkeState;

/// Reads one field of [`Counters`].
type Field = fn(&Counters) -> u64;

/// Registry handles, each tied to one field of [`Counters`].
pub struct Published {
    counters: Vec<(Field, Counter)>,
    ike_states: Vec<(IkeState, Gauge)>,
    children: Gauge,
    last: Counters,
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
    pub fn new(m: &Metrics) -> Published {
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
        Published { counters, ike_states, children: m.gauge(&IKE_CHILD_SAS, ["installed"]), last: Counters::default() }
    }

    /// Adds the counters' gains since the last call; sets the gauges.
    pub fn publish(&mut self, now: &Counters, states: &[(IkeState, usize)], children: usize) {
        for (get, h) in &self.counters {
            h.add(get(now).saturating_sub(get(&self.last)));
        }
        self.last = now.clone();
        for (s, g) in &self.ike_states {
            let n = states.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n);
            g.set(n as i64);
        }
        self.children.set(children as i64);
    }
}
