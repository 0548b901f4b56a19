//! Proposals: what the configuration offers (swanctl.conf keyword strings), the RFC 8247 /
//! RFC 8221 algorithm policy, how they become SA payload proposals, and how one proposal is
//! selected from a peer's offer (RFC 7296 section 2.7).
//!
//! A CHILD_SA is ESP or AH ([`ChildProposals`]): the same steps (to the wire, selection, the
//! answer and its check) for both protocols, each proposal naming its own (RFC 7296 section
//! 3.3.1), AH with integrity transforms only (section 3.3.3).
//!
//! Nothing here touches keys. A transform Rampart does not implement is never selected; a
//! forbidden one cannot even be configured.

use core::fmt;

use rampart_sa::{Encryption, Integrity, PolicyError, Protocol, Suite};

use crate::crypto::{DhGroup, Encr, Integ, Prf};
use crate::message::{Proposal, ProtocolId, Transform, transform_type as tt};

/// Why a proposal string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposalError {
    /// An algorithm RFC 8247 / RFC 8221 rules out.
    Forbidden {
        /// The keyword as written.
        keyword: String,
        /// Why.
        reason: &'static str,
    },
    /// A keyword Rampart does not know.
    Unknown(String),
    /// A keyword Rampart knows but does not implement or refuses for interoperability, with
    /// the reason.
    Unsupported {
        /// The keyword as written.
        keyword: String,
        /// Why, and what to write instead.
        reason: &'static str,
    },
    /// A keyword in the wrong kind of proposal (a PRF in ESP, ESN in IKE, an ESP-only cipher).
    Misplaced {
        /// The keyword as written.
        keyword: String,
        /// Why.
        reason: &'static str,
    },
    /// A transform type the proposal needs is missing.
    Missing(&'static str),
    /// The ESP suite policy refused a combination.
    Policy(PolicyError),
}

impl fmt::Display for ProposalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProposalError::Forbidden { keyword, reason } => write!(f, "algorithm '{keyword}' is refused: {reason}"),
            ProposalError::Unknown(k) => write!(f, "unknown algorithm keyword '{k}'"),
            ProposalError::Unsupported { keyword, reason } => {
                write!(f, "algorithm '{keyword}' is not supported: {reason}")
            }
            ProposalError::Misplaced { keyword, reason } => write!(f, "'{keyword}' {reason}"),
            ProposalError::Missing(what) => write!(f, "proposal has no {what}"),
            ProposalError::Policy(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ProposalError {}

impl From<PolicyError> for ProposalError {
    fn from(e: PolicyError) -> Self {
        ProposalError::Policy(e)
    }
}

/// One IKE proposal: every listed algorithm of a type is an alternative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeProposal {
    /// Encryption algorithms (all AEAD or all not).
    pub encr: Vec<Encr>,
    /// Integrity algorithms (empty for AEAD proposals).
    pub integ: Vec<Integ>,
    /// PRFs.
    pub prf: Vec<Prf>,
    /// Diffie-Hellman groups, the first being the one guessed for the KE payload.
    pub dh: Vec<DhGroup>,
}

/// One ESP proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EspProposal {
    /// Encryption algorithms (all AEAD or all not).
    pub encr: Vec<Encryption>,
    /// Integrity algorithms (empty for AEAD proposals).
    pub integ: Vec<Integrity>,
    /// Diffie-Hellman groups for PFS (empty: no PFS).
    pub dh: Vec<DhGroup>,
    /// Extended sequence numbers, in order of preference (`[false]` when unspecified).
    pub esn: Vec<bool>,
}

/// One AH proposal (RFC 4302): integrity algorithms only, AH having no encryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AhProposal {
    /// Integrity algorithms (HMAC-SHA-2 or AES-GMAC), at least one.
    pub integ: Vec<Integrity>,
    /// Diffie-Hellman groups for PFS (empty: no PFS).
    pub dh: Vec<DhGroup>,
    /// Extended sequence numbers, in order of preference (`[false]` when unspecified).
    pub esn: Vec<bool>,
}

/// The algorithms of an IKE SA after selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeAlgorithms {
    /// Encryption.
    pub encr: Encr,
    /// PRF.
    pub prf: Prf,
    /// Integrity (none for AEAD).
    pub integ: Option<Integ>,
    /// Diffie-Hellman group.
    pub dh: DhGroup,
}

/// The algorithms of a CHILD_SA after selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildAlgorithms {
    /// ESP or AH.
    pub protocol: Protocol,
    /// The policy-checked suite (for AH: NULL encryption with the integrity transform,
    /// [`Suite::ah`]).
    pub suite: Suite,
    /// PFS group, when the exchange carries a KE payload.
    pub dh: Option<DhGroup>,
    /// Extended sequence numbers.
    pub esn: bool,
}

enum Token {
    Ike(Encr),
    Esp(Encryption),
    Integ(Integ, Integrity),
    Prf(Prf),
    Dh(DhGroup),
    Esn(bool),
}

fn forbidden(keyword: &str, reason: &'static str) -> ProposalError {
    ProposalError::Forbidden { keyword: keyword.to_string(), reason }
}

fn unsupported(keyword: &str, reason: &'static str) -> ProposalError {
    ProposalError::Unsupported { keyword: keyword.to_string(), reason }
}

/// `aes128gcm8`, `aes256gcm12`, `aes192gcm64`, ... (AES-GCM with an 8 or 12-byte ICV).
fn is_short_icv_gcm(w: &str) -> bool {
    ["aes128gcm", "aes192gcm", "aes256gcm"]
        .iter()
        .filter_map(|p| w.strip_prefix(p))
        .any(|icv| matches!(icv, "8" | "12" | "64" | "96"))
}

fn token(word: &str) -> Result<Token, ProposalError> {
    let gcm = |bits| Ok(Token::Ike(Encr::AesGcm16 { key_bits: bits }));
    let t = match word {
        "aes128" | "aes" => Token::Ike(Encr::AesCbc { key_bits: 128 }),
        "aes192" => Token::Ike(Encr::AesCbc { key_bits: 192 }),
        "aes256" => Token::Ike(Encr::AesCbc { key_bits: 256 }),
        "aes128gcm16" | "aes128gcm128" | "aes128gcm" => return gcm(128),
        "aes256gcm16" | "aes256gcm128" | "aes256gcm" => return gcm(256),
        "chacha20poly1305" => Token::Ike(Encr::ChaCha20Poly1305),
        "null" => Token::Esp(Encryption::Null),
        "sha256" | "sha2_256" => Token::Integ(Integ::HmacSha256_128, Integrity::HmacSha256_128),
        "sha384" | "sha2_384" => Token::Integ(Integ::HmacSha384_192, Integrity::HmacSha384_192),
        "sha512" | "sha2_512" => Token::Integ(Integ::HmacSha512_256, Integrity::HmacSha512_256),
        "prfsha256" => Token::Prf(Prf::HmacSha256),
        "prfsha384" => Token::Prf(Prf::HmacSha384),
        "prfsha512" => Token::Prf(Prf::HmacSha512),
        "ecp256" => Token::Dh(DhGroup::Ecp256),
        "ecp384" => Token::Dh(DhGroup::Ecp384),
        "x25519" | "curve25519" => Token::Dh(DhGroup::Curve25519),
        "modp2048" => Token::Dh(DhGroup::Modp2048),
        "modp3072" => Token::Dh(DhGroup::Modp3072),
        "modp4096" => Token::Dh(DhGroup::Modp4096),
        "ecp521" => Token::Dh(DhGroup::Ecp521),
        "esn" => Token::Esn(true),
        "noesn" => Token::Esn(false),
        //= https://www.rfc-editor.org/rfc/rfc8247#section-2.1
        //# ENCR_DES | MUST NOT | ... ENCR_3DES | MAY
        "des" => return Err(forbidden(word, "DES is broken (RFC 8247 section 2.1, RFC 8221 section 5)")),
        "3des" => return Err(forbidden(word, "3DES has a 64-bit block (RFC 8247 section 2.1), refused by Rampart")),
        "blowfish" | "blowfish128" | "blowfish192" | "blowfish256" => {
            return Err(forbidden(word, "Blowfish has a 64-bit block (RFC 8221 section 5)"));
        }
        "md5" | "md5_128" | "prfmd5" => return Err(forbidden(word, "MD5 is broken (RFC 8247 sections 2.2, 2.3)")),
        "sha1" | "sha" | "sha1_160" | "prfsha1" => {
            return Err(forbidden(
                word,
                "SHA-1 is not offered by Rampart (RFC 8247 sections 2.2, 2.3: SHA-2 is the MUST)",
            ));
        }
        //= https://www.rfc-editor.org/rfc/rfc8247#section-2.4
        //# Group 14 or 2048-bit MODP Group is raised from SHOULD+ to MUST.
        "modp768" | "modp1024" | "modp1536" | "modp1024s160" | "modp2048s224" | "modp2048s256" => {
            return Err(forbidden(
                word,
                "Diffie-Hellman groups below 2048-bit MODP strength are refused (RFC 8247 section 2.4)",
            ));
        }
        "ecp192" | "ecp224" => {
            return Err(forbidden(word, "elliptic curve groups below 256 bits are refused (RFC 8247 section 2.4)"));
        }
        "aes192gcm16" | "aes192gcm128" | "aes192gcm" => {
            return Err(unsupported(
                word,
                "AES-GCM with a 192-bit key is not implemented (neither the IKE SA's cipher nor \
                 rampart-crypto has it); use aes128gcm16 or aes256gcm16",
            ));
        }
        //= https://www.rfc-editor.org/rfc/rfc8221#section-5
        //# ENCR_AES_GCM_16 | MUST | AEAD
        w if is_short_icv_gcm(w) => {
            return Err(unsupported(
                word,
                "AES-GCM with an 8 or 12-byte ICV is not recommended by RFC 8221 section 5 or \
                 RFC 8247 section 2.1 (only the 16-byte ICV is), and Rampart implements only that: \
                 use aes128gcm16 or aes256gcm16",
            ));
        }
        "sha256_96" | "sha2_256_96" => {
            return Err(unsupported(
                word,
                "HMAC-SHA-256 truncated to 96 bits is a pre-RFC 4868 Linux variant with no IANA \
                 transform number and does not interoperate with RFC 4868 peers: use sha256 \
                 (HMAC-SHA-256-128)",
            ));
        }
        "curve448" | "x448" => {
            return Err(unsupported(
                word,
                "Curve448 needs an X448 implementation, and crates.io has no released, maintained \
                 one (RustCrypto's x448 is a pre-release); use curve25519, ecp384 or ecp521",
            ));
        }
        other => return Err(ProposalError::Unknown(other.to_string())),
    };
    Ok(t)
}

/// Parses one IKE proposal as swanctl.conf writes it (`aes256gcm16-prfsha256-x25519`,
/// `aes256-sha256-ecp256`). An integrity keyword also names the PRF when no `prf...` keyword is
/// given. AEAD and non-AEAD ciphers in one string become two proposals, AEAD first.
pub fn parse_ike_proposal(s: &str) -> Result<Vec<IkeProposal>, ProposalError> {
    let (mut aead, mut plain, mut integ, mut prf, mut dh) = (vec![], vec![], vec![], vec![], vec![]);
    for word in s.to_ascii_lowercase().split('-').filter(|w| !w.is_empty()) {
        match token(word)? {
            Token::Ike(e) if e.is_aead() => aead.push(e),
            Token::Ike(e) => plain.push(e),
            Token::Esp(_) => {
                return Err(ProposalError::Misplaced {
                    keyword: word.to_string(),
                    reason: "is an ESP cipher, not one of the IKE SA (encryption without integrity)",
                });
            }
            Token::Integ(i, _) => integ.push(i),
            Token::Prf(p) => prf.push(p),
            Token::Dh(g) => dh.push(g),
            Token::Esn(_) => {
                return Err(ProposalError::Misplaced {
                    keyword: word.to_string(),
                    reason: "is for ESP proposals (extended sequence numbers), not IKE ones",
                });
            }
        }
    }
    if aead.is_empty() && plain.is_empty() {
        return Err(ProposalError::Missing("encryption algorithm"));
    }
    if dh.is_empty() {
        return Err(ProposalError::Missing("Diffie-Hellman group"));
    }
    if prf.is_empty() {
        prf = integ
            .iter()
            .map(|i| match i {
                Integ::HmacSha256_128 => Prf::HmacSha256,
                Integ::HmacSha384_192 => Prf::HmacSha384,
                Integ::HmacSha512_256 => Prf::HmacSha512,
            })
            .collect();
    }
    if prf.is_empty() {
        return Err(ProposalError::Missing("PRF (add e.g. prfsha256)"));
    }
    let mut out = Vec::new();
    if !aead.is_empty() {
        out.push(IkeProposal { encr: aead, integ: vec![], prf: prf.clone(), dh: dh.clone() });
    }
    if !plain.is_empty() {
        if integ.is_empty() {
            return Err(PolicyError::EncryptionWithoutIntegrity.into());
        }
        out.push(IkeProposal { encr: plain, integ, prf, dh });
    }
    Ok(out)
}

/// Parses one ESP proposal as swanctl.conf writes it (`aes256gcm16`, `aes256-sha256-esn`,
/// `aes256gcm16-ecp256` where the group asks for PFS).
pub fn parse_esp_proposal(s: &str) -> Result<Vec<EspProposal>, ProposalError> {
    let (mut aead, mut plain, mut integ, mut dh, mut esn) = (vec![], vec![], vec![], vec![], vec![]);
    for word in s.to_ascii_lowercase().split('-').filter(|w| !w.is_empty()) {
        match token(word)? {
            Token::Ike(e) => match e {
                Encr::AesCbc { key_bits } => plain.push(Encryption::AesCbc { key_bits }),
                Encr::AesGcm16 { key_bits } => aead.push(Encryption::AesGcm16 { key_bits }),
                Encr::ChaCha20Poly1305 => aead.push(Encryption::ChaCha20Poly1305),
            },
            Token::Esp(e) => plain.push(e),
            Token::Integ(_, i) => integ.push(i),
            Token::Prf(_) => {
                return Err(ProposalError::Misplaced {
                    keyword: word.to_string(),
                    reason: "is a PRF, which only IKE proposals have",
                });
            }
            Token::Dh(g) => dh.push(g),
            Token::Esn(e) => esn.push(e),
        }
    }
    if aead.is_empty() && plain.is_empty() {
        return Err(ProposalError::Missing("encryption algorithm"));
    }
    if esn.is_empty() {
        esn.push(false);
    }
    let mut out = Vec::new();
    if !aead.is_empty() {
        for e in &aead {
            Suite::new(*e, Integrity::None)?;
        }
        out.push(EspProposal { encr: aead, integ: vec![], dh: dh.clone(), esn: esn.clone() });
    }
    if !plain.is_empty() {
        if integ.is_empty() {
            return Err(PolicyError::EncryptionWithoutIntegrity.into());
        }
        for e in &plain {
            for i in &integ {
                Suite::new(*e, *i)?;
            }
        }
        out.push(EspProposal { encr: plain, integ, dh, esn });
    }
    Ok(out)
}

/// Parses one AH proposal as swanctl.conf writes it (`sha256`, `sha384-sha256-esn`,
/// `aes256gmac-ecp256` where the group asks for PFS). AH has integrity algorithms only:
/// HMAC-SHA-256/384/512 and AES-GMAC with a 128 or 256-bit key; MD5 and SHA-1 are refused with
/// RFC 8221's reason, an encryption algorithm or a PRF as misplaced.
pub fn parse_ah_proposal(s: &str) -> Result<AhProposal, ProposalError> {
    let (mut integ, mut dh, mut esn) = (vec![], vec![], vec![]);
    for word in s.to_ascii_lowercase().split('-').filter(|w| !w.is_empty()) {
        //= https://www.rfc-editor.org/rfc/rfc8221#section-6
        //# | AUTH_HMAC_MD5_96  | MUST NOT | ... | AUTH_HMAC_SHA1_96 | MUST-
        // Integrity keywords (and their refusals) come from the AH suite parser.
        match Suite::ah_from_swanctl(word) {
            Ok(suite) => {
                integ.push(suite.integrity());
                continue;
            }
            Err(PolicyError::Unknown { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        match token(word)? {
            Token::Dh(g) => dh.push(g),
            Token::Esn(e) => esn.push(e),
            Token::Ike(_) | Token::Esp(_) => {
                return Err(ProposalError::Misplaced {
                    keyword: word.to_string(),
                    reason: "is an encryption algorithm, and AH has none (RFC 4302): use esp_proposals to encrypt",
                });
            }
            Token::Prf(_) => {
                return Err(ProposalError::Misplaced {
                    keyword: word.to_string(),
                    reason: "is a PRF, which only IKE proposals have",
                });
            }
            // Every integrity keyword token() knows is one the AH suite parser read above.
            Token::Integ(..) => return Err(ProposalError::Unknown(word.to_string())),
        }
    }
    if integ.is_empty() {
        return Err(ProposalError::Missing("integrity algorithm (AH: sha256, sha384, sha512, aes128gmac, aes256gmac)"));
    }
    if esn.is_empty() {
        esn.push(false);
    }
    Ok(AhProposal { integ, dh, esn })
}

/// Parses a comma-separated list of AH proposals (`ah_proposals = a, b`).
pub fn parse_ah_proposals(list: &str) -> Result<Vec<AhProposal>, ProposalError> {
    list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(parse_ah_proposal).collect()
}

/// Parses a comma-separated list of IKE proposals (`proposals = a, b` in swanctl.conf).
pub fn parse_ike_proposals(list: &str) -> Result<Vec<IkeProposal>, ProposalError> {
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.extend(parse_ike_proposal(p)?);
    }
    Ok(out)
}

/// Parses a comma-separated list of ESP proposals (`esp_proposals = a, b`).
pub fn parse_esp_proposals(list: &str) -> Result<Vec<EspProposal>, ProposalError> {
    let mut out = Vec::new();
    for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        out.extend(parse_esp_proposal(p)?);
    }
    Ok(out)
}

fn esp_encr_transform(e: Encryption) -> Transform {
    match e {
        Encryption::AesGcm16 { key_bits } => Transform::with_key_length(tt::ENCR, 20, key_bits),
        Encryption::AesCbc { key_bits } => Transform::with_key_length(tt::ENCR, 12, key_bits),
        Encryption::ChaCha20Poly1305 => Transform::new(tt::ENCR, 28),
        Encryption::Null => Transform::new(tt::ENCR, 11),
    }
}

/// The IKEv2 integrity transform number (`rampart_sa::integ_id`).
fn integ_transform_id(i: Integrity) -> u16 {
    use rampart_sa::integ_id as id;
    match i {
        Integrity::None => id::NONE,
        Integrity::HmacSha256_128 => id::HMAC_SHA2_256_128,
        Integrity::HmacSha384_192 => id::HMAC_SHA2_384_192,
        Integrity::HmacSha512_256 => id::HMAC_SHA2_512_256,
        Integrity::AesGmac { key_bits: 128 } => id::AES_128_GMAC,
        Integrity::AesGmac { .. } => id::AES_256_GMAC,
    }
}

/// The D-H (when `with_dh`) and ESN transforms of a CHILD_SA proposal, ESP or AH.
fn pfs_and_esn_transforms(dh: &[DhGroup], esn: &[bool], with_dh: bool) -> Vec<Transform> {
    let groups = if with_dh { dh } else { &[] };
    groups
        .iter()
        .map(|g| Transform::new(tt::DH, g.id()))
        .chain(esn.iter().map(|e| Transform::new(tt::ESN, u16::from(*e))))
        .collect()
}

impl IkeProposal {
    /// The SA payload proposal (`spi` empty in IKE_SA_INIT, 8 bytes when rekeying).
    pub fn to_wire(&self, number: u8, spi: &[u8]) -> Proposal {
        let mut t = Vec::new();
        for e in &self.encr {
            t.push(match e.key_length_attribute() {
                Some(bits) => Transform::with_key_length(tt::ENCR, e.id(), bits),
                None => Transform::new(tt::ENCR, e.id()),
            });
        }
        t.extend(self.prf.iter().map(|p| Transform::new(tt::PRF, p.id())));
        t.extend(self.integ.iter().map(|i| Transform::new(tt::INTEG, i.id())));
        t.extend(self.dh.iter().map(|g| Transform::new(tt::DH, g.id())));
        Proposal { number, protocol: ProtocolId::Ike, spi: spi.to_vec(), transforms: t }
    }
}

impl EspProposal {
    /// The SA payload proposal for our inbound `spi`. Without `with_dh` the groups are left
    /// out (the first CHILD_SA, made in IKE_AUTH, has no KE payload).
    pub fn to_wire(&self, number: u8, spi: u32, with_dh: bool) -> Proposal {
        let mut t: Vec<Transform> = self.encr.iter().map(|e| esp_encr_transform(*e)).collect();
        t.extend(self.integ.iter().map(|i| Transform::new(tt::INTEG, integ_transform_id(*i))));
        t.extend(pfs_and_esn_transforms(&self.dh, &self.esn, with_dh));
        Proposal { number, protocol: ProtocolId::Esp, spi: spi.to_be_bytes().to_vec(), transforms: t }
    }

    /// Whether the proposal asks for PFS.
    pub fn pfs_group(&self) -> Option<DhGroup> {
        self.dh.first().copied()
    }
}

impl AhProposal {
    /// The SA payload proposal for our inbound `spi`: protocol AH, integrity transforms, the
    /// groups (unless `with_dh` is false, as in IKE_AUTH) and ESN.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.3
    //# AH          INTEG, ESN               D-H
    pub fn to_wire(&self, number: u8, spi: u32, with_dh: bool) -> Proposal {
        let mut t: Vec<Transform> =
            self.integ.iter().map(|i| Transform::new(tt::INTEG, integ_transform_id(*i))).collect();
        t.extend(pfs_and_esn_transforms(&self.dh, &self.esn, with_dh));
        Proposal { number, protocol: ProtocolId::Ah, spi: spi.to_be_bytes().to_vec(), transforms: t }
    }

    /// Whether the proposal asks for PFS.
    pub fn pfs_group(&self) -> Option<DhGroup> {
        self.dh.first().copied()
    }
}

/// The proposals of one child: ESP or AH, never both in one CHILD_SA (Rampart does not do
/// AH+ESP bundles). Every CHILD_SA step (request, selection, answer, its check, the PFS group
/// of a retry, the log of a refusal) goes through this one type, whichever the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildProposals<'a> {
    /// `esp_proposals`.
    Esp(&'a [EspProposal]),
    /// `ah_proposals`.
    Ah(&'a [AhProposal]),
}

impl ChildProposals<'_> {
    /// The protocol the child negotiates.
    pub fn protocol(self) -> Protocol {
        match self {
            ChildProposals::Esp(_) => Protocol::Esp,
            ChildProposals::Ah(_) => Protocol::Ah,
        }
    }

    /// The SA payload of a request for our inbound `spi`, proposals numbered from 1.
    pub fn to_wire(self, spi: u32, with_dh: bool) -> Vec<Proposal> {
        match self {
            ChildProposals::Esp(ps) => {
                ps.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 1, spi, with_dh)).collect()
            }
            ChildProposals::Ah(ps) => {
                ps.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 1, spi, with_dh)).collect()
            }
        }
    }

    /// The PFS group of the first proposal (the one a CREATE_CHILD_SA guesses its KE for).
    pub fn pfs_group(self) -> Option<DhGroup> {
        match self {
            ChildProposals::Esp(ps) => ps.first().and_then(EspProposal::pfs_group),
            ChildProposals::Ah(ps) => ps.first().and_then(AhProposal::pfs_group),
        }
    }

    /// The PFS group of each proposal that asks for PFS (the one its KE payload would carry).
    pub fn pfs_groups(self) -> Vec<DhGroup> {
        match self {
            ChildProposals::Esp(ps) => ps.iter().filter_map(EspProposal::pfs_group).collect(),
            ChildProposals::Ah(ps) => ps.iter().filter_map(AhProposal::pfs_group).collect(),
        }
    }

    /// Every PFS group any proposal names.
    pub fn groups(self) -> Vec<DhGroup> {
        match self {
            ChildProposals::Esp(ps) => ps.iter().flat_map(|p| p.dh.iter().copied()).collect(),
            ChildProposals::Ah(ps) => ps.iter().flat_map(|p| p.dh.iter().copied()).collect(),
        }
    }

    /// Responder: selects from the peer's offer ([`select_esp`] or [`select_ah`]).
    pub fn select(self, offered: &[Proposal], with_dh: bool) -> Option<(u8, u32, ChildAlgorithms)> {
        match self {
            ChildProposals::Esp(ps) => select_esp(offered, ps, with_dh),
            ChildProposals::Ah(ps) => select_ah(offered, ps, with_dh),
        }
    }

    /// Initiator: checks the responder's answer ([`accept_esp_answer`] or [`accept_ah_answer`]).
    pub fn accept(self, answer: &[Proposal], with_dh: bool) -> Option<(u32, ChildAlgorithms)> {
        match self {
            ChildProposals::Esp(ps) => accept_esp_answer(answer, ps, with_dh),
            ChildProposals::Ah(ps) => accept_ah_answer(answer, ps, with_dh),
        }
    }

    /// The proposals in swanctl spelling, with the protocol (`ESP:aes256gcm16`, `AH:sha256`).
    pub fn describe(self) -> String {
        match self {
            ChildProposals::Esp(ps) => format!("ESP:{}", describe(ps)),
            ChildProposals::Ah(ps) => format!("AH:{}", describe(ps)),
        }
    }
}

fn of_type(p: &Proposal, kind: u8) -> impl Iterator<Item = &Transform> {
    p.transforms.iter().filter(move |t| t.kind == kind && !t.unknown_attributes)
}

/// Picks, for one transform type, the first offered transform that `accept` maps to something.
fn pick<T>(p: &Proposal, kind: u8, mut accept: impl FnMut(&Transform) -> Option<T>) -> Option<T> {
    of_type(p, kind).find_map(&mut accept)
}

fn select_ike_one(p: &Proposal, ours: &IkeProposal) -> Option<IkeAlgorithms> {
    if p.protocol != ProtocolId::Ike {
        return None;
    }
    let encr = pick(p, tt::ENCR, |t| Encr::from_transform(t.id, t.key_length).filter(|e| ours.encr.contains(e)))?;
    let prf = pick(p, tt::PRF, |t| Prf::from_id(t.id).filter(|x| ours.prf.contains(x)))?;
    let integ = if encr.is_aead() {
        //= https://www.rfc-editor.org/rfc/rfc5282#section-8
        //# integrity transform ... MUST NOT be ... with an AEAD (a proposal with one is refused)
        if of_type(p, tt::INTEG).any(|t| t.id != 0) {
            return None;
        }
        None
    } else {
        Some(pick(p, tt::INTEG, |t| Integ::from_id(t.id).filter(|x| ours.integ.contains(x)))?)
    };
    let dh = pick(p, tt::DH, |t| DhGroup::from_id(t.id).filter(|g| ours.dh.contains(g)))?;
    Some(IkeAlgorithms { encr, prf, integ, dh })
}

/// Responder: selects an IKE proposal from the peer's offer, in the peer's order of preference.
/// Returns the offered proposal's number and the algorithms.
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.7
//# The responder MUST choose a single suite, which may be
//# any subset of the SA proposal following the rules below.
pub fn select_ike(offered: &[Proposal], ours: &[IkeProposal]) -> Option<(u8, IkeAlgorithms)> {
    offered.iter().find_map(|p| ours.iter().find_map(|o| select_ike_one(p, o)).map(|a| (p.number, a)))
}

/// The responder's answer: one proposal with one transform of each type.
pub fn ike_answer(number: u8, algs: &IkeAlgorithms, spi: &[u8]) -> Proposal {
    let one = IkeProposal {
        encr: vec![algs.encr],
        integ: algs.integ.into_iter().collect(),
        prf: vec![algs.prf],
        dh: vec![algs.dh],
    };
    one.to_wire(number, spi)
}

/// Initiator: checks that the responder chose exactly one of each type from what we offered.
pub fn accept_ike_answer(answer: &[Proposal], ours: &[IkeProposal]) -> Option<IkeAlgorithms> {
    let [p] = answer else { return None };
    for kind in [tt::ENCR, tt::PRF, tt::INTEG, tt::DH] {
        if p.transforms.iter().filter(|t| t.kind == kind).count() > 1 {
            return None;
        }
    }
    ours.iter().find_map(|o| select_ike_one(p, o))
}

fn esp_encr_from(t: &Transform) -> Option<Encryption> {
    match (t.id, t.key_length) {
        (20, Some(b @ (128 | 256))) => Some(Encryption::AesGcm16 { key_bits: b }),
        (12, Some(b @ (128 | 192 | 256))) => Some(Encryption::AesCbc { key_bits: b }),
        (28, None) => Some(Encryption::ChaCha20Poly1305),
        (11, None) => Some(Encryption::Null),
        _ => None,
    }
}

/// The integrity transforms ESP takes (HMAC-SHA-2; AES-GMAC is AH's). MD5 and SHA-1 map to
/// nothing and are never selected (RFC 8221 section 6, RFC 8247 section 2.3).
fn esp_integ_from(id: u16) -> Option<Integrity> {
    use rampart_sa::integ_id as i;
    match id {
        i::HMAC_SHA2_256_128 => Some(Integrity::HmacSha256_128),
        i::HMAC_SHA2_384_192 => Some(Integrity::HmacSha384_192),
        i::HMAC_SHA2_512_256 => Some(Integrity::HmacSha512_256),
        _ => None,
    }
}

/// The integrity transforms AH takes: HMAC-SHA-2 and AES-GMAC 128/256 (RFC 4543). MD5, SHA-1
/// and AES-192-GMAC map to nothing and are never selected.
//= https://www.rfc-editor.org/rfc/rfc8221#section-6
//# | AUTH_HMAC_MD5_96  | MUST NOT | ... | AUTH_HMAC_SHA1_96 | MUST-
fn ah_integ_from(t: &Transform) -> Option<Integrity> {
    use rampart_sa::integ_id as i;
    if t.key_length.is_some() {
        return None;
    }
    match t.id {
        i::AES_128_GMAC => Some(Integrity::AesGmac { key_bits: 128 }),
        i::AES_256_GMAC => Some(Integrity::AesGmac { key_bits: 256 }),
        id => esp_integ_from(id),
    }
}

/// The PFS group and ESN of a CHILD_SA proposal (the same rules for ESP and AH).
fn select_pfs_and_esn(p: &Proposal, dh: &[DhGroup], esn: &[bool], with_dh: bool) -> Option<(Option<DhGroup>, bool)> {
    let group = if with_dh && !dh.is_empty() {
        Some(pick(p, tt::DH, |t| DhGroup::from_id(t.id).filter(|g| dh.contains(g)))?)
    } else if with_dh && of_type(p, tt::DH).any(|t| t.id != 0) && of_type(p, tt::DH).all(|t| t.id != 0) {
        // The peer insists on PFS and we have none configured.
        return None;
    } else {
        None
    };
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.2
    //# ... ESN ... if it is not present, (only) No Extended Sequence Numbers is assumed.
    let offered_esn: Vec<bool> = {
        let v: Vec<bool> = of_type(p, tt::ESN).filter_map(|t| (t.id <= 1).then_some(t.id == 1)).collect();
        if of_type(p, tt::ESN).next().is_none() { vec![false] } else { v }
    };
    let esn = offered_esn.into_iter().find(|e| esn.contains(e))?;
    Some((group, esn))
}

/// The SPI of a CHILD_SA proposal (4 bytes for ESP and AH, RFC 7296 section 3.3.1).
fn child_spi(p: &Proposal) -> Option<u32> {
    <[u8; 4]>::try_from(p.spi.as_slice()).ok().map(u32::from_be_bytes)
}

fn select_esp_one(p: &Proposal, ours: &EspProposal, with_dh: bool) -> Option<ChildAlgorithms> {
    if p.protocol != ProtocolId::Esp || p.spi.len() != 4 {
        return None;
    }
    let encr = pick(p, tt::ENCR, |t| esp_encr_from(t).filter(|e| ours.encr.contains(e)))?;
    let aead = matches!(encr, Encryption::AesGcm16 { .. } | Encryption::ChaCha20Poly1305);
    let integ = if aead {
        if of_type(p, tt::INTEG).any(|t| t.id != 0) {
            return None;
        }
        Integrity::None
    } else {
        pick(p, tt::INTEG, |t| esp_integ_from(t.id).filter(|i| ours.integ.contains(i)))?
    };
    let suite = Suite::new(encr, integ).ok()?;
    let (dh, esn) = select_pfs_and_esn(p, &ours.dh, &ours.esn, with_dh)?;
    Some(ChildAlgorithms { protocol: Protocol::Esp, suite, dh, esn })
}

//= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.3
//# AH          INTEG, ESN               D-H
//= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.6
//# If the responder receives a proposal that contains a Transform Type
//# it does not understand, or a proposal that is missing a mandatory
//# Transform Type, it MUST consider this proposal unacceptable; however,
//# other proposals in the same SA payload are processed as usual.
// An AH proposal with an encryption transform (or a PRF) proposes what AH does not have: it is
// unacceptable, the other proposals are still considered.
fn select_ah_one(p: &Proposal, ours: &AhProposal, with_dh: bool) -> Option<ChildAlgorithms> {
    if p.protocol != ProtocolId::Ah || p.spi.len() != 4 {
        return None;
    }
    if p.transforms.iter().any(|t| !matches!(t.kind, tt::INTEG | tt::DH | tt::ESN)) {
        return None;
    }
    let integ = pick(p, tt::INTEG, |t| ah_integ_from(t).filter(|i| ours.integ.contains(i)))?;
    let suite = Suite::ah(integ).ok()?;
    let (dh, esn) = select_pfs_and_esn(p, &ours.dh, &ours.esn, with_dh)?;
    Some(ChildAlgorithms { protocol: Protocol::Ah, suite, dh, esn })
}

/// Responder: selects an ESP proposal; returns the proposal number, the peer's SPI (its
/// inbound, our outbound) and the algorithms. `with_dh` is false for the CHILD_SA of IKE_AUTH,
/// whose D-H transforms are ignored (RFC 7296 section 1.2).
pub fn select_esp(offered: &[Proposal], ours: &[EspProposal], with_dh: bool) -> Option<(u8, u32, ChildAlgorithms)> {
    offered.iter().find_map(|p| {
        let spi = child_spi(p)?;
        ours.iter().find_map(|o| select_esp_one(p, o, with_dh)).map(|a| (p.number, spi, a))
    })
}

/// Responder: selects an AH proposal (ESP ones in the offer are passed over, RFC 7296
/// section 3.3.1: a proposal's protocol is its own); as [`select_esp`].
pub fn select_ah(offered: &[Proposal], ours: &[AhProposal], with_dh: bool) -> Option<(u8, u32, ChildAlgorithms)> {
    offered.iter().find_map(|p| {
        let spi = child_spi(p)?;
        ours.iter().find_map(|o| select_ah_one(p, o, with_dh)).map(|a| (p.number, spi, a))
    })
}

/// The responder's answer for our inbound `spi`: one proposal of the chosen protocol with one
/// transform of each type.
pub fn child_answer(number: u8, algs: &ChildAlgorithms, spi: u32) -> Proposal {
    let (dh, esn) = (algs.dh.into_iter().collect(), vec![algs.esn]);
    match algs.protocol {
        Protocol::Esp => esp_answer(number, algs, spi),
        Protocol::Ah => AhProposal { integ: vec![algs.suite.integrity()], dh, esn }.to_wire(number, spi, true),
    }
}

/// The responder's ESP answer for our inbound `spi`.
pub fn esp_answer(number: u8, algs: &ChildAlgorithms, spi: u32) -> Proposal {
    let integ = if algs.suite.is_aead() { vec![] } else { vec![algs.suite.integrity()] };
    let one = EspProposal {
        encr: vec![algs.suite.encryption()],
        integ,
        dh: algs.dh.into_iter().collect(),
        esn: vec![algs.esn],
    };
    one.to_wire(number, spi, true)
}

/// The one proposal of an answer, if it has at most one transform of each type.
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.7
//# The responder MUST choose a single suite, which may be
//# any subset of the SA proposal following the rules below.
fn single_suite(answer: &[Proposal]) -> Option<&Proposal> {
    let [p] = answer else { return None };
    for kind in [tt::ENCR, tt::INTEG, tt::DH, tt::ESN] {
        if p.transforms.iter().filter(|t| t.kind == kind).count() > 1 {
            return None;
        }
    }
    Some(p)
}

/// Initiator: checks the responder's ESP answer; returns its SPI and the algorithms.
pub fn accept_esp_answer(answer: &[Proposal], ours: &[EspProposal], with_dh: bool) -> Option<(u32, ChildAlgorithms)> {
    let p = single_suite(answer)?;
    let algs = ours.iter().find_map(|o| select_esp_one(p, o, with_dh))?;
    Some((child_spi(p)?, algs))
}

/// Initiator: checks the responder's AH answer (an ESP answer to an AH request is refused);
/// returns its SPI and the algorithms.
pub fn accept_ah_answer(answer: &[Proposal], ours: &[AhProposal], with_dh: bool) -> Option<(u32, ChildAlgorithms)> {
    let p = single_suite(answer)?;
    let algs = ours.iter().find_map(|o| select_ah_one(p, o, with_dh))?;
    Some((child_spi(p)?, algs))
}

/// An ESP cipher's swanctl.conf keyword.
pub fn esp_encr_name(e: Encryption) -> String {
    match e {
        Encryption::AesGcm16 { key_bits } => format!("aes{key_bits}gcm16"),
        Encryption::ChaCha20Poly1305 => "chacha20poly1305".into(),
        Encryption::AesCbc { key_bits } => format!("aes{key_bits}"),
        Encryption::Null => "null".into(),
    }
}

/// An ESP or AH integrity algorithm's swanctl.conf keyword (empty for none).
pub fn esp_integ_name(i: Integrity) -> &'static str {
    match i {
        Integrity::HmacSha256_128 => "sha256",
        Integrity::HmacSha384_192 => "sha384",
        Integrity::HmacSha512_256 => "sha512",
        Integrity::AesGmac { key_bits: 256 } => "aes256gmac",
        Integrity::AesGmac { .. } => "aes128gmac",
        Integrity::None => "",
    }
}

/// A transform as swanctl.conf would write it, or its type and number when Rampart has no
/// keyword for it (`encr3`, `dh25`).
fn transform_name(p: &Proposal, t: &Transform) -> String {
    let (esp, ah) = (p.protocol == ProtocolId::Esp, p.protocol == ProtocolId::Ah);
    let named = match t.kind {
        tt::ENCR if esp || ah => esp_encr_from(t).map(esp_encr_name),
        tt::ENCR => Encr::from_transform(t.id, t.key_length).map(Encr::name),
        tt::PRF => Prf::from_id(t.id).map(|x| x.name().to_string()),
        tt::INTEG if t.id == 0 => Some(String::new()),
        tt::INTEG if esp => esp_integ_from(t.id).map(|i| esp_integ_name(i).to_string()),
        tt::INTEG if ah => ah_integ_from(t).map(|i| esp_integ_name(i).to_string()),
        tt::INTEG => Integ::from_id(t.id).map(|x| x.name().to_string()),
        tt::DH if t.id == 0 => Some(String::new()),
        tt::DH => DhGroup::from_id(t.id).map(|g| g.name().to_string()),
        tt::ESN => Some(if t.id == 1 { "esn".into() } else { "noesn".into() }),
        _ => None,
    };
    named.unwrap_or_else(|| {
        let kind = match t.kind {
            tt::ENCR => "encr",
            tt::PRF => "prf",
            tt::INTEG => "integ",
            tt::DH => "dh",
            tt::ESN => "esn",
            _ => "transform",
        };
        match t.key_length {
            Some(bits) => format!("{kind}{}({bits} bits)", t.id),
            None => format!("{kind}{}", t.id),
        }
    })
}

/// What a peer offered, one proposal per comma, in swanctl spelling (for the log of a
/// NO_PROPOSAL_CHOSEN; transforms Rampart has no keyword for appear as their numbers).
pub fn describe_offer(offered: &[Proposal]) -> String {
    if offered.is_empty() {
        return "nothing".into();
    }
    let one = |p: &Proposal| {
        let mut words: Vec<String> = Vec::new();
        for kind in [tt::ENCR, tt::INTEG, tt::PRF, tt::DH, tt::ESN] {
            for t in p.transforms.iter().filter(|t| t.kind == kind) {
                let n = transform_name(p, t);
                if !n.is_empty() && !words.contains(&n) {
                    words.push(n);
                }
            }
        }
        let protocol = match p.protocol {
            ProtocolId::Ike => "IKE",
            ProtocolId::Esp => "ESP",
            ProtocolId::Ah => "AH",
            ProtocolId::Other(_) => "?",
        };
        format!("{protocol}:{}", words.join("-"))
    };
    offered.iter().map(one).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for IkeProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self.encr.iter().map(|e| e.name()).collect();
        words.extend(self.integ.iter().map(|i| i.name().to_string()));
        words.extend(self.prf.iter().map(|p| p.name().to_string()));
        words.extend(self.dh.iter().map(|g| g.name().to_string()));
        f.write_str(&words.join("-"))
    }
}

impl fmt::Display for EspProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        words.extend(self.encr.iter().map(|e| esp_encr_name(*e)));
        words.extend(self.integ.iter().map(|i| esp_integ_name(*i).to_string()));
        words.extend(self.dh.iter().map(|g| g.name().to_string()));
        words.extend(self.esn.iter().map(|e| if *e { "esn".to_string() } else { "noesn".to_string() }));
        words.retain(|w| !w.is_empty());
        f.write_str(&words.join("-"))
    }
}

impl fmt::Display for AhProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self.integ.iter().map(|i| esp_integ_name(*i).to_string()).collect();
        words.extend(self.dh.iter().map(|g| g.name().to_string()));
        words.extend(self.esn.iter().map(|e| if *e { "esn".to_string() } else { "noesn".to_string() }));
        words.retain(|w| !w.is_empty());
        f.write_str(&words.join("-"))
    }
}

/// Our proposals, comma-separated, in swanctl spelling.
pub fn describe<T: fmt::Display>(ours: &[T]) -> String {
    if ours.is_empty() {
        return "nothing".into();
    }
    ours.iter().map(T::to_string).collect::<Vec<_>>().join(", ")
}
