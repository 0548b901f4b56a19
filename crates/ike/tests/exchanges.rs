//! Two endpoints on simulated time: establishment, narrowing, rekeys, collisions, deletes,
//! DPD, retransmission, cookies, INVALID_KE_PAYLOAD, NAT traversal.

mod common;

use std::time::Duration;

use common::*;
use rampart_ike::message::{ExchangeType, Message, NotifyType, Payload};
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::state::{ChildState, IkeState};
use rampart_ike::*;
use rampart_sa::UdpEncap;

fn exchange_of(t: &Transmit) -> (ExchangeType, bool) {
    let m = Message::parse(&t.bytes).unwrap();
    (m.header.exchange, m.header.is_response())
}

#[test]
fn establish_with_narrowing_and_matching_keys() {
    let mut b = conn_b();
    b.children[0].remote_ts = vec![ts("198.18.1.0/25")];
    let mut p = Pair::new(conn_a(), b);
    p.establish();
    // Two round trips: IKE_SA_INIT and IKE_AUTH.
    let kinds: Vec<_> = p.log.iter().map(|(s, t)| (*s, exchange_of(t))).collect();
    assert_eq!(
        kinds,
        vec![
            (Side::A, (ExchangeType::IkeSaInit, false)),
            (Side::B, (ExchangeType::IkeSaInit, true)),
            (Side::A, (ExchangeType::IkeAuth, false)),
            (Side::B, (ExchangeType::IkeAuth, true)),
        ]
    );
    assert!(matches!(&p.a_events[0], Event::IkeSaUp { remote_id, .. } if remote_id.to_string() == "gw-b.sw.test"));
    assert!(matches!(&p.b_events[0], Event::IkeSaUp { remote_id, .. } if remote_id.to_string() == "gw-a.sw.test"));
    let ia = installs(&p.a_events);
    let ib = installs(&p.b_events);
    assert_eq!((ia.len(), ib.len()), (1, 1));
    let ((a_in, a_out), (b_in, b_out)) = (ia[0], ib[0]);
    assert_ends_match(a_out, b_in);
    assert_ends_match(b_out, a_in);
    assert_eq!(a_out.suite, suite_gcm256());
    assert_eq!(a_out.encryption_key.len(), 36);
    assert_ne!(&a_out.encryption_key[..], &a_in.encryption_key[..]);
    // The responder narrowed TSi to its /25.
    assert_eq!(a_out.local_ts, vec![ts("198.18.1.0/25")]);
    assert_eq!(b_in.remote_ts, vec![ts("198.18.1.0/25")]);
    assert_eq!(a_out.remote_ts, vec![ts("198.18.2.0/24")]);
    assert_eq!(a_out.mode, tunnel());
    assert_eq!(a_out.encap, None);
    let sa = Pair::only_sa(&p.a);
    assert_eq!(sa.state, IkeState::Established);
    assert_eq!(Pair::only_sa(&p.b).state, IkeState::Established);
    // The exchange log the metrics read: A initiated both exchanges and timed them, B answered.
    assert_eq!(p.a.exchange_log().completed, [[1, 0], [1, 0], [0, 0], [0, 0]]);
    assert_eq!(p.b.exchange_log().completed, [[0, 1], [0, 1], [0, 0], [0, 0]]);
    let rtts: Vec<_> = p.a.exchange_log().take_rtts().map(|(e, _)| e).collect();
    assert_eq!(rtts, vec![ExchangeType::IkeSaInit, ExchangeType::IkeAuth]);
    assert_eq!(p.b.exchange_log().take_rtts().count(), 0);
}

#[test]
fn every_ike_suite_establishes() {
    for prop in [
        "aes128gcm16-prfsha256-ecp256",
        "aes256gcm16-prfsha384-ecp384",
        "chacha20poly1305-prfsha512-x25519",
        "aes128-sha256-modp2048",
        "aes256-sha384-x25519",
        "aes256-sha512-ecp256",
        "aes192-sha256-modp3072",
        "aes128gcm16-prfsha256-modp4096",
        "aes256gcm16-prfsha512-ecp521",
    ] {
        let (mut a, mut b) = (conn_a(), conn_b());
        a.proposals = parse_ike_proposals(prop).unwrap();
        b.proposals = parse_ike_proposals(prop).unwrap();
        a.children[0].esp_proposals = parse_esp_proposals("aes192-sha256-esn").unwrap();
        b.children[0].esp_proposals = parse_esp_proposals("aes192-sha256-esn").unwrap();
        let mut p = Pair::new(a, b);
        p.establish();
        let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
        assert_eq!((ia.len(), ib.len()), (1, 1), "{prop}");
        assert_ends_match(ia[0].1, ib[0].0);
        assert!(ia[0].1.esn && ia[0].1.integrity_key.len() == 32, "{prop}");
        assert_eq!(ia[0].1.encryption_key.len(), 24, "{prop}: AES-192-CBC for ESP");
    }
}

#[test]
fn wrong_psk_fails_authentication_on_both_sides() {
    let mut b = conn_b();
    b.psk = Some(Psk::new(b"another secret"));
    let mut p = Pair::new(conn_a(), b);
    p.establish();
    assert!(installs(&p.a_events).is_empty() && installs(&p.b_events).is_empty());
    assert!(p.a_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::AuthenticationFailed, .. })));
    assert!(p.a.ike_sas().is_empty());
    assert!(p.b.ike_sas().is_empty());
    assert!(!p.b_events.iter().any(|e| matches!(e, Event::IkeSaUp { .. })));
}

#[test]
fn unexpected_peer_identity_is_refused() {
    let mut a = conn_a();
    a.remote.id = Some(rampart_ike::message::Identification::fqdn("someone-else.test"));
    let mut p = Pair::new(a, conn_b());
    p.establish();
    assert!(p.a_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::AuthenticationFailed, .. })));
    assert!(installs(&p.a_events).is_empty());
}

#[test]
fn disjoint_selectors_fail_the_child_not_the_ike_sa() {
    let mut b = conn_b();
    b.children[0].remote_ts = vec![ts("10.0.0.0/8")];
    let mut p = Pair::new(conn_a(), b);
    p.establish();
    assert!(p.a_events.iter().any(|e| matches!(e, Event::ChildSaFailed { reason: NotifyType::TS_UNACCEPTABLE, .. })));
    assert_eq!(Pair::only_sa(&p.a).state, IkeState::Established);
    assert!(installs(&p.a_events).is_empty() && installs(&p.b_events).is_empty());
}

#[test]
fn no_common_esp_proposal_fails_the_child() {
    let mut b = conn_b();
    b.children[0].esp_proposals = parse_esp_proposals("chacha20poly1305").unwrap();
    let mut p = Pair::new(conn_a(), b);
    p.establish();
    assert!(
        p.a_events.iter().any(|e| matches!(e, Event::ChildSaFailed { reason: NotifyType::NO_PROPOSAL_CHOSEN, .. }))
    );
    assert_eq!(Pair::only_sa(&p.b).state, IkeState::Established);
}

#[test]
fn no_common_ike_proposal() {
    let mut b = conn_b();
    b.proposals = parse_ike_proposals("aes128gcm16-prfsha512-modp2048").unwrap();
    let mut p = Pair::new(conn_a(), b);
    p.establish();
    assert!(
        p.a_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::Failed(r), .. } if r == "NO_PROPOSAL_CHOSEN"))
    );
    assert!(p.b.ike_sas().is_empty());
}

#[test]
fn invalid_ke_payload_round_uses_the_requested_group() {
    let (mut a, mut b) = (conn_a(), conn_b());
    a.proposals = parse_ike_proposals("aes256gcm16-prfsha256-x25519-ecp384").unwrap();
    b.proposals = parse_ike_proposals("aes256gcm16-prfsha256-ecp384").unwrap();
    let mut p = Pair::new(a, b);
    p.establish();
    let init: Vec<Message> = p
        .log
        .iter()
        .filter(|(_, t)| exchange_of(t).0 == ExchangeType::IkeSaInit)
        .map(|(_, t)| Message::parse(&t.bytes).unwrap())
        .collect();
    assert_eq!(init.len(), 4);
    let ke_group = |m: &Message| {
        m.payloads.iter().find_map(|p| if let Payload::Ke { group, .. } = p { Some(*group) } else { None })
    };
    assert_eq!(ke_group(&init[0]), Some(31));
    let n = init[1].notify(NotifyType::INVALID_KE_PAYLOAD).expect("INVALID_KE_PAYLOAD");
    assert_eq!(n.data, vec![0, 20]);
    assert_eq!(init[1].header.spi_r, 0);
    assert_eq!(ke_group(&init[2]), Some(20));
    assert_eq!(init[2].header.spi_i, init[0].header.spi_i);
    assert_eq!(installs(&p.a_events).len(), 1);
}

#[test]
fn initiators_guess_is_kept_when_the_proposal_allows_it() {
    let (mut a, mut b) = (conn_a(), conn_b());
    a.proposals = parse_ike_proposals("aes256gcm16-prfsha256-x25519-ecp256").unwrap();
    b.proposals = parse_ike_proposals("aes256gcm16-prfsha256-ecp256-x25519").unwrap();
    let mut p = Pair::new(a, b);
    p.establish();
    assert_eq!(p.log.len(), 4, "no INVALID_KE_PAYLOAD round");
}

#[test]
fn child_rekey_make_before_break() {
    let mut p = Pair::new(conn_a(), conn_b());
    let ike = p.establish();
    let old = Pair::only_sa(&p.a).children[0].clone();
    let (old_in, old_out) = {
        let i = installs(&p.a_events)[0];
        (i.0.clone(), i.1.clone())
    };
    p.clear_events();
    p.a.rekey_child(p.now, ike, old.id).unwrap();
    // Message by message: the rekey request, its answer, then the delete exchange.
    p.collect();
    assert_eq!(p.in_flight.len(), 1);
    let (s, t) = p.in_flight.remove(0);
    let m = Message::parse(&t.bytes).unwrap();
    assert_eq!((s, m.header.exchange, m.header.message_id), (Side::A, ExchangeType::CreateChildSa, 2));
    p.deliver(s, t);
    p.collect();
    // B installed the new inbound SA only: outbound stays on the old one.
    let Event::RekeyedChildSa { old: o, new: b_new, inbound: b_new_in, outbound: None, .. } = &p.b_events[0] else {
        panic!("{:?}", p.b_events)
    };
    assert_eq!(*o, Pair::only_sa(&p.b).children[0].id);
    let b_new = *b_new;
    let b_new_in = b_new_in.clone();
    let (s, t) = p.in_flight.remove(0);
    p.deliver(s, t);
    p.collect();
    // A installed both halves and switched outbound, then asks to delete the old pair.
    let Event::RekeyedChildSa { old: o, outbound: Some(a_new_out), inbound: a_new_in, .. } = &p.a_events[0] else {
        panic!("{:?}", p.a_events)
    };
    assert_eq!(*o, old.id);
    assert_ends_match(a_new_out, &b_new_in);
    assert_ne!(&a_new_out.encryption_key[..], &old_out.encryption_key[..]);
    assert_ne!(a_new_in.spi, old_in.spi);
    let (s, t) = p.in_flight.remove(0);
    let m = Message::parse(&t.bytes).unwrap();
    assert_eq!(m.header.exchange, ExchangeType::Informational);
    p.deliver(s, t);
    p.collect();
    // B: switch outbound to the new SA first, then remove the old.
    assert!(matches!(&p.b_events[1], Event::SwitchOutbound { child, .. } if *child == b_new));
    assert!(matches!(&p.b_events[2], Event::DeleteChildSa { outbound_spi, .. } if *outbound_spi == old_in.spi));
    p.drive();
    assert!(matches!(&p.a_events[1], Event::DeleteChildSa { child, .. } if *child == old.id));
    let (ca, cb) = (Pair::only_sa(&p.a).children, Pair::only_sa(&p.b).children);
    assert_eq!((ca.len(), cb.len()), (1, 1));
    assert_eq!(ca[0].spi_in, cb[0].spi_out);
    assert!(ca[0].outbound_active && cb[0].outbound_active);
}

#[test]
fn child_rekey_with_pfs_by_the_responder() {
    let (mut a, mut b) = (conn_a(), conn_b());
    a.children[0].esp_proposals = parse_esp_proposals("aes256gcm16-ecp256").unwrap();
    b.children[0].esp_proposals = parse_esp_proposals("aes256gcm16-ecp256").unwrap();
    let mut p = Pair::new(a, b);
    let _ = p.establish();
    let b_sa = Pair::only_sa(&p.b);
    p.clear_events();
    p.b.rekey_child(p.now, b_sa.id, b_sa.children[0].id).unwrap();
    p.drive();
    let req =
        p.log.iter().rev().find(|(s, t)| *s == Side::B && exchange_of(t).0 == ExchangeType::CreateChildSa).unwrap();
    // The request flies with B's (responder's) flags, and its KE is encrypted so we only see SK.
    let m = Message::parse(&req.1.bytes).unwrap();
    assert!(!m.header.is_initiator() && m.encrypted.is_some());
    let new_b = p.b_events.iter().find_map(|e| match e {
        Event::RekeyedChildSa { outbound: Some(o), inbound, .. } => Some((inbound.clone(), o.clone())),
        _ => None,
    });
    let new_a = p.a_events.iter().find_map(|e| match e {
        Event::RekeyedChildSa { outbound: None, inbound, .. } => Some(inbound.clone()),
        _ => None,
    });
    let (new_b, new_a_in) = (new_b.unwrap(), new_a.unwrap());
    assert_ends_match(&new_b.1, &new_a_in);
    let (ca, cb) = (Pair::only_sa(&p.a).children, Pair::only_sa(&p.b).children);
    assert_eq!((ca.len(), cb.len()), (1, 1));
    assert_eq!(ca[0].spi_out, cb[0].spi_in);
}

#[test]
fn simultaneous_child_rekey_lowest_nonce_loses() {
    for seed_shift in 0..4u64 {
        let mut p = Pair::new(conn_a(), conn_b());
        // Different seeds give different nonces, so that either side may win.
        p.a =
            Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(10 + seed_shift)));
        p.a.add_connection(conn_a());
        let ike_a = p.establish();
        let a_child = Pair::only_sa(&p.a).children[0].id;
        let b_sa = Pair::only_sa(&p.b);
        p.clear_events();
        p.a.rekey_child(p.now, ike_a, a_child).unwrap();
        p.b.rekey_child(p.now, b_sa.id, b_sa.children[0].id).unwrap();
        p.collect();
        // Both requests cross.
        assert_eq!(p.in_flight.len(), 2);
        for (s, t) in std::mem::take(&mut p.in_flight) {
            assert_eq!(exchange_of(&t), (ExchangeType::CreateChildSa, false));
            p.deliver(s, t);
        }
        p.collect();
        // Both answered; both have a new inbound SA from the peer's exchange.
        assert_eq!(p.in_flight.len(), 2);
        assert!(p.in_flight.iter().all(|(_, t)| exchange_of(t) == (ExchangeType::CreateChildSa, true)));
        p.drive();
        let (ca, cb) = (Pair::only_sa(&p.a).children, Pair::only_sa(&p.b).children);
        assert_eq!((ca.len(), cb.len()), (1, 1), "seed {seed_shift}: {ca:#?} {cb:#?}");
        assert_eq!(ca[0].spi_in, cb[0].spi_out);
        assert_eq!(ca[0].spi_out, cb[0].spi_in);
        assert!(ca[0].outbound_active && cb[0].outbound_active && ca[0].announced && cb[0].announced);
        assert_eq!((ca[0].state, cb[0].state), (ChildState::Installed, ChildState::Installed));
        // The survivor was installed on both sides, and everything else removed.
        let survivor = ca[0].id;
        assert!(p.a_events.iter().any(|e| matches!(e, Event::RekeyedChildSa { new, .. } if *new == survivor)));
        let installed_a = p.a_events.iter().filter(|e| matches!(e, Event::RekeyedChildSa { .. })).count();
        let deleted_a = p.a_events.iter().filter(|e| matches!(e, Event::DeleteChildSa { .. })).count();
        assert_eq!(installed_a, deleted_a, "every installed SA but one is deleted: {:#?}", p.a_events);
        // The redundant SA never carried traffic: exactly one outbound switch per side.
        let switches = |ev: &[Event]| {
            ev.iter()
                .filter(|e| matches!(e, Event::SwitchOutbound { .. } | Event::RekeyedChildSa { outbound: Some(_), .. }))
                .count()
        };
        assert_eq!((switches(&p.a_events), switches(&p.b_events)), (1, 1), "{:#?}\n{:#?}", p.a_events, p.b_events);
    }
}

#[test]
fn ike_rekey_moves_children_and_keeps_working() {
    let mut p = Pair::new(conn_a(), conn_b());
    let ike = p.establish();
    let before_a = Pair::only_sa(&p.a);
    let before_b = Pair::only_sa(&p.b);
    p.clear_events();
    p.a.rekey_ike(p.now, ike).unwrap();
    p.drive();
    let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
    assert_ne!(sa.id, before_a.id);
    assert_ne!((sa.spi_i, sa.spi_r), (before_a.spi_i, before_a.spi_r));
    assert_eq!((sa.spi_i, sa.spi_r), (sb.spi_i, sb.spi_r));
    assert_eq!(sa.children, before_a.children);
    assert_eq!(sb.children, before_b.children);
    assert!(
        p.a_events
            .iter()
            .any(|e| matches!(e, Event::IkeSaRekeyed { old, new } if *old == before_a.id && *new == sa.id))
    );
    assert!(p.a_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::Rekeyed, .. })));
    assert!(p.b_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::Rekeyed, .. })));
    assert!(!p.a_events.iter().any(|e| matches!(e, Event::DeleteChildSa { .. })));
    // The new IKE SA's keys work: a CHILD_SA rekey over it, then a second IKE rekey from B.
    p.clear_events();
    p.a.rekey_child(p.now, sa.id, sa.children[0].id).unwrap();
    p.drive();
    assert_eq!(Pair::only_sa(&p.a).children.len(), 1);
    assert!(p.b_events.iter().any(|e| matches!(e, Event::SwitchOutbound { .. })));
    p.b.rekey_ike(p.now, sb.id).unwrap();
    p.drive();
    let (sa2, sb2) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
    assert_eq!((sa2.spi_i, sa2.spi_r), (sb2.spi_i, sb2.spi_r));
    assert!(sb2.initiator && !sa2.initiator, "the rekey's initiator is the new SA's initiator");
    p.a.dpd(p.now, sa2.id).unwrap();
    p.drive();
    assert_eq!(Pair::only_sa(&p.a).state, IkeState::Established);
}

#[test]
fn simultaneous_ike_rekey_leaves_one_ike_sa() {
    for seed in 0..4u64 {
        let mut p = Pair::new(conn_a(), conn_b());
        p.a = Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(20 + seed)));
        p.a.add_connection(conn_a());
        let ike_a = p.establish();
        let ike_b = Pair::only_sa(&p.b).id;
        let child_spi = Pair::only_sa(&p.a).children[0].spi_in;
        p.a.rekey_ike(p.now, ike_a).unwrap();
        p.b.rekey_ike(p.now, ike_b).unwrap();
        p.collect();
        assert_eq!(p.in_flight.len(), 2);
        p.drive();
        let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
        assert_eq!((sa.spi_i, sa.spi_r), (sb.spi_i, sb.spi_r), "seed {seed}");
        assert_eq!(sa.children.len(), 1, "seed {seed}: {sa:#?}");
        assert_eq!(sb.children.len(), 1);
        assert_eq!(sa.children[0].spi_in, child_spi);
        p.a.dpd(p.now, sa.id).unwrap();
        p.drive();
        assert_eq!(Pair::only_sa(&p.a).state, IkeState::Established);
    }
}

#[test]
fn delete_child_from_either_side() {
    for initiator_deletes in [true, false] {
        let mut p = Pair::new(conn_a(), conn_b());
        p.establish();
        p.clear_events();
        let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
        if initiator_deletes {
            p.a.delete_child(p.now, sa.id, sa.children[0].id).unwrap();
        } else {
            p.b.delete_child(p.now, sb.id, sb.children[0].id).unwrap();
        }
        p.drive();
        for ev in [&p.a_events, &p.b_events] {
            assert_eq!(ev.len(), 1);
            assert!(matches!(ev[0], Event::DeleteChildSa { .. }));
        }
        assert!(Pair::only_sa(&p.a).children.is_empty() && Pair::only_sa(&p.b).children.is_empty());
        // A new CHILD_SA can be created afterwards with CREATE_CHILD_SA.
        p.a.create_child(p.now, sa.id, "net").unwrap();
        p.drive();
        let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
        assert_eq!((ia.len(), ib.len()), (1, 1));
        assert_ends_match(ia[0].1, ib[0].0);
    }
}

#[test]
fn delete_ike_from_either_side() {
    for a_deletes in [true, false] {
        let mut p = Pair::new(conn_a(), conn_b());
        p.establish();
        p.clear_events();
        if a_deletes {
            p.a.delete_ike(p.now, Pair::only_sa(&p.a).id).unwrap();
        } else {
            p.b.delete_ike(p.now, Pair::only_sa(&p.b).id).unwrap();
        }
        p.drive();
        assert!(p.a.ike_sas().is_empty() && p.b.ike_sas().is_empty());
        let (us, them) = if a_deletes { (&p.a_events, &p.b_events) } else { (&p.b_events, &p.a_events) };
        assert!(matches!(
            us.as_slice(),
            [Event::DeleteChildSa { .. }, Event::IkeSaDown { reason: DownReason::Deleted, .. }]
        ));
        assert!(matches!(
            them.as_slice(),
            [Event::DeleteChildSa { .. }, Event::IkeSaDown { reason: DownReason::DeletedByPeer, .. }]
        ));
    }
}

#[test]
fn dpd_with_a_dead_peer_clears_the_sa() {
    let mut a = conn_a();
    a.dpd_delay = Duration::from_secs(30);
    let mut p = Pair::new(a, conn_b());
    p.establish();
    p.clear_events();
    let t0 = p.now;
    // B dies: nothing it would send arrives, nothing reaches it.
    p.run_for_with(Duration::from_secs(400), |_, _| false);
    let sent: Vec<_> =
        p.log.iter().filter(|(s, t)| *s == Side::A && exchange_of(t).0 == ExchangeType::Informational).collect();
    assert_eq!(sent.len(), 6, "the DPD request and 5 retransmissions");
    assert!(matches!(p.a_events.last(), Some(Event::IkeSaDown { reason: DownReason::PeerDead, .. })));
    assert!(p.a_events.iter().any(|e| matches!(e, Event::DeleteChildSa { .. })));
    assert!(p.a.ike_sas().is_empty());
    let _ = t0;
}

#[test]
fn dpd_with_a_live_peer_keeps_the_sa() {
    let mut a = conn_a();
    a.dpd_delay = Duration::from_secs(30);
    let mut p = Pair::new(a, conn_b());
    p.establish();
    p.clear_events();
    p.run_for(Duration::from_secs(200));
    let dpds =
        p.log.iter().filter(|(s, t)| *s == Side::A && exchange_of(t) == (ExchangeType::Informational, false)).count();
    assert!((6..=7).contains(&dpds), "one check every 30 s of silence: {dpds}");
    assert!(p.a_events.is_empty(), "{:?}", p.a_events);
    assert_eq!(Pair::only_sa(&p.a).state, IkeState::Established);
}

#[test]
fn retransmission_schedule_follows_strongswan_defaults() {
    let mut p = Pair::new(conn_a(), conn_b());
    p.a.initiate(p.now, "gw", None).unwrap();
    let start = p.now;
    let mut times = vec![];
    // Nothing is delivered: A retransmits IKE_SA_INIT and gives up.
    for _ in 0..20 {
        p.collect();
        for (s, _) in std::mem::take(&mut p.in_flight) {
            assert_eq!(s, Side::A);
            times.push((p.now - start).as_secs_f64());
        }
        match p.a.poll_timeout() {
            Some(t) => {
                p.now = t;
                p.a.handle_timeout(t);
            }
            None => break,
        }
    }
    p.collect();
    let expect = [0.0, 4.0, 11.2, 24.16, 47.488, 89.4784];
    assert_eq!(times.len(), expect.len(), "{times:?}");
    for (t, e) in times.iter().zip(expect) {
        assert!((t - e).abs() < 0.01, "{times:?}");
    }
    assert!(matches!(p.a_events.last(), Some(Event::IkeSaDown { reason: DownReason::PeerDead, .. })));
    assert!((p.now - start).as_secs_f64() > 165.0);
}

#[test]
fn lost_request_and_lost_response_are_retransmitted_and_answered_from_cache() {
    let mut p = Pair::new(conn_a(), conn_b());
    p.a.initiate(p.now, "gw", None).unwrap();
    let mut dropped_request = false;
    let mut dropped_response = false;
    p.run_for_with(Duration::from_secs(60), |s, t| {
        let (ex, resp) = exchange_of(t);
        if ex == ExchangeType::IkeAuth && s == Side::A && !dropped_request {
            dropped_request = true;
            return false;
        }
        if ex == ExchangeType::IkeAuth && resp && !dropped_response {
            dropped_response = true;
            return false;
        }
        true
    });
    let auth_req: Vec<_> =
        p.log.iter().filter(|(s, t)| *s == Side::A && exchange_of(t).0 == ExchangeType::IkeAuth).collect();
    let auth_resp: Vec<_> =
        p.log.iter().filter(|(s, t)| *s == Side::B && exchange_of(t).0 == ExchangeType::IkeAuth).collect();
    assert_eq!(auth_req.len(), 3);
    assert!(auth_req.windows(2).all(|w| w[0].1.bytes == w[1].1.bytes), "retransmissions are identical");
    assert_eq!(auth_resp.len(), 2);
    assert_eq!(auth_resp[0].1.bytes, auth_resp[1].1.bytes, "the second answer is the cached one");
    assert_eq!(installs(&p.a_events).len(), 1);
    assert_eq!(installs(&p.b_events).len(), 1, "B processed the request once");
    // Counted once each; the two retransmissions counted; the round trip from the first send.
    assert_eq!(p.a.exchange_log().retransmits, [0, 2, 0, 0]);
    assert_eq!(p.a.exchange_log().completed[1], [1, 0]);
    assert_eq!(p.b.exchange_log().completed[1], [0, 1], "the cached answer is not a new exchange");
    let auth_rtt = p.a.exchange_log().take_rtts().find(|(e, _)| *e == ExchangeType::IkeAuth).unwrap().1;
    assert!(auth_rtt >= Duration::from_secs(4), "{auth_rtt:?}: includes the wait before the retransmissions");
}

#[test]
fn cookies_under_load() {
    let cb = EndpointConfig { cookie_threshold: 2, ..EndpointConfig::default() };
    let mut b = conn_b();
    b.remote_addrs = vec![];
    let mut p = Pair::with_config(conn_a(), b, EndpointConfig::default(), cb);
    // Two half-open SAs from elsewhere: IKE_SA_INIT from other initiators that never go on.
    for n in 0..2u64 {
        let mut other =
            Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(100 + n)));
        let mut c = conn_a();
        c.local_addrs = vec![ip(&format!("192.0.2.{}", 50 + n))];
        other.add_connection(c);
        other.initiate(p.now, "gw", None).unwrap();
        let t = other.poll_transmit().unwrap();
        p.b.handle(p.now, t.to, t.from, &t.bytes);
        assert!(p.b.poll_transmit().is_some());
    }
    p.establish();
    let init: Vec<Message> = p
        .log
        .iter()
        .filter(|(_, t)| exchange_of(t).0 == ExchangeType::IkeSaInit)
        .map(|(_, t)| Message::parse(&t.bytes).unwrap())
        .collect();
    assert_eq!(init.len(), 4);
    let cookie = init[1].notify(NotifyType::COOKIE).expect("B asks for a cookie");
    assert_eq!(init[1].payloads.len(), 1);
    assert!(
        matches!(&init[2].payloads[0], Payload::Notify(n) if n.kind == NotifyType::COOKIE && n.data == cookie.data)
    );
    assert_eq!(installs(&p.a_events).len(), 1);
}

#[test]
fn forged_cookie_is_not_accepted() {
    // One half-open IKE SA from elsewhere reaches a threshold of one: cookies from then on.
    let cb = EndpointConfig { cookie_threshold: 1, ..EndpointConfig::default() };
    let mut b = conn_b();
    b.remote_addrs = vec![];
    let mut p = Pair::with_config(conn_a(), b, EndpointConfig::default(), cb);
    let mut other = Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(77)));
    let mut c = conn_a();
    c.local_addrs = vec![ip("192.0.2.60")];
    other.add_connection(c);
    other.initiate(p.now, "gw", None).unwrap();
    let t = other.poll_transmit().unwrap();
    p.b.handle(p.now, t.to, t.from, &t.bytes);
    assert!(p.b.poll_transmit().is_some());
    assert_eq!(p.b.ike_sas().len(), 1);
    p.a.initiate(p.now, "gw", None).unwrap();
    p.collect();
    let (_, first) = p.in_flight.remove(0);
    p.deliver(Side::A, first.clone());
    p.collect();
    let (_, answer) = p.in_flight.remove(0);
    let mut cookie = Message::parse(&answer.bytes).unwrap().notify(NotifyType::COOKIE).unwrap().data.clone();
    cookie[5] ^= 1;
    let mut m = Message::parse(&first.bytes).unwrap();
    m.payloads.insert(0, Payload::notify(NotifyType::COOKIE, cookie));
    let forged = Message::emit_plain(m.header, &m.payloads);
    p.b.handle(p.now, first.to, first.from, &forged);
    let again = p.b.poll_transmit().unwrap();
    assert!(Message::parse(&again.bytes).unwrap().notify(NotifyType::COOKIE).is_some(), "asked again, no state kept");
    assert_eq!(p.b.ike_sas().len(), 1, "only the other initiator's");
}

#[test]
fn half_open_limit_per_peer_drops_silently() {
    let cb = EndpointConfig { block_threshold: 2, cookie_threshold: 100, ..EndpointConfig::default() };
    let mut p = Pair::with_config(conn_a(), conn_b(), EndpointConfig::default(), cb);
    let mut answers = 0;
    for n in 0..4u64 {
        let mut other =
            Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(200 + n)));
        other.add_connection(conn_a());
        other.initiate(p.now, "gw", None).unwrap();
        let t = other.poll_transmit().unwrap();
        p.b.handle(p.now, t.to, t.from, &t.bytes);
        answers += usize::from(p.b.poll_transmit().is_some());
    }
    assert_eq!(answers, 2);
    assert_eq!(p.b.ike_sas().len(), 2);
    // Half-open SAs time out silently.
    p.now += Duration::from_secs(31);
    p.b.handle_timeout(p.now);
    assert!(p.b.ike_sas().is_empty());
    assert!(p.b.poll_event().is_none());
}

#[test]
fn nat_detected_moves_to_4500_and_sends_keepalives() {
    let mut b = conn_b();
    b.remote_addrs = vec![];
    let mut p = Pair::new(conn_a(), b);
    p.nat_a = true;
    p.establish();
    let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
    assert!(sa.nat_local && !sa.nat_remote);
    assert!(sb.nat_remote && !sb.nat_local);
    assert_eq!((sa.local.port(), sa.remote.port()), (4500, 4500));
    assert_eq!(sb.remote.port(), 14500, "B answers the NAT's mapping");
    let auth = p.log.iter().find(|(_, t)| exchange_of(t).0 == ExchangeType::IkeAuth).unwrap();
    assert_eq!((auth.1.from.port(), auth.1.to.port()), (4500, 4500));
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!(ia[0].1.encap, Some(UdpEncap { local_port: 4500, remote_port: 4500 }));
    assert_eq!(ib[0].1.encap, Some(UdpEncap { local_port: 4500, remote_port: 14500 }));
    p.log.clear();
    p.run_for(Duration::from_secs(65));
    let keepalives = p.log.iter().filter(|(s, t)| *s == Side::A && t.bytes == [0xff]).count();
    assert_eq!(keepalives, 3);
    assert!(p.log.iter().all(|(s, _)| *s == Side::A), "B behind no NAT sends none");
}

#[test]
fn forced_encapsulation_fakes_nat_detection() {
    let mut a = conn_a();
    a.encap = true;
    let mut p = Pair::new(a, conn_b());
    p.establish();
    let sb = Pair::only_sa(&p.b);
    assert!(sb.nat_remote, "B believes A is behind a NAT");
    assert!(installs(&p.b_events)[0].1.encap.is_some());
    assert_eq!(Pair::only_sa(&p.a).local.port(), 4500);
}

#[test]
fn rekey_and_expiry_timers() {
    let (mut a, b) = (conn_a(), conn_b());
    a.children[0].rekey_time = Duration::from_secs(60);
    a.children[0].rand_time = Duration::from_secs(10);
    a.children[0].life_time = Duration::from_secs(120);
    a.rekey_time = Duration::from_secs(300);
    a.rand_time = Duration::ZERO;
    let mut p = Pair::new(a, b);
    p.establish();
    p.clear_events();
    p.run_for(Duration::from_secs(61));
    let rekeyed = p.a_events.iter().filter(|e| matches!(e, Event::RekeyedChildSa { .. })).count();
    assert_eq!(rekeyed, 1, "jittered rekey between 50 and 60 s");
    p.run_for(Duration::from_secs(300 - 61));
    assert!(p.a_events.iter().any(|e| matches!(e, Event::IkeSaRekeyed { .. })));
    let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
    assert_eq!((sa.spi_i, sa.spi_r), (sb.spi_i, sb.spi_r));
    assert_eq!(sa.children.len(), 1);
}

#[test]
fn invalid_ke_payload_round_in_create_child_sa_and_rekey() {
    let (mut a, mut b) = (conn_a(), conn_b());
    a.children[0].esp_proposals = parse_esp_proposals("aes256gcm16-x25519-ecp256").unwrap();
    b.children[0].esp_proposals = parse_esp_proposals("aes256gcm16-ecp256").unwrap();
    let mut p = Pair::new(a, b);
    let ike = p.establish();
    let first = Pair::only_sa(&p.a).children[0].id;
    p.a.delete_child(p.now, ike, first).unwrap();
    p.drive();
    p.clear_events();
    let before = p.log.len();
    p.a.create_child(p.now, ike, "net").unwrap();
    p.drive();
    let msgs: Vec<_> = p.log[before..].iter().map(|(s, t)| (*s, exchange_of(t))).collect();
    assert_eq!(msgs.len(), 4, "request, INVALID_KE_PAYLOAD, retry, answer: {msgs:?}");
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!((ia.len(), ib.len()), (1, 1), "{:?}", p.a_events);
    assert_ends_match(ia[0].1, ib[0].0);
    // The rekey goes the same way.
    let child = Pair::only_sa(&p.a).children[0].id;
    let before = p.log.len();
    p.a.rekey_child(p.now, ike, child).unwrap();
    p.drive();
    assert_eq!(p.log.len() - before, 6, "two CREATE_CHILD_SA rounds and the delete");
    assert_eq!(Pair::only_sa(&p.a).children.len(), 1);
    assert_eq!(Pair::only_sa(&p.a).children[0].spi_out, Pair::only_sa(&p.b).children[0].spi_in);
}

#[test]
fn initial_contact_after_a_reboot_replaces_the_stale_sa() {
    let mut p = Pair::new(conn_a(), conn_b());
    p.establish();
    let stale = Pair::only_sa(&p.b).id;
    // A reboots: all its state is gone, B still has the old IKE SA and CHILD_SA.
    p.a = Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(77)));
    p.a.add_connection(conn_a());
    p.clear_events();
    p.establish();
    let fresh = Pair::only_sa(&p.b);
    assert_ne!(fresh.id, stale);
    assert!(
        p.b_events.iter().any(|e| matches!(e, Event::IkeSaDown { ike, reason: DownReason::Replaced } if *ike == stale))
    );
    assert_eq!(p.b_events.iter().filter(|e| matches!(e, Event::DeleteChildSa { .. })).count(), 1);
    assert_eq!(fresh.children.len(), 1);
}

#[test]
fn start_initiates_children_with_start_action_start() {
    let mut a = conn_a();
    a.children[0].start_action = StartAction::Start;
    let mut p = Pair::new(a, conn_b());
    let started = p.a.start(p.now);
    assert_eq!(started.len(), 1);
    assert!(started[0].1.is_ok());
    p.drive();
    assert_eq!(installs(&p.a_events).len(), 1);
    // Nothing to start on B (start_action none).
    assert!(p.b.start(p.now).is_empty());
}

#[test]
fn child_rekey_crossing_an_ike_rekey_gets_temporary_failure_and_retries() {
    let mut p = Pair::new(conn_a(), conn_b());
    let ike_a = p.establish();
    let child = Pair::only_sa(&p.a).children[0].id;
    let ike_b = Pair::only_sa(&p.b).id;
    p.clear_events();
    p.a.rekey_child(p.now, ike_a, child).unwrap();
    p.b.rekey_ike(p.now, ike_b).unwrap();
    p.drive();
    let temp = p.log.iter().filter(|(_, t)| exchange_of(t) == (ExchangeType::CreateChildSa, true)).count();
    assert_eq!(temp, 2, "both requests answered");
    // Both refused each other; the retries come 30 s later and go through one after the other.
    p.run_for(Duration::from_secs(120));
    let (sa, sb) = (Pair::only_sa(&p.a), Pair::only_sa(&p.b));
    assert_eq!((sa.spi_i, sa.spi_r), (sb.spi_i, sb.spi_r));
    assert_eq!((sa.children.len(), sb.children.len()), (1, 1));
    assert_eq!(sa.children[0].spi_in, sb.children[0].spi_out);
    assert_ne!(sa.id, ike_a, "the IKE SA was rekeyed");
    assert!(p.a_events.iter().any(|e| matches!(e, Event::RekeyedChildSa { .. })), "and the child too");
}
