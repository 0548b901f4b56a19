//! Known-answer tests through the public burst API (and the raw hooks where a vector's inputs
//! are not an ESP packet), for every backend: RFC 7634 Appendix A, draft-mcgrew-gcm-test-01,
//! the GCM spec's test case 4, RFC 4868 section 2.7.2, and ESP packets computed by an
//! independent python oracle (`tests/data/gen_esp_oracle.py`).

mod common;

use common::{hex, load, to_hex};
use rampart_crypto::{Backend, OpenOp, SaCrypto, SealOp, Suite, open_burst, raw, seal_burst};

fn open_one(sa: &SaCrypto, esp: &mut [u8], seq: u64, esn: bool) -> bool {
    let mut ops = [OpenOp { sa, esp, seq, esn, verified: false }];
    open_burst(&mut ops);
    ops[0].verified
}

#[test]
fn rfc7634_appendix_a_esp_packet() {
    let v = &load("rfc7634_appA_esp_chacha20poly1305.txt")[""];
    let suite = Suite::from_swanctl("chacha20poly1305").unwrap();
    let expected = hex(&v["esp_packet"]);
    let plaintext = hex(&v["plaintext"]);
    let seq = u64::from(u32::from_str_radix(&v["seq"], 16).unwrap());
    for backend in Backend::for_suite(suite) {
        let sa = SaCrypto::new(suite, &hex(&v["keymat"]), &[], backend).unwrap();
        let mut esp = common::packet(suite, u32::from_str_radix(&v["spi"], 16).unwrap(), seq, &plaintext);
        raw::seal_with_iv(&mut SealOp { sa: &sa, esp: &mut esp, seq, esn: false }, &hex(&v["iv"])).unwrap();
        assert_eq!(to_hex(&esp), to_hex(&expected), "{backend:?}: sealed packet differs from RFC 7634 A");

        let mut wire = expected.clone();
        assert!(open_one(&sa, &mut wire, seq, false), "{backend:?}: RFC 7634 A packet does not open");
        assert_eq!(&wire[16..16 + plaintext.len()], &plaintext[..], "{backend:?}");
    }
}

#[test]
fn mcgrew_gcm_esp_packets() {
    let cases = load("rfc4106_esp_aes_gcm_mcgrew.txt");
    let mut run = 0;
    for name in ["case_min_packet_seq_ffffffff", "case_spi_0000a5f8_seq_0a"] {
        let c = &cases[name];
        let key = hex(&c["key"]);
        let suite = Suite::new(
            rampart_crypto::Encryption::AesGcm16 { key_bits: (key.len() * 8) as u16 },
            rampart_crypto::Integrity::None,
        )
        .unwrap();
        let aad = hex(&c["aad"]);
        let spi = u32::from_be_bytes(aad[..4].try_into().unwrap());
        let seq = u64::from(u32::from_be_bytes(aad[4..8].try_into().unwrap()));
        let plaintext = hex(&c["plaintext"]);
        let mut expected = aad.clone();
        expected.extend(hex(&c["iv"]));
        expected.extend(hex(&c["ciphertext"]));
        expected.extend(hex(&c["icv"]));
        let keymat = [key, hex(&c["salt"])].concat();
        for backend in Backend::for_suite(suite) {
            let sa = SaCrypto::new(suite, &keymat, &[], backend).unwrap();
            let mut esp = common::packet(suite, spi, seq, &plaintext);
            raw::seal_with_iv(&mut SealOp { sa: &sa, esp: &mut esp, seq, esn: false }, &hex(&c["iv"])).unwrap();
            assert_eq!(to_hex(&esp), to_hex(&expected), "{name} {backend:?}");
            let mut wire = expected.clone();
            assert!(open_one(&sa, &mut wire, seq, false), "{name} {backend:?}: does not open");
            assert_eq!(&wire[16..16 + plaintext.len()], &plaintext[..]);
            run += 1;
        }
    }
    // Every backend (the multi-buffer one included) implements AES-GCM.
    assert_eq!(run, 2 * Backend::available().len());
}

#[test]
fn gcm_spec_test_case_4_raw_aead() {
    let c = &load("rfc4106_esp_aes_gcm_mcgrew.txt")["gcm_spec_test_case_4"];
    let suite = Suite::from_swanctl("aes128gcm16").unwrap();
    let nonce: [u8; 12] = [hex(&c["salt"]), hex(&c["iv"])].concat().try_into().unwrap();
    let (key, aad, pt) = (hex(&c["key"]), hex(&c["aad"]), hex(&c["plaintext"]));
    assert_eq!(aad.len(), 20);
    for backend in Backend::for_suite(suite) {
        let mut buf = pt.clone();
        let tag = raw::aead_seal(backend, suite, &key, &nonce, &aad, &mut buf).unwrap();
        assert_eq!(to_hex(&buf), c["ciphertext"], "{backend:?}");
        assert_eq!(to_hex(&tag), c["icv"], "{backend:?}");
        assert!(raw::aead_open(backend, suite, &key, &nonce, &aad, &mut buf, &tag).unwrap());
        assert_eq!(buf, pt);
    }
}

#[test]
fn rfc4868_hmac_sha256_128() {
    let cases = load("rfc4868_hmac_sha256_128.txt");
    let suite = Suite::from_swanctl("null-sha256").unwrap();
    for backend in Backend::for_suite(suite) {
        // Case 1 through the raw hook ("Hi There" is shorter than any ESP packet).
        let c = &cases["case1"];
        let (key, data, icv) = (hex(&c["key"]), c["data_ascii"].as_bytes(), hex(&c["icv"]));
        assert_eq!(raw::hmac(backend, suite, &key, data).unwrap()[..16], icv[..], "{backend:?}");
        assert!(raw::icv_verify(backend, suite, &key, data, &icv).unwrap());
        let mut bad = icv.clone();
        bad[15] ^= 1;
        assert!(!raw::icv_verify(backend, suite, &key, data, &bad).unwrap());

        // Case 2 as a NULL-encryption ESP packet: "what" is the SPI, " do " the sequence
        // number, the rest the body, so the ICV of the packet is the RFC's authenticator.
        let c = &cases["case2"];
        let data = c["data_ascii"].as_bytes();
        let sa = SaCrypto::new(suite, &[], c["key_ascii"].as_bytes(), backend).unwrap_or_else(|e| panic!("{e}"));
        let seq = u64::from(u32::from_be_bytes(data[4..8].try_into().unwrap()));
        let mut esp = [data, &[0u8; 16][..]].concat();
        seal_burst(&mut [SealOp { sa: &sa, esp: &mut esp, seq, esn: false }]).unwrap();
        assert_eq!(to_hex(&esp[data.len()..]), c["icv"], "{backend:?}");
        assert!(open_one(&sa, &mut esp, seq, false));
    }
}

/// Whole packets from the python oracle: sealed through the API (with the oracle's IV for
/// CBC, with the sequence-number IV for the AEADs, which the oracle also uses) and opened.
#[test]
fn python_oracle_esp_packets() {
    let cases = load("esp_oracle_python.txt");
    let mut run = 0;
    let mut expected_runs = 0;
    for (name, c) in cases.iter().filter(|(n, _)| !n.is_empty()) {
        let suite = Suite::from_swanctl(&c["suite"]).unwrap();
        let seq = u64::from_str_radix(c["seq"].trim_start_matches("0x"), 16).unwrap();
        let esn = c["esn"] == "1";
        let expected = hex(&c["esp_packet"]);
        let plaintext = hex(&c["plaintext"]);
        let spi = u32::from_be_bytes(expected[..4].try_into().unwrap());
        expected_runs += Backend::for_suite(suite).len();
        for backend in Backend::for_suite(suite) {
            let sa = SaCrypto::new(suite, &hex(&c["enc_key"]), &hex(&c["integ_key"]), backend).unwrap();
            let mut esp = common::packet(suite, spi, seq, &plaintext);
            let mut op = SealOp { sa: &sa, esp: &mut esp, seq, esn };
            if suite.is_aead() {
                seal_burst(std::slice::from_mut(&mut op)).unwrap();
            } else {
                raw::seal_with_iv(&mut op, &hex(&c["iv"])).unwrap();
            }
            assert_eq!(to_hex(&esp), to_hex(&expected), "{name} {backend:?}");
            let mut wire = expected.clone();
            assert!(open_one(&sa, &mut wire, seq, esn), "{name} {backend:?}: does not open");
            let range = common::body_range(suite, wire.len());
            assert_eq!(wire[range], plaintext[..], "{name} {backend:?}");
            run += 1;
        }
    }
    assert_eq!(cases.len() - 1, 22, "the oracle file has 22 packets");
    assert!(expected_runs >= 22 * 2);
    assert_eq!(run, expected_runs);
}
