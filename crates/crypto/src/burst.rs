//! Sealing and opening whole bursts ([`seal_burst`], [`open_burst`]): the multi-buffer
//! backend's ops go to it together, the library backends' one at a time; packets of one burst
//! may belong to different SAs and backends.

use crate::backend::CryptoError;
use crate::esp;
use crate::op::{MAX_BURST, MAX_TAG_LEN, MacOp, OpenOp, SealOp};
use crate::sa::Transform;

/// Seals a burst in place. Checks every op's layout first: on [`CryptoError::BadLayout`]
/// nothing at all was sealed.
///
/// An op fits when `esp` holds at least header, IV, two bytes of trailer and ICV, its encrypted
/// region is a multiple of [`Suite::block_len`](rampart_sa::Suite::block_len), `esp[4..8]` is the low half of `seq`, and `seq`
/// fits 32 bits unless `esn` is set.
pub fn seal_burst(ops: &mut [SealOp<'_>]) -> Result<(), CryptoError> {
    for (index, op) in ops.iter().enumerate() {
        if seal_region(op).is_none() {
            return Err(CryptoError::BadLayout { index });
        }
    }
    for chunk in ops.chunks_mut(MAX_BURST) {
        seal_chunk(chunk);
    }
    Ok(())
}

/// Checks one seal op; the region of its packet when it fits.
fn seal_region(op: &SealOp<'_>) -> Option<esp::Region> {
    let region = esp::Region::of(op.sa, op.esp.len(), true)?;
    esp::seq_matches(op.esp, op.seq, op.esn).then_some(region)
}

/// Seals up to [`MAX_BURST`] checked ops, each on its own SA and backend. The library backends
/// take one packet at a time; the ops of the multi-buffer backend go to it together.
fn seal_chunk(chunk: &mut [SealOp<'_>]) {
    #[cfg(target_arch = "x86_64")]
    esp::seal_vaes(chunk);
    for op in chunk {
        if op.sa.is_multi_buffer() {
            continue;
        }
        if let Some(region) = seal_region(op) {
            esp::seal(op.sa, op.esp, op.seq, op.esn, region, None);
        }
    }
}

/// Verifies and decrypts a burst in place, setting each op's `verified`. Tags are compared in
/// constant time. An op whose length cannot be a valid packet for its suite is not verified.
///
/// An op is also not verified when `esp[4..8]` is not the low half of `seq`, or when `seq` is
/// beyond 32 bits on an SA without ESN. When an op is not verified, its encrypted region (the
/// bytes between IV and ICV) is zeroed, so no unauthenticated plaintext stays in the buffer.
pub fn open_burst(ops: &mut [OpenOp<'_>]) {
    for chunk in ops.chunks_mut(MAX_BURST) {
        #[cfg(target_arch = "x86_64")]
        esp::open_vaes(chunk);
        for op in chunk {
            if !op.sa.is_multi_buffer() {
                op.verified = esp::open(op.sa, op.esp, op.seq, op.esn);
            }
        }
    }
}

/// Computes the integrity tag of every op of a burst (AH). An op whose SA has no integrity
/// transform of its own (an AEAD or CBC suite) gets an all-zero tag, which verifies nothing.
pub fn mac_burst(ops: &mut [MacOp<'_>]) {
    for op in ops {
        op.tag = [0; MAX_TAG_LEN];
        match &op.sa.transform {
            Transform::Null { mac } => {
                let (full, _) = mac.full(op.data, &[]);
                let n = op.sa.suite.icv_len().min(MAX_TAG_LEN);
                op.tag[..n].copy_from_slice(&full[..n]);
            }
            Transform::Gmac { key, salt } => {
                //= https://www.rfc-editor.org/rfc/rfc4543#section-3.1
                //# the nonce ... is the concatenation of the four-octet salt and the eight-octet IV
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(&salt[..]);
                nonce[4..].copy_from_slice(&op.iv);
                // GMAC is GCM with no plaintext: the tag covers the additional data alone.
                let tag = key.seal(&nonce, op.data, &mut []);
                op.tag[..tag.len()].copy_from_slice(&tag);
            }
            _ => {}
        }
    }
}
