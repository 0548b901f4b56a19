//! SA database lookup benchmark: inbound SA by SPI ([`SaIndex`]) and outbound policy
//! ([`SpdLookup`]) at 1, 1,000, 10,000 and 100,000 entries, side by side in one run, through
//! the real path (a database file in /dev/shm written by a `Writer`, a `Reader` snapshot, the
//! compiled lookups). Keys are drawn at random from the installed entries, so that the large
//! tables are measured with the cache misses a gateway with that many tunnels has.
//!
//! `cargo run --release -p rampart-bench --bin sadb [-- --quick]`
//!
//! Prints ns per lookup, one at a time and in bursts of 64 (how the data plane calls them,
//! with the buckets of a burst prefetched), and the ratio of 100,000 entries over 1 (goal:
//! at most 1.5).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rampart_bench::{Table, median, pin_current_thread, warm_up};
use rampart_crypto::Suite;
use rampart_esp::{Direction, Lifetimes, Mode, SaConfig};
use rampart_sadb::{
    Capacities, FlowV4, IpPrefix, Policy, PolicyAction, PolicyDir, PortRange, Reader, SaIndex, Selector, SpdLookup,
    Template, Writer,
};
use zeroize::Zeroizing;

const SIZES: [usize; 4] = [1, 1_000, 10_000, 100_000];
const QUERIES: usize = 1 << 16;
const BURST: usize = 64;
const GOAL: f64 = 1.5;

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn sa(spi: u32, direction: Direction) -> SaConfig {
    let suite = Suite::from_swanctl("aes256gcm16").expect("suite");
    let us: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let peer: IpAddr = Ipv4Addr::new(198, 51, 100, 1).into();
    SaConfig {
        protocol: rampart_esp::Protocol::Esp,
        spi,
        direction,
        suite,
        encryption_key: Zeroizing::new(vec![0x42; suite.encryption_key_len()]),
        integrity_key: Zeroizing::new(Vec::new()),
        mode: Mode::Tunnel,
        local: us,
        remote: peer,
        encap: None,
        esn: true,
        replay_window: 1024,
        local_ts: Vec::new(),
        remote_ts: Vec::new(),
        lifetimes: Lifetimes::default(),
    }
}

/// Branch `i`'s prefix: a /24 of its own.
fn branch(i: usize) -> u32 {
    0x0b00_0000 + (i as u32) * 256
}

/// The hub's LAN.
const HUB_LAN: u32 = 0x0a00_0000;

struct Setup {
    index: SaIndex,
    spd: SpdLookup,
    spis: Vec<(u32, IpAddr)>,
    flows: Vec<FlowV4>,
    build_index: Duration,
    build_spd: Duration,
}

/// A hub with `n` tunnels: `n` inbound SAs and `n` outbound policies (hub LAN /16 to branch
/// /24, protect), written to a database file and compiled from a reader's snapshot.
fn setup(n: usize) -> Setup {
    let path = std::path::PathBuf::from(format!("/dev/shm/rampart-bench-sadb-{}-{n}.sadb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut w = Writer::create(&path, Capacities::small(n as u32 + 8, n as u32 + 8)).expect("create database");
    let mut rng = Rng(n as u64);
    let us: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let mut spis = Vec::with_capacity(n);
    let mut seen = std::collections::HashSet::new();
    while spis.len() < n {
        let spi = (rng.next() as u32).max(0x100);
        if seen.insert(spi) {
            w.install_sa(&sa(spi, Direction::Inbound), 1, 0).expect("install");
            spis.push(spi);
        }
    }
    let out = w.install_sa(&sa(0x42, Direction::Outbound), 1, 0).expect("install outbound");
    let tmpl = Template {
        protocol: rampart_esp::Protocol::Esp,
        src: us,
        dst: Ipv4Addr::new(198, 51, 100, 1).into(),
        spi: 0,
        mode: Mode::Tunnel,
        reqid: 0,
    };
    for i in 0..n {
        let policy = Policy {
            dir: PolicyDir::Out,
            selector: Selector {
                src: IpPrefix::new(Ipv4Addr::from(HUB_LAN).into(), 16).expect("prefix"),
                dst: IpPrefix::new(Ipv4Addr::from(branch(i)).into(), 24).expect("prefix"),
                proto: 0,
                sport: PortRange::ANY,
                dport: PortRange::ANY,
            },
            priority: 100,
            action: PolicyAction::Protect(tmpl),
        };
        w.add_policy(&policy, Some(out)).expect("add policy");
    }
    let reader = Reader::attach(&path).expect("attach");
    let snap = reader.snapshot();
    let t = Instant::now();
    let index = SaIndex::build(&snap);
    let build_index = t.elapsed();
    let t = Instant::now();
    let spd = SpdLookup::build(&snap, PolicyDir::Out);
    let build_spd = t.elapsed();
    drop(w);
    let _ = std::fs::remove_file(&path);
    assert_eq!((index.len(), spd.len()), (n, n));

    let keys = (0..QUERIES).map(|_| (spis[(rng.next() % n as u64) as usize], us)).collect();
    let flows = (0..QUERIES)
        .map(|_| {
            let r = rng.next();
            FlowV4 {
                src: HUB_LAN | (r as u32 & 0xffff),
                dst: branch((r >> 16) as usize % n) | ((r >> 40) as u32 & 0xff),
                proto: 6,
                sport: (r >> 48) as u16,
                dport: 443,
            }
        })
        .collect();
    Setup { index, spd, spis: keys, flows, build_index, build_spd }
}

/// ns per lookup of one pass of `f` over the whole query set.
fn once(queries: usize, f: impl FnOnce() -> u64) -> f64 {
    let t = Instant::now();
    black_box(f());
    t.elapsed().as_nanos() as f64 / queries as f64
}

/// The four measurements of one size, one pass each: SA single, SA burst, SPD single, SPD
/// burst (ns per lookup).
fn pass(
    s: &Setup,
    in_out: &mut [Option<rampart_sadb::SaId>],
    spd_out: &mut [Option<rampart_sadb::SpdMatch>],
) -> [f64; 4] {
    let in_single = once(QUERIES, || {
        let mut hits = 0u64;
        for (spi, dst) in &s.spis {
            hits += u64::from(s.index.lookup(*spi, *dst).is_some());
        }
        hits
    });
    let in_burst = once(QUERIES, || {
        let mut hits = 0u64;
        for chunk in s.spis.chunks(BURST) {
            s.index.lookup_burst(chunk, in_out);
            hits += in_out.iter().filter(|o| o.is_some()).count() as u64;
        }
        hits
    });
    let out_single = once(QUERIES, || {
        let mut hits = 0u64;
        for f in &s.flows {
            hits += u64::from(s.spd.lookup_v4(f).is_some());
        }
        hits
    });
    let out_burst = once(QUERIES, || {
        let mut hits = 0u64;
        for chunk in s.flows.chunks(BURST) {
            s.spd.lookup_burst_v4(chunk, spd_out);
            hits += spd_out.iter().filter(|o| o.is_some()).count() as u64;
        }
        hits
    });
    [in_single, in_burst, out_single, out_burst]
}

/// Kilobytes of this process's memory on transparent huge pages.
fn huge_page_kb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup").ok()?;
    let line = text.lines().find(|l| l.starts_with("AnonHugePages:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 11 } else { 101 };
    let cpu = pin_current_thread();
    println!("SA database lookups, {QUERIES} random keys of the installed entries, median of {runs} runs");
    println!("pinned to CPU {}", cpu.map(|c| c.to_string()).unwrap_or_else(|| "(not pinned)".into()));
    println!();

    let setups: Vec<(usize, Setup)> = SIZES.iter().map(|&n| (n, setup(n))).collect();
    for (n, s) in &setups {
        // Every key is installed: every lookup must hit.
        let hits = s.spis.iter().filter(|(spi, dst)| s.index.lookup(*spi, *dst).is_some()).count();
        let spd_hits = s.flows.iter().filter(|f| s.spd.lookup_v4(f).is_some()).count();
        assert_eq!((hits, spd_hits), (QUERIES, QUERIES), "lookups missed installed entries at {n}");
    }
    let mut in_out = vec![None; BURST];
    let mut spd_out = vec![None; BURST];
    warm_up(Duration::from_millis(200), || {
        for (_, s) in &setups {
            black_box(pass(s, &mut in_out, &mut spd_out));
        }
    });
    // Sizes take turns, pass by pass, so that the load of a shared machine spreads evenly.
    let mut samples: Vec<[Vec<f64>; 4]> = setups.iter().map(|_| Default::default()).collect();
    for _ in 0..runs {
        for ((_, s), samples) in setups.iter().zip(&mut samples) {
            for (k, v) in pass(s, &mut in_out, &mut spd_out).into_iter().enumerate() {
                samples[k].push(v);
            }
        }
    }
    let mut table = Table::new(&[
        "entries",
        "SA by SPI ns",
        "SA burst ns",
        "SPD ns",
        "SPD burst ns",
        "build SaIndex",
        "build SpdLookup",
    ]);
    let mut results = Vec::new();
    for ((n, s), samples) in setups.iter().zip(&samples) {
        let m: Vec<f64> = samples.iter().map(|v| median(v)).collect();
        table.row(vec![
            n.to_string(),
            format!("{:.1}", m[0]),
            format!("{:.1}", m[1]),
            format!("{:.1}", m[2]),
            format!("{:.1}", m[3]),
            format!("{:.2} ms", s.build_index.as_secs_f64() * 1e3),
            format!("{:.2} ms", s.build_spd.as_secs_f64() * 1e3),
        ]);
        results.push((*n, m[0], m[1], m[2], m[3]));
    }
    print!("{}", table.render());
    if let Some(kb) = huge_page_kb() {
        println!("(lookup tables on transparent huge pages: {} MiB)", kb / 1024);
    }
    println!();
    let first = results.first().copied().expect("sizes");
    let last = results.last().copied().expect("sizes");
    println!("ratio {} entries / {} entry (goal <= {GOAL}):", last.0, first.0);
    for (name, a, b) in [
        ("inbound SA by SPI, one at a time", first.1, last.1),
        ("inbound SA by SPI, bursts of 64", first.2, last.2),
        ("outbound policy, one at a time", first.3, last.3),
        ("outbound policy, bursts of 64", first.4, last.4),
    ] {
        let ratio = b / a;
        let verdict = if ratio <= GOAL { "within goal" } else { "over goal" };
        println!("  {name:<36} {ratio:>5.2}x  ({verdict})");
    }
}
