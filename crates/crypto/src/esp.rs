//! ESP framing of one packet over the primitives: where the IV, the encrypted region and the
//! ICV lie (RFC 4303 section 2), the AEAD nonce and AAD (RFC 4106 section 5, RFC 7634
//! section 2), the HMAC input with the ESN high half (RFC 4303 section 3.3.2.1), and the rule
//! that nothing unauthenticated survives a failed open.
//!
//! Every function here works on one packet; bursts are cut and dispatched in `lib.rs`. This
//! module must never decrypt before the ICV has verified (CBC, NULL), never hand back plaintext
//! from a packet that failed, and never panic on a packet of any length: lengths are checked
//! once by [`Region::of`] and all slicing after that is within those bounds.

use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::cbc::BLOCK_LEN;
#[cfg(target_arch = "x86_64")]
use crate::op::{MAX_BURST, OpenOp, SealOp};
use crate::sa::{SaCrypto, Transform};
use crate::vaes;

/// Bytes of SPI and low sequence number at the start of every ESP packet.
pub(crate) const HEADER_LEN: usize = 8;

/// Where the parts of one ESP packet lie, checked against the suite once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Region {
    /// Start of the IV (always [`HEADER_LEN`]).
    iv_start: usize,
    /// Start of the encrypted region (payload, padding, pad length, next header).
    body_start: usize,
    /// Start of the ICV (end of the encrypted region).
    icv_start: usize,
}

impl Region {
    /// The parts of an `len`-byte packet of `sa`'s suite, or `None` when no valid packet has
    /// that length. `strict` (sealing) also requires the encrypted region to be a multiple of
    /// the suite's alignment (RFC 4303 section 2.4); opening only requires what the cipher
    /// needs, so that a peer that pads differently is still understood.
    pub(crate) fn of(sa: &SaCrypto, len: usize, strict: bool) -> Option<Region> {
        let suite = sa.suite;
        // AES-GMAC integrity is AH's (RFC 4543); no ESP packet is made or opened with it.
        if suite.is_gmac() {
            return None;
        }
        let body_start = HEADER_LEN + suite.iv_len();
        let icv_start = len.checked_sub(suite.icv_len())?;
        let body_len = icv_start.checked_sub(body_start)?;
        // Pad length and next header are always there.
        if body_len < 2 {
            return None;
        }
        let align = if strict {
            suite.block_len()
        } else if matches!(sa.transform, Transform::Cbc { .. }) {
            BLOCK_LEN
        } else {
            1
        };
        if body_len % align != 0 {
            return None;
        }
        Some(Region { iv_start: HEADER_LEN, body_start, icv_start })
    }
}

/// AEAD additional data (RFC 4106 section 5): SPI || Seq low, or SPI || Seq high || Seq low.
fn aead_aad(esp: &[u8], seq: u64, esn: bool, out: &mut [u8; 12]) -> usize {
    out[..4].copy_from_slice(&esp[..4]);
    if esn {
        out[4..8].copy_from_slice(&seq_high(seq));
        out[8..12].copy_from_slice(&esp[4..8]);
        12
    } else {
        out[4..8].copy_from_slice(&esp[4..8]);
        8
    }
}

fn seq_high(seq: u64) -> [u8; 4] {
    ((seq >> 32) as u32).to_be_bytes()
}

/// The HMAC tail: the ESN high half when ESN is on, nothing otherwise.
//= https://www.rfc-editor.org/rfc/rfc4303#section-3.3.2.1
//# If
//# the ESN option is enabled for the SA, the high-order 32
//# bits of the sequence number are appended after the Next
//# Header field for purposes of this computation, but are not
//# transmitted.
fn mac_tail(seq: u64, esn: bool, out: &mut [u8; 4]) -> &[u8] {
    if esn {
        *out = seq_high(seq);
        &out[..]
    } else {
        &out[..0]
    }
}

/// Whether `seq` and the low half on the wire agree, and a 32-bit SA stays within 32 bits.
pub(crate) fn seq_matches(esp: &[u8], seq: u64, esn: bool) -> bool {
    let wire = [esp[4], esp[5], esp[6], esp[7]];
    //= https://www.rfc-editor.org/rfc/rfc4303#section-3.3.3
    //# the sender MUST NOT send a
    //# packet on an SA if doing so would cause the sequence number to cycle.
    (esn || seq <= u64::from(u32::MAX)) && wire == (seq as u32).to_be_bytes()
}

/// Seals one packet whose region and sequence number were checked. `iv_override` replaces the
/// derived IV (known-answer tests only: see `raw`).
pub(crate) fn seal(sa: &SaCrypto, esp: &mut [u8], seq: u64, esn: bool, region: Region, iv_override: Option<&[u8]>) {
    let Region { iv_start, body_start, icv_start } = region;
    match &sa.transform {
        Transform::Aead { key, salt } => {
            //= https://www.rfc-editor.org/rfc/rfc4106#section-3.1
            //# For a given key, the IV MUST NOT repeat.
            // The IV is the 64-bit sequence number, which never repeats under one SA (RFC 7634
            // section 2 asks the same: unique per SA, not necessarily unpredictable).
            let iv = match iv_override {
                Some(iv) => iv,
                None => &seq.to_be_bytes()[..],
            };
            esp[iv_start..body_start].copy_from_slice(iv);
            let mut nonce = [0u8; NONCE_LEN];
            nonce[..4].copy_from_slice(&salt[..]);
            nonce[4..].copy_from_slice(&esp[iv_start..body_start]);
            let mut aad = [0u8; 12];
            let aad_len = aead_aad(esp, seq, esn, &mut aad);
            let (head, icv) = esp.split_at_mut(icv_start);
            let tag = key.seal(&nonce, &aad[..aad_len], &mut head[body_start..]);
            icv.copy_from_slice(&tag);
        }
        Transform::Cbc { cipher, iv_gen, mac } => {
            let iv = match iv_override {
                Some(given) => {
                    let mut iv = [0u8; BLOCK_LEN];
                    iv.copy_from_slice(given);
                    iv
                }
                None => iv_gen.iv(seq),
            };
            esp[iv_start..body_start].copy_from_slice(&iv);
            cipher.encrypt(&iv, &mut esp[body_start..icv_start]);
            let mut tail = [0u8; 4];
            let (head, icv) = esp.split_at_mut(icv_start);
            mac.sign(head, mac_tail(seq, esn, &mut tail), icv);
        }
        Transform::Null { mac } => {
            let mut tail = [0u8; 4];
            let (head, icv) = esp.split_at_mut(icv_start);
            mac.sign(head, mac_tail(seq, esn, &mut tail), icv);
        }
        // An AH-only suite never reaches here: `Region::of` refuses it for ESP.
        Transform::Gmac { .. } => {}
        #[cfg(target_arch = "x86_64")]
        Transform::VaesGcm { key, salt, engine } => {
            let iv = match iv_override {
                Some(iv) => iv,
                None => &seq.to_be_bytes()[..],
            };
            esp[iv_start..body_start].copy_from_slice(iv);
            let mut aad = [0u8; 12];
            let aad_len = aead_aad(esp, seq, esn, &mut aad);
            let mut ops = [gcm_op(key, salt, esp, &aad[..aad_len], region)];
            seal_gcm(engine, &mut ops);
        }
    }
}

/// Verifies and decrypts one packet in place. Returns whether it verified; when it did not,
/// the encrypted region is zeroed (for NULL it held unauthenticated plaintext, for the
/// ciphers nothing was decrypted, or the AEAD wiped it).
pub(crate) fn open(sa: &SaCrypto, esp: &mut [u8], seq: u64, esn: bool) -> bool {
    let Some(region) = Region::of(sa, esp.len(), false) else {
        return false;
    };
    let Region { iv_start, body_start, icv_start } = region;
    if !seq_matches(esp, seq, esn) {
        esp[body_start..icv_start].fill(0);
        return false;
    }
    let verified = match &sa.transform {
        Transform::Aead { key, salt } => {
            let mut nonce = [0u8; NONCE_LEN];
            nonce[..4].copy_from_slice(&salt[..]);
            nonce[4..].copy_from_slice(&esp[iv_start..body_start]);
            let mut aad = [0u8; 12];
            let aad_len = aead_aad(esp, seq, esn, &mut aad);
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&esp[icv_start..]);
            key.open(&nonce, &aad[..aad_len], &mut esp[body_start..icv_start], &tag)
        }
        Transform::Cbc { cipher, mac, .. } => {
            let mut tail = [0u8; 4];
            let (head, icv) = esp.split_at(icv_start);
            // RFC 4303 section 3.4.4.1: integrity first, then decryption.
            if mac.verify(head, mac_tail(seq, esn, &mut tail), icv) {
                let mut iv = [0u8; BLOCK_LEN];
                iv.copy_from_slice(&esp[iv_start..body_start]);
                cipher.decrypt(&iv, &mut esp[body_start..icv_start]);
                true
            } else {
                false
            }
        }
        Transform::Null { mac } => {
            let mut tail = [0u8; 4];
            let (head, icv) = esp.split_at(icv_start);
            mac.verify(head, mac_tail(seq, esn, &mut tail), icv)
        }
        Transform::Gmac { .. } => false,
        #[cfg(target_arch = "x86_64")]
        Transform::VaesGcm { key, salt, engine } => {
            let mut aad = [0u8; 12];
            let aad_len = aead_aad(esp, seq, esn, &mut aad);
            let mut ops = [gcm_op(key, salt, esp, &aad[..aad_len], region)];
            engine.open_burst(&mut ops);
            ops[0].verified
        }
    };
    if !verified {
        esp[body_start..icv_start].fill(0);
    }
    verified
}

/// The multi-buffer engine's view of one ESP packet: nonce = salt || IV, the AAD given (it
/// holds the SPI and sequence number), data between IV and ICV, the ICV as tag.
#[cfg(target_arch = "x86_64")]
fn gcm_op<'a>(
    key: &'a vaes::GcmKey,
    salt: &[u8; 4],
    esp: &'a mut [u8],
    aad: &'a [u8],
    region: Region,
) -> vaes::GcmOp<'a> {
    let Region { iv_start, body_start, icv_start } = region;
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..4].copy_from_slice(salt);
    nonce[4..].copy_from_slice(&esp[iv_start..body_start]);
    let (head, icv) = esp.split_at_mut(icv_start);
    // Region::of guarantees icv_len() == TAG_LEN bytes here for AES-GCM-16.
    let tag: &mut [u8; TAG_LEN] = icv.try_into().unwrap_or_else(|_| unreachable_tag());
    vaes::GcmOp { key, nonce, aad, data: &mut head[body_start..], tag, verified: false }
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn unreachable_tag() -> &'static mut [u8; TAG_LEN] {
    unreachable!("AES-GCM-16 ICV is 16 bytes")
}

/// Seals a group on the engine. Its only refusal is data beyond GCM's 2^36-byte limit, which no
/// ESP packet reaches; should it happen, nothing of the group is left in clear.
#[cfg(target_arch = "x86_64")]
fn seal_gcm(engine: &vaes::Engine, ops: &mut [vaes::GcmOp<'_>]) {
    if engine.seal_burst(ops).is_err() {
        for op in ops.iter_mut() {
            op.data.fill(0);
            op.tag.fill(0);
        }
    }
}

/// AAD storage for one chunk: built before any op borrows it.
#[cfg(target_arch = "x86_64")]
type AadRows = [[u8; 12]; MAX_BURST];

/// Seals the multi-buffer ops of a checked chunk as one burst (the others are left alone).
#[cfg(target_arch = "x86_64")]
pub(crate) fn seal_vaes(chunk: &mut [SealOp<'_>]) {
    let mut aads: AadRows = [[0u8; 12]; MAX_BURST];
    let mut aad_lens = [0usize; MAX_BURST];
    let mut engine = None;
    for (i, op) in chunk.iter_mut().enumerate() {
        if let Transform::VaesGcm { engine: e, .. } = &op.sa.transform {
            engine = Some(*e);
            //= https://www.rfc-editor.org/rfc/rfc4106#section-3.1
            //# For a given key, the IV MUST NOT repeat.
            op.esp[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&op.seq.to_be_bytes());
            aad_lens[i] = aead_aad(op.esp, op.seq, op.esn, &mut aads[i]);
        }
    }
    let Some(engine) = engine else { return };
    let mut group: arrayvec::ArrayVec<vaes::GcmOp<'_>, MAX_BURST> = arrayvec::ArrayVec::new();
    for (i, op) in chunk.iter_mut().enumerate() {
        if let Transform::VaesGcm { key, salt, .. } = &op.sa.transform
            && let Some(region) = Region::of(op.sa, op.esp.len(), true)
        {
            group.push(gcm_op(key, salt, op.esp, &aads[i][..aad_lens[i]], region));
        }
    }
    seal_gcm(&engine, &mut group);
}

/// Opens the multi-buffer ops of a chunk as one burst and sets their `verified` (the others are
/// left alone).
#[cfg(target_arch = "x86_64")]
pub(crate) fn open_vaes(chunk: &mut [OpenOp<'_>]) {
    let mut aads: AadRows = [[0u8; 12]; MAX_BURST];
    let mut aad_lens = [0usize; MAX_BURST];
    let mut engine = None;
    // The layout of each op that goes to the engine (`None`: left alone, or refused below).
    let mut regions: [Option<Region>; MAX_BURST] = [None; MAX_BURST];
    for (i, op) in chunk.iter_mut().enumerate() {
        if let Transform::VaesGcm { engine: e, .. } = &op.sa.transform {
            op.verified = false;
            match Region::of(op.sa, op.esp.len(), false) {
                Some(r) if seq_matches(op.esp, op.seq, op.esn) => {
                    engine = Some(*e);
                    regions[i] = Some(r);
                    aad_lens[i] = aead_aad(op.esp, op.seq, op.esn, &mut aads[i]);
                }
                Some(r) => op.esp[r.body_start..r.icv_start].fill(0),
                None => {}
            }
        }
    }
    let Some(engine) = engine else { return };
    let mut group: arrayvec::ArrayVec<vaes::GcmOp<'_>, MAX_BURST> = arrayvec::ArrayVec::new();
    let mut verdicts: arrayvec::ArrayVec<&mut bool, MAX_BURST> = arrayvec::ArrayVec::new();
    for (i, op) in chunk.iter_mut().enumerate() {
        if let (Some(region), Transform::VaesGcm { key, salt, .. }) = (regions[i], &op.sa.transform) {
            group.push(gcm_op(key, salt, op.esp, &aads[i][..aad_lens[i]], region));
            verdicts.push(&mut op.verified);
        }
    }
    engine.open_burst(&mut group);
    for (op, verified) in group.iter().zip(verdicts) {
        *verified = op.verified;
    }
}
