//! Helpers shared by the integration tests: unique database files that remove themselves,
//! SA and policy configurations derived from a seed (so that a reader can check every field of
//! a record it accepted against the seed, which catches any torn or mixed record), and
//! re-running this test binary as a child process.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use rampart_sa::Suite;
use rampart_sa::{Direction, Lifetimes, Mode, SaConfig, TrafficSelector, UdpEncap};
use rampart_sadb::{IpPrefix, Policy, PolicyAction, PolicyDir, PortRange, SaRecord, Selector, Template};
use zeroize::Zeroizing;

/// A database path under /dev/shm, unique to this process and call, removed on drop.
pub struct TempDb {
    pub path: PathBuf,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TempDb {
    pub fn new(name: &str) -> TempDb {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/dev/shm/rampart-sadb-test-{}-{name}-{n}.sadb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempDb { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A 64-bit mix for deriving fields from a seed.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SPIs of seeded SAs: `SPI_BASE + seed`.
pub const SPI_BASE: u32 = 0x0100_0000;

fn seeded_addr(seed: u64, k: u64, v6: bool) -> IpAddr {
    let h = mix(seed ^ (k << 56));
    if v6 {
        IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | u128::from(h)))
    } else {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (h as u32 & 0x00ff_ffff)))
    }
}

/// An SA whose every field (keys, addresses, selectors, lifetimes) derives from `seed`.
pub fn seeded_sa(seed: u64) -> SaConfig {
    let h = mix(seed);
    let suites = Suite::all();
    let suite = suites[(h % suites.len() as u64) as usize];
    let v6 = h & (1 << 8) != 0;
    let key = |len: usize, k: u8| -> Zeroizing<Vec<u8>> {
        Zeroizing::new((0..len).map(|i| (mix(seed ^ (u64::from(k) << 48) ^ i as u64) & 0xff) as u8).collect())
    };
    let n_local = ((h >> 12) % 9) as usize;
    let n_remote = ((h >> 16) % 9) as usize;
    let ts = |k: u64, n: usize| -> Vec<TrafficSelector> {
        (0..n)
            .map(|i| {
                let a = seeded_addr(seed, k + i as u64, (h >> (20 + i)) & 1 == 1);
                let mut t = TrafficSelector::from_prefix(a, 24);
                t.protocol = (mix(seed + k + i as u64) % 3) as u8 * 6;
                t
            })
            .collect()
    };
    SaConfig {
        protocol: rampart_sa::Protocol::Esp,
        spi: SPI_BASE + seed as u32,
        direction: if h & (1 << 9) != 0 { Direction::Inbound } else { Direction::Outbound },
        suite,
        encryption_key: key(suite.encryption_key_len(), 1),
        integrity_key: key(suite.integrity_key_len(), 2),
        mode: if h & (1 << 10) != 0 { Mode::Tunnel } else { Mode::Transport },
        local: seeded_addr(seed, 1, v6),
        remote: seeded_addr(seed, 2, v6),
        encap: (h & (1 << 11) != 0).then_some(UdpEncap { local_port: 4500, remote_port: (h >> 40) as u16 }),
        esn: h & (1 << 7) != 0,
        replay_window: (h >> 24) as u32 % 8192,
        local_ts: ts(10, n_local),
        remote_ts: ts(30, n_remote),
        lifetimes: Lifetimes {
            soft_bytes: mix(seed + 1),
            hard_bytes: mix(seed + 2),
            soft_packets: mix(seed + 3),
            hard_packets: mix(seed + 4),
            soft_seconds: mix(seed + 5),
            hard_seconds: mix(seed + 6),
        },
    }
}

/// The reqid and install time written with a seeded SA.
pub fn seeded_extra(seed: u64) -> (u32, u64) {
    ((mix(seed + 7) >> 33) as u32, mix(seed + 8) >> 34)
}

/// Checks that a record read from the database is exactly the seeded SA of its SPI.
pub fn check_seeded(rec: &SaRecord) -> Result<(), String> {
    let seed = u64::from(rec.spi().wrapping_sub(SPI_BASE));
    let want = seeded_sa(seed);
    let got = rec.to_config().map_err(|e| format!("spi {:#x}: {e}", rec.spi()))?;
    let (reqid, t) = seeded_extra(seed);
    if format!("{got:?}") != format!("{want:?}")
        || *got.encryption_key != *want.encryption_key
        || *got.integrity_key != *want.integrity_key
        || rec.reqid() != reqid
        || rec.install_time() != t
    {
        return Err(format!("record of spi {:#x} does not match its seed", rec.spi()));
    }
    Ok(())
}

/// A policy whose every field derives from `seed` (its priority is the seed).
pub fn seeded_policy(seed: u64) -> Policy {
    let h = mix(seed ^ 0xabc);
    let v6 = h & 1 == 1;
    let pfx = |k: u64, len: u8| IpPrefix::new(seeded_addr(seed, k, v6), if v6 { len + 64 } else { len }).unwrap();
    Policy {
        dir: if h & 2 == 0 { PolicyDir::Out } else { PolicyDir::In },
        selector: Selector {
            src: pfx(3, (h >> 8) as u8 % 33),
            dst: pfx(4, (h >> 16) as u8 % 33),
            proto: if h & 4 == 0 { 0 } else { 6 },
            sport: PortRange::ANY,
            dport: if h & 4 == 0 { PortRange::ANY } else { PortRange::single((h >> 24) as u16) },
        },
        // The priority is the seed, so that a reader can check the whole policy.
        priority: seed as u32,
        action: match (h >> 4) % 3 {
            0 => PolicyAction::Bypass,
            1 => PolicyAction::Discard,
            _ => PolicyAction::Protect(Template {
                protocol: rampart_sa::Protocol::Esp,
                src: seeded_addr(seed, 5, v6),
                dst: seeded_addr(seed, 6, v6),
                spi: (h >> 50) as u32,
                mode: Mode::Tunnel,
                reqid: seed as u32,
            }),
        },
    }
}

/// Name of the environment variable that turns a test binary run into a child role.
pub const CHILD_ENV: &str = "RAMPART_SADB_TEST_CHILD";

/// Runs this test binary again, only the test `entry`, with `role` in [`CHILD_ENV`]; stdout
/// is piped to the caller.
pub fn spawn_child(entry: &str, role: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", entry, "--nocapture", "--test-threads=1", "--quiet"])
        .env(CHILD_ENV, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child test process")
}

/// The role given to this process, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Kills a child on drop (so that a failing test leaves no process behind).
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Checks that a policy read from the database is exactly the seeded policy of its priority.
pub fn check_seeded_policy(p: &Policy) -> Result<(), String> {
    if *p == seeded_policy(u64::from(p.priority)) {
        Ok(())
    } else {
        Err(format!("policy of priority {} does not match its seed", p.priority))
    }
}
