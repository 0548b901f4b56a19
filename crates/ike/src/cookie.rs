//! Stateless cookies for IKE_SA_INIT (RFC 7296 section 2.6): a responder under load asks the
//! initiator to echo a value bound to its nonce, address and SPI before keeping any state.
//!
//! The secret is random, rotates, and is never printed.

use core::fmt;
use std::net::IpAddr;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::crypto::RandomSource;

/// The responder's cookie secret, current and previous.
pub struct CookieJar {
    version: u8,
    secret: Zeroizing<[u8; 32]>,
    previous: Option<(u8, Zeroizing<[u8; 32]>)>,
}

impl fmt::Debug for CookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CookieJar").field("version", &self.version).finish_non_exhaustive()
    }
}

//= https://www.rfc-editor.org/rfc/rfc7296#section-2.6
//# Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
fn compute(version: u8, secret: &[u8; 32], ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(ni);
    match ip {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(secret);
    let mut out = vec![version];
    out.extend_from_slice(ctx.finish().as_ref());
    out
}

impl CookieJar {
    /// A jar with a fresh secret.
    pub fn new(rng: &mut dyn RandomSource) -> CookieJar {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(&mut *secret);
        CookieJar { version: 0, secret, previous: None }
    }

    /// Replaces the secret; cookies made with the one before stay valid until the next rotation.
    pub fn rotate(&mut self, rng: &mut dyn RandomSource) {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(&mut *secret);
        let old = core::mem::replace(&mut self.secret, secret);
        self.previous = Some((self.version, old));
        self.version = self.version.wrapping_add(1);
    }

    /// The cookie for an initiator.
    pub fn make(&self, ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
        compute(self.version, &self.secret, ni, ip, spi_i)
    }

    /// Whether `cookie` is one we made for this initiator.
    pub fn verify(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some(&v) = cookie.first() else { return false };
        let expected = if v == self.version {
            compute(v, &self.secret, ni, ip, spi_i)
        } else if let Some((pv, ps)) = &self.previous
            && *pv == v
        {
            compute(v, ps, ni, ip, spi_i)
        } else {
            return false;
        };
        expected.len() == cookie.len() && bool::from(expected.ct_eq(cookie))
    }
}
