//! Ring statistics: the kernel's XDP_STATISTICS counters move when the fill ring runs dry, the rx
//! ring overflows, or descriptors are invalid, and the socket's own counters follow what went
//! through the rings. Needs root; builds and removes its own namespaces.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use rampart_nic::{
    AttachOptions, BusyPoll, Desc, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig, XskSocket,
};

#[test]
fn ring_statistics_are_visible() {
    if !require_root("ring_statistics_are_visible") {
        return;
    }
    let gw = Netns::new("gw");
    let peer = Netns::new("peer");
    let (g, p) = veth(&gw, "wan0", &peer, "wan1", 115, 1);
    let gip = g.ip4;
    let (prog, mut umem, mut sock) = gw.run(move || {
        let ifx = rampart_nic::ifindex("wan0").unwrap();
        let mut prog = SteeringProgram::load(Role::Wan, LoadOptions::default()).unwrap();
        prog.attach(ifx, AttachOptions::default()).unwrap();
        prog.add_local_address(IpAddr::V4(gip)).unwrap();
        let umem = Umem::new(UmemConfig { frame_size: 2048, frame_count: 256, headroom: 0 }).unwrap();
        let cfg = XskConfig { rx_size: 8, tx_size: 64, fill_size: 128, comp_size: 64, ..Default::default() };
        let sock = XskSocket::bind(&umem, ifx, 0, &cfg).unwrap();
        prog.register_socket(0, &sock).unwrap();
        (prog, umem, sock)
    });
    let (gmac, pmac, pip) = (g.mac, p.mac, p.ip4);
    let send = |count: u32| {
        peer.run(move || {
            let ps = PacketSocket::open("wan1");
            for i in 0..count {
                let mut f = eth(gmac, pmac, &[], ETH_IP);
                f.extend(ipv4(pip, gip, 50, &[], 0, &esp(0x500 + i, i, 20)));
                ps.send(&pad60(f));
            }
        })
    };
    let zero = sock.statistics().unwrap();
    assert_eq!(zero, Default::default());

    // 1. Empty fill ring: every steered frame is dropped for want of a buffer.
    send(5);
    assert!(wait_for(Duration::from_secs(3), || sock.statistics().unwrap().rx_fill_ring_empty_descs >= 5));
    let s = sock.statistics().unwrap();
    assert_eq!(s.rx_ring_full, 0);
    assert!(s.rx_dropped >= 5, "{s:?}");

    // 2. An invalid fill address is skipped by the kernel (counted internally, not in
    //    XDP_STATISTICS), leaving the fill ring empty again: one more empty-fill drop.
    let beyond = u64::from(umem.frame_count()) * u64::from(umem.frame_size());
    assert_eq!(sock.fill_ring().produce(&[beyond]), 1);
    send(1);
    assert!(wait_for(Duration::from_secs(3), || sock.statistics().unwrap().rx_fill_ring_empty_descs >= 6));
    assert_eq!(sock.fill_ring().pending(), 0, "the kernel consumed the invalid fill entry");
    assert_eq!(sock.statistics().unwrap().rx_invalid_descs, 0);

    // 3. Rx ring of 8, nobody reading: the ninth and later frames overflow it.
    assert_eq!(sock.refill(&mut umem, 64), 64);
    send(20);
    assert!(
        wait_for(Duration::from_secs(3), || sock.statistics().unwrap().rx_ring_full >= 12),
        "{:?}",
        sock.statistics()
    );
    let mut descs = [Desc::default(); 16];
    assert_eq!(sock.rx_burst(&mut descs), 8);
    assert_eq!(sock.counters().rx_packets, 8);
    assert_eq!(umem.free_descs(&descs[..8]), 0);

    // 4. Invalid tx descriptors: outside the UMEM, and crossing the end of a frame we hold.
    let held = umem.alloc().unwrap();
    let free_before = umem.free_frames();
    let bad = [Desc::new(beyond + 64, 60), Desc::new(held + 2000, 100)];
    assert_eq!(sock.tx_burst(&bad), 2);
    sock.kick_tx().unwrap();
    let s = sock.statistics().unwrap();
    assert_eq!(s.tx_invalid_descs, 2, "{s:?}");
    // tx_ring_empty_descs is counted by the zero-copy tx path; copy mode (veth) leaves it at 0.
    // Copy mode hands invalid descriptors back on the completion ring (Linux 6.18): the held frame
    // returns to the free list, the address outside the UMEM is refused and counted.
    assert!(
        wait_for(Duration::from_secs(2), || sock.reap_completions(&mut umem) > 0 && sock.counters().tx_completed == 2)
    );
    assert_eq!(sock.counters().tx_completion_refused, 1);
    assert_eq!(umem.free_frames(), free_before + 1);
    assert!(sock.counters().tx_kicks >= 1);
    eprintln!("statistics: {s:?}\ncounters: {:?}", sock.counters());

    let c = prog.counters().unwrap();
    assert_eq!(c.to_xsk_esp, 26);
}

#[test]
fn busy_poll_options_and_headroom() {
    if !require_root("busy_poll_options_and_headroom") {
        return;
    }
    let gw = Netns::new("gw");
    let peer = Netns::new("peer");
    let (g, p) = veth(&gw, "wan0", &peer, "wan1", 116, 1);
    let gip = g.ip4;
    let (_prog, umem, mut sock) = gw.run(move || {
        let ifx = rampart_nic::ifindex("wan0").unwrap();
        let mut prog = SteeringProgram::load(Role::Wan, LoadOptions::default()).unwrap();
        prog.attach(ifx, AttachOptions::default()).unwrap();
        prog.add_local_address(IpAddr::V4(gip)).unwrap();
        let mut umem = Umem::new(UmemConfig { frame_size: 4096, frame_count: 64, headroom: 128 }).unwrap();
        let cfg = XskConfig {
            rx_size: 32,
            tx_size: 32,
            fill_size: 32,
            comp_size: 32,
            busy_poll: Some(BusyPoll::default()),
            ..Default::default()
        };
        let mut sock = XskSocket::bind(&umem, ifx, 0, &cfg).unwrap();
        assert_eq!(sock.refill(&mut umem, 32), 32);
        prog.register_socket(0, &sock).unwrap();
        (prog, umem, sock)
    });
    let acc = sock.busy_poll_accepted();
    assert!(acc.prefer && acc.usecs && acc.budget, "busy-poll options refused: {acc:?}");

    let (gmac, pmac, pip) = (g.mac, p.mac, p.ip4);
    peer.run(move || {
        let ps = PacketSocket::open("wan1");
        let mut f = eth(gmac, pmac, &[], ETH_IP);
        f.extend(ipv4(pip, gip, 50, &[], 0, &esp(0x77, 1, 20)));
        ps.send(&pad60(f));
    });
    let mut descs = [Desc::default(); 4];
    let got = wait_for(Duration::from_secs(3), || {
        sock.busy_poll();
        sock.rx_burst(&mut descs) == 1
    });
    assert!(got, "frame received while busy polling");
    // Received data starts after the configured headroom plus the kernel's 256 bytes.
    assert_eq!(umem.rx_offset(), 128 + 256);
    assert_eq!(umem.headroom(&descs[0]), umem.rx_offset());
    assert_eq!(frame_spi(umem.frame(&descs[0]).unwrap()), Some((0x77, false)));
    assert_eq!(umem.tailroom(&descs[0]), 4096 - 384 - descs[0].len);
}
