//! Per-worker counters: declared once here (name and meaning), kept by each worker in its own
//! memory as plain integers, and published once per burst with relaxed stores into a
//! cache-line-aligned block that only the stats reader loads. No shared write on the hot path,
//! no atomic read-modify-write, no lock.
//!
//! Drop counters are one per [`DropReason`], under the reason's own name, so that the same
//! name shows up in the stats output, the JSON file and (later) the metrics endpoint.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use rampart_esp::DropReason;

macro_rules! counters {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal; )+) => {
        /// A worker counter (drop reasons are counted separately, see [`DropReason`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Counter {
            $( $(#[$doc])* $variant, )+
        }

        impl Counter {
            /// Every counter, in storage order.
            pub const ALL: &'static [Counter] = &[ $( Counter::$variant, )+ ];
            /// Number of counters.
            pub const COUNT: usize = Self::ALL.len();

            /// The counter's name in every output.
            pub const fn name(self) -> &'static str {
                match self { $( Counter::$variant => $name, )+ }
            }
        }
    };
}

counters! {
    /// Frames received on LAN sockets.
    LanRxPackets => "lan_rx_packets";
    /// Bytes of those frames.
    LanRxBytes => "lan_rx_bytes";
    /// Frames received on WAN sockets.
    WanRxPackets => "wan_rx_packets";
    /// Bytes of those frames.
    WanRxBytes => "wan_rx_bytes";
    /// Frames put on LAN tx rings (decrypted traffic, bypass, ICMP errors).
    LanTxPackets => "lan_tx_packets";
    /// Frames put on WAN tx rings (ESP, bypass).
    WanTxPackets => "wan_tx_packets";
    /// Packets encapsulated.
    EncryptedPackets => "encrypted_packets";
    /// Inner bytes of those packets.
    EncryptedBytes => "encrypted_bytes";
    /// Packets decapsulated and forwarded.
    DecryptedPackets => "decrypted_packets";
    /// Inner bytes of those packets.
    DecryptedBytes => "decrypted_bytes";
    /// Cleartext forwarded under a bypass policy.
    BypassPackets => "bypass_packets";
    /// Frames dropped because a tx ring was full.
    TxRingFull => "tx_ring_full";
    /// Frames that were not IPv4/IPv6.
    NotIp => "not_ip";
    /// WAN frames that were neither ESP nor keepalives (the XDP program passes those to the
    /// kernel, so this stays 0 unless the program and the data plane disagree).
    NotEsp => "not_esp";
    /// Outer IPv4 fragments received on the WAN.
    Fragments => "fragments_received";
    /// Datagrams reassembled from them.
    Reassembled => "reassembled_packets";
    /// ICMP errors sent (time exceeded, fragmentation needed, packet too big).
    IcmpSent => "icmp_sent";
    /// ICMP errors not sent because of the rate limit.
    IcmpRateLimited => "icmp_rate_limited";
    /// Acquire events pushed to the SA database.
    AcquiresSent => "acquires_sent";
    /// Acquires held back by the per-policy rate limit.
    AcquiresRateLimited => "acquires_rate_limited";
    /// Neighbour resolutions asked of the kernel.
    ResolveRequests => "resolve_requests";
    /// SA and policy table reloads picked up.
    TableReloads => "table_reloads";
    /// Sequence-number blocks taken from the shared per-SA counters.
    SeqBlocks => "seq_blocks";
    /// Kernel: packets dropped for other reasons (XDP_STATISTICS rx_dropped).
    KernelRxDropped => "kernel_rx_dropped";
    /// Kernel: rx ring full.
    KernelRxRingFull => "kernel_rx_ring_full";
    /// Kernel: fill ring empty.
    KernelFillRingEmpty => "kernel_fill_ring_empty";
    /// Kernel: invalid rx descriptors.
    KernelRxInvalid => "kernel_rx_invalid_descs";
    /// Kernel: invalid tx descriptors.
    KernelTxInvalid => "kernel_tx_invalid_descs";
    /// Tx kicks (sendto) made.
    TxKicks => "tx_kicks";
    /// Refills short of frames.
    FillStarved => "fill_starved";
    /// Bursts of 1 frame.
    Burst1 => "burst_1";
    /// Bursts of 2-3 frames.
    Burst2 => "burst_2_3";
    /// Bursts of 4-7 frames.
    Burst4 => "burst_4_7";
    /// Bursts of 8-15 frames.
    Burst8 => "burst_8_15";
    /// Bursts of 16-31 frames.
    Burst16 => "burst_16_31";
    /// Bursts of 32-63 frames.
    Burst32 => "burst_32_63";
    /// Bursts of 64 frames.
    Burst64 => "burst_64";
}

/// Counters plus one slot per drop reason.
pub const SLOTS: usize = Counter::COUNT + DropReason::COUNT;

/// The published copy of one worker's counters: written by that worker only (relaxed stores),
/// read by the stats thread.
#[repr(C, align(64))]
pub struct WorkerStats {
    values: [AtomicU64; SLOTS],
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats { values: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl std::fmt::Debug for WorkerStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerStats").finish_non_exhaustive()
    }
}

impl WorkerStats {
    /// A copy of the values.
    pub fn read(&self) -> Values {
        Values(std::array::from_fn(|i| self.values[i].load(Ordering::Relaxed)))
    }
}

/// A worker's counters in its own memory.
#[derive(Clone, Debug)]
pub struct Values(pub [u64; SLOTS]);

impl Default for Values {
    fn default() -> Self {
        Values([0; SLOTS])
    }
}

impl Values {
    /// Adds to a counter.
    #[inline]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.0[c as usize] += n;
    }

    /// Sets a counter (for values the kernel keeps).
    #[inline]
    pub fn set(&mut self, c: Counter, n: u64) {
        self.0[c as usize] = n;
    }

    /// Counts one drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.0[Counter::COUNT + r as usize] += 1;
    }

    /// Counts a burst of `n` frames in the histogram.
    #[inline]
    pub fn burst(&mut self, n: usize) {
        let c = match n {
            0 => return,
            1 => Counter::Burst1,
            2..=3 => Counter::Burst2,
            4..=7 => Counter::Burst4,
            8..=15 => Counter::Burst8,
            16..=31 => Counter::Burst16,
            32..=63 => Counter::Burst32,
            _ => Counter::Burst64,
        };
        self.add(c, 1);
    }

    /// A counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    /// A drop reason's count.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.0[Counter::COUNT + r as usize]
    }

    /// Publishes into the shared block: one relaxed store per slot.
    #[inline]
    pub fn publish(&self, to: &WorkerStats) {
        for (a, v) in to.values.iter().zip(self.0.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
    }

    /// Adds another worker's values.
    pub fn merge(&mut self, o: &Values) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }

    /// `(name, value)` of every counter, then of every drop reason (as `drop_<reason>`).
    pub fn named(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        Counter::ALL
            .iter()
            .map(|c| (c.name().to_owned(), self.get(*c)))
            .chain(DropReason::ALL.iter().map(|r| (format!("drop_{}", r.name()), self.drops(*r))))
    }

    fn json(&self) -> serde_json::Value {
        let counters: serde_json::Map<String, serde_json::Value> =
            Counter::ALL.iter().map(|c| (c.name().to_owned(), self.get(*c).into())).collect();
        let drops: serde_json::Map<String, serde_json::Value> =
            DropReason::ALL.iter().map(|r| (r.name().to_owned(), self.drops(*r).into())).collect();
        serde_json::json!({ "counters": counters, "drops": drops })
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

    /// The counters as JSON: per worker and in total, drops by reason name.
    pub fn to_json(&self) -> serde_json::Value {
        let workers: Vec<serde_json::Value> = self
            .workers
            .iter()
            .map(|(w, core, v)| {
                let mut j = v.json();
                j["worker"] = (*w).into();
                j["core"] = (*core).into();
                j
            })
            .collect();
        serde_json::json!({ "workers": workers, "total": self.total().json() })
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
