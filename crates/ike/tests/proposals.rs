//! Proposal keywords, RFC 8247 refusals, and selection per RFC 7296 section 2.7.

use rampart_ike::crypto::{DhGroup, Encr, Integ, Prf};
use rampart_ike::message::{Proposal, ProtocolId, Transform, transform_type as tt};
use rampart_ike::proposal::*;
use rampart_sa::{Encryption, Integrity};

#[test]
fn ike_keywords() {
    let p = parse_ike_proposal("aes256gcm16-prfsha256-x25519").unwrap();
    assert_eq!(
        p,
        vec![IkeProposal {
            encr: vec![Encr::AesGcm16 { key_bits: 256 }],
            integ: vec![],
            prf: vec![Prf::HmacSha256],
            dh: vec![DhGroup::Curve25519]
        }]
    );
    let p = parse_ike_proposal("aes256-sha256-ecp256").unwrap();
    assert_eq!(p[0].integ, vec![Integ::HmacSha256_128]);
    assert_eq!(p[0].prf, vec![Prf::HmacSha256], "integrity keyword implies the PRF");
    // Mixed AEAD and CBC: two proposals, AEAD first, the AEAD one without integrity.
    let p = parse_ike_proposal("aes128-aes256gcm16-sha384-modp2048-ecp384").unwrap();
    assert_eq!(p.len(), 2);
    assert!(p[0].encr[0].is_aead() && p[0].integ.is_empty() && p[0].prf == vec![Prf::HmacSha384]);
    assert_eq!(p[1].dh, vec![DhGroup::Modp2048, DhGroup::Ecp384]);
    assert_eq!(parse_ike_proposals("aes256-sha256-ecp256, aes256-sha256-x25519").unwrap().len(), 2);
}

#[test]
fn esp_keywords() {
    let p = parse_esp_proposal("aes256gcm16").unwrap();
    assert_eq!(p[0].encr, vec![Encryption::AesGcm16 { key_bits: 256 }]);
    assert_eq!(p[0].esn, vec![false]);
    assert!(p[0].dh.is_empty());
    let p = parse_esp_proposal("aes256-sha256-ecp256-esn-noesn").unwrap();
    assert_eq!(p[0].integ, vec![Integrity::HmacSha256_128]);
    assert_eq!(p[0].pfs_group(), Some(DhGroup::Ecp256));
    assert_eq!(p[0].esn, vec![true, false]);
    assert!(parse_esp_proposal("chacha20poly1305-x25519").unwrap()[0].pfs_group().is_some());
}

#[test]
fn rfc8247_refusals_are_named() {
    for (s, word) in [
        ("3des-sha256-modp2048", "3des"),
        ("des-sha256-modp2048", "des"),
        ("aes128-md5-modp2048", "md5"),
        ("aes128-sha1-modp2048", "sha1"),
        ("aes128-sha256-modp1024", "modp1024"),
        ("aes128-sha256-modp1536", "modp1536"),
        ("aes128gcm16-prfsha1-ecp256", "prfsha1"),
    ] {
        match parse_ike_proposal(s) {
            Err(ProposalError::Forbidden { keyword, reason }) => {
                assert_eq!(keyword, word);
                assert!(reason.contains("RFC"), "{reason}");
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    assert!(matches!(parse_esp_proposal("blowfish-sha256"), Err(ProposalError::Forbidden { .. })));
    assert!(matches!(parse_esp_proposal("aes128"), Err(ProposalError::Policy(_))));
    assert!(matches!(parse_ike_proposal("aes128-ecp256"), Err(ProposalError::Missing(_))));
    assert!(matches!(parse_ike_proposal("aes128gcm16-ecp256"), Err(ProposalError::Missing(_))));
    assert!(matches!(parse_ike_proposal("aes128-sha256"), Err(ProposalError::Missing(_))));
    assert!(matches!(parse_ike_proposal("aes128-sha256-ecp256-foo"), Err(ProposalError::Unknown(_))));
    let msg = parse_ike_proposal("3des-sha256-modp2048").unwrap_err().to_string();
    assert!(msg.contains("3des") && msg.contains("refused"), "{msg}");
}

#[test]
fn ike_selection_follows_the_initiators_order() {
    let ours = parse_ike_proposals("aes256-sha256-ecp256, aes256gcm16-prfsha256-x25519").unwrap();
    let theirs = parse_ike_proposals(
        "aes128gcm16-prfsha512-ecp384, aes256gcm16-prfsha384-prfsha256-x25519-ecp256, aes256-sha256-ecp256",
    )
    .unwrap();
    let offered: Vec<Proposal> = theirs.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 1, &[])).collect();
    let (number, algs) = select_ike(&offered, &ours).unwrap();
    assert_eq!(number, 2);
    assert_eq!(
        algs,
        IkeAlgorithms {
            encr: Encr::AesGcm16 { key_bits: 256 },
            prf: Prf::HmacSha256,
            integ: None,
            dh: DhGroup::Curve25519
        }
    );
    // The answer has one of each and is accepted by the initiator.
    let answer = ike_answer(number, &algs, &[]);
    assert_eq!(accept_ike_answer(std::slice::from_ref(&answer), &theirs), Some(algs));
    // An answer with two DH groups, or a group never offered, is refused.
    let mut two = answer.clone();
    two.transforms.push(Transform::new(tt::DH, 19));
    assert_eq!(accept_ike_answer(&[two], &theirs), None);
    let mut other = answer;
    other.transforms.retain(|t| t.kind != tt::DH);
    other.transforms.push(Transform::new(tt::DH, 14));
    assert_eq!(accept_ike_answer(&[other], &theirs), None);
    // Nothing in common.
    let none = parse_ike_proposals("aes128-sha512-modp2048").unwrap();
    assert_eq!(select_ike(&[none[0].to_wire(1, &[])], &ours), None);
}

#[test]
fn unknown_and_forbidden_transforms_are_skipped_not_fatal() {
    let ours = parse_ike_proposals("aes256-sha256-ecp256").unwrap();
    let offered = Proposal {
        number: 1,
        protocol: ProtocolId::Ike,
        spi: vec![],
        transforms: vec![
            Transform::new(tt::ENCR, 3), // 3DES
            Transform::with_key_length(tt::ENCR, 12, 256),
            Transform::new(tt::PRF, 2), // SHA1
            Transform::new(tt::PRF, 5),
            Transform::new(tt::INTEG, 2),
            Transform::new(tt::INTEG, 12),
            Transform::new(tt::DH, 2), // modp1024
            Transform::new(tt::DH, 19),
        ],
    };
    let (_, a) = select_ike(std::slice::from_ref(&offered), &ours).unwrap();
    assert_eq!(a.dh, DhGroup::Ecp256);
    let mut only_weak = offered;
    only_weak.transforms.retain(|t| !(t.kind == tt::DH && t.id == 19));
    assert_eq!(select_ike(&[only_weak], &ours), None);
}

#[test]
fn esp_selection_pfs_and_esn() {
    let ours = parse_esp_proposals("aes256gcm16-ecp256").unwrap();
    let theirs = parse_esp_proposals("aes256gcm16-ecp256-x25519").unwrap();
    let offered = vec![theirs[0].to_wire(1, 0xc0ffee, true)];
    let (n, spi, a) = select_esp(&offered, &ours, true).unwrap();
    assert_eq!((n, spi, a.dh, a.esn), (1, 0xc0ffee, Some(DhGroup::Ecp256), false));
    // In IKE_AUTH the groups are ignored.
    let (_, _, a) = select_esp(&offered, &ours, false).unwrap();
    assert_eq!(a.dh, None);
    // We need PFS, the peer offers none: no proposal chosen.
    let nopfs = parse_esp_proposals("aes256gcm16").unwrap();
    assert!(select_esp(&[nopfs[0].to_wire(1, 5, true)], &ours, true).is_none());
    // ESN: peer wants only ESN, we only no-ESN.
    let esn_only = parse_esp_proposals("aes256gcm16-esn").unwrap();
    assert!(select_esp(&[esn_only[0].to_wire(1, 5, true)], &nopfs, true).is_none());
    let both = parse_esp_proposals("aes256gcm16-esn-noesn").unwrap();
    let (_, _, a) = select_esp(&[both[0].to_wire(1, 5, true)], &nopfs, true).unwrap();
    assert!(!a.esn);
    // Round trip through the answer.
    let answer = esp_answer(1, &a, 0x1234);
    assert_eq!(accept_esp_answer(&[answer], &both, true), Some((0x1234, a)));
    // An ESP proposal with a bad SPI size is not selectable.
    let mut bad = nopfs[0].to_wire(1, 5, true);
    bad.spi = vec![1, 2];
    assert!(select_esp(&[bad], &nopfs, true).is_none());
}

/// The keywords strongSwan users write: AES-192 in IKE and ESP, the larger MODP groups and
/// ECP-521; the ones Rampart does not do are refused with the reason, not as unknown.
#[test]
fn strongswan_keywords_new_groups_and_aes192() {
    let p = parse_ike_proposal("aes192-sha384-modp3072-modp4096-ecp521").unwrap();
    assert_eq!(p[0].encr, vec![Encr::AesCbc { key_bits: 192 }]);
    assert_eq!(p[0].dh, vec![DhGroup::Modp3072, DhGroup::Modp4096, DhGroup::Ecp521]);
    assert_eq!(
        p[0].to_wire(1, &[]).transforms.iter().filter(|t| t.kind == tt::DH).map(|t| t.id).collect::<Vec<_>>(),
        vec![15, 16, 21]
    );
    assert_eq!(p[0].to_string(), "aes192-sha384-prfsha384-modp3072-modp4096-ecp521");
    for g in [DhGroup::Modp3072, DhGroup::Modp4096, DhGroup::Ecp521] {
        assert_eq!(DhGroup::from_id(g.id()), Some(g));
    }
    let e = parse_esp_proposal("aes192-sha256-modp3072").unwrap();
    assert_eq!(e[0].encr, vec![Encryption::AesCbc { key_bits: 192 }]);
    assert_eq!(e[0].pfs_group(), Some(DhGroup::Modp3072));
    // The ESP transform carries the key length, and the answer goes round.
    let wire = e[0].to_wire(1, 7, true);
    let (_, _, algs) = select_esp(std::slice::from_ref(&wire), &e, true).unwrap();
    assert_eq!(algs.suite.encryption_key_len(), 24);

    for (s, word, needle) in [
        ("aes192gcm16-prfsha256-ecp256", "aes192gcm16", "192-bit key is not implemented"),
        ("aes128gcm12-prfsha256-ecp256", "aes128gcm12", "RFC 8221"),
        ("aes256gcm8-prfsha256-ecp256", "aes256gcm8", "8 or 12-byte ICV"),
        ("aes128-sha256_96-ecp256", "sha256_96", "RFC 4868"),
        ("aes256gcm16-prfsha256-curve448", "curve448", "X448"),
    ] {
        match parse_ike_proposal(s) {
            Err(ProposalError::Unsupported { keyword, reason }) => {
                assert_eq!(keyword, word, "{s}");
                assert!(reason.contains(needle), "{s}: {reason}");
            }
            other => panic!("{s}: {other:?}"),
        }
        let msg = parse_ike_proposal(s).unwrap_err().to_string();
        assert!(msg.contains(word) && msg.contains("not supported"), "{msg}");
    }
    for s in ["aes192gcm16", "aes128gcm12", "aes128gcm8", "aes256-sha256_96"] {
        assert!(matches!(parse_esp_proposal(s), Err(ProposalError::Unsupported { .. })), "{s}");
    }
    // Keywords in the wrong kind of proposal say which and why.
    let msg = parse_esp_proposal("aes256gcm16-prfsha256").unwrap_err().to_string();
    assert!(msg.contains("'prfsha256'") && msg.contains("PRF"), "{msg}");
    let msg = parse_ike_proposal("aes256-sha256-ecp256-esn").unwrap_err().to_string();
    assert!(msg.contains("'esn'") && msg.contains("ESP"), "{msg}");
    let msg = parse_ike_proposal("null-sha256-ecp256").unwrap_err().to_string();
    assert!(msg.contains("'null'"), "{msg}");
}

/// What the log of a NO_PROPOSAL_CHOSEN shows of an offer, transforms without a keyword by
/// their numbers.
#[test]
fn offers_are_described_in_swanctl_spelling() {
    let theirs = parse_ike_proposals("aes256-sha256-ecp256, aes128gcm16-prfsha384-x25519").unwrap();
    let mut offered: Vec<Proposal> = theirs.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 1, &[])).collect();
    offered[0].transforms.push(Transform::new(tt::DH, 2));
    assert_eq!(
        describe_offer(&offered),
        "IKE:aes256-sha256-prfsha256-ecp256-dh2, IKE:aes128gcm16-prfsha384-curve25519"
    );
    let esp = parse_esp_proposals("aes192-sha512-esn").unwrap();
    assert_eq!(describe_offer(&[esp[0].to_wire(1, 9, true)]), "ESP:aes192-sha512-esn");
    assert_eq!(describe(&esp), "aes192-sha512-esn");
}

/// `ah_proposals` as swanctl.conf writes them: integrity algorithms only, PFS groups, ESN;
/// MD5 and SHA-1 refused with RFC 8221's reason, ciphers and PRFs as misplaced.
#[test]
fn ah_keywords() {
    let p = parse_ah_proposals("sha256, sha384-sha512-aes128gmac-aes256gmac-ecp256-esn").unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].integ.clone(), p[0].esn.clone()), (vec![Integrity::HmacSha256_128], vec![false]));
    assert_eq!(
        p[1].integ,
        vec![
            Integrity::HmacSha384_192,
            Integrity::HmacSha512_256,
            Integrity::AesGmac { key_bits: 128 },
            Integrity::AesGmac { key_bits: 256 }
        ]
    );
    assert_eq!((p[1].pfs_group(), p[1].esn.clone()), (Some(DhGroup::Ecp256), vec![true]));
    assert_eq!(describe(&p), "sha256-noesn, sha384-sha512-aes128gmac-aes256gmac-ecp256-esn");
    // On the wire: protocol AH, 4-byte SPI, INTEG transforms (IANA numbers), the group only
    // where a KE goes with it, ESN; no ENCR.
    let w = p[1].to_wire(2, 0x0102_0304, true);
    assert_eq!((w.number, w.protocol, w.spi.clone()), (2, ProtocolId::Ah, vec![1, 2, 3, 4]));
    let kinds: Vec<(u8, u16)> = w.transforms.iter().map(|t| (t.kind, t.id)).collect();
    assert_eq!(
        kinds,
        vec![(tt::INTEG, 13), (tt::INTEG, 14), (tt::INTEG, 9), (tt::INTEG, 11), (tt::DH, 19), (tt::ESN, 1)]
    );
    assert!(p[1].to_wire(2, 5, false).transforms.iter().all(|t| t.kind != tt::DH));

    for (s, word) in [("md5", "md5"), ("sha1", "sha1"), ("sha256-sha1", "sha1")] {
        let e = parse_ah_proposal(s).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(word) && msg.contains("RFC 8221"), "{s}: {msg}");
    }
    let msg = parse_ah_proposal("aes256-sha256").unwrap_err().to_string();
    assert!(msg.contains("'aes256'") && msg.contains("AH has none"), "{msg}");
    let msg = parse_ah_proposal("sha256-prfsha256").unwrap_err().to_string();
    assert!(msg.contains("'prfsha256'") && msg.contains("PRF"), "{msg}");
    assert!(matches!(parse_ah_proposal("aes192gmac"), Err(ProposalError::Policy(_))));
    assert!(matches!(parse_ah_proposal("ecp256-esn"), Err(ProposalError::Missing(_))));
    assert!(matches!(parse_ah_proposal("sha256-modp1024"), Err(ProposalError::Forbidden { .. })));
    assert!(matches!(parse_ah_proposal("sha256-frob"), Err(ProposalError::Unknown(_))));
}

/// AH selection: the peer's order, integrity only, ESP proposals passed over; the answer is one
/// AH proposal, which the initiator's check takes and an ESP answer does not satisfy.
#[test]
fn ah_selection_and_answer() {
    let ours = parse_ah_proposals("sha512-aes256gmac-x25519").unwrap();
    let theirs = parse_ah_proposals("sha256, aes256gmac-sha512-x25519-ecp256").unwrap();
    let mut offered: Vec<Proposal> = theirs.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 2, 77, true)).collect();
    offered.insert(0, parse_esp_proposals("aes256gcm16").unwrap()[0].to_wire(1, 77, true));
    let (n, spi, a) = select_ah(&offered, &ours, true).unwrap();
    assert_eq!((n, spi, a.protocol, a.dh), (3, 77, rampart_sa::Protocol::Ah, Some(DhGroup::Curve25519)));
    assert_eq!(a.suite.integrity(), Integrity::AesGmac { key_bits: 256 }, "the peer's preference");
    assert!(select_esp(&offered[2..], &parse_esp_proposals("aes256gcm16").unwrap(), true).is_none());
    let answer = child_answer(n, &a, 0x4242);
    assert_eq!(answer.protocol, ProtocolId::Ah);
    assert!(answer.transforms.iter().all(|t| t.kind != tt::ENCR));
    assert_eq!(accept_ah_answer(std::slice::from_ref(&answer), &ours, true), Some((0x4242, a)));
    assert_eq!(ChildProposals::Ah(&ours).accept(std::slice::from_ref(&answer), true), Some((0x4242, a)));
    let esp_answer = parse_esp_proposals("aes256gcm16").unwrap()[0].to_wire(1, 0x4242, true);
    assert_eq!(accept_ah_answer(&[esp_answer], &ours, true), None);
    // Two integrity transforms in an answer are not one suite.
    let mut double = answer.clone();
    double.transforms.insert(0, Transform::new(tt::INTEG, 14));
    assert_eq!(accept_ah_answer(&[double], &ours, true), None);
    assert_eq!(describe_offer(&[answer]), "AH:aes256gmac-curve25519-noesn");
}
