//! The generator: an AF_XDP socket on the host's veth (transmit only, no XDP program needed)
//! sending the [`packet`](super::packet) templates at a configured rate or flat out for a
//! duration, each packet stamped with its sequence number and CLOCK_MONOTONIC send time.
//!
//! Pacing: the number of packets due is `rate x elapsed`; they go out in bursts of at most
//! [`GenConfig::burst`]; when nothing is due the generator sleeps (it shares the two cores with
//! the gateways and the sink, so it must not spin). It must never send to an address the
//! orchestrator did not give it, and it runs only inside the namespace it was started in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rampart_nic::{Desc, Umem, UmemConfig, XskConfig};

use super::now_ns;
use super::packet::{Endpoints, Size, Template, template};

/// What to send.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Interface to send on (in the current namespace).
    pub iface: String,
    /// Addresses.
    pub endpoints: Endpoints,
    /// Packet sizes.
    pub size: Size,
    /// Packets per second; `None` for flat out.
    pub rate: Option<f64>,
    /// How long to send.
    pub seconds: f64,
    /// Run id written into every packet.
    pub run: u32,
    /// Largest burst per tx kick.
    pub burst: usize,
}

/// What was sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenReport {
    /// Packets handed to the kernel (sequence numbers 0..sent).
    pub sent: u64,
    /// IP bytes of those packets.
    pub ip_bytes: u64,
    /// Seconds from the first to the end of sending.
    pub seconds: f64,
    /// Times the tx ring or the UMEM was full (the kernel could not keep up with us).
    pub tx_full: u64,
    /// `sendto` kicks.
    pub kicks: u64,
    /// Frames not confirmed complete at the end (should be 0).
    pub incomplete: u64,
    /// Transmit descriptors the kernel found invalid (should be 0).
    pub tx_invalid: u64,
}

impl GenReport {
    /// As one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "sent": self.sent, "ip_bytes": self.ip_bytes, "seconds": self.seconds,
            "tx_full": self.tx_full, "kicks": self.kicks, "incomplete": self.incomplete,
            "tx_invalid": self.tx_invalid,
        })
    }

    /// From [`GenReport::to_json`]'s output.
    pub fn from_json(v: &serde_json::Value) -> Option<GenReport> {
        Some(GenReport {
            sent: v["sent"].as_u64()?,
            ip_bytes: v["ip_bytes"].as_u64()?,
            seconds: v["seconds"].as_f64()?,
            tx_full: v["tx_full"].as_u64()?,
            kicks: v["kicks"].as_u64()?,
            incomplete: v["incomplete"].as_u64()?,
            tx_invalid: v["tx_invalid"].as_u64()?,
        })
    }
}

const FRAMES: u32 = 8192;
const RING: u32 = 4096;

/// Sends until the duration is over or `stop` is set.
pub fn run(cfg: &GenConfig, stop: &Arc<AtomicBool>) -> Result<GenReport, String> {
    let pattern = cfg.size.pattern();
    let templates: Vec<Template> =
        pattern.iter().map(|&s| template(&cfg.endpoints, s, cfg.run)).collect::<Result<_, _>>()?;
    let ifindex = rampart_nic::ifindex(&cfg.iface).map_err(|e| format!("interface {}: {e}", cfg.iface))?;
    let mut umem =
        Umem::new(UmemConfig { frame_size: 2048, frame_count: FRAMES, headroom: 0 }).map_err(|e| e.to_string())?;
    let xc = XskConfig { rx_size: 64, tx_size: RING, fill_size: 64, comp_size: RING, ..Default::default() };
    let mut sock = super::bind_retrying(&umem, ifindex, &xc).map_err(|e| format!("AF_XDP on {}: {e}", cfg.iface))?;
    let rx_offset = u64::from(umem.rx_offset());
    let burst = cfg.burst.clamp(1, 256);
    let mut descs = vec![Desc::default(); burst];
    let mut report = GenReport::default();
    let start = now_ns();
    let end = start + (cfg.seconds * 1e9) as u64;
    let mut seq: u64 = 0;
    loop {
        let now = now_ns();
        if now >= end || stop.load(Ordering::Relaxed) || seq >= u64::from(u32::MAX) {
            break;
        }
        sock.reap_completions(&mut umem);
        let due = match cfg.rate {
            // Packet k is due at start + k / rate (the first one at once).
            Some(r) => ((((now - start) as f64) * r / 1e9) as u64 + 1).saturating_sub(seq),
            None => burst as u64,
        };
        if due == 0 {
            // Sleep until the next packet is due, never spin: the generator shares two cores
            // with everything it measures. Sleeps round up (timer slack, ~50 us), so at high
            // rates packets leave in bursts of what became due meanwhile.
            let r = cfg.rate.unwrap_or(1.0);
            let next = start + ((seq as f64) * 1e9 / r) as u64;
            std::thread::sleep(Duration::from_nanos(next.saturating_sub(now).max(20_000)));
            continue;
        }
        let want = (due as usize).min(burst);
        let mut n = 0;
        while n < want {
            let Some(addr) = umem.alloc() else { break };
            let t = &templates[(seq as usize + n) % templates.len()];
            let d = Desc::new(addr + rx_offset, t.frame.len() as u32);
            match umem.frame_mut(&d) {
                Ok(buf) => t.stamp_into(buf, (seq as usize + n) as u32, now_ns()),
                Err(_) => {
                    let _ = umem.free(addr);
                    break;
                }
            }
            descs[n] = d;
            n += 1;
        }
        let accepted = sock.tx_burst(&descs[..n]);
        for d in &descs[accepted..n] {
            let _ = umem.free(d.addr);
        }
        for d in &descs[..accepted] {
            report.ip_bytes += u64::from(d.len) - super::packet::ETH_LEN as u64;
        }
        seq += accepted as u64;
        if accepted < want {
            report.tx_full += 1;
        }
        let _ = sock.kick_tx();
        if accepted == 0 {
            // Ring or UMEM full: let the kernel (and the gateways) run.
            std::thread::yield_now();
        }
    }
    report.seconds = (now_ns() - start) as f64 / 1e9;
    report.sent = seq;
    // Let the kernel finish what is on the ring.
    let drain_end = now_ns() + 1_000_000_000;
    while umem.free_frames() < FRAMES && now_ns() < drain_end {
        let _ = sock.kick_tx();
        sock.reap_completions(&mut umem);
        std::thread::sleep(Duration::from_micros(200));
    }
    report.incomplete = u64::from(FRAMES - umem.free_frames());
    report.kicks = sock.counters().tx_kicks;
    report.tx_invalid = sock.statistics().map(|s| s.tx_invalid_descs).unwrap_or(0);
    Ok(report)
}
