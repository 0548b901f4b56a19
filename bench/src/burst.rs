//! What the per-packet benchmarks (`bin/esp`, `bin/ah`) share: the packet mixes, the SA pair
//! they run through, the inner packets, and how a configuration is run (timed, or a fixed
//! number of bursts for instruction counts under callgrind).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rampart_crypto::Suite;
use rampart_esp::{Direction, Lifetimes, Mode, Protocol, SaConfig, TrafficSelector};
use zeroize::Zeroizing;

use crate::{median, warm_up};

/// Packets per burst.
pub const BURST: usize = 32;
/// Room in front of each packet (what the data plane's frames have).
pub const HEADROOM: usize = 256;
/// A frame: headroom, the largest inner packet with what IPsec adds, tailroom.
pub const FRAME: usize = 2048 + HEADROOM;

/// A packet mix: inner IP packet lengths, cycled through.
pub struct Mix {
    /// Its name in the tables.
    pub name: &'static str,
    /// Inner packet lengths.
    pub lens: Vec<usize>,
}

/// 64-byte packets, IMIX (7:4:1 of 64/570/1518) and 1400-byte packets.
pub fn mixes() -> Vec<Mix> {
    let imix = [vec![64; 7], vec![570; 4], vec![1518]].concat();
    vec![Mix { name: "64", lens: vec![64] }, Mix { name: "IMIX", lens: imix }, Mix { name: "1400", lens: vec![1400] }]
}

/// One end of the SA pair between 192.0.2.1 and 192.0.2.2 (tunnel mode, 198.18.1.0/24 to
/// 198.18.2.0/24), for ESP or AH.
pub fn sa_config(protocol: Protocol, suite: Suite, direction: Direction) -> SaConfig {
    let a: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let b: IpAddr = Ipv4Addr::new(192, 0, 2, 2).into();
    let (local, remote) = if direction == Direction::Outbound { (a, b) } else { (b, a) };
    let ts_a = TrafficSelector::from_prefix(Ipv4Addr::new(198, 18, 1, 0).into(), 24);
    let ts_b = TrafficSelector::from_prefix(Ipv4Addr::new(198, 18, 2, 0).into(), 24);
    let (local_ts, remote_ts) = if direction == Direction::Outbound { (ts_a, ts_b) } else { (ts_b, ts_a) };
    SaConfig {
        protocol,
        spi: 0x1000,
        direction,
        suite,
        encryption_key: Zeroizing::new(vec![0x42; suite.encryption_key_len()]),
        integrity_key: Zeroizing::new(vec![0x24; suite.integrity_key_len()]),
        mode: Mode::Tunnel,
        local,
        remote,
        encap: None,
        esn: false,
        replay_window: 1024,
        local_ts: vec![local_ts],
        remote_ts: vec![remote_ts],
        lifetimes: Lifetimes::default(),
    }
}

/// An IPv4/UDP packet of `len` bytes from 198.18.1.10 to 198.18.2.10.
pub fn inner_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[198, 18, 1, 10]);
    p[16..20].copy_from_slice(&[198, 18, 2, 10]);
    let c = rampart_wire::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p
}

/// How long to run each configuration.
#[derive(Clone, Copy)]
pub enum Work {
    /// Median of `reps` runs of `period` each.
    Timed {
        /// One run.
        period: Duration,
        /// Runs.
        reps: usize,
    },
    /// Exactly this many bursts, untimed (for instruction counting).
    Fixed(usize),
}

/// Runs `f` (one burst of `per_call` packets) as `work` says: ns per packet, NaN for fixed work.
pub fn measure(work: Work, per_call: usize, mut f: impl FnMut()) -> f64 {
    let (period, reps) = match work {
        Work::Timed { period, reps } => (period, reps),
        Work::Fixed(rounds) => {
            for _ in 0..rounds {
                f();
            }
            return f64::NAN;
        }
    };
    warm_up(period / 2, &mut f);
    let mut samples = Vec::new();
    for _ in 0..reps {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < period {
            f();
            calls += 1;
        }
        samples.push(start.elapsed().as_nanos() as f64 / (calls as f64 * per_call as f64));
    }
    median(&samples)
}

/// The number after `name` on the command line.
pub fn arg_value(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}
