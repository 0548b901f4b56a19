//! Diffie-Hellman groups 14, 15 and 16 (MODP-2048/3072/4096, RFC 3526), 19, 20 and 21
//! (ECP-256/384/521, RFC 5903) and 31 (Curve25519, RFC 8031), with the KE payload checks of
//! each. Curve448 (group 32, RFC 8031) is not here: crates.io has no released, maintained X448
//! implementation (RustCrypto's `x448` is a pre-release), and the configuration refuses it.
//!
//! Private values live in `Zeroizing` buffers and never leave this module; `Debug` hides them.
//! A peer's public value is validated before any use (length, on the curve, range).

use core::fmt;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U2048, U3072, U4096};
use p256::elliptic_curve::sec1::ToSec1Point;
use zeroize::Zeroizing;

use super::RandomSource;

/// A Diffie-Hellman group (IKEv2 transform type 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    /// 2048-bit MODP group (14).
    Modp2048,
    /// 3072-bit MODP group (15).
    Modp3072,
    /// 4096-bit MODP group (16).
    Modp4096,
    /// 256-bit random ECP group (19).
    Ecp256,
    /// 384-bit random ECP group (20).
    Ecp384,
    /// 521-bit random ECP group (21).
    Ecp521,
    /// Curve25519 (31).
    Curve25519,
}

/// Why a key exchange value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeError {
    /// The public value has the wrong length for the group.
    Length {
        /// Bytes the group needs.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// An ECP public value that is not a point on the curve.
    NotOnCurve,
    /// A MODP public value outside 1 < y < p-1.
    OutOfRange,
    /// A Curve25519 exchange with an all-zero result (small-order point).
    LowOrder,
    /// A private value that is not valid for the group (tests only: random ones are retried).
    BadPrivate,
}

impl fmt::Display for KeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeError::Length { expected, got } => write!(f, "key exchange value of {got} bytes, group needs {expected}"),
            KeError::NotOnCurve => f.write_str("key exchange value is not a point on the curve"),
            KeError::OutOfRange => f.write_str("key exchange value is not in 1 < y < p-1"),
            KeError::LowOrder => f.write_str("key exchange value has small order"),
            KeError::BadPrivate => f.write_str("private value not valid for the group"),
        }
    }
}

impl std::error::Error for KeError {}

/// The RFC 3526 section 3 prime: 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }.
const MODP2048_P: U2048 = U2048::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
));

/// The RFC 3526 section 4 prime: 2^3072 - 2^3008 - 1 + 2^64 * { [2^2942 pi] + 1690314 }.
const MODP3072_P: U3072 = U3072::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
));

/// The RFC 3526 section 5 prime: 2^4096 - 2^4032 - 1 + 2^64 * { [2^3966 pi] + 240904 }.
const MODP4096_P: U4096 = U4096::from_be_hex(concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7",
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C",
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A92108011A723C12A787E6D7",
    "88719A10BDBA5B2699C327186AF4E23C1A946834B6150BDA2583E9CA2AD44CE8DBBBC2DB04DE8EF92E8EFC141FBECAA6",
    "287C59474E6BC05D99B2964FA090C3A2233BA186515BE7ED1F612970CEE2D7AFB81BDD762170481CD0069127D5B05AA9",
    "93B4EA988D8FDDC186FFB7DC90A6C08F4DF435C934063199FFFFFFFFFFFFFFFF",
));

/// Bits of the MODP private exponent: at least twice each group's strength (112 bits for
/// 2048, 128 for 3072, about 150 for 4096; RFC 3526 section 8), rounded up generously.
const MODP_EXPONENT_BITS: u32 = 512;

/// One MODP group's arithmetic over its own fixed-size integer: the public value g^x, the
/// shared secret y^x, and the range check 1 < y < p-1 (all big-endian, the prime's length).
macro_rules! modp {
    ($public:ident, $shared:ident, $check:ident, $uint:ty, $prime:expr) => {
        fn $public(private: &[u8]) -> Vec<u8> {
            let params = FixedMontyParams::new_vartime(Odd::new($prime).expect("an RFC 3526 prime is odd"));
            let x = Zeroizing::new(<$uint>::from_be_slice(&left_pad(private, <$uint>::BYTES)));
            let g = FixedMontyForm::new(&<$uint>::from_u8(2), &params);
            g.pow_bounded_exp(&*x, MODP_EXPONENT_BITS).retrieve().to_be_bytes().as_ref().to_vec()
        }

        fn $shared(peer: &[u8], private: &[u8]) -> Zeroizing<Vec<u8>> {
            let params = FixedMontyParams::new_vartime(Odd::new($prime).expect("an RFC 3526 prime is odd"));
            let y = <$uint>::from_be_slice(peer);
            let x = Zeroizing::new(<$uint>::from_be_slice(&left_pad(private, <$uint>::BYTES)));
            let s = FixedMontyForm::new(&y, &params).pow_bounded_exp(&*x, MODP_EXPONENT_BITS).retrieve();
            Zeroizing::new(s.to_be_bytes().as_ref().to_vec())
        }

        //= https://www.rfc-editor.org/rfc/rfc8247#section-2.4
        //# implementations MUST check that 1 < y < p-1 (public values of MODP groups).
        fn $check(data: &[u8]) -> Result<(), KeError> {
            let y = <$uint>::from_be_slice(data);
            let p_minus_1 = $prime.wrapping_sub(&<$uint>::ONE);
            if y <= <$uint>::ONE || y >= p_minus_1 { Err(KeError::OutOfRange) } else { Ok(()) }
        }
    };
}

modp!(modp2048_public, modp2048_shared, modp2048_check, U2048, MODP2048_P);
modp!(modp3072_public, modp3072_shared, modp3072_check, U3072, MODP3072_P);
modp!(modp4096_public, modp4096_shared, modp4096_check, U4096, MODP4096_P);

/// The MODP-2048 prime, big-endian (for tests).
pub fn modp2048_prime() -> Vec<u8> {
    MODP2048_P.to_be_bytes().as_ref().to_vec()
}

impl DhGroup {
    /// IANA transform ID.
    pub fn id(self) -> u16 {
        match self {
            DhGroup::Modp2048 => 14,
            DhGroup::Modp3072 => 15,
            DhGroup::Modp4096 => 16,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Ecp521 => 21,
            DhGroup::Curve25519 => 31,
        }
    }

    /// The group with this transform ID, if Rampart implements it.
    pub fn from_id(id: u16) -> Option<DhGroup> {
        match id {
            14 => Some(DhGroup::Modp2048),
            15 => Some(DhGroup::Modp3072),
            16 => Some(DhGroup::Modp4096),
            19 => Some(DhGroup::Ecp256),
            20 => Some(DhGroup::Ecp384),
            21 => Some(DhGroup::Ecp521),
            31 => Some(DhGroup::Curve25519),
            _ => None,
        }
    }

    /// Length of the public value in a KE payload.
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp2048 => 256,
            DhGroup::Modp3072 => 384,
            DhGroup::Modp4096 => 512,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            //= https://www.rfc-editor.org/rfc/rfc5903#section-7
            //# the x and y coordinates ... each of them as a 66-octet value for ECP-521
            DhGroup::Ecp521 => 132,
            DhGroup::Curve25519 => 32,
        }
    }

    /// The swanctl.conf keyword.
    pub fn name(self) -> &'static str {
        match self {
            DhGroup::Modp2048 => "modp2048",
            DhGroup::Modp3072 => "modp3072",
            DhGroup::Modp4096 => "modp4096",
            DhGroup::Ecp256 => "ecp256",
            DhGroup::Ecp384 => "ecp384",
            DhGroup::Ecp521 => "ecp521",
            DhGroup::Curve25519 => "curve25519",
        }
    }

    /// Checks a peer's public value for this group without using it.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.4
    //# The length of the Diffie-Hellman public value for modular
    //# exponentiation group (MODP) groups MUST be equal to the length of the
    //# prime modulus over which the exponentiation was performed
    pub fn validate_public(self, data: &[u8]) -> Result<(), KeError> {
        if data.len() != self.public_len() {
            return Err(KeError::Length { expected: self.public_len(), got: data.len() });
        }
        match self {
            DhGroup::Modp2048 => modp2048_check(data),
            DhGroup::Modp3072 => modp3072_check(data),
            DhGroup::Modp4096 => modp4096_check(data),
            DhGroup::Ecp256 => p256_public(data).map(|_| ()),
            DhGroup::Ecp384 => p384_public(data).map(|_| ()),
            DhGroup::Ecp521 => p521_public(data).map(|_| ()),
            DhGroup::Curve25519 => Ok(()),
        }
    }
}

fn p256_public(data: &[u8]) -> Result<p256::PublicKey, KeError> {
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4);
    sec1.extend_from_slice(data);
    //= https://www.rfc-editor.org/rfc/rfc5903#section-7
    //# the recipient MUST check that the point is on the curve
    p256::PublicKey::from_sec1_bytes(&sec1).map_err(|_| KeError::NotOnCurve)
}

fn p384_public(data: &[u8]) -> Result<p384::PublicKey, KeError> {
    let mut sec1 = Vec::with_capacity(97);
    sec1.push(4);
    sec1.extend_from_slice(data);
    p384::PublicKey::from_sec1_bytes(&sec1).map_err(|_| KeError::NotOnCurve)
}

fn p521_public(data: &[u8]) -> Result<p521::PublicKey, KeError> {
    let mut sec1 = Vec::with_capacity(133);
    sec1.push(4);
    sec1.extend_from_slice(data);
    p521::PublicKey::from_sec1_bytes(&sec1).map_err(|_| KeError::NotOnCurve)
}

/// Our half of one Diffie-Hellman exchange: the private value and the public value to send.
pub struct KeyShare {
    group: DhGroup,
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare").field("group", &self.group).finish_non_exhaustive()
    }
}

impl KeyShare {
    /// A fresh key share from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn RandomSource) -> KeyShare {
        let len = match group {
            DhGroup::Modp2048 | DhGroup::Modp3072 | DhGroup::Modp4096 => MODP_EXPONENT_BITS as usize / 8,
            DhGroup::Ecp256 | DhGroup::Curve25519 => 32,
            DhGroup::Ecp384 => 48,
            DhGroup::Ecp521 => 66,
        };
        loop {
            let mut private = Zeroizing::new(vec![0u8; len]);
            rng.fill(&mut private);
            // Only an ECP scalar of zero or above the order fails; retrying is the standard answer.
            if let Ok(share) = KeyShare::from_private(group, &private) {
                return share;
            }
        }
    }

    /// A key share from a known private value (the RFC test vectors; fixed-key tests).
    pub fn from_private(group: DhGroup, private: &[u8]) -> Result<KeyShare, KeError> {
        let public = match group {
            DhGroup::Modp2048 | DhGroup::Modp3072 | DhGroup::Modp4096 => {
                if private.len() * 8 > MODP_EXPONENT_BITS as usize || private.iter().all(|&b| b == 0) {
                    return Err(KeError::BadPrivate);
                }
                match group {
                    DhGroup::Modp2048 => modp2048_public(private),
                    DhGroup::Modp3072 => modp3072_public(private),
                    _ => modp4096_public(private),
                }
            }
            DhGroup::Ecp256 => {
                let sk = p256::SecretKey::from_slice(private).map_err(|_| KeError::BadPrivate)?;
                sk.public_key().as_affine().to_sec1_point(false).as_bytes()[1..].to_vec()
            }
            DhGroup::Ecp384 => {
                let sk = p384::SecretKey::from_slice(private).map_err(|_| KeError::BadPrivate)?;
                sk.public_key().as_affine().to_sec1_point(false).as_bytes()[1..].to_vec()
            }
            DhGroup::Ecp521 => {
                let sk = p521::SecretKey::from_slice(private).map_err(|_| KeError::BadPrivate)?;
                sk.public_key().as_affine().to_sec1_point(false).as_bytes()[1..].to_vec()
            }
            DhGroup::Curve25519 => {
                let k: Zeroizing<[u8; 32]> = Zeroizing::new(private.try_into().map_err(|_| KeError::BadPrivate)?);
                // Fixed-base multiplication with the precomputed Edwards table: the same value as
                // x25519(k, 9), about two and a half times faster. The secret wipes itself on drop.
                let secret = x25519_dalek::StaticSecret::from(*k);
                x25519_dalek::PublicKey::from(&secret).as_bytes().to_vec()
            }
        };
        Ok(KeyShare { group, private: Zeroizing::new(private.to_vec()), public })
    }

    /// The group.
    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// The public value for the KE payload.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// The shared secret g^ir with the peer's public value, after validating it.
    //= https://www.rfc-editor.org/rfc/rfc5903#section-7
    //# The Diffie-Hellman shared secret value consists of the x value of the
    //# Diffie-Hellman common value.
    pub fn agree(&self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeError> {
        self.group.validate_public(peer)?;
        match self.group {
            DhGroup::Modp2048 => Ok(modp2048_shared(peer, &self.private)),
            DhGroup::Modp3072 => Ok(modp3072_shared(peer, &self.private)),
            DhGroup::Modp4096 => Ok(modp4096_shared(peer, &self.private)),
            DhGroup::Ecp256 => {
                let sk = p256::SecretKey::from_slice(&self.private).map_err(|_| KeError::BadPrivate)?;
                let shared = sk.diffie_hellman(&p256_public(peer)?);
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            DhGroup::Ecp384 => {
                let sk = p384::SecretKey::from_slice(&self.private).map_err(|_| KeError::BadPrivate)?;
                let shared = sk.diffie_hellman(&p384_public(peer)?);
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            DhGroup::Ecp521 => {
                let sk = p521::SecretKey::from_slice(&self.private).map_err(|_| KeError::BadPrivate)?;
                let shared = sk.diffie_hellman(&p521_public(peer)?);
                Ok(Zeroizing::new(shared.raw_secret_bytes().to_vec()))
            }
            DhGroup::Curve25519 => {
                let k: [u8; 32] = self.private.as_slice().try_into().map_err(|_| KeError::BadPrivate)?;
                let u: [u8; 32] = peer.try_into().map_err(|_| KeError::Length { expected: 32, got: peer.len() })?;
                let shared = Zeroizing::new(x25519_dalek::x25519(k, u));
                //= https://www.rfc-editor.org/rfc/rfc8031#section-2.3
                //# Receiving and handling of incompatible point formats MUST follow
                //# the considerations described in Section 5 of [RFC7748].
                // RFC 7748 section 6.1: an all-zero output means a small-order input; refuse it.
                if shared.iter().all(|&b| b == 0) {
                    return Err(KeError::LowOrder);
                }
                Ok(Zeroizing::new(shared.to_vec()))
            }
        }
    }
}

fn left_pad(v: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(vec![0u8; len.saturating_sub(v.len())]);
    out.extend_from_slice(v);
    out
}
