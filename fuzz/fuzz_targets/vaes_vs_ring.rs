//! Rampart's batched AES-GCM (`rampart_crypto::vaes`) against `ring`: a burst built from the
//! input (1..3 keys of 16 or 32 bytes, up to 40 ops with any nonce, AAD of 0..100 bytes, data of
//! 0..2100 bytes at any offset) must seal to ring's ciphertext and tags on every path this CPU
//! runs, open back to the plaintext, and fail (with zeroed data) when one bit was flipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_crypto::vaes::{Engine, GcmKey, GcmOp, Path};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// Reads the input front to back; past its end it yields zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

struct Op {
    key: usize,
    nonce: [u8; 12],
    aad: Vec<u8>,
    buf: Vec<u8>,
    off: usize,
    len: usize,
    tag: [u8; 16],
    flip: Option<usize>,
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let raw_keys: Vec<Vec<u8>> = (0..1 + input.byte() % 3)
        .map(|_| {
            let n = if input.byte() & 1 == 0 { 16 } else { 32 };
            input.bytes(n)
        })
        .collect();
    let mut ops: Vec<Op> = (0..input.byte() % 41)
        .map(|_| {
            let key = usize::from(input.byte()) % raw_keys.len();
            let nonce: [u8; 12] = input.bytes(12).try_into().expect("12 bytes");
            let alen = usize::from(input.byte() % 101);
            let aad = input.bytes(alen);
            let len = usize::from(input.u16() % 2101);
            let off = usize::from(input.byte() % 64);
            let seed = input.byte();
            let mut buf = vec![0x5au8; off + len + 64];
            for (i, b) in buf[off..off + len].iter_mut().enumerate() {
                *b = seed.wrapping_mul(i as u8).wrapping_add(i as u8 >> 3);
            }
            let f = input.u16();
            // One op in four gets a bit flipped before opening: in the data, the AAD or the tag.
            let flip = (f % 4 == 0).then_some(usize::from(f >> 2));
            Op { key, nonce, aad, buf, off, len, tag: [0; 16], flip }
        })
        .collect();

    let keys: Vec<GcmKey> = match raw_keys.iter().map(|k| GcmKey::new(k)).collect() {
        Some(keys) => keys,
        None => return, // no AES-NI here: nothing to compare
    };
    let ring_keys: Vec<LessSafeKey> = raw_keys
        .iter()
        .map(|k| {
            let alg = if k.len() == 16 { &AES_128_GCM } else { &AES_256_GCM };
            LessSafeKey::new(UnboundKey::new(alg, k).expect("ring key"))
        })
        .collect();
    let plain: Vec<Vec<u8>> = ops.iter().map(|o| o.buf[o.off..o.off + o.len].to_vec()).collect();
    let expect: Vec<(Vec<u8>, [u8; 16])> = ops
        .iter()
        .zip(&plain)
        .map(|(o, p)| {
            let mut ct = p.clone();
            let tag = ring_keys[o.key]
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(o.nonce), Aad::from(&o.aad), &mut ct)
                .expect("ring seal");
            (ct, tag.as_ref().try_into().expect("16-byte tag"))
        })
        .collect();

    for engine in [Path::Vaes512, Path::AesNi].into_iter().filter_map(Engine::with_path) {
        // Seal: ring's ciphertext and tag, nothing written outside the data.
        let mut work: Vec<Op> = ops
            .iter()
            .map(|o| Op { key: o.key, nonce: o.nonce, aad: o.aad.clone(), buf: o.buf.clone(), tag: [0; 16], ..*o })
            .collect();
        {
            let mut burst: Vec<GcmOp<'_>> = work
                .iter_mut()
                .map(|o| GcmOp {
                    key: &keys[o.key],
                    nonce: o.nonce,
                    aad: &o.aad,
                    data: &mut o.buf[o.off..o.off + o.len],
                    tag: &mut o.tag,
                    verified: false,
                })
                .collect();
            engine.seal_burst(&mut burst).expect("seal");
        }
        for (o, (ct, tag)) in work.iter().zip(&expect) {
            assert_eq!(&o.buf[o.off..o.off + o.len], &ct[..], "{:?}: ciphertext differs from ring", engine.path());
            assert_eq!(&o.tag, tag, "{:?}: tag differs from ring", engine.path());
            assert!(o.buf[..o.off].iter().chain(&o.buf[o.off + o.len..]).all(|&b| b == 0x5a), "wrote outside");
        }
        // Open, with the chosen bits flipped.
        for o in work.iter_mut() {
            if let Some(f) = o.flip {
                let bit = 1u8 << (f % 8);
                let at = f / 8;
                let (len, alen) = (o.len, o.aad.len());
                match at % 3 {
                    0 if len > 0 => o.buf[o.off + at % len] ^= bit,
                    1 if alen > 0 => o.aad[at % alen] ^= bit,
                    _ => o.tag[at % 16] ^= bit,
                }
            }
        }
        let verified: Vec<bool> = {
            let mut burst: Vec<GcmOp<'_>> = work
                .iter_mut()
                .map(|o| GcmOp {
                    key: &keys[o.key],
                    nonce: o.nonce,
                    aad: &o.aad,
                    data: &mut o.buf[o.off..o.off + o.len],
                    tag: &mut o.tag,
                    verified: false,
                })
                .collect();
            engine.open_burst(&mut burst);
            burst.iter().map(|b| b.verified).collect()
        };
        for ((o, p), v) in work.iter().zip(&plain).zip(verified) {
            let data = &o.buf[o.off..o.off + o.len];
            if o.flip.is_some() {
                assert!(!v, "{:?}: a flipped bit verified", engine.path());
                assert!(data.iter().all(|&b| b == 0), "{:?}: plaintext left after failure", engine.path());
            } else {
                assert!(v, "{:?}: intact op rejected", engine.path());
                assert_eq!(data, &p[..], "{:?}: open did not give the plaintext back", engine.path());
            }
        }
    }
    ops.clear();
});
