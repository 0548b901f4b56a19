//! The no-crypto AF_XDP forwarder: the I/O ceiling of Rampart's data plane.
//!
//! It does what a Rampart worker does around the crypto and nothing else: Rampart's own LAN
//! steering program on the input interface (destinations in the given prefixes go to the
//! socket), one UMEM shared by the input and output sockets (a received frame is transmitted
//! by passing its descriptor: no copy in user space), bursts of 64, TTL / hop limit decremented,
//! Ethernet addresses rewritten, one tx kick per burst, completions reaped, fill ring topped up,
//! and the same idle policy as the data plane's default (`idle = "poll"`: spin 64 empty rounds,
//! then sleep in `poll(2)` for up to 10 ms). No ESP, no SPD, no crypto.
//!
//! One direction only (the benchmark's traffic goes host A -> host B). It forwards only what
//! its steering program hands it, only inside the namespace it was started in.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_nic::{
    AttachMode, AttachOptions, Desc, IpPrefix, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig,
    XskSocket,
};

use super::packet::{ETH_LEN, fold, sum_words};

/// One forwarding direction.
#[derive(Clone, Debug)]
pub struct FwdConfig {
    /// Interface frames come in on.
    pub in_iface: String,
    /// Interface they go out of.
    pub out_iface: String,
    /// Destination prefixes to forward (steered to the input socket).
    pub prefixes: Vec<(IpAddr, u8)>,
    /// Next hop's MAC address.
    pub dst_mac: [u8; 6],
    /// Source MAC (default: the output interface's).
    pub src_mac: Option<[u8; 6]>,
    /// Generic XDP instead of native.
    pub generic: bool,
    /// Core to pin to.
    pub core: Option<usize>,
    /// Where to write the counters as JSON, four times a second and at exit.
    pub stats_file: Option<std::path::PathBuf>,
}

/// What the forwarder did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FwdReport {
    /// Frames received on the input socket.
    pub received: u64,
    /// Frames forwarded.
    pub forwarded: u64,
    /// Frames dropped (not IP, TTL expired, tx ring full).
    pub dropped: u64,
    /// Kernel: input rx ring full (the forwarder was too slow).
    pub rx_ring_full: u64,
    /// Kernel: input fill ring empty.
    pub fill_empty: u64,
    /// Kernel: other input drops.
    pub rx_dropped: u64,
}

impl FwdReport {
    /// As JSON (the stats file).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rx": self.received, "tx": self.forwarded, "dropped": self.dropped,
            "rx_ring_full": self.rx_ring_full, "fill_empty": self.fill_empty, "rx_dropped": self.rx_dropped,
        })
    }
}

fn write_stats(path: &std::path::Path, r: &FwdReport) {
    // Written to a temporary name and renamed, so that readers never see half a file.
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, r.to_json().to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, path);
    }
}

const RING: u32 = 2048;
const FRAMES: u32 = 4 * RING;
const BURST: usize = 64;

/// Decrements TTL / hop limit and rewrites the Ethernet addresses; false to drop.
fn forward_frame(f: &mut [u8], dst: &[u8; 6], src: &[u8; 6]) -> bool {
    if f.len() < ETH_LEN + 20 {
        return false;
    }
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => {
            let ihl = usize::from(f[ETH_LEN] & 15) * 4;
            if ihl < 20 || f.len() < ETH_LEN + ihl || f[ETH_LEN + 8] <= 1 {
                return false;
            }
            f[ETH_LEN + 8] -= 1;
            f[ETH_LEN + 10] = 0;
            f[ETH_LEN + 11] = 0;
            let c = !fold(sum_words(0, &f[ETH_LEN..ETH_LEN + ihl]));
            f[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
        }
        0x86dd => {
            if f.len() < ETH_LEN + 40 || f[ETH_LEN + 7] <= 1 {
                return false;
            }
            f[ETH_LEN + 7] -= 1;
        }
        _ => return false,
    }
    f[0..6].copy_from_slice(dst);
    f[6..12].copy_from_slice(src);
    true
}

fn iface_mac(name: &str) -> Result<[u8; 6], String> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))
        .map_err(|e| format!("MAC address of {name}: {e}"))?;
    super::packet::parse_mac(text.trim())
}

/// Forwards until `stop` is set; calls `ready` once the sockets are in place.
pub fn run(cfg: &FwdConfig, stop: &Arc<AtomicBool>, ready: impl FnOnce()) -> Result<FwdReport, String> {
    if let Some(c) = cfg.core {
        core_affinity::set_for_current(core_affinity::CoreId { id: c });
    }
    let in_ifx = rampart_nic::ifindex(&cfg.in_iface).map_err(|e| format!("interface {}: {e}", cfg.in_iface))?;
    let out_ifx = rampart_nic::ifindex(&cfg.out_iface).map_err(|e| format!("interface {}: {e}", cfg.out_iface))?;
    let src_mac = match cfg.src_mac {
        Some(m) => m,
        None => iface_mac(&cfg.out_iface)?,
    };
    let mut prog = SteeringProgram::load(Role::Lan, LoadOptions { max_queues: 1 }).map_err(|e| e.to_string())?;
    let mode = if cfg.generic { AttachMode::Generic } else { AttachMode::Native };
    prog.attach(in_ifx, AttachOptions { mode, force: false }).map_err(|e| format!("XDP on {}: {e}", cfg.in_iface))?;
    for (a, l) in &cfg.prefixes {
        prog.add_protected_prefix(IpPrefix::new(*a, *l).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    let mut umem =
        Umem::new(UmemConfig { frame_size: 2048, frame_count: FRAMES, headroom: 0 }).map_err(|e| e.to_string())?;
    let xc = XskConfig { rx_size: RING, tx_size: RING, fill_size: RING, comp_size: RING, ..Default::default() };
    let mut input = XskSocket::bind(&umem, in_ifx, 0, &xc).map_err(|e| format!("AF_XDP on {}: {e}", cfg.in_iface))?;
    let mut output =
        XskSocket::bind(&umem, out_ifx, 0, &xc).map_err(|e| format!("AF_XDP on {}: {e}", cfg.out_iface))?;
    input.refill(&mut umem, u32::MAX);
    output.refill(&mut umem, 64);
    prog.register_socket(0, &input).map_err(|e| e.to_string())?;
    ready();

    let mut report = FwdReport::default();
    let mut rx = [Desc::default(); BURST];
    let mut tx = [Desc::default(); BURST];
    let mut idle = 0u32;
    let mut next_stats = 0u64;
    loop {
        let done = stop.load(Ordering::Relaxed);
        if let Some(path) = &cfg.stats_file {
            let now = super::now_ns();
            if now >= next_stats || done {
                next_stats = now + 250_000_000;
                report.received = input.counters().rx_packets;
                if let Ok(k) = input.statistics() {
                    report.rx_ring_full = k.rx_ring_full;
                    report.fill_empty = k.rx_fill_ring_empty_descs;
                    report.rx_dropped = k.rx_dropped;
                }
                write_stats(path, &report);
            }
        }
        if done {
            break;
        }
        let n = input.rx_burst(&mut rx);
        if n > 0 {
            idle = 0;
            let mut m = 0;
            for d in &rx[..n] {
                let keep = match umem.frame_mut(d) {
                    Ok(f) => forward_frame(f, &cfg.dst_mac, &src_mac),
                    Err(_) => false,
                };
                if keep {
                    tx[m] = *d;
                    m += 1;
                } else {
                    let _ = umem.free(d.addr);
                    report.dropped += 1;
                }
            }
            let sent = output.tx_burst(&tx[..m]);
            for d in &tx[sent..m] {
                let _ = umem.free(d.addr);
            }
            report.forwarded += sent as u64;
            report.dropped += (m - sent) as u64;
            input.refill(&mut umem, 2 * BURST as u32);
        }
        let _ = output.kick_tx();
        output.reap_completions(&mut umem);
        if n > 0 {
            continue;
        }
        input.refill(&mut umem, u32::MAX);
        idle += 1;
        if idle > 64 {
            let _ = input.poll_rx(10);
        } else {
            std::hint::spin_loop();
        }
    }
    drop(input);
    drop(output);
    prog.detach();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::packet::{Endpoints, parse, template};

    #[test]
    fn forwarding_decrements_ttl_and_keeps_checksums_valid() {
        for (src, dst) in [("10.1.0.2", "10.2.0.2"), ("fd01::2", "fd02::2")] {
            let ep = Endpoints {
                src_mac: [2, 0, 0, 1, 0, 2],
                dst_mac: [2, 0, 0, 1, 0, 1],
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
            };
            let t = template(&ep, 100, 9).unwrap();
            let mut f = vec![0u8; t.frame.len()];
            t.stamp_into(&mut f, 5, 6);
            assert!(forward_frame(&mut f, &[9; 6], &[8; 6]));
            assert_eq!(&f[0..12], &[9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8]);
            if f[12] == 0x08 {
                assert_eq!(f[ETH_LEN + 8], 63);
                assert_eq!(fold(sum_words(0, &f[ETH_LEN..ETH_LEN + 20])), 0xffff);
            } else {
                assert_eq!(f[ETH_LEN + 7], 63);
            }
            assert!(parse(&f).unwrap().checksum_ok);
        }
    }

    #[test]
    fn expired_and_short_frames_are_dropped() {
        let ep = Endpoints {
            src_mac: [2; 6],
            dst_mac: [3; 6],
            src: "10.1.0.2".parse().unwrap(),
            dst: "10.2.0.2".parse().unwrap(),
        };
        let t = template(&ep, 64, 1).unwrap();
        let mut f = t.frame.clone();
        f[ETH_LEN + 8] = 1;
        assert!(!forward_frame(&mut f, &[0; 6], &[0; 6]));
        for n in 0..ETH_LEN + 20 {
            assert!(!forward_frame(&mut t.frame.clone()[..n], &[0; 6], &[0; 6]));
        }
    }
}
