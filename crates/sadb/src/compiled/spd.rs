//! [`SpdLookup`]: the policy that applies to a packet, compiled from a snapshot.
//!
//! Tuple-space search: policies are grouped by their (source prefix length, destination prefix
//! length) pair; each group is a hash table from the masked (source, destination) pair to its
//! policies: inline in a 16-byte bucket when the pair has one policy for every protocol and
//! port (the usual tunnel policy), else a chain of them in priority order (those differing by
//! protocol or ports). Groups are probed in the order of
//! the best policy they hold, and the search stops as soon as no remaining group can hold a
//! better one, so a typical hub (one prefix-length pair per tunnel shape, and a catch-all)
//! costs one or two probes whatever the number of policies. The result is the same as a
//! linear scan over the policies in (priority, index) order (tested against one).
//! Must never be mutated after it is built: build a new one instead.

use std::hash::Hash;
use std::net::IpAddr;

use rampart_sa::Direction;

use super::table::HugeSlice;
use super::{LOOKUP_BURST, prefetch, table_size};
use crate::events::Flow;
use crate::hash::{mix64, random_seed};
use crate::policy::{Policy, PolicyAction, PolicyDir, PolicyId};
use crate::reader::Snapshot;

const NONE: u32 = u32::MAX;
const ACT_PROTECT: u8 = 1;
const ACT_BYPASS: u8 = 2;
const ACT_DISCARD: u8 = 3;

/// What to do with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpdAction {
    /// Protect through the outbound SA in this slot; `None` when the policy has no usable SA
    /// (push an [`crate::Event::Acquire`], then drop or queue the packet).
    Protect {
        /// Slot of the bound SA, as of the snapshot the lookup was compiled from.
        sa: Option<u32>,
    },
    /// Pass in the clear.
    Bypass,
    /// Drop.
    Discard,
}

/// The policy a packet matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpdMatch {
    /// Position of the policy in (priority, index) order; [`SpdLookup::policy`] names it.
    pub rank: u32,
    /// What to do.
    pub action: SpdAction,
}

/// An IPv4 packet's lookup key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowV4 {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// IP protocol.
    pub proto: u8,
    /// Source port (0 when the protocol has none; ICMP: type).
    pub sport: u16,
    /// Destination port (ICMP: code).
    pub dport: u16,
}

/// An IPv6 packet's lookup key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowV6 {
    /// Source address.
    pub src: u128,
    /// Destination address.
    pub dst: u128,
    /// IP protocol (the upper-layer protocol after extension headers).
    pub proto: u8,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl FlowV4 {
    #[inline(always)]
    fn key(&self) -> Key<u32> {
        Key { src: self.src, dst: self.dst, proto: self.proto, sport: self.sport, dport: self.dport }
    }
}

impl FlowV6 {
    #[inline(always)]
    fn key(&self) -> Key<u128> {
        Key { src: self.src, dst: self.dst, proto: self.proto, sport: self.sport, dport: self.dport }
    }
}

/// One policy to compile: its name, insertion index, the policy, and the slot of its bound
/// outbound SA if that SA is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpdRule {
    /// The policy's name.
    pub id: PolicyId,
    /// Insertion index (breaks priority ties: lower wins).
    pub index: u64,
    /// The policy.
    pub policy: Policy,
    /// Slot of the bound SA (protect policies), if installed.
    pub sa: Option<u32>,
}

/// A rule as compiled: 24 bytes.
#[repr(C)]
#[derive(Clone, Copy)]
struct Rule {
    rank: u32,
    next: u32,
    sa: u32,
    sport_lo: u16,
    sport_hi: u16,
    dport_lo: u16,
    dport_hi: u16,
    proto: u8,
    action: u8,
    _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<Rule>() == 24);

impl Rule {
    #[inline(always)]
    fn matches(&self, proto: u8, sport: u16, dport: u16) -> bool {
        (self.proto == 0 || self.proto == proto)
            & (self.sport_lo <= sport)
            & (sport <= self.sport_hi)
            & (self.dport_lo <= dport)
            & (dport <= self.dport_hi)
    }

    #[inline(always)]
    fn hit(&self) -> Hit {
        Hit { rank: self.rank, sa: self.sa, action: self.action }
    }

    /// Whether the rule matches every protocol and port.
    fn is_simple(&self) -> bool {
        self.proto == 0 && (self.sport_lo, self.sport_hi, self.dport_lo, self.dport_hi) == (0, u16::MAX, 0, u16::MAX)
    }
}

/// What a lookup found.
#[derive(Clone, Copy)]
struct Hit {
    rank: u32,
    sa: u32,
    action: u8,
}

impl Hit {
    #[inline(always)]
    fn to_match(self) -> SpdMatch {
        let action = match self.action {
            ACT_PROTECT => SpdAction::Protect { sa: (self.sa != NONE).then_some(self.sa) },
            ACT_BYPASS => SpdAction::Bypass,
            _ => SpdAction::Discard,
        };
        SpdMatch { rank: self.rank, action }
    }
}

/// An address type of one family.
trait Addr: Copy + Ord + Hash + Default + core::fmt::Debug {
    fn mask(len: u8) -> Self;
    fn and(self, m: Self) -> Self;
    fn hash_pair(src: Self, dst: Self, seed: u64) -> u64;
}

impl Addr for u32 {
    #[inline(always)]
    fn mask(len: u8) -> u32 {
        if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) }
    }
    #[inline(always)]
    fn and(self, m: u32) -> u32 {
        self & m
    }
    #[inline(always)]
    fn hash_pair(src: u32, dst: u32, seed: u64) -> u64 {
        mix64((u64::from(src) << 32) | u64::from(dst), seed)
    }
}

impl Addr for u128 {
    #[inline(always)]
    fn mask(len: u8) -> u128 {
        if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) }
    }
    #[inline(always)]
    fn and(self, m: u128) -> u128 {
        self & m
    }
    #[inline(always)]
    fn hash_pair(src: u128, dst: u128, seed: u64) -> u64 {
        let a = mix64((src >> 64) as u64 ^ (src as u64).rotate_left(17), seed);
        mix64(a ^ (dst >> 64) as u64 ^ (dst as u64).rotate_left(41), seed)
    }
}

/// One bucket: 16 bytes for IPv4 (four to a cache line), 48 for IPv6.
///
/// When the key has a single rule that matches every protocol and port (the usual tunnel
/// policy), the bucket is the whole answer: `meta` holds [`META_SIMPLE`], the action and the
/// rank, `sa` the SA slot. Otherwise `sa` is the index in the group's chain of the key's rules
/// in rank order, and `meta` is 0.
#[repr(C)]
#[derive(Clone, Copy)]
struct Entry<A> {
    src: A,
    dst: A,
    sa: u32,
    meta: u32,
}

const META_VACANT: u32 = u32::MAX;
const META_SIMPLE: u32 = 1 << 31;
const META_ACTION_SHIFT: u32 = 24;
/// Ranks that fit a simple bucket.
const RANK_MASK: u32 = (1 << META_ACTION_SHIFT) - 1;

const _: () = assert!(core::mem::size_of::<Entry<u32>>() == 16);

/// The policies of one (source length, destination length) pair.
#[derive(Clone)]
struct Group<A: Addr> {
    src_mask: A,
    dst_mask: A,
    best: u32,
    mask: usize,
    entries: HugeSlice<Entry<A>>,
    chain: Box<[Rule]>,
}

impl<A: Addr> Group<A> {
    #[inline(always)]
    fn bucket(&self, src: A, dst: A, seed: u64) -> usize {
        A::hash_pair(src.and(self.src_mask), dst.and(self.dst_mask), seed) as usize & self.mask
    }

    #[inline(always)]
    fn find(&self, mut i: usize, k: &Key<A>) -> Option<Hit> {
        let (src, dst) = (k.src.and(self.src_mask), k.dst.and(self.dst_mask));
        loop {
            let e = &self.entries[i];
            if e.meta == META_VACANT {
                return None;
            }
            if e.src == src && e.dst == dst {
                return self.resolve(e, k);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The rule of a matching bucket that applies to the packet.
    #[inline(always)]
    fn resolve(&self, e: &Entry<A>, k: &Key<A>) -> Option<Hit> {
        if e.meta & META_SIMPLE != 0 {
            return Some(Hit {
                rank: e.meta & RANK_MASK,
                sa: e.sa,
                action: ((e.meta >> META_ACTION_SHIFT) & 0x3) as u8,
            });
        }
        let mut r = self.chain.get(e.sa as usize)?;
        loop {
            if r.matches(k.proto, k.sport, k.dport) {
                return Some(r.hit());
            }
            r = self.chain.get(r.next as usize)?;
        }
    }
}

/// A packet's lookup key in one family.
struct Key<A> {
    src: A,
    dst: A,
    proto: u8,
    sport: u16,
    dport: u16,
}

/// A rule with its group (prefix lengths) and masked key, for sorting at build time.
type Sortable<A> = ((u8, u8), (A, A), Rule);

/// The policies of one family.
#[derive(Clone)]
struct Family<A: Addr> {
    groups: Vec<Group<A>>,
}

impl<A: Addr> Family<A> {
    fn build(rules: &[(u32, u8, u8, A, A, Rule)], seed: u64) -> Family<A> {
        // Sort by (prefix lengths, masked key, rank): each group, and each key's rules in rank
        // order, become runs.
        let mut sorted: Vec<Sortable<A>> = rules
            .iter()
            .map(|&(_, sl, dl, src, dst, rule)| ((sl, dl), (src.and(A::mask(sl)), dst.and(A::mask(dl))), rule))
            .collect();
        sorted.sort_unstable_by_key(|r| (r.0, r.1, r.2.rank));
        let mut groups = Vec::new();
        for group in sorted.chunk_by(|a, b| a.0 == b.0) {
            let (sl, dl) = group[0].0;
            let keys = group.chunk_by(|a, b| a.1 == b.1).count();
            let size = table_size(keys);
            let mut g = Group {
                src_mask: A::mask(sl),
                dst_mask: A::mask(dl),
                best: group.iter().map(|r| r.2.rank).min().unwrap_or(NONE),
                mask: size - 1,
                entries: HugeSlice::new(
                    size,
                    Entry { src: A::default(), dst: A::default(), sa: NONE, meta: META_VACANT },
                ),
                chain: Box::new([]),
            };
            let mut chain = Vec::new();
            for list in group.chunk_by(|a, b| a.1 == b.1) {
                let (src, dst) = list[0].1;
                let head = list[0].2;
                let entry = if list.len() == 1 && head.is_simple() && head.rank < RANK_MASK {
                    let meta = META_SIMPLE | (u32::from(head.action) << META_ACTION_SHIFT) | head.rank;
                    Entry { src, dst, sa: head.sa, meta }
                } else {
                    // The key's rules, in rank order, linked in the chain.
                    let base = chain.len();
                    for (k, r) in list.iter().enumerate() {
                        let mut r = r.2;
                        r.next = if k + 1 < list.len() { (base + k + 1) as u32 } else { NONE };
                        chain.push(r);
                    }
                    Entry { src, dst, sa: base as u32, meta: 0 }
                };
                let mut i = g.bucket(src, dst, seed);
                while g.entries[i].meta != META_VACANT {
                    i = (i + 1) & g.mask;
                }
                g.entries[i] = entry;
            }
            g.chain = chain.into_boxed_slice();
            groups.push(g);
        }
        groups.sort_by_key(|g| g.best);
        Family { groups }
    }

    #[inline(always)]
    fn lookup(&self, seed: u64, key: &Key<A>, first: Option<usize>) -> Option<Hit> {
        let mut best: Option<Hit> = None;
        let mut best_rank = NONE;
        for (k, g) in self.groups.iter().enumerate() {
            if g.best >= best_rank {
                break;
            }
            let i = match (k, first) {
                (0, Some(i)) => i,
                _ => g.bucket(key.src, key.dst, seed),
            };
            if let Some(r) = g.find(i, key)
                && r.rank < best_rank
            {
                best_rank = r.rank;
                best = Some(r);
            }
        }
        best
    }
}

/// The SPD of one direction, compiled for lookups.
#[derive(Clone)]
pub struct SpdLookup {
    seed: u64,
    v4: Family<u32>,
    v6: Family<u128>,
    policies: Vec<PolicyId>,
}

impl std::fmt::Debug for SpdLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpdLookup")
            .field("policies", &self.policies.len())
            .field("v4_groups", &self.v4.groups.len())
            .field("v6_groups", &self.v6.groups.len())
            .finish()
    }
}

impl SpdLookup {
    /// Compiles the policies of direction `dir` in a snapshot, resolving each protect
    /// policy's bound SA against the snapshot's SAs.
    pub fn build(snap: &Snapshot, dir: PolicyDir) -> SpdLookup {
        SpdLookup::from_rules(snap.policies().filter(|p| p.policy.dir == dir).map(|p| SpdRule {
            id: p.id,
            index: p.index,
            policy: p.policy,
            sa: p.sa.filter(|id| snap.sa_id(*id).is_some_and(|m| m.direction == Direction::Outbound)).map(|id| id.slot),
        }))
    }

    /// Compiles rules (of one direction; `dir` is not looked at).
    pub fn from_rules(rules: impl IntoIterator<Item = SpdRule>) -> SpdLookup {
        let mut rules: Vec<SpdRule> = rules.into_iter().collect();
        rules.sort_by_key(|r| (r.policy.priority, r.index));
        let seed = random_seed();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (rank, r) in rules.iter().enumerate() {
            let s = &r.policy.selector;
            let (action, sa) = match r.policy.action {
                PolicyAction::Protect(_) => (ACT_PROTECT, r.sa.unwrap_or(NONE)),
                PolicyAction::Bypass => (ACT_BYPASS, NONE),
                PolicyAction::Discard => (ACT_DISCARD, NONE),
            };
            let rule = Rule {
                rank: rank as u32,
                next: NONE,
                sa,
                sport_lo: s.sport.lo,
                sport_hi: s.sport.hi,
                dport_lo: s.dport.lo,
                dport_hi: s.dport.hi,
                proto: s.proto,
                action,
                _pad: [0; 2],
            };
            let (sl, dl) = (s.src.len(), s.dst.len());
            match (s.src.addr(), s.dst.addr()) {
                (IpAddr::V4(a), IpAddr::V4(b)) => v4.push((rank as u32, sl, dl, u32::from(a), u32::from(b), rule)),
                (IpAddr::V6(a), IpAddr::V6(b)) => v6.push((rank as u32, sl, dl, u128::from(a), u128::from(b), rule)),
                _ => {}
            }
        }
        SpdLookup {
            seed,
            v4: Family::build(&v4, seed),
            v6: Family::build(&v6, seed),
            policies: rules.iter().map(|r| r.id).collect(),
        }
    }

    /// Number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policy of a match's rank.
    pub fn policy(&self, rank: u32) -> Option<PolicyId> {
        self.policies.get(rank as usize).copied()
    }

    /// Number of (source length, destination length) groups probed at most per lookup.
    pub fn groups(&self) -> (usize, usize) {
        (self.v4.groups.len(), self.v6.groups.len())
    }

    /// The policy for an IPv4 packet.
    #[inline]
    pub fn lookup_v4(&self, f: &FlowV4) -> Option<SpdMatch> {
        self.v4.lookup(self.seed, &f.key(), None).map(Hit::to_match)
    }

    /// The policy for an IPv6 packet.
    #[inline]
    pub fn lookup_v6(&self, f: &FlowV6) -> Option<SpdMatch> {
        self.v6.lookup(self.seed, &f.key(), None).map(Hit::to_match)
    }

    /// The policy for a packet of either family.
    pub fn lookup(&self, f: &Flow) -> Option<SpdMatch> {
        match (f.src, f.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.lookup_v4(&FlowV4 { src: s.into(), dst: d.into(), proto: f.proto, sport: f.sport, dport: f.dport })
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                self.lookup_v6(&FlowV6 { src: s.into(), dst: d.into(), proto: f.proto, sport: f.sport, dport: f.dport })
            }
            _ => None,
        }
    }

    /// Starts loading the bucket of the first (best) group for a packet into the cache, for a
    /// [`SpdLookup::lookup_v4`] a little later (e.g. issued while parsing a burst).
    #[inline]
    pub fn prefetch_v4(&self, f: &FlowV4) {
        if let Some(g) = self.v4.groups.first() {
            prefetch(&g.entries[g.bucket(f.src, f.dst, self.seed)]);
        }
    }

    /// [`SpdLookup::prefetch_v4`] for IPv6.
    #[inline]
    pub fn prefetch_v6(&self, f: &FlowV6) {
        if let Some(g) = self.v6.groups.first() {
            prefetch(&g.entries[g.bucket(f.src, f.dst, self.seed)]);
        }
    }

    /// [`SpdLookup::lookup_v4`] for a burst; the first group's buckets of the whole burst are
    /// prefetched before any is probed.
    pub fn lookup_burst_v4(&self, flows: &[FlowV4], out: &mut [Option<SpdMatch>]) {
        let Some(g0) = self.v4.groups.first() else {
            out.iter_mut().for_each(|o| *o = None);
            return;
        };
        let mut first = [0usize; LOOKUP_BURST];
        for (flows, out) in flows.chunks(LOOKUP_BURST).zip(out.chunks_mut(LOOKUP_BURST)) {
            for (i, f) in first.iter_mut().zip(flows) {
                *i = g0.bucket(f.src, f.dst, self.seed);
                prefetch(&g0.entries[*i]);
            }
            for ((o, f), i) in out.iter_mut().zip(flows).zip(first) {
                *o = self.v4.lookup(self.seed, &f.key(), Some(i)).map(Hit::to_match);
            }
        }
    }

    /// [`SpdLookup::lookup_v6`] for a burst.
    pub fn lookup_burst_v6(&self, flows: &[FlowV6], out: &mut [Option<SpdMatch>]) {
        let Some(g0) = self.v6.groups.first() else {
            out.iter_mut().for_each(|o| *o = None);
            return;
        };
        let mut first = [0usize; LOOKUP_BURST];
        for (flows, out) in flows.chunks(LOOKUP_BURST).zip(out.chunks_mut(LOOKUP_BURST)) {
            for (i, f) in first.iter_mut().zip(flows) {
                *i = g0.bucket(f.src, f.dst, self.seed);
                prefetch(&g0.entries[*i]);
            }
            for ((o, f), i) in out.iter_mut().zip(flows).zip(first) {
                *o = self.v6.lookup(self.seed, &f.key(), Some(i)).map(Hit::to_match);
            }
        }
    }
}
