//! X.509 inputs as the IKE core takes them: from a peer, the CERT payloads of IKE_AUTH (an end
//! entity and intermediates, validated against a trust store made of Rampart's test PKI, with
//! its CRL) and the AUTH signature verified with the end entity's key; from the operator's files,
//! certificates, CRLs and private keys in PEM or DER. The first byte picks which:
//!
//! - 0: a certificate's DER, then its identities and a signature checked against it;
//! - 1: certificates in PEM or DER (a file of `x509/` or `x509ca/`);
//! - 2: CRLs in PEM or DER (`x509crl/`);
//! - 3: a chain: 4 bytes of time (seconds after the test root's notBefore), then pieces each
//!   after a 2-byte length, the first the end entity, the rest intermediates;
//! - 4: a private key in PEM or DER (`private/`, `rsa/`, `ecdsa/`, `pkcs8/`).
//!
//! Checked: no panic; what parses has a DER that parses again to the same certificate; a chain
//! that validates ends at one of the store's CAs and its end entity is the one given.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_ike::cert::Certificate;
use rampart_ike::sign::{PrivateKey, verify};
use rampart_ike::trust::{Crl, TrustStore};

/// The test PKI's root and intermediate as trust anchors, and the intermediate's CRL.
fn store() -> &'static (TrustStore, u64) {
    static STORE: OnceLock<(TrustStore, u64)> = OnceLock::new();
    STORE.get_or_init(|| {
        let pem = |b: &[u8]| Certificate::from_pem_or_der(b).expect("test PKI certificate");
        let root = pem(include_bytes!("../../crates/ike/tests/data/pki/root.pem"));
        let mut cas = root.clone();
        cas.extend(pem(include_bytes!("../../crates/ike/tests/data/pki/inter.pem")));
        cas.extend(pem(include_bytes!("../../crates/ike/tests/data/pki/rsa4096-root.pem")));
        let crls = Crl::from_pem_or_der(include_bytes!("../../crates/ike/tests/data/pki/inter.crl.pem"))
            .expect("test PKI CRL");
        (TrustStore { cas, crls }, root[0].not_before)
    })
}

/// Splits `data` into pieces, each after a big-endian 2-byte length (the last one may be short).
fn pieces(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < 4 {
        let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(data[2..2 + n].to_vec());
        data = &data[2 + n..];
    }
    out
}

fn certificate(data: &[u8]) {
    let Ok(cert) = Certificate::from_der(data) else { return };
    let again = Certificate::from_der(cert.der()).expect("a certificate's own DER parses");
    assert!(again == cert, "a certificate's DER parses to another certificate");
    let _ = cert.key_hash();
    // Identities of each kind (ID_IPV4_ADDR 1, ID_FQDN 2, ID_RFC822_ADDR 3, ID_IPV6_ADDR 5,
    // ID_DER_ASN1_DN 9) against the subject and a piece of the certificate itself.
    for kind in [1u8, 2, 3, 5, 9, 11] {
        let _ = cert.has_identity(kind, &cert.subject);
        let _ = cert.has_identity(kind, &data[..data.len().min(16)]);
    }
    for name in &cert.dns_names {
        assert!(cert.has_identity(2, name.as_bytes()), "its own dNSName {name:?}");
    }
    // An AUTH payload's data made of the certificate's bytes, for every method.
    let (sig, octets) = data.split_at(data.len() / 2);
    for method in [1u8, 9, 10, 11, 14, 0, 255] {
        let _ = verify(&cert, method, sig, octets);
    }
}

fn chain(data: &[u8]) {
    let Some((time, rest)) = data.split_first_chunk::<4>() else { return };
    let (store, root_from) = store();
    let at = root_from + u64::from(u32::from_be_bytes(*time));
    let mut parts = pieces(rest);
    if parts.is_empty() {
        return;
    }
    let end_entity = parts.remove(0);
    if let Ok(v) = store.validate(&end_entity, &parts, None, at) {
        assert!(v.end_entity.der() == end_entity.as_slice(), "validated another end entity");
        assert!(store.cas.iter().any(|c| c.subject_text == v.anchor), "anchored outside the store: {}", v.anchor);
    }
    let _ = store.validate(&end_entity, &parts, Some(&store.cas[..1]), at);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 5 {
        0 => certificate(rest),
        1 => {
            if let Ok(certs) = Certificate::from_pem_or_der(rest) {
                for c in certs {
                    certificate(c.der());
                }
            }
        }
        2 => {
            let _ = Crl::from_pem_or_der(rest);
        }
        3 => chain(rest),
        _ => {
            if let Ok(key) = PrivateKey::from_pem_or_der(rest) {
                let _ = key.kind();
            }
        }
    }
});
