//! The demo's traffic agent (`rampart demo-agent`, started by `rampart demo` inside a host
//! namespace with `ip netns exec`): a UDP generator and sink on kernel sockets. Every packet
//! carries a run id, its tunnel, a per-tunnel sequence number and its CLOCK_MONOTONIC send
//! time (one clock for every namespace of the machine), so the sink on the other side counts
//! loss, duplicates and reordering per tunnel and one-way latency in an HDR histogram.
//!
//! It talks to the orchestrator with one JSON object per line: commands on stdin (`listen` for
//! a run id, `send`, `report`), progress and reports on stdout. It exits when stdin closes, and it sends only to
//! the demo's plan addresses ([`super::plan`]) in the namespace it was started in.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::plan;
use crate::cmd::CmdError;

/// Bytes of the packet header inside the UDP payload.
pub const HEADER: usize = 28;
const MAGIC: &[u8; 4] = b"RDMO";

/// `rampart demo-agent` (internal: started by `rampart demo`).
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Which host this agent is: `dc` (behind the hub) or `sites` (behind the branch gateway).
    #[arg(long)]
    side: String,
    /// Number of tunnels (sites).
    #[arg(long)]
    tunnels: u32,
}

/// A test packet's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Run id (the sink counts one run at a time).
    pub run: u32,
    /// Tunnel (site) index.
    pub tunnel: u32,
    /// Per-tunnel sequence number, from 0.
    pub seq: u64,
    /// CLOCK_MONOTONIC send time, nanoseconds.
    pub sent_ns: u64,
}

impl Header {
    /// Writes the header at the start of `buf` (at least [`HEADER`] bytes).
    pub fn write(&self, buf: &mut [u8]) {
        buf[..4].copy_from_slice(MAGIC);
        buf[4..8].copy_from_slice(&self.run.to_be_bytes());
        buf[8..12].copy_from_slice(&self.tunnel.to_be_bytes());
        buf[12..20].copy_from_slice(&self.seq.to_be_bytes());
        buf[20..28].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    /// Reads a header; `None` for anything else.
    pub fn read(buf: &[u8]) -> Option<Header> {
        let b = buf.get(..HEADER)?;
        if &b[..4] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
        Some(Header { run: u32_at(4), tunnel: u32_at(8), seq: u64_at(12), sent_ns: u64_at(20) })
    }
}

/// CLOCK_MONOTONIC in nanoseconds (the same clock in every network namespace).
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// One tunnel's receive state in the current run.
#[derive(Default)]
struct TunnelRx {
    received: u64,
    duplicates: u64,
    reordered: u64,
    next: u64,
    /// Bit per sequence number seen.
    seen: Vec<u64>,
}

impl TunnelRx {
    fn note(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            if word > 1 << 24 {
                return false; // absurd sequence number: not ours
            }
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return false;
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        if seq < self.next {
            self.reordered += 1;
        } else {
            self.next = seq + 1;
        }
        true
    }
}

/// What the sink counted for one run.
struct SinkRun {
    run: u32,
    tunnels: HashMap<u32, TunnelRx>,
    latency: Histogram<u64>,
    bytes: u64,
    foreign: u64,
}

impl SinkRun {
    fn new(run: u32) -> SinkRun {
        SinkRun {
            run,
            tunnels: HashMap::new(),
            // 100 ns .. 60 s at 3 significant digits.
            latency: Histogram::new_with_bounds(100, 60_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap()),
            bytes: 0,
            foreign: 0,
        }
    }
}

struct Agent {
    tunnels: u32,
    dc: bool,
    sink: Mutex<SinkRun>,
    rx_packets: AtomicU64,
    tx_packets: AtomicU64,
    out: Mutex<std::io::Stdout>,
}

impl Agent {
    fn say(&self, v: Value) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}

/// Runs `rampart demo-agent`.
pub fn run(args: AgentArgs) -> Result<(), CmdError> {
    let dc = match args.side.as_str() {
        "dc" => true,
        "sites" => false,
        other => return Err(CmdError(format!("--side {other}: dc or sites"))),
    };
    if args.tunnels == 0 || args.tunnels > plan::MAX_TUNNELS {
        return Err(CmdError(format!("--tunnels {}: 1..={}", args.tunnels, plan::MAX_TUNNELS)));
    }
    // One socket per site address on the sites side: make room for them.
    let want = u64::from(args.tunnels) + 64;
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(current) = limit.current
        && current < want
    {
        let maximum = limit.maximum.map(|m| m.max(want));
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit { current: Some(want), maximum },
        );
    }
    let listen = if dc { plan::DC_HOST } else { Ipv4Addr::UNSPECIFIED };
    let rx = UdpSocket::bind(SocketAddrV4::new(listen, plan::AGENT_PORT))
        .map_err(|e| CmdError(format!("bind {listen}:{}: {e}", plan::AGENT_PORT)))?;
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&rx, 8 << 20);
    rx.set_read_timeout(Some(Duration::from_millis(100))).map_err(|e| CmdError(e.to_string()))?;
    // Senders: the dc host sends from its one address to every site; each site sends from its
    // own address (the tunnel's selector) to the dc host.
    let senders: Vec<UdpSocket> = if dc {
        vec![rx.try_clone().map_err(|e| CmdError(e.to_string()))?]
    } else {
        (0..args.tunnels)
            .map(|k| {
                UdpSocket::bind(SocketAddrV4::new(plan::site_host(k), 0))
                    .map_err(|e| CmdError(format!("bind {}: {e}", plan::site_host(k))))
            })
            .collect::<Result<_, _>>()?
    };
    let agent = Arc::new(Agent {
        tunnels: args.tunnels,
        dc,
        sink: Mutex::new(SinkRun::new(0)),
        rx_packets: AtomicU64::new(0),
        tx_packets: AtomicU64::new(0),
        out: Mutex::new(std::io::stdout()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sink = {
        let (agent, stop) = (agent.clone(), stop.clone());
        std::thread::spawn(move || sink_loop(&agent, &rx, &stop))
    };
    let progress = {
        let (agent, stop) = (agent.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                agent.say(json!({
                    "progress": {
                        "rx": agent.rx_packets.load(Ordering::Relaxed),
                        "tx": agent.tx_packets.load(Ordering::Relaxed),
                        "at_ns": now_ns(),
                    }
                }));
            }
        })
    };
    let senders = Arc::new(senders);
    agent.say(json!({ "ready": true }));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(cmd) = serde_json::from_str::<Value>(&line) else { continue };
        match cmd["cmd"].as_str() {
            Some("send") => {
                let run = cmd["run"].as_u64().unwrap_or(1) as u32;
                let rate = cmd["rate"].as_f64().unwrap_or(1000.0).max(1.0);
                let seconds = cmd["seconds"].as_f64().unwrap_or(1.0).max(0.0);
                let size = (cmd["size"].as_u64().unwrap_or(64) as usize).clamp(HEADER, 1400);
                // Which tunnels to send through (default: all of them).
                let only: Vec<u32> = cmd["tunnels"]
                    .as_array()
                    .map(|a| {
                        a.iter().filter_map(Value::as_u64).map(|k| k as u32).filter(|k| *k < agent.tunnels).collect()
                    })
                    .unwrap_or_else(|| (0..agent.tunnels).collect());
                if only.is_empty() {
                    continue;
                }
                agent.tx_packets.store(0, Ordering::Relaxed);
                let (agent, senders) = (agent.clone(), senders.clone());
                std::thread::spawn(move || {
                    let sent = generate(&agent, &senders, &only, run, rate, seconds, size);
                    agent.say(json!({ "sent": { "run": run, "per_tunnel": sent } }));
                });
            }
            Some("listen") => {
                // Count run `run` from now on (what the sink saw before is forgotten).
                let run = cmd["run"].as_u64().unwrap_or(1) as u32;
                *agent.sink.lock().unwrap_or_else(|p| p.into_inner()) = SinkRun::new(run);
                agent.rx_packets.store(0, Ordering::Relaxed);
                agent.say(json!({ "listening": run }));
            }
            Some("report") => {
                let s = agent.sink.lock().unwrap_or_else(|p| p.into_inner());
                agent.say(json!({ "report": report(&s, agent.tunnels) }));
            }
            Some("quit") => break,
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = sink.join();
    let _ = progress.join();
    Ok(())
}

fn sink_loop(agent: &Agent, rx: &UdpSocket, stop: &AtomicBool) {
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let n = match rx.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(_) => continue,
        };
        let now = now_ns();
        let mut s = agent.sink.lock().unwrap_or_else(|p| p.into_inner());
        match Header::read(&buf[..n]) {
            Some(h) if h.run == s.run && h.tunnel < agent.tunnels => {
                if s.tunnels.entry(h.tunnel).or_default().note(h.seq) {
                    s.bytes += n as u64;
                    let _ = s.latency.record(now.saturating_sub(h.sent_ns).max(100));
                    agent.rx_packets.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => s.foreign += 1,
        }
    }
}

/// Sends `rate` packets per second in total, spread round robin over the tunnels `only`, for
/// `seconds`; returns how many went out per tunnel (every tunnel, in order).
fn generate(
    agent: &Agent,
    senders: &[UdpSocket],
    only: &[u32],
    run: u32,
    rate: f64,
    seconds: f64,
    size: usize,
) -> Vec<u64> {
    let mut seq = vec![0u64; agent.tunnels as usize];
    let mut buf = vec![0u8; size];
    let start = Instant::now();
    let total = (rate * seconds).round() as u64;
    let mut sent_total = 0u64;
    let mut next = 0usize;
    let dc_dest = SocketAddr::V4(SocketAddrV4::new(plan::DC_HOST, plan::AGENT_PORT));
    while sent_total < total {
        let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
        if sent_total >= due {
            std::thread::sleep(Duration::from_micros(500));
            continue;
        }
        // At most a few milliseconds' worth at once, so that a stall does not turn into a burst
        // that overruns the sockets.
        let burst = (due - sent_total).min(((rate / 200.0) as u64).max(8));
        for _ in 0..burst {
            let k = only[next] as usize;
            Header { run, tunnel: k as u32, seq: seq[k], sent_ns: now_ns() }.write(&mut buf);
            let r = if agent.dc {
                senders[0].send_to(&buf, SocketAddrV4::new(plan::site_host(k as u32), plan::AGENT_PORT))
            } else {
                senders[k].send_to(&buf, dc_dest)
            };
            if r.is_ok() {
                seq[k] += 1;
                sent_total += 1;
                agent.tx_packets.fetch_add(1, Ordering::Relaxed);
            } else {
                // A full socket buffer: try again shortly, same packet.
                std::thread::sleep(Duration::from_micros(200));
                break;
            }
            next = (next + 1) % only.len();
        }
    }
    seq
}

fn report(s: &SinkRun, tunnels: u32) -> Value {
    let per_tunnel: Vec<Value> = (0..tunnels)
        .map(|k| {
            let t = s.tunnels.get(&k);
            json!({
                "received": t.map_or(0, |t| t.received),
                "duplicates": t.map_or(0, |t| t.duplicates),
                "reordered": t.map_or(0, |t| t.reordered),
            })
        })
        .collect();
    let q = |p: f64| if s.latency.is_empty() { 0 } else { s.latency.value_at_quantile(p) };
    json!({
        "run": s.run,
        "bytes": s.bytes,
        "foreign": s.foreign,
        "per_tunnel": per_tunnel,
        "latency_ns": {
            "count": s.latency.len(),
            "p50": q(0.5),
            "p90": q(0.9),
            "p99": q(0.99),
            "max": if s.latency.is_empty() { 0 } else { s.latency.max() },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_refuses_others() {
        let h = Header { run: 7, tunnel: 99, seq: 1 << 40 | 5, sent_ns: 123_456_789_012 };
        let mut buf = [0u8; 64];
        h.write(&mut buf);
        assert_eq!(Header::read(&buf), Some(h));
        assert_eq!(Header::read(&buf[..HEADER - 1]), None);
        buf[0] = b'X';
        assert_eq!(Header::read(&buf), None);
    }

    #[test]
    fn sink_counts_duplicates_and_reordering_once() {
        let mut t = TunnelRx::default();
        for s in [0, 1, 3, 2, 2, 4, 200] {
            t.note(s);
        }
        assert_eq!((t.received, t.duplicates, t.reordered), (6, 1, 1));
        assert!(!t.note(u64::MAX), "an absurd sequence number is refused");
    }
}
