//! The wall clock set forward and back by hours under a running data plane, as root, in the
//! namespaces of `e2e.rs`: gateway A runs under libfaketime (only its wall clock is moved, read
//! from a file the test rewrites; the monotonic clocks are left alone), with SAs whose time
//! lifetimes are minutes. Nothing may expire: lifetimes count on the SA database's clock
//! (`CLOCK_BOOTTIME`), which setting the wall clock does not move. Traffic keeps flowing, no
//! SA is dropped as expired, and no expiry event reaches the database.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn wall_clock_jumps_expire_nothing() {
    if !require_root("wall_clock_jumps_expire_nothing") {
        return;
    }
    if !Path::new(LIBFAKETIME).exists() {
        assert!(std::env::var_os("CI").is_none(), "{LIBFAKETIME} missing: scripts/setup.sh installs libfaketime");
        eprintln!("SKIPPED wall_clock_jumps_expire_nothing: {LIBFAKETIME} missing (apt install libfaketime)");
        return;
    }
    let topo = Topology::new(1);
    let scratch = Scratch::new("clock");
    // Every SA of A: soft after 2 minutes, hard after 4.
    install_tunnels_with(&scratch.dbs[0], &scratch.dbs[1], |_| {
        &["limit", "time-soft", "120", "limit", "time-hard", "240"]
    });
    let offset = scratch.dir.join("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    let env = vec![
        ("LD_PRELOAD".to_string(), LIBFAKETIME.to_string()),
        ("FAKETIME_TIMESTAMP_FILE".to_string(), offset.display().to_string()),
        ("FAKETIME_NO_CACHE".to_string(), "1".to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_string(), "1".to_string()),
    ];
    let mut ga = Gateway::start_with(&topo, "ga", &scratch.dbs[0], &scratch.dir, 1, env);
    let _faketime_files = FaketimeFiles(ga.child.as_ref().map(std::process::Child::id));
    let gb = Gateway::start(&topo, "gb", &scratch.dbs[1], &scratch.dir, 1);
    topo.wait_reachable("ha", "10.2.0.2", 10);
    assert_eq!(topo.ping("ha", "10.2.0.2", &["-c", "3", "-i", "0.2"]).1, 3);

    for jump in ["+5h", "-5h", "+30d", "-2h"] {
        std::fs::write(&offset, format!("{jump}\n")).unwrap();
        // The lifetime sweep runs every second, the workers check on every burst.
        std::thread::sleep(Duration::from_millis(2500));
        let (tx, rx, out) = topo.ping("ha", "10.2.0.2", &["-c", "5", "-i", "0.2"]);
        eprintln!("wall clock {jump}: ping {rx}/{tx}");
        assert_eq!(rx, 5, "traffic stopped after the wall clock moved {jump}: {out}\n{}", ga.log_text());
        assert_eq!(ga.total("drops", "sa_expired"), 0, "an SA expired after the wall clock moved {jump}");
    }
    // No expiry event reached the database either.
    let log = ga.log_text();
    assert!(ga.stop(), "{log}");
    let mut w = rampart_sadb::Writer::open(&scratch.dbs[0]).unwrap();
    let mut events = Vec::new();
    while let Some(e) = w.pop_event() {
        events.push(e);
    }
    let expiries: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, rampart_sadb::Event::SoftExpire { .. } | rampart_sadb::Event::HardExpire { .. }))
        .collect();
    assert!(expiries.is_empty(), "expiry events after wall clock jumps: {expiries:?}");
    drop(gb);
}

/// libfaketime's shared memory and semaphore of the faked gateway (`/dev/shm/faketime_shm_<pid>`,
/// `/dev/shm/sem.faketime_sem_<pid>`): it removes them only when the process exits normally,
/// and a stopped gateway does not; removed on drop.
struct FaketimeFiles(Option<u32>);

impl Drop for FaketimeFiles {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::fs::remove_file(format!("/dev/shm/faketime_shm_{pid}"));
            let _ = std::fs::remove_file(format!("/dev/shm/sem.faketime_sem_{pid}"));
        }
    }
}
