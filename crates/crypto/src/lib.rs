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
//!   ESN is on (RFC 4303 section 3.3.2.1 step 4: the high half is authenticated, never sent).
//! * NULL + HMAC (RFC 2410): no IV, no encryption, ICV as above.
//!
//! IVs: the AEADs use the 64-bit sequence number, big-endian, as the IV (unique per key, RFC 4106
//! section 3.1, RFC 7634 section 2). AES-CBC uses AES-128-ECB of the block `0^64 || seq` under a
//! random key drawn by [`SaCrypto::new`]: unique and unpredictable (RFC 3602 section 2.4) without
//! a system call per packet.
//!
//! # Backends
//! Cargo features, both on by default; at least one is required.
//!
//! | suite family                  | `ring` (`Backend::Ring`)          | `rustcrypto` (`Backend::RustCrypto`) |
//! |-------------------------------|-----------------------------------|--------------------------------------|
//! | AES-GCM-16, ChaCha20-Poly1305 | `ring::aead`                      | `aes-gcm`, `chacha20poly1305`        |
//! | AES-CBC + HMAC-SHA-2          | `aes` + `cbc`, then `ring::hmac`  | `aes` + `cbc`, then `hmac` + `sha2`  |
//! | NULL + HMAC-SHA-2             | `ring::hmac`                      | `hmac` + `sha2`                      |
//!
//! `ring` has no AES-CBC, so both backends run the cipher of the CBC suites on the RustCrypto
//! `aes`/`cbc` crates and differ in the HMAC. [`Backend::fastest`] names the backend measured
//! fastest for each suite family (see `bench/src/bin/crypto.rs`).
//!
//! # Modules
//! * The suites and the RFC 8221 policy live in `rampart-sa` (the SA vocabulary); they are
//!   re-exported here for callers of the burst API.
//! * `backend`: [`Backend`] and [`CryptoError`]; `sa`: [`SaCrypto`], one SA's expanded keys.
//! * `op`: the jobs of a burst ([`SealOp`], [`OpenOp`]); `burst`: [`seal_burst`], [`open_burst`].
//! * `aead`, `mac`, `cbc`: the primitives of each backend behind small enums.
//! * `esp`: ESP framing of one packet (IV, nonce, AAD, ICV, ESN, wipe on failure).
//! * `raw` (hidden): hooks that let tests drive the primitives with arbitrary inputs; never
//!   used on the data path.
//! * `vaes` (x86-64): Rampart's own multi-buffer AES-GCM.
#![deny(unsafe_code)]

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("rampart-crypto needs at least one backend: enable the `ring` or the `rustcrypto` feature");

mod aead;
mod backend;
mod burst;
mod cbc;
mod esp;
mod mac;
mod op;
#[doc(hidden)]
pub mod raw;

mod sa;

#[cfg(target_arch = "x86_64")]
pub mod vaes;

pub use backend::{Backend, CryptoError};
pub use burst::{mac_burst, open_burst, seal_burst};
pub use op::{MAX_BURST, MAX_TAG_LEN, MacOp, OpenOp, SealOp};
pub use rampart_sa::suite::{Encryption, Integrity, PolicyError, Suite, encr_id, integ_id};
pub use sa::SaCrypto;
