//! Forwarding without copies: frames received on the LAN socket are encapsulated in place and
//! transmitted on the WAN socket, which shares the LAN socket's UMEM. One tx burst carries more
//! than the 32 frames a copy-mode kick moves. Needs root; builds and removes its own namespaces.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use rampart_nic::{
    AttachOptions, Desc, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig, XskMode, XskSocket,
};

const FRAMES: usize = 100;
const OUTER: u32 = 64;

#[test]
fn lan_to_wan_forwarding_shares_the_umem_and_never_copies() {
    if !require_root("lan_to_wan_forwarding_shares_the_umem_and_never_copies") {
        return;
    }
    let gw = Netns::new("gw");
    let lanhost = Netns::new("lanhost");
    let wanhost = Netns::new("wanhost");
    let (gl, hl) = veth(&gw, "lan0", &lanhost, "lan1", 104, 1);
    let (gwn, hw) = veth(&gw, "wan0", &wanhost, "wan1", 105, 1);

    let (prog, mut umem, mut lan, mut wan) = gw.run(move || {
        let lan_if = rampart_nic::ifindex("lan0").unwrap();
        let wan_if = rampart_nic::ifindex("wan0").unwrap();
        let mut prog = SteeringProgram::load(Role::Lan, LoadOptions::default()).unwrap();
        prog.attach(lan_if, AttachOptions::default()).unwrap();
        let mut umem = Umem::new(UmemConfig { frame_size: 2048, frame_count: 1024, headroom: 0 }).unwrap();
        let cfg = XskConfig { rx_size: 256, tx_size: 256, fill_size: 256, comp_size: 256, ..Default::default() };
        let mut lan = XskSocket::bind(&umem, lan_if, 0, &cfg).unwrap();
        let wan = XskSocket::bind(&umem, wan_if, 0, &cfg).unwrap();
        assert!(!lan.is_shared());
        assert!(wan.is_shared(), "the WAN socket shares the LAN socket's UMEM");
        assert_eq!(lan.refill(&mut umem, 256), 256);
        prog.register_socket(0, &lan).unwrap();
        prog.add_protected_prefix("10.80.0.0/16".parse().unwrap()).unwrap();
        prog.add_local_address(IpAddr::V4("10.104.0.1".parse().unwrap())).unwrap();
        (prog, umem, lan, wan)
    });
    assert_eq!(lan.mode(), XskMode::Copy);
    assert_eq!(wan.mode(), XskMode::Copy);

    // The receiver on the far side of the WAN link, opened before anything is sent.
    let rx = wanhost.run(|| PacketSocket::open("wan1"));

    // The LAN host sends FRAMES numbered frames towards a protected prefix.
    let (gmac, hmac, hip) = (gl.mac, hl.mac, hl.ip4);
    let sent: Vec<Vec<u8>> = (0..FRAMES)
        .map(|i| {
            let mut f = eth(gmac, hmac, &[], ETH_IP);
            f.extend(ipv4(hip, "10.80.0.7".parse().unwrap(), 17, &[], 0, &udp(1000, 2000, &(i as u32).to_be_bytes())));
            pad60(f)
        })
        .collect();
    let to_send = sent.clone();
    lanhost.run(move || {
        let ps = PacketSocket::open("lan1");
        for f in &to_send {
            ps.send(f);
        }
    });

    // Wait until all of them sit in the rx ring, then take them in ONE burst.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lan.rx_ring().available() < FRAMES as u32 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut descs = [Desc::default(); 128];
    let n = lan.rx_burst(&mut descs);
    assert_eq!(n, FRAMES, "one rx burst");
    let rx_frames: BTreeSet<u64> = descs[..n].iter().map(|d| umem.frame_base(d.addr)).collect();
    assert_eq!(rx_frames.len(), FRAMES);

    // Encapsulate in place: prepend OUTER bytes in the headroom, write a new Ethernet header and
    // a marker there. The original frame stays where the kernel put it.
    assert!(umem.rx_offset() >= OUTER);
    for d in &mut descs[..n] {
        assert_eq!(umem.headroom(d), umem.rx_offset(), "received data starts at rx_offset");
        umem.push_front(d, OUTER).unwrap();
    }
    let (wmac, hwmac) = (gwn.mac, hw.mac);
    {
        let mut views: [&mut [u8]; 128] = std::array::from_fn(|_| &mut [][..]);
        assert_eq!(umem.frames_mut(&descs[..n], &mut views), Ok(n));
        for v in &mut views[..n] {
            v[0..6].copy_from_slice(&hwmac);
            v[6..12].copy_from_slice(&wmac);
            v[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
            v[14..OUTER as usize].fill(0xa5);
        }
    }

    // One tx burst of all frames; the kick loop must get them all out.
    assert_eq!(wan.tx_burst(&descs[..n]), FRAMES);
    assert_eq!(wan.kick_tx().unwrap(), 0, "one kick_tx call drains the tx ring");
    let mut completed = BTreeSet::new();
    let mut comp = [0u64; 128];
    let deadline = Instant::now() + Duration::from_secs(5);
    while completed.len() < FRAMES && Instant::now() < deadline {
        let k = wan.take_completions(&mut comp);
        completed.extend(comp[..k].iter().map(|&a| umem.frame_base(a)));
    }
    assert_eq!(completed, rx_frames, "the frames transmitted are the frames received: no copy");
    assert!(wan.counters().tx_kicks >= 4, "at least ceil(100 / 32) kicks: {:?}", wan.counters());
    for a in completed {
        umem.free(a).unwrap();
    }

    let (got, _) = rx.recv_until(Duration::from_secs(5), {
        let mut count = 0;
        move |f| {
            if f.len() > 14 && f[12..14] == [0x88, 0xb5] {
                count += 1;
            }
            count == FRAMES
        }
    });
    let mut forwarded: Vec<&[u8]> =
        got.iter().filter(|f| f.len() > 14 && f[12..14] == [0x88, 0xb5]).map(|f| &f[..]).collect();
    assert_eq!(forwarded.len(), FRAMES, "every frame of the burst arrived on the WAN side");
    forwarded.sort_by_key(|f| f[OUTER as usize + 14 + 20 + 8..OUTER as usize + 14 + 20 + 12].to_vec());
    for (f, orig) in forwarded.iter().zip(&sent) {
        assert_eq!(&f[..6], &hwmac);
        assert!(f[14..OUTER as usize].iter().all(|&b| b == 0xa5));
        assert_eq!(&f[OUTER as usize..], &orig[..], "inner frame intact behind the outer header");
    }

    let st = wan.statistics().unwrap();
    assert_eq!(st.tx_invalid_descs, 0);
    // 256 frames went to the fill ring; the FRAMES received from it came back through completions.
    assert_eq!(umem.free_frames(), 1024 - 256 + FRAMES as u32);
    drop(prog);
}
