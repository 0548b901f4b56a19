//! Errors of the NIC layer: rich, named errors for the control path (setup, attach, map updates)
//! and one flat `Copy` enum, [`FrameError`], for the per-frame checks of the hot path.
//!
//! Nothing here may allocate on the hot path: [`FrameError`] is plain data.

use std::io;

/// A failed setup or control operation: socket creation, ring mapping, program load or attach.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed; `op` names it and what it was for.
    #[error("{op}: {source}")]
    Sys {
        /// The operation, e.g. `"setsockopt(XDP_UMEM_REG)"`.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// A system call failed and the kernel explained why (netlink extended ack).
    #[error("{op}: {source} ({detail})")]
    SysDetail {
        /// The operation.
        op: &'static str,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
        /// The kernel's explanation.
        detail: String,
    },
    /// A configuration value the kernel or this crate cannot accept.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The kernel's verifier refused the steering program.
    #[error("the kernel refused XDP program {program}: {source}; verifier log:\n{log}")]
    Verifier {
        /// Program name.
        program: &'static str,
        /// The error of `BPF_PROG_LOAD`.
        #[source]
        source: io::Error,
        /// The verifier's log (may be truncated).
        log: String,
    },
    /// The embedded BPF object is malformed or uses something the loader does not support.
    #[error("BPF object: {0}")]
    Object(String),
    /// Another XDP program that is not Rampart's is attached to the interface.
    #[error(
        "interface {ifindex} already runs XDP program id {prog_id} named {name:?}, which is not Rampart's; \
         detach it (ip link set dev <ifname> xdp off) or attach with force"
    )]
    ForeignProgram {
        /// Interface index.
        ifindex: u32,
        /// Kernel id of the program found there.
        prog_id: u32,
        /// Its name as the kernel reports it.
        name: String,
    },
    /// A Rampart program is attached through a BPF link that a live process still holds.
    #[error(
        "interface {ifindex} runs Rampart XDP program id {prog_id} through BPF link {link_id}, held by a \
         running process; stop that process or attach with force"
    )]
    InUse {
        /// Interface index.
        ifindex: u32,
        /// Kernel id of the program.
        prog_id: u32,
        /// Kernel id of the link holding it.
        link_id: u32,
    },
    /// The operation needs a program of the other role (e.g. prefixes on a WAN program).
    #[error("{0}")]
    WrongRole(&'static str),
}

impl Error {
    /// Wraps the current `errno` as [`Error::Sys`].
    pub(crate) fn last_os(op: &'static str) -> Self {
        Error::Sys { op, source: io::Error::last_os_error() }
    }

    /// Wraps an [`io::Error`] as [`Error::Sys`].
    pub(crate) fn sys(op: &'static str, source: io::Error) -> Self {
        Error::Sys { op, source }
    }

    /// The OS error code, if this is a failed system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Sys { source, .. } | Error::SysDetail { source, .. } | Error::Verifier { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// Result alias of the control path.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a frame operation on the hot path was refused. Each variant is one counter's worth of
/// meaning; none of them carries data, so returning one never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum FrameError {
    /// The address lies outside the UMEM.
    #[error("frame address outside the UMEM")]
    OutOfRange,
    /// `addr + len` runs past the end of the frame (chunk) that `addr` lies in.
    #[error("descriptor crosses its frame boundary")]
    CrossesFrame,
    /// Two descriptors of one burst point into the same frame.
    #[error("two descriptors share one frame")]
    Overlap,
    /// The frame is already on the free list.
    #[error("frame freed twice")]
    DoubleFree,
    /// Not enough headroom or tailroom in the frame for the requested adjustment.
    #[error("no room left in the frame")]
    NoRoom,
}
