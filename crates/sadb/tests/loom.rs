//! Model-checks the seqlock protocol of `rampart_sadb::seqlock` with loom: every interleaving
//! and every outcome that the C++/Rust memory model allows for relaxed and acquire/release
//! accesses (within loom's bounds). The very same generic code runs on shared memory in
//! production. A deliberately broken reader shows that the model does catch torn reads.

use std::sync::atomic::Ordering;

use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use rampart_sadb::seqlock::{self, ReadFailure, SeqWord};

/// A loom atomic the seqlock can run on.
struct W(AtomicU64);

impl SeqWord for W {
    fn load(&self, order: Ordering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: Ordering) {
        self.0.store(value, order)
    }
    fn fence(order: Ordering) {
        loom::sync::atomic::fence(order)
    }
}

const WORDS: usize = 2;

struct Record {
    version: W,
    words: [W; WORDS],
}

fn record() -> Arc<Record> {
    Arc::new(Record { version: W(AtomicU64::new(0)), words: [W(AtomicU64::new(0)), W(AtomicU64::new(0))] })
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Write `k` stores `k` into every word and ends at version `2k`, so a copy is consistent iff
/// all its words are equal and equal to `version / 2`.
fn check_copy(version: u64, out: &[u64; WORDS]) {
    assert_eq!(version % 2, 0);
    assert!(out.iter().all(|w| *w == version / 2), "torn copy accepted: version {version}, words {out:?}");
}

#[test]
fn reader_never_accepts_a_torn_record() {
    model(|| {
        let r = record();
        let w = r.clone();
        let writer = loom::thread::spawn(move || {
            for k in 1..=2u64 {
                seqlock::write(&w.version, &w.words, &[k; WORDS]);
            }
        });
        for _ in 0..2 {
            let mut out = [0u64; WORDS];
            match seqlock::read(&r.version, &r.words, &mut out) {
                Ok(v) => check_copy(v, &out),
                Err(ReadFailure::Busy | ReadFailure::Torn) => {}
            }
        }
        writer.join().unwrap();
        // After the writer is done, a read must succeed with the last record.
        let mut out = [0u64; WORDS];
        assert_eq!(seqlock::read(&r.version, &r.words, &mut out), Ok(4));
        assert_eq!(out, [2; WORDS]);
    });
}

#[test]
fn two_readers_and_a_writer() {
    model(|| {
        let r = record();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                loom::thread::spawn(move || {
                    let mut out = [0u64; WORDS];
                    if let Ok(v) = seqlock::read(&r.version, &r.words, &mut out) {
                        check_copy(v, &out);
                    }
                })
            })
            .collect();
        seqlock::write(&r.version, &r.words, &[1; WORDS]);
        for t in readers {
            t.join().unwrap();
        }
    });
}

#[test]
fn a_write_completes_one_left_odd_by_a_dead_writer() {
    model(|| {
        let r = record();
        // A writer "dies" after one word: the version stays odd.
        r.version.store(1, Ordering::Relaxed);
        r.words[0].store(7, Ordering::Relaxed);
        let rr = r.clone();
        let reader = loom::thread::spawn(move || {
            let mut out = [0u64; WORDS];
            if let Ok(v) = seqlock::read(&rr.version, &rr.words, &mut out) {
                check_copy(v, &out);
            }
        });
        // The next writer completes the interrupted write with a full record.
        seqlock::write(&r.version, &r.words, &[1; WORDS]);
        reader.join().unwrap();
        let mut out = [0u64; WORDS];
        assert_eq!(seqlock::read(&r.version, &r.words, &mut out), Ok(2));
    });
}

/// The classic mistake: a relaxed first load and no acquire fence before the re-check.
fn broken_read(version: &W, words: &[W], out: &mut [u64]) -> Result<u64, ReadFailure> {
    let v1 = version.load(Ordering::Relaxed);
    if v1 & 1 == 1 {
        return Err(ReadFailure::Busy);
    }
    for (o, w) in out.iter_mut().zip(words) {
        *o = w.load(Ordering::Relaxed);
    }
    let v2 = version.load(Ordering::Relaxed);
    if v1 == v2 { Ok(v1) } else { Err(ReadFailure::Torn) }
}

#[test]
#[should_panic(expected = "torn copy accepted")]
fn the_model_catches_a_reader_without_acquire() {
    model(|| {
        let r = record();
        let w = r.clone();
        let writer = loom::thread::spawn(move || {
            seqlock::write(&w.version, &w.words, &[1; WORDS]);
        });
        let mut out = [0u64; WORDS];
        if let Ok(v) = broken_read(&r.version, &r.words, &mut out) {
            check_copy(v, &out);
        }
        writer.join().unwrap();
    });
}
