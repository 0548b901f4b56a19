//! Malformed and hostile input to a live endpoint: the RFC's answer or silence, never a panic,
//! never state.

mod common;

use common::*;
use proptest::prelude::*;
use rampart_ike::crypto::SeededRandom;
use rampart_ike::message::{ExchangeType, Message, NotifyType, Payload};
use rampart_ike::*;

/// A's first IKE_SA_INIT request, as bytes and addresses.
fn first_init(p: &mut Pair) -> Transmit {
    p.a.initiate(p.now, "gw", None).unwrap();
    p.collect();
    p.in_flight.remove(0).1
}

/// Delivers `bytes` to B as if from A; returns B's answer, if any.
fn to_b(p: &mut Pair, t: &Transmit, bytes: &[u8]) -> Option<Message> {
    p.b.handle(p.now, t.to, t.from, bytes);
    let answer = p.b.poll_transmit().map(|a| Message::parse(&a.bytes).expect("B's answers parse"));
    assert!(p.b.poll_transmit().is_none());
    answer
}

fn rewrite(t: &Transmit, f: impl FnOnce(&mut Vec<Payload>)) -> Vec<u8> {
    let m = Message::parse(&t.bytes).unwrap();
    let mut payloads = m.payloads;
    f(&mut payloads);
    Message::emit_plain(m.header, &payloads)
}

fn ke_of(payloads: &mut [Payload]) -> (&mut u16, &mut Vec<u8>) {
    payloads
        .iter_mut()
        .find_map(|p| if let Payload::Ke { group, data } = p { Some((group, data)) } else { None })
        .unwrap()
}

#[test]
fn structural_garbage_is_dropped_silently() {
    let mut p = Pair::new(conn_a(), conn_b());
    let t = first_init(&mut p);
    // Truncated anywhere.
    for cut in [0, 1, 27, 28, 40, t.bytes.len() - 1] {
        assert!(to_b(&mut p, &t, &t.bytes[..cut]).is_none(), "cut {cut}");
    }
    // Length field disagreeing with the datagram.
    let mut b = t.bytes.clone();
    b[27] ^= 0x10;
    assert!(to_b(&mut p, &t, &b).is_none());
    // A payload length of zero (a chain that would loop on itself).
    let mut b = t.bytes.clone();
    b[30] = 0;
    b[31] = 0;
    assert!(to_b(&mut p, &t, &b).is_none());
    // A payload length past the end.
    let mut b = t.bytes.clone();
    b[30] = 0xff;
    assert!(to_b(&mut p, &t, &b).is_none());
    // Major version 3: INVALID_MAJOR_VERSION, no state (tests/conformance.rs has the rest).
    let mut b = t.bytes.clone();
    b[17] = 0x30;
    let m = to_b(&mut p, &t, &b).expect("INVALID_MAJOR_VERSION");
    assert!(m.notify(NotifyType::INVALID_MAJOR_VERSION).is_some());
    assert!(p.b.ike_sas().is_empty());
    // After all that, the real request still works.
    assert!(to_b(&mut p, &t, &t.bytes).is_some_and(|m| m.header.spi_r != 0));
}

#[test]
fn key_exchange_checks() {
    let mut p = Pair::new(conn_a(), conn_b());
    let t = first_init(&mut p);
    let notify_of = |m: Option<Message>| {
        let m = m.expect("an answer");
        assert_eq!(m.header.spi_r, 0);
        m.payloads.iter().find_map(|p| if let Payload::Notify(n) = p { Some((n.kind, n.data.clone())) } else { None })
    };
    // Huge KE for group 19: the suite cannot be used (never INVALID_SYNTAX in the clear).
    let huge = rewrite(&t, |p| *ke_of(p).1 = vec![4; 5000]);
    assert_eq!(notify_of(to_b(&mut p, &t, &huge)), Some((NotifyType::NO_PROPOSAL_CHOSEN, vec![])));
    // A point not on the curve.
    let off = rewrite(&t, |p| ke_of(p).1[63] ^= 1);
    assert_eq!(notify_of(to_b(&mut p, &t, &off)), Some((NotifyType::NO_PROPOSAL_CHOSEN, vec![])));
    // A group B does not accept: the group B wants.
    let wrong = rewrite(&t, |p| {
        let (g, d) = ke_of(p);
        *g = 14;
        *d = vec![2; 256];
    });
    assert_eq!(notify_of(to_b(&mut p, &t, &wrong)), Some((NotifyType::INVALID_KE_PAYLOAD, vec![0, 19])));
    // No nonce at all: dropped (and counted), nothing to answer in the clear.
    let no_nonce = rewrite(&t, |p| p.retain(|x| !matches!(x, Payload::Nonce(_))));
    assert!(to_b(&mut p, &t, &no_nonce).is_none());
    assert_eq!(p.b.ignored().count(rampart_ike::diagnostic::Ignored::MalformedInit), 1);
    assert!(p.b.ike_sas().is_empty());
}

#[test]
fn unknown_critical_payload_gets_unsupported_critical_payload() {
    let mut p = Pair::new(conn_a(), conn_b());
    let t = first_init(&mut p);
    let crit = rewrite(&t, |p| p.push(Payload::Unknown { kind: 222, critical: true, body: vec![1, 2, 3] }));
    let m = to_b(&mut p, &t, &crit).unwrap();
    let n = m.notify(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD).unwrap();
    assert_eq!(n.data, vec![222]);
    // Not critical: skipped, the exchange goes on.
    let quiet = rewrite(&t, |p| p.push(Payload::Unknown { kind: 222, critical: false, body: vec![1, 2, 3] }));
    let m = to_b(&mut p, &t, &quiet).unwrap();
    assert!(m.payloads.iter().any(|x| matches!(x, Payload::Sa(_))));
}

#[test]
fn retransmitted_init_gets_the_same_answer_and_no_new_state() {
    let mut p = Pair::new(conn_a(), conn_b());
    let t = first_init(&mut p);
    let first = to_b(&mut p, &t, &t.bytes).unwrap();
    let again = to_b(&mut p, &t, &t.bytes).unwrap();
    assert_eq!(first, again);
    assert_eq!(p.b.ike_sas().len(), 1);
}

#[test]
fn unknown_spi_and_out_of_window_ids_are_silent() {
    let mut p = Pair::new(conn_a(), conn_b());
    let ike = p.establish();
    p.a.dpd(p.now, ike).unwrap();
    p.drive();
    p.a.dpd(p.now, ike).unwrap();
    p.drive();
    let reqs: Vec<Transmit> = p
        .log
        .iter()
        .filter(|(s, t)| {
            *s == Side::A && Message::parse(&t.bytes).unwrap().header.exchange == ExchangeType::Informational
        })
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(reqs.len(), 2);
    // The latest request again: the cached answer, byte for byte.
    let answers: Vec<Transmit> = p.log.iter().filter(|(s, _)| *s == Side::B).map(|(_, t)| t.clone()).collect();
    p.b.handle(p.now, reqs[1].to, reqs[1].from, &reqs[1].bytes);
    assert_eq!(p.b.poll_transmit().unwrap().bytes, answers.last().unwrap().bytes);
    // An older one (message ID below the window): nothing.
    p.b.handle(p.now, reqs[0].to, reqs[0].from, &reqs[0].bytes);
    assert!(p.b.poll_transmit().is_none());
    // A message ID ahead of the window: the header is authenticated, and the ID is not the
    // expected one; either way, nothing.
    let mut ahead = reqs[1].bytes.clone();
    ahead[23] = ahead[23].wrapping_add(5);
    p.b.handle(p.now, reqs[1].to, reqs[1].from, &ahead);
    assert!(p.b.poll_transmit().is_none());
    // Unknown SPIs.
    let mut unknown = reqs[1].bytes.clone();
    unknown[3] ^= 0x55;
    unknown[11] ^= 0x55;
    p.b.handle(p.now, reqs[1].to, reqs[1].from, &unknown);
    assert!(p.b.poll_transmit().is_none());
    // A tampered request (bad ICV): nothing, and the SA stays.
    let mut bad = reqs[1].bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    bad[23] = bad[23].wrapping_add(1);
    p.b.handle(p.now, reqs[1].to, reqs[1].from, &bad);
    assert!(p.b.poll_transmit().is_none());
    p.collect();
    assert!(p.b_events.iter().all(|e| !matches!(e, Event::IkeSaDown { .. })));
    // A response nobody asked for: ignored by A.
    let resp = answers.last().unwrap().clone();
    p.a.handle(p.now, resp.to, resp.from, &resp.bytes);
    assert!(p.a.poll_transmit().is_none() && p.a.poll_event().is_none());
}

#[test]
fn bogus_response_to_init_is_ignored_until_the_real_one() {
    let mut p = Pair::new(conn_a(), conn_b());
    let t = first_init(&mut p);
    let real = to_b(&mut p, &t, &t.bytes).unwrap();
    let real_bytes = {
        let mut h = real.header;
        h.length = 0;
        Message::emit_plain(h, &real.payloads)
    };
    // Garbage claiming to answer A's SPI: dropped, A still waits.
    let mut fake = real_bytes.clone();
    fake.truncate(40);
    p.a.handle(p.now, t.from, t.to, &fake);
    assert!(p.a.poll_event().is_none());
    // A response to a message ID A never sent.
    let mut wrong_id = real.header;
    wrong_id.message_id = 7;
    p.a.handle(p.now, t.from, t.to, &Message::emit_plain(wrong_id, &real.payloads));
    assert!(p.a.poll_transmit().is_none());
    // The real answer goes on to IKE_AUTH.
    p.a.handle(p.now, t.from, t.to, &real_bytes);
    let auth = p.a.poll_transmit().unwrap();
    assert_eq!(Message::parse(&auth.bytes).unwrap().header.exchange, ExchangeType::IkeAuth);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every message of a whole life (establish, rekeys, DPD, delete), mutated and delivered in
    /// place of the original: no panic, and each side either completes or drops the exchange.
    #[test]
    fn mutated_exchanges_never_panic(seed in 0u64..1000, which in 0usize..12, pos in 0usize..2000, val in any::<u8>(), cut in 0usize..64) {
        let mut p = Pair::new(conn_a(), conn_b());
        p.a = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(seed)));
        p.a.add_connection(conn_a());
        let mut n = 0usize;
        let mut mutate = |_: Side, t: &Transmit| -> Option<Vec<u8>> {
            n += 1;
            if n - 1 != which {
                return None;
            }
            let mut b = t.bytes.clone();
            let len = b.len();
            b[pos % len] = val;
            b.truncate(len.saturating_sub(cut % 8));
            Some(b)
        };
        let id = p.a.initiate(p.now, "gw", None).unwrap();
        for round in 0..40 {
            p.collect();
            if p.in_flight.is_empty() {
                match round % 3 {
                    0 => { let _ = p.a.rekey_ike(p.now, id); }
                    1 => {
                        if let Some(sa) = p.a.ike_sas().first() && let Some(c) = sa.children.first() {
                            let _ = p.a.rekey_child(p.now, sa.id, c.id);
                        }
                    }
                    _ => { p.now += std::time::Duration::from_secs(5); p.a.handle_timeout(p.now); p.b.handle_timeout(p.now); }
                }
                continue;
            }
            for (s, t) in std::mem::take(&mut p.in_flight) {
                match mutate(s, &t) {
                    Some(b) => {
                        let t2 = Transmit { from: t.from, to: t.to, bytes: b };
                        p.deliver(s, t2);
                    }
                    None => p.deliver(s, t),
                }
            }
        }
    }
}
