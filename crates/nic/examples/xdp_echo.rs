//! `xdp_echo`: packets per second through Rampart's AF_XDP path between two network namespaces,
//! next to the same echo done with an AF_PACKET socket, measured in one run.
//!
//! ```text
//!  ns gen: generator (AF_XDP, WAN program)  <-- veth -->  ns echo: echo worker
//!          sends ESP frames to the echo side                        phase 1: AF_XDP (WAN program)
//!          counts the ones that come back                           phase 2: AF_PACKET (kernel)
//! ```
//!
//! The echo worker swaps the Ethernet and IPv4 addresses in place and sends the frame back on the
//! same socket. Run as root: `cargo run --release -p rampart-nic --example xdp_echo -- [--seconds N]
//! [--size BYTES] [--generic]`. Creates and removes its own namespaces. Speed on veth says little
//! about a real NIC; the ratio between the two phases is the number to read.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_nic::{
    AttachMode, AttachOptions, Desc, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig, XskSocket,
};

const GEN_MAC: [u8; 6] = [2, 0, 0, 0xee, 0, 1];
const ECHO_MAC: [u8; 6] = [2, 0, 0, 0xee, 0, 2];
const GEN_IP: Ipv4Addr = Ipv4Addr::new(10, 238, 0, 1);
const ECHO_IP: Ipv4Addr = Ipv4Addr::new(10, 238, 0, 2);
const BURST: usize = 64;

fn sh(args: &[&str]) {
    let o = Command::new(args[0]).args(&args[1..]).output().expect("run ip");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

struct Namespaces(String, String);

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.1]).output();
    }
}

fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("netns");
    // Safety: a valid namespace fd; affects only the calling thread.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
}

fn pin(cpu: usize) {
    // Safety: a zeroed cpu_set_t is empty; CPU_SET is in bounds for small CPU numbers.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// An ESP frame of `size` bytes from the generator to the echo side.
fn template(size: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(size);
    f.extend_from_slice(&ECHO_MAC);
    f.extend_from_slice(&GEN_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (size - 14) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = 50;
    ip[12..16].copy_from_slice(&GEN_IP.octets());
    ip[16..20].copy_from_slice(&ECHO_IP.octets());
    let mut sum: u32 = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&0x1234_5678u32.to_be_bytes()); // SPI
    f.resize(size, 0xab);
    f
}

/// Swaps Ethernet and IPv4 source/destination in place (the checksum is unchanged).
fn reflect(f: &mut [u8]) {
    if f.len() < 34 {
        return;
    }
    for i in 0..6 {
        f.swap(i, 6 + i);
    }
    for i in 0..4 {
        f.swap(26 + i, 30 + i);
    }
}

struct Side {
    prog: SteeringProgram,
    umem: Umem,
    sock: XskSocket,
}

fn xsk_side(ifname: &str, local: Ipv4Addr, mode: AttachMode) -> Side {
    let ifx = rampart_nic::ifindex(ifname).expect("ifindex");
    let mut prog = SteeringProgram::load(Role::Wan, LoadOptions { max_queues: 1 }).expect("load");
    prog.attach(ifx, AttachOptions { mode, force: false }).expect("attach");
    prog.add_local_address(IpAddr::V4(local)).expect("local address");
    let mut umem = Umem::new(UmemConfig { frame_size: 2048, frame_count: 16384, headroom: 0 }).expect("umem");
    let cfg = XskConfig { rx_size: 4096, tx_size: 4096, fill_size: 4096, comp_size: 4096, ..Default::default() };
    let mut sock = XskSocket::bind(&umem, ifx, 0, &cfg).expect("bind");
    sock.refill(&mut umem, 4096);
    prog.register_socket(0, &sock).expect("register");
    Side { prog, umem, sock }
}

/// Echo worker over AF_XDP: rx burst, reflect in place, tx the same frames.
fn xsk_echo(mut s: Side, stop: Arc<AtomicBool>, echoed: Arc<AtomicU64>) -> Side {
    let mut descs = [Desc::default(); BURST];
    let mut pending: Vec<Desc> = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        s.sock.reap_completions(&mut s.umem);
        let n = s.sock.rx_burst(&mut descs);
        for d in &descs[..n] {
            if let Ok(f) = s.umem.frame_mut(d) {
                reflect(f);
            }
        }
        pending.extend_from_slice(&descs[..n]);
        if !pending.is_empty() {
            let sent = s.sock.tx_burst(&pending);
            pending.drain(..sent);
            let _ = s.sock.kick_tx();
            echoed.fetch_add(sent as u64, Ordering::Relaxed);
        }
        s.sock.refill(&mut s.umem, n as u32);
        if n == 0 {
            s.sock.refill(&mut s.umem, 64);
        }
    }
    s
}

/// Echo worker over AF_PACKET (the kernel's socket path), for comparison.
fn packet_echo(ifname: &str, stop: Arc<AtomicBool>, echoed: Arc<AtomicU64>) {
    let ifx = rampart_nic::ifindex(ifname).expect("ifindex") as i32;
    let proto = (libc::ETH_P_IP as u16).to_be();
    // Safety: plain socket(2), checked.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    assert!(raw >= 0);
    // Safety: fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Safety: zeroed sockaddr_ll, filled below.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifx;
    // Safety: valid address.
    unsafe {
        libc::bind(raw, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
    };
    let one: libc::c_int = 1;
    // Safety: an int option; without it the socket would echo its own transmissions.
    unsafe {
        libc::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, (&one as *const libc::c_int).cast(), 4);
    }
    let tv = libc::timeval { tv_sec: 0, tv_usec: 10_000 };
    // Safety: a timeval option.
    unsafe {
        libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&tv as *const libc::timeval).cast(), 16);
    }
    let mut bufs = vec![[0u8; 2048]; BURST];
    // Safety: zeroed mmsghdr/iovec arrays are valid; the pointers are set before use.
    let mut iov: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; BURST];
    // Safety: as above.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; BURST];
    while !stop.load(Ordering::Relaxed) {
        for i in 0..BURST {
            iov[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: 2048 };
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_len = 0;
        }
        // Safety: BURST valid mmsghdrs pointing into live buffers.
        let n = unsafe { libc::recvmmsg(raw, msgs.as_mut_ptr(), BURST as u32, 0, std::ptr::null_mut()) };
        if n <= 0 {
            continue;
        }
        let n = n as usize;
        for i in 0..n {
            let len = msgs[i].msg_len as usize;
            reflect(&mut bufs[i][..len]);
            iov[i].iov_len = len;
        }
        // Safety: the first n mmsghdrs are valid and point into live buffers.
        let s = unsafe { libc::sendmmsg(raw, msgs.as_mut_ptr(), n as u32, 0) };
        if s > 0 {
            echoed.fetch_add(s as u64, Ordering::Relaxed);
        }
    }
    drop(fd);
}

/// The generator: keeps the tx ring full of template frames and counts the echoes.
fn generate(s: &mut Side, frame: &[u8], seconds: f64, stop: &AtomicBool) -> (u64, u64, f64) {
    let mut descs = [Desc::default(); BURST];
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    let limit = Duration::from_secs_f64(seconds);
    while start.elapsed() < limit {
        s.sock.reap_completions(&mut s.umem);
        let mut m = 0;
        while m < BURST {
            let Some(a) = s.umem.alloc() else { break };
            let d = Desc::new(a + 256, frame.len() as u32);
            if let Ok(buf) = s.umem.frame_mut(&d) {
                buf.copy_from_slice(frame);
            }
            descs[m] = d;
            m += 1;
        }
        let t = s.sock.tx_burst(&descs[..m]);
        s.umem.free_descs(&descs[t..m]);
        sent += t as u64;
        let _ = s.sock.kick_tx();
        let n = s.sock.rx_burst(&mut descs);
        received += n as u64;
        s.umem.free_descs(&descs[..n]);
        s.sock.refill(&mut s.umem, n as u32 + 16);
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    (sent, received, secs)
}

fn main() {
    let mut seconds = 5.0;
    let mut size = 64usize;
    let mut mode = AttachMode::Native;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            "--size" => size = args.next().and_then(|v| v.parse().ok()).expect("--size BYTES"),
            "--generic" => mode = AttachMode::Generic,
            _ => panic!("usage: xdp_echo [--seconds N] [--size BYTES] [--generic]"),
        }
    }
    assert!((60..=1514).contains(&size), "--size between 60 and 1514");
    // Safety: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("xdp_echo needs root (network namespaces, XDP)");
        std::process::exit(2);
    }
    let ns = Namespaces(format!("xecho-gen-{}", std::process::id()), format!("xecho-echo-{}", std::process::id()));
    sh(&["ip", "netns", "add", &ns.0]);
    sh(&["ip", "netns", "add", &ns.1]);
    sh(&["ip", "-n", &ns.0, "link", "add", "xg0", "type", "veth", "peer", "name", "xe0", "netns", &ns.1]);
    for (n, ifn, mac, ip) in [(&ns.0, "xg0", GEN_MAC, GEN_IP), (&ns.1, "xe0", ECHO_MAC, ECHO_IP)] {
        let mac = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        sh(&["ip", "-n", n, "link", "set", ifn, "address", &mac]);
        sh(&["ip", "-n", n, "addr", "add", &format!("{ip}/24"), "dev", ifn]);
        sh(&["ip", "-n", n, "link", "set", ifn, "up"]);
    }
    let frame = template(size);
    let (gen_ns, echo_ns) = (ns.0.clone(), ns.1.clone());

    // The generator lives on CPU 0 for both phases; the echo worker on CPU 1.
    let mut gen_side = std::thread::spawn(move || {
        enter(&gen_ns);
        xsk_side("xg0", GEN_IP, mode)
    })
    .join()
    .unwrap();
    println!(
        "xdp_echo: {size}-byte ESP frames, {seconds} s per phase, {mode:?} XDP, socket mode {:?}",
        gen_side.sock.mode()
    );

    let mut results = Vec::new();
    for phase in ["AF_XDP echo (rampart-nic)", "AF_PACKET echo (kernel sockets)"] {
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let (st, ec, en) = (stop.clone(), echoed.clone(), echo_ns.clone());
        let af_xdp = results.is_empty();
        let echo = std::thread::spawn(move || {
            enter(&en);
            pin(1);
            if af_xdp {
                let side = xsk_side("xe0", ECHO_IP, mode);
                let side = xsk_echo(side, st, ec);
                let c = side.prog.counters().ok();
                drop(side);
                c
            } else {
                packet_echo("xe0", st, ec);
                None
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        let (sent, received, secs) = std::thread::scope(|sc| {
            sc.spawn(|| {
                pin(0);
                generate(&mut gen_side, &frame, seconds, &stop)
            })
            .join()
            .unwrap()
        });
        let counters = echo.join().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Drain what is still in flight so that the next phase starts clean.
        let mut descs = [Desc::default(); BURST];
        loop {
            let n = gen_side.sock.rx_burst(&mut descs);
            gen_side.umem.free_descs(&descs[..n]);
            gen_side.sock.reap_completions(&mut gen_side.umem);
            gen_side.sock.refill(&mut gen_side.umem, n as u32);
            if n == 0 {
                break;
            }
        }
        let pps = received as f64 / secs;
        println!(
            "{phase:34} sent {:>9.0} pps, echoed back {:>9.0} pps ({:.1}% of sent){}",
            sent as f64 / secs,
            pps,
            100.0 * received as f64 / sent.max(1) as f64,
            counters.map(|c| format!(", steered {}", c.to_xsk_esp)).unwrap_or_default()
        );
        results.push(pps);
    }
    println!("ratio AF_XDP / AF_PACKET echo: {:.2}", results[0] / results[1].max(1.0));
    drop(gen_side);
    drop(ns);
}
