//! The orchestration of the traffic benchmark: for each gateway kind ("arm") it builds its own
//! copy of the host A - gateway A - gateway B - host B topology (`scripts/topology.sh`) and
//! starts the gateways; then, size by size and with the arms in lockstep, it runs the generator
//! and the sink (this same binary, `gen` and `sink`, inside the host namespaces): a warm-up, a
//! flat-out trial, a latency trial at a common rate and a search for the highest rate delivered
//! with at most the allowed loss; at the end it tears everything down and prints the tables and
//! the ratios between the arms.
//!
//! Cleanup is by construction: every namespace, process and file lives in a guard whose `Drop`
//! removes it (processes by their PID: every PID inside our own namespaces, then the namespaces;
//! XDP programs go with the processes that hold their links), and SIGINT/SIGTERM/SIGHUP turn into
//! an error that unwinds through those guards. It must never touch a namespace, process or file
//! it did not create.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::generator::GenReport;
use super::packet::Size;
use super::sink::{Latency, SinkReport};

// Addresses of scripts/topology.sh.
const HA_MAC: &str = "02:00:00:01:00:02";
const GA_LAN_MAC: &str = "02:00:00:01:00:01";
const GB_WAN_MAC: &str = "02:00:00:00:00:02";
const GA_WAN_MAC: &str = "02:00:00:00:00:01";
const HB_MAC: &str = "02:00:00:02:00:02";

type Res<T> = Result<T, String>;

/// The gateways under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// Linux forwarding in both gateways, no XDP, no IPsec.
    Kernel,
    /// The no-crypto AF_XDP forwarder ([`super::fwd`]) in both gateways.
    XdpFwd,
    /// Rampart's data plane with AES-GCM static SAs of this key size.
    Rampart(u32),
    /// The same as [`Arm::Rampart`] with another `rampart` binary (`--baseline-bin`): a build
    /// to compare with, side by side in the same run.
    Baseline(u32),
    /// Rampart's data plane with AH static SAs (HMAC-SHA-256-128, tunnel mode, never in UDP).
    RampartAh,
    /// strongSwan charon with kernel-libipsec, AES-GCM-256, ESP-in-UDP.
    StrongSwan,
}

impl Arm {
    /// The name used on the command line and in the table.
    pub fn name(self) -> String {
        match self {
            Arm::Kernel => "kernel-fwd".into(),
            Arm::XdpFwd => "xdp-fwd".into(),
            Arm::Rampart(bits) => format!("rampart-gcm{bits}"),
            Arm::Baseline(bits) => format!("baseline-gcm{bits}"),
            Arm::RampartAh => "rampart-ah-sha256".into(),
            Arm::StrongSwan => "strongswan".into(),
        }
    }

    /// Parses a name of [`Arm::name`].
    pub fn parse(s: &str) -> Res<Arm> {
        match s {
            "kernel-fwd" | "kernel" => Ok(Arm::Kernel),
            "xdp-fwd" => Ok(Arm::XdpFwd),
            "rampart-gcm128" => Ok(Arm::Rampart(128)),
            "rampart-gcm256" => Ok(Arm::Rampart(256)),
            "baseline-gcm128" => Ok(Arm::Baseline(128)),
            "baseline-gcm256" => Ok(Arm::Baseline(256)),
            "rampart-ah-sha256" => Ok(Arm::RampartAh),
            "strongswan" => Ok(Arm::StrongSwan),
            _ => Err(format!(
                "arm '{s}': kernel-fwd, xdp-fwd, rampart-gcm128, rampart-gcm256, rampart-ah-sha256, baseline-gcm128, baseline-gcm256 (with --baseline-bin), strongswan"
            )),
        }
    }

    /// Every arm, in table order.
    pub fn all() -> Vec<Arm> {
        vec![Arm::Kernel, Arm::XdpFwd, Arm::Rampart(128), Arm::Rampart(256), Arm::RampartAh, Arm::StrongSwan]
    }
}

/// Options of a run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Arms to measure.
    pub arms: Vec<Arm>,
    /// Packet sizes.
    pub sizes: Vec<Size>,
    /// Also IPv6 (inner and, for Rampart, outer).
    pub ipv6: bool,
    /// Seconds per trial.
    pub seconds: f64,
    /// Trials of the rate search after the flat-out one.
    pub steps: u32,
    /// Largest loss fraction that counts as "delivered".
    pub loss: f64,
    /// Rampart's ESP: UDP-encapsulated (as strongSwan's) or plain.
    pub encap_udp: bool,
    /// The `rampart` binary.
    pub rampart_bin: Option<PathBuf>,
    /// Another `rampart` binary for the `baseline-*` arms.
    pub baseline_bin: Option<PathBuf>,
    /// Write the report here too.
    pub report: Option<PathBuf>,
    /// Record a `perf` profile of each arm's gateways during one flat-out trial (into this dir).
    pub perf_dir: Option<PathBuf>,
    /// The common rate of the latency trial every arm gets (packets per second).
    pub latency_rate: f64,
    /// How many times every size is measured (maxima over all; the latency trial least
    /// disturbed by other load is kept).
    pub repeat: u32,
}

/// One measured trial.
#[derive(Clone, Debug, Default)]
pub struct Trial {
    /// Rate asked for (`None`: flat out).
    pub target_pps: Option<f64>,
    /// What the generator sent.
    pub generator: GenReport,
    /// What the sink counted.
    pub sink: SinkReport,
    /// CPU time of gateway A's and B's processes, percent of one core.
    pub cpu_ga: f64,
    /// See `cpu_ga`.
    pub cpu_gb: f64,
    /// CPU seconds of both gateways' processes during the trial.
    pub gw_cpu_s: f64,
    /// CPU of the generator and the sink processes, percent of one core.
    pub cpu_gen: f64,
    /// See `cpu_gen`.
    pub cpu_sink: f64,
    /// Whole machine: busy and softirq, percent of one core (200 = both cores).
    pub cpu_busy: f64,
    /// See `cpu_busy`.
    pub cpu_softirq: f64,
    /// CPU the machine spent on everything else (other users of a shared machine): busy minus
    /// the benchmark's processes and softirq, percent of one core.
    pub cpu_other: f64,
    /// Packets counted by the gateways during the trial: A received, A sent, B received, B sent
    /// (Rampart's data plane and the AF_XDP forwarder count; the kernel and strongSwan do not).
    pub stages: Option<[u64; 4]>,
}

impl Trial {
    /// Offered rate (what the generator managed to send), packets per second.
    pub fn offered_pps(&self) -> f64 {
        self.generator.sent as f64 / self.generator.seconds.max(1e-9)
    }
    /// Delivered rate, packets per second over the sending time.
    pub fn pps(&self) -> f64 {
        self.sink.received as f64 / self.generator.seconds.max(1e-9)
    }
    /// Delivered inner IP bits per second, in Gbit/s.
    pub fn gbps(&self) -> f64 {
        self.sink.ip_bytes as f64 * 8.0 / self.generator.seconds.max(1e-9) / 1e9
    }
    /// Microseconds of gateway process CPU per delivered packet (both gateways together; the
    /// kernel's own forwarding runs in softirq and is not counted: `None` then).
    pub fn gw_us_per_packet(&self) -> Option<f64> {
        (self.gw_cpu_s > 0.0 && self.sink.received > 0).then(|| self.gw_cpu_s * 1e6 / self.sink.received as f64)
    }

    /// Fraction of sent packets that did not arrive.
    pub fn loss(&self) -> f64 {
        if self.generator.sent == 0 {
            return 1.0;
        }
        (self.generator.sent.saturating_sub(self.sink.received)) as f64 / self.generator.sent as f64
    }
}

/// What one arm reached at one size and family.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The arm.
    pub arm: Arm,
    /// Packet size.
    pub size: Size,
    /// IPv6 inside (and outside, for Rampart).
    pub v6: bool,
    /// The flat-out trial.
    pub flat: Trial,
    /// The highest-rate trial with loss within the limit (`None`: none passed).
    pub best: Option<Trial>,
    /// True when even flat out the loss stayed within the limit (the generator was the limit).
    pub generator_bound: bool,
    /// The trial at [`Options::latency_rate`].
    pub fixed: Option<Trial>,
    /// The trial that delivered the most packets per second, whatever its loss (the maximum
    /// forwarding rate of RFC 2285).
    pub peak: Option<Trial>,
    /// Or why the arm could not be measured.
    pub error: Option<String>,
}

// ------------------------------------------------------------------------------------------
// Processes and namespaces

fn interrupted(stop: &AtomicBool) -> Res<()> {
    if stop.load(Ordering::Relaxed) { Err("interrupted".into()) } else { Ok(()) }
}

fn run_cmd(args: &[&str]) -> Res<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
}

/// A child process, terminated on drop (SIGTERM, then SIGKILL after 3 s).
struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM and wait.
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        signal(self.pid(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("traffic: {} (pid {}) ignored SIGTERM, killing it", self.what, self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The five namespaces of `scripts/topology.sh`; on drop every process left inside them is
/// terminated by PID and the namespaces are deleted.
struct Topo {
    name: String,
    repo: PathBuf,
}

const ROLES: [&str; 5] = ["ha", "ga", "sw", "gb", "hb"];

impl Topo {
    fn up(repo: &Path, name: &str) -> Res<Topo> {
        let t = Topo { name: name.into(), repo: repo.into() };
        let script = repo.join("scripts/topology.sh");
        run_cmd(&["bash", &script.to_string_lossy(), "up", name, "1"])?;
        Ok(t)
    }

    fn ns(&self, which: &str) -> String {
        format!("{}-{which}", self.name)
    }

    fn sh(&self, which: &str, args: &[&str]) -> Res<String> {
        let ns = self.ns(which);
        let mut v = vec!["ip", "netns", "exec", &ns];
        v.extend_from_slice(args);
        run_cmd(&v)
    }

    fn command(&self, which: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(which)]).arg(program);
        c
    }

    /// PIDs of the processes in namespace `which`.
    fn pids(&self, which: &str) -> Vec<u32> {
        run_cmd(&["ip", "netns", "pids", &self.ns(which)])
            .map(|s| s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        // Anything still running inside our namespaces is ours: stop it by PID.
        let mut left: Vec<u32> = ROLES.iter().flat_map(|r| self.pids(r)).collect();
        for &p in &left {
            signal(p, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            left.retain(|&p| alive(p));
        }
        for &p in &left {
            signal(p, rustix::process::Signal::KILL);
        }
        let script = self.repo.join("scripts/topology.sh");
        let _ = Command::new("bash").arg(script).args(["down", &self.name]).output();
    }
}

/// Files and directories removed on drop.
struct Files(Vec<PathBuf>);

impl Drop for Files {
    fn drop(&mut self) {
        for p in &self.0 {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// CPU ticks (user + system) of the processes in a namespace, and of single PIDs.
fn ticks_of(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    let Some(rest) = s.rsplit(')').next() else { return 0 };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is index 0, utime 11, stime 12.
    let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// (busy, softirq, total) jiffies of the whole machine.
fn machine_ticks() -> (u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().next() else { return (0, 0, 0) };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 7 {
        return (0, 0, 0);
    }
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v[4];
    (total - idle, v[6], total)
}

fn clk_tck() -> f64 {
    // Linux on every architecture Rampart builds for reports 100 ticks per second to user space.
    100.0
}

// ------------------------------------------------------------------------------------------
// One arm's gateways

/// What runs in the gateways during an arm; dropped to stop it.
struct Gateways {
    arm: Arm,
    procs: Vec<Proc>,
    _files: Files,
    strongswan_state: Option<PathBuf>,
    repo: PathBuf,
    /// Per gateway: stats file of Rampart's data plane.
    stats: Vec<PathBuf>,
    logs: Vec<PathBuf>,
}

impl Drop for Gateways {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.stop();
        }
        if let Some(state) = &self.strongswan_state {
            let script = self.repo.join("bench/scripts/strongswan.sh");
            let _ = Command::new("bash").arg(script).arg("down").arg(state).output();
        }
    }
}

impl Gateways {
    /// Packet counters of both gateways (see [`Trial::stages`]), once their stats files have
    /// been rewritten after `since`.
    fn counters(&self, since: Option<std::time::SystemTime>) -> Option<[u64; 4]> {
        if self.stats.len() != 2 {
            return None;
        }
        let mut out = [0u64; 4];
        for (i, path) in self.stats.iter().enumerate() {
            let deadline = Instant::now() + Duration::from_millis(800);
            let v = loop {
                let fresh =
                    since.is_none_or(|t| std::fs::metadata(path).and_then(|m| m.modified()).is_ok_and(|m| m > t));
                let parsed =
                    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
                match parsed {
                    Some(v) if fresh || Instant::now() > deadline => break v,
                    _ if Instant::now() > deadline => return None,
                    _ => std::thread::sleep(Duration::from_millis(30)),
                }
            };
            let (rx, tx) = match self.arm {
                Arm::Rampart(_) | Arm::Baseline(_) | Arm::RampartAh => {
                    let c = &v["total"]["counters"];
                    if i == 0 {
                        (c["lan_rx_packets"].as_u64()?, c["wan_tx_packets"].as_u64()?)
                    } else {
                        (c["wan_rx_packets"].as_u64()?, c["lan_tx_packets"].as_u64()?)
                    }
                }
                _ => (v["rx"].as_u64()?, v["tx"].as_u64()?),
            };
            out[2 * i] = rx;
            out[2 * i + 1] = tx;
        }
        Some(out)
    }

    fn diagnostics(&self) -> String {
        let mut s = String::new();
        for l in &self.logs {
            if let Ok(t) = std::fs::read_to_string(l) {
                let tail: Vec<&str> = t.lines().rev().take(15).collect();
                let _ = writeln!(s, "--- {}:", l.display());
                for line in tail.iter().rev() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        for st in &self.stats {
            if let Ok(t) = std::fs::read_to_string(st)
                && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
            {
                let _ = writeln!(s, "--- {} totals: {}", st.display(), v["total"]);
            }
        }
        s
    }
}

fn permanent_neighbours(t: &Topo) -> Res<()> {
    for (w, dev, addrs, mac) in [
        ("ga", "wan0", ["192.0.2.2", "2001:db8::2"], GB_WAN_MAC),
        ("gb", "wan0", ["192.0.2.1", "2001:db8::1"], GA_WAN_MAC),
        ("gb", "lan0", ["10.2.0.2", "fd02::2"], HB_MAC),
        ("ga", "lan0", ["10.1.0.2", "fd01::2"], HA_MAC),
    ] {
        for a in addrs {
            t.sh(w, &["ip", "neigh", "replace", a, "lladdr", mac, "dev", dev, "nud", "permanent"])?;
        }
    }
    Ok(())
}

fn wait_ready(p: &mut Proc, stdout: ChildStdout, what: &str, stop: &AtomicBool) -> Res<()> {
    let mut r = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        interrupted(stop)?;
        line.clear();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            let st = p.child.wait().map_err(|e| e.to_string())?;
            return Err(format!("{what} exited ({st}) before it was ready"));
        }
        if line.trim() == "ready" {
            // Keep draining its stdout so that it never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut r, &mut std::io::sink()));
            return Ok(());
        }
    }
}

/// The `rampart` binary: `--rampart-bin`, or the one of this build's profile and target dir,
/// brought up to date with cargo first. If that build fails (the checkout is shared and may be
/// mid-edit) and an older binary exists, it is used with a warning naming its age.
fn rampart_bin(opts: &Options, repo: &Path, stop: &AtomicBool) -> Res<PathBuf> {
    if let Some(p) = &opts.rampart_bin {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().ok_or("no directory of the running binary")?;
    let bin = dir.join("rampart");
    let profile_release = dir.file_name().is_some_and(|n| n == "release");
    let target = dir.parent().ok_or("no target directory")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-q", "-p", "rampart", "--bin", "rampart", "--target-dir"]).arg(target).current_dir(repo);
    if profile_release {
        cmd.arg("--release");
    }
    eprintln!("traffic: building the rampart binary ({})", if profile_release { "release" } else { "debug" });
    let log = std::env::temp_dir().join(format!("rampart-traffic-{}-build.log", std::process::id()));
    let _log_guard = Files(vec![log.clone()]);
    let logf = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = cmd.stdout(Stdio::null()).stderr(logf).spawn().map_err(|e| format!("cargo build -p rampart: {e}"))?;
    let mut p = Proc { child, what: "cargo build".into() };
    let status = loop {
        if let Ok(Some(st)) = p.child.try_wait() {
            break st;
        }
        interrupted(stop)?;
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        let why = std::fs::read_to_string(&log).unwrap_or_default();
        let first: Vec<&str> = why.lines().take(6).collect();
        if !bin.exists() {
            return Err(format!("cargo build -p rampart failed: {}", first.join(" / ")));
        }
        let age = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.elapsed().ok())
            .map_or("unknown".into(), |d| format!("{} min", d.as_secs() / 60));
        eprintln!(
            "traffic: WARNING: cargo build -p rampart failed ({}); using the existing {} built {age} ago",
            first.first().copied().unwrap_or(""),
            bin.display()
        );
    }
    if !bin.exists() {
        return Err(format!("{} missing after the build", bin.display()));
    }
    Ok(bin)
}

fn start_gateways(arm: Arm, t: &Topo, opts: &Options, repo: &Path, scratch: &Path, stop: &AtomicBool) -> Res<Gateways> {
    permanent_neighbours(t)?;
    let mut g = Gateways {
        arm,
        procs: Vec::new(),
        _files: Files(Vec::new()),
        strongswan_state: None,
        repo: repo.into(),
        stats: Vec::new(),
        logs: Vec::new(),
    };
    match arm {
        Arm::Kernel => {
            for w in ["ga", "gb"] {
                t.sh(w, &["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])?;
            }
        }
        Arm::XdpFwd => {
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            for (w, inp, out, mac, core) in
                [("ga", "lan0", "wan0", GB_WAN_MAC, "0"), ("gb", "wan0", "lan0", HB_MAC, "1")]
            {
                let log = scratch.join(format!("fwd-{w}.log"));
                let stats = scratch.join(format!("fwd-{w}.json"));
                let logf = std::fs::File::create(&log).map_err(|e| e.to_string())?;
                let mut child = t
                    .command(w, &exe)
                    .args(["fwd", "--in", inp, "--out", out, "--dst-mac", mac, "--core", core])
                    .args(["--prefix", "10.2.0.0/24", "--prefix", "fd02::/64", "--stats"])
                    .arg(&stats)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(logf)
                    .spawn()
                    .map_err(|e| e.to_string())?;
                let stdout = child.stdout.take().ok_or("no stdout")?;
                let what = format!("forwarder in {w}");
                let mut p = Proc { child, what: what.clone() };
                wait_ready(&mut p, stdout, &what, stop)?;
                g.procs.push(p);
                g.logs.push(log);
                g.stats.push(stats);
            }
        }
        Arm::Rampart(_) | Arm::Baseline(_) | Arm::RampartAh => {
            let bits = match arm {
                Arm::Rampart(b) | Arm::Baseline(b) => b,
                _ => 128,
            };
            let ah = arm == Arm::RampartAh;
            let bin = match arm {
                Arm::Baseline(_) => opts.baseline_bin.clone().ok_or("baseline arms need --baseline-bin PATH")?,
                _ => opts.rampart_bin.clone().ok_or("no rampart binary")?,
            };
            let key_len = if ah {
                32
            } else if bits == 128 {
                20
            } else {
                36
            };
            let dbs: Vec<PathBuf> = ["a", "b"]
                .iter()
                .map(|s| PathBuf::from(format!("/dev/shm/rampart-traffic-{}-{}-{s}.sadb", std::process::id(), t.name)))
                .collect();
            g._files.0.extend(dbs.iter().cloned());
            let rampart = |db: &Path, args: &[&str]| -> Res<()> {
                let out = Command::new(&bin).args(args).env("RAMPART_DB", db).output().map_err(|e| e.to_string())?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!("rampart {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
                }
            };
            // Fixed benchmark keys (never used for anything else), one per SA.
            let key = |b: u8| format!("0x{}", format!("{b:02x}").repeat(key_len));
            for (outer, inner, spi, reqid) in [
                (("192.0.2.1", "192.0.2.2"), ("10.1.0.0/24", "10.2.0.0/24"), "0x1001", "1"),
                (("2001:db8::1", "2001:db8::2"), ("fd01::/64", "fd02::/64"), "0x1002", "2"),
            ] {
                let k = key(if reqid == "1" { 0x11 } else { 0x22 });
                for (db, dir) in [(&dbs[0], "out"), (&dbs[1], "in")] {
                    let proto = if ah { "ah" } else { "esp" };
                    let mut args = vec!["sa", "add", "src", outer.0, "dst", outer.1, "proto", proto, "spi", spi];
                    args.extend_from_slice(&["dir", dir, "mode", "tunnel", "reqid", reqid]);
                    if ah {
                        args.extend_from_slice(&["auth-trunc", "hmac(sha256)", &k, "128"]);
                    } else {
                        args.extend_from_slice(&["aead", "rfc4106(gcm(aes))", &k, "128"]);
                    }
                    if opts.encap_udp && !ah {
                        args.extend_from_slice(&["encap", "espinudp", "4500", "4500", "0.0.0.0"]);
                    }
                    args.extend_from_slice(&["sel", "src", inner.0, "dst", inner.1]);
                    rampart(db, &args)?;
                }
                rampart(
                    &dbs[0],
                    &[
                        "policy",
                        "add",
                        "src",
                        inner.0,
                        "dst",
                        inner.1,
                        "dir",
                        "out",
                        "tmpl",
                        "src",
                        outer.0,
                        "dst",
                        outer.1,
                        "proto",
                        if ah { "ah" } else { "esp" },
                        "reqid",
                        reqid,
                        "mode",
                        "tunnel",
                    ],
                )?;
            }
            for (i, (w, core)) in [("ga", 0), ("gb", 1)].into_iter().enumerate() {
                let stats = scratch.join(format!("stats-{w}.json"));
                let config = scratch.join(format!("{w}.toml"));
                let log = scratch.join(format!("rampart-{w}.log"));
                let text = format!(
                    "database = {:?}\ncores = [{core}]\nxdp_mode = \"native\"\nstats_file = {stats:?}\n\
                     [lan]\nname = \"lan0\"\n[wan]\nname = \"wan0\"\n",
                    dbs[i]
                );
                std::fs::write(&config, text).map_err(|e| e.to_string())?;
                let logf = std::fs::File::create(&log).map_err(|e| e.to_string())?;
                let child = t
                    .command(w, &bin)
                    .args(["dataplane", "--config"])
                    .arg(&config)
                    .stdin(Stdio::null())
                    .stdout(logf.try_clone().map_err(|e| e.to_string())?)
                    .stderr(logf)
                    .spawn()
                    .map_err(|e| e.to_string())?;
                let mut p = Proc { child, what: format!("rampart dataplane in {w}") };
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stats.exists() {
                    interrupted(stop)?;
                    if let Ok(Some(st)) = p.child.try_wait() {
                        return Err(format!(
                            "rampart dataplane in {w} exited ({st}): {}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        ));
                    }
                    if Instant::now() > deadline {
                        return Err(format!("rampart dataplane in {w} did not start"));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                g.procs.push(p);
                g.stats.push(stats);
                g.logs.push(log);
            }
        }
        Arm::StrongSwan => {
            let state = scratch.join("strongswan");
            g.strongswan_state = Some(state.clone());
            let script = repo.join("bench/scripts/strongswan.sh");
            run_cmd(&["bash", &script.to_string_lossy(), "up", &t.name, &state.to_string_lossy()])?;
            g.logs.push(state.join("a/charon.log"));
            g.logs.push(state.join("b/charon.log"));
        }
    }
    Ok(g)
}

// ------------------------------------------------------------------------------------------
// Trials

struct SinkProc {
    proc: Proc,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

fn start_sink(t: &Topo, run: u32, stop: &AtomicBool) -> Res<SinkProc> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = t
        .command("hb", &exe)
        .args(["sink", "--iface", "eth0", "--run", &run.to_string(), "--addr", "10.2.0.2", "--addr", "fd02::2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut p = Proc { child, what: "sink".into() };
    let mut line = String::new();
    loop {
        interrupted(stop)?;
        line.clear();
        if stdout.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            let st = p.child.wait().map_err(|e| e.to_string())?;
            return Err(format!("sink exited ({st}) before it was ready"));
        }
        if line.trim() == "ready" {
            break;
        }
    }
    Ok(SinkProc { proc: p, stdin, stdout })
}

fn run_id() -> u32 {
    let n = super::now_ns();
    (n ^ (n >> 32) ^ u64::from(std::process::id()).rotate_left(17)) as u32 | 1
}

fn trial(
    t: &Topo,
    g: &Gateways,
    size: Size,
    v6: bool,
    rate: Option<f64>,
    seconds: f64,
    stop: &AtomicBool,
) -> Res<Trial> {
    interrupted(stop)?;
    let run = run_id();
    let mut sink = start_sink(t, run, stop)?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let (src, dst) = if v6 { ("fd01::2", "fd02::2") } else { ("10.1.0.2", "10.2.0.2") };
    let mut cmd = t.command("ha", &exe);
    cmd.args(["gen", "--iface", "eth0", "--src-mac", HA_MAC, "--dst-mac", GA_LAN_MAC, "--src", src, "--dst", dst])
        .args(["--size", &size.label().to_lowercase(), "--seconds", &seconds.to_string(), "--run", &run.to_string()]);
    if let Some(r) = rate {
        cmd.args(["--rate", &format!("{r:.0}")]);
    }
    let ga: Vec<u32> = t.pids("ga");
    let gb: Vec<u32> = t.pids("gb");
    let c0 = g.counters(None);
    let m0 = machine_ticks();
    let g0: u64 = ga.iter().map(|&p| ticks_of(p)).sum();
    let b0: u64 = gb.iter().map(|&p| ticks_of(p)).sum();
    let s0 = ticks_of(sink.proc.pid());
    let t0 = Instant::now();
    let child = cmd.stdout(Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let gen_pid = child.id();
    let mut genp = Proc { child, what: "generator".into() };
    // Sample the generator's CPU just before it exits: poll its ticks while it runs.
    let mut gen_ticks = 0;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds + 15.0);
    let status = loop {
        if let Ok(Some(st)) = genp.child.try_wait() {
            break st;
        }
        gen_ticks = ticks_of(gen_pid).max(gen_ticks);
        if stop.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        if Instant::now() > deadline {
            return Err("generator did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = t0.elapsed().as_secs_f64();
    let gen_end = std::time::SystemTime::now();
    let m1 = machine_ticks();
    let g1: u64 = ga.iter().map(|&p| ticks_of(p)).sum();
    let b1: u64 = gb.iter().map(|&p| ticks_of(p)).sum();
    let s1 = ticks_of(sink.proc.pid());
    let mut out = String::new();
    if let Some(mut o) = genp.child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut o, &mut out);
    }
    if !status.success() {
        return Err(format!("generator failed ({status}): {out}"));
    }
    let gen_json: serde_json::Value =
        serde_json::from_str(out.trim()).map_err(|e| format!("generator output '{out}': {e}"))?;
    let gen_report = GenReport::from_json(&gen_json).ok_or_else(|| format!("generator output '{out}'"))?;
    // In-flight packets: give the gateways a moment, then stop the sink.
    std::thread::sleep(Duration::from_millis(300));
    if let Some(mut i) = sink.stdin.take() {
        let _ = writeln!(i, "stop");
    }
    let mut line = String::new();
    sink.stdout.read_line(&mut line).map_err(|e| e.to_string())?;
    let _ = sink.proc.child.wait();
    let v: serde_json::Value = serde_json::from_str(line.trim()).map_err(|e| format!("sink output '{line}': {e}"))?;
    let sink_report = SinkReport::from_json(&v).ok_or_else(|| format!("sink output '{line}'"))?;
    let stages = match (c0, g.counters(Some(gen_end + Duration::from_millis(250)))) {
        (Some(a), Some(b)) => Some([0, 1, 2, 3].map(|i| b[i].saturating_sub(a[i]))),
        _ => None,
    };
    let hz = clk_tck();
    let pct = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / hz / wall * 100.0;
    let mt = (m1.2.saturating_sub(m0.2)).max(1) as f64;
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(Trial {
        target_pps: rate,
        generator: gen_report,
        sink: sink_report,
        cpu_ga: pct(g0, g1),
        cpu_gb: pct(b0, b1),
        gw_cpu_s: (g1.saturating_sub(g0) + b1.saturating_sub(b0)) as f64 / hz,
        cpu_other: 0.0,
        cpu_gen: gen_ticks as f64 / hz / wall * 100.0,
        cpu_sink: pct(s0, s1),
        cpu_busy: (m1.0.saturating_sub(m0.0)) as f64 / mt * 100.0 * ncpu,
        cpu_softirq: (m1.1.saturating_sub(m0.1)) as f64 / mt * 100.0 * ncpu,
        stages,
    })
    .map(|mut t: Trial| {
        t.cpu_other = (t.cpu_busy - t.cpu_ga - t.cpu_gb - t.cpu_gen - t.cpu_sink - t.cpu_softirq).max(0.0);
        t
    })
}

/// The rate search of one arm: start a little under what flat out delivered (overload often
/// delivers less than the lossless rate: receive livelock), go up by half until a trial fails,
/// then bisect until the bracket is within 5 %.
#[derive(Clone, Copy, Debug)]
struct Search {
    lo: Option<f64>,
    hi: Option<f64>,
    rate: f64,
    done: bool,
}

impl Search {
    fn new(flat: &Trial) -> Search {
        Search { lo: None, hi: None, rate: (flat.pps() * 0.9).max(1000.0), done: false }
    }

    /// Takes the trial at `self.rate`; returns whether it passed.
    fn update(&mut self, tr: &Trial, loss_limit: f64) -> bool {
        // A pass needs the generator to have kept up with the rate asked for.
        let pass = tr.loss() <= loss_limit && tr.offered_pps() >= 0.97 * self.rate;
        if pass {
            self.lo = Some(self.lo.map_or(self.rate, |l| l.max(self.rate)));
        } else {
            self.hi = Some(self.hi.map_or(self.rate, |h| h.min(self.rate)));
        }
        match (self.lo, self.hi) {
            (Some(l), None) => self.rate = l * 1.5,
            (None, Some(h)) => self.rate = (h * 0.6).max(100.0),
            (Some(l), Some(h)) if h - l <= 0.05 * h => self.done = true,
            (Some(l), Some(h)) => self.rate = (l + h) / 2.0,
            (None, None) => self.done = true,
        }
        pass
    }
}

/// Measures every ready arm at one size and family, in lockstep: each round gives every arm its
/// next trial (warm-up, flat out, the common-rate latency trial, then one search step each), so
/// that the arms compared in a ratio share the same minutes of a machine whose background load
/// changes.
fn measure_size(setups: &[ArmSetup], size: Size, v6: bool, opts: &Options, stop: &AtomicBool) -> Vec<Cell> {
    let mut cells: Vec<Cell> = setups
        .iter()
        .map(|s| match (&s.topo, &s.gws) {
            (Some(_), Some(_)) => Cell {
                arm: s.arm,
                size,
                v6,
                flat: Trial::default(),
                best: None,
                generator_bound: false,
                fixed: None,
                peak: None,
                error: None,
            },
            _ => error_cell(s.arm, size, v6, s.error.clone().unwrap_or_default()),
        })
        .collect();
    let mut searches: Vec<Option<Search>> = vec![None; setups.len()];
    // Rounds: 0 warm-up, 1 flat out, 2 latency at the common rate, 3.. search steps.
    for round in 0..3 + opts.steps {
        for (i, s) in setups.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                return cells;
            }
            let (Some(t), Some(g)) = (&s.topo, &s.gws) else { continue };
            let cell = &mut cells[i];
            if cell.error.is_some() {
                continue;
            }
            let rate = match round {
                0 => Some(20_000.0),
                1 => None,
                2 => Some(opts.latency_rate),
                _ => match &searches[i] {
                    Some(sr) if !sr.done => Some(sr.rate),
                    _ => continue,
                },
            };
            let seconds = if round == 0 { 0.3 } else { opts.seconds };
            let mut attempt = trial(t, g, size, v6, rate, seconds, stop);
            // The warm-up proves the path; a loaded machine can stall it once: up to 3 tries.
            for _ in 0..2 {
                match &attempt {
                    Ok(w) if round == 0 && w.sink.received < w.generator.sent / 2 => {
                        eprintln!(
                            "traffic: {} warm-up at {}: {} of {} arrived, again",
                            s.arm.name(),
                            size.label(),
                            w.sink.received,
                            w.generator.sent
                        );
                        attempt = trial(t, g, size, v6, rate, seconds, stop);
                    }
                    _ => break,
                }
            }
            let tr = match attempt {
                Ok(tr) => tr,
                Err(e) => {
                    eprintln!("traffic: {} at {} failed: {e}\n{}", s.arm.name(), size.label(), g.diagnostics());
                    cell.error = Some(e);
                    continue;
                }
            };
            if round > 0 && cell.peak.as_ref().is_none_or(|p| tr.pps() > p.pps()) {
                cell.peak = Some(tr.clone());
            }
            match round {
                0 => {
                    if tr.sink.received < tr.generator.sent / 2 {
                        let e = format!(
                            "warm-up: {} of {} packets arrived (checksum failures {}, other runs {})",
                            tr.sink.received, tr.generator.sent, tr.sink.bad_checksum, tr.sink.other_run
                        );
                        eprintln!("traffic: {} at {}: {e}\n{}", s.arm.name(), size.label(), g.diagnostics());
                        cell.error = Some(e);
                    }
                }
                1 => {
                    progress(s.arm, size, v6, &tr);
                    if tr.loss() <= opts.loss {
                        cell.generator_bound = true;
                        cell.best = Some(tr.clone());
                    } else {
                        searches[i] = Some(Search::new(&tr));
                    }
                    cell.flat = tr;
                }
                2 => {
                    progress(s.arm, size, v6, &tr);
                    cell.fixed = Some(tr);
                }
                _ => {
                    progress(s.arm, size, v6, &tr);
                    if let Some(sr) = searches[i].as_mut()
                        && sr.update(&tr, opts.loss)
                        && cell.best.as_ref().is_none_or(|b| tr.pps() > b.pps())
                    {
                        cell.best = Some(tr);
                    }
                }
            }
        }
    }
    cells
}

fn progress(arm: Arm, size: Size, v6: bool, tr: &Trial) {
    let path = match tr.stages {
        Some([a, b, c, d]) => format!(
            "  path: sent {} > gwA rx {a} tx {b} > gwB rx {c} tx {d} > sink {}",
            tr.generator.sent, tr.sink.received
        ),
        None => String::new(),
    };
    let k = &tr.sink;
    let odd = if k.duplicates + k.reordered + k.bad_checksum + k.rx_ring_full + k.fill_empty > 0 {
        format!(
            "  sink: duplicates {} reordered {} bad checksum {} own ring full {} fill empty {}",
            k.duplicates, k.reordered, k.bad_checksum, k.rx_ring_full, k.fill_empty
        )
    } else {
        String::new()
    };
    let path = path + &odd;
    eprintln!(
        "  {:<15} {:>4} {} {:>9} offered {:>8.1} kpps delivered {:>8.1} kpps loss {:>6.2}% p50 {:>8.1} us  cpu gwA {:>3.0}% gwB {:>3.0}% gen {:>3.0}% sink {:>3.0}% machine {:>3.0}% (softirq {:>3.0}%){path}",
        arm.name(),
        size.label(),
        if v6 { "v6" } else { "v4" },
        tr.target_pps.map_or("flat-out".to_string(), |r| format!("{:.0}k", r / 1000.0)),
        tr.offered_pps() / 1000.0,
        tr.pps() / 1000.0,
        tr.loss() * 100.0,
        tr.sink.latency.p50 as f64 / 1000.0,
        tr.cpu_ga,
        tr.cpu_gb,
        tr.cpu_gen,
        tr.cpu_sink,
        tr.cpu_busy,
        tr.cpu_softirq
    );
}

fn perf_profile(t: &Topo, g: &Gateways, size: Size, opts: &Options, dir: &Path, arm: Arm, stop: &AtomicBool) {
    // One flat-out trial with `perf record` (cpu-clock sampling: no hardware counters needed)
    // on both CPUs, all processes and the kernel, so that softirq work shows as well.
    let _ = std::fs::create_dir_all(dir);
    let data = dir.join(format!("{}-{}.perf.data", arm.name(), size.label().to_lowercase()));
    let Ok(child) = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-a", "-g", "-o"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        eprintln!("traffic: perf not available");
        return;
    };
    let mut p = Proc { child, what: "perf record".into() };
    std::thread::sleep(Duration::from_millis(300));
    let r = trial(t, g, size, false, None, opts.seconds, stop);
    signal(p.pid(), rustix::process::Signal::INT);
    let _ = p.child.wait();
    drop(p);
    match r {
        Ok(tr) => eprintln!(
            "traffic: perf profile of {} at {} flat out ({:.1} kpps delivered) in {}",
            arm.name(),
            size.label(),
            tr.pps() / 1000.0,
            data.display()
        ),
        Err(e) => eprintln!("traffic: perf trial failed: {e}"),
    }
}

/// One arm's topology and gateways, up for the whole run (dropped in field order: gateways,
/// then namespaces, then files).
struct ArmSetup {
    arm: Arm,
    gws: Option<Gateways>,
    topo: Option<Topo>,
    error: Option<String>,
    _scratch: Files,
}

fn setup_arm(arm: Arm, opts: &Options, repo: &Path, stop: &AtomicBool, index: usize) -> ArmSetup {
    let name = format!("rtb{}{index}", std::process::id());
    let scratch = std::env::temp_dir().join(format!("rampart-traffic-{}-{}", std::process::id(), arm.name()));
    let _ = std::fs::create_dir_all(&scratch);
    let mut s = ArmSetup { arm, gws: None, topo: None, error: None, _scratch: Files(vec![scratch.clone()]) };
    eprintln!("traffic: {}: topology {name}", arm.name());
    match Topo::up(repo, &name) {
        Ok(t) => s.topo = Some(t),
        Err(e) => {
            s.error = Some(e);
            return s;
        }
    }
    if let Some(t) = &s.topo {
        match start_gateways(arm, t, opts, repo, &scratch, stop) {
            Ok(g) => s.gws = Some(g),
            Err(e) => {
                eprintln!("traffic: {} could not start: {e}", arm.name());
                s.error = Some(e);
            }
        }
    }
    s
}

fn error_cell(arm: Arm, size: Size, v6: bool, e: String) -> Cell {
    Cell {
        arm,
        size,
        v6,
        flat: Trial::default(),
        best: None,
        generator_bound: false,
        fixed: None,
        peak: None,
        error: Some(e),
    }
}

/// Measures every arm at every size (sizes one after the other, arms in lockstep within one).
fn measure_all(setups: &[ArmSetup], opts: &Options, stop: &AtomicBool) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &size in &opts.sizes {
        for v6 in families(opts) {
            let mut merged = measure_size(setups, size, v6, opts, stop);
            for _ in 1..opts.repeat.max(1) {
                let again = measure_size(setups, size, v6, opts, stop);
                for (m, a) in merged.iter_mut().zip(again) {
                    merge(m, a);
                }
            }
            cells.extend(merged);
        }
    }
    if let Some(dir) = &opts.perf_dir {
        let size = opts.sizes.last().copied().unwrap_or(Size::Fixed(1400));
        for s in setups {
            if let (Some(topo), Some(gws)) = (&s.topo, &s.gws) {
                perf_profile(topo, gws, size, opts, dir, s.arm, stop);
            }
        }
    }
    cells
}

/// Folds a repeated measurement of the same cell into `m`: the higher rates, the latency trial
/// with less foreign load.
fn merge(m: &mut Cell, a: Cell) {
    if a.error.is_some() {
        return;
    }
    if m.error.is_some() {
        *m = a;
        return;
    }
    let higher = |x: &Option<Trial>, y: &Option<Trial>| match (x, y) {
        (Some(x), Some(y)) => y.pps() > x.pps(),
        (None, Some(_)) => true,
        _ => false,
    };
    if a.flat.pps() > m.flat.pps() {
        m.flat = a.flat;
    }
    if higher(&m.peak, &a.peak) {
        m.peak = a.peak;
    }
    if higher(&m.best, &a.best) {
        m.best = a.best;
        m.generator_bound = a.generator_bound;
    }
    let quieter = match (&m.fixed, &a.fixed) {
        (Some(x), Some(y)) => y.cpu_other < x.cpu_other,
        (None, Some(_)) => true,
        _ => false,
    };
    if quieter {
        m.fixed = a.fixed;
    }
}

fn families(opts: &Options) -> Vec<bool> {
    if opts.ipv6 { vec![false, true] } else { vec![false] }
}

// ------------------------------------------------------------------------------------------
// Report

fn us(ns: u64) -> String {
    format!("{:.0}", ns as f64 / 1000.0)
}

fn cell_of(cells: &[Cell], arm: Arm, size: Size, v6: bool) -> Option<&Cell> {
    cells.iter().find(|c| c.arm == arm && c.size == size && c.v6 == v6)
}

fn lat_cells(l: &Latency) -> [String; 5] {
    [us(l.p50), us(l.p90), us(l.p99), us(l.p999), us(l.max)]
}

/// The tables and the ratios.
pub fn render(cells: &[Cell], opts: &Options, header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}");
    let loss_pct = opts.loss * 100.0;
    let mut table = crate::Table::new(&[
        "arm",
        "size",
        "ip",
        "max fwd kpps",
        "Gbit/s",
        "its loss %",
        "gw us/pkt",
        "cpu% gwA",
        "gwB",
        "softirq",
        "other",
        "lossless kpps",
        "Gbit/s",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
    ]);
    let mut lat = crate::Table::new(&[
        "arm",
        "size",
        "ip",
        "rate kpps",
        "loss %",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "reord",
        "other cpu%",
    ]);
    let mut errors = Vec::new();
    let mut last_size = None;
    for c in cells {
        if last_size.is_some() && last_size != Some((c.size, c.v6)) {
            table.gap();
            lat.gap();
        }
        last_size = Some((c.size, c.v6));
        let fam = if c.v6 { "v6" } else { "v4" }.to_string();
        if let Some(e) = &c.error {
            let first = e.lines().next().unwrap_or("");
            errors.push(format!("{} at {} {fam}: {first}", c.arm.name(), c.size.label()));
            table.row(vec![c.arm.name(), c.size.label(), fam.clone(), "error".into()]);
            lat.row(vec![c.arm.name(), c.size.label(), fam, "error".into()]);
            continue;
        }
        let mut row = vec![c.arm.name(), c.size.label(), fam.clone()];
        match &c.peak {
            Some(p) => row.extend([
                format!("{:.1}", p.pps() / 1000.0),
                format!("{:.3}", p.gbps()),
                format!("{:.2}", p.loss() * 100.0),
                p.gw_us_per_packet().map_or("-".into(), |u| format!("{u:.2}")),
                format!("{:.0}", p.cpu_ga),
                format!("{:.0}", p.cpu_gb),
                format!("{:.0}", p.cpu_softirq),
                format!("{:.0}", p.cpu_other),
            ]),
            None => row.extend(std::iter::repeat_n("-".to_string(), 8)),
        }
        match &c.best {
            Some(b) => {
                let ge = if c.generator_bound { ">=" } else { "" };
                row.push(format!("{ge}{:.1}", b.pps() / 1000.0));
                row.push(format!("{ge}{:.3}", b.gbps()));
                row.extend(lat_cells(&b.sink.latency));
            }
            None => row.push("none".into()),
        }
        table.row(row);
        if let Some(x) = &c.fixed {
            let mut r = vec![
                c.arm.name(),
                c.size.label(),
                fam,
                format!("{:.1}", x.offered_pps() / 1000.0),
                format!("{:.3}", x.loss() * 100.0),
            ];
            r.extend(lat_cells(&x.sink.latency));
            r.push(x.sink.reordered.to_string());
            r.push(format!("{:.0}", x.cpu_other));
            lat.row(r);
        }
    }
    out.push_str(&table.render());
    let _ = writeln!(
        out,
        "max fwd = the most packets/s delivered in any trial of the cell, flat out or paced (RFC 2285 maximum \
         forwarding rate), with that trial's loss, gateway CPU (us of both gateways' processes per delivered \
         packet; '-' for kernel forwarding, which runs in softirq) and CPU (% of one core; softirq = whole \
         machine; other = everything outside the benchmark: other users of a shared machine). lossless = highest paced rate with loss <= {loss_pct}% and that trial's one-way latency; '>=' = \
         even flat out stayed within the limit (the generator was the limit); 'none' = no trial did."
    );
    for e in &errors {
        let _ = writeln!(out, "error: {e}");
    }
    let _ = writeln!(out, "\nOne-way latency at a common rate of {:.0} packets/s:", opts.latency_rate);
    out.push_str(&lat.render());

    let _ = writeln!(
        out,
        "\nRatios: max forwarding rate [lossless rate] {{gateway CPU per packet, B/A: above 1 = A cheaper}}:"
    );
    let peak = |c: Option<&Cell>| c.and_then(|c| c.peak.as_ref()).map(Trial::pps);
    let tput = |c: Option<&Cell>| c.and_then(|c| c.best.as_ref()).map(Trial::pps);
    let cpu = |c: Option<&Cell>| c.and_then(|c| c.peak.as_ref()).and_then(Trial::gw_us_per_packet);
    let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
        _ => "-".into(),
    };
    let mut sizes: Vec<(Size, bool)> = Vec::new();
    for c in cells {
        if !sizes.contains(&(c.size, c.v6)) {
            sizes.push((c.size, c.v6));
        }
    }
    let pairs = [
        (Arm::Rampart(128), Arm::XdpFwd, "rampart-gcm128 / xdp-fwd (no-crypto ceiling)", Some(0.8)),
        (Arm::Rampart(256), Arm::XdpFwd, "rampart-gcm256 / xdp-fwd (no-crypto ceiling)", Some(0.8)),
        (Arm::Rampart(256), Arm::Kernel, "rampart-gcm256 / kernel-fwd", None),
        (Arm::XdpFwd, Arm::Kernel, "xdp-fwd / kernel-fwd", None),
        (Arm::Rampart(256), Arm::StrongSwan, "rampart-gcm256 / strongswan", Some(10.0)),
        (Arm::Rampart(128), Arm::StrongSwan, "rampart-gcm128 / strongswan", Some(10.0)),
        (Arm::Rampart(128), Arm::Baseline(128), "rampart-gcm128 / baseline-gcm128", None),
        (Arm::Rampart(256), Arm::Baseline(256), "rampart-gcm256 / baseline-gcm256", None),
        (Arm::RampartAh, Arm::XdpFwd, "rampart-ah-sha256 / xdp-fwd (no-crypto ceiling)", None),
    ];
    for (a, b, what, goal) in pairs {
        let mut line = format!("  {what:<46}");
        let mut any = false;
        for &(size, v6) in &sizes {
            let (ca, cb) = (cell_of(cells, a, size, v6), cell_of(cells, b, size, v6));
            if ca.is_none() || cb.is_none() {
                continue;
            }
            any = true;
            let _ = write!(
                line,
                "  {}{}: {} [{}] {{{}}}",
                size.label(),
                if v6 { "/v6" } else { "" },
                ratio(peak(ca), peak(cb)),
                ratio(tput(ca), tput(cb)),
                ratio(cpu(cb), cpu(ca)),
            );
        }
        if let Some(g) = goal {
            let _ = write!(line, "   (goal >= {g})");
        }
        if any {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// Runs every arm and prints the report; returns the cells.
pub fn run(opts: &Options) -> Res<Vec<Cell>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let repo = repo.canonicalize().map_err(|e| format!("repository root: {e}"))?;
    let started = std::time::SystemTime::now();
    let mut opts = opts.clone();
    if opts.arms.iter().any(|a| matches!(a, Arm::Rampart(_) | Arm::RampartAh)) {
        match rampart_bin(&opts, &repo, &stop) {
            Ok(b) => opts.rampart_bin = Some(b),
            Err(e) => eprintln!("traffic: {e}"),
        }
    }
    let opts = &opts;
    let mut setups = Vec::new();
    for (i, &arm) in opts.arms.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        setups.push(setup_arm(arm, opts, &repo, &stop, i));
    }
    let cells = measure_all(&setups, opts, &stop);
    eprintln!("traffic: tearing down");
    drop(setups);
    if stop.load(Ordering::Relaxed) {
        return Err("interrupted: everything created was removed".into());
    }
    // Table rows grouped by size and family, arms in the order given.
    let mut ordered = Vec::new();
    for &size in &opts.sizes {
        for v6 in [false, true] {
            for &arm in &opts.arms {
                if let Some(c) = cell_of(&cells, arm, size, v6) {
                    ordered.push(c.clone());
                }
            }
        }
    }
    let secs = started.elapsed().map_or(0, |d| d.as_secs());
    let header = format!(
        "traffic: {} s per trial, up to {} search steps, {} repetition(s), loss limit {}%, Rampart ESP {}, \
         run took {secs} s",
        opts.seconds,
        opts.steps,
        opts.repeat,
        opts.loss * 100.0,
        if opts.encap_udp { "in UDP/4500" } else { "plain (IP proto 50)" }
    );
    let text = render(&ordered, opts, &header);
    println!("{text}");
    if let Some(p) = &opts.report {
        std::fs::write(p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(ordered)
}
