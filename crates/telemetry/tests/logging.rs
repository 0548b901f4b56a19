//! Log output as operators and journald see it: the three formats, per-module filters, a
//! filter changed at run time, one line per event whatever the values hold, the rate limit of
//! the data path, and `auto` picking the journald format exactly when stderr is the stream
//! systemd named in `JOURNAL_STREAM` (checked in a child process whose stderr is a file).

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_telemetry::log::{LogFormat, LogHandle, LogOptions, build};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn opts(filter: &str, format: LogFormat) -> LogOptions {
    LogOptions { filter: Some(filter.into()), env_filter: None, format, journal_stream: false }
}

fn run(o: &LogOptions, f: impl FnOnce(&LogHandle)) -> String {
    let buf = Capture::default();
    let (sub, handle) = build(o, buf.clone()).unwrap();
    tracing::subscriber::with_default(sub, || f(&handle));
    buf.text()
}

fn events() {
    tracing::error!(target: "rampart_ike::daemon", peer = "192.0.2.2", "IKE SA failed");
    tracing::warn!(target: "rampart_ike::daemon", "retransmitting");
    tracing::info!(target: "rampart_ike::daemon", spi = 0x1001u32, "CHILD_SA installed");
    tracing::debug!(target: "rampart_dataplane::worker", worker = 0, "table reloaded");
    tracing::trace!(target: "rampart_dataplane::worker", "burst");
}

#[test]
fn journald_lines_carry_priorities_and_no_timestamp() {
    let log = run(&opts("trace", LogFormat::Journald), |_| events());
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "<3>rampart_ike::daemon: IKE SA failed peer=\"192.0.2.2\"",
            "<4>rampart_ike::daemon: retransmitting",
            "<6>rampart_ike::daemon: CHILD_SA installed spi=4097",
            "<7>rampart_dataplane::worker: table reloaded worker=0",
            "<7>rampart_dataplane::worker: burst",
        ]
    );
}

#[test]
fn plain_lines_start_with_a_timestamp_and_level() {
    let log = run(&opts("info", LogFormat::Plain), |_| events());
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    for (line, level) in lines.iter().zip(["ERROR", " WARN", " INFO"]) {
        let (ts, rest) = line.split_once(' ').unwrap();
        // RFC 3339, UTC: 2024-01-02T03:04:05.678901Z
        assert!(ts.len() >= 20 && ts.ends_with('Z') && &ts[4..5] == "-" && &ts[10..11] == "T", "{line}");
        assert!(rest.starts_with(level), "{line}");
        assert!(!line.contains('\x1b'), "no colours: {line:?}");
    }
}

#[test]
fn json_lines_parse_with_their_fields() {
    let log = run(&opts("info", LogFormat::Json), |_| {
        let span = tracing::info_span!("connection", name = "hub");
        let _e = span.enter();
        events();
    });
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert_eq!(lines[0]["level"], "ERROR");
    assert_eq!(lines[0]["target"], "rampart_ike::daemon");
    assert_eq!(lines[0]["peer"], "192.0.2.2");
    assert_eq!(lines[2]["message"], "CHILD_SA installed");
    assert_eq!(lines[2]["spi"], 4097);
    assert_eq!(lines[2]["span"]["name"], "connection");
    assert!(lines[2]["timestamp"].is_string());
}

#[test]
fn filters_are_per_module_and_change_at_run_time() {
    let log = run(&opts("warn,rampart_dataplane=debug", LogFormat::Journald), |handle| {
        events();
        handle.set_filter("error").unwrap();
        tracing::warn!(target: "rampart_ike::daemon", "now hidden");
        assert!(handle.set_filter("info,rampart_ike=loud").is_err());
        tracing::error!(target: "rampart_ike::daemon", "still shown");
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines,
        [
            "<3>rampart_ike::daemon: IKE SA failed peer=\"192.0.2.2\"",
            "<4>rampart_ike::daemon: retransmitting",
            "<7>rampart_dataplane::worker: table reloaded worker=0",
            "<3>rampart_ike::daemon: still shown",
        ]
    );
    assert!(build(&opts("info,=bogus=", LogFormat::Plain), Capture::default()).is_err());
}

#[test]
fn values_cannot_forge_log_lines() {
    for format in [LogFormat::Journald, LogFormat::Plain, LogFormat::Json] {
        let log = run(&opts("info", format), |_| {
            let id = "branch-7\n<3>rampart: forged alarm";
            tracing::info!(target: "rampart_ike", peer_id = %id, "peer identity\r\nsecond");
        });
        assert_eq!(log.lines().count(), 1, "{format:?}: {log:?}");
        assert!(log.contains("forged alarm"), "{format:?}: the value is kept: {log:?}");
    }
}

#[test]
fn spans_show_in_journald_lines() {
    let log = run(&opts("info", LogFormat::Journald), |_| {
        let span = tracing::info_span!("ike_sa", id = 7);
        let _e = span.enter();
        tracing::info!(target: "rampart_ike", "established");
    });
    assert_eq!(log, "<6>rampart_ike: ike_sa{id=7}: established\n");
}

#[test]
fn rate_limited_events_report_what_they_suppressed() {
    fn unknown_spi(spi: u32) {
        rampart_telemetry::rate_limited!(warn, 5, spi, "ESP for an unknown SPI");
    }
    let buf = Capture::default();
    let (sub, _h) = build(&opts("info", LogFormat::Journald), buf.clone()).unwrap();
    tracing::subscriber::with_default(sub, || {
        // Start right after a second boundary so that the whole burst falls in one second.
        std::thread::sleep(Duration::from_millis(1100));
        for spi in 0..100 {
            unknown_spi(spi);
        }
        std::thread::sleep(Duration::from_millis(1100));
        unknown_spi(1000);
        unknown_spi(1001);
    });
    let log = buf.text();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 7 && lines.len() <= 12, "{log}");
    let suppressed: Vec<&str> = lines.iter().copied().filter(|l| l.contains("suppressed=")).collect();
    // Every event is either logged or counted in a later line's `suppressed`.
    let logged = lines.len() as u64;
    let counted: u64 = suppressed
        .iter()
        .map(|l| l.split("suppressed=").nth(1).unwrap().split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(logged + counted, 102, "{log}");
    assert!(lines.last().unwrap().contains("spi=1001"), "{log}");
    assert!(lines.iter().any(|l| l.contains("spi=1000") && l.contains("suppressed=")), "{log}");
    // The metric counts the same events.
    let flat = rampart_telemetry::Metrics::new().snapshot().flat();
    let total: f64 = flat
        .iter()
        .filter(|(k, _)| k.starts_with("rampart_log_suppressed_total{site=\"logging:"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total as u64, counted);
}

const CHILD_ENV: &str = "RAMPART_TELEMETRY_LOG_CHILD";

/// Run in a child process by `auto_format_follows_journal_stream`.
#[test]
fn journal_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let handle = rampart_telemetry::log::init(&LogOptions::from_env(Some("info"), LogFormat::Auto)).unwrap();
    tracing::info!(target: "rampart", format = %handle.format(), "hello from the child");
}

fn child_output(journal_stream: impl FnOnce(&std::fs::Metadata) -> String) -> String {
    let path = std::env::temp_dir().join(format!("rampart-telemetry-journal-{}-{}", std::process::id(), rand_tag()));
    let file = std::fs::File::create(&path).unwrap();
    let value = journal_stream(&file.metadata().unwrap());
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "journal_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("JOURNAL_STREAM", value)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    out.lines().filter(|l| l.contains("hello from the child")).collect::<Vec<_>>().join("\n")
}

fn rand_tag() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn auto_format_follows_journal_stream() {
    let matching = child_output(|m| format!("{}:{}", m.dev(), m.ino()));
    assert_eq!(matching, "<6>rampart: hello from the child format=journald");
    // A stream that is not our stderr (e.g. inherited by a child of a service): plain lines.
    let other = child_output(|m| format!("{}:{}", m.dev(), m.ino() + 1));
    assert!(other.contains(" INFO rampart: hello from the child format=plain"), "{other}");
    assert!(!other.starts_with('<'), "{other}");
}
