//! Certificate authentication between two endpoints on simulated time: every key type in both
//! roles, CERT/CERTREQ and SIGNATURE_HASH_ALGORITHMS on the wire, the responder's signature
//! work on a (simulated) worker pool, refusals with their causes (revoked with the serial,
//! expired, untrusted CA, wrong identity), and one `%any` template serving certificate and
//! per-identity PSK branches, picked by IDi.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rampart_ike::cert::Certificate;
use rampart_ike::config::{AuthMethod, SharedSecret};
use rampart_ike::diagnostic::{AuthFailure, Diagnostic};
use rampart_ike::message::{Identification, Message, NotifyType, Payload, payload_type};
use rampart_ike::sign::PrivateKey;
use rampart_ike::trust::{Crl, TrustStore};
use rampart_ike::*;

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/pki/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn cert(name: &str) -> Certificate {
    Certificate::from_pem_or_der(&file(&format!("{name}.pem"))).unwrap().remove(0)
}

fn trust() -> Arc<TrustStore> {
    Arc::new(TrustStore { cas: vec![cert("root")], crls: Crl::from_pem_or_der(&file("inter.crl.pem")).unwrap() })
}

/// `base` (from conn_a/conn_b) switched to certificates: ours `leaf` (with the intermediate),
/// the peer expected as `peer_id`.
fn with_cert(mut c: ConnectionConfig, leaf: &str, peer_id: Option<&str>) -> ConnectionConfig {
    let key = Arc::new(PrivateKey::from_pem_or_der(&file(&format!("{leaf}.key"))).unwrap());
    let me = cert(leaf);
    c.local = AuthConfig {
        auth: AuthMethod::Pubkey,
        id: Some(match me.dns_names.first() {
            Some(d) => Identification::fqdn(d),
            None => Identification::rfc822(&me.emails[0]),
        }),
        certs: vec![me, cert("inter")],
        key: Some(key),
        cacerts: vec![],
    };
    c.remote = AuthConfig::new(AuthMethod::Pubkey, peer_id.map(Identification::fqdn));
    c.psk = None;
    c.trust = trust();
    c
}

fn pair(a_leaf: &str, b_leaf: &str) -> Pair {
    let a = with_cert(conn_a(), a_leaf, Some(&cert(b_leaf).dns_names[0]));
    let b = with_cert(conn_b(), b_leaf, Some(&cert(a_leaf).dns_names[0]));
    let mut p = Pair::new(a, b);
    set_clocks(&mut p);
    p
}

fn set_clocks(p: &mut Pair) {
    let unix = cert("p256").not_before + 86_400;
    p.a.set_wall_clock(p.now, unix);
    p.b.set_wall_clock(p.now, unix);
}

fn up(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::IkeSaUp { .. }))
        && events.iter().any(|e| matches!(e, Event::InstallChildSa { .. }))
}

fn auth_failures(e: &mut Endpoint) -> Vec<AuthFailure> {
    std::iter::from_fn(|| e.poll_diagnostic())
        .filter_map(|d| match d {
            Diagnostic::AuthenticationFailed { cause, .. } => Some(cause),
            _ => None,
        })
        .collect()
}

/// The payloads of B's plaintext IKE_SA_INIT answer.
fn init_answer(p: &Pair) -> Vec<Payload> {
    let (_, t) = p.log.iter().find(|(s, _)| *s == Side::B).unwrap();
    Message::parse(&t.bytes).unwrap().payloads
}

#[test]
fn every_key_type_in_both_roles() {
    for a in ["p256", "p384", "rsa3072", "ed25519"] {
        for b in ["p256", "ed25519", "rsa3072"] {
            let mut p = pair(a, b);
            p.a.initiate(p.now, "gw", None).unwrap();
            p.drive();
            assert!(up(&p.a_events), "{a} -> {b}: {:?} {:?}", p.a_events, auth_failures(&mut p.a));
            assert!(up(&p.b_events), "{a} -> {b}: {:?}", auth_failures(&mut p.b));
            let sa = Pair::only_sa(&p.b);
            assert_eq!(sa.remote_id, Some(Identification::fqdn(&cert(a).dns_names[0])));
        }
    }
}

#[test]
fn init_carries_hash_algorithms_and_certreq() {
    let mut p = pair("p256", "p256");
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    let answer = init_answer(&p);
    let hashes = answer.iter().find_map(|x| match x {
        Payload::Notify(n) if n.kind == NotifyType::SIGNATURE_HASH_ALGORITHMS => Some(n.data.clone()),
        _ => None,
    });
    assert_eq!(hashes, Some(vec![0, 2, 0, 3, 0, 4, 0, 5]));
    let certreq = answer.iter().find_map(|x| match x {
        Payload::CertReq { encoding: 4, data } => Some(data.clone()),
        _ => None,
    });
    assert_eq!(certreq, Some(cert("root").key_hash().to_vec()), "CERTREQ names the trusted root");
    assert!(up(&p.b_events));
}

#[test]
fn certreq_for_the_intermediate_leaves_it_out() {
    // The responder trusts the intermediate itself: it asks for it, and the initiator sends its
    // own certificate only.
    let a = with_cert(conn_a(), "p256", Some("gw-p384.example.net"));
    let mut b = with_cert(conn_b(), "p384", Some("gw-p256.example.net"));
    b.trust = Arc::new(TrustStore { cas: vec![cert("inter")], crls: vec![] });
    let mut p = Pair::new(a, b);
    set_clocks(&mut p);
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    assert!(up(&p.b_events), "{:?}", auth_failures(&mut p.b));
}

/// Runs the jobs an offloading endpoint handed out, as a daemon's pool would.
fn run_jobs(p: &mut Pair) -> usize {
    let mut n = 0;
    for e in [&mut p.a, &mut p.b] {
        while let Some(j) = e.poll_dh_job() {
            e.dh_done(p.now, j.run());
        }
        while let Some(j) = e.poll_auth_job() {
            n += 1;
            e.auth_done(p.now, j.run());
        }
    }
    n
}

#[test]
fn the_responders_signature_work_is_offloaded() {
    let a = with_cert(conn_a(), "p256", Some("gw-ed25519.example.net"));
    let b = with_cert(conn_b(), "ed25519", Some("gw-p256.example.net"));
    let cfg = EndpointConfig { offload_dh: true, ..EndpointConfig::default() };
    let mut p = Pair::with_config(a, b, cfg.clone(), cfg);
    set_clocks(&mut p);
    p.a.initiate(p.now, "gw", None).unwrap();
    let mut auth_jobs = 0;
    for _ in 0..20 {
        p.drive();
        auth_jobs += run_jobs(&mut p);
    }
    assert_eq!(auth_jobs, 1, "one job for B's IKE_AUTH (A, the initiator, signs inline)");
    assert!(up(&p.a_events) && up(&p.b_events), "{:?}", auth_failures(&mut p.b));
}

#[test]
fn a_retransmitted_ike_auth_waits_for_its_job() {
    let a = with_cert(conn_a(), "p256", Some("gw-p384.example.net"));
    let b = with_cert(conn_b(), "p384", Some("gw-p256.example.net"));
    let cfg = EndpointConfig { offload_dh: true, ..EndpointConfig::default() };
    let mut p = Pair::with_config(a, b, EndpointConfig::default(), cfg);
    set_clocks(&mut p);
    p.a.initiate(p.now, "gw", None).unwrap();
    // IKE_SA_INIT both ways (B's DH on the "pool").
    p.collect();
    let init = p.in_flight.remove(0);
    p.deliver(init.0, init.1);
    run_jobs(&mut p);
    p.collect();
    let answer = p.in_flight.remove(0);
    p.deliver(answer.0, answer.1);
    p.collect();
    // The IKE_AUTH request (in IKE fragments: the chain does not fit 1280 bytes).
    let auth = std::mem::take(&mut p.in_flight);
    for (side, t) in auth.clone() {
        p.deliver(side, t);
    }
    let job = p.b.poll_auth_job().expect("B's IKE_AUTH went to the pool");
    // The request again: dropped, counted, not answered.
    for (side, t) in auth.clone() {
        p.deliver(side, t);
    }
    p.collect();
    assert!(p.in_flight.is_empty(), "nothing is answered before the job is done");
    assert_eq!(p.b.ignored().count(rampart_ike::diagnostic::Ignored::InProgress), auth.len() as u64);
    p.b.auth_done(p.now, job.run());
    p.drive();
    assert!(up(&p.a_events) && up(&p.b_events));
}

fn refused(a_leaf: &str, a_id: &str, b_trust: Arc<TrustStore>) -> Vec<AuthFailure> {
    let mut a = with_cert(conn_a(), a_leaf, Some("gw-p256.example.net"));
    a.local.id = Some(Identification::fqdn(a_id));
    if a_leaf == "stranger" {
        a.local.certs = vec![cert("stranger")];
    }
    let mut b = with_cert(conn_b(), "p256", None);
    b.trust = b_trust;
    let mut p = Pair::new(a, b);
    set_clocks(&mut p);
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    assert!(!up(&p.b_events));
    assert!(
        p.a_events.iter().any(|e| matches!(e, Event::IkeSaDown { reason: DownReason::AuthenticationFailed, .. })),
        "{:?}",
        p.a_events
    );
    auth_failures(&mut p.b)
}

#[test]
fn revoked_expired_untrusted_and_wrong_id_are_refused_with_their_cause() {
    let f = refused("revoked", "gw-revoked.example.net", trust());
    assert!(
        matches!(&f[..], [AuthFailure::Rejected(c)] if c.contains("serial 0b:ad:c0:de") && c.contains("revoked")),
        "{f:?}"
    );
    let f = refused("expired", "gw-expired.example.net", trust());
    assert!(matches!(&f[..], [AuthFailure::Rejected(c)] if c.contains("expired")), "{f:?}");
    let f = refused("stranger", "gw-stranger.example.net", trust());
    assert!(matches!(&f[..], [AuthFailure::Rejected(c)] if c.contains("no trusted CA")), "{f:?}");
    // A certificate that does not carry the identity it claims.
    let f = refused("p384", "gw-p256.example.net", trust());
    assert!(matches!(&f[..], [AuthFailure::Rejected(c)] if c.contains("is not in the certificate")), "{f:?}");
    // The responder trusts only another CA.
    let f = refused("p384", "gw-p384.example.net", Arc::new(TrustStore { cas: vec![cert("other")], crls: vec![] }));
    assert!(matches!(&f[..], [AuthFailure::Rejected(c)] if c.contains("no trusted CA")), "{f:?}");
}

#[test]
fn the_initiator_refuses_a_responder_with_the_wrong_identity() {
    let a = with_cert(conn_a(), "p256", Some("gw-p384.example.net"));
    // B presents the RSA certificate: A expects gw-p384.
    let b = with_cert(conn_b(), "rsa3072", Some("gw-p256.example.net"));
    let mut p = Pair::new(a, b);
    set_clocks(&mut p);
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    assert!(!up(&p.a_events));
    let f = auth_failures(&mut p.a);
    assert!(
        matches!(&f[..], [AuthFailure::NoConnectionForId { expected }] if expected == "gw-p384.example.net"),
        "{f:?}"
    );
}

/// B: one `%any` template for certificate branches (`*.example.net`) and one for PSK
/// branches, their keys by identity in the secrets.
fn hub() -> Vec<ConnectionConfig> {
    let mut certs = with_cert(conn_b(), "p256", Some("*.example.net"));
    certs.name = "branches-cert".into();
    certs.remote_addrs = vec![];
    let mut psks = conn_b();
    psks.name = "branches-psk".into();
    psks.remote_addrs = vec![];
    psks.remote.id = None;
    psks.psk = None;
    psks.children[0].remote_ts = vec![ts("198.18.0.0/16")];
    psks.secrets = Arc::new(rampart_ike::config::Secrets::new(
        (0..3)
            .map(|i| SharedSecret {
                ids: vec![Identification::fqdn(&format!("branch{i}.psk.test"))],
                psk: Psk::new(format!("branch-{i}-secret-0123456789").as_bytes()),
            })
            .collect(),
    ));
    vec![certs, psks]
}

fn branch_psk(i: usize, secret: &str) -> ConnectionConfig {
    let mut a = conn_a();
    a.local.id = Some(Identification::fqdn(&format!("branch{i}.psk.test")));
    a.remote.id = None;
    a.psk = Some(Psk::new(secret.as_bytes()));
    a.children[0].local_ts = vec![ts(&format!("198.18.{}.0/24", 10 + i))];
    a
}

#[test]
fn one_template_serves_certificate_and_psk_branches_by_identity() {
    let run = |a: ConnectionConfig| {
        let conns = hub();
        let mut p = Pair::new(a, conns[0].clone());
        p.b.add_connection(conns[1].clone());
        set_clocks(&mut p);
        p.a.initiate(p.now, "gw", None).unwrap();
        p.drive();
        let f = auth_failures(&mut p.b);
        (p, f)
    };
    for i in 0..3 {
        let (p, f) = run(branch_psk(i, &format!("branch-{i}-secret-0123456789")));
        assert!(up(&p.b_events), "branch {i}: {f:?}");
        let sa = Pair::only_sa(&p.b);
        assert_eq!(sa.connection, "branches-psk");
        // The branch's selectors narrowed within the template's.
        assert_eq!(sa.children[0].remote_ts, vec![ts(&format!("198.18.{}.0/24", 10 + i))]);
    }
    // Another branch's key: refused.
    let (p, f) = run(branch_psk(1, "branch-2-secret-0123456789"));
    assert!(!up(&p.b_events));
    assert_eq!(f, vec![AuthFailure::NotVerified]);
    // An identity without a key.
    let (p, f) = run(branch_psk(7, "branch-7-secret-0123456789"));
    assert!(!up(&p.b_events));
    assert_eq!(f, vec![AuthFailure::NoKeyForId]);
    // A certificate branch lands on the certificate template.
    let (p, f) = run(with_cert(conn_a(), "p384", None));
    assert!(up(&p.b_events), "{f:?}");
    assert_eq!(Pair::only_sa(&p.b).connection, "branches-cert");
    // A certificate whose name the wildcard does not cover.
    let (p, f) = run(with_cert(conn_a(), "email", None));
    assert!(!up(&p.b_events));
    assert!(!f.is_empty());
}

#[test]
fn unique_replace_drops_the_old_ike_sa_of_an_identity() {
    let conns = hub();
    let mut b = conns[1].clone();
    b.unique = config::Unique::Replace;
    let mut a = branch_psk(0, "branch-0-secret-0123456789");
    let mut p = Pair::new(a.clone(), b);
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    assert_eq!(p.b.ike_sas().len(), 1);
    // The branch comes back as a new endpoint (no INITIAL_CONTACT suppression: it says it,
    // but unique = replace would replace it anyway).
    a.name = "gw".into();
    let mut a2 = Endpoint::new(EndpointConfig::default(), Box::new(rampart_ike::crypto::SeededRandom::new(9)));
    a2.add_connection(a);
    std::mem::swap(&mut p.a, &mut a2);
    p.run_for(Duration::from_secs(1));
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    let sas = p.b.ike_sas();
    assert_eq!(sas.len(), 1, "the old IKE SA is replaced: {sas:?}");
}

#[test]
fn certs_are_carried_in_cert_payloads() {
    let mut p = pair("rsa3072", "p256");
    p.a.initiate(p.now, "gw", None).unwrap();
    p.drive();
    assert!(up(&p.b_events));
    // The IKE_AUTH request is encrypted (in IKE fragments, past 1280 bytes): its size says the
    // two certificates are inside.
    let auth: Vec<_> = p
        .log
        .iter()
        .filter(|(s, t)| *s == Side::A && Message::parse(&t.bytes).is_ok_and(|m| m.header.message_id == 1))
        .collect();
    let size: usize = auth.iter().map(|(_, t)| t.bytes.len()).sum();
    assert!(size > cert("rsa3072").der().len() + cert("inter").der().len());
    let first = Message::parse(&auth[0].1.bytes).unwrap().encrypted.unwrap();
    assert_eq!(first.first_inner, payload_type::IDI);
    assert_eq!(first.fragment.map(|f| (f.number, f.total as usize)), Some((1, auth.len())));
}
