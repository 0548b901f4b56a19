//! Errors of the control path: opening a database, converting records, writing.
//!
//! The data path never sees these: its outcomes are plain `Option`s and small `Copy` enums.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::layout::LayoutError;

/// Why a database file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A system call failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// There is no database file at the path.
    #[error("{}: no SA database here", path.display())]
    NotFound {
        /// The database file.
        path: PathBuf,
    },
    /// The file was laid out by another build (or is not an SA database).
    #[error("{}: {error}", path.display())]
    Layout {
        /// The database file.
        path: PathBuf,
        /// What differs.
        error: LayoutError,
    },
    /// The filesystem has no room for the file. It is sparse, but every page of it may be
    /// written: on a full tmpfs that write is a SIGBUS in the writer, not an error, so creation
    /// asks for the whole size up front.
    #[error(
        "{}: the SA database needs {need} bytes and its filesystem has {available} free; free space there (a tmpfs such as /dev/shm can be remounted larger) or lower the capacities (sa_capacity, policy_capacity)",
        path.display()
    )]
    NoRoom {
        /// The database file.
        path: PathBuf,
        /// The file's size.
        need: u64,
        /// Bytes free for unprivileged use on its filesystem.
        available: u64,
    },
    /// Another process holds the writer lock.
    #[error("{}: another writer holds the database (pid {pid}); there is one writer at a time", path.display())]
    WriterBusy {
        /// The database file.
        path: PathBuf,
        /// Pid of the writer that attached last.
        pid: u64,
    },
}

/// Why an SA configuration does not fit a record, or a record does not make a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// More traffic selectors on one side than a record holds.
    #[error("{side} side has {count} traffic selectors; a record holds at most {max}")]
    TooManySelectors {
        /// "local" or "remote".
        side: &'static str,
        /// Selectors given.
        count: usize,
        /// Selectors a record holds.
        max: usize,
    },
    /// A key of the wrong length for the suite.
    #[error("{which} key is {got} bytes; {suite} needs {expected}")]
    KeyLength {
        /// "encryption" or "integrity".
        which: &'static str,
        /// The suite's name.
        suite: String,
        /// Bytes the suite needs.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Local and remote outer addresses of different families.
    #[error("outer addresses {local} and {remote} are of different families")]
    MixedFamilies {
        /// Local outer address.
        local: IpAddr,
        /// Remote outer address.
        remote: IpAddr,
    },
    /// A traffic selector whose start and end are of different families, or start > end.
    #[error("traffic selector {start}-{end} is not a range of one family")]
    BadSelector {
        /// First address.
        start: IpAddr,
        /// Last address.
        end: IpAddr,
    },
    /// Replay window larger than the data plane supports.
    #[error("replay window {got} is larger than {max}")]
    ReplayWindow {
        /// Window asked for.
        got: u32,
        /// Largest window.
        max: u32,
    },
    /// A field of a record read back holds a value no writer writes.
    #[error("record field {field} holds {value}, which no writer writes")]
    Corrupt {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// The suite stored in the record is refused by the algorithm policy.
    #[error("suite in record: {0}")]
    Suite(#[from] rampart_sa::PolicyError),
    /// A prefix length beyond the address family's width.
    #[error("prefix length {len} is too long for {addr}")]
    PrefixLength {
        /// The address.
        addr: IpAddr,
        /// The prefix length given.
        len: u8,
    },
    /// Policy source and destination of different families, or a template of another family.
    #[error("policy mixes IPv4 and IPv6 ({0})")]
    PolicyFamilies(&'static str),
    /// A port range whose start is after its end.
    #[error("port range {lo}-{hi} is empty")]
    PortRange {
        /// First port.
        lo: u16,
        /// Last port.
        hi: u16,
    },
}

/// Why a write was refused. Nothing was changed when one of these comes back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The configuration does not fit a record.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Every slot of the kind is in use.
    #[error("database is full: all {capacity} {what} slots are in use")]
    Full {
        /// "SA" or "policy".
        what: &'static str,
        /// Slots in the file.
        capacity: u32,
    },
    /// An SA with this SPI and destination exists already.
    #[error("an SA with SPI {spi:#010x} and destination {dst} exists already")]
    SpiInUse {
        /// The SPI.
        spi: u32,
        /// The destination (outer) address.
        dst: IpAddr,
    },
    /// The SA named is not installed (deleted, or its slot reused).
    #[error("no such SA")]
    NoSuchSa,
    /// The policy named is not installed.
    #[error("no such policy")]
    NoSuchPolicy,
    /// The SA cannot serve the policy (wrong direction).
    #[error("SA {spi:#010x} is inbound: a policy sends through an outbound SA")]
    NotOutbound {
        /// The SA's SPI.
        spi: u32,
    },
}

/// Why a record could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The slot number is beyond the file's capacity.
    #[error("slot out of range")]
    OutOfRange,
    /// The slot holds no record.
    #[error("slot is free")]
    Free,
    /// The slot holds another incarnation than the one asked for (the SA was deleted and the
    /// slot reused).
    #[error("slot holds another SA now")]
    Replaced,
    /// A write is in progress, or a writer died in the middle of one (the next writer
    /// repairs it when it attaches). Try again later.
    #[error("record is being written")]
    Busy,
    /// The record holds values no writer writes (the file was damaged from outside).
    #[error("record is corrupt")]
    Corrupt,
}
