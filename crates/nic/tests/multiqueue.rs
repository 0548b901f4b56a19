//! Multi-queue veth: in native mode each rx queue's traffic reaches the socket of that queue; in
//! generic mode everything arrives on queue 0. Needs root and two CPUs; builds and removes its own
//! namespaces.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::*;
use rampart_nic::{AttachMode, AttachOptions, LoadOptions, Role, SteeringProgram, XskConfig};

const PER_QUEUE: u32 = 20;

/// Sends PER_QUEUE ESP frames from a thread pinned to each of CPUs 0 and 1 (so, with the qdisc
/// bypassed, on tx queues 0 and 1), then collects what each queue's socket received. Returns the
/// SPIs per queue (SPI = 0x100 * sending CPU + sequence).
fn run(mode: AttachMode, net: u8) -> Option<[Vec<u32>; 2]> {
    // Safety: sysconf has no preconditions.
    if unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) } < 2 {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "\n!!!!!!!! SKIPPED multi-queue test: needs two CPUs !!!!!!!!\n");
        return None;
    }
    let gw = Netns::new("gw");
    let peer = Netns::new("peer");
    let (g, p) = veth(&gw, "wan0", &peer, "wan1", net, 2);
    let gip = g.ip4;
    let (prog, mut xsks) = gw.run(move || {
        let ifx = rampart_nic::ifindex("wan0").unwrap();
        let mut prog = SteeringProgram::load(Role::Wan, LoadOptions { max_queues: 2 }).unwrap();
        prog.attach(ifx, AttachOptions { mode, force: false }).unwrap();
        prog.add_local_address(IpAddr::V4(gip)).unwrap();
        // One worker per queue, each with its own UMEM.
        let xsks: Vec<XskRx> = (0..2).map(|q| XskRx::bind("wan0", q, &XskConfig::default())).collect();
        for (q, x) in xsks.iter().enumerate() {
            prog.register_socket(q as u32, &x.sock).unwrap();
        }
        (prog, xsks)
    });
    let (gmac, pmac, pip) = (g.mac, p.mac, p.ip4);
    let senders: Vec<_> = (0..2usize)
        .map(|cpu| {
            peer.spawn(move || {
                pin_to_cpu(cpu);
                let ps = PacketSocket::open("wan1");
                ps.qdisc_bypass();
                for seq in 0..PER_QUEUE {
                    let mut f = eth(gmac, pmac, &[], ETH_IP);
                    f.extend(ipv4(pip, gip, 50, &[], 0, &esp(0x100 * cpu as u32 + seq, seq, 20)));
                    ps.send(&pad60(f));
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    let mut out: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut total = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while total < 2 * PER_QUEUE as usize && std::time::Instant::now() < deadline {
        for (q, x) in xsks.iter_mut().enumerate() {
            let (frames, _) = x.collect_until(Duration::from_millis(50), |_| false);
            total += frames.len();
            out[q].extend(frames.iter().filter_map(|f| frame_spi(f)).map(|(spi, _)| spi));
        }
    }
    let c = prog.counters().unwrap();
    assert_eq!(c.no_socket, 0, "{c:?}");
    Some(out)
}

#[test]
fn native_mode_delivers_each_queue_to_its_own_socket() {
    if !require_root("native_mode_delivers_each_queue_to_its_own_socket") {
        return;
    }
    let Some([q0, q1]) = run(AttachMode::Native, 106) else { return };
    eprintln!("native: queue 0 got {} frames, queue 1 got {}", q0.len(), q1.len());
    let want0: Vec<u32> = (0..PER_QUEUE).collect();
    let want1: Vec<u32> = (0..PER_QUEUE).map(|s| 0x100 + s).collect();
    assert_eq!(q0, want0, "queue 0 receives what CPU 0 sent, in order");
    assert_eq!(q1, want1, "queue 1 receives what CPU 1 sent, in order");
}

#[test]
fn generic_mode_delivers_everything_to_queue_0() {
    if !require_root("generic_mode_delivers_everything_to_queue_0") {
        return;
    }
    let Some([q0, q1]) = run(AttachMode::Generic, 107) else { return };
    eprintln!("generic: queue 0 got {} frames, queue 1 got {}", q0.len(), q1.len());
    assert_eq!(q0.len(), 2 * PER_QUEUE as usize);
    assert!(q1.is_empty());
}
