//! Rampart's own batched AES-GCM (`rampart_crypto::vaes`) against independent references:
//! Wycheproof, the draft-mcgrew-gcm-test-01 ESP vectors, and `ring` over random inputs, on
//! every path this CPU runs (the AES-NI path is forced even where VAES exists).
#![cfg(target_arch = "x86_64")]

use rampart_crypto::vaes::{Engine, GcmKey, GcmOp, Path, TAG_LEN};

/// Every path this CPU runs; the tests print what they skip.
fn engines() -> Vec<Engine> {
    let mut v = Vec::new();
    for path in [Path::Vaes512, Path::AesNi] {
        match Engine::with_path(path) {
            Some(e) => v.push(e),
            None => eprintln!("note: this CPU does not run the {} path; not tested here", path.name()),
        }
    }
    assert!(!v.is_empty() || Engine::detect().is_none());
    v
}

/// One packet, owned, at an offset inside its allocation (to test odd alignments).
#[derive(Clone)]
struct Packet {
    key: usize,
    nonce: [u8; 12],
    aad: Vec<u8>,
    buf: Vec<u8>,
    off: usize,
    len: usize,
    tag: [u8; TAG_LEN],
    verified: bool,
}

impl Packet {
    fn new(key: usize, nonce: [u8; 12], aad: &[u8], data: &[u8], off: usize) -> Packet {
        let mut buf = vec![0xa5u8; off + data.len() + 67];
        buf[off..off + data.len()].copy_from_slice(data);
        Packet { key, nonce, aad: aad.to_vec(), buf, off, len: data.len(), tag: [0; TAG_LEN], verified: false }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.off..self.off + self.len]
    }

    /// The bytes around the data must never change.
    fn guard_intact(&self) -> bool {
        self.buf[..self.off].iter().chain(&self.buf[self.off + self.len..]).all(|&b| b == 0xa5)
    }
}

fn run(engine: &Engine, keys: &[GcmKey], pkts: &mut [Packet], seal: bool, each: bool) {
    let mut ops: Vec<GcmOp<'_>> = pkts
        .iter_mut()
        .map(|p| GcmOp {
            key: &keys[p.key],
            nonce: p.nonce,
            aad: &p.aad,
            data: &mut p.buf[p.off..p.off + p.len],
            tag: &mut p.tag,
            verified: false,
        })
        .collect();
    match (seal, each) {
        (true, false) => engine.seal_burst(&mut ops).expect("seal"),
        (true, true) => engine.seal_each(&mut ops).expect("seal"),
        (false, false) => engine.open_burst(&mut ops),
        (false, true) => engine.open_each(&mut ops),
    }
    let verified: Vec<bool> = ops.iter().map(|o| o.verified).collect();
    drop(ops);
    for (p, v) in pkts.iter_mut().zip(verified) {
        p.verified = v;
    }
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// A small deterministic generator (splitmix64): reproducible failures, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn nonce(&mut self) -> [u8; 12] {
        self.bytes(12).try_into().expect("12 bytes")
    }
}

#[test]
fn wycheproof_aes_gcm() {
    use wycheproof::TestResult;
    use wycheproof::aead::{TestName, TestSet};
    let set = TestSet::load(TestName::AesGcm).expect("wycheproof aes_gcm");
    let mut checked = 0;
    for engine in engines() {
        for group in &set.test_groups {
            if group.nonce_size != 96 || group.tag_size != 128 || !(group.key_size == 128 || group.key_size == 256) {
                continue;
            }
            // The whole group as one burst (mixed keys, lengths and AAD), and op by op.
            let keys: Vec<GcmKey> = group.tests.iter().map(|t| GcmKey::new(&t.key).expect("key")).collect();
            let mut seal: Vec<Packet> = Vec::new();
            let mut open: Vec<Packet> = Vec::new();
            for (i, t) in group.tests.iter().enumerate() {
                let nonce: [u8; 12] = t.nonce[..].try_into().expect("96-bit nonce");
                seal.push(Packet::new(i, nonce, &t.aad, &t.pt, i % 7));
                let mut o = Packet::new(i, nonce, &t.aad, &t.ct, (i * 3) % 64);
                o.tag = t.tag[..].try_into().expect("128-bit tag");
                open.push(o);
            }
            for each in [false, true] {
                let mut s = seal.clone();
                run(&engine, &keys, &mut s, true, each);
                let mut o = open.clone();
                run(&engine, &keys, &mut o, false, each);
                for (i, t) in group.tests.iter().enumerate() {
                    let ctx = format!("{:?} tcId {} ({}), each={each}", engine.path(), t.tc_id, t.comment);
                    assert!(s[i].guard_intact() && o[i].guard_intact(), "{ctx}: wrote outside the buffer");
                    match t.result {
                        TestResult::Valid | TestResult::Acceptable => {
                            assert_eq!(s[i].data(), &t.ct[..], "{ctx}: ciphertext");
                            assert_eq!(&s[i].tag[..], &t.tag[..], "{ctx}: tag");
                            assert!(o[i].verified, "{ctx}: valid tag rejected");
                            assert_eq!(o[i].data(), &t.pt[..], "{ctx}: plaintext");
                        }
                        TestResult::Invalid => {
                            assert!(!o[i].verified, "{ctx}: invalid tag accepted");
                            assert!(o[i].data().iter().all(|&b| b == 0), "{ctx}: plaintext left after failure");
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100 || Engine::detect().is_none(), "only {checked} Wycheproof cases ran");
}

#[test]
fn mcgrew_esp_vectors() {
    let text = include_str!("data/rfc4106_esp_aes_gcm_mcgrew.txt");
    let mut cases: Vec<std::collections::HashMap<String, Vec<u8>>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            cases.push(Default::default());
        } else if let Some((k, v)) = line.split_once('=')
            && !line.starts_with('#')
        {
            cases.last_mut().expect("a [case] first").insert(k.to_string(), hex(v));
        }
    }
    assert!(cases.len() >= 3, "vector file has {} cases", cases.len());
    for engine in engines() {
        for c in &cases {
            let key = GcmKey::new(&c["key"]).expect("key");
            let mut nonce = [0u8; 12];
            nonce[..4].copy_from_slice(&c["salt"]);
            nonce[4..].copy_from_slice(&c["iv"]);
            let mut p = vec![Packet::new(0, nonce, &c["aad"], &c["plaintext"], 1)];
            run(&engine, std::slice::from_ref(&key), &mut p, true, false);
            assert_eq!(p[0].data(), &c["ciphertext"][..], "{:?}", engine.path());
            assert_eq!(&p[0].tag[..], &c["icv"][..], "{:?}", engine.path());
            run(&engine, std::slice::from_ref(&key), &mut p, false, false);
            assert!(p[0].verified);
            assert_eq!(p[0].data(), &c["plaintext"][..]);
        }
    }
}

#[cfg(feature = "ring")]
mod against_ring {
    use super::*;
    use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    fn ring_seal(key: &[u8], nonce: [u8; 12], aad: &[u8], data: &[u8]) -> (Vec<u8>, [u8; 16]) {
        let alg = if key.len() == 16 { &AES_128_GCM } else { &AES_256_GCM };
        let k = LessSafeKey::new(UnboundKey::new(alg, key).expect("ring key"));
        let mut out = data.to_vec();
        let tag = k
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out)
            .expect("ring seal");
        (out, tag.as_ref().try_into().expect("16-byte tag"))
    }

    /// Seals `pkts` with the engine (burst and op by op) and ring, compares, then opens the
    /// engine's output (intact, and with one bit flipped in the data, tag or AAD).
    fn check(engine: &Engine, raw_keys: &[Vec<u8>], pkts: &[Packet], rng: &mut Rng) {
        let keys: Vec<GcmKey> = raw_keys.iter().map(|k| GcmKey::new(k).expect("key")).collect();
        let expect: Vec<(Vec<u8>, [u8; 16])> =
            pkts.iter().map(|p| ring_seal(&raw_keys[p.key], p.nonce, &p.aad, p.data())).collect();
        for each in [false, true] {
            let mut s = pkts.to_vec();
            run(engine, &keys, &mut s, true, each);
            for (i, (p, (ct, tag))) in s.iter().zip(&expect).enumerate() {
                let ctx =
                    format!("{:?} op {i} len {} aad {} off {} each={each}", engine.path(), p.len, p.aad.len(), p.off);
                assert!(p.guard_intact(), "{ctx}: wrote outside the buffer");
                assert_eq!(p.data(), &ct[..], "{ctx}: ciphertext differs from ring");
                assert_eq!(&p.tag, tag, "{ctx}: tag differs from ring");
            }
            // Open: intact ops verify; tampered ones fail and are zeroed.
            let mut o = s.clone();
            let mut tampered = vec![false; o.len()];
            for (i, p) in o.iter_mut().enumerate() {
                if rng.below(3) == 0 {
                    tampered[i] = true;
                    match rng.below(3) {
                        0 if p.len > 0 => {
                            let j = p.off + rng.below(p.len);
                            p.buf[j] ^= 1 << rng.below(8);
                        }
                        1 if !p.aad.is_empty() => {
                            let j = rng.below(p.aad.len());
                            p.aad[j] ^= 1 << rng.below(8);
                        }
                        _ => p.tag[rng.below(16)] ^= 1 << rng.below(8),
                    }
                }
            }
            run(engine, &keys, &mut o, false, each);
            for (i, p) in o.iter().enumerate() {
                let ctx = format!("{:?} open op {i} len {} each={each}", engine.path(), p.len);
                assert!(p.guard_intact(), "{ctx}: wrote outside the buffer");
                if tampered[i] {
                    assert!(!p.verified, "{ctx}: tampered op verified");
                    assert!(p.data().iter().all(|&b| b == 0), "{ctx}: plaintext left after failure");
                } else {
                    assert!(p.verified, "{ctx}: intact op rejected");
                    assert_eq!(p.data(), pkts[i].data(), "{ctx}: plaintext");
                }
            }
        }
    }

    fn random_key(rng: &mut Rng) -> Vec<u8> {
        let n = if rng.below(2) == 0 { 16 } else { 32 };
        rng.bytes(n)
    }

    #[test]
    fn every_length_0_to_2048() {
        let mut rng = Rng(1);
        for engine in engines() {
            for key_len in [16, 32] {
                let keys = vec![rng.bytes(key_len)];
                let pkts: Vec<Packet> = (0..=2048)
                    .map(|len| {
                        let aad = rng.bytes([0, 8, 12, 16, 20, 64][len % 6]);
                        let data = rng.bytes(len);
                        Packet::new(0, rng.nonce(), &aad, &data, len % 64)
                    })
                    .collect();
                for chunk in pkts.chunks(37) {
                    check(&engine, &keys, chunk, &mut rng);
                }
            }
        }
    }

    #[test]
    fn edges_of_lengths_and_aad() {
        // Block, register, small-path and wide-chunk boundaries, with every AAD layout.
        let lens = [
            0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 1536, 1537, 4031, 4032, 4033,
            4100, 8192, 9000,
        ];
        let alens = [0, 1, 8, 12, 15, 16, 17, 48, 49, 63, 64, 65, 80, 200];
        let mut rng = Rng(4);
        for engine in engines() {
            for key_len in [16, 32] {
                let keys = vec![rng.bytes(key_len)];
                for &alen in &alens {
                    let pkts: Vec<Packet> = lens
                        .iter()
                        .map(|&len| {
                            let (aad, data) = (rng.bytes(alen), rng.bytes(len));
                            Packet::new(0, rng.nonce(), &aad, &data, rng.below(64))
                        })
                        .collect();
                    check(&engine, &keys, &pkts, &mut rng);
                }
            }
        }
    }

    #[test]
    fn mixed_bursts() {
        let mut rng = Rng(2);
        for engine in engines() {
            for round in 0..300 {
                let keys: Vec<Vec<u8>> = (0..1 + rng.below(5)).map(|_| random_key(&mut rng)).collect();
                let n = rng.below(70);
                let pkts: Vec<Packet> = (0..n)
                    .map(|_| {
                        let len = match rng.below(4) {
                            0 => rng.below(65),
                            1 => rng.below(300),
                            2 => [64, 256, 257, 570, 1400, 1518][rng.below(6)],
                            _ => rng.below(2049),
                        };
                        let alen = match rng.below(4) {
                            0 => 8,
                            1 => 12,
                            2 => rng.below(65),
                            _ => rng.below(200),
                        };
                        let aad = rng.bytes(alen);
                        let data = rng.bytes(len);
                        Packet::new(rng.below(keys.len()), rng.nonce(), &aad, &data, rng.below(64))
                    })
                    .collect();
                let _ = round;
                check(&engine, &keys, &pkts, &mut rng);
            }
        }
    }

    #[test]
    fn bursts_of_one_key_small_packets() {
        // The interleaved path's group edges: 1..=40 small packets, one key.
        let mut rng = Rng(3);
        for engine in engines() {
            for n in 1..=40 {
                let keys = vec![random_key(&mut rng)];
                let pkts: Vec<Packet> = (0..n)
                    .map(|_| {
                        let len = rng.below(257);
                        let data = rng.bytes(len);
                        Packet::new(0, rng.nonce(), &rng.bytes(8), &data, rng.below(3))
                    })
                    .collect();
                check(&engine, &keys, &pkts, &mut rng);
            }
        }
    }
}

#[test]
fn key_lengths_and_debug() {
    for n in [0, 15, 17, 24, 31, 33] {
        assert!(GcmKey::new(&vec![7; n]).is_none(), "{n}-byte key accepted");
    }
    if Engine::detect().is_none() {
        return;
    }
    let key = GcmKey::new(&[0x42; 16]).expect("key");
    let dbg = format!("{key:?}");
    assert!(dbg.contains("128") && !dbg.contains("42") && !dbg.contains("66"), "{dbg}");
    let key = GcmKey::new(&[0x42; 32]).expect("key");
    assert!(format!("{key:?}").contains("256"));
}

#[test]
fn detection_matches_cpu() {
    let vaes = std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("vpclmulqdq")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl");
    let aesni = std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq");
    assert_eq!(Engine::with_path(Path::Vaes512).is_some(), vaes && aesni);
    match Engine::detect() {
        Some(e) if vaes && aesni => assert_eq!(e.path(), Path::Vaes512),
        Some(e) => assert_eq!(e.path(), Path::AesNi),
        None => assert!(!aesni),
    }
}
