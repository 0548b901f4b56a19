//! Helpers shared by the integration tests: vector files, hex, packet buffers, SA contexts.
//! Test code only; it must never read anything outside `tests/data/`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use rampart_crypto::{Backend, SaCrypto, Suite};

/// Sections of a vector file: `[name]` headers, `key=value` lines, `#` comments. Keys before
/// the first header land in the section named "".
pub fn load(name: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut sections = BTreeMap::new();
    let mut current = String::new();
    sections.insert(current.clone(), BTreeMap::new());
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            sections.insert(current.clone(), BTreeMap::new());
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{path}: bad line {line}"));
        sections.get_mut(&current).unwrap().insert(k.to_string(), v.to_string());
    }
    sections
}

/// Decodes lowercase or uppercase hex.
pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
}

/// Encodes lowercase hex.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Deterministic key bytes (distinct per `tag`).
pub fn key_bytes(len: usize, tag: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(29).wrapping_add(tag)).collect()
}

/// An SA context with deterministic keys (equal for every backend, so that packets cross).
pub fn sa(suite: Suite, backend: Backend) -> SaCrypto {
    SaCrypto::new(
        suite,
        &key_bytes(suite.encryption_key_len(), 0x31),
        &key_bytes(suite.integrity_key_len(), 0x77),
        backend,
    )
    .expect("SA with keys of the right length")
}

/// A packet buffer for `suite`: SPI, Seq low, room for the IV, `body` (the encrypted region),
/// room for the ICV.
pub fn packet(suite: Suite, spi: u32, seq: u64, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + suite.iv_len() + body.len() + suite.icv_len());
    p.extend_from_slice(&spi.to_be_bytes());
    p.extend_from_slice(&(seq as u32).to_be_bytes());
    p.extend(std::iter::repeat_n(0u8, suite.iv_len()));
    p.extend_from_slice(body);
    p.extend(std::iter::repeat_n(0u8, suite.icv_len()));
    p
}

/// A body of `len` bytes (a multiple of the suite's alignment) ending in an ESP trailer.
pub fn body(len: usize, fill: u8) -> Vec<u8> {
    assert!(len >= 2);
    let mut b: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(fill)).collect();
    b[len - 2] = 0;
    b[len - 1] = 4;
    b
}

/// Every suite of `Suite::all()` plus the AES-192-CBC ones, which `all()` leaves out.
pub fn every_suite() -> Vec<Suite> {
    let mut v = Suite::all().to_vec();
    v.push(Suite::from_swanctl("aes192-sha256").unwrap());
    v.push(Suite::from_swanctl("aes192-sha384").unwrap());
    v.push(Suite::from_swanctl("aes128-sha512").unwrap());
    v
}

/// Body lengths to try for `suite`: several, each a multiple of its alignment.
pub fn lengths(suite: Suite) -> Vec<usize> {
    let a = suite.block_len();
    [1usize, 2, 3, 4, 16, 64, 88, 350].iter().map(|n| n * a).filter(|&n| n >= 2).collect()
}

/// Byte range of the encrypted region of a packet of `suite`.
pub fn body_range(suite: Suite, len: usize) -> std::ops::Range<usize> {
    8 + suite.iv_len()..len - suite.icv_len()
}
