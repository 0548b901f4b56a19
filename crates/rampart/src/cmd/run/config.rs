//! The one file of `rampart run`: the IKE daemon's file (`[daemon]`, `connections`, `secrets`,
//! read by `rampart_ike_daemon::config_file`) with the data plane's file as a `[dataplane]` table (read by
//! `rampart_dataplane::config`), and three process settings at the top:
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
//! The file is split by lines: each parser sees the whole file with the other's lines blanked
//! (and `[dataplane.lan]` written `[lan]`), so that every error it reports names this file and
//! the line where the mistake is. Nothing here opens a socket or logs, and no error repeats a
//! value from the file (secrets live in it).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rampart_ike_daemon::config_file::{ConfError, Config as IkeConfig};

/// The top-level keys this file adds to the IKE daemon's format.
pub const PROCESS_KEYS: &[&str] = &["metrics_listen", "log", "log_format"];

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

/// Which part of the file a line belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Before the first table header.
    Top,
    /// Under `[dataplane]` or `[dataplane.*]`.
    Dataplane,
    /// Under any other header: the IKE daemon's.
    Ike,
}

/// One line as the splitter saw it.
#[derive(Debug)]
struct LineInfo {
    part: Part,
    /// The first key component of the statement this line belongs to (top level only).
    top_key: Option<String>,
    /// For a header line: its first key component, whether it is `[[...]]`, and the rest of
    /// the dotted name after the first component (empty for `[dataplane]` itself).
    header: Option<(String, bool, String, String)>,
}

fn conf_err(path: &Path, line: usize, reason: impl Into<String>) -> ConfError {
    ConfError { file: path.to_path_buf(), line, column: usize::from(line > 0), reason: reason.into() }
}

/// Reads the first key component at the start of `s` (bare or quoted); returns it and the rest.
fn first_key(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let mut chars = s.char_indices();
    match chars.next()? {
        (_, q @ ('"' | '\'')) => {
            let end = s[1..].find(q)? + 1;
            Some((s[1..end].to_string(), &s[end + 1..]))
        }
        _ => {
            let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(s.len());
            if end == 0 {
                return None;
            }
            Some((s[..end].to_string(), &s[end..]))
        }
    }
}

/// Splits `text` into lines labelled by part. The text must be valid TOML (checked before).
fn scan(text: &str) -> Vec<LineInfo> {
    #[derive(PartialEq)]
    enum Str {
        None,
        MultiBasic,
        MultiLiteral,
    }
    let mut out = Vec::new();
    let mut part = Part::Top;
    let mut in_str = Str::None;
    let mut depth: i32 = 0;
    let mut top_key: Option<String> = None;
    for line in text.split('\n') {
        let starts_statement = in_str == Str::None && depth == 0;
        let trimmed = line.trim_start();
        let mut header = None;
        if starts_statement && trimmed.starts_with('[') {
            let double = trimmed.starts_with("[[");
            let inner = trimmed.trim_start_matches('[');
            if let Some((first, rest)) = first_key(inner) {
                let rest = rest.trim_start();
                let close = rest.find(']').unwrap_or(rest.len());
                let tail = rest[..close].trim().trim_start_matches('.').trim().to_string();
                let after = rest[close..].trim_start_matches(']').to_string();
                part = if first == "dataplane" { Part::Dataplane } else { Part::Ike };
                header = Some((first, double, tail, after));
            }
            top_key = None;
            out.push(LineInfo { part, top_key: None, header });
            continue;
        }
        if starts_statement && part == Part::Top {
            top_key = first_key(trimmed).map(|(k, _)| k).filter(|_| !trimmed.starts_with('#'));
        }
        // Track strings and brackets to know whether the next line starts a statement.
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match in_str {
                Str::MultiBasic => {
                    if b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if line[i..].starts_with("\"\"\"") {
                        in_str = Str::None;
                        i += 3;
                        // A closing delimiter may carry up to two more quotes.
                        while i < b.len() && b[i] == b'"' {
                            i += 1;
                        }
                        continue;
                    }
                    i += 1;
                }
                Str::MultiLiteral => {
                    if line[i..].starts_with("'''") {
                        in_str = Str::None;
                        i += 3;
                        while i < b.len() && b[i] == b'\'' {
                            i += 1;
                        }
                        continue;
                    }
                    i += 1;
                }
                Str::None => match b[i] {
                    b'#' => break,
                    b'"' if line[i..].starts_with("\"\"\"") => {
                        in_str = Str::MultiBasic;
                        i += 3;
                    }
                    b'\'' if line[i..].starts_with("'''") => {
                        in_str = Str::MultiLiteral;
                        i += 3;
                    }
                    b'"' => {
                        i += 1;
                        while i < b.len() && b[i] != b'"' {
                            i += if b[i] == b'\\' { 2 } else { 1 };
                        }
                        i += 1;
                    }
                    b'\'' => {
                        i += 1;
                        while i < b.len() && b[i] != b'\'' {
                            i += 1;
                        }
                        i += 1;
                    }
                    b'[' | b'{' => {
                        depth += 1;
                        i += 1;
                    }
                    b']' | b'}' => {
                        depth -= 1;
                        i += 1;
                    }
                    _ => i += 1,
                },
            }
        }
        out.push(LineInfo { part, top_key: if part == Part::Top { top_key.clone() } else { None }, header: None });
    }
    out
}

/// The 1-based line where `key = ...` is first set among the lines for which `want` holds.
fn line_of(text: &str, lines: &[LineInfo], key: &str, want: impl Fn(&LineInfo) -> bool) -> usize {
    text.split('\n')
        .zip(lines)
        .position(|(l, info)| {
            want(info)
                && info.header.is_none()
                && l.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map_or(0, |i| i + 1)
}

impl RunConfig {
    /// Reads and checks the file at `path` (and the secrets file it names).
    pub fn load(path: &Path) -> Result<RunConfig, ConfError> {
        let text = std::fs::read_to_string(path).map_err(|e| conf_err(path, 0, format!("cannot read: {e}")))?;
        RunConfig::parse(path, &text)
    }

    /// Checks the text of a `rampart run` file; `path` names it in errors (and its permissions
    /// are checked when it holds secrets and exists).
    pub fn parse(path: &Path, text: &str) -> Result<RunConfig, ConfError> {
        // The splitter below relies on valid TOML; the IKE parser reports the same error with
        // its column, so let it speak for syntax.
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(_) => {
                return Err(IkeConfig::from_text(path, text, None)
                    .err()
                    .unwrap_or_else(|| conf_err(path, 0, "invalid TOML")));
            }
        };
        let lines = scan(text);
        let raw: Vec<&str> = text.split('\n').collect();

        // Process settings at the top; nothing of the data plane's there.
        let mut ike_text = Vec::with_capacity(raw.len());
        let mut dp_text = Vec::with_capacity(raw.len());
        let mut seen_dp_sub = None;
        for (i, (l, info)) in raw.iter().zip(&lines).enumerate() {
            match info.part {
                Part::Top => {
                    let mine = info.top_key.as_deref().is_some_and(|k| PROCESS_KEYS.contains(&k));
                    if info.top_key.as_deref() == Some("dataplane") {
                        return Err(conf_err(
                            path,
                            i + 1,
                            "write the data plane's settings as a [dataplane] table ([dataplane.lan], [dataplane.wan])",
                        ));
                    }
                    ike_text.push(if mine { "" } else { l });
                    dp_text.push(String::new());
                }
                Part::Ike => {
                    ike_text.push(l);
                    dp_text.push(String::new());
                }
                Part::Dataplane => {
                    ike_text.push("");
                    match &info.header {
                        Some((_, double, tail, _)) if tail.is_empty() => {
                            if *double {
                                return Err(conf_err(
                                    path,
                                    i + 1,
                                    "[[dataplane]]: there is one data plane, write [dataplane]",
                                ));
                            }
                            if let Some(sub) = seen_dp_sub {
                                return Err(conf_err(
                                    path,
                                    i + 1,
                                    format!("[dataplane] must come before its sub-tables (line {sub})"),
                                ));
                            }
                            dp_text.push(String::new());
                        }
                        Some((_, double, tail, after)) => {
                            seen_dp_sub.get_or_insert(i + 1);
                            let (open, close) = if *double { ("[[", "]]") } else { ("[", "]") };
                            dp_text.push(format!("{open}{tail}{close}{}", after.trim_start_matches(']')));
                        }
                        None => dp_text.push((*l).to_string()),
                    }
                }
            }
        }
        let ike_text = ike_text.join("\n");
        let dp_text = dp_text.join("\n");

        let string_key = |key: &str| -> Result<Option<String>, ConfError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(conf_err(
                    path,
                    line_of(text, &lines, key, |i| i.part == Part::Top),
                    format!("{key} must be a string"),
                )),
            }
        };
        let metrics_listen = match string_key("metrics_listen")? {
            None => Some(rampart_dataplane::config::DEFAULT_METRICS_LISTEN),
            Some(s) => rampart_dataplane::config::parse_listen(&s)
                .map_err(|e| conf_err(path, line_of(text, &lines, "metrics_listen", |i| i.part == Part::Top), e))?,
        };
        let log = string_key("log")?;
        if let Some(f) = &log {
            rampart_telemetry::log::parse_filter(f)
                .map_err(|e| conf_err(path, line_of(text, &lines, "log", |i| i.part == Part::Top), e.to_string()))?;
        }
        let log_format = string_key("log_format")?;
        if let Some(f) = &log_format {
            f.parse::<rampart_telemetry::LogFormat>().map_err(|e| {
                conf_err(path, line_of(text, &lines, "log_format", |i| i.part == Part::Top), e.to_string())
            })?;
        }

        // The IKE daemon's part, by its own parser.
        let ike = IkeConfig::from_text(path, &ike_text, None)?;
        if ike.daemon.database.as_os_str().is_empty() {
            return Err(conf_err(
                path,
                line_of(text, &lines, "database", |i| i.part == Part::Ike),
                "rampart run needs an SA database: the data plane reads what the IKE daemon installs",
            ));
        }

        // The data plane's part, by its own parser.
        let Some(dp_table) = table.get("dataplane") else {
            return Err(conf_err(
                path,
                0,
                "no [dataplane] table: rampart run needs the data plane's interfaces ([dataplane.lan], [dataplane.wan]); \
                 for the IKE daemon alone use rampart ike",
            ));
        };
        for (key, why) in MOVED_KEYS {
            if dp_table.get(key).is_some() {
                return Err(conf_err(path, line_of(text, &lines, key, |i| i.part == Part::Dataplane), *why));
            }
        }
        let mut dataplane = rampart_dataplane::Config::parse(&dp_text, path).map_err(|e| ConfError {
            file: e.path,
            line: e.line.unwrap_or(0),
            column: usize::from(e.line.is_some()),
            reason: format!("[dataplane] {}", e.reason),
        })?;
        dataplane.database = ike.daemon.database.clone();
        dataplane.metrics_listen = None;
        Ok(RunConfig { ike, dataplane, metrics_listen, log, log_format })
    }

    /// The SA database both planes use.
    pub fn database(&self) -> &PathBuf {
        &self.ike.daemon.database
    }
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
        // An unknown top-level key goes to the IKE parser, which refuses it.
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
        // The data plane as dotted keys at the top.
        let e = parse(&format!("dataplane.cores = [0]\n{head}[connections.gw]{ike}")).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.reason.contains("[dataplane] table"), "{e}");
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
    fn strings_and_arrays_across_lines_do_not_confuse_the_split() {
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
