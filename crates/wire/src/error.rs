//! The one error type of the wire crate: a flat `Copy` enum whose every variant is a drop
//! reason the data plane can count. It must never carry data from the packet (no allocation,
//! nothing worth hiding in logs).

use core::fmt;

/// Why a packet could not be parsed or a header could not be written.
///
/// Every variant names a drop reason; [`Error::as_str`] gives a stable name for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header or than a length field says.
    Truncated,
    /// A field holds a value the protocol does not allow (wrong version, a length field smaller
    /// than its header, a zero SPI, a reserved combination...).
    Malformed,
    /// A checksum does not verify.
    Checksum,
    /// The ESP padding is inconsistent: the pad length runs past the data, or the padding bytes
    /// are not 1, 2, 3, ... (RFC 4303 section 2.4).
    BadPadding,
    /// The IPv6 extension-header chain is longer than the walker's limit.
    TooManyExtensions,
    /// The output buffer is too small for what `emit` has to write.
    BufferTooSmall,
    /// An ICMP error must not be sent about this packet (RFC 1122 section 3.2.2,
    /// RFC 4443 section 2.4 (e)): it is itself an ICMP error, a non-initial fragment, or was
    /// sent from or to an address that does not name a single host.
    Suppressed,
}

impl Error {
    /// A short, stable, snake_case name for counters and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Checksum => "bad_checksum",
            Error::BadPadding => "bad_padding",
            Error::TooManyExtensions => "too_many_extension_headers",
            Error::BufferTooSmall => "buffer_too_small",
            Error::Suppressed => "icmp_error_suppressed",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl core::error::Error for Error {}
