//! Crypto benchmark: nanoseconds per packet and Gbit/s of `seal_burst` and `open_burst` for
//! every suite and backend, in bursts of 32 ESP packets, at 64, 256, 512, 1400 and 8192 bytes
//! of payload (rounded up to the suite's block for CBC). For the AEADs, a third row runs the
//! `ring` AEAD directly on the same buffers (no ESP framing), so that the cost of Rampart's
//! layer shows as a ratio. One thread, pinned when possible; warm-up, then several
//! repetitions in which the engines take turns; each repetition's value is its median burst,
//! and the table shows the median of the repetitions. Ends with the backend each suite family
//! should default to.
//!
//! Run: `cargo run --release -p rampart-bench --bin crypto [-- --quick] [-- --filter gcm]`.
//! It measures and prints; it must never assert on a timing.
#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use rampart_bench::{Table, gbit_per_s, median, pin_current_thread, warm_up};
use rampart_crypto::{Backend, Encryption, OpenOp, SaCrypto, SealOp, Suite, open_burst, seal_burst};

/// Payload sizes (bytes of the encrypted region: payload, padding, pad length, next header).
const SIZES: [usize; 5] = [64, 256, 512, 1400, 8192];
/// Packets per burst.
const BURST: usize = 32;
/// SPI of the benchmark packets.
const SPI: u32 = 0x0B3E_0001;

struct Settings {
    reps: usize,
    rep_time: Duration,
    warm_time: Duration,
    filter: Option<String>,
}

impl Settings {
    fn from_args() -> Settings {
        let mut s = Settings {
            reps: 7,
            rep_time: Duration::from_millis(40),
            warm_time: Duration::from_millis(60),
            filter: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    s.reps = 3;
                    s.rep_time = Duration::from_millis(8);
                    s.warm_time = Duration::from_millis(10);
                }
                "--reps" => s.reps = args.next().and_then(|v| v.parse().ok()).unwrap_or(s.reps).max(1),
                "--filter" => s.filter = args.next(),
                "-h" | "--help" => {
                    println!("usage: crypto [--quick] [--reps N] [--filter SUITE-SUBSTRING]");
                    std::process::exit(0);
                }
                other => {
                    eprintln!("unknown argument '{other}' (try --help)");
                    std::process::exit(2);
                }
            }
        }
        s
    }
}

/// What one row measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// Rampart's burst API on one backend.
    Rampart(Backend),
    /// The `ring` AEAD called directly on the encrypted region (AEAD suites only).
    RingDirect,
}

impl Engine {
    fn label(self) -> String {
        match self {
            Engine::Rampart(b) => b.name().to_string(),
            Engine::RingDirect => "ring (direct)".to_string(),
        }
    }
}

/// Median nanoseconds per packet.
#[derive(Clone, Copy)]
struct Result {
    seal_ns: f64,
    open_ns: f64,
}

fn keys(suite: Suite) -> (Vec<u8>, Vec<u8>) {
    let e = (0..suite.encryption_key_len()).map(|i| (i * 37 + 11) as u8).collect();
    let i = (0..suite.integrity_key_len()).map(|i| (i * 53 + 5) as u8).collect();
    (e, i)
}

fn body_len(suite: Suite, size: usize) -> usize {
    size.div_ceil(suite.block_len()) * suite.block_len()
}

/// One burst of packet buffers of `suite` with `body` bytes of payload each.
fn buffers(suite: Suite, body: usize) -> Vec<Vec<u8>> {
    (0..BURST)
        .map(|p| {
            let mut b = vec![0u8; 8 + suite.iv_len() + body + suite.icv_len()];
            b[..4].copy_from_slice(&SPI.to_be_bytes());
            for (i, x) in b[8 + suite.iv_len()..].iter_mut().enumerate() {
                *x = (i + p) as u8;
            }
            b
        })
        .collect()
}

/// Per-burst samples of one repetition, in nanoseconds per packet.
#[derive(Default)]
struct Samples {
    seal: Vec<f64>,
    open: Vec<f64>,
}

impl Samples {
    fn push(&mut self, seal: Duration, open: Duration) {
        self.seal.push(seal.as_nanos() as f64 / BURST as f64);
        self.open.push(open.as_nanos() as f64 / BURST as f64);
    }

    /// The median burst of this repetition: a burst that a context switch or an interrupt
    /// landed in is an outlier and does not move it.
    fn medians(&self) -> (f64, f64) {
        (median(&self.seal), median(&self.open))
    }
}

/// What one engine needs to run: its keys and its own burst of buffers.
enum Runner {
    Rampart { sa: Box<SaCrypto>, bufs: Vec<Vec<u8>>, seq: u64 },
    RingDirect { key: Box<ring::aead::LessSafeKey>, salt: [u8; 4], body_start: usize, bufs: Vec<Vec<u8>>, seq: u64 },
}

impl Runner {
    fn new(engine: Engine, suite: Suite, size: usize) -> Runner {
        let (enc, integ) = keys(suite);
        let bufs = buffers(suite, body_len(suite, size));
        match engine {
            Engine::Rampart(backend) => {
                let sa = SaCrypto::new(suite, &enc, &integ, backend).expect("benchmark keys fit");
                Runner::Rampart { sa: Box::new(sa), bufs, seq: 1 }
            }
            Engine::RingDirect => {
                let algorithm = match suite.encryption() {
                    Encryption::AesGcm16 { key_bits: 128 } => &ring::aead::AES_128_GCM,
                    Encryption::AesGcm16 { .. } => &ring::aead::AES_256_GCM,
                    _ => &ring::aead::CHACHA20_POLY1305,
                };
                let (k, s) = enc.split_at(enc.len() - 4);
                let key = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(algorithm, k).expect("key length"));
                Runner::RingDirect {
                    key: Box::new(key),
                    salt: [s[0], s[1], s[2], s[3]],
                    body_start: 8 + suite.iv_len(),
                    bufs,
                    seq: 1,
                }
            }
        }
    }

    /// Alternates seal and open bursts for `period`, timing each call.
    fn run(&mut self, period: Duration) -> Samples {
        let mut samples = Samples::default();
        let start = Instant::now();
        while start.elapsed() < period {
            let (seal, open) = match self {
                Runner::Rampart { sa, bufs, seq } => rampart_burst(sa, bufs, seq),
                Runner::RingDirect { key, salt, body_start, bufs, seq } => {
                    ring_direct_burst(key, *salt, *body_start, bufs, seq)
                }
            };
            samples.push(seal, open);
        }
        samples
    }
}

/// One burst through Rampart's API: seal, then open the same packets.
fn rampart_burst(sa: &SaCrypto, bufs: &mut [Vec<u8>], seq: &mut u64) -> (Duration, Duration) {
    let base = *seq;
    *seq += BURST as u64;
    for (i, b) in bufs.iter_mut().enumerate() {
        b[4..8].copy_from_slice(&((base + i as u64) as u32).to_be_bytes());
    }
    let mut it = bufs.iter_mut();
    let mut seal_ops: [SealOp<'_>; BURST] = std::array::from_fn(|i| SealOp {
        sa,
        esp: it.next().map(Vec::as_mut_slice).unwrap_or_default(),
        seq: base + i as u64,
        esn: true,
    });
    let t0 = Instant::now();
    let sealed = seal_burst(black_box(&mut seal_ops));
    let t1 = Instant::now();
    sealed.expect("benchmark packets fit the layout");

    let mut it = bufs.iter_mut();
    let mut ops: [OpenOp<'_>; BURST] = std::array::from_fn(|i| OpenOp {
        sa,
        esp: it.next().map(Vec::as_mut_slice).unwrap_or_default(),
        seq: base + i as u64,
        esn: true,
        verified: false,
    });
    let t2 = Instant::now();
    open_burst(black_box(&mut ops));
    let t3 = Instant::now();
    assert!(ops.iter().all(|op| op.verified), "a benchmark packet failed to open");
    (t1 - t0, t3 - t2)
}

/// The same burst with `ring`'s AEAD called directly: nonce = salt || seq, AAD = SPI || seq
/// high || seq low, tag after the body. No layout checks, no dispatch, no IV write.
fn ring_direct_burst(
    key: &ring::aead::LessSafeKey,
    salt: [u8; 4],
    body_start: usize,
    bufs: &mut [Vec<u8>],
    seq: &mut u64,
) -> (Duration, Duration) {
    use ring::aead::{Aad, Nonce, Tag};
    let nonce_of = |s: u64| {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&salt);
        n[4..].copy_from_slice(&s.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let aad_of = |s: u64| {
        let mut a = [0u8; 12];
        a[..4].copy_from_slice(&SPI.to_be_bytes());
        a[4..8].copy_from_slice(&((s >> 32) as u32).to_be_bytes());
        a[8..].copy_from_slice(&(s as u32).to_be_bytes());
        a
    };
    let base = *seq;
    *seq += BURST as u64;
    let t0 = Instant::now();
    for (i, b) in bufs.iter_mut().enumerate() {
        let s = base + i as u64;
        let icv_start = b.len() - 16;
        let (head, icv) = b.split_at_mut(icv_start);
        let tag = key
            .seal_in_place_separate_tag(nonce_of(s), Aad::from(aad_of(s)), &mut head[body_start..])
            .expect("ring seal");
        icv.copy_from_slice(tag.as_ref());
    }
    let t1 = Instant::now();
    let mut ok = true;
    for (i, b) in bufs.iter_mut().enumerate() {
        let s = base + i as u64;
        let icv_start = b.len() - 16;
        let (head, icv) = b.split_at_mut(icv_start);
        let tag = Tag::try_from(&icv[..]).expect("16-byte tag");
        ok &= key
            .open_in_place_separate_tag(nonce_of(s), Aad::from(aad_of(s)), tag, &mut head[body_start..], 0..)
            .is_ok();
    }
    let t2 = Instant::now();
    assert!(ok, "a benchmark packet failed to open");
    (t1 - t0, t2 - t1)
}

/// Measures `engines` on one suite and size. The engines take turns repetition by repetition,
/// so that a slow spell of the machine hits all of them alike and the ratios stay fair.
fn measure(engines: &[Engine], suite: Suite, size: usize, settings: &Settings) -> Vec<Result> {
    let mut runners: Vec<Runner> = engines.iter().map(|&e| Runner::new(e, suite, size)).collect();
    for runner in &mut runners {
        warm_up(settings.warm_time, || {
            runner.run(Duration::from_millis(1));
        });
    }
    let mut reps: Vec<Vec<(f64, f64)>> = vec![Vec::new(); runners.len()];
    for _ in 0..settings.reps {
        for (runner, out) in runners.iter_mut().zip(&mut reps) {
            out.push(runner.run(settings.rep_time).medians());
        }
    }
    reps.iter()
        .map(|r| {
            let seal: Vec<f64> = r.iter().map(|x| x.0).collect();
            let open: Vec<f64> = r.iter().map(|x| x.1).collect();
            Result { seal_ns: median(&seal), open_ns: median(&open) }
        })
        .collect()
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let has: Vec<&str> = ["aes", "vaes", "vpclmulqdq", "avx2", "avx512f", "sha_ni"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    format!("{} [{}]", field("model name"), has.join(" "))
}

fn fmt(x: f64, digits: usize) -> String {
    format!("{x:.digits$}")
}

fn main() {
    let settings = Settings::from_args();
    let pinned = pin_current_thread();
    println!("rampart crypto benchmark");
    println!("cpu: {}", cpu_model());
    println!(
        "thread pinned to cpu {}; burst {BURST}; ESN on; {} repetitions of {:?} after {:?} warm-up; medians",
        pinned.map_or("(not pinned)".to_string(), |c| c.to_string()),
        settings.reps,
        settings.rep_time,
        settings.warm_time
    );
    println!("size = bytes of the encrypted region per packet (CBC rounds up to 16); Gbit/s counts those bytes");
    println!();

    let suites: Vec<Suite> =
        Suite::all().into_iter().filter(|s| settings.filter.as_deref().is_none_or(|f| s.name().contains(f))).collect();
    let reference = Backend::available()[0];

    let mut table = Table::new(&[
        "suite",
        "size",
        "engine",
        "seal ns/pkt",
        "seal Gbit/s",
        "open ns/pkt",
        "open Gbit/s",
        &format!("seal x {}", reference.name()),
        &format!("open x {}", reference.name()),
    ]);
    let mut summary =
        Table::new(&["suite", "backend", "seal+open ns (64+512+1400 B)", "x fastest", "Backend::fastest"]);
    for suite in &suites {
        // Every backend that implements the suite (the multi-buffer one: AES-GCM only).
        let backends = Backend::for_suite(*suite);
        let mut engines: Vec<Engine> = backends.iter().map(|&b| Engine::Rampart(b)).collect();
        if suite.is_aead() {
            engines.push(Engine::RingDirect);
        }
        let mut totals: Vec<(Backend, f64)> = backends.iter().map(|&b| (b, 0.0)).collect();
        for &size in &SIZES {
            let bytes = body_len(*suite, size);
            let results: Vec<(Engine, Result)> =
                engines.iter().copied().zip(measure(&engines, *suite, size, &settings)).collect();
            let base = results[0].1;
            for (engine, r) in &results {
                table.row(vec![
                    suite.name(),
                    bytes.to_string(),
                    engine.label(),
                    fmt(r.seal_ns, 1),
                    fmt(gbit_per_s(bytes, r.seal_ns), 2),
                    fmt(r.open_ns, 1),
                    fmt(gbit_per_s(bytes, r.open_ns), 2),
                    fmt(r.seal_ns / base.seal_ns, 2),
                    fmt(r.open_ns / base.open_ns, 2),
                ]);
                if let Engine::Rampart(b) = engine
                    && [64, 512, 1400].contains(&size)
                    && let Some(t) = totals.iter_mut().find(|t| t.0 == *b)
                {
                    t.1 += r.seal_ns + r.open_ns;
                }
            }
            table.gap();
        }
        let best = totals.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
        for (backend, total) in &totals {
            let chosen = if Backend::fastest(*suite) == *backend { "chosen" } else { "" };
            summary.row(vec![
                suite.name(),
                backend.name().to_string(),
                fmt(*total, 0),
                fmt(total / best, 2),
                chosen.to_string(),
            ]);
        }
        summary.gap();
    }
    print!("{}", table.render());
    println!();
    println!("Defaults: the sum of seal and open medians at 64, 512 and 1400 bytes (an IMIX-like mix)");
    print!("{}", summary.render());
}
