//! AES-GCM seal and open per packet on one core, in bursts of 32: `ring` (one packet per call),
//! Rampart's own engine (`rampart_crypto::vaes`, VAES and AES-NI paths, whole bursts and one
//! packet at a time) and intel-ipsec-mb's direct AES-GCM API (one packet per call), measured
//! side by side in one run. Prints ns per packet, Gbit/s and ratios to intel-ipsec-mb.
//!
//! ```text
//! cargo run --release -p rampart-bench --bin gcm [-- --key-bits 256] [--quick] [--min] [--trials N] [--only 64,IMIX]
//! ```
//! `--min` reports the fastest trial instead of the median (steadier on a loaded machine, the
//! more so with many `--trials`);
//! `--only` limits the run to the named workloads.
//! Open times exclude the copy that restores the ciphertext before each burst (measured alone
//! and subtracted). Nothing here asserts on a timing; every implementation's output is checked
//! against `ring` before it is timed.

use rampart_bench::{Table, gbit_per_s, median, pin_current_thread, warm_up};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use std::time::{Duration, Instant};

#[cfg(target_arch = "x86_64")]
use rampart_crypto::vaes::{Engine, GcmKey, GcmOp, Path};

const BURST: usize = 32;
const AAD_LEN: usize = 8;

/// The packets of one workload: `sizes.len()` is a multiple of [`BURST`].
struct Packets {
    sizes: Vec<usize>,
    data: Vec<Vec<u8>>,
    tags: Vec<[u8; 16]>,
    nonces: Vec<[u8; 12]>,
    aads: Vec<[u8; AAD_LEN]>,
    /// Ciphertext and tags sealed by ring: the input of every open.
    sealed: Vec<Vec<u8>>,
    sealed_tags: Vec<[u8; 16]>,
}

impl Packets {
    fn new(sizes: Vec<usize>, ring: &LessSafeKey) -> Packets {
        let mut x = 0x1234_5678_u32;
        let mut byte = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        };
        let data: Vec<Vec<u8>> = sizes.iter().map(|&n| (0..n).map(|_| byte()).collect()).collect();
        let nonces: Vec<[u8; 12]> = (0..sizes.len()).map(|_| core::array::from_fn(|_| byte())).collect();
        let aads: Vec<[u8; AAD_LEN]> = (0..sizes.len()).map(|_| core::array::from_fn(|_| byte())).collect();
        let mut sealed = data.clone();
        let mut sealed_tags = Vec::new();
        for i in 0..sizes.len() {
            let tag = ring
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonces[i]), Aad::from(aads[i]), &mut sealed[i])
                .expect("ring seal");
            sealed_tags.push(tag.as_ref().try_into().expect("16-byte tag"));
        }
        let tags = vec![[0u8; 16]; sizes.len()];
        Packets { sizes, data, tags, nonces, aads, sealed, sealed_tags }
    }

    fn bytes(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// Puts ring's ciphertext and tags in place, for an open.
    fn restore(&mut self) {
        for (d, s) in self.data.iter_mut().zip(&self.sealed) {
            d.copy_from_slice(s);
        }
        self.tags.copy_from_slice(&self.sealed_tags);
    }

    /// Whether the buffers hold what ring sealed.
    fn matches_sealed(&self) -> bool {
        self.data == self.sealed && self.tags == self.sealed_tags
    }
}

/// Burst-level implementation under test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Impl {
    Ring,
    #[cfg(target_arch = "x86_64")]
    Engine(Path, bool),
    #[cfg(ipsec_mb)]
    IpsecMb,
    #[cfg(ipsec_mb)]
    IpsecMbAvx2,
}

impl Impl {
    fn name(self) -> String {
        match self {
            Impl::Ring => "ring".into(),
            #[cfg(target_arch = "x86_64")]
            Impl::Engine(p, false) => format!("{} burst", p.name()),
            #[cfg(target_arch = "x86_64")]
            Impl::Engine(p, true) => format!("{} 1-by-1", p.name()),
            #[cfg(ipsec_mb)]
            Impl::IpsecMb => "ipsec-mb".into(),
            #[cfg(ipsec_mb)]
            Impl::IpsecMbAvx2 => "ipsec-mb avx2".into(),
        }
    }
}

/// Keys of one SA in every implementation's form.
struct Keys {
    ring: LessSafeKey,
    #[cfg(target_arch = "x86_64")]
    engine: Option<GcmKey>,
    #[cfg(ipsec_mb)]
    imb: Option<(rampart_bench::ipsec_mb::Manager, rampart_bench::ipsec_mb::Key)>,
    /// intel-ipsec-mb's AVX2 code (128-bit AES-NI), the like-for-like reference of our AES-NI path.
    #[cfg(ipsec_mb)]
    imb_avx2: Option<(rampart_bench::ipsec_mb::Manager, rampart_bench::ipsec_mb::Key)>,
}

/// Seals (`seal`) or opens every packet once, burst by burst. Returns false if an open failed.
fn run(imp: Impl, keys: &Keys, p: &mut Packets, seal: bool) -> bool {
    let mut ok = true;
    match imp {
        Impl::Ring => {
            for i in 0..p.sizes.len() {
                let nonce = Nonce::assume_unique_for_key(p.nonces[i]);
                if seal {
                    let t = keys.ring.seal_in_place_separate_tag(nonce, Aad::from(p.aads[i]), &mut p.data[i]);
                    p.tags[i] = t.expect("ring seal").as_ref().try_into().expect("16-byte tag");
                } else {
                    let tag = Tag::from(p.tags[i]);
                    ok &= keys
                        .ring
                        .open_in_place_separate_tag(nonce, Aad::from(p.aads[i]), tag, &mut p.data[i], 0..)
                        .is_ok();
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Impl::Engine(path, each) => {
            let engine = Engine::with_path(path).expect("checked before");
            let key = keys.engine.as_ref().expect("checked before");
            let mut data = p.data.iter_mut();
            let mut tags = p.tags.iter_mut();
            for b in 0..p.sizes.len() / BURST {
                let mut ops: [GcmOp<'_>; BURST] = core::array::from_fn(|i| GcmOp {
                    key,
                    nonce: p.nonces[b * BURST + i],
                    aad: &p.aads[b * BURST + i],
                    data: data.next().expect("burst"),
                    tag: tags.next().expect("burst"),
                    verified: false,
                });
                match (seal, each) {
                    (true, false) => engine.seal_burst(&mut ops).expect("seal"),
                    (true, true) => engine.seal_each(&mut ops).expect("seal"),
                    (false, false) => engine.open_burst(&mut ops),
                    (false, true) => engine.open_each(&mut ops),
                }
                ok &= seal || ops.iter().all(|o| o.verified);
            }
        }
        #[cfg(ipsec_mb)]
        Impl::IpsecMb | Impl::IpsecMbAvx2 => {
            let imb = if imp == Impl::IpsecMb { &keys.imb } else { &keys.imb_avx2 };
            let (mgr, key) = imb.as_ref().expect("checked before");
            for i in 0..p.sizes.len() {
                if seal {
                    mgr.seal(key, &p.nonces[i], &p.aads[i], &mut p.data[i], &mut p.tags[i]);
                } else {
                    ok &= mgr.open(key, &p.nonces[i], &p.aads[i], &mut p.data[i], &p.tags[i]);
                }
            }
        }
    }
    ok
}

struct Workload {
    name: &'static str,
    sizes: Vec<usize>,
}

fn workloads() -> Vec<Workload> {
    let mut w: Vec<Workload> = [64, 256, 512, 1400, 8192]
        .into_iter()
        .map(|n| Workload { name: Box::leak(format!("{n}").into_boxed_str()), sizes: vec![n; BURST] })
        .collect();
    // IMIX 7:4:1 of 64/570/1518 bytes, interleaved; 3 bursts hold 8 whole cycles.
    let cycle = [64, 570, 64, 64, 570, 64, 1518, 64, 570, 64, 64, 570];
    w.push(Workload { name: "IMIX", sizes: cycle.iter().copied().cycle().take(3 * BURST).collect() });
    w
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let key_bits: usize = args
        .iter()
        .position(|a| a == "--key-bits")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("--key-bits 128|256"))
        .unwrap_or(128);
    assert!(key_bits == 128 || key_bits == 256, "--key-bits 128|256");
    let use_min = args.iter().any(|a| a == "--min");
    let trials_arg: Option<usize> =
        args.iter().position(|a| a == "--trials").and_then(|i| args.get(i + 1)).map(|v| v.parse().expect("--trials N"));
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_string).collect());
    let stat = |v: &[f64]| if use_min { v.iter().copied().fold(f64::INFINITY, f64::min) } else { median(v) };
    let (mut trials, trial_time, warm) = if quick {
        (5, Duration::from_millis(2), Duration::from_millis(5))
    } else {
        (11, Duration::from_millis(8), Duration::from_millis(40))
    };

    if let Some(t) = trials_arg {
        trials = t.max(1);
    }
    let cpu = pin_current_thread();
    let raw_key: Vec<u8> = (0..key_bits / 8).map(|i| (i * 7 + 3) as u8).collect();
    let alg = if key_bits == 128 { &AES_128_GCM } else { &AES_256_GCM };
    let keys = Keys {
        ring: LessSafeKey::new(UnboundKey::new(alg, &raw_key).expect("ring key")),
        #[cfg(target_arch = "x86_64")]
        engine: GcmKey::new(&raw_key),
        #[cfg(ipsec_mb)]
        imb: rampart_bench::ipsec_mb::Manager::new().and_then(|m| m.key(&raw_key).map(|k| (m, k))),
        #[cfg(ipsec_mb)]
        imb_avx2: rampart_bench::ipsec_mb::Manager::new_avx2().and_then(|m| m.key(&raw_key).map(|k| (m, k))),
    };

    let mut imps = vec![Impl::Ring];
    #[cfg(target_arch = "x86_64")]
    for path in [Path::Vaes512, Path::AesNi] {
        if Engine::with_path(path).is_some() && keys.engine.is_some() {
            imps.push(Impl::Engine(path, false));
            imps.push(Impl::Engine(path, true));
        } else {
            println!("note: this CPU does not run the {} path", path.name());
        }
    }
    #[cfg(ipsec_mb)]
    match &keys.imb {
        Some((m, _)) => {
            println!("reference: {}", m.describe());
            imps.push(Impl::IpsecMb);
        }
        None => println!("note: intel-ipsec-mb could not start a manager here"),
    }
    #[cfg(ipsec_mb)]
    if keys.imb_avx2.is_some() {
        imps.push(Impl::IpsecMbAvx2);
    }
    #[cfg(not(ipsec_mb))]
    println!("note: built without intel-ipsec-mb (libipsec-mb-dev not installed)");
    println!(
        "AES-{key_bits}-GCM, one SA, AAD {AAD_LEN} bytes, bursts of {BURST}, one core (pinned to CPU {}), {} of {trials} trials",
        cpu.map_or("none".into(), |c| c.to_string()),
        if use_min { "fastest" } else { "median" }
    );

    let mut header = vec!["size", "op"];
    let names: Vec<String> = imps.iter().map(|i| format!("{} ns", i.name())).collect();
    header.extend(names.iter().map(String::as_str));
    let extra = ["vaes Gb/s", "vaes/imb", "aesni/imb", "aesni/imb-avx2", "ring/imb", "1-by-1/burst"];
    header.extend(extra);
    let mut table = Table::new(&header);

    for w in workloads() {
        if only.as_ref().is_some_and(|o| !o.iter().any(|n| n == w.name)) {
            continue;
        }
        let mut p = Packets::new(w.sizes.clone(), &keys.ring);
        let npkts = p.sizes.len() as f64;
        for seal in [true, false] {
            // Check every implementation against ring before timing it.
            for &imp in &imps {
                if seal {
                    p.restore();
                    // Decrypt with ring to get the plaintext back, then seal with `imp`.
                    assert!(run(Impl::Ring, &keys, &mut p, false), "ring open");
                    run(imp, &keys, &mut p, true);
                    assert!(p.matches_sealed(), "{} seal differs from ring at {}", imp.name(), w.name);
                } else {
                    p.restore();
                    assert!(run(imp, &keys, &mut p, false), "{} open failed at {}", imp.name(), w.name);
                    run(Impl::Ring, &keys, &mut p, true);
                    assert!(p.matches_sealed(), "{} open gave other plaintext at {}", imp.name(), w.name);
                }
            }
            // Time: per trial, every implementation in turn; the copy alone too when opening.
            let mut samples: Vec<Vec<f64>> = vec![Vec::new(); imps.len() + 1];
            let mut iters = vec![1usize; imps.len() + 1];
            for (k, it) in iters.iter_mut().enumerate() {
                let imp = imps.get(k).copied();
                let mut once = || {
                    if !seal {
                        p.restore();
                    }
                    if let Some(imp) = imp {
                        run(imp, &keys, &mut p, seal);
                    }
                };
                warm_up(warm, &mut once);
                let t = Instant::now();
                once();
                let one = t.elapsed().max(Duration::from_nanos(100));
                *it = (trial_time.as_nanos() / one.as_nanos()).max(1) as usize;
            }
            for _ in 0..trials {
                for (k, samples_k) in samples.iter_mut().enumerate() {
                    if seal && k == imps.len() {
                        continue;
                    }
                    let imp = imps.get(k).copied();
                    let t = Instant::now();
                    for _ in 0..iters[k] {
                        if !seal {
                            p.restore();
                        }
                        if let Some(imp) = imp {
                            run(imp, &keys, &mut p, seal);
                        }
                    }
                    samples_k.push(t.elapsed().as_nanos() as f64 / iters[k] as f64 / npkts);
                }
            }
            let copy = if seal { 0.0 } else { stat(&samples[imps.len()]) };
            let ns: Vec<f64> = imps.iter().enumerate().map(|(k, _)| stat(&samples[k]) - copy).collect();
            let of = |want: Impl| imps.iter().position(|&i| i == want).map(|k| ns[k]);
            let mut row = vec![w.name.to_string(), if seal { "seal".into() } else { "open".into() }];
            row.extend(ns.iter().map(|v| format!("{v:.1}")));
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => format!("{:.2}", a / b),
                _ => "-".into(),
            };
            #[cfg(target_arch = "x86_64")]
            let (vaes, vaes1, aesni) = (
                of(Impl::Engine(Path::Vaes512, false)),
                of(Impl::Engine(Path::Vaes512, true)),
                of(Impl::Engine(Path::AesNi, false)),
            );
            #[cfg(not(target_arch = "x86_64"))]
            let (vaes, vaes1, aesni): (Option<f64>, Option<f64>, Option<f64>) = (None, None, None);
            #[cfg(ipsec_mb)]
            let (imb, imb_avx2) = (of(Impl::IpsecMb), of(Impl::IpsecMbAvx2));
            #[cfg(not(ipsec_mb))]
            let (imb, imb_avx2): (Option<f64>, Option<f64>) = (None, None);
            let bytes_per_pkt = p.bytes() as f64 / npkts;
            row.push(vaes.map_or("-".into(), |v| format!("{:.1}", gbit_per_s(1, v / bytes_per_pkt))));
            row.push(ratio(vaes, imb));
            row.push(ratio(aesni, imb));
            row.push(ratio(aesni, imb_avx2));
            row.push(ratio(of(Impl::Ring), imb));
            row.push(ratio(vaes1, vaes));
            table.row(row);
            if !seal {
                p.restore();
            }
        }
    }
    println!();
    print!("{}", table.render());
    println!();
    println!("ns = nanoseconds per packet (IMIX: mean over 7:4:1 of 64/570/1518 bytes); open excludes the");
    println!("ciphertext copy before each burst. x/imb = time of x over intel-ipsec-mb's time (lower is");
    println!("faster); imb-avx2 = intel-ipsec-mb's AVX2 code (128-bit AES-NI), the like-for-like reference of");
    println!(
        "the AES-NI path; 1-by-1/burst = the VAES engine one packet at a time over whole bursts (interleaving gain)."
    );
}
