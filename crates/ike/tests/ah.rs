//! AH CHILD_SAs (RFC 4302) negotiated by IKEv2: two Rampart endpoints on simulated time
//! (IKE_AUTH, CREATE_CHILD_SA, rekeys with and without PFS, deletes, transport mode, ESP
//! against AH, NAT), and a scripted initiator (`common::scripted`) for what a Rampart
//! initiator never sends: KEYMAT checked against a prf+ written here from RFC 7296 section 2.17
//! (itself checked against the NIST CAVP vector), malformed AH proposals, INFORMATIONAL
//! deletes of AH SAs.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use common::scripted::{ScriptedPeer, ah_proposal, esp_proposal};
use common::*;
use rampart_ike::crypto::{DhGroup, KeyShare, SeededRandom};
use rampart_ike::diagnostic::Diagnostic;
use rampart_ike::message::{
    Delete, ExchangeType, Notify, NotifyType, Payload, Proposal, ProtocolId, Transform, transform_type as tt,
};
use rampart_ike::proposal::parse_ah_proposals;
use rampart_ike::state::ChildState;
use rampart_ike::*;
use rampart_sa::{Integrity, Mode, Protocol, SaConfig, Suite, integ_id};

/// Connection A and B of `common` with one AH child each.
fn ah_pair(a_ah: &str, b_ah: &str) -> (ConnectionConfig, ConnectionConfig) {
    let (mut a, mut b) = (conn_a(), conn_b());
    a.children = vec![ChildConfig::ah(
        "net",
        vec![ts("198.18.1.0/24")],
        vec![ts("198.18.2.0/24")],
        parse_ah_proposals(a_ah).unwrap(),
    )];
    b.children = vec![ChildConfig::ah(
        "net",
        vec![ts("198.18.2.0/24")],
        vec![ts("198.18.1.0/24")],
        parse_ah_proposals(b_ah).unwrap(),
    )];
    (a, b)
}

fn failures(events: &[Event]) -> Vec<NotifyType> {
    events
        .iter()
        .filter_map(|e| if let Event::ChildSaFailed { reason, .. } = e { Some(*reason) } else { None })
        .collect()
}

fn diagnostics(ep: &mut Endpoint) -> Vec<Diagnostic> {
    std::iter::from_fn(|| ep.poll_diagnostic()).collect()
}

/// An AH SA as Rampart hands it to the data plane: protocol AH, the AH suite, no encryption
/// key, the integrity key of the algorithm's length, never UDP-encapsulated.
fn assert_ah_sa(sa: &SaConfig, integrity: Integrity) {
    assert_eq!(sa.protocol, Protocol::Ah, "{sa:?}");
    assert_eq!(sa.suite, Suite::ah(integrity).unwrap(), "{sa:?}");
    assert!(sa.encryption_key.is_empty(), "AH has no encryption key");
    assert_eq!(sa.integrity_key.len(), Suite::ah(integrity).unwrap().integrity_key_len());
    assert_eq!(sa.encap, None, "AH is never UDP-encapsulated");
}

#[test]
fn ah_child_in_ike_auth_installs_ah_sas_with_matching_keys() {
    let (a, b) = ah_pair("sha256", "sha384-sha256");
    let mut p = Pair::new(a, b);
    p.establish();
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!((ia.len(), ib.len()), (1, 1), "{:?} {:?}", p.a_events, p.b_events);
    let ((a_in, a_out), (b_in, b_out)) = (ia[0], ib[0]);
    for sa in [a_in, a_out, b_in, b_out] {
        assert_ah_sa(sa, Integrity::HmacSha256_128);
    }
    assert_ends_match(a_out, b_in);
    assert_ends_match(b_out, a_in);
    assert_eq!(a_out.integrity_key.len(), 32);
    assert_ne!(&a_out.integrity_key[..], &a_in.integrity_key[..], "one key per direction");
    assert_eq!(a_out.mode, Mode::Tunnel);
    let child = &Pair::only_sa(&p.a).children[0];
    assert_eq!(child.algorithms.protocol, Protocol::Ah);
    assert_eq!(Pair::only_sa(&p.b).children[0].algorithms.suite, a_out.suite);
}

#[test]
fn every_ah_algorithm_negotiates_with_its_key_length() {
    for (name, integrity, key_len) in [
        ("sha256", Integrity::HmacSha256_128, 32),
        ("sha384", Integrity::HmacSha384_192, 48),
        ("sha512", Integrity::HmacSha512_256, 64),
        ("aes128gmac", Integrity::AesGmac { key_bits: 128 }, 20),
        ("aes256gmac", Integrity::AesGmac { key_bits: 256 }, 36),
    ] {
        for esn in ["", "-esn"] {
            let prop = format!("{name}{esn}");
            let (a, b) = ah_pair(&prop, "sha256-sha384-sha512-aes128gmac-aes256gmac-esn-noesn");
            let mut p = Pair::new(a, b);
            p.establish();
            let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
            assert_eq!((ia.len(), ib.len()), (1, 1), "{prop}");
            assert_ah_sa(ia[0].1, integrity);
            assert_ends_match(ia[0].1, ib[0].0);
            assert_ends_match(ib[0].1, ia[0].0);
            assert_eq!(ia[0].1.integrity_key.len(), key_len, "{prop}");
            assert_eq!(ia[0].1.esn, !esn.is_empty(), "{prop}");
        }
    }
}

#[test]
fn transport_mode_ah() {
    let (mut a, mut b) = ah_pair("sha256", "sha256");
    a.children[0].mode = Mode::Transport;
    b.children[0].mode = Mode::Transport;
    let mut p = Pair::new(a, b);
    p.establish();
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!((ia[0].1.mode, ib[0].1.mode), (Mode::Transport, Mode::Transport));
    assert_ah_sa(ib[0].0, Integrity::HmacSha256_128);
}

/// One side wants AH, the other ESP (either way round, in IKE_AUTH and in CREATE_CHILD_SA):
/// a proposal's protocol must match the child's, so the responder answers NO_PROPOSAL_CHOSEN,
/// logs what was offered and what it has, and installs nothing. The IKE SA stays.
#[test]
fn esp_against_ah_is_no_proposal_chosen() {
    for initiator_wants_ah in [true, false] {
        let (ah_a, ah_b) = ah_pair("sha256", "sha256");
        let (mut a, mut b) = (conn_a(), conn_b());
        if initiator_wants_ah {
            a.children = ah_a.children;
        } else {
            b.children = ah_b.children;
        }
        let mut p = Pair::new(a, b);
        let ike = p.establish();
        assert_eq!(failures(&p.a_events), vec![NotifyType::NO_PROPOSAL_CHOSEN], "{initiator_wants_ah}");
        assert!(installs(&p.a_events).is_empty() && installs(&p.b_events).is_empty());
        assert_eq!(Pair::only_sa(&p.b).state, rampart_ike::state::IkeState::Established);
        let d = diagnostics(&mut p.b);
        let Some(Diagnostic::NoProposalChosen { protocol, offered, configured, .. }) = d.first() else {
            panic!("{d:?}")
        };
        if initiator_wants_ah {
            assert_eq!(
                (*protocol, offered.as_str(), configured.as_str()),
                ("AH", "AH:sha256-noesn", "gw/net: ESP:aes256gcm16-noesn")
            );
        } else {
            assert_eq!(
                (*protocol, offered.as_str(), configured.as_str()),
                ("ESP", "ESP:aes256gcm16-noesn", "gw/net: AH:sha256-noesn")
            );
        }
        // The same in CREATE_CHILD_SA.
        p.clear_events();
        p.a.create_child(p.now, ike, "net").unwrap();
        p.drive();
        assert_eq!(failures(&p.a_events), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
        assert!(installs(&p.a_events).is_empty() && installs(&p.b_events).is_empty());
    }
}

/// A connection with an ESP child and an AH child: IKE_AUTH makes the ESP one, CREATE_CHILD_SA
/// (with PFS) the AH one; each pair has its own protocol and keys.
#[test]
fn create_child_sa_makes_a_new_ah_child_with_pfs() {
    let (ah_a, ah_b) = ah_pair("aes256gmac-ecp256", "aes256gmac-sha256-ecp256");
    let (mut a, mut b) = (conn_a(), conn_b());
    let mut ca = ah_a.children[0].clone();
    let mut cb = ah_b.children[0].clone();
    ca.name = "auth".into();
    cb.name = "auth".into();
    a.children.push(ca);
    b.children.push(cb);
    let mut p = Pair::new(a, b);
    let ike = p.establish();
    assert_eq!(installs(&p.a_events)[0].1.protocol, Protocol::Esp);
    p.clear_events();
    p.a.create_child(p.now, ike, "auth").unwrap();
    p.drive();
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!((ia.len(), ib.len()), (1, 1), "{:?}", p.a_events);
    assert_ah_sa(ia[0].1, Integrity::AesGmac { key_bits: 256 });
    assert_ends_match(ia[0].1, ib[0].0);
    assert_ends_match(ib[0].1, ia[0].0);
    let sa = Pair::only_sa(&p.a);
    assert_eq!(sa.children.len(), 2);
    let ah = sa.children.iter().find(|c| c.name == "auth").unwrap();
    assert_eq!((ah.algorithms.protocol, ah.algorithms.dh), (Protocol::Ah, Some(DhGroup::Ecp256)));
    let esp = sa.children.iter().find(|c| c.name == "net").unwrap();
    assert_eq!(esp.algorithms.protocol, Protocol::Esp);
}

/// An AH CHILD_SA rekeyed by either side, with and without PFS: make-before-break as for ESP
/// (the new pair is AH with fresh keys, the old one deleted by its protocol's Delete payload).
#[test]
fn ah_rekey_with_and_without_pfs() {
    for (prop, pfs) in [("sha512", None), ("sha512-x25519", Some(DhGroup::Curve25519))] {
        for initiator_rekeys in [true, false] {
            let (a, b) = ah_pair(prop, prop);
            let mut p = Pair::new(a, b);
            p.establish();
            let old_a = Pair::only_sa(&p.a).children[0].clone();
            let old_keys = installs(&p.a_events)[0].1.integrity_key.to_vec();
            p.clear_events();
            if initiator_rekeys {
                p.a.rekey_child(p.now, Pair::only_sa(&p.a).id, old_a.id).unwrap();
            } else {
                let sb = Pair::only_sa(&p.b);
                p.b.rekey_child(p.now, sb.id, sb.children[0].id).unwrap();
            }
            p.drive();
            let rekeyed = |events: &[Event]| {
                events
                    .iter()
                    .find_map(|e| match e {
                        Event::RekeyedChildSa { inbound, outbound, .. } => Some((inbound.clone(), outbound.clone())),
                        _ => None,
                    })
                    .unwrap_or_else(|| panic!("no rekey: {events:?}"))
            };
            // The rekey's initiator switches at once; its peer installs the inbound half now and
            // switches outbound when the old pair is deleted.
            let (ri, rr) = if initiator_rekeys { (&p.a_events, &p.b_events) } else { (&p.b_events, &p.a_events) };
            let (i_in, i_out) = rekeyed(ri);
            let (r_in, r_out) = rekeyed(rr);
            let i_out = i_out.expect("the rekey's initiator switches outbound at once");
            assert!(r_out.is_none());
            let r_out = rr
                .iter()
                .find_map(
                    |e| if let Event::SwitchOutbound { outbound, .. } = e { Some(outbound.clone()) } else { None },
                )
                .expect("the responder switches when the old pair is deleted");
            for sa in [&i_in, &i_out, &r_in, &r_out] {
                assert_ah_sa(sa, Integrity::HmacSha512_256);
            }
            assert_ends_match(&i_out, &r_in);
            assert_ends_match(&r_out, &i_in);
            let a_in = if initiator_rekeys { i_in } else { r_in };
            assert_ne!(&a_in.integrity_key[..], &old_keys[..]);
            // The old pair went on both sides (its Delete named protocol AH), one child is left.
            for ev in [&p.a_events, &p.b_events] {
                assert!(ev.iter().any(|e| matches!(e, Event::DeleteChildSa { .. })), "{ev:?}");
            }
            let (ca, cb) = (Pair::only_sa(&p.a).children, Pair::only_sa(&p.b).children);
            assert_eq!((ca.len(), cb.len()), (1, 1), "{prop} {initiator_rekeys}");
            assert_eq!((ca[0].spi_in, ca[0].spi_out), (cb[0].spi_out, cb[0].spi_in));
            assert_ne!(ca[0].id, old_a.id);
            assert_eq!((ca[0].algorithms.protocol, ca[0].algorithms.dh), (Protocol::Ah, pfs), "{prop}");
            assert_eq!(cb[0].algorithms.dh, pfs);
            assert!(ca[0].state == ChildState::Installed && ca[0].outbound_active && cb[0].outbound_active);
        }
    }
}

#[test]
fn ah_delete_from_either_side() {
    for initiator_deletes in [true, false] {
        let (a, b) = ah_pair("sha256", "sha256");
        let mut p = Pair::new(a, b);
        p.establish();
        p.clear_events();
        let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
        if initiator_deletes {
            p.a.delete_child(p.now, sa.id, sa.children[0].id).unwrap();
        } else {
            p.b.delete_child(p.now, sb.id, sb.children[0].id).unwrap();
        }
        p.drive();
        let deleted = |ev: &[Event]| {
            ev.iter()
                .filter_map(|e| match e {
                    Event::DeleteChildSa { inbound_spi, outbound_spi, .. } => Some((*inbound_spi, *outbound_spi)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(deleted(&p.a_events), vec![(sa.children[0].spi_in, sa.children[0].spi_out)]);
        assert_eq!(deleted(&p.b_events), vec![(sb.children[0].spi_in, sb.children[0].spi_out)]);
        assert!(Pair::only_sa(&p.a).children.is_empty() && Pair::only_sa(&p.b).children.is_empty());
        // A new AH CHILD_SA afterwards, by CREATE_CHILD_SA.
        p.a.create_child(p.now, sa.id, "net").unwrap();
        p.drive();
        let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
        assert_eq!((ia.len(), ib.len()), (1, 1));
        assert_ah_sa(ia[0].1, Integrity::HmacSha256_128);
    }
}

/// A behind a NAT (the NAT detection of IKE_SA_INIT finds it): A's AH child is never proposed
/// (it fails with an event and a diagnostic that says why) and nothing is installed on either
/// side, in IKE_AUTH and in CREATE_CHILD_SA. The IKE SA itself comes up. Forced encapsulation
/// (`encap = yes`) is the same.
#[test]
fn ah_child_behind_nat_is_never_installed() {
    for forced in [false, true] {
        let (mut a, mut b) = ah_pair("sha256", "sha256");
        b.remote_addrs = vec![];
        a.encap = forced;
        let mut p = Pair::new(a, b);
        p.nat_a = !forced;
        let ike = p.establish();
        assert_eq!(Pair::only_sa(&p.a).state, rampart_ike::state::IkeState::Established);
        assert_eq!(failures(&p.a_events), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
        assert!(installs(&p.a_events).is_empty() && installs(&p.b_events).is_empty());
        let d = diagnostics(&mut p.a);
        let ah_nat = d.iter().find_map(|d| match d {
            Diagnostic::AhOverNat { child, initiator, nat, .. } => Some((child.clone(), *initiator, *nat)),
            _ => None,
        });
        assert_eq!(ah_nat, Some(("net".to_string(), true, if forced { "forced" } else { "local" })), "{d:?}");
        // IKE_AUTH went without SA, TSi and TSr: B saw no CHILD_SA request at all.
        assert!(failures(&p.b_events).is_empty());
        p.clear_events();
        p.a.create_child(p.now, ike, "net").unwrap();
        p.drive();
        assert_eq!(failures(&p.a_events), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
        assert!(installs(&p.a_events).is_empty() && installs(&p.b_events).is_empty());
        assert!(Pair::only_sa(&p.a).children.is_empty() && Pair::only_sa(&p.b).children.is_empty());
    }
}

// ---- Against a scripted initiator --------------------------------------------------------

const PEER_IP: &str = "192.0.2.1";
const PEER_ID: &str = "peer.ah.test";
const EVERY_AH: &str = "sha256-sha384-sha512-aes128gmac-aes256gmac-x25519";

fn sock(ip_s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(ip_s), port)
}

/// B: a responder with one AH child taking every AH algorithm (PFS with X25519).
fn ah_responder(encap: bool) -> Endpoint {
    let mut c = ConnectionConfig::psk(
        "gw",
        rampart_ike::message::Identification::fqdn("gw-b.ah.test"),
        Some(rampart_ike::message::Identification::fqdn(PEER_ID)),
        PSK,
    );
    c.local_addrs = vec![ip(B_IP)];
    c.proposals = rampart_ike::proposal::parse_ike_proposals("aes256gcm16-prfsha256-x25519").unwrap();
    c.encap = encap;
    c.children = vec![ChildConfig::ah(
        "net",
        vec![ts("198.18.2.0/24")],
        vec![ts("198.18.1.0/24")],
        parse_ah_proposals(EVERY_AH).unwrap(),
    )];
    let mut b = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(9)));
    b.add_connection(c);
    b
}

/// The scripted peer brings an IKE SA up with B, its IKE_AUTH carrying `sa`; B's answer
/// (decrypted) and B's events.
fn establish(b: &mut Endpoint, peer: &mut ScriptedPeer, sa: Vec<Proposal>) -> (Vec<Payload>, Vec<Event>) {
    let now = Instant::now();
    let (from, to) = (sock(PEER_IP, 500), sock(B_IP, 500));
    b.handle(now, to, from, &peer.init(None));
    let answer: Vec<Transmit> = std::iter::from_fn(|| b.poll_transmit()).collect();
    assert_eq!(answer.len(), 1);
    peer.init_done(&answer[0].bytes);
    let auth = peer.auth_with(PEER_ID, PSK, ts("198.18.1.0/24"), ts("198.18.2.0/24"), sa);
    let (from, to) = if answer[0].from.port() == 4500 { (sock(PEER_IP, 4500), sock(B_IP, 4500)) } else { (from, to) };
    b.handle(now, to, from, &auth);
    let answer: Vec<Transmit> = std::iter::from_fn(|| b.poll_transmit()).collect();
    assert_eq!(answer.len(), 1);
    let (_, payloads) = peer.open(&answer[0].bytes);
    assert!(payloads.iter().any(|p| matches!(p, Payload::Auth { .. })), "{payloads:?}");
    (payloads, std::iter::from_fn(|| b.poll_event()).collect())
}

/// A request of the scripted peer to B on the established IKE SA; B's decrypted answer.
fn ask(b: &mut Endpoint, peer: &mut ScriptedPeer, exchange: ExchangeType, payloads: &[Payload]) -> Vec<Payload> {
    let bytes = peer.request(exchange, payloads);
    b.handle(Instant::now(), sock(B_IP, 500), sock(PEER_IP, 500), &bytes);
    let answer: Vec<Transmit> = std::iter::from_fn(|| b.poll_transmit()).collect();
    assert_eq!(answer.len(), 1, "{answer:?}");
    peer.open(&answer[0].bytes).1
}

fn notifies(payloads: &[Payload]) -> Vec<NotifyType> {
    payloads.iter().filter_map(|p| if let Payload::Notify(n) = p { Some(n.kind) } else { None }).collect()
}

fn answer_proposal(payloads: &[Payload]) -> Proposal {
    let sa = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.clone()) } else { None });
    let sa = sa.unwrap_or_else(|| panic!("no SA payload in {payloads:?}"));
    assert_eq!(sa.len(), 1);
    sa.into_iter().next().unwrap()
}

fn installed(events: &[Event]) -> Vec<(SaConfig, SaConfig)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::InstallChildSa { inbound, outbound, .. } => Some((inbound.clone(), outbound.clone())),
            _ => None,
        })
        .collect()
}

/// prf+ of RFC 7296 section 2.13, written here from the RFC with ring's HMAC (not the core's
/// `Prf::plus`):
///   prf+ (K,S) = T1 | T2 | T3 | T4 | ...
///   T1 = prf (K, S | 0x01), T2 = prf (K, T1 | S | 0x02), ...
fn prf_plus(alg: ring::hmac::Algorithm, key: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let key = ring::hmac::Key::new(alg, key);
    let (mut out, mut t, mut n) = (Vec::new(), Vec::new(), 1u8);
    while out.len() < len {
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(&t);
        ctx.update(seed);
        ctx.update(&[n]);
        t = ctx.sign().as_ref().to_vec();
        out.extend_from_slice(&t);
        n += 1;
    }
    out.truncate(len);
    out
}

fn cavp() -> HashMap<String, Vec<u8>> {
    include_str!("data/ikev2_kdf_sp800-135_cavp_sha1_count0.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| rampart_ike::hex::decode(v.trim()).map(|v| (k.trim().to_string(), v)))
        .collect()
}

/// The test's prf+ reproduces the NIST CAVP IKEv2 child SA keying material (HMAC-SHA-1, with
/// and without D-H), so that it can judge Rampart's KEYMAT below.
#[test]
fn the_tests_prf_plus_matches_the_nist_cavp_vector() {
    let v = cavp();
    let sk_d = &v["DKM"][..20];
    let seed = [&v["Ni"][..], &v["Nr"][..]].concat();
    let alg = ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY;
    assert_eq!(prf_plus(alg, sk_d, &seed, v["DKM_child_sa"].len()), v["DKM_child_sa"]);
    let seed_dh = [&v["g_ir_new"][..], &v["Ni"][..], &v["Nr"][..]].concat();
    assert_eq!(prf_plus(alg, sk_d, &seed_dh, v["DKM_child_sa_dh"].len()), v["DKM_child_sa_dh"]);
}

/// RFC 7296 section 2.17: KEYMAT = prf+(SK_d, Ni | Nr) for the CHILD_SA of IKE_AUTH, and
/// prf+(SK_d, g^ir (new) | Ni | Nr) for one made by CREATE_CHILD_SA with PFS; the keys of the
/// initiator-to-responder SA first. AH takes only an integrity key: 32, 48 or 64 bytes of
/// HMAC key, or for AES-GMAC the AES key and a 4-byte salt (20 or 36 bytes, RFC 4543 section
/// 7.1). What B installs for each algorithm is checked against the test's own prf+.
#[test]
fn ah_keymat_follows_rfc7296_section_2_17_for_every_algorithm() {
    let sha256 = ring::hmac::HMAC_SHA256;
    for (id, integrity, len) in [
        (integ_id::HMAC_SHA2_256_128, Integrity::HmacSha256_128, 32),
        (integ_id::HMAC_SHA2_384_192, Integrity::HmacSha384_192, 48),
        (integ_id::HMAC_SHA2_512_256, Integrity::HmacSha512_256, 64),
        (integ_id::AES_128_GMAC, Integrity::AesGmac { key_bits: 128 }, 20),
        (integ_id::AES_256_GMAC, Integrity::AesGmac { key_bits: 256 }, 36),
    ] {
        let mut b = ah_responder(false);
        let mut peer = ScriptedPeer::new(u64::from(id), DhGroup::Curve25519);
        let (answer, events) = establish(&mut b, &mut peer, vec![ah_proposal(1, 0x0a00_0001, &[id], None)]);
        // B answers with one AH proposal: our integrity transform, No ESN, its own SPI.
        let chosen = answer_proposal(&answer);
        assert_eq!(chosen.protocol, ProtocolId::Ah);
        assert_eq!(chosen.spi.len(), 4);
        assert_eq!(chosen.transforms, vec![Transform::new(tt::INTEG, id), Transform::new(tt::ESN, 0)]);
        let inst = installed(&events);
        assert_eq!(inst.len(), 1, "{events:?}");
        let (inb, out) = &inst[0];
        assert_eq!((inb.spi, out.spi), (u32::from_be_bytes(chosen.spi.clone().try_into().unwrap()), 0x0a00_0001));
        assert_ah_sa(inb, integrity);
        let sk_d = peer.keys.as_ref().unwrap().sk_d.to_vec();
        let keymat = prf_plus(sha256, &sk_d, &[&peer.ni[..], &peer.nr[..]].concat(), 2 * len);
        assert_eq!(&inb.integrity_key[..], &keymat[..len], "{integrity:?}: initiator-to-responder key first");
        assert_eq!(&out.integrity_key[..], &keymat[len..], "{integrity:?}");

        // CREATE_CHILD_SA with PFS (X25519): the shared secret comes first in the seed.
        let mut rng = SeededRandom::new(77);
        let ke = KeyShare::generate(DhGroup::Curve25519, &mut rng);
        let ni = vec![0x5au8; 32];
        let answer = ask(
            &mut b,
            &mut peer,
            ExchangeType::CreateChildSa,
            &[
                Payload::Sa(vec![ah_proposal(1, 0x0a00_0002, &[id], Some(DhGroup::Curve25519))]),
                Payload::Nonce(ni.clone()),
                Payload::Ke { group: DhGroup::Curve25519.id(), data: ke.public().to_vec() },
                Payload::TsI(vec![ts("198.18.1.0/24")]),
                Payload::TsR(vec![ts("198.18.2.0/24")]),
            ],
        );
        let chosen = answer_proposal(&answer);
        assert_eq!(chosen.protocol, ProtocolId::Ah);
        let nr = answer.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None }).unwrap();
        let peer_ke =
            answer.iter().find_map(|p| if let Payload::Ke { data, .. } = p { Some(data.clone()) } else { None });
        let g_ir = ke.agree(&peer_ke.expect("B's KE")).unwrap();
        let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
        let inst = installed(&events);
        assert_eq!(inst.len(), 1, "{events:?}");
        let keymat = prf_plus(sha256, &sk_d, &[&g_ir[..], &ni[..], &nr[..]].concat(), 2 * len);
        assert_eq!(&inst[0].0.integrity_key[..], &keymat[..len], "{integrity:?} with PFS");
        assert_eq!(&inst[0].1.integrity_key[..], &keymat[len..], "{integrity:?} with PFS");
        assert_ah_sa(&inst[0].1, integrity);
    }
}

/// What RFC 7296 says of AH proposals that are not right: an SPI that is not 4 bytes is a
/// length out of range (section 3.3.1): INVALID_SYNTAX inside the authenticated exchange
/// (3.10.1), the IKE SA stays; an encryption transform in an AH proposal makes that proposal
/// unacceptable while the others are still considered (3.3.3, 3.3.6); MD5 or SHA-1 alone
/// (RFC 8221 section 6) and an ESP proposal for an AH child are NO_PROPOSAL_CHOSEN.
#[test]
fn malformed_ah_proposals_get_the_rfcs_answers() {
    let with_encr = {
        let mut p = ah_proposal(1, 0x0b00_0001, &[integ_id::HMAC_SHA2_256_128], None);
        p.transforms.insert(0, Transform::with_key_length(tt::ENCR, 12, 128));
        p
    };
    let long_spi = {
        let mut p = ah_proposal(1, 0x0b00_0001, &[integ_id::HMAC_SHA2_256_128], None);
        p.spi = vec![0, 0, 0, 0, 0x0b, 0, 0, 1];
        p
    };
    let mut good_second = ah_proposal(2, 0x0b00_0001, &[integ_id::HMAC_SHA2_384_192], None);
    good_second.number = 2;
    for (what, sa, want) in [
        ("an 8-byte SPI", vec![long_spi.clone()], Err(NotifyType::INVALID_SYNTAX)),
        (
            "a 2-byte SPI",
            vec![{
                let mut p = long_spi.clone();
                p.spi = vec![1, 2];
                p
            }],
            Err(NotifyType::INVALID_SYNTAX),
        ),
        ("an ENCR transform", vec![with_encr.clone()], Err(NotifyType::NO_PROPOSAL_CHOSEN)),
        ("an ENCR transform, then a good proposal", vec![with_encr, good_second], Ok(integ_id::HMAC_SHA2_384_192)),
        (
            "MD5 and SHA-1 only",
            vec![ah_proposal(1, 0x0b00_0001, &[integ_id::HMAC_MD5_96, integ_id::HMAC_SHA1_96], None)],
            Err(NotifyType::NO_PROPOSAL_CHOSEN),
        ),
        (
            "SHA-1, then SHA-256",
            vec![ah_proposal(1, 0x0b00_0001, &[integ_id::HMAC_SHA1_96, integ_id::HMAC_SHA2_256_128], None)],
            Ok(integ_id::HMAC_SHA2_256_128),
        ),
        ("ESP for an AH child", vec![esp_proposal(0x0b00_0001, None)], Err(NotifyType::NO_PROPOSAL_CHOSEN)),
        (
            "AES-GMAC with a key length attribute",
            vec![{
                let mut p = ah_proposal(1, 0x0b00_0001, &[], None);
                p.transforms.insert(0, Transform::with_key_length(tt::INTEG, integ_id::AES_128_GMAC, 128));
                p
            }],
            Err(NotifyType::NO_PROPOSAL_CHOSEN),
        ),
    ] {
        let mut b = ah_responder(false);
        let mut peer = ScriptedPeer::new(3, DhGroup::Curve25519);
        let (answer, events) = establish(&mut b, &mut peer, sa);
        match want {
            Ok(id) => {
                let p = answer_proposal(&answer);
                assert_eq!(
                    (p.protocol, p.transforms[0].clone()),
                    (ProtocolId::Ah, Transform::new(tt::INTEG, id)),
                    "{what}"
                );
                assert_eq!(installed(&events).len(), 1, "{what}");
            }
            Err(n) => {
                assert_eq!(notifies(&answer), vec![n], "{what}");
                assert!(!answer.iter().any(|p| matches!(p, Payload::Sa(_))), "{what}");
                assert!(installed(&events).is_empty(), "{what}");
                // The IKE SA is up all the same (RFC 7296 section 1.2).
                assert!(events.iter().any(|e| matches!(e, Event::IkeSaUp { .. })), "{what}");
            }
        }
    }
}

/// The responder's side of AH over NAT: a peer that proposes AH although the IKE SA uses NAT
/// traversal (here forced by B's `encap = yes`) gets NO_PROPOSAL_CHOSEN, B logs why, and
/// installs nothing.
#[test]
fn responder_refuses_ah_over_nat() {
    let mut b = ah_responder(true);
    let mut peer = ScriptedPeer::new(5, DhGroup::Curve25519);
    let (answer, events) =
        establish(&mut b, &mut peer, vec![ah_proposal(1, 0x0c00_0001, &[integ_id::HMAC_SHA2_256_128], None)]);
    assert_eq!(notifies(&answer), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
    assert!(installed(&events).is_empty());
    let d = diagnostics(&mut b);
    assert!(
        d.iter().any(
            |d| matches!(d, Diagnostic::AhOverNat { child, initiator: false, nat: "forced", .. } if child == "net")
        ),
        "{d:?}"
    );
    assert!(b.ike_sas()[0].children.is_empty());
}

/// INFORMATIONAL deletes of AH SAs (RFC 7296 sections 1.4.1, 3.11): a Delete of protocol AH
/// with the peer's inbound SPI removes the pair and is answered with a Delete of protocol AH
/// carrying B's; a Delete of protocol ESP with the same SPI names no AH SA and removes nothing.
#[test]
fn informational_deletes_of_ah_sas() {
    let mut b = ah_responder(false);
    let mut peer = ScriptedPeer::new(6, DhGroup::Curve25519);
    let (answer, events) =
        establish(&mut b, &mut peer, vec![ah_proposal(1, 0x0d00_0001, &[integ_id::HMAC_SHA2_256_128], None)]);
    let b_spi = u32::from_be_bytes(answer_proposal(&answer).spi.try_into().unwrap());
    assert_eq!(installed(&events).len(), 1);

    let esp_delete = Payload::Delete(Delete { protocol: ProtocolId::Esp, spis: vec![0x0d00_0001] });
    let answer = ask(&mut b, &mut peer, ExchangeType::Informational, &[esp_delete]);
    assert!(answer.is_empty(), "{answer:?}");
    assert!(std::iter::from_fn(|| b.poll_event()).next().is_none());
    assert_eq!(b.ike_sas()[0].children.len(), 1, "an ESP delete does not remove an AH SA");

    let ah_delete = Payload::Delete(Delete { protocol: ProtocolId::Ah, spis: vec![0x0d00_0001] });
    let answer = ask(&mut b, &mut peer, ExchangeType::Informational, &[ah_delete]);
    assert_eq!(answer, vec![Payload::Delete(Delete { protocol: ProtocolId::Ah, spis: vec![b_spi] })]);
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    assert!(
        matches!(events.as_slice(), [Event::DeleteChildSa { inbound_spi, outbound_spi: 0x0d00_0001, .. }] if *inbound_spi == b_spi),
        "{events:?}"
    );
    assert!(b.ike_sas()[0].children.is_empty());
}

/// A REKEY_SA notify names the SA by protocol and SPI (RFC 7296 section 1.3.3): a rekey of the
/// AH child announced as ESP finds no CHILD_SA; announced as AH it is rekeyed.
#[test]
fn rekey_sa_names_the_ah_protocol() {
    let mut b = ah_responder(false);
    let mut peer = ScriptedPeer::new(8, DhGroup::Curve25519);
    let (_, events) =
        establish(&mut b, &mut peer, vec![ah_proposal(1, 0x0e00_0001, &[integ_id::HMAC_SHA2_256_128], None)]);
    assert_eq!(installed(&events).len(), 1);
    // B's child asks for PFS (X25519) on CREATE_CHILD_SA.
    let ke = KeyShare::generate(DhGroup::Curve25519, &mut SeededRandom::new(78));
    let rekey = |protocol| {
        let x25519 = Some(DhGroup::Curve25519);
        vec![
            Payload::Notify(Notify {
                protocol,
                spi: 0x0e00_0001u32.to_be_bytes().to_vec(),
                kind: NotifyType::REKEY_SA,
                data: vec![],
            }),
            Payload::Sa(vec![ah_proposal(1, 0x0e00_0002, &[integ_id::HMAC_SHA2_256_128], x25519)]),
            Payload::Nonce(vec![0x11; 32]),
            Payload::Ke { group: DhGroup::Curve25519.id(), data: ke.public().to_vec() },
            Payload::TsI(vec![ts("198.18.1.0/24")]),
            Payload::TsR(vec![ts("198.18.2.0/24")]),
        ]
    };
    let answer = ask(&mut b, &mut peer, ExchangeType::CreateChildSa, &rekey(ProtocolId::Esp));
    assert_eq!(notifies(&answer), vec![NotifyType::CHILD_SA_NOT_FOUND]);
    let answer = ask(&mut b, &mut peer, ExchangeType::CreateChildSa, &rekey(ProtocolId::Ah));
    assert_eq!(answer_proposal(&answer).protocol, ProtocolId::Ah);
    let events: Vec<Event> = std::iter::from_fn(|| b.poll_event()).collect();
    let Some(Event::RekeyedChildSa { inbound, outbound: None, .. }) = events.first() else { panic!("{events:?}") };
    assert_ah_sa(inbound, Integrity::HmacSha256_128);
}
