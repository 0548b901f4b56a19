//! AH benchmark: whole-packet AH protection and verification (the AH header, the mutable fields
//! zeroed and put back, sequence numbers, replay window, selectors) against the bare MAC of the
//! same bytes (one tag computed for sealing, one for verifying) in the same run, one core,
//! bursts of 32.
//!
//! `cargo run --release -p rampart-bench --bin ah [-- --quick]`
//!
//! Prints ns per packet and Gbit/s (inner bytes) for 64-byte, IMIX (7:4:1 of 64/570/1518) and
//! 1400-byte inner packets, every AH algorithm, and the ratio of the AH round trip over the bare
//! MAC. `--fixed ROUNDS --size N` runs a fixed number of bursts of HMAC-SHA-256 (for an
//! instruction count with `valgrind --tool=callgrind --toggle-collect='ah::pipeline::{{closure}}'`
//! and `--toggle-collect='ah::bare_mac::{{closure}}'`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rampart_bench::{Table, gbit_per_s, median, pin_current_thread, warm_up};
use rampart_crypto::{Backend, Integrity, MacOp, SaCrypto, Suite};
use rampart_esp::{
    Decapsulated, Direction, DropReason, InboundSa, IpsecLocation, Lifetimes, Mode, OutboundSa, PacketBuf, Prepared,
    Protocol, Received, SaConfig, TrafficSelector, parse_outer,
};
use zeroize::Zeroizing;

const BURST: usize = 32;
const HEADROOM: usize = 256;
const FRAME: usize = 2048;

struct Mix {
    name: &'static str,
    lens: Vec<usize>,
}

fn mixes() -> Vec<Mix> {
    let imix = [vec![64; 7], vec![570; 4], vec![1400]].concat();
    vec![Mix { name: "64", lens: vec![64] }, Mix { name: "IMIX", lens: imix }, Mix { name: "1400", lens: vec![1400] }]
}

fn config(suite: Suite, direction: Direction) -> SaConfig {
    let a: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    let b: IpAddr = Ipv4Addr::new(192, 0, 2, 2).into();
    let (local, remote) = if direction == Direction::Outbound { (a, b) } else { (b, a) };
    let ts_a = TrafficSelector::from_prefix(Ipv4Addr::new(198, 18, 1, 0).into(), 24);
    let ts_b = TrafficSelector::from_prefix(Ipv4Addr::new(198, 18, 2, 0).into(), 24);
    let (local_ts, remote_ts) = if direction == Direction::Outbound { (ts_a, ts_b) } else { (ts_b, ts_a) };
    SaConfig {
        protocol: Protocol::Ah,
        spi: 0x1000,
        direction,
        suite,
        encryption_key: Zeroizing::new(Vec::new()),
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
fn inner_packet(len: usize) -> Vec<u8> {
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

#[derive(Clone, Copy)]
enum Work {
    Timed { period: Duration, reps: usize },
    Fixed(usize),
}

fn measure(work: Work, per_call: usize, mut f: impl FnMut()) -> f64 {
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

/// Protects and verifies a burst in place, round and round: after a round trip each frame holds
/// its inner packet again.
fn pipeline(suite: Suite, backend: Backend, mix: &Mix, work: Work) -> f64 {
    let mut tx = OutboundSa::new(&config(suite, Direction::Outbound), backend).unwrap();
    let mut rx = InboundSa::new(&config(suite, Direction::Inbound), backend).unwrap();
    let lens: Vec<usize> = (0..BURST).map(|i| mix.lens[i % mix.lens.len()]).collect();
    let mut frames: Vec<Vec<u8>> = lens
        .iter()
        .map(|&len| {
            let mut f = vec![0u8; FRAME];
            f[HEADROOM..HEADROOM + len].copy_from_slice(&inner_packet(len));
            f
        })
        .collect();
    let mut out: [Result<Prepared, DropReason>; BURST] = [Err(DropReason::NoSa); BURST];
    let mut back: [Result<Decapsulated, DropReason>; BURST] = [Err(DropReason::Truncated); BURST];
    let mut locs: Vec<IpsecLocation> = Vec::with_capacity(BURST);
    measure(work, BURST, || {
        let mut pkts: Vec<PacketBuf<'_>> =
            frames.iter_mut().zip(&lens).map(|(f, &len)| PacketBuf::new(f, HEADROOM, len)).collect();
        tx.encapsulate_burst(&mut pkts, &mut out);
        locs.clear();
        for p in &pkts {
            match parse_outer(p.data(), 4500) {
                Ok(Received::Ipsec(loc)) => locs.push(loc),
                other => panic!("not AH: {other:?}"),
            }
        }
        rx.decapsulate_burst(&mut pkts, &locs, &mut back);
        debug_assert!(back.iter().all(|v| v.is_ok()));
    })
}

/// The bare MAC of the bytes AH covers (outer header, AH header, inner packet), twice per packet:
/// once as the sender computes it, once as the receiver does.
fn bare_mac(suite: Suite, backend: Backend, mix: &Mix, work: Work) -> f64 {
    let cfg = config(suite, Direction::Outbound);
    let sa = SaCrypto::new(suite, &[], &cfg.integrity_key, backend).unwrap();
    let ah_len = 12 + if suite.is_gmac() { 8 } else { 0 } + suite.icv_len();
    let bufs: Vec<Vec<u8>> = (0..BURST).map(|i| vec![0x5a; 20 + ah_len + mix.lens[i % mix.lens.len()]]).collect();
    let mut seq = 0u64;
    measure(work, BURST, || {
        for _ in 0..2 {
            let mut ops: Vec<MacOp<'_>> = bufs
                .iter()
                .map(|b| {
                    seq += 1;
                    MacOp { sa: &sa, data: b, iv: seq.to_be_bytes(), tag: [0; rampart_crypto::MAX_TAG_LEN] }
                })
                .collect();
            rampart_crypto::mac_burst(&mut ops);
            std::hint::black_box(&ops[0].tag);
        }
    })
}

fn arg_value(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() {
    if let Some(rounds) = arg_value("--fixed") {
        let len = arg_value("--size").unwrap_or(1400);
        let suite = Suite::ah(Integrity::HmacSha256_128).unwrap();
        let mix = Mix { name: "fixed", lens: vec![len] };
        let backend = Backend::fastest(suite);
        bare_mac(suite, backend, &mix, Work::Fixed(rounds));
        pipeline(suite, backend, &mix, Work::Fixed(rounds));
        println!(
            "{rounds} bursts of {BURST} x {len}-byte packets each way, AH {}, {}",
            suite.integrity_name(),
            backend.name()
        );
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (period, reps) = if quick { (Duration::from_millis(100), 3) } else { (Duration::from_millis(400), 5) };
    let work = Work::Timed { period, reps };
    let cpu = pin_current_thread();
    println!(
        "AH protection + verification vs the bare MAC of the same bytes (twice), one core (cpu {cpu:?}), bursts of {BURST}"
    );
    println!("inner packets IPv4/UDP, tunnel mode, IPv4 outer; Gbit/s counts inner bytes once\n");
    let mut table = Table::new(&["algorithm", "backend", "size", "MAC ns/pkt", "AH ns/pkt", "AH Gbit/s", "AH/MAC"]);
    for suite in Suite::ah_all() {
        for backend in Backend::for_suite(suite) {
            for mix in mixes() {
                let avg = mix.lens.iter().sum::<usize>() / mix.lens.len();
                let mac = bare_mac(suite, backend, &mix, work);
                let ah = pipeline(suite, backend, &mix, work);
                table.row(vec![
                    suite.integrity_name(),
                    backend.name().to_string(),
                    mix.name.to_string(),
                    format!("{mac:.1}"),
                    format!("{ah:.1}"),
                    format!("{:.2}", gbit_per_s(avg, ah)),
                    format!("{:.2}x", ah / mac),
                ]);
            }
            table.gap();
        }
    }
    print!("{}", table.render());
    println!("\n(each figure: round trip, i.e. one protection and one verification per packet; median of {reps} runs)");
}
