//! The read side of an SA database, for data-plane workers (and the writer's own lookups):
//! single records under the seqlock, a [`Snapshot`] of every SA and policy that is refreshed
//! from the change journal when the generation moves, usage accounting and the event ring.
//!
//! A reader never writes a record, never blocks on the writer and never acts on a torn copy:
//! records with an odd version (a write in progress, or a writer that died mid-write) are
//! reported busy and retried at the next refresh.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{OpenError, ReadError};
use crate::events::{self, Event, RingFull};
use crate::journal::{self, Kind};
use crate::layout::Capacities;
use crate::policy::{PolicyInfo, PolicyRecord};
use crate::record::{SA_META_WORDS, SaId, SaMeta, SaRecord};
use crate::seqlock::{self, ReadFailure};
use crate::shm::{Db, POLICY_WORDS, SA_WORDS};
use crate::spi_index;

/// Copies tried before a record is reported busy (a write takes well under a microsecond).
const READ_ATTEMPTS: u32 = 256;

/// A handle on an SA database for reading. Cheap to clone; `Send` and `Sync`.
#[derive(Clone, Debug)]
pub struct Reader {
    db: Arc<Db>,
}

impl Reader {
    /// Attaches to the database at `path` (refused if its layout differs from this build's).
    pub fn attach(path: impl AsRef<Path>) -> Result<Reader, OpenError> {
        Ok(Reader { db: Arc::new(Db::attach(path.as_ref())?) })
    }

    pub(crate) fn from_db(db: Arc<Db>) -> Reader {
        Reader { db }
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn db_arc(&self) -> Arc<Db> {
        self.db.clone()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The file's capacities.
    pub fn capacities(&self) -> Capacities {
        self.db.caps()
    }

    /// The generation: it changes with every committed update. Poll it between bursts and
    /// [`Reader::refresh`] when it moved.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.db.control().generation.load(Ordering::Acquire)
    }

    /// Pid of the last writer that attached, and how many writers attached over the file's life.
    pub fn writer_info(&self) -> (u64, u64) {
        let c = self.db.control();
        (c.writer_pid.load(Ordering::Relaxed), c.writer_epoch.load(Ordering::Relaxed))
    }

    fn sa_words(&self, slot: u32, n: usize, out: &mut [u64; SA_WORDS]) -> Result<(), ReadError> {
        let s = self.db.sa_slots().get(slot as usize).ok_or(ReadError::OutOfRange)?;
        match seqlock::read_retrying(&s.words[0], &s.words[1..n], &mut out[1..n], READ_ATTEMPTS) {
            Ok(v) => {
                out[0] = v;
                Ok(())
            }
            Err(ReadFailure::Busy | ReadFailure::Torn) => Err(ReadError::Busy),
        }
    }

    /// Reads the SA record in `slot` (keys included; they are zeroized when it drops).
    pub fn read_sa(&self, slot: u32) -> Result<SaRecord, ReadError> {
        let mut words = zeroize::Zeroizing::new([0u64; SA_WORDS]);
        self.sa_words(slot, SA_WORDS, &mut words)?;
        let rec = SaRecord::from_words(&words);
        if !rec.is_live() {
            return Err(ReadError::Free);
        }
        rec.validate().map_err(|_| ReadError::Corrupt)?;
        Ok(rec)
    }

    /// Reads the SA `id`; [`ReadError::Replaced`] if its slot holds another SA now.
    pub fn read_sa_id(&self, id: SaId) -> Result<SaRecord, ReadError> {
        let rec = self.read_sa(id.slot)?;
        if rec.id() != id {
            return Err(ReadError::Replaced);
        }
        Ok(rec)
    }

    /// Reads the metadata of the SA in `slot` (the first two cache lines only; no keys).
    pub fn read_sa_meta(&self, slot: u32) -> Result<SaMeta, ReadError> {
        let mut words = [0u64; SA_WORDS];
        self.sa_words(slot, SA_META_WORDS, &mut words)?;
        let rec = SaRecord::from_words(&words);
        if !rec.is_live() {
            return Err(ReadError::Free);
        }
        if !rec.meta_is_valid() {
            return Err(ReadError::Corrupt);
        }
        Ok(rec.meta())
    }

    /// Reads the policy in `slot`.
    pub fn read_policy(&self, slot: u32) -> Result<PolicyInfo, ReadError> {
        let s = self.db.policy_slots().get(slot as usize).ok_or(ReadError::OutOfRange)?;
        let mut words = [0u64; POLICY_WORDS];
        let v = seqlock::read_retrying(&s.words[0], &s.words[1..], &mut words[1..], READ_ATTEMPTS)
            .map_err(|_| ReadError::Busy)?;
        words[0] = v;
        let rec = PolicyRecord::from_words(&words);
        if !rec.is_live() {
            return Err(ReadError::Free);
        }
        rec.decode(slot).ok_or(ReadError::Corrupt)
    }

    /// Finds an SA by SPI and outer destination address through the SPI index in shared
    /// memory (one lookup, no compiled index needed).
    pub fn find_sa(&self, spi: u32, dst: IpAddr) -> Option<SaRecord> {
        let mut found = None;
        spi_index::find(self.db.spi_buckets(), self.db.hash_seed(), spi, |slot| match self.read_sa(slot) {
            Ok(r) if r.spi() == spi && r.outer_dst() == dst => {
                found = Some(r);
                true
            }
            _ => false,
        });
        found
    }

    /// Pushes an event to the IKE daemon. Never blocks: a full ring counts the event as
    /// dropped.
    pub fn push_event(&self, event: &Event) -> Result<(), RingFull> {
        events::push(&self.db, event)
    }

    /// Claims an event-ring position and never publishes it, as a worker that dies in the
    /// middle of a push would. For crash tests only.
    #[cfg(feature = "test-hooks")]
    pub fn push_event_and_die(&self) {
        events::claim_and_die(&self.db)
    }

    fn high_waters(&self) -> (u32, u32) {
        let c = self.db.control();
        let caps = self.db.caps();
        (
            (c.sa_high_water.load(Ordering::Acquire) as u32).min(caps.sas),
            (c.policy_high_water.load(Ordering::Acquire) as u32).min(caps.policies),
        )
    }

    /// A snapshot of every SA (metadata) and policy. Each record in it is consistent; the
    /// records were read at or after [`Snapshot::generation`], so a reader that refreshes when
    /// the generation moves never misses a change.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.snapshot_once();
        if !s.consistent {
            self.refresh(&mut s);
        }
        s
    }

    fn snapshot_once(&self) -> Snapshot {
        let mut s = Snapshot {
            generation: 0,
            journal_pos: 0,
            consistent: false,
            sas: Vec::new(),
            policies: Vec::new(),
            pending_sas: BTreeSet::new(),
            pending_policies: BTreeSet::new(),
        };
        self.rescan(&mut s);
        s
    }

    /// Brings a snapshot up to date and says which slots changed. Reads only the slots named
    /// in the change journal since the last refresh, or every slot if the snapshot fell more
    /// than a journal behind. If the writer committed meanwhile, reads again (a few times at
    /// most) so that the snapshot settles on one generation; see [`Snapshot::is_consistent`].
    pub fn refresh(&self, snap: &mut Snapshot) -> Changes {
        let mut all = self.refresh_once(snap);
        for _ in 0..3 {
            if snap.consistent {
                break;
            }
            let more = self.refresh_once(snap);
            all.full_rescan |= more.full_rescan;
            all.sas.extend(more.sas);
            all.policies.extend(more.policies);
        }
        all.sas.sort_unstable();
        all.sas.dedup();
        all.policies.sort_unstable();
        all.policies.dedup();
        all
    }

    fn refresh_once(&self, snap: &mut Snapshot) -> Changes {
        let g = self.generation();
        if g == snap.generation && snap.pending_sas.is_empty() && snap.pending_policies.is_empty() {
            snap.consistent = true;
            return Changes::default();
        }
        let head = self.db.control().journal_head.load(Ordering::Acquire);
        let Some(entries) = journal::read(&self.db, snap.journal_pos, head) else {
            return self.rescan(snap);
        };
        let mut sas: BTreeSet<u32> = std::mem::take(&mut snap.pending_sas);
        let mut policies: BTreeSet<u32> = std::mem::take(&mut snap.pending_policies);
        for (kind, slot) in entries {
            match kind {
                Kind::Sa => sas.insert(slot),
                Kind::Policy => policies.insert(slot),
            };
        }
        snap.generation = g;
        snap.journal_pos = head;
        let mut changes = Changes::default();
        for slot in sas {
            self.reread_sa(snap, slot, &mut changes);
        }
        for slot in policies {
            self.reread_policy(snap, slot, &mut changes);
        }
        snap.settle(g, self.generation());
        changes
    }

    fn reread_sa(&self, snap: &mut Snapshot, slot: u32, changes: &mut Changes) {
        let s = slot as usize;
        if s >= snap.sas.len() {
            snap.sas.resize(s + 1, None);
        }
        let new = match self.read_sa_meta(slot) {
            Ok(m) => Some(m),
            Err(ReadError::Busy) => {
                // Keep what we had; try again at the next refresh.
                snap.pending_sas.insert(slot);
                return;
            }
            Err(_) => None,
        };
        if snap.sas[s] != new {
            snap.sas[s] = new;
            changes.sas.push(slot);
        }
    }

    fn reread_policy(&self, snap: &mut Snapshot, slot: u32, changes: &mut Changes) {
        let s = slot as usize;
        if s >= snap.policies.len() {
            snap.policies.resize(s + 1, None);
        }
        let new = match self.read_policy(slot) {
            Ok(p) => Some(p),
            Err(ReadError::Busy) => {
                snap.pending_policies.insert(slot);
                return;
            }
            Err(_) => None,
        };
        if snap.policies[s] != new {
            snap.policies[s] = new;
            changes.policies.push(slot);
        }
    }

    fn rescan(&self, snap: &mut Snapshot) -> Changes {
        // Generation and journal position first: every change after them is seen again later.
        let g = self.generation();
        snap.generation = g;
        snap.journal_pos = self.db.control().journal_head.load(Ordering::Acquire);
        snap.pending_sas.clear();
        snap.pending_policies.clear();
        let (sa_hw, pol_hw) = self.high_waters();
        let mut changes = Changes { full_rescan: true, ..Changes::default() };
        for slot in 0..(sa_hw as usize).max(snap.sas.len()) as u32 {
            self.reread_sa(snap, slot, &mut changes);
        }
        for slot in 0..(pol_hw as usize).max(snap.policies.len()) as u32 {
            self.reread_policy(snap, slot, &mut changes);
        }
        snap.settle(g, self.generation());
        changes
    }
}

/// Every SA (metadata only) and policy of a database, as one reader last saw them.
#[derive(Clone, Debug)]
pub struct Snapshot {
    generation: u64,
    journal_pos: u64,
    consistent: bool,
    sas: Vec<Option<SaMeta>>,
    policies: Vec<Option<PolicyInfo>>,
    pending_sas: BTreeSet<u32>,
    pending_policies: BTreeSet<u32>,
}

impl Snapshot {
    fn settle(&mut self, before: u64, after: u64) {
        self.consistent = before == after && self.pending_sas.is_empty() && self.pending_policies.is_empty();
    }

    /// The generation this snapshot is complete for (later changes may be in it too).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether the snapshot is one generation exactly: no commit happened while it was read
    /// and no record was busy. Each record is always consistent in itself; across records a
    /// snapshot read while the writer was busy may briefly show both the old and the new
    /// place of an SA that was deleted and reinstalled (the next refresh settles it).
    pub fn is_consistent(&self) -> bool {
        self.consistent
    }

    /// Whether some records were busy (being written) and kept at their previous value.
    pub fn has_pending(&self) -> bool {
        !self.pending_sas.is_empty() || !self.pending_policies.is_empty()
    }

    /// The SA in `slot`.
    pub fn sa(&self, slot: u32) -> Option<&SaMeta> {
        self.sas.get(slot as usize).and_then(Option::as_ref)
    }

    /// The SA `id`, if its slot still holds it.
    pub fn sa_id(&self, id: SaId) -> Option<&SaMeta> {
        self.sa(id.slot).filter(|m| m.id == id)
    }

    /// Every SA, by slot.
    pub fn sas(&self) -> impl Iterator<Item = &SaMeta> + '_ {
        self.sas.iter().flatten()
    }

    /// The policy in `slot`.
    pub fn policy(&self, slot: u32) -> Option<&PolicyInfo> {
        self.policies.get(slot as usize).and_then(Option::as_ref)
    }

    /// Every policy, by slot.
    pub fn policies(&self) -> impl Iterator<Item = &PolicyInfo> + '_ {
        self.policies.iter().flatten()
    }
}

/// Which slots a refresh found changed (added, removed or rewritten).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// SA slots: rebuild (or drop) the data plane's runtime of each.
    pub sas: Vec<u32>,
    /// Policy slots.
    pub policies: Vec<u32>,
    /// The snapshot was rebuilt from every slot (it fell more than a journal behind).
    pub full_rescan: bool,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.sas.is_empty() && self.policies.is_empty()
    }
}
