//! The seqlock protocol that guards every record of the SA database: one writer, any number of
//! readers, and a reader never acts on a torn record.
//!
//! The protocol is written once, generic over the atomic word type ([`SeqWord`]), so that the
//! very same code runs on `std` atomics in shared memory and on `loom` atomics in the model
//! checker (`tests/loom.rs`).
//!
//! Memory-model argument (Boehm, "Can seqlocks get along with programming language memory
//! models?", 2012), every record word being an atomic so that no access is a data race:
//!
//! * writer: `version = v+1` (odd, Relaxed), **fence(Release)**, data words (Relaxed),
//!   `version = v+2` (Release);
//! * reader: `v1 = version` (Acquire), data words (Relaxed), **fence(Acquire)**,
//!   `v2 = version` (Relaxed); the copy is good iff `v1 == v2` and `v1` is even.
//!
//! If the reader's copy contains any word of a write that began at `v+1`, the writer's release
//! fence and the reader's acquire fence make the odd store happen-before the reader's second
//! load, so `v2 >= v+1 > v1`: the copy is discarded. If `v1` saw the even store that closed a
//! write, the acquire load makes every word of that write visible.
//!
//! This module must never block, allocate or spin without bound: retry policy is the caller's.

use core::sync::atomic::Ordering;

/// An atomic 64-bit word the protocol can run on (`std` atomics in shared memory, `loom`
/// atomics in the model checker).
pub trait SeqWord {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// A memory fence of the same world as the words (`std` or `loom`).
    fn fence(order: Ordering);
}

impl SeqWord for core::sync::atomic::AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        core::sync::atomic::AtomicU64::load(self, order)
    }
    #[inline(always)]
    fn store(&self, value: u64, order: Ordering) {
        core::sync::atomic::AtomicU64::store(self, value, order)
    }
    #[inline(always)]
    fn fence(order: Ordering) {
        core::sync::atomic::fence(order)
    }
}

/// Why a read did not produce a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// The version is odd: a write is in progress, or a writer died in the middle of one
    /// (the next writer repairs it when it attaches).
    Busy,
    /// A write ran while the words were copied: the copy is torn and must be thrown away.
    Torn,
}

/// Writes `data` into `words` under `version`. Only the single writer may call this.
///
/// If `version` is odd on entry (a writer died in the middle of a write to this record), the
/// write completes that interrupted one: the words are replaced and the version becomes even.
pub fn write<W: SeqWord>(version: &W, words: &[W], data: &[u64]) {
    debug_assert_eq!(words.len(), data.len());
    let v = version.load(Ordering::Relaxed);
    let odd = if v & 1 == 1 { v } else { v.wrapping_add(1) };
    if v & 1 == 0 {
        version.store(odd, Ordering::Relaxed);
    }
    W::fence(Ordering::Release);
    for (w, d) in words.iter().zip(data) {
        w.store(*d, Ordering::Relaxed);
    }
    version.store(odd.wrapping_add(1), Ordering::Release);
}

/// Starts a write and stops after the first `stop_after` words, leaving the version odd: what
/// a writer that dies in the middle of a write leaves behind. For crash tests only.
#[cfg(feature = "test-hooks")]
pub fn write_interrupted<W: SeqWord>(version: &W, words: &[W], data: &[u64], stop_after: usize) {
    let v = version.load(Ordering::Relaxed);
    if v & 1 == 0 {
        version.store(v.wrapping_add(1), Ordering::Relaxed);
    }
    W::fence(Ordering::Release);
    for (w, d) in words.iter().zip(data).take(stop_after) {
        w.store(*d, Ordering::Relaxed);
    }
}

/// Copies `words` into `out` and returns the (even) version the copy belongs to, or why there
/// is no consistent copy. A copy returned here is never torn.
#[inline]
pub fn read<W: SeqWord>(version: &W, words: &[W], out: &mut [u64]) -> Result<u64, ReadFailure> {
    debug_assert_eq!(words.len(), out.len());
    let v1 = version.load(Ordering::Acquire);
    if v1 & 1 == 1 {
        return Err(ReadFailure::Busy);
    }
    for (o, w) in out.iter_mut().zip(words) {
        *o = w.load(Ordering::Relaxed);
    }
    W::fence(Ordering::Acquire);
    let v2 = version.load(Ordering::Relaxed);
    if v1 == v2 { Ok(v1) } else { Err(ReadFailure::Torn) }
}

/// Like [`read`], retrying a torn or busy copy up to `attempts` times (with a spin hint in
/// between). Returns the last failure when every attempt failed.
#[inline]
pub fn read_retrying<W: SeqWord>(version: &W, words: &[W], out: &mut [u64], attempts: u32) -> Result<u64, ReadFailure> {
    let mut last = ReadFailure::Busy;
    for _ in 0..attempts.max(1) {
        match read(version, words, out) {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        core::hint::spin_loop();
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU64;

    #[test]
    fn write_then_read_round_trips_and_versions_advance_by_two() {
        let version = AtomicU64::new(0);
        let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
        write(&version, &words, &[1, 2, 3, 4]);
        let mut out = [0u64; 4];
        assert_eq!(read(&version, &words, &mut out), Ok(2));
        assert_eq!(out, [1, 2, 3, 4]);
        write(&version, &words, &[5, 6, 7, 8]);
        assert_eq!(read(&version, &words, &mut out), Ok(4));
        assert_eq!(out, [5, 6, 7, 8]);
    }

    #[test]
    fn odd_version_is_busy_and_the_next_write_repairs_it() {
        let version = AtomicU64::new(7);
        let words: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        let mut out = [0u64; 2];
        assert_eq!(read(&version, &words, &mut out), Err(ReadFailure::Busy));
        write(&version, &words, &[9, 9]);
        assert_eq!(read(&version, &words, &mut out), Ok(8));
        assert_eq!(out, [9, 9]);
    }
}
