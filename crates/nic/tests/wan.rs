//! The WAN steering program between two namespaces: ESP and ESP-in-UDP for the gateway's own
//! addresses reach the AF_XDP socket; IKE, ICMP, ARP, ND and traffic for other addresses reach
//! the kernel. Each test builds and removes its own namespaces. Needs root.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use common::*;
use rampart_nic::{AttachMode, AttachOptions, LoadOptions, Role, SteeringProgram, XskConfig, XskMode};

const SENTINEL: u32 = 0xdead_beef;

/// Sends `payload` as IP protocol `proto` to `dst` through the kernel (raw socket).
fn send_raw_ip(dst: IpAddr, proto: i32, payload: &[u8]) {
    let (family, sa): (i32, SocketAddr) = match dst {
        IpAddr::V4(_) => (libc::AF_INET, SocketAddr::new(dst, 0)),
        IpAddr::V6(_) => (libc::AF_INET6, SocketAddr::new(dst, 0)),
    };
    // Safety: plain socket(2).
    let raw = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    assert!(raw >= 0, "raw socket: {}", std::io::Error::last_os_error());
    // Safety: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let r = match sa {
        SocketAddr::V4(a) => {
            // Safety: zeroed sockaddr_in then filled.
            let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            s.sin_family = libc::AF_INET as u16;
            s.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            // Safety: valid buffers and address.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    payload.as_ptr().cast(),
                    payload.len(),
                    0,
                    (&s as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            }
        }
        SocketAddr::V6(a) => {
            // Safety: zeroed sockaddr_in6 then filled.
            let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            s.sin6_family = libc::AF_INET6 as u16;
            s.sin6_addr.s6_addr = a.ip().octets();
            // Safety: valid buffers and address.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    payload.as_ptr().cast(),
                    payload.len(),
                    0,
                    (&s as *const libc::sockaddr_in6).cast(),
                    std::mem::size_of::<libc::sockaddr_in6>() as u32,
                )
            }
        }
    };
    assert_eq!(r, payload.len() as isize, "raw sendto: {}", std::io::Error::last_os_error());
}

/// What one frame on the socket was.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Seen {
    Esp(u32),
    Ah,
    EspUdp(u32),
    Keepalive,
    Other,
}

fn classify(f: &[u8]) -> Seen {
    // NAT keepalive: IPv4/UDP/4500 with a one-byte 0xFF payload.
    if f.len() >= 43 && f[12..14] == [8, 0] && f[23] == 17 {
        let l4 = 14 + (f[14] as usize & 0xf) * 4;
        if f[l4 + 4..l4 + 6] == [0, 9] && f[l4 + 8] == 0xff {
            return Seen::Keepalive;
        }
    }
    if f.len() >= 34 && f[12..14] == [8, 0] && f[23] == 51 {
        return Seen::Ah;
    }
    match frame_spi(f) {
        Some((spi, false)) => Seen::Esp(spi),
        Some((spi, true)) => Seen::EspUdp(spi),
        None => Seen::Other,
    }
}

#[test]
fn wan_steers_esp_to_the_socket_and_the_rest_to_the_kernel() {
    if !require_root("wan_steers_esp_to_the_socket_and_the_rest_to_the_kernel") {
        return;
    }
    let gw = Netns::new("gw");
    let peer = Netns::new("peer");
    let (g, p) = veth(&gw, "wan0", &peer, "wan1", 101, 1);

    let g2 = g.clone();
    let (prog, mut xsk, report) = gw.run(move || {
        let ifx = rampart_nic::ifindex("wan0").unwrap();
        let mut prog = SteeringProgram::load(Role::Wan, LoadOptions::default()).unwrap();
        let report = prog.attach(ifx, AttachOptions::default()).unwrap();
        let xsk = XskRx::bind("wan0", 0, &XskConfig::default());
        prog.register_socket(0, &xsk.sock).unwrap();
        prog.add_local_address(IpAddr::V4(g2.ip4)).unwrap();
        prog.add_local_address(IpAddr::V6(g2.ip6)).unwrap();
        (prog, xsk, report)
    });
    assert_eq!(report.mode, AttachMode::Native);
    assert!(report.replaced.is_empty());
    // veth has no zero-copy support: the kernel falls back to copy mode.
    assert_eq!(xsk.sock.mode(), XskMode::Copy);
    eprintln!("attached {report:?}; socket mode {:?}", xsk.sock.mode());

    // Kernel sockets on the gateway for what must pass.
    let gip6_bind = g.ip6;
    let (ike500, natt4500, natt6) = gw.run(move || {
        let a = UdpSocket::bind("0.0.0.0:500").unwrap();
        let b = UdpSocket::bind("0.0.0.0:4500").unwrap();
        let c = UdpSocket::bind((gip6_bind, 4500)).unwrap();
        for s in [&a, &b, &c] {
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        }
        (a, b, c)
    });

    // ICMP echo is answered (and the ARP exchange before it passed); IPv6 ping needs ND to pass.
    assert!(peer.exec_ok(&["ping", "-c", "1", "-W", "3", &g.ip4.to_string()]), "IPv4 ping through the WAN program");
    assert!(
        peer.exec_ok(&["ping", "-6", "-c", "1", "-W", "3", &g.ip6.to_string()]),
        "IPv6 ping (ND) through the WAN program"
    );

    // An explicit ARP request is answered by the gateway's kernel.
    let (gmac, pmac, gip4, pip4) = (g.mac, p.mac, g.ip4, p.ip4);
    let arp_reply = peer.run(move || {
        let ps = PacketSocket::open("wan1");
        let mut arp = eth([0xff; 6], pmac, &[], 0x0806);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&pmac);
        arp.extend_from_slice(&pip4.octets());
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&gip4.octets());
        ps.send(&pad60(arp));
        let (_, ok) = ps.recv_until(Duration::from_secs(3), |f| {
            f.len() >= 42 && f[12..14] == [8, 6] && f[20..22] == [0, 2] && f[28..32] == gip4.octets()
        });
        ok
    });
    assert!(arp_reply, "ARP request answered by the gateway kernel");

    let (gip6, pip6) = (g.ip6, p.ip6);
    peer.run(move || {
        // Through the peer's kernel: ESP (raw, protocol 50), ESP-in-UDP, IKE, keepalive.
        send_raw_ip(IpAddr::V4(gip4), 50, &esp(0x1001, 1, 40));
        let u = UdpSocket::bind("0.0.0.0:4500").unwrap();
        u.send_to(&esp(0x1002, 1, 40), (gip4, 4500)).unwrap();
        let mut ike = vec![0, 0, 0, 0];
        ike.extend_from_slice(b"IKEv2 over 4500");
        u.send_to(&ike, (gip4, 4500)).unwrap();
        u.send_to(&[0xff], (gip4, 4500)).unwrap();
        let u500 = UdpSocket::bind("0.0.0.0:500").unwrap();
        u500.send_to(b"IKEv2 over 500", (gip4, 500)).unwrap();
        let u6 = UdpSocket::bind((pip6, 4500)).unwrap();
        let mut ike6 = vec![0, 0, 0, 0];
        ike6.extend_from_slice(b"IKEv2 over v6 4500");
        u6.send_to(&ike6, (gip6, 4500)).unwrap();
        send_raw_ip(IpAddr::V6(gip6), 50, &esp(0x2001, 1, 40));

        // Hand-built frames for what the kernel would not send by itself.
        let ps = PacketSocket::open("wan1");
        let v4 = |dst, proto, opts: &[u8], frag, payload: &[u8]| {
            let mut f = eth(gmac, pmac, &[], ETH_IP);
            f.extend(ipv4(pip4, dst, proto, opts, frag, payload));
            pad60(f)
        };
        // IPv4 with options.
        ps.send(&v4(gip4, 50, &[1, 1, 1, 0], 0, &esp(0x1003, 1, 20)));
        // 802.1Q and 802.1ad+802.1Q (QinQ).
        let mut f = eth(gmac, pmac, &[100], ETH_IP);
        f.extend(ipv4(pip4, gip4, 50, &[], 0, &esp(0x1004, 1, 20)));
        ps.send(&pad60(f));
        let mut f = eth(gmac, pmac, &[200, 300], ETH_IP);
        f.extend(ipv4(pip4, gip4, 50, &[], 0, &esp(0x1005, 1, 20)));
        ps.send(&pad60(f));
        // ESP for an address that is not the gateway's.
        ps.send(&v4("10.101.0.99".parse().unwrap(), 50, &[], 0, &esp(0x1006, 1, 20)));
        // ESP first fragment (MF): taken, the data plane reassembles.
        ps.send(&v4(gip4, 50, &[], 0x2000, &esp(0x100a, 1, 24)));
        // AH: taken (its SPI sits where ESP's would be read: after next header, length, reserved).
        ps.send(&v4(
            gip4,
            51,
            &[],
            0,
            &[50, 4, 0, 0, 0, 0, 0x10, 0x0c, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ));
        // UDP/4500 fragment: taken as well (IKE or ESP: the data plane reassembles and decides).
        ps.send(&v4(gip4, 17, &[], 0x2000, &udp(4500, 4500, &esp(0x100b, 1, 24))));
        // A keepalive-sized UDP/4500 whose frame is padded with zeros must not pass for IKE.
        ps.send(&v4(gip4, 17, &[], 0, &udp(4500, 4500, &[0x00, 0x01])));
        // IPv6: plain ESP, ESP behind a destination-options header, ESP-in-UDP, and IKE/4500.
        let v6 = |next, payload: &[u8]| {
            let mut f = eth(gmac, pmac, &[], ETH_IP6);
            f.extend(ipv6(pip6, gip6, next, payload));
            pad60(f)
        };
        ps.send(&v6(50, &esp(0x1007, 1, 20)));
        let mut dstopts = vec![50, 0, 1, 4, 0, 0, 0, 0]; // next ESP, 8 bytes, PadN
        dstopts.extend(esp(0x1008, 1, 20));
        ps.send(&v6(60, &dstopts));
        ps.send(&v6(17, &udp(4500, 4500, &esp(0x1009, 1, 20))));
        ps.send(&v6(17, &udp(4500, 4500, &[0, 0, 0, 0, 0xaa, 0xbb])));
        // IPv6 ESP for someone else.
        let mut f = eth(gmac, pmac, &[], ETH_IP6);
        f.extend(ipv6(pip6, "fd65::99".parse().unwrap(), 50, &esp(0x100c, 1, 20)));
        ps.send(&pad60(f));
        // Last: the sentinel. Everything before it on this queue has been steered once it arrives.
        ps.send(&v4(gip4, 50, &[], 0, &esp(SENTINEL, 1, 20)));
    });

    let (frames, done) = xsk.collect_until(Duration::from_secs(5), |f| classify(f) == Seen::Esp(SENTINEL));
    assert!(
        done,
        "sentinel never reached the socket; got {:?}",
        frames.iter().map(|f| classify(f)).collect::<Vec<_>>()
    );
    let mut seen: Vec<Seen> = frames.iter().map(|f| classify(f)).collect();
    seen.sort_by_key(|s| format!("{s:?}"));
    let mut want = vec![
        Seen::Esp(0x1001),
        Seen::EspUdp(0x1002),
        Seen::Keepalive,
        Seen::Esp(0x2001),
        Seen::Esp(0x1003),
        Seen::Esp(0x1004),
        Seen::Esp(0x1005),
        Seen::Esp(0x100a),
        Seen::EspUdp(0x100b),
        Seen::Ah,
        Seen::EspUdp(0x0001_0000), // the two-byte payload 00 01 + zero padding
        Seen::Esp(0x1007),
        Seen::Esp(0x1008),
        Seen::EspUdp(0x1009),
        Seen::Esp(SENTINEL),
    ];
    want.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(seen, want, "frames on the AF_XDP socket");

    // The VLAN tags survived (the program steers, it does not rewrite).
    let tagged = frames.iter().find(|f| classify(f) == Seen::Esp(0x1004)).unwrap();
    assert_eq!(tagged[12..16], [0x81, 0x00, 0, 100]);

    // What passed reached the kernel's sockets.
    let mut buf = [0u8; 128];
    let (n, _) = ike500.recv_from(&mut buf).expect("UDP/500 reached the kernel");
    assert_eq!(&buf[..n], b"IKEv2 over 500");
    let (n, _) = natt4500.recv_from(&mut buf).expect("UDP/4500 with non-ESP marker reached the kernel");
    assert_eq!(&buf[4..n], b"IKEv2 over 4500");
    let (n, _) = natt6.recv_from(&mut buf).expect("IPv6 UDP/4500 with non-ESP marker reached the kernel");
    assert_eq!(&buf[4..n], b"IKEv2 over v6 4500");
    // ... and ESP-in-UDP did not (only the marker packet was queued on the kernel socket).
    natt4500.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(natt4500.recv_from(&mut buf).is_err(), "ESP-in-UDP or keepalive leaked to the kernel socket");

    let c = prog.counters().unwrap();
    eprintln!("steering counters: {c:?}");
    assert_eq!(c.to_xsk_esp, 9);
    assert_eq!(c.to_xsk_esp_udp, 4);
    assert!(c.pass_ike >= 3, "{c:?}");
    assert!(c.pass_not_local >= 2, "{c:?}");
    assert_eq!(c.to_xsk_udp_fragment, 1);
    assert_eq!(c.to_xsk_ah, 1);
    assert!(c.pass_not_ip >= 1 && c.pass_other >= 2, "{c:?}");
    assert_eq!(c.no_socket, 0);
    assert_eq!(c.to_xsk_protected, 0);
    drop(prog);
}

#[test]
fn unregistered_queue_passes_to_the_kernel() {
    if !require_root("unregistered_queue_passes_to_the_kernel") {
        return;
    }
    let gw = Netns::new("gw");
    let peer = Netns::new("peer");
    let (g, p) = veth(&gw, "wan0", &peer, "wan1", 102, 1);
    let gip = g.ip4;
    let prog = gw.run(move || {
        let mut prog = SteeringProgram::load(Role::Wan, LoadOptions::default()).unwrap();
        prog.attach(rampart_nic::ifindex("wan0").unwrap(), AttachOptions { mode: AttachMode::Generic, force: false })
            .unwrap();
        prog.add_local_address(IpAddr::V4(gip)).unwrap();
        prog
    });
    assert_eq!(prog.attach_mode(), Some(AttachMode::Generic));
    let (gmac, pmac, pip) = (g.mac, p.mac, p.ip4);
    peer.run(move || {
        let ps = PacketSocket::open("wan1");
        let mut f = eth(gmac, pmac, &[], ETH_IP);
        f.extend(ipv4(pip, gip, 50, &[], 0, &esp(7, 1, 20)));
        ps.send(&pad60(f));
    });
    assert!(wait_for(Duration::from_secs(3), || prog.counters().unwrap().no_socket == 1));
}
