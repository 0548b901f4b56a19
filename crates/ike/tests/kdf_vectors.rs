//! Key derivation and key exchange against published vectors: NIST CAVP SP 800-135 IKEv2
//! (COUNT 0, HMAC-SHA1), RFC 5903 section 8.1 (ECP-256), RFC 7748 section 6.1 (X25519).

use std::collections::HashMap;

use rampart_ike::crypto::{DhGroup, Encr, Integ, KeError, KeyShare, Prf, SeededRandom, modp2048_prime};
use rampart_ike::keys::{self, ChildKeys, IkeSaKeys};

fn load(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone()).or_default().insert(k.to_string(), v.to_string());
        }
    }
    out
}

fn hex(m: &HashMap<String, String>, k: &str) -> Vec<u8> {
    rampart_ike::hex::decode(&m[k]).unwrap_or_else(|| panic!("bad hex in {k}"))
}

#[test]
fn nist_cavp_ikev2_kdf_count0() {
    let v = &load(include_str!("data/ikev2_kdf_sp800-135_cavp_sha1_count0.txt"))[""];
    let prf = Prf::HmacSha1ForTestsOnly;
    let (ni, nr) = (hex(v, "Ni"), hex(v, "Nr"));
    let spi_i = u64::from_be_bytes(hex(v, "SPIi").try_into().unwrap());
    let spi_r = u64::from_be_bytes(hex(v, "SPIr").try_into().unwrap());
    let dkm_len = v["dkm_len_bits"].parse::<usize>().unwrap() / 8;

    let skeyseed = keys::skeyseed(prf, &ni, &nr, &hex(v, "g_ir"));
    assert_eq!(&skeyseed[..], &hex(v, "SKEYSEED")[..]);

    let dkm = prf.plus(&skeyseed, &[&ni, &nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()], dkm_len);
    assert_eq!(&dkm[..], &hex(v, "DKM")[..]);

    // The split of the same stream into the seven keys starts with SK_d.
    let k = IkeSaKeys::derive(
        prf,
        Encr::AesCbc { key_bits: 128 },
        Some(Integ::HmacSha256_128),
        &skeyseed,
        (&ni, &nr),
        (spi_i, spi_r),
    );
    assert_eq!(&k.sk_d[..], &dkm[..20]);
    assert_eq!(&k.sk_ai[..], &dkm[20..52]);
    let sk_d = &dkm[..20];

    let child = keys::child_keymat(prf, sk_d, None, &ni, &nr, dkm_len);
    assert_eq!(&child[..], &hex(v, "DKM_child_sa")[..]);
    let child_dh = keys::child_keymat(prf, sk_d, Some(&hex(v, "g_ir_new")), &ni, &nr, dkm_len);
    assert_eq!(&child_dh[..], &hex(v, "DKM_child_sa_dh")[..]);

    let rekey = keys::rekey_skeyseed(prf, sk_d, &hex(v, "g_ir_new"), &ni, &nr);
    assert_eq!(&rekey[..], &hex(v, "SKEYSEED_rekey")[..]);
}

#[test]
fn ike_sa_keys_are_consecutive_slices_of_prf_plus() {
    let prf = Prf::HmacSha256;
    let encr = Encr::AesGcm16 { key_bits: 256 };
    let (ni, nr) = ([1u8; 32], [2u8; 32]);
    let seed = keys::skeyseed(prf, &ni, &nr, &[3u8; 32]);
    let k = IkeSaKeys::derive(prf, encr, None, &seed, (&ni, &nr), (7, 9));
    let total = IkeSaKeys::material_len(prf, encr, None);
    assert_eq!(total, 3 * 32 + 2 * 36);
    let all = prf.plus(&seed, &[&ni, &nr, &7u64.to_be_bytes(), &9u64.to_be_bytes()], total);
    let joined: Vec<u8> = [&k.sk_d, &k.sk_ai, &k.sk_ar, &k.sk_ei, &k.sk_er, &k.sk_pi, &k.sk_pr]
        .iter()
        .flat_map(|x| x.iter().copied())
        .collect();
    assert_eq!(&joined[..], &all[..]);
    assert!(k.sk_ai.is_empty() && k.sk_ei.len() == 36);
}

#[test]
fn child_keys_split_initiator_first_encryption_first() {
    let km: Vec<u8> = (0u8..96).collect();
    let k = ChildKeys::split(&km, 16, 32).unwrap();
    assert_eq!(&k.encr_i[..], &km[0..16]);
    assert_eq!(&k.integ_i[..], &km[16..48]);
    assert_eq!(&k.encr_r[..], &km[48..64]);
    assert_eq!(&k.integ_r[..], &km[64..96]);
    assert!(ChildKeys::split(&km, 16, 16).is_none());
}

#[test]
fn prf_plus_stream_is_prefix_stable() {
    let long = Prf::HmacSha384.plus(b"key", &[b"seed"], 500);
    let short = Prf::HmacSha384.plus(b"key", &[b"seed"], 77);
    assert_eq!(&long[..77], &short[..]);
}

#[test]
fn rfc5903_ecp256_vector() {
    let v = &load(include_str!("data/ke_rfc5903_p256_rfc7748_x25519.txt"))["rfc5903_s8.1_ecp256_group19"];
    let i = KeyShare::from_private(DhGroup::Ecp256, &hex(v, "i")).unwrap();
    let r = KeyShare::from_private(DhGroup::Ecp256, &hex(v, "r")).unwrap();
    let gi = [hex(v, "gix"), hex(v, "giy")].concat();
    let gr = [hex(v, "grx"), hex(v, "gry")].concat();
    assert_eq!(i.public(), &gi[..]);
    assert_eq!(r.public(), &gr[..]);
    assert_eq!(&i.agree(&gr).unwrap()[..], &hex(v, "girx")[..]);
    assert_eq!(&r.agree(&gi).unwrap()[..], &hex(v, "girx")[..]);
    // A point off the curve: flip a bit of y.
    let mut bad = gr.clone();
    bad[63] ^= 1;
    assert_eq!(i.agree(&bad), Err(KeError::NotOnCurve));
    assert_eq!(i.agree(&gr[..63]), Err(KeError::Length { expected: 64, got: 63 }));
    assert_eq!(i.agree(&[0u8; 64]), Err(KeError::NotOnCurve));
}

#[test]
fn rfc7748_x25519_vector() {
    let v = &load(include_str!("data/ke_rfc5903_p256_rfc7748_x25519.txt"))["rfc7748_s6.1_x25519_group31"];
    let a = KeyShare::from_private(DhGroup::Curve25519, &hex(v, "alice_priv")).unwrap();
    assert_eq!(a.public(), &hex(v, "alice_pub")[..]);
    assert_eq!(&a.agree(&hex(v, "bob_pub")).unwrap()[..], &hex(v, "shared")[..]);
    // The all-zero point has small order: refused.
    assert_eq!(a.agree(&[0u8; 32]), Err(KeError::LowOrder));
    assert!(matches!(a.agree(&[9u8; 33]), Err(KeError::Length { .. })));
}

#[test]
fn ecp384_and_modp2048_agree_both_ways() {
    let mut rng = SeededRandom::new(5);
    for g in [DhGroup::Ecp384, DhGroup::Modp2048, DhGroup::Ecp256, DhGroup::Curve25519] {
        let a = KeyShare::generate(g, &mut rng);
        let b = KeyShare::generate(g, &mut rng);
        assert_eq!(a.public().len(), g.public_len());
        let s1 = a.agree(b.public()).unwrap();
        let s2 = b.agree(a.public()).unwrap();
        assert_eq!(&s1[..], &s2[..], "{g:?}");
        assert!(s1.iter().any(|&x| x != 0));
    }
}

#[test]
fn modp2048_prime_has_rfc3526_shape_and_public_range_is_checked() {
    let p = modp2048_prime();
    assert_eq!(p.len(), 256);
    assert!(p[..8].iter().all(|&b| b == 0xff) && p[248..].iter().all(|&b| b == 0xff));
    assert_eq!(&p[8..12], &[0xc9, 0x0f, 0xda, 0xa2]); // pi's binary expansion starts here
    let g = DhGroup::Modp2048;
    let one = {
        let mut v = vec![0u8; 256];
        v[255] = 1;
        v
    };
    assert_eq!(g.validate_public(&one), Err(KeError::OutOfRange));
    assert_eq!(g.validate_public(&[0u8; 256]), Err(KeError::OutOfRange));
    let mut p_minus_1 = p.clone();
    p_minus_1[255] -= 1;
    assert_eq!(g.validate_public(&p_minus_1), Err(KeError::OutOfRange));
    assert_eq!(g.validate_public(&p), Err(KeError::OutOfRange));
    assert_eq!(g.validate_public(&[0xff; 256]), Err(KeError::OutOfRange));
    let mut two = vec![0u8; 256];
    two[255] = 2;
    assert_eq!(g.validate_public(&two), Ok(()));
    // g^x with x = 1 is 2: the generator is right.
    let s = KeyShare::from_private(g, &[1]).unwrap();
    assert_eq!(s.public(), &two[..]);
}

/// The groups of RFC 3526 sections 4 and 5 and ECP-521 against an independent implementation:
/// Python's `pow` over the RFC 3526 primes (as OpenSSL knows them) and the `cryptography`
/// package's SECP521R1, with fixed private values (a: bytes 1.., b: the next ones).
#[test]
fn modp3072_modp4096_and_ecp521_match_an_independent_implementation() {
    let hex = |s: &str| rampart_ike::hex::decode(s).unwrap();
    let (xa, xb): (Vec<u8>, Vec<u8>) = ((1..=64).collect(), (65..=128).collect());
    for (g, public_prefix, shared_suffix) in [
        (DhGroup::Modp3072, "0526a7a4db46a66b53746f0b8f46c3f3", "c95f0c8a1b0906a919cee5980fdab424"),
        (DhGroup::Modp4096, "6ee4102132e91a811fb1c71405d91fd0", "24ce0c075ab59caaf8e39dac1f5e3db4"),
    ] {
        let a = KeyShare::from_private(g, &xa).unwrap();
        let b = KeyShare::from_private(g, &xb).unwrap();
        assert_eq!(a.public().len(), g.public_len());
        assert_eq!(&a.public()[..16], &hex(public_prefix)[..], "{g:?}");
        let s = a.agree(b.public()).unwrap();
        assert_eq!(&s[s.len() - 16..], &hex(shared_suffix)[..], "{g:?}");
        assert_eq!(&s[..], &b.agree(a.public()).unwrap()[..]);
        let mut one = vec![0u8; g.public_len()];
        *one.last_mut().unwrap() = 1;
        assert_eq!(g.validate_public(&one), Err(KeError::OutOfRange));
        assert_eq!(g.validate_public(&vec![0xff; g.public_len()]), Err(KeError::OutOfRange));
    }
    // ECP-521: private values of 66 bytes, the first cleared (Python took them mod 2^520).
    let mut da: Vec<u8> = (1..=66).collect();
    let mut db: Vec<u8> = (67..=132).collect();
    da[0] = 0;
    db[0] = 0;
    let a = KeyShare::from_private(DhGroup::Ecp521, &da).unwrap();
    let b = KeyShare::from_private(DhGroup::Ecp521, &db).unwrap();
    assert_eq!(a.public().len(), 132);
    assert_eq!(&a.public()[..16], &hex("01f7eafa08fc845f03d01f7631f407fa")[..]);
    let s = a.agree(b.public()).unwrap();
    assert_eq!(s.len(), 66);
    assert_eq!(&s[50..], &hex("6341ffab001133893604aba79c4202fc")[..]);
    let mut off = b.public().to_vec();
    off[131] ^= 1;
    assert_eq!(a.agree(&off), Err(KeError::NotOnCurve));
}
