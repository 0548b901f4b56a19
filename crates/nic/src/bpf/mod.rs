//! A small eBPF loader over the raw `bpf(2)` system call: map creation and updates, program
//! load with the verifier log, BPF links for XDP, and the object/link queries used to find and
//! replace a program left behind by an older Rampart.
//!
//! Together with [`elf`] this replaces libbpf for the one object Rampart ships: the maps are
//! created from the object's `maps` section, every `ld_imm64` that names a map gets the map's fd
//! (`BPF_PSEUDO_MAP_FD`), and the program is loaded. Everything here is control path; nothing is
//! called per packet. This module must never hold a file descriptor it does not own.

pub mod elf;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::error::{Error, Result};
use crate::sys;

/// The steering object build.rs compiled from `bpf/steer.bpf.c`.
pub static STEER_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

/// `union bpf_attr`, as raw bytes written at the kernel's offsets.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }
    fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn name(&mut self, off: usize, name: &str) -> &mut Self {
        let n = name.len().min(sys::BPF_OBJ_NAME_LEN - 1);
        self.0[off..off + n].copy_from_slice(&name.as_bytes()[..n]);
        self
    }
    fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes([self.0[off], self.0[off + 1], self.0[off + 2], self.0[off + 3]])
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // Safety: `attr` is a live 128-byte `union bpf_attr`; every pointer the callers store in it
    // points to memory that outlives this call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len() as libc::c_uint) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn bpf_fd(cmd: libc::c_int, attr: &mut Attr) -> io::Result<OwnedFd> {
    let r = bpf(cmd, attr)?;
    // Safety: these commands return a new file descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// A BPF map: its fd and its key and value sizes, checked on every access.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    name: String,
    map_type: u32,
    key_size: u32,
    value_size: u32,
}

impl Map {
    /// Creates a map.
    pub fn create(
        name: &str,
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        flags: u32,
    ) -> Result<Map> {
        let mut a = Attr::new();
        a.u32(0, map_type).u32(4, key_size).u32(8, value_size).u32(12, max_entries).u32(16, flags).name(28, name);
        let fd = bpf_fd(sys::BPF_MAP_CREATE, &mut a).map_err(|e| Error::sys("bpf(BPF_MAP_CREATE)", e))?;
        Ok(Map { fd, name: name.to_string(), map_type, key_size, value_size })
    }

    /// Map name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `enum bpf_map_type`.
    pub fn map_type(&self) -> u32 {
        self.map_type
    }

    fn check(&self, key: &[u8], value: Option<usize>) -> Result<()> {
        if key.len() != self.key_size as usize {
            return Err(Error::Config(format!(
                "map {}: key of {} bytes, expected {}",
                self.name,
                key.len(),
                self.key_size
            )));
        }
        if let Some(v) = value
            && v != self.value_size as usize
            && self.map_type != sys::BPF_MAP_TYPE_PERCPU_ARRAY
        {
            return Err(Error::Config(format!("map {}: value of {v} bytes, expected {}", self.name, self.value_size)));
        }
        Ok(())
    }

    /// Inserts or replaces `key`.
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check(key, Some(value.len()))?;
        let mut a = Attr::new();
        a.u32(0, self.fd.as_raw_fd() as u32)
            .u64(8, key.as_ptr() as u64)
            .u64(16, value.as_ptr() as u64)
            .u64(24, sys::BPF_ANY);
        bpf(sys::BPF_MAP_UPDATE_ELEM, &mut a).map(drop).map_err(|e| Error::sys("bpf(BPF_MAP_UPDATE_ELEM)", e))
    }

    /// Deletes `key`; returns whether it was there.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check(key, None)?;
        let mut a = Attr::new();
        a.u32(0, self.fd.as_raw_fd() as u32).u64(8, key.as_ptr() as u64);
        match bpf(sys::BPF_MAP_DELETE_ELEM, &mut a) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::sys("bpf(BPF_MAP_DELETE_ELEM)", e)),
        }
    }

    /// Looks `key` up into `value` (for per-CPU maps: one 8-byte-aligned slot per possible CPU);
    /// returns whether it was there.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> Result<bool> {
        self.check(key, Some(value.len()))?;
        let mut a = Attr::new();
        a.u32(0, self.fd.as_raw_fd() as u32).u64(8, key.as_ptr() as u64).u64(16, value.as_mut_ptr() as u64);
        match bpf(sys::BPF_MAP_LOOKUP_ELEM, &mut a) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::sys("bpf(BPF_MAP_LOOKUP_ELEM)", e)),
        }
    }

    /// The map's fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

/// Loads an XDP program; on a verifier refusal the error carries the verifier's log.
pub fn load_xdp_program(name: &'static str, insns: &[u64], license: &str) -> Result<OwnedFd> {
    let license = std::ffi::CString::new(license).map_err(|_| Error::Object("license contains NUL".into()))?;
    let mut log = vec![0u8; 1 << 20];
    let attempt = |log_level: u32, log: &mut [u8]| {
        let mut a = Attr::new();
        a.u32(0, sys::BPF_PROG_TYPE_XDP)
            .u32(4, insns.len() as u32)
            .u64(8, insns.as_ptr() as u64)
            .u64(16, license.as_ptr() as u64)
            .name(48, name)
            .u32(68, sys::BPF_XDP);
        if log_level > 0 {
            a.u32(24, log_level).u32(28, log.len() as u32).u64(32, log.as_mut_ptr() as u64);
        }
        bpf_fd(sys::BPF_PROG_LOAD, &mut a)
    };
    // Load without a log first (the common case, and the log costs the verifier time); on failure
    // load again with the log to explain why.
    match attempt(0, &mut log) {
        Ok(fd) => Ok(fd),
        Err(_) => match attempt(1, &mut log) {
            Ok(fd) => Ok(fd),
            Err(source) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                // The tail says why; keep it readable.
                let tail: String =
                    text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                Err(Error::Verifier { program: name, source, log: tail })
            }
        },
    }
}

/// Identity of a loaded program as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    /// Kernel-wide program id.
    pub id: u32,
    /// Program name (at most 15 bytes).
    pub name: String,
}

/// Identity of a BPF link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// `enum bpf_link_type`.
    pub link_type: u32,
    /// Kernel-wide link id.
    pub id: u32,
    /// Id of the program it holds.
    pub prog_id: u32,
    /// For XDP links: the interface (in the link's network namespace).
    pub ifindex: u32,
}

fn obj_info(fd: RawFd, buf: &mut [u8], op: &'static str) -> Result<()> {
    let mut a = Attr::new();
    a.u32(0, fd as u32).u32(4, buf.len() as u32).u64(8, buf.as_mut_ptr() as u64);
    bpf(sys::BPF_OBJ_GET_INFO_BY_FD, &mut a).map(drop).map_err(|e| Error::sys(op, e))
}

/// Reads id and name of the program behind `fd`.
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo> {
    let mut buf = [0u8; sys::PROG_INFO_SIZE];
    obj_info(fd.as_raw_fd(), &mut buf, "bpf(BPF_OBJ_GET_INFO_BY_FD, prog)")?;
    let id = u32::from_ne_bytes(buf[sys::PROG_INFO_ID..sys::PROG_INFO_ID + 4].try_into().unwrap_or([0; 4]));
    let raw = &buf[sys::PROG_INFO_NAME..sys::PROG_INFO_NAME + sys::BPF_OBJ_NAME_LEN];
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Ok(ProgInfo { id, name: String::from_utf8_lossy(&raw[..end]).into_owned() })
}

/// Opens the program with kernel id `id`.
pub fn prog_fd_by_id(id: u32) -> Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, id);
    bpf_fd(sys::BPF_PROG_GET_FD_BY_ID, &mut a).map_err(|e| Error::sys("bpf(BPF_PROG_GET_FD_BY_ID)", e))
}

/// Attaches `prog` to `ifindex` (in the calling thread's network namespace) through a BPF link;
/// closing the returned fd detaches it, also when the process dies.
pub fn link_create_xdp(prog: BorrowedFd<'_>, ifindex: u32, flags: u32) -> Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, prog.as_raw_fd() as u32).u32(4, ifindex).u32(8, sys::BPF_XDP).u32(12, flags);
    bpf_fd(sys::BPF_LINK_CREATE, &mut a).map_err(|e| Error::sys("bpf(BPF_LINK_CREATE, XDP)", e))
}

/// Reads the identity of the link behind `fd`.
pub fn link_info(fd: BorrowedFd<'_>) -> Result<LinkInfo> {
    let mut buf = [0u8; sys::LINK_INFO_SIZE];
    obj_info(fd.as_raw_fd(), &mut buf, "bpf(BPF_OBJ_GET_INFO_BY_FD, link)")?;
    let at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap_or([0; 4]));
    Ok(LinkInfo {
        link_type: at(sys::LINK_INFO_TYPE),
        id: at(sys::LINK_INFO_ID),
        prog_id: at(sys::LINK_INFO_PROG_ID),
        ifindex: at(sys::LINK_INFO_XDP_IFINDEX),
    })
}

/// Finds the XDP link that holds program `prog_id`, if any, and opens it.
pub fn find_xdp_link_of_prog(prog_id: u32) -> Result<Option<(OwnedFd, LinkInfo)>> {
    let mut id = 0u32;
    loop {
        let mut a = Attr::new();
        a.u32(0, id);
        match bpf(sys::BPF_LINK_GET_NEXT_ID, &mut a) {
            Ok(_) => id = a.get_u32(4),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(Error::sys("bpf(BPF_LINK_GET_NEXT_ID)", e)),
        }
        let mut a = Attr::new();
        a.u32(0, id);
        let fd = match bpf_fd(sys::BPF_LINK_GET_FD_BY_ID, &mut a) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue, // went away meanwhile
            Err(e) => return Err(Error::sys("bpf(BPF_LINK_GET_FD_BY_ID)", e)),
        };
        let info = link_info(fd_borrow(&fd))?;
        if info.link_type == sys::BPF_LINK_TYPE_XDP && info.prog_id == prog_id {
            return Ok(Some((fd, info)));
        }
    }
}

/// Forcibly detaches a link (whoever holds it keeps a defunct link fd).
pub fn link_detach(link: BorrowedFd<'_>) -> Result<()> {
    let mut a = Attr::new();
    a.u32(0, link.as_raw_fd() as u32);
    bpf(sys::BPF_LINK_DETACH, &mut a).map(drop).map_err(|e| Error::sys("bpf(BPF_LINK_DETACH)", e))
}

fn fd_borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

/// Number of possible CPUs (the slot count of per-CPU map values), from
/// `/sys/devices/system/cpu/possible`.
pub fn possible_cpus() -> Result<usize> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .map_err(|e| Error::sys("read /sys/devices/system/cpu/possible", e))?;
    parse_cpu_list(s.trim()).ok_or_else(|| Error::Config(format!("cannot parse possible CPUs {s:?}")))
}

fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.split(',') {
        let hi = match part.split_once('-') {
            Some((_, hi)) => hi.parse::<usize>().ok()?,
            None => part.parse::<usize>().ok()?,
        };
        max = Some(max.map_or(hi, |m: usize| m.max(hi)));
    }
    max.map(|m| m + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0-3,8-11"), Some(12));
        assert_eq!(parse_cpu_list("x"), None);
    }
}
