//! The sink: an AF_XDP socket on the far host's veth, fed by Rampart's LAN steering program
//! (`rampart_nic::Role::Lan` with the sink's own addresses as the "protected" prefixes: every
//! IP packet to the sink goes to the socket, ARP and ND stay with the kernel), counting what the
//! generator's run delivered: packets, bytes, losses (from sequence numbers), duplicates,
//! reordering, checksum failures, and one-way latency (send timestamp against CLOCK_MONOTONIC
//! on the same machine) into an HDR histogram.
//!
//! It runs until told to stop (a line or end of file on stdin, SIGINT/SIGTERM, or its time
//! limit) and then prints one JSON report. It must never transmit anything.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hdrhistogram::Histogram;
use rampart_nic::{
    AttachMode, AttachOptions, Desc, IpPrefix, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig,
};

use super::now_ns;
use super::packet::{NotOurs, parse};

/// Where and what to receive.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Interface (in the current namespace).
    pub iface: String,
    /// The sink's addresses (host prefixes): packets to them go to the socket.
    pub addresses: Vec<IpAddr>,
    /// The run to count; other runs' packets are counted apart.
    pub run: u32,
    /// Generic XDP instead of native.
    pub generic: bool,
    /// Hard time limit in seconds.
    pub max_seconds: f64,
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Smallest.
    pub min: u64,
}

impl Latency {
    /// The summary of a histogram.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            min: h.min(),
        }
    }
}

/// What the sink counted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SinkReport {
    /// Distinct sequence numbers of the run received.
    pub received: u64,
    /// IP bytes of those.
    pub ip_bytes: u64,
    /// Packets whose sequence number had been received already.
    pub duplicates: u64,
    /// Packets arriving after one with a higher sequence number.
    pub reordered: u64,
    /// Packets of the run whose UDP checksum failed (corrupted on the way).
    pub bad_checksum: u64,
    /// Packets of other runs (stragglers of an earlier trial).
    pub other_run: u64,
    /// Frames that were not the benchmark's UDP at all.
    pub foreign: u64,
    /// Highest sequence number received plus one (0 if none).
    pub seq_end: u64,
    /// CLOCK_MONOTONIC of the first and last packet of the run.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// One-way latency.
    pub latency: Latency,
    /// Kernel: packets dropped because the sink's rx ring was full (the sink was too slow).
    pub rx_ring_full: u64,
    /// Kernel: packets dropped for want of fill-ring frames (the sink was too slow).
    pub fill_empty: u64,
    /// Kernel: other drops at the socket.
    pub rx_dropped: u64,
}

impl SinkReport {
    /// As one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let l = &self.latency;
        serde_json::json!({
            "received": self.received, "ip_bytes": self.ip_bytes, "duplicates": self.duplicates,
            "reordered": self.reordered, "bad_checksum": self.bad_checksum, "other_run": self.other_run,
            "foreign": self.foreign, "seq_end": self.seq_end, "first_ns": self.first_ns, "last_ns": self.last_ns,
            "latency": { "count": l.count, "p50": l.p50, "p90": l.p90, "p99": l.p99, "p999": l.p999,
                         "max": l.max, "min": l.min },
            "rx_ring_full": self.rx_ring_full, "fill_empty": self.fill_empty, "rx_dropped": self.rx_dropped,
        })
    }

    /// From [`SinkReport::to_json`]'s output.
    pub fn from_json(v: &serde_json::Value) -> Option<SinkReport> {
        let l = &v["latency"];
        Some(SinkReport {
            received: v["received"].as_u64()?,
            ip_bytes: v["ip_bytes"].as_u64()?,
            duplicates: v["duplicates"].as_u64()?,
            reordered: v["reordered"].as_u64()?,
            bad_checksum: v["bad_checksum"].as_u64()?,
            other_run: v["other_run"].as_u64()?,
            foreign: v["foreign"].as_u64()?,
            seq_end: v["seq_end"].as_u64()?,
            first_ns: v["first_ns"].as_u64()?,
            last_ns: v["last_ns"].as_u64()?,
            latency: Latency {
                count: l["count"].as_u64()?,
                p50: l["p50"].as_u64()?,
                p90: l["p90"].as_u64()?,
                p99: l["p99"].as_u64()?,
                p999: l["p999"].as_u64()?,
                max: l["max"].as_u64()?,
                min: l["min"].as_u64()?,
            },
            rx_ring_full: v["rx_ring_full"].as_u64()?,
            fill_empty: v["fill_empty"].as_u64()?,
            rx_dropped: v["rx_dropped"].as_u64()?,
        })
    }
}

/// Sequence bookkeeping of one run: a bitmap of what arrived, the highest so far.
#[derive(Debug, Default)]
pub struct SeqTracker {
    seen: Vec<u64>,
    /// Highest sequence number plus one.
    pub end: u64,
    /// Distinct packets.
    pub distinct: u64,
    /// Repeats.
    pub duplicates: u64,
    /// Late arrivals (a higher one came first).
    pub reordered: u64,
}

impl SeqTracker {
    /// Records `seq`; returns false for a duplicate.
    pub fn note(&mut self, seq: u32) -> bool {
        let s = u64::from(seq);
        let word = (s / 64) as usize;
        if word >= self.seen.len() {
            // Grows in big steps: a resize in the hot loop happens a handful of times per run.
            self.seen.resize((word + 1).max(self.seen.len() * 2).max(1 << 14), 0);
        }
        let bit = 1u64 << (s % 64);
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return false;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        if s + 1 < self.end {
            self.reordered += 1;
        } else {
            self.end = s + 1;
        }
        true
    }
}

const FRAMES: u32 = 16384;
const RING: u32 = 4096;
const BURST: usize = 64;

/// Attaches, prints `ready`, counts until `stop` is set or the time limit passes.
pub fn run(cfg: &SinkConfig, stop: &Arc<AtomicBool>, ready: impl FnOnce()) -> Result<SinkReport, String> {
    let ifindex = rampart_nic::ifindex(&cfg.iface).map_err(|e| format!("interface {}: {e}", cfg.iface))?;
    let mut prog = SteeringProgram::load(Role::Lan, LoadOptions { max_queues: 1 }).map_err(|e| e.to_string())?;
    let mode = if cfg.generic { AttachMode::Generic } else { AttachMode::Native };
    prog.attach(ifindex, AttachOptions { mode, force: false }).map_err(|e| format!("XDP on {}: {e}", cfg.iface))?;
    for a in &cfg.addresses {
        let len = if a.is_ipv4() { 32 } else { 128 };
        let p = IpPrefix::new(*a, len).map_err(|e| e.to_string())?;
        prog.add_protected_prefix(p).map_err(|e| e.to_string())?;
    }
    let mut umem =
        Umem::new(UmemConfig { frame_size: 2048, frame_count: FRAMES, headroom: 0 }).map_err(|e| e.to_string())?;
    let xc = XskConfig { rx_size: RING, tx_size: 64, fill_size: RING, comp_size: 64, ..Default::default() };
    let mut sock = super::bind_retrying(&umem, ifindex, &xc).map_err(|e| format!("AF_XDP on {}: {e}", cfg.iface))?;
    sock.refill(&mut umem, RING);
    prog.register_socket(0, &sock).map_err(|e| e.to_string())?;
    ready();

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).map_err(|e| e.to_string())?;
    let mut seqs = SeqTracker::default();
    let mut r = SinkReport::default();
    let mut descs = [Desc::default(); BURST];
    let deadline = now_ns() + (cfg.max_seconds * 1e9) as u64;
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let n = sock.rx_burst(&mut descs);
        if n == 0 {
            sock.refill(&mut umem, RING);
            idle += 1;
            if idle > 64 {
                let _ = sock.poll_rx(5);
                if now_ns() > deadline {
                    break;
                }
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        idle = 0;
        let now = now_ns();
        for d in &descs[..n] {
            let Ok(frame) = umem.frame(d) else {
                r.foreign += 1;
                continue;
            };
            match parse(frame) {
                Ok(p) if p.run == cfg.run => {
                    if !p.checksum_ok {
                        r.bad_checksum += 1;
                        continue;
                    }
                    if !seqs.note(p.seq) {
                        continue;
                    }
                    r.ip_bytes += p.ip_len as u64;
                    if r.first_ns == 0 {
                        r.first_ns = now;
                    }
                    r.last_ns = now;
                    let _ = hist.record(now.saturating_sub(p.ts_ns).max(1));
                }
                Ok(_) => r.other_run += 1,
                Err(NotOurs::Truncated | NotOurs::NotIp | NotOurs::NotUdp | NotOurs::OtherPort) => r.foreign += 1,
            }
        }
        umem.free_descs(&descs[..n]);
        sock.refill(&mut umem, n as u32);
    }
    r.received = seqs.distinct;
    r.duplicates = seqs.duplicates;
    r.reordered = seqs.reordered;
    r.seq_end = seqs.end;
    r.latency = Latency::of(&hist);
    if let Ok(s) = sock.statistics() {
        r.rx_ring_full = s.rx_ring_full;
        r.fill_empty = s.rx_fill_ring_empty_descs;
        r.rx_dropped = s.rx_dropped;
    }
    drop(sock);
    prog.detach();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_tracking_counts_loss_duplicates_and_reordering() {
        let mut t = SeqTracker::default();
        for s in [0u32, 1, 2, 5, 3, 3, 4, 9, 1_000_000, 6] {
            t.note(s);
        }
        // Distinct: 0 1 2 5 3 4 9 1000000 6 = 9; duplicate: the second 3.
        assert_eq!(t.distinct, 9);
        assert_eq!(t.duplicates, 1);
        // Late: 3 (after 5), 4 (after 5), 6 (after 1000000).
        assert_eq!(t.reordered, 3);
        assert_eq!(t.end, 1_000_001);
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = SinkReport {
            received: 10,
            ip_bytes: 640,
            duplicates: 1,
            reordered: 2,
            bad_checksum: 3,
            other_run: 4,
            foreign: 5,
            seq_end: 11,
            first_ns: 100,
            last_ns: 200,
            latency: Latency { count: 10, p50: 1, p90: 2, p99: 3, p999: 4, max: 5, min: 1 },
            rx_ring_full: 6,
            fill_empty: 7,
            rx_dropped: 8,
        };
        assert_eq!(SinkReport::from_json(&r.to_json()), Some(r));
    }

    #[test]
    fn latency_percentiles_of_a_known_distribution() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let l = Latency::of(&h);
        // 3 significant digits: within 0.1 %.
        let near = |a: u64, b: u64| (a as f64 - b as f64).abs() <= b as f64 * 0.001 + 1.0;
        assert!(near(l.p50, 500_000), "{l:?}");
        assert!(near(l.p90, 900_000), "{l:?}");
        assert!(near(l.p99, 990_000), "{l:?}");
        assert!(near(l.p999, 999_000), "{l:?}");
        assert!(near(l.max, 1_000_000), "{l:?}");
        assert_eq!(l.count, 1000);
    }
}
