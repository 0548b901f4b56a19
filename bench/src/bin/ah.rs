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

use std::time::Duration;

use rampart_bench::burst::{BURST, FRAME, HEADROOM, Mix, Work, arg_value, inner_packet, measure, mixes, sa_config};
use rampart_bench::{Table, gbit_per_s, pin_current_thread};
use rampart_crypto::{Backend, Integrity, MacOp, SaCrypto, Suite};
use rampart_esp::{
    Decapsulated, Direction, DropReason, InboundSa, IpsecLocation, OutboundSa, PacketBuf, Prepared, Protocol, Received,
    parse_outer,
};

const PROTO: Protocol = Protocol::Ah;

/// Protects and verifies a burst in place, round and round: after a round trip each frame holds
/// its inner packet again.
fn pipeline(suite: Suite, backend: Backend, mix: &Mix, work: Work) -> f64 {
    let mut tx = OutboundSa::new(&sa_config(PROTO, suite, Direction::Outbound), backend).unwrap();
    let mut rx = InboundSa::new(&sa_config(PROTO, suite, Direction::Inbound), backend).unwrap();
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
    let cfg = sa_config(PROTO, suite, Direction::Outbound);
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
