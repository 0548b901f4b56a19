//! Key derivation of IKEv2 (RFC 7296 sections 2.13, 2.14, 2.17, 2.18): SKEYSEED, the seven
//! IKE SA keys, CHILD_SA KEYMAT with and without PFS, and the SKEYSEED of a rekeyed IKE SA.
//!
//! Every secret is held in `Zeroizing` buffers and no `Debug` shows one. Nothing here knows
//! about messages or state.

use core::fmt;

use zeroize::Zeroizing;

use crate::crypto::{Encr, Integ, Prf};

/// SKEYSEED = prf(Ni | Nr, g^ir).
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.14
//# SKEYSEED = prf(Ni | Nr, g^ir)
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.compute(&key, &[g_ir])
}

/// SKEYSEED of a new IKE SA made by a CREATE_CHILD_SA rekey, computed with the old SA's PRF.
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.18
//# SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
pub fn rekey_skeyseed(old_prf: Prf, old_sk_d: &[u8], g_ir_new: &[u8], ni: &[u8], nr: &[u8]) -> Zeroizing<Vec<u8>> {
    old_prf.compute(old_sk_d, &[g_ir_new, ni, nr])
}

/// The keys of one IKE SA.
pub struct IkeSaKeys {
    /// The negotiated PRF.
    pub prf: Prf,
    /// The negotiated encryption transform.
    pub encr: Encr,
    /// The negotiated integrity transform (none with an AEAD).
    pub integ: Option<Integ>,
    /// SK_d: the key CHILD_SA keys and rekeyed IKE SAs derive from.
    pub sk_d: Zeroizing<Vec<u8>>,
    /// SK_ai: integrity of the initiator's messages.
    pub sk_ai: Zeroizing<Vec<u8>>,
    /// SK_ar: integrity of the responder's messages.
    pub sk_ar: Zeroizing<Vec<u8>>,
    /// SK_ei: encryption of the initiator's messages.
    pub sk_ei: Zeroizing<Vec<u8>>,
    /// SK_er: encryption of the responder's messages.
    pub sk_er: Zeroizing<Vec<u8>>,
    /// SK_pi: the initiator's AUTH payload.
    pub sk_pi: Zeroizing<Vec<u8>>,
    /// SK_pr: the responder's AUTH payload.
    pub sk_pr: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for IkeSaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeSaKeys")
            .field("prf", &self.prf)
            .field("encr", &self.encr)
            .field("integ", &self.integ)
            .finish_non_exhaustive()
    }
}

impl IkeSaKeys {
    /// Total bytes of key material the transforms need.
    pub fn material_len(prf: Prf, encr: Encr, integ: Option<Integ>) -> usize {
        3 * prf.output_len() + 2 * integ.map_or(0, Integ::key_len) + 2 * encr.key_len()
    }

    /// Derives the seven keys from SKEYSEED.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.14
    //# {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
    //#                 = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
    pub fn derive(
        prf: Prf,
        encr: Encr,
        integ: Option<Integ>,
        skeyseed: &[u8],
        (ni, nr): (&[u8], &[u8]),
        (spi_i, spi_r): (u64, u64),
    ) -> IkeSaKeys {
        let len = Self::material_len(prf, encr, integ);
        let km = prf.plus(skeyseed, &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()], len);
        let mut pos = 0;
        let mut next = |n: usize| {
            let k = Zeroizing::new(km[pos..pos + n].to_vec());
            pos += n;
            k
        };
        let p = prf.output_len();
        let a = integ.map_or(0, Integ::key_len);
        let e = encr.key_len();
        IkeSaKeys {
            prf,
            encr,
            integ,
            sk_d: next(p),
            sk_ai: next(a),
            sk_ar: next(a),
            sk_ei: next(e),
            sk_er: next(e),
            sk_pi: next(p),
            sk_pr: next(p),
        }
    }
}

/// KEYMAT for a CHILD_SA: prf+(SK_d, Ni | Nr), or prf+(SK_d, g^ir (new) | Ni | Nr) with PFS.
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.17
//# KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)
pub fn child_keymat(
    prf: Prf,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    match g_ir_new {
        Some(g) => prf.plus(sk_d, &[g, ni, nr], len),
        None => prf.plus(sk_d, &[ni, nr], len),
    }
}

/// The four keys of a CHILD_SA pair, split from KEYMAT.
pub struct ChildKeys {
    /// Encryption key (with salt for AEADs) of the SA carrying initiator-to-responder traffic.
    pub encr_i: Zeroizing<Vec<u8>>,
    /// Integrity key of the initiator-to-responder SA (empty for AEADs).
    pub integ_i: Zeroizing<Vec<u8>>,
    /// Encryption key of the responder-to-initiator SA.
    pub encr_r: Zeroizing<Vec<u8>>,
    /// Integrity key of the responder-to-initiator SA.
    pub integ_r: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildKeys").finish_non_exhaustive()
    }
}

impl ChildKeys {
    /// Splits KEYMAT for a suite.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.17
    //# All keys for SAs carrying data from the initiator to the responder
    //# are taken before SAs going from the responder to the initiator.
    // Within one SA the encryption key comes before the integrity key (RFC 7296 section 2.17:
    // "If a single protocol has both encryption and authentication keys, the encryption key is
    // taken from the first octets of KEYMAT").
    pub fn split(keymat: &[u8], encr_len: usize, integ_len: usize) -> Option<ChildKeys> {
        if keymat.len() != 2 * (encr_len + integ_len) {
            return None;
        }
        let (i, r) = keymat.split_at(encr_len + integ_len);
        Some(ChildKeys {
            encr_i: Zeroizing::new(i[..encr_len].to_vec()),
            integ_i: Zeroizing::new(i[encr_len..].to_vec()),
            encr_r: Zeroizing::new(r[..encr_len].to_vec()),
            integ_r: Zeroizing::new(r[encr_len..].to_vec()),
        })
    }
}
