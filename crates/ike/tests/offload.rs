//! The endpoint's hooks for a daemon: Diffie-Hellman offloaded as jobs (run in any order, late,
//! or with retransmissions in between), key shares from an outside source, `dpd_timeout`,
//! ESP activity deferring liveness checks, and INITIAL_CONTACT among many peers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rampart_ike::crypto::{DhGroup, KeyShare, RandomSource, SeededRandom};
use rampart_ike::message::{ExchangeType, Identification, Message};
use rampart_ike::offload::{DhJob, DhOwner, KeyShareSource};
use rampart_ike::state::IkeState;
use rampart_ike::*;

fn offloading() -> EndpointConfig {
    EndpointConfig { offload_dh: true, ..EndpointConfig::default() }
}

/// Runs every queued DH job of both endpoints, newest first, and hands the results back.
fn run_jobs(p: &mut Pair) -> usize {
    let mut n = 0;
    for ep in [&mut p.a, &mut p.b] {
        let jobs: Vec<DhJob> = std::iter::from_fn(|| ep.poll_dh_job()).collect();
        for j in jobs.into_iter().rev() {
            ep.dh_done(p.now, j.run());
            n += 1;
        }
    }
    n
}

/// Delivers datagrams and runs DH jobs until nothing moves.
fn drive(p: &mut Pair) {
    for _ in 0..1000 {
        let jobs = run_jobs(p);
        p.collect();
        if p.in_flight.is_empty() && jobs == 0 {
            return;
        }
        for (side, t) in std::mem::take(&mut p.in_flight) {
            p.deliver(side, t);
        }
    }
    panic!("never went quiet");
}

fn kinds(p: &Pair) -> Vec<(Side, ExchangeType, bool)> {
    p.log
        .iter()
        .map(|(s, t)| {
            let m = Message::parse(&t.bytes).expect("parse");
            (*s, m.header.exchange, m.header.is_response())
        })
        .collect()
}

#[test]
fn offloaded_dh_on_both_sides_gives_the_same_sas_as_inline() {
    let mut p = Pair::with_config(conn_a(), conn_b(), offloading(), offloading());
    p.a.initiate(p.now, "gw", None).expect("initiate");
    // Nothing leaves B until its job is done; nothing leaves A for IKE_AUTH until its is.
    p.collect();
    let (side, t) = p.in_flight.remove(0);
    p.deliver(side, t);
    p.collect();
    assert!(p.in_flight.is_empty(), "B answered before its DH job ran");
    assert!(matches!(
        p.b.poll_dh_job().map(|j| (j.owner(), j.group())),
        Some((DhOwner::Responder(_), DhGroup::Ecp256))
    ));
    // That job is gone now (taken and dropped): start over with a fresh pair.
    // An initiator aborted while its computation runs ignores the result.
    let mut q = Pair::with_config(conn_a(), conn_b(), offloading(), EndpointConfig::default());
    let id = q.a.initiate(q.now, "gw", None).expect("initiate");
    q.collect();
    let (side, t) = q.in_flight.remove(0);
    q.deliver(side, t);
    q.collect();
    let (side, t) = q.in_flight.remove(0);
    q.deliver(side, t);
    let job = q.a.poll_dh_job().expect("initiator job");
    assert_eq!(job.owner(), DhOwner::Initiator(id));
    q.a.abort_ike(q.now, id).expect("abort");
    q.a.dh_done(q.now, job.run());
    q.collect();
    assert!(q.in_flight.is_empty() && q.a.ike_sas().is_empty());
    let mut p = Pair::with_config(conn_a(), conn_b(), offloading(), offloading());
    p.a.initiate(p.now, "gw", None).expect("initiate");
    drive(&mut p);
    assert_eq!(
        kinds(&p),
        vec![
            (Side::A, ExchangeType::IkeSaInit, false),
            (Side::B, ExchangeType::IkeSaInit, true),
            (Side::A, ExchangeType::IkeAuth, false),
            (Side::B, ExchangeType::IkeAuth, true),
        ]
    );
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    assert_ends_match(ia[0].1, ib[0].0);
    assert_ends_match(ib[0].1, ia[0].0);
    assert_eq!(Pair::only_sa(&p.a).state, IkeState::Established);
    assert_eq!(Pair::only_sa(&p.b).state, IkeState::Established);
    assert_eq!(p.b.counts(), (1, 0), "no half-open SA left");
    // The same keys as the inline path with the same random streams.
    let mut q = Pair::new(conn_a(), conn_b());
    q.establish();
    let iq = installs(&q.a_events);
    assert_eq!(&iq[0].1.encryption_key[..], &ia[0].1.encryption_key[..]);
    assert_eq!(&iq[0].0.encryption_key[..], &ia[0].0.encryption_key[..]);
}

#[test]
fn retransmitted_init_while_the_job_runs_is_dropped_then_answered_from_cache() {
    let mut p = Pair::with_config(conn_a(), conn_b(), EndpointConfig::default(), offloading());
    p.a.initiate(p.now, "gw", None).expect("initiate");
    p.collect();
    let (_, init) = p.in_flight.remove(0);
    p.deliver(Side::A, init.clone());
    p.deliver(Side::A, init.clone());
    p.collect();
    assert!(p.in_flight.is_empty(), "no answer while the computation is pending");
    assert_eq!(p.b.counts(), (0, 1), "one pending request, counted as half-open");
    assert!(p.b.poll_dh_job().is_some() && p.b.poll_dh_job().is_none(), "one job for two copies");
    // Now the real thing: fresh pair, job done, then a retransmission gets the cached answer.
    let mut p = Pair::with_config(conn_a(), conn_b(), EndpointConfig::default(), offloading());
    p.a.initiate(p.now, "gw", None).expect("initiate");
    p.collect();
    let (_, init) = p.in_flight.remove(0);
    p.deliver(Side::A, init.clone());
    run_jobs(&mut p);
    p.collect();
    let first = p.in_flight.remove(0).1;
    p.deliver(Side::A, init);
    p.collect();
    assert_eq!(p.in_flight.len(), 1);
    assert_eq!(p.in_flight[0].1.bytes, first.bytes, "the same answer again");
    assert_eq!(p.b.counts(), (1, 1));
}

#[test]
fn pending_computations_count_towards_the_cookie_threshold() {
    let cb = EndpointConfig { offload_dh: true, cookie_threshold: 2, ..EndpointConfig::default() };
    let mut b = conn_b();
    b.remote_addrs.clear();
    let mut eb = Endpoint::new(cb, Box::new(SeededRandom::new(9)));
    eb.add_connection(b);
    let now = Instant::now();
    let mut cookies = 0;
    for i in 0..4u64 {
        let mut a = conn_a();
        a.local_addrs = vec![ip(&format!("192.0.2.{}", 10 + i))];
        let mut ea = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(100 + i)));
        ea.add_connection(a);
        ea.initiate(now, "gw", None).expect("initiate");
        let t = ea.poll_transmit().expect("init");
        eb.handle(now, t.to, t.from, &t.bytes);
        if let Some(answer) = eb.poll_transmit() {
            let m = Message::parse(&answer.bytes).expect("parse");
            assert!(m.payloads.iter().any(|p| matches!(p, rampart_ike::message::Payload::Notify(n)
                if n.kind == rampart_ike::message::NotifyType::COOKIE)));
            cookies += 1;
        }
    }
    assert_eq!(cookies, 2, "the third and fourth request need a cookie");
    assert_eq!(eb.counts(), (0, 2));
}

/// Counts the key shares it hands out.
struct CountingShares(Arc<AtomicUsize>);

impl KeyShareSource for CountingShares {
    fn take(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare {
        self.0.fetch_add(1, Ordering::Relaxed);
        KeyShare::generate(group, rng)
    }
}

#[test]
fn key_shares_come_from_the_configured_source() {
    let mut b = conn_b();
    b.children[0].esp_proposals = rampart_ike::proposal::parse_esp_proposals("aes256gcm16-ecp256").unwrap();
    let mut a = conn_a();
    a.children[0].esp_proposals = rampart_ike::proposal::parse_esp_proposals("aes256gcm16-ecp256").unwrap();
    let mut p = Pair::new(a, b);
    let (na, nb) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    p.a.set_key_share_source(Box::new(CountingShares(na.clone())));
    p.b.set_key_share_source(Box::new(CountingShares(nb.clone())));
    let id = p.establish();
    assert_eq!((na.load(Ordering::Relaxed), nb.load(Ordering::Relaxed)), (1, 1));
    let child = Pair::only_sa(&p.a).children[0].id;
    p.a.rekey_child(p.now, id, child).expect("rekey");
    p.drive();
    assert_eq!((na.load(Ordering::Relaxed), nb.load(Ordering::Relaxed)), (2, 2), "PFS rekey: one share each");
    p.a.rekey_ike(p.now, id).expect("rekey ike");
    p.drive();
    assert_eq!((na.load(Ordering::Relaxed), nb.load(Ordering::Relaxed)), (3, 3));
}

#[test]
fn dpd_timeout_caps_the_retransmission_schedule() {
    let mut a = conn_a();
    a.dpd_delay = Duration::from_secs(5);
    a.dpd_timeout = Duration::from_secs(12);
    let mut p = Pair::new(a, conn_b());
    p.establish();
    p.clear_events();
    let t0 = p.now;
    let mut down_at = None;
    for _ in 0..100 {
        p.run_for_with(Duration::from_secs(1), |_, _| false);
        if p.a_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::PeerDead, .. })) {
            down_at = Some(p.now - t0);
            break;
        }
    }
    // DPD at 5 s, dead 12 s later (without the cap: 5 + 165 s).
    assert_eq!(down_at, Some(Duration::from_secs(17)));
    assert!(p.a_events.iter().any(|e| matches!(e, Event::DeleteChildSa { .. })));
}

#[test]
fn esp_activity_defers_liveness_checks() {
    let mut a = conn_a();
    a.dpd_delay = Duration::from_secs(30);
    let mut p = Pair::new(a, conn_b());
    let id = p.establish();
    p.clear_events();
    let informational = |p: &Pair| {
        p.log
            .iter()
            .filter(|(s, t)| {
                *s == Side::A && Message::parse(&t.bytes).unwrap().header.exchange == ExchangeType::Informational
            })
            .count()
    };
    // ESP seen every 10 s for 100 s: no liveness check at all.
    for _ in 0..10 {
        p.run_for(Duration::from_secs(10));
        let now = p.now;
        p.a.note_activity(now, id, now);
    }
    assert_eq!(informational(&p), 0);
    // Then silence: the check comes 30 s after the last activity.
    p.run_for(Duration::from_secs(29));
    assert_eq!(informational(&p), 0);
    p.run_for(Duration::from_secs(2));
    assert_eq!(informational(&p), 1);
}

#[test]
fn initial_contact_replaces_only_the_same_peer_among_many() {
    let mut b = conn_b();
    b.remote_addrs.clear();
    b.remote.id = None;
    let mut eb = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(5)));
    eb.add_connection(b);
    let now = Instant::now();
    let run = |eb: &mut Endpoint, i: u64, seed: u64| {
        let mut a = conn_a();
        a.local_addrs = vec![ip(&format!("192.0.2.{}", 10 + i))];
        a.local.id = Some(Identification::fqdn(&format!("branch{i}.test")));
        let mut ea = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(seed)));
        ea.add_connection(a);
        ea.initiate(now, "gw", None).expect("initiate");
        for _ in 0..10 {
            while let Some(t) = ea.poll_transmit() {
                eb.handle(now, t.to, t.from, &t.bytes);
            }
            while let Some(t) = eb.poll_transmit() {
                ea.handle(now, t.to, t.from, &t.bytes);
            }
        }
        assert_eq!(Pair::only_sa(&ea).state, IkeState::Established);
    };
    for i in 0..5 {
        run(&mut eb, i, 1000 + i);
    }
    assert_eq!(eb.ike_sas().len(), 5);
    while eb.poll_event().is_some() {}
    // Branch 3 reboots and comes back: its old IKE SA goes, the four others stay.
    run(&mut eb, 3, 2000);
    let downs: Vec<_> = std::iter::from_fn(|| eb.poll_event())
        .filter_map(|e| match e {
            Event::IkeSaDown { ike, reason } => Some((ike, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0].1, DownReason::Replaced);
    assert_eq!(eb.ike_sas().len(), 5);
    assert!(eb.ike_sas().iter().all(|s| s.state == IkeState::Established));
}

#[test]
fn timers_of_many_ike_sas_fire_in_order() {
    // Twenty tunnels with CHILD_SA rekey times of 100..2000 s: each rekeys on time, once per
    // period, whatever the number of IKE SAs around it.
    let mut b = conn_b();
    b.remote_addrs.clear();
    b.remote.id = None;
    let mut eb = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(5)));
    eb.add_connection(b);
    let start = Instant::now();
    let mut initiators = Vec::new();
    for i in 0..20u64 {
        let mut a = conn_a();
        a.local_addrs = vec![ip(&format!("192.0.2.{}", 10 + i))];
        a.local.id = Some(Identification::fqdn(&format!("branch{i}.test")));
        a.rekey_time = Duration::ZERO;
        a.children[0].rekey_time = Duration::from_secs(100 * (i + 1));
        a.children[0].life_time = Duration::from_secs(100 * (i + 1) + 50);
        a.children[0].rand_time = Duration::ZERO;
        let mut ea = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(300 + i)));
        ea.add_connection(a);
        ea.initiate(start, "gw", None).expect("initiate");
        initiators.push(ea);
    }
    let mut now = start;
    let mut rekeys = vec![0u32; 20];
    let end = start + Duration::from_secs(2050);
    loop {
        for _ in 0..20 {
            let mut moved = false;
            for ea in initiators.iter_mut() {
                while let Some(t) = ea.poll_transmit() {
                    eb.handle(now, t.to, t.from, &t.bytes);
                    moved = true;
                }
            }
            while let Some(t) = eb.poll_transmit() {
                let i = usize::from(match t.to.ip() {
                    std::net::IpAddr::V4(a) => a.octets()[3],
                    _ => unreachable!(),
                }) - 10;
                initiators[i].handle(now, t.to, t.from, &t.bytes);
                moved = true;
            }
            if !moved {
                break;
            }
        }
        for (i, ea) in initiators.iter_mut().enumerate() {
            while let Some(e) = ea.poll_event() {
                if matches!(e, Event::RekeyedChildSa { .. }) {
                    rekeys[i] += 1;
                }
            }
        }
        while eb.poll_event().is_some() {}
        let next = initiators.iter().filter_map(Endpoint::poll_timeout).chain(eb.poll_timeout()).min();
        match next {
            Some(t) if t <= end => {
                now = t.max(now);
                for ea in initiators.iter_mut() {
                    ea.handle_timeout(now);
                }
                eb.handle_timeout(now);
            }
            _ => break,
        }
    }
    let expected: Vec<u32> = (0..20u32).map(|i| 2050 / (100 * (i + 1))).collect();
    assert_eq!(rekeys, expected);
    assert_eq!(eb.ike_sas().len(), 20);
}

#[test]
fn a_second_ike_sa_to_the_same_peer_does_not_claim_initial_contact() {
    // Two connections of A to B with the same identities: the second IKE_AUTH must not say
    // INITIAL_CONTACT, or B would drop the first IKE SA.
    let mut a2 = conn_a();
    a2.name = "gw2".into();
    a2.children[0].name = "net2".into();
    let mut p = Pair::new(conn_a(), conn_b());
    p.a.add_connection(a2);
    p.establish();
    p.a.initiate(p.now, "gw2", None).expect("initiate gw2");
    p.drive();
    let auths: Vec<bool> = p
        .log
        .iter()
        .filter(|(s, _)| *s == Side::A)
        .filter_map(|(_, t)| Message::parse(&t.bytes).ok())
        .filter(|m| m.header.exchange == ExchangeType::IkeAuth)
        .map(|m| m.encrypted.is_some())
        .collect();
    assert_eq!(auths.len(), 2);
    assert_eq!(p.a.ike_sas().len(), 2);
    assert_eq!(p.b.ike_sas().len(), 2, "B kept both IKE SAs");
    assert!(!p.b_events.iter().any(|e| matches!(e, Event::IkeSaDown { .. })));
    // After A loses everything, its first IKE SA claims INITIAL_CONTACT again.
    p.a = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(99)));
    p.a.add_connection(conn_a());
    p.clear_events();
    p.establish();
    assert_eq!(
        p.b_events.iter().filter(|e| matches!(e, Event::IkeSaDown { reason: DownReason::Replaced, .. })).count(),
        2
    );
}

#[test]
fn the_old_child_of_a_rekey_goes_after_the_delete_delay() {
    let ca = EndpointConfig { rekey_delete_delay: Duration::from_millis(800), ..EndpointConfig::default() };
    let mut p = Pair::with_config(conn_a(), conn_b(), ca, EndpointConfig::default());
    let id = p.establish();
    let old = Pair::only_sa(&p.a).children[0].id;
    p.clear_events();
    p.a.rekey_child(p.now, id, old).expect("rekey");
    p.drive();
    // Rekeyed and switched at once, the old child still there on both sides.
    assert!(p.a_events.iter().any(|e| matches!(e, Event::RekeyedChildSa { outbound: Some(_), .. })));
    assert!(!p.a_events.iter().any(|e| matches!(e, Event::DeleteChildSa { .. })));
    assert_eq!(Pair::only_sa(&p.a).children.len(), 2);
    assert_eq!(Pair::only_sa(&p.b).children.len(), 2);
    p.run_for(Duration::from_millis(700));
    assert_eq!(Pair::only_sa(&p.b).children.len(), 2, "not yet");
    p.run_for(Duration::from_millis(200));
    assert!(p.a_events.iter().any(|e| matches!(e, Event::DeleteChildSa { child, .. } if *child == old)));
    assert!(p.b_events.iter().any(|e| matches!(e, Event::SwitchOutbound { .. })));
    assert_eq!(Pair::only_sa(&p.a).children.len(), 1);
    assert_eq!(Pair::only_sa(&p.b).children.len(), 1);
}

/// A supply that never has a share ready (a pool under sustained load).
struct NeverReady(Arc<AtomicUsize>);

impl KeyShareSource for NeverReady {
    fn take(&mut self, group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare {
        KeyShare::generate(group, rng)
    }

    fn take_ready(&mut self, _group: DhGroup, _rng: &mut dyn RandomSource) -> Option<KeyShare> {
        self.0.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[test]
fn a_responder_share_that_is_not_ready_is_made_by_the_job() {
    let mut p = Pair::with_config(conn_a(), conn_b(), EndpointConfig::default(), offloading());
    let asked = Arc::new(AtomicUsize::new(0));
    p.b.set_key_share_source(Box::new(NeverReady(asked.clone())));
    p.a.initiate(p.now, "gw", None).expect("initiate");
    drive(&mut p);
    assert_eq!(asked.load(Ordering::Relaxed), 1, "the responder asked for a ready share once");
    let (ia, ib) = (installs(&p.a_events), installs(&p.b_events));
    assert_eq!((ia.len(), ib.len()), (1, 1));
    assert_ends_match(ia[0].1, ib[0].0);
    assert_ends_match(ib[0].1, ia[0].0);
}
