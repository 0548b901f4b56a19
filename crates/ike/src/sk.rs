//! The Encrypted and Authenticated payload (RFC 7296 section 3.14; RFC 5282 for AEADs):
//! sealing a list of inner payloads into a whole message, and opening one.
//!
//! The integrity check happens before anything inside is parsed; a failed check gives
//! [`SkError::Integrity`] and nothing else about the contents. Never logs keys or plaintext.

use crate::crypto::{AEAD_ICV_LEN, Encr, Integ, RandomSource};
use crate::message::{HEADER_LEN, Header, Message, ParseError, Payload, emit_chain, parse_chain, payload_type};

/// The keys that protect one direction of an IKE SA.
pub struct SkKeys<'a> {
    /// Encryption transform.
    pub encr: Encr,
    /// Integrity transform (none for an AEAD).
    pub integ: Option<Integ>,
    /// SK_ei or SK_er.
    pub encryption_key: &'a [u8],
    /// SK_ai or SK_ar (empty for an AEAD).
    pub integrity_key: &'a [u8],
}

/// Why an Encrypted payload could not be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkError {
    /// The message has no Encrypted payload.
    Missing,
    /// Integrity check or decryption failed, or the payload is too short to hold one: drop silently.
    Integrity,
    /// Authenticated, but the plaintext is malformed: answer INVALID_SYNTAX.
    Malformed(ParseError),
}

impl SkKeys<'_> {
    fn icv_len(&self) -> usize {
        match self.integ {
            _ if self.encr.is_aead() => AEAD_ICV_LEN,
            Some(i) => i.icv_len(),
            None => 0,
        }
    }

    /// Size of the SK payload (generic header included) around `inner_len` bytes of payloads.
    pub fn overhead(&self, inner_len: usize) -> usize {
        let block = self.encr.block_len();
        let padded = (inner_len + 1).div_ceil(block) * block;
        4 + self.encr.iv_len() + padded + self.icv_len()
    }
}

/// Builds a whole message whose payloads are all inside one Encrypted payload.
///
/// `aead_iv` is the next value of the direction's IV counter for AEADs (RFC 5282 section 3.1:
/// the IV must never repeat under a key); it is incremented. CBC IVs come from `rng`.
pub fn seal(
    header: Header,
    inner: &[Payload],
    keys: &SkKeys<'_>,
    aead_iv: &mut u64,
    rng: &mut dyn RandomSource,
) -> Option<Vec<u8>> {
    let mut plain = Vec::new();
    let first = emit_chain(inner, &mut plain);
    seal_encoded(header, first, plain, keys, aead_iv, rng)
}

/// Builds a whole message around payloads already encoded: `plain` is the chain of inner
/// payloads as it goes on the wire and `first` the type of its first payload. [`seal`] encodes
/// its payloads and comes here; a test or fuzz target that needs contents [`Payload`] cannot
/// express (malformed chains) calls it directly.
pub fn seal_encoded(
    mut header: Header,
    first: u8,
    mut plain: Vec<u8>,
    keys: &SkKeys<'_>,
    aead_iv: &mut u64,
    rng: &mut dyn RandomSource,
) -> Option<Vec<u8>> {
    let block = keys.encr.block_len();
    let pad = (block - (plain.len() + 1) % block) % block;
    plain.extend(std::iter::repeat_n(0u8, pad));
    plain.push(pad as u8);
    let sk_len = 4 + keys.encr.iv_len() + plain.len() + keys.icv_len();
    header.next_payload = payload_type::SK;
    header.length = u32::try_from(HEADER_LEN + sk_len).ok()?;
    let mut out = Vec::with_capacity(header.length as usize);
    header.emit(&mut out);
    out.push(first);
    out.push(0);
    out.extend_from_slice(&u16::try_from(sk_len).ok()?.to_be_bytes());
    if keys.encr.is_aead() {
        let iv = aead_iv.to_be_bytes();
        *aead_iv = aead_iv.checked_add(1)?;
        let aad = out.clone();
        out.extend_from_slice(&iv);
        if !keys.encr.aead_seal(keys.encryption_key, &iv, &aad, &mut plain) {
            return None;
        }
        out.extend_from_slice(&plain);
    } else {
        let integ = keys.integ?;
        let mut iv = [0u8; 16];
        rng.fill(&mut iv);
        if !keys.encr.cbc_encrypt(keys.encryption_key, &iv, &mut plain) {
            return None;
        }
        out.extend_from_slice(&iv);
        out.extend_from_slice(&plain);
        //= https://www.rfc-editor.org/rfc/rfc7296#section-3.14
        //# The checksum MUST be computed over the encrypted message.
        let icv = integ.icv(keys.integrity_key, &out);
        out.extend_from_slice(&icv);
    }
    Some(out)
}

/// Verifies and decrypts the Encrypted payload of `msg` (parsed from `raw`) and parses the
/// payloads inside.
pub fn open(msg: &Message, raw: &[u8], keys: &SkKeys<'_>) -> Result<Vec<Payload>, SkError> {
    let loc = msg.encrypted.ok_or(SkError::Missing)?;
    let body = raw.get(loc.body_offset..).ok_or(SkError::Integrity)?;
    let iv_len = keys.encr.iv_len();
    let icv_len = keys.icv_len();
    if body.len() < iv_len + icv_len + 1 {
        return Err(SkError::Integrity);
    }
    let (iv, rest) = body.split_at(iv_len);
    let plain = if keys.encr.is_aead() {
        let aad = raw.get(..loc.body_offset).ok_or(SkError::Integrity)?;
        keys.encr.aead_open(keys.encryption_key, iv, aad, rest).map_err(|_| SkError::Integrity)?
    } else {
        let integ = keys.integ.ok_or(SkError::Integrity)?;
        let (signed, icv) = raw.split_at(raw.len() - icv_len);
        if !integ.verify(keys.integrity_key, signed, icv) {
            return Err(SkError::Integrity);
        }
        let mut ct = rest[..rest.len() - icv_len].to_vec();
        keys.encr
            .cbc_decrypt(keys.encryption_key, iv, &mut ct)
            .map_err(|_| SkError::Malformed(ParseError::Invalid("ciphertext is not whole blocks")))?;
        ct
    };
    let pad_len = *plain.last().ok_or(SkError::Malformed(ParseError::Invalid("empty plaintext")))? as usize;
    if pad_len + 1 > plain.len() {
        return Err(SkError::Malformed(ParseError::Invalid("pad length beyond the plaintext")));
    }
    let inner = &plain[..plain.len() - pad_len - 1];
    let (payloads, nested) = parse_chain(inner, 0, loc.first_inner, false).map_err(SkError::Malformed)?;
    debug_assert!(nested.is_none());
    Ok(payloads)
}
