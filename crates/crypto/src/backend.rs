//! The implementations of the suites ([`Backend`]) and which one is fastest for a suite, and
//! what can go wrong building an SA's context or calling the burst API ([`CryptoError`]).

use core::fmt;

use rampart_sa::suite::{Encryption, Suite};

#[cfg(target_arch = "x86_64")]
use crate::vaes;

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
        // AES-GMAC (AH): measured with `cargo run --release -p rampart-bench --bin ah -- --quick`
        // (bare MAC of the AH-covered bytes, twice per packet): RustCrypto 748 ns vs ring 1561 ns
        // at 1400 bytes, about even at IMIX, ring ahead at 64 bytes (233 vs 363 ns); ring's GCM
        // takes long additional data through a slower path. Bytes are mostly in large packets.
        #[cfg(all(feature = "ring", feature = "rustcrypto"))]
        return if suite.is_gmac() {
            Backend::RustCrypto
        } else if suite.is_aead() {
            Backend::Ring
        } else {
            Backend::RustCrypto
        };
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
    /// [`Suite::block_len`](rampart_sa::Suite::block_len), `esp[4..8]` not the low half of `seq`, or `seq` beyond 32 bits on
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
