//! `traffic`: Rampart's data-plane benchmark through two gateways, and its parts.
//!
//! ```text
//! traffic [run] [--quick] [options]   every arm side by side in one run: table + ratios (root)
//! traffic gen  ...                    the AF_XDP generator (inside host A's namespace)
//! traffic sink ...                    the AF_XDP sink (inside host B's namespace)
//! traffic fwd  ...                    the no-crypto AF_XDP forwarder (inside a gateway namespace)
//! traffic cleanup                     removes namespaces left by a run that was SIGKILLed
//! ```
//!
//! See bench/README.md for what is measured and how to read it. Nothing here asserts on a
//! timing; traffic goes only into the namespaces the run creates.
#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rampart_bench::traffic::orchestrate::{self, Arm, Options};
use rampart_bench::traffic::packet::{Endpoints, Size, parse_mac};
use rampart_bench::traffic::{fwd, generator, sink};

const USAGE: &str = "\
usage: traffic [run] [--quick] [--seconds S] [--steps N] [--loss FRACTION] [--arms A,B,..]
                     [--sizes 64,imix,1400] [--ipv6] [--esp-plain] [--rampart-bin PATH] [--baseline-bin PATH]
                     [--report FILE] [--perf DIR] [--latency-rate PPS] [--repeat N]
       traffic gen --iface IF --src-mac MAC --dst-mac MAC --src IP --dst IP --size N|imix
                   [--rate PPS] [--seconds S] [--run ID] [--burst N]
       traffic sink --iface IF --addr IP [--addr IP].. --run ID [--generic] [--max-seconds S]
       traffic fwd --in IF --out IF --prefix P/LEN [--prefix ..] --dst-mac MAC [--src-mac MAC]
                   [--core N] [--generic] [--stats FILE]
       traffic cleanup
arms: kernel-fwd, xdp-fwd, rampart-gcm128, rampart-gcm256, strongswan (default: all), rampart-ah-sha256, and
baseline-gcm128, baseline-gcm256: the rampart arms run with the binary of --baseline-bin.
Sizes are IP packet bytes (the Ethernet frame is 14 more); imix = 7:4:1 of 64/570/1400.
Run as root: it creates network namespaces, attaches XDP programs and starts gateways.";

fn die(msg: &str) -> ! {
    eprintln!("traffic: {msg}");
    std::process::exit(2);
}

struct Args(Vec<String>, usize);

impl Args {
    fn next(&mut self) -> Option<String> {
        let a = self.0.get(self.1).cloned();
        self.1 += 1;
        a
    }
    fn value(&mut self, flag: &str) -> String {
        self.next().unwrap_or_else(|| die(&format!("{flag} needs a value\n{USAGE}")))
    }
    fn parse<T: std::str::FromStr>(&mut self, flag: &str) -> T {
        let v = self.value(flag);
        v.parse().unwrap_or_else(|_| die(&format!("{flag} '{v}': not valid")))
    }
}

/// SIGINT/SIGTERM (and, for the sink, a line or EOF on stdin) set the returned flag.
fn stop_flag(watch_stdin: bool) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        if signal_hook::flag::register(sig, stop.clone()).is_err() {
            die("cannot install signal handlers");
        }
    }
    if watch_stdin {
        let s = stop.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            s.store(true, Ordering::Relaxed);
        });
    }
    stop
}

fn require_root() {
    if rustix::process::geteuid().as_raw() != 0 {
        die("needs root (network namespaces, XDP, AF_XDP)");
    }
}

fn cmd_gen(mut a: Args) {
    let (mut iface, mut src_mac, mut dst_mac, mut src, mut dst) = (None, None, None, None, None);
    let (mut size, mut rate, mut seconds, mut run, mut burst) = (Size::Fixed(64), None, 1.0, 1u32, 32usize);
    while let Some(f) = a.next() {
        match f.as_str() {
            "--iface" => iface = Some(a.value(&f)),
            "--src-mac" => src_mac = Some(parse_mac(&a.value(&f)).unwrap_or_else(|e| die(&e))),
            "--dst-mac" => dst_mac = Some(parse_mac(&a.value(&f)).unwrap_or_else(|e| die(&e))),
            "--src" => src = Some(a.parse::<IpAddr>(&f)),
            "--dst" => dst = Some(a.parse::<IpAddr>(&f)),
            "--size" => size = Size::parse(&a.value(&f)).unwrap_or_else(|e| die(&e)),
            "--rate" => rate = Some(a.parse::<f64>(&f)).filter(|r| *r > 0.0),
            "--seconds" => seconds = a.parse(&f),
            "--run" => run = a.parse(&f),
            "--burst" => burst = a.parse(&f),
            _ => die(&format!("gen: unknown option {f}\n{USAGE}")),
        }
    }
    let missing = |what: &str| -> ! { die(&format!("gen: {what} is required")) };
    let cfg = generator::GenConfig {
        iface: iface.unwrap_or_else(|| missing("--iface")),
        endpoints: Endpoints {
            src_mac: src_mac.unwrap_or_else(|| missing("--src-mac")),
            dst_mac: dst_mac.unwrap_or_else(|| missing("--dst-mac")),
            src: src.unwrap_or_else(|| missing("--src")),
            dst: dst.unwrap_or_else(|| missing("--dst")),
        },
        size,
        rate,
        seconds,
        run,
        burst,
    };
    let stop = stop_flag(false);
    match generator::run(&cfg, &stop) {
        Ok(r) => println!("{}", r.to_json()),
        Err(e) => die(&format!("gen: {e}")),
    }
}

fn cmd_sink(mut a: Args) {
    let (mut iface, mut addrs, mut run, mut generic, mut max_seconds) = (None, Vec::new(), None, false, 600.0);
    while let Some(f) = a.next() {
        match f.as_str() {
            "--iface" => iface = Some(a.value(&f)),
            "--addr" => addrs.push(a.parse::<IpAddr>(&f)),
            "--run" => run = Some(a.parse::<u32>(&f)),
            "--generic" => generic = true,
            "--max-seconds" => max_seconds = a.parse(&f),
            _ => die(&format!("sink: unknown option {f}\n{USAGE}")),
        }
    }
    if addrs.is_empty() {
        die("sink: at least one --addr");
    }
    let cfg = sink::SinkConfig {
        iface: iface.unwrap_or_else(|| die("sink: --iface is required")),
        addresses: addrs,
        run: run.unwrap_or_else(|| die("sink: --run is required")),
        generic,
        max_seconds,
    };
    let stop = stop_flag(true);
    let ready = || {
        println!("ready");
    };
    match sink::run(&cfg, &stop, ready) {
        Ok(r) => println!("{}", r.to_json()),
        Err(e) => die(&format!("sink: {e}")),
    }
}

fn cmd_fwd(mut a: Args) {
    let (mut inp, mut out, mut prefixes, mut dst_mac, mut src_mac, mut core, mut generic) =
        (None, None, Vec::new(), None, None, None, false);
    let mut stats_file = None;
    while let Some(f) = a.next() {
        match f.as_str() {
            "--in" => inp = Some(a.value(&f)),
            "--out" => out = Some(a.value(&f)),
            "--prefix" => {
                let v = a.value(&f);
                let (addr, len) = v.split_once('/').unwrap_or_else(|| die(&format!("--prefix '{v}': ADDR/LEN")));
                let addr: IpAddr = addr.parse().unwrap_or_else(|_| die(&format!("--prefix '{v}': bad address")));
                let len: u8 = len.parse().unwrap_or_else(|_| die(&format!("--prefix '{v}': bad length")));
                prefixes.push((addr, len));
            }
            "--dst-mac" => dst_mac = Some(parse_mac(&a.value(&f)).unwrap_or_else(|e| die(&e))),
            "--src-mac" => src_mac = Some(parse_mac(&a.value(&f)).unwrap_or_else(|e| die(&e))),
            "--core" => core = Some(a.parse::<usize>(&f)),
            "--generic" => generic = true,
            "--stats" => stats_file = Some(PathBuf::from(a.value(&f))),
            _ => die(&format!("fwd: unknown option {f}\n{USAGE}")),
        }
    }
    let cfg = fwd::FwdConfig {
        in_iface: inp.unwrap_or_else(|| die("fwd: --in is required")),
        out_iface: out.unwrap_or_else(|| die("fwd: --out is required")),
        prefixes,
        dst_mac: dst_mac.unwrap_or_else(|| die("fwd: --dst-mac is required")),
        src_mac,
        generic,
        core,
        stats_file,
    };
    // Like the sink, the forwarder also stops when its stdin closes: when the orchestrator that
    // started it dies without cleaning up, the forwarder does not outlive it.
    let stop = stop_flag(true);
    let ready = || {
        println!("ready");
    };
    match fwd::run(&cfg, &stop, ready) {
        Ok(r) => eprintln!("fwd: forwarded {} dropped {}", r.forwarded, r.dropped),
        Err(e) => die(&format!("fwd: {e}")),
    }
}

/// Deletes `rtb<pid><n>-*` namespaces whose run (pid) is gone, stopping what runs inside.
fn cmd_cleanup() {
    require_root();
    let out = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap_or_else(|e| die(&e.to_string()));
    let text = String::from_utf8_lossy(&out.stdout);
    for ns in text.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = ns.strip_prefix("rtb") else { continue };
        let Some((digits, _role)) = rest.split_once('-') else { continue };
        // The name is rtb<pid><arm index>; the arm index is the last digit.
        if digits.len() < 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let pid = &digits[..digits.len() - 1];
        // Alive unless gone or a zombie (state after the command name).
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false);
        if alive {
            eprintln!("traffic: {ns} belongs to running pid {pid}; left alone");
            continue;
        }
        let pids = std::process::Command::new("ip").args(["netns", "pids", ns]).output();
        if let Ok(p) = pids {
            for pid in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                if let Some(p) = pid.parse::<i32>().ok().and_then(rustix::process::Pid::from_raw) {
                    let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                }
            }
        }
        let _ = std::process::Command::new("ip").args(["netns", "del", ns]).status();
        eprintln!("traffic: removed {ns}");
    }
}

fn cmd_run(mut a: Args) {
    let mut opts = Options {
        arms: Arm::all(),
        sizes: vec![Size::Fixed(64), Size::Imix, Size::Fixed(1400)],
        ipv6: false,
        seconds: 3.0,
        steps: 7,
        loss: 0.001,
        encap_udp: true,
        rampart_bin: None,
        baseline_bin: None,
        report: None,
        perf_dir: None,
        latency_rate: 10_000.0,
        repeat: 2,
    };
    let mut quick = false;
    let (mut seconds, mut steps, mut repeat) = (None, None, None);
    while let Some(f) = a.next() {
        match f.as_str() {
            "--quick" => quick = true,
            "--seconds" => seconds = Some(a.parse::<f64>(&f)),
            "--steps" => steps = Some(a.parse::<u32>(&f)),
            "--loss" => opts.loss = a.parse(&f),
            "--arms" => {
                opts.arms = a.value(&f).split(',').map(|s| Arm::parse(s).unwrap_or_else(|e| die(&e))).collect();
            }
            "--sizes" => {
                opts.sizes = a.value(&f).split(',').map(|s| Size::parse(s).unwrap_or_else(|e| die(&e))).collect();
            }
            "--ipv6" => opts.ipv6 = true,
            "--esp-plain" => opts.encap_udp = false,
            "--rampart-bin" => opts.rampart_bin = Some(PathBuf::from(a.value(&f))),
            "--baseline-bin" => opts.baseline_bin = Some(PathBuf::from(a.value(&f))),
            "--report" => opts.report = Some(PathBuf::from(a.value(&f))),
            "--perf" => opts.perf_dir = Some(PathBuf::from(a.value(&f))),
            "--latency-rate" => opts.latency_rate = a.parse(&f),
            "--repeat" => repeat = Some(a.parse::<u32>(&f)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ => die(&format!("unknown option {f}\n{USAGE}")),
        }
    }
    if quick {
        opts.seconds = 1.0;
        opts.steps = 4;
        opts.repeat = 1;
    }
    opts.repeat = repeat.unwrap_or(opts.repeat).max(1);
    opts.seconds = seconds.unwrap_or(opts.seconds);
    opts.steps = steps.unwrap_or(opts.steps);
    require_root();
    if let Err(e) = orchestrate::run(&opts) {
        die(&e);
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let first = argv.first().cloned().unwrap_or_default();
    let sub = |skip: usize| Args(argv.clone(), skip);
    match first.as_str() {
        "gen" => cmd_gen(sub(1)),
        "sink" => cmd_sink(sub(1)),
        "fwd" => cmd_fwd(sub(1)),
        "cleanup" => cmd_cleanup(),
        "run" => cmd_run(sub(1)),
        _ => cmd_run(sub(0)),
    }
}
