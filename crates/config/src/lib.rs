//! Rampart's configuration files read with their positions: a TOML document ([`Doc`]) whose
//! every accessor either returns a typed value or a [`ConfError`] naming the file, line and
//! column of the offending key or value and why; unknown keys are refused
//! ([`Doc::check_keys`]). The one error type of every configuration reader (the IKE daemon's,
//! the data plane's, `rampart run`'s), which read their tables through it.
//!
//! Never prints a value (a value may be a secret): errors name keys and describe the problem.
//! Reads text it is given; opens no file, socket or thread.
#![forbid(unsafe_code)]

use core::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use toml::Spanned;
pub use toml::de::{DeTable, DeValue};

/// A configuration that cannot be used: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    /// The file.
    pub file: PathBuf,
    /// Line, from 1 (0: the file as a whole).
    pub line: usize,
    /// Column, from 1 (0: the file as a whole).
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.reason)
        }
    }
}

impl std::error::Error for ConfError {}

/// A parsed TOML document with its file name, for positioned errors and warnings.
pub struct Doc<'a> {
    /// The file's name, as errors and warnings show it.
    pub file: &'a Path,
    /// The whole text (spans index into it).
    pub text: &'a str,
    /// Warnings so far, as `file:line:column: message`.
    pub warnings: Vec<String>,
}

/// A spanned value of the document.
pub type Value<'i> = Spanned<DeValue<'i>>;

impl<'a> Doc<'a> {
    /// A document over `text`, named `file` in errors.
    pub fn new(file: &'a Path, text: &'a str) -> Doc<'a> {
        Doc { file, text, warnings: Vec::new() }
    }

    /// Line and column (from 1) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    /// An error at `span`.
    pub fn err(&self, span: &Range<usize>, reason: impl Into<String>) -> ConfError {
        let (line, column) = self.position(span.start);
        ConfError { file: self.file.to_path_buf(), line, column, reason: reason.into() }
    }

    /// A warning at `span` (kept for the log).
    pub fn warn(&mut self, span: &Range<usize>, msg: impl fmt::Display) {
        let (line, column) = self.position(span.start);
        self.warnings.push(format!("{}:{line}:{column}: {msg}", self.file.display()));
    }

    /// Parses the whole text into a table.
    pub fn parse(&self) -> Result<Spanned<DeTable<'a>>, ConfError> {
        DeTable::parse(self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            // The parser's message is about syntax (never echoes a value back at length).
            let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            self.err(&span, format!("invalid TOML: {msg}"))
        })
    }

    /// Refuses keys not in `known`; keys in `ignored` (swanctl.conf keys Rampart does not
    /// implement) are accepted with a warning so that carried-over files load.
    pub fn check_keys(
        &mut self,
        what: &str,
        t: &DeTable<'_>,
        known: &[&str],
        ignored: &[&str],
    ) -> Result<(), ConfError> {
        for (k, _) in t.iter() {
            let name: &str = k.get_ref();
            if known.contains(&name) {
                continue;
            }
            if ignored.contains(&name) {
                self.warn(&k.span(), format_args!("{what}: '{name}' is not supported by Rampart and is ignored"));
                continue;
            }
            let hint = if known.is_empty() { String::new() } else { format!(" (known: {})", known.join(", ")) };
            return Err(self.err(&k.span(), format!("{what}: unknown key '{name}'{hint}")));
        }
        Ok(())
    }
}

/// Looks a key up in a table: its key span and value.
pub fn get<'t, 'i>(t: &'t DeTable<'i>, key: &str) -> Option<(Range<usize>, &'t Value<'i>)> {
    t.iter().find(|(k, _)| k.get_ref().as_ref() == key).map(|(k, v)| (k.span(), v))
}

/// The kind of a value, for messages.
fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Doc<'_> {
    /// A table value.
    pub fn table<'t, 'i>(&self, key: &str, v: &'t Value<'i>) -> Result<&'t DeTable<'i>, ConfError> {
        match v.get_ref() {
            DeValue::Table(t) => Ok(t),
            other => Err(self.err(&v.span(), format!("'{key}' must be a table, not {}", kind(other)))),
        }
    }

    /// A string value.
    pub fn string<'t>(&self, key: &str, v: &'t Value<'_>) -> Result<&'t str, ConfError> {
        match v.get_ref() {
            DeValue::String(s) => Ok(s.as_ref()),
            other => Err(self.err(&v.span(), format!("'{key}' must be a string, not {}", kind(other)))),
        }
    }

    /// An integer value that fits `i64`.
    pub fn integer(&self, key: &str, v: &Value<'_>) -> Result<i64, ConfError> {
        match v.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| self.err(&v.span(), format!("'{key}' is out of range"))),
            other => Err(self.err(&v.span(), format!("'{key}' must be an integer, not {}", kind(other)))),
        }
    }

    /// A non-negative integer that fits `u64`, written as a number or a string (swanctl's
    /// byte and packet counts may carry a k/m/g suffix: 1000-based for packets, 1024 for bytes
    /// in strongSwan; Rampart takes them as powers of 1024 for both).
    pub fn count(&self, key: &str, v: &Value<'_>) -> Result<u64, ConfError> {
        match v.get_ref() {
            DeValue::String(s) => {
                let s = s.trim();
                let (num, mult) = match s.char_indices().last() {
                    Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
                    Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
                    Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
                    _ => (s, 1),
                };
                num.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| {
                    self.err(&v.span(), format!("'{key}' must be a count such as 1000, \"64k\" or \"2g\""))
                })
            }
            _ => {
                let n = self.integer(key, v)?;
                u64::try_from(n).map_err(|_| self.err(&v.span(), format!("'{key}' must not be negative")))
            }
        }
    }

    /// An integer in 0..=65535 (a port).
    pub fn u16(&self, key: &str, v: &Value<'_>) -> Result<u16, ConfError> {
        let n = self.integer(key, v)?;
        u16::try_from(n).map_err(|_| self.err(&v.span(), format!("'{key}' must be between 0 and 65535")))
    }

    /// `true`/`false`, or swanctl.conf's `yes`/`no`.
    pub fn boolean(&self, key: &str, v: &Value<'_>) -> Result<bool, ConfError> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            // swanctl.conf writes yes/no.
            DeValue::String(s) if s == "yes" => Ok(true),
            DeValue::String(s) if s == "no" => Ok(false),
            other => Err(self.err(&v.span(), format!("'{key}' must be true/false (or yes/no), not {}", kind(other)))),
        }
    }

    /// A list as swanctl.conf writes it (`"a, b"`) or as a TOML array of strings; each item
    /// with the span of the value it came from.
    pub fn list(&self, key: &str, v: &Value<'_>) -> Result<Vec<(String, Range<usize>)>, ConfError> {
        match v.get_ref() {
            DeValue::String(s) => {
                Ok(s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| (x.to_string(), v.span())).collect())
            }
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.extend(
                            s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| (x.to_string(), item.span())),
                        ),
                        other => {
                            return Err(
                                self.err(&item.span(), format!("'{key}' must list strings, found {}", kind(other)))
                            );
                        }
                    }
                }
                Ok(out)
            }
            other => {
                Err(self
                    .err(&v.span(), format!("'{key}' must be a string or an array of strings, not {}", kind(other))))
            }
        }
    }

    /// A duration as swanctl.conf writes it: seconds as a number, or a number with `s`, `m`,
    /// `h` or `d`.
    pub fn duration(&self, key: &str, v: &Value<'_>) -> Result<Duration, ConfError> {
        let bad = || {
            self.err(
                &v.span(),
                format!("'{key}' must be a duration such as 30, \"30s\", \"250ms\", \"5m\", \"1h\" or \"1d\""),
            )
        };
        match v.get_ref() {
            DeValue::Integer(_) => {
                let n = self.integer(key, v)?;
                u64::try_from(n).map(Duration::from_secs).map_err(|_| bad())
            }
            DeValue::String(s) => parse_duration(s).ok_or_else(bad),
            _ => Err(bad()),
        }
    }
}

/// `30`, `30s`, `5m`, `1h`, `1d`, `250ms` (fractions allowed: `1.5h`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        let n: f64 = ms.trim().parse().ok()?;
        return (0.0..1e15).contains(&n).then(|| Duration::from_secs_f64(n / 1000.0));
    }
    let (num, unit) = match s.char_indices().last()? {
        (i, c @ ('s' | 'm' | 'h' | 'd')) => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: f64 = num.trim().parse().ok()?;
    let mult = match unit {
        's' => 1.0,
        'm' => 60.0,
        'h' => 3600.0,
        _ => 86400.0,
    };
    let secs = n * mult;
    (0.0..1e12).contains(&secs).then(|| Duration::from_secs_f64(secs))
}
