//! The one list of Rampart's metric families. Every metric is declared here once, with its name,
//! help text, kind and label names; the Prometheus endpoint, `rampart ctl stats`, the JSON dump
//! and the benchmark reports all take their names from these declarations and nothing else.
//!
//! A family's label *values* come from the code that records it: drop reasons from
//! [`rampart_sa::DropReason::ALL`], worker indices from the data plane, IKE states and
//! exchange names from the IKE daemon. This module must never hold a list of such values.
//!
//! Naming follows Prometheus practice: `rampart_` prefix, base units (seconds, bytes), counters
//! end in `_total`. The label count is part of a family's type (`CounterDef<2>` takes two label
//! values), so a wrong number of labels does not compile.

/// What kind of series a family holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A value that only goes up (reset only by a restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A Prometheus histogram with these upper bounds (the `+Inf` bucket is implied).
    Histogram {
        /// Upper bounds, ascending.
        buckets: &'static [f64],
    },
    /// Durations recorded in an HDR histogram and exported as a Prometheus summary with the
    /// quantiles of [`QUANTILES`] over a sliding window, plus a cumulative count and sum.
    Quantiles,
}

impl Kind {
    /// The type name in the Prometheus text format.
    pub const fn prometheus_type(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram { .. } => "histogram",
            Kind::Quantiles => "summary",
        }
    }
}

/// The quantiles every [`Kind::Quantiles`] family exports: p50, p90, p99, p99.9 and the maximum
/// (written as quantile 1).
pub const QUANTILES: [f64; 5] = [0.5, 0.9, 0.99, 0.999, 1.0];

/// One metric family: the declaration every output is generated from.
#[derive(Debug, PartialEq)]
pub struct MetricDef {
    /// Full Prometheus name, e.g. `rampart_worker_drops_total`.
    pub name: &'static str,
    /// One line for operators (the `# HELP` text).
    pub help: &'static str,
    /// Counter, gauge, histogram or quantiles.
    pub kind: Kind,
    /// Label names, in the order their values are given.
    pub labels: &'static [&'static str],
}

macro_rules! typed_def {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty<const N: usize> {
            def: MetricDef,
        }

        impl<const N: usize> $ty<N> {
            /// Wraps a declaration whose label list has `N` names (checked at compile time).
            pub const fn new(def: MetricDef) -> Self {
                assert!(def.labels.len() == N, "label count does not match the type");
                $ty { def }
            }

            /// The declaration.
            pub const fn def(&self) -> &MetricDef {
                &self.def
            }
        }
    };
}

typed_def!(
    /// A counter family with `N` labels.
    CounterDef
);
typed_def!(
    /// A gauge family with `N` labels.
    GaugeDef
);
typed_def!(
    /// A histogram family with `N` labels.
    HistogramDef
);
typed_def!(
    /// A latency (HDR quantiles) family with `N` labels.
    LatencyDef
);

macro_rules! count {
    () => { 0usize };
    ($head:tt $($tail:tt)*) => { 1usize + count!($($tail)*) };
}

/// Declares metric families: `NAME: kind[labels] = "prometheus_name", "help";` where kind is
/// `counter`, `gauge`, `histogram(BUCKETS)` or `latency`. Also builds [`ALL`].
macro_rules! metrics {
    ($( $ident:ident : $kind:ident $( ( $buckets:expr ) )? [ $($label:literal),* ] = $name:literal, $help:literal; )+) => {
        $(
            #[doc = concat!("`", $name, "`: ", $help)]
            pub static $ident: metrics!(@ty $kind [$($label)*]) = <metrics!(@ty $kind [$($label)*])>::new(MetricDef {
                name: $name,
                help: $help,
                kind: metrics!(@kind $kind $($buckets)?),
                labels: &[$($label),*],
            });
        )+

        /// Every declared family, in the order of this file.
        pub static ALL: &[&MetricDef] = &[ $( $ident.def(), )+ ];
    };
    (@ty counter [$($l:tt)*]) => { CounterDef<{ count!($($l)*) }> };
    (@ty gauge [$($l:tt)*]) => { GaugeDef<{ count!($($l)*) }> };
    (@ty histogram [$($l:tt)*]) => { HistogramDef<{ count!($($l)*) }> };
    (@ty latency [$($l:tt)*]) => { LatencyDef<{ count!($($l)*) }> };
    (@kind counter) => { Kind::Counter };
    (@kind gauge) => { Kind::Gauge };
    (@kind histogram $b:expr) => { Kind::Histogram { buckets: $b } };
    (@kind latency) => { Kind::Quantiles };
}

/// Upper bounds of the burst-size histogram: the data plane counts bursts in power-of-two
/// classes (1, 2-3, 4-7, ... 32-63, 64).
pub const BURST_BUCKETS: &[f64] = &[1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 64.0];

metrics! {
    // ---- Process -------------------------------------------------------------------------
    BUILD_INFO: gauge["version", "process"] =
        "rampart_build_info", "Always 1: the version and the role (run, dataplane, ike) of this process.";
    LOG_SUPPRESSED: counter["site"] =
        "rampart_log_suppressed_total", "Log events dropped by a rate limit, by call site.";

    // ---- Data plane: per worker ------------------------------------------------------------
    WORKER_INFO: gauge["worker", "core"] =
        "rampart_worker_info", "Always 1: the core each data-plane worker is pinned to.";
    WORKER_RX_PACKETS: counter["worker", "side"] =
        "rampart_worker_rx_packets_total", "Frames received on the worker's AF_XDP sockets, by side (lan, wan).";
    WORKER_RX_BYTES: counter["worker", "side"] =
        "rampart_worker_rx_bytes_total", "Bytes of the frames received, by side (lan, wan).";
    WORKER_TX_PACKETS: counter["worker", "side"] =
        "rampart_worker_tx_packets_total", "Frames put on the worker's tx rings, by side (lan, wan).";
    WORKER_ESP_PACKETS: counter["worker", "direction"] =
        "rampart_worker_esp_packets_total", "Packets encapsulated (outbound) or decapsulated and forwarded (inbound).";
    WORKER_ESP_BYTES: counter["worker", "direction"] =
        "rampart_worker_esp_bytes_total", "Inner bytes of the packets encapsulated (outbound) or decapsulated (inbound).";
    WORKER_BYPASS_PACKETS: counter["worker"] =
        "rampart_worker_bypass_packets_total", "Cleartext packets forwarded under a bypass policy.";
    XDP_PACKETS: counter["interface", "verdict"] =
        "rampart_xdp_packets_total", "Frames the XDP steering program of each interface (lan, wan) took to the data plane (to_xsk_*) or passed to the kernel (pass_*), by verdict.";
    WORKER_TO_KERNEL_PACKETS: counter["worker"] =
        "rampart_worker_to_kernel_packets_total", "Reassembled WAN datagrams that are not ESP (IKE, say), handed to the kernel whole.";
    WORKER_DROPS: counter["worker", "reason"] =
        "rampart_worker_drops_total", "Packets dropped or consumed without forwarding, by reason.";
    WORKER_ICMP_ERRORS: counter["worker", "outcome"] =
        "rampart_worker_icmp_errors_total", "ICMP errors (time exceeded, too big) sent or held back by the rate limit.";
    WORKER_ACQUIRES: counter["worker", "outcome"] =
        "rampart_worker_acquires_total", "Acquire events (traffic for a policy without SA) sent or held back.";
    WORKER_NEIGHBOUR_REQUESTS: counter["worker"] =
        "rampart_worker_neighbour_requests_total", "Next-hop resolutions asked of the kernel.";
    WORKER_TABLE_RELOADS: counter["worker"] =
        "rampart_worker_table_reloads_total", "SA and policy table generations picked up.";
    WORKER_SEQ_BLOCKS: counter["worker"] =
        "rampart_worker_seq_blocks_total", "Sequence-number blocks taken from the shared per-SA counters.";
    WORKER_TX_KICKS: counter["worker"] =
        "rampart_worker_tx_kicks_total", "Tx wake-ups (sendto) made on the AF_XDP sockets.";
    WORKER_FILL_STARVED: counter["worker"] =
        "rampart_worker_fill_starved_total", "Fill-ring refills that found too few free frames.";
    WORKER_FRAGMENTS: counter["worker", "outcome"] =
        "rampart_worker_fragments_total", "Outer IPv4 fragments received on the WAN (received) and datagrams reassembled from them (reassembled).";
    WORKER_RING_EVENTS: counter["worker", "event"] =
        "rampart_worker_ring_events_total", "AF_XDP ring statistics from the kernel (XDP_STATISTICS), summed over the worker's sockets.";
    WORKER_BURST_FRAMES: histogram(BURST_BUCKETS)["worker"] =
        "rampart_worker_burst_frames", "Frames per rx burst.";
    WORKER_BURST_SECONDS: latency["worker", "direction"] =
        "rampart_worker_burst_seconds", "Time to process one rx burst, from the rx ring to the tx ring.";

    // ---- Data plane: per SA, on demand ------------------------------------------------------
    SA_PACKETS: counter["spi", "direction"] =
        "rampart_sa_packets_total", "Packets protected (outbound) or accepted (inbound) by one SA (when per-SA metrics are on).";
    SA_BYTES: counter["spi", "direction"] =
        "rampart_sa_bytes_total", "Bytes protected or accepted by one SA (when per-SA metrics are on).";

    // ---- IKE daemon --------------------------------------------------------------------------
    IKE_SAS: gauge["state"] =
        "rampart_ike_sas", "IKE SAs by state.";
    IKE_CHILD_SAS: gauge["state"] =
        "rampart_ike_child_sas", "CHILD_SAs by state.";
    IKE_EXCHANGES: counter["exchange", "role"] =
        "rampart_ike_exchanges_total", "IKEv2 exchanges completed, by exchange type and our role (initiator, responder).";
    IKE_FAILURES: counter["reason"] =
        "rampart_ike_failures_total", "IKE and CHILD_SA negotiations that failed, by reason.";
    IKE_MESSAGES: counter["direction"] =
        "rampart_ike_messages_total", "IKE datagrams received (rx) and sent (tx), retransmissions included.";
    IKE_RETRANSMITS: counter["exchange"] =
        "rampart_ike_retransmits_total", "Requests sent again because no answer came.";
    IKE_FRAGMENTATION: counter["what"] =
        "rampart_ike_fragmentation_total", "IKE fragmentation (RFC 7383): messages sent in fragments and the fragments they took, fragments received that authenticated, messages reassembled from them.";
    IKE_SA_EVENTS: counter["event"] =
        "rampart_ike_sa_events_total", "IKE SAs established, down, down for a dead peer, failed to come up, rekeyed.";
    IKE_CHILD_SA_EVENTS: counter["event"] =
        "rampart_ike_child_sa_events_total", "CHILD_SAs installed, rekeyed, deleted, failed; rekeys and deletes forced by usage limits.";
    IKE_DROPPED_DATAGRAMS: counter["reason"] =
        "rampart_ike_dropped_datagrams_total", "Datagrams the IKE daemon dropped without an answer (each reason the core or the daemon has) or could not send, by reason.";
    IKE_NAT_KEEPALIVES: counter[] =
        "rampart_ike_nat_keepalives_received_total", "NAT keepalives received on port 4500.";
    IKE_ACQUIRES: counter[] =
        "rampart_ike_acquires_total", "Negotiations started by acquire events of trap policies.";
    IKE_CONTROL_REQUESTS: counter[] =
        "rampart_ike_control_requests_total", "Requests served on the control socket.";
    IKE_CONFIG_RELOADS: counter["result"] =
        "rampart_ike_config_reloads_total", "Configuration reloads applied or refused (the running configuration stays).";
    IKE_EXCHANGE_SECONDS: latency["exchange"] =
        "rampart_ike_exchange_seconds", "Time from our request to the answer that completed the exchange.";
    IKE_CRYPTO_JOB_SECONDS: latency["job"] =
        "rampart_ike_crypto_job_seconds", "Time of one expensive job (Diffie-Hellman, signature) on the worker pool.";
}

/// The declaration called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    ALL.iter().copied().find(|d| d.name == name)
}

/// Whether `s` is a valid Prometheus metric or label name.
pub fn is_valid_name(s: &str, allow_colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_colon && c == ':');
    match chars.next() {
        Some(c) if ok_first(c) => chars.all(|c| ok_first(c) || c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_follow_prometheus_rules() {
        let mut seen = std::collections::HashSet::new();
        for d in ALL {
            assert!(seen.insert(d.name), "{} declared twice", d.name);
            assert!(d.name.starts_with("rampart_"), "{}", d.name);
            assert!(is_valid_name(d.name, true), "{}", d.name);
            assert_eq!(d.kind == Kind::Counter, d.name.ends_with("_total"), "{}: only counters end in _total", d.name);
            assert!(!d.help.is_empty() && !d.help.contains('\n'), "{}", d.name);
            for l in d.labels {
                assert!(is_valid_name(l, false) && !l.starts_with("__"), "{}: label {l}", d.name);
                assert!(*l != "le" && *l != "quantile", "{}: label {l} is reserved", d.name);
            }
            if let Kind::Histogram { buckets } = d.kind {
                assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{}: buckets must ascend", d.name);
            }
        }
        assert_eq!(find("rampart_worker_drops_total"), Some(WORKER_DROPS.def()));
        assert_eq!(find("rampart_nothing"), None);
    }
}
