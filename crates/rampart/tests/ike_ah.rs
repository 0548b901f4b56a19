//! AH (RFC 4302) end to end: two Rampart gateways (`rampart run` each: IKE daemon and AF_XDP
//! data plane in one process) negotiate an AH CHILD_SA over IKEv2 and carry the hosts'
//! traffic through it, as root, in the namespaces of `scripts/topology.sh`:
//!
//! ```text
//!   host A 10.1.0.2 - [ga: rampart run] == switch (captured) == [gb: rampart run] - host B 10.2.0.2
//! ```
//!
//! Ping and a TCP transfer both ways through the tunnel, CHILD_SA rekeys under a 50 pps ping
//! with the loss counted, `rampart ctl list-sas` naming the AH algorithm on both gateways, and
//! the wire checked on the switch: IP protocol 51 and no ESP (neither IP protocol 50 nor UDP
//! 4500), every AH SPI one the gateways negotiated, and sampled packets of every SPI verified by
//! the scapy/cryptography oracle (`tests/oracle/esp_oracle.py`, AES-GMAC as RFC 4543 defines
//! it) with the integrity keys read from the SA databases, the inner packets being the hosts'.
//! strongSwan's kernel-libipsec has no AH, so Rampart against Rampart is the interop test here.

#[path = "../../../tests/support/process.rs"]
#[allow(dead_code)]
mod process_helpers;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use process_helpers::{is_root, secs, wait_until};
use rampart_ike_daemon::control::{Request, call};
use rampart_sadb::Reader;
use serde_json::{Value, json};

const PSK: &str = "ah-e2e-psk-0123456789abcdef0123";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The five namespaces of `scripts/topology.sh` and a scratch directory, removed on drop.
struct Net {
    name: String,
    dir: PathBuf,
}

impl Net {
    fn up() -> Net {
        let name = format!("rkah{}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("rampart-ike-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let n = Net { name, dir };
        let out =
            Command::new("bash").arg(repo().join("scripts/topology.sh")).args(["up", &n.name, "1"]).output().unwrap();
        assert!(out.status.success(), "topology: {}", String::from_utf8_lossy(&out.stderr));
        n
    }

    fn ns(&self, which: &str) -> String {
        format!("{}-{which}", self.name)
    }

    fn exec(&self, which: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.ns(which)]).args(args).output().unwrap()
    }

    fn ping(&self, args: &[&str]) -> (u32, u32) {
        let mut a = vec!["ping", "-n", "-q"];
        a.extend_from_slice(args);
        a.push("10.2.0.2");
        ping_counts(&String::from_utf8_lossy(&self.exec("ha", &a).stdout))
    }

    /// A background ping from host A to host B, 50 a second for `d`.
    fn ping_during(&self, d: Duration) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns("ha"), "ping", "-n", "-q", "-i", "0.02", "-W", "1", "-w"])
            .arg(d.as_secs().to_string())
            .arg("10.2.0.2")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `bytes` random bytes over TCP from host `from` to `to_ip:port` on host `to`: the sender's
    /// and the receiver's (length, SHA-256).
    fn tcp(&self, from: &str, to: &str, to_ip: &str, port: u16, bytes: usize) -> (String, String) {
        let server = Command::new("ip")
            .args(["netns", "exec", &self.ns(to), "python3", "-c"])
            .arg(format!(
                "import socket,hashlib\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);\
                 s.bind(('{to_ip}',{port}));s.listen(1);s.settimeout(30);c,_=s.accept();h=hashlib.sha256();n=0\n\
                 while True:\n b=c.recv(65536)\n if not b: break\n h.update(b);n+=len(b)\nprint(n,h.hexdigest())"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let client = self.exec(
            from,
            &[
                "python3",
                "-c",
                &format!(
                    "import socket,hashlib,random\nd=random.Random(3).randbytes({bytes})\n\
                     c=socket.create_connection(('{to_ip}',{port}),timeout=30);c.sendall(d);c.close();\
                     print(len(d),hashlib.sha256(d).hexdigest())"
                ),
            ],
        );
        let got = String::from_utf8_lossy(&server.wait_with_output().unwrap().stdout).trim().to_string();
        (String::from_utf8_lossy(&client.stdout).trim().to_string(), got)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo().join("scripts/topology.sh")).args(["down", &self.name]).output();
        if std::env::var_os("KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn ping_counts(text: &str) -> (u32, u32) {
    let line = text.lines().find(|l| l.contains("packets transmitted")).unwrap_or("");
    let n = |i: usize| line.split(',').nth(i).and_then(|p| p.split_whitespace().next()).and_then(|v| v.parse().ok());
    (n(0).unwrap_or(0), n(1).unwrap_or(0))
}

/// `rampart run` on one gateway, stopped on drop.
struct Gateway {
    which: &'static str,
    db: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Gateway {
    /// Gateway `ga` (initiator, core 0) or `gb` (responder, core 1).
    fn start(net: &Net, which: &'static str, ah_proposals: &str) -> Gateway {
        let a = which == "ga";
        let (local, remote) = if a { ("192.0.2.1", "192.0.2.2") } else { ("192.0.2.2", "192.0.2.1") };
        let (lts, rts) = if a { ("10.1.0.0/24", "10.2.0.0/24") } else { ("10.2.0.0/24", "10.1.0.0/24") };
        let (lid, rid) = if a { ("gw-a.ah.test", "gw-b.ah.test") } else { ("gw-b.ah.test", "gw-a.ah.test") };
        let db = PathBuf::from(format!("/dev/shm/{}-{which}.sadb", net.name));
        let _ = std::fs::remove_file(&db);
        let socket = net.dir.join(format!("{which}.sock"));
        let stats = net.dir.join(format!("{which}-stats.json"));
        let start = if a { "start_action = \"start\"\n" } else { "" };
        let config = format!(
            "metrics_listen = \"127.0.0.1:9184\"\nlog = \"info\"\nlog_format = \"plain\"\n\n\
             [daemon]\ndatabase = \"{db}\"\ncontrol_socket = \"{sock}\"\nsa_capacity = 64\npolicy_capacity = 64\n\
             dh_workers = 1\nusage_interval = \"500ms\"\n\n\
             [dataplane]\ncores = [{core}]\nxdp_mode = \"native\"\nring_size = 2048\nstats_file = \"{stats}\"\n\n\
             [dataplane.lan]\nname = \"lan0\"\n\n[dataplane.wan]\nname = \"wan0\"\n\n\
             [connections.gw]\nlocal_addrs = \"{local}\"\nremote_addrs = \"{remote}\"\n\
             proposals = \"aes256gcm16-prfsha256-x25519\"\n\
             local = {{ auth = \"psk\", id = \"{lid}\" }}\nremote = {{ auth = \"psk\", id = \"{rid}\" }}\n\n\
             [connections.gw.children.net]\nlocal_ts = \"{lts}\"\nremote_ts = \"{rts}\"\n\
             ah_proposals = \"{ah_proposals}\"\nrekey_time = \"6s\"\nlife_time = \"40s\"\nrand_time = \"1s\"\n{start}\n\
             [secrets.ike-gw]\nid-a = \"gw-a.ah.test\"\nid-b = \"gw-b.ah.test\"\nsecret = \"{PSK}\"\n",
            db = db.display(),
            sock = socket.display(),
            stats = stats.display(),
            core = if a { 0 } else { 1 },
        );
        let path = net.dir.join(format!("{which}.toml"));
        std::fs::write(&path, config).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let log = net.dir.join(format!("{which}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &net.ns(which), env!("CARGO_BIN_EXE_rampart"), "run", "--config"])
            .arg(&path)
            .env_remove("RUST_LOG")
            .env_remove("RAMPART_METRICS_LISTEN")
            .env_remove("RAMPART_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f))
            .spawn()
            .expect("start rampart run");
        let g = Gateway { which, db, socket, log, child: Some(child) };
        let ok = wait_until(secs(20), || std::os::unix::net::UnixStream::connect(&g.socket).is_ok());
        assert!(ok, "rampart run ({which}) did not come up:\n{}", g.log());
        g
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn ctl(&self, r: Request) -> Value {
        let resp = call(&self.socket, &r, secs(30)).unwrap_or_else(|e| panic!("control socket: {e}\n{}", self.log()));
        assert!(resp.ok, "{r:?}: {:?}", resp.error);
        resp.result.unwrap_or(Value::Null)
    }

    fn stat(&self, name: &str) -> u64 {
        self.ctl(Request::Stats)[name].as_u64().unwrap_or(0)
    }

    /// The installed CHILD_SAs of established IKE SAs.
    fn children(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for sa in self.ctl(Request::ListSas).as_array().cloned().unwrap_or_default() {
            if sa["state"] == "established" {
                out.extend(
                    sa["children"].as_array().into_iter().flatten().filter(|c| c["state"] == "installed").cloned(),
                );
            }
        }
        out
    }

    fn ctl_cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["ctl", "--socket"])
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("rampart ctl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SPI -> (IP protocol number, integrity key) of every SA in the database.
    fn db_keys(&self) -> HashMap<u32, (u8, Vec<u8>)> {
        let mut out = HashMap::new();
        let Ok(r) = Reader::attach(&self.db) else { return out };
        for slot in 0..r.capacities().sas {
            if let Ok(rec) = r.read_sa(slot) {
                out.insert(rec.spi(), (rec.protocol().ip_protocol(), rec.integrity_key().to_vec()));
            }
        }
        out
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            if !wait_until(secs(10), || c.try_wait().ok().flatten().is_some()) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(&self.db);
        if std::thread::panicking() {
            eprintln!("---- rampart run ({}) log ----\n{}", self.which, self.log());
        }
    }
}

/// tcpdump on a switch port writing every frame to a pcap file.
struct Capture {
    child: Child,
    path: PathBuf,
}

impl Capture {
    fn start(net: &Net, iface: &str) -> Capture {
        let path = net.dir.join("switch.pcap");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.ns("sw"), "tcpdump", "-i", iface, "-U", "-n", "-s", "0", "-Z", "root", "-w"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("listening on") {
            line.clear();
        }
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Capture { child, path }
    }

    /// Stops tcpdump; the captured frames.
    fn finish(mut self) -> Vec<Vec<u8>> {
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

/// The frames of a pcap file (tcpdump's: microsecond, this machine's byte order or the other).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).unwrap_or_default();
    if b.len() < 24 {
        return Vec::new();
    }
    let le = matches!(u32::from_le_bytes(b[0..4].try_into().unwrap()), 0xa1b2_c3d4 | 0xa1b2_3c4d);
    let u32_at = |at: usize| {
        let x: [u8; 4] = b[at..at + 4].try_into().unwrap();
        if le { u32::from_le_bytes(x) } else { u32::from_be_bytes(x) }
    };
    let (mut out, mut at) = (Vec::new(), 24);
    while at + 16 <= b.len() {
        let len = u32_at(at + 8) as usize;
        if at + 16 + len > b.len() {
            break;
        }
        out.push(b[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    out
}

/// An outer IPv4 packet of a captured Ethernet frame: (IP protocol, source, destination, the IP
/// packet, its header length).
fn ipv4(frame: &[u8]) -> Option<(u8, String, String, &[u8], usize)> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 15) * 4;
    let addr = |o: usize| std::net::Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]).to_string();
    Some((ip[9], addr(12), addr(16), ip, ihl))
}

/// An AH packet captured on the switch: its sequence number, outer addresses, the IP packet.
struct AhPacket {
    seq: u32,
    src: String,
    dst: String,
    ip: Vec<u8>,
}

/// The scapy/cryptography oracle behind a pipe.
struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start() -> Oracle {
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

    /// Verifies a captured tunnel-mode AH packet of SA `spi` with `auth` and `key`; the inner
    /// packet, or the oracle's error.
    fn verify_ah(&mut self, auth: &str, key: &[u8], spi: u32, p: &AhPacket) -> Result<Vec<u8>, String> {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let req = json!({
            "op": "decrypt", "proto": "ah", "auth": auth, "akey": hex(key),
            "spi": spi, "mode": "tunnel", "esn": false, "seq": p.seq,
            "outer_src": p.src, "outer_dst": p.dst, "packet": hex(&p.ip),
        });
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let ans: Value = serde_json::from_str(&line).unwrap();
        if ans["ok"] != true {
            return Err(ans["error"].to_string());
        }
        let p = ans["packet"].as_str().unwrap_or("");
        Ok((0..p.len() / 2).map(|i| u8::from_str_radix(&p[2 * i..2 * i + 2], 16).unwrap()).collect())
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ah_child_sa_between_two_rampart_gateways() {
    if !is_root() {
        eprintln!("SKIPPED ah_child_sa_between_two_rampart_gateways: needs root (network namespaces, XDP, AF_XDP)");
        return;
    }
    let net = Net::up();
    let cap = Capture::start(&net, "to-ga");
    // AES-GMAC-256: the KEYMAT of RFC 4543 (key and salt) all the way into the data planes.
    let gb = Gateway::start(&net, "gb", "aes256gmac, sha256");
    let ga = Gateway::start(&net, "ga", "aes256gmac");
    let up = |g: &Gateway| g.children().iter().any(|c| c["protocol"] == "ah");
    assert!(wait_until(secs(15), || up(&ga) && up(&gb)), "no AH CHILD_SA\n{}\n{}", ga.log(), gb.log());
    for g in [&ga, &gb] {
        let c = &g.children()[0];
        assert_eq!((c["protocol"].as_str(), c["ah"].as_str()), (Some("ah"), Some("aes256gmac")), "{c}");
        assert!(c["encap"].is_null(), "{c}");
        let text = g.ctl_cli(&["list-sas"]);
        assert!(text.contains(", INSTALLED, TUNNEL, AH:aes256gmac"), "{text}");
    }
    // SPI -> key of every SA either gateway has had, sampled while the test runs (an SA lives
    // for several seconds, so none that carried traffic is missed).
    let mut keys: HashMap<u32, (u8, Vec<u8>)> = HashMap::new();
    let sample = |keys: &mut HashMap<u32, (u8, Vec<u8>)>| {
        keys.extend(ga.db_keys());
        keys.extend(gb.db_keys());
    };
    sample(&mut keys);

    // Ping (the first packets resolve neighbours) and TCP both ways.
    assert!(wait_until(secs(10), || net.ping(&["-c", "1", "-W", "1"]).1 == 1), "no ping through the AH tunnel");
    assert_eq!(net.ping(&["-c", "20", "-i", "0.05"]), (20, 20));
    sample(&mut keys);
    let (sent, got) = net.tcp("ha", "hb", "10.2.0.2", 5301, 2_000_000);
    assert_eq!(sent, got, "TCP A to B through AH");
    sample(&mut keys);
    let (sent, got) = net.tcp("hb", "ha", "10.1.0.2", 5302, 500_000);
    assert_eq!(sent, got, "TCP B to A through AH");
    sample(&mut keys);

    // CHILD_SA rekeys (every 5-6 s, either side) under a 50 pps ping: make-before-break.
    let rekeys = |g: &Gateway| g.stat("child_sa_rekeys");
    let (ra0, rb0) = (rekeys(&ga), rekeys(&gb));
    let ping = net.ping_during(secs(14));
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        sample(&mut keys);
    }
    let (tx, rx) = ping_counts(&String::from_utf8_lossy(&ping.wait_with_output().unwrap().stdout));
    let done = (rekeys(&ga) - ra0).max(rekeys(&gb) - rb0);
    eprintln!("AH CHILD_SA rekeys under traffic: {done}, ping {rx}/{tx} (lost {})", tx - rx);
    assert!(done >= 2, "{}", ga.log());
    assert!(tx >= 500, "{tx}");
    assert_eq!(tx - rx, 0, "packets lost across {done} AH rekeys");
    assert!(wait_until(secs(5), || up(&ga) && up(&gb)));
    assert_eq!(net.ping(&["-c", "10", "-i", "0.05"]), (10, 10));
    sample(&mut keys);

    // The wire, as the switch saw it.
    let frames = cap.finish();
    let mut by_proto: BTreeMap<u8, usize> = BTreeMap::new();
    let mut udp_4500 = 0;
    let mut ah: BTreeMap<u32, Vec<AhPacket>> = BTreeMap::new();
    for f in &frames {
        let Some((proto, src, dst, ip, ihl)) = ipv4(f) else { continue };
        *by_proto.entry(proto).or_default() += 1;
        if proto == 17 && ip.len() >= ihl + 4 {
            let (sp, dp) = (u16::from_be_bytes([ip[ihl], ip[ihl + 1]]), u16::from_be_bytes([ip[ihl + 2], ip[ihl + 3]]));
            udp_4500 += usize::from(sp == 4500 || dp == 4500);
        }
        if proto == 51 && ip.len() >= ihl + 12 {
            let spi = u32::from_be_bytes(ip[ihl + 4..ihl + 8].try_into().unwrap());
            let seq = u32::from_be_bytes(ip[ihl + 8..ihl + 12].try_into().unwrap());
            ah.entry(spi).or_default().push(AhPacket { seq, src, dst, ip: ip.to_vec() });
        }
    }
    eprintln!("on the switch: {by_proto:?} (IP protocol: frames), UDP 4500: {udp_4500}, AH SPIs: {}", ah.len());
    let ah_frames: usize = ah.values().map(Vec::len).sum();
    assert!(ah_frames >= 2000, "only {ah_frames} AH frames: {by_proto:?}");
    assert_eq!(by_proto.get(&50), None, "ESP on the wire");
    assert_eq!(udp_4500, 0, "UDP 4500 (ESP-in-UDP or IKE moved for NAT-T) on the wire");
    // Each rekey makes a pair: the first pair and at least two more.
    assert!(ah.len() >= 6, "AH SPIs {:x?}", ah.keys().collect::<Vec<_>>());
    let mut oracle = Oracle::start();
    let mut verified = 0;
    for (spi, packets) in &ah {
        let (proto, key) = keys.get(spi).unwrap_or_else(|| panic!("AH SPI {spi:#x} on the wire was never negotiated"));
        assert_eq!(*proto, 51, "SPI {spi:#x} is an AH SA");
        assert_eq!(key.len(), 36, "AES-256 key and 4-byte salt");
        for p in packets.iter().step_by((packets.len() / 10).max(1)) {
            let inner = oracle
                .verify_ah("AES-GMAC-256", key, *spi, p)
                .unwrap_or_else(|e| panic!("SPI {spi:#x} seq {}: the oracle refused Rampart's AH: {e}", p.seq));
            let a = |o: usize| std::net::Ipv4Addr::new(inner[o], inner[o + 1], inner[o + 2], inner[o + 3]).to_string();
            let hosts = (a(12), a(16));
            let expect = if p.src == "192.0.2.1" { ("10.1.0.2", "10.2.0.2") } else { ("10.2.0.2", "10.1.0.2") };
            assert_eq!((hosts.0.as_str(), hosts.1.as_str()), expect, "SPI {spi:#x}: the hosts' packets inside");
            verified += 1;
        }
        let mut seqs: Vec<u32> = packets.iter().map(|p| p.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), packets.len(), "SPI {spi:#x}: a sequence number sent twice");
    }
    eprintln!("{verified} AH packets verified by the oracle across {} SPIs", ah.len());
}
