//! Per-worker counters: declared once, in `rampart_telemetry::dataplane` (name, meaning and the
//! metric family each one feeds), kept by each worker in its own memory as plain integers, and
//! published once per burst with relaxed stores into a cache-line-aligned block that only the
//! stats reader loads. No shared write on the hot path, no atomic read-modify-write, no lock.
//!
//! Drop counters are one per [`DropReason`], under the reason's own name, so that the same
//! name shows up in the stats output, the JSON file and the metrics endpoint
//! (`rampart_worker_drops_total{reason="..."}`). This module only names those types for the
//! data plane and formats a [`Snapshot`] for people and files; it must never declare a counter
//! of its own (that would give it a second name).

use std::fmt::Write as _;

use rampart_esp::DropReason;
use rampart_telemetry::dataplane::WorkerReading;
pub use rampart_telemetry::dataplane::{
    PublishedCounters as WorkerStats, SLOTS, WorkerCounter as Counter, WorkerCounters as Values,
};

/// A worker's counters as JSON: `{"counters": {short name: value}, "drops": {reason: value}}`.
fn json(v: &Values) -> serde_json::Value {
    let counters: serde_json::Map<String, serde_json::Value> =
        Counter::ALL.iter().map(|c| (c.short_name().to_owned(), v.get(*c).into())).collect();
    let drops: serde_json::Map<String, serde_json::Value> =
        DropReason::ALL.iter().map(|r| (r.name().to_owned(), v.drops(*r).into())).collect();
    serde_json::json!({ "counters": counters, "drops": drops })
}

/// Writes `snap` as JSON to `path` (through a temporary file beside it, renamed over it, so
/// that a reader never sees half a file). Errors are ignored: the counters are also served by
/// the metrics endpoint and printed at exit.
pub fn write_file(path: &std::path::Path, snap: &Snapshot) {
    let tmp = path.with_extension("tmp");
    let body = serde_json::to_vec_pretty(&snap.to_json()).unwrap_or_default();
    if std::fs::write(&tmp, body).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

/// Everything the stats thread reads at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// (worker index, core, values).
    pub workers: Vec<(usize, usize, Values)>,
}

impl Snapshot {
    /// The sum over workers.
    pub fn total(&self) -> Values {
        let mut t = Values::default();
        for (_, _, v) in &self.workers {
            t.merge(v);
        }
        t
    }

    /// The workers' counters as the metrics registry reads them at a scrape
    /// ([`rampart_telemetry::dataplane::DataplaneSource`]).
    pub fn readings(&self) -> Vec<WorkerReading> {
        self.workers.iter().map(|(w, core, v)| WorkerReading { worker: *w, core: *core, counters: v.clone() }).collect()
    }

    /// The counters as JSON: per worker and in total, drops by reason name.
    pub fn to_json(&self) -> serde_json::Value {
        let workers: Vec<serde_json::Value> = self
            .workers
            .iter()
            .map(|(w, core, v)| {
                let mut j = json(v);
                j["worker"] = (*w).into();
                j["core"] = (*core).into();
                j
            })
            .collect();
        serde_json::json!({ "workers": workers, "total": json(&self.total()) })
    }

    /// A human-readable table of the non-zero counters, one column per worker.
    pub fn to_text(&self) -> String {
        let total = self.total();
        let mut s = String::new();
        let _ = write!(s, "{:<28}", "counter");
        for (w, core, _) in &self.workers {
            let _ = write!(s, " {:>14}", format!("w{w}/cpu{core}"));
        }
        let _ = writeln!(s, " {:>14}", "total");
        for (i, (name, t)) in total.named().enumerate() {
            if t == 0 {
                continue;
            }
            let _ = write!(s, "{name:<28}");
            for (_, _, v) in &self.workers {
                let _ = write!(s, " {:>14}", v.0[i]);
            }
            let _ = writeln!(s, " {t:>14}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_publish_round_trips() {
        let mut seen = std::collections::HashSet::new();
        for (name, _) in Values::default().named() {
            assert!(seen.insert(name.clone()), "duplicate counter {name}");
        }
        let mut v = Values::default();
        v.add(Counter::LanRxPackets, 3);
        v.drop(DropReason::UnknownSpi);
        v.burst(1);
        v.burst(64);
        v.burst(5);
        let shared = WorkerStats::default();
        v.publish(&shared);
        let r = shared.read();
        assert_eq!(r.get(Counter::LanRxPackets), 3);
        assert_eq!(r.drops(DropReason::UnknownSpi), 1);
        assert_eq!((r.get(Counter::Burst1), r.get(Counter::Burst4), r.get(Counter::Burst64)), (1, 1, 1));
        let snap = Snapshot { workers: vec![(0, 0, r.clone()), (1, 1, r)] };
        let j = snap.to_json();
        assert_eq!(j["total"]["drops"]["unknown_spi"], 2);
        assert_eq!(j["workers"][1]["counters"]["lan_rx_packets"], 3);
        assert!(snap.to_text().contains("drop_unknown_spi"));
    }
}
