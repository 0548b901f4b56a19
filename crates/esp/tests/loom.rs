//! Model checking of the lock-free replay window under every interleaving loom explores:
//! `RUSTFLAGS="--cfg loom" cargo test -p rampart-esp --release --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use rampart_esp::ReplayWindow;

/// Two workers receive the same packet: exactly one accepts it.
#[test]
fn same_number_accepted_once() {
    loom::model(|| {
        let w = Arc::new(ReplayWindow::new(64, false));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let w = Arc::clone(&w);
                thread::spawn(move || w.check(7).and_then(|s| w.accept(s)).is_ok())
            })
            .collect();
        let accepted = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(accepted, 1);
    });
}

/// One worker moves the window far ahead (reclaiming the word of the old block) while another
/// accepts a number of that old block and then sees a replay of it: the old number is accepted
/// at most once, and never after its word was reclaimed.
#[test]
fn reclaimed_word_never_readmits_an_old_number() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let w = Arc::new(ReplayWindow::new(32, false));
        w.accept(3).unwrap();
        // Words: (32 + 32) / 32 = 2: block 0 and block 2 share word 0.
        let far = 2 * 32 + 1;
        let a = {
            let w = Arc::clone(&w);
            thread::spawn(move || w.accept(far).is_ok())
        };
        let b = {
            let w = Arc::clone(&w);
            thread::spawn(move || (w.accept(5).is_ok(), w.accept(5).is_ok()))
        };
        assert!(a.join().unwrap());
        let (first, replay) = b.join().unwrap();
        assert!(!replay, "5 accepted twice");
        let _ = first;
        // Whatever the interleaving, 5 and 3 can never come in again.
        assert!(w.accept(5).is_err());
        assert!(w.accept(3).is_err());
        assert_eq!(w.top(), far);
    });
}
