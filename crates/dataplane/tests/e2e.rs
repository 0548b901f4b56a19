//! End to end through two Rampart data planes, as root, in network namespaces this test creates
//! and removes (`scripts/topology.sh`):
//!
//! host A - gateway A - switch - gateway B - host B
//!
//! Both gateways run the `rampart` binary (`rampart dataplane --config ...`) with static SAs and
//! policies installed by `rampart sa add` / `rampart policy add`. The ESP between the gateways is
//! captured on the switch and decrypted by the scapy oracle; frames are injected on the switch
//! towards gateway B; counters come from the data planes' stats files.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

fn start_pair(queues: u32) -> (Topology, Scratch, Gateway, Gateway) {
    let topo = Topology::new(queues);
    let scratch = Scratch::new("e2e");
    install_tunnels(&scratch.dbs[0], &scratch.dbs[1]);
    let ga = Gateway::start(&topo, "ga", &scratch.dbs[0], &scratch.dir, queues);
    let gb = Gateway::start(&topo, "gb", &scratch.dbs[1], &scratch.dir, queues);
    (topo, scratch, ga, gb)
}

/// The IP version, source and destination of an inner packet.
fn inner_addrs(p: &[u8]) -> (u8, String, String, u8) {
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => (
            4,
            std::net::Ipv4Addr::new(p[12], p[13], p[14], p[15]).to_string(),
            std::net::Ipv4Addr::new(p[16], p[17], p[18], p[19]).to_string(),
            p[9],
        ),
        Some(6) if p.len() >= 40 => (
            6,
            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap()).to_string(),
            std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap()).to_string(),
            p[6],
        ),
        _ => (0, String::new(), String::new(), 0),
    }
}

fn replays(g: &Gateway) -> u64 {
    g.total("drops", "replay_duplicate") + g.total("drops", "replay_too_old")
}

#[test]
fn tunnel_end_to_end() {
    if !require_root("tunnel_end_to_end") {
        return;
    }
    let (topo, scratch, mut ga, mut gb) = start_pair(1);
    let cap = Capture::start(&topo, "sw", "to-ga", &scratch.dir.join("wan.pcap"));

    // Ping and TCP, IPv4 and IPv6 inner (the first packets resolve neighbours).
    topo.wait_reachable("ha", "10.2.0.2", 10);
    topo.wait_reachable("ha", "fd02::2", 10);
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "5", "-i", "0.2"]).1, 5);
    assert_eq!(topo.ping("ha", "fd02::2", &["-c", "5", "-i", "0.2"]).1, 5);
    assert_eq!(topo.ping("hb", "10.1.0.2", &["-c", "3", "-i", "0.2"]).1, 3);
    let (sent, got) = topo.tcp_transfer("ha", "hb", "10.2.0.2", 5001, 3_000_000);
    assert_eq!(sent, got, "TCP over IPv4");
    assert!(sent.starts_with("3000000 "), "{sent}");
    let (sent, got) = topo.tcp_transfer("hb", "ha", "fd01::2", 5002, 1_000_000);
    assert_eq!(sent, got, "TCP over IPv6, B to A");
    ga.wait_total("counters", "encrypted_packets", 2000);
    gb.wait_total("counters", "decrypted_packets", 2000);

    // TTL 1: gateway A answers time exceeded; too big after encapsulation: fragmentation needed.
    let (_, rx, out) = topo.ping("ha", "10.2.0.2", &["-c", "1", "-t", "1"]);
    assert_eq!(rx, 0);
    assert!(out.contains("Time to live exceeded"), "{out}");
    let (_, _, out) = topo.ping("ha", "fd02::2", &["-c", "1", "-t", "1"]);
    assert!(out.contains("Time exceeded"), "{out}");
    ga.wait_total("drops", "ttl_expired", 2);
    let (_, rx, out) = topo.ping("ha", "10.2.0.2", &["-c", "1", "-M", "do", "-s", "1472"]);
    assert_eq!(rx, 0);
    assert!(out.contains("Frag needed") || out.contains("mtu"), "{out}");
    let (_, rx, out) = topo.ping("ha", "fd02::2", &["-c", "1", "-M", "do", "-s", "1452"]);
    assert_eq!(rx, 0);
    assert!(out.contains("Packet too big"), "{out}");
    ga.wait_total("drops", "too_big", 2);
    ga.wait_total("counters", "icmp_sent", 4);

    // The scapy oracle decrypts what went over the wire, both tunnels, both directions.
    let frames = esp_frames(&cap.finish());
    let mut oracle = Oracle::start();
    let mut seen_proto = HashSet::new();
    for (spi, outer_src, inner_src, inner_dst) in [
        (SPI_AB4, "192.0.2.1", "10.1.0.2", "10.2.0.2"),
        (SPI_BA4, "192.0.2.2", "10.2.0.2", "10.1.0.2"),
        (SPI_AB6, "2001:db8::1", "fd01::2", "fd02::2"),
        (SPI_BA6, "2001:db8::2", "fd02::2", "fd01::2"),
    ] {
        let of_sa: Vec<&EspFrame> = frames.iter().filter(|e| e.spi == spi).collect();
        assert!(of_sa.len() >= 5, "only {} packets of SPI {spi:#x} captured", of_sa.len());
        let step = (of_sa.len() / 40).max(1);
        for e in of_sa.iter().step_by(step) {
            assert_eq!(e.src, outer_src);
            let inner = oracle
                .decrypt(&key(key_byte(spi)), e)
                .unwrap_or_else(|err| panic!("SPI {spi:#x} seq {}: {err}", e.seq));
            let (_, s, d, proto) = inner_addrs(&inner);
            // ICMP errors from the gateway (TTL, too big) never cross the tunnel.
            assert_eq!((s.as_str(), d.as_str()), (inner_src, inner_dst), "SPI {spi:#x} seq {}", e.seq);
            seen_proto.insert(proto);
        }
        // Sequence numbers of one SA are never reused.
        let seqs: HashSet<u32> = of_sa.iter().map(|e| e.seq).collect();
        assert_eq!(seqs.len(), of_sa.len(), "SPI {spi:#x}: a sequence number was sent twice");
    }
    assert!(seen_proto.contains(&1) && seen_proto.contains(&6) && seen_proto.contains(&58), "{seen_proto:?}");

    // An ESP packet that scapy sealed (not Rampart) with a fresh sequence number, cut into three
    // IPv4 fragments sent last first: gateway B reassembles, decrypts and forwards it.
    let last = frames.iter().rev().find(|e| e.spi == SPI_AB4).unwrap().clone();
    const FRAGMENTED: &str = r#"
import sys
from scapy.all import IP, ICMP, Raw, Ether, fragment, sendp
from scapy.layers.ipsec import ESP, SecurityAssociation
key, spi, seq = bytes.fromhex(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sa = SecurityAssociation(ESP, spi=spi, crypt_algo="AES-GCM", crypt_key=key, crypt_icv_size=16,
                         tunnel_header=IP(src="192.0.2.1", dst="192.0.2.2"))
inner = IP(src="10.1.0.2", dst="10.2.0.2", ttl=64) / ICMP(type=8, id=77, seq=1) / Raw(b"r" * 1200)
esp = sa.encrypt(inner, seq_num=seq)
frags = fragment(IP(bytes(esp)), fragsize=496)
assert len(frags) == 3, len(frags)
for f in reversed(frags):
    sendp(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / f, iface="to-gb", verbose=False)
"#;
    let (f0, r0, d0) = (
        gb.total("counters", "fragments_received"),
        gb.total("counters", "reassembled_packets"),
        gb.total("counters", "decrypted_packets"),
    );
    let k = key(key_byte(SPI_AB4));
    topo.sh(
        "sw",
        &["python3", "-c", FRAGMENTED, k.trim_start_matches("0x"), &SPI_AB4.to_string(), &(last.seq + 100).to_string()],
    );
    gb.wait_total("counters", "reassembled_packets", r0 + 1);
    assert_eq!(gb.total("counters", "fragments_received"), f0 + 3);
    gb.wait_total("counters", "decrypted_packets", d0 + 1);

    // Injected on the switch towards gateway B: a replay, a forged sequence number (integrity
    // fails; the window must not move), an unknown SPI. Each dropped and counted.
    let replay = last.frame.clone();
    let mut forged = last.frame.clone();
    forged[last.esp + 4..last.esp + 8].copy_from_slice(&(last.seq + 5000).to_be_bytes());
    let mut unknown = last.frame.clone();
    unknown[last.esp..last.esp + 4].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    let (r0, a0, u0) = (replays(&gb), gb.total("drops", "auth_failed"), gb.total("drops", "unknown_spi"));
    inject(&topo, "sw", "to-gb", &[replay, forged, unknown]);
    gb.wait_total("drops", "auth_failed", a0 + 1);
    gb.wait_total("drops", "unknown_spi", u0 + 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while replays(&gb) < r0 + 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(replays(&gb), r0 + 1, "the replayed packet was not dropped as a replay");
    // The forged packet did not move the window: genuine traffic still passes.
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "3", "-i", "0.2"]).1, 3);

    // Policy changes take effect without a restart.
    let db_a = &scratch.dbs[0];
    policy(db_a, "delete", "10.1.0.0/24", "10.2.0.0/24", "", "", "");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "2", "-i", "0.2"]).1, 0, "still forwarded without a policy");
    rampart(db_a, &["policy", "add", "src", "10.1.0.0/24", "dst", "10.2.0.0/24", "dir", "out", "action", "block"]);
    std::thread::sleep(Duration::from_millis(300));
    let blocked = ga.total("drops", "no_policy");
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "2", "-i", "0.2"]).1, 0, "forwarded through a block policy");
    ga.wait_total("drops", "no_policy", blocked + 2);
    policy(db_a, "delete", "10.1.0.0/24", "10.2.0.0/24", "", "", "");
    policy(db_a, "add", "10.1.0.0/24", "10.2.0.0/24", "192.0.2.1", "192.0.2.2", "1");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "3", "-i", "0.2"]).1, 3, "protect policy back");

    // A protect policy without an SA: counted as no_sa, one acquire per second at most.
    policy(db_a, "add", "10.1.0.0/24", "10.3.0.0/24", "192.0.2.1", "192.0.2.2", "9");
    std::thread::sleep(Duration::from_millis(300));
    let (n0, q0) = (ga.total("drops", "no_sa"), ga.total("counters", "acquires_sent"));
    assert_eq!(topo.ping("ha", "10.3.0.2", &["-c", "3", "-i", "0.1"]).1, 0);
    ga.wait_total("drops", "no_sa", n0 + 3);
    assert_eq!(ga.total("counters", "acquires_sent"), q0 + 1);
    assert!(ga.total("counters", "acquires_rate_limited") >= 2);

    // SIGKILL under traffic, restart: forwarding resumes and no sequence number is reused.
    let cap = Capture::start(&topo, "sw", "to-ga", &scratch.dir.join("restart.pcap"));
    let pinger = {
        let mut c = topo.command("ha", std::path::Path::new("ping"));
        c.args(["-n", "-q", "-i", "0.02", "-c", "150", "10.2.0.2"]).stdout(std::process::Stdio::null());
        c.spawn().unwrap()
    };
    std::thread::sleep(Duration::from_millis(1000));
    ga.kill9();
    std::thread::sleep(Duration::from_millis(200));
    ga.spawn(&topo);
    let mut pinger = pinger;
    let _ = pinger.wait();
    topo.wait_reachable("ha", "10.2.0.2", 10);
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "5", "-i", "0.1"]).1, 5, "forwarding after the restart");
    let frames = esp_frames(&cap.finish());
    let seqs: Vec<u32> = frames.iter().filter(|e| e.spi == SPI_AB4).map(|e| e.seq).collect();
    let distinct: HashSet<u32> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), seqs.len(), "a sequence number was reused across the restart");
    let block = rampart_sadb::SEQ_BLOCK as u32;
    let before = seqs.iter().filter(|s| **s <= block).count();
    let after: Vec<u32> = seqs.iter().copied().filter(|s| *s > block).collect();
    assert!(before > 10 && after.len() > 5, "before {before}, after {}", after.len());
    assert!(seqs.windows(2).all(|w| w[0] < w[1] || w[0] <= block), "sequence numbers went backwards after the restart");
    assert_eq!(replays(&gb), r0 + 1, "gateway B saw replays after the restart");

    // Counters printed per worker every second (--stats-interval), and at exit after a clean
    // shutdown with the programs detached.
    let log = gb.log_text();
    assert!(log.contains("w0/cpu0") && log.contains("decrypted_packets"), "{log}");
    assert!(ga.stop(), "{}", ga.log_text());
    assert!(gb.stop(), "{}", gb.log_text());
    let log = ga.log_text();
    assert!(log.contains("stopped (XDP programs detached"), "{log}");
    assert!(log.contains("encrypted_packets"), "{log}");
    let xdp = topo.sh("ga", &["ip", "link", "show", "wan0"]);
    assert!(!xdp.contains("xdp"), "XDP still attached: {xdp}");
}

#[test]
fn two_queues_two_workers() {
    if !require_root("two_queues_two_workers") {
        return;
    }
    let (topo, scratch, ga, gb) = start_pair(2);
    // Each host sends on tx queue q from CPU q, so that both queues carry traffic.
    for host in ["ha", "hb"] {
        for q in 0..2 {
            let path = format!("/sys/class/net/eth0/queues/tx-{q}/xps_cpus");
            topo.sh(host, &["sh", "-c", &format!("echo {} > {path}", 1 << q)]);
        }
    }
    topo.wait_reachable("ha", "10.2.0.2", 10);
    for cpu in ["0", "1"] {
        let out = topo.exec("ha", &["taskset", "-c", cpu, "ping", "-n", "-q", "-c", "20", "-i", "0.02", "10.2.0.2"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("20 received"), "{out:?}");
    }
    let cap = Capture::start(&topo, "sw", "to-ga", &scratch.dir.join("wan.pcap"));
    let (sent, got) = topo.tcp_transfer("ha", "hb", "10.2.0.2", 5003, 2_000_000);
    assert_eq!(sent, got);
    // Both workers of B check one replay window per SA: a replay is caught whichever queue it
    // arrives on. Replay the last packet each worker of A sent.
    let frames = esp_frames(&cap.finish());
    let of_sa: Vec<&EspFrame> = frames.iter().filter(|e| e.spi == SPI_AB4).collect();
    let mut replayed = Vec::new();
    for e in of_sa.iter().rev().take(64) {
        if replayed.len() < 4 {
            replayed.push(e.frame.clone());
        }
    }
    let r0 = replays(&gb);
    inject(&topo, "sw", "to-gb", &replayed);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while replays(&gb) < r0 + replayed.len() as u64 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(replays(&gb), r0 + replayed.len() as u64, "a replayed packet was accepted");
    for w in 0..2 {
        assert!(ga.worker(w, "counters", "encrypted_packets") > 0, "gateway A worker {w} encrypted nothing");
        assert!(gb.worker(w, "counters", "decrypted_packets") > 0, "gateway B worker {w} decrypted nothing");
    }
}

#[test]
fn lifetimes_expire_sas_and_raise_events() {
    if !require_root("lifetimes_expire_sas_and_raise_events") {
        return;
    }
    let topo = Topology::new(1);
    let scratch = Scratch::new("life");
    // A to B over IPv4: soft at 10 packets, hard at 20. A to B over IPv6: soft after 1 s, hard
    // after 2 s.
    install_tunnels_with(&scratch.dbs[0], &scratch.dbs[1], |spi| match spi {
        SPI_AB4 => &["limit", "packet-soft", "10", "limit", "packet-hard", "20"],
        SPI_AB6 => &["limit", "time-soft", "1", "limit", "time-hard", "2"],
        _ => &[],
    });
    let ga = Gateway::start(&topo, "ga", &scratch.dbs[0], &scratch.dir, 1);
    let _gb = Gateway::start(&topo, "gb", &scratch.dbs[1], &scratch.dir, 1);
    topo.wait_reachable("ha", "10.2.0.2", 10);
    let (_, rx, _) = topo.ping("ha", "10.2.0.2", &["-c", "30", "-i", "0.05"]);
    assert!(rx < 20, "{rx} replies through an SA with a hard limit of 20 packets");
    ga.wait_total("drops", "sa_expired", 30 - 20);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(topo.ping("ha", "fd02::2", &["-c", "2", "-i", "0.2"]).1, 0, "IPv6 SA used past its hard time");

    // The IKE daemon's side of the database got one soft and one hard expiry per SA.
    let mut w = rampart_sadb::Writer::open(&scratch.dbs[0]).unwrap();
    let mut events = Vec::new();
    while let Some(e) = w.pop_event() {
        events.push(e);
    }
    use rampart_sadb::{Event, LimitKind};
    // The packet limits pass one after the other; the time limits may both have passed at the
    // first check (the SA was installed before the data plane started), when only the hard
    // expiry is raised.
    for (spi, limit, soft_expected) in [(SPI_AB4, LimitKind::Packets, 1..=1), (SPI_AB6, LimitKind::Time, 0..=1)] {
        let count = |hard: bool| {
            events
                .iter()
                .filter(|e| match e {
                    Event::SoftExpire { spi: s, limit: l, .. } => !hard && *s == spi && *l == limit,
                    Event::HardExpire { spi: s, limit: l, .. } => hard && *s == spi && *l == limit,
                    _ => false,
                })
                .count()
        };
        assert!(soft_expected.contains(&count(false)), "SPI {spi:#x}: {events:?}");
        assert_eq!(count(true), 1, "SPI {spi:#x}: {events:?}");
    }
    assert!(events.iter().all(|e| matches!(e, Event::SoftExpire { .. } | Event::HardExpire { .. })), "{events:?}");
}
