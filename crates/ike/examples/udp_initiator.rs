//! A minimal UDP driver around the IKE core, for interop checks against a real peer (the
//! strongSwan harness in network namespaces). Not the daemon: no ESP, no SA database.
//!
//! `udp_initiator LOCAL_IP REMOTE_IP` initiates the harness's `gw`/`net` connection with PSK,
//! then rekeys the CHILD_SA, rekeys the IKE SA, sends a liveness check and deletes the IKE SA,
//! printing every event. Exit status 0 when every step succeeded. `IKE_PROPOSALS` and
//! `ESP_PROPOSALS` (swanctl spelling) override the proposals; a third argument names the
//! peer's charon log written with `chd = 4`, whose ESP keys must equal ours.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rampart_ike::crypto::SystemRandom;
use rampart_ike::message::Identification;
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::{ChildConfig, ConnectionConfig, Endpoint, EndpointConfig, Event, IkeSaId};
use rampart_sa::TrafficSelector;

/// (initiator key, responder key) pairs from a strongSwan log written with `chd = 4`.
fn peer_keys(path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let read = |i: usize| {
        let mut out = Vec::new();
        for l in lines.iter().skip(i + 1).take(8) {
            let Some((_, rest)) = l.split_once("> ") else { break };
            let rest = rest.trim_start();
            let Some((off, hex)) = rest.split_once(": ") else { break };
            if off.trim().parse::<usize>().is_err() {
                break;
            }
            out.extend(hex.split_whitespace().take(16).filter_map(|b| u8::from_str_radix(b, 16).ok()));
        }
        out
    };
    let mut pairs = Vec::new();
    let mut initiator = None;
    for (i, l) in lines.iter().enumerate() {
        if l.contains("encryption initiator key =>") {
            initiator = Some(read(i));
        } else if l.contains("encryption responder key =>")
            && let Some(k) = initiator.take()
        {
            pairs.push((k, read(i)));
        }
    }
    pairs
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(l), Some(r)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: udp_initiator LOCAL_IP REMOTE_IP");
        std::process::exit(2);
    };
    let (local, remote): (IpAddr, IpAddr) = (l.parse().expect("local ip"), r.parse().expect("remote ip"));
    // RESPOND=1: wait for the peer to initiate (we are side b), then drive the same steps.
    let respond = std::env::var("RESPOND").is_ok_and(|v| v == "1");
    let (me, peer, mine, theirs) = if respond {
        ("gw-b.sw.test", "gw-a.sw.test", "198.18.2.0/24", "198.18.1.0/24")
    } else {
        ("gw-a.sw.test", "gw-b.sw.test", "198.18.1.0/24", "198.18.2.0/24")
    };
    let mut c = ConnectionConfig::psk(
        "gw",
        Identification::fqdn(me),
        Some(Identification::fqdn(peer)),
        b"sw-test-psk-0123456789abcdef",
    );
    c.local_addrs = vec![local];
    c.remote_addrs = vec![remote];
    let ike_props =
        std::env::var("IKE_PROPOSALS").unwrap_or_else(|_| "aes256-sha256-ecp256, aes256-sha256-x25519".into());
    let esp_props = std::env::var("ESP_PROPOSALS").unwrap_or_else(|_| "aes256gcm16".into());
    c.proposals = parse_ike_proposals(&ike_props).expect("proposals");
    let p = |s: &str| {
        let (a, n) = s.split_once('/').expect("prefix");
        TrafficSelector::from_prefix(a.parse().expect("addr"), n.parse().expect("len"))
    };
    c.children =
        vec![ChildConfig::new("net", vec![p(mine)], vec![p(theirs)], parse_esp_proposals(&esp_props).expect("esp"))];
    let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(SystemRandom::new()));
    ep.add_connection(c);
    let s500 = UdpSocket::bind(SocketAddr::new(local, 500)).expect("bind 500");
    let s4500 = UdpSocket::bind(SocketAddr::new(local, 4500)).expect("bind 4500");
    for s in [&s500, &s4500] {
        s.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    }
    let start = Instant::now();
    let mut ike: Option<IkeSaId> = None;
    let mut step = 0;
    let mut step_at = Instant::now();
    if !respond {
        ep.initiate(Instant::now(), "gw", None).expect("initiate");
    }
    let mut buf = [0u8; 65536];
    let mut ok_steps = 0;
    // Our outbound/inbound ESP keys, to compare with the peer's key log; never printed.
    let mut keys: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    while start.elapsed() < Duration::from_secs(60) {
        while let Some(t) = ep.poll_transmit() {
            if t.from.port() == 4500 && t.bytes != [0xff] {
                let mut b = vec![0u8; 4];
                b.extend_from_slice(&t.bytes);
                let _ = s4500.send_to(&b, t.to);
            } else if t.from.port() == 4500 {
                let _ = s4500.send_to(&t.bytes, t.to);
            } else {
                let _ = s500.send_to(&t.bytes, t.to);
            }
            println!("sent {} bytes {} -> {}", t.bytes.len(), t.from, t.to);
        }
        while let Some(e) = ep.poll_event() {
            println!("event: {e:?}");
            match e {
                Event::IkeSaUp { ike: id, .. } => ike = Some(id),
                Event::IkeSaRekeyed { new, .. } => {
                    ike = Some(new);
                    ok_steps += 1;
                }
                Event::InstallChildSa { inbound, outbound, .. } => {
                    keys.push((outbound.encryption_key.to_vec(), inbound.encryption_key.to_vec()));
                    ok_steps += 1;
                }
                Event::RekeyedChildSa { inbound, outbound: Some(outbound), .. } => {
                    keys.push((outbound.encryption_key.to_vec(), inbound.encryption_key.to_vec()));
                    ok_steps += 1;
                }
                Event::IkeSaDown { ike: down, reason } if Some(down) == ike => {
                    println!("down: {reason:?}");
                    let mut success = ok_steps == 3 && step == 4 && reason == rampart_ike::DownReason::Deleted;
                    if let Some(log) = args.get(3) {
                        let theirs = peer_keys(log);
                        let matching = keys
                            .iter()
                            .filter(|(o, i)| theirs.iter().any(|(a, b)| (a, b) == (o, i) || (a, b) == (i, o)))
                            .count();
                        println!("ESP keys equal to the peer's: {matching} of {}", keys.len());
                        success &= matching == keys.len() && !keys.is_empty();
                    }
                    println!("{}", if success { "INTEROP OK" } else { "INTEROP FAILED" });
                    std::process::exit(if success { 0 } else { 1 });
                }
                _ => {}
            }
        }
        if let Some(id) = ike
            && step_at.elapsed() > Duration::from_secs(2)
        {
            let now = Instant::now();
            let sa = ep.ike_sa(id);
            match (step, sa) {
                (0, Some(sa)) if !sa.children.is_empty() => {
                    ep.rekey_child(now, id, sa.children[0].id).expect("rekey child");
                }
                (1, Some(_)) => ep.rekey_ike(now, id).expect("rekey ike"),
                (2, Some(_)) => ep.dpd(now, id).expect("dpd"),
                (3, Some(_)) => ep.delete_ike(now, id).expect("delete"),
                _ => {}
            }
            step += 1;
            step_at = Instant::now();
        }
        for (s, marker) in [(&s500, false), (&s4500, true)] {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let data = &buf[..n];
                let data =
                    if marker { if n >= 4 && data[..4] == [0, 0, 0, 0] { &data[4..] } else { continue } } else { data };
                let local_addr = s.local_addr().expect("addr");
                ep.handle(Instant::now(), local_addr, from, data);
            }
        }
        ep.handle_timeout(Instant::now());
    }
    println!("INTEROP FAILED (timeout)");
    std::process::exit(1);
}
