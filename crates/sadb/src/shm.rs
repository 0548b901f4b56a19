//! The mapping of the database file and typed views of its regions.
//!
//! This is the only module that turns raw pointers into references. Every shared word is an
//! atomic (`AtomicU64`), so that no access from any process is a data race in Rust's memory
//! model; the fixed header is read with `pread` before mapping and never written again.
//! This module must never write a record by itself: that is the writer's job, under the
//! seqlock.

use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use memmap2::{MmapOptions, MmapRaw};
use zerocopy::{FromBytes, IntoBytes};

use crate::error::OpenError;
use crate::layout::{
    CONTROL_OFFSET, Capacities, EVENT_RECORD_SIZE, FixedHeader, HEADER_SIZE, JOURNAL_ENTRY_SIZE, Layout,
    POLICY_RECORD_SIZE, SA_RECORD_SIZE, SPI_BUCKET_SIZE, USAGE_RECORD_SIZE,
};

/// Words of an SA slot: word 0 is the seqlock version, words 1.. the record body.
pub(crate) const SA_WORDS: usize = (SA_RECORD_SIZE / 8) as usize;
/// Words of a policy slot: word 0 is the seqlock version.
pub(crate) const POLICY_WORDS: usize = (POLICY_RECORD_SIZE / 8) as usize;
/// Words of the staging buffer (large enough for either record).
pub(crate) const STAGING_WORDS: usize = SA_WORDS;

/// One SA record in shared memory, under its seqlock.
#[repr(C, align(64))]
pub(crate) struct SaSlot {
    pub words: [AtomicU64; SA_WORDS],
}

/// One policy record in shared memory, under its seqlock.
#[repr(C, align(64))]
pub(crate) struct PolicySlot {
    pub words: [AtomicU64; POLICY_WORDS],
}

/// Per-SA usage, written by the data plane (see `usage.rs`).
#[repr(C, align(64))]
pub(crate) struct UsageSlot {
    /// Incarnation of the SA these counters belong to (written by the writer at install).
    pub incarnation: AtomicU64,
    pub bytes: AtomicU64,
    pub packets: AtomicU64,
    /// The database's seconds of the last use.
    pub last_use: AtomicU64,
    /// Outbound: highest sequence number reserved by any data plane, ever, for this SA.
    pub seq_reserved: AtomicU64,
    /// Highest sequence number used (outbound: sent; inbound: authenticated).
    pub seq_used: AtomicU64,
    /// Events already raised for this SA (`usage::flag`).
    pub flags: AtomicU64,
    pub _spare: AtomicU64,
}

/// One entry of the change journal: seqlock version, then absolute position and what changed.
#[repr(C)]
pub(crate) struct JournalSlot {
    pub words: [AtomicU64; 4],
}

/// One slot of the event ring: word 0 is the ring sequence, words 1.. the event.
#[repr(C, align(64))]
pub(crate) struct EventSlot {
    pub words: [AtomicU64; (EVENT_RECORD_SIZE / 8) as usize],
}

/// The writer's control block and the ring indices, inside the header page.
#[repr(C, align(64))]
pub(crate) struct Control {
    /// Bumped after every committed update.
    pub generation: AtomicU64,
    /// Pid of the last writer that attached (informational; the lock is the flock).
    pub writer_pid: AtomicU64,
    /// Number of writer attaches over the file's life.
    pub writer_epoch: AtomicU64,
    /// Next policy index (insertion order of policies).
    pub next_policy_index: AtomicU64,
    /// One past the highest SA slot ever used: readers scan below it.
    pub sa_high_water: AtomicU64,
    /// One past the highest policy slot ever used.
    pub policy_high_water: AtomicU64,
    /// Absolute position of the next journal entry.
    pub journal_head: AtomicU64,
    /// Records repaired by writers after a crash, over the file's life.
    pub repaired: AtomicU64,
    /// Redo intent: 0 = none, else `kind << 32 | slot` of the record being written.
    pub intent: AtomicU64,
    /// Checksum of the staging buffer for the intent.
    pub staging_checksum: AtomicU64,
    _pad1: [AtomicU64; 6],
    /// Event ring: next position producers claim.
    pub ev_tail: AtomicU64,
    _pad2: [AtomicU64; 7],
    /// Event ring: next position the consumer reads.
    pub ev_head: AtomicU64,
    _pad3: [AtomicU64; 7],
    /// Events not pushed because the ring was full.
    pub ev_dropped: AtomicU64,
    /// Events lost to a producer that died (or stalled) in the middle of a push.
    pub ev_lost: AtomicU64,
    _pad4: [AtomicU64; 6],
    /// Copy of the record being written, for roll-forward after a writer crash.
    pub staging: [AtomicU64; STAGING_WORDS],
}

const _: () = assert!(core::mem::size_of::<SaSlot>() as u64 == SA_RECORD_SIZE);
const _: () = assert!(core::mem::size_of::<PolicySlot>() as u64 == POLICY_RECORD_SIZE);
const _: () = assert!(core::mem::size_of::<UsageSlot>() as u64 == USAGE_RECORD_SIZE);
const _: () = assert!(core::mem::size_of::<JournalSlot>() as u64 == JOURNAL_ENTRY_SIZE);
const _: () = assert!(core::mem::size_of::<EventSlot>() as u64 == EVENT_RECORD_SIZE);
const _: () = assert!(core::mem::size_of::<AtomicU64>() as u64 == SPI_BUCKET_SIZE);
const _: () = assert!(CONTROL_OFFSET + core::mem::size_of::<Control>() as u64 <= HEADER_SIZE);
const _: () = assert!(CONTROL_OFFSET.is_multiple_of(64));

/// A mapped database file.
pub(crate) struct Db {
    map: MmapRaw,
    file: File,
    layout: Layout,
    hash_seed: u64,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).field("caps", &self.layout.caps).finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> OpenError + '_ {
    move |source| OpenError::Io { path: path.to_path_buf(), source }
}

/// Refuses a file its filesystem has no room for (see [`OpenError::NoRoom`]).
fn check_room(path: &Path, need: u64) -> Result<(), OpenError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let st = rustix::fs::statvfs(dir).map_err(|e| OpenError::Io { path: path.into(), source: e.into() })?;
    let available = st.f_bavail.saturating_mul(st.f_frsize);
    if available < need {
        return Err(OpenError::NoRoom { path: path.into(), need, available });
    }
    Ok(())
}

impl Db {
    /// Creates a database file at `path`; fails with `AlreadyExists` if there is one. The file
    /// is built under a temporary name and linked into place, so that nobody ever attaches to
    /// a half-initialised file.
    pub fn create_new(path: &Path, caps: Capacities) -> Result<Db, OpenError> {
        let layout = Layout::for_capacities(caps).map_err(|error| OpenError::Layout { path: path.into(), error })?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let seed = std::collections::hash_map::RandomState::new().hash_one((std::process::id(), now.as_nanos()));
        let header = layout.fixed_header(seed, now.as_secs());
        check_room(path, layout.file_size)?;
        let file_name = path.file_name().ok_or_else(|| OpenError::Io {
            path: path.into(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        })?;
        let mut tmp_name = file_name.to_os_string();
        tmp_name.push(format!(".{}.{}.tmp", std::process::id(), now.as_nanos()));
        let tmp = path.with_file_name(tmp_name);
        let result = (|| {
            let f = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.set_len(layout.file_size)?;
            f.write_all_at(header.as_bytes(), 0)?;
            std::fs::hard_link(&tmp, path)
        })();
        let _ = std::fs::remove_file(&tmp);
        result.map_err(io_err(path))?;
        Db::attach(path)
    }

    /// Maps an existing database file after checking its layout.
    pub fn attach(path: &Path) -> Result<Db, OpenError> {
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                OpenError::NotFound { path: path.into() }
            } else {
                OpenError::Io { path: path.into(), source }
            }
        })?;
        let len = file.metadata().map_err(io_err(path))?.len();
        let mut raw = [0u8; core::mem::size_of::<FixedHeader>()];
        if len < HEADER_SIZE {
            return Err(OpenError::Layout {
                path: path.into(),
                error: crate::layout::LayoutError::Truncated { file_len: len, expected: HEADER_SIZE },
            });
        }
        file.read_exact_at(&mut raw, 0).map_err(io_err(path))?;
        let header = FixedHeader::read_from_bytes(&raw).expect("buffer has the header's size");
        let layout =
            Layout::from_header(&header, len).map_err(|error| OpenError::Layout { path: path.into(), error })?;
        let map = MmapOptions::new().len(layout.file_size as usize).map_raw(&file).map_err(io_err(path))?;
        Ok(Db { map, file, layout, hash_seed: header.hash_seed, path: path.into() })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn caps(&self) -> Capacities {
        self.layout.caps
    }

    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    fn region<T>(&self, offset: u64, count: u64) -> &[T] {
        debug_assert!(offset + count * core::mem::size_of::<T>() as u64 <= self.layout.file_size);
        debug_assert_eq!(offset as usize % core::mem::align_of::<T>(), 0);
        // Safety: the mapping is `layout.file_size` bytes long (checked against the file's
        // length at attach, and the mapping lives as long as `self`); `Layout` places every
        // region inside it, page-aligned, so the pointer is aligned for `T` (align <= 64).
        // `T` is made of atomics only, so shared references to memory that other threads and
        // processes modify concurrently are sound, and zeroed bytes are a valid `T`.
        unsafe { core::slice::from_raw_parts(self.map.as_ptr().add(offset as usize).cast::<T>(), count as usize) }
    }

    pub fn control(&self) -> &Control {
        &self.region::<Control>(CONTROL_OFFSET, 1)[0]
    }

    pub fn sa_slots(&self) -> &[SaSlot] {
        self.region(self.layout.sa_offset, self.layout.caps.sas.into())
    }

    pub fn policy_slots(&self) -> &[PolicySlot] {
        self.region(self.layout.policy_offset, self.layout.caps.policies.into())
    }

    pub fn usage_slots(&self) -> &[UsageSlot] {
        self.region(self.layout.usage_offset, self.layout.caps.sas.into())
    }

    pub fn spi_buckets(&self) -> &[AtomicU64] {
        self.region(self.layout.spi_index_offset, self.layout.spi_index_buckets.into())
    }

    pub fn journal(&self) -> &[JournalSlot] {
        self.region(self.layout.journal_offset, self.layout.caps.journal.into())
    }

    pub fn events(&self) -> &[EventSlot] {
        self.region(self.layout.event_offset, self.layout.caps.events.into())
    }
}
