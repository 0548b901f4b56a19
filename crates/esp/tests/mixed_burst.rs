//! Bursts that mix SAs, as the data plane runs them (`rampart_esp::burst`): every packet comes
//! out as it would from a burst of its SA alone, whatever the interleaving, and one packet's
//! fate (a forgery, a replay, a missing SA) never touches its neighbours'.

mod common;

use common::*;
use proptest::prelude::*;
use rampart_crypto::{Backend, Encryption, Integrity, Suite};
use rampart_esp::burst;
use rampart_esp::{
    Decapsulated, Direction, DropReason, InboundSa, IpsecLocation, Mode, OutboundSa, PacketBuf, Prepared, Received,
    parse_outer,
};

/// Three tunnels with different suites (and backends where there are several), SPIs 1, 2, 3.
fn cases() -> Vec<(Case, Backend)> {
    let suites = [
        gcm128(),
        Suite::new(Encryption::ChaCha20Poly1305, Integrity::None).unwrap(),
        Suite::new(Encryption::AesGcm16 { key_bits: 256 }, Integrity::None).unwrap(),
    ];
    suites
        .iter()
        .enumerate()
        .map(|(i, &suite)| {
            let case = Case { suite, mode: Mode::Tunnel, esn: i == 1, natt: i == 2, outer_v6: false, inner_v6: i == 2 };
            let all = backends(suite);
            (case, all[i % all.len()])
        })
        .collect()
}

fn config(case: &Case, i: usize, direction: Direction) -> rampart_esp::SaConfig {
    let mut c = case.config(direction);
    c.spi = i as u32 + 1;
    c
}

fn outbound_table(cases: &[(Case, Backend)]) -> Vec<Option<OutboundSa>> {
    let mut t: Vec<Option<OutboundSa>> = cases
        .iter()
        .enumerate()
        .map(|(i, (c, b))| Some(OutboundSa::new(&config(c, i, Direction::Outbound), *b).unwrap()))
        .collect();
    t.push(None); // slot 3: an SA that went away
    t
}

fn inbound_table(cases: &[(Case, Backend)]) -> Vec<Option<InboundSa>> {
    let mut t: Vec<Option<InboundSa>> = cases
        .iter()
        .enumerate()
        .map(|(i, (c, b))| Some(InboundSa::new(&config(c, i, Direction::Inbound), *b).unwrap()))
        .collect();
    t.push(None);
    t
}

/// Encapsulates `inners` as one mixed burst; the wire bytes (or the drop reason) of each.
fn seal_mixed(
    table: &mut Vec<Option<OutboundSa>>,
    inners: &[Vec<u8>],
    slots: &[u32],
) -> Vec<Result<Vec<u8>, DropReason>> {
    let mut frames: Vec<Vec<u8>> = inners.iter().map(|p| frame_with(p)).collect();
    let mut pkts: Vec<PacketBuf<'_>> =
        frames.iter_mut().zip(inners).map(|(f, p)| PacketBuf::new(f, HEADROOM, p.len())).collect();
    let mut verdicts: Vec<Result<Prepared, DropReason>> = vec![Err(DropReason::NoSa); pkts.len()];
    burst::encapsulate(table, &mut pkts, slots, &mut verdicts);
    pkts.iter().zip(&verdicts).map(|(p, v)| v.map(|_| p.data().to_vec())).collect()
}

/// Decapsulates `wires` as one mixed burst, each on the slot its SPI names.
fn open_mixed(
    table: &mut Vec<Option<InboundSa>>,
    wires: &[Vec<u8>],
) -> Vec<(Result<Decapsulated, DropReason>, Vec<u8>)> {
    let mut frames: Vec<Vec<u8>> = wires.iter().map(|w| frame_with(w)).collect();
    let mut pkts: Vec<PacketBuf<'_>> =
        frames.iter_mut().zip(wires).map(|(f, w)| PacketBuf::new(f, HEADROOM, w.len())).collect();
    let locs: Vec<IpsecLocation> = wires
        .iter()
        .map(|w| match parse_outer(w, 4500) {
            Ok(Received::Ipsec(loc)) => loc,
            other => panic!("not ESP: {other:?}"),
        })
        .collect();
    let slots: Vec<u32> = locs.iter().map(|l| l.spi - 1).collect();
    let mut verdicts = vec![Err(DropReason::Truncated); pkts.len()];
    burst::decapsulate(table, &mut pkts, &slots, &locs, &mut verdicts);
    verdicts.into_iter().zip(pkts.iter().map(|p| p.data().to_vec())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A mixed burst seals each packet exactly as a burst of its own SA does (the AEAD IV is
    /// the sequence number, so the bytes are deterministic), and a mixed inbound burst, in any
    /// order, gives every inner packet back.
    #[test]
    fn mixed_bursts_match_single_sa_bursts(
        picks in proptest::collection::vec((0u32..4, 0usize..1400), 1..150),
        shuffle_seed in any::<u64>(),
    ) {
        let cases = cases();
        let inners: Vec<Vec<u8>> = picks
            .iter()
            .enumerate()
            .map(|(i, &(slot, len))| {
                let case = &cases[(slot as usize).min(2)].0;
                inner_packet(case, len, i as u8)
            })
            .collect();
        let slots: Vec<u32> = picks.iter().map(|p| p.0).collect();
        let mut mixed = outbound_table(&cases);
        let sealed = seal_mixed(&mut mixed, &inners, &slots);

        // Reference: each SA's packets alone, in the same order, on fresh runtimes.
        let mut alone = outbound_table(&cases);
        for (k, (case, _)) in cases.iter().enumerate() {
            let mine: Vec<usize> = (0..inners.len()).filter(|&i| slots[i] == k as u32).collect();
            let own: Vec<Vec<u8>> = mine.iter().map(|&i| inners[i].clone()).collect();
            let reference = seal_mixed(&mut alone, &own, &vec![k as u32; own.len()]);
            for (r, &i) in reference.iter().zip(&mine) {
                prop_assert_eq!(r, &sealed[i], "{}: packet {} differs from its SA's own burst", case.name(), i);
            }
        }
        for (i, s) in sealed.iter().enumerate() {
            if slots[i] == 3 {
                prop_assert_eq!(s, &Err(DropReason::NoSa));
            } else {
                prop_assert!(s.is_ok(), "packet {}: {:?}", i, s);
            }
        }

        // Inbound, shuffled: every packet comes back.
        let mut order: Vec<usize> = (0..inners.len()).filter(|&i| slots[i] != 3).collect();
        let mut x = shuffle_seed | 1;
        for i in (1..order.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            order.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let wires: Vec<Vec<u8>> = order.iter().map(|&i| sealed[i].clone().unwrap()).collect();
        let mut rx = inbound_table(&cases);
        for ((verdict, data), &i) in open_mixed(&mut rx, &wires).iter().zip(&order) {
            prop_assert!(verdict.is_ok(), "packet {}: {:?}", i, verdict);
            prop_assert_eq!(data, &inners[i]);
        }
    }

    /// One forged packet and one replay inside a mixed burst are dropped under their own
    /// reasons; every other packet of the burst, on its SA or another, goes through, and the
    /// forged packet's sequence number is still accepted afterwards (the window did not move).
    #[test]
    fn a_bad_packet_in_a_mixed_burst_harms_no_neighbour(
        picks in proptest::collection::vec(0u32..3, 4..64),
        forged in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        replayed in any::<prop::sample::Index>(),
    ) {
        let cases = cases();
        let inners: Vec<Vec<u8>> =
            picks.iter().enumerate().map(|(i, &s)| inner_packet(&cases[s as usize].0, 40 + i, i as u8)).collect();
        let mut tx = outbound_table(&cases);
        let wires: Vec<Vec<u8>> = seal_mixed(&mut tx, &inners, &picks).into_iter().map(Result::unwrap).collect();
        let f = forged.index(wires.len());
        let r = replayed.index(wires.len());
        prop_assume!(f != r);
        let mut burst = wires.clone();
        let good_copy = burst[f].clone();
        let at = flip.index(burst[f].len() - 28) + 28; // somewhere in the ESP part, past the outer headers
        burst[f][at] ^= 0x01;
        burst.push(wires[r].clone());
        let mut rx = inbound_table(&cases);
        let out = open_mixed(&mut rx, &burst);
        for (i, (verdict, data)) in out.iter().enumerate() {
            if i == f {
                prop_assert!(verdict.is_err(), "forged packet accepted");
            } else if i == burst.len() - 1 {
                prop_assert_eq!(verdict, &Err(DropReason::ReplayDuplicate));
            } else {
                prop_assert!(verdict.is_ok(), "packet {}: {:?}", i, verdict);
                prop_assert_eq!(data, &inners[i]);
            }
        }
        // The genuine packet behind the forgery is still welcome.
        let again = open_mixed(&mut rx, &[good_copy]);
        prop_assert!(again[0].0.is_ok(), "{:?}", again[0].0);
        prop_assert_eq!(&again[0].1, &inners[f]);
    }
}

#[test]
fn unknown_slots_are_refused_in_both_directions() {
    let cases = cases();
    let mut tx = outbound_table(&cases);
    let inner = inner_packet(&cases[0].0, 100, 0);
    let wire = seal_mixed(&mut tx, std::slice::from_ref(&inner), &[0]).remove(0).unwrap();
    let out = seal_mixed(&mut tx, &[inner], &[77]);
    assert_eq!(out[0], Err(DropReason::NoSa));

    let mut rx = inbound_table(&cases);
    let mut frame = frame_with(&wire);
    let mut pkt = PacketBuf::new(&mut frame, HEADROOM, wire.len());
    let Ok(Received::Ipsec(loc)) = parse_outer(&wire, 4500) else { panic!() };
    let mut verdict = [Err(DropReason::Truncated)];
    burst::decapsulate(&mut rx, std::slice::from_mut(&mut pkt), &[3], &[loc], &mut verdict);
    assert_eq!(verdict[0], Err(DropReason::UnknownSpi));
}
