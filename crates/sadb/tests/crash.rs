//! Crash tests with real processes: a writer that stops in the middle of a commit (the test
//! binary re-runs itself as the child), and a data plane killed with SIGKILL in the middle of
//! traffic, whose successor must never reuse a sequence number.

mod common;

use std::io::{BufRead, BufReader, Write};

use common::*;
use rampart_sa::Direction;
use rampart_sadb::{Capacities, ReadError, Reader, SaId, StopAt, Writer};

/// The child side of every test in this file; a no-op unless started by [`spawn_child`].
#[test]
fn child_entry() {
    let Some(role) = child_role() else { return };
    let parts: Vec<&str> = role.split(':').collect();
    match parts[0] {
        "stop" => {
            let (case, path) = (parts[1], parts[2]);
            let mut w = Writer::open(path).unwrap();
            let at = match case {
                "delete-record" | "install-record" => StopAt::Record(40),
                "install-staging" => StopAt::Staging(30),
                "rebind-record" => StopAt::Record(5),
                other => panic!("unknown case {other}"),
            };
            w.stop_in_next_commit(at, || {
                println!("STOPPED");
                std::io::stdout().flush().unwrap();
            });
            match case {
                "delete-record" => {
                    let id = w.sas().find(|m| m.spi == SPI_BASE + 3).unwrap().id;
                    w.delete_sa(id).unwrap();
                }
                "install-record" | "install-staging" => {
                    let (reqid, t) = seeded_extra(100);
                    w.install_sa(&seeded_sa(100), reqid, t).unwrap();
                }
                "rebind-record" => {
                    let p = w.policies().next().unwrap().id;
                    w.set_policy_sa(p, None).unwrap();
                }
                _ => unreachable!(),
            }
            unreachable!("the commit never returns");
        }
        "seq" => {
            let path = parts[1];
            let id = SaId { slot: parts[2].parse().unwrap(), incarnation: parts[3].parse().unwrap() };
            let r = Reader::attach(path).unwrap();
            let mut seq = r.outbound_seq(id, 0x600, false);
            let mut out = std::io::stdout().lock();
            loop {
                let first = seq.reserve(32).unwrap();
                // Logged before the numbers are "sent": the log is a superset of what was used.
                writeln!(out, "SEQ {first}").unwrap();
                out.flush().unwrap();
                r.note_seq_used(id, first + 31);
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn setup(db: &TempDb) -> Vec<SaId> {
    let mut w = Writer::create(db.path(), Capacities::small(64, 8)).unwrap();
    let ids: Vec<SaId> = (0..10)
        .map(|s| {
            let (reqid, t) = seeded_extra(s);
            w.install_sa(&seeded_sa(s), reqid, t).unwrap()
        })
        .collect();
    let out = ids.iter().find(|id| w.sa(**id).unwrap().direction == Direction::Outbound).copied();
    let mut p = seeded_policy(1);
    p.action = rampart_sadb::PolicyAction::Protect(rampart_sadb::Template {
        protocol: rampart_sa::Protocol::Esp,
        src: w.sa(out.unwrap()).unwrap().local,
        dst: w.sa(out.unwrap()).unwrap().remote,
        spi: 0,
        mode: w.sa(out.unwrap()).unwrap().mode,
        reqid: 0,
    });
    p.priority = 1;
    w.add_policy(&p, out).unwrap();
    ids
}

/// Starts a child writer that stops mid-commit; returns it once it has stopped.
fn stopped_writer(case: &str, db: &TempDb) -> ChildGuard {
    let mut child = ChildGuard(spawn_child("child_entry", &format!("stop:{case}:{}", db.path().display())));
    let out = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    loop {
        let line = lines.next().expect("child exited before stopping").unwrap();
        if line.trim() == "STOPPED" {
            break;
        }
    }
    child
}

fn check_others(r: &Reader, ids: &[SaId], except: Option<SaId>) {
    for id in ids.iter().filter(|id| Some(**id) != except) {
        check_seeded(&r.read_sa_id(*id).unwrap()).unwrap();
    }
}

#[test]
fn writer_dies_while_deleting_then_the_next_writer_rolls_forward() {
    let db = TempDb::new("crash-delete");
    let ids = setup(&db);
    let victim = ids[3];
    let r = Reader::attach(db.path()).unwrap();
    let mut snap = r.snapshot();
    let mut child = stopped_writer("delete-record", &db);
    // The record is half written: readers skip it, everything else reads fine.
    assert_eq!(r.read_sa(victim.slot).unwrap_err(), ReadError::Busy);
    assert_eq!(r.read_sa_meta(victim.slot).unwrap_err(), ReadError::Busy);
    check_others(&r, &ids, Some(victim));
    let fresh = r.snapshot();
    assert!(fresh.has_pending() && fresh.sa(victim.slot).is_none());
    // A refresh keeps the last good copy of the busy record.
    r.refresh(&mut snap);
    assert_eq!(snap.sa(victim.slot).map(|m| m.id), Some(victim));
    assert!(matches!(Writer::open(db.path()), Err(rampart_sadb::OpenError::WriterBusy { .. })));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    // The next writer completes the delete.
    let w = Writer::open(db.path()).unwrap();
    let rep = w.repair_report();
    assert!(rep.rolled_forward, "{rep:?}");
    assert_eq!(rep.index_removed, 1, "{rep:?}");
    assert!(w.sa(victim).is_none());
    assert_eq!(r.read_sa(victim.slot).unwrap_err(), ReadError::Free);
    let c = seeded_sa(3);
    let dst = if c.direction == Direction::Inbound { c.local } else { c.remote };
    assert!(r.find_sa(c.spi, dst).is_none());
    check_others(&r, &ids, Some(victim));
    let changes = r.refresh(&mut snap);
    assert!(changes.sas.contains(&victim.slot) && !snap.has_pending());
    assert!(snap.sa(victim.slot).is_none());
}

#[test]
fn writer_dies_while_installing_then_the_next_writer_rolls_forward() {
    let db = TempDb::new("crash-install");
    let ids = setup(&db);
    let r = Reader::attach(db.path()).unwrap();
    let mut child = stopped_writer("install-record", &db);
    assert_eq!(r.read_sa(10).unwrap_err(), ReadError::Busy);
    check_others(&r, &ids, None);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let mut w = Writer::open(db.path()).unwrap();
    let rep = w.repair_report();
    assert!(rep.rolled_forward && rep.index_added == 1, "{rep:?}");
    let rec = r.read_sa(10).unwrap();
    check_seeded(&rec).unwrap();
    let c = seeded_sa(100);
    let dst = if c.direction == Direction::Inbound { c.local } else { c.remote };
    assert_eq!(r.find_sa(c.spi, dst).map(|r| r.id()), Some(rec.id()));
    // The writer knows it: a second install of the same SPI is refused.
    assert!(w.install_sa(&c, 0, 0).is_err());
    check_others(&r, &ids, None);
}

#[test]
fn writer_dies_while_staging_and_nothing_changed() {
    let db = TempDb::new("crash-staging");
    let ids = setup(&db);
    let r = Reader::attach(db.path()).unwrap();
    let g = r.generation();
    let mut child = stopped_writer("install-staging", &db);
    assert_eq!(r.read_sa(10).unwrap_err(), ReadError::Free);
    check_others(&r, &ids, None);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let mut w = Writer::open(db.path()).unwrap();
    assert!(!w.repair_report().any(), "{:?}", w.repair_report());
    assert_eq!(r.generation(), g);
    assert_eq!(r.read_sa(10).unwrap_err(), ReadError::Free);
    let (reqid, t) = seeded_extra(100);
    let id = w.install_sa(&seeded_sa(100), reqid, t).unwrap();
    check_seeded(&r.read_sa_id(id).unwrap()).unwrap();
}

#[test]
fn writer_dies_while_switching_a_policy() {
    let db = TempDb::new("crash-rebind");
    let ids = setup(&db);
    let r = Reader::attach(db.path()).unwrap();
    let before = r.read_policy(0).unwrap();
    assert!(before.sa.is_some());
    let mut child = stopped_writer("rebind-record", &db);
    assert_eq!(r.read_policy(0).unwrap_err(), ReadError::Busy);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let w = Writer::open(db.path()).unwrap();
    assert!(w.repair_report().rolled_forward);
    let after = r.read_policy(0).unwrap();
    assert_eq!((after.policy, after.sa), (before.policy, None));
    check_others(&r, &ids, None);
}

#[test]
fn a_killed_data_plane_never_reuses_a_sequence_number() {
    let db = TempDb::new("crash-seq");
    let mut w = Writer::create(db.path(), Capacities::small(4, 4)).unwrap();
    let mut cfg = seeded_sa(42);
    cfg.spi = 0x600;
    cfg.direction = Direction::Outbound;
    let id = w.install_sa(&cfg, 0, 0).unwrap();
    let role = format!("seq:{}:{}:{}", db.path().display(), id.slot, id.incarnation);
    let mut runs: Vec<Vec<u64>> = Vec::new();
    // Kill points spread over a block (a block is 2048 bursts of 32).
    for (round, kill_after) in [700usize, 2500, 4100, 333, 6000].into_iter().enumerate() {
        let mut child = ChildGuard(spawn_child("child_entry", &role));
        let out = child.0.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let mut firsts = Vec::new();
        while firsts.len() < kill_after {
            let line = lines.next().expect("child died").unwrap();
            if let Some(n) = line.strip_prefix("SEQ ") {
                firsts.push(n.trim().parse::<u64>().unwrap());
            }
        }
        child.0.kill().unwrap(); // SIGKILL, in the middle of traffic
        child.0.wait().unwrap();
        // Whatever it logged before dying is still in the pipe.
        for line in lines.map_while(Result::ok) {
            if let Some(Ok(n)) = line.strip_prefix("SEQ ").map(|n| n.trim().parse::<u64>()) {
                firsts.push(n);
            }
        }
        assert!(firsts.windows(2).all(|p| p[0] + 32 <= p[1]), "round {round}: numbers of one run only grow");
        runs.push(firsts);
    }
    let mut max_before = 0u64;
    for (i, run) in runs.iter().enumerate() {
        let first = run[0];
        assert!(
            first > max_before + 31 || i == 0,
            "run {i} starts at {first}, at or below {} already used",
            max_before + 31
        );
        max_before = *run.last().unwrap();
    }
    let reserved = w.usage(id).unwrap().seq_reserved;
    assert!(reserved > max_before);
    // Nothing was handed out twice over all runs.
    let mut all: Vec<u64> = runs.concat();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n);
    assert_eq!(w.pop_event(), None);
}
