//! The demo's topology for the `rampart run` tests, as root: four namespaces (`dc`, `hub`,
//! `branch`, `sites`) with the addresses of `rampart demo`'s plan (the very file, included
//! below), `rampart run` on the two gateways from files the tests write, the demo's traffic
//! agents on the hosts, and readers of what each side reports: the control sockets, the
//! metrics endpoints (scraped from inside their namespace) and the data planes' stats files.
//! Everything is removed on drop, also when a test fails; tests skip loudly without root.
//!
//! ```text
//!  [dc] 10.0.0.2 --- 10.0.0.1 [hub] 100.64.0.1 ==== 100.64.1.1+k [branch] 10.128.0.1/9 --- 10.128.k.2 [sites]
//! ```

#![allow(dead_code)]

#[path = "../../../../tests/support/process.rs"]
mod process_helpers;
pub use process_helpers::{is_root, secs, sh, wait_until};

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use rampart_ike_daemon::control::{Request, call};
use serde_json::{Value, json};

#[path = "../../src/cmd/demo/plan.rs"]
pub mod plan;

pub const PSK: &str = "run-test-psk-0123456789abcdef0123";

/// Whether this test can run (root); says why not on stderr.
pub fn can_run(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED {test}: needs root (network namespaces, XDP, AF_XDP)");
        return false;
    }
    true
}

/// A gateway or host namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    Dc,
    Hub,
    Branch,
    Sites,
}

impl Ns {
    pub fn short(self) -> &'static str {
        match self {
            Ns::Dc => "dc",
            Ns::Hub => "hub",
            Ns::Branch => "branch",
            Ns::Sites => "sites",
        }
    }
}

/// The four namespaces and a scratch directory.
pub struct Net {
    pub tag: String,
    pub dir: PathBuf,
    pub tunnels: u32,
    namespaces: Vec<String>,
}

impl Net {
    /// Addresses for `tunnels` sites (the configurations decide which are used).
    pub fn new(tag: &str, tunnels: u32) -> Net {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let tag = format!("rr{tag}{}x{n}", std::process::id() % 100_000);
        let dir = std::env::temp_dir().join(format!("rampart-run-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut net = Net { tag, dir, tunnels, namespaces: Vec::new() };
        for ns in [Ns::Dc, Ns::Hub, Ns::Branch, Ns::Sites] {
            let name = net.ns(ns);
            sh(&["ip", "netns", "add", &name]);
            net.namespaces.push(name);
        }
        let (dc, hub, branch, sites) = (net.ns(Ns::Dc), net.ns(Ns::Hub), net.ns(Ns::Branch), net.ns(Ns::Sites));
        for (ns, a, b, peer) in
            [(&dc, "eth0", "lan0", &hub), (&hub, "wan0", "wan0", &branch), (&branch, "lan0", "eth0", &sites)]
        {
            sh(&["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer]);
        }
        let batch = |ns: Ns, lines: Vec<String>| {
            let f = net.dir.join(format!("{}.batch", ns.short()));
            std::fs::write(&f, lines.join("\n") + "\n").unwrap();
            sh(&["ip", "-n", &net.ns(ns), "-batch", f.to_str().unwrap()]);
        };
        let up = |ifs: &[&str]| -> Vec<String> {
            std::iter::once("link set lo up".to_string())
                .chain(ifs.iter().map(|i| format!("link set {i} up")))
                .collect()
        };
        let mut l = vec![format!("addr add {}/24 dev eth0", plan::DC_HOST)];
        l.extend(up(&["eth0"]));
        l.push(format!("route add default via {}", plan::HUB_LAN));
        batch(Ns::Dc, l);
        let mut l =
            vec![format!("addr add {}/24 dev lan0", plan::HUB_LAN), format!("addr add {}/16 dev wan0", plan::HUB_WAN)];
        l.extend(up(&["lan0", "wan0"]));
        batch(Ns::Hub, l);
        let mut l = vec![format!("addr add {}/{} dev lan0", plan::BRANCH_LAN, plan::BRANCH_LAN_PREFIX)];
        l.extend((0..tunnels).map(|k| format!("addr add {}/{} dev wan0", plan::site_wan(k), plan::WAN_PREFIX)));
        l.extend(up(&["lan0", "wan0"]));
        batch(Ns::Branch, l);
        let mut l: Vec<String> = (0..tunnels)
            .map(|k| format!("addr add {}/{} dev eth0", plan::site_host(k), plan::BRANCH_LAN_PREFIX))
            .collect();
        l.extend(up(&["eth0"]));
        l.push(format!("route add default via {}", plan::BRANCH_LAN));
        batch(Ns::Sites, l);
        for ns in [Ns::Hub, Ns::Branch] {
            sh(&["ip", "netns", "exec", &net.ns(ns), "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"]);
        }
        for ns in [Ns::Dc, Ns::Sites] {
            sh(&["ip", "netns", "exec", &net.ns(ns), "ethtool", "-K", "eth0", "tx", "off"]);
        }
        net
    }

    pub fn ns(&self, n: Ns) -> String {
        format!("{}-{}", self.tag, n.short())
    }

    pub fn database(&self, n: Ns) -> PathBuf {
        PathBuf::from(format!("/dev/shm/{}-{}.sadb", self.tag, n.short()))
    }

    pub fn socket(&self, n: Ns) -> PathBuf {
        self.dir.join(format!("{}.sock", n.short()))
    }

    pub fn stats_file(&self, n: Ns) -> PathBuf {
        self.dir.join(format!("{}-stats.json", n.short()))
    }

    /// A `rampart run` file for gateway `n` with connections to the sites `sites` (the branch
    /// initiates them), metrics on `127.0.0.1:9184` inside the namespace. The IKE daemons listen
    /// on their connections' local addresses (the branch: one per site, so that a reload adding a
    /// site adds a listen address), and the rings hold a second of the tests' traffic (the
    /// machine may be loaded).
    pub fn config(&self, n: Ns, sites: &[u32], core: usize) -> String {
        let mut s = format!(
            "metrics_listen = \"127.0.0.1:9184\"\nlog = \"info\"\nlog_format = \"plain\"\n\n\
             [daemon]\ndatabase = \"{}\"\ncontrol_socket = \"{}\"\nsa_capacity = 256\npolicy_capacity = 256\n\
             dh_workers = 1\ndh_precompute = 4\nusage_interval = \"500ms\"\n\n\
             [dataplane]\ncores = [{core}]\nxdp_mode = \"native\"\nring_size = 2048\nstats_file = \"{}\"\n\n\
             [dataplane.lan]\nname = \"lan0\"\n\n[dataplane.wan]\nname = \"wan0\"\n",
            self.database(n).display(),
            self.socket(n).display(),
            self.stats_file(n).display(),
        );
        for &k in sites {
            s.push_str(&site_connection(n, k));
        }
        s
    }
}

/// One site's connection as gateway `n` sees it.
pub fn site_connection(n: Ns, k: u32) -> String {
    let hub = n == Ns::Hub;
    let (local, remote) = if hub { (plan::HUB_WAN, plan::site_wan(k)) } else { (plan::site_wan(k), plan::HUB_WAN) };
    let site_net = format!("{}/24", plan::site_subnet(k));
    let (lts, rts) =
        if hub { (plan::HUB_SUBNET.to_string(), site_net) } else { (site_net, plan::HUB_SUBNET.to_string()) };
    let (lid, rid) = if hub {
        ("hub.test".to_string(), format!("site{k}.test"))
    } else {
        (format!("site{k}.test"), "hub.test".to_string())
    };
    let start = if hub { "" } else { "start_action = \"start\"\n" };
    format!(
        "\n[connections.site{k}]\nlocal_addrs = \"{local}\"\nremote_addrs = \"{remote}\"\n\
         proposals = \"aes256gcm16-prfsha256-x25519\"\n\
         local = {{ auth = \"psk\", id = \"{lid}\" }}\nremote = {{ auth = \"psk\", id = \"{rid}\" }}\n\
         [connections.site{k}.children.net{k}]\nlocal_ts = \"{lts}\"\nremote_ts = \"{rts}\"\n\
         esp_proposals = \"aes256gcm16\"\n{start}\
         [secrets.ike-site{k}]\nid-a = \"hub.test\"\nid-b = \"site{k}.test\"\nsecret = \"{PSK}\"\n"
    )
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        }
        for n in [Ns::Hub, Ns::Branch] {
            let _ = std::fs::remove_file(self.database(n));
        }
        if std::env::var_os("KEEP_TEST_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `rampart run` in a gateway namespace.
pub struct Gateway {
    pub which: Ns,
    pub ns: String,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub stats: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Gateway {
    /// Writes `config` (mode 0600) and starts `rampart run`; waits for its control socket.
    pub fn start(net: &Net, which: Ns, config: &str) -> Gateway {
        let path = net.dir.join(format!("{}.toml", which.short()));
        std::fs::write(&path, config).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let log = net.dir.join(format!("{}.log", which.short()));
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
        let g = Gateway {
            which,
            ns: net.ns(which),
            config: path,
            socket: net.socket(which),
            stats: net.stats_file(which),
            log,
            child: Some(child),
        };
        let sock = g.socket.clone();
        let ok = wait_until(secs(20), || std::os::unix::net::UnixStream::connect(&sock).is_ok());
        assert!(ok, "rampart run ({}) did not come up:\n{}", which.short(), g.log());
        g
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A control request's result (panics on an error answer).
    pub fn ctl(&self, r: Request) -> Value {
        let resp = call(&self.socket, &r, secs(30)).unwrap_or_else(|e| panic!("control socket: {e}\n{}", self.log()));
        assert!(resp.ok, "{r:?}: {:?}", resp.error);
        resp.result.unwrap_or(Value::Null)
    }

    /// `rampart ctl ARGS` through the binary: (success, output).
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

    /// `connection -> (spi_in, spi_out)` of every installed CHILD_SA of established IKE SAs.
    pub fn children(&self) -> BTreeMap<String, Vec<(String, String)>> {
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for sa in self.ctl(Request::ListSas).as_array().cloned().unwrap_or_default() {
            if sa["state"] != "established" {
                continue;
            }
            for c in sa["children"].as_array().into_iter().flatten() {
                if c["state"] == "installed" {
                    out.entry(sa["connection"].as_str().unwrap_or("?").to_string())
                        .or_default()
                        .push((c["spi_in"].as_str().unwrap_or("").into(), c["spi_out"].as_str().unwrap_or("").into()));
                }
            }
        }
        out
    }

    /// The data plane's total counters from its stats file (`counters` and `drops` sections).
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let Ok(text) = std::fs::read_to_string(&self.stats) else { return out };
        let Ok(v) = serde_json::from_str::<Value>(&text) else { return out };
        for (section, prefix) in [("counters", ""), ("drops", "drop_")] {
            for (k, x) in v["total"][section].as_object().into_iter().flatten() {
                out.insert(format!("{prefix}{k}"), x.as_u64().unwrap_or(0));
            }
        }
        out
    }

    /// GET `path` from the metrics endpoint inside the namespace (bash's /dev/tcp: no client
    /// needs to be installed); the body.
    pub fn http_get(&self, path: &str) -> String {
        let script = format!(
            "exec 3<>/dev/tcp/127.0.0.1/9184 && printf 'GET {path} HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3 && cat <&3"
        );
        let raw = sh(&["ip", "netns", "exec", &self.ns, "bash", "-c", &script]);
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {raw:?}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }

    /// The process's id (the `ip netns exec` child execs into `rampart run`).
    /// Sends `signal` (e.g. "TERM") and waits for the exit; the exit status.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        sh(&["kill", &format!("-{signal}"), &c.id().to_string()]);
        let ok = wait_until(secs(15), || c.try_wait().ok().flatten().is_some());
        if !ok {
            let _ = c.kill();
        }
        let status = c.wait().unwrap();
        assert!(ok, "rampart run did not stop on SIG{signal}:\n{}", self.log());
        status
    }

    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
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
        if std::thread::panicking() {
            eprintln!("---- rampart run ({}) log ----\n{}", self.which.short(), self.log());
        }
    }
}

/// `rampart demo-agent` in a host namespace.
pub struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
}

impl Agent {
    pub fn start(net: &Net, which: Ns) -> Agent {
        let side = if which == Ns::Dc { "dc" } else { "sites" };
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.ns(which), env!("CARGO_BIN_EXE_rampart"), "demo-agent", "--side", side])
            .args(["--tunnels", &net.tunnels.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the traffic agent");
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut a = Agent { child, stdin, rx };
        a.expect("ready", secs(20));
        a
    }

    /// Waits for a message with top key `key` (others are skipped); its value.
    pub fn expect(&mut self, key: &str, timeout: Duration) -> Value {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self.rx.recv_timeout(left).unwrap_or_else(|_| panic!("the agent said no {key:?} in {timeout:?}"));
            if let Some(x) = v.get(key) {
                return x.clone();
            }
        }
    }

    pub fn tell(&mut self, v: Value) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }

    /// The sink counts run `run` from now on.
    pub fn listen(&mut self, run: u32) {
        self.tell(json!({ "cmd": "listen", "run": run }));
        self.expect("listening", secs(10));
    }

    /// Starts sending `rate` packets/s for `seconds` through `tunnels` (run id `run`).
    pub fn send(&mut self, run: u32, tunnels: &[u32], rate: f64, seconds: f64) {
        self.tell(
            json!({ "cmd": "send", "run": run, "rate": rate, "seconds": seconds, "size": 200, "tunnels": tunnels }),
        );
    }

    /// Waits for the end of sending: packets sent per tunnel.
    pub fn sent(&mut self, timeout: Duration) -> Vec<u64> {
        let v = self.expect("sent", timeout);
        v["per_tunnel"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect()
    }

    /// The sink's report of the current run: (received, duplicates) per tunnel.
    pub fn report(&mut self) -> Vec<(u64, u64)> {
        self.tell(json!({ "cmd": "report" }));
        let v = self.expect("report", secs(10));
        v["per_tunnel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["received"].as_u64().unwrap(), t["duplicates"].as_u64().unwrap()))
            .collect()
    }

    /// Sends through `tunnels` until each has delivered a packet (the gateways learn their
    /// neighbours meanwhile), `tries` one-second rounds at most; whether they all did.
    pub fn warm_up(&mut self, sink: &mut Agent, tunnels: &[u32], tries: u32) -> bool {
        for i in 0..tries {
            sink.listen(1000 + i);
            self.send(1000 + i, tunnels, 200.0 * tunnels.len() as f64, 0.5);
            self.sent(secs(20));
            std::thread::sleep(Duration::from_millis(300));
            let r = sink.report();
            if tunnels.iter().all(|k| r[*k as usize].0 > 0) {
                return true;
            }
        }
        false
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !wait_until(secs(3), || self.child.try_wait().ok().flatten().is_some()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A pause that the tests use between steps.
pub fn settle(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}
