//! The SA and policy tables the workers read, compiled by the control thread from the SA
//! database, and the per-SA state that all workers share.
//!
//! The control thread polls the database generation; when it moves it refreshes its
//! [`Snapshot`], re-reads the changed SA records (keys included), compiles a new [`SpdLookup`]
//! (outbound policies) and [`SaIndex`] (inbound SAs by SPI and destination), and publishes an
//! immutable [`Tables`] behind an [`ArcSwap`] with a version number. Workers compare the
//! version once per burst and, when it moved, rebuild their own SA runtimes for the slots whose
//! record changed (expanded keys live in each worker's memory, DESIGN.md).
//!
//! Shared per-SA state ([`SaShared`]) survives table rebuilds for as long as the SA keeps its
//! [`SaId`]: the outbound sequence counter and the hard-expiry flag.
//!
//! # Sequence numbers across workers (DESIGN.md rule 3)
//!
//! Every worker sending on an outbound SA takes numbers for its burst from one shared counter
//! ([`SeqAllocator::take`], one compare-and-swap per SA per burst) and hands them to its own
//! `OutboundSa` with `resume_at` + `set_seq_limit`. The counter never passes the high-water mark
//! reserved in the database ([`rampart_sadb::OutboundSeq`], blocks of [`SEQ_BLOCK`]), and the
//! reservation is extended ahead of use, so a data plane restarted after a crash starts above
//! every number the old one may have sent. Numbers of different workers interleave by at most a
//! burst, far inside the receiver's replay window.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use arc_swap::ArcSwap;
use rampart_esp::{Direction, SaConfig};
use rampart_sadb::{
    OutboundSeq, PolicyAction, PolicyDir, Reader, SEQ_BLOCK, SaId, SaIndex, SeqError, Snapshot, SpdLookup,
};

/// Extend the database reservation when fewer numbers than this are left.
const SEQ_LOW_WATER: u64 = SEQ_BLOCK / 2;

/// Why [`SeqAllocator::take`] gave no numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeError {
    /// The SA's sequence space is used up: it must never send again.
    Exhausted,
    /// The SA was deleted (its database slot holds another SA).
    Replaced,
    /// Another worker held the reservation for too long (it was descheduled): drop this burst's
    /// packets, try again with the next.
    Busy,
}

/// The shared outbound sequence counter of one SA.
#[derive(Debug)]
pub struct SeqAllocator {
    /// Next number to hand out.
    next: AtomicU64,
    /// Last number covered by the database reservation (inclusive); 0: none yet.
    limit: AtomicU64,
    /// The database side; touched only with `try_lock` (never waits), once per block.
    db: Mutex<OutboundSeq>,
    exhausted: AtomicBool,
}

impl SeqAllocator {
    /// A counter over the database reservation `seq`.
    pub fn new(seq: OutboundSeq) -> SeqAllocator {
        SeqAllocator {
            next: AtomicU64::new(1),
            limit: AtomicU64::new(0),
            db: Mutex::new(seq),
            exhausted: AtomicBool::new(false),
        }
    }

    /// Takes `n` consecutive numbers; returns the first and the last. One compare-and-swap in
    /// the common case; extends the database reservation (one more compare-and-swap in shared
    /// memory) once per half block.
    pub fn take(&self, n: u64) -> Result<(u64, u64), TakeError> {
        let n = n.max(1);
        let mut waits = 0u32;
        loop {
            let cur = self.next.load(Ordering::Acquire);
            let limit = self.limit.load(Ordering::Acquire);
            let last = cur + n - 1;
            if last <= limit {
                if self.next.compare_exchange_weak(cur, last + 1, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    if limit - last < SEQ_LOW_WATER {
                        // Ahead of need; never waits (another worker may be doing it).
                        let _ = self.extend(false);
                    }
                    return Ok((cur, last));
                }
                continue;
            }
            if self.exhausted.load(Ordering::Relaxed) {
                return Err(TakeError::Exhausted);
            }
            match self.extend(true) {
                Ok(true) => {}
                Ok(false) => {
                    // Another worker is reserving the next block (a compare-and-swap in shared
                    // memory); it only takes long if that thread was descheduled meanwhile.
                    waits += 1;
                    if waits > 10_000 {
                        return Err(TakeError::Busy);
                    }
                    if waits.is_multiple_of(64) {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
                Err(SeqError::Exhausted) => return Err(TakeError::Exhausted),
                Err(SeqError::Replaced) => return Err(TakeError::Replaced),
            }
        }
    }

    /// Reserves one more block in the database if this thread gets the reservation lock;
    /// returns whether it did (or whether the block was not needed any more).
    fn extend(&self, needed: bool) -> Result<bool, SeqError> {
        let mut db = match self.db.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(false),
        };
        let limit = self.limit.load(Ordering::Acquire);
        let next = self.next.load(Ordering::Acquire);
        if !needed && limit.saturating_sub(next) >= SEQ_LOW_WATER {
            return Ok(true);
        }
        match db.reserve(SEQ_BLOCK as u32) {
            Ok(first) => {
                let last = first + SEQ_BLOCK - 1;
                if first > limit + 1 {
                    // Not contiguous with what we had: skip the gap (never go back).
                    self.next.fetch_max(first, Ordering::AcqRel);
                }
                self.limit.store(last, Ordering::Release);
                Ok(true)
            }
            Err(e) => {
                if e == SeqError::Exhausted {
                    self.exhausted.store(true, Ordering::Relaxed);
                }
                if needed { Err(e) } else { Ok(true) }
            }
        }
    }

    /// The next number that would be handed out.
    pub fn peek(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// Last number reserved in the database.
    pub fn reserved(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }
}

/// State of one SA shared by every worker.
#[derive(Debug)]
pub struct SaShared {
    /// Set once the SA passed a hard lifetime (or used up its sequence numbers): no worker
    /// sends or accepts on it any more.
    pub expired: AtomicBool,
    /// Outbound SAs: the sequence counter.
    pub seq: Option<SeqAllocator>,
    /// Inbound SAs: the anti-replay window every worker's runtime of the SA checks and moves
    /// (lock-free, `rampart_esp::ReplayWindow`).
    pub window: Option<Arc<rampart_esp::ReplayWindow>>,
}

/// One SA as the workers see it.
pub struct SaEntry {
    /// Name in the database.
    pub id: SaId,
    /// Seqlock version of the record this entry was read from.
    pub version: u64,
    /// The configuration (keys zeroized on drop).
    pub config: SaConfig,
    /// Unix seconds of installation.
    pub install_time: u64,
    /// Shared runtime state.
    pub shared: Arc<SaShared>,
}

impl std::fmt::Debug for SaEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaEntry")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("config", &self.config)
            .finish()
    }
}

/// What the workers read: immutable once published.
pub struct Tables {
    /// Publication number (not the database generation).
    pub version: u64,
    /// Outbound policies.
    pub spd_out: SpdLookup,
    /// Inbound SAs by SPI and destination.
    pub sa_index: SaIndex,
    /// SAs by slot.
    pub sas: Vec<Option<Arc<SaEntry>>>,
    /// Per policy rank: the last acquire pushed (milliseconds), for the rate limit.
    pub acquire_last: Box<[AtomicU64]>,
    /// Destination prefixes of outbound protect and discard policies (LAN steering).
    pub protected: BTreeSet<(IpAddr, u8)>,
}

impl std::fmt::Debug for Tables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("version", &self.version)
            .field("spd_out", &self.spd_out)
            .field("sa_index", &self.sa_index)
            .finish_non_exhaustive()
    }
}

impl Tables {
    /// The SA in `slot`, if it is still `id`.
    #[inline]
    pub fn sa(&self, slot: u32) -> Option<&Arc<SaEntry>> {
        self.sas.get(slot as usize).and_then(Option::as_ref)
    }

    /// Whether an acquire for policy `rank` may be pushed now (at most one per second per
    /// policy over all workers); claims the slot if so.
    pub fn claim_acquire(&self, rank: u32, now_ms: u64) -> bool {
        let Some(last) = self.acquire_last.get(rank as usize) else { return false };
        let prev = last.load(Ordering::Relaxed);
        if prev != 0 && now_ms.saturating_sub(prev) < 1000 {
            return false;
        }
        last.compare_exchange(prev, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// The published tables and their version counter.
pub struct TablesHandle {
    version: AtomicU64,
    tables: ArcSwap<Tables>,
}

impl std::fmt::Debug for TablesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TablesHandle").field("version", &self.version()).finish()
    }
}

impl TablesHandle {
    /// Starts with `first`.
    pub fn new(first: Tables) -> TablesHandle {
        TablesHandle { version: AtomicU64::new(first.version), tables: ArcSwap::from_pointee(first) }
    }

    /// Version of the latest tables: compare once per burst.
    #[inline]
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The latest tables.
    pub fn load(&self) -> Arc<Tables> {
        self.tables.load_full()
    }

    /// Publishes new tables.
    pub fn publish(&self, t: Tables) {
        let v = t.version;
        self.tables.store(Arc::new(t));
        self.version.store(v, Ordering::Release);
    }
}

/// The control thread's side: keeps the snapshot and builds tables.
pub struct TableBuilder {
    reader: Reader,
    snap: Snapshot,
    entries: HashMap<u32, Arc<SaEntry>>,
    version: u64,
    /// Records that could not be read (busy, corrupt, refused by the crypto policy), by slot.
    pub errors: Vec<(u32, String)>,
}

impl std::fmt::Debug for TableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder").field("version", &self.version).finish_non_exhaustive()
    }
}

impl TableBuilder {
    /// Reads the whole database.
    pub fn new(reader: Reader) -> TableBuilder {
        let snap = reader.snapshot();
        let mut b = TableBuilder { reader, snap, entries: HashMap::new(), version: 0, errors: Vec::new() };
        let slots: Vec<u32> = b.snap.sas().map(|m| m.id.slot).collect();
        for slot in slots {
            b.reload_sa(slot);
        }
        b
    }

    /// The reader.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    fn reload_sa(&mut self, slot: u32) {
        let Some(meta) = self.snap.sa(slot).copied() else {
            self.entries.remove(&slot);
            return;
        };
        if self.entries.get(&slot).is_some_and(|e| e.id == meta.id && e.version == meta.version) {
            return;
        }
        let rec = match self.reader.read_sa_id(meta.id) {
            Ok(r) => r,
            Err(e) => {
                self.errors.push((slot, e.to_string()));
                self.entries.remove(&slot);
                return;
            }
        };
        let config = match rec.to_config() {
            Ok(c) => c,
            Err(e) => {
                self.errors.push((slot, e.to_string()));
                self.entries.remove(&slot);
                return;
            }
        };
        let shared = match self.entries.get(&slot) {
            Some(old) if old.id == meta.id => old.shared.clone(),
            _ => Arc::new(SaShared {
                expired: AtomicBool::new(false),
                seq: (config.direction == Direction::Outbound)
                    .then(|| SeqAllocator::new(self.reader.outbound_seq(meta.id, config.spi, config.esn))),
                window: (config.direction == Direction::Inbound)
                    .then(|| Arc::new(rampart_esp::ReplayWindow::new(config.replay_window, config.esn))),
            }),
        };
        self.entries.insert(
            slot,
            Arc::new(SaEntry { id: meta.id, version: rec.version(), config, install_time: rec.install_time(), shared }),
        );
    }

    /// Brings the snapshot up to date; returns new tables when anything changed (or when
    /// `force` is set).
    pub fn refresh(&mut self, force: bool) -> Option<Tables> {
        let changes = self.reader.refresh(&mut self.snap);
        if changes.is_empty() && !force {
            return None;
        }
        for slot in changes.sas {
            self.reload_sa(slot);
        }
        Some(self.build())
    }

    /// Compiles tables from the current snapshot.
    pub fn build(&mut self) -> Tables {
        self.version += 1;
        let spd_out = SpdLookup::build(&self.snap, PolicyDir::Out);
        let sa_index = SaIndex::build(&self.snap);
        let n = self.entries.keys().max().map_or(0, |m| *m as usize + 1);
        let mut sas = vec![None; n];
        for (slot, e) in &self.entries {
            sas[*slot as usize] = Some(e.clone());
        }
        let protected = self
            .snap
            .policies()
            .filter(|p| p.policy.dir == PolicyDir::Out && !matches!(p.policy.action, PolicyAction::Bypass))
            .map(|p| (p.policy.selector.dst.addr(), p.policy.selector.dst.len()))
            .collect();
        Tables {
            version: self.version,
            acquire_last: (0..spd_out.len()).map(|_| AtomicU64::new(0)).collect(),
            spd_out,
            sa_index,
            sas,
            protected,
        }
    }

    /// Every SA entry (for the lifetime sweep).
    pub fn entries(&self) -> impl Iterator<Item = &Arc<SaEntry>> {
        self.entries.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_crypto::Suite;
    use rampart_esp::{Lifetimes, Mode, SaConfig};
    use rampart_sadb::{Capacities, Writer};

    struct TempDb(std::path::PathBuf);
    impl Drop for TempDb {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn outbound(spi: u32, esn: bool) -> SaConfig {
        SaConfig {
            protocol: rampart_sa::Protocol::Esp,
            spi,
            direction: Direction::Outbound,
            suite: Suite::from_swanctl("aes128gcm16").unwrap(),
            encryption_key: vec![7; 20].into(),
            integrity_key: Vec::new().into(),
            mode: Mode::Tunnel,
            local: "192.0.2.1".parse().unwrap(),
            remote: "192.0.2.2".parse().unwrap(),
            encap: None,
            esn,
            replay_window: 1024,
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            lifetimes: Lifetimes::default(),
        }
    }

    fn db(tag: &str) -> (TempDb, Writer) {
        let path = std::env::temp_dir().join(format!("rampart-dp-tables-{}-{tag}.sadb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let caps = Capacities { sas: 64, policies: 64, events: 64, journal: 64 };
        let w = Writer::create(&path, caps).unwrap();
        (TempDb(path), w)
    }

    /// Four workers taking bursts from one SA's counter: every number handed out once, never
    /// beyond the database reservation; a restarted counter starts above all of them.
    #[test]
    fn sequence_numbers_are_unique_across_workers_and_restarts() {
        let (_tmp, mut w) = db("seq");
        let id = w.install_sa(&outbound(0x1001, false), 1, 0).unwrap();
        let reader = w.reader();
        let alloc = Arc::new(SeqAllocator::new(reader.outbound_seq(id, 0x1001, false)));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let alloc = alloc.clone();
                std::thread::spawn(move || {
                    let mut ranges = Vec::new();
                    let mut x = t + 1;
                    for _ in 0..5000 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let n = 1 + (x >> 58); // 1..=64
                        ranges.push(alloc.take(n).unwrap());
                    }
                    ranges
                })
            })
            .collect();
        let mut all: Vec<(u64, u64)> = threads.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_unstable();
        for pair in all.windows(2) {
            assert!(pair[0].1 < pair[1].0, "overlapping blocks {pair:?}");
        }
        let max = all.last().unwrap().1;
        let reserved = reader.usage(id).unwrap().seq_reserved;
        assert!(max <= reserved, "used {max} beyond the reservation {reserved}");
        assert!(reserved >= max + SEQ_LOW_WATER / 2 || reserved - max < SEQ_BLOCK, "reservation kept ahead");
        // One allocator hands out one contiguous run (no gaps inside a process).
        let taken: u64 = all.iter().map(|(a, b)| b - a + 1).sum();
        assert_eq!(taken, max, "numbers skipped inside one process");

        // A restarted data plane (fresh counter over the same database) starts above.
        let again = SeqAllocator::new(reader.outbound_seq(id, 0x1001, false));
        let (first, _) = again.take(1).unwrap();
        assert!(first > reserved, "restart resumed at {first}, at or below {reserved}");
    }

    /// A deleted SA's counter refuses to hand out numbers.
    #[test]
    fn replaced_sa_gets_no_numbers() {
        let (_tmp, mut w) = db("replaced");
        let id = w.install_sa(&outbound(0x2002, true), 1, 0).unwrap();
        let alloc = SeqAllocator::new(w.reader().outbound_seq(id, 0x2002, true));
        assert!(alloc.take(10).is_ok());
        w.delete_sa(id).unwrap();
        w.install_sa(&outbound(0x3003, true), 1, 0).unwrap();
        // What is left of the first block may still be used (it was reserved under the old SA);
        // the next block is refused.
        let mut err = None;
        for _ in 0..(2 * SEQ_BLOCK / 64) {
            if let Err(e) = alloc.take(64) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(TakeError::Replaced));
    }
}
