//! Attach and detach: the program goes away with its owner (drop, SIGTERM, SIGKILL), a program an
//! older Rampart left through netlink is replaced, a foreign program is refused unless forced, and
//! a Rampart program held by a live link is refused unless forced. Needs root; each test builds
//! and removes its own namespace.

mod common;

use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rampart_nic::netlink::{self, XdpState};
use rampart_nic::{AttachMode, AttachOptions, Error, LoadOptions, RemovedVia, Role, SteeringProgram};

const DRV: u32 = 1 << 2; // XDP_FLAGS_DRV_MODE

fn one_veth(tag: u8) -> (Netns, Netns) {
    let a = Netns::new("gw");
    let b = Netns::new("peer");
    veth(&a, "wan0", &b, "wan1", tag, 1);
    (a, b)
}

fn query(ns: &Netns) -> XdpState {
    ns.run(|| netlink::xdp_query(rampart_nic::ifindex("wan0").unwrap()).unwrap())
}

fn load(role: Role) -> SteeringProgram {
    SteeringProgram::load(role, LoadOptions::default()).unwrap()
}

#[test]
fn dropping_the_program_detaches_it() {
    if !require_root("dropping_the_program_detaches_it") {
        return;
    }
    let (gw, _peer) = one_veth(110);
    let prog = gw.run(|| {
        let mut p = load(Role::Wan);
        p.attach(rampart_nic::ifindex("wan0").unwrap(), AttachOptions::default()).unwrap();
        p
    });
    assert_eq!(query(&gw).drv_prog_id, Some(prog.prog_id()));
    drop(prog);
    assert!(wait_for(Duration::from_secs(2), || query(&gw).drv_prog_id.is_none()), "still attached after drop");

    // Generic mode, and an explicit detach from a thread outside the namespace.
    let mut prog = gw.run(move || {
        let mut prog = load(Role::Lan);
        prog.attach(rampart_nic::ifindex("wan0").unwrap(), AttachOptions { mode: AttachMode::Generic, force: false })
            .unwrap();
        prog
    });
    assert_eq!(query(&gw).skb_prog_id, Some(prog.prog_id()));
    prog.detach();
    assert!(wait_for(Duration::from_secs(2), || query(&gw).skb_prog_id.is_none()));
}

/// Not a test by itself: the body of the child process that `owner_death_detaches` spawns. It
/// attaches a program in the namespace named by RAMPART_NIC_CHILD_NS, says so on stdout, and waits
/// to be killed.
#[test]
#[ignore = "runs only as the child process of owner_death_detaches"]
fn child_attach_and_wait() {
    let Ok(ns) = std::env::var("RAMPART_NIC_CHILD_NS") else { return };
    // Safety: prctl with integer arguments; dies with the parent test instead of lingering.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    enter(&format!("/run/netns/{ns}"));
    let mut p = load(Role::Wan);
    p.attach(rampart_nic::ifindex("wan0").unwrap(), AttachOptions::default()).unwrap();
    println!("ATTACHED {}", p.prog_id());
    std::thread::sleep(Duration::from_secs(60));
}

fn spawn_owner_and_kill(gw: &Netns, signal: libc::c_int) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_attach_and_wait", "--ignored", "--nocapture", "--test-threads=1"])
        .env("RAMPART_NIC_CHILD_NS", &gw.name)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut id = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest prints "test child_attach_and_wait ... " on the same line first.
        if let Some((_, rest)) = line.split_once("ATTACHED ") {
            id = Some(rest.trim().parse::<u32>().unwrap());
            break;
        }
    }
    let id = id.expect("child attached and reported its program id");
    assert_eq!(query(gw).drv_prog_id, Some(id), "child's program is on the interface");
    // Safety: signalling our own child by pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let status = child.wait().unwrap();
    assert!(!status.success(), "child ended by the signal: {status:?}");
    assert!(
        wait_for(Duration::from_secs(3), || query(gw).drv_prog_id.is_none()),
        "program still attached after the owner died of signal {signal}"
    );
}

#[test]
fn owner_death_detaches() {
    if !require_root("owner_death_detaches") {
        return;
    }
    let (gw, _peer) = one_veth(111);
    spawn_owner_and_kill(&gw, libc::SIGKILL);
    spawn_owner_and_kill(&gw, libc::SIGTERM);
}

#[test]
fn older_rampart_program_attached_by_netlink_is_replaced() {
    if !require_root("older_rampart_program_attached_by_netlink_is_replaced") {
        return;
    }
    let (gw, _peer) = one_veth(112);
    let ifx = gw.run(|| rampart_nic::ifindex("wan0").unwrap());
    // An older Rampart attached through netlink and went away: the program stays.
    let old_id = gw.run(move || {
        let old = load(Role::Wan);
        netlink::xdp_attach_netlink(ifx, old.prog_fd(), DRV).unwrap();
        old.prog_id()
    });
    assert_eq!(query(&gw).drv_prog_id, Some(old_id));

    let (new, report) = gw.run(move || {
        let mut new = load(Role::Wan);
        let r = new.attach(ifx, AttachOptions::default()).unwrap();
        (new, r)
    });
    assert_eq!(report.replaced.len(), 1);
    let r = &report.replaced[0];
    assert_eq!((r.prog_id, r.was_rampart, r.via), (old_id, true, RemovedVia::Netlink));
    assert_eq!(r.name, "rampart_wan");
    assert_eq!(query(&gw).drv_prog_id, Some(new.prog_id()));
    drop(new);
    assert!(wait_for(Duration::from_secs(2), || query(&gw).drv_prog_id.is_none()), "the old program came back");
}

#[test]
fn foreign_program_is_refused_unless_forced() {
    if !require_root("foreign_program_is_refused_unless_forced") {
        return;
    }
    let (gw, _peer) = one_veth(113);
    let ifx = gw.run(|| rampart_nic::ifindex("wan0").unwrap());
    // Somebody else's program: `return XDP_PASS`.
    let pass: [u64; 2] = [0x0000_0002_0000_00b7, 0x0000_0000_0000_0095]; // r0 = 2; exit
    let foreign = rampart_nic::bpf::load_xdp_program("foreign_pass", &pass, "GPL").unwrap();
    let foreign_id = rampart_nic::bpf::prog_info(foreign.as_fd()).unwrap().id;
    let foreign = gw.run(move || {
        netlink::xdp_attach_netlink(ifx, foreign.as_fd(), DRV).unwrap();
        foreign
    });

    let err = gw
        .run(move || {
            let mut p = load(Role::Wan);
            p.attach(ifx, AttachOptions::default()).map(|_| p)
        })
        .unwrap_err();
    match &err {
        Error::ForeignProgram { prog_id, name, .. } => {
            assert_eq!((*prog_id, name.as_str()), (foreign_id, "foreign_pass"));
        }
        e => panic!("expected ForeignProgram, got {e}"),
    }
    eprintln!("refused as expected: {err}");
    assert_eq!(query(&gw).drv_prog_id, Some(foreign_id), "the foreign program was left alone");

    let (p, report) = gw.run(move || {
        let mut p = load(Role::Wan);
        let r = p.attach(ifx, AttachOptions { force: true, ..Default::default() }).unwrap();
        (p, r)
    });
    assert_eq!(report.replaced.len(), 1);
    assert!(!report.replaced[0].was_rampart);
    assert_eq!(query(&gw).drv_prog_id, Some(p.prog_id()));
    drop(p);
    drop(foreign);
    assert!(wait_for(Duration::from_secs(2), || query(&gw).drv_prog_id.is_none()));
}

#[test]
fn program_held_by_a_live_link_is_in_use_unless_forced() {
    if !require_root("program_held_by_a_live_link_is_in_use_unless_forced") {
        return;
    }
    let (gw, _peer) = one_veth(114);
    let ifx = gw.run(|| rampart_nic::ifindex("wan0").unwrap());
    let first = gw.run(move || {
        let mut p = load(Role::Wan);
        p.attach(ifx, AttachOptions::default()).unwrap();
        p
    });
    let err = gw
        .run(move || {
            let mut p = load(Role::Wan);
            p.attach(ifx, AttachOptions::default()).map(|_| p)
        })
        .unwrap_err();
    assert!(matches!(err, Error::InUse { prog_id, .. } if prog_id == first.prog_id()), "{err}");
    assert_eq!(query(&gw).drv_prog_id, Some(first.prog_id()));

    let (second, report) = gw.run(move || {
        let mut p = load(Role::Wan);
        let r = p.attach(ifx, AttachOptions { force: true, ..Default::default() }).unwrap();
        (p, r)
    });
    assert_eq!(report.replaced[0].via, RemovedVia::Link);
    assert_eq!(query(&gw).drv_prog_id, Some(second.prog_id()));
    // The first owner closing its (now defunct) link must not disturb the second.
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(query(&gw).drv_prog_id, Some(second.prog_id()));
}

#[test]
fn native_attach_with_a_jumbo_peer_mtu_explains_itself() {
    if !require_root("native_attach_with_a_jumbo_peer_mtu_explains_itself") {
        return;
    }
    let (gw, peer) = one_veth(117);
    peer.ip(&["link", "set", "wan1", "mtu", "9000"]);
    let err = gw
        .run(|| {
            let mut p = load(Role::Wan);
            p.attach(rampart_nic::ifindex("wan0").unwrap(), AttachOptions::default()).map(|_| p)
        })
        .unwrap_err();
    assert!(err.to_string().contains("MTU"), "{err}");
    // Generic mode has no such limit.
    let p = gw.run(|| {
        let mut p = load(Role::Wan);
        p.attach(rampart_nic::ifindex("wan0").unwrap(), AttachOptions { mode: AttachMode::Generic, force: false })
            .unwrap();
        p
    });
    assert_eq!(query(&gw).skb_prog_id, Some(p.prog_id()));
}
