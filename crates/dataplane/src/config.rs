//! The data plane's configuration file (TOML): interfaces and their queues, cores, the SA
//! database, the crypto backend, the XDP attach mode, and tuning knobs with safe defaults.
//!
//! ```toml
//! database = "/dev/shm/rampart.sadb"
//! cores = [2, 3]                  # one worker per core, pinned
//! crypto_backend = "auto"         # "auto" (fastest per suite) | "ring" | "rustcrypto" | "vaes"
//! xdp_mode = "native"             # "native" | "generic"
//! stats_file = "/run/rampart/dataplane.json"   # optional: counters as JSON, rewritten 4 times a second
//! metrics_listen = "127.0.0.1:9184"   # /metrics, /stats, /stats.json (default); "off" for none
//! # tuning (defaults): ring_size = 2048, frame_count = 4 x ring_size per queue pair,
//! # idle = "poll" | "spin", poll_timeout_ms = 10, icmp_rate = 100, encap_port = 4500
//! per_sa_metrics = false          # rampart_sa_{packets,bytes}_total per SA on /metrics
//! per_sa_metrics_limit = 10000    # at most this many SAs a scrape
//!
//! [lan]
//! name = "lan0"
//! queues = [0, 1]                 # default [0]
//!
//! [wan]
//! name = "wan0"
//! queues = [0, 1]                 # as many as on the LAN side: queue pair k goes to worker k % cores
//! local_addresses = ["192.0.2.1"] # default: the interface's own addresses
//! ```
//!
//! A bad file is refused with its path, the line and the reason (DESIGN.md rule 6). This module
//! only reads and checks; it never touches the network.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rampart_crypto::Backend;
use serde::Deserialize;

/// How the XDP steering programs are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum XdpMode {
    /// In the driver; on multi-queue veth every queue gets its own traffic.
    #[default]
    Native,
    /// In the generic stack; works everywhere, on veth everything arrives on queue 0.
    Generic,
}

/// What a worker does when its rings are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    /// Spin a little, then sleep in `poll(2)` on the worker's sockets until traffic arrives or
    /// `poll_timeout_ms` passes. Shares the core; adds wake-up latency.
    #[default]
    Poll,
    /// Never sleep: the core is the worker's alone (dedicated cores, lowest latency).
    Spin,
}

/// The crypto implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoChoice {
    /// The fastest backend for each SA's suite ([`Backend::fastest`]).
    Auto,
    /// One backend for every SA whose suite it implements; the fastest for the others (the
    /// multi-buffer backend `vaes` does AES-GCM only).
    Fixed(Backend),
}

impl CryptoChoice {
    /// The backend for an SA of `suite`.
    pub fn backend_for(self, suite: rampart_crypto::Suite) -> Backend {
        match self {
            CryptoChoice::Fixed(b) if b.supports(suite) => b,
            _ => Backend::fastest(suite),
        }
    }
}

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Interface name.
    pub name: String,
    /// Rx/tx queues to serve.
    pub queues: Vec<u32>,
    /// WAN: the gateway's outer addresses; empty means the interface's own.
    pub local_addresses: Vec<IpAddr>,
    /// MTU override (default: the interface's MTU from the kernel).
    pub mtu: Option<u32>,
}

/// The whole configuration, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The SA database file.
    pub database: PathBuf,
    /// One worker per core.
    pub cores: Vec<usize>,
    /// Crypto backend.
    pub crypto: CryptoChoice,
    /// XDP attach mode.
    pub xdp_mode: XdpMode,
    /// Replace any XDP program found on the interfaces (even a foreign one).
    pub xdp_force: bool,
    /// Cleartext side.
    pub lan: InterfaceConfig,
    /// ESP side.
    pub wan: InterfaceConfig,
    /// Where to write the counters as JSON (rewritten at each stats interval and at exit).
    pub stats_file: Option<PathBuf>,
    /// Where the metrics endpoint listens (`None`: no endpoint).
    pub metrics_listen: Option<SocketAddr>,
    /// Idle behaviour of the workers.
    pub idle: IdleMode,
    /// Longest sleep of an idle worker, in milliseconds.
    pub poll_timeout_ms: u32,
    /// UMEM frames per worker.
    pub frame_count: u32,
    /// Entries of each AF_XDP ring.
    pub ring_size: u32,
    /// UDP port of ESP-in-UDP (RFC 3948).
    pub encap_port: u16,
    /// ICMP errors each worker may send per second.
    pub icmp_rate: u32,
    /// Export each SA's packet and byte counters (`rampart_sa_*`) on the metrics endpoint.
    pub per_sa_metrics: bool,
    /// At most this many SAs in one scrape when `per_sa_metrics` is on.
    pub per_sa_metrics_limit: usize,
}

/// SAs in one scrape at most, unless `per_sa_metrics_limit` says otherwise (two families, two
/// series each: 40,000 lines).
pub const DEFAULT_PER_SA_METRICS_LIMIT: usize = 10_000;

/// Why a configuration was refused: the file, the line (when known) and the reason.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when the error points at one.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.path.display(), l, self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    #[serde(default)]
    queues: Option<Vec<u32>>,
    #[serde(default)]
    local_addresses: Vec<String>,
    #[serde(default)]
    mtu: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    database: Option<PathBuf>,
    #[serde(default)]
    cores: Option<Vec<usize>>,
    #[serde(default)]
    crypto_backend: Option<String>,
    #[serde(default)]
    xdp_mode: XdpMode,
    #[serde(default)]
    xdp_force: bool,
    lan: RawInterface,
    wan: RawInterface,
    #[serde(default)]
    stats_file: Option<PathBuf>,
    #[serde(default)]
    metrics_listen: Option<String>,
    #[serde(default)]
    idle: IdleMode,
    #[serde(default)]
    poll_timeout_ms: Option<u32>,
    #[serde(default)]
    frame_count: Option<u32>,
    #[serde(default)]
    ring_size: Option<u32>,
    #[serde(default)]
    encap_port: Option<u16>,
    #[serde(default)]
    icmp_rate: Option<u32>,
    #[serde(default)]
    per_sa_metrics: bool,
    #[serde(default)]
    per_sa_metrics_limit: Option<usize>,
}

/// Where the data plane's metrics endpoint listens unless told otherwise.
pub const DEFAULT_METRICS_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9184);

/// A metrics listen address as the file and the command line write it: `IP:PORT`
/// (`[v6]:PORT`), or `off` (also `none`, empty) for no endpoint.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    match s.trim() {
        "" | "off" | "none" => Ok(None),
        t => t.parse::<SocketAddr>().map(Some).map_err(|_| {
            format!("metrics_listen {s:?}: expected IP:PORT (e.g. 127.0.0.1:9184, [::1]:9184) or \"off\"")
        }),
    }
}

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: None,
            reason: e.to_string(),
        })?;
        Config::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_owned(),
            line: e.span().map(|s| line_of(s.start)),
            reason: e.message().to_owned(),
        })?;
        // Points a semantic error at the line where `key` is set, if it is.
        let err = |key: &str, reason: String| {
            let line = text
                .lines()
                .position(|l| {
                    let l = l.trim_start();
                    l.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map(|i| i + 1);
            ConfigError { path: path.to_owned(), line, reason }
        };
        let crypto = match raw.crypto_backend.as_deref() {
            None | Some("auto") => CryptoChoice::Auto,
            Some(name) => CryptoChoice::Fixed(Backend::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
                err(
                    "crypto_backend",
                    format!("unknown crypto backend {name:?}; this build has auto, {}", known.join(", ")),
                )
            })?),
        };
        let cores = raw.cores.unwrap_or_else(|| vec![0]);
        if cores.is_empty() {
            return Err(err("cores", "at least one core is needed".into()));
        }
        let available = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(usize::MAX);
        if let Some(c) = cores.iter().find(|&&c| c >= available) {
            return Err(err("cores", format!("core {c} does not exist (this machine has {available})")));
        }
        let mut sorted = cores.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != cores.len() {
            return Err(err("cores", "a core is listed twice".into()));
        }
        let iface = |r: RawInterface, which: &str| -> Result<InterfaceConfig, ConfigError> {
            if r.name.is_empty() || r.name.len() > 15 {
                return Err(err("name", format!("[{which}] interface name {:?}: must be 1 to 15 bytes", r.name)));
            }
            let queues = r.queues.unwrap_or_else(|| vec![0]);
            if queues.is_empty() {
                return Err(err("queues", format!("[{which}] needs at least one queue")));
            }
            let mut q = queues.clone();
            q.sort_unstable();
            q.dedup();
            if q.len() != queues.len() {
                return Err(err("queues", format!("[{which}] lists a queue twice")));
            }
            let mut local_addresses = Vec::new();
            for a in &r.local_addresses {
                local_addresses.push(
                    a.parse::<IpAddr>()
                        .map_err(|_| err("local_addresses", format!("[{which}] {a:?} is not an IP address")))?,
                );
            }
            if let Some(m) = r.mtu
                && !(576..=9000).contains(&m)
            {
                return Err(err("mtu", format!("[{which}] MTU {m}: must be 576..=9000")));
            }
            Ok(InterfaceConfig { name: r.name, queues, local_addresses, mtu: r.mtu })
        };
        let lan = iface(raw.lan, "lan")?;
        let wan = iface(raw.wan, "wan")?;
        if !lan.local_addresses.is_empty() {
            return Err(err("local_addresses", "local_addresses belongs to [wan]".into()));
        }
        if lan.queues.len() != wan.queues.len() {
            return Err(err(
                "queues",
                format!(
                    "[lan] has {} queues and [wan] {}: they are served in pairs and must match",
                    lan.queues.len(),
                    wan.queues.len()
                ),
            ));
        }
        if lan.name == wan.name {
            return Err(err("name", "[lan] and [wan] name the same interface: Rampart needs two".into()));
        }
        if cores.len() > lan.queues.len() {
            return Err(err(
                "cores",
                format!(
                    "{} cores for {} queue pairs: a worker without a queue has nothing to do",
                    cores.len(),
                    lan.queues.len()
                ),
            ));
        }
        let ring_size = raw.ring_size.unwrap_or(2048);
        if !ring_size.is_power_of_two() || !(64..=16384).contains(&ring_size) {
            return Err(err("ring_size", format!("ring size {ring_size}: must be a power of two in 64..=16384")));
        }
        // Each socket of a pair keeps a full fill ring, and frames in flight on the tx rings.
        let pairs_per_worker = lan.queues.len().div_ceil(cores.len()) as u32;
        let needed = pairs_per_worker * 4 * ring_size;
        let frame_count = raw.frame_count.unwrap_or(needed.max(4096));
        if frame_count < needed {
            return Err(err(
                "frame_count",
                format!(
                    "{frame_count} frames per worker: at least {needed} needed for {pairs_per_worker} queue pair(s) with rings of {ring_size}"
                ),
            ));
        }
        let metrics_listen = match raw.metrics_listen.as_deref() {
            None => Some(DEFAULT_METRICS_LISTEN),
            Some(s) => parse_listen(s).map_err(|reason| err("metrics_listen", reason))?,
        };
        let per_sa_metrics_limit = raw.per_sa_metrics_limit.unwrap_or(DEFAULT_PER_SA_METRICS_LIMIT);
        if per_sa_metrics_limit == 0 {
            return Err(err(
                "per_sa_metrics_limit",
                "must be at least 1 (per_sa_metrics = false turns them off)".into(),
            ));
        }
        let poll_timeout_ms = raw.poll_timeout_ms.unwrap_or(10);
        if !(1..=1000).contains(&poll_timeout_ms) {
            return Err(err("poll_timeout_ms", "must be 1..=1000".into()));
        }
        Ok(Config {
            database: raw.database.unwrap_or_else(|| PathBuf::from(rampart_sadb::DEFAULT_PATH)),
            cores,
            crypto,
            xdp_mode: raw.xdp_mode,
            xdp_force: raw.xdp_force,
            lan,
            wan,
            stats_file: raw.stats_file,
            metrics_listen,
            idle: raw.idle,
            poll_timeout_ms,
            frame_count,
            ring_size,
            encap_port: raw.encap_port.unwrap_or(4500),
            icmp_rate: raw.icmp_rate.unwrap_or(100),
            per_sa_metrics: raw.per_sa_metrics,
            per_sa_metrics_limit,
        })
    }

    /// Queue pairs `(lan queue, wan queue)` served by worker `w`.
    pub fn queue_pairs(&self, w: usize) -> Vec<(u32, u32)> {
        let n = self.cores.len();
        self.lan
            .queues
            .iter()
            .zip(&self.wan.queues)
            .enumerate()
            .filter(|(k, _)| k % n == w)
            .map(|(_, (&l, &w))| (l, w))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(s, Path::new("test.toml"))
    }

    const GOOD: &str = r#"
database = "/dev/shm/x.sadb"
cores = [0]
xdp_mode = "generic"

[lan]
name = "lan0"
queues = [0, 1]

[wan]
name = "wan0"
queues = [0, 1]
local_addresses = ["192.0.2.1", "2001:db8::1"]
"#;

    #[test]
    fn good_file_parses_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.database, PathBuf::from("/dev/shm/x.sadb"));
        assert_eq!(c.xdp_mode, XdpMode::Generic);
        assert_eq!(c.crypto, CryptoChoice::Auto);
        assert_eq!(c.wan.local_addresses.len(), 2);
        assert_eq!(c.queue_pairs(0), vec![(0, 0), (1, 1)]);
        assert_eq!(c.encap_port, 4500);
        assert_eq!(c.idle, IdleMode::Poll);
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = parse(&GOOD.replace("xdp_mode = \"generic\"", "xdp_mode = \"turbo\"")).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("test.toml:4: "), "{e}");

        let e = parse(&GOOD.replace("\"192.0.2.1\"", "\"192.0.2.300\"")).unwrap_err();
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.reason.contains("not an IP address"), "{e}");

        let e = parse(&GOOD.replace("queues = [0, 1]\nlocal", "queues = [0]\nlocal")).unwrap_err();
        assert!(e.reason.contains("must match"), "{e}");

        let e = parse(&GOOD.replace("cores = [0]", "cores = [0, 0]")).unwrap_err();
        assert!(e.reason.contains("twice"), "{e}");

        let e = parse(&GOOD.replace("database", "databse")).unwrap_err();
        assert!(e.reason.contains("unknown field"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");

        let e = parse(&format!("crypto_backend = \"openssl\"\n{GOOD}")).unwrap_err();
        assert!(e.reason.contains("unknown crypto backend"), "{e}");
        assert_eq!(e.line, Some(1));

        let e = parse(&GOOD.replace("name = \"wan0\"", "name = \"lan0\"")).unwrap_err();
        assert!(e.reason.contains("same interface"), "{e}");

        let e = parse(&format!("metrics_listen = \"localhost\"\n{GOOD}")).unwrap_err();
        assert!(e.reason.contains("IP:PORT"), "{e}");
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn metrics_listen_defaults_to_loopback_and_can_be_off() {
        assert_eq!(parse(GOOD).unwrap().metrics_listen, Some(DEFAULT_METRICS_LISTEN));
        assert_eq!(DEFAULT_METRICS_LISTEN.to_string(), rampart_telemetry::DEFAULT_ADDR);
        let c = parse(&format!("metrics_listen = \"off\"\n{GOOD}")).unwrap();
        assert_eq!(c.metrics_listen, None);
        let c = parse(&format!("metrics_listen = \"[::1]:9300\"\n{GOOD}")).unwrap();
        assert_eq!(c.metrics_listen, Some("[::1]:9300".parse().unwrap()));
    }

    #[test]
    fn per_sa_metrics_are_off_by_default_and_limited() {
        let c = parse(GOOD).unwrap();
        assert_eq!((c.per_sa_metrics, c.per_sa_metrics_limit), (false, DEFAULT_PER_SA_METRICS_LIMIT));
        let c = parse(&format!("per_sa_metrics = true\nper_sa_metrics_limit = 50\n{GOOD}")).unwrap();
        assert_eq!((c.per_sa_metrics, c.per_sa_metrics_limit), (true, 50));
        let e = parse(&format!("per_sa_metrics_limit = 0\n{GOOD}")).unwrap_err();
        assert!(e.reason.contains("at least 1"), "{e}");
        assert_eq!(e.line, Some(1), "{e}");
        let e = parse(&format!("per_sa_metrics = \"yes\"\n{GOOD}")).unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }
}
