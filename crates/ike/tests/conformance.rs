//! RFC 7296 conformance of the responder, against a scripted initiator (`common::scripted`):
//! answers and later requests go where the peer's latest authenticated request came from
//! (sections 2.11, 2.23), INVALID_MAJOR_VERSION (2.5), malformed key exchange values in every
//! group (3.10.1), the half-open thresholds, and a named count and diagnostic for every
//! datagram that gets no answer.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::scripted::{ScriptedPeer, esp_proposal};
use common::{B_IP, PSK, ip, ts};
use rampart_ike::crypto::{DhGroup, SeededRandom, modp2048_prime};
use rampart_ike::diagnostic::{AuthFailure, Diagnostic, Ignored};
use rampart_ike::message::{ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, Message, NotifyType, Payload};
use rampart_ike::offload::DhOwner;
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::*;

const PEER_IP: &str = "192.0.2.1";
const PEER_ID: &str = "peer.conf.test";

fn sock(ip_s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(ip_s), port)
}

/// B's side: a responder for any address with the scripted peer's suite in `groups`.
fn responder_conn(groups: &str, esp: &str) -> ConnectionConfig {
    let mut c = ConnectionConfig::psk(
        "gw",
        rampart_ike::message::Identification::fqdn("gw-b.conf.test"),
        Some(rampart_ike::message::Identification::fqdn(PEER_ID)),
        PSK,
    );
    c.local_addrs = vec![ip(B_IP)];
    c.proposals = parse_ike_proposals(&format!("aes256gcm16-prfsha256-{groups}")).unwrap();
    c.children = vec![ChildConfig::new(
        "net",
        vec![ts("198.18.2.0/24")],
        vec![ts("198.18.1.0/24")],
        parse_esp_proposals(esp).unwrap(),
    )];
    c
}

fn responder(cfg: EndpointConfig, conn: ConnectionConfig) -> Endpoint {
    let mut b = Endpoint::new(cfg, Box::new(SeededRandom::new(9)));
    b.add_connection(conn);
    b
}

fn drain(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

fn diagnostics(ep: &mut Endpoint) -> Vec<Diagnostic> {
    std::iter::from_fn(|| ep.poll_diagnostic()).collect()
}

/// One answer, parsed.
fn only(ts: &[Transmit]) -> (&Transmit, Message) {
    assert_eq!(ts.len(), 1, "{ts:?}");
    (&ts[0], Message::parse(&ts[0].bytes).expect("the answer parses"))
}

fn notify_kinds(m: &Message) -> Vec<NotifyType> {
    m.payloads.iter().filter_map(|p| if let Payload::Notify(n) = p { Some(n.kind) } else { None }).collect()
}

/// The scripted peer brings an IKE SA up with B: IKE_SA_INIT from `init_from`, IKE_AUTH from
/// `auth_from`. Returns B's IKE_AUTH answer as sent.
fn establish(
    b: &mut Endpoint,
    now: Instant,
    peer: &mut ScriptedPeer,
    init_from: SocketAddr,
    auth_from: SocketAddr,
) -> Transmit {
    let to = |from: SocketAddr| sock(B_IP, from.port());
    b.handle(now, to(init_from), init_from, &peer.init(None));
    let answer = drain(b);
    let (t, _) = only(&answer);
    peer.init_done(&t.bytes);
    let auth = peer.auth(PEER_ID, PSK, ts("198.18.1.0/24"), ts("198.18.2.0/24"));
    b.handle(now, to(auth_from), auth_from, &auth);
    let answer = drain(b);
    let (t, _) = only(&answer);
    let (_, payloads) = peer.open(&t.bytes);
    assert!(payloads.iter().any(|p| matches!(p, Payload::Auth { .. })), "{payloads:?}");
    t.clone()
}

// ---- Item: replies where the request came from (RFC 7296 sections 2.11, 2.23) -------------

/// A peer that moves to port 4500 with no NAT between (RFC 7296 section 2.23 allows it): B's
/// IKE_AUTH answer, its answers to later requests, and its own requests (DPD, their
/// retransmissions, a CHILD_SA rekey, the delete) all go from B's port 4500 to the peer's
/// port 4500. A retransmitted request from another port gets the cached answer there.
#[test]
fn a_peer_on_4500_without_nat_gets_every_answer_and_request_on_4500() {
    let now = Instant::now();
    let mut b = responder(EndpointConfig::default(), responder_conn("ecp256", "aes256gcm16"));
    let mut peer = ScriptedPeer::new(1, DhGroup::Ecp256);
    let (a500, a4500) = (sock(PEER_IP, 500), sock(PEER_IP, 4500));
    let (b500, b4500) = (sock(B_IP, 500), sock(B_IP, 4500));
    let auth_answer = establish(&mut b, now, &mut peer, a500, a4500);
    assert_eq!((auth_answer.from, auth_answer.to), (b4500, a4500), "IKE_AUTH answered where it came from");
    let sa = b.ike_sas().pop().unwrap();
    assert_eq!(sa.state, rampart_ike::state::IkeState::Established);
    assert!(!sa.nat_local && !sa.nat_remote, "no NAT was detected");
    assert_eq!((sa.local, sa.remote), (b4500, a4500));
    let install = std::iter::from_fn(|| b.poll_event()).find_map(|e| match e {
        Event::InstallChildSa { inbound, .. } => Some(inbound),
        _ => None,
    });
    assert_eq!(install.expect("a CHILD_SA").encap, None, "no NAT: plain ESP");

    // The peer's liveness check, on 4500: answered on 4500.
    let dpd = peer.request(ExchangeType::Informational, &[]);
    b.handle(now, b4500, a4500, &dpd);
    let t = drain(&mut b);
    assert_eq!((t[0].from, t[0].to), (b4500, a4500));
    // The same request again from port 500: the cached answer goes to port 500 (section 2.11),
    // and the IKE SA stays on 4500.
    b.handle(now, b500, a500, &dpd);
    let t = drain(&mut b);
    assert_eq!((t.len(), t[0].from, t[0].to), (1, b500, a500));
    assert_eq!(b.ike_sas()[0].remote, a4500);

    // B's own requests: a liveness check and its retransmission, a rekey, the delete.
    b.dpd(now, sa.id).unwrap();
    let t = drain(&mut b);
    assert_eq!((t[0].from, t[0].to), (b4500, a4500), "B's request goes to the peer's latest address");
    let later = now + Duration::from_secs(5);
    b.handle_timeout(later);
    let t = drain(&mut b);
    assert_eq!((t.len(), t[0].from, t[0].to), (1, b4500, a4500), "the retransmission too");
    let (m, _) = peer.open(&t[0].bytes);
    let answer = peer.answer(ExchangeType::Informational, m.header.message_id, &[]);
    b.handle(later, b4500, a4500, &answer);
    let child = b.ike_sas()[0].children[0].id;
    b.rekey_child(later, sa.id, child).unwrap();
    let t = drain(&mut b);
    assert_eq!((t[0].from, t[0].to), (b4500, a4500), "the rekey request");
    b.abort_ike(later, sa.id).unwrap();
    let mut b2 = responder(EndpointConfig::default(), responder_conn("ecp256", "aes256gcm16"));
    let mut peer2 = ScriptedPeer::new(2, DhGroup::Ecp256);
    establish(&mut b2, now, &mut peer2, a500, a4500);
    let id2 = b2.ike_sas()[0].id;
    b2.delete_ike(now, id2).unwrap();
    let t = drain(&mut b2);
    assert_eq!((t[0].from, t[0].to), (b4500, a4500), "the delete");
}

// ---- Item: INVALID_MAJOR_VERSION (RFC 7296 sections 2.5, 1.5) ------------------------------

#[test]
fn a_higher_major_version_gets_invalid_major_version_rate_limited() {
    let now = Instant::now();
    let mut b = responder(EndpointConfig::default(), responder_conn("ecp256", "aes256gcm16"));
    let (a, bb) = (sock(PEER_IP, 500), sock(B_IP, 500));
    let mut peer = ScriptedPeer::new(3, DhGroup::Ecp256);
    let mut v3 = peer.init(None);
    v3[17] = 0x30;
    b.handle(now, bb, a, &v3);
    let t = drain(&mut b);
    let (t0, m) = only(&t);
    assert_eq!((t0.from, t0.to), (bb, a));
    assert_eq!((m.header.major, m.header.minor), (2, 0), "the closest version we support");
    assert_eq!((m.header.spi_i, m.header.spi_r, m.header.message_id), (peer.spi_i, 0, 0));
    assert_eq!(m.header.exchange, ExchangeType::IkeSaInit);
    assert_eq!(m.header.flags & (FLAG_RESPONSE | FLAG_INITIATOR), FLAG_RESPONSE);
    assert_eq!(notify_kinds(&m), vec![NotifyType::INVALID_MAJOR_VERSION]);
    assert!(m.payloads.iter().all(|p| matches!(p, Payload::Notify(n) if n.data.is_empty())));
    assert!(b.ike_sas().is_empty(), "no state");

    // Any exchange: SPIs, exchange type and message ID copied.
    let mut other = v3.clone();
    other[8..16].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    other[17] = 0x41;
    other[18] = 37;
    other[20..24].copy_from_slice(&7u32.to_be_bytes());
    b.handle(now, bb, a, &other);
    let t = drain(&mut b);
    let (_, m) = only(&t);
    assert_eq!(
        (m.header.spi_r, m.header.message_id, m.header.exchange),
        (0x1122_3344_5566_7788, 7, ExchangeType::Informational)
    );

    // A response of a higher version is never answered.
    let mut resp = v3.clone();
    resp[19] |= FLAG_RESPONSE;
    b.handle(now, bb, a, &resp);
    assert!(drain(&mut b).is_empty());

    // Rate limited: a flood in one second gets a bounded number of answers, the rest counted.
    for _ in 0..50 {
        b.handle(now, bb, a, &v3);
    }
    let answered = drain(&mut b).len();
    assert_eq!(answered, rampart_ike::endpoint::UNPROTECTED_ANSWERS_PER_SECOND as usize - 2);
    assert_eq!(b.ignored().count(Ignored::RateLimited), 50 - answered as u64);
    b.handle(now + Duration::from_millis(1001), bb, a, &v3);
    assert_eq!(drain(&mut b).len(), 1, "the next second answers again");
}

// ---- Item: malformed key exchange data (RFC 7296 section 3.10.1) ---------------------------

/// Values each group must refuse: (what, bytes).
fn bad_values(g: DhGroup) -> Vec<(&'static str, Vec<u8>)> {
    let n = g.public_len();
    let mut v = vec![
        ("one byte short", vec![7; n - 1]),
        ("one byte long", vec![7; n + 1]),
        ("10,000 bytes", vec![4; 10_000]),
        ("all zero", vec![0; n]),
    ];
    match g {
        DhGroup::Ecp256 | DhGroup::Ecp384 | DhGroup::Ecp521 => {
            let mut off = KeyShare::generate(g, &mut SeededRandom::new(5)).public().to_vec();
            off[n - 1] ^= 1;
            v.push(("a point off the curve", off));
        }
        DhGroup::Modp2048 | DhGroup::Modp3072 | DhGroup::Modp4096 => {
            let mut one = vec![0; n];
            one[n - 1] = 1;
            v.push(("1", one));
            v.push(("all ones (above p)", vec![0xff; n]));
            if g == DhGroup::Modp2048 {
                let mut p_minus_1 = modp2048_prime();
                p_minus_1[n - 1] -= 1;
                v.push(("p - 1", p_minus_1));
            }
        }
        DhGroup::Curve25519 => {
            let mut one = vec![0; n];
            one[0] = 1;
            v.push(("u = 1 (small order)", one));
        }
    }
    v
}

use rampart_ike::crypto::KeyShare;

const GROUPS: [DhGroup; 7] = [
    DhGroup::Ecp256,
    DhGroup::Ecp384,
    DhGroup::Ecp521,
    DhGroup::Curve25519,
    DhGroup::Modp2048,
    DhGroup::Modp3072,
    DhGroup::Modp4096,
];

/// Every group, every malformed value, inline and offloaded: NO_PROPOSAL_CHOSEN in the clear
/// (never INVALID_SYNTAX, which only an encrypted packet may carry) and no half-open IKE SA.
#[test]
fn malformed_key_exchange_values_get_no_proposal_chosen_in_every_group() {
    let now = Instant::now();
    for g in GROUPS {
        for offload in [false, true] {
            let cfg = EndpointConfig { offload_dh: offload, ..EndpointConfig::default() };
            let mut b = responder(cfg, responder_conn(g.name(), "aes256gcm16"));
            for (n, (what, value)) in bad_values(g).into_iter().enumerate() {
                let mut peer = ScriptedPeer::new(100 + n as u64, g);
                let a = sock(PEER_IP, 500 + n as u16);
                b.handle(now, sock(B_IP, 500), a, &peer.init(Some(value)));
                while let Some(job) = b.poll_dh_job() {
                    assert!(matches!(job.owner(), DhOwner::Responder(_)));
                    b.dh_done(now, job.run());
                }
                let t = drain(&mut b);
                let (t0, m) = only(&t);
                assert_eq!(t0.to, a, "{g:?} {what}");
                assert_eq!(m.header.spi_r, 0, "{g:?} {what}: no IKE SA answered");
                assert_eq!(notify_kinds(&m), vec![NotifyType::NO_PROPOSAL_CHOSEN], "{g:?} {what} (offload {offload})");
                assert!(b.ike_sas().is_empty(), "{g:?} {what}: no half-open IKE SA kept");
                assert_eq!(b.counts(), (0, 0), "{g:?} {what}");
                let d = diagnostics(&mut b);
                assert!(
                    d.iter().any(|d| matches!(d, Diagnostic::KeRefused { remote, .. } if *remote == a)),
                    "{g:?} {what}: {d:?}"
                );
            }
            // A good value of the group still works.
            let mut peer = ScriptedPeer::new(1, g);
            b.handle(now, sock(B_IP, 500), sock(PEER_IP, 500), &peer.init(None));
            while let Some(job) = b.poll_dh_job() {
                b.dh_done(now, job.run());
            }
            let t = drain(&mut b);
            assert_ne!(only(&t).1.header.spi_r, 0, "{g:?}");
        }
    }
}

/// Inside SK a malformed PFS key exchange value of CREATE_CHILD_SA is answered with
/// INVALID_SYNTAX (RFC 7296 section 3.10.1: an out-of-range value, in an authenticated
/// request); no CHILD_SA is made and the IKE SA stays up.
#[test]
fn a_malformed_ke_in_create_child_sa_gets_invalid_syntax_and_the_ike_sa_stays() {
    let now = Instant::now();
    for g in GROUPS {
        let mut b =
            responder(EndpointConfig::default(), responder_conn("ecp256", &format!("aes256gcm16-{}", g.name())));
        let mut peer = ScriptedPeer::new(7, DhGroup::Ecp256);
        let (a, bb) = (sock(PEER_IP, 500), sock(B_IP, 500));
        establish(&mut b, now, &mut peer, a, a);
        while b.poll_event().is_some() {}
        for (what, value) in bad_values(g) {
            let mut nonce = vec![0u8; 32];
            nonce[0] = 9;
            let req = peer.request(
                ExchangeType::CreateChildSa,
                &[
                    Payload::Sa(vec![esp_proposal(0x2000_0002, Some(g))]),
                    Payload::Nonce(nonce),
                    Payload::Ke { group: g.id(), data: value },
                    Payload::TsI(vec![ts("198.18.1.0/24")]),
                    Payload::TsR(vec![ts("198.18.2.0/24")]),
                ],
            );
            b.handle(now, bb, a, &req);
            let t = drain(&mut b);
            assert_eq!(t.len(), 1, "{g:?} {what}");
            let (_, payloads) = peer.open(&t[0].bytes);
            let kinds: Vec<_> =
                payloads.iter().filter_map(|p| if let Payload::Notify(n) = p { Some(n.kind) } else { None }).collect();
            assert_eq!(kinds, vec![NotifyType::INVALID_SYNTAX], "{g:?} {what}");
            assert!(
                std::iter::from_fn(|| b.poll_event())
                    .all(|e| !matches!(e, Event::InstallChildSa { .. } | Event::IkeSaDown { .. })),
                "{g:?} {what}"
            );
            assert_eq!(b.ike_sas()[0].children.len(), 1, "{g:?} {what}: only the first CHILD_SA");
        }
        assert_eq!(b.ike_sas()[0].state, rampart_ike::state::IkeState::Established);
    }
}

// ---- Item: thresholds with strongSwan's meaning -------------------------------------------

/// `n` IKE_SA_INITs from one address (ports apart), answered with whatever B says; a COOKIE
/// answer is retried once with the cookie. Returns (IKE SAs answered, cookies asked, dropped).
fn many_from_one_address(b: &mut Endpoint, now: Instant, n: u64, from: &str) -> (usize, usize, usize) {
    let (mut sas, mut cookies, mut dropped) = (0, 0, 0);
    for i in 0..n {
        let mut peer = ScriptedPeer::new(1000 + i, DhGroup::Ecp256);
        let a = sock(from, 1024 + i as u16);
        let init = peer.init(None);
        b.handle(now, sock(B_IP, 500), a, &init);
        let mut t = drain(b);
        if t.len() == 1 {
            let m = Message::parse(&t[0].bytes).unwrap();
            if let Some(c) = m.notify(NotifyType::COOKIE) {
                cookies += 1;
                let mut again = Message::parse(&init).unwrap();
                again.payloads.insert(0, Payload::notify(NotifyType::COOKIE, c.data.clone()));
                b.handle(now, sock(B_IP, 500), a, &Message::emit_plain(again.header, &again.payloads));
                t = drain(b);
            }
        }
        match t.first().map(|t| Message::parse(&t.bytes).unwrap()) {
            Some(m) if m.header.spi_r != 0 => sas += 1,
            Some(m) => panic!("unexpected answer {:?}", notify_kinds(&m)),
            None => dropped += 1,
        }
    }
    (sas, cookies, dropped)
}

/// strongSwan's defaults drop the sixth half-open IKE SA of one address in silence; Rampart's
/// ask for a COOKIE from the fourth on and serve a whole carrier-grade NAT's worth.
#[test]
fn branches_behind_one_nat_address_get_cookies_not_silence() {
    let now = Instant::now();
    let mut b = responder(EndpointConfig::default(), responder_conn("ecp256", "aes256gcm16"));
    let (sas, cookies, dropped) = many_from_one_address(&mut b, now, 60, "203.0.113.7");
    assert_eq!((sas, dropped), (60, 0), "every branch is answered");
    assert_eq!(cookies, 60 - 3, "cookie_threshold_ip = 3: the fourth on show their address first");
    assert_eq!(b.ignored().count(Ignored::BlockedPeer), 0);
    assert_eq!(b.counts().1, 60);
}

#[test]
fn zero_switches_each_threshold_off() {
    let now = Instant::now();
    let off =
        EndpointConfig { cookie_threshold: 0, cookie_threshold_ip: 0, block_threshold: 0, ..EndpointConfig::default() };
    let mut b = responder(off, responder_conn("ecp256", "aes256gcm16"));
    assert_eq!(many_from_one_address(&mut b, now, 20, "203.0.113.8"), (20, 0, 0), "no cookies, nothing dropped");
}

#[test]
fn each_threshold_does_what_its_name_says() {
    let now = Instant::now();
    // Per address: cookies from the third half-open IKE SA of one address; another address not.
    let cfg =
        EndpointConfig { cookie_threshold: 0, cookie_threshold_ip: 2, block_threshold: 0, ..EndpointConfig::default() };
    let mut b = responder(cfg, responder_conn("ecp256", "aes256gcm16"));
    assert_eq!(many_from_one_address(&mut b, now, 4, "203.0.113.9"), (4, 2, 0));
    assert_eq!(many_from_one_address(&mut b, now, 1, "203.0.113.10"), (1, 0, 0));
    // Overall: cookies once 3 are half-open, from any address.
    let cfg =
        EndpointConfig { cookie_threshold: 3, cookie_threshold_ip: 0, block_threshold: 0, ..EndpointConfig::default() };
    let mut b = responder(cfg, responder_conn("ecp256", "aes256gcm16"));
    assert_eq!(many_from_one_address(&mut b, now, 3, "203.0.113.11"), (3, 0, 0));
    assert_eq!(many_from_one_address(&mut b, now, 2, "203.0.113.12"), (2, 2, 0));
    // Block: at most 2 half-open per address, the rest dropped, counted and explained.
    let cfg =
        EndpointConfig { cookie_threshold: 0, cookie_threshold_ip: 0, block_threshold: 2, ..EndpointConfig::default() };
    let mut b = responder(cfg, responder_conn("ecp256", "aes256gcm16"));
    assert_eq!(many_from_one_address(&mut b, now, 5, "203.0.113.13"), (2, 0, 3));
    assert_eq!(b.ignored().count(Ignored::BlockedPeer), 3);
    let d = diagnostics(&mut b);
    let blocked: Vec<_> = d
        .iter()
        .filter_map(|d| match d {
            Diagnostic::Dropped { reason: Ignored::BlockedPeer, remote, detail } => Some((remote.ip(), detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(blocked.len(), 3);
    assert_eq!(blocked[0].0, ip("203.0.113.13"));
    assert!(blocked[0].1.contains("block_threshold = 2"), "{}", blocked[0].1);
}

// ---- Item: nothing dropped in silence ------------------------------------------------------

fn dropped(d: &[Diagnostic], reason: Ignored) -> Vec<(SocketAddr, String)> {
    d.iter()
        .filter_map(|d| match d {
            Diagnostic::Dropped { reason: r, remote, detail } if *r == reason => Some((*remote, detail.clone())),
            _ => None,
        })
        .collect()
}

/// Each way a datagram goes unanswered has its count and a diagnostic with the peer's address.
#[test]
fn every_unanswered_datagram_is_counted_by_reason_with_the_peer_address() {
    let now = Instant::now();
    let cfg = EndpointConfig { offload_dh: true, ..EndpointConfig::default() };
    let mut b = responder(cfg, responder_conn("ecp256", "aes256gcm16"));
    let (a, bb) = (sock(PEER_IP, 500), sock(B_IP, 500));
    let mut peer = ScriptedPeer::new(11, DhGroup::Ecp256);
    let init = peer.init(None);
    // Unparseable (cut short), with the parse error.
    b.handle(now, bb, a, &init[..40]);
    // IKE_SA_INIT without a nonce.
    let mut m = Message::parse(&init).unwrap();
    m.payloads.retain(|p| !matches!(p, Payload::Nonce(_)));
    b.handle(now, bb, a, &Message::emit_plain(m.header, &m.payloads));
    // The real one, and its retransmission while the Diffie-Hellman job runs.
    b.handle(now, bb, a, &init);
    b.handle(now, bb, a, &init);
    let job = b.poll_dh_job().unwrap();
    b.dh_done(now, job.run());
    let t = drain(&mut b);
    peer.init_done(&only(&t).0.bytes);
    let auth = peer.auth(PEER_ID, PSK, ts("198.18.1.0/24"), ts("198.18.2.0/24"));
    // A bad ICV.
    let mut bad = auth.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    b.handle(now, bb, a, &bad);
    b.handle(now, bb, a, &auth);
    assert_eq!(drain(&mut b).len(), 1, "authenticated");
    // A message ID ahead of the window.
    peer.next_id += 3;
    let ahead = peer.request(ExchangeType::Informational, &[]);
    b.handle(now, bb, a, &ahead);
    // An unknown SPI.
    let mut unknown = ahead.clone();
    unknown[8] ^= 0xff;
    b.handle(now, bb, a, &unknown);
    // A response to nothing.
    let resp = peer.answer(ExchangeType::Informational, 40, &[]);
    b.handle(now, bb, a, &resp);
    assert!(drain(&mut b).is_empty(), "nothing of that was answered");

    let counts = b.ignored();
    for (reason, n) in [
        (Ignored::Unparseable, 1),
        (Ignored::MalformedInit, 1),
        (Ignored::DuplicateInit, 1),
        (Ignored::BadIcv, 1),
        (Ignored::OutOfWindow, 2),
        (Ignored::UnknownSpi, 1),
    ] {
        assert_eq!(counts.count(reason), n, "{reason:?}");
    }
    let d = diagnostics(&mut b);
    for reason in [
        Ignored::Unparseable,
        Ignored::MalformedInit,
        Ignored::DuplicateInit,
        Ignored::BadIcv,
        Ignored::OutOfWindow,
        Ignored::UnknownSpi,
    ] {
        let got = dropped(&d, reason);
        assert!(!got.is_empty() && got.iter().all(|(r, _)| *r == a), "{reason:?}: {d:?}");
    }
    assert!(dropped(&d, Ignored::Unparseable)[0].1.contains("header says"), "the parse error: {d:?}");
    assert!(dropped(&d, Ignored::OutOfWindow).iter().any(|(_, s)| s.contains("expected 2")), "{d:?}");
}

#[test]
fn no_proposal_chosen_says_what_was_offered_and_what_is_configured() {
    let now = Instant::now();
    let mut b = responder(EndpointConfig::default(), responder_conn("ecp384", "aes256gcm16"));
    let mut peer = ScriptedPeer::new(12, DhGroup::Ecp256);
    let a = sock(PEER_IP, 500);
    b.handle(now, sock(B_IP, 500), a, &peer.init(None));
    let t = drain(&mut b);
    assert_eq!(notify_kinds(&only(&t).1), vec![NotifyType::NO_PROPOSAL_CHOSEN]);
    let d = diagnostics(&mut b);
    let Some(Diagnostic::NoProposalChosen { remote, protocol, offered, configured }) = d.first() else {
        panic!("{d:?}")
    };
    assert_eq!((*remote, *protocol), (a, "IKE"));
    assert_eq!(offered, "IKE:aes256gcm16-prfsha256-ecp256");
    assert_eq!(configured, "gw: aes256gcm16-prfsha256-ecp384");
}

/// The responder's log says why AUTH failed, precisely, and never shows the key.
#[test]
fn authentication_failures_name_their_cause_without_the_key() {
    let now = Instant::now();
    type Change = Box<dyn Fn(&mut ConnectionConfig)>;
    type Case<'a> = (&'a str, Change, &'a str, &'a [u8], Option<u8>);
    let cases: Vec<Case> = vec![
        ("wrong PSK", Box::new(|_| {}), PEER_ID, b"another secret entirely", None),
        ("unknown identity", Box::new(|_| {}), "stranger.conf.test", PSK, None),
        ("no key", Box::new(|c| c.psk = None), PEER_ID, PSK, None),
        ("method", Box::new(|_| {}), PEER_ID, PSK, Some(1)),
    ];
    for (what, change, id, psk, method) in cases {
        let mut conn = responder_conn("ecp256", "aes256gcm16");
        change(&mut conn);
        let mut b = responder(EndpointConfig::default(), conn);
        let mut peer = ScriptedPeer::new(13, DhGroup::Ecp256);
        let a = sock(PEER_IP, 500);
        b.handle(now, sock(B_IP, 500), a, &peer.init(None));
        let t = drain(&mut b);
        peer.init_done(&only(&t).0.bytes);
        let mut auth = peer.auth(id, psk, ts("198.18.1.0/24"), ts("198.18.2.0/24"));
        if let Some(m) = method {
            // The same IKE_AUTH with another AUTH method number.
            peer.next_id -= 1;
            let (_, mut payloads) = {
                let keys = peer.keys.as_ref().unwrap();
                let m = Message::parse(&auth).unwrap();
                let k = rampart_ike::sk::SkKeys {
                    encr: keys.encr,
                    integ: keys.integ,
                    encryption_key: &keys.sk_ei,
                    integrity_key: &keys.sk_ai,
                };
                let p = rampart_ike::sk::open(&m, &auth, &k).unwrap();
                (m, p)
            };
            for p in &mut payloads {
                if let Payload::Auth { method, .. } = p {
                    *method = m;
                }
            }
            auth = peer.request(ExchangeType::IkeAuth, &payloads);
        }
        b.handle(now, sock(B_IP, 500), a, &auth);
        let t = drain(&mut b);
        let (_, payloads) = peer.open(&t[0].bytes);
        assert!(
            payloads.iter().any(|p| matches!(p, Payload::Notify(n) if n.kind == NotifyType::AUTHENTICATION_FAILED)),
            "{what}"
        );
        let d = diagnostics(&mut b);
        let Some(Diagnostic::AuthenticationFailed { remote, connection, peer_id, cause }) =
            d.iter().find(|d| matches!(d, Diagnostic::AuthenticationFailed { .. }))
        else {
            panic!("{what}: {d:?}")
        };
        assert_eq!((*remote, connection.as_str(), peer_id.as_str()), (a, "gw", id), "{what}");
        let expected = match what {
            "wrong PSK" => AuthFailure::NotVerified,
            "unknown identity" => AuthFailure::NoConnectionForId { expected: PEER_ID.into() },
            "no key" => AuthFailure::NoKeyForId,
            _ => AuthFailure::MethodMismatch { peer_method: 1, configured: "psk" },
        };
        assert_eq!(*cause, expected, "{what}");
        let text = format!("{d:?} {cause}");
        let psk_text = String::from_utf8_lossy(PSK).to_string();
        assert!(!text.contains(&psk_text), "{what}: the key in {text}");
        let hex: String = PSK.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!text.contains(&hex), "{what}: the key in hex in {text}");
    }
}
