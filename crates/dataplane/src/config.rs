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
//! A bad file is refused with its path, the line, the column and the reason (DESIGN.md rule 6),
//! through `rampart-config` like every configuration file of Rampart; an unknown key is an
//! error, and no error repeats a string from the file. [`Config::from_table`] reads the same
//! settings from a table of a larger file (`[dataplane]` of `rampart run`'s). This module only
//! reads and checks; it never touches the network.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use rampart_config::{DeTable, Doc, Section, Value, get, read_file};
use rampart_crypto::Backend;

/// How the XDP steering programs are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// In the driver; on multi-queue veth every queue gets its own traffic.
    #[default]
    Native,
    /// In the generic stack; works everywhere, on veth everything arrives on queue 0.
    Generic,
}

/// What a worker does when its rings are empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
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

/// Why a configuration was refused: the file, the line and column (0: the file as a whole) and
/// the reason; the one error type of every configuration file.
pub type ConfigError = rampart_config::ConfError;

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

/// The keys of the data plane's settings.
const KEYS: &[&str] = &[
    "database",
    "cores",
    "crypto_backend",
    "xdp_mode",
    "xdp_force",
    "lan",
    "wan",
    "stats_file",
    "metrics_listen",
    "idle",
    "poll_timeout_ms",
    "frame_count",
    "ring_size",
    "encap_port",
    "icmp_rate",
    "per_sa_metrics",
    "per_sa_metrics_limit",
];

/// The keys of `[lan]` and `[wan]`.
const INTERFACE_KEYS: &[&str] = &["name", "queues", "local_addresses", "mtu"];

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path)?;
        Config::parse(&text, path)
    }

    /// Parses and checks configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut doc = Doc::new(path, text);
        let root = doc.parse()?;
        Config::from_table(&mut doc, root.get_ref(), &Section::Root)
    }

    /// Reads and checks the data plane's settings from `table`, which sits at `section` of
    /// `doc`: the whole of `rampart dataplane`'s file, or `[dataplane]` of `rampart run`'s.
    /// One step per kind of setting; each checks what it reads where it reads it, and the
    /// interfaces, cores and rings are checked against each other last.
    pub fn from_table(doc: &mut Doc<'_>, table: &DeTable<'_>, section: &Section<'_>) -> Result<Config, ConfigError> {
        doc.check_keys(section.what(), table, KEYS, &[])?;
        let crypto = crypto_choice(doc, table)?;
        let cores = read_cores(doc, table)?;
        let lan = read_interface(doc, table, section, Side::Lan)?;
        let wan = read_interface(doc, table, section, Side::Wan)?;
        check_pairs(doc, section, &cores, &lan, &wan)?;
        let pairs_per_worker = lan.cfg.queues.len().div_ceil(cores.list.len()) as u32;
        let (ring_size, frame_count) = read_rings(doc, table, pairs_per_worker)?;
        let metrics = read_metrics(doc, table)?;
        let (idle, poll_timeout_ms) = read_idle(doc, table)?;
        let xdp_mode = match optional(doc, table, "xdp_mode", |d, k, v| d.keyword(k, v, &["native", "generic"]))? {
            Some(("generic", _)) => XdpMode::Generic,
            _ => XdpMode::Native,
        };
        let icmp_rate = optional(doc, table, "icmp_rate", |d, k, v| d.unsigned::<u32>(k, v))?.map_or(100, |(n, _)| n);
        Ok(Config {
            database: path_setting(doc, table, "database")?
                .unwrap_or_else(|| PathBuf::from(rampart_sadb::DEFAULT_PATH)),
            cores: cores.list,
            crypto,
            xdp_mode,
            xdp_force: optional(doc, table, "xdp_force", Doc::boolean)?.is_some_and(|(b, _)| b),
            lan: lan.cfg,
            wan: wan.cfg,
            stats_file: path_setting(doc, table, "stats_file")?,
            metrics_listen: metrics.listen,
            idle,
            poll_timeout_ms,
            frame_count,
            ring_size,
            encap_port: optional(doc, table, "encap_port", Doc::u16)?.map_or(4500, |(p, _)| p),
            icmp_rate,
            per_sa_metrics: metrics.per_sa,
            per_sa_metrics_limit: metrics.per_sa_limit,
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

/// A setting that may be left out: its value and where it was written.
fn optional<'d, 't, 'i, T>(
    doc: &Doc<'d>,
    t: &'t DeTable<'i>,
    key: &str,
    read: impl FnOnce(&Doc<'d>, &str, &'t Value<'i>) -> Result<T, ConfigError>,
) -> Result<Option<(T, Range<usize>)>, ConfigError> {
    get(t, key).map(|(_, v)| read(doc, key, v).map(|x| (x, v.span()))).transpose()
}

/// A file path setting.
fn path_setting(doc: &Doc<'_>, t: &DeTable<'_>, key: &str) -> Result<Option<PathBuf>, ConfigError> {
    Ok(optional(doc, t, key, |d, k, v| d.string(k, v).map(PathBuf::from))?.map(|(p, _)| p))
}

/// `crypto_backend`: `auto`, or a backend this build has.
fn crypto_choice(doc: &Doc<'_>, t: &DeTable<'_>) -> Result<CryptoChoice, ConfigError> {
    let Some((name, span)) = optional(doc, t, "crypto_backend", Doc::string)? else { return Ok(CryptoChoice::Auto) };
    if name == "auto" {
        return Ok(CryptoChoice::Auto);
    }
    let backend = Backend::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
        doc.err(&span, format!("unknown crypto backend; this build has auto, {}", known.join(", ")))
    })?;
    Ok(CryptoChoice::Fixed(backend))
}

/// `cores`, with where they were written (`None`: the default, core 0).
struct Cores {
    list: Vec<usize>,
    span: Option<Range<usize>>,
}

/// `cores`: at least one, each on this machine, none twice.
fn read_cores(doc: &Doc<'_>, t: &DeTable<'_>) -> Result<Cores, ConfigError> {
    let Some((_, v)) = get(t, "cores") else { return Ok(Cores { list: vec![0], span: None }) };
    let items = doc.array("cores", v)?;
    if items.is_empty() {
        return Err(doc.err(&v.span(), "cores: at least one core is needed"));
    }
    let available = core_affinity::get_core_ids().map(|c| c.len()).unwrap_or(usize::MAX);
    let mut list = Vec::with_capacity(items.len());
    for item in items {
        let c: usize = doc.unsigned("cores", item)?;
        if c >= available {
            return Err(doc.err(&item.span(), format!("cores: core {c} does not exist (this machine has {available})")));
        }
        if list.contains(&c) {
            return Err(doc.err(&item.span(), "cores: a core is listed twice"));
        }
        list.push(c);
    }
    Ok(Cores { list, span: Some(v.span()) })
}

/// The two interfaces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Lan,
    Wan,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::Lan => "lan",
            Side::Wan => "wan",
        }
    }

    fn role(self) -> &'static str {
        match self {
            Side::Lan => "the cleartext (LAN) interface",
            Side::Wan => "the ESP (WAN) interface",
        }
    }
}

/// One interface as read, with where its settings were written (for the checks that compare
/// the two sides).
struct Interface {
    cfg: InterfaceConfig,
    /// The table's name (`[lan]`, `[dataplane.lan]`) as messages write it.
    header: String,
    /// Where the table's key is written.
    key: Range<usize>,
    name: Range<usize>,
    /// The `queues` value, when given.
    queues: Option<Range<usize>>,
    /// The `local_addresses` key, when given.
    local_addresses: Option<Range<usize>>,
}

/// `[lan]` or `[wan]`: a name of 1 to 15 bytes, queues (default `[0]`) none twice, outer
/// addresses, an MTU in 576..=9000.
fn read_interface(
    doc: &mut Doc<'_>,
    t: &DeTable<'_>,
    section: &Section<'_>,
    side: Side,
) -> Result<Interface, ConfigError> {
    let header = section.table(side.key());
    let Some((key, v)) = get(t, side.key()) else {
        let reason = match section {
            Section::Root => format!("no [{header}] table: {} is needed", side.role()),
            Section::Table { name, .. } => {
                format!("the [{name}] table has no [{header}] table: {} is needed", side.role())
            }
        };
        return Err(section.missing(doc, reason));
    };
    let body = doc.table(side.key(), v)?;
    doc.check_keys(&header, body, INTERFACE_KEYS, &[])?;
    let Some((name, name_span)) = optional(doc, body, "name", |d, k, v| d.string(k, v).map(str::to_string))? else {
        return Err(doc.err(&key, format!("[{header}] has no name: {} is needed", side.role())));
    };
    if name.is_empty() || name.len() > 15 {
        return Err(doc.err(&name_span, format!("[{header}] interface name: must be 1 to 15 bytes")));
    }
    let (queues, queues_span) = match get(body, "queues") {
        None => (vec![0], None),
        Some((_, v)) => {
            let items = doc.array("queues", v)?;
            if items.is_empty() {
                return Err(doc.err(&v.span(), format!("[{header}] needs at least one queue")));
            }
            let mut queues = Vec::with_capacity(items.len());
            for item in items {
                let q: u32 = doc.unsigned("queues", item)?;
                if queues.contains(&q) {
                    return Err(doc.err(&item.span(), format!("[{header}] lists a queue twice")));
                }
                queues.push(q);
            }
            (queues, Some(v.span()))
        }
    };
    let mut local_addresses = Vec::new();
    let mut local_span = None;
    if let Some((k, v)) = get(body, "local_addresses") {
        for item in doc.array("local_addresses", v)? {
            let a = doc.string("local_addresses", item)?;
            let ip = a
                .parse::<IpAddr>()
                .map_err(|_| doc.err(&item.span(), format!("[{header}] local_addresses: not an IP address")))?;
            local_addresses.push(ip);
        }
        local_span = Some(k);
    }
    let mtu = match optional(doc, body, "mtu", |d, k, v| d.unsigned::<u32>(k, v))? {
        Some((m, span)) if !(576..=9000).contains(&m) => {
            return Err(doc.err(&span, format!("[{header}] MTU {m}: must be 576..=9000")));
        }
        m => m.map(|(m, _)| m),
    };
    Ok(Interface {
        cfg: InterfaceConfig { name, queues, local_addresses, mtu },
        header,
        key,
        name: name_span,
        queues: queues_span,
        local_addresses: local_span,
    })
}

/// The interfaces and cores against each other: outer addresses on the WAN side only, queues
/// in pairs, two interfaces, no worker without a queue pair.
fn check_pairs(
    doc: &Doc<'_>,
    section: &Section<'_>,
    cores: &Cores,
    lan: &Interface,
    wan: &Interface,
) -> Result<(), ConfigError> {
    if let Some(span) = &lan.local_addresses {
        return Err(doc.err(span, format!("local_addresses belongs to [{}]", wan.header)));
    }
    if lan.cfg.queues.len() != wan.cfg.queues.len() {
        let at = wan.queues.as_ref().or(lan.queues.as_ref()).unwrap_or(&wan.key);
        return Err(doc.err(
            at,
            format!(
                "[{}] has {} queues and [{}] {}: they are served in pairs and must match",
                lan.header,
                lan.cfg.queues.len(),
                wan.header,
                wan.cfg.queues.len()
            ),
        ));
    }
    if lan.cfg.name == wan.cfg.name {
        return Err(doc.err(
            &wan.name,
            format!("[{}] and [{}] name the same interface: Rampart needs two", lan.header, wan.header),
        ));
    }
    if cores.list.len() > lan.cfg.queues.len() {
        let reason = format!(
            "{} cores for {} queue pairs: a worker without a queue has nothing to do",
            cores.list.len(),
            lan.cfg.queues.len()
        );
        return Err(match &cores.span {
            Some(span) => doc.err(span, reason),
            None => section.missing(doc, reason),
        });
    }
    Ok(())
}

/// `ring_size` (a power of two in 64..=16384, default 2048) and `frame_count` (default: what
/// the rings need, at least 4096; never less than they need).
fn read_rings(doc: &Doc<'_>, t: &DeTable<'_>, pairs_per_worker: u32) -> Result<(u32, u32), ConfigError> {
    let ring_size = match optional(doc, t, "ring_size", |d, k, v| d.unsigned::<u32>(k, v))? {
        None => 2048,
        Some((n, _)) if n.is_power_of_two() && (64..=16384).contains(&n) => n,
        Some((n, span)) => {
            return Err(doc.err(&span, format!("ring size {n}: must be a power of two in 64..=16384")));
        }
    };
    // Each socket of a pair keeps a full fill ring, and frames in flight on the tx rings.
    let needed = pairs_per_worker * 4 * ring_size;
    let frame_count = match optional(doc, t, "frame_count", |d, k, v| d.unsigned::<u32>(k, v))? {
        None => needed.max(4096),
        Some((n, _)) if n >= needed => n,
        Some((n, span)) => {
            return Err(doc.err(
                &span,
                format!(
                    "{n} frames per worker: at least {needed} needed for {pairs_per_worker} queue pair(s) with rings of {ring_size}"
                ),
            ));
        }
    };
    Ok((ring_size, frame_count))
}

/// The metrics settings.
struct Metrics {
    listen: Option<SocketAddr>,
    per_sa: bool,
    per_sa_limit: usize,
}

/// `metrics_listen` (default 127.0.0.1:9184, `off` for none), `per_sa_metrics`,
/// `per_sa_metrics_limit` (at least 1).
fn read_metrics(doc: &Doc<'_>, t: &DeTable<'_>) -> Result<Metrics, ConfigError> {
    let listen = match optional(doc, t, "metrics_listen", listen_setting)? {
        None => Some(DEFAULT_METRICS_LISTEN),
        Some((l, _)) => l,
    };
    let per_sa = optional(doc, t, "per_sa_metrics", Doc::boolean)?.is_some_and(|(b, _)| b);
    let per_sa_limit = match optional(doc, t, "per_sa_metrics_limit", |d, k, v| d.unsigned::<usize>(k, v))? {
        None => DEFAULT_PER_SA_METRICS_LIMIT,
        Some((0, span)) => {
            return Err(
                doc.err(&span, "per_sa_metrics_limit must be at least 1 (per_sa_metrics = false turns them off)")
            );
        }
        Some((n, _)) => n,
    };
    Ok(Metrics { listen, per_sa, per_sa_limit })
}

/// A metrics listen address in a file ([`parse_listen`]); the message does not repeat it.
pub fn listen_setting(doc: &Doc<'_>, key: &str, v: &Value<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    parse_listen(doc.string(key, v)?).map_err(|_| {
        doc.err(&v.span(), format!("'{key}' must be IP:PORT (e.g. 127.0.0.1:9184, [::1]:9184) or \"off\""))
    })
}

/// `idle` (`poll` or `spin`) and `poll_timeout_ms` (1..=1000, default 10).
fn read_idle(doc: &Doc<'_>, t: &DeTable<'_>) -> Result<(IdleMode, u32), ConfigError> {
    let idle = match optional(doc, t, "idle", |d, k, v| d.keyword(k, v, &["poll", "spin"]))? {
        Some(("spin", _)) => IdleMode::Spin,
        _ => IdleMode::Poll,
    };
    let timeout = match optional(doc, t, "poll_timeout_ms", |d, k, v| d.unsigned::<u32>(k, v))? {
        None => 10,
        Some((n, _)) if (1..=1000).contains(&n) => n,
        Some((_, span)) => return Err(doc.err(&span, "poll_timeout_ms must be 1..=1000")),
    };
    Ok((idle, timeout))
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
        assert_eq!((c.ring_size, c.frame_count, c.poll_timeout_ms, c.icmp_rate), (2048, 16384, 10, 100));
        assert!(!c.xdp_force);
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = parse(&GOOD.replace("xdp_mode = \"generic\"", "xdp_mode = \"turbo\"")).unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.to_string().starts_with("test.toml:4:12: "), "{e}");

        let e = parse(&GOOD.replace("\"192.0.2.1\"", "\"192.0.2.300\"")).unwrap_err();
        assert_eq!((e.line, e.column), (13, 20), "{e}");
        assert!(e.reason.contains("not an IP address"), "{e}");

        let e = parse(&GOOD.replace("queues = [0, 1]\nlocal", "queues = [0]\nlocal")).unwrap_err();
        assert!(e.reason.contains("must match"), "{e}");
        assert_eq!((e.line, e.column), (12, 10), "{e}");

        let e = parse(&GOOD.replace("cores = [0]", "cores = [0, 0]")).unwrap_err();
        assert!(e.reason.contains("twice"), "{e}");
        assert_eq!((e.line, e.column), (3, 13), "{e}");

        let e = parse(&GOOD.replace("database", "databse")).unwrap_err();
        assert!(e.reason.contains("unknown key 'databse'"), "{e}");
        assert_eq!((e.line, e.column), (2, 1), "{e}");

        let e = parse(&format!("crypto_backend = \"openssl\"\n{GOOD}")).unwrap_err();
        assert!(e.reason.contains("unknown crypto backend"), "{e}");
        assert_eq!(e.line, 1);

        let e = parse(&GOOD.replace("name = \"wan0\"", "name = \"lan0\"")).unwrap_err();
        assert!(e.reason.contains("same interface"), "{e}");

        let e = parse(&format!("metrics_listen = \"localhost\"\n{GOOD}")).unwrap_err();
        assert!(e.reason.contains("IP:PORT"), "{e}");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn every_mistake_has_a_line_a_column_and_no_value() {
        // (what is replaced, by what, the line, column and words of the error)
        let cases: &[(&str, &str, usize, usize, &str)] = &[
            ("cores = [0]", "cores = [\"zero\"]", 3, 10, "'cores' must be an integer"),
            ("cores = [0]", "cores = [-1]", 3, 10, "'cores' must not be negative"),
            ("cores = [0]", "cores = []", 3, 9, "at least one core"),
            ("cores = [0]", "cores = 0", 3, 9, "'cores' must be an array"),
            ("name = \"lan0\"", "name = \"a-very-long-ifname\"", 7, 8, "[lan] interface name: must be 1 to 15 bytes"),
            ("name = \"lan0\"", "nmae = \"lan0\"", 7, 1, "lan: unknown key 'nmae'"),
            ("queues = [0, 1]\n\n[wan]", "queues = [0, 0]\n\n[wan]", 8, 14, "[lan] lists a queue twice"),
            ("xdp_mode = \"generic\"", "xdp_force = \"yes\"", 4, 13, "'xdp_force' must be true or false"),
            ("xdp_mode = \"generic\"", "ring_size = 1000", 4, 13, "ring size 1000"),
            ("xdp_mode = \"generic\"", "frame_count = 100", 4, 15, "100 frames per worker"),
            ("xdp_mode = \"generic\"", "idle = \"nap\"", 4, 8, "'idle' must be poll or spin"),
            ("xdp_mode = \"generic\"", "poll_timeout_ms = 0", 4, 19, "poll_timeout_ms must be 1..=1000"),
            ("xdp_mode = \"generic\"", "encap_port = 70000", 4, 14, "'encap_port' must be between 0 and 65535"),
            ("[lan]\nname = \"lan0\"\nqueues = [0, 1]\n", "lan = 1\n", 6, 7, "'lan' must be a table, not an integer"),
            ("[lan]\nname", "[lan]\nmtu = 100\nname", 7, 7, "[lan] MTU 100"),
            ("[lan]\nname", "[lan]\nlocal_addresses = [\"192.0.2.9\"]\nname", 7, 1, "local_addresses belongs to [wan]"),
            ("cores = [0]", "cores = [0]\nstats_file = 7", 4, 14, "'stats_file' must be a string"),
        ];
        for (from, to, line, column, words) in cases {
            let text = GOOD.replacen(from, to, 1);
            assert_ne!(text, GOOD, "{to}");
            let e = parse(&text).expect_err(to);
            assert_eq!((e.line, e.column), (*line, *column), "{to}: {e}");
            assert!(e.reason.contains(words), "{to}: {e}");
            for secretish in ["zero", "a-very-long-ifname", "nap", "yes"] {
                assert!(!e.reason.contains(secretish), "{to}: the value was repeated: {e}");
            }
        }
        // What a file lacks is about the file.
        let e = parse("cores = [0]\n[lan]\nname = \"lan0\"\n").unwrap_err();
        assert_eq!(e.to_string(), "test.toml: no [wan] table: the ESP (WAN) interface is needed");
        let e = parse(&GOOD.replace("name = \"wan0\"", "")).unwrap_err();
        assert_eq!((e.line, e.column), (10, 2), "{e}");
        assert!(e.reason.contains("[wan] has no name"), "{e}");
        // Syntax.
        let e = parse(&GOOD.replace("cores = [0]", "cores = [0")).unwrap_err();
        assert!(e.line >= 3 && e.column > 0 && e.reason.starts_with("invalid TOML"), "{e}");
    }

    #[test]
    fn a_table_of_a_larger_file_is_read_in_place() {
        let text = format!(
            "top = 1\n\n[dataplane]\n{}",
            GOOD.replace("[lan]", "[dataplane.lan]").replace("[wan]", "[dataplane.wan]")
        );
        let mut doc = Doc::new(Path::new("run.toml"), &text);
        let root = doc.parse().unwrap();
        let (key, v) = get(root.get_ref(), "dataplane").unwrap();
        let t = doc.table("dataplane", v).unwrap().clone();
        let section = Section::Table { name: "dataplane", key };
        let c = Config::from_table(&mut doc, &t, &section).unwrap();
        assert_eq!((c.lan.name.as_str(), c.wan.name.as_str()), ("lan0", "wan0"));
        // Errors are positioned in the larger file and name its tables.
        let bad = text.replace("name = \"wan0\"", "name = \"lan0\"");
        let mut doc = Doc::new(Path::new("run.toml"), &bad);
        let root = doc.parse().unwrap();
        let (key, v) = get(root.get_ref(), "dataplane").unwrap();
        let t = doc.table("dataplane", v).unwrap().clone();
        let e = Config::from_table(&mut doc, &t, &Section::Table { name: "dataplane", key }).unwrap_err();
        assert_eq!(
            e.to_string(),
            "run.toml:14:8: [dataplane.lan] and [dataplane.wan] name the same interface: Rampart needs two"
        );
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
        assert_eq!(e.line, 1, "{e}");
        let e = parse(&format!("per_sa_metrics = \"yes\"\n{GOOD}")).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn the_deploy_examples_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples");
        for f in ["dataplane-hub.toml", "dataplane-branch.toml"] {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            // Core numbers are the target machine's.
            let mut doc = Doc::new(Path::new(f), &text);
            let root = doc.parse().unwrap_or_else(|e| panic!("{e}"));
            let mut t = root.get_ref().clone();
            t.remove("cores");
            Config::from_table(&mut doc, &t, &Section::Root).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
