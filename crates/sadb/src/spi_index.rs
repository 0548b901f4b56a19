//! The SPI index in shared memory: an open-addressing hash table from SPI to SA slot, written
//! by the writer only, read by anyone who needs a single lookup without compiling a
//! [`crate::SaIndex`].
//!
//! Each bucket is one atomic word: `spi << 32 | (slot + 1)`, 0 for empty, all ones for a
//! deleted entry (tombstone). A lookup yields candidate slots; the caller confirms each by
//! reading the record under its seqlock (SPI, destination, liveness), so a stale or
//! half-updated bucket can never make a reader act on the wrong SA. Tombstones are turned back
//! into empty buckets when no probe sequence can run through them any more. This module never
//! reads records itself.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::hash::mix64;

const EMPTY: u64 = 0;
const TOMBSTONE: u64 = u64::MAX;

fn entry(spi: u32, slot: u32) -> u64 {
    (u64::from(spi) << 32) | (u64::from(slot) + 1)
}

fn start(buckets: &[AtomicU64], seed: u64, spi: u32) -> usize {
    mix64(u64::from(spi), seed) as usize & (buckets.len() - 1)
}

/// Inserts `spi -> slot`. The table has at least twice as many buckets as SA slots, so there
/// is always a free bucket.
pub(crate) fn insert(buckets: &[AtomicU64], seed: u64, spi: u32, slot: u32) {
    let mask = buckets.len() - 1;
    let mut i = start(buckets, seed, spi);
    for _ in 0..buckets.len() {
        let b = buckets[i].load(Ordering::Relaxed);
        if b == EMPTY || b == TOMBSTONE {
            buckets[i].store(entry(spi, slot), Ordering::Release);
            return;
        }
        i = (i + 1) & mask;
    }
    debug_assert!(false, "SPI index full");
}

/// Removes `spi -> slot`; returns whether it was there.
pub(crate) fn remove(buckets: &[AtomicU64], seed: u64, spi: u32, slot: u32) -> bool {
    let mask = buckets.len() - 1;
    let want = entry(spi, slot);
    let mut i = start(buckets, seed, spi);
    for _ in 0..buckets.len() {
        let b = buckets[i].load(Ordering::Relaxed);
        if b == EMPTY {
            return false;
        }
        if b == want {
            buckets[i].store(TOMBSTONE, Ordering::Release);
            sweep_back(buckets, i);
            return true;
        }
        i = (i + 1) & mask;
    }
    false
}

/// Turns the tombstone at `i`, and the run of tombstones before it, back into empty buckets
/// when the bucket after `i` is empty: no probe sequence can then continue through them.
/// A reader probing concurrently is unaffected: the key it looks for, if present, sits before
/// the first empty bucket of its probe sequence, hence before `i`'s run.
fn sweep_back(buckets: &[AtomicU64], mut i: usize) {
    let mask = buckets.len() - 1;
    if buckets[(i + 1) & mask].load(Ordering::Relaxed) != EMPTY {
        return;
    }
    for _ in 0..buckets.len() {
        if buckets[i].load(Ordering::Relaxed) != TOMBSTONE {
            return;
        }
        buckets[i].store(EMPTY, Ordering::Release);
        i = (i + mask) & mask;
    }
}

/// Calls `f` with every slot indexed under `spi` until `f` returns true; returns whether it did.
pub(crate) fn find(buckets: &[AtomicU64], seed: u64, spi: u32, mut f: impl FnMut(u32) -> bool) -> bool {
    let mask = buckets.len() - 1;
    let mut i = start(buckets, seed, spi);
    for _ in 0..buckets.len() {
        let b = buckets[i].load(Ordering::Acquire);
        if b == EMPTY {
            return false;
        }
        if b != TOMBSTONE && (b >> 32) as u32 == spi && f((b as u32).wrapping_sub(1)) {
            return true;
        }
        i = (i + 1) & mask;
    }
    false
}

/// Every `(spi, slot)` in the table (writer-side repair).
pub(crate) fn entries(buckets: &[AtomicU64]) -> impl Iterator<Item = (usize, u32, u32)> + '_ {
    buckets.iter().enumerate().filter_map(|(i, b)| {
        let b = b.load(Ordering::Relaxed);
        (b != EMPTY && b != TOMBSTONE).then_some((i, (b >> 32) as u32, (b as u32).wrapping_sub(1)))
    })
}

/// Removes the entry in bucket `i` (writer-side repair).
pub(crate) fn remove_at(buckets: &[AtomicU64], i: usize) {
    buckets[i].store(TOMBSTONE, Ordering::Release);
    sweep_back(buckets, i);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    fn lookup(t: &[AtomicU64], spi: u32) -> Vec<u32> {
        let mut v = Vec::new();
        find(t, 7, spi, |s| {
            v.push(s);
            false
        });
        v.sort();
        v
    }

    #[test]
    fn matches_a_hash_map_under_churn_and_sweeps_tombstones() {
        // A tiny table with colliding SPIs, churned against a reference map.
        let t = table(64);
        let mut model: HashMap<u32, Vec<u32>> = HashMap::new();
        let mut x = 1u64;
        for step in 0..20_000u32 {
            x = mix64(x, 3);
            let spi = (x % 40) as u32;
            let slot = ((x >> 20) % 3) as u32;
            let live: usize = model.values().map(Vec::len).sum();
            let e2 = model.get(&spi).cloned().unwrap_or_default();
            if e2.contains(&slot) {
                assert!(remove(&t, 7, spi, slot));
                model.get_mut(&spi).unwrap().retain(|s| *s != slot);
            } else if live < 32 {
                insert(&t, 7, spi, slot);
                model.entry(spi).or_default().push(slot);
            }
            if step % 97 == 0 {
                for spi in 0..40 {
                    let mut want = model.get(&spi).cloned().unwrap_or_default();
                    want.sort();
                    assert_eq!(lookup(&t, spi), want, "spi {spi} at step {step}");
                }
            }
        }
        // Empty the table: every bucket must be empty again, not a tombstone.
        for (spi, slots) in model {
            for s in slots {
                assert!(remove(&t, 7, spi, s));
            }
        }
        assert!(t.iter().all(|b| b.load(Ordering::Relaxed) == EMPTY));
    }
}
