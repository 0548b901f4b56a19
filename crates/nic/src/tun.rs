//! A way into the kernel's receive path for whole IP packets the data plane took from the NIC
//! but does not process itself: a TUN device ([`KernelTap`]). Writing a packet to it is, for
//! the kernel, receiving that packet on the device: a UDP datagram to one of the gateway's
//! addresses reaches the socket bound there (the IKE daemon's, for IKE that arrived in IP
//! fragments, which the data plane reassembled because only the first fragment says whether a
//! datagram on port 4500 is ESP or IKE).
//!
//! Off the hot path: one `write(2)` per packet, for packets that are not ESP. The device has no
//! address and no route; reverse-path filtering is switched off on it (the packets' sources are
//! reached through the WAN).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;

use crate::error::{Error, Result};

const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
/// `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` with the name and the flags (the only members used here), padded to its size.
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

const _: () = assert!(std::mem::size_of::<IfReqFlags>() == 40);

/// A TUN device whose writes the kernel receives as packets arriving on it.
#[derive(Debug)]
pub struct KernelTap {
    file: File,
    name: String,
}

fn ifreq(name: &str) -> Result<IfReqFlags> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(Error::Config(format!("interface name {name:?}: 1 to 15 bytes")));
    }
    let mut req = IfReqFlags { name: [0; libc::IFNAMSIZ], flags: 0, _pad: [0; 22] };
    for (d, s) in req.name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(req)
}

impl KernelTap {
    /// Creates (or attaches to) the TUN device `name`, brings it up and switches off its
    /// reverse-path filter. Needs `CAP_NET_ADMIN` and `/dev/net/tun`.
    pub fn create(name: &str) -> Result<KernelTap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| Error::sys("open(/dev/net/tun)", e))?;
        let mut req = ifreq(name)?;
        req.flags = IFF_TUN | IFF_NO_PI;
        // Safety: TUNSETIFF reads and writes a `struct ifreq`, of which `req` has the layout and
        // the size (checked above); the fd is the open TUN control device.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReqFlags) };
        if rc < 0 {
            return Err(Error::sys("ioctl(TUNSETIFF)", std::io::Error::last_os_error()));
        }
        set_up(name)?;
        // Best effort: where the file is absent (no IPv4) there is nothing to filter.
        let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"), "0");
        Ok(KernelTap { file, name: name.to_string() })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands one whole IPv4 or IPv6 packet to the kernel's receive path.
    pub fn deliver(&self, packet: &[u8]) -> std::io::Result<()> {
        (&self.file).write_all(packet)
    }
}

/// Sets IFF_UP on `name` (SIOCGIFFLAGS, then SIOCSIFFLAGS through a datagram socket).
fn set_up(name: &str) -> Result<()> {
    // Safety: a plain socket(2) call; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::sys("socket(AF_INET, SOCK_DGRAM)", std::io::Error::last_os_error()));
    }
    let mut req = ifreq(name)?;
    // Safety: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the name and flags of a `struct ifreq`,
    // whose layout and size `req` has; `fd` is the socket opened above.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req as *mut IfReqFlags) < 0 {
            Err(Error::sys("ioctl(SIOCGIFFLAGS)", std::io::Error::last_os_error()))
        } else {
            req.flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &mut req as *mut IfReqFlags) < 0 {
                Err(Error::sys("ioctl(SIOCSIFFLAGS)", std::io::Error::last_os_error()))
            } else {
                Ok(())
            }
        }
    };
    // Safety: `fd` is ours and not used after this.
    unsafe { libc::close(fd) };
    result
}
