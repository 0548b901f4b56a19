//! Rampart's SA database: the shared-memory seam between the IKE daemon (the one writer) and
//! the data-plane workers (the readers). Either side can die and come back without the other
//! losing a packet: installed SAs stay in the file, a writer that died mid-update is repaired
//! by the next one, and a data plane that restarts resumes its sequence numbers above every
//! number it may have sent.
//!
//! # Who uses what
//!
//! * IKE daemon: [`Writer`] (`create` / `open` / `open_or_create`), then `install_sa`,
//!   `delete_sa`, `add_policy`, `set_policy_sa` (make-before-break switch of a policy's
//!   outbound SA), `bind_matching_policies`, `usage`, `pop_event`.
//! * Data plane: [`Reader::attach`]; poll [`Reader::generation`] between bursts; when it moved,
//!   [`Reader::refresh`] a [`Snapshot`], re-read the changed SAs with [`Reader::read_sa`]
//!   (keys included, zeroized on drop; [`SaRecord::to_config`] gives the
//!   [`rampart_sa::SaConfig`]), and compile a new [`SaIndex`] and [`SpdLookup`] to swap in.
//!   Per burst: [`Reader::account`], [`OutboundSeq::reserve`], [`Reader::check_lifetimes`],
//!   [`Reader::push_event`] (acquire).
//!
//! # File layout (layout version [`LAYOUT_VERSION`])
//!
//! ```text
//!  offset 0      +--------------------------------------------------------------+
//!                | fixed header (136 B): magic "RMPTSADB", layout version,      |
//!                |   record sizes, capacities, region offsets, file size, seed  |
//!  256           | control block (atomics):                                     |
//!                |   generation, writer pid/epoch, next policy index,           |
//!                |   SA/policy high-water marks, journal head, repair count     |
//!                |   redo intent + staging checksum                             |
//!                |   event ring tail | head | dropped, lost (own cache lines)   |
//!                |   staging copy of the record being written (1 KiB)           |
//!  4096          +--------------------------------------------------------------+
//!  sa_offset     | SA slots: capacity x 1024 B, each `[version | SaRecord]`     |
//!                |   line 0 ids, suite, flags   line 1 outer addresses          |
//!                |   line 2 lifetimes   lines 3-4 keys   lines 5-14 selectors   |
//!                +--------------------------------------------------------------+
//!  policy_offset | policy slots: capacity x 256 B, each `[version | record]`    |
//!                +--------------------------------------------------------------+
//!  usage_offset  | usage: capacity x 64 B (one line per SA slot): incarnation,  |
//!                |   bytes, packets, last use, seq reserved, seq used, flags    |
//!                +--------------------------------------------------------------+
//!  spi_index_off | SPI index: 2 x capacity (power of two) x 8 B buckets         |
//!                |   `spi << 32 | slot + 1`, 0 empty, all-ones deleted          |
//!                +--------------------------------------------------------------+
//!  journal_off   | change journal: ring of 32 B `[version | position | kind,slot]`|
//!                +--------------------------------------------------------------+
//!  event_offset  | event ring: power-of-two x 128 B `[sequence | event | sum]`  |
//!  file_size     +--------------------------------------------------------------+
//! ```
//!
//! Every region starts on a page; every shared word is a 64-bit atomic. Records are guarded
//! by seqlocks ([`seqlock`]); the writer stages each record in the header before writing it,
//! so that the next writer can roll an interrupted write forward. The file is created sparse
//! (`ftruncate`): untouched slots cost no memory.

pub mod clock;
pub mod compiled;
mod error;
pub mod events;
mod hash;
mod journal;
pub mod layout;
pub mod policy;
mod reader;
pub mod record;
pub mod seqlock;
mod shm;
mod spi_index;
pub mod usage;
mod writer;

pub use compiled::{FlowV4, FlowV6, SaIndex, SpdAction, SpdLookup, SpdMatch, SpdRule};
pub use error::{OpenError, ReadError, RecordError, WriteError};
pub use events::{Event, Flow, LimitKind, RingFull};
pub use layout::{Capacities, LAYOUT_VERSION, LayoutError, MAX_TS_PER_SIDE};
pub use policy::{IpPrefix, Policy, PolicyAction, PolicyDir, PolicyId, PolicyInfo, PortRange, Selector, Template};
pub use reader::{Changes, Reader, Snapshot};
pub use record::{SaId, SaMeta, SaRecord};
pub use usage::{Expiry, OutboundSeq, SEQ_BLOCK, SeqError, UsageCounters};
#[cfg(feature = "test-hooks")]
pub use writer::StopAt;
pub use writer::{EventStats, RepairReport, Writer};

/// Default path of the database file.
pub const DEFAULT_PATH: &str = "/dev/shm/rampart.sadb";
