//! The AES-NI + PCLMULQDQ path (128-bit registers), for CPUs without VAES/AVX-512.
//!
//! Small packets: the counter blocks of a group of packets (each packet's J0 included) are cut
//! into batches of 8 blocks, each block with its own key, and run through the AES rounds
//! together; each packet's GHASH is then one sum of products with the powers of H, reduced once.
//! Long packets: 8 blocks per iteration, GHASH of the 8 ciphertext blocks reduced once.
//!
//! Must never be called on a CPU without AES-NI, PCLMULQDQ, SSSE3 and SSE4.1: every entry is
//! an `unsafe fn` that only [`super::Engine`] calls, after detection.

use super::common::{GROUP_MAX, GcmOp, TAG_LEN, finish, schedule};
use super::key::{HPOW, reduce};
use core::arch::x86_64::*;

/// Loads 16 bytes.
///
/// # Safety
/// `p` must be valid for reading 16 bytes.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ld(p: *const u8) -> __m128i {
    // Safety: the caller guarantees 16 readable bytes at `p`.
    unsafe { _mm_loadu_si128(p.cast()) }
}

/// Loads `n <= 16` bytes, zero padded to a block.
///
/// # Safety
/// `p` must be valid for reading `n` bytes.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ld_part(p: *const u8, n: usize) -> __m128i {
    if n == 16 {
        // Safety: the caller guarantees `n == 16` readable bytes.
        return unsafe { ld(p) };
    }
    let mut b = [0u8; 16];
    // Safety: `n < 16` bytes readable at `p` (caller), writable in `b`; distinct objects.
    unsafe { core::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n) };
    // Safety: `b` has 16 bytes.
    unsafe { ld(b.as_ptr()) }
}

/// XORs `ks` into the `n <= 16` bytes at `p`.
///
/// # Safety
/// `p` must be valid for reading and writing `n` bytes.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn xor_into(p: *mut u8, n: usize, ks: __m128i) {
    if n == 16 {
        // Safety: 16 bytes readable and writable at `p` (caller).
        unsafe { _mm_storeu_si128(p.cast(), _mm_xor_si128(ld(p), ks)) };
        return;
    }
    let mut b = [0u8; 16];
    // Safety: `n < 16` bytes readable at `p`, writable in `b`; distinct objects.
    unsafe { core::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n) };
    // Safety: `b` has 16 bytes.
    let v = unsafe { _mm_xor_si128(ld(b.as_ptr()), ks) };
    // Safety: `b` has 16 bytes.
    unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) };
    // Safety: `n` bytes readable in `b`, writable at `p` (caller); distinct objects.
    unsafe { core::ptr::copy_nonoverlapping(b.as_ptr(), p, n) };
}

/// Reverses the bytes of a block (GCM's bit order to POLYVAL's).
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn bswap(x: __m128i) -> __m128i {
    _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
}

/// `nonce || 0^32`: the counter blocks differ only in their last word.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn ctr_base(nonce: &[u8; 12]) -> __m128i {
    let mut b = [0u8; 16];
    b[..12].copy_from_slice(nonce);
    // Safety: `b` has 16 bytes.
    unsafe { ld(b.as_ptr()) }
}

/// Counter block `nonce || BE32(c)`.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn ctr(base: __m128i, c: u32) -> __m128i {
    _mm_insert_epi32::<3>(base, c.swap_bytes() as i32)
}

/// The GCM length block `BE64(aad bits) || BE64(data bits)`, byte-reversed.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
pub(super) fn len_block(alen: usize, clen: usize) -> __m128i {
    _mm_set_epi64x((alen as u64).wrapping_mul(8) as i64, (clen as u64).wrapping_mul(8) as i64)
}

/// A key's power tables (`hpow` and `hkar` rows).
#[derive(Clone, Copy)]
struct Pw {
    h: *const u8,
    k: *const u8,
}

impl Pw {
    fn of(key: &super::key::GcmKey) -> Pw {
        Pw { h: key.hpow_ptr(), k: key.hkar_ptr() }
    }
}

/// Power row `i` of a key's tables: `K^(HPOW - i)` and the XOR of its halves (zero for
/// `i >= HPOW`).
///
/// # Safety
/// `i < HPOW + 4`.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn hpow(pw: Pw, i: usize) -> (__m128i, __m128i) {
    // Safety: the tables have `HPOW + 4` rows of 16 bytes (caller: `i < HPOW + 4`).
    unsafe { (ld(pw.h.add(16 * i)), ld(pw.k.add(16 * i))) }
}

/// Unreduced sum of GHASH products.
#[derive(Clone, Copy)]
struct Acc {
    lo: __m128i,
    mid: __m128i,
    hi: __m128i,
}

impl Acc {
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn new() -> Acc {
        Acc { lo: _mm_setzero_si128(), mid: _mm_setzero_si128(), hi: _mm_setzero_si128() }
    }

    /// Adds `x * h` (Karatsuba: three carry-less multiplications; `hk` is the XOR of `h`'s
    /// halves).
    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn mul(&mut self, x: __m128i, (h, hk): (__m128i, __m128i)) {
        self.lo = _mm_xor_si128(self.lo, _mm_clmulepi64_si128::<0x00>(x, h));
        self.hi = _mm_xor_si128(self.hi, _mm_clmulepi64_si128::<0x11>(x, h));
        let xs = _mm_xor_si128(x, _mm_shuffle_epi32::<0x4e>(x));
        self.mid = _mm_xor_si128(self.mid, _mm_clmulepi64_si128::<0x00>(xs, hk));
    }

    #[inline]
    #[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
    fn reduce(self) -> __m128i {
        // Karatsuba's middle term: (x0 + x1)(h0 + h1) - lo - hi.
        let mid = _mm_xor_si128(self.mid, _mm_xor_si128(self.lo, self.hi));
        reduce(self.lo, mid, self.hi)
    }
}

/// Encrypts one block with the round keys at `rk`.
///
/// # Safety
/// `rk` is a key's `rk_ptr()` and `rounds` its round count.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn aes1(rk: *const u8, rounds: usize, x: __m128i) -> __m128i {
    // Safety: (every load below) the key has `rounds + 1` rows of 64 bytes at `rk`.
    let mut s = unsafe { _mm_xor_si128(x, ld(rk)) };
    for r in 1..rounds {
        // Safety: row `r <= rounds` exists.
        s = _mm_aesenc_si128(s, unsafe { ld(rk.add(64 * r)) });
    }
    // Safety: row `rounds` exists.
    _mm_aesenclast_si128(s, unsafe { ld(rk.add(64 * rounds)) })
}

/// Folds `len` bytes at `p` (the last block zero padded) into the GHASH state `acc`, 8 blocks
/// per reduction.
///
/// # Safety
/// `p` valid for reading `len` bytes; `hp` the key's power tables.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ghash_update(hp: Pw, mut acc: __m128i, p: *const u8, len: usize) -> __m128i {
    let nb = len.div_ceil(16);
    let mut i = 0;
    while i < nb {
        let c = (nb - i).min(8);
        let mut a = Acc::new();
        for j in 0..c {
            let off = 16 * (i + j);
            // Safety: `off < len` and `min(16, len - off)` bytes from `p + off` are in range.
            let mut x = bswap(unsafe { ld_part(p.add(off), (len - off).min(16)) });
            if j == 0 {
                x = _mm_xor_si128(x, acc);
            }
            // Safety: `HPOW - c + j < HPOW`.
            a.mul(x, unsafe { hpow(hp, HPOW - c + j) });
        }
        acc = a.reduce();
        i += c;
    }
    acc
}

/// GHASH (POLYVAL domain, unmasked) of AAD, ciphertext and length block with one reduction.
///
/// # Safety
/// `aad`/`ct` valid for `alen`/`clen` bytes; `hp` the key's power tables;
/// `alen.div_ceil(16) + clen.div_ceil(16) + 1 <= HPOW`.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn ghash_small(hp: Pw, aad: *const u8, alen: usize, ct: *const u8, clen: usize) -> __m128i {
    let total = alen.div_ceil(16) + clen.div_ceil(16) + 1;
    let mut idx = HPOW - total;
    let mut a = Acc::new();
    let mut off = 0;
    while off < alen {
        // Safety: `min(16, alen - off)` bytes from `aad + off` are in range; `idx < HPOW`.
        unsafe { a.mul(bswap(ld_part(aad.add(off), (alen - off).min(16))), hpow(hp, idx)) };
        idx += 1;
        off += 16;
    }
    off = 0;
    while off < clen {
        // Safety: as above, for `ct`.
        unsafe { a.mul(bswap(ld_part(ct.add(off), (clen - off).min(16))), hpow(hp, idx)) };
        idx += 1;
        off += 16;
    }
    // Safety: row `HPOW - 1` is K^1.
    a.mul(len_block(alen, clen), unsafe { hpow(hp, HPOW - 1) });
    a.reduce()
}

/// The tag from the GHASH state and the encrypted J0.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
fn make_tag(s: __m128i, ej0: __m128i) -> [u8; TAG_LEN] {
    let mut t = [0u8; TAG_LEN];
    // Safety: `t` has 16 writable bytes.
    unsafe { _mm_storeu_si128(t.as_mut_ptr().cast(), _mm_xor_si128(bswap(s), ej0)) };
    t
}

/// Seals (`SEAL`) or opens one packet on the per-packet path; returns the computed tag.
///
/// # Safety
/// The CPU runs AES-NI, PCLMULQDQ, SSSE3 and SSE4.1.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crypt_wide<const SEAL: bool>(op: &mut GcmOp<'_>) -> [u8; TAG_LEN] {
    let key = op.key;
    let (rk, hp, rounds) = (key.rk_ptr(), Pw::of(key), key.rounds());
    let base = ctr_base(&op.nonce);
    // Safety: `rk`/`rounds` come from one key.
    let ej0 = unsafe { aes1(rk, rounds, ctr(base, 1)) };
    // Safety: the AAD slice is readable; `hp` from the key.
    let mut acc = unsafe { ghash_update(hp, _mm_setzero_si128(), op.aad.as_ptr(), op.aad.len()) };
    let len = op.data.len();
    let p = op.data.as_mut_ptr();
    let mut off = 0;
    let mut c = 2u32;
    while len - off >= 128 {
        let mut s = [_mm_setzero_si128(); 8];
        // Safety: (round key loads) the key has `rounds + 1` rows of 64 bytes.
        let k0 = unsafe { ld(rk) };
        for (i, si) in s.iter_mut().enumerate() {
            *si = _mm_xor_si128(ctr(base, c.wrapping_add(i as u32)), k0);
        }
        for r in 1..rounds {
            // Safety: row `r` exists.
            let k = unsafe { ld(rk.add(64 * r)) };
            for si in s.iter_mut() {
                *si = _mm_aesenc_si128(*si, k);
            }
        }
        // Safety: row `rounds` exists.
        let kl = unsafe { ld(rk.add(64 * rounds)) };
        let mut a = Acc::new();
        for (i, si) in s.iter().enumerate() {
            let q = p.wrapping_add(off + 16 * i);
            // Safety: `off + 128 <= len`, so block `i` lies in the data.
            let d = unsafe { ld(q) };
            let o = _mm_xor_si128(_mm_aesenclast_si128(*si, kl), d);
            // Safety: as above; `data` is writable.
            unsafe { _mm_storeu_si128(q.cast(), o) };
            let mut x = bswap(if SEAL { o } else { d });
            if i == 0 {
                x = _mm_xor_si128(x, acc);
            }
            // Safety: `HPOW - 8 + i < HPOW`.
            a.mul(x, unsafe { hpow(hp, HPOW - 8 + i) });
        }
        acc = a.reduce();
        off += 128;
        c = c.wrapping_add(8);
    }
    let rest = len - off;
    if rest > 0 {
        let q = p.wrapping_add(off);
        if !SEAL {
            // Safety: `rest` bytes from `q` lie in the data.
            acc = unsafe { ghash_update(hp, acc, q, rest) };
        }
        let mut o = 0;
        while o < rest {
            // Safety: `rk`/`rounds` from one key; `min(16, rest - o)` bytes at `q + o` lie in the data.
            unsafe { xor_into(q.add(o), (rest - o).min(16), aes1(rk, rounds, ctr(base, c))) };
            c = c.wrapping_add(1);
            o += 16;
        }
        if SEAL {
            // Safety: `rest` bytes from `q` lie in the data.
            acc = unsafe { ghash_update(hp, acc, q, rest) };
        }
    }
    // Safety: row `HPOW - 1` is K^1.
    let k1 = unsafe { hpow(hp, HPOW - 1) }.0;
    let s = super::key::dot(_mm_xor_si128(acc, len_block(op.aad.len(), len)), k1);
    make_tag(s, ej0)
}

/// One block of a batch: counter block, round keys, where the keystream goes.
#[derive(Clone, Copy)]
struct Job {
    ctr: __m128i,
    rk: *const u8,
    dst: *mut u8,
    len: usize,
}

/// Runs `N` jobs through the AES rounds together and XORs their keystream into place.
///
/// # Safety
/// Every job's `rk` is a key's `rk_ptr()` with `rounds` rounds and its `dst` is valid for
/// reading and writing `len <= 16` bytes.
#[inline]
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn run<const N: usize>(jobs: &[Job; N], rounds: usize) {
    let mut s = [_mm_setzero_si128(); N];
    for i in 0..N {
        // Safety: row 0 of the job's key.
        s[i] = _mm_xor_si128(jobs[i].ctr, unsafe { ld(jobs[i].rk) });
    }
    for r in 1..rounds {
        for i in 0..N {
            // Safety: row `r < rounds` of the job's key.
            s[i] = _mm_aesenc_si128(s[i], unsafe { ld(jobs[i].rk.add(64 * r)) });
        }
    }
    for i in 0..N {
        // Safety: row `rounds` of the job's key; `dst` valid for `len` bytes (caller).
        unsafe { xor_into(jobs[i].dst, jobs[i].len, _mm_aesenclast_si128(s[i], ld(jobs[i].rk.add(64 * rounds)))) };
    }
}

/// Runs the first `n < 8` jobs in batches of 4, 2 and 1.
///
/// # Safety
/// As [`run`], for the first `n` jobs.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn run_tail(jobs: &[Job; 8], n: usize, rounds: usize) {
    let mut k = 0;
    if n - k >= 4 {
        // Safety: jobs `k..k + 4` are filled (caller).
        unsafe { run::<4>(jobs[k..k + 4].try_into().expect("4 jobs"), rounds) };
        k += 4;
    }
    if n - k >= 2 {
        // Safety: jobs `k..k + 2` are filled (caller).
        unsafe { run::<2>(jobs[k..k + 2].try_into().expect("2 jobs"), rounds) };
        k += 2;
    }
    if n - k >= 1 {
        // Safety: job `k` is filled (caller).
        unsafe { run::<1>(jobs[k..k + 1].try_into().expect("1 job"), rounds) };
    }
}

/// Seals or opens a group of small packets (all with `rounds` rounds) together.
///
/// # Safety
/// The CPU runs AES-NI, PCLMULQDQ, SSSE3 and SSE4.1; `group` holds at most [`GROUP_MAX`]
/// distinct indices of small ops of `ops` whose keys have `rounds` rounds.
#[target_feature(enable = "aes,pclmulqdq,sse2,ssse3,sse4.1")]
unsafe fn crypt_group<const SEAL: bool>(ops: &mut [GcmOp<'_>], group: &[usize], rounds: usize) {
    let mut ej0 = [[0u8; 16]; GROUP_MAX];
    let mut gh = [_mm_setzero_si128(); GROUP_MAX];
    if !SEAL {
        for (g, &i) in group.iter().enumerate() {
            let op = &ops[i];
            // Safety: both slices are readable; small ops need at most 4 + 16 + 1 powers.
            gh[g] =
                unsafe { ghash_small(Pw::of(op.key), op.aad.as_ptr(), op.aad.len(), op.data.as_ptr(), op.data.len()) };
        }
    }
    let empty = Job { ctr: _mm_setzero_si128(), rk: core::ptr::null(), dst: core::ptr::null_mut(), len: 0 };
    let mut jobs = [empty; 8];
    let mut n = 0;
    for (g, &i) in group.iter().enumerate() {
        let op = &mut ops[i];
        let rk = op.key.rk_ptr();
        let base = ctr_base(&op.nonce);
        jobs[n] = Job { ctr: ctr(base, 1), rk, dst: ej0[g].as_mut_ptr(), len: 16 };
        n += 1;
        if n == 8 {
            // Safety: 8 filled jobs, keys of `rounds` rounds, destinations in live buffers.
            unsafe { run::<8>(&jobs, rounds) };
            n = 0;
        }
        let len = op.data.len();
        let p = op.data.as_mut_ptr();
        let mut off = 0;
        let mut c = 2u32;
        while off < len {
            jobs[n] = Job { ctr: ctr(base, c), rk, dst: p.wrapping_add(off), len: (len - off).min(16) };
            n += 1;
            if n == 8 {
                // Safety: as above.
                unsafe { run::<8>(&jobs, rounds) };
                n = 0;
            }
            off += 16;
            c += 1;
        }
    }
    if n > 0 {
        // Safety: `n` filled jobs, as above.
        unsafe { run_tail(&jobs, n, rounds) };
    }
    for (g, &i) in group.iter().enumerate() {
        let op = &mut ops[i];
        let s = if SEAL {
            // Safety: both slices are readable; small ops need at most 4 + 16 + 1 powers.
            unsafe { ghash_small(Pw::of(op.key), op.aad.as_ptr(), op.aad.len(), op.data.as_ptr(), op.data.len()) }
        } else {
            gh[g]
        };
        // Safety: `ej0[g]` has 16 bytes.
        let tag = make_tag(s, unsafe { ld(ej0[g].as_ptr()) });
        finish::<SEAL>(op, tag);
    }
}

/// Seals or opens a burst on this path.
///
/// # Safety
/// The CPU runs AES-NI, PCLMULQDQ, SSSE3 and SSE4.1; no op is longer than `MAX_DATA_LEN`.
pub(super) unsafe fn crypt_burst<const SEAL: bool>(ops: &mut [GcmOp<'_>]) {
    schedule(
        ops,
        super::common::is_small,
        // Safety: the CPU runs this path (caller); `schedule` hands over groups of small ops
        // with one round count.
        |ops, group, rounds| unsafe { crypt_group::<SEAL>(ops, group, rounds) },
        |op| {
            // Safety: the CPU runs this path (caller).
            let tag = unsafe { crypt_wide::<SEAL>(op) };
            // Safety: the CPU runs this path, which includes SSE4.1 (caller).
            unsafe { finish::<SEAL>(op, tag) };
        },
    );
}
