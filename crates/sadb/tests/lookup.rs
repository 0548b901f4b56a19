//! The compiled lookups against simple reference models: inbound SA by (SPI, destination)
//! against a map, the SPD against a linear scan in (priority, index) order. Through the real
//! database at 1, 1,000 and 100,000 SAs and policies, and as property tests on random rule
//! sets with heavy overlap.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use proptest::prelude::*;
use rampart_sa::Suite;
use rampart_sa::{Direction, Lifetimes, Mode, SaConfig};
use rampart_sadb::{
    Capacities, Flow, FlowV4, FlowV6, IpPrefix, Policy, PolicyAction, PolicyDir, PolicyId, PortRange, Reader, SaId,
    SaIndex, Selector, SpdAction, SpdLookup, SpdMatch, SpdRule, Template, Writer,
};
use zeroize::Zeroizing;

fn small_sa(spi: u32, dir: Direction, local: IpAddr, remote: IpAddr) -> SaConfig {
    let suite = Suite::from_swanctl("aes128gcm16").unwrap();
    SaConfig {
        protocol: rampart_sa::Protocol::Esp,
        spi,
        direction: dir,
        suite,
        encryption_key: Zeroizing::new(vec![7; suite.encryption_key_len()]),
        integrity_key: Zeroizing::new(Vec::new()),
        mode: Mode::Tunnel,
        local,
        remote,
        encap: None,
        esn: false,
        replay_window: 1024,
        local_ts: Vec::new(),
        remote_ts: Vec::new(),
        lifetimes: Lifetimes::default(),
    }
}

/// Rules in (priority, index) order, for [`reference_spd`].
fn sorted(rules: &[SpdRule]) -> Vec<SpdRule> {
    let mut v = rules.to_vec();
    v.sort_by_key(|r| (r.policy.priority, r.index));
    v
}

/// The reference SPD: the first policy of `sorted` (in (priority, index) order) whose selector
/// matches.
fn reference_spd(sorted: &[SpdRule], f: &Flow) -> Option<(PolicyId, SpdAction)> {
    sorted.iter().find(|r| r.policy.selector.matches(f.src, f.dst, f.proto, f.sport, f.dport)).map(|r| {
        let action = match r.policy.action {
            PolicyAction::Protect(_) => SpdAction::Protect { sa: r.sa },
            PolicyAction::Bypass => SpdAction::Bypass,
            PolicyAction::Discard => SpdAction::Discard,
        };
        (r.id, action)
    })
}

fn answer(spd: &SpdLookup, m: Option<SpdMatch>) -> Option<(PolicyId, SpdAction)> {
    m.map(|m| (spd.policy(m.rank).unwrap(), m.action))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random address inside `p` (or anywhere of its family for /0).
fn addr_in(p: &IpPrefix, rng: &mut Rng) -> IpAddr {
    match p.addr() {
        IpAddr::V4(a) => {
            let host = if p.len() == 32 { 0 } else { (rng.next() as u32) >> p.len() };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | host))
        }
        IpAddr::V6(a) => {
            let r = (u128::from(rng.next()) << 64) | u128::from(rng.next());
            let host = if p.len() == 128 { 0 } else { r >> p.len() };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) | host))
        }
    }
}

fn random_policy(rng: &mut Rng, outs: &[(IpAddr, IpAddr)]) -> Policy {
    let v6 = rng.below(8) == 0;
    let lens4 = [0u8, 8, 16, 24, 24, 24, 28, 32];
    let pfx = |rng: &mut Rng| {
        let len = lens4[rng.below(lens4.len() as u64) as usize];
        if v6 {
            let a = (0x2001_0db8u128 << 96) | (u128::from(rng.next() as u32 & 0x0000_ffff) << 64);
            IpPrefix::new(IpAddr::V6(a.into()), if len == 0 { 0 } else { len + 24 }).unwrap()
        } else {
            let a = 0x0a00_0000 | (rng.next() as u32 & 0x00ff_ff00);
            IpPrefix::new(IpAddr::V4(a.into()), len).unwrap()
        }
    };
    let src = pfx(rng);
    let dst = pfx(rng);
    let proto = [0u8, 0, 6, 17][rng.below(4) as usize];
    let port = |rng: &mut Rng| {
        if proto != 0 && rng.below(3) == 0 { PortRange::single(1 + rng.below(4) as u16) } else { PortRange::ANY }
    };
    let (sport, dport) = (port(rng), port(rng));
    let (tsrc, tdst) = outs[rng.below(outs.len() as u64) as usize];
    Policy {
        dir: if rng.below(5) == 0 { PolicyDir::In } else { PolicyDir::Out },
        selector: Selector { src, dst, proto, sport, dport },
        priority: rng.below(40) as u32,
        action: match rng.below(4) {
            0 => PolicyAction::Bypass,
            1 => PolicyAction::Discard,
            _ => PolicyAction::Protect(Template {
                protocol: rampart_sa::Protocol::Esp,
                src: tsrc,
                dst: tdst,
                spi: 0,
                mode: Mode::Tunnel,
                reqid: 0,
            }),
        },
    }
}

fn random_flow(rng: &mut Rng, policies: &[Policy]) -> Flow {
    let proto = [0u8, 6, 17, 1][rng.below(4) as usize];
    let port = |rng: &mut Rng| if proto == 6 || proto == 17 { rng.below(6) as u16 } else { 0 };
    if !policies.is_empty() && rng.below(4) != 0 {
        let p = &policies[rng.below(policies.len() as u64) as usize];
        let (src, dst) = (addr_in(&p.selector.src, rng), addr_in(&p.selector.dst, rng));
        Flow { src, dst, proto, sport: port(rng), dport: port(rng) }
    } else {
        let v6 = rng.below(8) == 0;
        let any =
            IpPrefix::new(if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) }, 0)
                .unwrap();
        Flow { src: addr_in(&any, rng), dst: addr_in(&any, rng), proto, sport: port(rng), dport: port(rng) }
    }
}

/// Fills a database with `n` inbound SAs and `n` policies (plus a few outbound SAs to bind),
/// compiles both lookups from a reader's snapshot and checks them against the references.
fn check_database_at(n: usize, queries: usize) {
    let db = TempDb::new(&format!("lookup-{n}"));
    let mut w = Writer::create(db.path(), Capacities::small(n as u32 + 16, n as u32)).unwrap();
    let mut rng = Rng(n as u64);
    let locals: [IpAddr; 3] =
        ["192.0.2.1".parse().unwrap(), "192.0.2.9".parse().unwrap(), "2001:db8::1".parse().unwrap()];
    let peer: IpAddr = "198.51.100.1".parse().unwrap();
    let peer6: IpAddr = "2001:db8::2".parse().unwrap();
    // Inbound SAs with random SPIs; a few SPIs repeat under another destination.
    let mut inbound: HashMap<(u32, IpAddr), SaId> = HashMap::new();
    let mut spis = Vec::new();
    while inbound.len() < n {
        let local = locals[rng.below(3) as usize];
        let spi = if !spis.is_empty() && rng.below(10) == 0 {
            spis[rng.below(spis.len() as u64) as usize]
        } else {
            0x100 + rng.next() as u32 % 0xffff_0000
        };
        if inbound.contains_key(&(spi, local)) {
            continue;
        }
        let remote = if local.is_ipv6() { peer6 } else { peer };
        let id = w.install_sa(&small_sa(spi, Direction::Inbound, local, remote), 0, 0).unwrap();
        inbound.insert((spi, local), id);
        spis.push(spi);
    }
    // Outbound SAs for protect policies; one is deleted again, leaving dangling bindings.
    let outs: Vec<(IpAddr, IpAddr)> = vec![(locals[0], peer), (locals[1], peer), (locals[2], peer6)];
    let mut out_ids = Vec::new();
    for (k, (l, r)) in outs.iter().enumerate() {
        out_ids.push(w.install_sa(&small_sa(0x10 + k as u32, Direction::Outbound, *l, *r), 0, 0).unwrap());
    }
    let mut policies = Vec::new();
    for _ in 0..n {
        let p = random_policy(&mut rng, &outs);
        let sa = match p.action {
            PolicyAction::Protect(t) => {
                out_ids.iter().copied().find(|id| w.sa(*id).is_some_and(|m| m.local == t.src && m.remote == t.dst))
            }
            _ => None,
        };
        // Some protect policies stay unbound.
        let sa = if rng.below(5) == 0 { None } else { sa };
        w.add_policy(&p, sa).unwrap();
        policies.push(p);
    }
    w.delete_sa(out_ids[1]).unwrap();

    let r = Reader::attach(db.path()).unwrap();
    let snap = r.snapshot();
    assert_eq!(snap.sas().filter(|m| m.direction == Direction::Inbound).count(), n);
    assert_eq!(snap.policies().count(), n);

    // Inbound: every installed key, wrong destinations and unknown SPIs.
    let idx = SaIndex::build(&snap);
    assert_eq!(idx.len(), n);
    for (&(spi, dst), &id) in &inbound {
        assert_eq!(idx.lookup(spi, dst), Some(id));
    }
    let mut keys = Vec::new();
    for _ in 0..queries {
        let spi = if rng.below(2) == 0 { spis[rng.below(spis.len() as u64) as usize] } else { rng.next() as u32 };
        let dst = if rng.below(8) == 0 { "203.0.113.1".parse().unwrap() } else { locals[rng.below(3) as usize] };
        assert_eq!(idx.lookup(spi, dst), inbound.get(&(spi, dst)).copied(), "spi {spi:#x} dst {dst}");
        keys.push((spi, dst));
    }
    let mut out = vec![None; keys.len()];
    idx.lookup_burst(&keys, &mut out);
    for (k, o) in keys.iter().zip(&out) {
        assert_eq!(*o, inbound.get(k).copied());
    }

    // SPD, both directions, against the linear scan over the snapshot's own view.
    for dir in [PolicyDir::Out, PolicyDir::In] {
        let rules: Vec<SpdRule> = snap
            .policies()
            .filter(|p| p.policy.dir == dir)
            .map(|p| SpdRule {
                id: p.id,
                index: p.index,
                policy: p.policy,
                sa: p.sa.filter(|id| snap.sa_id(*id).is_some()).map(|id| id.slot),
            })
            .collect();
        let spd = SpdLookup::build(&snap, dir);
        assert_eq!(spd.len(), rules.len());
        let rules = sorted(&rules);
        let mut flows4 = Vec::new();
        let mut want4 = Vec::new();
        let mut hits = 0;
        for _ in 0..queries {
            let f = random_flow(&mut rng, &policies);
            let want = reference_spd(&rules, &f);
            hits += want.is_some() as usize;
            assert_eq!(answer(&spd, spd.lookup(&f)), want, "{dir} flow {f:?}");
            if let (IpAddr::V4(s), IpAddr::V4(d)) = (f.src, f.dst) {
                flows4.push(FlowV4 { src: s.into(), dst: d.into(), proto: f.proto, sport: f.sport, dport: f.dport });
                want4.push(want);
            }
        }
        assert!(n < 10 || hits > queries / 4, "queries should mostly hit policies ({hits} of {queries})");
        let mut out = vec![None; flows4.len()];
        spd.lookup_burst_v4(&flows4, &mut out);
        for (o, w) in out.iter().zip(&want4) {
            assert_eq!(answer(&spd, *o), *w);
        }
    }
}

#[test]
fn lookups_match_the_references_at_1() {
    check_database_at(1, 2000);
}

#[test]
fn lookups_match_the_references_at_1000() {
    check_database_at(1000, 5000);
}

#[test]
fn lookups_match_the_references_at_100000() {
    check_database_at(100_000, 3000);
}

fn arb_prefix4() -> impl Strategy<Value = IpPrefix> {
    // A small address space so that rules overlap a lot.
    (0u32..16, 0u8..=32).prop_map(|(a, len)| {
        IpPrefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (a << 20) | (a << 4))), len).unwrap()
    })
}

fn arb_prefix6() -> impl Strategy<Value = IpPrefix> {
    (0u128..16, 0u8..=128).prop_map(|(a, len)| {
        IpPrefix::new(IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) | (a << 100) | (a << 60) | a)), len).unwrap()
    })
}

fn arb_ports() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        Just(PortRange::ANY),
        (0u16..4).prop_map(PortRange::single),
        (0u16..3, 0u16..3).prop_map(|(a, b)| PortRange { lo: a, hi: a + b })
    ]
}

fn arb_rule(v6: bool) -> impl Strategy<Value = (Selector, u32, u8)> {
    let pfx = move || if v6 { arb_prefix6().boxed() } else { arb_prefix4().boxed() };
    (pfx(), pfx(), prop_oneof![Just(0u8), Just(6u8), Just(17u8)], arb_ports(), arb_ports(), 0u32..6, 0u8..3).prop_map(
        |(src, dst, proto, sport, dport, priority, action)| {
            let (sport, dport) = if proto == 0 { (PortRange::ANY, PortRange::ANY) } else { (sport, dport) };
            (Selector { src, dst, proto, sport, dport }, priority, action)
        },
    )
}

fn to_rules(raw: Vec<(Selector, u32, u8)>) -> Vec<SpdRule> {
    let tmpl = Template {
        protocol: rampart_sa::Protocol::Esp,
        src: "192.0.2.1".parse().unwrap(),
        dst: "192.0.2.2".parse().unwrap(),
        spi: 0,
        mode: Mode::Tunnel,
        reqid: 0,
    };
    raw.into_iter()
        .enumerate()
        .map(|(i, (selector, priority, a))| SpdRule {
            id: PolicyId { slot: i as u32, incarnation: 1 },
            // Indices out of slot order, as after deletes and reuse.
            index: (i as u64 * 7919) % 1009,
            policy: Policy {
                dir: PolicyDir::Out,
                selector,
                priority,
                action: match a {
                    0 => PolicyAction::Bypass,
                    1 => PolicyAction::Discard,
                    _ => PolicyAction::Protect(tmpl),
                },
            },
            sa: (a == 2 && i % 3 != 0).then_some(i as u32 + 100),
        })
        .collect()
}

fn flow_near(rules: &[SpdRule], pick: usize, bits: u128, proto: u8, sport: u16, dport: u16, v6: bool) -> Flow {
    let mut rng = Rng(bits as u64 ^ (bits >> 64) as u64);
    let (src, dst) = if rules.is_empty() || pick.is_multiple_of(5) {
        if v6 {
            (IpAddr::V6(Ipv6Addr::from(bits)), IpAddr::V6(Ipv6Addr::from(bits.rotate_left(64))))
        } else {
            (IpAddr::V4(Ipv4Addr::from(bits as u32)), IpAddr::V4(Ipv4Addr::from((bits >> 32) as u32)))
        }
    } else {
        let r = &rules[pick % rules.len()];
        (addr_in(&r.policy.selector.src, &mut rng), addr_in(&r.policy.selector.dst, &mut rng))
    };
    Flow { src, dst, proto, sport, dport }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn spd_v4_equals_linear_scan(
        raw in proptest::collection::vec(arb_rule(false), 0..40),
        probes in proptest::collection::vec((any::<usize>(), any::<u128>(), prop_oneof![Just(6u8), Just(17u8), Just(1u8)], 0u16..5, 0u16..5), 1..60),
    ) {
        let rules = to_rules(raw);
        let spd = SpdLookup::from_rules(rules.clone());
        let rules = sorted(&rules);
        let mut flows = Vec::new();
        let mut wants = Vec::new();
        for (pick, bits, proto, sport, dport) in probes {
            let f = flow_near(&rules, pick, bits, proto, sport, dport, false);
            let want = reference_spd(&rules, &f);
            prop_assert_eq!(answer(&spd, spd.lookup(&f)), want);
            if let (IpAddr::V4(s), IpAddr::V4(d)) = (f.src, f.dst) {
                flows.push(FlowV4 { src: s.into(), dst: d.into(), proto, sport, dport });
                wants.push(want);
            }
        }
        let mut out = vec![None; flows.len()];
        spd.lookup_burst_v4(&flows, &mut out);
        for (o, w) in out.iter().zip(&wants) {
            prop_assert_eq!(answer(&spd, *o), *w);
        }
    }

    #[test]
    fn spd_v6_equals_linear_scan(
        raw in proptest::collection::vec(arb_rule(true), 0..40),
        probes in proptest::collection::vec((any::<usize>(), any::<u128>(), prop_oneof![Just(6u8), Just(17u8)], 0u16..5, 0u16..5), 1..60),
    ) {
        let rules = to_rules(raw);
        let spd = SpdLookup::from_rules(rules.clone());
        let rules = sorted(&rules);
        let mut flows = Vec::new();
        let mut wants = Vec::new();
        for (pick, bits, proto, sport, dport) in probes {
            let f = flow_near(&rules, pick, bits, proto, sport, dport, true);
            let want = reference_spd(&rules, &f);
            prop_assert_eq!(answer(&spd, spd.lookup(&f)), want);
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (f.src, f.dst) {
                flows.push(FlowV6 { src: s.into(), dst: d.into(), proto, sport, dport });
                wants.push(want);
            }
        }
        let mut out = vec![None; flows.len()];
        spd.lookup_burst_v6(&flows, &mut out);
        for (o, w) in out.iter().zip(&wants) {
            prop_assert_eq!(answer(&spd, *o), *w);
        }
    }

    #[test]
    fn sa_index_equals_a_map(
        entries in proptest::collection::vec((0u32..64, 0usize..3, 0u32..1000), 0..200),
        probes in proptest::collection::vec((0u32..70, 0usize..4), 1..100),
    ) {
        let dsts: [IpAddr; 4] = ["192.0.2.1".parse().unwrap(), "2001:db8::1".parse().unwrap(), "192.0.2.2".parse().unwrap(), "10.9.9.9".parse().unwrap()];
        let mut model: HashMap<(u32, IpAddr), SaId> = HashMap::new();
        let mut items = Vec::new();
        for (spi, d, slot) in entries {
            let id = SaId { slot, incarnation: 1 };
            model.entry((spi, dsts[d])).or_insert(id);
            items.push((spi, dsts[d], id));
        }
        let idx = SaIndex::from_entries(items);
        prop_assert_eq!(idx.len(), model.len());
        let keys: Vec<(u32, IpAddr)> = probes.iter().map(|(s, d)| (*s, dsts[*d])).collect();
        let mut out = vec![None; keys.len()];
        idx.lookup_burst(&keys, &mut out);
        for (k, o) in keys.iter().zip(&out) {
            prop_assert_eq!(idx.lookup(k.0, k.1), model.get(k).copied());
            prop_assert_eq!(*o, model.get(k).copied());
        }
    }

    #[test]
    fn sequence_sources_never_overlap_across_restarts(
        ops in proptest::collection::vec((0usize..3, 1u32..3000, any::<bool>()), 1..200),
    ) {
        let db = TempDb::new("prop-seq");
        let mut w = Writer::create(db.path(), Capacities { sas: 1, policies: 1, events: 16, journal: 16 }).unwrap();
        let id = w.install_sa(&small_sa(1, Direction::Outbound, "192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap()), 0, 0).unwrap();
        let r = Reader::attach(db.path()).unwrap();
        let mut sources: Vec<_> = (0..3).map(|_| r.outbound_seq(id, 1, false)).collect();
        let mut last = [0u64; 3];
        let mut used: Vec<(u64, u64)> = Vec::new();
        for (k, n, restart) in ops {
            if restart {
                sources[k] = r.outbound_seq(id, 1, false);
            }
            let first = sources[k].reserve(n).unwrap();
            prop_assert!(first > last[k] || restart);
            last[k] = first + u64::from(n) - 1;
            used.push((first, last[k]));
        }
        used.sort();
        for p in used.windows(2) {
            prop_assert!(p[0].1 < p[1].0, "ranges {:?} and {:?} overlap", p[0], p[1]);
        }
        prop_assert!(w.usage(id).unwrap().seq_reserved >= used.last().unwrap().1);
    }
}

#[test]
fn equal_priorities_go_to_the_older_policy() {
    // Equal priorities: the older policy (lower index) wins, whatever the slot order.
    let sel = Selector {
        src: IpPrefix::new("10.0.0.0".parse().unwrap(), 8).unwrap(),
        dst: IpPrefix::any(false),
        proto: 0,
        sport: PortRange::ANY,
        dport: PortRange::ANY,
    };
    let mk = |slot: u32, index: u64, action| SpdRule {
        id: PolicyId { slot, incarnation: 1 },
        index,
        policy: Policy { dir: PolicyDir::Out, selector: sel, priority: 5, action },
        sa: None,
    };
    let spd = SpdLookup::from_rules([mk(0, 9, PolicyAction::Discard), mk(1, 3, PolicyAction::Bypass)]);
    let m = spd.lookup(&Flow {
        src: "10.1.1.1".parse().unwrap(),
        dst: "1.1.1.1".parse().unwrap(),
        proto: 6,
        sport: 1,
        dport: 2,
    });
    assert_eq!(answer(&spd, m), Some((PolicyId { slot: 1, incarnation: 1 }, SpdAction::Bypass)));
}
