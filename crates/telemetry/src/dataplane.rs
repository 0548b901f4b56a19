//! The data plane's side of the metrics: per-worker counters kept as plain integers in the
//! worker's own memory ([`WorkerCounters`]), published once per burst with relaxed stores into
//! a cache-line-aligned block ([`PublishedCounters`]), and read into the registry only when a
//! scrape asks ([`DataplaneSource`]). The hot path never touches a Prometheus type, a lock or
//! an atomic read-modify-write.
//!
//! Each [`WorkerCounter`] says here which family and label value it feeds (see
//! [`crate::schema`]); drop counters are one per [`DropReason`], exported under the reason's
//! own `name()`. Nothing here may allocate on the worker's path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use rampart_sa::DropReason;

use crate::schema::{self, CounterDef, MetricDef};
use crate::scrape::{Scrape, Source};

/// Where a worker counter goes in the metrics.
#[derive(Clone, Copy, Debug)]
pub enum Export {
    /// A counter family labelled by worker only.
    Counter(&'static CounterDef<1>),
    /// A counter family labelled by worker and one more label with this value.
    Labelled(&'static CounterDef<2>, &'static str),
    /// A count of bursts of at most this many frames (bucket `i` of
    /// [`schema::WORKER_BURST_FRAMES`]).
    BurstBucket(usize),
}

impl PartialEq for Export {
    fn eq(&self, other: &Export) -> bool {
        match (self, other) {
            (Export::Counter(a), Export::Counter(b)) => std::ptr::eq(*a, *b),
            (Export::Labelled(a, x), Export::Labelled(b, y)) => std::ptr::eq(*a, *b) && x == y,
            (Export::BurstBucket(a), Export::BurstBucket(b)) => a == b,
            _ => false,
        }
    }
}

macro_rules! worker_counters {
    ($( $(#[$doc:meta])* $variant:ident => $short:literal, $export:expr; )+) => {
        /// A per-worker counter of the data plane (drops are counted by [`DropReason`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum WorkerCounter {
            $( $(#[$doc])* $variant, )+
        }

        impl WorkerCounter {
            /// Every counter, in storage order.
            pub const ALL: &'static [WorkerCounter] = &[ $( WorkerCounter::$variant, )+ ];
            /// Number of counters.
            pub const COUNT: usize = Self::ALL.len();

            /// Short name of the storage slot (the data plane's JSON stats file used these).
            pub const fn short_name(self) -> &'static str {
                match self { $( WorkerCounter::$variant => $short, )+ }
            }

            /// The family and label value this counter is exported under.
            pub const fn export(self) -> Export {
                match self { $( WorkerCounter::$variant => $export, )+ }
            }
        }
    };
}

use Export::{BurstBucket, Counter as Plain, Labelled};
use schema::{
    WORKER_ACQUIRES, WORKER_BYPASS_PACKETS, WORKER_DROPS, WORKER_ESP_BYTES, WORKER_ESP_PACKETS, WORKER_FILL_STARVED,
    WORKER_FRAGMENTS, WORKER_ICMP_ERRORS, WORKER_NEIGHBOUR_REQUESTS, WORKER_RING_EVENTS, WORKER_RX_BYTES,
    WORKER_RX_PACKETS, WORKER_SEQ_BLOCKS, WORKER_TABLE_RELOADS, WORKER_TO_KERNEL_PACKETS, WORKER_TX_KICKS,
    WORKER_TX_PACKETS,
};

worker_counters! {
    /// Frames received on LAN sockets.
    LanRxPackets => "lan_rx_packets", Labelled(&WORKER_RX_PACKETS, "lan");
    /// Bytes of those frames.
    LanRxBytes => "lan_rx_bytes", Labelled(&WORKER_RX_BYTES, "lan");
    /// Frames received on WAN sockets.
    WanRxPackets => "wan_rx_packets", Labelled(&WORKER_RX_PACKETS, "wan");
    /// Bytes of those frames.
    WanRxBytes => "wan_rx_bytes", Labelled(&WORKER_RX_BYTES, "wan");
    /// Frames put on LAN tx rings (decrypted traffic, bypass, ICMP errors).
    LanTxPackets => "lan_tx_packets", Labelled(&WORKER_TX_PACKETS, "lan");
    /// Frames put on WAN tx rings (ESP, bypass).
    WanTxPackets => "wan_tx_packets", Labelled(&WORKER_TX_PACKETS, "wan");
    /// Packets encapsulated.
    EncryptedPackets => "encrypted_packets", Labelled(&WORKER_ESP_PACKETS, "outbound");
    /// Inner bytes of those packets.
    EncryptedBytes => "encrypted_bytes", Labelled(&WORKER_ESP_BYTES, "outbound");
    /// Packets decapsulated and forwarded.
    DecryptedPackets => "decrypted_packets", Labelled(&WORKER_ESP_PACKETS, "inbound");
    /// Inner bytes of those packets.
    DecryptedBytes => "decrypted_bytes", Labelled(&WORKER_ESP_BYTES, "inbound");
    /// Cleartext forwarded under a bypass policy.
    BypassPackets => "bypass_packets", Plain(&WORKER_BYPASS_PACKETS);
    /// Reassembled WAN datagrams that were not ESP, handed to the kernel whole.
    ToKernel => "to_kernel_packets", Plain(&WORKER_TO_KERNEL_PACKETS);
    /// Frames dropped because a tx ring was full.
    TxRingFull => "tx_ring_full", Labelled(&WORKER_DROPS, "tx_ring_full");
    /// Frames that were not IPv4/IPv6.
    NotIp => "not_ip", Labelled(&WORKER_DROPS, "not_ip");
    /// WAN frames that were neither ESP nor keepalives, and could not be handed to the kernel.
    NotEsp => "not_esp", Labelled(&WORKER_DROPS, "not_esp");
    /// Outer IPv4 fragments received on the WAN.
    Fragments => "fragments_received", Labelled(&WORKER_FRAGMENTS, "received");
    /// Datagrams reassembled from them.
    Reassembled => "reassembled_packets", Labelled(&WORKER_FRAGMENTS, "reassembled");
    /// ICMP errors sent.
    IcmpSent => "icmp_sent", Labelled(&WORKER_ICMP_ERRORS, "sent");
    /// ICMP errors held back by the rate limit.
    IcmpRateLimited => "icmp_rate_limited", Labelled(&WORKER_ICMP_ERRORS, "rate_limited");
    /// Acquire events pushed to the SA database.
    AcquiresSent => "acquires_sent", Labelled(&WORKER_ACQUIRES, "sent");
    /// Acquires held back by the per-policy rate limit.
    AcquiresRateLimited => "acquires_rate_limited", Labelled(&WORKER_ACQUIRES, "rate_limited");
    /// Neighbour resolutions asked of the kernel.
    ResolveRequests => "resolve_requests", Plain(&WORKER_NEIGHBOUR_REQUESTS);
    /// SA and policy table reloads picked up.
    TableReloads => "table_reloads", Plain(&WORKER_TABLE_RELOADS);
    /// Sequence-number blocks taken from the shared per-SA counters.
    SeqBlocks => "seq_blocks", Plain(&WORKER_SEQ_BLOCKS);
    /// Kernel: packets dropped for other reasons (XDP_STATISTICS rx_dropped).
    KernelRxDropped => "kernel_rx_dropped", Labelled(&WORKER_RING_EVENTS, "rx_dropped");
    /// Kernel: rx ring full.
    KernelRxRingFull => "kernel_rx_ring_full", Labelled(&WORKER_RING_EVENTS, "rx_ring_full");
    /// Kernel: fill ring empty.
    KernelFillRingEmpty => "kernel_fill_ring_empty", Labelled(&WORKER_RING_EVENTS, "fill_ring_empty");
    /// Kernel: invalid rx descriptors.
    KernelRxInvalid => "kernel_rx_invalid_descs", Labelled(&WORKER_RING_EVENTS, "rx_invalid_descs");
    /// Kernel: invalid tx descriptors.
    KernelTxInvalid => "kernel_tx_invalid_descs", Labelled(&WORKER_RING_EVENTS, "tx_invalid_descs");
    /// Kernel: tx ring empty when the kernel looked for frames to send.
    KernelTxRingEmpty => "kernel_tx_ring_empty", Labelled(&WORKER_RING_EVENTS, "tx_ring_empty");
    /// Tx kicks (sendto) made.
    TxKicks => "tx_kicks", Plain(&WORKER_TX_KICKS);
    /// Refills short of frames.
    FillStarved => "fill_starved", Plain(&WORKER_FILL_STARVED);
    /// Bursts of 1 frame.
    Burst1 => "burst_1", BurstBucket(0);
    /// Bursts of 2-3 frames.
    Burst2 => "burst_2_3", BurstBucket(1);
    /// Bursts of 4-7 frames.
    Burst4 => "burst_4_7", BurstBucket(2);
    /// Bursts of 8-15 frames.
    Burst8 => "burst_8_15", BurstBucket(3);
    /// Bursts of 16-31 frames.
    Burst16 => "burst_16_31", BurstBucket(4);
    /// Bursts of 32-63 frames.
    Burst32 => "burst_32_63", BurstBucket(5);
    /// Bursts of 64 frames.
    Burst64 => "burst_64", BurstBucket(6);
}

/// Counters plus one slot per drop reason.
pub const SLOTS: usize = WorkerCounter::COUNT + DropReason::COUNT;

/// One worker's counters in its own memory: plain integers, no sharing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerCounters(pub [u64; SLOTS]);

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters([0; SLOTS])
    }
}

impl WorkerCounters {
    /// Adds to a counter.
    #[inline]
    pub fn add(&mut self, c: WorkerCounter, n: u64) {
        self.0[c as usize] += n;
    }

    /// Sets a counter (for values the kernel keeps).
    #[inline]
    pub fn set(&mut self, c: WorkerCounter, n: u64) {
        self.0[c as usize] = n;
    }

    /// Counts one dropped packet.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.0[WorkerCounter::COUNT + r as usize] += 1;
    }

    /// Counts an rx burst of `n` frames in the burst-size histogram (0 is not a burst).
    #[inline]
    pub fn burst(&mut self, n: usize) {
        let c = match n {
            0 => return,
            1 => WorkerCounter::Burst1,
            2..=3 => WorkerCounter::Burst2,
            4..=7 => WorkerCounter::Burst4,
            8..=15 => WorkerCounter::Burst8,
            16..=31 => WorkerCounter::Burst16,
            32..=63 => WorkerCounter::Burst32,
            _ => WorkerCounter::Burst64,
        };
        self.add(c, 1);
    }

    /// A counter's value.
    pub fn get(&self, c: WorkerCounter) -> u64 {
        self.0[c as usize]
    }

    /// A drop reason's count.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.0[WorkerCounter::COUNT + r as usize]
    }

    /// Publishes into the shared block: one relaxed store per slot, no read-modify-write.
    #[inline]
    pub fn publish(&self, to: &PublishedCounters) {
        for (a, v) in to.values.iter().zip(self.0.iter()) {
            a.store(*v, Ordering::Relaxed);
        }
    }

    /// Adds another worker's values.
    pub fn merge(&mut self, o: &WorkerCounters) {
        for (a, b) in self.0.iter_mut().zip(o.0.iter()) {
            *a += b;
        }
    }

    /// `(short name, value)` of every counter, then `drop_<reason>` of every drop reason: the
    /// names of the data plane's JSON stats file, which [`WorkerCounters::from_named`] reads.
    pub fn named(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        WorkerCounter::ALL
            .iter()
            .map(|c| (c.short_name().to_owned(), self.get(*c)))
            .chain(DropReason::ALL.iter().map(|r| (format!("drop_{}", r.name()), self.drops(*r))))
    }

    /// Builds counters from `(short name, value)` pairs, as the data plane's stats output
    /// names them (`lan_rx_packets`, ..., `drop_<reason>`). Returns the names it did not know.
    pub fn from_named<S: AsRef<str>>(pairs: impl IntoIterator<Item = (S, u64)>) -> (WorkerCounters, Vec<String>) {
        let mut v = WorkerCounters::default();
        let mut unknown = Vec::new();
        for (name, value) in pairs {
            let name = name.as_ref();
            if let Some(c) = WorkerCounter::ALL.iter().find(|c| c.short_name() == name) {
                v.set(*c, value);
            } else if let Some(r) =
                name.strip_prefix("drop_").and_then(|n| DropReason::ALL.iter().find(|r| r.name() == n))
            {
                v.0[WorkerCounter::COUNT + *r as usize] = value;
            } else {
                unknown.push(name.to_owned());
            }
        }
        (v, unknown)
    }

    /// The frames of every rx burst added up: each received frame arrives in exactly one burst.
    pub fn burst_frames_sum(&self) -> u64 {
        self.get(WorkerCounter::LanRxPackets) + self.get(WorkerCounter::WanRxPackets)
    }
}

/// The published copy of one worker's counters: written by that worker only (relaxed stores),
/// read at scrape time.
#[repr(C, align(64))]
pub struct PublishedCounters {
    values: [AtomicU64; SLOTS],
}

impl Default for PublishedCounters {
    fn default() -> Self {
        PublishedCounters { values: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl std::fmt::Debug for PublishedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedCounters").finish_non_exhaustive()
    }
}

impl PublishedCounters {
    /// A copy of the values.
    pub fn read(&self) -> WorkerCounters {
        WorkerCounters(std::array::from_fn(|i| self.values[i].load(Ordering::Relaxed)))
    }
}

/// One worker's counters at scrape time.
#[derive(Clone, Debug)]
pub struct WorkerReading {
    /// Worker index.
    pub worker: usize,
    /// The core it is pinned to.
    pub core: usize,
    /// Its counters.
    pub counters: WorkerCounters,
}

/// Reads the data plane's per-worker counters into a scrape: give it a function that returns
/// the workers' counters now (e.g. from `rampart_dataplane::Dataplane::snapshot`).
pub struct DataplaneSource<F> {
    read: F,
}

impl<F> std::fmt::Debug for DataplaneSource<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataplaneSource").finish_non_exhaustive()
    }
}

impl<F: Fn() -> Vec<WorkerReading> + Send + Sync> DataplaneSource<F> {
    /// A source calling `read` at each scrape.
    pub fn new(read: F) -> Self {
        DataplaneSource { read }
    }
}

/// Adds one worker's series to a scrape.
pub fn collect_worker(scrape: &mut Scrape<'_>, r: &WorkerReading) {
    let w = r.worker.to_string();
    scrape.gauge(&schema::WORKER_INFO, [&w, &r.core.to_string()], 1);
    let mut bursts = [0u64; 8];
    for c in WorkerCounter::ALL {
        let v = r.counters.get(*c);
        match c.export() {
            Export::Counter(f) => scrape.counter(f, [&w], v),
            Export::Labelled(f, l) => scrape.counter(f, [&w, l], v),
            Export::BurstBucket(i) => {
                if let Some(b) = bursts.get_mut(i) {
                    *b = v;
                }
            }
        }
    }
    scrape.histogram(&schema::WORKER_BURST_FRAMES, [&w], &bursts, r.counters.burst_frames_sum() as f64);
    for reason in DropReason::ALL {
        scrape.counter(&WORKER_DROPS, [&w, reason.name()], r.counters.drops(*reason));
    }
}

impl<F: Fn() -> Vec<WorkerReading> + Send + Sync> Source for DataplaneSource<F> {
    fn collect(&self, scrape: &mut Scrape<'_>) {
        for r in (self.read)() {
            collect_worker(scrape, &r);
        }
    }
}

/// One SA's usage, as the SA database's usage area holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaUsage {
    /// The SPI.
    pub spi: u32,
    /// Whether it is an outbound SA.
    pub outbound: bool,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Per-SA counters, exported only while switched on (100,000 SAs would otherwise make a
/// scrape of 200,000 series), and at most `max_sas` of them.
pub struct SaUsageSource<F> {
    read: F,
    enabled: Arc<AtomicBool>,
    max_sas: usize,
}

impl<F> std::fmt::Debug for SaUsageSource<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaUsageSource").field("enabled", &self.enabled).field("max_sas", &self.max_sas).finish()
    }
}

impl<F: Fn() -> Vec<SaUsage> + Send + Sync> SaUsageSource<F> {
    /// A source calling `read` at each scrape while `enabled` is set.
    pub fn new(read: F, enabled: Arc<AtomicBool>, max_sas: usize) -> Self {
        SaUsageSource { read, enabled, max_sas }
    }
}

impl<F: Fn() -> Vec<SaUsage> + Send + Sync> Source for SaUsageSource<F> {
    fn collect(&self, scrape: &mut Scrape<'_>) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        for u in (self.read)().into_iter().take(self.max_sas) {
            let spi = format!("{:#010x}", u.spi);
            let dir = if u.outbound { "outbound" } else { "inbound" };
            scrape.counter(&schema::SA_PACKETS, [&spi, dir], u.packets);
            scrape.counter(&schema::SA_BYTES, [&spi, dir], u.bytes);
        }
    }
}

/// The families a [`WorkerCounter`] feeds (for checks and documentation).
pub fn exported_families() -> Vec<&'static MetricDef> {
    let mut v: Vec<&'static MetricDef> = vec![schema::WORKER_INFO.def(), schema::WORKER_BURST_FRAMES.def()];
    for c in WorkerCounter::ALL {
        let d = match c.export() {
            Export::Counter(f) => f.def(),
            Export::Labelled(f, _) => f.def(),
            Export::BurstBucket(_) => continue,
        };
        if !v.iter().any(|x| std::ptr::eq(*x, d)) {
            v.push(d);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    #[test]
    fn local_drop_reasons_do_not_shadow_esp_reasons() {
        for c in WorkerCounter::ALL {
            if let Export::Labelled(f, l) = c.export()
                && std::ptr::eq(f, &WORKER_DROPS)
            {
                assert!(DropReason::ALL.iter().all(|r| r.name() != l), "{l} is also a DropReason");
            }
        }
    }

    #[test]
    fn every_series_of_a_worker_is_unique_and_bursts_make_a_histogram() {
        let mut v = WorkerCounters::default();
        v.add(WorkerCounter::LanRxPackets, 70);
        v.burst(64);
        v.burst(5);
        v.burst(1);
        v.drop(DropReason::UnknownSpi);
        v.add(WorkerCounter::TxRingFull, 2);
        let shared = PublishedCounters::default();
        v.publish(&shared);
        let r = shared.read();
        assert_eq!(r, v);
        let m = Metrics::new();
        m.add_source(Arc::new(DataplaneSource::new(move || {
            vec![
                WorkerReading { worker: 0, core: 2, counters: r.clone() },
                WorkerReading { worker: 1, core: 3, counters: WorkerCounters::default() },
            ]
        })));
        let snap = m.snapshot();
        for f in &snap.families {
            let mut seen = std::collections::HashSet::new();
            for s in &f.series {
                assert!(seen.insert(&s.labels), "{}: duplicate {:?}", f.def.name, s.labels);
            }
        }
        let flat = snap.flat();
        assert_eq!(flat["rampart_worker_rx_packets_total{worker=\"0\",side=\"lan\"}"], 70.0);
        assert_eq!(flat["rampart_worker_drops_total{worker=\"0\",reason=\"unknown_spi\"}"], 1.0);
        assert_eq!(flat["rampart_worker_drops_total{worker=\"0\",reason=\"tx_ring_full\"}"], 2.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"1\"}"], 1.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"7\"}"], 2.0);
        assert_eq!(flat["rampart_worker_burst_frames_bucket{worker=\"0\",le=\"64\"}"], 3.0);
        assert_eq!(flat["rampart_worker_burst_frames_sum{worker=\"0\"}"], 70.0);
        assert_eq!(flat["rampart_worker_info{worker=\"1\",core=\"3\"}"], 1.0);
        let table = snap.to_table(true);
        assert!(table.contains("rampart_worker_rx_packets_total{side=\"lan\"}"), "{table}");
    }

    #[test]
    fn named_pairs_round_trip() {
        let pairs: Vec<(String, u64)> = WorkerCounter::ALL
            .iter()
            .enumerate()
            .map(|(i, c)| (c.short_name().to_owned(), i as u64 + 1))
            .chain(DropReason::ALL.iter().map(|r| (format!("drop_{}", r.name()), 100 + *r as u64)))
            .chain(std::iter::once(("bogus".to_owned(), 1)))
            .collect();
        let (v, unknown) = WorkerCounters::from_named(pairs);
        assert_eq!(unknown, vec!["bogus".to_owned()]);
        assert_eq!(v.get(WorkerCounter::LanRxPackets), 1);
        assert_eq!(v.drops(DropReason::NoRoute), 100 + DropReason::NoRoute as u64);
        let (again, unknown) = WorkerCounters::from_named(v.named());
        assert!(unknown.is_empty());
        assert_eq!(again, v);
    }

    #[test]
    fn per_sa_series_only_when_enabled_and_capped() {
        let on = Arc::new(AtomicBool::new(false));
        let m = Metrics::new();
        m.add_source(Arc::new(SaUsageSource::new(
            || (0..5).map(|i| SaUsage { spi: 0x100 + i, outbound: i % 2 == 0, packets: 1, bytes: 100 }).collect(),
            on.clone(),
            3,
        )));
        assert!(m.snapshot().family("rampart_sa_packets_total").unwrap().series.is_empty());
        on.store(true, Ordering::Relaxed);
        let s = m.snapshot();
        assert_eq!(s.family("rampart_sa_packets_total").unwrap().series.len(), 3);
        assert_eq!(s.flat()["rampart_sa_bytes_total{spi=\"0x00000100\",direction=\"outbound\"}"], 100.0);
    }
}
