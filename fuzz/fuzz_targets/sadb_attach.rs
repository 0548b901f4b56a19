//! The SA database's attach path against a hostile or damaged `/dev/shm` file: what the data
//! plane (`Reader::attach`, then every read) and a restarted IKE daemon (`Writer::open`, which
//! rolls a crashed writer's journal forward) do with it. With bit 0 of the first byte clear the
//! input is the whole file; with it set, a genuine small database (two SAs, ESP and AH, and a
//! policy) is patched: the next four bytes cut it to a length (or leave it whole), then each
//! five-byte group `offset(4) value(1)` overwrites one byte. Either attach refuses with an error,
//! or every read answers a record or an error. Never a panic, a hang or a fault.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rampart_sa::{Direction, Lifetimes, Mode, Protocol, SaConfig, Suite, TrafficSelector};
use rampart_sadb::{
    Capacities, IpPrefix, Policy, PolicyAction, PolicyDir, PortRange, Reader, Selector, Template, Writer,
};
use zeroize::Zeroizing;

fn sa(spi: u32, protocol: Protocol, suite: &str) -> SaConfig {
    let suite = match protocol {
        Protocol::Esp => Suite::from_swanctl(suite).unwrap(),
        Protocol::Ah => Suite::ah_from_swanctl(suite).unwrap(),
    };
    SaConfig {
        spi,
        direction: Direction::Outbound,
        protocol,
        suite,
        encryption_key: Zeroizing::new(vec![7; suite.encryption_key_len()]),
        integrity_key: Zeroizing::new(vec![9; suite.integrity_key_len()]),
        mode: Mode::Tunnel,
        local: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        remote: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        encap: None,
        esn: true,
        replay_window: 64,
        local_ts: vec![TrafficSelector::from_prefix(IpAddr::V4(Ipv4Addr::new(198, 18, 1, 0)), 24)],
        remote_ts: vec![TrafficSelector::from_prefix(IpAddr::V4(Ipv4Addr::new(198, 18, 2, 0)), 24)],
        lifetimes: Lifetimes::default(),
    }
}

/// Where this process keeps its files: a directory of its own on tmpfs.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let d = base.join(format!("rampart-fuzz-sadb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// The bytes of a genuine small database, built once.
fn genuine() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = dir().join("genuine.sadb");
        let _ = std::fs::remove_file(&path);
        let caps = Capacities { sas: 4, policies: 4, events: 8, journal: 8 };
        let mut w = Writer::create(&path, caps).unwrap();
        let esp = w.install_sa(&sa(0x1001, Protocol::Esp, "aes128gcm16"), 1, 1).unwrap();
        w.install_sa(&sa(0x1002, Protocol::Ah, "sha256"), 2, 1).unwrap();
        let prefix = |a: [u8; 4]| IpPrefix::new(IpAddr::V4(a.into()), 24).unwrap();
        let policy = Policy {
            dir: PolicyDir::Out,
            selector: Selector {
                src: prefix([198, 18, 1, 0]),
                dst: prefix([198, 18, 2, 0]),
                proto: 0,
                sport: PortRange::ANY,
                dport: PortRange::ANY,
            },
            priority: 100,
            action: PolicyAction::Protect(Template {
                protocol: Protocol::Esp,
                src: "192.0.2.1".parse().unwrap(),
                dst: "192.0.2.2".parse().unwrap(),
                spi: 0,
                mode: Mode::Tunnel,
                reqid: 1,
            }),
        };
        w.add_policy(&policy, Some(esp)).unwrap();
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        bytes
    })
}

fn file_bytes(data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = data.split_first()?;
    if mode & 1 == 0 {
        return Some(rest.to_vec());
    }
    let mut bytes = genuine().to_vec();
    let (cut, patches) = rest.split_first_chunk::<4>()?;
    let cut = u32::from_le_bytes(*cut) as usize;
    if cut < bytes.len() {
        bytes.truncate(cut);
    }
    for p in patches.chunks_exact(5) {
        let at = u32::from_le_bytes([p[0], p[1], p[2], p[3]]) as usize;
        if let Some(b) = bytes.get_mut(at) {
            *b = p[4];
        }
    }
    Some(bytes)
}

fn read_everything(r: &Reader) {
    let caps = r.capacities();
    let _ = (r.generation(), r.writer_info());
    for slot in 0..caps.sas.min(64) {
        let _ = r.read_sa(slot);
        let _ = r.read_sa_meta(slot);
    }
    for slot in 0..caps.policies.min(64) {
        let _ = r.read_policy(slot);
    }
    let _ = r.find_sa(0x1001, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    let mut snap = r.snapshot();
    let _ = r.refresh(&mut snap);
    let _ = snap.sas().count() + snap.policies().count();
}

fuzz_target!(|data: &[u8]| {
    let Some(bytes) = file_bytes(data) else { return };
    let path = dir().join("input.sadb");
    std::fs::write(&path, &bytes).unwrap();
    if let Ok(r) = Reader::attach(&path) {
        read_everything(&r);
    }
    if let Ok(mut w) = Writer::open(&path) {
        let _ = w.repair_report();
        let _ = w.sas().count() + w.policies().count();
        // The ring holds at most its capacity: a damaged one must not keep a reader popping.
        let most = u64::from(w.capacities().events) + 1;
        let popped = (0..=most).take_while(|_| w.pop_event().is_some()).count() as u64;
        assert!(popped <= most, "popped {popped} events from a ring of {}", w.capacities().events);
        read_everything(&w.reader());
    }
    let _ = std::fs::remove_file(&path);
});
