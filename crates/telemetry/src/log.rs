//! Logging setup: `tracing` events to stderr, filtered per module (`RUST_LOG` syntax, e.g.
//! `info,rampart_ike=debug`), in one of three formats:
//!
//! - `journald`: `<N>target: message key=value`, one line per event, `<N>` the syslog priority
//!   that journald reads from a stream (3 error, 4 warning, 6 info, 7 debug and trace); no
//!   timestamp (the journal has one), no colour. Chosen by `auto` when stderr is the journal
//!   stream systemd names in `JOURNAL_STREAM`.
//! - `plain`: RFC 3339 timestamp, level, target, message and fields, one line per event.
//! - `json`: one JSON object per line (timestamp, level, target, fields, span).
//!
//! In `journald` and `plain`, a line break inside a message or field is written as `\n`, so that
//! a string from the network can never forge a second log line. The filter can be changed at
//! run time ([`LogHandle::set_filter`], e.g. on a config reload). This module never logs a value
//! itself; keeping keys out of logs is up to the `Debug` impls of the key types (see the tests).

use std::fmt::{self, Write as _};
use std::str::FromStr;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::{EnvFilter, reload};

/// The filter used when neither `RUST_LOG` nor the configuration gives one.
pub const DEFAULT_FILTER: &str = "info";

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `journald` when stderr is the journal stream, else `plain`.
    #[default]
    Auto,
    /// Timestamp, level, target, message, fields.
    Plain,
    /// `<N>` priority prefix, no timestamp.
    Journald,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(LogFormat::Auto),
            "plain" => Ok(LogFormat::Plain),
            "journald" => Ok(LogFormat::Journald),
            "json" => Ok(LogFormat::Json),
            other => Err(LogError::BadFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Auto => "auto",
            LogFormat::Plain => "plain",
            LogFormat::Journald => "journald",
            LogFormat::Json => "json",
        })
    }
}

/// Why logging could not be set up.
#[derive(Debug, PartialEq, Eq)]
pub enum LogError {
    /// The filter does not parse.
    BadFilter {
        /// The filter text.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// Not one of auto, plain, journald, json.
    BadFormat(String),
    /// A global subscriber was already installed.
    AlreadyInitialised,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::BadFilter { filter, reason } => write!(f, "log filter {filter:?}: {reason}"),
            LogError::BadFormat(s) => write!(f, "log format {s:?}: expected auto, plain, journald or json"),
            LogError::AlreadyInitialised => f.write_str("logging was already set up"),
        }
    }
}

impl std::error::Error for LogError {}

/// What [`init`] and [`build`] need. [`LogOptions::from_env`] fills the environment's part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// Filter from the configuration or command line (`RUST_LOG` syntax); `None`: [`DEFAULT_FILTER`].
    pub filter: Option<String>,
    /// `RUST_LOG`, which wins over `filter` when set.
    pub env_filter: Option<String>,
    /// Requested format.
    pub format: LogFormat,
    /// Whether stderr is the journal stream (`JOURNAL_STREAM` names it).
    pub journal_stream: bool,
}

impl LogOptions {
    /// Options with `filter` and `format`, reading `RUST_LOG` and `JOURNAL_STREAM`.
    pub fn from_env(filter: Option<&str>, format: LogFormat) -> LogOptions {
        LogOptions {
            filter: filter.map(str::to_owned),
            env_filter: std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()),
            format,
            journal_stream: stderr_is_journal(),
        }
    }

    /// The format after `Auto` is decided.
    pub fn resolved_format(&self) -> LogFormat {
        match self.format {
            LogFormat::Auto if self.journal_stream => LogFormat::Journald,
            LogFormat::Auto => LogFormat::Plain,
            f => f,
        }
    }

    /// The filter text in force: `RUST_LOG`, else the configured one, else [`DEFAULT_FILTER`].
    pub fn filter_text(&self) -> &str {
        self.env_filter.as_deref().or(self.filter.as_deref()).unwrap_or(DEFAULT_FILTER)
    }
}

/// Whether fd 2 is the stream systemd connected to the journal: `JOURNAL_STREAM` is
/// `<device>:<inode>` of that stream (systemd.exec(5)), compared with what stderr is now.
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(v) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = v.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => m.dev() == dev && m.ino() == ino,
        // Without /proc, trust the variable.
        Err(_) => true,
    }
}

/// Parses a filter, naming it in the error.
pub fn parse_filter(text: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::builder().parse(text).map_err(|e| LogError::BadFilter { filter: text.to_owned(), reason: e.to_string() })
}

type Base = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;

/// Changes the filter of a running subscriber.
#[derive(Clone, Debug)]
pub struct LogHandle {
    reload: reload::Handle<EnvFilter, Registry>,
    format: LogFormat,
}

impl LogHandle {
    /// Replaces the filter (e.g. after a configuration reload). A bad filter is refused and
    /// the one in force stays.
    pub fn set_filter(&self, text: &str) -> Result<(), LogError> {
        let f = parse_filter(text)?;
        self.reload.reload(f).map_err(|e| LogError::BadFilter { filter: text.to_owned(), reason: e.to_string() })
    }

    /// The format in use (never `Auto`).
    pub fn format(&self) -> LogFormat {
        self.format
    }
}

/// A subscriber writing to `writer` as `opts` say, and the handle that changes its filter. For
/// tests and embedding; processes call [`init`].
pub fn build<W>(opts: &LogOptions, writer: W) -> Result<(impl Subscriber + Send + Sync + 'static, LogHandle), LogError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = parse_filter(opts.filter_text())?;
    let (filter_layer, reload) = reload::Layer::new(filter);
    let format = opts.resolved_format();
    let output: Box<dyn Layer<Base> + Send + Sync> = match format {
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer),
        ),
        LogFormat::Journald | LogFormat::Auto => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(LineFormat { journald: true })
                .with_writer(writer),
        ),
        LogFormat::Plain => Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(LineFormat { journald: false })
                .with_writer(writer),
        ),
    };
    let subscriber = tracing_subscriber::registry().with(filter_layer).with(output);
    Ok((subscriber, LogHandle { reload, format }))
}

/// Installs the process-wide subscriber, writing to stderr.
pub fn init(opts: &LogOptions) -> Result<LogHandle, LogError> {
    let (subscriber, handle) = build(opts, std::io::stderr)?;
    tracing::subscriber::set_global_default(subscriber).map_err(|_| LogError::AlreadyInitialised)?;
    Ok(handle)
}

/// The syslog priority journald reads from a `<N>` prefix (sd-daemon(3)).
pub fn journald_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// One line per event; see the module docs.
struct LineFormat {
    journald: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(128);
        if self.journald {
            let _ = write!(line, "<{}>", journald_priority(meta.level()));
        } else {
            SystemTime.format_time(&mut Writer::new(&mut line))?;
            let _ = write!(line, " {:>5} ", meta.level());
        }
        let _ = write!(line, "{}: ", meta.target());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                line.push_str(span.name());
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    let _ = write!(line, "{{{fields}}}");
                }
                line.push_str(": ");
            }
        }
        ctx.field_format().format_fields(Writer::new(&mut line), event)?;
        // One event, one line: escape line breaks that values carry.
        let line = line.replace('\r', "\\r").replace('\n', "\\n");
        writer.write_str(&line)?;
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_resolve_filter_and_format() {
        let mut o = LogOptions { filter: None, env_filter: None, format: LogFormat::Auto, journal_stream: false };
        assert_eq!(o.filter_text(), "info");
        assert_eq!(o.resolved_format(), LogFormat::Plain);
        o.filter = Some("warn,rampart_ike=debug".into());
        assert_eq!(o.filter_text(), "warn,rampart_ike=debug");
        o.env_filter = Some("trace".into());
        assert_eq!(o.filter_text(), "trace");
        o.journal_stream = true;
        assert_eq!(o.resolved_format(), LogFormat::Journald);
        o.format = LogFormat::Json;
        assert_eq!(o.resolved_format(), LogFormat::Json);
        assert_eq!("journald".parse::<LogFormat>(), Ok(LogFormat::Journald));
        assert!("xml".parse::<LogFormat>().is_err());
        assert!(matches!(parse_filter("info,foo=nonsense"), Err(LogError::BadFilter { .. })));
    }
}
