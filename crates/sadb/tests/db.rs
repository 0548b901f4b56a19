//! Functional tests of the SA database through its public API, on real files in /dev/shm:
//! install/read/delete, the SPI index, layout refusal, the writer lock, make-before-break,
//! snapshot refresh from the journal, usage and lifetimes, sequence reservation, events.

mod common;

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;

use common::*;
use rampart_sa::{Direction, Lifetimes, Mode};
use rampart_sadb::{
    Capacities, Event, Expiry, Flow, IpPrefix, LimitKind, OpenError, Policy, PolicyAction, PolicyDir, PortRange,
    ReadError, Reader, SaIndex, Selector, SeqError, SpdAction, SpdLookup, Template, WriteError, Writer,
};

fn caps(sas: u32, policies: u32) -> Capacities {
    Capacities::small(sas, policies)
}

#[test]
fn installed_sas_read_back_exactly_and_deleted_ones_are_gone() {
    let db = TempDb::new("roundtrip");
    let mut w = Writer::create(db.path(), caps(64, 8)).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let mut ids = Vec::new();
    for seed in 0..40 {
        let cfg = seeded_sa(seed);
        let (reqid, t) = seeded_extra(seed);
        ids.push((seed, w.install_sa(&cfg, reqid, t).unwrap()));
    }
    for &(seed, id) in &ids {
        let rec = r.read_sa_id(id).unwrap();
        check_seeded(&rec).unwrap();
        assert_eq!(rec.id(), id);
        let cfg = seeded_sa(seed);
        let dst = if cfg.direction == Direction::Inbound { cfg.local } else { cfg.remote };
        assert_eq!(r.find_sa(cfg.spi, dst).map(|r| r.id()), Some(id));
        assert!(r.find_sa(cfg.spi, "192.0.2.99".parse().unwrap()).is_none());
    }
    let g = r.generation();
    let (seed, victim) = ids[7];
    w.delete_sa(victim).unwrap();
    assert!(r.generation() > g);
    assert_eq!(r.read_sa(victim.slot).unwrap_err(), ReadError::Free);
    let cfg = seeded_sa(seed);
    let dst = if cfg.direction == Direction::Inbound { cfg.local } else { cfg.remote };
    assert!(r.find_sa(cfg.spi, dst).is_none());
    assert_eq!(w.delete_sa(victim), Err(WriteError::NoSuchSa));
    // The slot's bytes hold no key any more.
    let raw = std::fs::read(db.path()).unwrap();
    let key = &*cfg.encryption_key;
    if key.len() >= 16 {
        assert!(!raw.windows(key.len()).any(|w| w == key), "deleted SA's key still in the file");
    }
    assert_eq!(w.flush_sas(), 39);
    assert_eq!(r.snapshot().sas().count(), 0);
}

#[test]
fn duplicate_spi_and_full_database_are_refused_without_change() {
    let db = TempDb::new("refuse");
    let mut w = Writer::create(db.path(), caps(3, 1)).unwrap();
    let a = seeded_sa(1);
    w.install_sa(&a, 0, 0).unwrap();
    let g = w.generation();
    assert!(matches!(w.install_sa(&a, 0, 0), Err(WriteError::SpiInUse { .. })));
    assert_eq!(w.generation(), g);
    w.install_sa(&seeded_sa(2), 0, 0).unwrap();
    w.install_sa(&seeded_sa(3), 0, 0).unwrap();
    assert_eq!(w.install_sa(&seeded_sa(4), 0, 0), Err(WriteError::Full { what: "SA", capacity: 3 }));
    let p = seeded_policy(1);
    w.add_policy(&p, None).unwrap();
    assert!(matches!(w.add_policy(&p, None), Err(WriteError::Full { what: "policy", .. })));
}

#[test]
fn a_file_of_another_layout_is_refused_naming_what_differs() {
    let db = TempDb::new("layout");
    drop(Writer::create(db.path(), caps(4, 4)).unwrap());
    let f = std::fs::OpenOptions::new().write(true).open(db.path()).unwrap();
    // Layout version (offset 8).
    f.write_all_at(&7u32.to_ne_bytes(), 8).unwrap();
    let e = Reader::attach(db.path()).unwrap_err();
    assert!(matches!(e, OpenError::Layout { .. }), "{e}");
    let want = format!("layout version is 7 in the file but {} in this build", rampart_sadb::LAYOUT_VERSION);
    assert!(e.to_string().contains(&want), "{e}");
    assert!(matches!(Writer::open(db.path()), Err(OpenError::Layout { .. })));
    f.write_all_at(&rampart_sadb::LAYOUT_VERSION.to_ne_bytes(), 8).unwrap();
    Reader::attach(db.path()).unwrap();
    // SA record size (offset 16).
    f.write_all_at(&512u32.to_ne_bytes(), 16).unwrap();
    let e = Reader::attach(db.path()).unwrap_err();
    assert!(e.to_string().contains("SA record size is 512 in the file but 1024"), "{e}");
    f.write_all_at(&1024u32.to_ne_bytes(), 16).unwrap();
    // Magic.
    f.write_all_at(b"X", 0).unwrap();
    let e = Reader::attach(db.path()).unwrap_err();
    assert!(e.to_string().contains("not a Rampart SA database"), "{e}");
    // Not a database at all.
    let other = TempDb::new("short");
    std::fs::write(other.path(), b"hello").unwrap();
    assert!(Reader::attach(other.path()).is_err());
    assert!(matches!(Reader::attach("/dev/shm/rampart-sadb-no-such-file"), Err(OpenError::NotFound { .. })));
}

#[test]
fn one_writer_at_a_time_readers_any_time() {
    let db = TempDb::new("lock");
    let w = Writer::create(db.path(), caps(4, 4)).unwrap();
    let e = Writer::open(db.path()).unwrap_err();
    assert!(matches!(e, OpenError::WriterBusy { pid, .. } if pid == u64::from(std::process::id())), "{e}");
    Reader::attach(db.path()).unwrap();
    assert!(Writer::create(db.path(), caps(4, 4)).is_err(), "create must not clobber a file");
    drop(w);
    Writer::open(db.path()).unwrap();
    Writer::open_or_create(db.path(), caps(9, 9)).unwrap();
}

fn out_sa(spi: u32) -> rampart_sa::SaConfig {
    let mut c = seeded_sa(u64::from(spi));
    c.spi = spi;
    c.direction = Direction::Outbound;
    c.mode = Mode::Tunnel;
    c.local = "192.0.2.1".parse().unwrap();
    c.remote = "192.0.2.2".parse().unwrap();
    c
}

fn in_sa(spi: u32) -> rampart_sa::SaConfig {
    let mut c = out_sa(spi);
    c.direction = Direction::Inbound;
    c.local = "192.0.2.1".parse().unwrap();
    c.remote = "192.0.2.2".parse().unwrap();
    c
}

fn prefix(s: &str) -> IpPrefix {
    let (a, l) = s.split_once('/').unwrap();
    IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
}

fn tunnel_policy() -> Policy {
    Policy {
        dir: PolicyDir::Out,
        selector: Selector {
            src: prefix("198.18.1.0/24"),
            dst: prefix("198.18.2.0/24"),
            proto: 0,
            sport: PortRange::ANY,
            dport: PortRange::ANY,
        },
        priority: 100,
        action: PolicyAction::Protect(Template {
            protocol: rampart_sa::Protocol::Esp,
            src: "192.0.2.1".parse().unwrap(),
            dst: "192.0.2.2".parse().unwrap(),
            spi: 0,
            mode: Mode::Tunnel,
            reqid: 0,
        }),
    }
}

fn flow(src: &str, dst: &str) -> Flow {
    Flow { src: src.parse().unwrap(), dst: dst.parse().unwrap(), proto: 6, sport: 1000, dport: 80 }
}

#[test]
fn make_before_break_rekey() {
    let db = TempDb::new("mbb");
    let mut w = Writer::create(db.path(), caps(16, 4)).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let pol = w.add_policy(&tunnel_policy(), None).unwrap();
    let f = flow("198.18.1.5", "198.18.2.7");

    // No SA yet: protect with no SA (the data plane raises an acquire).
    let mut snap = r.snapshot();
    let spd = SpdLookup::build(&snap, PolicyDir::Out);
    let m = spd.lookup(&f).unwrap();
    assert_eq!(m.action, SpdAction::Protect { sa: None });
    assert_eq!(spd.policy(m.rank), Some(pol));

    let in1 = w.install_sa(&in_sa(0x100), 1, 10).unwrap();
    let out1 = w.install_sa(&out_sa(0x200), 1, 10).unwrap();
    assert_eq!(w.bind_matching_policies(out1).unwrap(), 1);
    r.refresh(&mut snap);
    let spd = SpdLookup::build(&snap, PolicyDir::Out);
    assert_eq!(spd.lookup(&f).unwrap().action, SpdAction::Protect { sa: Some(out1.slot) });

    // Rekey: the new inbound SA first (both live), then the new outbound SA and the switch.
    let in2 = w.install_sa(&in_sa(0x101), 1, 20).unwrap();
    let idx = SaIndex::build(&{
        r.refresh(&mut snap);
        snap.clone()
    });
    let local: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(idx.lookup(0x100, local), Some(in1));
    assert_eq!(idx.lookup(0x101, local), Some(in2));
    let out2 = w.install_sa(&out_sa(0x201), 1, 20).unwrap();
    r.refresh(&mut snap);
    let g = r.generation();
    w.set_policy_sa(pol, Some(out2)).unwrap();
    assert_eq!(r.generation(), g + 1, "the switch is one committed update");
    let changes = r.refresh(&mut snap);
    assert_eq!(changes.policies, vec![pol.slot]);
    assert!(changes.sas.is_empty() && !changes.full_rescan);
    let spd = SpdLookup::build(&snap, PolicyDir::Out);
    assert_eq!(spd.lookup(&f).unwrap().action, SpdAction::Protect { sa: Some(out2.slot) });
    // The old SAs go; the policy keeps the new one.
    w.delete_sa(out1).unwrap();
    w.delete_sa(in1).unwrap();
    r.refresh(&mut snap);
    let spd = SpdLookup::build(&snap, PolicyDir::Out);
    assert_eq!(spd.lookup(&f).unwrap().action, SpdAction::Protect { sa: Some(out2.slot) });
    let idx = SaIndex::build(&snap);
    assert_eq!(idx.lookup(0x100, local), None);
    assert_eq!(idx.lookup(0x101, local), Some(in2));
    // Deleting the bound SA unbinds the policy.
    w.delete_sa(out2).unwrap();
    assert_eq!(w.policy(pol).unwrap().sa, None);
    // An inbound SA cannot serve a policy.
    assert_eq!(w.set_policy_sa(pol, Some(in2)), Err(WriteError::NotOutbound { spi: 0x101 }));
}

#[test]
fn refresh_reads_only_what_changed_and_rescans_when_far_behind() {
    let db = TempDb::new("journal");
    let mut w = Writer::create(db.path(), Capacities { sas: 64, policies: 64, events: 16, journal: 16 }).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let ids: Vec<_> = (0..10).map(|s| w.install_sa(&seeded_sa(s), 0, 0).unwrap()).collect();
    let mut snap = r.snapshot();
    assert_eq!(snap.sas().count(), 10);
    assert!(r.refresh(&mut snap).is_empty());
    w.delete_sa(ids[3]).unwrap();
    let p = w.add_policy(&seeded_policy(5), None).unwrap();
    let c = r.refresh(&mut snap);
    assert_eq!((c.sas.clone(), c.policies.clone(), c.full_rescan), (vec![ids[3].slot], vec![p.slot], false));
    assert!(snap.sa(ids[3].slot).is_none());
    assert_eq!(snap.generation(), r.generation());
    // More changes than the journal holds: a full rescan, with the same answer.
    for s in 100..130 {
        let id = w.install_sa(&seeded_sa(s), 0, 0).unwrap();
        w.delete_sa(id).unwrap();
    }
    let last = w.install_sa(&seeded_sa(200), 0, 0).unwrap();
    let c = r.refresh(&mut snap);
    assert!(c.full_rescan);
    assert!(c.sas.contains(&last.slot));
    let fresh = r.snapshot();
    assert_eq!(snap.sas().collect::<Vec<_>>(), fresh.sas().collect::<Vec<_>>());
}

#[test]
fn usage_and_lifetimes_raise_each_expiry_once() {
    let db = TempDb::new("usage");
    let mut w = Writer::create(db.path(), caps(4, 4)).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let mut cfg = out_sa(0x300);
    cfg.lifetimes = Lifetimes {
        soft_bytes: 1000,
        hard_bytes: 2000,
        soft_packets: 0,
        hard_packets: 0,
        soft_seconds: 0,
        hard_seconds: 0,
    };
    let id = w.install_sa(&cfg, 0, 100).unwrap();
    let lt = cfg.lifetimes;
    assert_eq!(r.check_lifetimes(id, 0x300, &lt, 100, 100), Expiry::Fresh);
    assert!(r.account(id, 600, 4, 150));
    assert!(r.account(id, 600, 4, 140));
    let u = w.usage(id).unwrap();
    assert_eq!((u.bytes, u.packets, u.last_use), (1200, 8, 150));
    for _ in 0..3 {
        assert_eq!(r.check_lifetimes(id, 0x300, &lt, 100, 150), Expiry::Soft(LimitKind::Bytes));
    }
    r.account(id, 1000, 1, 160);
    assert_eq!(r.check_lifetimes(id, 0x300, &lt, 100, 160), Expiry::Hard(LimitKind::Bytes));
    assert_eq!(r.check_lifetimes(id, 0x300, &lt, 100, 161), Expiry::Hard(LimitKind::Bytes));
    assert_eq!(w.pop_event(), Some(Event::SoftExpire { sa: id, spi: 0x300, limit: LimitKind::Bytes }));
    assert_eq!(w.pop_event(), Some(Event::HardExpire { sa: id, spi: 0x300, limit: LimitKind::Bytes }));
    assert_eq!(w.pop_event(), None);
    // Time limits.
    let lt = Lifetimes { soft_seconds: 10, hard_seconds: 20, ..Lifetimes::default() };
    let id2 = w.install_sa(&out_sa(0x301), 0, 100).unwrap();
    assert_eq!(r.check_lifetimes(id2, 0x301, &lt, 100, 109), Expiry::Fresh);
    assert_eq!(r.check_lifetimes(id2, 0x301, &lt, 100, 110), Expiry::Soft(LimitKind::Time));
    assert_eq!(r.check_lifetimes(id2, 0x301, &lt, 100, 120), Expiry::Hard(LimitKind::Time));
    // A deleted SA's counters are not reachable under its old name.
    w.delete_sa(id).unwrap();
    assert!(!r.account(id, 1, 1, 1));
    assert_eq!(r.usage(id), None);
}

#[test]
fn sequence_blocks_are_disjoint_increasing_and_stop_before_wrap() {
    let db = TempDb::new("seq");
    let mut w = Writer::create(db.path(), caps(1, 1)).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let id = w.install_sa(&out_sa(0x400), 0, 0).unwrap();
    let mut a = r.outbound_seq(id, 0x400, false);
    let mut b = r.outbound_seq(id, 0x400, false);
    let mut seen = HashSet::new();
    let (mut last_a, mut last_b) = (0, 0);
    for i in 0..50_000u32 {
        let n = 1 + i % 64;
        let (s, last) = if i % 3 == 0 { (&mut a, &mut last_a) } else { (&mut b, &mut last_b) };
        let first = s.reserve(n).unwrap();
        assert!(first > *last, "numbers of one source only grow");
        for q in first..first + u64::from(n) {
            assert!(seen.insert(q), "sequence number {q} handed out twice");
        }
        *last = first + u64::from(n) - 1;
    }
    assert!(seen.iter().all(|q| *q >= 1));
    let reserved = w.usage(id).unwrap().seq_reserved;
    assert!(reserved >= *seen.iter().max().unwrap());
    // A new source (a restarted data plane) starts above everything reserved.
    let mut c = r.outbound_seq(id, 0x400, false);
    assert_eq!(c.reserve(1).unwrap(), reserved + 1);
    // Jump to near the end of the 32-bit space: the near-wrap event, then exhaustion.
    let reserved = w.usage(id).unwrap().seq_reserved;
    let first = c.reserve(u32::MAX - (reserved as u32) - 100).unwrap();
    assert_eq!(first, reserved + 1);
    let mut got = 0u64;
    let err = loop {
        match c.reserve(7) {
            Ok(q) => {
                assert!(q + 6 <= u64::from(u32::MAX));
                got += 1;
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err, SeqError::Exhausted);
    assert!(got <= 14);
    assert!(matches!(w.pop_event(), Some(Event::SeqNearWrap { sa, spi: 0x400, .. }) if sa == id));
    assert_eq!(w.pop_event(), None, "the near-wrap event is raised once");
    // ESN SAs have 64 bits.
    let mut e = r.outbound_seq(id, 0x400, true);
    assert!(e.reserve(1000).unwrap() > u64::from(u32::MAX) - 100);
    // Replacing the SA makes a source of the old SA stop when it needs a new block (numbers
    // left in its current block belong to the old key: using them reuses nothing).
    let mut d = r.outbound_seq(id, 0x400, false);
    w.delete_sa(id).unwrap();
    let id2 = w.install_sa(&out_sa(0x401), 0, 0).unwrap();
    assert_eq!(id2.slot, id.slot);
    assert_eq!(d.reserve(1), Err(SeqError::Replaced));
    assert_eq!(r.outbound_seq(id2, 0x401, false).reserve(1).unwrap(), 1, "a new SA starts at 1");
}

#[test]
fn event_ring_many_producers_full_ring_and_dead_producer() {
    let db = TempDb::new("events");
    let mut w = Writer::create(db.path(), Capacities { sas: 4, policies: 4, events: 64, journal: 16 }).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let ev = |i: u32| Event::SeqNearWrap { sa: rampart_sadb::SaId { slot: i, incarnation: 1 }, spi: i, reserved: 9 };
    // Four producers, one consumer, concurrently.
    let mut received = Vec::new();
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let r = r.clone();
            s.spawn(move || {
                for i in 0..500u32 {
                    while r.push_event(&ev(t * 1000 + i)).is_err() {
                        std::thread::yield_now();
                    }
                }
            });
        }
        while received.len() < 2000 {
            match w.pop_event() {
                Some(e) => received.push(e),
                None => std::thread::yield_now(),
            }
        }
    });
    let mut spis: Vec<u32> =
        received.iter().map(|e| if let Event::SeqNearWrap { spi, .. } = e { *spi } else { 0 }).collect();
    // Each producer's events arrive in its order.
    for t in 0..4u32 {
        let mine: Vec<u32> = spis.iter().copied().filter(|s| s / 1000 == t).collect();
        assert_eq!(mine, (0..500).map(|i| t * 1000 + i).collect::<Vec<_>>());
    }
    spis.sort();
    spis.dedup();
    assert_eq!(spis.len(), 2000);
    assert_eq!(w.event_stats().dropped, w.event_stats().dropped);
    // A full ring counts, never blocks.
    let dropped0 = w.event_stats().dropped;
    for i in 0..64 {
        r.push_event(&ev(i)).unwrap();
    }
    assert!(r.push_event(&ev(99)).is_err());
    assert_eq!(w.event_stats().dropped, dropped0 + 1);
    for i in 0..64 {
        assert_eq!(w.pop_event(), Some(ev(i)));
    }
    // A producer that dies between claim and publish: skipped after the stall timeout.
    r.push_event_and_die();
    r.push_event(&ev(7)).unwrap();
    assert_eq!(w.pop_event(), None);
    std::thread::sleep(rampart_sadb::events::STALL_TIMEOUT + std::time::Duration::from_millis(50));
    assert_eq!(w.pop_event(), Some(ev(7)));
    assert_eq!(w.event_stats().lost, 1);
}

#[test]
fn acquire_events_carry_the_flow() {
    let db = TempDb::new("acquire");
    let mut w = Writer::create(db.path(), caps(4, 4)).unwrap();
    let r = Reader::attach(db.path()).unwrap();
    let pol = w.add_policy(&tunnel_policy(), None).unwrap();
    let spd = SpdLookup::build(&r.snapshot(), PolicyDir::Out);
    let f = flow("198.18.1.5", "198.18.2.7");
    let m = spd.lookup(&f).unwrap();
    assert_eq!(m.action, SpdAction::Protect { sa: None });
    r.push_event(&Event::Acquire { policy: spd.policy(m.rank).unwrap(), flow: f }).unwrap();
    assert_eq!(w.pop_event(), Some(Event::Acquire { policy: pol, flow: f }));
}

#[test]
fn a_new_writer_sees_what_the_old_one_left() {
    let db = TempDb::new("reattach");
    let (ids, pol) = {
        let mut w = Writer::create(db.path(), caps(32, 8)).unwrap();
        let ids: Vec<_> = (0..20)
            .map(|s| {
                let (reqid, t) = seeded_extra(s);
                w.install_sa(&seeded_sa(s), reqid, t).unwrap()
            })
            .collect();
        w.delete_sa(ids[4]).unwrap();
        let out = w.install_sa(&out_sa(0x500), 0, 0).unwrap();
        let pol = w.add_policy(&tunnel_policy(), Some(out)).unwrap();
        (ids, (pol, out))
    };
    let mut w = Writer::open(db.path()).unwrap();
    assert!(!w.repair_report().any(), "{:?}", w.repair_report());
    assert_eq!(w.sas().count(), 20);
    assert!(w.sa(ids[4]).is_none());
    assert_eq!(w.policy(pol.0).unwrap().sa, Some(pol.1));
    assert!(matches!(w.install_sa(&seeded_sa(3), 0, 0), Err(WriteError::SpiInUse { .. })));
    let (reqid, t) = seeded_extra(4);
    let again = w.install_sa(&seeded_sa(4), reqid, t).unwrap();
    assert_ne!(again, ids[4]);
    let r = w.reader();
    for s in 0..20u64 {
        let c = seeded_sa(s);
        let dst = if c.direction == Direction::Inbound { c.local } else { c.remote };
        check_seeded(&r.find_sa(c.spi, dst).unwrap()).unwrap();
    }
}

/// A database on a filesystem without room for it is refused when it is made, with the sizes
/// and what to do, instead of a SIGBUS in the writer once the pages fill. As root: a 1 MiB
/// tmpfs mounted for the test.
#[test]
fn a_full_filesystem_is_refused_when_the_database_is_made() {
    if effective_uid() != 0 {
        eprintln!("SKIPPED a_full_filesystem_is_refused_when_the_database_is_made: needs root (mounts a tmpfs)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rampart-sadb-small-tmpfs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A syscall, not a spawned `mount`: a child process holds copies of the other tests' open
    // databases (and their writer locks) until it execs.
    rustix::mount::mount("rampart-test", &dir, "tmpfs", rustix::mount::MountFlags::empty(), c"size=1m")
        .expect("mount a 1 MiB tmpfs");
    let result = std::panic::catch_unwind(|| {
        let path = dir.join("big.sadb");
        let e = Writer::create(&path, Capacities::default()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, OpenError::NoRoom { need, available, .. } if need > available), "{e:?}");
        assert!(text.contains("needs") && text.contains("sa_capacity"), "{text}");
        assert!(!path.exists(), "a refused database left a file");
        // What fits is made as before.
        let w = Writer::create(dir.join("small.sadb"), caps(4, 4)).unwrap();
        drop(w);
    });
    let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::empty());
    let _ = std::fs::remove_dir(&dir);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// The effective user id, read from /proc (no unsafe, no extra crate).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX)
}
