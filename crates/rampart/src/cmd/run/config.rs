//! The one file of `rampart run`: the IKE daemon's file (`[daemon]`, `connections`, `secrets`,
//! read by `rampart_ike_daemon::config_file`) with the data plane's file as a `[dataplane]` table
//! (read by `rampart_dataplane::config`), and three process settings at the top:
//!
//! ```toml
//! metrics_listen = "127.0.0.1:9184"   # /metrics of both planes; "off" for none
//! log = "info"                        # RUST_LOG syntax; RUST_LOG and --log win
//! log_format = "auto"                 # auto | plain | journald | json
//!
//! [daemon]                            # as in `rampart ike`'s file; its database is the data plane's too
//! database = "/dev/shm/rampart.sadb"
//!
//! [dataplane]                         # as in `rampart dataplane`'s file, less database and metrics_listen
//! cores = [1]
//! [dataplane.lan]
//! name = "lan0"
//! [dataplane.wan]
//! name = "wan0"
//!
//! [connections.branch] ...            # as in `rampart ike`'s file
//! [secrets.ike-branch] ...
//! ```
//!
//! The file is parsed once (`rampart-config`): the `[dataplane]` table goes to the data plane's
//! reader, the other tables to the IKE daemon's, each reading in place, so that every error
//! names this file, the line, the column and the reason. Nothing here opens a socket or logs,
//! and no error repeats a value from the file (secrets live in it).

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use rampart_config::{DeTable, Doc, Section, Value, get, read_file};
use rampart_ike_daemon::config_file::{ConfError, Config as IkeConfig};

/// The top-level keys this file adds to the IKE daemon's format.
pub const PROCESS_KEYS: &[&str] = &["metrics_listen", "log", "log_format"];

/// The top-level tables of the IKE daemon's part, and those it accepts with a warning.
const IKE_KEYS: &[&str] = &["daemon", "connections", "secrets"];
const IKE_IGNORED: &[&str] = &["pools", "authorities"];

/// Keys of the data plane's own file that `[dataplane]` must not repeat, and where they live here.
const MOVED_KEYS: &[(&str, &str)] = &[
    ("database", "the SA database is set once, as [daemon] database, for both planes"),
    ("metrics_listen", "metrics_listen goes at the top of the file: one endpoint serves both planes"),
];

/// A checked `rampart run` file.
#[derive(Debug)]
pub struct RunConfig {
    /// The IKE daemon's part.
    pub ike: IkeConfig,
    /// The data plane's part, its `database` the IKE daemon's.
    pub dataplane: rampart_dataplane::Config,
    /// `metrics_listen` (default `127.0.0.1:9184`; `None`: off).
    pub metrics_listen: Option<SocketAddr>,
    /// `log`.
    pub log: Option<String>,
    /// `log_format`.
    pub log_format: Option<String>,
}

/// The process settings at the top of the file.
struct Process {
    metrics_listen: Option<SocketAddr>,
    log: Option<String>,
    log_format: Option<String>,
}

impl RunConfig {
    /// Reads and checks the file at `path` (and the secrets file it names).
    pub fn load(path: &Path) -> Result<RunConfig, ConfError> {
        let text = read_file(path)?;
        RunConfig::parse(path, &text)
    }

    /// Checks the text of a `rampart run` file; `path` names it in errors (and its permissions
    /// are checked when it holds secrets and exists).
    pub fn parse(path: &Path, text: &str) -> Result<RunConfig, ConfError> {
        let mut doc = Doc::new(path, text);
        let root = doc.parse()?;
        let root = root.get_ref();
        check_top_keys(&mut doc, root)?;
        let process = read_process(&doc, root)?;
        let ike = read_ike(&mut doc, root)?;
        let mut dataplane = read_dataplane(&mut doc, root)?;
        dataplane.database = ike.daemon.database.clone();
        dataplane.metrics_listen = None;
        Ok(RunConfig {
            ike,
            dataplane,
            metrics_listen: process.metrics_listen,
            log: process.log,
            log_format: process.log_format,
        })
    }

    /// The SA database both planes use.
    pub fn database(&self) -> &PathBuf {
        &self.ike.daemon.database
    }
}

/// Every top-level key is one of the process settings, `dataplane`, or the IKE daemon's.
fn check_top_keys(doc: &mut Doc<'_>, root: &DeTable<'_>) -> Result<(), ConfError> {
    let known: Vec<&str> = PROCESS_KEYS.iter().chain(&["dataplane"]).chain(IKE_KEYS).copied().collect();
    // The IKE daemon's reader warns about the keys it ignores; this check only refuses.
    let warned = doc.warnings.len();
    doc.check_keys("top level", root, &known, IKE_IGNORED)?;
    doc.warnings.truncate(warned);
    Ok(())
}

/// `metrics_listen`, `log` and `log_format`.
fn read_process(doc: &Doc<'_>, root: &DeTable<'_>) -> Result<Process, ConfError> {
    let metrics_listen = match get(root, "metrics_listen") {
        None => Some(rampart_dataplane::config::DEFAULT_METRICS_LISTEN),
        Some((_, v)) => rampart_dataplane::config::listen_setting(doc, "metrics_listen", v)?,
    };
    let setting = |key: &str, check: fn(&str) -> bool, what: &str| -> Result<Option<String>, ConfError> {
        let Some((_, v)) = get(root, key) else { return Ok(None) };
        let s = doc.string(key, v)?;
        if check(s) { Ok(Some(s.to_string())) } else { Err(doc.err(&v.span(), format!("'{key}' must be {what}"))) }
    };
    let log = setting(
        "log",
        |f| rampart_telemetry::log::parse_filter(f).is_ok(),
        "a log filter in RUST_LOG syntax, e.g. \"info,rampart_ike=debug\"",
    )?;
    let log_format = setting(
        "log_format",
        |f| f.parse::<rampart_telemetry::LogFormat>().is_ok(),
        "a log format: auto, plain, journald or json",
    )?;
    Ok(Process { metrics_listen, log, log_format })
}

/// The IKE daemon's part: every top-level table but the process settings and `[dataplane]`.
fn read_ike(doc: &mut Doc<'_>, root: &DeTable<'_>) -> Result<IkeConfig, ConfError> {
    let mut rest = root.clone();
    for key in PROCESS_KEYS.iter().chain(&["dataplane"]) {
        rest.remove(*key);
    }
    let ike = IkeConfig::from_table(doc, &rest)?;
    if ike.daemon.database.as_os_str().is_empty() {
        let at = database_value(doc, root).unwrap_or(0..0);
        return Err(doc.err(&at, "rampart run needs an SA database: the data plane reads what the IKE daemon installs"));
    }
    Ok(ike)
}

/// Where `[daemon] database` is written.
fn database_value(doc: &Doc<'_>, root: &DeTable<'_>) -> Option<Range<usize>> {
    let (_, daemon) = get(root, "daemon")?;
    let (_, v): (_, &Value<'_>) = get(doc.table("daemon", daemon).ok()?, "database")?;
    Some(v.span())
}

/// The `[dataplane]` table, by the data plane's own reader.
fn read_dataplane(doc: &mut Doc<'_>, root: &DeTable<'_>) -> Result<rampart_dataplane::Config, ConfError> {
    let Some((key, v)) = get(root, "dataplane") else {
        return Err(doc.file_err(
            "no [dataplane] table: rampart run needs the data plane's interfaces ([dataplane.lan], [dataplane.wan]); \
             for the IKE daemon alone use rampart ike",
        ));
    };
    let table = doc.table("dataplane", v)?;
    for (moved, why) in MOVED_KEYS {
        if let Some((span, _)) = get(table, moved) {
            return Err(doc.err(&span, *why));
        }
    }
    rampart_dataplane::Config::from_table(doc, table, &Section::Table { name: "dataplane", key })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# rampart run
metrics_listen = "127.0.0.1:9300"
log = "info,rampart_ike=debug"

[daemon]
database = "/dev/shm/run-test.sadb"
control_socket = "/tmp/run-test.sock"

[dataplane]
cores = [0]
xdp_mode = "generic"
stats_file = "/tmp/run-test.json"

[dataplane.lan]
name = "lan0"

[dataplane.wan]
name = "wan0"
local_addresses = ["192.0.2.1"]

[connections.gw]
local_addrs = "192.0.2.1"
remote_addrs = "192.0.2.2"
local = { auth = "psk", id = "a.example" }
remote = { auth = "psk", id = "b.example" }

[connections.gw.children.net]
local_ts = "10.1.0.0/24"
remote_ts = "10.2.0.0/24"
start_action = "start"

[secrets.ike-gw]
id-a = "a.example"
id-b = "b.example"
secret = "not-a-real-secret-but-long-enough"
"#;

    fn parse(s: &str) -> Result<RunConfig, ConfError> {
        RunConfig::parse(Path::new("run.toml"), s)
    }

    #[test]
    fn both_parts_and_process_settings_are_read() {
        let c = parse(FILE).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9300".parse().unwrap()));
        assert_eq!(c.log.as_deref(), Some("info,rampart_ike=debug"));
        assert_eq!(c.log_format, None);
        assert_eq!(c.ike.connections.len(), 1);
        assert_eq!(c.ike.connections[0].name, "gw");
        assert_eq!(c.dataplane.lan.name, "lan0");
        assert_eq!(c.dataplane.wan.name, "wan0");
        assert_eq!(c.dataplane.wan.local_addresses, vec!["192.0.2.1".parse::<std::net::IpAddr>().unwrap()]);
        assert_eq!(c.dataplane.xdp_mode, rampart_dataplane::config::XdpMode::Generic);
        assert_eq!(c.dataplane.database, PathBuf::from("/dev/shm/run-test.sadb"), "one database for both planes");
        assert_eq!(c.dataplane.stats_file, Some(PathBuf::from("/tmp/run-test.json")));
        assert_eq!(c.dataplane.metrics_listen, None, "the process serves one endpoint");
        // Defaults.
        let c = parse(&FILE.replace("metrics_listen = \"127.0.0.1:9300\"\n", "")).unwrap();
        assert_eq!(c.metrics_listen, Some("127.0.0.1:9184".parse().unwrap()));
        let c = parse(&FILE.replace("\"127.0.0.1:9300\"", "\"off\"")).unwrap();
        assert_eq!(c.metrics_listen, None);
    }

    #[test]
    fn order_of_tables_does_not_matter() {
        // Data plane tables last, IKE tables first, sub-tables in any order.
        let (head, rest) = FILE.split_once("[dataplane]").unwrap();
        let (dp, ike) = rest.split_once("[connections.gw]").unwrap();
        let moved = format!("{head}[connections.gw]{ike}\n[dataplane]{dp}");
        let c = parse(&moved).unwrap();
        assert_eq!(c.dataplane.lan.name, "lan0");
        assert_eq!(c.ike.connections.len(), 1);
        let swapped = FILE.replace("[dataplane.lan]\nname = \"lan0\"", "[dataplane.lan]\nname = \"lanX\"");
        assert_eq!(parse(&swapped).unwrap().dataplane.lan.name, "lanX");
    }

    /// The line of the first occurrence of `needle` in `text`.
    fn line(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn errors_name_the_file_line_and_reason_of_either_part() {
        // A data plane key.
        let t = FILE.replace("xdp_mode = \"generic\"", "xdp_mode = \"turbo\"");
        let e = parse(&t).unwrap_err();
        assert_eq!((e.file.as_path(), e.line), (Path::new("run.toml"), line(&t, "turbo")), "{e}");
        assert!(e.to_string().starts_with(&format!("run.toml:{}:", line(&t, "turbo"))), "{e}");
        // A data plane semantic check (points at the key).
        let t = FILE.replace("local_addresses = [\"192.0.2.1\"]", "local_addresses = [\"192.0.2.300\"]");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, line(&t, "192.0.2.300"), "{e}");
        assert!(e.reason.contains("not an IP address"), "{e}");
        // A data plane unknown key, in a sub-table.
        let t = FILE.replace("[dataplane.lan]\nname = \"lan0\"", "[dataplane.lan]\nname = \"lan0\"\nnmae = \"x\"");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, line(&t, "nmae"), "{e}");
        // An IKE key.
        let t = FILE.replace("remote_ts = \"10.2.0.0/24\"", "remote_ts = \"10.2.0.0/99\"");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, line(&t, "10.2.0.0/99"), "{e}");
        assert!(e.reason.contains("remote_ts"), "{e}");
        // A process setting.
        let t = FILE.replace("127.0.0.1:9300", "localhost");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let t = FILE.replace("log = \"info,rampart_ike=debug\"", "log_format = \"xml\"");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        // An unknown top-level key is refused.
        let t = FILE.replace("log = ", "lgo = ");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        // Syntax.
        let t = FILE.replace("cores = [0]", "cores = [0");
        let e = parse(&t).unwrap_err();
        assert!(e.line > 0 && e.reason.contains("TOML"), "{e}");
        // Keys that live elsewhere in this file.
        let t = FILE.replace("cores = [0]", "cores = [0]\ndatabase = \"/dev/shm/other.sadb\"");
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, line(&t, "other.sadb"), "{e}");
        assert!(e.reason.contains("[daemon] database"), "{e}");
        let t = FILE.replace("cores = [0]", "cores = [0]\nmetrics_listen = \"off\"");
        let e = parse(&t).unwrap_err();
        assert!(e.reason.contains("top of the file"), "{e}");
        // No data plane at all.
        let (head, rest) = FILE.split_once("[dataplane]").unwrap();
        let ike = rest.split_once("[connections.gw]").unwrap().1;
        let e = parse(&format!("{head}[connections.gw]{ike}")).unwrap_err();
        assert!(e.reason.contains("no [dataplane] table"), "{e}");
        // The data plane as dotted keys at the top: a [dataplane] table without its interfaces,
        // refused where it is written.
        let e = parse(&format!("dataplane.cores = [0]\n{head}[connections.gw]{ike}")).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.reason.contains("[dataplane] table"), "{e}");
        assert!(e.reason.contains("[dataplane.lan]"), "{e}");
    }

    #[test]
    fn every_mistake_names_line_and_column_in_this_file() {
        // (replaced, by, where the error points, words of the reason)
        let cases: &[(&str, &str, &str, &str)] = &[
            // A data plane value, in [dataplane] and in a sub-table.
            ("xdp_mode = \"generic\"", "xdp_mode = \"turbo\"", "\"turbo\"", "'xdp_mode' must be native or generic"),
            ("name = \"lan0\"", "name = \"a-very-long-ifname\"", "\"a-very", "[dataplane.lan] interface name"),
            ("cores = [0]", "cores = [0, 0]", "0]", "a core is listed twice"),
            // An unknown key in [dataplane] and in one of its sub-tables.
            ("cores = [0]", "cores = [0]\ncrypto = \"ring\"", "crypto =", "dataplane: unknown key 'crypto'"),
            (
                "name = \"wan0\"",
                "name = \"wan0\"\nmtu = 1500\nqueue = [0]",
                "queue =",
                "dataplane.wan: unknown key 'queue'",
            ),
            // Checks across the data plane's tables point at the key that breaks them.
            ("name = \"wan0\"", "name = \"lan0\"", "\"lan0\"\nlocal", "same interface"),
            // A connection: an unknown key, a bad selector, a bad identity.
            ("remote_addrs = ", "remote_adrs = ", "remote_adrs", "connections.gw: unknown key 'remote_adrs'"),
            ("remote_ts = \"10.2.0.0/24\"", "remote_ts = \"10.2.0.0/99\"", "\"10.2.0.0/99", "children.net.remote_ts"),
            ("start_action = \"start\"", "start_action = 1", "1\n", "'start_action' must be a string"),
            // The process settings.
            ("log = \"info,rampart_ike=debug\"", "log = \"info,[[\"", "\"info,[[", "'log' must be a log filter"),
            ("\"127.0.0.1:9300\"", "\"localhost\"", "\"localhost", "'metrics_listen' must be IP:PORT"),
            ("log = ", "lgo = ", "lgo", "top level: unknown key 'lgo'"),
            // The database both planes share.
            ("database = \"/dev/shm/run-test.sadb\"", "database = \"\"", "\"\"", "needs an SA database"),
        ];
        for (from, to, at, words) in cases {
            let t = FILE.replacen(from, to, 1);
            assert_ne!(t, FILE, "{to}");
            let e = parse(&t).unwrap_err();
            // Where `at` starts in the changed file.
            let offset = t.find(at).unwrap_or_else(|| panic!("{at} not in the file"));
            let before = &t[..offset];
            let want = (before.matches('\n').count() + 1, before.rsplit('\n').next().unwrap().chars().count() + 1);
            assert_eq!((e.line, e.column), want, "{to}: {e}");
            assert!(e.to_string().starts_with(&format!("run.toml:{}:{}: ", want.0, want.1)), "{e}");
            assert!(e.reason.contains(words), "{to}: {e}");
            // The data plane's and the process settings' values are not repeated.
            for value in ["turbo", "a-very-long-ifname", "localhost", "info,[["] {
                assert!(!e.reason.contains(value), "{to}: the value was repeated: {e}");
            }
        }
    }

    #[test]
    fn the_file_is_toml_as_written() {
        // [dataplane] after its sub-tables, and dotted keys: the same tables.
        let (head, rest) = FILE.split_once("[dataplane]\n").unwrap();
        let (dp, ike) = rest.split_once("[dataplane.lan]").unwrap();
        let moved = format!("{head}[dataplane.lan]{ike}\n[dataplane]\n{dp}");
        let c = parse(&moved).unwrap();
        assert_eq!((c.dataplane.lan.name.as_str(), c.dataplane.cores.as_slice()), ("lan0", &[0][..]));
        let dotted = FILE.replace("[dataplane]\ncores = [0]\n", "[dataplane]\n").replace(
            "metrics_listen = \"127.0.0.1:9300\"",
            "metrics_listen = \"127.0.0.1:9300\"\ndataplane.cores = [0]",
        );
        assert!(parse(&dotted).is_err(), "a table defined twice is a TOML error");
        let dotted = FILE
            .replace("[dataplane.lan]\nname = \"lan0\"\n", "")
            .replace("xdp_mode = \"generic\"", "xdp_mode = \"generic\"\nlan.name = \"lan0\"");
        assert_eq!(parse(&dotted).unwrap().dataplane.lan.name, "lan0");
        // One data plane.
        let t = FILE.replace("[dataplane]\n", "[[dataplane]]\n");
        let e = parse(&t).unwrap_err();
        assert!(e.line > 0 && e.column > 0, "{e}");
        // A swanctl key the IKE daemon ignores is one warning, not two.
        let c = parse(&format!("pools = {{}}\n{FILE}")).unwrap();
        assert_eq!(c.ike.warnings.iter().filter(|w| w.contains("'pools'")).count(), 1, "{:?}", c.ike.warnings);
    }

    #[test]
    fn errors_never_repeat_the_secret() {
        let secret = "secret = \"not-a-real-secret-but-long-enough\"";
        for bad in [
            "secret = \"not-a-real-secret-but-long-enough",
            "secret = not-a-real-secret-but-long-enough",
            "secret = [\"not-a-real-secret-but-long-enough\"]",
        ] {
            let t = FILE.replace(secret, bad);
            let e = parse(&t).unwrap_err();
            assert!(!e.to_string().contains("not-a-real-secret"), "{e}");
        }
    }

    #[test]
    fn strings_and_arrays_across_lines_do_not_confuse_the_reader() {
        let t = FILE
            .replace("local_ts = \"10.1.0.0/24\"", "local_ts = [\n  \"10.1.0.0/24\",\n  # [dataplane] in a comment\n]")
            .replace("log = \"info,rampart_ike=debug\"", "log_format = \"\"\"\nplain\n[dataplane]\"\"\"");
        // The multi-line string at the top holds a line that looks like a header: it is the
        // value of `log_format`, not a table (and then refused as a format, at line 3).
        let e = parse(&t).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("log format"), "{e}");
        let t = t.replace("log_format = \"\"\"\nplain\n[dataplane]\"\"\"", "log = \"info\"");
        let c = parse(&t).unwrap();
        assert_eq!(c.ike.connections[0].children[0].local_ts.len(), 1);
        assert_eq!(c.log.as_deref(), Some("info"));
    }
}
