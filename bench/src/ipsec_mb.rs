//! intel-ipsec-mb's direct AES-GCM API (one packet per call), the reference that the crypto
//! benchmarks compare Rampart's own AES-GCM with. Benchmark-only: nothing in the gateway links it.
//!
//! Must never: hand the C side a buffer shorter than the length it is told, or free a manager or
//! key twice. The C shim in `csrc/ipsec_mb_shim.c` wraps the manager's function pointers.
#![allow(unsafe_code)]

use core::ffi::c_void;
use core::ptr::NonNull;

unsafe extern "C" {
    fn rampart_imb_new(arch: i32) -> *mut c_void;
    fn rampart_imb_free(m: *mut c_void);
    fn rampart_imb_arch(m: *const c_void) -> u32;
    fn rampart_imb_features(m: *const c_void) -> u64;
    fn rampart_imb_gcm_key_new(m: *mut c_void, key: *const u8, key_len: usize) -> *mut c_void;
    fn rampart_imb_gcm_key_free(kd: *mut c_void);
    fn rampart_imb_gcm_seal(
        m: *mut c_void,
        kd: *const c_void,
        key_len: usize,
        iv: *const u8,
        aad: *const u8,
        aad_len: usize,
        data: *mut u8,
        len: usize,
        tag: *mut u8,
    );
    fn rampart_imb_gcm_open(
        m: *mut c_void,
        kd: *const c_void,
        key_len: usize,
        iv: *const u8,
        aad: *const u8,
        aad_len: usize,
        data: *mut u8,
        len: usize,
        tag: *const u8,
    ) -> i32;
}

/// An intel-ipsec-mb manager, initialised for the best architecture this CPU runs.
pub struct Manager {
    mgr: NonNull<c_void>,
}

impl Manager {
    /// The best code this CPU runs; `None` when the library cannot initialise a manager here.
    pub fn new() -> Option<Manager> {
        // Safety: plain integer argument; returns a manager or null.
        NonNull::new(unsafe { rampart_imb_new(0) }).map(|mgr| Manager { mgr })
    }

    /// The library's AVX2 code (128-bit AES-NI and PCLMULQDQ): the reference for a CPU without
    /// VAES. `None` when it cannot be initialised here.
    pub fn new_avx2() -> Option<Manager> {
        if !(std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("aes")) {
            return None;
        }
        // Safety: plain integer argument; returns a manager or null.
        NonNull::new(unsafe { rampart_imb_new(1) }).map(|mgr| Manager { mgr })
    }

    /// The architecture the library picked, and whether its VAES features are on.
    pub fn describe(&self) -> String {
        // Safety: `mgr` is a live manager.
        let (arch, features) =
            unsafe { (rampart_imb_arch(self.mgr.as_ptr()), rampart_imb_features(self.mgr.as_ptr())) };
        let name = match arch {
            1 => "noaesni",
            2 => "sse",
            3 => "avx",
            4 => "avx2",
            5 => "avx512",
            _ => "unknown",
        };
        let vaes = features & (1 << 12) != 0;
        format!("intel-ipsec-mb arch {name}{}", if vaes { " +vaes/vpclmulqdq" } else { "" })
    }

    /// Expands a 16- or 32-byte AES-GCM key (IMB_AES*_GCM_PRE).
    pub fn key(&self, key: &[u8]) -> Option<Key> {
        if key.len() != 16 && key.len() != 32 {
            return None;
        }
        // Safety: `mgr` is live; `key` holds `key.len()` bytes (16 or 32).
        let kd = unsafe { rampart_imb_gcm_key_new(self.mgr.as_ptr(), key.as_ptr(), key.len()) };
        NonNull::new(kd).map(|kd| Key { kd, key_len: key.len() })
    }

    /// Seals `data` in place with a 12-byte IV (IMB_AES*_GCM_ENC), writes the 16-byte tag.
    pub fn seal(&self, key: &Key, iv: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &mut [u8; 16]) {
        // Safety: every pointer comes from a live Rust object of the length passed with it.
        unsafe {
            rampart_imb_gcm_seal(
                self.mgr.as_ptr(),
                key.kd.as_ptr(),
                key.key_len,
                iv.as_ptr(),
                aad.as_ptr(),
                aad.len(),
                data.as_mut_ptr(),
                data.len(),
                tag.as_mut_ptr(),
            )
        }
    }

    /// Opens `data` in place (IMB_AES*_GCM_DEC); true when the tag matches.
    pub fn open(&self, key: &Key, iv: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
        // Safety: every pointer comes from a live Rust object of the length passed with it.
        unsafe {
            rampart_imb_gcm_open(
                self.mgr.as_ptr(),
                key.kd.as_ptr(),
                key.key_len,
                iv.as_ptr(),
                aad.as_ptr(),
                aad.len(),
                data.as_mut_ptr(),
                data.len(),
                tag.as_ptr(),
            ) == 1
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // Safety: `mgr` came from `rampart_imb_new` and is freed once.
        unsafe { rampart_imb_free(self.mgr.as_ptr()) }
    }
}

/// An expanded intel-ipsec-mb GCM key (wiped and freed on drop).
pub struct Key {
    kd: NonNull<c_void>,
    key_len: usize,
}

impl Drop for Key {
    fn drop(&mut self) {
        // Safety: `kd` came from `rampart_imb_gcm_key_new` and is freed once.
        unsafe { rampart_imb_gcm_key_free(self.kd.as_ptr()) }
    }
}
