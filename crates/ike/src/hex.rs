//! Hex decoding: `keyid:` identities ([`crate::message::Identification::from_swanctl`]), `0x`
//! secrets of configuration files, and test vectors.
//!
//! Returns what it decodes and nothing else: no error text that could carry the input (it may be
//! a key), no allocation beyond the output.

/// Decodes a hex string (even length, no separators except optional `:`); `None` if malformed.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    digits.chunks(2).map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?)).collect()
}
