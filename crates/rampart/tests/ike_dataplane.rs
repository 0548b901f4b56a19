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
        let name = format!("rkdp{}", std::process::id() % 100_000);
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
