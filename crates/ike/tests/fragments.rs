//! IKE fragmentation (RFC 7383) on simulated time. Two Rampart endpoints authenticate with an
//! RSA-4096 root -> intermediate -> leaf chain, whose IKE_AUTH messages do not fit a 1280-byte
//! path: the test drops every datagram bigger than that, so the exchange completes only in
//! fragments, and with fragmentation off (or `accept`) on one side it does not, the reason in
//! the diagnostics. Then, message by message: fragments out of order, duplicated, forged;
//! retransmissions of the same fragments and the cached answer to fragment 1; against a
//! scripted peer every limit (invalid numbers, too many fragments, a changed total, a message
//! too big, the endpoint's memory), the timeout, a newer message superseding an incomplete one,
//! fragments without negotiation, a flood that leaves memory bounded; and the reassembler on
//! its own.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::scripted::{ScriptedPeer, encode};
use common::*;
use rampart_ike::cert::Certificate;
use rampart_ike::config::AuthMethod;
use rampart_ike::crypto::DhGroup;
use rampart_ike::diagnostic::{Diagnostic, Diagnostics, Ignored, Unfragmented};
use rampart_ike::fragment::{Inserted, MAX_FRAGMENTS, MAX_MESSAGE_BYTES, MAX_SA_BYTES, Pool, Reassembler, Slot};
use rampart_ike::message::{
    ExchangeType, FragmentNumber, HEADER_LEN, Header, Identification, Message, NotifyType, Payload, payload_type,
};
use rampart_ike::proposal::parse_ike_proposals;
use rampart_ike::sign::PrivateKey;
use rampart_ike::trust::TrustStore;
use rampart_ike::*;

// ---- Two endpoints with an RSA-4096 chain -----------------------------------------------

/// The path MTU the tests enforce: a datagram bigger than this is lost (as on a path that
/// drops IP fragments).
const MTU: usize = 1280;

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/pki/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem_or_der(&file(&format!("{name}.pem"))).unwrap().remove(0)
}

/// `c` authenticating with RSA-4096 leaf `side` ("a" or "b") and the intermediate, expecting
/// the other leaf.
fn with_rsa4096(mut c: ConnectionConfig, side: &str, peer: &str) -> ConnectionConfig {
    let leaf = format!("rsa4096-{side}");
    let key = Arc::new(PrivateKey::from_pem_or_der(&file(&format!("{leaf}.key"))).unwrap());
    c.local = AuthConfig {
        auth: AuthMethod::Pubkey,
        id: Some(Identification::fqdn(&format!("gw-rsa4096-{side}.example.net"))),
        certs: vec![cert(&leaf), cert("rsa4096-inter")],
        key: Some(key),
        cacerts: vec![],
    };
    c.remote =
        AuthConfig::new(AuthMethod::Pubkey, Some(Identification::fqdn(&format!("gw-rsa4096-{peer}.example.net"))));
    c.psk = None;
    c.trust = Arc::new(TrustStore { cas: vec![cert("rsa4096-root")], crls: vec![] });
    c
}

fn big_pair_with(suite: &str, fa: Fragmentation, fb: Fragmentation, cfg: EndpointConfig) -> Pair {
    let mut a = with_rsa4096(conn_a(), "a", "b");
    let mut b = with_rsa4096(conn_b(), "b", "a");
    a.proposals = parse_ike_proposals(suite).unwrap();
    b.proposals = a.proposals.clone();
    a.fragmentation = fa;
    b.fragmentation = fb;
    let mut p = Pair::with_config(a, b, cfg.clone(), cfg);
    let unix = cert("rsa4096-a").not_before + 86_400;
    p.a.set_wall_clock(p.now, unix);
    p.b.set_wall_clock(p.now, unix);
    p
}

const CBC: &str = "aes256-sha256-ecp256";
const GCM: &str = "aes256gcm16-prfsha256-ecp256";

fn big_pair(suite: &str) -> Pair {
    big_pair_with(suite, Fragmentation::Yes, Fragmentation::Yes, EndpointConfig::default())
}

/// The IP datagram a transmit goes in (IPv4 here, the marker off port 500).
fn ip_size(t: &Transmit) -> usize {
    t.bytes.len() + 20 + 8 + if t.from.port() == 500 { 0 } else { 4 }
}

fn up(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::IkeSaUp { .. }))
}

fn message_id(t: &Transmit) -> Option<u32> {
    Message::parse(&t.bytes).ok().map(|m| m.header.message_id)
}

fn fragment_of(t: &Transmit) -> Option<FragmentNumber> {
    Message::parse(&t.bytes).ok().and_then(|m| m.encrypted).and_then(|e| e.fragment)
}

/// Delivers everything, losing what does not fit the MTU; returns how many were lost.
fn drive_mtu(p: &mut Pair, mtu: usize) -> usize {
    let mut lost = 0;
    p.drive_with(|_, t| {
        let fits = ip_size(t) <= mtu;
        lost += usize::from(!fits);
        fits
    });
    lost
}

fn unfragmented(e: &mut Endpoint) -> Vec<Unfragmented> {
    std::iter::from_fn(|| e.poll_diagnostic())
        .filter_map(|d| match d {
            Diagnostic::Unfragmented { why, size, fragment_size, .. } => {
                assert!(size > fragment_size, "{size} <= {fragment_size}");
                Some(why)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_big_ike_auth_completes_in_fragments_that_fit_the_path() {
    for suite in [CBC, GCM] {
        let mut p = big_pair(suite);
        let id = p.a.initiate(p.now, "gw", None).unwrap();
        let lost = drive_mtu(&mut p, MTU);
        assert!(up(&p.a_events) && up(&p.b_events), "{suite}: {:?} {:?}", p.a_events, unfragmented(&mut p.a));
        assert_eq!(lost, 0, "{suite}: every datagram fits {MTU} bytes");
        // Both IKE_SA_INIT messages announce fragmentation.
        for (side, t) in p.log.iter().filter(|(_, t)| message_id(t) == Some(0)) {
            let m = Message::parse(&t.bytes).unwrap();
            assert!(m.notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some(), "{side:?}");
        }
        // The IKE_AUTH request and its answer each went in fragments, and would not have fit.
        for side in [Side::A, Side::B] {
            let auth: Vec<&Transmit> =
                p.log.iter().filter(|(s, t)| *s == side && message_id(t) == Some(1)).map(|(_, t)| t).collect();
            let frags: Vec<FragmentNumber> = auth.iter().map(|t| fragment_of(t).expect("a fragment")).collect();
            let total = frags[0].total as usize;
            assert!(total >= 3, "{suite} {side:?}: {total} fragments");
            assert_eq!(frags.iter().map(|f| f.number as usize).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
            let whole: usize = auth.iter().map(|t| t.bytes.len()).sum();
            assert!(whole > 2 * MTU, "{suite} {side:?}: {whole} bytes in all");
            let first = Message::parse(&auth[0].bytes).unwrap().encrypted.unwrap();
            let expect = if side == Side::A { payload_type::IDI } else { payload_type::IDR };
            assert_eq!(first.first_inner, expect, "fragment 1 names the first inner payload");
        }
        for e in [&mut p.a, &mut p.b] {
            let f = e.exchange_log().fragments;
            assert_eq!((f.messages_sent, f.messages_reassembled), (1, 1), "{suite}: {f:?}");
            assert!(f.fragments_sent >= 3 && f.fragments_received >= 3, "{f:?}");
            assert_eq!(e.fragment_memory(), 0, "nothing left in reassembly");
        }
        assert!(Pair::only_sa(&p.a).fragmentation && Pair::only_sa(&p.b).fragmentation);
        let (a_in, a_out) = installs(&p.a_events)[0];
        let (b_in, b_out) = installs(&p.b_events)[0];
        assert_ends_match(a_out, b_in);
        assert_ends_match(b_out, a_in);
        // The IKE SA's successor keeps fragmentation.
        p.a.rekey_ike(p.now, id).unwrap();
        drive_mtu(&mut p, MTU);
        let sas = p.a.ike_sas();
        assert!(sas.iter().any(|s| s.id != id), "rekeyed: {sas:?}");
        assert!(sas.iter().all(|s| s.fragmentation));
    }
}

#[test]
fn fragment_size_0_takes_576_bytes_for_ipv4() {
    let cfg = EndpointConfig { fragment_size: 0, ..EndpointConfig::default() };
    let mut p = big_pair_with(GCM, Fragmentation::Yes, Fragmentation::Yes, cfg);
    p.a.initiate(p.now, "gw", None).unwrap();
    assert_eq!(drive_mtu(&mut p, 576), 0);
    assert!(up(&p.a_events) && up(&p.b_events));
    assert!(p.a.exchange_log().fragments.fragments_sent >= 8);
}

#[test]
fn without_fragmentation_on_one_side_it_does_not_complete() {
    use Fragmentation::*;
    // (A, B, who sends a message whole, why)
    let cases = [
        (Yes, No, Side::A, Unfragmented::NotNegotiated),
        (No, Yes, Side::A, Unfragmented::NotNegotiated),
        (Accept, Yes, Side::A, Unfragmented::Configured(Accept)),
        (Yes, Accept, Side::B, Unfragmented::Configured(Accept)),
    ];
    for (fa, fb, sender, why) in cases {
        let mut p = big_pair_with(GCM, fa, fb, EndpointConfig::default());
        p.a.initiate(p.now, "gw", None).unwrap();
        let mut lost = 0;
        p.run_for_with(Duration::from_secs(300), |_, t| {
            let fits = ip_size(t) <= MTU;
            lost += usize::from(!fits);
            fits
        });
        let what = format!("A {fa:?}, B {fb:?}");
        assert!(!up(&p.a_events), "{what}: A never comes up");
        assert!(lost >= 5, "{what}: the big message and its retransmissions are lost ({lost})");
        assert!(
            p.a_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::PeerDead, .. })),
            "{what}: {:?}",
            p.a_events
        );
        let (noted, other) = if sender == Side::A {
            (unfragmented(&mut p.a), unfragmented(&mut p.b))
        } else {
            (unfragmented(&mut p.b), unfragmented(&mut p.a))
        };
        assert_eq!(noted, vec![why], "{what}: the reason, once (not per retransmission)");
        assert!(other.is_empty(), "{what}: {other:?}");
        // The same pair on a path that carries big datagrams comes up: only fragmentation
        // was missing.
        let mut p = big_pair_with(GCM, fa, fb, EndpointConfig::default());
        p.a.initiate(p.now, "gw", None).unwrap();
        p.drive();
        assert!(up(&p.a_events) && up(&p.b_events), "{what}, no MTU: {:?}", p.a_events);
    }
}

/// IKE_SA_INIT both ways; returns A's IKE_AUTH request (its fragments), not delivered.
fn to_ike_auth(p: &mut Pair) -> Vec<Transmit> {
    p.a.initiate(p.now, "gw", None).unwrap();
    for _ in 0..2 {
        p.collect();
        for (side, t) in std::mem::take(&mut p.in_flight) {
            p.deliver(side, t);
        }
    }
    p.collect();
    let auth: Vec<Transmit> = std::mem::take(&mut p.in_flight).into_iter().map(|(_, t)| t).collect();
    assert!(auth.len() >= 3 && auth.iter().all(|t| fragment_of(t).is_some()), "{}", auth.len());
    auth
}

#[test]
fn fragments_out_of_order_duplicated_and_forged_still_reassemble() {
    let mut p = big_pair(GCM);
    let auth = to_ike_auth(&mut p);
    let n = auth.len();
    let deliver = |p: &mut Pair, t: &Transmit| p.b.handle(p.now, t.to, t.from, &t.bytes);
    // A forgery of fragment 2 (one ciphertext bit), before the real one.
    let mut forged = auth[1].clone();
    let at = forged.bytes.len() - 30;
    forged.bytes[at] ^= 0x40;
    deliver(&mut p, &forged);
    assert_eq!(p.b.ignored().count(Ignored::BadIcv), 1);
    assert_eq!(Pair::only_sa(&p.b).fragments_held, 0, "a forged fragment is not kept");
    // The rest backwards, the last one twice; the first (number 1) comes last.
    for (i, t) in auth.iter().enumerate().rev() {
        deliver(&mut p, t);
        if i == n - 1 {
            deliver(&mut p, t);
            assert_eq!(p.b.ignored().count(Ignored::FragmentDuplicate), 1);
        }
        if i > 0 {
            assert_eq!(Pair::only_sa(&p.b).fragments_held, n - i, "kept until the message is whole");
            assert!(p.b.poll_transmit().is_none(), "no answer before the last fragment");
        }
    }
    assert_eq!(Pair::only_sa(&p.b).fragments_held, 0);
    p.drive();
    assert!(up(&p.a_events) && up(&p.b_events));
    assert_eq!(p.b.ignored().count(Ignored::BadIcv), 1);
    assert_eq!(p.b.exchange_log().fragments.fragments_received, n as u64, "forgery and duplicate not counted");
}

#[test]
fn retransmissions_resend_the_same_fragments_and_fragment_1_gets_the_cached_answer() {
    let mut p = big_pair(GCM);
    let auth = to_ike_auth(&mut p);
    for t in &auth {
        p.b.handle(p.now, t.to, t.from, &t.bytes);
    }
    p.collect();
    let answer: Vec<Transmit> = std::mem::take(&mut p.in_flight).into_iter().map(|(_, t)| t).collect();
    assert!(answer.len() >= 3 && answer.iter().all(|t| fragment_of(t).is_some()));
    // The answer is lost; A retransmits its request: the very same datagrams.
    p.now += Duration::from_secs(5);
    p.a.handle_timeout(p.now);
    p.collect();
    let again: Vec<Transmit> = std::mem::take(&mut p.in_flight).into_iter().map(|(_, t)| t).collect();
    assert_eq!(again.iter().map(|t| &t.bytes).collect::<Vec<_>>(), auth.iter().map(|t| &t.bytes).collect::<Vec<_>>());
    // B answers fragment 1 with its cached answer, the same fragments, and ignores the others.
    let dups = p.b.ignored().count(Ignored::FragmentDuplicate);
    for t in &again {
        p.b.handle(p.now, t.to, t.from, &t.bytes);
    }
    p.collect();
    let resent: Vec<Transmit> = std::mem::take(&mut p.in_flight).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        resent.iter().map(|t| &t.bytes).collect::<Vec<_>>(),
        answer.iter().map(|t| &t.bytes).collect::<Vec<_>>()
    );
    assert_eq!(p.b.ignored().count(Ignored::FragmentDuplicate) - dups, (again.len() - 1) as u64);
    // Fragments of the answer out of order, then done.
    for t in resent.iter().rev() {
        p.a.handle(p.now, t.to, t.from, &t.bytes);
    }
    p.drive();
    assert!(up(&p.a_events) && up(&p.b_events));
}

// ---- A scripted peer --------------------------------------------------------------------

const PEER_ID: &str = "peer.frag.test";

fn sock(s: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip(s), port)
}

/// B, a responder for the scripted peer, and the peer with an established IKE SA (PSK).
struct Scripted {
    b: Endpoint,
    peer: ScriptedPeer,
    now: Instant,
    from: SocketAddr,
    to: SocketAddr,
}

impl Scripted {
    fn new(cfg: EndpointConfig, peer_fragments: bool, seed: u64) -> Scripted {
        let mut c = ConnectionConfig::psk(
            "gw",
            Identification::fqdn("gw-b.frag.test"),
            Some(Identification::fqdn(PEER_ID)),
            PSK,
        );
        c.local_addrs = vec![ip(B_IP)];
        c.proposals = parse_ike_proposals("aes256gcm16-prfsha256-ecp256").unwrap();
        c.children = vec![ChildConfig::new(
            "net",
            vec![ts("198.18.2.0/24")],
            vec![ts("198.18.1.0/24")],
            rampart_ike::proposal::parse_esp_proposals("aes256gcm16").unwrap(),
        )];
        let mut b = Endpoint::new(cfg, Box::new(rampart_ike::crypto::SeededRandom::new(seed)));
        b.add_connection(c);
        let mut s = Scripted {
            b,
            peer: ScriptedPeer::new(seed + 100, DhGroup::Ecp256),
            now: Instant::now(),
            from: sock("192.0.2.1", 500),
            to: sock(B_IP, 500),
        };
        s.peer.fragmentation = peer_fragments;
        s.establish();
        s
    }

    fn establish(&mut self) {
        let init = self.peer.init(None);
        self.send(&init);
        let answer = self.take();
        assert_eq!(answer.len(), 1);
        let m = Message::parse(&answer[0].bytes).unwrap();
        assert_eq!(m.notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some(), self.peer.fragmentation);
        self.peer.init_done(&answer[0].bytes);
        let auth = self.peer.auth(PEER_ID, PSK, ts("198.18.1.0/24"), ts("198.18.2.0/24"));
        self.send(&auth);
        let answer = self.take();
        let (_, payloads) = self.peer.open(&answer[0].bytes);
        assert!(payloads.iter().any(|p| matches!(p, Payload::Auth { .. })), "{payloads:?}");
        assert_eq!(self.sa().fragmentation, self.peer.fragmentation);
    }

    fn send(&mut self, bytes: &[u8]) {
        self.b.handle(self.now, self.to, self.from, bytes);
    }

    fn take(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.b.poll_transmit()).collect()
    }

    fn sa(&self) -> IkeSaInfo {
        let mut sas = self.b.ike_sas();
        assert_eq!(sas.len(), 1);
        sas.remove(0)
    }

    fn count(&self, r: Ignored) -> u64 {
        self.b.ignored().count(r)
    }

    /// An INFORMATIONAL request of the peer of about `size` bytes (Vendor ID payloads): B
    /// answers it with an empty INFORMATIONAL.
    fn big(size: usize) -> Vec<Payload> {
        let mut out = Vec::new();
        let mut left = size;
        while left > 0 {
            let n = left.min(30_000);
            out.push(Payload::Vendor(vec![0x5a; n]));
            left -= n;
        }
        out
    }

    /// Whether B answered request `id`.
    fn answered(&self, t: &[Transmit], id: u32) -> bool {
        t.iter().any(|t| {
            let (m, _) = self.peer.open(&t.bytes);
            m.header.is_response() && m.header.message_id == id
        })
    }
}

#[test]
fn a_scripted_peers_fragments_are_reassembled_in_any_order() {
    let mut s = Scripted::new(EndpointConfig::default(), true, 1);
    let id = s.peer.next_id;
    let mut frags = s.peer.request_fragments(ExchangeType::Informational, &Scripted::big(5000), 600);
    assert!(frags.len() >= 9);
    frags.swap(0, 4);
    frags.reverse();
    let last = frags.pop().unwrap();
    for f in &frags {
        s.send(f);
    }
    assert!(s.take().is_empty());
    assert_eq!(s.sa().fragments_held, frags.len());
    assert!(s.b.fragment_memory() > 4000);
    s.send(&last);
    let t = s.take();
    assert!(s.answered(&t, id), "answered once whole");
    assert_eq!((s.sa().fragments_held, s.b.fragment_memory()), (0, 0));
}

/// A valid fragment with its header fields changed: the checks before the ICV see the
/// numbers, whatever the ICV says.
fn renumber(frag: &[u8], number: u16, total: u16) -> Vec<u8> {
    let mut f = frag.to_vec();
    f[HEADER_LEN + 4..HEADER_LEN + 6].copy_from_slice(&number.to_be_bytes());
    f[HEADER_LEN + 6..HEADER_LEN + 8].copy_from_slice(&total.to_be_bytes());
    f
}

#[test]
fn invalid_numbers_and_too_many_fragments_are_dropped_and_counted() {
    let mut s = Scripted::new(EndpointConfig::default(), true, 2);
    let id = s.peer.next_id;
    let frags = s.peer.request_fragments(ExchangeType::Informational, &Scripted::big(3000), 700);
    let t = frags.len() as u16;
    for (n, total) in [(0, t), (t + 1, t), (1, 0), (0, 0)] {
        s.send(&renumber(&frags[0], n, total));
    }
    assert_eq!(s.count(Ignored::FragmentInvalid), 4);
    // More than MAX_FRAGMENTS, validly sealed: dropped before their ICV is even checked.
    let many = s.peer.fragments_of(ExchangeType::Informational, id, payload_type::VENDOR, &[1; 8000], 150);
    assert!(many.len() > MAX_FRAGMENTS as usize);
    for f in &many {
        s.send(f);
    }
    assert_eq!(s.count(Ignored::FragmentTooMany), many.len() as u64);
    assert_eq!((s.sa().fragments_held, s.count(Ignored::BadIcv)), (0, 0));
    // The real message still goes through.
    for f in &frags {
        s.send(f);
    }
    let t = s.take();
    assert!(s.answered(&t, id));
}

#[test]
fn a_higher_total_starts_over_and_a_lower_one_is_dropped() {
    let mut s = Scripted::new(EndpointConfig::default(), true, 3);
    let id = s.peer.next_id;
    s.peer.next_id += 1;
    let (first, plain) = encode(&Scripted::big(3000));
    let coarse = s.peer.fragments_of(ExchangeType::Informational, id, first, &plain, 1200);
    let fine = s.peer.fragments_of(ExchangeType::Informational, id, first, &plain, 500);
    assert!(fine.len() > coarse.len());
    s.send(&coarse[0]);
    s.send(&coarse[1]);
    // A fragment with a higher total (the peer cut the message again, smaller): the two held
    // are given up and the reassembly starts over with it (RFC 7383 section 2.6).
    s.send(&fine[0]);
    assert_eq!((s.count(Ignored::FragmentTotalChanged), s.sa().fragments_held), (2, 1));
    // One with the lower total again: dropped.
    s.send(&coarse[2]);
    assert_eq!((s.count(Ignored::FragmentTotalChanged), s.sa().fragments_held), (3, 1));
    for f in &fine[1..] {
        s.send(f);
    }
    let t = s.take();
    assert!(s.answered(&t, id));
}

#[test]
fn a_message_too_big_is_given_up_and_holds_no_memory() {
    let mut s = Scripted::new(EndpointConfig::default(), true, 4);
    let id = s.peer.next_id;
    let frags = s.peer.request_fragments(ExchangeType::Informational, &Scripted::big(MAX_MESSAGE_BYTES + 5000), 2000);
    assert!(frags.len() <= MAX_FRAGMENTS as usize);
    let mut most = 0;
    for f in &frags {
        s.send(f);
        most = most.max(s.b.fragment_memory());
    }
    assert!(most <= MAX_MESSAGE_BYTES, "{most}");
    assert_eq!(s.b.fragment_memory(), 0);
    assert_eq!(s.count(Ignored::FragmentTooBig), frags.len() as u64, "every fragment of it, held or not");
    let t = s.take();
    assert!(!s.answered(&t, id));
}

#[test]
fn incomplete_messages_time_out() {
    let cfg = EndpointConfig { fragment_timeout: Duration::from_secs(10), ..EndpointConfig::default() };
    let mut s = Scripted::new(cfg, true, 5);
    let frags = s.peer.request_fragments(ExchangeType::Informational, &Scripted::big(3000), 600);
    for f in &frags[1..] {
        s.send(f);
    }
    let held = frags.len() - 1;
    assert_eq!(s.sa().fragments_held, held);
    let wake = s.b.poll_timeout().unwrap();
    assert!(wake <= s.now + Duration::from_secs(10), "the endpoint wakes for the timeout");
    s.b.handle_timeout(s.now + Duration::from_secs(9));
    assert_eq!(s.sa().fragments_held, held);
    s.b.handle_timeout(s.now + Duration::from_secs(10));
    assert_eq!((s.sa().fragments_held, s.b.fragment_memory()), (0, 0));
    assert_eq!(s.count(Ignored::FragmentTimeout), held as u64);
    assert_eq!(s.sa().state, rampart_ike::state::IkeState::Established, "the IKE SA stays");
}

#[test]
fn a_whole_message_supersedes_its_incomplete_fragments_and_fragment_1_gets_the_answer_again() {
    let mut s = Scripted::new(EndpointConfig::default(), true, 6);
    let id = s.peer.next_id;
    s.peer.next_id += 1;
    let (first, plain) = encode(&Scripted::big(2500));
    let frags = s.peer.fragments_of(ExchangeType::Informational, id, first, &plain, 600);
    s.send(&frags[1]);
    s.send(&frags[2]);
    // The peer sends the request again, whole (it gave up fragmenting): answered, and the two
    // fragments held are given up.
    let whole = s.peer.whole_of(ExchangeType::Informational, id, first, plain.clone());
    s.send(&whole);
    let answer = s.take();
    assert!(s.answered(&answer, id));
    assert_eq!((s.count(Ignored::FragmentSuperseded), s.sa().fragments_held, s.b.fragment_memory()), (2, 0, 0));
    // Late fragments of the answered request: ignored, but fragment 1 brings the cached answer.
    s.send(&frags[3]);
    assert!(s.take().is_empty());
    assert_eq!(s.count(Ignored::FragmentDuplicate), 1);
    s.send(&frags[0]);
    let again = s.take();
    assert_eq!(again.iter().map(|t| &t.bytes).collect::<Vec<_>>(), answer.iter().map(|t| &t.bytes).collect::<Vec<_>>());
    // A forged fragment 1 of it does not.
    let mut forged = frags[0].clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    s.send(&forged);
    assert!(s.take().is_empty());
    assert_eq!(s.count(Ignored::BadIcv), 1);
    // The next request, in fragments, goes through.
    let next = s.peer.next_id;
    for f in s.peer.request_fragments(ExchangeType::Informational, &Scripted::big(2000), 700) {
        s.send(&f);
    }
    let t = s.take();
    assert!(s.answered(&t, next));
}

#[test]
fn fragments_without_negotiation_are_dropped() {
    let mut s = Scripted::new(EndpointConfig::default(), false, 7);
    assert!(!s.sa().fragmentation);
    let id = s.peer.next_id;
    let frags = s.peer.request_fragments(ExchangeType::Informational, &Scripted::big(2000), 700);
    for f in &frags {
        s.send(f);
    }
    let t = s.take();
    assert!(!s.answered(&t, id));
    assert_eq!((s.count(Ignored::FragmentNotNegotiated), s.sa().fragments_held), (frags.len() as u64, 0));
}

#[test]
fn a_reassembled_message_that_does_not_parse_gets_invalid_syntax() {
    let mut s = Scripted::new(EndpointConfig::default(), true, 8);
    let id = s.peer.next_id;
    s.peer.next_id += 1;
    let (first, mut plain) = encode(&Scripted::big(2000));
    // The Vendor ID payload says it is longer than the chain.
    plain[2] = 0xff;
    plain[3] = 0xff;
    for f in s.peer.fragments_of(ExchangeType::Informational, id, first, &plain, 700) {
        s.send(&f);
    }
    let t = s.take();
    assert_eq!(t.len(), 1);
    let (m, payloads) = s.peer.open(&t[0].bytes);
    assert_eq!(m.header.message_id, id);
    assert!(matches!(&payloads[..], [Payload::Notify(n)] if n.kind == NotifyType::INVALID_SYNTAX), "{payloads:?}");
}

#[test]
fn a_flood_of_fragments_leaves_memory_bounded() {
    let limit = 24 * 1024;
    let cfg = EndpointConfig {
        fragment_memory: limit,
        cookie_threshold: 0,
        cookie_threshold_ip: 0,
        ..EndpointConfig::default()
    };
    let mut b = Scripted::new(cfg, true, 20);
    let frags = b.peer.request_fragments(ExchangeType::Informational, &Scripted::big(4000), 500);
    b.send(&frags[0]);
    let mut most = 0;
    let mut held = 0;
    // Twenty more peers (IKE SAs) each hold all but one fragment of a 4 KB message: the
    // endpoint's memory is full after a few of them.
    let mut peers = Vec::new();
    for i in 0..20u64 {
        let mut p = ScriptedPeer::new(200 + i, DhGroup::Ecp256);
        p.fragmentation = true;
        let from = sock(&format!("192.0.2.{}", 10 + i), 500);
        b.b.handle(b.now, b.to, from, &p.init(None));
        let t: Vec<Transmit> = std::iter::from_fn(|| b.b.poll_transmit()).collect();
        p.init_done(&t[0].bytes);
        let auth = p.auth(PEER_ID, PSK, ts("198.18.1.0/24"), ts("198.18.2.0/24"));
        b.b.handle(b.now, b.to, from, &auth);
        let _ = b.take();
        let frags = p.request_fragments(ExchangeType::Informational, &Scripted::big(4000), 500);
        for f in &frags[..frags.len() - 1] {
            b.b.handle(b.now, b.to, from, f);
            most = most.max(b.b.fragment_memory());
        }
        held += frags.len() - 1;
        peers.push((p, from, frags));
    }
    assert!(most <= limit, "{most} > {limit}");
    let refused = b.count(Ignored::FragmentMemory);
    assert!(refused > 0, "the pool filled");
    // Thousands of forgeries and replays on the first IKE SA: none kept.
    for i in 0..5000 {
        let mut f = frags[1 + i % (frags.len() - 2)].clone();
        let n = f.len();
        f[n - 1 - i % 16] ^= 1 + (i % 255) as u8;
        b.send(&f);
        b.send(&frags[0]);
        most = most.max(b.b.fragment_memory());
    }
    assert!(most <= limit);
    assert!(b.count(Ignored::BadIcv) >= 5000 && b.count(Ignored::FragmentDuplicate) >= 5000);
    let kept = b.b.ike_sas().iter().map(|s| s.fragments_held).sum::<usize>();
    assert_eq!(kept as u64, held as u64 - refused + 1);
    // After the timeout every byte is back.
    b.b.handle_timeout(b.now + Duration::from_secs(30));
    assert_eq!(b.b.fragment_memory(), 0);
    assert_eq!(b.count(Ignored::FragmentTimeout), kept as u64);
}

// ---- The reassembler alone ----------------------------------------------------------------

fn first_fragment() -> Message {
    let h = Header {
        spi_i: 1,
        spi_r: 2,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange: ExchangeType::IkeAuth,
        flags: 0,
        message_id: 1,
        length: 0,
    };
    Message { header: h, payloads: vec![], encrypted: None }
}

fn peer() -> SocketAddr {
    sock("192.0.2.9", 4500)
}

#[test]
fn the_reassembler_puts_fragments_in_order_and_gives_the_memory_back() {
    let mut r = Reassembler::default();
    let (mut pool, mut diag, now) = (Pool::default(), Diagnostics::default(), Instant::now());
    for n in [3u16, 1, 2] {
        let f = FragmentNumber { number: n, total: 3 };
        assert!(r.check(Slot::Request, 1, f).is_ok());
        let first = (n == 1).then(|| (first_fragment(), 35));
        let got = r.insert(now, Slot::Request, 1, f, vec![n as u8; 10], first, (&mut pool, 1000), &mut diag, peer());
        if n == 2 {
            let Inserted::Complete(a) = got else { panic!("{got:?}") };
            assert_eq!(a.plain, [[1u8; 10], [2; 10], [3; 10]].concat());
            assert_eq!(a.first_inner, 35);
        } else {
            assert!(matches!(got, Inserted::Kept));
            assert_eq!(r.check(Slot::Request, 1, f).unwrap_err().0, Ignored::FragmentDuplicate);
        }
    }
    assert_eq!((pool.used, r.bytes(), r.held()), (0, 0, 0));
}

#[test]
fn the_reassembler_counts_every_limit() {
    let mut r = Reassembler::default();
    let (mut pool, mut diag, now) = (Pool::default(), Diagnostics::default(), Instant::now());
    let big_pool = 1 << 20;
    let bad = |r: &Reassembler, n, t| r.check(Slot::Response, 5, FragmentNumber { number: n, total: t }).unwrap_err().0;
    assert_eq!(bad(&r, 0, 3), Ignored::FragmentInvalid);
    assert_eq!(bad(&r, 4, 3), Ignored::FragmentInvalid);
    assert_eq!(bad(&r, 1, 0), Ignored::FragmentInvalid);
    assert_eq!(bad(&r, 1, MAX_FRAGMENTS + 1), Ignored::FragmentTooMany);
    // The endpoint's pool is full: dropped, nothing kept.
    let f = |n, t| FragmentNumber { number: n, total: t };
    let got = r.insert(now, Slot::Request, 1, f(1, 2), vec![0; 600], None, (&mut pool, 500), &mut diag, peer());
    assert!(matches!(got, Inserted::Dropped));
    assert_eq!((diag.count(Ignored::FragmentMemory), r.held(), pool.used), (1, 0, 0));
    // The IKE SA's share: a request and a response together stay within MAX_SA_BYTES.
    let half = MAX_SA_BYTES / 2 + 10;
    r.insert(now, Slot::Request, 1, f(1, 2), vec![0; half], None, (&mut pool, big_pool), &mut diag, peer());
    let got = r.insert(now, Slot::Response, 7, f(1, 2), vec![0; half], None, (&mut pool, big_pool), &mut diag, peer());
    assert!(matches!(got, Inserted::Dropped));
    assert_eq!((diag.count(Ignored::FragmentMemory), r.held(), r.bytes()), (2, 1, half));
    // A message that grows past MAX_MESSAGE_BYTES is given up whole, and stays given up.
    r.insert(
        now,
        Slot::Request,
        1,
        f(2, 2),
        vec![0; MAX_MESSAGE_BYTES],
        None,
        (&mut pool, big_pool),
        &mut diag,
        peer(),
    );
    assert_eq!((diag.count(Ignored::FragmentTooBig), r.held(), pool.used), (2, 0, 0));
    assert_eq!(r.check(Slot::Request, 1, f(1, 2)).unwrap_err().0, Ignored::FragmentTooBig);
    // A higher total starts over; a lower one is refused.
    r.insert(now, Slot::Request, 2, f(2, 3), vec![0; 10], None, (&mut pool, big_pool), &mut diag, peer());
    r.insert(now, Slot::Request, 2, f(1, 4), vec![0; 10], None, (&mut pool, big_pool), &mut diag, peer());
    assert_eq!((diag.count(Ignored::FragmentTotalChanged), r.held()), (1, 1));
    assert_eq!(r.check(Slot::Request, 2, f(3, 3)).unwrap_err().0, Ignored::FragmentTotalChanged);
    // A newer message supersedes; an older one is out of the window.
    r.insert(now, Slot::Request, 3, f(1, 3), vec![0; 10], None, (&mut pool, big_pool), &mut diag, peer());
    assert_eq!((diag.count(Ignored::FragmentSuperseded), r.held()), (1, 1));
    r.insert(now, Slot::Request, 2, f(2, 3), vec![0; 10], None, (&mut pool, big_pool), &mut diag, peer());
    assert_eq!((diag.count(Ignored::OutOfWindow), r.held()), (1, 1));
    // The window moving past it gives it up too.
    r.retire(Slot::Request, 3, &mut pool, &mut diag, peer());
    assert_eq!(r.held(), 1, "message 3 is not below 3");
    r.retire(Slot::Request, 4, &mut pool, &mut diag, peer());
    assert_eq!((diag.count(Ignored::FragmentSuperseded), r.held(), pool.used), (2, 0, 0));
    // The timeout gives up what is left.
    r.insert(now, Slot::Response, 9, f(1, 3), vec![0; 10], None, (&mut pool, big_pool), &mut diag, peer());
    let t = Duration::from_secs(30);
    assert_eq!(r.deadline(t), Some(now + t));
    r.expire(now + t - Duration::from_millis(1), t, &mut pool, &mut diag, peer());
    assert_eq!(r.held(), 1);
    r.expire(now + t, t, &mut pool, &mut diag, peer());
    assert_eq!((diag.count(Ignored::FragmentTimeout), r.held(), pool.used), (1, 0, 0));
}
