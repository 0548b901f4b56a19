//! The XDP steering program: which frames go to Rampart's AF_XDP sockets and which to the kernel.
//!
//! One [`SteeringProgram`] is loaded per interface, in the role of that interface:
//!
//! * [`Role::Wan`]: ESP (IP protocol 50) and ESP-in-UDP on port 4500 addressed to one of the
//!   gateway's own addresses go to the socket of the receiving queue. The one-byte 0xFF NAT
//!   keepalive goes there too (the data plane consumes it). IKE (UDP 500, and UDP 4500 whose
//!   payload starts with the four-byte non-ESP marker), ARP, IPv6 ND and everything else pass to
//!   the kernel, as does all traffic not addressed to the gateway.
//! * [`Role::Lan`]: IPv4/IPv6 packets whose destination lies in a protected prefix go to the
//!   socket, unless addressed to the gateway itself; everything else passes.
//!
//! The program is attached through a BPF link: closing the link (dropping the
//! [`SteeringProgram`], or the process dying for any reason, SIGKILL included) detaches it. At
//! attach time a program an older Rampart left on the interface is replaced, and a foreign one is
//! refused unless forced (see [`SteeringProgram::attach`]).
//!
//! Map updates are system calls: this module is control path only and must never be called per
//! packet. It never drops traffic: what the program does not take, the kernel gets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::str::FromStr;

use crate::bpf::elf::Object;
use crate::bpf::{self, Map};
use crate::error::{Error, Result};
use crate::netlink;
use crate::socket::XskSocket;
use crate::sys;

/// Every Rampart steering program's kernel name starts with this; it is how an older Rampart's
/// program is recognised on an interface.
pub const PROGRAM_NAME_PREFIX: &str = "rampart_";

/// Which side of the gateway an interface is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The encrypted side: ESP and ESP-in-UDP to the sockets.
    Wan,
    /// The cleartext side: traffic to protected prefixes to the sockets.
    Lan,
}

impl Role {
    fn section(self) -> &'static str {
        match self {
            Role::Wan => "xdp/wan",
            Role::Lan => "xdp/lan",
        }
    }

    /// The program's kernel name.
    pub fn program_name(self) -> &'static str {
        match self {
            Role::Wan => "rampart_wan",
            Role::Lan => "rampart_lan",
        }
    }
}

/// Where in the receive path the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// In the driver (`XDP_FLAGS_DRV_MODE`). On a multi-queue veth every rx queue sees its own
    /// traffic. Fails with `ERANGE` on veth when the peer's MTU is above about 3500.
    #[default]
    Native,
    /// In the generic network stack (`XDP_FLAGS_SKB_MODE`): works everywhere, slower; on veth
    /// everything arrives on queue 0.
    Generic,
}

impl AttachMode {
    fn flags(self) -> u32 {
        match self {
            AttachMode::Native => sys::XDP_FLAGS_DRV_MODE,
            AttachMode::Generic => sys::XDP_FLAGS_SKB_MODE,
        }
    }
}

/// Options of [`SteeringProgram::load`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    /// Size of the queue -> socket map: at least the interface's highest rx queue + 1.
    pub max_queues: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_queues: 64 }
    }
}

/// Options of [`SteeringProgram::attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachOptions {
    /// Native or generic XDP.
    pub mode: AttachMode,
    /// Replace whatever XDP program is on the interface, even a foreign one or a Rampart program
    /// held by a live process.
    pub force: bool,
}

/// How a program found on the interface was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovedVia {
    /// It was attached through netlink and detached the same way.
    Netlink,
    /// It was held by a BPF link, which was detached (`BPF_LINK_DETACH`).
    Link,
}

/// A program that [`SteeringProgram::attach`] found and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedProgram {
    /// Kernel program id.
    pub prog_id: u32,
    /// Kernel program name.
    pub name: String,
    /// Whether it was an older Rampart's.
    pub was_rampart: bool,
    /// How it was removed.
    pub via: RemovedVia,
}

/// What [`SteeringProgram::attach`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachReport {
    /// Interface index.
    pub ifindex: u32,
    /// Mode the program runs in.
    pub mode: AttachMode,
    /// Kernel id of the program.
    pub prog_id: u32,
    /// Kernel id of the BPF link that holds it.
    pub link_id: u32,
    /// Programs removed from the interface first.
    pub replaced: Vec<ReplacedProgram>,
}

/// An IPv4 or IPv6 prefix with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// `addr/len`; host bits are cleared. Fails if `len` is longer than the address.
    pub fn new(addr: IpAddr, len: u8) -> Result<Self> {
        let addr = match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
            _ => return Err(Error::Config(format!("prefix length /{len} too long for {addr}"))),
        };
        Ok(IpPrefix { addr, len })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is a /0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn lpm_key(&self) -> Vec<u8> {
        let mut k = u32::from(self.len).to_ne_bytes().to_vec();
        match self.addr {
            IpAddr::V4(a) => k.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => k.extend_from_slice(&a.octets()),
        }
        k
    }
}

impl FromStr for IpPrefix {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (a, l) = s.split_once('/').ok_or_else(|| Error::Config(format!("{s:?}: expected address/length")))?;
        let addr: IpAddr = a.parse().map_err(|_| Error::Config(format!("{s:?}: bad address")))?;
        let len: u8 = l.parse().map_err(|_| Error::Config(format!("{s:?}: bad prefix length")))?;
        IpPrefix::new(addr, len)
    }
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The program's verdict counters, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SteeringCounters {
    /// WAN: ESP for a local address, to the socket.
    pub to_xsk_esp: u64,
    /// WAN: UDP/4500 without the non-ESP marker (ESP-in-UDP, NAT keepalives), to the socket.
    pub to_xsk_esp_udp: u64,
    /// LAN: destination in a protected prefix, to the socket.
    pub to_xsk_protected: u64,
    /// WAN: IKE (UDP/500, UDP/4500 with the non-ESP marker), passed.
    pub pass_ike: u64,
    /// WAN: not addressed to the gateway, passed.
    pub pass_not_local: u64,
    /// LAN: addressed to the gateway, passed.
    pub pass_local: u64,
    /// LAN: destination in no protected prefix, passed.
    pub pass_unprotected: u64,
    /// Not IPv4/IPv6 (ARP...), passed.
    pub pass_not_ip: u64,
    /// WAN: local but neither ESP nor IKE (ICMP, ND, TCP...), passed.
    pub pass_other: u64,
    /// Truncated, too many VLAN tags or IPv6 extension headers, passed.
    pub pass_malformed: u64,
    /// WAN: UDP fragments for a local address, to the socket (the data plane reassembles them
    /// and hands what is not ESP to the kernel).
    pub to_xsk_udp_fragment: u64,
    /// Chosen for a socket, but no socket registered for the queue: passed.
    pub no_socket: u64,
    /// WAN: AH for a local address, to the socket.
    pub to_xsk_ah: u64,
}

impl SteeringCounters {
    /// Every counter with its name (the field's), in the program's order.
    pub fn named(&self) -> [(&'static str, u64); COUNTERS as usize] {
        [
            ("to_xsk_esp", self.to_xsk_esp),
            ("to_xsk_esp_udp", self.to_xsk_esp_udp),
            ("to_xsk_protected", self.to_xsk_protected),
            ("pass_ike", self.pass_ike),
            ("pass_not_local", self.pass_not_local),
            ("pass_local", self.pass_local),
            ("pass_unprotected", self.pass_unprotected),
            ("pass_not_ip", self.pass_not_ip),
            ("pass_other", self.pass_other),
            ("pass_malformed", self.pass_malformed),
            ("to_xsk_udp_fragment", self.to_xsk_udp_fragment),
            ("no_socket", self.no_socket),
            ("to_xsk_ah", self.to_xsk_ah),
        ]
    }
}

/// Number of counter slots the program uses (`C_MAX` in steer.bpf.c).
const COUNTERS: u32 = 13;

struct Attached {
    /// Held for its drop: closing the link detaches the program.
    _link: OwnedFd,
    ifindex: u32,
    mode: AttachMode,
}

/// A loaded steering program with its maps, attached to at most one interface.
pub struct SteeringProgram {
    role: Role,
    // The link is declared first so that it is closed (detaching the program) first.
    attached: Option<Attached>,
    prog: OwnedFd,
    prog_id: u32,
    xsks: Map,
    local4: Map,
    local6: Map,
    prot4: Option<Map>,
    prot6: Option<Map>,
    stats: Map,
    possible_cpus: usize,
}

impl std::fmt::Debug for SteeringProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteeringProgram")
            .field("role", &self.role)
            .field("prog_id", &self.prog_id)
            .field("ifindex", &self.attached.as_ref().map(|a| a.ifindex))
            .finish()
    }
}

impl SteeringProgram {
    /// Creates the maps and loads the program of `role` (the kernel's verifier checks it here).
    pub fn load(role: Role, opts: LoadOptions) -> Result<Self> {
        if opts.max_queues == 0 {
            return Err(Error::Config("max_queues must be at least 1".into()));
        }
        let obj = Object::parse(bpf::STEER_OBJECT)?;
        let section =
            obj.program(role.section()).ok_or_else(|| Error::Object(format!("no section {}", role.section())))?;
        if section.function != role.program_name() {
            return Err(Error::Object(format!("section {} defines {}", role.section(), section.function)));
        }
        let create = |name: &str, max_override: Option<u32>| -> Result<Map> {
            let d = obj.map(name).ok_or_else(|| Error::Object(format!("map {name} not declared")))?;
            Map::create(
                &d.name,
                d.map_type,
                d.key_size,
                d.value_size,
                max_override.unwrap_or(d.max_entries),
                d.map_flags,
            )
        };
        let referenced = |name: &str| section.map_refs.iter().any(|(_, m)| m == name);
        let xsks = create("rampart_xsks", Some(opts.max_queues))?;
        let local4 = create("rampart_local4", None)?;
        let local6 = create("rampart_local6", None)?;
        let stats = create("rampart_stats", None)?;
        let prot4 = if referenced("rampart_prot4") { Some(create("rampart_prot4", None)?) } else { None };
        let prot6 = if referenced("rampart_prot6") { Some(create("rampart_prot6", None)?) } else { None };

        let mut insns = section.insns.clone();
        for (ii, name) in &section.map_refs {
            let map = [Some(&xsks), Some(&local4), Some(&local6), Some(&stats), prot4.as_ref(), prot6.as_ref()]
                .into_iter()
                .flatten()
                .find(|m| m.name() == name)
                .ok_or_else(|| Error::Object(format!("program references unknown map {name}")))?;
            let fd = map.fd().as_raw_fd() as u32;
            // ld_imm64: src_reg (bits 12..16) = BPF_PSEUDO_MAP_FD, imm (bits 32..64) = fd.
            let insn = insns[*ii];
            insns[*ii] =
                (insn & 0x0000_0000_ffff_0fff) | (u64::from(sys::BPF_PSEUDO_MAP_FD) << 12) | (u64::from(fd) << 32);
        }
        let prog = bpf::load_xdp_program(role.program_name(), &insns, &obj.license)?;
        let prog_id = bpf::prog_info(prog.as_fd())?.id;
        Ok(SteeringProgram {
            role,
            attached: None,
            prog,
            prog_id,
            xsks,
            local4,
            local6,
            prot4,
            prot6,
            stats,
            possible_cpus: bpf::possible_cpus()?,
        })
    }

    /// The program's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Kernel id of the loaded program.
    pub fn prog_id(&self) -> u32 {
        self.prog_id
    }

    /// The program's fd (for tools and tests).
    pub fn prog_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.prog.as_fd()
    }

    /// Interface the program is attached to, if any.
    pub fn ifindex(&self) -> Option<u32> {
        self.attached.as_ref().map(|a| a.ifindex)
    }

    /// Attaches the program to interface `ifindex` of the calling thread's network namespace
    /// through a BPF link.
    ///
    /// What is already there decides what happens first:
    /// * nothing: attach;
    /// * a Rampart program (name starting with [`PROGRAM_NAME_PREFIX`]) attached through netlink,
    ///   left behind by an older Rampart: detach it, attach;
    /// * a Rampart program held by a BPF link: a running Rampart owns the interface,
    ///   [`Error::InUse`] unless `force`;
    /// * any other program: [`Error::ForeignProgram`] unless `force`.
    pub fn attach(&mut self, ifindex: u32, opts: AttachOptions) -> Result<AttachReport> {
        if let Some(a) = &self.attached {
            return Err(Error::Config(format!("program already attached to interface {}; detach first", a.ifindex)));
        }
        let state = netlink::xdp_query(ifindex)?;
        let mut replaced = Vec::new();
        for (id, mode_flags) in state.programs() {
            let fd = bpf::prog_fd_by_id(id)?;
            let info = bpf::prog_info(fd.as_fd())?;
            let was_rampart = info.name.starts_with(PROGRAM_NAME_PREFIX);
            if !was_rampart && !opts.force {
                return Err(Error::ForeignProgram { ifindex, prog_id: id, name: info.name });
            }
            let via = match bpf::find_xdp_link_of_prog(id)? {
                Some((link, linfo)) => {
                    if !opts.force {
                        return Err(Error::InUse { ifindex, prog_id: id, link_id: linfo.id });
                    }
                    bpf::link_detach(link.as_fd())?;
                    RemovedVia::Link
                }
                None => {
                    netlink::xdp_detach_netlink(ifindex, mode_flags, Some(fd.as_fd()))?;
                    RemovedVia::Netlink
                }
            };
            replaced.push(ReplacedProgram { prog_id: id, name: info.name, was_rampart, via });
        }
        let link = bpf::link_create_xdp(self.prog.as_fd(), ifindex, opts.mode.flags()).map_err(|e| {
            match (e.raw_os_error(), opts.mode) {
                (Some(libc::ERANGE), AttachMode::Native) => Error::Config(format!(
                    "native XDP refused on interface {ifindex} (ERANGE): on veth the peer's MTU must be \
                     below about 3500; lower it or attach in AttachMode::Generic"
                )),
                (Some(libc::EOPNOTSUPP), AttachMode::Native) => Error::Config(format!(
                    "interface {ifindex} has no native XDP support (EOPNOTSUPP); attach in AttachMode::Generic"
                )),
                _ => e,
            }
        })?;
        let link_id = bpf::link_info(link.as_fd())?.id;
        self.attached = Some(Attached { _link: link, ifindex, mode: opts.mode });
        Ok(AttachReport { ifindex, mode: opts.mode, prog_id: self.prog_id, link_id, replaced })
    }

    /// Detaches the program (closes its link). Also happens on drop and on process exit.
    pub fn detach(&mut self) {
        self.attached = None;
    }

    /// The mode the program is attached in, if attached.
    pub fn attach_mode(&self) -> Option<AttachMode> {
        self.attached.as_ref().map(|a| a.mode)
    }

    /// Steers the frames this program takes on rx queue `queue` to `socket`.
    pub fn register_socket(&self, queue: u32, socket: &XskSocket) -> Result<()> {
        let fd = socket.as_raw_fd() as u32;
        self.xsks.update(&queue.to_ne_bytes(), &fd.to_ne_bytes())
    }

    /// Stops steering queue `queue` to a socket (its frames pass to the kernel); returns whether
    /// one was registered.
    pub fn unregister_socket(&self, queue: u32) -> Result<bool> {
        self.xsks.delete(&queue.to_ne_bytes())
    }

    /// Adds one of the gateway's own addresses: WAN traffic to it is considered, LAN traffic to
    /// it always passes.
    pub fn add_local_address(&self, addr: IpAddr) -> Result<()> {
        match addr {
            IpAddr::V4(a) => self.local4.update(&a.octets(), &[1]),
            IpAddr::V6(a) => self.local6.update(&a.octets(), &[1]),
        }
    }

    /// Removes a local address; returns whether it was there.
    pub fn remove_local_address(&self, addr: IpAddr) -> Result<bool> {
        match addr {
            IpAddr::V4(a) => self.local4.delete(&a.octets()),
            IpAddr::V6(a) => self.local6.delete(&a.octets()),
        }
    }

    fn prefix_map(&self, p: &IpPrefix) -> Result<&Map> {
        let m = match p.addr {
            IpAddr::V4(_) => self.prot4.as_ref(),
            IpAddr::V6(_) => self.prot6.as_ref(),
        };
        m.ok_or(Error::WrongRole("protected prefixes exist only on a LAN steering program"))
    }

    /// LAN: steers traffic to `prefix` (longest match) to the sockets.
    pub fn add_protected_prefix(&self, prefix: IpPrefix) -> Result<()> {
        self.prefix_map(&prefix)?.update(&prefix.lpm_key(), &[1])
    }

    /// LAN: stops steering `prefix`; returns whether it was there.
    pub fn remove_protected_prefix(&self, prefix: IpPrefix) -> Result<bool> {
        self.prefix_map(&prefix)?.delete(&prefix.lpm_key())
    }

    /// Reads the verdict counters, summed over all CPUs.
    pub fn counters(&self) -> Result<SteeringCounters> {
        let mut v = [0u64; COUNTERS as usize];
        let mut buf = vec![0u8; self.possible_cpus * 8];
        for (i, slot) in v.iter_mut().enumerate() {
            if self.stats.lookup(&(i as u32).to_ne_bytes(), &mut buf)? {
                *slot = buf.chunks_exact(8).map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]))).sum();
            }
        }
        Ok(SteeringCounters {
            to_xsk_esp: v[0],
            to_xsk_esp_udp: v[1],
            to_xsk_protected: v[2],
            pass_ike: v[3],
            pass_not_local: v[4],
            pass_local: v[5],
            pass_unprotected: v[6],
            pass_not_ip: v[7],
            pass_other: v[8],
            pass_malformed: v[9],
            to_xsk_udp_fragment: v[10],
            no_socket: v[11],
            to_xsk_ah: v[12],
        })
    }
}

/// Index of interface `name` in the calling thread's network namespace.
pub fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| Error::Config(format!("interface name {name:?} contains NUL")))?;
    // Safety: a valid NUL-terminated string.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::sys("if_nametoindex", std::io::Error::last_os_error()));
    }
    Ok(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_clear_host_bits() {
        let p: IpPrefix = "10.1.2.3/16".parse().unwrap();
        assert_eq!(p.to_string(), "10.1.0.0/16");
        assert_eq!(p.lpm_key()[4..], [10, 1, 0, 0]);
        let p: IpPrefix = "fd00:1:2:3::1/33".parse().unwrap();
        assert_eq!(p.to_string(), "fd00:1::/33");
        let p: IpPrefix = "fd00:1:ffff::/33".parse().unwrap();
        assert_eq!(p.to_string(), "fd00:1:8000::/33");
        assert!("10.0.0.0/33".parse::<IpPrefix>().is_err());
        assert!("::/129".parse::<IpPrefix>().is_err());
        assert_eq!("0.0.0.0/0".parse::<IpPrefix>().unwrap().len(), 0);
    }
}
