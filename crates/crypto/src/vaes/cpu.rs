//! Which implementation the engine runs ([`Path`]) and whether this CPU has what it needs.

/// Which implementation an [`super::Engine`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    /// 512-bit VAES and VPCLMULQDQ with AVX-512 F/BW/VL: four blocks per instruction.
    Vaes512,
    /// 128-bit AES-NI and PCLMULQDQ (with SSSE3 and SSE4.1): one block per instruction.
    AesNi,
}

impl Path {
    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        let base = std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1");
        match self {
            Path::AesNi => base,
            Path::Vaes512 => {
                base && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("vaes")
                    && std::arch::is_x86_feature_detected!("vpclmulqdq")
            }
        }
    }

    /// A short name for reports: `vaes512` or `aesni`.
    pub fn name(self) -> &'static str {
        match self {
            Path::Vaes512 => "vaes512",
            Path::AesNi => "aesni",
        }
    }
}
