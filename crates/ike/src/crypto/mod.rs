//! The cryptography of the IKE SA itself: PRFs, integrity, the Encrypted payload's ciphers,
//! Diffie-Hellman groups, and the source of randomness.
//!
//! ESP algorithms of CHILD_SAs are not here: they are `rampart_sa::Suite`s. Nothing in this
//! module logs, and no key leaves it except through `Zeroizing` buffers.

mod cipher;
mod dh;
mod prf;

pub use cipher::{AEAD_ICV_LEN, DecryptError, Encr};
pub use dh::{DhGroup, KeError, KeyShare, modp2048_prime};
pub use prf::{Integ, Prf};

/// Where nonces, SPIs, IVs and private values come from. The endpoint owns one; tests use a
/// seeded one so that runs repeat exactly.
pub trait RandomSource: Send {
    /// Fills `buf` with unpredictable bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's generator (through `ring`).
#[derive(Debug)]
pub struct SystemRandom(ring::rand::SystemRandom);

impl SystemRandom {
    /// A handle on the system generator.
    pub fn new() -> SystemRandom {
        SystemRandom(ring::rand::SystemRandom::new())
    }
}

impl Default for SystemRandom {
    fn default() -> Self {
        SystemRandom::new()
    }
}

impl RandomSource for SystemRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        use ring::rand::SecureRandom;
        // The system generator fails only if the kernel cannot supply entropy at all; there is
        // no safe way on from there.
        if self.0.fill(buf).is_err() {
            panic!("the operating system's random generator failed");
        }
    }
}

/// A deterministic generator (SHA-256 in counter mode over a seed) for tests and simulations.
/// Never use it for real keys.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    seed: [u8; 32],
    counter: u64,
}

impl SeededRandom {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> SeededRandom {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_be_bytes());
        SeededRandom { seed: s, counter: 0 }
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(&self.seed);
            ctx.update(&self.counter.to_be_bytes());
            self.counter += 1;
            let d = ctx.finish();
            chunk.copy_from_slice(&d.as_ref()[..chunk.len()]);
        }
    }
}
