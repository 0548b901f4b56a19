//! One SA's expanded AES-GCM key for the engine: AES round keys and the powers of the hash key,
//! computed once when the SA is installed.
//!
//! Must never: show key material (its `Debug` prints the key size only) or outlive its use
//! unwiped (it is zeroized on drop).

use core::arch::x86_64::*;
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Powers of the hash key kept per key: enough for one reduction per small packet
/// (AAD blocks + data blocks + length block) and for the 16-block iterations of the wide path.
pub(super) const HPOW: usize = 48;

/// Expanded AES-128 or AES-256 key with the precomputed GHASH powers.
///
/// Layout (read by the paths through raw pointers):
/// * `rk[r]`: round key `r` repeated in the four 128-bit lanes of a 64-byte row (the VAES path
///   loads a row whole, the AES-NI path its first 16 bytes);
/// * `hpow[i]`: `K^(HPOW - i)` in the POLYVAL domain for `i < HPOW` (descending, so that four
///   consecutive rows hold four consecutive powers in block order), then 4 zero rows;
/// * `hkar[i]`: both halves of `hpow[i]` XORed, in both halves (Karatsuba's middle operand).
#[repr(C, align(64))]
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct GcmKey {
    pub(super) rk: [[u64; 8]; 15],
    pub(super) hpow: [[u64; 2]; HPOW + 4],
    pub(super) hkar: [[u64; 2]; HPOW + 4],
    pub(super) rounds: usize,
}

impl fmt::Debug for GcmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcmKey").field("bits", &(self.rounds * 32 - 192)).finish_non_exhaustive()
    }
}

impl GcmKey {
    /// Expands a 16-byte (AES-128) or 32-byte (AES-256) key. `None` for any other length, or on a
    /// CPU without AES-NI and PCLMULQDQ (where no [`super::Engine`] exists either).
    pub fn new(key: &[u8]) -> Option<GcmKey> {
        if !(key.len() == 16 || key.len() == 32) || !super::cpu::Path::AesNi.is_supported() {
            return None;
        }
        let mut k = GcmKey { rk: [[0; 8]; 15], hpow: [[0; 2]; HPOW + 4], hkar: [[0; 2]; HPOW + 4], rounds: 0 };
        // Safety: the CPU runs AES-NI, PCLMULQDQ, SSSE3 and SSE4.1 (checked just above).
        unsafe { expand(&mut k, key) };
        Some(k)
    }

    /// 10 for AES-128, 14 for AES-256.
    pub(super) fn rounds(&self) -> usize {
        self.rounds
    }

    /// Address of round key row 0 (rows are 64 bytes apart).
    pub(super) fn rk_ptr(&self) -> *const u8 {
        self.rk.as_ptr().cast()
    }

    /// Address of `hpow[0]` (rows are 16 bytes apart; `HPOW + 4` rows).
    pub(super) fn hpow_ptr(&self) -> *const u8 {
        self.hpow.as_ptr().cast()
    }

    /// Address of `hkar[0]` (rows are 16 bytes apart; `HPOW + 4` rows, matching `hpow`).
    pub(super) fn hkar_ptr(&self) -> *const u8 {
        self.hkar.as_ptr().cast()
    }
}

#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn store_rk(k: &mut GcmKey, r: usize, v: __m128i) {
    let mut b = [0u64; 2];
    // Safety: `b` is 16 writable bytes.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) };
    k.rk[r] = [b[0], b[1], b[0], b[1], b[0], b[1], b[0], b[1]];
}

/// One step of the AES key schedule: `prev` with its words prefix-XORed, XOR `t` (the
/// SubWord/RotWord result already broadcast to all words).
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn schedule_step(prev: __m128i, t: __m128i) -> __m128i {
    let mut x = prev;
    x = _mm_xor_si128(x, _mm_slli_si128::<4>(x));
    x = _mm_xor_si128(x, _mm_slli_si128::<4>(x));
    x = _mm_xor_si128(x, _mm_slli_si128::<4>(x));
    _mm_xor_si128(x, t)
}

macro_rules! assist {
    ($x:expr, $rcon:literal, $shuf:literal) => {
        _mm_shuffle_epi32::<$shuf>(_mm_aeskeygenassist_si128::<$rcon>($x))
    };
}

/// Fills round keys and hash powers.
///
/// # Safety
/// The CPU must run AES-NI, PCLMULQDQ, SSSE3 and SSE4.1; `key` is 16 or 32 bytes.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn expand(k: &mut GcmKey, key: &[u8]) {
    // Safety: `key` has at least 16 bytes (16 or 32).
    let k0 = unsafe { _mm_loadu_si128(key.as_ptr().cast()) };
    store_rk(k, 0, k0);
    if key.len() == 16 {
        k.rounds = 10;
        let mut x = k0;
        macro_rules! r128 {
            ($i:literal, $rcon:literal) => {
                x = schedule_step(x, assist!(x, $rcon, 0xff));
                store_rk(k, $i, x);
            };
        }
        r128!(1, 0x01);
        r128!(2, 0x02);
        r128!(3, 0x04);
        r128!(4, 0x08);
        r128!(5, 0x10);
        r128!(6, 0x20);
        r128!(7, 0x40);
        r128!(8, 0x80);
        r128!(9, 0x1b);
        r128!(10, 0x36);
    } else {
        k.rounds = 14;
        // Safety: `key` has 32 bytes.
        let k1 = unsafe { _mm_loadu_si128(key.as_ptr().add(16).cast()) };
        store_rk(k, 1, k1);
        let (mut a, mut b) = (k0, k1);
        macro_rules! r256 {
            ($i:literal, $rcon:literal) => {
                a = schedule_step(a, assist!(b, $rcon, 0xff));
                store_rk(k, $i, a);
                if $i < 14 {
                    b = schedule_step(b, assist!(a, 0x00, 0xaa));
                    store_rk(k, $i + 1, b);
                }
            };
        }
        r256!(2, 0x01);
        r256!(4, 0x02);
        r256!(6, 0x04);
        r256!(8, 0x08);
        r256!(10, 0x10);
        r256!(12, 0x20);
        r256!(14, 0x40);
        let _ = b;
    }

    // H = AES_K(0^128); K = mulX_POLYVAL(ByteReverse(H)) (RFC 8452 appendix A).
    let mut h = _mm_setzero_si128();
    h = _mm_xor_si128(h, rk(k, 0));
    for r in 1..k.rounds {
        h = _mm_aesenc_si128(h, rk(k, r));
    }
    h = _mm_aesenclast_si128(h, rk(k, k.rounds));
    let mut hb = [0u8; 16];
    // Safety: `hb` is 16 writable bytes.
    unsafe { _mm_storeu_si128(hb.as_mut_ptr().cast(), h) };
    let v = u128::from_be_bytes(hb);
    let mut kv = v << 1;
    if v >> 127 == 1 {
        kv ^= 0xc200_0000_0000_0000_0000_0000_0000_0001;
    }
    hb.zeroize();
    let kx = to_m128(kv);
    let mut p = kx;
    for n in 1..=HPOW {
        let b = from_m128(p);
        k.hpow[HPOW - n] = [b as u64, (b >> 64) as u64];
        let m = b as u64 ^ (b >> 64) as u64;
        k.hkar[HPOW - n] = [m, m];
        p = dot(p, kx);
    }
}

#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn rk(k: &GcmKey, r: usize) -> __m128i {
    // Safety: row `r` has 64 readable bytes; the first 16 are the round key.
    unsafe { _mm_loadu_si128(k.rk[r].as_ptr().cast()) }
}

#[target_feature(enable = "sse2")]
fn to_m128(v: u128) -> __m128i {
    _mm_set_epi64x((v >> 64) as i64, v as i64)
}

#[target_feature(enable = "sse2")]
fn from_m128(x: __m128i) -> u128 {
    let mut b = [0u8; 16];
    // Safety: `b` is 16 writable bytes.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), x) };
    u128::from_le_bytes(b)
}

/// POLYVAL's `dot(a, b) = a * b * x^-128` (RFC 8452 section 3).
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
pub(super) fn dot(a: __m128i, b: __m128i) -> __m128i {
    let lo = _mm_clmulepi64_si128::<0x00>(a, b);
    let hi = _mm_clmulepi64_si128::<0x11>(a, b);
    let mid = _mm_xor_si128(_mm_clmulepi64_si128::<0x01>(a, b), _mm_clmulepi64_si128::<0x10>(a, b));
    reduce(lo, mid, hi)
}

/// Montgomery reduction of the 256-bit product `hi:lo` (plus `mid` at bit 64) modulo
/// `x^128 + x^127 + x^126 + x^121 + 1`, times `x^-128`.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
pub(super) fn reduce(lo: __m128i, mid: __m128i, hi: __m128i) -> __m128i {
    let lo = _mm_xor_si128(lo, _mm_slli_si128::<8>(mid));
    let hi = _mm_xor_si128(hi, _mm_srli_si128::<8>(mid));
    let poly = _mm_set_epi64x(0xc200_0000_0000_0000u64 as i64, 0);
    let t = _mm_clmulepi64_si128::<0x10>(lo, poly);
    let lo = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
    let t = _mm_clmulepi64_si128::<0x10>(lo, poly);
    let lo = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
    _mm_xor_si128(hi, lo)
}
