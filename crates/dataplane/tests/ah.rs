//! AH through two Rampart data planes, as root, in namespaces this test creates and removes:
//! static AH SAs (`rampart sa add ... proto ah`) and `tmpl ... proto ah` policies, ping and TCP
//! over IPv4 and IPv6, the AH on the wire verified by scapy, forged, replayed and truncated AH
//! injected towards gateway B and counted under their reasons, the ICMP answer to a packet too
//! big after AH, and a tunnel of each protocol side by side.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::*;

const SPI_AH_AB4: u32 = 0x5001;
const SPI_AH_BA4: u32 = 0x6001;
const SPI_AH_AB6: u32 = 0x5002;
const SPI_AH_BA6: u32 = 0x6002;

/// HMAC-SHA-256 keys (32 bytes), one per SPI.
fn ah_key(spi: u32) -> String {
    format!("0x{}", format!("{:02x}", (spi as u8) ^ 0x5a).repeat(32))
}

fn ah_sa(db: &Path, src: &str, dst: &str, spi: u32, dir: &str, sel: (&str, &str), reqid: &str) {
    let spi_text = format!("{spi:#x}");
    let key = ah_key(spi);
    rampart(
        db,
        &[
            "sa",
            "add",
            "src",
            src,
            "dst",
            dst,
            "proto",
            "ah",
            "spi",
            &spi_text,
            "dir",
            dir,
            "mode",
            "tunnel",
            "reqid",
            reqid,
            "auth-trunc",
            "hmac(sha256)",
            &key,
            "128",
            "sel",
            "src",
            sel.0,
            "dst",
            sel.1,
        ],
    );
}

fn ah_policy(db: &Path, src: &str, dst: &str, tsrc: &str, tdst: &str, reqid: &str) {
    rampart(
        db,
        &[
            "policy", "add", "src", src, "dst", dst, "dir", "out", "tmpl", "src", tsrc, "dst", tdst, "proto", "ah",
            "reqid", reqid, "mode", "tunnel",
        ],
    );
}

fn install_ah(a: &Path, b: &Path) {
    let v4 = [("192.0.2.1", "192.0.2.2"), ("10.1.0.0/24", "10.2.0.0/24")];
    let v6 = [("2001:db8::1", "2001:db8::2"), ("fd01::/64", "fd02::/64")];
    for (outer, inner, ab, ba, reqid) in
        [(v4[0], v4[1], SPI_AH_AB4, SPI_AH_BA4, "1"), (v6[0], v6[1], SPI_AH_AB6, SPI_AH_BA6, "2")]
    {
        let (ga, gb) = outer;
        let (na, nb) = inner;
        ah_sa(a, ga, gb, ab, "out", (na, nb), reqid);
        ah_sa(a, gb, ga, ba, "in", (nb, na), reqid);
        ah_sa(b, ga, gb, ab, "in", (na, nb), reqid);
        ah_sa(b, gb, ga, ba, "out", (nb, na), reqid);
        ah_policy(a, na, nb, ga, gb, reqid);
        ah_policy(b, nb, na, gb, ga, reqid);
    }
}

#[test]
fn ah_tunnels_end_to_end() {
    if !require_root("ah_tunnels_end_to_end") {
        return;
    }
    let topo = Topology::new(1);
    let scratch = Scratch::new("ah");
    install_ah(&scratch.dbs[0], &scratch.dbs[1]);
    let ga = Gateway::start(&topo, "ga", &scratch.dbs[0], &scratch.dir, 1);
    let gb = Gateway::start(&topo, "gb", &scratch.dbs[1], &scratch.dir, 1);
    let cap = Capture::start(&topo, "sw", "to-ga", &scratch.dir.join("ah.pcap"));

    topo.wait_reachable("ha", "10.2.0.2", 10);
    topo.wait_reachable("ha", "fd02::2", 10);
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "5", "-i", "0.2"]).1, 5);
    assert_eq!(topo.ping("ha", "fd02::2", &["-c", "5", "-i", "0.2"]).1, 5);
    let (sent, got) = topo.tcp_transfer("ha", "hb", "10.2.0.2", 5101, 1_000_000);
    assert_eq!(sent, got, "TCP over IPv4 through AH");
    let (sent, got) = topo.tcp_transfer("hb", "ha", "fd01::2", 5102, 500_000);
    assert_eq!(sent, got, "TCP over IPv6 through AH, B to A");
    ga.wait_total("counters", "encrypted_packets", 500);
    gb.wait_total("counters", "decrypted_packets", 500);

    // Too big after AH (the 28-byte header, 20 of IPv4): fragmentation needed, from gateway A.
    let (_, rx, out) = topo.ping("ha", "10.2.0.2", &["-c", "1", "-M", "do", "-s", "1460"]);
    assert_eq!(rx, 0);
    assert!(out.contains("Frag needed") || out.contains("mtu"), "{out}");
    ga.wait_total("drops", "too_big", 1);

    // scapy verifies what went over the wire, every SA, and the inner packets are readable.
    let frames = ah_frames(&cap.finish());
    let mut oracle = Oracle::start();
    for (spi, outer_src, inner_src, inner_dst) in [
        (SPI_AH_AB4, "192.0.2.1", "10.1.0.2", "10.2.0.2"),
        (SPI_AH_BA4, "192.0.2.2", "10.2.0.2", "10.1.0.2"),
        (SPI_AH_AB6, "2001:db8::1", "fd01::2", "fd02::2"),
        (SPI_AH_BA6, "2001:db8::2", "fd02::2", "fd01::2"),
    ] {
        let of_sa: Vec<&EspFrame> = frames.iter().filter(|e| e.spi == spi).collect();
        assert!(of_sa.len() >= 5, "only {} AH packets of SPI {spi:#x} captured", of_sa.len());
        for e in of_sa.iter().step_by((of_sa.len() / 30).max(1)) {
            assert_eq!(e.src, outer_src);
            let inner = oracle
                .verify_ah("SHA2-256-128", &ah_key(spi), e)
                .unwrap_or_else(|err| panic!("SPI {spi:#x} seq {}: scapy refused Rampart's AH: {err}", e.seq));
            let (s, d) = if inner[0] >> 4 == 4 {
                (
                    std::net::Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]).to_string(),
                    std::net::Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]).to_string(),
                )
            } else {
                (
                    std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&inner[8..24]).unwrap()).to_string(),
                    std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&inner[24..40]).unwrap()).to_string(),
                )
            };
            assert_eq!((s.as_str(), d.as_str()), (inner_src, inner_dst));
        }
        let seqs: HashSet<u32> = of_sa.iter().map(|e| e.seq).collect();
        assert_eq!(seqs.len(), of_sa.len(), "SPI {spi:#x}: a sequence number was sent twice");
    }

    // Injected towards gateway B: a replay, a forgery (a sequence number ahead of the window and
    // a payload byte flipped, so that it is the ICV that refuses it), a truncated header, an
    // unknown SPI.
    let last = frames.iter().rev().find(|e| e.spi == SPI_AH_AB4).unwrap().clone();
    let replay = last.frame.clone();
    let mut forged = last.frame.clone();
    forged[last.esp + 8..last.esp + 12].copy_from_slice(&(last.seq + 1000).to_be_bytes());
    let n = forged.len();
    forged[n - 3] ^= 0x20;
    let mut unknown = last.frame.clone();
    unknown[last.esp + 4..last.esp + 8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    let mut short = last.frame.clone();
    short[last.esp + 1] = 3; // a header of 20 bytes: too short for HMAC-SHA-256-128
    let before = |name: &str| gb.total("drops", name);
    let (icv0, unk0, len0) = (before("ah_bad_icv"), before("unknown_spi"), before("ah_bad_length"));
    let rep0 = before("replay_duplicate") + before("replay_too_old");
    inject(&topo, "sw", "to-gb", &[replay, forged, unknown, short]);
    gb.wait_total("drops", "ah_bad_icv", icv0 + 1);
    gb.wait_total("drops", "unknown_spi", unk0 + 1);
    gb.wait_total("drops", "ah_bad_length", len0 + 1);
    let rep = gb.total("drops", "replay_duplicate") + gb.total("drops", "replay_too_old");
    assert_eq!(rep, rep0 + 1, "the replay was not counted as one");
    // The forgery did not move the window: traffic still passes.
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "3", "-i", "0.2"]).1, 3);
}
