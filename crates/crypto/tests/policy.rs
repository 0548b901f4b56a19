//! The algorithm policy (RFC 8221) and the key checks, as a user meets them: refused suites
//! with readable messages, wrong key lengths, backend names, and `Debug` output without keys.

mod common;

use rampart_crypto::{Backend, CryptoError, Encryption, Integrity, PolicyError, SaCrypto, Suite, encr_id, integ_id};

fn refused(name: &str) -> PolicyError {
    Suite::from_swanctl(name).expect_err(name)
}

#[test]
fn forbidden_algorithms_are_refused_with_a_reason() {
    for (name, word) in [
        ("des-sha256", "DES"),
        ("3des-sha256", "3DES"),
        ("blowfish-sha256", "Blowfish"),
        ("blowfish128-sha256", "Blowfish"),
        ("aes128-md5", "MD5"),
        ("null-md5", "MD5"),
        ("aes128-sha1", "SHA-2"),
        ("aes256-sha", "SHA-2"),
    ] {
        let err = refused(name);
        assert!(matches!(err, PolicyError::Forbidden { .. }), "{name}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("refused") && msg.contains(word), "{name}: unhelpful message '{msg}'");
    }
    for (encr, integ) in [
        (encr_id::DES, integ_id::HMAC_SHA2_256_128),
        (encr_id::TRIPLE_DES, integ_id::HMAC_SHA2_256_128),
        (encr_id::BLOWFISH, integ_id::HMAC_SHA2_256_128),
        (encr_id::AES_CBC, integ_id::HMAC_MD5_96),
    ] {
        let err = Suite::from_ikev2(encr, Some(128), integ).expect_err("forbidden");
        assert!(matches!(err, PolicyError::Forbidden { .. }), "{encr}/{integ}: {err:?}");
        assert!(err.to_string().contains("refused"));
    }
}

#[test]
fn encryption_without_integrity_is_refused() {
    for name in ["aes128", "aes256", "null"] {
        let err = refused(name);
        assert_eq!(err, PolicyError::EncryptionWithoutIntegrity, "{name}");
        assert!(err.to_string().contains("integrity"), "{err}");
    }
    let err = Suite::from_ikev2(encr_id::AES_CBC, Some(256), integ_id::NONE).unwrap_err();
    assert_eq!(err, PolicyError::EncryptionWithoutIntegrity);
    assert_eq!(Suite::new(Encryption::Null, Integrity::None), Err(PolicyError::EncryptionWithoutIntegrity));
}

#[test]
fn aead_with_integrity_is_refused() {
    for name in ["aes128gcm16-sha256", "aes256gcm16-sha512", "chacha20poly1305-sha384"] {
        let err = refused(name);
        assert_eq!(err, PolicyError::AeadWithIntegrity, "{name}");
        assert!(err.to_string().contains("AEAD"), "{err}");
    }
}

#[test]
fn odd_key_sizes_are_refused() {
    assert!(matches!(
        Suite::from_ikev2(encr_id::AES_GCM_16, Some(192), 0),
        Err(PolicyError::UnsupportedKeySize { .. })
    ));
    assert!(matches!(Suite::from_ikev2(encr_id::AES_CBC, None, 12), Err(PolicyError::UnsupportedKeySize { .. })));
    assert!(matches!(Suite::from_swanctl("aes512-sha256"), Err(PolicyError::Unknown { .. })));
}

#[test]
fn swanctl_names_round_trip() {
    for suite in common::every_suite() {
        assert_eq!(Suite::from_swanctl(&suite.name()), Ok(suite));
        assert_eq!(Suite::from_ikev2(suite.encr_id(), suite.key_bits(), suite.integ_id()), Ok(suite));
    }
}

#[test]
fn wrong_key_lengths_are_refused() {
    for suite in common::every_suite() {
        for backend in Backend::for_suite(suite) {
            let (e, i) = (suite.encryption_key_len(), suite.integrity_key_len());
            for bad in [e.wrapping_sub(1), e + 1, 0] {
                if bad == e || bad > 1000 {
                    continue;
                }
                let err = SaCrypto::new(suite, &vec![1; bad], &vec![2; i], backend).unwrap_err();
                assert_eq!(err, CryptoError::KeyLength { which: "encryption", expected: e, got: bad }, "{suite}");
                assert!(err.to_string().contains(&format!("{bad} bytes")), "{err}");
            }
            for bad in [i.wrapping_sub(1), i + 1, 0] {
                if bad == i || bad > 1000 {
                    continue;
                }
                let err = SaCrypto::new(suite, &vec![1; e], &vec![2; bad], backend).unwrap_err();
                assert_eq!(err, CryptoError::KeyLength { which: "integrity", expected: i, got: bad }, "{suite}");
            }
            // AEAD keys include the 4-byte salt (RFC 4106 section 8.1, RFC 7634 section 4).
            if suite.is_aead() {
                let bare = match suite.encryption() {
                    Encryption::AesGcm16 { key_bits } => usize::from(key_bits) / 8,
                    _ => 32,
                };
                assert!(SaCrypto::new(suite, &vec![1; bare], &[], backend).is_err(), "{suite}: salt missing");
            }
        }
    }
}

#[test]
fn debug_output_shows_no_key_bytes() {
    for suite in common::every_suite() {
        for backend in Backend::for_suite(suite) {
            let enc: Vec<u8> = (0..suite.encryption_key_len() as u8).map(|i| 0xC0 ^ i).collect();
            let integ: Vec<u8> = (0..suite.integrity_key_len() as u8).map(|i| 0x90 ^ i).collect();
            let sa = SaCrypto::new(suite, &enc, &integ, backend).unwrap();
            for text in [format!("{sa:?}"), format!("{sa:#?}")] {
                assert!(text.contains("SaCrypto") && text.contains("suite"), "{text}");
                for key in [&enc, &integ].into_iter().filter(|k| k.len() >= 2) {
                    let dec = format!("{}, {}", key[0], key[1]);
                    let hex_lower: String = key[..2].iter().map(|b| format!("{b:02x}")).collect();
                    let hex_upper = hex_lower.to_uppercase();
                    for needle in [dec, hex_lower, hex_upper] {
                        assert!(!text.contains(&needle), "{suite}: Debug shows key bytes '{needle}': {text}");
                    }
                }
            }
        }
    }
}

#[test]
fn backend_names_round_trip() {
    let all = Backend::available();
    assert!(!all.is_empty());
    for backend in &all {
        assert_eq!(Backend::from_name(backend.name()), Some(*backend));
    }
    #[cfg(feature = "ring")]
    assert_eq!(Backend::from_name("ring"), Some(Backend::Ring));
    #[cfg(feature = "rustcrypto")]
    assert_eq!(Backend::from_name("rustcrypto"), Some(Backend::RustCrypto));
    assert_eq!(Backend::from_name("openssl"), None);
    assert_eq!(Backend::from_name(""), None);
    for suite in common::every_suite() {
        assert!(all.contains(&Backend::fastest(suite)), "{suite}");
    }
}

/// The defaults that `bench/src/bin/crypto.rs` and `bench/src/bin/gcm.rs` measured (see
/// `Backend::fastest`): the multi-buffer backend for AES-GCM where the CPU runs it, `ring` for
/// the other AEADs, RustCrypto for the HMAC suites.
#[cfg(all(feature = "ring", feature = "rustcrypto"))]
#[test]
fn fastest_follows_the_measurement() {
    #[cfg(target_arch = "x86_64")]
    let multi_buffer = rampart_crypto::vaes::Engine::detect().is_some();
    #[cfg(not(target_arch = "x86_64"))]
    let multi_buffer = false;
    for suite in common::every_suite() {
        let gcm = matches!(suite.encryption(), rampart_crypto::Encryption::AesGcm16 { .. });
        let expected = match (gcm, suite.is_aead()) {
            #[cfg(target_arch = "x86_64")]
            (true, _) if multi_buffer => Backend::Vaes,
            (_, true) => Backend::Ring,
            (_, false) => Backend::RustCrypto,
        };
        assert_eq!(Backend::fastest(suite), expected, "{suite}");
        assert!(Backend::fastest(suite).supports(suite));
    }
}

/// The multi-buffer backend takes AES-GCM only and says so for the other suites.
#[cfg(target_arch = "x86_64")]
#[test]
fn multi_buffer_backend_refuses_other_suites() {
    if rampart_crypto::vaes::Engine::detect().is_none() {
        return;
    }
    for suite in common::every_suite() {
        let gcm = matches!(suite.encryption(), rampart_crypto::Encryption::AesGcm16 { .. });
        let result = SaCrypto::new(
            suite,
            &vec![7; suite.encryption_key_len()],
            &vec![7; suite.integrity_key_len()],
            Backend::Vaes,
        );
        assert_eq!(result.is_ok(), gcm, "{suite}");
        if !gcm {
            assert_eq!(result.unwrap_err(), rampart_crypto::CryptoError::Unsupported { backend: Backend::Vaes, suite });
        }
    }
}
