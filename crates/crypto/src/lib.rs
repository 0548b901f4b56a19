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
//! * `aead`, `mac`, `cbc`: the primitives of each backend behind small enums.
//! * `esp`: ESP framing of one packet (IV, nonce, AAD, ICV, ESN, wipe on failure).
//! * `raw` (hidden): hooks that let tests drive the primitives with arbitrary inputs; never
//!   used on the data path.
//! * `vaes` (x86-64): Rampart's own multi-buffer AES-GCM.
#![deny(unsafe_code)]

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("rampart-crypto needs at least one backend: enable the `ring` or the `rustcrypto` feature");

mod aead;
mod cbc;
mod esp;
mod mac;
#[doc(hidden)]
pub mod raw;

#[cfg(target_arch = "x86_64")]
pub mod vaes;

pub use rampart_sa::suite::{Encryption, Integrity, PolicyError, Suite, encr_id, integ_id};

use core::fmt;

use zeroize::Zeroizing;

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
    /// Rampart's own multi-buffer AES-GCM ([`vaes`]): VAES/VPCLMULQDQ with AVX-512, or
    /// AES-NI/PCLMULQDQ, chosen at run time; AES-GCM-16 suites only. Listed by
    /// [`Backend::available`] only on a CPU that runs one of its paths.
    #[cfg(target_arch = "x86_64")]
    Vaes,
}

impl Backend {
    /// Every backend compiled in and usable on this CPU. Both library backends run on any
    /// CPU (they pick their assembly or intrinsics at run time and fall back to portable code).
    pub fn available() -> Vec<Backend> {
        const COMPILED_IN: &[Backend] = &[
            #[cfg(feature = "ring")]
            Backend::Ring,
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto,
        ];
        let mut out = COMPILED_IN.to_vec();
        #[cfg(target_arch = "x86_64")]
        if vaes::Engine::detect().is_some() {
            out.push(Backend::Vaes);
        }
        out
    }

    /// The available backends that implement `suite`.
    pub fn for_suite(suite: Suite) -> Vec<Backend> {
        Backend::available().into_iter().filter(|b| b.supports(suite)).collect()
    }

    /// Whether this backend implements `suite` (the library backends do every suite; the
    /// multi-buffer backend only AES-GCM-16 with 128- or 256-bit keys).
    pub fn supports(&self, suite: Suite) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes => matches!(suite.encryption(), Encryption::AesGcm16 { .. }),
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    /// The fastest backend for `suite` on this machine (decided by measurement, see bench/).
    ///
    /// `vaes` for AES-GCM where the CPU runs it, `ring` for the other AEADs, `rustcrypto` for
    /// the HMAC suites; with one backend compiled in, that one.
    pub fn fastest(suite: Suite) -> Backend {
        // AES-GCM: Rampart's multi-buffer backend where the CPU runs it. Measured with
        // `cargo run --release -p rampart-bench --bin gcm -- --min --trials 41` (AES-128, bursts
        // of 32, one pinned core): seal 22.7 ns vs ring 78.9 ns at 64 bytes, 140 vs 249 ns at
        // 1400 bytes; open 24.2 vs 90.7 and 130 vs 235.
        #[cfg(target_arch = "x86_64")]
        if Backend::Vaes.supports(suite) && vaes::Engine::detect().is_some() {
            return Backend::Vaes;
        }
        // Measured with `cargo run --release -p rampart-bench --bin crypto` on an AMD EPYC
        // (Zen 4: AES-NI, VAES, VPCLMULQDQ, AVX-512, SHA-NI), one pinned thread, bursts of 32,
        // ESN on; seal + open medians summed over 64, 512 and 1400-byte packets:
        // * AES-GCM-16: ring 1079 ns vs RustCrypto 3115 ns (128-bit key), 1022 vs 2914
        //   (256-bit): ring 2.9x faster (stitched AES-NI/VAES + CLMUL assembly).
        // * ChaCha20-Poly1305: ring 2872 ns vs RustCrypto 12839 ns: ring 4.5x faster.
        // * HMAC-SHA-256 (AES-CBC and NULL): RustCrypto 1.04x to 1.14x faster in every run
        //   (sha2's SHA-NI path); the AES-CBC cipher is the same code under both backends.
        // * HMAC-SHA-384/512: no consistent winner; the sign of the gap flipped between runs
        //   (mostly within 3%, once 18-21% either way on the loaded shared machine). RustCrypto
        //   kept so that one implementation serves all the HMAC suites.
        #[cfg(all(feature = "ring", feature = "rustcrypto"))]
        return if suite.is_aead() { Backend::Ring } else { Backend::RustCrypto };
        #[cfg(not(all(feature = "ring", feature = "rustcrypto")))]
        {
            let _ = suite;
            Backend::available()[0]
        }
    }

    /// Parses a backend name as the CLI and config write it (`ring`, `rustcrypto`, `vaes`);
    /// `None` for an unknown name or a backend this build or CPU leaves out.
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::available().into_iter().find(|b| b.name() == name)
    }

    /// The name that [`Backend::from_name`] reads back.
    pub fn name(&self) -> &'static str {
        match self {
            #[cfg(feature = "ring")]
            Backend::Ring => "ring",
            #[cfg(feature = "rustcrypto")]
            Backend::RustCrypto => "rustcrypto",
            #[cfg(target_arch = "x86_64")]
            Backend::Vaes => "vaes",
        }
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
    /// A seal op whose buffer does not fit the suite's layout (caller bug, nothing was sealed):
    /// too short, an encrypted region that is empty or not a multiple of
    /// [`Suite::block_len`], `esp[4..8]` not the low half of `seq`, or `seq` beyond 32 bits on
    /// an SA without ESN.
    BadLayout {
        /// Index of the op in the burst.
        index: usize,
    },
    /// The operating system's random number generator failed while drawing the per-SA CBC IV
    /// key; no SA was built.
    RandomUnavailable,
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
            CryptoError::RandomUnavailable => f.write_str("the operating system's random number generator failed"),
        }
    }
}

impl std::error::Error for CryptoError {}

/// One SA's expanded keys for one backend. Zeroized on drop; `Debug` shows no key.
///
/// The RustCrypto key schedules and HMAC states wipe themselves on drop, as do the salt and the
/// CBC IV key; `ring` keeps its AES-GCM/ChaCha20 keys and HMAC pads private and does not wipe
/// them (no raw copy of a key is kept anywhere else).
pub struct SaCrypto {
    suite: Suite,
    backend: Backend,
    transform: Transform,
}

/// The expanded keys of each suite family.
///
/// Kept inline (no `Box`): a worker reaches the key schedule of every packet without another
/// pointer to chase, and an SA is built once.
#[allow(clippy::large_enum_variant)]
enum Transform {
    /// AES-GCM-16 or ChaCha20-Poly1305, with the 4-byte salt of the nonce.
    Aead { key: aead::AeadKey, salt: Zeroizing<[u8; 4]> },
    /// AES-CBC with its IV generator, and the HMAC.
    Cbc { cipher: cbc::AesCbcKey, iv_gen: cbc::CbcIvGenerator, mac: mac::IntegrityKey },
    /// No encryption, HMAC only.
    Null { mac: mac::IntegrityKey },
    /// AES-GCM-16 on the multi-buffer engine: round keys and powers of H expanded once.
    #[cfg(target_arch = "x86_64")]
    VaesGcm { key: vaes::GcmKey, salt: Zeroizing<[u8; 4]>, engine: vaes::Engine },
}

// Workers and the IKE daemon hand SA contexts across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<SaCrypto>();
};

impl fmt::Debug for SaCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaCrypto").field("suite", &self.suite).field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl SaCrypto {
    /// Expands the keys of one SA. `encryption_key` includes the 4-byte salt of the AEADs
    /// (RFC 4106 section 8.1, RFC 7634 section 4); `integrity_key` is empty for AEADs.
    ///
    /// Refuses keys of the wrong length ([`CryptoError::KeyLength`]). AES-CBC suites draw a
    /// random IV key from the operating system ([`CryptoError::RandomUnavailable`] if it fails).
    pub fn new(
        suite: Suite,
        encryption_key: &[u8],
        integrity_key: &[u8],
        backend: Backend,
    ) -> Result<SaCrypto, CryptoError> {
        if !backend.supports(suite) {
            return Err(CryptoError::Unsupported { backend, suite });
        }
        let expected = suite.encryption_key_len();
        if encryption_key.len() != expected {
            return Err(CryptoError::KeyLength { which: "encryption", expected, got: encryption_key.len() });
        }
        let expected = suite.integrity_key_len();
        if integrity_key.len() != expected {
            return Err(CryptoError::KeyLength { which: "integrity", expected, got: integrity_key.len() });
        }
        let transform = match suite.encryption() {
            Encryption::AesGcm16 { .. } | Encryption::ChaCha20Poly1305 => {
                //= https://www.rfc-editor.org/rfc/rfc4106#section-8.1
                //# The first 32 octets are the 256-bit AES key, and the
                //# remaining four octets are used as the salt value in the nonce.
                // (Likewise 16 + 4 for AES-128, and 32 + 4 for ChaCha20, RFC 7634 section 4.)
                let (key, salt_bytes) = encryption_key.split_at(encryption_key.len() - 4);
                let mut salt = Zeroizing::new([0u8; 4]);
                salt.copy_from_slice(salt_bytes);
                #[cfg(target_arch = "x86_64")]
                if backend == Backend::Vaes {
                    let unsupported = CryptoError::Unsupported { backend, suite };
                    if !backend.supports(suite) {
                        return Err(unsupported);
                    }
                    let engine = vaes::Engine::detect().ok_or(unsupported.clone())?;
                    let key = vaes::GcmKey::new(key).ok_or(unsupported)?;
                    return Ok(SaCrypto { suite, backend, transform: Transform::VaesGcm { key, salt, engine } });
                }
                Transform::Aead { key: aead::AeadKey::new(backend, suite, key)?, salt }
            }
            Encryption::AesCbc { .. } => Transform::Cbc {
                cipher: cbc::AesCbcKey::new(encryption_key).ok_or(CryptoError::KeyLength {
                    which: "encryption",
                    expected: suite.encryption_key_len(),
                    got: encryption_key.len(),
                })?,
                iv_gen: cbc::CbcIvGenerator::new().map_err(|_| CryptoError::RandomUnavailable)?,
                mac: mac::IntegrityKey::new(backend, suite, integrity_key)?,
            },
            Encryption::Null => Transform::Null { mac: mac::IntegrityKey::new(backend, suite, integrity_key)? },
        };
        Ok(SaCrypto { suite, backend, transform })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether this SA's packets go to the multi-buffer engine as a group.
    fn is_multi_buffer(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return matches!(self.transform, Transform::VaesGcm { .. });
        #[cfg(not(target_arch = "x86_64"))]
        return false;
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
///
/// An op fits when `esp` holds at least header, IV, two bytes of trailer and ICV, its encrypted
/// region is a multiple of [`Suite::block_len`], `esp[4..8]` is the low half of `seq`, and `seq`
/// fits 32 bits unless `esn` is set.
pub fn seal_burst(ops: &mut [SealOp<'_>]) -> Result<(), CryptoError> {
    for (index, op) in ops.iter().enumerate() {
        if seal_region(op).is_none() {
            return Err(CryptoError::BadLayout { index });
        }
    }
    for chunk in ops.chunks_mut(MAX_BURST) {
        seal_chunk(chunk);
    }
    Ok(())
}

/// Checks one seal op; the region of its packet when it fits.
fn seal_region(op: &SealOp<'_>) -> Option<esp::Region> {
    let region = esp::Region::of(op.sa, op.esp.len(), true)?;
    esp::seq_matches(op.esp, op.seq, op.esn).then_some(region)
}

/// Seals up to [`MAX_BURST`] checked ops, each on its own SA and backend. The library backends
/// take one packet at a time; the ops of the multi-buffer backend go to it together.
fn seal_chunk(chunk: &mut [SealOp<'_>]) {
    #[cfg(target_arch = "x86_64")]
    esp::seal_vaes(chunk);
    for op in chunk {
        if op.sa.is_multi_buffer() {
            continue;
        }
        if let Some(region) = seal_region(op) {
            esp::seal(op.sa, op.esp, op.seq, op.esn, region, None);
        }
    }
}

/// Verifies and decrypts a burst in place, setting each op's `verified`. Tags are compared in
/// constant time. An op whose length cannot be a valid packet for its suite is not verified.
///
/// An op is also not verified when `esp[4..8]` is not the low half of `seq`, or when `seq` is
/// beyond 32 bits on an SA without ESN. When an op is not verified, its encrypted region (the
/// bytes between IV and ICV) is zeroed, so no unauthenticated plaintext stays in the buffer.
pub fn open_burst(ops: &mut [OpenOp<'_>]) {
    for chunk in ops.chunks_mut(MAX_BURST) {
        #[cfg(target_arch = "x86_64")]
        esp::open_vaes(chunk);
        for op in chunk {
            if !op.sa.is_multi_buffer() {
                op.verified = esp::open(op.sa, op.esp, op.seq, op.esn);
            }
        }
    }
}
