//! NAT detection (RFC 7296 section 2.23): the NAT_DETECTION_*_IP hashes.
//!
//! SHA-1 is what the RFC fixes for these hashes; they protect nothing secret.

use std::net::{IpAddr, SocketAddr};

/// SHA-1(SPIi | SPIr | IP | Port).
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.23
//# The data associated with these Notify types is the SHA-1 digest of the SPIs (in the order they
//# appear in the header), IP address, and port
pub fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}
