//! One keyed 64-bit mixing function for every hash table of the crate (the SPI index in
//! shared memory and the readers' compiled lookups). Seeds are random per file or per build,
//! so that nobody outside can aim for long probe sequences. Never used for anything secret.

/// Mixes `x` under `seed` (a splitmix64 / murmur3-style finaliser).
#[inline(always)]
pub(crate) fn mix64(x: u64, seed: u64) -> u64 {
    let mut z = x ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh random seed (from the standard library's per-process random keys).
pub(crate) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// A checksum over words (not cryptographic: it catches torn or half-written copies).
pub(crate) fn checksum(words: &[u64]) -> u64 {
    words.iter().fold(0x243f_6a88_85a3_08d3, |h, w| mix64(h ^ w, 0x1319_8a2e_0370_7344))
}
