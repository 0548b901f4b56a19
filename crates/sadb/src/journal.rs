//! The change journal: a ring of "slot S of kind K changed" entries in shared memory, appended
//! by the writer before it bumps the generation, so that a reader that is not too far behind
//! re-reads only the records that changed instead of every slot.
//!
//! Entries are seqlock-protected (version, absolute position, what). A reader that finds an
//! entry overwritten (it fell more than a ring behind) falls back to a full rescan. This module
//! never reads or writes records.

use std::sync::atomic::Ordering;

use crate::seqlock;
use crate::shm::Db;

/// What a journal entry names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Sa = 1,
    Policy = 2,
}

/// Appends an entry (writer only). The caller publishes with the generation bump.
pub(crate) fn append(db: &Db, kind: Kind, slot: u32) {
    let c = db.control();
    let ring = db.journal();
    let pos = c.journal_head.load(Ordering::Relaxed);
    let e = &ring[(pos as usize) & (ring.len() - 1)];
    seqlock::write(&e.words[0], &e.words[1..], &[pos, ((kind as u64) << 32) | u64::from(slot), 0]);
    c.journal_head.store(pos + 1, Ordering::Release);
}

/// The entries at positions `from..to`, or `None` if some were overwritten (or are being
/// overwritten) meanwhile.
pub(crate) fn read(db: &Db, from: u64, to: u64) -> Option<Vec<(Kind, u32)>> {
    let ring = db.journal();
    if to.wrapping_sub(from) > ring.len() as u64 {
        return None;
    }
    let mut out = Vec::with_capacity((to - from) as usize);
    for pos in from..to {
        let e = &ring[(pos as usize) & (ring.len() - 1)];
        let mut body = [0u64; 3];
        let v = seqlock::read_retrying(&e.words[0], &e.words[1..], &mut body, 64).ok()?;
        if v == 0 || body[0] != pos {
            return None;
        }
        let kind = match body[1] >> 32 {
            1 => Kind::Sa,
            2 => Kind::Policy,
            _ => return None,
        };
        out.push((kind, body[1] as u32));
    }
    Some(out)
}
