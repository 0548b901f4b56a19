//! A peer that moves to UDP 4500 with no NAT between it and `rampart ike` (RFC 7296 section
//! 2.23 allows it): on real sockets in network namespaces, as root, the daemon's IKE_AUTH
//! answer, its answer to the peer's INFORMATIONAL, and its own liveness check all go from its
//! port 4500 to the peer's port 4500 (section 2.11: where the latest request came from).
//!
//! The peer is this test binary run again inside the peer's namespace (`ip netns exec`), with
//! `RAMPART_FLOAT_PEER` set: a scripted IKEv2 initiator built from the core's public pieces
//! (`crates/ike/tests/common/scripted.rs`) on two UDP sockets, reporting on which socket and
//! from which address each of the daemon's messages arrived.

mod ike_support;

#[path = "../../ike/tests/common/scripted.rs"]
mod scripted;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ike_support::*;
use rampart_ike::crypto::DhGroup;
use rampart_ike::message::{ExchangeType, Payload};
use rampart_sa::TrafficSelector;

const PEER_ENV: &str = "RAMPART_FLOAT_PEER";

fn prefix(s: &str) -> TrafficSelector {
    let (a, l) = s.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap())
}

/// Receives one IKE message on either socket: (the local port it came to, its source, the
/// message with the non-ESP marker of port 4500 removed).
fn recv(s500: &UdpSocket, s4500: &UdpSocket, wait: Duration) -> Option<(u16, SocketAddr, Vec<u8>)> {
    let end = Instant::now() + wait;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        for (port, s) in [(500u16, s500), (4500, s4500)] {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let d = &buf[..n];
                let msg = if port == 4500 {
                    match d.strip_prefix(&[0, 0, 0, 0][..]) {
                        Some(m) => m.to_vec(),
                        None => continue, // a keepalive
                    }
                } else {
                    d.to_vec()
                };
                return Some((port, from, msg));
            }
        }
    }
    None
}

/// The peer's side (inside its namespace): prints one line per observation.
fn run_peer() {
    let s500 = UdpSocket::bind((WAN_A, 500)).unwrap();
    let s4500 = UdpSocket::bind((WAN_A, 4500)).unwrap();
    for s in [&s500, &s4500] {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    let (b500, b4500) = (format!("{WAN_B}:500"), format!("{WAN_B}:4500"));
    let send4500 = |m: &[u8]| {
        let mut d = vec![0u8; 4];
        d.extend_from_slice(m);
        s4500.send_to(&d, &b4500).unwrap();
    };
    let mut peer = scripted::ScriptedPeer::new(4, DhGroup::Ecp256);
    s500.send_to(&peer.init(None), &b500).unwrap();
    let (port, from, answer) = recv(&s500, &s4500, Duration::from_secs(5)).expect("IKE_SA_INIT answer");
    println!("init_answer {port} {from}");
    peer.init_done(&answer);
    // Moving to 4500 without a NAT.
    send4500(&peer.auth(ID_A, PSK.as_bytes(), prefix(LAN_A), prefix(LAN_B)));
    let (port, from, answer) = recv(&s500, &s4500, Duration::from_secs(5)).expect("IKE_AUTH answer");
    let (_, payloads) = peer.open(&answer);
    let authenticated = payloads.iter().any(|p| matches!(p, Payload::Auth { .. }));
    println!("auth_answer {port} {from} {authenticated}");
    send4500(&peer.request(ExchangeType::Informational, &[]));
    let (port, from, _) = recv(&s500, &s4500, Duration::from_secs(5)).expect("INFORMATIONAL answer");
    println!("informational_answer {port} {from}");
    // The daemon's liveness check (dpd_delay = 2s): answered, so that the IKE SA stays.
    let (port, from, request) = recv(&s500, &s4500, secs(8)).expect("the daemon's DPD");
    let (m, _) = peer.open(&request);
    println!("dpd_request {port} {from}");
    send4500(&peer.answer(ExchangeType::Informational, m.header.message_id, &[]));
    println!("done");
}

#[test]
fn float_peer() {
    // The peer's half, when run inside its namespace by the test below; nothing otherwise.
    if std::env::var_os(PEER_ENV).is_some() {
        run_peer();
    }
}

#[test]
fn a_peer_on_4500_without_nat_is_answered_and_asked_on_4500() {
    if !can_run("a_peer_on_4500_without_nat_is_answered_and_asked_on_4500", false) {
        return;
    }
    let topo = Topo::new("fl");
    let conn = Rampart::gw_connection(Side::B, "dpd_delay = \"2s\"", "").replace(
        "proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"",
        "proposals = \"aes256gcm16-prfsha256-ecp256\"",
    );
    let r = Rampart::start(&topo, Side::B, &(Rampart::daemon_section(&topo, Side::B, "") + &conn));
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &topo.ns(Side::A)])
        .arg(&exe)
        .args(["--exact", "float_peer", "--nocapture", "--test-threads=1"])
        .env(PEER_ENV, "1")
        .output()
        .expect("run the peer");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("done"),
        "peer: {text}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        r.log()
    );
    // (The test harness prints its own words before the first line.)
    let line = |what: &str| {
        let l = text.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no {what} in {text}"));
        l[l.find(what).unwrap_or(0)..].to_string()
    };
    assert_eq!(line("init_answer"), format!("init_answer 500 {WAN_B}:500"));
    assert_eq!(
        line("auth_answer"),
        format!("auth_answer 4500 {WAN_B}:4500 true"),
        "IKE_AUTH answered where it came from"
    );
    assert_eq!(line("informational_answer"), format!("informational_answer 4500 {WAN_B}:4500"));
    assert_eq!(line("dpd_request"), format!("dpd_request 4500 {WAN_B}:4500"), "the daemon's own request too");
    let sa = &r.list()[0];
    assert_eq!((sa["local"].as_str(), sa["remote"].as_str()), (Some("192.0.2.2:4500"), Some("192.0.2.1:4500")), "{sa}");
    assert_eq!(sa["nat_t"], false, "no NAT was detected: {sa}");
    assert_eq!(r.db_sas().iter().filter(|s| s.encap).count(), 0, "plain ESP without a NAT");
}
