//! Kernel ABI for AF_XDP, bpf(2) and rtnetlink: constants and `#[repr(C)]` structs, spelled out
//! here (checked against `linux/if_xdp.h`, `linux/bpf.h`, `linux/if_link.h`) so that the crate does
//! not depend on which of them a given `libc` release happens to carry.
//!
//! This module only declares layouts; it must never perform a system call or hold state.

#![allow(dead_code)]

use std::mem::size_of;

// ---------------------------------------------------------------------------------------------
// AF_XDP (linux/if_xdp.h)
// ---------------------------------------------------------------------------------------------

/// Address family of XDP sockets.
pub const AF_XDP: libc::c_int = 44;
/// Socket option level of XDP sockets.
pub const SOL_XDP: libc::c_int = 283;

pub const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub const XDP_RX_RING: libc::c_int = 2;
pub const XDP_TX_RING: libc::c_int = 3;
pub const XDP_UMEM_REG: libc::c_int = 4;
pub const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub const XDP_STATISTICS: libc::c_int = 7;
pub const XDP_OPTIONS: libc::c_int = 8;

/// `xdp_options.flags`: the socket is bound in zero-copy mode.
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1 << 0;

pub const XDP_SHARED_UMEM: u16 = 1 << 0;
pub const XDP_COPY: u16 = 1 << 1;
pub const XDP_ZEROCOPY: u16 = 1 << 2;
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;

/// Ring flag: the kernel wants a system call to make progress on this ring.
pub const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

pub const XDP_PGOFF_RX_RING: libc::off_t = 0;
pub const XDP_PGOFF_TX_RING: libc::off_t = 0x8000_0000;
pub const XDP_UMEM_PGOFF_FILL_RING: libc::off_t = 0x1_0000_0000;
pub const XDP_UMEM_PGOFF_COMPLETION_RING: libc::off_t = 0x1_8000_0000;

/// Headroom the kernel always leaves in front of received data in an aligned-mode chunk
/// (`XDP_PACKET_HEADROOM`), on top of the UMEM's configured headroom.
pub const XDP_PACKET_HEADROOM: u32 = 256;

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SockaddrXdp {
    pub sxdp_family: u16,
    pub sxdp_flags: u16,
    pub sxdp_ifindex: u32,
    pub sxdp_queue_id: u32,
    pub sxdp_shared_umem_fd: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpUmemReg {
    pub addr: u64,
    pub len: u64,
    pub chunk_size: u32,
    pub headroom: u32,
    pub flags: u32,
    pub tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpRingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpMmapOffsets {
    pub rx: XdpRingOffset,
    pub tx: XdpRingOffset,
    pub fr: XdpRingOffset,
    pub cr: XdpRingOffset,
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpStatisticsRaw {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

const _: () = assert!(size_of::<SockaddrXdp>() == 16);
const _: () = assert!(size_of::<XdpUmemReg>() == 32);
const _: () = assert!(size_of::<XdpMmapOffsets>() == 128);
const _: () = assert!(size_of::<XdpStatisticsRaw>() == 48);

// Busy-poll socket options (asm-generic/socket.h).
pub const SO_BUSY_POLL: libc::c_int = 46;
pub const SO_PREFER_BUSY_POLL: libc::c_int = 69;
pub const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

// ---------------------------------------------------------------------------------------------
// bpf(2) (linux/bpf.h)
// ---------------------------------------------------------------------------------------------

pub const BPF_MAP_CREATE: libc::c_int = 0;
pub const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
pub const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
pub const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
pub const BPF_PROG_LOAD: libc::c_int = 5;
pub const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
pub const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
pub const BPF_LINK_CREATE: libc::c_int = 28;
pub const BPF_LINK_GET_FD_BY_ID: libc::c_int = 30;
pub const BPF_LINK_GET_NEXT_ID: libc::c_int = 31;
pub const BPF_LINK_DETACH: libc::c_int = 34;

pub const BPF_MAP_TYPE_HASH: u32 = 1;
pub const BPF_MAP_TYPE_ARRAY: u32 = 2;
pub const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
pub const BPF_MAP_TYPE_LPM_TRIE: u32 = 11;
pub const BPF_MAP_TYPE_XSKMAP: u32 = 17;

pub const BPF_F_NO_PREALLOC: u32 = 1;
pub const BPF_ANY: u64 = 0;

pub const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type` value for XDP.
pub const BPF_XDP: u32 = 37;
/// `enum bpf_link_type` value for XDP links.
pub const BPF_LINK_TYPE_XDP: u32 = 6;
/// `src_reg` of a `ld_imm64` whose immediate is a map file descriptor.
pub const BPF_PSEUDO_MAP_FD: u8 = 1;
/// Longest object name the kernel keeps, NUL included.
pub const BPF_OBJ_NAME_LEN: usize = 16;

/// Offsets inside `struct bpf_prog_info`.
pub const PROG_INFO_ID: usize = 4;
pub const PROG_INFO_NAME: usize = 64;
pub const PROG_INFO_SIZE: usize = 232;
/// Offsets inside `struct bpf_link_info`.
pub const LINK_INFO_TYPE: usize = 0;
pub const LINK_INFO_ID: usize = 4;
pub const LINK_INFO_PROG_ID: usize = 8;
pub const LINK_INFO_XDP_IFINDEX: usize = 16;
pub const LINK_INFO_SIZE: usize = 48;

// ---------------------------------------------------------------------------------------------
// rtnetlink (linux/rtnetlink.h, linux/if_link.h)
// ---------------------------------------------------------------------------------------------

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_ACK: u16 = 4;
pub const NLA_F_NESTED: u16 = 1 << 15;

pub const IFLA_XDP: u16 = 43;
pub const IFLA_XDP_FD: u16 = 1;
pub const IFLA_XDP_ATTACHED: u16 = 2;
pub const IFLA_XDP_FLAGS: u16 = 3;
pub const IFLA_XDP_PROG_ID: u16 = 4;
pub const IFLA_XDP_DRV_PROG_ID: u16 = 5;
pub const IFLA_XDP_SKB_PROG_ID: u16 = 6;
pub const IFLA_XDP_HW_PROG_ID: u16 = 7;
pub const IFLA_XDP_EXPECTED_FD: u16 = 8;

pub const XDP_ATTACHED_NONE: u8 = 0;
pub const XDP_ATTACHED_DRV: u8 = 1;
pub const XDP_ATTACHED_SKB: u8 = 2;
pub const XDP_ATTACHED_HW: u8 = 3;
pub const XDP_ATTACHED_MULTI: u8 = 4;

pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1 << 0;
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
pub const XDP_FLAGS_HW_MODE: u32 = 1 << 3;
pub const XDP_FLAGS_REPLACE: u32 = 1 << 4;
