//! The VAES + VPCLMULQDQ path (512-bit registers, AVX-512 F/BW/VL): four blocks per instruction.
//!
//! Small packets: each packet's data is cut into slots of 4 counter blocks (one register); the
//! J0 blocks of 4 packets share one slot (with per-lane round keys when their keys differ).
//! Slots of a group of packets go through the AES rounds 8 at a time (32 blocks in flight).
//! Each packet's GHASH is one sum of products (AAD, data, length block) with the powers of H,
//! lanes and halves folded and reduced once. Byte masks handle partial blocks and partial
//! registers, so no load or store touches a byte outside the op's buffers.
//! Small means at most 512 bytes of data and 64 of AAD (at most 4 + 32 + 1 blocks to hash).
//! Long packets: 16 blocks (4 registers) per iteration, the GHASH of the previous iteration's
//! 16 ciphertext blocks stitched between this iteration's AES rounds, one reduction each; the
//! last 1..=256 bytes through the slot kernel, hashed with the last 16 blocks and the length
//! block in one reduction.
//!
//! Must never be called on a CPU without AVX-512 F/BW/VL, VAES, VPCLMULQDQ, AES-NI, PCLMULQDQ,
//! SSSE3 and SSE4.1: every entry is an `unsafe fn` that only [`super::Engine`] calls.

use super::common::{GROUP_MAX, GcmOp, TAG_LEN, finish, schedule};
use super::key::GcmKey;
use super::key::HPOW;
use core::arch::x86_64::*;

/// Loads 64 bytes.
///
/// # Safety
/// `p` must be valid for reading 64 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ld(p: *const u8) -> __m512i {
    // Safety: the caller guarantees 64 readable bytes at `p`.
    unsafe { _mm512_loadu_si512(p.cast()) }
}

/// Loads the bytes of `p` selected by `m`, zeroing the others.
///
/// # Safety
/// Every byte selected by `m` must be readable (unselected bytes are never accessed).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ld_mask(p: *const u8, m: u64) -> __m512i {
    // Safety: the caller guarantees the selected bytes are readable; masked-off bytes are not
    // accessed (AVX-512 masked loads suppress them, faults included).
    unsafe { _mm512_maskz_loadu_epi8(m, p.cast()) }
}

/// Stores the bytes of `v` selected by `m`.
///
/// # Safety
/// Every byte selected by `m` must be writable (unselected bytes are never accessed).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn st_mask(p: *mut u8, m: u64, v: __m512i) {
    // Safety: the caller guarantees the selected bytes are writable; others are not accessed.
    unsafe { _mm512_mask_storeu_epi8(p.cast(), m, v) }
}

/// Mask selecting the first `min(n, 64)` bytes.
#[inline]
fn bytes(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// Reverses the bytes of each block (GCM's bit order to POLYVAL's).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn bswap(x: __m512i) -> __m512i {
    let m = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    _mm512_shuffle_epi8(x, _mm512_broadcast_i32x4(m))
}

/// Reverses the bytes of one block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn bswap128(x: __m128i) -> __m128i {
    _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
}

/// `nonce || 0^32` in every lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn ctr_base(nonce: &[u8; 12]) -> __m512i {
    let mut b = [0u8; 16];
    b[..12].copy_from_slice(nonce);
    // Safety: `b` has 16 bytes.
    _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(b.as_ptr().cast()) })
}

/// The pre-counter block `J0 = nonce || BE32(1)` (RFC 4106 section 4, 96-bit nonce).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn j0_block(nonce: &[u8; 12]) -> __m128i {
    let w = |i: usize| i32::from_le_bytes([nonce[4 * i], nonce[4 * i + 1], nonce[4 * i + 2], nonce[4 * i + 3]]);
    _mm_set_epi32(0x0100_0000, w(2), w(1), w(0))
}

/// Counter blocks `nonce || BE32(c + lane)` for lanes 0..4.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn ctr4(base: __m512i, c: u32) -> __m512i {
    let lanes = _mm512_set_epi32(3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    let v = _mm512_add_epi32(_mm512_add_epi32(base, lanes), _mm512_maskz_set1_epi32(0x8888, c as i32));
    let swap_last_word = _mm_set_epi8(12, 13, 14, 15, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    _mm512_shuffle_epi8(v, _mm512_broadcast_i32x4(swap_last_word))
}

/// Counter blocks `nonce || BE32(c + lane)` made by adding to the last byte in place: valid
/// while `c + 3 <= 255` (no carry out of the last byte), one addition per register.
#[derive(Clone, Copy)]
struct FastCtr {
    next: __m512i,
}

impl FastCtr {
    /// Starts at counter `c` (`base` from [`ctr_base`]; or at `c + 1` from J0 in every lane).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn new(base: __m512i, c: u32) -> FastCtr {
        let lanes = _mm512_set_epi32(3 << 24, 0, 0, 0, 2 << 24, 0, 0, 0, 1 << 24, 0, 0, 0, 0, 0, 0, 0);
        let start = _mm512_maskz_set1_epi32(0x8888, (c << 24) as i32);
        FastCtr { next: _mm512_add_epi32(base, _mm512_add_epi32(lanes, start)) }
    }

    /// The next four counter blocks.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn take(&mut self) -> __m512i {
        let v = self.next;
        self.next = _mm512_add_epi32(v, _mm512_maskz_set1_epi32(0x8888, 4 << 24));
        v
    }
}

/// A key's power tables.
#[derive(Clone, Copy)]
struct Powers {
    /// `hpow` rows.
    h: *const u8,
    /// `hkar` rows.
    k: *const u8,
}

impl Powers {
    fn of(key: &GcmKey) -> Powers {
        Powers { h: key.hpow_ptr(), k: key.hkar_ptr() }
    }

    /// Rows `i..i + 4` of both tables: `K^(HPOW - i)`, ... (zero past `HPOW`).
    ///
    /// # Safety
    /// `i <= HPOW` (the tables have `HPOW + 4` rows of 16 bytes).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    unsafe fn at(self, i: usize) -> (__m512i, __m512i) {
        // Safety: rows `i..i + 4` exist in both tables (caller).
        unsafe { (ld(self.h.add(16 * i)), ld(self.k.add(16 * i))) }
    }

    /// `K^1` of both tables, one block.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn k1(self) -> (__m128i, __m128i) {
        // Safety: row `HPOW - 1` exists in both tables.
        unsafe {
            (_mm_loadu_si128(self.h.add(16 * (HPOW - 1)).cast()), _mm_loadu_si128(self.k.add(16 * (HPOW - 1)).cast()))
        }
    }
}

/// XOR of the four 128-bit lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn hsum(x: __m512i) -> __m128i {
    let y = _mm256_xor_si256(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64::<1>(x));
    _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256::<1>(y))
}

/// Unreduced sums of GHASH products, four lanes (Karatsuba: `mid` holds the products of the
/// half sums, corrected in [`Acc::reduce`]).
#[derive(Clone, Copy)]
struct Acc {
    lo: __m512i,
    mid: __m512i,
    hi: __m512i,
}

impl Acc {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn new() -> Acc {
        Acc { lo: _mm512_setzero_si512(), mid: _mm512_setzero_si512(), hi: _mm512_setzero_si512() }
    }

    /// Adds `x * h` lane by lane; `hk` holds the XOR of `h`'s halves.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn mul(&mut self, x: __m512i, (h, hk): (__m512i, __m512i)) {
        self.lo = _mm512_xor_si512(self.lo, _mm512_clmulepi64_epi128::<0x00>(x, h));
        self.hi = _mm512_xor_si512(self.hi, _mm512_clmulepi64_epi128::<0x11>(x, h));
        let xs = _mm512_xor_si512(x, _mm512_shuffle_epi32::<0x4e>(x));
        self.mid = _mm512_xor_si512(self.mid, _mm512_clmulepi64_epi128::<0x00>(xs, hk));
    }

    /// Sum of the four lanes, unreduced: the low and high 128 bits of the 256-bit product sum.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn fold(self) -> (__m128i, __m128i) {
        let mid = _mm512_ternarylogic_epi64::<0x96>(self.mid, self.lo, self.hi);
        let lo = _mm512_xor_si512(self.lo, _mm512_bslli_epi128::<8>(mid));
        let hi = _mm512_xor_si512(self.hi, _mm512_bsrli_epi128::<8>(mid));
        (hsum(lo), hsum(hi))
    }

    /// Sum of the four lanes, reduced (`a * b * x^-128` summed, see `key::reduce`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn reduce(self) -> __m128i {
        let mid = _mm512_ternarylogic_epi64::<0x96>(self.mid, self.lo, self.hi);
        let lo = _mm512_xor_si512(self.lo, _mm512_bslli_epi128::<8>(mid));
        let hi = _mm512_xor_si512(self.hi, _mm512_bsrli_epi128::<8>(mid));
        let poly = _mm512_broadcast_i32x4(_mm_set_epi64x(0xc200_0000_0000_0000u64 as i64, 0));
        let t = _mm512_clmulepi64_epi128::<0x10>(lo, poly);
        let lo = _mm512_xor_si512(_mm512_shuffle_epi32::<0x4e>(lo), t);
        let t = _mm512_clmulepi64_epi128::<0x10>(lo, poly);
        let lo = _mm512_xor_si512(_mm512_shuffle_epi32::<0x4e>(lo), t);
        hsum(_mm512_xor_si512(hi, lo))
    }
}

/// Montgomery reduction of four unreduced sums at once, lane by lane (see `key::reduce`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn reduce4(lo: __m512i, hi: __m512i) -> __m512i {
    let poly = _mm512_broadcast_i32x4(_mm_set_epi64x(0xc200_0000_0000_0000u64 as i64, 0));
    let t = _mm512_clmulepi64_epi128::<0x10>(lo, poly);
    let lo = _mm512_xor_si512(_mm512_shuffle_epi32::<0x4e>(lo), t);
    let t = _mm512_clmulepi64_epi128::<0x10>(lo, poly);
    let lo = _mm512_xor_si512(_mm512_shuffle_epi32::<0x4e>(lo), t);
    _mm512_xor_si512(hi, lo)
}

/// `v` in lane `l` of `z`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn insert_lane(z: __m512i, l: usize, v: __m128i) -> __m512i {
    match l {
        0 => _mm512_inserti32x4::<0>(z, v),
        1 => _mm512_inserti32x4::<1>(z, v),
        2 => _mm512_inserti32x4::<2>(z, v),
        _ => _mm512_inserti32x4::<3>(z, v),
    }
}

/// Folds `len` bytes at `p` (the last block zero padded) into the GHASH state `acc`, 16 blocks
/// per reduction.
///
/// # Safety
/// `p` valid for reading `len` bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ghash_update(pw: Powers, mut acc: __m128i, p: *const u8, len: usize) -> __m128i {
    let mut off = 0;
    while off < len {
        let chunk = (len - off).min(256);
        let nb = chunk.div_ceil(16);
        let mut a = Acc::new();
        let mut k = 0;
        while 64 * k < chunk {
            // Safety: the selected bytes `off + 64k .. off + chunk` lie in `p[..len]`.
            let mut x = bswap(unsafe { ld_mask(p.add(off + 64 * k), bytes(chunk - 64 * k)) });
            if k == 0 {
                x = _mm512_xor_si512(x, _mm512_zextsi128_si512(acc));
            }
            // Safety: `4k < nb`, so the row index `HPOW - nb + 4k <= HPOW - 1`.
            a.mul(x, unsafe { pw.at(HPOW - nb + 4 * k) });
            k += 1;
        }
        acc = a.reduce();
        off += chunk;
    }
    acc
}

/// The GHASH products of the sequence AAD (`alen <= 64` bytes, zero padded), data (`clen`
/// bytes, zero padded), length block `lb`, with the state `acc` folded into the first block;
/// unreduced.
///
/// # Safety
/// `aad`/`ct` valid for reading `alen`/`clen` bytes; `alen <= 64`;
/// `alen.div_ceil(16) + clen.div_ceil(16) + 1 <= HPOW`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ghash_seq_acc(
    pw: Powers,
    acc: __m128i,
    aad: *const u8,
    alen: usize,
    ct: *const u8,
    clen: usize,
    lb: __m128i,
) -> Acc {
    let na = alen.div_ceil(16);
    let total = na + clen.div_ceil(16) + 1;
    let acc = _mm512_zextsi128_si512(acc);
    let mut a = Acc::new();
    // The AAD blocks take lanes 0..na of one register; with room left, the length block takes
    // lane na, with K^1 blended into that lane of the powers.
    // Safety: the selected `alen` bytes of `aad` are readable.
    let mut x = bswap(unsafe { ld_mask(aad, bytes(alen)) });
    // Safety: `HPOW - total <= HPOW - 1`.
    let (mut h, mut hk) = unsafe { pw.at(HPOW - total) };
    let (k1, k1k) = pw.k1();
    if na < 4 {
        let lane: u16 = 0xf << (4 * na);
        x = _mm512_mask_broadcast_i32x4(x, lane, lb);
        h = _mm512_mask_broadcast_i32x4(h, lane, k1);
        hk = _mm512_mask_broadcast_i32x4(hk, lane, k1k);
    }
    // The state goes with the first block of the sequence: AAD, else data, else length block
    // (lane 0 of `x` in the first and last case).
    if na > 0 || clen == 0 {
        x = _mm512_xor_si512(x, acc);
    }
    a.mul(x, (h, hk));
    if na == 4 {
        a.mul(_mm512_zextsi128_si512(lb), (_mm512_zextsi128_si512(k1), _mm512_zextsi128_si512(k1k)));
    }
    let mut k = 0;
    while 64 * k < clen {
        // Safety: the selected bytes `64k .. clen` of `ct` are readable.
        let mut x = bswap(unsafe { ld_mask(ct.add(64 * k), bytes(clen - 64 * k)) });
        if k == 0 && na == 0 {
            x = _mm512_xor_si512(x, acc);
        }
        // Safety: data block `4k` has power `total - na - 4k >= 2`, so the row index is at most
        // `HPOW - 2`.
        a.mul(x, unsafe { pw.at(HPOW - total + na + 4 * k) });
        k += 1;
    }
    a
}

/// The tag from the GHASH state and the encrypted J0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn make_tag(s: __m128i, ej0: __m128i) -> [u8; TAG_LEN] {
    let mut t = [0u8; TAG_LEN];
    // Safety: `t` has 16 writable bytes.
    unsafe { _mm_storeu_si128(t.as_mut_ptr().cast(), _mm_xor_si128(bswap128(s), ej0)) };
    t
}

/// Registers (of 4 blocks) per iteration of the wide path: 16 blocks measured faster than 32
/// at 1400 and 8192 bytes (a shorter AES-only first and GHASH-only last step per packet).
const WIDE_REGS: usize = 4;

/// Seals (`SEAL`) or opens one long packet; returns the computed tag.
///
/// `4 W` blocks (`W` registers) per iteration, stitched: the GHASH of the previous iteration's
/// ciphertext blocks (one reduction) runs between the AES rounds of this one. The last
/// `1..=64 W` bytes go through the slot kernel, hashed with the length block in one reduction.
///
/// # Safety
/// The CPU runs this path's features; the op's key has `ROUNDS` rounds; `W <= 8` and
/// `W < ROUNDS`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crypt_wide<const SEAL: bool, const ROUNDS: usize, const W: usize>(op: &mut GcmOp<'_>) -> [u8; TAG_LEN] {
    let key = op.key;
    let (rk, pw) = (key.rk_ptr(), Powers::of(key));
    let base = ctr_base(&op.nonce);
    let len = op.data.len();
    let alen = op.aad.len();
    let p = op.data.as_mut_ptr();
    // A short AAD goes into the first chunk's reduction (its blocks take powers K^(4W + na)..);
    // a long one is hashed now.
    let na = alen.div_ceil(16);
    let mut aad_x = None;
    let mut acc = _mm_setzero_si128();
    if alen <= 64 {
        if alen > 0 {
            // Safety: the selected `alen` bytes of the AAD are readable.
            aad_x = Some(bswap(unsafe { ld_mask(op.aad.as_ptr(), bytes(alen)) }));
        }
    } else {
        // Safety: the AAD slice is readable.
        acc = unsafe { ghash_update(pw, acc, op.aad.as_ptr(), alen) };
    }
    let mut keys = [_mm512_setzero_si512(); 15];
    for (r, k) in keys.iter_mut().enumerate().take(ROUNDS + 1) {
        // Safety: the key has `ROUNDS + 1` rows of 64 bytes.
        *k = unsafe { ld(rk.add(64 * r)) };
    }
    // J0 and the first counter blocks: FastCtr while the counter's last byte cannot carry.
    let j0 = _mm512_castsi512_si128(FastCtr::new(base, 1).take());
    let mut e = _mm_xor_si128(j0, _mm512_castsi512_si128(keys[0]));
    for k in &keys[1..ROUNDS] {
        e = _mm_aesenc_si128(e, _mm512_castsi512_si128(*k));
    }
    let ej0 = _mm_aesenclast_si128(e, _mm512_castsi512_si128(keys[ROUNDS]));
    let mut fast = FastCtr::new(base, 2);
    let mut off = 0;
    let mut c = 2u32;
    // Byte-reversed ciphertext of the previous iteration, not hashed yet.
    let mut pending: Option<[__m512i; W]> = None;
    while len - off > 64 * W {
        let mut s = [_mm512_setzero_si512(); W];
        for (i, si) in s.iter_mut().enumerate() {
            let ctr = if c as usize + 4 * W <= 256 { fast.take() } else { ctr4(base, c.wrapping_add(4 * i as u32)) };
            *si = _mm512_xor_si512(ctr, keys[0]);
        }
        let mut a = Acc::new();
        let mut x = pending.unwrap_or([_mm512_setzero_si512(); W]);
        x[0] = _mm512_xor_si512(x[0], _mm512_zextsi128_si512(acc));
        if pending.is_some()
            && let Some(ax) = aad_x.take()
        {
            // Safety: `HPOW - 4W - na >= HPOW - 36`.
            a.mul(ax, unsafe { pw.at(HPOW - 4 * W - na) });
        }
        for r in 1..ROUNDS {
            for si in s.iter_mut() {
                *si = _mm512_aesenc_epi128(*si, keys[r]);
            }
            if pending.is_some() && r <= W {
                // Safety: rows `HPOW - 4W + 4(r - 1) .. + 4` are in the tables.
                a.mul(x[r - 1], unsafe { pw.at(HPOW - 4 * W + 4 * (r - 1)) });
            }
        }
        if pending.is_some() {
            acc = a.reduce();
        }
        let mut next = [_mm512_setzero_si512(); W];
        for (i, si) in s.iter().enumerate() {
            let q = p.wrapping_add(off + 64 * i);
            // Safety: `off + 64 W < len`, so these 64 bytes lie in the data.
            let d = unsafe { ld(q) };
            // The data goes into the last round key: AESENCLAST ends with that XOR.
            let o = _mm512_aesenclast_epi128(*si, _mm512_xor_si512(keys[ROUNDS], d));
            // Safety: as above; `data` is writable.
            unsafe { _mm512_storeu_si512(q.cast(), o) };
            next[i] = bswap(if SEAL { o } else { d });
        }
        pending = Some(next);
        off += 64 * W;
        c = c.wrapping_add(4 * W as u32);
    }
    // The last 1..=64 W bytes and the length block, hashed together with the pending blocks
    // (at most 4W + 4W + 1 <= 33 powers) and reduced once.
    let rest = len - off;
    let q = p.wrapping_add(off);
    let lb = super::aesni::len_block(alen, len);
    let tail_blocks = rest.div_ceil(16) + 1;
    let mut a = Acc::new();
    if let Some(mut x) = pending {
        x[0] = _mm512_xor_si512(x[0], _mm512_zextsi128_si512(acc));
        acc = _mm_setzero_si128();
        let top = 4 * W + tail_blocks;
        if let Some(ax) = aad_x.take() {
            // Safety: `HPOW - top - na >= HPOW - 37`.
            a.mul(ax, unsafe { pw.at(HPOW - top - na) });
        }
        for (k, xk) in x.iter().enumerate() {
            // Safety: rows `HPOW - top + 4k .. + 4` are in the tables (`top <= 33`).
            a.mul(*xk, unsafe { pw.at(HPOW - top + 4 * k) });
        }
    }
    // A short AAD not taken by a chunk goes with the last part.
    let an = if aad_x.is_some() { alen } else { 0 };
    let merge = |a: Acc, b: Acc| Acc {
        lo: _mm512_xor_si512(a.lo, b.lo),
        mid: _mm512_xor_si512(a.mid, b.mid),
        hi: _mm512_xor_si512(a.hi, b.hi),
    };
    if !SEAL {
        // Safety: `rest` bytes from `q` lie in the data; `an <= 64`; at most 4 + 16 + 1 blocks.
        a = merge(a, unsafe { ghash_seq_acc(pw, acc, op.aad.as_ptr(), an, q, rest, lb) });
    }
    let empty = Slot { ctr: _mm512_setzero_si512(), rk, dst: core::ptr::null_mut(), mask: 0 };
    let mut slots = [empty; W];
    let mut ns = 0;
    while 64 * ns < rest {
        let ctr = if c <= 252 { fast.take() } else { ctr4(base, c) };
        slots[ns] = Slot { ctr, rk, dst: q.wrapping_add(64 * ns), mask: bytes(rest - 64 * ns) };
        c = c.wrapping_add(4);
        ns += 1;
    }
    // Safety: `ns` slots over the last bytes of the data, with the key's round keys.
    unsafe { run_tail(&slots, ns, ROUNDS) };
    if SEAL {
        // Safety: as above.
        a = merge(a, unsafe { ghash_seq_acc(pw, acc, op.aad.as_ptr(), an, q, rest, lb) });
    }
    let acc = a.reduce();
    make_tag(acc, ej0)
}

/// Four counter blocks in flight: their round keys (`rounds + 1` rows of 64 bytes, one key per
/// lane) and where their keystream goes.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    ctr: __m512i,
    rk: *const u8,
    dst: *mut u8,
    mask: u64,
}

/// Runs `N` slots through the AES rounds together and XORs their keystream into place.
///
/// # Safety
/// Every slot's `rk` points at `rounds + 1` rows of 64 bytes and the bytes of its `dst`
/// selected by its `mask` are readable and writable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn run<const N: usize>(slots: &[Slot; N], rounds: usize) {
    let rk = slots[0].rk;
    let mut s = [_mm512_setzero_si512(); N];
    if slots.iter().all(|sl| sl.rk == rk) {
        // One key: each round key is loaded once for all slots (a 64-byte load per instruction
        // would saturate the load ports).
        // Safety: row 0 of the shared keys.
        let k0 = unsafe { ld(rk) };
        for i in 0..N {
            s[i] = _mm512_xor_si512(slots[i].ctr, k0);
        }
        for r in 1..rounds {
            // Safety: row `r < rounds` of the shared keys.
            let k = unsafe { ld(rk.add(64 * r)) };
            for si in s.iter_mut() {
                *si = _mm512_aesenc_epi128(*si, k);
            }
        }
        // Safety: row `rounds` of the shared keys.
        let kl = unsafe { ld(rk.add(64 * rounds)) };
        for si in s.iter_mut() {
            *si = _mm512_aesenclast_epi128(*si, kl);
        }
    } else {
        for i in 0..N {
            // Safety: row 0 of the slot's keys.
            s[i] = _mm512_xor_si512(slots[i].ctr, unsafe { ld(slots[i].rk) });
        }
        for r in 1..rounds {
            for i in 0..N {
                // Safety: row `r < rounds` of the slot's keys.
                s[i] = _mm512_aesenc_epi128(s[i], unsafe { ld(slots[i].rk.add(64 * r)) });
            }
        }
        for i in 0..N {
            // Safety: row `rounds` of the slot's keys.
            s[i] = _mm512_aesenclast_epi128(s[i], unsafe { ld(slots[i].rk.add(64 * rounds)) });
        }
    }
    for i in 0..N {
        let sl = &slots[i];
        // Safety: the masked bytes of `dst` are valid (caller).
        unsafe { st_mask(sl.dst, sl.mask, _mm512_xor_si512(s[i], ld_mask(sl.dst, sl.mask))) };
    }
}

/// Runs the first `n <= 8` slots of `slots` together.
///
/// # Safety
/// As [`run`], for the first `n` slots; `n <= slots.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn run_tail(slots: &[Slot], n: usize, rounds: usize) {
    macro_rules! width {
        ($w:literal) => {
            // Safety: slots `0..n` are filled (caller).
            unsafe { run::<$w>(slots[..$w].try_into().expect("slots"), rounds) }
        };
    }
    match n {
        0 => {}
        1 => width!(1),
        2 => width!(2),
        3 => width!(3),
        4 => width!(4),
        5 => width!(5),
        6 => width!(6),
        7 => width!(7),
        _ => width!(8),
    }
}

/// Round keys of up to four different keys, one per lane.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct LaneKeys([[u64; 8]; 15]);

/// The encrypted J0 blocks of a group, four packets to a 64-byte row.
#[repr(C, align(64))]
struct J0Rows([[u8; 64]; GROUP_MAX / 4]);

/// Seals or opens a group of small packets (all with `rounds` rounds) together. Packets are
/// hashed while the AES rounds of later slots run: when opening, each packet just before its
/// slots are queued; when sealing, each packet once a batch has finished its last slot.
///
/// # Safety
/// The CPU runs this path's features; `group` holds at most [`GROUP_MAX`] distinct indices of
/// small ops of `ops` whose keys have `rounds` rounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crypt_group<const SEAL: bool>(ops: &mut [GcmOp<'_>], group: &[usize], rounds: usize) {
    let n = group.len();
    let mut ej0 = J0Rows([[0u8; 64]; GROUP_MAX / 4]);
    let mut gh = [(_mm_setzero_si128(), _mm_setzero_si128()); GROUP_MAX];
    let mut j0s = [_mm_setzero_si128(); GROUP_MAX];
    let mut mixed = core::mem::MaybeUninit::<[LaneKeys; GROUP_MAX / 4]>::uninit();
    let empty = Slot { ctr: _mm512_setzero_si512(), rk: core::ptr::null(), dst: core::ptr::null_mut(), mask: 0 };
    let mut slots = [empty; 8];
    let mut ns = 0;
    // J0 slots first (at most 4, so the first batch holds them all): lanes 4q..4q+4 of the group.
    for q in 0..n.div_ceil(4) {
        let lanes = (n - 4 * q).min(4);
        let first = ops[group[4 * q]].key;
        let mut ctr = _mm512_setzero_si512();
        let mut same = true;
        for l in 0..lanes {
            let op = &ops[group[4 * q + l]];
            same &= core::ptr::eq(op.key, first);
            let j0 = j0_block(&op.nonce);
            j0s[4 * q + l] = j0;
            ctr = match l {
                0 => _mm512_inserti32x4::<0>(ctr, j0),
                1 => _mm512_inserti32x4::<1>(ctr, j0),
                2 => _mm512_inserti32x4::<2>(ctr, j0),
                _ => _mm512_inserti32x4::<3>(ctr, j0),
            };
        }
        let rk = if same {
            first.rk_ptr()
        } else {
            let rows: *mut LaneKeys = mixed.as_mut_ptr().cast::<LaneKeys>().wrapping_add(q);
            for l in 0..4 {
                let key = ops[group[4 * q + l.min(lanes - 1)]].key;
                for r in 0..=rounds {
                    // Safety: row `r <= rounds` of a key with `rounds` rounds; `rows` is entry
                    // `q < GROUP_MAX / 4` of `mixed`, 960 writable bytes.
                    unsafe {
                        let v = _mm_loadu_si128(key.rk_ptr().add(64 * r).cast());
                        _mm_storeu_si128(rows.cast::<u8>().add(64 * r + 16 * l).cast(), v);
                    }
                }
            }
            rows.cast::<u8>().cast_const()
        };
        slots[ns] = Slot { ctr, rk, dst: ej0.0[q].as_mut_ptr(), mask: bytes(16 * lanes) };
        ns += 1;
    }
    // Packets `..done` are finished; packets `..queued` have all their slots queued or run.
    let mut done = 0;
    for (g, &i) in group.iter().enumerate() {
        let op = &mut ops[i];
        let pw = Powers::of(op.key);
        let (alen, len) = (op.aad.len(), op.data.len());
        if !SEAL {
            // Safety: both slices are readable; small ops have `alen <= 64` and at most
            // 4 + 32 + 1 blocks to hash.
            gh[g] = unsafe {
                let lb = super::aesni::len_block(alen, len);
                ghash_seq_acc(pw, _mm_setzero_si128(), op.aad.as_ptr(), alen, op.data.as_ptr(), len, lb).fold()
            };
        }
        let rk = op.key.rk_ptr();
        // J0 in every lane plus 1, 2, ...: the counter blocks from 2 on.
        let mut ctr = FastCtr::new(_mm512_broadcast_i32x4(j0s[g]), 1);
        let p = op.data.as_mut_ptr();
        let mut off = 0;
        while off < len {
            // Small packets have at most 32 blocks: the fast counter never carries.
            slots[ns] = Slot { ctr: ctr.take(), rk, dst: p.wrapping_add(off), mask: bytes(len - off) };
            ns += 1;
            if ns == 8 {
                // Safety: 8 filled slots with keys of `rounds` rounds (rows `0..=rounds` of
                // `mixed` were written above) and destinations in live buffers.
                unsafe { run::<8>(&slots, rounds) };
                ns = 0;
                // Every slot of packets `..g` has run (and the J0 slots, in the first batch):
                // finish the whole quads among them.
                let ready = g / 4 * 4;
                if ready > done {
                    // Safety: as stated; `ej0` and `gh` hold entries for the whole group.
                    unsafe { finish_quads::<SEAL>(ops, group, done, ready, &gh, &ej0) };
                    done = ready;
                }
            }
            off += 64;
        }
    }
    if ns > 0 {
        // Safety: `ns` filled slots, as above.
        unsafe { run_tail(&slots, ns, rounds) };
    }
    // Safety: every slot has run; `done` is a multiple of 4.
    unsafe { finish_quads::<SEAL>(ops, group, done, n, &gh, &ej0) };
}

/// Hashes (sealing) and finishes packets `from..to` of a group whose slots have all run, four
/// at a time: their sums are reduced together, lane by lane, and XORed with their row of J0s.
///
/// # Safety
/// As [`crypt_group`]; `from` is a multiple of 4; every slot of packets `from..to`, and every
/// J0 slot, has run.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,vaes,vpclmulqdq,aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn finish_quads<const SEAL: bool>(
    ops: &mut [GcmOp<'_>],
    group: &[usize],
    from: usize,
    to: usize,
    gh: &[(__m128i, __m128i); GROUP_MAX],
    ej0: &J0Rows,
) {
    let mut q = from / 4;
    while 4 * q < to {
        let lanes = (to - 4 * q).min(4);
        let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        for l in 0..lanes {
            let g = 4 * q + l;
            let (l_lo, l_hi) = if SEAL {
                let op = &ops[group[g]];
                let (alen, len) = (op.aad.len(), op.data.len());
                let lb = super::aesni::len_block(alen, len);
                // Safety: both slices are readable; small ops have `alen <= 64` and at most
                // 4 + 32 + 1 blocks to hash.
                unsafe {
                    ghash_seq_acc(
                        Powers::of(op.key),
                        _mm_setzero_si128(),
                        op.aad.as_ptr(),
                        alen,
                        op.data.as_ptr(),
                        len,
                        lb,
                    )
                }
                .fold()
            } else {
                gh[g]
            };
            lo = insert_lane(lo, l, l_lo);
            hi = insert_lane(hi, l, l_hi);
        }
        // Safety: row `q` of `ej0` is 64 bytes.
        let e = unsafe { ld(ej0.0[q].as_ptr()) };
        let tags = _mm512_xor_si512(bswap(reduce4(lo, hi)), e);
        let mut t = [0u8; 64];
        // Safety: `t` has 64 writable bytes.
        unsafe { _mm512_storeu_si512(t.as_mut_ptr().cast(), tags) };
        for l in 0..lanes {
            let tag: [u8; TAG_LEN] = t[16 * l..16 * l + 16].try_into().expect("16 bytes");
            finish::<SEAL>(&mut ops[group[4 * q + l]], tag);
        }
        q += 1;
    }
}

/// Seals or opens a burst on this path.
///
/// # Safety
/// The CPU runs this path's features; no op is longer than `MAX_DATA_LEN`.
pub(super) unsafe fn crypt_burst<const SEAL: bool>(ops: &mut [GcmOp<'_>]) {
    schedule(
        ops,
        super::common::is_small,
        // Safety: the CPU runs this path (caller); `schedule` hands over groups of small ops
        // with one round count.
        |ops, group, rounds| unsafe { crypt_group::<SEAL>(ops, group, rounds) },
        |op| {
            // Safety: the CPU runs this path (caller); the key's round count picks the variant.
            let tag = unsafe {
                if op.key.rounds() == 10 {
                    crypt_wide::<SEAL, 10, WIDE_REGS>(op)
                } else {
                    crypt_wide::<SEAL, 14, WIDE_REGS>(op)
                }
            };
            // Safety: the CPU runs this path, which includes SSE4.1 (caller).
            unsafe { finish::<SEAL>(op, tag) };
        },
    );
}
