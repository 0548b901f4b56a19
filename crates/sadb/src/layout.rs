//! The file layout of the SA database: the header's fixed part, the region offsets computed
//! from the capacities, and the checks that refuse a file laid out by another build.
//!
//! This module only computes and compares numbers; it never touches the mapping.

use core::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First bytes of every SA database file.
pub const MAGIC: [u8; 8] = *b"RMPTSADB";

/// Version of the layout described in this crate. Any change to a record, a region or the
/// header bumps it, so that binaries of different builds refuse each other's files.
pub const LAYOUT_VERSION: u32 = 2;

/// Size of the header region (one page): the fixed part, then the writer's control block.
pub const HEADER_SIZE: u64 = 4096;
/// Offset of the control block (atomics shared by writer and readers) inside the header.
pub const CONTROL_OFFSET: u64 = 256;
/// Size of one SA record (and of its slot), bytes.
pub const SA_RECORD_SIZE: u64 = 1024;
/// Size of one policy record (and of its slot), bytes.
pub const POLICY_RECORD_SIZE: u64 = 256;
/// Size of one per-SA usage record, bytes.
pub const USAGE_RECORD_SIZE: u64 = 64;
/// Size of one SPI index bucket, bytes.
pub const SPI_BUCKET_SIZE: u64 = 8;
/// Size of one change-journal entry, bytes.
pub const JOURNAL_ENTRY_SIZE: u64 = 32;
/// Size of one event-ring slot, bytes.
pub const EVENT_RECORD_SIZE: u64 = 128;
/// Traffic selectors stored per side of an SA.
pub const MAX_TS_PER_SIDE: usize = 8;

/// Largest number of SA or policy slots a file may have.
pub const MAX_CAPACITY: u32 = 1 << 24;

const PAGE: u64 = 4096;

/// How many records of each kind a database file holds. Fixed when the file is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacities {
    /// SA slots (and usage records).
    pub sas: u32,
    /// Policy slots.
    pub policies: u32,
    /// Event-ring slots (rounded up to a power of two).
    pub events: u32,
    /// Change-journal entries (rounded up to a power of two).
    pub journal: u32,
}

impl Default for Capacities {
    /// Room for 131,072 SAs and policies: a hub with 100,000 tunnels and spare slots for
    /// make-before-break rekeying. The file is sparse: untouched slots cost no memory.
    fn default() -> Self {
        Capacities { sas: 1 << 17, policies: 1 << 17, events: 1 << 14, journal: 1 << 16 }
    }
}

impl Capacities {
    /// Small capacities for tests and small sites.
    pub fn small(sas: u32, policies: u32) -> Capacities {
        Capacities { sas, policies, events: 1024, journal: 4096 }
    }
}

/// The fixed part of the header, written once when the file is created and never again.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(crate) struct FixedHeader {
    pub magic: [u8; 8],
    pub layout_version: u32,
    pub header_size: u32,
    pub sa_record_size: u32,
    pub policy_record_size: u32,
    pub usage_record_size: u32,
    pub event_record_size: u32,
    pub journal_entry_size: u32,
    pub max_ts_per_side: u32,
    pub sa_capacity: u32,
    pub policy_capacity: u32,
    pub spi_index_buckets: u32,
    pub journal_capacity: u32,
    pub event_capacity: u32,
    pub _reserved: u32,
    pub sa_offset: u64,
    pub policy_offset: u64,
    pub usage_offset: u64,
    pub spi_index_offset: u64,
    pub journal_offset: u64,
    pub event_offset: u64,
    pub file_size: u64,
    pub hash_seed: u64,
    pub created_unix: u64,
}

const _: () = assert!(core::mem::size_of::<FixedHeader>() == 136);
const _: () = assert!(core::mem::size_of::<FixedHeader>() as u64 <= CONTROL_OFFSET);

/// Where each region lies, computed from the capacities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub caps: Capacities,
    pub spi_index_buckets: u32,
    pub sa_offset: u64,
    pub policy_offset: u64,
    pub usage_offset: u64,
    pub spi_index_offset: u64,
    pub journal_offset: u64,
    pub event_offset: u64,
    pub file_size: u64,
}

fn page_up(x: u64) -> u64 {
    x.div_ceil(PAGE) * PAGE
}

impl Layout {
    /// The layout for `caps`, after checking and normalising them.
    pub fn for_capacities(caps: Capacities) -> Result<Layout, LayoutError> {
        if caps.sas == 0 || caps.sas > MAX_CAPACITY {
            return Err(LayoutError::BadCapacity { what: "sas", value: caps.sas });
        }
        if caps.policies == 0 || caps.policies > MAX_CAPACITY {
            return Err(LayoutError::BadCapacity { what: "policies", value: caps.policies });
        }
        if caps.events < 2 || caps.events > 1 << 20 {
            return Err(LayoutError::BadCapacity { what: "events", value: caps.events });
        }
        if caps.journal < 2 || caps.journal > 1 << 22 {
            return Err(LayoutError::BadCapacity { what: "journal", value: caps.journal });
        }
        let caps =
            Capacities { events: caps.events.next_power_of_two(), journal: caps.journal.next_power_of_two(), ..caps };
        // Open addressing at a load factor of at most 1/2 keeps misses short.
        let spi_index_buckets = (caps.sas * 2).next_power_of_two().max(64);
        let sa_offset = HEADER_SIZE;
        let policy_offset = page_up(sa_offset + u64::from(caps.sas) * SA_RECORD_SIZE);
        let usage_offset = page_up(policy_offset + u64::from(caps.policies) * POLICY_RECORD_SIZE);
        let spi_index_offset = page_up(usage_offset + u64::from(caps.sas) * USAGE_RECORD_SIZE);
        let journal_offset = page_up(spi_index_offset + u64::from(spi_index_buckets) * SPI_BUCKET_SIZE);
        let event_offset = page_up(journal_offset + u64::from(caps.journal) * JOURNAL_ENTRY_SIZE);
        let file_size = page_up(event_offset + u64::from(caps.events) * EVENT_RECORD_SIZE);
        Ok(Layout {
            caps,
            spi_index_buckets,
            sa_offset,
            policy_offset,
            usage_offset,
            spi_index_offset,
            journal_offset,
            event_offset,
            file_size,
        })
    }

    /// The fixed header describing this layout.
    pub fn fixed_header(&self, hash_seed: u64, created_unix: u64) -> FixedHeader {
        FixedHeader {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            header_size: HEADER_SIZE as u32,
            sa_record_size: SA_RECORD_SIZE as u32,
            policy_record_size: POLICY_RECORD_SIZE as u32,
            usage_record_size: USAGE_RECORD_SIZE as u32,
            event_record_size: EVENT_RECORD_SIZE as u32,
            journal_entry_size: JOURNAL_ENTRY_SIZE as u32,
            max_ts_per_side: MAX_TS_PER_SIDE as u32,
            sa_capacity: self.caps.sas,
            policy_capacity: self.caps.policies,
            spi_index_buckets: self.spi_index_buckets,
            journal_capacity: self.caps.journal,
            event_capacity: self.caps.events,
            _reserved: 0,
            sa_offset: self.sa_offset,
            policy_offset: self.policy_offset,
            usage_offset: self.usage_offset,
            spi_index_offset: self.spi_index_offset,
            journal_offset: self.journal_offset,
            event_offset: self.event_offset,
            file_size: self.file_size,
            hash_seed,
            created_unix,
        }
    }

    /// Checks a header read from a file against this build's layout and returns the layout it
    /// describes. `file_len` is the length of the file on disk.
    pub fn from_header(h: &FixedHeader, file_len: u64) -> Result<Layout, LayoutError> {
        if h.magic != MAGIC {
            return Err(LayoutError::BadMagic { found: h.magic });
        }
        let ours = |what: &'static str, file: u64, expected: u64| {
            if file == expected { Ok(()) } else { Err(LayoutError::Mismatch { what, file, expected }) }
        };
        ours("layout version", h.layout_version.into(), LAYOUT_VERSION.into())?;
        ours("header size", h.header_size.into(), HEADER_SIZE)?;
        ours("SA record size", h.sa_record_size.into(), SA_RECORD_SIZE)?;
        ours("policy record size", h.policy_record_size.into(), POLICY_RECORD_SIZE)?;
        ours("usage record size", h.usage_record_size.into(), USAGE_RECORD_SIZE)?;
        ours("event record size", h.event_record_size.into(), EVENT_RECORD_SIZE)?;
        ours("journal entry size", h.journal_entry_size.into(), JOURNAL_ENTRY_SIZE)?;
        ours("traffic selectors per side", h.max_ts_per_side.into(), MAX_TS_PER_SIDE as u64)?;
        let layout = Layout::for_capacities(Capacities {
            sas: h.sa_capacity,
            policies: h.policy_capacity,
            events: h.event_capacity,
            journal: h.journal_capacity,
        })?;
        ours("event capacity", h.event_capacity.into(), layout.caps.events.into())?;
        ours("journal capacity", h.journal_capacity.into(), layout.caps.journal.into())?;
        ours("SPI index buckets", h.spi_index_buckets.into(), layout.spi_index_buckets.into())?;
        ours("SA region offset", h.sa_offset, layout.sa_offset)?;
        ours("policy region offset", h.policy_offset, layout.policy_offset)?;
        ours("usage region offset", h.usage_offset, layout.usage_offset)?;
        ours("SPI index offset", h.spi_index_offset, layout.spi_index_offset)?;
        ours("journal offset", h.journal_offset, layout.journal_offset)?;
        ours("event ring offset", h.event_offset, layout.event_offset)?;
        ours("file size in header", h.file_size, layout.file_size)?;
        if file_len < layout.file_size {
            return Err(LayoutError::Truncated { file_len, expected: layout.file_size });
        }
        Ok(layout)
    }
}

/// Why a file's layout is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The file does not start with [`MAGIC`]: it is not an SA database.
    BadMagic {
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// The file was laid out by a build with another layout.
    Mismatch {
        /// What differs, in words (e.g. "layout version", "SA record size").
        what: &'static str,
        /// The value in the file.
        file: u64,
        /// The value this build uses.
        expected: u64,
    },
    /// A capacity out of range.
    BadCapacity {
        /// Which capacity.
        what: &'static str,
        /// The value asked for.
        value: u32,
    },
    /// The file is shorter than its header says.
    Truncated {
        /// Bytes on disk.
        file_len: u64,
        /// Bytes the layout needs.
        expected: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::BadMagic { found } => {
                write!(f, "not a Rampart SA database (magic {:02x?}, expected \"RMPTSADB\")", found)
            }
            LayoutError::Mismatch { what, file, expected } => write!(
                f,
                "layout mismatch: {what} is {file} in the file but {expected} in this build \
                 (the file was made by another Rampart version: stop its users and recreate it)"
            ),
            LayoutError::BadCapacity { what, value } => write!(f, "capacity of {what} out of range: {value}"),
            LayoutError::Truncated { file_len, expected } => {
                write!(f, "file is {file_len} bytes but its layout needs {expected}")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_page_aligned_disjoint_and_in_order() {
        for caps in [Capacities::small(1, 1), Capacities::small(1000, 7), Capacities::default()] {
            let l = Layout::for_capacities(caps).unwrap();
            let offs =
                [l.sa_offset, l.policy_offset, l.usage_offset, l.spi_index_offset, l.journal_offset, l.event_offset];
            for w in offs.windows(2) {
                assert!(w[0] < w[1]);
            }
            assert!(offs.iter().all(|o| o % PAGE == 0));
            assert!(l.policy_offset >= l.sa_offset + u64::from(l.caps.sas) * SA_RECORD_SIZE);
            assert!(l.file_size >= l.event_offset + u64::from(l.caps.events) * EVENT_RECORD_SIZE);
        }
    }

    #[test]
    fn header_round_trip_and_every_mismatch_is_named() {
        let l = Layout::for_capacities(Capacities::small(10, 10)).unwrap();
        let h = l.fixed_header(1, 2);
        assert_eq!(Layout::from_header(&h, l.file_size).unwrap(), l);
        let mut bad = h;
        bad.layout_version = 99;
        assert_eq!(
            Layout::from_header(&bad, l.file_size),
            Err(LayoutError::Mismatch { what: "layout version", file: 99, expected: LAYOUT_VERSION.into() })
        );
        let mut bad = h;
        bad.sa_record_size = 512;
        let e = Layout::from_header(&bad, l.file_size).unwrap_err();
        assert!(e.to_string().contains("SA record size is 512"), "{e}");
        let mut bad = h;
        bad.magic[0] = b'X';
        assert!(matches!(Layout::from_header(&bad, l.file_size), Err(LayoutError::BadMagic { .. })));
        assert!(matches!(Layout::from_header(&h, l.file_size - 1), Err(LayoutError::Truncated { .. })));
    }
}
