//! Behaviour of the burst API on ESP packets: round trips for every suite, backend, ESN mode
//! and several lengths; packets crossing backends; tampering with any bit; the ESN high half;
//! IV rules; layout checks; mixed bursts longer than `MAX_BURST`; and a property test that the
//! two backends produce the same bytes.

mod common;

use common::{body, body_range, every_suite, lengths, packet, sa};
use rampart_crypto::{
    Backend, CryptoError, Encryption, MAX_BURST, OpenOp, SaCrypto, SealOp, Suite, open_burst, seal_burst,
};

const SPI: u32 = 0xC0DE_0042;

fn seal_one(sa: &SaCrypto, esp: &mut [u8], seq: u64, esn: bool) -> Result<(), CryptoError> {
    seal_burst(&mut [SealOp { sa, esp, seq, esn }])
}

fn open_one(sa: &SaCrypto, esp: &mut [u8], seq: u64, esn: bool) -> bool {
    let mut ops = [OpenOp { sa, esp, seq, esn, verified: false }];
    open_burst(&mut ops);
    ops[0].verified
}

fn seq_for(esn: bool) -> u64 {
    if esn { 0x0000_0003_8000_0011 } else { 0x8000_0011 }
}

#[test]
fn round_trip_every_suite_backend_esn_and_length() {
    let mut run = 0;
    for suite in every_suite() {
        for backend in Backend::for_suite(suite) {
            let sa = sa(suite, backend);
            for esn in [false, true] {
                let seq = seq_for(esn);
                for len in lengths(suite) {
                    let plain = body(len, 0x5A);
                    let mut esp = packet(suite, SPI, seq, &plain);
                    seal_one(&sa, &mut esp, seq, esn).unwrap();
                    let range = body_range(suite, esp.len());
                    let icv = &esp[range.end..];
                    assert!(icv.iter().any(|&b| b != 0), "{suite} {backend:?}: ICV not written");
                    match suite.encryption() {
                        Encryption::Null => assert_eq!(esp[range.clone()], plain[..], "NULL leaves the body"),
                        _ => assert_ne!(esp[range.clone()], plain[..], "{suite} {backend:?} len {len}: not encrypted"),
                    }
                    if suite.is_aead() {
                        assert_eq!(esp[8..16], seq.to_be_bytes(), "{suite}: AEAD IV is the 64-bit sequence number");
                    }
                    assert!(open_one(&sa, &mut esp, seq, esn), "{suite} {backend:?} esn {esn} len {len}");
                    assert_eq!(esp[range], plain[..], "{suite} {backend:?} esn {esn} len {len}");
                    run += 1;
                }
            }
        }
    }
    assert!(run >= 13 * 2 * 8, "only {run} round trips");
}

#[test]
fn packets_cross_backends() {
    for suite in every_suite() {
        let backends = Backend::for_suite(suite);
        for &a in &backends {
            for &b in &backends {
                let (sa_a, sa_b) = (sa(suite, a), sa(suite, b));
                for esn in [false, true] {
                    let seq = seq_for(esn);
                    let plain = body(4 * suite.block_len(), 1);
                    let mut esp = packet(suite, SPI, seq, &plain);
                    seal_one(&sa_a, &mut esp, seq, esn).unwrap();
                    assert!(open_one(&sa_b, &mut esp, seq, esn), "{suite}: sealed by {a:?}, opened by {b:?}");
                    assert_eq!(esp[body_range(suite, esp.len())], plain[..]);
                }
            }
        }
    }
}

/// Flipping any single bit of SPI, sequence number, IV, ciphertext or ICV makes the open fail,
/// and the failed open leaves the encrypted region zeroed.
#[test]
fn any_flipped_bit_fails_open() {
    for suite in every_suite() {
        for backend in Backend::for_suite(suite) {
            let sa = sa(suite, backend);
            for esn in [false, true] {
                let seq = seq_for(esn);
                let mut sealed = packet(suite, SPI, seq, &body(suite.block_len() * 2, 9));
                seal_one(&sa, &mut sealed, seq, esn).unwrap();
                let range = body_range(suite, sealed.len());
                for bit in 0..sealed.len() * 8 {
                    let mut esp = sealed.clone();
                    esp[bit / 8] ^= 1 << (bit % 8);
                    // A receiver takes the low half of the sequence number from the wire.
                    let wire_low = u64::from(u32::from_be_bytes(esp[4..8].try_into().unwrap()));
                    let seen_seq = (seq & !0xFFFF_FFFF) | wire_low;
                    assert!(
                        !open_one(&sa, &mut esp, seen_seq, esn),
                        "{suite} {backend:?} esn {esn}: bit {bit} flipped, still opens"
                    );
                    assert!(
                        esp[range.clone()].iter().all(|&b| b == 0),
                        "{suite} {backend:?}: bit {bit}: body not wiped"
                    );
                }
            }
        }
    }
}

#[test]
fn wrong_esn_high_half_fails() {
    for suite in every_suite() {
        for backend in Backend::for_suite(suite) {
            let sa = sa(suite, backend);
            let seq = 0x0000_0002_0000_0007;
            let mut sealed = packet(suite, SPI, seq, &body(suite.block_len(), 3));
            seal_one(&sa, &mut sealed, seq, true).unwrap();
            let mut esp = sealed.clone();
            assert!(!open_one(&sa, &mut esp, 0x0000_0003_0000_0007, true), "{suite} {backend:?}: high half +1");
            let mut esp = sealed.clone();
            assert!(!open_one(&sa, &mut esp, 0x0000_0001_0000_0007, true), "{suite} {backend:?}: high half -1");
            // Sealed with ESN and high half 0, opened as a 32-bit SA: the authenticated data differ.
            let mut esp = packet(suite, SPI, 7, &body(suite.block_len(), 3));
            seal_one(&sa, &mut esp, 7, true).unwrap();
            assert!(!open_one(&sa, &mut esp.clone(), 7, false), "{suite} {backend:?}: ESN on vs off");
            assert!(open_one(&sa, &mut esp, 7, true));
        }
    }
}

#[test]
fn open_refuses_a_sequence_number_that_is_not_the_wire_one() {
    let suite = Suite::all()[0];
    let sa = sa(suite, Backend::available()[0]);
    let mut esp = packet(suite, SPI, 5, &body(8, 0));
    seal_one(&sa, &mut esp, 5, false).unwrap();
    assert!(!open_one(&sa, &mut esp.clone(), 6, false));
    assert!(!open_one(&sa, &mut esp.clone(), (1 << 32) | 5, false), "beyond 32 bits without ESN");
    assert!(open_one(&sa, &mut esp, 5, false));
}

#[test]
fn cbc_iv_is_unique_per_sequence_number_and_unpredictable_across_sas() {
    for suite in every_suite().into_iter().filter(|s| matches!(s.encryption(), Encryption::AesCbc { .. })) {
        for backend in Backend::for_suite(suite) {
            let (one, two) = (sa(suite, backend), sa(suite, backend));
            let iv_of = |sa: &SaCrypto, seq: u64| {
                let mut esp = packet(suite, SPI, seq, &body(16, 0));
                seal_one(sa, &mut esp, seq, true).unwrap();
                esp[8..24].to_vec()
            };
            let mut seen = std::collections::HashSet::new();
            for seq in (1..200u64).chain([u64::from(u32::MAX), 1 << 32, u64::MAX]) {
                let iv = iv_of(&one, seq);
                assert_ne!(iv, [0u8; 16]);
                assert_ne!(iv[8..], seq.to_be_bytes(), "IV must not be the bare sequence number");
                assert!(seen.insert(iv.clone()), "{suite}: IV repeated at seq {seq}");
                assert_eq!(iv, iv_of(&one, seq), "IV is a function of the sequence number");
            }
            // Same keys, another SA context: another secret IV key, other IVs.
            assert_ne!(iv_of(&one, 1), iv_of(&two, 1), "{suite}: IVs predictable across SAs");
        }
    }
}

#[test]
fn seal_checks_every_layout_before_sealing_anything() {
    let suite = Suite::from_swanctl("aes128-sha256").unwrap();
    let sa = sa(suite, Backend::available()[0]);
    let good = packet(suite, SPI, 1, &body(32, 0));
    let bad_cases: Vec<(Vec<u8>, u64, bool)> = vec![
        (packet(suite, SPI, 2, &body(30, 0)), 2, false), // not a multiple of 16
        (vec![0u8; 8 + 16 + 16 - 1], 0, false),          // too short
        (packet(suite, SPI, 3, &[]), 3, false),          // empty body
        (packet(suite, SPI, 4, &body(16, 0)), 5, false), // seq low mismatch
        (packet(suite, SPI, 4, &body(16, 0)), (1 << 32) | 4, false), // 33-bit seq without ESN
    ];
    for (mut bad, seq, esn) in bad_cases {
        let mut a = good.clone();
        let mut c = good.clone();
        let before = bad.clone();
        let mut ops = [
            SealOp { sa: &sa, esp: &mut a, seq: 1, esn: false },
            SealOp { sa: &sa, esp: &mut bad, seq, esn },
            SealOp { sa: &sa, esp: &mut c, seq: 1, esn: false },
        ];
        assert_eq!(seal_burst(&mut ops), Err(CryptoError::BadLayout { index: 1 }));
        assert_eq!(a, good, "op 0 was sealed although the burst was refused");
        assert_eq!(c, good);
        assert_eq!(bad, before);
    }
    // AEAD: the encrypted region must be a multiple of 4.
    let gcm = Suite::all()[0];
    let gcm_sa = common::sa(gcm, Backend::available()[0]);
    let mut esp = packet(gcm, SPI, 1, &body(6, 0));
    assert_eq!(seal_one(&gcm_sa, &mut esp, 1, false), Err(CryptoError::BadLayout { index: 0 }));
}

#[test]
fn open_of_any_short_or_misaligned_length_is_refused_without_panic() {
    for suite in every_suite() {
        for backend in Backend::for_suite(suite) {
            let sa = sa(suite, backend);
            for len in 0..(8 + suite.iv_len() + suite.icv_len() + 2) {
                let mut esp = vec![0xAB; len];
                if len >= 8 {
                    esp[4..8].copy_from_slice(&1u32.to_be_bytes());
                }
                assert!(!open_one(&sa, &mut esp, 1, false), "{suite}: {len} bytes");
            }
            if suite.block_len() == 16 {
                let mut esp = packet(suite, SPI, 1, &body(17, 0));
                assert!(!open_one(&sa, &mut esp, 1, false), "{suite}: CBC body not a block multiple");
            }
        }
    }
}

/// One burst of 3 * MAX_BURST + 5 packets over several SAs, suites and backends, with ESN on
/// and off: every packet comes out as if sealed alone, and all of them open.
#[test]
fn mixed_bursts_longer_than_max_burst() {
    let mut sas = Vec::new();
    for suite in every_suite() {
        for backend in Backend::for_suite(suite) {
            sas.push(sa(suite, backend));
        }
    }
    let n = 3 * MAX_BURST + 5;
    let spec: Vec<(usize, u64, bool, Vec<u8>)> = (0..n)
        .map(|i| {
            let s = i % sas.len();
            let esn = i % 3 == 0;
            let seq = if esn { (7 << 32) | i as u64 } else { 100 + i as u64 };
            let suite = sas[s].suite();
            let len = suite.block_len() * (1 + i % 5);
            (s, seq, esn, packet(suite, SPI + s as u32, seq, &body(len, i as u8)))
        })
        .collect();
    let mut bufs: Vec<Vec<u8>> = spec.iter().map(|t| t.3.clone()).collect();
    let mut ops: Vec<SealOp<'_>> =
        bufs.iter_mut().zip(&spec).map(|(esp, &(s, seq, esn, _))| SealOp { sa: &sas[s], esp, seq, esn }).collect();
    seal_burst(&mut ops).unwrap();
    drop(ops);
    for (i, (s, seq, esn, plain)) in spec.iter().enumerate() {
        let mut alone = plain.clone();
        seal_one(&sas[*s], &mut alone, *seq, *esn).unwrap();
        assert_eq!(bufs[i], alone, "packet {i} differs from sealing it alone");
    }
    let mut ops: Vec<OpenOp<'_>> = bufs
        .iter_mut()
        .zip(&spec)
        .map(|(esp, &(s, seq, esn, _))| OpenOp { sa: &sas[s], esp, seq, esn, verified: false })
        .collect();
    // Corrupt one packet in the middle of the second chunk: only that one fails.
    let victim = MAX_BURST + 7;
    let last = ops[victim].esp.len() - 1;
    ops[victim].esp[last] ^= 0x80;
    open_burst(&mut ops);
    for (i, op) in ops.iter().enumerate() {
        assert_eq!(op.verified, i != victim, "packet {i}");
    }
    drop(ops);
    for (i, (_, _, _, plain)) in spec.iter().enumerate().filter(|&(i, _)| i != victim) {
        let suite = sas[spec[i].0].suite();
        let r = body_range(suite, plain.len());
        assert_eq!(bufs[i][r.clone()], plain[r], "packet {i} plaintext");
    }
}

#[test]
fn empty_burst_is_fine() {
    seal_burst(&mut []).unwrap();
    open_burst(&mut []);
}

/// Differential property test between the two backends (needs both compiled in).
#[cfg(all(feature = "ring", feature = "rustcrypto"))]
mod backends_agree {
    use super::*;
    use proptest::prelude::*;
    use rampart_crypto::raw;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The two backends are independent implementations of the same suites: for the same keys,
        /// sequence number and IV they must produce the same packet, byte for byte.
        #[test]
        fn backends_agree_byte_for_byte(
            suite_index in 0usize..13,
            blocks in 1usize..40,
            seq in any::<u64>(),
            esn in any::<bool>(),
            fill in any::<u8>(),
            iv_seed in any::<u8>(),
        ) {
            let suite = every_suite()[suite_index];
            let backends = Backend::for_suite(suite);
            let seq = if esn { seq } else { seq & 0xFFFF_FFFF };
            let plain = body(blocks * suite.block_len(), fill);
            let iv: Vec<u8> = (0..suite.iv_len() as u8).map(|i| i.wrapping_mul(iv_seed)).collect();
            let mut outputs = Vec::new();
            for backend in backends {
                let sa = sa(suite, backend);
                let mut esp = packet(suite, SPI, seq, &plain);
                let mut op = SealOp { sa: &sa, esp: &mut esp, seq, esn };
                if suite.is_aead() {
                    seal_burst(std::slice::from_mut(&mut op)).unwrap();
                } else {
                    raw::seal_with_iv(&mut op, &iv).unwrap();
                }
                outputs.push(esp);
            }
            prop_assert_eq!(&outputs[0], &outputs[1]);
        }
    }
}
