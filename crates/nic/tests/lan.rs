//! The LAN steering program: traffic for protected prefixes (longest-prefix match, IPv4 and IPv6)
//! reaches the AF_XDP socket unless it is for the gateway itself; the rest reaches the kernel.
//! Needs root; builds and removes its own namespaces.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::time::Duration;

use common::*;
use rampart_nic::{AttachOptions, IpPrefix, LoadOptions, Role, SteeringProgram, XskConfig};

/// The UDP payload of an IPv4 or IPv6 frame, if it is UDP (no extension headers).
fn udp_payload(f: &[u8]) -> Option<&[u8]> {
    match u16::from_be_bytes([*f.get(12)?, *f.get(13)?]) {
        ETH_IP if *f.get(23)? == 17 => f.get(14 + (f[14] as usize & 0xf) * 4 + 8..),
        ETH_IP6 if *f.get(20)? == 17 => f.get(14 + 40 + 8..),
        _ => None,
    }
}

#[test]
fn lan_steers_protected_prefixes_to_the_socket() {
    if !require_root("lan_steers_protected_prefixes_to_the_socket") {
        return;
    }
    let gw = Netns::new("gw");
    let host = Netns::new("lanhost");
    let (g, _h) = veth(&gw, "lan0", &host, "lan1", 103, 1);
    for (net, via) in [("10.80.0.0/16", g.ip4.to_string()), ("10.90.0.0/16", g.ip4.to_string())] {
        host.ip(&["route", "add", net, "via", &via]);
    }
    for net in ["fd80::/16", "fd90::/16"] {
        host.ip(&["-6", "route", "add", net, "via", &g.ip6.to_string()]);
    }

    let g2 = g.clone();
    let (prog, mut xsk, local_sock) = gw.run(move || {
        let ifx = rampart_nic::ifindex("lan0").unwrap();
        let mut prog = SteeringProgram::load(Role::Lan, LoadOptions::default()).unwrap();
        prog.attach(ifx, AttachOptions::default()).unwrap();
        let xsk = XskRx::bind("lan0", 0, &XskConfig::default());
        prog.register_socket(0, &xsk.sock).unwrap();
        prog.add_local_address(IpAddr::V4(g2.ip4)).unwrap();
        prog.add_local_address(IpAddr::V6(g2.ip6)).unwrap();
        for p in ["10.80.0.0/16", "10.80.5.0/24", "fd80::/16", "10.103.0.0/24"] {
            prog.add_protected_prefix(p.parse().unwrap()).unwrap();
        }
        let s = UdpSocket::bind((g2.ip4, 7777)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        (prog, xsk, s)
    });
    // A WAN program has no prefixes.
    let wan = SteeringProgram::load(Role::Wan, LoadOptions::default()).unwrap();
    assert!(matches!(wan.add_protected_prefix("10.0.0.0/8".parse().unwrap()), Err(rampart_nic::Error::WrongRole(_))));

    let send = |dst: &str, msg: &'static str| {
        let dst = dst.to_string();
        host.run(move || {
            let dst: IpAddr = dst.parse().unwrap();
            let s = UdpSocket::bind(if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).unwrap();
            s.send_to(msg.as_bytes(), (dst, 7777)).unwrap();
        })
    };
    // Resolve the gateway's MAC first so that no datagram waits in the neighbour queue.
    assert!(host.exec_ok(&["ping", "-c", "1", "-W", "3", &g.ip4.to_string()]));
    assert!(host.exec_ok(&["ping", "-6", "-c", "1", "-W", "3", &g.ip6.to_string()]));

    send("10.80.1.1", "v4-protected");
    send("10.80.5.9", "v4-more-specific");
    send("10.90.0.1", "v4-unprotected");
    send("fd80::1", "v6-protected");
    send("fd90::1", "v6-unprotected");
    send(&g.ip4.to_string(), "v4-to-gateway");
    send("10.80.9.9", "END1");
    let (frames, done) = xsk.collect_until(Duration::from_secs(5), |f| udp_payload(f) == Some(b"END1"));
    assert!(done, "END1 never arrived");
    let mut got: Vec<String> =
        frames.iter().filter_map(|f| udp_payload(f)).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    got.sort();
    assert_eq!(got, ["END1", "v4-more-specific", "v4-protected", "v6-protected"]);
    // The gateway's own address lies inside a protected prefix, yet its traffic went to the kernel.
    let mut buf = [0u8; 64];
    let (n, _) = local_sock.recv_from(&mut buf).expect("traffic to the gateway reached its kernel");
    assert_eq!(&buf[..n], b"v4-to-gateway");

    // Remove the /16: the /24 inside it still matches, the rest of it no longer does.
    assert!(prog.remove_protected_prefix("10.80.0.0/16".parse::<IpPrefix>().unwrap()).unwrap());
    assert!(!prog.remove_protected_prefix("10.80.0.0/16".parse::<IpPrefix>().unwrap()).unwrap());
    assert!(prog.remove_protected_prefix("fd80::/16".parse::<IpPrefix>().unwrap()).unwrap());
    send("10.80.1.1", "v4-after-removal");
    send("fd80::1", "v6-after-removal");
    send("10.80.5.10", "END2");
    let (frames, done) = xsk.collect_until(Duration::from_secs(5), |f| udp_payload(f) == Some(b"END2"));
    assert!(done, "END2 never arrived");
    let got: Vec<String> =
        frames.iter().filter_map(|f| udp_payload(f)).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    assert_eq!(got, ["END2"]);

    let c = prog.counters().unwrap();
    eprintln!("LAN counters: {c:?}");
    assert_eq!(c.to_xsk_protected, 5);
    assert!(c.pass_local >= 3, "{c:?}"); // pings and the datagram to the gateway
    assert!(c.pass_unprotected >= 4, "{c:?}");
    assert_eq!(c.to_xsk_esp + c.to_xsk_esp_udp, 0);
}
