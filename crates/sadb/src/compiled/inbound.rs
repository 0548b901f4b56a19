//! [`SaIndex`]: inbound SA lookup by SPI and outer destination address, compiled from a
//! snapshot. Must never be mutated after it is built: build a new one instead.

use std::collections::HashMap;
use std::net::IpAddr;

use rampart_sa::Direction;

use super::table::HugeSlice;
use super::{LOOKUP_BURST, prefetch, table_size};
use crate::hash::{mix64, random_seed};
use crate::reader::Snapshot;
use crate::record::SaId;

const EMPTY: u32 = u32::MAX;

/// One bucket: 16 bytes, four to a cache line.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Entry {
    spi: u32,
    dst: u32,
    slot: u32,
    incarnation: u32,
}

const _: () = assert!(core::mem::size_of::<Entry>() == 16);

/// A vacant bucket: its `dst` (no destination index is `u32::MAX`) never matches a key.
const VACANT: Entry = Entry { spi: 0, dst: u32::MAX, slot: EMPTY, incarnation: 0 };

/// Inbound SAs by (SPI, outer destination). Several inbound SAs of one tunnel (make-before-
/// break) are simply several keys.
#[derive(Clone)]
pub struct SaIndex {
    entries: HugeSlice<Entry>,
    mask: usize,
    seed: u64,
    /// Distinct outer destinations (our own addresses: usually one or two).
    dsts: Vec<IpAddr>,
    dst_map: HashMap<IpAddr, u32>,
    len: usize,
}

impl std::fmt::Debug for SaIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaIndex").field("len", &self.len).field("buckets", &self.entries.len()).finish()
    }
}

impl SaIndex {
    /// Compiles the inbound SAs of a snapshot.
    pub fn build(snap: &Snapshot) -> SaIndex {
        SaIndex::from_entries(
            snap.sas().filter(|m| m.direction == Direction::Inbound).map(|m| (m.spi, m.outer_dst(), m.id)),
        )
    }

    /// Compiles `(spi, outer destination, SA)` triples; of duplicate keys the first wins.
    pub fn from_entries(items: impl IntoIterator<Item = (u32, IpAddr, SaId)>) -> SaIndex {
        let items: Vec<_> = items.into_iter().collect();
        let size = table_size(items.len());
        let mut idx = SaIndex {
            entries: HugeSlice::new(size, VACANT),
            mask: size - 1,
            seed: random_seed(),
            dsts: Vec::new(),
            dst_map: HashMap::new(),
            len: 0,
        };
        for (spi, dst, id) in items {
            let d = match idx.dst_map.get(&dst) {
                Some(d) => *d,
                None => {
                    let d = idx.dsts.len() as u32;
                    idx.dsts.push(dst);
                    idx.dst_map.insert(dst, d);
                    d
                }
            };
            let mut i = idx.bucket(spi, d);
            loop {
                let e = &mut idx.entries[i];
                if e.slot == EMPTY {
                    *e = Entry { spi, dst: d, slot: id.slot, incarnation: id.incarnation };
                    idx.len += 1;
                    break;
                }
                if e.spi == spi && e.dst == d {
                    break;
                }
                i = (i + 1) & idx.mask;
            }
        }
        idx
    }

    /// Number of SAs.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn bucket(&self, spi: u32, dst: u32) -> usize {
        mix64(u64::from(spi) | (u64::from(dst) << 32), self.seed) as usize & self.mask
    }

    #[inline(always)]
    fn dst_index(&self, dst: IpAddr) -> Option<u32> {
        if self.dsts.len() <= 4 {
            self.dsts.iter().position(|d| *d == dst).map(|p| p as u32)
        } else {
            self.dst_map.get(&dst).copied()
        }
    }

    #[inline(always)]
    fn probe(&self, mut i: usize, spi: u32, dst: u32) -> Option<SaId> {
        loop {
            let e = &self.entries[i];
            if e.spi == spi && e.dst == dst {
                return Some(SaId { slot: e.slot, incarnation: e.incarnation });
            }
            if e.slot == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// The inbound SA for an ESP packet's SPI and outer destination address.
    #[inline]
    pub fn lookup(&self, spi: u32, dst: IpAddr) -> Option<SaId> {
        let d = self.dst_index(dst)?;
        self.probe(self.bucket(spi, d), spi, d)
    }

    /// Starts loading the bucket of a key into the cache, for a [`SaIndex::lookup`] a little
    /// later (e.g. issued while parsing a burst, resolved after).
    #[inline]
    pub fn prefetch(&self, spi: u32, dst: IpAddr) {
        if let Some(d) = self.dst_index(dst) {
            prefetch(&self.entries[self.bucket(spi, d)]);
        }
    }

    /// [`SaIndex::lookup`] for a burst: `out[i]` gets the answer for `keys[i]`. The buckets of
    /// the whole burst are prefetched before the first is probed.
    pub fn lookup_burst(&self, keys: &[(u32, IpAddr)], out: &mut [Option<SaId>]) {
        let mut start = [(0usize, u32::MAX); LOOKUP_BURST];
        for (keys, out) in keys.chunks(LOOKUP_BURST).zip(out.chunks_mut(LOOKUP_BURST)) {
            for (s, &(spi, dst)) in start.iter_mut().zip(keys) {
                *s = match self.dst_index(dst) {
                    Some(d) => {
                        let i = self.bucket(spi, d);
                        prefetch(&self.entries[i]);
                        (i, d)
                    }
                    None => (0, u32::MAX),
                };
            }
            for ((o, &(i, d)), &(spi, _)) in out.iter_mut().zip(&start).zip(keys) {
                *o = if d == u32::MAX { None } else { self.probe(i, spi, d) };
            }
        }
    }
}
