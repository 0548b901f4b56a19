//! The Encrypted and Authenticated payload (RFC 7296 section 3.14; RFC 5282 for AEADs) and its
//! fragmented form, the Encrypted and Authenticated Fragment payload (RFC 7383 section 2.5):
//! sealing a list of inner payloads into a whole message or into fragments, and opening either.
//!
//! Both payloads frame their contents the same way (IV, padded plaintext, ICV; for an AEAD
//! everything before the IV is associated data, for CBC the ICV covers everything before
//! it): one sealing function and one opening function do that framing for both, and differ
//! only in the payload header they get.
//!
//! The integrity check happens before anything inside is parsed; a failed check gives
//! [`SkError::Integrity`] and nothing else about the contents. Never logs keys or plaintext.

use crate::crypto::{AEAD_ICV_LEN, Encr, Integ, RandomSource};
use crate::message::{
    FragmentNumber, HEADER_LEN, Header, Message, ParseError, Payload, emit_chain, parse_chain, payload_type,
};

/// Bytes of an Encrypted Fragment payload's header: the generic payload header, Fragment
/// Number and Total Fragments (RFC 7383 section 2.5).
pub const SKF_HEADER_LEN: usize = 8;

/// Bytes of an Encrypted payload's header (the generic payload header).
pub const SK_HEADER_LEN: usize = 4;

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
    /// The message has no Encrypted payload (or, for [`open_fragment`], no Encrypted Fragment
    /// payload).
    Missing,
    /// The message carries one fragment of a message (SKF): [`open_fragment`] opens it.
    Fragment,
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

    /// Bytes of IV, padded plaintext and ICV around `inner_len` bytes of payloads: what follows
    /// the payload header in an SK or SKF payload.
    fn body_len(&self, inner_len: usize) -> usize {
        let block = self.encr.block_len();
        let padded = (inner_len + 1).div_ceil(block) * block;
        self.encr.iv_len() + padded + self.icv_len()
    }

    /// Size of the SK payload (generic header included) around `inner_len` bytes of payloads.
    pub fn overhead(&self, inner_len: usize) -> usize {
        SK_HEADER_LEN + self.body_len(inner_len)
    }

    /// The most bytes of inner payloads one Encrypted Fragment message of at most
    /// `message_len` bytes (IKE header included) carries; 0 when not even one byte fits.
    pub fn fragment_capacity(&self, message_len: usize) -> usize {
        let fixed = HEADER_LEN + SKF_HEADER_LEN + self.encr.iv_len() + self.icv_len();
        let Some(room) = message_len.checked_sub(fixed) else { return 0 };
        // The padded plaintext is whole blocks and holds the Pad Length byte.
        let block = self.encr.block_len();
        (room / block * block).saturating_sub(1)
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
    header: Header,
    first: u8,
    plain: Vec<u8>,
    keys: &SkKeys<'_>,
    aead_iv: &mut u64,
    rng: &mut dyn RandomSource,
) -> Option<Vec<u8>> {
    seal_payload(header, first, None, plain, keys, aead_iv, rng)
}

/// Builds the fragments of a message (RFC 7383 section 2.5): the encoded inner payloads
/// `plain` (first payload of type `first`) cut into pieces regardless of payload boundaries,
/// each sealed in its own Encrypted Fragment payload under `header` (the message's, its
/// length and Next Payload set per fragment), none longer than `message_len` bytes. `None`
/// when not one byte fits that size, when it takes more than 65535 fragments, or when sealing
/// fails.
pub fn seal_fragments(
    header: Header,
    first: u8,
    plain: &[u8],
    keys: &SkKeys<'_>,
    aead_iv: &mut u64,
    rng: &mut dyn RandomSource,
    message_len: usize,
) -> Option<Vec<Vec<u8>>> {
    let capacity = keys.fragment_capacity(message_len);
    if capacity == 0 {
        return None;
    }
    let total = u16::try_from(plain.len().div_ceil(capacity).max(1)).ok()?;
    let mut out = Vec::with_capacity(total as usize);
    for (i, chunk) in plain.chunks(capacity).enumerate() {
        let number = u16::try_from(i + 1).ok()?;
        //= https://www.rfc-editor.org/rfc/rfc7383#section-2.5
        //# in the very first fragment (with Fragment Number equal to 1), this field MUST be set
        //# to the payload type of the first inner payload ... In the rest of the Fragment
        //# messages (with Fragment Number greater than 1), this field MUST be set to zero.
        let next = if number == 1 { first } else { payload_type::NONE };
        let fragment = Some(FragmentNumber { number, total });
        out.push(seal_payload(header, next, fragment, chunk.to_vec(), keys, aead_iv, rng)?);
    }
    Some(out)
}

/// The one sealing of SK and SKF: `header`, then the payload header (`fragment` makes it an
/// SKF with its fields), then IV, `plain` padded and encrypted, ICV.
fn seal_payload(
    mut header: Header,
    next: u8,
    fragment: Option<FragmentNumber>,
    mut plain: Vec<u8>,
    keys: &SkKeys<'_>,
    aead_iv: &mut u64,
    rng: &mut dyn RandomSource,
) -> Option<Vec<u8>> {
    let block = keys.encr.block_len();
    let pad = (block - (plain.len() + 1) % block) % block;
    plain.extend(std::iter::repeat_n(0u8, pad));
    plain.push(pad as u8);
    let head_len = if fragment.is_some() { SKF_HEADER_LEN } else { SK_HEADER_LEN };
    let payload_len = head_len + keys.encr.iv_len() + plain.len() + keys.icv_len();
    header.next_payload = if fragment.is_some() { payload_type::SKF } else { payload_type::SK };
    header.length = u32::try_from(HEADER_LEN + payload_len).ok()?;
    let mut out = Vec::with_capacity(header.length as usize);
    header.emit(&mut out);
    out.push(next);
    out.push(0);
    out.extend_from_slice(&u16::try_from(payload_len).ok()?.to_be_bytes());
    if let Some(f) = fragment {
        out.extend_from_slice(&f.number.to_be_bytes());
        out.extend_from_slice(&f.total.to_be_bytes());
    }
    if keys.encr.is_aead() {
        let iv = aead_iv.to_be_bytes();
        *aead_iv = aead_iv.checked_add(1)?;
        //= https://www.rfc-editor.org/rfc/rfc5282#section-5.1
        //# the associated data ... consists of the IKEv2 header ... through the Encrypted
        //# payload header, up to but not including the IV
        // (for an SKF, its Fragment Number and Total Fragments are part of that header)
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
/// payloads inside. A fragment (SKF) is refused with [`SkError::Fragment`].
pub fn open(msg: &Message, raw: &[u8], keys: &SkKeys<'_>) -> Result<Vec<Payload>, SkError> {
    let loc = msg.encrypted.ok_or(SkError::Missing)?;
    if loc.fragment.is_some() {
        return Err(SkError::Fragment);
    }
    let inner = open_payload(raw, loc.body_offset, keys)?;
    let (payloads, nested) = parse_chain(&inner, 0, loc.first_inner, false).map_err(SkError::Malformed)?;
    debug_assert!(nested.is_none());
    Ok(payloads)
}

/// Verifies and decrypts the Encrypted Fragment payload of `msg` (parsed from `raw`): its
/// piece of the inner payloads, as sent (RFC 7383 section 2.6: every fragment is checked
/// before it is kept). A message without one is refused with [`SkError::Missing`].
pub fn open_fragment(msg: &Message, raw: &[u8], keys: &SkKeys<'_>) -> Result<Vec<u8>, SkError> {
    let loc = msg.encrypted.ok_or(SkError::Missing)?;
    if loc.fragment.is_none() {
        return Err(SkError::Missing);
    }
    open_payload(raw, loc.body_offset, keys)
}

/// The one opening of SK and SKF: checks the ICV over `raw` (IV at `body_offset`), decrypts,
/// and returns the plaintext without its padding.
fn open_payload(raw: &[u8], body_offset: usize, keys: &SkKeys<'_>) -> Result<Vec<u8>, SkError> {
    let body = raw.get(body_offset..).ok_or(SkError::Integrity)?;
    let iv_len = keys.encr.iv_len();
    let icv_len = keys.icv_len();
    if body.len() < iv_len + icv_len + 1 {
        return Err(SkError::Integrity);
    }
    let (iv, rest) = body.split_at(iv_len);
    let mut plain = if keys.encr.is_aead() {
        let aad = raw.get(..body_offset).ok_or(SkError::Integrity)?;
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
    plain.truncate(plain.len() - pad_len - 1);
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SeededRandom;
    use crate::message::{ExchangeType, NotifyType};

    fn header() -> Header {
        Header {
            spi_i: 1,
            spi_r: 2,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange: ExchangeType::IkeAuth,
            flags: crate::message::FLAG_INITIATOR,
            message_id: 1,
            length: 0,
        }
    }

    /// A transform, its integrity, and the two keys.
    type Suite = (Encr, Option<Integ>, Vec<u8>, Vec<u8>);

    fn suites() -> Vec<Suite> {
        vec![
            (Encr::AesGcm16 { key_bits: 256 }, None, vec![7; 36], vec![]),
            (Encr::ChaCha20Poly1305, None, vec![8; 36], vec![]),
            (Encr::AesCbc { key_bits: 128 }, Some(Integ::HmacSha256_128), vec![9; 16], vec![3; 32]),
        ]
    }

    #[test]
    fn fragments_carry_the_whole_chain_and_fit_their_size() {
        let inner: Vec<Payload> = (0..40).map(|i| Payload::notify(NotifyType(40000 + i), vec![i as u8; 97])).collect();
        let mut plain = Vec::new();
        let first = emit_chain(&inner, &mut plain);
        for (encr, integ, ek, ak) in suites() {
            let keys = SkKeys { encr, integ, encryption_key: &ek, integrity_key: &ak };
            let (mut iv, mut rng) = (0, SeededRandom::new(1));
            for size in [200, 333, 1000] {
                let frags = seal_fragments(header(), first, &plain, &keys, &mut iv, &mut rng, size).unwrap();
                let mut joined = Vec::new();
                for (i, f) in frags.iter().enumerate() {
                    assert!(f.len() <= size, "{encr:?}: {} > {size}", f.len());
                    let m = Message::parse(f).unwrap();
                    let loc = m.encrypted.unwrap();
                    let n = loc.fragment.unwrap();
                    assert_eq!((n.number as usize, n.total as usize), (i + 1, frags.len()));
                    assert_eq!(loc.first_inner, if i == 0 { first } else { 0 });
                    assert_eq!(open(&m, f, &keys), Err(SkError::Fragment));
                    joined.extend(open_fragment(&m, f, &keys).unwrap());
                }
                assert_eq!(joined, plain, "{encr:?} at {size}");
                // Every fragment but the last is full: no more fragments than needed.
                assert_eq!(frags.len(), plain.len().div_ceil(keys.fragment_capacity(size)));
            }
        }
    }

    #[test]
    fn a_changed_fragment_number_fails_the_icv() {
        // The Fragment Number and Total Fragments are authenticated (associated data, or
        // under the CBC suite's ICV).
        for (encr, integ, ek, ak) in suites() {
            let keys = SkKeys { encr, integ, encryption_key: &ek, integrity_key: &ak };
            let (mut iv, mut rng) = (0, SeededRandom::new(1));
            let frags = seal_fragments(header(), 41, &[5; 500], &keys, &mut iv, &mut rng, 300).unwrap();
            let mut f = frags[1].clone();
            f[HEADER_LEN + 5] ^= 1;
            let m = Message::parse(&f).unwrap();
            assert_eq!(open_fragment(&m, &f, &keys), Err(SkError::Integrity), "{encr:?}");
        }
    }

    #[test]
    fn capacity_is_exact() {
        for (encr, integ, ek, ak) in suites() {
            let keys = SkKeys { encr, integ, encryption_key: &ek, integrity_key: &ak };
            for size in 60..400 {
                let cap = keys.fragment_capacity(size);
                if cap == 0 {
                    continue;
                }
                let len = HEADER_LEN + SKF_HEADER_LEN + keys.body_len(cap);
                assert!(len <= size, "{encr:?} {size}: {len}");
                let more = HEADER_LEN + SKF_HEADER_LEN + keys.body_len(cap + 1);
                assert!(more > size, "{encr:?} {size}: one more byte would fit");
            }
            assert_eq!(keys.fragment_capacity(HEADER_LEN + SKF_HEADER_LEN), 0);
        }
    }
}
