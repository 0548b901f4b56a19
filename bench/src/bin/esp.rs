//! ESP pipeline benchmark: whole-packet encapsulation + decapsulation (headers, padding,
//! sequence numbers, replay window, selectors) against bare crypto (seal + open of the same
//! bytes) in the same run, one core, bursts of 32.
//!
//! `cargo run --release -p rampart-bench --bin esp [-- --quick]`
//!
//! Prints ns per packet and Gbit/s (inner bytes) for 64-byte, IMIX (7:4:1 of 64/570/1518) and
//! 1400-byte inner packets, and the pipeline's overhead as a ratio over bare crypto.
//!
//! On a machine too noisy for timings, `--fixed ROUNDS --size N` runs a fixed number of bursts
//! of each (AES-128-GCM, fastest backend) for an instruction count that does not depend on load:
//! `valgrind --tool=callgrind --toggle-collect='esp::pipeline::{{closure}}' target/release/esp --fixed 200 --size 1400`
//! and the same with `--toggle-collect='esp::bare_crypto::{{closure}}'`; the ratio of the two
//! totals is the pipeline's overhead in instructions.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use rampart_bench::{Table, gbit_per_s, median, pin_current_thread, warm_up};
use rampart_crypto::{Backend, Encryption, Integrity, OpenOp, SaCrypto, SealOp, Suite};
use rampart_esp::{
    Decapsulated, Direction, DropReason, InboundSa, IpsecLocation, Lifetimes, Mode, OutboundSa, PacketBuf, Prepared,
    Received, SaConfig, TrafficSelector, parse_outer,
};
use zeroize::Zeroizing;

const BURST: usize = 32;
const HEADROOM: usize = 256;
const FRAME: usize = 2048 + HEADROOM;

/// A packet mix: inner IP packet lengths, cycled through.
struct Mix {
    name: &'static str,
    lens: Vec<usize>,
}

fn mixes() -> Vec<Mix> {
    let imix = [vec![64; 7], vec![570; 4], vec![1518]].concat();
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
        protocol: rampart_esp::Protocol::Esp,
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

/// How long to run each configuration.
#[derive(Clone, Copy)]
enum Work {
    /// Median of `reps` runs of `period` each.
    Timed { period: Duration, reps: usize },
    /// Exactly this many bursts, untimed (for instruction counting).
    Fixed(usize),
}

/// Timing of one configuration: ns per packet (NaN for fixed work).
fn measure(work: Work, packets_per_call: usize, mut f: impl FnMut()) -> f64 {
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
        samples.push(start.elapsed().as_nanos() as f64 / (calls as f64 * packets_per_call as f64));
    }
    median(&samples)
}

/// Encapsulates and decapsulates a burst in place, round and round: after a round trip each
/// frame holds its inner packet again, at the same offset.
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
    let mut enc_verdicts: [Result<Prepared, DropReason>; BURST] = [Err(DropReason::NoSa); BURST];
    let mut dec_verdicts: [Result<Decapsulated, DropReason>; BURST] = [Err(DropReason::Truncated); BURST];
    let mut locs: Vec<IpsecLocation> = Vec::with_capacity(BURST);
    measure(work, BURST, || {
        let mut pkts: Vec<PacketBuf<'_>> =
            frames.iter_mut().zip(&lens).map(|(f, &len)| PacketBuf::new(f, HEADROOM, len)).collect();
        tx.encapsulate_burst(&mut pkts, &mut enc_verdicts);
        locs.clear();
        for p in &pkts {
            match parse_outer(p.data(), 4500) {
                Ok(Received::Ipsec(loc)) => locs.push(loc),
                other => panic!("not ESP: {other:?}"),
            }
        }
        rx.decapsulate_burst(&mut pkts, &locs, &mut dec_verdicts);
        debug_assert!(dec_verdicts.iter().all(|v| v.is_ok()));
    })
}

/// Seals and opens the same bytes the pipeline encrypts (padded inner packets), in place.
fn bare_crypto(suite: Suite, backend: Backend, mix: &Mix, work: Work) -> f64 {
    let enc = config(suite, Direction::Outbound);
    let sa = SaCrypto::new(suite, &enc.encryption_key, &enc.integrity_key, backend).unwrap();
    let lens: Vec<usize> = (0..BURST).map(|i| mix.lens[i % mix.lens.len()]).collect();
    let mut bufs: Vec<Vec<u8>> = lens
        .iter()
        .map(|&len| {
            let block = suite.block_len();
            let padded = (len + 2).div_ceil(block) * block;
            let mut b = vec![0u8; 8 + suite.iv_len() + padded + suite.icv_len()];
            b[0..4].copy_from_slice(&0x1000u32.to_be_bytes());
            b
        })
        .collect();
    let mut seq = 0u64;
    measure(work, BURST, || {
        let mut ops: Vec<SealOp<'_>> = bufs
            .iter_mut()
            .map(|b| {
                seq += 1;
                b[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
                SealOp { sa: &sa, esp: b, seq, esn: false }
            })
            .collect();
        rampart_crypto::seal_burst(&mut ops).unwrap();
        let mut ops: Vec<OpenOp<'_>> = ops
            .into_iter()
            .map(|op| OpenOp { sa: &sa, esp: op.esp, seq: op.seq, esn: false, verified: false })
            .collect();
        rampart_crypto::open_burst(&mut ops);
        debug_assert!(ops.iter().all(|o| o.verified));
    })
}

fn arg_value(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
}

fn main() {
    if let Some(rounds) = arg_value("--fixed") {
        let len = arg_value("--size").unwrap_or(1400);
        let suite = Suite::new(Encryption::AesGcm16 { key_bits: 128 }, Integrity::None).unwrap();
        let mix = Mix { name: "fixed", lens: vec![len] };
        let backend = Backend::fastest(suite);
        bare_crypto(suite, backend, &mix, Work::Fixed(rounds));
        pipeline(suite, backend, &mix, Work::Fixed(rounds));
        println!("{rounds} bursts of {BURST} x {len}-byte packets each way, {suite}, {}", backend.name());
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (period, reps) = if quick { (Duration::from_millis(100), 3) } else { (Duration::from_millis(400), 5) };
    let work = Work::Timed { period, reps };
    let cpu = pin_current_thread();
    println!(
        "ESP encapsulation + decapsulation vs bare crypto (seal + open), one core (cpu {cpu:?}), bursts of {BURST}"
    );
    println!("inner packets IPv4/UDP, tunnel mode, IPv4 outer; Gbit/s counts inner bytes once\n");
    let suites = [
        Suite::new(Encryption::AesGcm16 { key_bits: 128 }, Integrity::None).unwrap(),
        Suite::new(Encryption::AesGcm16 { key_bits: 256 }, Integrity::None).unwrap(),
        Suite::new(Encryption::ChaCha20Poly1305, Integrity::None).unwrap(),
        Suite::new(Encryption::AesCbc { key_bits: 128 }, Integrity::HmacSha256_128).unwrap(),
    ];
    let mut table =
        Table::new(&["suite", "backend", "size", "crypto ns/pkt", "ESP ns/pkt", "ESP Gbit/s", "ESP/crypto"]);
    for suite in suites {
        for backend in Backend::for_suite(suite) {
            for mix in mixes() {
                let avg_len = mix.lens.iter().sum::<usize>() as f64 / mix.lens.len() as f64;
                let crypto = bare_crypto(suite, backend, &mix, work);
                let esp = pipeline(suite, backend, &mix, work);
                table.row(vec![
                    suite.to_string(),
                    backend.name().to_string(),
                    mix.name.to_string(),
                    format!("{crypto:.1}"),
                    format!("{esp:.1}"),
                    format!("{:.2}", gbit_per_s(avg_len as usize, esp)),
                    format!("{:.2}x", esp / crypto),
                ]);
            }
            table.gap();
        }
    }
    print!("{}", table.render());
    println!("\n(each figure: round trip, i.e. one seal and one open per packet; median of {reps} runs)");
}
