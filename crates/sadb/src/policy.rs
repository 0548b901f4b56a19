//! Security policies (the SPD): selectors over source/destination prefixes, protocol and
//! ports, IPv4 and IPv6, ordered by priority, with an action (protect through an SA, bypass,
//! discard), and their fixed-size record in shared memory.
//!
//! Order: a lower `priority` number wins, and among equal priorities the older policy (lower
//! `index`) wins, as with Linux xfrm. This module must never touch shared memory.

use core::fmt;
use std::net::IpAddr;

use rampart_sa::{Direction, Mode, Protocol};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::error::RecordError;
use crate::layout::POLICY_RECORD_SIZE;
use crate::record::{SaId, SaMeta, addr_from_bytes, addr_to_bytes};
use crate::shm::POLICY_WORDS;

/// Which traffic a policy applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyDir {
    /// Cleartext leaving for the peer: looked up before encapsulation.
    Out,
    /// Cleartext arriving (decapsulated, or bypassing IPsec): checked after decapsulation.
    In,
}

impl fmt::Display for PolicyDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyDir::Out => "out",
            PolicyDir::In => "in",
        })
    }
}

/// An address prefix; host bits are always zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// A prefix; host bits of `addr` are cleared. Fails if `len` is beyond the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Result<IpPrefix, RecordError> {
        match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
                Ok(IpPrefix { addr: IpAddr::V4((u32::from(a) & mask).into()), len })
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
                Ok(IpPrefix { addr: IpAddr::V6((u128::from(a) & mask).into()), len })
            }
            _ => Err(RecordError::PrefixLength { addr, len }),
        }
    }

    /// A single host (/32 or /128).
    pub fn host(addr: IpAddr) -> IpPrefix {
        IpPrefix { addr, len: if addr.is_ipv4() { 32 } else { 128 } }
    }

    /// Every address of a family (/0).
    pub fn any(v6: bool) -> IpPrefix {
        if v6 {
            IpPrefix { addr: IpAddr::V6(0.into()), len: 0 }
        } else {
            IpPrefix { addr: IpAddr::V4(0.into()), len: 0 }
        }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is a /0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `a` lies in the prefix.
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.addr, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                self.len == 0 || (u32::from(n) ^ u32::from(a)) >> (32 - u32::from(self.len)) == 0
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                self.len == 0 || (u128::from(n) ^ u128::from(a)) >> (128 - u32::from(self.len)) == 0
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// An inclusive port range; `0..=65535` is any port. For ICMP, ports carry type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub lo: u16,
    /// Last port.
    pub hi: u16,
}

impl PortRange {
    /// Every port.
    pub const ANY: PortRange = PortRange { lo: 0, hi: u16::MAX };

    /// One port.
    pub fn single(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }

    /// Whether `p` is in the range.
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }

    /// Whether this is every port.
    pub fn is_any(&self) -> bool {
        *self == PortRange::ANY
    }
}

/// What traffic a policy covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Source prefix.
    pub src: IpPrefix,
    /// Destination prefix (same family as `src`).
    pub dst: IpPrefix,
    /// IP protocol, 0 for any.
    pub proto: u8,
    /// Source ports (ICMP: type).
    pub sport: PortRange,
    /// Destination ports (ICMP: code).
    pub dport: PortRange,
}

impl Selector {
    /// Whether a packet matches. Ports are 0 for protocols without ports.
    pub fn matches(&self, src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> bool {
        self.src.contains(src)
            && self.dst.contains(dst)
            && (self.proto == 0 || self.proto == proto)
            && self.sport.contains(sport)
            && self.dport.contains(dport)
    }

    /// Whether the selector is IPv6.
    pub fn is_v6(&self) -> bool {
        self.src.addr.is_ipv6()
    }
}

/// The SA (one ESP or AH SA) a protect policy sends through, as xfrm's `tmpl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    /// ESP or AH.
    pub protocol: Protocol,
    /// Our outer address.
    pub src: IpAddr,
    /// The peer's outer address.
    pub dst: IpAddr,
    /// SPI of the outbound SA, 0 for any.
    pub spi: u32,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Tunnel id, 0 for any.
    pub reqid: u32,
}

impl Template {
    /// Whether an SA can serve this template.
    pub fn matches(&self, sa: &SaMeta) -> bool {
        sa.direction == Direction::Outbound
            && sa.protocol == self.protocol
            && sa.local == self.src
            && sa.remote == self.dst
            && sa.mode == self.mode
            && (self.spi == 0 || self.spi == sa.spi)
            && (self.reqid == 0 || self.reqid == sa.reqid)
    }
}

/// What happens to matching traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Send (out) or require (in) ESP through an SA of this template.
    Protect(Template),
    /// Pass in the clear.
    Bypass,
    /// Drop.
    Discard,
}

/// One policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Policy {
    /// Direction.
    pub dir: PolicyDir,
    /// Traffic covered.
    pub selector: Selector,
    /// Lower wins.
    pub priority: u32,
    /// What to do.
    pub action: PolicyAction,
}

impl Policy {
    /// Checks families and ranges.
    pub fn validate(&self) -> Result<(), RecordError> {
        let s = &self.selector;
        if s.src.addr.is_ipv4() != s.dst.addr.is_ipv4() {
            return Err(RecordError::PolicyFamilies("source and destination"));
        }
        for r in [s.sport, s.dport] {
            if r.lo > r.hi {
                return Err(RecordError::PortRange { lo: r.lo, hi: r.hi });
            }
        }
        if let PolicyAction::Protect(t) = self.action
            && t.src.is_ipv4() != t.dst.is_ipv4()
        {
            return Err(RecordError::PolicyFamilies("template source and destination"));
        }
        Ok(())
    }
}

/// Names one policy: slot and incarnation, like [`SaId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    /// Slot number.
    pub slot: u32,
    /// Incarnation of the slot.
    pub incarnation: u32,
}

/// A policy as read from the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Its name.
    pub id: PolicyId,
    /// Insertion order (unique over the file's life; xfrm's `index`).
    pub index: u64,
    /// Seqlock version at the time of reading.
    pub version: u64,
    /// The policy.
    pub policy: Policy,
    /// The outbound SA the writer bound to it (protect policies only). The binding may name an
    /// SA that has been deleted since: lookups check it.
    pub sa: Option<SaId>,
}

const ACTION_PROTECT: u8 = 1;
const ACTION_BYPASS: u8 = 2;
const ACTION_DISCARD: u8 = 3;
const PDIR_IN: u8 = 1;
const PDIR_OUT: u8 = 2;
const NO_SLOT: u32 = u32::MAX;

/// A policy as stored in shared memory.
#[repr(C, align(64))]
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(crate) struct PolicyRecord {
    version: u64,
    state: u32,
    incarnation: u32,
    index: u64,
    priority: u32,
    dir: u8,
    action: u8,
    family: u8,
    proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    src_len: u8,
    dst_len: u8,
    _pad0: [u8; 2],
    sport_lo: u16,
    sport_hi: u16,
    dport_lo: u16,
    dport_hi: u16,
    tmpl_spi: u32,
    tmpl_src: [u8; 16],
    tmpl_dst: [u8; 16],
    tmpl_family: u8,
    tmpl_mode: u8,
    tmpl_proto: u8,
    _pad1: u8,
    tmpl_reqid: u32,
    sa_slot: u32,
    sa_incarnation: u32,
    _reserved: [u8; 128],
}

const _: () = assert!(core::mem::size_of::<PolicyRecord>() as u64 == POLICY_RECORD_SIZE);

impl PolicyRecord {
    pub fn from_policy(p: &Policy, id: PolicyId, index: u64, sa: Option<SaId>) -> Result<PolicyRecord, RecordError> {
        p.validate()?;
        let mut r = PolicyRecord::new_zeroed();
        r.state = crate::record::STATE_LIVE;
        r.incarnation = id.incarnation;
        r.index = index;
        r.priority = p.priority;
        r.dir = match p.dir {
            PolicyDir::In => PDIR_IN,
            PolicyDir::Out => PDIR_OUT,
        };
        let s = &p.selector;
        (r.src, r.family) = addr_to_bytes(s.src.addr);
        (r.dst, _) = addr_to_bytes(s.dst.addr);
        r.src_len = s.src.len;
        r.dst_len = s.dst.len;
        r.proto = s.proto;
        (r.sport_lo, r.sport_hi, r.dport_lo, r.dport_hi) = (s.sport.lo, s.sport.hi, s.dport.lo, s.dport.hi);
        r.sa_slot = NO_SLOT;
        match p.action {
            PolicyAction::Protect(t) => {
                r.action = ACTION_PROTECT;
                (r.tmpl_src, r.tmpl_family) = addr_to_bytes(t.src);
                (r.tmpl_dst, _) = addr_to_bytes(t.dst);
                r.tmpl_spi = t.spi;
                r.tmpl_reqid = t.reqid;
                r.tmpl_proto = t.protocol.ip_protocol();
                r.tmpl_mode = match t.mode {
                    Mode::Tunnel => 1,
                    Mode::Transport => 2,
                };
                if let Some(sa) = sa {
                    r.sa_slot = sa.slot;
                    r.sa_incarnation = sa.incarnation;
                }
            }
            PolicyAction::Bypass => r.action = ACTION_BYPASS,
            PolicyAction::Discard => r.action = ACTION_DISCARD,
        }
        Ok(r)
    }

    pub fn free(incarnation: u32) -> PolicyRecord {
        let mut r = PolicyRecord::new_zeroed();
        r.incarnation = incarnation;
        r
    }

    pub fn is_live(&self) -> bool {
        self.state == crate::record::STATE_LIVE
    }

    /// Decodes a live record; `None` for a free or corrupt one.
    pub fn decode(&self, slot: u32) -> Option<PolicyInfo> {
        if !self.is_live() {
            return None;
        }
        let dir = match self.dir {
            PDIR_IN => PolicyDir::In,
            PDIR_OUT => PolicyDir::Out,
            _ => return None,
        };
        let src = IpPrefix::new(addr_from_bytes(&self.src, self.family)?, self.src_len).ok()?;
        let dst = IpPrefix::new(addr_from_bytes(&self.dst, self.family)?, self.dst_len).ok()?;
        let selector = Selector {
            src,
            dst,
            proto: self.proto,
            sport: PortRange { lo: self.sport_lo, hi: self.sport_hi },
            dport: PortRange { lo: self.dport_lo, hi: self.dport_hi },
        };
        let mut sa = None;
        let action = match self.action {
            ACTION_PROTECT => {
                let mode = match self.tmpl_mode {
                    1 => Mode::Tunnel,
                    2 => Mode::Transport,
                    _ => return None,
                };
                let protocol = match self.tmpl_proto {
                    50 => Protocol::Esp,
                    51 => Protocol::Ah,
                    _ => return None,
                };
                if self.sa_slot != NO_SLOT {
                    sa = Some(SaId { slot: self.sa_slot, incarnation: self.sa_incarnation });
                }
                PolicyAction::Protect(Template {
                    protocol,
                    src: addr_from_bytes(&self.tmpl_src, self.tmpl_family)?,
                    dst: addr_from_bytes(&self.tmpl_dst, self.tmpl_family)?,
                    spi: self.tmpl_spi,
                    mode,
                    reqid: self.tmpl_reqid,
                })
            }
            ACTION_BYPASS => PolicyAction::Bypass,
            ACTION_DISCARD => PolicyAction::Discard,
            _ => return None,
        };
        let policy = Policy { dir, selector, priority: self.priority, action };
        policy.validate().ok()?;
        Some(PolicyInfo {
            id: PolicyId { slot, incarnation: self.incarnation },
            index: self.index,
            version: self.version,
            policy,
            sa,
        })
    }

    pub fn to_words(self) -> [u64; POLICY_WORDS] {
        let mut w = [0u64; POLICY_WORDS];
        w.as_mut_bytes().copy_from_slice(self.as_bytes());
        w
    }

    pub fn from_words(words: &[u64; POLICY_WORDS]) -> PolicyRecord {
        let mut r = PolicyRecord::new_zeroed();
        r.as_mut_bytes().copy_from_slice(words.as_bytes());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpPrefix {
        let (a, l) = s.split_once('/').unwrap();
        IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()
    }

    #[test]
    fn prefixes_mask_host_bits_and_contain_what_they_should() {
        assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert!(p("10.0.0.0/8").contains("10.255.0.1".parse().unwrap()));
        assert!(!p("10.0.0.0/8").contains("11.0.0.1".parse().unwrap()));
        assert!(p("0.0.0.0/0").contains("1.2.3.4".parse().unwrap()));
        assert!(!p("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(p("2001:db8::/32").contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(p("::1/128").contains("::1".parse().unwrap()));
        assert!(IpPrefix::new("1.2.3.4".parse().unwrap(), 33).is_err());
    }

    #[test]
    fn record_round_trip() {
        let pol = Policy {
            dir: PolicyDir::Out,
            selector: Selector {
                src: p("2001:db8:1::/48"),
                dst: p("2001:db8:2::/48"),
                proto: 6,
                sport: PortRange::ANY,
                dport: PortRange::single(443),
            },
            priority: 77,
            action: PolicyAction::Protect(Template {
                protocol: rampart_sa::Protocol::Esp,
                src: "2001:db8::1".parse().unwrap(),
                dst: "2001:db8::2".parse().unwrap(),
                spi: 5,
                mode: Mode::Tunnel,
                reqid: 3,
            }),
        };
        let id = PolicyId { slot: 4, incarnation: 9 };
        let sa = Some(SaId { slot: 1, incarnation: 2 });
        let rec = PolicyRecord::from_policy(&pol, id, 42, sa).unwrap();
        let back = PolicyRecord::from_words(&rec.to_words()).decode(4).unwrap();
        assert_eq!(back.policy, pol);
        assert_eq!((back.id, back.index, back.sa), (id, 42, sa));
        assert!(PolicyRecord::free(3).decode(4).is_none());
    }
}
