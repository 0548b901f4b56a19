//! Tunnel load generator: how fast an IKEv2 responder establishes tunnels, and how much memory
//! each established tunnel costs it, for Rampart's IKE daemon and strongSwan side by side.
//!
//! ```text
//!   [rtun<pid>i]  veth "tuni" 10.1.0.1 ... 10.1.x.y (many source addresses)
//!        |        Rampart's own initiator (rampart_ike::Endpoint + its DH pool + sockets)
//!        |
//!   [rtun<pid>r]  veth "tunr" 10.0.0.1: the responder under test, one at a time:
//!                 `rampart ike` (in-process daemon, SA database in /dev/shm), or
//!                 strongSwan's charon (kernel-libipsec, Debian 5.9)
//! ```
//!
//! For each tunnel count the initiator brings that many IKE_SAs up (each with one CHILD_SA,
//! its own identity and its own /32 traffic selector), keeping `--window` handshakes in flight,
//! and reports tunnels established per second (first IKE_SA_INIT to last CHILD_SA). Memory per
//! tunnel is the responder's resident anonymous memory growth divided by the tunnels (the heap:
//! IKE state; for strongSwan it also holds its userspace ESP SAs), and, for Rampart, the SA
//! database's allocated pages divided by the tunnels. Every row is measured in the same run on
//! the same machine; the table prints the ratio to strongSwan.
//!
//! `--auth` picks how the tunnels authenticate, the same for both responders: `psk` (default:
//! one key for every identity), `psk-each` (a key of its own per identity, the responder's
//! secrets hold one per branch) or `cert` (ECDSA P-256 certificates, one per identity, from a CA
//! made for the run with rcgen; the responder's template takes `*.tunnels.bench` under that CA
//! and signs with its own P-256 key, RFC 7427).
//!
//! Run as root: `cargo run --release -p rampart-bench --bin tunnels -- [--tunnels 1000,10000]
//! [--addrs 500] [--window 64] [--timeout 300] [--ike-proposal aes256gcm16-prfsha256-x25519]
//! [--auth psk|psk-each|cert] [--no-strongswan] [--dh-inline]`. Namespaces, processes and
//! files it creates are removed at the end, also on Ctrl-C.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rampart_bench::Table;
use rampart_esp::TrafficSelector;
use rampart_ike::cert::Certificate;
use rampart_ike::config::{AuthConfig, AuthMethod};
use rampart_ike::crypto::{DhGroup, SystemRandom};
use rampart_ike::message::Identification;
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::sign::PrivateKey;
use rampart_ike::trust::TrustStore;
use rampart_ike::{ChildConfig, ConnectionConfig, Endpoint, EndpointConfig, Event};
use rampart_ike_daemon::pool::DhPool;
use rampart_ike_daemon::sockets::{Inbound, Poller, Ready, SocketSet, classify};
use rampart_ike_daemon::{Waker, memory_of};

const RESPONDER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PSK: &str = "bench-psk-0123456789abcdef-0123456789";
const DEFAULT_IKE_PROPOSAL: &str = "aes256gcm16-prfsha256-x25519";

static IKE_PROPOSAL_ARG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The IKE proposal of every side (`--ike-proposal`, swanctl spelling).
fn ike_proposal() -> &'static str {
    IKE_PROPOSAL_ARG.get().map_or(DEFAULT_IKE_PROPOSAL, String::as_str)
}
const ESP_PROPOSAL: &str = "aes256gcm16";
const HUB_ID: &str = "hub.tunnels.bench";

/// How the tunnels authenticate (`--auth`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// One pre-shared key for every identity.
    Psk,
    /// A pre-shared key per identity.
    PskEach,
    /// An ECDSA P-256 certificate per identity.
    Cert,
}

impl Auth {
    fn parse(text: &str) -> Result<Auth, String> {
        match text {
            "psk" => Ok(Auth::Psk),
            "psk-each" => Ok(Auth::PskEach),
            "cert" => Ok(Auth::Cert),
            other => Err(format!("--auth {other}: psk, psk-each or cert")),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Auth::Psk => "PSK, one key for all identities",
            Auth::PskEach => "PSK, a key per identity",
            Auth::Cert => "ECDSA P-256 certificates, one per identity",
        }
    }
}

/// Tunnel `i`'s identity.
fn tunnel_id(i: usize) -> String {
    format!("t{i}.tunnels.bench")
}

/// Tunnel `i`'s key when every identity has its own.
fn tunnel_psk(i: usize) -> String {
    format!("bench-psk-{i}-0123456789abcdef-0123456789")
}

/// `--auth`'s spelling of `auth`.
fn arg_name(auth: Auth) -> &'static str {
    match auth {
        Auth::Psk => "psk",
        Auth::PskEach => "psk-each",
        Auth::Cert => "cert",
    }
}
const CHARON: &str = "/usr/sbin/charon-systemd";
const SWANCTL: &str = "/usr/sbin/swanctl";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(p) = args.iter().position(|a| a == "--ike-proposal").and_then(|i| args.get(i + 1)) {
        let _ = IKE_PROPOSAL_ARG.set(p.clone());
    }
    let code = match args.get(1).map(String::as_str) {
        Some("--role") => match args.get(2).map(String::as_str) {
            Some("responder") => role_responder(&args[3..]),
            Some("initiator") => role_initiator(&args[3..]),
            Some("dataplane-memory") => role_dataplane_memory(&args[3..]),
            _ => Err("unknown role".into()),
        },
        _ => orchestrate(&args[1..]),
    };
    if let Err(e) = code {
        eprintln!("tunnels: {e}");
        std::process::exit(1);
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

/// The i-th initiator source address: 10.1.0.1, 10.1.0.2, ...
fn source_addr(i: usize) -> Ipv4Addr {
    let n = 0x0a01_0001u32 + i as u32;
    Ipv4Addr::from(n)
}

/// The i-th tunnel's protected address behind the initiator: 172.16.0.0/12, one /32 each.
fn tunnel_net(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0xac10_0000u32 + i as u32)
}

// ---- the responder process ------------------------------------------------------------------

/// `--role responder CONFIG`: the IKE daemon in this process until SIGTERM.
fn role_responder(args: &[String]) -> Result<(), String> {
    let config = PathBuf::from(args.first().ok_or("responder: config path missing")?);
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone()).map_err(|e| e.to_string())?;
    rampart_ike_daemon::run(&config, stop, reload).map_err(|e| e.to_string())
}

// ---- the initiator process ------------------------------------------------------------------

/// `--role initiator --tunnels N --addrs A --window W --timeout S --report FILE`: brings N
/// tunnels up against the responder and writes `established failed seconds` to the report.
fn role_initiator(args: &[String]) -> Result<(), String> {
    let n: usize = arg(args, "--tunnels", 1000);
    let addrs_n: usize = arg(args, "--addrs", 500).clamp(1, n.max(1));
    let window: usize = arg(args, "--window", 256).max(1);
    let timeout = Duration::from_secs(arg(args, "--timeout", 180));
    let report: String = arg(args, "--report", String::from("/dev/stdout"));
    let auth = Auth::parse(&arg(args, "--auth", String::from("psk")))?;
    let pki_dir = PathBuf::from(arg(args, "--pki", String::new()));
    let addrs: Vec<IpAddr> = (0..addrs_n).map(|i| IpAddr::V4(source_addr(i))).collect();
    let cfg = EndpointConfig {
        offload_dh: true,
        cookie_threshold: usize::MAX,
        block_threshold: usize::MAX,
        retransmit_timeout: Duration::from_secs(2),
        ..EndpointConfig::default()
    };
    let mut ep = Endpoint::new(cfg, Box::new(SystemRandom::new()));
    // Certificates are checked against the wall clock.
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    ep.set_wall_clock(Instant::now(), unix.as_secs());
    let proposals = parse_ike_proposals(ike_proposal()).map_err(|e| e.to_string())?;
    let groups: Vec<DhGroup> = proposals.iter().flat_map(|p| p.dh.iter().copied()).collect();
    let esp = parse_esp_proposals(ESP_PROPOSAL).map_err(|e| e.to_string())?;
    let trust = match auth {
        Auth::Cert => {
            let ca = Certificate::from_pem_or_der(&read(&pki_dir.join("ca.pem"))?).map_err(|e| e.to_string())?;
            Arc::new(TrustStore { cas: ca, crls: Vec::new() })
        }
        _ => Arc::new(TrustStore::default()),
    };
    for i in 0..n {
        let key = if auth == Auth::PskEach { tunnel_psk(i) } else { PSK.to_string() };
        let mut c = ConnectionConfig::psk(
            &format!("t{i}"),
            Identification::fqdn(&tunnel_id(i)),
            Some(Identification::fqdn(HUB_ID)),
            key.as_bytes(),
        );
        if auth == Auth::Cert {
            let certs =
                Certificate::from_pem_or_der(&read(&pki_dir.join(format!("t{i}.pem")))?).map_err(|e| e.to_string())?;
            let key =
                PrivateKey::from_pem_or_der(&read(&pki_dir.join(format!("t{i}.key")))?).map_err(|e| e.to_string())?;
            c.local = AuthConfig { certs, key: Some(Arc::new(key)), ..AuthConfig::new(AuthMethod::Pubkey, c.local.id) };
            c.remote = AuthConfig::new(AuthMethod::Pubkey, Some(Identification::fqdn(HUB_ID)));
            c.psk = None;
            c.trust = trust.clone();
        }
        c.local_addrs = vec![addrs[i % addrs_n]];
        c.remote_addrs = vec![IpAddr::V4(RESPONDER)];
        c.proposals = proposals.clone();
        c.children = vec![ChildConfig::new(
            "net",
            vec![TrafficSelector::from_prefix(IpAddr::V4(tunnel_net(i)), 32)],
            vec![TrafficSelector::from_prefix("10.200.0.0".parse().map_err(|_| "addr")?, 16)],
            esp.clone(),
        )];
        ep.add_connection(c);
    }
    let waker = Arc::new(Waker::new().map_err(|e| e.to_string())?);
    let (pool, shares, dh_rx) =
        DhPool::start(2, 256, &groups, waker.clone(), Default::default()).map_err(|e| e.to_string())?;
    ep.set_key_share_source(Box::new(shares));
    let sockets = SocketSet::bind(&addrs, 500, 4500).map_err(|(a, e)| format!("bind {a}: {e}"))?;
    let poller = Poller::new(&sockets, &waker).map_err(|e| e.to_string())?;
    // Let the key-share supply fill before the clock starts.
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = vec![0u8; 65536];
    let mut scratch = Vec::new();
    let mut ready = Vec::new();
    let mut todo: VecDeque<usize> = (0..n).collect();
    let (mut in_flight, mut done, mut failed, mut sent) = (0usize, 0usize, 0usize, 0u64);
    let start = Instant::now();
    let mut last = start;
    while done + failed < n && start.elapsed() < timeout {
        let now = Instant::now();
        while in_flight < window {
            let Some(i) = todo.pop_front() else { break };
            match ep.initiate(now, &format!("t{i}"), None) {
                Ok(_) => in_flight += 1,
                Err(_) => failed += 1,
            }
        }
        let wait = ep.poll_timeout().map_or(Duration::from_millis(50), |t| t.saturating_duration_since(now));
        ready.clear();
        poller.wait(wait.min(Duration::from_millis(50)), &mut ready);
        let now = Instant::now();
        for r in &ready {
            match r {
                Ready::Waker => waker.reset(),
                Ready::Socket(s) => {
                    for _ in 0..256 {
                        let Some((local, remote, len, nat_t)) = sockets.recv(*s, &mut buf) else { break };
                        if let Inbound::Ike(msg) = classify(nat_t, &buf[..len]) {
                            ep.handle(now, local, remote, msg);
                        }
                    }
                }
            }
        }
        while let Ok(d) = dh_rx.try_recv() {
            match d {
                rampart_ike_daemon::pool::Done::Dh(d) => ep.dh_done(now, d),
                rampart_ike_daemon::pool::Done::Auth(a) => ep.auth_done(now, a),
            }
        }
        if ep.poll_timeout().is_some_and(|t| t <= now) {
            ep.handle_timeout(now);
        }
        loop {
            let mut moved = false;
            while let Some(job) = ep.poll_dh_job() {
                pool.submit(job);
                moved = true;
            }
            while let Some(job) = ep.poll_auth_job() {
                pool.submit_auth(job);
                moved = true;
            }
            while let Some(t) = ep.poll_transmit() {
                let _ = sockets.send(&t, &mut scratch);
                sent += 1;
                moved = true;
            }
            while let Some(e) = ep.poll_event() {
                moved = true;
                match e {
                    Event::InstallChildSa { .. } => {
                        done += 1;
                        in_flight = in_flight.saturating_sub(1);
                        last = Instant::now();
                    }
                    Event::ChildSaFailed { reason, .. } => {
                        if failed < 3 {
                            eprintln!("[initiator] CHILD_SA failed: {}", reason.name());
                        }
                        failed += 1;
                        in_flight = in_flight.saturating_sub(1);
                    }
                    Event::IkeSaDown { reason, .. } => {
                        // Only a tunnel that never came up counts here (nothing deletes later).
                        if failed < 3 {
                            eprintln!("[initiator] IKE SA down: {reason:?}");
                        }
                        failed += 1;
                        in_flight = in_flight.saturating_sub(1);
                    }
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        }
    }
    let secs = last.duration_since(start).as_secs_f64();
    std::fs::write(&report, format!("{done} {failed} {secs} {sent}\n")).map_err(|e| e.to_string())?;
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The run's certificates (`--auth cert`) under `dir`: `ca.pem`, the responder's `hub.pem` and
/// `hub.key`, and `t<i>.pem` / `t<i>.key` for each of `tunnels` identities, ECDSA P-256.
fn make_pki(dir: &Path, tunnels: usize) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let e = |what: &str, err: rcgen::Error| format!("certificates: {what}: {err}");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|err| format!("{}: {err}", dir.join(name).display()))
    };
    let ca_key = KeyPair::generate().map_err(|err| e("CA key", err))?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "Rampart tunnels bench CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    write("ca.pem", &ca.self_signed(&ca_key).map_err(|err| e("CA", err))?.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    let started = Instant::now();
    for (name, id) in std::iter::once(("hub".to_string(), HUB_ID.to_string()))
        .chain((0..tunnels).map(|i| (format!("t{i}"), tunnel_id(i))))
    {
        let key = KeyPair::generate().map_err(|err| e(&id, err))?;
        let mut params = CertificateParams::new(vec![id.clone()]).map_err(|err| e(&id, err))?;
        params.distinguished_name.push(DnType::CommonName, &id);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        write(&format!("{name}.pem"), &params.signed_by(&key, &issuer).map_err(|err| e(&id, err))?.pem())?;
        let key_path = dir.join(format!("{name}.key"));
        write(&format!("{name}.key"), &key.serialize_pem())?;
        std::fs::set_permissions(&key_path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|err| format!("{}: {err}", key_path.display()))?;
    }
    eprintln!("[tunnels] {} certificates made in {:.1} s", tunnels + 1, started.elapsed().as_secs_f64());
    Ok(())
}

/// A swanctl-style credential folder for a responder: its certificate, key and the CA.
fn responder_credentials(pki: &Path, dir: &Path, key_folder: &str) -> Result<(), String> {
    for (file, folder) in [("hub.pem", "x509"), ("hub.key", key_folder), ("ca.pem", "x509ca")] {
        std::fs::create_dir_all(dir.join(folder)).map_err(|e| e.to_string())?;
        std::fs::copy(pki.join(file), dir.join(folder).join(file)).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

// ---- orchestration --------------------------------------------------------------------------

/// Namespaces, processes and files of one measurement; all removed on drop.
struct Bed {
    ns_i: String,
    ns_r: String,
    dir: PathBuf,
    responder: Option<Child>,
}

impl Bed {
    fn new(tag: &str, addrs: usize) -> Result<Bed, String> {
        let base = format!("rtun{}{tag}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("rampart-tunnels-{base}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let bed = Bed { ns_i: format!("{base}i"), ns_r: format!("{base}r"), dir, responder: None };
        sh(&["ip", "netns", "add", &bed.ns_i])?;
        sh(&["ip", "netns", "add", &bed.ns_r])?;
        sh(&[
            "ip", "-n", &bed.ns_i, "link", "add", "tuni", "type", "veth", "peer", "name", "tunr", "netns", &bed.ns_r,
        ])?;
        for (ns, dev) in [(&bed.ns_i, "tuni"), (&bed.ns_r, "tunr")] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            // Room for a neighbour entry per source address.
            for (k, v) in [("gc_thresh1", "8192"), ("gc_thresh2", "32768"), ("gc_thresh3", "65536")] {
                let _ = sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", &format!("net.ipv4.neigh.default.{k}={v}")]);
            }
        }
        sh(&["ip", "-n", &bed.ns_r, "addr", "add", &format!("{RESPONDER}/8"), "dev", "tunr"])?;
        // The protected side's gateway address (kernel-libipsec routes each tunnel with it).
        sh(&["ip", "-n", &bed.ns_r, "addr", "add", "10.200.0.1/16", "dev", "lo"])?;
        let batch = bed.dir.join("addrs.batch");
        let lines: String = (0..addrs).map(|i| format!("address add {}/8 dev tuni\n", source_addr(i))).collect();
        std::fs::write(&batch, lines).map_err(|e| e.to_string())?;
        sh(&["ip", "-n", &bed.ns_i, "-batch", &batch.display().to_string()])?;
        Ok(bed)
    }

    fn responder_pid(&self) -> Option<u32> {
        self.responder.as_ref().map(Child::id)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(mut c) = self.responder.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            for _ in 0..50 {
                if c.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns_i]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns_r]).status();
        if std::env::var_os("TUNNELS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Responder {
    Rampart { offload: bool },
    StrongSwan,
}

impl Responder {
    fn label(self) -> &'static str {
        match self {
            Responder::Rampart { offload: true } => "rampart",
            Responder::Rampart { offload: false } => "rampart (DH inline)",
            Responder::StrongSwan => "strongswan",
        }
    }
}

struct Outcome {
    established: usize,
    failed: usize,
    secs: f64,
    responder_count: usize,
    anon_growth: f64,
    rss_growth: f64,
    /// Responder CPU time (all threads) per established tunnel, seconds.
    cpu_per_tunnel: f64,
    /// Rampart: the longest stretch its event loop was busy (timers wait that long at worst).
    max_busy_ms: Option<f64>,
    db_growth: Option<f64>,
    /// Rampart: the data plane's memory per tunnel (bytes): the shared lookup tables, then one
    /// worker's SA runtimes (expanded keys, replay windows).
    dataplane: Option<(f64, f64)>,
}

/// This process's anonymous resident memory, bytes.
fn own_anon() -> u64 {
    memory_of("self").map_or(0, |(_, anon)| anon)
}

/// [`dataplane_memory`] in a process of its own (a fresh heap, so that memory freed by an earlier
/// measurement is not reused and missed): prints the two figures.
fn role_dataplane_memory(args: &[String]) -> Result<(), String> {
    let db: String = arg(args, "--db", String::new());
    let tunnels: f64 = arg(args, "--tunnels", 1.0);
    let (tables, runtimes) = dataplane_memory(Path::new(&db), tunnels)?;
    println!("{tables} {runtimes}");
    Ok(())
}

/// Runs [`role_dataplane_memory`] for the database at `db`.
fn measure_dataplane_memory(db: &Path, tunnels: f64) -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(["--role", "dataplane-memory", "--db"])
        .arg(db)
        .args(["--tunnels", &tunnels.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err("data plane memory: the measuring process failed".into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = text.split_whitespace().filter_map(|w| w.parse::<f64>().ok());
    Ok((v.next().ok_or("data plane memory: no answer")?, v.next().ok_or("data plane memory: no answer")?))
}

/// What the data plane would hold for the SAs of the database at `db`, per tunnel: builds its
/// lookup tables the way its control thread does, then the SA runtimes the way a worker does
/// (the fastest backend of each suite), and weighs each by the growth of this process's
/// anonymous memory.
fn dataplane_memory(db: &Path, tunnels: f64) -> Result<(f64, f64), String> {
    use rampart_esp::{Direction, InboundSa, OutboundSa};
    let before = own_anon();
    let reader = rampart_sadb::Reader::attach(db).map_err(|e| format!("{}: {e}", db.display()))?;
    let mut builder = rampart_dataplane::tables::TableBuilder::new(reader);
    let tables = builder.build();
    let with_tables = own_anon();
    let mut outbound = Vec::new();
    let mut inbound = Vec::new();
    for e in builder.entries() {
        let backend = rampart_crypto::Backend::fastest(e.config.suite);
        match e.config.direction {
            Direction::Outbound => outbound.push(OutboundSa::new(&e.config, backend).map_err(|e| e.to_string())?),
            Direction::Inbound => inbound.push(
                match &e.shared.window {
                    Some(w) => InboundSa::new_shared(&e.config, backend, w.clone()),
                    None => InboundSa::new(&e.config, backend),
                }
                .map_err(|e| e.to_string())?,
            ),
        }
    }
    let with_runtimes = own_anon();
    eprintln!(
        "[tunnels] data plane: tables for {} SAs, runtimes for {} outbound and {} inbound",
        tables.sas.iter().flatten().count(),
        outbound.len(),
        inbound.len()
    );
    drop((tables, outbound, inbound));
    Ok((
        with_tables.saturating_sub(before) as f64 / tunnels,
        with_runtimes.saturating_sub(with_tables) as f64 / tunnels,
    ))
}

fn start_rampart(bed: &mut Bed, tunnels: usize, offload: bool, run: &Run) -> Result<(PathBuf, PathBuf), String> {
    let db = PathBuf::from(format!("/dev/shm/{}.sadb", bed.ns_r));
    let _ = std::fs::remove_file(&db);
    let sock = bed.dir.join("ike.sock");
    let (swanctl_dir, local, remote, secrets) = match run.auth {
        Auth::Cert => {
            let creds = bed.dir.join("rampart-creds");
            responder_credentials(&run.pki, &creds, "private")?;
            (
                format!("swanctl_dir = \"{}\"\n", creds.display()),
                format!("{{ auth = \"pubkey\", certs = \"hub.pem\", id = \"{HUB_ID}\" }}"),
                "{ auth = \"pubkey\", id = \"*.tunnels.bench\", cacerts = \"ca.pem\" }".to_string(),
                String::new(),
            )
        }
        Auth::Psk => (
            String::new(),
            format!("{{ auth = \"psk\", id = \"{HUB_ID}\" }}"),
            "{ auth = \"psk\" }".to_string(),
            format!("[secrets.ike-any]\nsecret = \"{PSK}\"\n"),
        ),
        Auth::PskEach => (
            String::new(),
            format!("{{ auth = \"psk\", id = \"{HUB_ID}\" }}"),
            "{ auth = \"psk\" }".to_string(),
            (0..tunnels)
                .map(|i| {
                    format!(
                        "[secrets.ike-t{i}]\nid-hub = \"{HUB_ID}\"\nid-branch = \"{}\"\nsecret = \"{}\"\n",
                        tunnel_id(i),
                        tunnel_psk(i)
                    )
                })
                .collect(),
        ),
    };
    let cfg = format!(
        r#"[daemon]
database = "{db}"
sa_capacity = {sas}
policy_capacity = {pols}
control_socket = "{sock}"
listen = "{RESPONDER}"
dh_workers = 2
dh_precompute = {pre}
offload_dh = {offload}
cookie_threshold = 1000000
block_threshold = 1000000
usage_interval = "1s"
{swanctl_dir}
[connections.hub]
local_addrs = "{RESPONDER}"
proposals = "{proposal}"
local = {local}
remote = {remote}
children.net = {{ local_ts = "10.200.0.0/16", remote_ts = "172.16.0.0/12", esp_proposals = "{ESP_PROPOSAL}" }}

{secrets}"#,
        db = db.display(),
        sas = (2 * tunnels + 1024).next_power_of_two(),
        pols = (tunnels + 1024).next_power_of_two(),
        sock = sock.display(),
        pre = if offload { 256 } else { 0 },
        proposal = ike_proposal(),
    );
    let path = bed.dir.join("responder.toml");
    std::fs::write(&path, cfg).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(bed.dir.join("responder.log")).map_err(|e| e.to_string())?;
    let child = Command::new("ip")
        .args(["netns", "exec", &bed.ns_r])
        .arg(&exe)
        .args(["--role", "responder"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| e.to_string())?;
    bed.responder = Some(child);
    if !wait_for(Duration::from_secs(10), || std::os::unix::net::UnixStream::connect(&sock).is_ok()) {
        return Err("the Rampart responder did not come up".into());
    }
    Ok((db, sock))
}

fn start_strongswan(bed: &mut Bed, tunnels: usize, run: &Run) -> Result<PathBuf, String> {
    let d = bed.dir.join("swan");
    std::fs::create_dir_all(d.join("swanctl")).map_err(|e| e.to_string())?;
    let (local, remote, secrets) = match run.auth {
        Auth::Cert => {
            responder_credentials(&run.pki, &d.join("swanctl"), "pkcs8")?;
            (
                format!("auth = pubkey\n      certs = hub.pem\n      id = {HUB_ID}"),
                "auth = pubkey\n      id = *.tunnels.bench\n      cacerts = ca.pem".to_string(),
                String::new(),
            )
        }
        Auth::Psk => (
            format!("auth = psk\n      id = {HUB_ID}"),
            "auth = psk".to_string(),
            format!("  ike-any {{\n    secret = \"{PSK}\"\n  }}\n"),
        ),
        Auth::PskEach => (
            format!("auth = psk\n      id = {HUB_ID}"),
            "auth = psk".to_string(),
            (0..tunnels)
                .map(|i| {
                    format!(
                        "  ike-t{i} {{\n    id-a = {HUB_ID}\n    id-b = {}\n    secret = \"{}\"\n  }}\n",
                        tunnel_id(i),
                        tunnel_psk(i)
                    )
                })
                .collect(),
        ),
    };
    let vici = d.join("charon.vici");
    let conf = format!(
        r#"charon {{
  load = random nonce openssl aes sha1 sha2 hmac gcm chapoly curve25519 kdf x509 pem pkcs1 pkcs8 pubkey constraints kernel-libipsec kernel-netlink socket-default vici
  install_routes = no
  block_threshold = 1000000
  cookie_threshold = 1000000
  init_limit_half_open = 0
  plugins {{
    vici {{
      socket = unix://{vici}
    }}
    kernel-libipsec {{
      allow_peer_ts = no
    }}
  }}
  filelog {{
    main {{
      path = {log}
      default = {level}
    }}
  }}
  journal {{
    default = -1
  }}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
}}
"#,
        vici = vici.display(),
        log = d.join("charon.log").display(),
        level = std::env::var("TUNNELS_SWAN_LOG").unwrap_or_else(|_| "0".into()),
    );
    std::fs::write(d.join("strongswan.conf"), conf).map_err(|e| e.to_string())?;
    let swanctl = format!(
        r#"connections {{
  hub {{
    version = 2
    local_addrs = {RESPONDER}
    proposals = {proposal}
    local {{
      {local}
    }}
    remote {{
      {remote}
    }}
    children {{
      net {{
        local_ts = 10.200.0.0/16
        remote_ts = 172.16.0.0/12
        esp_proposals = {ESP_PROPOSAL}
      }}
    }}
  }}
}}
secrets {{
{secrets}}}
"#,
        proposal = ike_proposal()
    );
    let conf_path = d.join("swanctl").join("swanctl.conf");
    std::fs::write(&conf_path, swanctl).map_err(|e| e.to_string())?;
    let child = Command::new("ip")
        .args(["netns", "exec", &bed.ns_r, CHARON])
        .env("STRONGSWAN_CONF", d.join("strongswan.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    bed.responder = Some(child);
    if !wait_for(Duration::from_secs(10), || vici.exists()) {
        return Err("charon did not come up".into());
    }
    let uri = format!("unix://{}", vici.display());
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns_r, SWANCTL, "--load-all", "--uri", &uri, "--file"])
        .arg(&conf_path)
        .output()
        .map_err(|e| e.to_string())?;
    if !String::from_utf8_lossy(&out.stdout).contains("loaded connection 'hub'") {
        return Err(format!("swanctl --load-all: {}", String::from_utf8_lossy(&out.stdout)));
    }
    Ok(vici)
}

fn strongswan_ike_sas(bed: &Bed, vici: &Path) -> usize {
    let uri = format!("unix://{}", vici.display());
    Command::new("ip")
        .args(["netns", "exec", &bed.ns_r, SWANCTL, "--stats", "--uri", &uri])
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .find(|l| l.trim_start().starts_with("IKE_SAs:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) a process used so far, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

fn file_bytes(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.blocks() * 512).unwrap_or(0)
}

/// What every measurement of a run shares.
struct Run {
    auth: Auth,
    /// `--auth cert`: the certificates of the run.
    pki: PathBuf,
}

fn measure(
    kind: Responder,
    tunnels: usize,
    addrs: usize,
    window: usize,
    timeout: u64,
    run: &Run,
) -> Result<Outcome, String> {
    let addrs = addrs.min(tunnels).max(1);
    let mut bed = Bed::new(if kind == Responder::StrongSwan { "s" } else { "r" }, addrs)?;
    let (db, sock, vici) = match kind {
        Responder::Rampart { offload } => {
            let (db, sock) = start_rampart(&mut bed, tunnels, offload, run)?;
            (Some(db), Some(sock), None)
        }
        Responder::StrongSwan => (None, None, Some(start_strongswan(&mut bed, tunnels, run)?)),
    };
    // Settle, then the baseline.
    std::thread::sleep(Duration::from_millis(800));
    let pid = bed.responder_pid().ok_or("no responder")?.to_string();
    let (rss0, anon0) = memory_of(&pid).ok_or("responder memory")?;
    let cpu0 = cpu_seconds(&pid);
    let db0 = db.as_deref().map(file_bytes);
    let report = bed.dir.join("report.txt");
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let script = format!(
        "ulimit -n $(ulimit -Hn); exec {} --role initiator --tunnels {tunnels} --addrs {addrs} --window {window} --timeout {timeout} --report {} --ike-proposal {} --auth {} --pki {}",
        exe.display(),
        report.display(),
        ike_proposal(),
        arg_name(run.auth),
        run.pki.display()
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &bed.ns_i, "sh", "-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("initiator: {}", String::from_utf8_lossy(&out.stderr)));
    }
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&report).map_err(|e| e.to_string())?;
    let f: Vec<&str> = text.split_whitespace().collect();
    let (established, failed, secs) = (
        f.first().and_then(|v| v.parse().ok()).unwrap_or(0usize),
        f.get(1).and_then(|v| v.parse().ok()).unwrap_or(0usize),
        f.get(2).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
    );
    let cpu1 = cpu_seconds(&pid);
    std::thread::sleep(Duration::from_millis(1500));
    let (rss1, anon1) = memory_of(&pid).ok_or("responder memory")?;
    let stats = sock.as_ref().and_then(|sock| {
        rampart_ike_daemon::control::call(sock, &rampart_ike_daemon::control::Request::Stats, Duration::from_secs(10))
            .ok()
            .and_then(|r| r.result)
    });
    let responder_count = match (&stats, &vici) {
        (Some(v), _) => v["child_sas"].as_u64().unwrap_or(0) as usize,
        (None, Some(vici)) => strongswan_ike_sas(&bed, vici),
        _ => 0,
    };
    let max_busy_ms =
        stats.as_ref().and_then(|v| v["event_loop_max_turn_cpu_us"].as_u64()).map(|us| us as f64 / 1000.0);
    let n = established.max(1) as f64;
    let dataplane = match db.as_deref() {
        Some(p) => Some(measure_dataplane_memory(p, n)?),
        None => None,
    };
    let out = Outcome {
        established,
        failed,
        secs,
        responder_count,
        anon_growth: anon1.saturating_sub(anon0) as f64 / n,
        rss_growth: rss1.saturating_sub(rss0) as f64 / n,
        cpu_per_tunnel: (cpu1 - cpu0) / n,
        max_busy_ms,
        db_growth: match (db.as_deref(), db0) {
            (Some(p), Some(b0)) => Some(file_bytes(p).saturating_sub(b0) as f64 / n),
            _ => None,
        },
        dataplane,
    };
    drop(bed);
    if let Some(db) = db {
        let _ = std::fs::remove_file(db);
    }
    Ok(out)
}

fn orchestrate(args: &[String]) -> Result<(), String> {
    if sh(&["id", "-u"]).map(|s| s.trim() == "0") != Ok(true) {
        return Err("needs root (network namespaces)".into());
    }
    let counts: Vec<usize> =
        arg(args, "--tunnels", String::from("1000,10000")).split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let addrs: usize = arg(args, "--addrs", 500);
    let window: usize = arg(args, "--window", 64);
    let timeout: u64 = arg(args, "--timeout", 300);
    let swan = !flag(args, "--no-strongswan") && Path::new(CHARON).exists();
    let inline = flag(args, "--dh-inline");
    let auth = Auth::parse(&arg(args, "--auth", String::from("psk")))?;
    let pki = std::env::temp_dir().join(format!("rampart-tunnels-pki-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&pki);
    if auth == Auth::Cert {
        make_pki(&pki, counts.iter().copied().max().unwrap_or(0))?;
    }
    let run = Run { auth, pki };
    let mut kinds = vec![Responder::Rampart { offload: true }];
    if inline {
        kinds.push(Responder::Rampart { offload: false });
    }
    if swan {
        kinds.push(Responder::StrongSwan);
    }
    println!(
        "tunnels: IKEv2 responders under Rampart's initiator ({}, ESP {ESP_PROPOSAL}, {}), \
         {addrs} source addresses, {window} handshakes in flight, {} CPUs",
        ike_proposal(),
        auth.describe(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut table = Table::new(&[
        "tunnels",
        "responder",
        "up",
        "failed",
        "resp. count",
        "seconds",
        "tunnels/s",
        "vs strongswan",
        "resp. CPU us/tunnel",
        "max loop turn CPU ms",
        "heap KiB/tunnel",
        "RSS KiB/tunnel",
        "SA DB KiB/tunnel",
        "data plane KiB/tunnel",
    ]);
    for &n in &counts {
        let mut rows = Vec::new();
        for &k in &kinds {
            eprintln!("[tunnels] {} x {n} ...", k.label());
            match measure(k, n, addrs, window, timeout, &run) {
                Ok(o) => rows.push((k, o)),
                Err(e) => eprintln!("[tunnels] {} x {n}: {e}", k.label()),
            }
        }
        let swan_rate =
            rows.iter().find(|(k, _)| *k == Responder::StrongSwan).map(|(_, o)| o.established as f64 / o.secs);
        for (k, o) in &rows {
            let rate = o.established as f64 / o.secs;
            table.row(vec![
                n.to_string(),
                k.label().to_string(),
                o.established.to_string(),
                o.failed.to_string(),
                o.responder_count.to_string(),
                format!("{:.2}", o.secs),
                format!("{rate:.0}"),
                swan_rate.map_or("-".into(), |s| format!("{:.2}x", rate / s)),
                format!("{:.0}", o.cpu_per_tunnel * 1e6),
                o.max_busy_ms.map_or("-".into(), |ms| format!("{ms:.1}")),
                format!("{:.1}", o.anon_growth / 1024.0),
                format!("{:.1}", o.rss_growth / 1024.0),
                o.db_growth.map_or("-".into(), |d| format!("{:.1}", d / 1024.0)),
                o.dataplane.map_or("-".into(), |(t, r)| format!("{:.1} + {:.1}", t / 1024.0, r / 1024.0)),
            ]);
        }
        table.gap();
    }
    let _ = std::fs::remove_dir_all(&run.pki);
    println!("{}", table.render());
    println!(
        "heap = growth of the responder's anonymous resident memory (RssAnon) per established tunnel; \
         strongSwan's includes its userspace ESP SAs (kernel-libipsec), Rampart's ESP SAs are in the SA \
         database (SA DB: allocated pages of the /dev/shm file per tunnel). data plane = the lookup \
         tables its control thread builds from that database (shared by the workers) + the SA runtimes \
         (expanded keys, replay windows) one worker holds, weighed in a fresh process after the run."
    );
    Ok(())
}
