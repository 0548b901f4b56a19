//! The single writer of an SA database (the IKE daemon, or the `rampart sa`/`policy` commands
//! when no daemon runs): installs and deletes SAs and policies, switches a policy's outbound SA
//! (make-before-break), repairs what a crashed writer left, and consumes the event ring.
//!
//! Every record write goes through [`Writer::commit`]: the new record is staged in the header
//! with a checksum, the intent is recorded, the record is written under its seqlock, then the
//! intent is cleared. A writer that dies anywhere in there leaves either the old record (intent
//! not yet recorded) or an intent that the next writer rolls forward when it attaches. One
//! writer at a time is enforced with an exclusive `flock` on the file, which the kernel drops
//! when the writer dies. This module must never be used by the data plane.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use rampart_sa::{Direction, SaConfig};

use crate::error::{OpenError, WriteError};
use crate::events::{self, Event};
use crate::hash::checksum;
use crate::journal::{self, Kind};
use crate::layout::Capacities;
use crate::policy::{Policy, PolicyAction, PolicyDir, PolicyId, PolicyInfo, PolicyRecord, Template};
use crate::reader::Reader;
use crate::record::{SaId, SaMeta, SaRecord};
use crate::seqlock;
use crate::shm::{Db, POLICY_WORDS, SA_WORDS};
use crate::spi_index;
use crate::usage::UsageCounters;

/// Freed slots wait in a queue this long before reuse (when the file has never-used slots
/// left), so that a data plane still holding an old name rarely meets a new SA in its slot.
const REUSE_QUARANTINE: usize = 256;

/// Where a crash test stops the writer in its next commit.
#[cfg(feature = "test-hooks")]
#[derive(Clone, Copy, Debug)]
pub enum StopAt {
    /// After this many words of the staging copy: the record itself is untouched.
    Staging(usize),
    /// After the intent is recorded and this many words of the record are written: the record's
    /// version is odd.
    Record(usize),
}

/// What a writer found and repaired when it attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// A record write interrupted by a crash was completed from the staged copy.
    pub rolled_forward: bool,
    /// Records with an odd version and no staged copy (should not happen) were freed.
    pub freed_torn: u32,
    /// SPI index entries that named no live SA were removed.
    pub index_removed: u32,
    /// Live SAs missing from the SPI index were added.
    pub index_added: u32,
}

impl RepairReport {
    /// Whether anything was repaired.
    pub fn any(&self) -> bool {
        *self != RepairReport::default()
    }
}

/// Counters of the event ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Events not pushed because the ring was full.
    pub dropped: u64,
    /// Events lost to a producer that died or stalled in the middle of a push, or torn.
    pub lost: u64,
}

/// The single writer of an SA database.
pub struct Writer {
    db: Arc<Db>,
    sas: Vec<Option<SaMeta>>,
    sa_incarnation: Vec<u32>,
    sa_free: VecDeque<u32>,
    sa_by_key: HashMap<(u32, IpAddr), u32>,
    policies: Vec<Option<PolicyInfo>>,
    policy_incarnation: Vec<u32>,
    policy_free: VecDeque<u32>,
    policy_by_index: BTreeMap<u64, u32>,
    repair: RepairReport,
    event_stall: Option<(u64, Instant)>,
    #[cfg(feature = "test-hooks")]
    stop: Option<(StopAt, Box<dyn FnOnce() + Send>)>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("db", &self.db).finish_non_exhaustive()
    }
}

impl Writer {
    /// Creates a new database file at `path` (refused if one exists) and becomes its writer.
    pub fn create(path: impl AsRef<Path>, caps: Capacities) -> Result<Writer, OpenError> {
        Writer::lock(Db::create_new(path.as_ref(), caps)?)
    }

    /// Becomes the writer of the database at `path`, repairing what a crashed writer left.
    pub fn open(path: impl AsRef<Path>) -> Result<Writer, OpenError> {
        Writer::lock(Db::attach(path.as_ref())?)
    }

    /// Opens the database at `path`, creating it with `caps` if there is none.
    pub fn open_or_create(path: impl AsRef<Path>, caps: Capacities) -> Result<Writer, OpenError> {
        let path = path.as_ref();
        match Db::attach(path) {
            Ok(db) => Writer::lock(db),
            Err(OpenError::NotFound { .. }) => match Db::create_new(path, caps) {
                Ok(db) => Writer::lock(db),
                Err(OpenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                    Writer::lock(Db::attach(path)?)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    fn lock(db: Db) -> Result<Writer, OpenError> {
        match db.file().try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::WriterBusy {
                    path: db.path().into(),
                    pid: db.control().writer_pid.load(Ordering::Relaxed),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(OpenError::Io { path: db.path().into(), source });
            }
        }
        let c = db.control();
        c.writer_pid.store(u64::from(std::process::id()), Ordering::Relaxed);
        c.writer_epoch.fetch_add(1, Ordering::Relaxed);
        let mut w = Writer {
            db: Arc::new(db),
            sas: Vec::new(),
            sa_incarnation: Vec::new(),
            sa_free: VecDeque::new(),
            sa_by_key: HashMap::new(),
            policies: Vec::new(),
            policy_incarnation: Vec::new(),
            policy_free: VecDeque::new(),
            policy_by_index: BTreeMap::new(),
            repair: RepairReport::default(),
            event_stall: None,
            #[cfg(feature = "test-hooks")]
            stop: None,
        };
        w.recover();
        Ok(w)
    }

    /// What this writer repaired when it attached.
    pub fn repair_report(&self) -> RepairReport {
        self.repair
    }

    /// A reader of the same mapping (for the writer's own lookups, usage and tests).
    pub fn reader(&self) -> Reader {
        Reader::from_db(self.db.clone())
    }

    /// The file's capacities.
    pub fn capacities(&self) -> Capacities {
        self.db.caps()
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.db.control().generation.load(Ordering::Relaxed)
    }

    /// Rolls forward an interrupted write, frees torn records, reloads the in-memory view and
    /// reconciles the SPI index with the records.
    fn recover(&mut self) {
        let db = self.db.clone();
        let c = db.control();
        let mut changed = false;
        let intent = c.intent.load(Ordering::Acquire);
        if intent != 0 {
            let slot = intent as u32;
            let (kind, n) = match intent >> 32 {
                1 => (Some(Kind::Sa), SA_WORDS),
                2 => (Some(Kind::Policy), POLICY_WORDS),
                _ => (None, 0),
            };
            // The staged record may hold keys: the copy is zeroized when dropped.
            let staged: zeroize::Zeroizing<Vec<u64>> =
                zeroize::Zeroizing::new(c.staging[..n].iter().map(|w| w.load(Ordering::Relaxed)).collect());
            let good = checksum(&staged) == c.staging_checksum.load(Ordering::Relaxed);
            let target = match kind {
                Some(Kind::Sa) => db.sa_slots().get(slot as usize).map(|s| &s.words[..]),
                Some(Kind::Policy) => db.policy_slots().get(slot as usize).map(|s| &s.words[..]),
                None => None,
            };
            if let (true, Some(words), Some(kind)) = (good, target, kind) {
                seqlock::write(&words[0], &words[1..], &staged[1..]);
                journal::append(&db, kind, slot);
                self.repair.rolled_forward = true;
                changed = true;
            }
            c.intent.store(0, Ordering::Release);
            for w in &c.staging {
                w.store(0, Ordering::Relaxed);
            }
        }
        // Odd versions with no intent: nothing to roll forward with. Free the record.
        let sa_hw = (c.sa_high_water.load(Ordering::Relaxed) as usize).min(db.sa_slots().len());
        for (slot, s) in db.sa_slots()[..sa_hw].iter().enumerate() {
            if s.words[0].load(Ordering::Relaxed) & 1 == 1 {
                let inc = (s.words[1].load(Ordering::Relaxed) >> 32) as u32;
                let free = SaRecord::free(SaId { slot: slot as u32, incarnation: inc.wrapping_add(1) });
                seqlock::write(&s.words[0], &s.words[1..], &free.to_words()[1..]);
                journal::append(&db, Kind::Sa, slot as u32);
                self.repair.freed_torn += 1;
                changed = true;
            }
        }
        let pol_hw = (c.policy_high_water.load(Ordering::Relaxed) as usize).min(db.policy_slots().len());
        for (slot, s) in db.policy_slots()[..pol_hw].iter().enumerate() {
            if s.words[0].load(Ordering::Relaxed) & 1 == 1 {
                let inc = (s.words[1].load(Ordering::Relaxed) >> 32) as u32;
                let free = PolicyRecord::free(inc.wrapping_add(1));
                seqlock::write(&s.words[0], &s.words[1..], &free.to_words()[1..]);
                journal::append(&db, Kind::Policy, slot as u32);
                self.repair.freed_torn += 1;
                changed = true;
            }
        }
        // Reload the in-memory view. Only this process writes now: plain reads are exact.
        let reader = self.reader();
        for slot in 0..sa_hw as u32 {
            let rec = reader.read_sa(slot);
            let inc = match &rec {
                Ok(r) => r.id().incarnation,
                Err(_) => self.raw_sa_incarnation(slot),
            };
            self.sa_incarnation.push(inc);
            match rec {
                Ok(r) => {
                    let meta = r.meta();
                    self.sa_by_key.insert((meta.spi, meta.outer_dst()), slot);
                    self.sas.push(Some(meta));
                }
                Err(_) => {
                    self.sas.push(None);
                    self.sa_free.push_back(slot);
                }
            }
        }
        for slot in 0..pol_hw as u32 {
            match reader.read_policy(slot) {
                Ok(info) => {
                    self.policy_incarnation.push(info.id.incarnation);
                    self.policy_by_index.insert(info.index, slot);
                    self.policies.push(Some(info));
                }
                Err(_) => {
                    let words = &db.policy_slots()[slot as usize].words;
                    self.policy_incarnation.push((words[1].load(Ordering::Relaxed) >> 32) as u32);
                    self.policies.push(None);
                    self.policy_free.push_back(slot);
                }
            }
        }
        // The SPI index: drop entries that name no live SA, add live SAs it lacks.
        let buckets = db.spi_buckets();
        let mut indexed = vec![false; self.sas.len()];
        let stale: Vec<usize> = spi_index::entries(buckets)
            .filter_map(|(i, spi, slot)| match self.sas.get(slot as usize) {
                Some(Some(m)) if m.spi == spi && !indexed[slot as usize] => {
                    indexed[slot as usize] = true;
                    None
                }
                _ => Some(i),
            })
            .collect();
        for i in stale {
            spi_index::remove_at(buckets, i);
            self.repair.index_removed += 1;
            changed = true;
        }
        for (slot, m) in self.sas.iter().enumerate() {
            if let Some(m) = m
                && !indexed[slot]
            {
                spi_index::insert(buckets, db.hash_seed(), m.spi, slot as u32);
                self.repair.index_added += 1;
                changed = true;
            }
        }
        if changed {
            c.repaired.fetch_add(1, Ordering::Relaxed);
            self.publish();
        }
    }

    fn raw_sa_incarnation(&self, slot: u32) -> u32 {
        // Word 1 holds `state` (low half) and `incarnation` (high half).
        (self.db.sa_slots()[slot as usize].words[1].load(Ordering::Relaxed) >> 32) as u32
    }

    /// Stops the writer in the middle of its next commit (crash tests): `on_stop` runs, then
    /// the thread parks forever, as if the process had died there.
    #[cfg(feature = "test-hooks")]
    pub fn stop_in_next_commit(&mut self, at: StopAt, on_stop: impl FnOnce() + Send + 'static) {
        self.stop = Some((at, Box::new(on_stop)));
    }

    /// Writes one record through staging, intent, seqlock (see the module doc).
    fn commit(&mut self, kind: Kind, slot: u32, data: &[u64]) {
        let db = self.db.clone();
        let c = db.control();
        let target = match kind {
            Kind::Sa => &db.sa_slots()[slot as usize].words[..],
            Kind::Policy => &db.policy_slots()[slot as usize].words[..],
        };
        #[cfg(feature = "test-hooks")]
        if let Some((at, on_stop)) = self.stop.take() {
            match at {
                StopAt::Staging(n) => {
                    for (w, d) in c.staging.iter().zip(data).take(n) {
                        w.store(*d, Ordering::Relaxed);
                    }
                }
                StopAt::Record(n) => {
                    for (w, d) in c.staging.iter().zip(data) {
                        w.store(*d, Ordering::Relaxed);
                    }
                    c.staging_checksum.store(checksum(data), Ordering::Relaxed);
                    c.intent.store(((kind as u64) << 32) | u64::from(slot), Ordering::Release);
                    seqlock::write_interrupted(&target[0], &target[1..], &data[1..], n);
                }
            }
            on_stop();
            loop {
                std::thread::park();
            }
        }
        for (w, d) in c.staging.iter().zip(data) {
            w.store(*d, Ordering::Relaxed);
        }
        c.staging_checksum.store(checksum(data), Ordering::Relaxed);
        c.intent.store(((kind as u64) << 32) | u64::from(slot), Ordering::Release);
        seqlock::write(&target[0], &target[1..], &data[1..]);
        c.intent.store(0, Ordering::Release);
        for w in &c.staging[..data.len()] {
            w.store(0, Ordering::Relaxed);
        }
        journal::append(&db, kind, slot);
    }

    /// Makes every commit since the last publish visible as one new generation.
    fn publish(&mut self) {
        let g = &self.db.control().generation;
        g.store(g.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    fn alloc_slot(
        free: &mut VecDeque<u32>,
        high_water: &std::sync::atomic::AtomicU64,
        capacity: u32,
        what: &'static str,
    ) -> Result<u32, WriteError> {
        let hw = high_water.load(Ordering::Relaxed) as u32;
        if free.len() > REUSE_QUARANTINE || (hw >= capacity && !free.is_empty()) {
            return Ok(free.pop_front().unwrap_or_default());
        }
        if hw < capacity {
            high_water.store(u64::from(hw) + 1, Ordering::Release);
            return Ok(hw);
        }
        Err(WriteError::Full { what, capacity })
    }

    /// Installs an SA. `reqid` ties it to a tunnel (0: none); `install_time` is in the database's seconds ([`crate::clock::now`]).
    /// The SA is not yet used for outbound traffic: bind it to policies with
    /// [`Writer::set_policy_sa`] or [`Writer::bind_matching_policies`].
    pub fn install_sa(&mut self, cfg: &SaConfig, reqid: u32, install_time: u64) -> Result<SaId, WriteError> {
        let mut rec = SaRecord::from_config(cfg, reqid, install_time)?;
        let key = (cfg.spi, rec.outer_dst());
        if self.sa_by_key.contains_key(&key) {
            return Err(WriteError::SpiInUse { spi: key.0, dst: key.1 });
        }
        let db = self.db.clone();
        let slot = Writer::alloc_slot(&mut self.sa_free, &db.control().sa_high_water, db.caps().sas, "SA")?;
        let s = slot as usize;
        if s >= self.sas.len() {
            self.sas.resize(s + 1, None);
            self.sa_incarnation.resize(s + 1, 0);
        }
        let incarnation = match self.sa_incarnation[s].wrapping_add(1) {
            0 => 1,
            i => i,
        };
        self.sa_incarnation[s] = incarnation;
        let id = SaId { slot, incarnation };
        rec.set_id(id);
        // Fresh usage before the record is visible: counters and the sequence reservation
        // restart with the new key.
        let u = &db.usage_slots()[s];
        for a in [&u.bytes, &u.packets, &u.last_use, &u.seq_reserved, &u.seq_used, &u.flags] {
            a.store(0, Ordering::Relaxed);
        }
        u.incarnation.store(u64::from(incarnation), Ordering::Release);
        self.commit(Kind::Sa, slot, &rec.to_words()[..]);
        spi_index::insert(db.spi_buckets(), db.hash_seed(), cfg.spi, slot);
        let meta = rec.meta();
        self.sa_by_key.insert(key, slot);
        self.sas[s] = Some(meta);
        self.publish();
        Ok(id)
    }

    /// Deletes an SA: its record is zeroed (keys included), policies bound to it are unbound.
    pub fn delete_sa(&mut self, id: SaId) -> Result<(), WriteError> {
        let meta = self.sa(id).ok_or(WriteError::NoSuchSa)?;
        let bound: Vec<PolicyId> = self.policies.iter().flatten().filter(|p| p.sa == Some(id)).map(|p| p.id).collect();
        for p in bound {
            self.rebind(p, None);
        }
        let db = self.db.clone();
        // Counters and sequence reservations stop answering to the old name.
        db.usage_slots()[id.slot as usize].incarnation.store(0, Ordering::Release);
        self.commit(Kind::Sa, id.slot, &SaRecord::free(id).to_words()[..]);
        spi_index::remove(db.spi_buckets(), db.hash_seed(), meta.spi, id.slot);
        self.sa_by_key.remove(&(meta.spi, meta.outer_dst()));
        self.sas[id.slot as usize] = None;
        self.sa_free.push_back(id.slot);
        self.publish();
        Ok(())
    }

    /// Deletes every SA.
    pub fn flush_sas(&mut self) -> usize {
        let ids: Vec<SaId> = self.sas().map(|m| m.id).collect();
        for id in &ids {
            let _ = self.delete_sa(*id);
        }
        ids.len()
    }

    /// The SA named, if it is installed.
    pub fn sa(&self, id: SaId) -> Option<SaMeta> {
        self.sas.get(id.slot as usize).copied().flatten().filter(|m| m.id == id)
    }

    /// The SA with this SPI and outer destination address.
    pub fn find_sa(&self, spi: u32, dst: IpAddr) -> Option<SaMeta> {
        self.sa_by_key.get(&(spi, dst)).and_then(|s| self.sas[*s as usize])
    }

    /// Every installed SA, by slot.
    pub fn sas(&self) -> impl Iterator<Item = &SaMeta> + '_ {
        self.sas.iter().flatten()
    }

    /// The newest outbound SA (latest install time, then highest slot) that can serve
    /// `template`.
    pub fn newest_sa_for(&self, template: &Template) -> Option<SaId> {
        self.sas().filter(|m| template.matches(m)).max_by_key(|m| (m.install_time, m.id.slot)).map(|m| m.id)
    }

    /// Adds a policy, bound to `sa` if it is a protect policy and `sa` is given.
    pub fn add_policy(&mut self, policy: &Policy, sa: Option<SaId>) -> Result<PolicyId, WriteError> {
        policy.validate()?;
        if let Some(sa) = sa {
            self.check_outbound(sa)?;
        }
        let db = self.db.clone();
        let slot =
            Writer::alloc_slot(&mut self.policy_free, &db.control().policy_high_water, db.caps().policies, "policy")?;
        let s = slot as usize;
        if s >= self.policies.len() {
            self.policies.resize(s + 1, None);
            self.policy_incarnation.resize(s + 1, 0);
        }
        let incarnation = match self.policy_incarnation[s].wrapping_add(1) {
            0 => 1,
            i => i,
        };
        self.policy_incarnation[s] = incarnation;
        let id = PolicyId { slot, incarnation };
        let index_counter = &db.control().next_policy_index;
        let index = index_counter.load(Ordering::Relaxed) + 1;
        index_counter.store(index, Ordering::Relaxed);
        let sa = if matches!(policy.action, PolicyAction::Protect(_)) { sa } else { None };
        let rec = PolicyRecord::from_policy(policy, id, index, sa)?;
        self.commit(Kind::Policy, slot, &rec.to_words());
        self.policies[s] = rec.decode(slot);
        self.policy_by_index.insert(index, slot);
        self.publish();
        Ok(id)
    }

    fn check_outbound(&self, sa: SaId) -> Result<SaMeta, WriteError> {
        let m = self.sa(sa).ok_or(WriteError::NoSuchSa)?;
        if m.direction != Direction::Outbound {
            return Err(WriteError::NotOutbound { spi: m.spi });
        }
        Ok(m)
    }

    /// Deletes a policy.
    pub fn delete_policy(&mut self, id: PolicyId) -> Result<(), WriteError> {
        let info = self.policy(id).ok_or(WriteError::NoSuchPolicy)?;
        self.commit(Kind::Policy, id.slot, &PolicyRecord::free(id.incarnation).to_words());
        self.policies[id.slot as usize] = None;
        self.policy_by_index.remove(&info.index);
        self.policy_free.push_back(id.slot);
        self.publish();
        Ok(())
    }

    /// Deletes every policy.
    pub fn flush_policies(&mut self) -> usize {
        let ids: Vec<PolicyId> = self.policies().map(|p| p.id).collect();
        for id in &ids {
            let _ = self.delete_policy(*id);
        }
        ids.len()
    }

    /// The policy named, if it is installed.
    pub fn policy(&self, id: PolicyId) -> Option<PolicyInfo> {
        self.policies.get(id.slot as usize).copied().flatten().filter(|p| p.id == id)
    }

    /// The policy with this index (insertion number).
    pub fn policy_by_index(&self, index: u64) -> Option<PolicyInfo> {
        self.policy_by_index.get(&index).and_then(|s| self.policies[*s as usize])
    }

    /// Every installed policy, in index order.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> + '_ {
        self.policy_by_index.values().filter_map(|s| self.policies[*s as usize].as_ref())
    }

    /// Switches the outbound SA of a protect policy in one record write (make-before-break:
    /// install the new SA, switch, then delete the old one). `None` unbinds: matching traffic
    /// then raises acquire events.
    pub fn set_policy_sa(&mut self, policy: PolicyId, sa: Option<SaId>) -> Result<(), WriteError> {
        let info = self.policy(policy).ok_or(WriteError::NoSuchPolicy)?;
        if let Some(sa) = sa {
            self.check_outbound(sa)?;
        }
        if matches!(info.policy.action, PolicyAction::Protect(_)) && info.sa != sa {
            self.rebind(policy, sa);
            self.publish();
        }
        Ok(())
    }

    fn rebind(&mut self, policy: PolicyId, sa: Option<SaId>) {
        let Some(info) = self.policy(policy) else { return };
        let Ok(rec) = PolicyRecord::from_policy(&info.policy, info.id, info.index, sa) else { return };
        self.commit(Kind::Policy, policy.slot, &rec.to_words());
        self.policies[policy.slot as usize] = rec.decode(policy.slot);
    }

    /// Binds `sa` to every outbound protect policy whose template it serves (the newest SA
    /// wins, which is make-before-break for a rekey). Returns how many policies now use it.
    pub fn bind_matching_policies(&mut self, sa: SaId) -> Result<usize, WriteError> {
        let m = self.check_outbound(sa)?;
        let targets: Vec<PolicyId> = self
            .policies()
            .filter(|p| {
                p.policy.dir == PolicyDir::Out
                    && matches!(p.policy.action, PolicyAction::Protect(t) if t.matches(&m))
                    && p.sa != Some(sa)
            })
            .map(|p| p.id)
            .collect();
        for p in &targets {
            self.rebind(*p, Some(sa));
        }
        if !targets.is_empty() {
            self.publish();
        }
        Ok(self.policies().filter(|p| p.sa == Some(sa)).count())
    }

    /// Usage counters of an SA (what the data plane reported).
    pub fn usage(&self, id: SaId) -> Option<UsageCounters> {
        self.reader().usage(id)
    }

    /// Takes the next event from the ring. A slot that a producer claimed but did not publish
    /// for a second (the producer died) is skipped and counted as lost.
    pub fn pop_event(&mut self) -> Option<Event> {
        let db = self.db.clone();
        loop {
            match events::pop(&db) {
                events::Pop::Event(e) => {
                    self.event_stall = None;
                    return Some(e);
                }
                events::Pop::Torn => {
                    self.event_stall = None;
                }
                events::Pop::Empty => return None,
                events::Pop::Pending(pos) => {
                    let now = Instant::now();
                    match self.event_stall {
                        Some((p, since)) if p == pos && now.duration_since(since) >= events::STALL_TIMEOUT => {
                            events::skip(&db, pos);
                            self.event_stall = None;
                        }
                        Some((p, _)) if p == pos => return None,
                        _ => {
                            self.event_stall = Some((pos, now));
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Counters of the event ring.
    pub fn event_stats(&self) -> EventStats {
        let c = self.db.control();
        EventStats { dropped: c.ev_dropped.load(Ordering::Relaxed), lost: c.ev_lost.load(Ordering::Relaxed) }
    }
}
