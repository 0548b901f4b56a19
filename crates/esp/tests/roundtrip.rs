//! Encapsulation and decapsulation by Rampart on both ends, for every suite, mode, family pair,
//! ESN setting, UDP encapsulation and backend pair, at lengths covering every padding remainder.

mod common;

use common::*;
use rampart_esp::{Direction, DropReason, InboundSa, Mode, OutboundSa, PacketBuf, Received, parse_outer};

#[test]
fn every_case_round_trips_across_backends() {
    let mut checked = 0;
    for case in all_cases() {
        for tx_backend in backends(case.suite) {
            for rx_backend in backends(case.suite) {
                let mut tx = OutboundSa::new(&case.config(Direction::Outbound), tx_backend).unwrap();
                let mut rx = InboundSa::new(&case.config(Direction::Inbound), rx_backend).unwrap();
                if case.esn {
                    // Cross the 2^32 boundary on the way.
                    tx.resume_at((1 << 32) - 3);
                }
                for (i, &len) in PAYLOAD_LENS.iter().enumerate() {
                    let inner = inner_packet(&case, len, i as u8);
                    let mut frame = frame_with(&inner);
                    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
                    tx.encapsulate(&mut pkt).unwrap_or_else(|e| panic!("{}: encapsulate: {e:?}", case.name()));
                    let wire = pkt.data().to_vec();
                    check_outer(&case, &wire, &inner);

                    let mut frame = frame_with(&wire);
                    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
                    let out = rx
                        .decapsulate(&mut pkt, 4500)
                        .unwrap_or_else(|e| panic!("{}: decapsulate: {e:?}", case.name()));
                    assert_eq!(pkt.data(), &inner[..], "{}: inner packet differs", case.name());
                    assert_eq!((out.src, out.dst), case.inner_addrs());
                    checked += 1;

                    // The same packet again is a replay and changes nothing.
                    let mut frame = frame_with(&wire);
                    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
                    assert_eq!(rx.decapsulate(&mut pkt, 4500), Err(DropReason::ReplayDuplicate), "{}", case.name());
                }
                assert_eq!(rx.counters().packets, PAYLOAD_LENS.len() as u64);
                if case.esn {
                    assert!(rx.replay_window().top() > 1 << 32, "{}: ESN did not cross 2^32", case.name());
                }
            }
        }
    }
    assert!(checked >= 240 * PAYLOAD_LENS.len(), "only {checked} packets checked");
}

/// The outer headers Rampart wrote are what RFC 4303 / RFC 3948 ask for.
fn check_outer(case: &Case, wire: &[u8], inner: &[u8]) {
    let Received::Ipsec(loc) = parse_outer(wire, 4500).unwrap() else { panic!("{}: not ESP", case.name()) };
    assert_eq!(loc.spi, 0x1000_0001);
    let (src, dst) = case.outer();
    assert_eq!((loc.src, loc.dst), (src, dst), "{}", case.name());
    assert_eq!(loc.udp_ports.is_some(), case.natt);
    let suite = case.suite;
    let esp_len = wire.len() - loc.header_offset;
    let encrypted = esp_len - 8 - suite.iv_len() - suite.icv_len();
    assert_eq!(encrypted % suite.block_len(), 0, "{}: misaligned", case.name());
    let payload = if case.mode == Mode::Tunnel { inner.len() } else { inner.len() - loc.ip_header_len };
    let pad = encrypted - payload - 2;
    assert!(pad < suite.block_len().max(4), "{}: {pad} bytes of padding", case.name());
    if case.outer_v6 && case.natt {
        let udp = rampart_wire::UdpPacket::new_checked(&wire[loc.header_offset - 8..]).unwrap();
        assert_ne!(udp.checksum(), 0, "{}: IPv6 UDP needs a checksum", case.name());
        let addrs = match (src, dst) {
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => rampart_wire::AddrPair::V6 { src: s, dst: d },
            _ => unreachable!(),
        };
        assert!(udp.verify_checksum(&addrs), "{}: bad UDP checksum", case.name());
    }
}

#[test]
fn burst_of_many_packets_keeps_order_and_sequence() {
    let case = Case { suite: gcm128(), mode: Mode::Tunnel, esn: false, natt: false, outer_v6: false, inner_v6: false };
    for backend in backends(case.suite) {
        let mut tx = OutboundSa::new(&case.config(Direction::Outbound), backend).unwrap();
        let mut rx = InboundSa::new(&case.config(Direction::Inbound), backend).unwrap();
        let inners: Vec<Vec<u8>> = (0..150).map(|i| inner_packet(&case, i * 7, i as u8)).collect();
        let mut frames: Vec<Vec<u8>> = inners.iter().map(|p| frame_with(p)).collect();
        let mut pkts: Vec<PacketBuf<'_>> =
            frames.iter_mut().zip(&inners).map(|(f, p)| PacketBuf::new(f, HEADROOM, p.len())).collect();
        let mut verdicts = vec![Err(DropReason::NoSa); pkts.len()];
        tx.encapsulate_burst(&mut pkts, &mut verdicts);
        assert!(verdicts.iter().all(|v| v.is_ok()));
        let wires: Vec<Vec<u8>> = pkts.iter().map(|p| p.data().to_vec()).collect();
        drop(pkts);
        for (i, w) in wires.iter().enumerate() {
            assert_eq!(u32::from_be_bytes(w[24..28].try_into().unwrap()), i as u32 + 1, "sequence numbers in order");
        }
        // Decapsulate as one burst, reversed, with a duplicate inside the burst.
        let mut order: Vec<usize> = (0..wires.len()).rev().collect();
        order.insert(10, order[3]);
        let mut frames: Vec<Vec<u8>> = order.iter().map(|&i| frame_with(&wires[i])).collect();
        let mut locs = Vec::new();
        let mut pkts: Vec<PacketBuf<'_>> = Vec::new();
        for (f, &i) in frames.iter_mut().zip(&order) {
            let Received::Ipsec(loc) = parse_outer(&wires[i], 4500).unwrap() else { panic!() };
            locs.push(loc);
            pkts.push(PacketBuf::new(f, HEADROOM, wires[i].len()));
        }
        let mut verdicts = vec![Err(DropReason::Truncated); pkts.len()];
        rx.decapsulate_burst(&mut pkts, &locs, &mut verdicts);
        for (k, (&i, v)) in order.iter().zip(&verdicts).enumerate() {
            if k == 10 {
                assert_eq!(*v, Err(DropReason::ReplayDuplicate), "duplicate inside the burst");
            } else {
                assert!(v.is_ok(), "packet {i}: {v:?}");
                assert_eq!(pkts[k].data(), &inners[i][..]);
            }
        }
    }
}

#[test]
fn workers_sharing_a_window_never_accept_a_packet_twice() {
    use std::sync::Arc;
    let case = Case { suite: gcm128(), mode: Mode::Tunnel, esn: true, natt: true, outer_v6: false, inner_v6: false };
    let cfg = case.config(Direction::Inbound);
    let window = Arc::new(rampart_esp::ReplayWindow::new(cfg.replay_window, cfg.esn));
    let backend = backends(case.suite)[0];
    let mut worker_a = InboundSa::new_shared(&cfg, backend, Arc::clone(&window)).unwrap();
    let mut worker_b = InboundSa::new_shared(&cfg, backend, Arc::clone(&window)).unwrap();
    let mut tx = OutboundSa::new(&case.config(Direction::Outbound), backend).unwrap();
    for i in 0..20u8 {
        let inner = inner_packet(&case, 50, i);
        let mut frame = frame_with(&inner);
        let mut pkt = PacketBuf::new(&mut frame, HEADROOM, inner.len());
        tx.encapsulate(&mut pkt).unwrap();
        let wire = pkt.data().to_vec();
        let (first, second) = if i % 2 == 0 { (&mut worker_a, &mut worker_b) } else { (&mut worker_b, &mut worker_a) };
        let mut f1 = frame_with(&wire);
        let mut p1 = PacketBuf::new(&mut f1, HEADROOM, wire.len());
        first.decapsulate(&mut p1, 4500).unwrap();
        let mut f2 = frame_with(&wire);
        let mut p2 = PacketBuf::new(&mut f2, HEADROOM, wire.len());
        assert_eq!(second.decapsulate(&mut p2, 4500), Err(DropReason::ReplayDuplicate));
    }
    assert_eq!(window.top(), 20);
    assert_eq!(worker_a.counters().packets + worker_b.counters().packets, 20);
}
