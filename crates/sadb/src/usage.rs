//! The usage area: per-SA counters written by the data plane (bytes, packets, last use, the
//! sequence-number high-water marks) and read by the IKE daemon for lifetimes, rekeying and
//! dead-peer detection; and the outbound sequence-number reservation that keeps a sequence
//! number from ever being used twice under one key, across cores and across restarts of the
//! data plane.
//!
//! Every field is an atomic updated with `fetch_add`/`fetch_max`/compare-and-swap: workers
//! never lock. Counters are aggregated per burst by the caller; this module must never be
//! called once per packet on the hot path.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rampart_sa::Lifetimes;

use crate::events::{self, Event, LimitKind};
use crate::reader::Reader;
use crate::record::SaId;
use crate::shm::{Db, UsageSlot};

/// Sequence numbers reserved in shared memory at a time by one [`OutboundSeq`].
pub const SEQ_BLOCK: u64 = 1 << 16;

/// Highest sequence number of an SA without extended sequence numbers.
pub const SEQ_MAX_32: u64 = u32::MAX as u64;

/// A [`Event::SeqNearWrap`] is raised once the reservation of a 32-bit SA passes
/// `SEQ_MAX_32 - SEQ_WRAP_MARGIN_32` (a quarter of the space left for the rekey).
pub const SEQ_WRAP_MARGIN_32: u64 = 1 << 30;

/// Same for ESN SAs.
pub const SEQ_WRAP_MARGIN_64: u64 = 1 << 40;

const FLAG_SOFT: u64 = 1;
const FLAG_HARD: u64 = 2;
const FLAG_WRAP: u64 = 4;

/// A copy of an SA's usage counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageCounters {
    /// Bytes protected or accepted.
    pub bytes: u64,
    /// Packets protected or accepted.
    pub packets: u64,
    /// The database's seconds ([`crate::clock::now`]) of the last use (0: never).
    pub last_use: u64,
    /// Outbound: highest sequence number reserved; a restarted data plane continues above it.
    pub seq_reserved: u64,
    /// Highest sequence number used (outbound: sent; inbound: authenticated).
    pub seq_used: u64,
}

/// Where an SA stands against its lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Within every limit.
    Fresh,
    /// A soft limit passed: the IKE daemon was told to rekey.
    Soft(LimitKind),
    /// A hard limit passed: stop using the SA.
    Hard(LimitKind),
}

/// Why no sequence numbers could be reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    /// The SA's sequence space is used up: it must not send any more.
    #[error("sequence numbers exhausted: the SA must be rekeyed")]
    Exhausted,
    /// The slot holds another SA now (the SA was deleted).
    #[error("the SA was replaced")]
    Replaced,
}

fn slot_of(db: &Db, sa: SaId) -> Option<&UsageSlot> {
    let u = db.usage_slots().get(sa.slot as usize)?;
    (u.incarnation.load(Ordering::Acquire) == u64::from(sa.incarnation)).then_some(u)
}

impl Reader {
    /// Adds a burst's bytes and packets to an SA's counters and notes the time (the
    /// database's seconds, [`crate::clock::now`]). Returns false (and counts nothing) if the slot holds another SA now.
    pub fn account(&self, sa: SaId, bytes: u64, packets: u64, now: u64) -> bool {
        let Some(u) = slot_of(self.db(), sa) else { return false };
        u.bytes.fetch_add(bytes, Ordering::Relaxed);
        u.packets.fetch_add(packets, Ordering::Relaxed);
        u.last_use.fetch_max(now, Ordering::Relaxed);
        true
    }

    /// Notes the highest sequence number used in a burst (outbound: sent; inbound:
    /// authenticated).
    pub fn note_seq_used(&self, sa: SaId, seq: u64) {
        if let Some(u) = slot_of(self.db(), sa) {
            u.seq_used.fetch_max(seq, Ordering::Relaxed);
        }
    }

    /// A copy of an SA's counters; `None` if the slot holds another SA now.
    pub fn usage(&self, sa: SaId) -> Option<UsageCounters> {
        let u = slot_of(self.db(), sa)?;
        Some(UsageCounters {
            bytes: u.bytes.load(Ordering::Relaxed),
            packets: u.packets.load(Ordering::Relaxed),
            last_use: u.last_use.load(Ordering::Relaxed),
            seq_reserved: u.seq_reserved.load(Ordering::Relaxed),
            seq_used: u.seq_used.load(Ordering::Relaxed),
        })
    }

    /// Checks an SA's counters and age against its lifetimes (zero: no limit) and raises
    /// [`Event::SoftExpire`] / [`Event::HardExpire`] once each, whichever process or thread
    /// notices first.
    pub fn check_lifetimes(&self, sa: SaId, spi: u32, lifetimes: &Lifetimes, install_time: u64, now: u64) -> Expiry {
        let Some(u) = slot_of(self.db(), sa) else { return Expiry::Hard(LimitKind::Time) };
        let bytes = u.bytes.load(Ordering::Relaxed);
        let packets = u.packets.load(Ordering::Relaxed);
        let age = now.saturating_sub(install_time);
        let over = |value: u64, limit: u64| limit != 0 && value >= limit;
        let first_over = |b: u64, p: u64, t: u64| {
            if over(bytes, b) {
                Some(LimitKind::Bytes)
            } else if over(packets, p) {
                Some(LimitKind::Packets)
            } else if over(age, t) {
                Some(LimitKind::Time)
            } else {
                None
            }
        };
        let l = lifetimes;
        if let Some(limit) = first_over(l.hard_bytes, l.hard_packets, l.hard_seconds) {
            if u.flags.fetch_or(FLAG_HARD, Ordering::Relaxed) & FLAG_HARD == 0 {
                let _ = events::push(self.db(), &Event::HardExpire { sa, spi, limit });
            }
            return Expiry::Hard(limit);
        }
        if let Some(limit) = first_over(l.soft_bytes, l.soft_packets, l.soft_seconds) {
            if u.flags.fetch_or(FLAG_SOFT, Ordering::Relaxed) & FLAG_SOFT == 0 {
                let _ = events::push(self.db(), &Event::SoftExpire { sa, spi, limit });
            }
            return Expiry::Soft(limit);
        }
        Expiry::Fresh
    }

    /// A sequence-number source for an outbound SA (one per worker that sends on it).
    pub fn outbound_seq(&self, sa: SaId, spi: u32, esn: bool) -> OutboundSeq {
        OutboundSeq { db: self.db_arc(), sa, spi, esn, next: 1, end: 0 }
    }
}

/// Hands out outbound sequence numbers from blocks of [`SEQ_BLOCK`] reserved in shared memory
/// before any number of the block is used.
///
/// The shared high-water mark only grows (compare-and-swap), so blocks of different workers
/// never overlap, and a data plane restarted after a crash reserves above every number the dead
/// one may have sent. A restart skips at most the rest of one block per worker.
///
/// Several workers sending on one SA each get their own blocks, so their numbers interleave by
/// up to a block: the receiver's replay window would drop the laggard's packets. Steer each
/// outbound SA to one worker at a time (the usual RSS / hand-off design).
#[derive(Debug)]
pub struct OutboundSeq {
    db: Arc<Db>,
    sa: SaId,
    spi: u32,
    esn: bool,
    next: u64,
    end: u64,
}

impl OutboundSeq {
    /// The SA.
    pub fn sa(&self) -> SaId {
        self.sa
    }

    /// Reserves `n` consecutive sequence numbers and returns the first.
    //= https://www.rfc-editor.org/rfc/rfc4303#section-3.3.3
    //# If anti-replay is enabled (the default), the transmitted sequence number must never
    //# be allowed to cycle.
    pub fn reserve(&mut self, n: u32) -> Result<u64, SeqError> {
        let n = u64::from(n.max(1));
        if self.end >= self.next && self.end - self.next + 1 >= n {
            let first = self.next;
            self.next += n;
            return Ok(first);
        }
        let (first, last) = self.reserve_block(n)?;
        self.next = first + n;
        self.end = last;
        Ok(first)
    }

    fn reserve_block(&self, n: u64) -> Result<(u64, u64), SeqError> {
        let u = slot_of(&self.db, self.sa).ok_or(SeqError::Replaced)?;
        let (max, margin) = if self.esn { (u64::MAX, SEQ_WRAP_MARGIN_64) } else { (SEQ_MAX_32, SEQ_WRAP_MARGIN_32) };
        let mut cur = u.seq_reserved.load(Ordering::Acquire);
        let new = loop {
            let new = cur.saturating_add(SEQ_BLOCK.max(n)).min(max);
            if new - cur < n {
                return Err(SeqError::Exhausted);
            }
            match u.seq_reserved.compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break new,
                Err(now) => cur = now,
            }
        };
        // The writer resets the counters before it gives the slot a new incarnation: if that
        // happened meanwhile, our block may come from the new SA's space. Never use it.
        if u.incarnation.load(Ordering::Acquire) != u64::from(self.sa.incarnation) {
            return Err(SeqError::Replaced);
        }
        let threshold = max - margin;
        if cur < threshold && new >= threshold && u.flags.fetch_or(FLAG_WRAP, Ordering::Relaxed) & FLAG_WRAP == 0 {
            let _ = events::push(&self.db, &Event::SeqNearWrap { sa: self.sa, spi: self.spi, reserved: new });
        }
        Ok((cur + 1, new))
    }
}
