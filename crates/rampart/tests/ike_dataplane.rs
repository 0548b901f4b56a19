//! Traffic end to end through Rampart's data plane with SAs negotiated by Rampart's IKE daemon
//! against strongSwan, as root, in the namespaces of `scripts/topology.sh`:
//!
//! ```text
//!   host A 10.1.0.2 - [ga: rampart dataplane + rampart ike] == switch == [gb: strongSwan] - host B 10.2.0.2
//! ```
//!
//! Ping and TCP through the tunnel (ESP in UDP: strongSwan's kernel-libipsec forces it),
//! CHILD_SA rekeys under continuous traffic with the loss counted, and the IKE daemon killed
//! (SIGKILL) under traffic while the data plane keeps forwarding, then restarted to take over.

mod ike_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ike_support::*;

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
        // The tests of this file run in parallel: each gets namespaces of its own.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("rkdp{}x{n}", std::process::id() % 100_000);
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

    /// Pings from host A to host B: (sent, received).
    fn ping(&self, args: &[&str]) -> (u32, u32) {
        let mut a = vec!["ping", "-n", "-q"];
        a.extend_from_slice(args);
        a.push("10.2.0.2");
        let out = self.exec("ha", &a);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("packets transmitted")).unwrap_or("");
        let n =
            |i: usize| line.split(',').nth(i).and_then(|p| p.split_whitespace().next()).and_then(|v| v.parse().ok());
        (n(0).unwrap_or(0), n(1).unwrap_or(0))
    }

    /// Starts a background ping from host A to host B (20 ms interval) for `d`.
    fn ping_during(&self, d: Duration) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns("ha"), "ping", "-n", "-q", "-i", "0.02", "-W", "1", "-w"])
            .arg(d.as_secs().to_string())
            .arg("10.2.0.2")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
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

fn ping_result(c: Child) -> (u32, u32) {
    let out = c.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("packets transmitted")).unwrap_or("");
    let n = |i: usize| line.split(',').nth(i).and_then(|p| p.split_whitespace().next()).and_then(|v| v.parse().ok());
    (n(0).unwrap_or(0), n(1).unwrap_or(0))
}

/// `rampart dataplane` on gateway A, stopped on drop.
struct Dataplane {
    child: Option<Child>,
    stats: PathBuf,
    log: PathBuf,
}

impl Dataplane {
    fn start(net: &Net, db: &Path) -> Dataplane {
        let stats = net.dir.join("dataplane.json");
        let config = net.dir.join("dataplane.toml");
        let text = format!(
            "database = {db:?}\ncores = [0]\nxdp_mode = \"native\"\nstats_file = {stats:?}\nring_size = 512\n\
             [lan]\nname = \"lan0\"\nqueues = [0]\n[wan]\nname = \"wan0\"\nqueues = [0]\n"
        );
        std::fs::write(&config, text).unwrap();
        let log = net.dir.join("dataplane.log");
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.ns("ga"),
                env!("CARGO_BIN_EXE_rampart"),
                "dataplane",
                "--stats-interval",
                "1",
                "--config",
            ])
            .arg(&config)
            .stdout(Stdio::from(f.try_clone().unwrap()))
            .stderr(Stdio::from(f))
            .spawn()
            .unwrap();
        let d = Dataplane { child: Some(child), stats, log };
        assert!(wait_until(secs(20), || d.stats.exists()), "data plane did not start: {}", d.log());
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The non-zero drop counters of the data plane.
    fn drops(&self) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap_or_default()).unwrap_or_default();
        let mut out = String::new();
        if let Some(m) = v["total"]["drops"].as_object() {
            for (k, n) in m {
                if n.as_u64().unwrap_or(0) > 0 {
                    out.push_str(&format!("{k}={n} "));
                }
            }
        }
        out
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            if !wait_until(secs(5), || c.try_wait().ok().flatten().is_some()) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- data plane log ----\n{}", self.log());
        }
    }
}

#[test]
fn traffic_through_the_data_plane_rekeys_and_a_killed_daemon() {
    if !can_run("traffic_through_the_data_plane_rekeys_and_a_killed_daemon", true) {
        return;
    }
    let net = Net::up();
    // Gateway B decrypts into kernel-libipsec's TUN device and forwards to host B.
    let out = net.exec("gb", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(out.status.success());
    let swan = Charon::start_in(
        &net.ns("gb"),
        &net.dir,
        Side::B,
        &SwanOpts { ts: Some(("10.2.0.0/24".into(), "10.1.0.0/24".into())), ..Default::default() },
    );
    // The hard lifetime is far beyond the rekey time: once the daemon is killed nothing rekeys,
    // and the data plane must keep forwarding on the installed SA through the kill and the
    // restart (about 15 s) however close to its own rekey the SA was when the daemon died.
    // The IKE SA rekeys too (every 7-8 s): its CHILD_SAs move to the new one under traffic.
    let conn = Rampart::gw_connection(
        Side::A,
        "rekey_time = \"8s\"\nrand_time = \"1s\"",
        "rekey_time = \"6s\"\nlife_time = \"40s\"\nrand_time = \"1s\"",
    )
    .replace("local_ts = \"198.18.1.0/24\"", "local_ts = \"10.1.0.0/24\"")
    .replace("remote_ts = \"198.18.2.0/24\"", "remote_ts = \"10.2.0.0/24\"");
    let mut r = Rampart::start_in(
        &net.ns("ga"),
        &net.dir,
        Side::A,
        &(Rampart::daemon_section_in(&net.name, &net.dir, Side::A, "") + &conn),
    );
    let dp = Dataplane::start(&net, &r.db);
    let (ok, out) = r.ctl_cli(&["initiate", "gw"]);
    assert!(ok, "{out}");
    assert!(wait_until(secs(10), || r.up() == 1), "{}", r.log());
    assert_eq!(check_keys(&r, &swan, Some(true)), 1);

    // Ping (the first packets resolve neighbours) and a TCP transfer through the tunnel.
    assert!(
        wait_until(secs(10), || net.ping(&["-c", "1", "-W", "1"]).1 == 1),
        "no ping through the tunnel\n{}",
        dp.log()
    );
    assert_eq!(net.ping(&["-c", "20", "-i", "0.05"]), (20, 20));
    let server = Command::new("ip")
        .args(["netns", "exec", &net.ns("hb"), "python3", "-c"])
        .arg("import socket,hashlib\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('10.2.0.2',5201));s.listen(1);c,_=s.accept();h=hashlib.sha256();n=0\nwhile True:\n b=c.recv(65536)\n if not b: break\n h.update(b);n+=len(b)\nprint(n,h.hexdigest())")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let client = net.exec(
        "ha",
        &["python3", "-c", "import socket,hashlib,random\nd=random.Random(3).randbytes(2000000)\nc=socket.create_connection(('10.2.0.2',5201),timeout=20);c.sendall(d);c.close();print(len(d),hashlib.sha256(d).hexdigest())"],
    );
    let got = String::from_utf8_lossy(&server.wait_with_output().unwrap().stdout).trim().to_string();
    assert_eq!(String::from_utf8_lossy(&client.stdout).trim(), got, "TCP through the tunnel");

    // CHILD_SA rekeys (every 5-6 s) and IKE_SA rekeys (every 7-8 s) under a 50 pps ping:
    // make-before-break loses nothing.
    let (rekeys0, ike_rekeys0) = (r.stat("child_sa_rekeys"), r.stat("ike_sa_rekeys"));
    let ping = net.ping_during(secs(14));
    let (tx, rx) = ping_result(ping);
    let rekeys = r.stat("child_sa_rekeys") - rekeys0;
    let ike_rekeys = r.stat("ike_sa_rekeys") - ike_rekeys0;
    eprintln!(
        "rekeys under traffic: {rekeys} CHILD_SA, {ike_rekeys} IKE_SA, ping {rx}/{tx} (lost {}); data plane drops: {}",
        tx - rx,
        dp.drops()
    );
    assert!(rekeys >= 2, "{}", r.log());
    assert!(ike_rekeys >= 1, "{}", r.log());
    assert!(tx >= 500);
    assert_eq!(tx - rx, 0, "packets lost across {rekeys} rekeys");
    assert_eq!(check_keys(&r, &swan, None), 1);

    // The IKE daemon dies: the data plane keeps forwarding on the installed SAs.
    let ping = net.ping_during(secs(8));
    std::thread::sleep(secs(1));
    r.kill9();
    let (tx, rx) = ping_result(ping);
    eprintln!("daemon killed: ping {rx}/{tx}; data plane drops: {}", dp.drops());
    assert!(tx >= 300);
    assert_eq!(tx - rx, 0, "the data plane stopped forwarding when the IKE daemon died");
    // Restarted, it takes the tunnel over under traffic.
    let ping = net.ping_during(secs(8));
    r.restart();
    assert!(wait_until(secs(10), || r.up() == 1), "{}", r.log());
    let (tx, rx) = ping_result(ping);
    eprintln!("daemon restarted under traffic: ping {rx}/{tx} (lost {}); data plane drops: {}", tx - rx, dp.drops());
    assert!(tx - rx <= 3, "takeover lost {} of {tx}", tx - rx);
    // Every SA the killed daemon left (the tunnel's pair, and an old inbound SA still in its
    // grace time after a rekey, if any) is gone once the new CHILD_SA took over.
    assert!(wait_until(secs(10), || r.stat("database_stale_sas") == 0 && r.stat("database_stale_removed") >= 2));
    assert_eq!(check_keys(&r, &swan, Some(true)), 1);
    assert_eq!(net.ping(&["-c", "10", "-i", "0.05"]), (10, 10));
    drop(dp);
}

/// One strongSwan branch of the template test: site `k` (from 1) authenticates with a
/// certificate (odd `k`) or a pre-shared key of its own (even `k`), from its own WAN address,
/// protecting its own subnet.
struct Branch {
    k: u32,
    cert: bool,
    wan: String,
    /// The site's address inside its subnet (the pings come from it).
    host: String,
    subnet: String,
    id: String,
}

impl Branch {
    fn new(k: u32) -> Branch {
        let cert = k % 2 == 1;
        Branch {
            k,
            cert,
            wan: format!("192.0.2.{}", 10 + k),
            host: format!("10.2.{k}.1"),
            subnet: format!("10.2.{k}.0/24"),
            id: if cert { format!("site{k}.cert.sw.test") } else { format!("site{k}.psk.sw.test") },
        }
    }

    fn psk(&self) -> String {
        format!("sw-site{}-psk-0123456789abcdef", self.k)
    }

    /// Its connection in strongSwan's swanctl.conf (started when loaded).
    fn swanctl(&self) -> String {
        let (local, remote) = if self.cert {
            (format!("auth = pubkey\n      certs = site{}.pem", self.k), "auth = pubkey")
        } else {
            ("auth = psk".to_string(), "auth = psk")
        };
        format!(
            "  site{k} {{\n    version = 2\n    local_addrs = {wan}\n    remote_addrs = {WAN_A}\n    \
             proposals = aes256-sha256-ecp256\n    local {{\n      {local}\n      id = {id}\n    }}\n    \
             remote {{\n      {remote}\n      id = {ID_A}\n    }}\n    children {{\n      net {{\n        \
             mode = tunnel\n        local_ts = {subnet}\n        remote_ts = 10.1.0.0/24\n        \
             esp_proposals = aes256gcm16\n        start_action = start\n      }}\n    }}\n  }}\n",
            k = self.k,
            wan = self.wan,
            id = self.id,
            subnet = self.subnet,
        )
    }
}

/// The hub's two `%any` templates: `branches-cert` for certificates issued for `*.cert.sw.test`,
/// `branches-psk` with each branch's key filed under its identity; both narrow the branch's
/// selectors within 10.2.0.0/16.
fn hub_templates(branches: &[Branch]) -> String {
    let mut s = String::new();
    for (name, local, remote) in [
        (
            "branches-cert",
            format!("{{ auth = \"pubkey\", certs = \"me.pem\", id = \"{ID_A}\" }}"),
            "{ auth = \"pubkey\", id = \"*.cert.sw.test\", cacerts = \"root.pem\" }",
        ),
        ("branches-psk", format!("{{ auth = \"psk\", id = \"{ID_A}\" }}"), "{ auth = \"psk\" }"),
    ] {
        s += &format!(
            "\n[connections.{name}]\nlocal_addrs = \"{WAN_A}\"\nremote_addrs = \"%any\"\n\
             proposals = \"aes256-sha256-ecp256, aes256-sha256-x25519\"\nunique = \"replace\"\n\
             local = {local}\nremote = {remote}\n[connections.{name}.children.net]\n\
             local_ts = \"10.1.0.0/24\"\nremote_ts = \"10.2.0.0/16\"\nesp_proposals = \"aes256gcm16\"\n"
        );
    }
    for b in branches.iter().filter(|b| !b.cert) {
        s += &format!(
            "\n[secrets.ike-site{}]\nid-hub = \"{ID_A}\"\nid-site = \"{}\"\nsecret = \"{}\"\n",
            b.k,
            b.id,
            b.psk()
        );
    }
    s
}

/// 100 strongSwan branches with certificates of their own and 100 with pre-shared keys of their
/// own, each from its own WAN address, come up at once on the Rampart hub's two `%any`
/// templates; every tunnel's selectors are narrowed to its site's subnet and every tunnel
/// carries a ping both ways through Rampart's data plane (its usage counters say so per SA).
#[test]
fn strongswan_branches_with_certificates_and_psks_come_up_on_one_template_each() {
    const BRANCHES: u32 = 200;
    if !can_run("strongswan_branches_with_certificates_and_psks_come_up_on_one_template_each", true) {
        return;
    }
    let net = Net::up();
    let branches: Vec<Branch> = (1..=BRANCHES).map(Branch::new).collect();
    // The CA, the hub's certificate and one per certificate branch, made with strongSwan's pki.
    let pki_dir = net.dir.join("pki");
    ca(&pki_dir);
    let (hub_crt, hub_key) = leaf(&pki_dir, "hub", "ecdsa", ID_A, "inter", &[]);
    let creds = rampart_creds(&net.dir, &pki_dir, &hub_crt, &hub_key);
    let mut files = vec![(pki_dir.join("root.pem"), "x509ca"), (pki_dir.join("inter.pem"), "x509ca")];
    for b in branches.iter().filter(|b| b.cert) {
        let (crt, key) = leaf(&pki_dir, &format!("site{}", b.k), "ecdsa", &b.id, "inter", &[]);
        files.extend([(crt, "x509"), (key, "ecdsa")]);
    }
    // Each branch's WAN address and site address on gateway B.
    let batch = net.dir.join("branches.ip");
    let lines: String =
        branches.iter().map(|b| format!("addr add {}/24 dev wan0\naddr add {}/32 dev lan0\n", b.wan, b.host)).collect();
    std::fs::write(&batch, lines).unwrap();
    run(&["ip", "-n", &net.ns("gb"), "-batch", batch.to_str().unwrap()]);

    let daemon =
        Rampart::daemon_section_in(&net.name, &net.dir, Side::A, &format!("swanctl_dir = \"{}\"", creds.display()))
            .replace("sa_capacity = 1024\npolicy_capacity = 1024", "sa_capacity = 4096\npolicy_capacity = 4096");
    let r = Rampart::start_in(&net.ns("ga"), &net.dir, Side::A, &(daemon + &hub_templates(&branches)));
    let dp = Dataplane::start(&net, &r.db);
    let mut swanctl = String::from("connections {\n");
    for b in &branches {
        swanctl += &b.swanctl();
    }
    swanctl += "}\nsecrets {\n";
    for b in branches.iter().filter(|b| !b.cert) {
        swanctl += &format!(
            "  ike-site{} {{\n    id-a = {ID_A}\n    id-b = {}\n    secret = \"{}\"\n  }}\n",
            b.k,
            b.id,
            b.psk()
        );
    }
    swanctl += "}\n";
    let t = std::time::Instant::now();
    let swan = Charon::start_in(
        &net.ns("gb"),
        &net.dir,
        Side::B,
        &SwanOpts { certs: Some((String::new(), files)), swanctl: Some(swanctl), ..Default::default() },
    );
    assert!(
        wait_until(secs(90), || r.up() == BRANCHES as usize),
        "{} of {BRANCHES} up\n{}",
        r.up(),
        swan.log()
            .lines()
            .filter(|l| l.contains("failed") || l.contains("AUTH"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{BRANCHES} strongSwan branches up in {:.1} s", t.elapsed().as_secs_f64());

    // Each branch on the template of its method, its selectors narrowed to its own subnet.
    let sas = r.list();
    for b in &branches {
        let sa = sas
            .iter()
            .find(|s| s["remote_id"].as_str() == Some(&b.id))
            .unwrap_or_else(|| panic!("no IKE SA for {}", b.id));
        let template = if b.cert { "branches-cert" } else { "branches-psk" };
        assert_eq!(sa["connection"], template, "{}", b.id);
        assert_eq!(sa["remote"].as_str().and_then(|a| a.split(':').next()), Some(b.wan.as_str()), "{sa}");
        let child = &sa["children"][0];
        assert_eq!(child["remote_ts"], serde_json::json!([b.subnet]), "{}: {child}", b.id);
        assert_eq!(child["local_ts"], serde_json::json!(["10.1.0.0/24"]), "{}: {child}", b.id);
    }

    // A ping from every site to host A (the first may be lost while neighbours resolve): it
    // goes out through charon's kernel-libipsec and comes back through Rampart's data plane.
    let script: String = branches
        .iter()
        .map(|b| format!("(ping -n -q -c 3 -i 0.3 -W 2 -I {} 10.1.0.2 >/dev/null && echo {}) &\n", b.host, b.k))
        .chain(["wait\n".to_string()])
        .collect();
    let out = net.exec("gb", &["bash", "-c", &script]);
    let answered: std::collections::BTreeSet<u32> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    let silent: Vec<u32> = branches.iter().map(|b| b.k).filter(|k| !answered.contains(k)).collect();
    assert!(silent.is_empty(), "sites without an answer: {silent:?}; data plane drops: {}", dp.drops());
    // Rampart's data plane counted packets both ways on every branch's CHILD_SA.
    let carried = || {
        r.list()
            .iter()
            .filter(|s| {
                s["children"][0]["packets_in"].as_u64() > Some(0) && s["children"][0]["packets_out"].as_u64() > Some(0)
            })
            .count()
    };
    assert!(wait_until(secs(10), || carried() == BRANCHES as usize), "{} of {BRANCHES} carried traffic", carried());
    drop(swan);
    drop(dp);
}
