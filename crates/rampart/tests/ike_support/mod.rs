//! Network-namespace topologies for the IKE daemon's end-to-end tests: two gateways joined by a
//! veth pair, each side running `rampart ike` or strongSwan's charon (Debian's 5.9 with
//! kernel-libipsec), and readers of what each wrote (Rampart's SA database, charon's key log).
//!
//! An adapted copy of the reference harness (`peers/strongswan/up.sh`): the same addresses,
//! identities, PSK and strongswan.conf, with unique namespace names per test and cleanup in
//! `Drop` (also when a test fails). Everything runs as root; tests skip loudly otherwise.
//!
//! ```text
//!   [{tag}a] wan 192.0.2.1/24 ===== wan 192.0.2.2/24 [{tag}b]
//!            lan 198.18.1.1/24 (veth)       lan 198.18.2.1/24 (veth)
//! ```

#![allow(dead_code)]

#[path = "../../../../tests/support/process.rs"]
mod process_helpers;
pub use process_helpers::{is_root, secs, sh as run, wait_until};

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rampart_esp::Direction;
use rampart_sadb::Reader;
use serde_json::Value;

pub const PSK: &str = "sw-test-psk-0123456789abcdef";
pub const WAN_A: &str = "192.0.2.1";
pub const WAN_B: &str = "192.0.2.2";
pub const LAN_A: &str = "198.18.1.0/24";
pub const LAN_B: &str = "198.18.2.0/24";
pub const ID_A: &str = "gw-a.sw.test";
pub const ID_B: &str = "gw-b.sw.test";
const CHARON: &str = "/usr/sbin/charon-systemd";
const SWANCTL: &str = "/usr/sbin/swanctl";
const PLUGINS: &str = "random nonce openssl aes sha1 sha2 hmac gcm chapoly curve25519 kdf x509 pem pkcs1 pkcs8 \
                       pubkey constraints revocation kernel-libipsec kernel-netlink socket-default vici counters";

/// Whether this test can run (root, strongSwan installed); says why not on stderr.
pub fn can_run(test: &str, need_strongswan: bool) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (network namespaces)");
        return false;
    }
    if need_strongswan && !Path::new(CHARON).exists() {
        eprintln!("SKIPPED {test}: strongSwan ({CHARON}) is not installed; see scripts/setup.sh");
        return false;
    }
    true
}

/// Which gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// 192.0.2.1, gw-a, LAN 198.18.1.0/24.
    A,
    /// 192.0.2.2, gw-b, LAN 198.18.2.0/24.
    B,
}

impl Side {
    pub fn wan(self) -> &'static str {
        if self == Side::A { WAN_A } else { WAN_B }
    }
    pub fn peer_wan(self) -> &'static str {
        if self == Side::A { WAN_B } else { WAN_A }
    }
    pub fn lan(self) -> &'static str {
        if self == Side::A { LAN_A } else { LAN_B }
    }
    pub fn peer_lan(self) -> &'static str {
        if self == Side::A { LAN_B } else { LAN_A }
    }
    pub fn id(self) -> &'static str {
        if self == Side::A { ID_A } else { ID_B }
    }
    pub fn peer_id(self) -> &'static str {
        if self == Side::A { ID_B } else { ID_A }
    }
    fn letter(self) -> &'static str {
        if self == Side::A { "a" } else { "b" }
    }
}

/// Two namespaces joined by a veth pair, a scratch directory, and cleanup.
pub struct Topo {
    pub tag: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
}

impl Topo {
    pub fn new(tag: &str) -> Topo {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("rk{tag}{}x{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("rampart-ike-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut t = Topo { tag, dir, namespaces: Vec::new() };
        let (a, b) = (t.ns(Side::A), t.ns(Side::B));
        for ns in [&a, &b] {
            run(&["ip", "netns", "add", ns]);
            t.namespaces.push(ns.clone());
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        run(&["ip", "-n", &a, "link", "add", "wan", "type", "veth", "peer", "name", "wan", "netns", &b]);
        for (ns, side) in [(&a, Side::A), (&b, Side::B)] {
            run(&["ip", "-n", ns, "addr", "add", &format!("{}/24", side.wan()), "dev", "wan"]);
            run(&["ip", "-n", ns, "link", "set", "wan", "up"]);
            // The gateway's LAN address: kernel-libipsec routes the tunnel with it as source.
            run(&["ip", "-n", ns, "link", "add", "lan", "type", "veth", "peer", "name", "lanp"]);
            run(&["ip", "-n", ns, "link", "set", "lanp", "up"]);
            let gw_lan = side.lan().replace(".0/24", ".1/24");
            run(&["ip", "-n", ns, "addr", "add", &gw_lan, "dev", "lan"]);
            run(&["ip", "-n", ns, "link", "set", "lan", "up"]);
        }
        t
    }

    pub fn ns(&self, side: Side) -> String {
        format!("{}{}", self.tag, side.letter())
    }

    /// Runs a command inside a side's namespace.
    pub fn exec(&self, side: Side, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.ns(side)]).args(args).output().expect("ip netns exec")
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::env::var_os("KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What a strongSwan side is configured with (the reference harness's defaults).
#[derive(Clone, Debug)]
pub struct SwanOpts {
    pub ike_proposals: String,
    pub esp_proposals: String,
    /// Extra lines in the connection section.
    pub conn_extra: String,
    /// Extra lines in the child section.
    pub child_extra: String,
    /// Extra lines in the `charon { }` section.
    pub charon_extra: String,
    /// Selectors instead of the side's LANs (local, remote).
    pub ts: Option<(String, String)>,
    /// Certificates instead of the PSK: (our certificate's file in `x509/`, and the files to
    /// copy into the swanctl folders: (source, folder)).
    pub certs: Option<(String, Vec<(PathBuf, &'static str)>)>,
    /// A whole swanctl.conf instead of the one connection `gw` (its files, if any, in `certs`).
    pub swanctl: Option<String>,
}

impl Default for SwanOpts {
    fn default() -> Self {
        SwanOpts {
            ike_proposals: "aes256-sha256-ecp256,aes256-sha256-x25519".into(),
            esp_proposals: "aes256gcm16".into(),
            conn_extra: String::new(),
            child_extra: String::new(),
            charon_extra: String::new(),
            ts: None,
            certs: None,
            swanctl: None,
        }
    }
}

/// A charon in one namespace.
pub struct Charon {
    side: Side,
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Charon {
    pub fn start(topo: &Topo, side: Side, o: &SwanOpts) -> Charon {
        Charon::start_in(&topo.ns(side), &topo.dir, side, o)
    }

    /// Starts charon in namespace `ns` with its files under `base`.
    pub fn start_in(ns: &str, base: &Path, side: Side, o: &SwanOpts) -> Charon {
        let dir = base.join(format!("swan-{}", side.letter()));
        for sub in ["x509", "x509ca", "x509crl", "private", "rsa", "ecdsa", "pkcs8", "pubkey"] {
            std::fs::create_dir_all(dir.join("swanctl").join(sub)).unwrap();
        }
        if let Some((_, files)) = &o.certs {
            for (src, folder) in files {
                let dst = dir.join("swanctl").join(folder).join(src.file_name().unwrap());
                std::fs::copy(src, dst).unwrap();
            }
        }
        let (lauth, rauth) = match &o.certs {
            Some((cert, _)) => (format!("auth = pubkey\n      certs = {cert}"), "auth = pubkey".to_string()),
            None => ("auth = psk".to_string(), "auth = psk".to_string()),
        };
        let vici = dir.join("charon.vici");
        let conf = format!(
            r#"charon {{
  load = {PLUGINS}
  install_routes = yes
  {extra}
  plugins {{
    vici {{ socket = unix://{vici} }}
    kernel-libipsec {{ allow_peer_ts = no }}
  }}
  filelog {{
    main {{
      path = {log}
      time_format = %H:%M:%S
      flush_line = yes
      ike_name = yes
      default = 1
      ike = 1
      chd = 4
    }}
  }}
  journal {{ default = -1 }}
  syslog {{ daemon {{ default = -1 }} }}
}}
"#,
            extra = o.charon_extra,
            vici = vici.display(),
            log = dir.join("charon.log").display(),
        );
        std::fs::write(dir.join("strongswan.conf"), conf).unwrap();
        let swanctl = format!(
            r#"connections {{
  gw {{
    version = 2
    local_addrs = {lwan}
    remote_addrs = {rwan}
    proposals = {ike}
    {conn_extra}
    local {{
      {lauth}
      id = {lid}
    }}
    remote {{
      {rauth}
      id = {rid}
    }}
    children {{
      net {{
        mode = tunnel
        local_ts = {lnet}
        remote_ts = {rnet}
        esp_proposals = {esp}
        {child_extra}
      }}
    }}
  }}
}}
secrets {{
  ike-gw {{
    id-a = {ID_A}
    id-b = {ID_B}
    secret = "{PSK}"
  }}
}}
"#,
            lwan = side.wan(),
            rwan = side.peer_wan(),
            ike = o.ike_proposals,
            lauth = lauth,
            rauth = rauth,
            esp = o.esp_proposals,
            conn_extra = o.conn_extra,
            child_extra = o.child_extra,
            lid = side.id(),
            rid = side.peer_id(),
            lnet = o.ts.as_ref().map_or(side.lan(), |t| t.0.as_str()),
            rnet = o.ts.as_ref().map_or(side.peer_lan(), |t| t.1.as_str()),
        );
        let swanctl = o.swanctl.clone().unwrap_or(swanctl);
        std::fs::write(dir.join("swanctl").join("swanctl.conf"), swanctl).unwrap();
        let ns = ns.to_string();
        let child = Command::new("ip")
            .args(["netns", "exec", &ns, CHARON])
            .env("STRONGSWAN_CONF", dir.join("strongswan.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(dir.join("stdout.log")).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(dir.join("stderr.log")).unwrap()))
            .spawn()
            .expect("start charon");
        let c = Charon { side, ns, dir, child: Some(child) };
        assert!(wait_until(Duration::from_secs(10), || vici.exists()), "charon did not come up: {}", c.log());
        let out = c.swanctl(&["--load-all", "--file", &c.dir.join("swanctl/swanctl.conf").display().to_string()]);
        let loaded = match o.swanctl {
            Some(_) => out.contains("successfully loaded"),
            None => out.contains("loaded connection 'gw'"),
        };
        assert!(loaded, "swanctl --load-all: {out}");
        c
    }

    /// Runs `swanctl CMD --uri ... ARGS` (the command must come first).
    pub fn swanctl(&self, args: &[&str]) -> String {
        let uri = format!("unix://{}", self.dir.join("charon.vici").display());
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, SWANCTL, args[0], "--uri", &uri])
            .args(&args[1..])
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"))
            .output()
            .expect("swanctl");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    pub fn initiate(&self) -> String {
        self.swanctl(&["--initiate", "--ike", "gw", "--child", "net", "--timeout", "30"])
    }

    /// `(spi_in, spi_out)` of every installed CHILD_SA, from `--list-sas --raw` (charon keeps
    /// rekeyed ones listed in state DELETED for a few seconds; those are left out).
    pub fn child_spis(&self) -> Vec<(u32, u32)> {
        let out = self.swanctl(&["--list-sas", "--raw"]);
        let field = |block: &str, key: &str| {
            block
                .split(key)
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| u32::from_str_radix(s, 16).ok())
        };
        out.split("{name=")
            .skip(1)
            .filter(|block| block.contains(" state=INSTALLED "))
            .filter_map(|block| Some((field(block, "spi-in=")?, field(block, "spi-out=")?)))
            .collect()
    }

    /// How many IKE SAs charon has.
    pub fn ike_sa_count(&self) -> usize {
        self.swanctl(&["--list-sas", "--raw"]).matches("initiator-spi=").count()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    /// ESP keys charon logged (`chd = 4`): (encryption initiator key, encryption responder key)
    /// per CHILD_SA, in order.
    pub fn esp_keys(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let read = |i: usize, want: usize| {
            let mut out = Vec::new();
            for l in lines.iter().skip(i + 1) {
                if out.len() >= want {
                    break;
                }
                // "HH:MM:SS 03[CHD] <gw|1>    0: 11 22 ..."
                let Some(pos) = l.find(": ") else { break };
                let head = &l[..pos];
                if head.rsplit(' ').next().is_none_or(|n| n.trim().parse::<usize>().is_err()) {
                    break;
                }
                out.extend(l[pos + 2..].split_whitespace().take(16).map_while(|b| u8::from_str_radix(b, 16).ok()));
            }
            out.truncate(want);
            out
        };
        let bytes_of = |l: &str| -> usize {
            l.split("=> ").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or(0)
        };
        let mut pairs = Vec::new();
        let mut init = None;
        for (i, l) in lines.iter().enumerate() {
            if l.contains("encryption initiator key =>") {
                init = Some(read(i, bytes_of(l)));
            } else if l.contains("encryption responder key =>")
                && let Some(k) = init.take()
            {
                pairs.push((k, read(i, bytes_of(l))));
            }
        }
        pairs
    }

    /// Kills charon at once (no deletes sent).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            if !wait_until(Duration::from_secs(5), || c.try_wait().ok().flatten().is_some()) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// `rampart ike` in one namespace.
pub struct Rampart {
    pub side: Side,
    ns: String,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub db: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// One SA record as Rampart wrote it (`Debug` leaves the key out).
#[derive(Clone, PartialEq, Eq)]
pub struct DbSa {
    pub spi: u32,
    pub direction: Direction,
    pub key: Vec<u8>,
    pub encap: bool,
    pub local: IpAddr,
    pub remote: IpAddr,
    pub reqid: u32,
}

impl std::fmt::Debug for DbSa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x} {:?} {}->{} reqid {}", self.spi, self.direction, self.local, self.remote, self.reqid)
    }
}

impl Rampart {
    /// The `[daemon]` table of a test daemon.
    pub fn daemon_section(topo: &Topo, side: Side, extra: &str) -> String {
        Rampart::daemon_section_in(&topo.tag, &topo.dir, side, extra)
    }

    /// The `[daemon]` table with the database and socket named after `tag`, under `dir`.
    pub fn daemon_section_in(tag: &str, dir: &Path, side: Side, extra: &str) -> String {
        format!(
            "[daemon]\ndatabase = \"/dev/shm/{tag}{s}.sadb\"\ncontrol_socket = \"{dir}/ike-{s}.sock\"\n\
             sa_capacity = 1024\npolicy_capacity = 1024\ndh_workers = 1\ndh_precompute = 4\nusage_interval = \"500ms\"\n\
             stale_grace = \"2s\"\nretransmit_timeout = \"1s\"\nretransmit_tries = 3\n{extra}\n",
            s = side.letter(),
            dir = dir.display(),
        )
    }

    /// The reference harness's connection `gw` / child `net` as seen from `side`.
    pub fn gw_connection(side: Side, conn_extra: &str, child_extra: &str) -> String {
        format!(
            r#"
[connections.gw]
local_addrs = "{lwan}"
remote_addrs = "{rwan}"
proposals = "aes256-sha256-ecp256, aes256-sha256-x25519"
{conn_extra}
local = {{ auth = "psk", id = "{lid}" }}
remote = {{ auth = "psk", id = "{rid}" }}

[connections.gw.children.net]
local_ts = "{lnet}"
remote_ts = "{rnet}"
esp_proposals = "aes256gcm16"
{child_extra}

[secrets.ike-gw]
id-a = "{ID_A}"
id-b = "{ID_B}"
secret = "{PSK}"
"#,
            lwan = side.wan(),
            rwan = side.peer_wan(),
            lid = side.id(),
            rid = side.peer_id(),
            lnet = side.lan(),
            rnet = side.peer_lan(),
        )
    }

    /// Writes the configuration (mode 0600) and starts the daemon; waits for its control socket.
    pub fn start(topo: &Topo, side: Side, config: &str) -> Rampart {
        Rampart::start_in(&topo.ns(side), &topo.dir, side, config)
    }

    /// Starts the daemon in namespace `ns` with its files under `dir`.
    pub fn start_in(ns: &str, dir: &Path, side: Side, config: &str) -> Rampart {
        let path = dir.join(format!("rampart-{}.toml", side.letter()));
        std::fs::write(&path, config).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg =
            rampart_ike_daemon::config_file::Config::load(&path).unwrap_or_else(|e| panic!("test config refused: {e}"));
        let mut r = Rampart {
            side,
            ns: ns.to_string(),
            config: path,
            socket: cfg.daemon.control_socket.clone(),
            db: cfg.daemon.database.clone(),
            log: dir.join(format!("rampart-{}.log", side.letter())),
            child: None,
            starts: 0,
        };
        let _ = std::fs::remove_file(&r.db);
        r.launch();
        r
    }

    fn launch(&mut self) {
        self.starts += 1;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_rampart"), "ike", "--config"])
            .arg(&self.config)
            .args(["--log", "debug", "--log-format", "plain"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start rampart ike");
        self.child = Some(child);
        let sock = self.socket.clone();
        let ok = wait_until(Duration::from_secs(10), || std::os::unix::net::UnixStream::connect(&sock).is_ok());
        assert!(ok, "rampart ike did not come up:\n{}", self.log());
    }

    /// Starts the daemon again after a stop or kill (same configuration and database).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        self.launch();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a control request; the `result` (panics on an error answer).
    pub fn ctl(&self, request: rampart_ike_daemon::control::Request) -> Value {
        let r = rampart_ike_daemon::control::call(&self.socket, &request, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("control socket: {e}\n{}", self.log()));
        assert!(r.ok, "{request:?}: {:?}", r.error);
        r.result.unwrap_or(Value::Null)
    }

    /// Runs `rampart ctl ARGS` through the binary; (success, stdout + stderr).
    pub fn ctl_cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["ctl", "--socket"])
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("rampart ctl");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.ctl(rampart_ike_daemon::control::Request::Stats)[name].as_u64().unwrap_or(0)
    }

    pub fn list(&self) -> Vec<Value> {
        self.ctl(rampart_ike_daemon::control::Request::ListSas).as_array().cloned().unwrap_or_default()
    }

    /// Established IKE SAs with at least one installed CHILD_SA.
    pub fn up(&self) -> usize {
        self.list()
            .iter()
            .filter(|s| s["state"] == "established" && s["children"].as_array().is_some_and(|c| !c.is_empty()))
            .count()
    }

    /// Every SA record in the database.
    pub fn db_sas(&self) -> Vec<DbSa> {
        let Ok(r) = Reader::attach(&self.db) else { return Vec::new() };
        let mut out = Vec::new();
        for slot in 0..r.capacities().sas {
            if let Ok(rec) = r.read_sa(slot) {
                out.push(DbSa {
                    spi: rec.spi(),
                    direction: rec.direction(),
                    key: rec.encryption_key().to_vec(),
                    encap: rec.encap().is_some(),
                    local: rec.local(),
                    remote: rec.remote(),
                    reqid: rec.reqid(),
                });
            }
        }
        out
    }

    /// Policies in the database: (index, bound SA slot).
    pub fn db_policies(&self) -> Vec<(u64, Option<u32>)> {
        let Ok(r) = Reader::attach(&self.db) else { return Vec::new() };
        let snap = r.snapshot();
        snap.policies().map(|p| (p.index, p.sa.map(|s| s.slot))).collect()
    }

    /// The reader of the database (for pushing data-plane events and usage in tests).
    pub fn reader(&self) -> Reader {
        Reader::attach(&self.db).expect("database")
    }

    /// Kills the daemon with SIGKILL (no cleanup at all).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon with SIGTERM.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            if !wait_until(Duration::from_secs(5), || c.try_wait().ok().flatten().is_some()) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    /// Whether the process is still alive.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Rampart {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.db);
        if std::thread::panicking() {
            eprintln!("---- rampart {:?} log ----\n{}", self.side, self.log());
        }
    }
}

/// Checks that the CHILD_SAs charon lists are in Rampart's database with the keys charon
/// logged: charon's inbound SPI is Rampart's outbound SA and the other way round, and the two
/// keys are one logged (initiator, responder) pair, in the order `rampart_initiated` says when
/// given. Returns how many CHILD_SAs matched, or what did not.
pub fn keys_agree(r: &Rampart, c: &Charon, rampart_initiated: Option<bool>) -> Result<usize, String> {
    let sas = r.db_sas();
    let logged = c.esp_keys();
    let spis = c.child_spis();
    if spis.is_empty() {
        return Err("charon lists no CHILD_SA".into());
    }
    for (swan_in, swan_out) in &spis {
        let out = sas
            .iter()
            .find(|s| s.spi == *swan_in && s.direction == Direction::Outbound)
            .ok_or_else(|| format!("no outbound SA {swan_in:08x} in Rampart's database: {sas:?}"))?;
        let inb = sas
            .iter()
            .find(|s| s.spi == *swan_out && s.direction == Direction::Inbound)
            .ok_or_else(|| format!("no inbound SA {swan_out:08x} in Rampart's database"))?;
        if !(out.encap && inb.encap) {
            return Err("kernel-libipsec forces UDP encapsulation, the SAs have none".into());
        }
        let pair = logged
            .iter()
            .find(|(i, rsp)| (*i == out.key && *rsp == inb.key) || (*i == inb.key && *rsp == out.key))
            .ok_or_else(|| {
                format!(
                    "the keys of CHILD_SA {swan_in:08x}/{swan_out:08x} are not a pair charon logged ({} logged)",
                    logged.len()
                )
            })?;
        if let Some(we) = rampart_initiated
            && (pair.0 == out.key) != we
        {
            return Err(format!("key direction of {swan_in:08x} is the wrong way round"));
        }
        if out.key.len() != 36 {
            return Err(format!("key of {} bytes, not an AEAD key with salt", out.key.len()));
        }
    }
    Ok(spis.len())
}

/// [`keys_agree`], retried for a few seconds (a rekey may be in flight); panics when it never
/// holds.
pub fn check_keys(r: &Rampart, c: &Charon, rampart_initiated: Option<bool>) -> usize {
    let mut last = Err(String::new());
    wait_until(Duration::from_secs(8), || {
        last = keys_agree(r, c, rampart_initiated);
        last.is_ok()
    });
    last.unwrap_or_else(|e| panic!("{e}"))
}

// Certificates made with strongSwan's `pki` (Debian's strongswan-pki).

/// Runs strongSwan's `pki` with `args`, writing what it prints to `out`.
pub fn pki(args: &[&str], out: &Path) {
    let o = std::process::Command::new("pki").args(args).output().expect("pki (strongswan-pki)");
    assert!(o.status.success(), "pki {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(out, o.stdout).unwrap();
}

/// A key of `kind` ("ecdsa", "rsa", "ed25519") and its certificate for `id`, issued by the
/// intermediate in `dir` (made first).
pub fn leaf(dir: &Path, name: &str, kind: &str, id: &str, issuer: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.pem"));
    let (t, size) = match kind {
        "rsa" => ("rsa", Some("3072")),
        "rsa4096" => ("rsa", Some("4096")),
        "ecdsa" | "ecdsa256" => ("ecdsa", Some("256")),
        "ecdsa384" => ("ecdsa", Some("384")),
        other => (other, None),
    };
    let mut generate = vec!["--gen", "--type", t, "--outform", "pem"];
    generate.extend(size.map(|s| ["--size", s]).into_iter().flatten());
    pki(&generate, &key);
    let pubkey = dir.join(format!("{name}.pub"));
    pki(&["--pub", "--in", key.to_str().unwrap(), "--outform", "pem"], &pubkey);
    let mut issue = vec!["--issue", "--in", pubkey.to_str().unwrap(), "--lifetime", "30", "--cacert"];
    let cacert = dir.join(format!("{issuer}.pem"));
    let cakey = dir.join(format!("{issuer}.key"));
    issue.extend([cacert.to_str().unwrap(), "--cakey", cakey.to_str().unwrap()]);
    let dn = format!("C=XX, O=sw-test, CN={id}");
    issue.extend(["--dn", &dn, "--san", id, "--flag", "serverAuth", "--outform", "pem"]);
    issue.extend(extra);
    pki(&issue, &crt);
    (crt, key)
}

/// Root (ECDSA P-256) -> intermediate (ECDSA P-384) in `dir`.
pub fn ca(dir: &Path) {
    ca_of(dir, ["ecdsa", "256"], ["ecdsa", "384"]);
}

/// Root -> intermediate in `dir`, with keys of these (type, size).
pub fn ca_of(dir: &Path, root: [&str; 2], inter: [&str; 2]) {
    std::fs::create_dir_all(dir).unwrap();
    let d = |n: &str| dir.join(n);
    pki(&["--gen", "--type", root[0], "--size", root[1], "--outform", "pem"], &d("root.key"));
    pki(
        &[
            "--self",
            "--ca",
            "--lifetime",
            "60",
            "--in",
            d("root.key").to_str().unwrap(),
            "--dn",
            "C=XX, O=sw-test, CN=sw-test Root",
            "--outform",
            "pem",
        ],
        &d("root.pem"),
    );
    pki(&["--gen", "--type", inter[0], "--size", inter[1], "--outform", "pem"], &d("inter.key"));
    pki(&["--pub", "--in", d("inter.key").to_str().unwrap(), "--outform", "pem"], &d("inter.pub"));
    pki(
        &[
            "--issue",
            "--ca",
            "--lifetime",
            "50",
            "--in",
            d("inter.pub").to_str().unwrap(),
            "--cacert",
            d("root.pem").to_str().unwrap(),
            "--cakey",
            d("root.key").to_str().unwrap(),
            "--dn",
            "C=XX, O=sw-test, CN=sw-test Intermediate",
            "--outform",
            "pem",
        ],
        &d("inter.pem"),
    );
}

/// Rampart's swanctl folders: its certificate and key, the intermediate, the root (and the
/// CRL when there is one).
pub fn rampart_creds(dir: &Path, pki_dir: &Path, crt: &Path, key: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let c = dir.join("rampart-creds");
    for f in ["x509", "x509ca", "x509crl", "private"] {
        std::fs::create_dir_all(c.join(f)).unwrap();
    }
    std::fs::copy(crt, c.join("x509/me.pem")).unwrap();
    std::fs::copy(pki_dir.join("inter.pem"), c.join("x509/inter.pem")).unwrap();
    std::fs::copy(pki_dir.join("root.pem"), c.join("x509ca/root.pem")).unwrap();
    if pki_dir.join("inter.crl").exists() {
        std::fs::copy(pki_dir.join("inter.crl"), c.join("x509crl/inter.crl")).unwrap();
    }
    std::fs::copy(key, c.join("private/me.key")).unwrap();
    std::fs::set_permissions(c.join("private/me.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    c
}
