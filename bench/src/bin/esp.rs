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

use std::time::Duration;

use rampart_bench::burst::{BURST, FRAME, HEADROOM, Mix, Work, arg_value, inner_packet, measure, mixes, sa_config};
use rampart_bench::{Table, gbit_per_s, pin_current_thread};
use rampart_crypto::{Backend, Encryption, Integrity, OpenOp, SaCrypto, SealOp, Suite};
use rampart_esp::{
    Decapsulated, Direction, DropReason, InboundSa, IpsecLocation, OutboundSa, PacketBuf, Prepared, Protocol, Received,
    parse_outer,
};

const PROTO: Protocol = Protocol::Esp;

/// Encapsulates and decapsulates a burst in place, round and round: after a round trip each
/// frame holds its inner packet again, at the same offset.
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
    let enc = sa_config(PROTO, suite, Direction::Outbound);
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
