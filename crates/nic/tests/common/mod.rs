//! Test support: network namespaces the tests create and remove, veth pairs between them, running
//! code inside a namespace, raw frame builders and AF_PACKET sockets.
//!
//! Every namespace gets a unique name (process id + counter) and is deleted on drop, also when the
//! test panics. Nothing here may send traffic anywhere but into these namespaces.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// True when running as root; otherwise prints a loud skip notice.
pub fn require_root(test: &str) -> bool {
    // Safety: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    // Written to the stderr handle directly: libtest captures eprintln! of passing tests.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {test}: needs root (network namespaces, XDP, AF_XDP) !!!!!!!!\n"
    );
    false
}

/// Runs a command, panicking with its output on failure.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    if !out.status.success() {
        panic!("{args:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, returning whether it succeeded.
pub fn sh_ok(args: &[&str]) -> bool {
    Command::new(args[0]).args(&args[1..]).output().map(|o| o.status.success()).unwrap_or(false)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("rnic-{}-{}-{tag}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n <ns> ...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// `ip netns exec <ns> ...`, returning success.
    pub fn exec_ok(&self, args: &[&str]) -> bool {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh_ok(&v)
    }

    /// Runs `f` on a fresh thread that has entered this namespace; sockets and fds it creates stay
    /// in the namespace and can be used from any thread afterwards.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Like [`Netns::run`] but returns the thread's handle instead of waiting.
    pub fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &str) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // Safety: a valid namespace fd; CLONE_NEWNET only affects the calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns({path}): {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}

/// One end of a veth pair.
#[derive(Clone, Debug)]
pub struct End {
    pub ns: String,
    pub ifname: String,
    pub mac: [u8; 6],
    pub ip4: Ipv4Addr,
    pub ip6: Ipv6Addr,
}

/// Creates a veth pair `a`-`b` with `queues` rx/tx queues, addresses `10.<net>.0.1/2` and
/// `fd<net>::1/2`, fixed MACs, both up.
pub fn veth(a: &Netns, an: &str, b: &Netns, bn: &str, net: u8, queues: u32) -> (End, End) {
    let q = queues.to_string();
    a.ip(&[
        "link",
        "add",
        an,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
        "type",
        "veth",
        "peer",
        "name",
        bn,
        "netns",
        &b.name,
        "numtxqueues",
        &q,
        "numrxqueues",
        &q,
    ]);
    let mk = |ns: &Netns, ifn: &str, host: u8| {
        let mac = [0x02, 0, 0, net, 0, host];
        let macs = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        let ip4 = Ipv4Addr::new(10, net, 0, host);
        let ip6: Ipv6Addr = format!("fd{net:02x}::{host}").parse().unwrap();
        ns.ip(&["link", "set", ifn, "address", &macs]);
        ns.ip(&["addr", "add", &format!("{ip4}/24"), "dev", ifn]);
        ns.ip(&["-6", "addr", "add", &format!("{ip6}/64"), "dev", ifn, "nodad"]);
        ns.ip(&["link", "set", ifn, "up"]);
        End { ns: ns.name.clone(), ifname: ifn.to_string(), mac, ip4, ip6 }
    };
    (mk(a, an, 1), mk(b, bn, 2))
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

pub const ETH_IP: u16 = 0x0800;
pub const ETH_IP6: u16 = 0x86dd;

fn csum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet header, with optional VLAN tags.
pub fn eth(dst: [u8; 6], src: [u8; 6], vlans: &[u16], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for v in vlans {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// IPv4 header (with `options`, a multiple of 4 bytes) followed by `payload`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, options: &[u8], frag: u16, payload: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0);
    let hl = 20 + options.len();
    let mut h = vec![0u8; 20];
    h[0] = 0x40 | (hl / 4) as u8;
    h[2..4].copy_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    h.extend_from_slice(options);
    let c = csum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// IPv6 header followed by `payload` (which starts with the header named by `next`).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// UDP header (checksum 0: allowed on IPv4, and only ever read by XDP in frames we build).
pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An ESP-looking payload: SPI, sequence number, some bytes.
pub fn esp(spi: u32, seq: u32, body_len: usize) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend_from_slice(&spi.to_be_bytes());
    e.extend_from_slice(&seq.to_be_bytes());
    e.extend((0..body_len).map(|i| i as u8));
    e
}

/// Pads a frame to the Ethernet minimum with zeros (as a NIC would).
pub fn pad60(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// Finds an ESP SPI in a received frame: (SPI, via UDP), walking VLAN tags, IPv4 options and the
/// fixed IPv6 header only.
pub fn frame_spi(f: &[u8]) -> Option<(u32, bool)> {
    let mut off = 12;
    let mut et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    while et == 0x8100 {
        off += 4;
        et = u16::from_be_bytes([*f.get(off)?, *f.get(off + 1)?]);
    }
    off += 2;
    let (proto, l4) = match et {
        ETH_IP => (*f.get(off + 9)?, off + (*f.get(off)? as usize & 0xf) * 4),
        ETH_IP6 => {
            let mut nh = *f.get(off + 6)?;
            let mut l4 = off + 40;
            // destination options / hop-by-hop
            while nh == 0 || nh == 60 {
                nh = *f.get(l4)?;
                l4 += (*f.get(l4 + 1)? as usize + 1) * 8;
            }
            (nh, l4)
        }
        _ => return None,
    };
    let (at, via_udp) = match proto {
        50 => (l4, false),
        17 => (l4 + 8, true),
        _ => return None,
    };
    let b = f.get(at..at + 4)?;
    Some((u32::from_be_bytes(b.try_into().ok()?), via_udp))
}

// ---------------------------------------------------------------------------------------------
// AF_PACKET
// ---------------------------------------------------------------------------------------------

/// A raw AF_PACKET socket bound to one interface (of the namespace it was created in).
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Must be called on a thread inside the interface's namespace.
    pub fn open(ifname: &str) -> PacketSocket {
        let ifindex = rampart_nic::ifindex(ifname).unwrap() as i32;
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // Safety: plain socket(2).
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto)) };
        assert!(raw >= 0, "socket(AF_PACKET): {}", std::io::Error::last_os_error());
        // Safety: fresh fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // Safety: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        // Safety: valid sockaddr_ll.
        let r = unsafe {
            libc::bind(raw, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
        };
        assert_eq!(r, 0, "bind(AF_PACKET): {}", std::io::Error::last_os_error());
        PacketSocket { fd, ifindex }
    }

    /// Bypasses the qdisc: the kernel then picks the tx queue as `cpu % tx queues`, which lets a
    /// thread pinned to CPU q send on queue q.
    pub fn qdisc_bypass(&self) {
        let one: libc::c_int = 1;
        // Safety: an int option of the right size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        assert_eq!(r, 0, "PACKET_QDISC_BYPASS: {}", std::io::Error::last_os_error());
    }

    pub fn send(&self, frame: &[u8]) {
        // Safety: `frame` is valid for its length; the socket is bound so no address is needed.
        let r = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(r, frame.len() as isize, "send(AF_PACKET): {}", std::io::Error::last_os_error());
    }

    /// Receives frames (incoming only) until `pred` returns true or `timeout` passes; returns all
    /// frames seen.
    pub fn recv_until(&self, timeout: Duration, mut pred: impl FnMut(&[u8]) -> bool) -> (Vec<Vec<u8>>, bool) {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (got, false);
            }
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // Safety: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            // Safety: zeroed sockaddr_ll for the source address.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut sl = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // Safety: buffers valid for their lengths.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut sll as *mut libc::sockaddr_ll).cast(),
                    &mut sl,
                )
            };
            if n <= 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let f = buf[..n as usize].to_vec();
            let done = pred(&f);
            got.push(f);
            if done {
                return (got, true);
            }
        }
    }
}

/// Pins the calling thread to one CPU.
pub fn pin_to_cpu(cpu: usize) {
    // Safety: a zeroed cpu_set_t is empty; CPU_SET on it is in bounds for small cpu numbers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let r = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(r, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
    }
}

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

// ---------------------------------------------------------------------------------------------
// AF_XDP receive helper
// ---------------------------------------------------------------------------------------------

/// A UMEM and one socket on it, with a loop that copies received frames out.
pub struct XskRx {
    pub umem: rampart_nic::Umem,
    pub sock: rampart_nic::XskSocket,
}

impl XskRx {
    /// Binds queue `queue` of `ifname` (call inside the namespace) and fills the fill ring.
    pub fn bind(ifname: &str, queue: u32, config: &rampart_nic::XskConfig) -> XskRx {
        let ifx = rampart_nic::ifindex(ifname).unwrap();
        let mut umem =
            rampart_nic::Umem::new(rampart_nic::UmemConfig { frame_count: 4096, ..Default::default() }).unwrap();
        let mut sock = rampart_nic::XskSocket::bind(&umem, ifx, queue, config).unwrap();
        let n = sock.refill(&mut umem, config.fill_size);
        assert_eq!(n, config.fill_size);
        XskRx { umem, sock }
    }

    /// Receives until `pred` says done or `timeout` passes; frames are copied out and their UMEM
    /// frames recycled.
    pub fn collect_until(&mut self, timeout: Duration, mut pred: impl FnMut(&[u8]) -> bool) -> (Vec<Vec<u8>>, bool) {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut descs = [rampart_nic::Desc::default(); 64];
        while Instant::now() < deadline {
            let n = self.sock.rx_burst(&mut descs);
            if n == 0 {
                let _ = self.sock.poll_rx(10);
                continue;
            }
            let mut done = false;
            for d in &descs[..n] {
                let f = self.umem.frame(d).unwrap().to_vec();
                done |= pred(&f);
                got.push(f);
            }
            assert_eq!(self.umem.free_descs(&descs[..n]), 0);
            self.sock.refill(&mut self.umem, n as u32);
            if done {
                return (got, true);
            }
        }
        (got, false)
    }
}
