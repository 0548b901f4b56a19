//! Test support for the end-to-end tests: the namespace topology of `scripts/topology.sh`
//! (removed on drop, also when a test fails), `rampart` processes (the data planes and the
//! `sa`/`policy` commands), counters from the data planes' stats files, a pcap reader for the
//! ESP captured on the switch, the scapy ESP oracle, and frame injection.
//!
//! Nothing here sends traffic anywhere but into the namespaces a test creates.
#![allow(dead_code)]

#[path = "../../../../tests/support/process.rs"]
mod process;
use process::is_root;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// True when running as root; otherwise prints a loud skip notice.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED {test}: needs root (network namespaces, XDP, AF_XDP) !!!!!!!!\n"
    );
    false
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The `rampart` binary of this build, built first if needed (`RAMPART_BIN` overrides).
pub fn rampart_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RAMPART_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/rampart
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("rampart");
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let target_dir = profile_dir.parent().expect("target dir");
        let cargo = option_env!("CARGO").unwrap_or("cargo");
        let mut cmd = Command::new(cargo);
        // The environment cargo gives a test (CARGO_PKG_*, CARGO_MANIFEST_DIR, ...) would make
        // build scripts run again: build with the caller's plain environment.
        cmd.env_clear();
        for (k, v) in std::env::vars_os() {
            let k_str = k.to_string_lossy();
            if matches!(k_str.as_ref(), "PATH" | "HOME" | "USER" | "TMPDIR" | "CC" | "CFLAGS" | "RUSTFLAGS")
                || k_str.starts_with("RUSTUP_")
                || k_str == "CARGO_HOME"
            {
                cmd.env(k, v);
            }
        }
        cmd.args(["build", "-q", "-p", "rampart", "--bin", "rampart", "--target-dir"]).arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let out = cmd.current_dir(repo()).output().expect("cargo build -p rampart");
        assert!(out.status.success(), "building rampart failed: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(bin.exists(), "{} missing", bin.display());
    bin
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory and SA database files, removed on drop.
pub struct Scratch {
    pub dir: PathBuf,
    pub dbs: Vec<PathBuf>,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(format!("rampart-dp-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let dbs = ["a", "b"].iter().map(|g| PathBuf::from(format!("/dev/shm/rampart-dp-{id}-{g}.sadb"))).collect();
        Scratch { dir, dbs }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for db in &self.dbs {
            let _ = std::fs::remove_file(db);
        }
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The five namespaces of `scripts/topology.sh`, deleted on drop.
pub struct Topology {
    pub name: String,
}

impl Topology {
    pub fn new(queues: u32) -> Topology {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("rdp{}x{n}", std::process::id());
        let script = repo().join("scripts/topology.sh");
        let t = Topology { name };
        let out = Command::new("bash").arg(&script).args(["up", &t.name, &queues.to_string()]).output().unwrap();
        assert!(out.status.success(), "topology up: {}", String::from_utf8_lossy(&out.stderr));
        t
    }

    /// Namespace `which` (ha, ga, sw, gb, hb).
    pub fn ns(&self, which: &str) -> String {
        format!("{}-{which}", self.name)
    }

    /// Runs a command in namespace `which`.
    pub fn exec(&self, which: &str, args: &[&str]) -> Output {
        let ns = self.ns(which);
        let mut v = vec!["netns", "exec", &ns];
        v.extend_from_slice(args);
        Command::new("ip").args(&v).output().unwrap()
    }

    /// Like [`Topology::exec`], panicking on failure; returns stdout.
    pub fn sh(&self, which: &str, args: &[&str]) -> String {
        let out = self.exec(which, args);
        assert!(
            out.status.success(),
            "{which}: {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A command to run in namespace `which` (for spawning).
    pub fn command(&self, which: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(which)]).arg(program);
        c
    }

    /// `ping` from `which` to `dst`: (transmitted, received, output).
    pub fn ping(&self, which: &str, dst: &str, extra: &[&str]) -> (u32, u32, String) {
        let mut args = vec!["ping", "-n", "-W", "1"];
        args.extend_from_slice(extra);
        args.push(dst);
        let out = self.exec(which, &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        let mut tx = 0;
        let mut rx = 0;
        for line in text.lines() {
            if let Some((a, rest)) = line.split_once(" packets transmitted, ") {
                tx = a.trim().parse().unwrap_or(0);
                rx = rest.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0);
            }
        }
        (tx, rx, text)
    }

    /// Pings until a reply comes back (neighbours get resolved on the first packets); panics
    /// after `tries`.
    pub fn wait_reachable(&self, which: &str, dst: &str, tries: u32) {
        for _ in 0..tries {
            if self.ping(which, dst, &["-c", "1"]).1 == 1 {
                return;
            }
        }
        panic!("{dst} not reachable from {which} after {tries} pings");
    }

    /// Sends `bytes` pseudo-random bytes over TCP from `client` to `server_addr:port` on
    /// `server`; returns what each side counted and hashed (they must agree).
    pub fn tcp_transfer(
        &self,
        client: &str,
        server: &str,
        server_addr: &str,
        port: u16,
        bytes: usize,
    ) -> (String, String) {
        const SERVER: &str = r#"
import socket, hashlib, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("listening", flush=True)
s.settimeout(60)
c, _ = s.accept()
c.settimeout(60)
h = hashlib.sha256()
n = 0
while True:
    b = c.recv(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
c.close()
print(n, h.hexdigest(), flush=True)
"#;
        const CLIENT: &str = r#"
import socket, hashlib, random, sys, time
data = random.Random(7).randbytes(int(sys.argv[3]))
for i in range(100):
    try:
        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
c.settimeout(60)
c.sendall(data)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"#;
        let mut srv = self
            .command(server, Path::new("python3"))
            .args(["-c", SERVER, server_addr, &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(srv.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "listening");
        let c = self.exec(client, &["python3", "-c", CLIENT, server_addr, &port.to_string(), &bytes.to_string()]);
        let sent = String::from_utf8_lossy(&c.stdout).trim().to_owned();
        let mut got = String::new();
        out.read_line(&mut got).unwrap();
        let _ = srv.wait();
        assert!(c.status.success(), "tcp client: {}", String::from_utf8_lossy(&c.stderr));
        (sent, got.trim().to_owned())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo().join("scripts/topology.sh")).args(["down", &self.name]).output();
    }
}

/// Fixed test keys (AES-GCM-128 with salt: 20 bytes).
pub fn key(byte: u8) -> String {
    format!("0x{}", format!("{byte:02x}").repeat(20))
}

/// Runs `rampart` with `args` against database `db`.
pub fn rampart(db: &Path, args: &[&str]) -> String {
    let out = Command::new(rampart_bin()).args(args).env("RAMPART_DB", db).output().unwrap();
    assert!(
        out.status.success(),
        "rampart {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SPIs: A->B v4, B->A v4, A->B v6, B->A v6.
pub const SPI_AB4: u32 = 0x1001;
pub const SPI_BA4: u32 = 0x2001;
pub const SPI_AB6: u32 = 0x1002;
pub const SPI_BA6: u32 = 0x2002;

/// Installs the two tunnels (IPv4 inner over IPv4 outer, IPv6 over IPv6) as static SAs and
/// their outbound policies, with `rampart sa add` / `rampart policy add`, into each gateway's
/// database.
pub fn install_tunnels(a: &Path, b: &Path) {
    install_tunnels_with(a, b, |_| &[]);
}

/// [`install_tunnels`] with extra `sa add` words (`limit ...`) for the SA of some SPIs.
pub fn install_tunnels_with(a: &Path, b: &Path, extra: impl Fn(u32) -> &'static [&'static str]) {
    let aead = ["aead", "rfc4106(gcm(aes))"];
    let sa = |db: &Path, src: &str, dst: &str, spi: u32, dir: &str, k: u8, sel: (&str, &str), reqid: &str| {
        let spi_text = format!("{spi:#x}");
        let key = key(k);
        let mut args = vec!["sa", "add", "src", src, "dst", dst, "proto", "esp", "spi", &spi_text, "dir", dir];
        args.extend_from_slice(&["mode", "tunnel", "reqid", reqid, aead[0], aead[1], &key, "128"]);
        args.extend_from_slice(&["sel", "src", sel.0, "dst", sel.1]);
        args.extend_from_slice(extra(spi));
        rampart(db, &args);
    };
    let v4 = [("192.0.2.1", "192.0.2.2"), ("10.1.0.0/24", "10.2.0.0/24")];
    let v6 = [("2001:db8::1", "2001:db8::2"), ("fd01::/64", "fd02::/64")];
    for (outer, inner, spi_ab, spi_ba, reqid) in
        [(v4[0], v4[1], SPI_AB4, SPI_BA4, "1"), (v6[0], v6[1], SPI_AB6, SPI_BA6, "2")]
    {
        let (ga, gb) = outer;
        let (na, nb) = inner;
        sa(a, ga, gb, spi_ab, "out", key_byte(spi_ab), (na, nb), reqid);
        sa(a, gb, ga, spi_ba, "in", key_byte(spi_ba), (nb, na), reqid);
        sa(b, ga, gb, spi_ab, "in", key_byte(spi_ab), (na, nb), reqid);
        sa(b, gb, ga, spi_ba, "out", key_byte(spi_ba), (nb, na), reqid);
        policy(a, "add", na, nb, ga, gb, reqid);
        policy(b, "add", nb, na, gb, ga, reqid);
    }
}

/// The key byte of an SPI's SA in [`install_tunnels`].
pub fn key_byte(spi: u32) -> u8 {
    ((spi >> 8) as u8) ^ (spi as u8)
}

/// Adds (`"add"`) an outbound protect policy, or deletes (`"delete"`) the outbound policy of
/// that selector.
pub fn policy(db: &Path, action: &str, src: &str, dst: &str, tsrc: &str, tdst: &str, reqid: &str) {
    let mut args = vec!["policy", action, "src", src, "dst", dst, "dir", "out"];
    if action == "add" {
        args.extend_from_slice(&["tmpl", "src", tsrc, "dst", tdst, "proto", "esp", "reqid", reqid, "mode", "tunnel"]);
    }
    rampart(db, &args);
}

/// A running `rampart dataplane` in a gateway namespace; stopped (SIGTERM, then SIGKILL) on
/// drop.
pub struct Gateway {
    pub child: Option<Child>,
    /// Environment for the process (set before `spawn`).
    pub env: Vec<(String, String)>,
    pub stats: PathBuf,
    pub log: PathBuf,
    pub config: PathBuf,
    pub which: String,
}

impl Gateway {
    /// Writes the configuration and starts the data plane; waits until it runs.
    pub fn start(topo: &Topology, which: &str, db: &Path, dir: &Path, queues: u32) -> Gateway {
        Gateway::start_with(topo, which, db, dir, queues, Vec::new())
    }

    /// [`Gateway::start`] with environment variables for the process.
    pub fn start_with(
        topo: &Topology,
        which: &str,
        db: &Path,
        dir: &Path,
        queues: u32,
        env: Vec<(String, String)>,
    ) -> Gateway {
        let stats = dir.join(format!("stats-{which}.json"));
        let config = dir.join(format!("{which}.toml"));
        let q: Vec<String> = (0..queues).map(|q| q.to_string()).collect();
        let cores: Vec<String> = (0..queues).map(|q| q.to_string()).collect();
        let text = format!(
            "database = {db:?}\ncores = [{cores}]\nxdp_mode = \"native\"\nstats_file = {stats:?}\nring_size = 512\n\
             [lan]\nname = \"lan0\"\nqueues = [{q}]\n[wan]\nname = \"wan0\"\nqueues = [{q}]\n",
            cores = cores.join(", "),
            q = q.join(", ")
        );
        std::fs::write(&config, text).unwrap();
        let mut g =
            Gateway { child: None, env, stats, log: dir.join(format!("{which}.log")), config, which: which.into() };
        g.spawn(topo);
        g
    }

    /// (Re)starts the process.
    pub fn spawn(&mut self, topo: &Topology) {
        let _ = std::fs::remove_file(&self.stats);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = topo
            .command(&self.which, &rampart_bin())
            .args(["dataplane", "--stats-interval", "1", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.stats.exists() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "{} data plane exited with {st}: {}",
                    self.which,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "{} data plane did not start: {}", self.which, self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The current counters (the file is rewritten four times a second).
    pub fn stats(&self) -> serde_json::Value {
        for _ in 0..50 {
            if let Ok(s) = std::fs::read_to_string(&self.stats)
                && let Ok(v) = serde_json::from_str(&s)
            {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no stats from {}", self.which);
    }

    /// A total counter (`section` "counters" or "drops").
    pub fn total(&self, section: &str, name: &str) -> u64 {
        let v = self.stats();
        v["total"][section][name].as_u64().unwrap_or_else(|| panic!("no {section}/{name} in {v}"))
    }

    /// A worker's counter.
    pub fn worker(&self, w: usize, section: &str, name: &str) -> u64 {
        self.stats()["workers"][w][section][name].as_u64().unwrap_or(0)
    }

    /// Waits until a total counter reaches `at_least`.
    pub fn wait_total(&self, section: &str, name: &str, at_least: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.total(section, name);
            if v >= at_least {
                return v;
            }
            assert!(Instant::now() < deadline, "{}: {section}/{name} = {v}, expected >= {at_least}", self.which);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns the exit status's success.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// tcpdump writing ESP and AH from one interface to a pcap file; stopped on drop.
pub struct Capture {
    child: Child,
    pub path: PathBuf,
}

impl Capture {
    pub fn start(topo: &Topology, which: &str, iface: &str, path: &Path) -> Capture {
        let child = topo
            .command(which, Path::new("tcpdump"))
            .args(["-i", iface, "-U", "-n", "-s", "0", "-Z", "root", "-w"])
            .arg(path)
            .args(["esp", "or", "ah"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut c = Capture { child, path: path.to_owned() };
        // tcpdump says "listening on" once the socket is up.
        let mut err = BufReader::new(c.child.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("listening on") {
            line.clear();
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        c
    }

    /// Stops tcpdump and returns the captured frames.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        read_pcap(&self.path)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The frames of a pcap file (microsecond or nanosecond, either byte order).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_default();
    if b.len() < 24 {
        return Vec::new();
    }
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let le = matches!(magic, 0xa1b2c3d4 | 0xa1b23c4d);
    let u32_at = |at: usize| {
        let x: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le { u32::from_le_bytes(x) } else { u32::from_be_bytes(x) }
    };
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let len = u32_at(at + 8) as usize;
        let start = at + 16;
        if start + len > b.len() {
            break;
        }
        out.push(b[start..start + len].to_vec());
        at = start + len;
    }
    out
}

/// An ESP packet in an Ethernet frame.
#[derive(Clone, Debug)]
pub struct EspFrame {
    pub frame: Vec<u8>,
    /// Offset of the IP header.
    pub ip: usize,
    /// Offset of the ESP header.
    pub esp: usize,
    pub spi: u32,
    pub seq: u32,
    pub src: String,
    pub dst: String,
}

/// Parses the AH frames (untagged Ethernet, IPv4 or IPv6 without extension headers); `esp` is
/// then the offset of the AH header, whose SPI and sequence number are 4 bytes further on.
pub fn ah_frames(frames: &[Vec<u8>]) -> Vec<EspFrame> {
    ipsec_frames(frames, 51, 4)
}

/// Parses the ESP frames (untagged Ethernet, IPv4 or IPv6 without extension headers).
pub fn esp_frames(frames: &[Vec<u8>]) -> Vec<EspFrame> {
    ipsec_frames(frames, 50, 0)
}

fn ipsec_frames(frames: &[Vec<u8>], proto: u8, spi_at: usize) -> Vec<EspFrame> {
    let mut v = Vec::new();
    for f in frames {
        if f.len() < 14 + 40 + 8 {
            continue;
        }
        let (esp, src, dst) = match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 if f[14 + 9] == proto => {
                let ihl = usize::from(f[14] & 15) * 4;
                let a = |o: usize| std::net::Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]).to_string();
                (14 + ihl, a(26), a(30))
            }
            0x86dd if f[14 + 6] == proto => {
                let a = |o: usize| std::net::Ipv6Addr::from(<[u8; 16]>::try_from(&f[o..o + 16]).unwrap()).to_string();
                (14 + 40, a(22), a(38))
            }
            _ => continue,
        };
        let spi = u32::from_be_bytes(f[esp + spi_at..esp + spi_at + 4].try_into().unwrap());
        let seq = u32::from_be_bytes(f[esp + spi_at + 4..esp + spi_at + 8].try_into().unwrap());
        v.push(EspFrame { frame: f.clone(), ip: 14, esp, spi, seq, src, dst });
    }
    v
}

/// The scapy ESP oracle (`tests/oracle/esp_oracle.py`) behind a pipe.
pub struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    pub fn start() -> Oracle {
        let mut child = Command::new("python3")
            .arg(repo().join("tests/oracle/esp_oracle.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with scapy");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Oracle { child, stdin, stdout }
    }

    /// Verifies an AH packet (its IP packet, outer header included) of a tunnel-mode SA with
    /// HMAC-SHA-256-128 (`auth`: the oracle's name of the algorithm) and returns the inner packet,
    /// or the oracle's error.
    pub fn verify_ah(&mut self, auth: &str, key: &str, e: &EspFrame) -> Result<Vec<u8>, String> {
        let req = serde_json::json!({
            "op": "decrypt", "proto": "ah", "auth": auth, "akey": key.trim_start_matches("0x"),
            "spi": e.spi, "mode": "tunnel", "esn": false, "seq": e.seq,
            "outer_src": e.src, "outer_dst": e.dst, "packet": hex(&e.frame[e.ip..]),
        });
        self.ask(&req)
    }

    fn ask(&mut self, req: &serde_json::Value) -> Result<Vec<u8>, String> {
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let ans: serde_json::Value = serde_json::from_str(&line).unwrap();
        if ans["ok"] == true { Ok(unhex(ans["packet"].as_str().unwrap())) } else { Err(ans["error"].to_string()) }
    }

    /// Decrypts an ESP packet (its IP packet, outer header included) of a tunnel-mode AES-GCM
    /// SA; returns the inner packet or the oracle's error.
    pub fn decrypt(&mut self, key: &str, e: &EspFrame) -> Result<Vec<u8>, String> {
        let req = serde_json::json!({
            "op": "decrypt", "crypt": "AES-GCM", "auth": null,
            "ekey": key.trim_start_matches("0x"), "akey": "",
            "spi": e.spi, "mode": "tunnel", "esn": false, "seq": e.seq,
            "natt": false, "outer_src": e.src, "outer_dst": e.dst,
            "packet": hex(&e.frame[e.ip..]),
        });
        self.ask(&req)
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// Sends raw Ethernet frames out of `iface` in namespace `which` (scapy), with a short pause
/// between them.
pub fn inject(topo: &Topology, which: &str, iface: &str, frames: &[Vec<u8>]) {
    const SEND: &str = r#"
import sys, time
from scapy.all import sendp, Raw
for h in sys.argv[2:]:
    sendp(Raw(bytes.fromhex(h)), iface=sys.argv[1], verbose=False)
    time.sleep(0.05)
"#;
    let hexes: Vec<String> = frames.iter().map(|f| hex(f)).collect();
    let mut args = vec!["python3", "-c", SEND, iface];
    args.extend(hexes.iter().map(String::as_str));
    topo.sh(which, &args);
}
