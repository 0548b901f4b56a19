//! Why a packet did not make it: one flat `Copy` enum whose every variant is a counter and a
//! message (VPP's `foreach_ipsec_sa_err` idea), and the per-worker counter array behind it.
//!
//! Nothing here allocates or formats on the data path: names and messages are `&'static str`.

use core::fmt;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $name:literal, $message:literal; )+) => {
        /// Why a packet was dropped (or, for [`DropReason::Dummy`] and
        /// [`DropReason::NatKeepalive`], consumed without being forwarded).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )+
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[ $( DropReason::$variant, )+ ];

            /// Number of reasons, the length of a counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// Short snake_case name, used as the metric label.
            pub const fn name(self) -> &'static str {
                match self { $( DropReason::$variant => $name, )+ }
            }

            /// One-line explanation for operators.
            pub const fn message(self) -> &'static str {
                match self { $( DropReason::$variant => $message, )+ }
            }
        }
    };
}

drop_reasons! {
    /// Too short for the headers it claims to carry.
    Truncated => "truncated", "packet shorter than its headers";
    /// Outer IP or UDP header malformed (bad version, length or checksum).
    BadOuterHeader => "bad_outer_header", "malformed outer IP or UDP header";
    /// UDP/4500 payload that is neither ESP, a non-ESP marker nor a keepalive.
    BadUdpEncap => "bad_udp_encap", "malformed UDP-encapsulated ESP";
    /// No inbound SA has this SPI (and destination).
    UnknownSpi => "unknown_spi", "no SA for this SPI";
    /// ESP payload length impossible for the SA's suite (too short, not block aligned).
    BadLength => "bad_length", "ESP length does not fit the SA's cipher";
    /// Sequence number already received (RFC 4303 section 3.4.3).
    ReplayDuplicate => "replay_duplicate", "sequence number already received";
    /// Sequence number left of the anti-replay window.
    ReplayTooOld => "replay_too_old", "sequence number left of the replay window";
    /// Integrity check failed (RFC 4303 section 3.4.4).
    AuthFailed => "auth_failed", "integrity check failed";
    /// AH: the ICV did not verify (RFC 4302 section 3.4.4).
    AhBadIcv => "ah_bad_icv", "AH integrity check failed";
    /// AH: a header length that does not fit the SA's algorithm or the packet.
    AhBadLength => "ah_bad_length", "AH header length does not fit the SA's algorithm";
    /// AH: the IP headers in front of AH cannot be made into ICV input (malformed options, a
    /// Routing header still to be routed, headers too long).
    AhBadHeader => "ah_bad_header", "IP headers in front of AH cannot be normalized";
    /// Pad length larger than the decrypted payload.
    BadPadLength => "bad_pad_length", "pad length exceeds the payload";
    /// Padding bytes are not 1, 2, 3, ... (RFC 4303 section 2.4).
    BadPadding => "bad_padding", "padding bytes are not 1, 2, 3, ...";
    /// Next header that the SA's mode cannot carry.
    BadNextHeader => "bad_next_header", "next header not allowed for the SA's mode";
    /// Decrypted inner packet malformed or not matching the next header.
    BadInnerPacket => "bad_inner_packet", "malformed inner packet";
    /// Inner packet outside the SA's traffic selectors (RFC 4301 section 5.2).
    TrafficSelector => "traffic_selector", "inner packet outside the SA's traffic selectors";
    /// Dummy packet, next header 59 (RFC 4303 section 2.6): discarded silently.
    Dummy => "dummy", "dummy packet (next header 59) discarded";
    /// One-byte NAT keepalive (RFC 3948 section 2.3): consumed.
    NatKeepalive => "nat_keepalive", "NAT keepalive consumed";
    /// The SA's sequence numbers are used up or not yet reserved: a rekey is overdue.
    SeqExhausted => "seq_exhausted", "sequence number space exhausted";
    /// The SA reached a hard lifetime and no longer carries traffic.
    SaExpired => "sa_expired", "SA past its hard lifetime";
    /// Not enough room in the frame for the headers or trailer to add.
    NoRoom => "no_room", "frame too small for ESP headers and trailer";
    /// Encapsulated packet larger than the path MTU.
    TooBig => "too_big", "packet too big after encapsulation";
    /// Outer packet is a fragment that could not go to reassembly (reassembly is done before
    /// ESP processing; this counts fragments of a datagram that was itself reassembled).
    Fragment => "fragment", "outer fragment not reassembled";
    /// Outer fragments overlap (RFC 5722): the whole datagram is dropped.
    FragmentOverlap => "fragment_overlap", "overlapping outer fragments (the datagram is dropped)";
    /// The reassembled datagram would not fit a frame.
    FragmentTooLarge => "fragment_too_large", "reassembled outer datagram too large";
    /// More fragments in one datagram than the reassembler takes.
    FragmentTooMany => "fragment_too_many", "too many fragments in one outer datagram";
    /// No room in the reassembly table (or the sender's share of it is used up).
    FragmentTableFull => "fragment_table_full", "reassembly table full";
    /// A datagram not complete within the reassembly timeout.
    FragmentTimeout => "fragment_timeout", "outer datagram not complete in time";
    /// A fragment whose headers or offsets are impossible.
    FragmentMalformed => "fragment_malformed", "malformed outer fragment";
    /// No policy, or a discard policy, for a cleartext packet.
    NoPolicy => "no_policy", "no policy for this packet";
    /// Policy says protect, but no SA is installed yet.
    NoSa => "no_sa", "policy has no SA yet";
    /// TTL or hop limit expired while forwarding.
    TtlExpired => "ttl_expired", "TTL expired";
    /// No neighbour or route for the next hop.
    NoRoute => "no_route", "no route or neighbour";
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// One counter per [`DropReason`], kept by one worker (no shared writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters { counts: [0; DropReason::COUNT] }
    }
}

impl DropCounters {
    /// Counts one packet under `reason`.
    #[inline]
    pub fn count(&mut self, reason: DropReason) {
        self.counts[reason as usize] += 1;
    }

    /// The count for `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another worker's counters into these.
    pub fn merge(&mut self, other: &DropCounters) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
    }

    /// Every reason with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.get(*r))).filter(|(_, n)| *n != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.name()), "duplicate name {}", r.name());
            assert!(r.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", r.name());
            assert!(!r.message().is_empty());
        }
        assert_eq!(DropReason::ALL.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL must be in discriminant order");
        }
    }

    #[test]
    fn counters_count_and_merge() {
        let mut a = DropCounters::default();
        a.count(DropReason::AuthFailed);
        a.count(DropReason::AuthFailed);
        let mut b = DropCounters::default();
        b.count(DropReason::UnknownSpi);
        a.merge(&b);
        assert_eq!(a.get(DropReason::AuthFailed), 2);
        assert_eq!(a.get(DropReason::UnknownSpi), 1);
        assert_eq!(a.total(), 3);
        assert_eq!(a.nonzero().count(), 2);
    }
}
