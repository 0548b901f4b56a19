//! `rampart demo`: a hub gateway and a branch gateway in network namespaces, each a `rampart
//! run` process, negotiate one IKEv2 tunnel per simulated branch site (each from its own WAN
//! address, protecting its own subnet towards the hub's), then UDP traffic goes through every
//! tunnel both ways from traffic agents on the hosts behind them ([`agent`]). It shows the
//! tunnels coming up and the packet rates as they happen, prints a summary (tunnels, rates,
//! latency, loss, the data planes' drops by reason) and where the metrics are, and removes
//! everything it made: processes, namespaces (with their veths and XDP programs), the SA
//! databases in /dev/shm and its scratch directory, also on Ctrl-C and on failure.
//!
//! It installs nothing and changes nothing outside the namespaces it creates; what it needs and
//! lacks it names, with the command that installs it. The layout is in [`plan`].

pub mod agent;
pub mod pki;
pub mod plan;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rampart_ike_daemon::control::{Request, call};
use serde_json::{Value, json};

use super::CmdError;

/// `rampart demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Branch tunnels: simulated sites, each with its own WAN address, subnet, IKE SA and CHILD_SA.
    #[arg(long, default_value_t = 100)]
    tunnels: u32,
    /// Seconds of measured traffic.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Packets per second in each direction, spread over all tunnels.
    #[arg(long, default_value_t = 20_000)]
    rate: u32,
    /// UDP payload bytes per packet (28..=1400).
    #[arg(long, default_value_t = 512)]
    size: u32,
    /// After the summary, keep everything running until Ctrl-C (to look at the metrics).
    #[arg(long)]
    keep: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// How the sites authenticate: a pre-shared key of their own made for the run,
    /// certificates from a CA made for the run (ECDSA P-256, RFC 7427 signatures), or every
    /// other site each way. The hub serves them all from one template per method.
    #[arg(long, value_enum, default_value_t = DemoAuth::Psk)]
    auth: DemoAuth,
}

/// `--auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DemoAuth {
    /// One pre-shared key per site, random for the run.
    Psk,
    /// A certificate per gateway and site, issued by the run's CA.
    Cert,
    /// Even sites with certificates, odd sites with pre-shared keys, at the same time.
    Mixed,
}

impl DemoAuth {
    /// How site `k` authenticates.
    fn site(self, k: u32) -> SiteAuth {
        match self {
            DemoAuth::Psk => SiteAuth::Psk,
            DemoAuth::Cert => SiteAuth::Cert,
            DemoAuth::Mixed if k.is_multiple_of(2) => SiteAuth::Cert,
            DemoAuth::Mixed => SiteAuth::Psk,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DemoAuth::Psk => "psk",
            DemoAuth::Cert => "cert",
            DemoAuth::Mixed => "mixed",
        }
    }
}

/// How one site authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SiteAuth {
    Psk,
    Cert,
}

/// The hub's identity.
const HUB_ID: &str = "hub.demo.invalid";
/// The hub's template for certificate sites, and the identities it accepts.
const CERT_TEMPLATE: (&str, &str) = ("branches-cert", "*.cert.demo.invalid");
/// The hub's template for PSK sites (their keys by identity in the secrets).
const PSK_TEMPLATE: &str = "branches-psk";

/// Site `k`'s identity: its certificate's name, or the one its key is filed under.
fn site_id(k: u32, auth: SiteAuth) -> String {
    match auth {
        SiteAuth::Cert => format!("site{k}.cert.demo.invalid"),
        SiteAuth::Psk => format!("site{k}.psk.demo.invalid"),
    }
}

/// What the gateways authenticate with: each PSK site's key, and each gateway's swanctl folder
/// when there are certificate sites.
struct Credentials {
    auth: DemoAuth,
    /// Site `k`'s pre-shared key (empty for a certificate site).
    psks: Vec<String>,
    hub_dir: Option<PathBuf>,
    branch_dir: Option<PathBuf>,
}

/// The four namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ns {
    /// The host behind the hub.
    Dc,
    /// The hub gateway.
    Hub,
    /// The branch gateway (every site's WAN address, every site's subnet).
    Branch,
    /// The hosts of the sites (one address per site).
    Sites,
}

const ALL_NS: [Ns; 4] = [Ns::Dc, Ns::Hub, Ns::Branch, Ns::Sites];

impl Ns {
    fn short(self) -> &'static str {
        match self {
            Ns::Dc => "dc",
            Ns::Hub => "hub",
            Ns::Branch => "branch",
            Ns::Sites => "sites",
        }
    }
}

/// Everything the demo made, removed on drop (in reverse order of making).
struct Demo {
    tag: String,
    dir: PathBuf,
    namespaces: Vec<String>,
    gateways: Vec<(Ns, Child)>,
    agents: Vec<(Ns, Child, Option<ChildStdin>)>,
    /// Agents' answers received while waiting for another one.
    pending: Vec<(Ns, Value)>,
    databases: Vec<PathBuf>,
    stop: Arc<AtomicBool>,
    tty: bool,
}

fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// Runs a command, returning its output or one line that says what failed.
fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("{}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `rampart demo` needs from the machine, checked before anything is made.
fn preflight() -> Result<(), CmdError> {
    let mut missing = Vec::new();
    if !rustix::process::geteuid().is_root() {
        missing.push("root: network namespaces, XDP programs and AF_XDP sockets need it (run with sudo)".to_string());
    }
    if sh(&["ip", "-V"]).is_err() {
        missing.push("iproute2 (the ip command): apt-get install iproute2".into());
    }
    if sh(&["ethtool", "--version"]).is_err() {
        missing.push("ethtool (checksum offload off on the hosts' veths): apt-get install ethtool".into());
    }
    if !Path::new("/proc/self/ns/net").exists() {
        missing.push("network namespaces in the kernel (CONFIG_NET_NS)".into());
    }
    if missing.is_empty() {
        return Ok(());
    }
    let mut msg = String::from("the demo cannot run here; it needs:");
    for m in &missing {
        let _ = write!(msg, "\n  - {m}");
    }
    msg.push_str("\nand a kernel with veth, XDP and AF_XDP sockets (Linux 5.10 or later: CONFIG_VETH, CONFIG_XDP_SOCKETS, CONFIG_BPF_SYSCALL). It installs nothing itself.");
    Err(CmdError(msg))
}

impl Demo {
    fn ns(&self, n: Ns) -> String {
        format!("{}-{}", self.tag, n.short())
    }

    fn interrupted(&self) -> Result<(), CmdError> {
        if self.stop.load(Ordering::Relaxed) { Err(CmdError("interrupted; cleaning up".into())) } else { Ok(()) }
    }

    fn database(&self, n: Ns) -> PathBuf {
        PathBuf::from(format!("/dev/shm/{}-{}.sadb", self.tag, n.short()))
    }

    fn socket(&self, n: Ns) -> PathBuf {
        self.dir.join(format!("{}.sock", n.short()))
    }

    fn stats_file(&self, n: Ns) -> PathBuf {
        self.dir.join(format!("{}-stats.json", n.short()))
    }

    fn log_file(&self, n: Ns) -> PathBuf {
        self.dir.join(format!("{}.log", n.short()))
    }

    /// Runs `ip -n NS -batch` over `lines`.
    fn batch(&self, n: Ns, lines: &[String]) -> Result<(), CmdError> {
        let file = self.dir.join(format!("ip-{}.batch", n.short()));
        std::fs::write(&file, lines.join("\n") + "\n").map_err(|e| CmdError(format!("{}: {e}", file.display())))?;
        sh(&["ip", "-n", &self.ns(n), "-batch", &file.display().to_string()])
            .map(|_| ())
            .map_err(|e| CmdError(format!("setting up the network: {e}")))
    }

    /// Four namespaces joined by three veth pairs (see [`plan`]).
    fn topology(&mut self, tunnels: u32) -> Result<(), CmdError> {
        for n in ALL_NS {
            let name = self.ns(n);
            sh(&["ip", "netns", "add", &name]).map_err(|e| CmdError(format!("network namespace: {e}")))?;
            self.namespaces.push(name);
        }
        let (dc, hub, branch, sites) = (self.ns(Ns::Dc), self.ns(Ns::Hub), self.ns(Ns::Branch), self.ns(Ns::Sites));
        for (ns, a, b, peer_ns) in
            [(&dc, "eth0", "lan0", &hub), (&hub, "wan0", "wan0", &branch), (&branch, "lan0", "eth0", &sites)]
        {
            sh(&["ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b, "netns", peer_ns])
                .map_err(|e| CmdError(format!("setting up the network: {e} (the kernel needs veth: modprobe veth)")))?;
        }
        let up = |ifs: &[&str]| -> Vec<String> {
            let mut v = vec!["link set lo up".to_string()];
            v.extend(ifs.iter().map(|i| format!("link set {i} up")));
            v
        };
        let mut l = vec![format!("addr add {}/24 dev eth0", plan::DC_HOST)];
        l.extend(up(&["eth0"]));
        l.push(format!("route add default via {}", plan::HUB_LAN));
        self.batch(Ns::Dc, &l)?;
        let mut l =
            vec![format!("addr add {}/24 dev lan0", plan::HUB_LAN), format!("addr add {}/16 dev wan0", plan::HUB_WAN)];
        l.extend(up(&["lan0", "wan0"]));
        self.batch(Ns::Hub, &l)?;
        let mut l = vec![format!("addr add {}/{} dev lan0", plan::BRANCH_LAN, plan::BRANCH_LAN_PREFIX)];
        l.extend((0..tunnels).map(|k| format!("addr add {}/{} dev wan0", plan::site_wan(k), plan::WAN_PREFIX)));
        l.extend(up(&["lan0", "wan0"]));
        self.batch(Ns::Branch, &l)?;
        let mut l: Vec<String> = (0..tunnels)
            .map(|k| format!("addr add {}/{} dev eth0", plan::site_host(k), plan::BRANCH_LAN_PREFIX))
            .collect();
        l.extend(up(&["eth0"]));
        l.push(format!("route add default via {}", plan::BRANCH_LAN));
        self.batch(Ns::Sites, &l)?;
        for n in [Ns::Hub, Ns::Branch] {
            // Cleartext crosses a gateway only through its data plane, never the kernel.
            sh(&["ip", "netns", "exec", &self.ns(n), "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"])
                .map_err(|e| CmdError(format!("disabling kernel forwarding: {e}")))?;
        }
        for n in [Ns::Dc, Ns::Sites] {
            // A veth hands partial checksums to XDP (a NIC never does): let the hosts finish theirs.
            sh(&["ip", "netns", "exec", &self.ns(n), "ethtool", "-K", "eth0", "tx", "off"])
                .map_err(|e| CmdError(format!("checksum offload: {e}")))?;
        }
        Ok(())
    }

    /// The `rampart run` file of one gateway: the branch has one connection per site, the hub
    /// one `%any` template per authentication method that every site lands on by its identity,
    /// its selectors narrowed to the site's subnet.
    fn config(&self, n: Ns, tunnels: u32, core: usize, credentials: &Credentials) -> String {
        let mut s = String::new();
        let dir = if n == Ns::Hub { &credentials.hub_dir } else { &credentials.branch_dir };
        let swanctl_dir = dir.as_ref().map(|d| format!("swanctl_dir = \"{}\"\n", d.display())).unwrap_or_default();
        let _ = write!(
            s,
            "# rampart demo: the {} gateway (rampart run)\nmetrics_listen = \"127.0.0.1:9184\"\nlog_format = \"plain\"\n\n\
             [daemon]\ndatabase = \"{}\"\ncontrol_socket = \"{}\"\nsa_capacity = {}\npolicy_capacity = {}\n{swanctl_dir}\n\
             [dataplane]\ncores = [{core}]\nxdp_mode = \"native\"\nring_size = 512\nstats_file = \"{}\"\n\n\
             [dataplane.lan]\nname = \"lan0\"\n\n[dataplane.wan]\nname = \"wan0\"\n",
            n.short(),
            self.database(n).display(),
            self.socket(n).display(),
            (tunnels * 4).max(64),
            (tunnels * 4).max(64),
            self.stats_file(n).display(),
        );
        let auths: Vec<SiteAuth> = (0..tunnels).map(|k| credentials.auth.site(k)).collect();
        const PROPOSALS: &str = "proposals = \"aes256gcm16-prfsha256-x25519\"\n";
        const ESP: &str = "esp_proposals = \"aes256gcm16\"\n";
        let secret = |k: u32| {
            format!(
                "[secrets.ike-site{k}]\nid-hub = \"{HUB_ID}\"\nid-site = \"{}\"\nsecret = \"{}\"\n",
                site_id(k, SiteAuth::Psk),
                credentials.psks[k as usize]
            )
        };
        if n == Ns::Hub {
            let children = |name: &str| {
                format!(
                    "[connections.{name}.children.net]\nlocal_ts = \"{}\"\nremote_ts = \"{}\"\n{ESP}",
                    plan::HUB_SUBNET,
                    plan::SITES_SUBNET
                )
            };
            let head = |name: &str| {
                format!(
                    "\n[connections.{name}]\nlocal_addrs = \"{}\"\nremote_addrs = \"%any\"\n{PROPOSALS}unique = \"replace\"\n",
                    plan::HUB_WAN
                )
            };
            if auths.contains(&SiteAuth::Cert) {
                let (name, ids) = CERT_TEMPLATE;
                let _ = write!(
                    s,
                    "{}local = {{ auth = \"pubkey\", id = \"{HUB_ID}\", certs = \"hub.pem\" }}\n\
                     remote = {{ auth = \"pubkey\", id = \"{ids}\", cacerts = \"{}\" }}\n{}",
                    head(name),
                    pki::CA_FILE,
                    children(name)
                );
            }
            if auths.contains(&SiteAuth::Psk) {
                let _ = write!(
                    s,
                    "{}local = {{ auth = \"psk\", id = \"{HUB_ID}\" }}\nremote = {{ auth = \"psk\" }}\n{}",
                    head(PSK_TEMPLATE),
                    children(PSK_TEMPLATE)
                );
                for (k, _) in (0..tunnels).zip(&auths).filter(|(_, a)| **a == SiteAuth::Psk) {
                    let _ = write!(s, "\n{}", secret(k));
                }
            }
            return s;
        }
        for (k, &auth) in (0..tunnels).zip(&auths) {
            let lid = site_id(k, auth);
            let (local_auth, remote_auth, secret) = match auth {
                SiteAuth::Psk => (
                    format!("{{ auth = \"psk\", id = \"{lid}\" }}"),
                    format!("{{ auth = \"psk\", id = \"{HUB_ID}\" }}"),
                    secret(k),
                ),
                SiteAuth::Cert => (
                    format!("{{ auth = \"pubkey\", id = \"{lid}\", certs = \"site{k}.pem\" }}"),
                    format!("{{ auth = \"pubkey\", id = \"{HUB_ID}\", cacerts = \"{}\" }}", pki::CA_FILE),
                    String::new(),
                ),
            };
            let _ = write!(
                s,
                "\n[connections.site{k}]\nlocal_addrs = \"{}\"\nremote_addrs = \"{}\"\n{PROPOSALS}\
                 local = {local_auth}\nremote = {remote_auth}\n\
                 [connections.site{k}.children.net]\nlocal_ts = \"{}/24\"\nremote_ts = \"{}\"\n\
                 {ESP}start_action = \"start\"\n{secret}",
                plan::site_wan(k),
                plan::HUB_WAN,
                plan::site_subnet(k),
                plan::HUB_SUBNET,
            );
        }
        s
    }

    fn start_gateway(&mut self, n: Ns, config: &str) -> Result<(), CmdError> {
        let path = self.dir.join(format!("{}.toml", n.short()));
        std::fs::write(&path, config).map_err(|e| CmdError(format!("{}: {e}", path.display())))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CmdError(format!("{}: {e}", path.display())))?;
        let log = std::fs::File::create(self.log_file(n)).map_err(|e| CmdError(e.to_string()))?;
        self.databases.push(self.database(n));
        let exe = std::env::current_exe().map_err(|e| CmdError(format!("this program's path: {e}")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .arg(exe)
            .args(["run", "--config"])
            .arg(&path)
            .env_remove("RAMPART_METRICS_LISTEN")
            .env_remove("RAMPART_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().map_err(|e| CmdError(e.to_string()))?))
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .map_err(|e| CmdError(format!("starting rampart run in {}: {e}", self.ns(n))))?;
        self.gateways.push((n, child));
        Ok(())
    }

    fn log_tail(&self, n: Ns, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_file(n)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        all[from..].iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    }

    /// An error with the end of both gateways' logs.
    fn failure(&self, what: String) -> CmdError {
        let mut msg = what;
        for n in [Ns::Hub, Ns::Branch] {
            let _ = write!(
                msg,
                "\n  {} gateway log ({}):\n{}",
                n.short(),
                self.log_file(n).display(),
                self.log_tail(n, 12)
            );
        }
        CmdError(msg)
    }

    fn check_gateways(&mut self) -> Result<(), CmdError> {
        for i in 0..self.gateways.len() {
            let n = self.gateways[i].0;
            if let Ok(Some(status)) = self.gateways[i].1.try_wait() {
                let hint = if self.log_tail(n, 30).contains("XDP") {
                    "\n  (the kernel must support XDP and AF_XDP sockets: CONFIG_XDP_SOCKETS, CONFIG_BPF_SYSCALL)"
                } else {
                    ""
                };
                return Err(self.failure(format!("the {} gateway stopped ({status}){hint}", n.short())));
            }
        }
        Ok(())
    }

    fn wait_control(&mut self, n: Ns) -> Result<(), CmdError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(self.socket(n)).is_err() {
            self.interrupted()?;
            self.check_gateways()?;
            if Instant::now() > deadline {
                return Err(self.failure(format!("the {} gateway did not open its control socket", n.short())));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Established IKE SAs with an installed CHILD_SA, as a gateway's IKE daemon lists them.
    fn tunnels_up(&self, n: Ns) -> usize {
        let Ok(r) = call(&self.socket(n), &Request::ListSas, Duration::from_secs(10)) else { return 0 };
        r.result
            .as_ref()
            .and_then(Value::as_array)
            .map(|sas| {
                sas.iter()
                    .filter(|s| {
                        s["state"] == "established"
                            && s["children"]
                                .as_array()
                                .is_some_and(|c| c.iter().any(|c| c["state"].as_str() == Some("installed")))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    /// The established IKE SAs of gateway `n` by connection name.
    fn connections(&self, n: Ns) -> BTreeMap<String, u64> {
        let mut by_name = BTreeMap::new();
        if let Ok(r) = call(&self.socket(n), &Request::ListSas, Duration::from_secs(10)) {
            for sa in r.result.as_ref().and_then(Value::as_array).into_iter().flatten() {
                if sa["state"] == "established" {
                    *by_name.entry(sa["connection"].as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
                }
            }
        }
        by_name
    }

    /// Shows `line` as the current progress (rewritten in place on a terminal).
    fn progress(&self, line: &str, last: bool) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K{line}{}", if last { "\n" } else { "" });
            let _ = out.flush();
        } else {
            say(line);
        }
    }

    fn start_agent(&mut self, n: Ns, tunnels: u32, tx: Sender<(Ns, Value)>) -> Result<(), CmdError> {
        let exe = std::env::current_exe().map_err(|e| CmdError(format!("this program's path: {e}")))?;
        let side = if n == Ns::Dc { "dc" } else { "sites" };
        let log =
            std::fs::File::create(self.dir.join(format!("agent-{side}.log"))).map_err(|e| CmdError(e.to_string()))?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(n)])
            .arg(exe)
            .args(["demo-agent", "--side", side, "--tunnels", &tunnels.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0)
            .spawn()
            .map_err(|e| CmdError(format!("starting the traffic agent in {}: {e}", self.ns(n))))?;
        let stdout = child.stdout.take();
        let stdin = child.stdin.take();
        self.agents.push((n, child, stdin));
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && tx.send((n, v)).is_err()
                    {
                        break;
                    }
                }
            });
        }
        Ok(())
    }

    fn tell(&mut self, n: Ns, v: &Value) -> Result<(), CmdError> {
        let Some((_, _, Some(stdin))) = self.agents.iter_mut().find(|a| a.0 == n) else {
            return Err(CmdError(format!("no traffic agent in {}", n.short())));
        };
        writeln!(stdin, "{v}")
            .and_then(|_| stdin.flush())
            .map_err(|e| CmdError(format!("traffic agent {}: {e}", n.short())))
    }

    /// Waits for a message from agent `n` whose top key is `key`. Other answers are kept for
    /// a later call (the two agents answer in either order); progress reports are dropped.
    fn expect(&mut self, rx: &Receiver<(Ns, Value)>, n: Ns, key: &str, timeout: Duration) -> Result<Value, CmdError> {
        if let Some(i) = self.pending.iter().position(|(from, v)| *from == n && v.get(key).is_some()) {
            return Ok(self.pending.remove(i).1[key].clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            self.interrupted()?;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(CmdError(format!("the traffic agent in {} did not answer ({key})", n.short())));
            }
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok((from, v)) if from == n && v.get(key).is_some() => return Ok(v[key].clone()),
                Ok((_, v)) if v.get("progress").is_some() => {}
                Ok(other) => self.pending.push(other),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return Err(CmdError(format!("the traffic agent in {} stopped", n.short()))),
            }
        }
    }

    /// Both sinks count run `run` from now on.
    fn listen(&mut self, rx: &Receiver<(Ns, Value)>, run: u32) -> Result<(), CmdError> {
        for a in [Ns::Dc, Ns::Sites] {
            self.tell(a, &json!({ "cmd": "listen", "run": run }))?;
            self.expect(rx, a, "listening", Duration::from_secs(10))?;
        }
        Ok(())
    }

    /// The data plane counters of a gateway (its stats file: totals of every worker), as the
    /// gateway writes them after this call (the file is rewritten 4 times a second).
    fn counters(&self, n: Ns) -> BTreeMap<String, u64> {
        let asked = std::time::SystemTime::now();
        let written = || std::fs::metadata(self.stats_file(n)).and_then(|m| m.modified()).ok();
        let deadline = Instant::now() + Duration::from_secs(2);
        while written().is_none_or(|t| t <= asked) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = BTreeMap::new();
        let Ok(text) = std::fs::read_to_string(self.stats_file(n)) else { return out };
        let Ok(v) = serde_json::from_str::<Value>(&text) else { return out };
        for section in ["counters", "drops"] {
            if let Some(m) = v["total"][section].as_object() {
                for (k, x) in m {
                    let name = if section == "drops" { format!("drop:{k}") } else { k.clone() };
                    out.insert(name, x.as_u64().unwrap_or(0));
                }
            }
        }
        out
    }

    /// Datagrams a host's kernel dropped for a full socket receive buffer (`/proc/net/snmp`,
    /// `Udp: RcvbufErrors`, read inside its namespace).
    fn udp_rcvbuf_errors(&self, n: Ns) -> u64 {
        let Ok(text) = sh(&["ip", "netns", "exec", &self.ns(n), "cat", "/proc/net/snmp"]) else { return 0 };
        let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
        let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return 0 };
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(k, _)| *k == "RcvbufErrors")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    fn cleanup(&mut self) {
        for (_, mut child, stdin) in self.agents.drain(..) {
            drop(stdin); // the agent exits when its input closes
            let deadline = Instant::now() + Duration::from_secs(2);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for (_, child) in &mut self.gateways {
            if child.try_wait().ok().flatten().is_none() {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_child(child),
                    rustix::process::Signal::TERM,
                );
            }
        }
        for (_, mut child) in self.gateways.drain(..) {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).stderr(Stdio::null()).status();
        }
        for db in self.databases.drain(..) {
            let _ = std::fs::remove_file(db);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// One direction's results.
#[derive(Debug, Default)]
struct Direction {
    sent: u64,
    received: u64,
    duplicates: u64,
    reordered: u64,
    bytes: u64,
    /// Tunnels that delivered at least one packet.
    tunnels_passing: usize,
    latency_ns: [u64; 4],
}

impl Direction {
    fn from(sent: &Value, report: &Value) -> Direction {
        let sent_per: Vec<u64> = sent["per_tunnel"]
            .as_array()
            .map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0)).collect())
            .unwrap_or_default();
        let per = report["per_tunnel"].as_array().cloned().unwrap_or_default();
        let l = &report["latency_ns"];
        Direction {
            sent: sent_per.iter().sum(),
            received: per.iter().map(|t| t["received"].as_u64().unwrap_or(0)).sum(),
            duplicates: per.iter().map(|t| t["duplicates"].as_u64().unwrap_or(0)).sum(),
            reordered: per.iter().map(|t| t["reordered"].as_u64().unwrap_or(0)).sum(),
            bytes: report["bytes"].as_u64().unwrap_or(0),
            tunnels_passing: per.iter().filter(|t| t["received"].as_u64().unwrap_or(0) > 0).count(),
            latency_ns: ["p50", "p90", "p99", "max"].map(|q| l[q].as_u64().unwrap_or(0)),
        }
    }

    fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    fn json(&self, seconds: f64) -> Value {
        json!({
            "sent": self.sent, "received": self.received, "lost": self.lost(),
            "duplicates": self.duplicates, "reordered": self.reordered,
            "tunnels_passing": self.tunnels_passing,
            "packets_per_second": self.received as f64 / seconds,
            "gbit_per_second": ip_bits(self.bytes, self.received) / seconds / 1e9,
            "latency_us": {
                "p50": self.latency_ns[0] as f64 / 1e3, "p90": self.latency_ns[1] as f64 / 1e3,
                "p99": self.latency_ns[2] as f64 / 1e3, "max": self.latency_ns[3] as f64 / 1e3,
            },
        })
    }
}

/// Bits of the inner IP packets: UDP payload plus 28 bytes of UDP and IPv4 headers each.
fn ip_bits(payload_bytes: u64, packets: u64) -> f64 {
    (payload_bytes + 28 * packets) as f64 * 8.0
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn us(ns: u64) -> String {
    if ns >= 10_000_000 { format!("{:.1} ms", ns as f64 / 1e6) } else { format!("{} us", ns / 1000) }
}

/// Random hex for the pre-shared key of this run.
fn random_psk() -> Result<String, CmdError> {
    let mut b = [0u8; 24];
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| CmdError(format!("/dev/urandom: {e}")))?;
    std::io::Read::read_exact(&mut f, &mut b).map_err(|e| CmdError(format!("/dev/urandom: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Runs `rampart demo`.
pub fn run(args: DemoArgs) -> Result<(), CmdError> {
    check_args(&args)?;
    preflight()?;
    let mut d = Demo::new()?;
    let t0 = Instant::now();
    let n = args.tunnels;
    d.announce(n);
    d.topology(n)?;
    d.interrupted()?;
    let (up, ike_secs) = d.bring_up_tunnels(n, args.auth)?;
    let rx = d.start_agents(n)?;
    d.warm_up(&rx, n, u64::from(args.size), args.rate)?;
    let m = d.measure(&rx, &args)?;
    let (text, drops_json) = d.summary(&args, up, ike_secs, &m);
    say(format!("{text}\n  total time        {:.1} s", t0.elapsed().as_secs_f64()));
    if let Some(path) = &args.json {
        let j = json!({
            "tunnels": n,
            "tunnels_up": up,
            "auth": args.auth.name(),
            "hub_connections": d.connections(Ns::Hub),
            "ike_seconds": ike_secs,
            "seconds": args.duration,
            "measured_seconds": m.seconds,
            "rate": args.rate,
            "size": args.size,
            "hub_to_sites": m.down.json(args.duration),
            "sites_to_hub": m.up.json(args.duration),
            "drops": drops_json,
            "host_udp_rcvbuf_errors": { "dc": m.overflows[0], "sites": m.overflows[1] },
        });
        std::fs::write(path, serde_json::to_vec_pretty(&j).unwrap_or_default())
            .map_err(|e| CmdError(format!("{}: {e}", path.display())))?;
    }
    if args.keep {
        say(format!(
            "\nStill running (--keep): try the metrics line above, or rampart ctl --socket {} list-sas. Ctrl-C ends the demo.",
            d.socket(Ns::Branch).display()
        ));
        while !d.stop.load(Ordering::Relaxed) {
            d.check_gateways()?;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    say("  cleanup    stopping the gateways, removing the namespaces, databases and files");
    drop(d);
    Ok(())
}

/// The options' ranges.
fn check_args(args: &DemoArgs) -> Result<(), CmdError> {
    if args.tunnels == 0 || args.tunnels > plan::MAX_TUNNELS {
        return Err(CmdError(format!("--tunnels {}: 1..={}", args.tunnels, plan::MAX_TUNNELS)));
    }
    if !(args.duration.is_finite() && args.duration > 0.0 && args.duration <= 3600.0) {
        return Err(CmdError(format!("--duration {}: 0 < seconds <= 3600", args.duration)));
    }
    if args.rate == 0 || !(agent::HEADER as u32..=1400).contains(&args.size) {
        return Err(CmdError(format!("--rate {} --size {}: rate > 0, size 28..=1400", args.rate, args.size)));
    }
    Ok(())
}

/// What the measured run found: counters around it, and each direction's figures.
struct Measured {
    /// Hub's and branch's counters before and after.
    before: [BTreeMap<String, u64>; 2],
    after: [BTreeMap<String, u64>; 2],
    /// UDP receive buffer overflows of the dc and the sites during the run.
    overflows: [u64; 2],
    down: Direction,
    up: Direction,
    seconds: f64,
}

impl Demo {
    /// An empty demo (nothing made yet), its signals and its scratch folder.
    fn new() -> Result<Demo, CmdError> {
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, stop.clone()).map_err(|e| CmdError(format!("signal handler: {e}")))?;
        }
        let tag = format!("rdemo{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("rampart-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| CmdError(format!("{}: {e}", dir.display())))?;
        Ok(Demo {
            tag,
            dir,
            namespaces: Vec::new(),
            gateways: Vec::new(),
            agents: Vec::new(),
            pending: Vec::new(),
            databases: Vec::new(),
            stop,
            tty: std::io::stdout().is_terminal(),
        })
    }

    fn announce(&self, n: u32) {
        say(format!(
            "Rampart demo: a hub and a branch gateway (rampart run each), {n} branch tunnels over IKEv2, UDP both ways"
        ));
        say(format!(
            "  network    namespaces {}-{{dc,hub,branch,sites}}: dc {} - hub {} == WAN == branch {}..{} - sites {}/24 x {n}",
            self.tag,
            plan::DC_HOST,
            plan::HUB_WAN,
            plan::site_wan(0),
            plan::site_wan(n - 1),
            plan::site_subnet(0),
        ));
    }

    /// Starts both gateways (the hub answers, the branch initiates one connection per site) and
    /// waits, showing progress, until every tunnel is up. Returns the tunnels up and the time.
    fn bring_up_tunnels(&mut self, n: u32, auth: DemoAuth) -> Result<(usize, f64), CmdError> {
        let d = self;
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let sites: Vec<SiteAuth> = (0..n).map(|k| auth.site(k)).collect();
        let psks = sites
            .iter()
            .map(|a| if *a == SiteAuth::Psk { random_psk() } else { Ok(String::new()) })
            .collect::<Result<Vec<_>, _>>()?;
        let mut credentials = Credentials { auth, psks, hub_dir: None, branch_dir: None };
        let cert_sites: Vec<u32> = (0..n).filter(|k| sites[*k as usize] == SiteAuth::Cert).collect();
        if !cert_sites.is_empty() {
            let t = Instant::now();
            let (hub, branch) = pki::make(&d.dir.join("pki"), HUB_ID, &cert_sites, |k| site_id(k, SiteAuth::Cert))?;
            say(format!(
                "  pki        a CA for this run, {} certificates (ECDSA P-256) in {:.1} s",
                cert_sites.len() + 1,
                t.elapsed().as_secs_f64()
            ));
            credentials.hub_dir = Some(hub.path().to_path_buf());
            credentials.branch_dir = Some(branch.path().to_path_buf());
        }
        let templates: Vec<String> = [
            (!cert_sites.is_empty()).then(|| format!("{} (certificates of {})", CERT_TEMPLATE.0, CERT_TEMPLATE.1)),
            (cert_sites.len() < n as usize).then(|| format!("{PSK_TEMPLATE} (a key per site identity)")),
        ]
        .into_iter()
        .flatten()
        .collect();
        say(format!("  hub        one %any template per method for every site: {}", templates.join(", ")));
        let hub_cfg = d.config(Ns::Hub, n, 0, &credentials);
        let branch_cfg = d.config(Ns::Branch, n, 1 % cores, &credentials);
        d.start_gateway(Ns::Hub, &hub_cfg)?;
        d.wait_control(Ns::Hub)?;
        let t_ike = Instant::now();
        d.start_gateway(Ns::Branch, &branch_cfg)?;
        d.wait_control(Ns::Branch)?;
        let deadline = t_ike + Duration::from_secs(30) + Duration::from_millis(100) * n;
        let mut last_shown = (usize::MAX, Instant::now() - Duration::from_secs(10));
        let up = loop {
            d.interrupted()?;
            d.check_gateways()?;
            let up = d.tunnels_up(Ns::Branch).min(d.tunnels_up(Ns::Hub));
            if up < n as usize && up != last_shown.0 && (d.tty || last_shown.1.elapsed() >= Duration::from_secs(1)) {
                d.progress(&format!("  tunnels    {up:>width$}/{n} up", width = n.to_string().len()), false);
                last_shown = (up, Instant::now());
            }
            if up >= n as usize {
                break up;
            }
            if Instant::now() > deadline {
                if d.tty {
                    say("");
                }
                return Err(
                    d.failure(format!("only {up} of {n} tunnels came up in {:.0} s", t_ike.elapsed().as_secs_f64()))
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let ike_secs = t_ike.elapsed().as_secs_f64();
        let how = match auth {
            DemoAuth::Psk => "PSK",
            DemoAuth::Cert => "certificates, ECDSA P-256",
            DemoAuth::Mixed => "certificates, ECDSA P-256, and PSK",
        };
        d.progress(
            &format!("  tunnels    {up}/{n} up in {ike_secs:.1} s (IKEv2 {how}, AES-256-GCM ESP, x25519)"),
            true,
        );

        Ok((up, ike_secs))
    }

    /// Starts the traffic agents on the two hosts and waits until both are ready.
    fn start_agents(&mut self, n: u32) -> Result<Receiver<(Ns, Value)>, CmdError> {
        let d = self;
        let (tx, rx) = channel();
        d.start_agent(Ns::Dc, n, tx.clone())?;
        d.start_agent(Ns::Sites, n, tx)?;
        for a in [Ns::Dc, Ns::Sites] {
            d.expect(&rx, a, "ready", Duration::from_secs(20))?;
        }
        say(format!(
            "  metrics    ip netns exec {} curl -s http://127.0.0.1:9184/metrics   (also /stats; {} likewise)",
            d.ns(Ns::Hub),
            d.ns(Ns::Branch)
        ));
        say(format!("             rampart ctl --socket {} list-sas", d.socket(Ns::Branch).display()));

        Ok(rx)
    }

    /// Warm-up: the gateways learn their neighbours (a packet whose next hop is not resolved yet
    /// is dropped while the kernel resolves it); every tunnel must carry packets both ways.
    fn warm_up(&mut self, rx: &Receiver<(Ns, Value)>, n: u32, size: u64, rate: u32) -> Result<(), CmdError> {
        let d = self;
        let warm_rate = f64::from(n * 20).clamp(500.0, f64::from(rate));
        let mut passing = (0, 0);
        for attempt in 1..=3u32 {
            d.listen(rx, attempt)?;
            for a in [Ns::Dc, Ns::Sites] {
                d.tell(a, &json!({ "cmd": "send", "run": attempt, "rate": warm_rate, "seconds": 1.0, "size": size }))?;
            }
            for a in [Ns::Dc, Ns::Sites] {
                d.expect(rx, a, "sent", Duration::from_secs(30))?;
            }
            std::thread::sleep(Duration::from_millis(300));
            let mut reps = Vec::new();
            for a in [Ns::Dc, Ns::Sites] {
                d.tell(a, &json!({ "cmd": "report" }))?;
                reps.push(d.expect(rx, a, "report", Duration::from_secs(10))?);
            }
            let count = |r: &Value| {
                r["per_tunnel"].as_array().map_or(0, |a| a.iter().filter(|t| t["received"].as_u64() > Some(0)).count())
            };
            passing = (count(&reps[1]), count(&reps[0]));
            if passing.0 == n as usize && passing.1 == n as usize {
                break;
            }
        }
        say(format!(
            "  warm-up    every tunnel checked both ways: {}/{n} hub->sites, {}/{n} sites->hub",
            passing.0, passing.1
        ));

        Ok(())
    }

    /// The measured run: both agents send for `--duration` at `--rate`, progress once a second.
    fn measure(&mut self, rx: &Receiver<(Ns, Value)>, args: &DemoArgs) -> Result<Measured, CmdError> {
        let d = self;
        let size = u64::from(args.size);
        let before = [d.counters(Ns::Hub), d.counters(Ns::Branch)];
        let rcvbuf_before = [d.udp_rcvbuf_errors(Ns::Dc), d.udp_rcvbuf_errors(Ns::Sites)];
        let run_id = 100;
        d.listen(rx, run_id)?;
        for a in [Ns::Dc, Ns::Sites] {
            d.tell(
                a,
                &json!({ "cmd": "send", "run": run_id, "rate": args.rate, "seconds": args.duration, "size": size }),
            )?;
        }
        let t_run = Instant::now();
        let mut sent: [Option<Value>; 2] = [None, None];
        let mut rx_now = [0u64; 2];
        let mut rx_then = [0u64; 2];
        let mut last = Instant::now();
        while sent.iter().any(Option::is_none) {
            d.interrupted()?;
            d.check_gateways()?;
            if t_run.elapsed() > Duration::from_secs_f64(args.duration + 60.0) {
                return Err(d.failure("the traffic agents did not finish".into()));
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((a, v)) => {
                    let i = usize::from(a == Ns::Sites);
                    if let Some(p) = v.get("progress") {
                        rx_now[i] = p["rx"].as_u64().unwrap_or(0);
                    }
                    if let Some(s) = v.get("sent") {
                        sent[i] = Some(s.clone());
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return Err(d.failure("a traffic agent stopped".into())),
            }
            let dt = last.elapsed().as_secs_f64();
            if dt >= 1.0 {
                // rx_now[1]: what the sites received (hub -> sites); rx_now[0]: the dc (sites -> hub).
                let rate = |i: usize| rx_now[i].saturating_sub(rx_then[i]) as f64 / dt;
                let pps = [rate(1), rate(0)];
                let gbit = ip_bits(size * (pps[0] + pps[1]) as u64, (pps[0] + pps[1]) as u64) / 1e9;
                d.progress(
                    &format!(
                        "  traffic    {:>4.0}/{:.0} s   hub->sites {:>9} pkt/s   sites->hub {:>9} pkt/s   {gbit:.3} Gbit/s",
                        t_run.elapsed().as_secs_f64().min(args.duration),
                        args.duration,
                        thousands(pps[0] as u64),
                        thousands(pps[1] as u64)
                    ),
                    false,
                );
                rx_then = rx_now;
                last = Instant::now();
            }
        }
        let seconds = t_run.elapsed().as_secs_f64().max(args.duration);
        // Let the last packets arrive, and the gateways rewrite their stats files.
        std::thread::sleep(Duration::from_millis(600));
        let mut reports = Vec::new();
        for a in [Ns::Dc, Ns::Sites] {
            d.tell(a, &json!({ "cmd": "report" }))?;
            reports.push(d.expect(rx, a, "report", Duration::from_secs(10))?);
        }
        let after = [d.counters(Ns::Hub), d.counters(Ns::Branch)];
        let down = Direction::from(sent[0].as_ref().unwrap_or(&Value::Null), &reports[1]);
        let up = Direction::from(sent[1].as_ref().unwrap_or(&Value::Null), &reports[0]);
        if d.tty {
            d.progress("", false);
        }
        let overflows = [Ns::Dc, Ns::Sites].map(|h| {
            let i = usize::from(h == Ns::Sites);
            d.udp_rcvbuf_errors(h).saturating_sub(rcvbuf_before[i])
        });
        Ok(Measured { before, after, overflows, down, up, seconds })
    }

    /// The summary's text and the drops of each data plane (for `--json`).
    fn summary(
        &self,
        args: &DemoArgs,
        up: usize,
        ike_secs: f64,
        m: &Measured,
    ) -> (String, serde_json::Map<String, Value>) {
        let (n, secs, d) = (args.tunnels, args.duration, self);
        let (down, upd, before, after) = (&m.down, &m.up, &m.before, &m.after);
        let mut s = String::new();
        let _ = writeln!(s, "\nSummary ({n} tunnels, {secs:.0} s of traffic, {} bytes of UDP payload)", args.size);
        let _ = writeln!(s, "  tunnels up        {up}/{n} (brought up in {ike_secs:.1} s)");
        let _ = writeln!(s, "                    {:>20} {:>20}", "hub -> sites", "sites -> hub");
        let row = |s: &mut String, name: &str, a: String, b: String| {
            let _ = writeln!(s, "  {name:<17} {a:>20} {b:>20}");
        };
        row(&mut s, "tunnels passing", format!("{}/{n}", down.tunnels_passing), format!("{}/{n}", upd.tunnels_passing));
        row(&mut s, "packets sent", thousands(down.sent), thousands(upd.sent));
        row(&mut s, "packets received", thousands(down.received), thousands(upd.received));
        let pct = |d: &Direction| if d.sent == 0 { 0.0 } else { d.lost() as f64 * 100.0 / d.sent as f64 };
        row(
            &mut s,
            "loss",
            format!("{} ({:.3}%)", thousands(down.lost()), pct(down)),
            format!("{} ({:.3}%)", thousands(upd.lost()), pct(upd)),
        );
        row(&mut s, "duplicates", thousands(down.duplicates), thousands(upd.duplicates));
        row(
            &mut s,
            "packets/s",
            thousands((down.received as f64 / secs) as u64),
            thousands((upd.received as f64 / secs) as u64),
        );
        row(
            &mut s,
            "Gbit/s (inner IP)",
            format!("{:.3}", ip_bits(down.bytes, down.received) / secs / 1e9),
            format!("{:.3}", ip_bits(upd.bytes, upd.received) / secs / 1e9),
        );
        for (i, q) in ["latency p50", "latency p90", "latency p99", "latency max"].iter().enumerate() {
            row(&mut s, q, us(down.latency_ns[i]), us(upd.latency_ns[i]));
        }
        let mut drops_json = serde_json::Map::new();
        for (gi, g) in [Ns::Hub, Ns::Branch].iter().enumerate() {
            let delta = |k: &str| {
                after[gi].get(k).copied().unwrap_or(0).saturating_sub(before[gi].get(k).copied().unwrap_or(0))
            };
            let mut drops: Vec<(String, u64)> = after[gi]
                .keys()
                .filter(|k| {
                    k.starts_with("drop:")
                        || matches!(k.as_str(), "tx_ring_full" | "not_ip" | "kernel_rx_dropped" | "kernel_rx_ring_full")
                })
                .map(|k| (k.trim_start_matches("drop:").to_string(), delta(k)))
                .filter(|(_, v)| *v > 0)
                .collect();
            drops.sort_by_key(|d| std::cmp::Reverse(d.1));
            let text = if drops.is_empty() {
                "none".to_string()
            } else {
                drops.iter().map(|(k, v)| format!("{k} {}", thousands(*v))).collect::<Vec<_>>().join(", ")
            };
            let _ = writeln!(
                s,
                "  {:<17} encrypted {} decrypted {}; drops: {text}",
                format!("{} data plane", g.short()),
                thousands(delta("encrypted_packets")),
                thousands(delta("decrypted_packets")),
            );
            drops_json.insert(
                g.short().into(),
                drops.into_iter().map(|(k, v)| (k, Value::from(v))).collect::<serde_json::Map<_, _>>().into(),
            );
        }
        let overflows = m.overflows;
        let _ = writeln!(
            s,
            "  hosts             UDP receive buffer overflows: {}",
            if overflows == [0, 0] {
                "none".to_string()
            } else {
                format!("dc {}, sites {}", thousands(overflows[0]), thousands(overflows[1]))
            }
        );
        let _ =
            writeln!(s, "  metrics           ip netns exec {} curl -s http://127.0.0.1:9184/metrics", d.ns(Ns::Hub));
        let _ = writeln!(s, "                    (and {}; /stats is the table of rampart ctl stats)", d.ns(Ns::Branch));
        (s.trim_end().to_string(), drops_json)
    }
}
