//! Stress tests: a writer churning SAs and policies while readers, in other threads and in
//! other processes, verify every record they accept field by field against the seed it was
//! made from. A torn or mixed record fails the check.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use rampart_sa::Direction;
use rampart_sadb::{Capacities, ReadError, Reader, SaId, SaIndex, SaMeta, Writer};

const SA_SLOTS: u32 = 256;
const POLICY_SLOTS: u32 = 64;

fn check_meta(m: &SaMeta) -> Result<(), String> {
    let c = seeded_sa(u64::from(m.spi.wrapping_sub(SPI_BASE)));
    let (reqid, t) = seeded_extra(u64::from(m.spi.wrapping_sub(SPI_BASE)));
    if (m.direction, m.mode, m.local, m.remote, m.esn, m.reqid, m.install_time)
        != (c.direction, c.mode, c.local, c.remote, c.esn, reqid, t)
    {
        return Err(format!("metadata of spi {:#x} does not match its seed", m.spi));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    busy: u64,
    snapshots: u64,
    consistent: u64,
}

/// One pass of a reader over everything: records, policies, a refreshed snapshot and the
/// compiled index built from it.
fn verify_pass(r: &Reader, snap: &mut rampart_sadb::Snapshot, t: &mut Tally) {
    for slot in 0..SA_SLOTS {
        match r.read_sa(slot) {
            Ok(rec) => {
                check_seeded(&rec).unwrap();
                assert_eq!(rec.id().slot, slot);
                t.accepted += 1;
            }
            Err(ReadError::Busy) => t.busy += 1,
            Err(ReadError::Free) => {}
            Err(e) => panic!("slot {slot}: {e}"),
        }
    }
    for slot in 0..POLICY_SLOTS {
        match r.read_policy(slot) {
            Ok(p) => {
                check_seeded_policy(&p.policy).unwrap();
                t.accepted += 1;
            }
            Err(ReadError::Busy) => t.busy += 1,
            Err(ReadError::Free) => {}
            Err(e) => panic!("policy slot {slot}: {e}"),
        }
    }
    r.refresh(snap);
    for m in snap.sas() {
        check_meta(m).unwrap();
    }
    for p in snap.policies() {
        check_seeded_policy(&p.policy).unwrap();
    }
    let idx = SaIndex::build(snap);
    let mut by_key: HashMap<(u32, std::net::IpAddr), Vec<SaId>> = HashMap::new();
    for m in snap.sas().filter(|m| m.direction == Direction::Inbound) {
        by_key.entry((m.spi, m.local)).or_default().push(m.id);
    }
    for ((spi, dst), ids) in by_key {
        let found = idx.lookup(spi, dst).expect("an inbound SA of the snapshot is in the index");
        // Two SAs with one key: one was deleted and reinstalled elsewhere while the snapshot was
        // being read (or its old slot was busy). Only a snapshot that is not one generation
        // exactly may show that.
        assert!(ids.len() == 1 || !snap.is_consistent(), "duplicate key in a consistent snapshot");
        assert!(ids.contains(&found));
    }
    t.snapshots += 1;
    t.consistent += u64::from(snap.is_consistent());
}

/// A writer's random installs, deletes, policy adds, deletes and switches.
#[derive(Default)]
struct Churn {
    live: BTreeMap<u64, SaId>,
    policies: HashMap<u64, rampart_sadb::PolicyId>,
    x: u64,
}

impl Churn {
    /// Churns for `duration` or until `stop`; returns the number of operations.
    fn run(&mut self, w: &mut Writer, duration: Duration, mut stop: impl FnMut() -> bool) -> u64 {
        let start = Instant::now();
        let mut ops = 0u64;
        while start.elapsed() < duration && !stop() {
            self.x = mix(self.x);
            let x = self.x;
            let seed = x % 600;
            match x >> 60 {
                0..=6 => {
                    if let Some(id) = self.live.remove(&seed) {
                        w.delete_sa(id).unwrap();
                    } else if self.live.len() < (SA_SLOTS - 8) as usize {
                        let (reqid, t) = seeded_extra(seed);
                        self.live.insert(seed, w.install_sa(&seeded_sa(seed), reqid, t).unwrap());
                    }
                }
                7..=11 => {
                    let pseed = seed % 200;
                    if let Some(id) = self.policies.remove(&pseed) {
                        w.delete_policy(id).unwrap();
                    } else if self.policies.len() < (POLICY_SLOTS - 4) as usize {
                        self.policies.insert(pseed, w.add_policy(&seeded_policy(pseed), None).unwrap());
                    }
                }
                _ => {
                    // Switch a protect policy to some outbound SA (or unbind it).
                    let out = self
                        .live
                        .values()
                        .find(|id| w.sa(**id).is_some_and(|m| m.direction == Direction::Outbound))
                        .copied();
                    if let Some((_, pid)) = self.policies.iter().find(|(_, p)| {
                        matches!(w.policy(**p).map(|i| i.policy.action), Some(rampart_sadb::PolicyAction::Protect(_)))
                    }) {
                        w.set_policy_sa(*pid, if x & 1 == 0 { out } else { None }).unwrap();
                    }
                }
            }
            ops += 1;
        }
        ops
    }
}

#[test]
fn threads_never_accept_a_torn_record() {
    let db = TempDb::new("stress-threads");
    let mut w = Writer::create(db.path(), Capacities::small(SA_SLOTS, POLICY_SLOTS)).unwrap();
    let stop = AtomicBool::new(false);
    let accepted = AtomicU64::new(0);
    let busy = AtomicU64::new(0);
    let ops = std::thread::scope(|s| {
        for _ in 0..2 {
            let path = db.path().to_path_buf();
            let (stop, accepted, busy) = (&stop, &accepted, &busy);
            s.spawn(move || {
                // Each reader maps the file itself, as a data-plane process would.
                let r = Reader::attach(&path).unwrap();
                let mut snap = r.snapshot();
                let mut t = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    verify_pass(&r, &mut snap, &mut t);
                }
                accepted.fetch_add(t.accepted, Ordering::Relaxed);
                busy.fetch_add(t.busy, Ordering::Relaxed);
            });
        }
        let ops = Churn::default().run(&mut w, Duration::from_millis(1500), || false);
        stop.store(true, Ordering::Relaxed);
        ops
    });
    let (accepted, busy) = (accepted.into_inner(), busy.into_inner());
    eprintln!("writer ops {ops}, records accepted {accepted}, busy {busy}");
    assert!(ops > 1000 && accepted > 1000, "the stress did not stress: {ops} ops, {accepted} accepted");
}

/// The reader process of the multi-process test; a no-op unless started by the test.
#[test]
fn child_entry() {
    let Some(role) = child_role() else { return };
    let (path, millis) = role.split_once(':').unwrap();
    let r = Reader::attach(path).unwrap();
    let mut snap = r.snapshot();
    let mut t = Tally::default();
    let end = Instant::now() + Duration::from_millis(millis.parse().unwrap());
    while Instant::now() < end {
        verify_pass(&r, &mut snap, &mut t);
    }
    println!("TALLY {} {} {}", t.accepted, t.busy, t.snapshots);
}

#[test]
fn processes_never_accept_a_torn_record() {
    let db = TempDb::new("stress-procs");
    let mut w = Writer::create(db.path(), Capacities::small(SA_SLOTS, POLICY_SLOTS)).unwrap();
    // Some content before the readers start.
    let mut churn = Churn::default();
    churn.run(&mut w, Duration::from_millis(100), || false);
    let role = format!("{}:1500", db.path().display());
    let mut children: Vec<ChildGuard> = (0..2).map(|_| ChildGuard(spawn_child("child_entry", &role))).collect();
    let ops = churn.run(&mut w, Duration::from_secs(30), || {
        children.iter_mut().all(|c| c.0.try_wait().map(|s| s.is_some()).unwrap_or(true))
    });
    let mut total = 0u64;
    for c in &mut children {
        let status = c.0.wait().unwrap();
        assert!(status.success(), "a reader process found an inconsistent record");
        let out = BufReader::new(c.0.stdout.take().unwrap());
        let tally = out.lines().map_while(Result::ok).find_map(|l| l.strip_prefix("TALLY ").map(str::to_string));
        let nums: Vec<u64> = tally.expect("reader printed no tally").split(' ').map(|n| n.parse().unwrap()).collect();
        eprintln!("reader process: accepted {}, busy {}, snapshots {}", nums[0], nums[1], nums[2]);
        total += nums[0];
    }
    eprintln!("writer ops {ops}");
    assert!(ops > 1000 && total > 1000, "the stress did not stress: {ops} ops, {total} accepted");
}
