//! Rampart's configuration files read with their positions: a TOML document ([`Doc`]) whose
//! every accessor either returns a typed value or a [`ConfError`] naming the file, line and
//! column of the offending key or value and why; unknown keys are refused
//! ([`Doc::check_keys`]). The one error type of every configuration reader (the IKE daemon's,
//! the data plane's, `rampart run`'s), which read their tables through it.
//!
//! Never prints a value (a value may be a secret): errors name keys and describe the problem.
//! Reads the text it is given (or one whole file, [`read_file`]); opens no socket or thread.
#![forbid(unsafe_code)]

use core::fmt;
use std::ops::{Range, RangeInclusive};
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

/// Reads a configuration file whole; an error names the file (line 0: the file as a whole).
pub fn read_file(path: &Path) -> Result<String, ConfError> {
    std::fs::read_to_string(path).map_err(|e| ConfError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        reason: format!("cannot read: {e}"),
    })
}

/// Where a reader's table sits in its document: the whole file (`rampart dataplane`'s), or one
/// table of a larger file (`[dataplane]` of `rampart run`'s). Messages name tables the way the
/// file writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Section<'a> {
    /// The document's top level.
    Root,
    /// The table `name` of the top level; `key` is the span of its name (where an error about
    /// what the table lacks points).
    Table {
        /// The table's key at the top level.
        name: &'a str,
        /// Where that key is written.
        key: Range<usize>,
    },
}

impl Section<'_> {
    /// A sub-table as a header writes it: `lan`, or `dataplane.lan`.
    pub fn table(&self, sub: &str) -> String {
        match self {
            Section::Root => sub.to_string(),
            Section::Table { name, .. } => format!("{name}.{sub}"),
        }
    }

    /// What [`Doc::check_keys`] calls this section: `top level`, or the table's name.
    pub fn what(&self) -> &str {
        match self {
            Section::Root => "top level",
            Section::Table { name, .. } => name,
        }
    }

    /// An error about something the section lacks: at the table's name, or (top level) about
    /// the file as a whole.
    pub fn missing(&self, doc: &Doc<'_>, reason: impl Into<String>) -> ConfError {
        match self {
            Section::Root => doc.file_err(reason),
            Section::Table { key, .. } => doc.err(key, reason),
        }
    }
}

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

    /// An error about the file as a whole (something it lacks), with no position.
    pub fn file_err(&self, reason: impl Into<String>) -> ConfError {
        ConfError { file: self.file.to_path_buf(), line: 0, column: 0, reason: reason.into() }
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

/// `a`, `a or b`, `a, b or c`.
fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
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

    /// `true` or `false`.
    pub fn boolean(&self, key: &str, v: &Value<'_>) -> Result<bool, ConfError> {
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            other => Err(self.err(&v.span(), format!("'{key}' must be true or false, not {}", kind(other)))),
        }
    }

    /// A non-negative integer, as the type the reader keeps it in.
    pub fn unsigned<T: TryFrom<i64>>(&self, key: &str, v: &Value<'_>) -> Result<T, ConfError> {
        let n = self.integer(key, v)?;
        if n < 0 {
            return Err(self.err(&v.span(), format!("'{key}' must not be negative")));
        }
        T::try_from(n).map_err(|_| self.err(&v.span(), format!("'{key}' is too large")))
    }

    /// An integer within `range`, as the type the reader keeps it in.
    pub fn integer_in<T: TryFrom<i64>>(
        &self,
        key: &str,
        v: &Value<'_>,
        range: RangeInclusive<i64>,
    ) -> Result<T, ConfError> {
        let n = self.integer(key, v)?;
        range.contains(&n).then(|| T::try_from(n).ok()).flatten().ok_or_else(|| {
            self.err(&v.span(), format!("'{key}' must be between {} and {}", range.start(), range.end()))
        })
    }

    /// One of a few words (`xdp_mode = "native"`); the message lists them and does not repeat
    /// what was written.
    pub fn keyword<'k>(&self, key: &str, v: &Value<'_>, words: &[&'k str]) -> Result<&'k str, ConfError> {
        let s = self.string(key, v)?;
        words
            .iter()
            .find(|w| **w == s)
            .copied()
            .ok_or_else(|| self.err(&v.span(), format!("'{key}' must be {}", one_of(words))))
    }

    /// An array's items.
    pub fn array<'t, 'i>(&self, key: &str, v: &'t Value<'i>) -> Result<&'t [Value<'i>], ConfError> {
        match v.get_ref() {
            DeValue::Array(items) => Ok(items),
            other => Err(self.err(&v.span(), format!("'{key}' must be an array, not {}", kind(other)))),
        }
    }

    /// `true`/`false`, or swanctl.conf's `yes`/`no`.
    pub fn yes_no(&self, key: &str, v: &Value<'_>) -> Result<bool, ConfError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "top = 1\n[t]\nname = \"été\"\nmode = \"fast\"\nflag = \"yes\"\nn = 70000\nlist = [1, \"x\"]\n";

    fn with<R>(f: impl FnOnce(&mut Doc<'_>, &DeTable<'_>) -> R) -> R {
        let mut doc = Doc::new(Path::new("f.toml"), TEXT);
        let root = doc.parse().unwrap();
        let (_, t) = get(root.get_ref(), "t").unwrap();
        let t = doc.table("t", t).unwrap().clone();
        f(&mut doc, &t)
    }

    #[test]
    fn errors_carry_line_and_column_in_characters() {
        with(|doc, t| {
            let (_, v) = get(t, "mode").unwrap();
            let e = doc.keyword("mode", v, &["native", "generic"]).unwrap_err();
            assert_eq!(e.to_string(), "f.toml:4:8: 'mode' must be native or generic");
            assert!(!e.reason.contains("fast"), "the value is not repeated");
            // Columns count characters, not bytes.
            let (_, v) = get(t, "name").unwrap();
            let e = doc.integer("name", v).unwrap_err();
            assert_eq!((e.line, e.column), (3, 8));
        });
    }

    #[test]
    fn typed_accessors_refuse_with_the_reason() {
        with(|doc, t| {
            let (_, v) = get(t, "flag").unwrap();
            assert!(doc.boolean("flag", v).unwrap_err().reason.contains("true or false"));
            assert!(doc.yes_no("flag", v).unwrap());
            let (_, v) = get(t, "n").unwrap();
            let e = doc.integer_in::<u16>("n", v, 0..=65535).unwrap_err();
            assert_eq!(e.reason, "'n' must be between 0 and 65535");
            assert_eq!(doc.integer_in::<u32>("n", v, 0..=100_000).unwrap(), 70000);
            let (_, v) = get(t, "list").unwrap();
            let items = doc.array("list", v).unwrap();
            assert_eq!(items.len(), 2);
            let e = doc.integer("list", &items[1]).unwrap_err();
            assert_eq!((e.line, e.column), (7, 12));
        });
    }

    #[test]
    fn unknown_keys_are_errors_and_ignored_ones_warnings() {
        with(|doc, t| {
            let e = doc.check_keys("t", t, &["name", "mode", "flag", "n"], &[]).unwrap_err();
            assert!(e.to_string().starts_with("f.toml:7:1: t: unknown key 'list' (known: name, mode"), "{e}");
            assert!(doc.warnings.is_empty());
            let ok = doc.check_keys("t", t, &["name", "mode", "flag", "n"], &["list"]);
            assert!(ok.is_ok());
            assert_eq!(
                doc.warnings,
                vec!["f.toml:7:1: t: 'list' is not supported by Rampart and is ignored".to_string()]
            );
            let e = doc.check_keys("t", t, &["name"], &[]).unwrap_err();
            assert_eq!(e.to_string(), "f.toml:4:1: t: unknown key 'mode' (known: name)");
        });
    }

    #[test]
    fn syntax_errors_have_a_position_and_sections_name_their_tables() {
        let doc = Doc::new(Path::new("bad.toml"), "a = 1\nb = [1,\n");
        let e = doc.parse().unwrap_err();
        assert!(e.line >= 2 && e.column >= 1 && e.reason.starts_with("invalid TOML"), "{e}");
        let s = Section::Table { name: "dataplane", key: 6..15 };
        assert_eq!((s.table("lan"), s.what()), ("dataplane.lan".to_string(), "dataplane"));
        assert_eq!(s.missing(&doc, "x").line, 2);
        assert_eq!(Section::Root.missing(&doc, "x").to_string(), "bad.toml: x");
        assert_eq!(Section::Root.table("lan"), "lan");
    }
}
