//! ESP cipher suites behind one burst API, with interchangeable backends.
//!
//! CONTRACT (relied on by `rampart-esp`; extend, do not break):
//!
//! * [`Suite`] = [`Encryption`] + [`Integrity`], built only through constructors that apply the
//!   RFC 8221 policy (DES, 3DES, Blowfish, MD5, encryption without integrity are refused with
//!   [`PolicyError`]).
//! * [`SaCrypto::new`] expands the keys of one SA once (key schedules, HMAC pads, ...) for one
//!   [`Backend`]; it zeroizes key material on drop and its `Debug` never shows keys.
//! * [`seal_burst`] / [`open_burst`] work in place on whole ESP packets, SPI to ICV, for a burst
//!   of any length (processed internally in chunks of at most [`MAX_BURST`]); packets of one
//!   burst may belong to different SAs and backends.
//!
//! Layout of the `esp` slice of an op (RFC 4303 section 2):
//! ```text
//! | SPI (4) | Seq low (4) | IV (iv_len) | payload + padding + pad len + next header | ICV (icv_len) |
//! ```
//! * AEAD suites (RFC 4106, RFC 7634): nonce = salt || IV; AAD = SPI || Seq low, or
//!   SPI || Seq high || Seq low with ESN (RFC 4106 section 5); the encrypted region is everything
//!   between the IV and the ICV.
//! * AES-CBC + HMAC (RFC 3602, RFC 4868): the encrypted region must be a multiple of 16 bytes;
//!   ICV = truncated HMAC over SPI || Seq low || IV || ciphertext, followed by Seq high when
//!   ESN is on (RFC 4303 section 3.3.2.2.1: the high half is authenticated, never sent).
//! * NULL + HMAC (RFC 2410): no IV, no encryption, ICV as above.
#![deny(unsafe_code)]

mod suite;

#[cfg(target_arch = "x86_64")]
pub mod vaes;

pub use suite::{Encryption, Integrity, PolicyError, Suite, encr_id, integ_id};

use core::fmt;

/// Largest burst a backend interleaves at once; longer bursts are cut into chunks of this size.
pub const MAX_BURST: usize = 64;

/// An implementation of the suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The `ring` crate (BoringSSL assembly).
    #[cfg(feature = "ring")]
    Ring,
    /// The pure-Rust RustCrypto crates.
    #[cfg(feature = "rustcrypto")]
    RustCrypto,
}

impl Backend {
    /// Every backend compiled in and usable on this CPU.
    pub fn available() -> Vec<Backend> {
        todo!("crypto: list backends")
    }

    /// The fastest backend for `suite` on this machine (decided by measurement, see bench/).
    pub fn fastest(suite: Suite) -> Backend {
        let _ = suite;
        todo!("crypto: pick the default")
    }

    /// Parses a backend name as the CLI and config write it (`ring`, `rustcrypto`).
    pub fn from_name(name: &str) -> Option<Backend> {
        let _ = name;
        todo!("crypto: backend names")
    }

    /// The name that [`Backend::from_name`] reads back.
    pub fn name(&self) -> &'static str {
        todo!("crypto: backend names")
    }
}

/// Errors building an SA's crypto context, or a misuse of the burst API by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// The key material has the wrong length for the suite.
    KeyLength {
        /// Which key: "encryption" or "integrity".
        which: &'static str,
        /// Bytes the suite needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// The backend cannot do this suite.
    Unsupported {
        /// The backend.
        backend: Backend,
        /// The suite.
        suite: Suite,
    },
    /// A seal op whose buffer does not fit the suite's layout (caller bug, nothing was sealed).
    BadLayout {
        /// Index of the op in the burst.
        index: usize,
    },
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptoError::KeyLength { which, expected, got } => {
                write!(f, "{which} key is {got} bytes, the suite needs {expected}")
            }
            CryptoError::Unsupported { backend, suite } => {
                write!(f, "backend {} does not implement {suite}", backend.name())
            }
            CryptoError::BadLayout { index } => write!(f, "op {index} does not fit the suite's ESP layout"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// One SA's expanded keys for one backend. Zeroized on drop; `Debug` shows no key.
pub struct SaCrypto {
    suite: Suite,
    backend: Backend,
    // Backend-specific expanded keys go here.
}

impl fmt::Debug for SaCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaCrypto").field("suite", &self.suite).field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl SaCrypto {
    /// Expands the keys of one SA. `encryption_key` includes the 4-byte salt of the AEADs
    /// (RFC 4106 section 8.1, RFC 7634 section 4); `integrity_key` is empty for AEADs.
    pub fn new(
        suite: Suite,
        encryption_key: &[u8],
        integrity_key: &[u8],
        backend: Backend,
    ) -> Result<SaCrypto, CryptoError> {
        let _ = (encryption_key, integrity_key);
        let _ = SaCrypto { suite, backend };
        todo!("crypto: key expansion")
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// One packet to seal in place.
///
/// Before: `esp` holds SPI, Seq low, room for the IV, the plaintext payload with its padding,
/// pad length and next header, and room for the ICV. After: the IV is written (AEAD: the
/// 64-bit sequence number, big-endian; CBC: an unpredictable IV derived from it under a
/// per-SA random key), the payload is encrypted and the ICV is written.
pub struct SealOp<'a> {
    /// The SA's crypto context.
    pub sa: &'a SaCrypto,
    /// The whole ESP packet, SPI to ICV.
    pub esp: &'a mut [u8],
    /// The full 64-bit sequence number (its low half is already in `esp[4..8]`).
    pub seq: u64,
    /// Whether the SA uses extended sequence numbers (the high half is authenticated).
    pub esn: bool,
}

/// One packet to verify and decrypt in place.
pub struct OpenOp<'a> {
    /// The SA's crypto context.
    pub sa: &'a SaCrypto,
    /// The whole ESP packet, SPI to ICV, as received.
    pub esp: &'a mut [u8],
    /// The full 64-bit sequence number, high half inferred by the replay window when ESN is on.
    pub seq: u64,
    /// Whether the SA uses extended sequence numbers.
    pub esn: bool,
    /// Set by [`open_burst`]: true when the ICV verified and the payload is decrypted in place.
    /// When false the payload bytes are unspecified and must not be handed on.
    pub verified: bool,
}

/// Seals a burst in place. Checks every op's layout first: on [`CryptoError::BadLayout`]
/// nothing at all was sealed.
pub fn seal_burst(ops: &mut [SealOp<'_>]) -> Result<(), CryptoError> {
    let _ = ops;
    todo!("crypto: seal")
}

/// Verifies and decrypts a burst in place, setting each op's `verified`. Tags are compared in
/// constant time. An op whose length cannot be a valid packet for its suite is not verified.
pub fn open_burst(ops: &mut [OpenOp<'_>]) {
    let _ = ops;
    todo!("crypto: open")
}
