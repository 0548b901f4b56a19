//! Certificates, private keys, RFC 7427 signatures and chain validation, over a test PKI made
//! with strongSwan's `pki` (`tests/data/pki/make.sh`): root -> intermediate -> leaves of each
//! key type, a revoked leaf and its CRL, an expired leaf, a leaf of an untrusted CA, a
//! SHA-1-signed leaf.

use rampart_ike::cert::{Certificate, KeyKind};
use rampart_ike::message::{Identification, id_type};
use rampart_ike::sign::{self, PrivateKey, Scheme, SignatureError, hash, method};
use rampart_ike::trust::{ChainError, Crl, TrustStore};

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/pki/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem_or_der(&file(&format!("{name}.pem"))).unwrap().remove(0)
}

fn key(name: &str) -> PrivateKey {
    PrivateKey::from_pem_or_der(&file(&format!("{name}.key"))).unwrap()
}

fn store() -> TrustStore {
    TrustStore { cas: vec![cert("root")], crls: Crl::from_pem_or_der(&file("inter.crl.pem")).unwrap() }
}

/// A moment inside every test certificate's validity but the expired one's.
fn now() -> u64 {
    cert("p256").not_before + 86_400
}

const ALL_HASHES: &[u16] = &[hash::SHA2_256, hash::SHA2_384, hash::SHA2_512, hash::IDENTITY];

#[test]
fn certificates_read_with_their_keys() {
    for (name, kind) in [
        ("p256", KeyKind::P256),
        ("p384", KeyKind::P384),
        ("rsa3072", KeyKind::Rsa(3072)),
        ("ed25519", KeyKind::Ed25519),
    ] {
        let c = cert(name);
        assert_eq!(c.key, kind, "{name}");
        let k = key(name);
        assert_eq!(k.kind(), kind, "{name}");
        assert!(k.matches(&c), "{name}: the key is the certificate's");
        assert!(!k.matches(&cert("email")), "{name}: not another certificate's");
        assert!(!c.is_ca);
        assert_eq!(c.issuer_text, "C=DE, O=Rampart Test, CN=Rampart Test Intermediate");
    }
    assert!(cert("root").is_ca && cert("root").self_issued);
    // PKCS#8 forms of the same keys.
    assert!(PrivateKey::from_pem_or_der(&file("p256.pk8.key")).unwrap().matches(&cert("p256")));
    assert!(PrivateKey::from_pem_or_der(&file("rsa3072.pk8.key")).unwrap().matches(&cert("rsa3072")));
    // Neither a key nor a certificate.
    assert!(PrivateKey::from_pem_or_der(b"garbage").is_err());
    assert!(Certificate::from_pem_or_der(b"garbage").is_err());
    assert!(Certificate::from_pem_or_der(&file("p256.key")).is_err());
}

#[test]
fn key_material_is_not_in_debug_output() {
    let k = key("p256");
    let text = format!("{k:?}");
    assert_eq!(text, "PrivateKey(ECDSA-P256)");
}

#[test]
fn identities_match_the_certificate() {
    let c = cert("p256");
    assert!(c.has_identity(id_type::FQDN, b"gw-p256.example.net"));
    assert!(c.has_identity(id_type::FQDN, b"GW-P256.example.net"));
    assert!(!c.has_identity(id_type::FQDN, b"gw-p384.example.net"));
    assert!(!c.has_identity(id_type::RFC822_ADDR, b"gw-p256.example.net"));
    let dn = Identification::from_swanctl("C=DE, O=Rampart Test, CN=gw-p256.example.net").unwrap();
    assert_eq!(dn.kind, id_type::DER_ASN1_DN);
    assert!(c.has_identity(dn.kind, &dn.data));
    let other = Identification::from_swanctl("C=DE, O=Rampart Test, CN=gw-p384.example.net").unwrap();
    assert!(!c.has_identity(other.kind, &other.data));
    assert!(cert("email").has_identity(id_type::RFC822_ADDR, b"branch@example.net"));
    assert_eq!(dn.to_string(), "C=DE, O=Rampart Test, CN=gw-p256.example.net");
}

#[test]
fn every_key_type_signs_and_verifies() {
    let octets = b"InitiatorSignedOctets: message | nonce | prf(SK_pi, IDi)".to_vec();
    for (name, expect) in [
        ("p256", Scheme::Ecdsa(hash::SHA2_256)),
        ("p384", Scheme::Ecdsa(hash::SHA2_384)),
        ("rsa3072", Scheme::RsaPss(hash::SHA2_256)),
        ("ed25519", Scheme::Ed25519),
    ] {
        let (m, data) = key(name).sign(&octets, ALL_HASHES).unwrap();
        assert_eq!(m, method::DIGITAL_SIGNATURE, "{name}");
        assert_eq!(sign::verify(&cert(name), m, &data, &octets), Ok(expect), "{name}");
        // A different message, a flipped bit, another key: refused.
        assert_eq!(sign::verify(&cert(name), m, &data, b"other octets"), Err(SignatureError::Invalid), "{name}");
        let mut bad = data.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(sign::verify(&cert(name), m, &bad, &octets).is_err(), "{name}");
        assert!(sign::verify(&cert("p256"), m, &data, &octets).is_err() || name == "p256");
    }
    // RSA with only SHA-512 or SHA-384 listed by the peer.
    let (m, data) = key("rsa3072").sign(&octets, &[hash::SHA2_512]).unwrap();
    assert_eq!(sign::verify(&cert("rsa3072"), m, &data, &octets), Ok(Scheme::RsaPss(hash::SHA2_512)));
    let (m, data) = key("rsa3072").sign(&octets, &[hash::SHA2_384]).unwrap();
    assert_eq!(sign::verify(&cert("rsa3072"), m, &data, &octets), Ok(Scheme::RsaPss(hash::SHA2_384)));
}

#[test]
fn classic_methods_without_rfc7427() {
    let octets = b"octets".to_vec();
    let (m, data) = key("p256").sign(&octets, &[]).unwrap();
    assert_eq!((m, data.len()), (method::ECDSA_256, 64), "r || s");
    assert_eq!(sign::verify(&cert("p256"), m, &data, &octets), Ok(Scheme::Ecdsa(hash::SHA2_256)));
    let (m, data) = key("p384").sign(&octets, &[]).unwrap();
    assert_eq!((m, data.len()), (method::ECDSA_384, 96));
    assert!(sign::verify(&cert("p384"), m, &data, &octets).is_ok());
    // Method 9 with a P-384 key is a mismatch, not a panic.
    assert!(sign::verify(&cert("p384"), method::ECDSA_256, &data, &octets).is_err());
    // Ed25519 and RSA need RFC 7427 (Rampart does not sign RSA with SHA-1).
    assert!(matches!(key("ed25519").sign(&octets, &[hash::SHA2_256]), Err(SignatureError::NoCommonScheme(_))));
    assert!(matches!(key("rsa3072").sign(&octets, &[hash::SHA1]), Err(SignatureError::NoCommonScheme(_))));
}

#[test]
fn malformed_auth_data_is_refused_not_a_panic() {
    let c = cert("p256");
    for data in [vec![], vec![0x40], vec![5, 0x30, 0x03, 0x06, 0x01], vec![0x0c; 13], vec![0xff; 300]] {
        assert!(sign::verify(&c, method::DIGITAL_SIGNATURE, &data, b"x").is_err(), "{data:?}");
    }
    // SHA-1 in an RFC 7427 AlgorithmIdentifier (sha1WithRSAEncryption).
    let sha1 = [0x0f, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00, 1, 2];
    assert!(matches!(sign::verify(&cert("rsa3072"), 14, &sha1, b"x"), Err(SignatureError::Unsupported(_))));
    for s in [
        Scheme::Ecdsa(hash::SHA2_256),
        Scheme::RsaPss(hash::SHA2_384),
        Scheme::RsaPkcs1(hash::SHA2_512),
        Scheme::Ed25519,
    ] {
        assert_eq!(sign::scheme_round_trip(s), Some(s));
    }
}

#[test]
fn chains_validate_through_the_intermediate() {
    let s = store();
    let inter = vec![cert("inter").der().to_vec()];
    for name in ["p256", "p384", "rsa3072", "ed25519", "email"] {
        let v = s.validate(cert(name).der(), &inter, None, now()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.anchor, "C=DE, O=Rampart Test, CN=Rampart Test Root");
    }
    // Without the intermediate there is no path.
    assert!(matches!(s.validate(cert("p256").der(), &[], None, now()), Err(ChainError::Untrusted { .. })));
    // With the intermediate trusted directly (in x509ca), the leaf alone is enough.
    let mut with_inter = store();
    with_inter.cas.push(cert("inter"));
    assert!(with_inter.validate(cert("p256").der(), &[], None, now()).is_ok());
    // remote.cacerts naming another CA: refused.
    let only = [cert("other")];
    assert!(s.validate(cert("p256").der(), &inter, Some(&only), now()).is_err());
}

#[test]
fn revoked_expired_untrusted_and_sha1_are_refused() {
    let s = store();
    let inter = vec![cert("inter").der().to_vec()];
    match s.validate(cert("revoked").der(), &inter, None, now()) {
        Err(ChainError::Revoked { serial, subject }) => {
            assert_eq!(serial, "0b:ad:c0:de");
            assert!(subject.contains("gw-revoked"), "{subject}");
        }
        other => panic!("revoked leaf: {other:?}"),
    }
    assert!(matches!(s.validate(cert("expired").der(), &inter, None, now()), Err(ChainError::Expired { .. })));
    assert!(matches!(
        s.validate(cert("stranger").der(), &[cert("other").der().to_vec()], None, now()),
        Err(ChainError::Untrusted { .. })
    ));
    assert!(matches!(s.validate(cert("sha1").der(), &inter, None, now()), Err(ChainError::WeakSignature { .. })));
    assert!(matches!(s.validate(b"not a certificate", &inter, None, now()), Err(ChainError::Unparseable(_))));
    // Before the leaf's validity.
    assert!(matches!(s.validate(cert("p256").der(), &inter, None, 1_000_000), Err(ChainError::NotYetValid { .. })));
    // Without the CRL the revoked leaf passes (no OCSP): the CRL is what refuses it.
    let no_crl = TrustStore { cas: vec![cert("root")], crls: vec![] };
    assert!(no_crl.validate(cert("revoked").der(), &inter, None, now()).is_ok());
}

#[test]
fn certreq_names_a_ca_by_its_key_hash() {
    let root = cert("root");
    let h = root.key_hash();
    assert_eq!(h.len(), 20);
    assert_ne!(h, cert("inter").key_hash());
    // `pki --keyid` prints the same SHA-1 of the SubjectPublicKeyInfo.
    let out = std::process::Command::new("pki")
        .args(["--keyid", "--in"])
        .arg(format!("{}/tests/data/pki/root.pem", env!("CARGO_MANIFEST_DIR")))
        .args(["--type", "x509"])
        .output();
    if let Ok(out) = out {
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        let colon: String = h.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        assert!(text.contains(&hex) || text.contains(&colon), "pki --keyid: {text}, ours {hex}");
    }
}
