//! UDP encapsulation of ESP (RFC 3948): what a datagram on port 4500 carries. One byte 0xff is
//! a NAT keepalive, four zero bytes (the non-ESP marker) start an IKE message, anything else
//! is an ESP packet whose first four bytes are its non-zero SPI.
//!
//! Classification only looks at lengths and the first four bytes; it never allocates and never
//! decides about SPIs beyond "not zero".

use crate::Error;

/// The UDP port of NAT traversal.
pub const PORT: u16 = 4500;
/// Length of the non-ESP marker that precedes IKE messages on port 4500.
pub const NON_ESP_MARKER_LEN: usize = 4;
/// The one byte of a NAT keepalive.
pub const KEEPALIVE_BYTE: u8 = 0xff;
/// Shortest ESP packet: SPI and sequence number.
pub const MIN_ESP_LEN: usize = 8;

/// What a UDP/4500 payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpEncap {
    /// A NAT keepalive: consume it, nothing to pass on.
    Keepalive,
    /// An IKE message after the non-ESP marker: `payload[NON_ESP_MARKER_LEN..]` goes to IKE.
    Ike,
    /// An ESP packet: the whole payload, starting with its SPI.
    Esp,
}

/// Classifies the payload of a datagram received on port 4500.
///
/// # Errors
/// [`Error::Malformed`] for anything else: an empty payload, one byte other than 0xff, or a
/// payload that would be ESP but is shorter than its 8-byte header.
//= https://www.rfc-editor.org/rfc/rfc3948#section-2.3
//# The sender MUST use a one-octet-long payload with the value 0xFF.
//= https://www.rfc-editor.org/rfc/rfc3948#section-2.3
//# The receiver SHOULD ignore a received NAT-keepalive packet.
pub fn classify(payload: &[u8]) -> Result<UdpEncap, Error> {
    match payload {
        [KEEPALIVE_BYTE] => Ok(UdpEncap::Keepalive),
        [0, 0, 0, 0, ..] => Ok(UdpEncap::Ike),
        // The first four bytes are not all zero here, so the SPI is non-zero.
        p if p.len() >= MIN_ESP_LEN => Ok(UdpEncap::Esp),
        _ => Err(Error::Malformed),
    }
}

/// Writes a NAT keepalive payload (one byte 0xff) and returns its length, 1.
///
/// # Errors
/// [`Error::BufferTooSmall`] if `buf` is empty.
pub fn emit_keepalive(buf: &mut [u8]) -> Result<usize, Error> {
    let first = buf.first_mut().ok_or(Error::BufferTooSmall)?;
    *first = KEEPALIVE_BYTE;
    Ok(1)
}

/// Writes the non-ESP marker (four zero bytes) that goes before an IKE message on port 4500
/// and returns its length, 4.
///
/// # Errors
/// [`Error::BufferTooSmall`] if `buf` is shorter than 4 bytes.
pub fn emit_non_esp_marker(buf: &mut [u8]) -> Result<usize, Error> {
    let marker = buf.get_mut(..NON_ESP_MARKER_LEN).ok_or(Error::BufferTooSmall)?;
    marker.fill(0);
    Ok(NON_ESP_MARKER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify(&[0xff]), Ok(UdpEncap::Keepalive));
        assert_eq!(classify(&[0, 0, 0, 0]), Ok(UdpEncap::Ike));
        assert_eq!(classify(&[0, 0, 0, 0, 0x11, 0x22]), Ok(UdpEncap::Ike));
        assert_eq!(classify(&[0, 0, 0, 1, 0, 0, 0, 1]), Ok(UdpEncap::Esp));
        assert_eq!(classify(&[0xff, 0, 0, 0, 0, 0, 0, 0]), Ok(UdpEncap::Esp));
    }

    #[test]
    fn malformed() {
        for p in [&[][..], &[0x00], &[0xfe], &[0xff, 0xff], &[0, 0, 0], &[0, 0, 0, 1], &[1, 2, 3, 4, 5, 6, 7]] {
            assert_eq!(classify(p), Err(Error::Malformed), "{p:x?}");
        }
    }

    #[test]
    fn emitters() {
        let mut b = [7u8; 5];
        assert_eq!(emit_keepalive(&mut b), Ok(1));
        assert_eq!(classify(&b[..1]), Ok(UdpEncap::Keepalive));
        assert_eq!(emit_non_esp_marker(&mut b), Ok(4));
        assert_eq!(classify(&b), Ok(UdpEncap::Ike));
        assert_eq!(emit_non_esp_marker(&mut b[..3]), Err(Error::BufferTooSmall));
        assert_eq!(emit_keepalive(&mut []), Err(Error::BufferTooSmall));
    }
}
