//! A strict parser of the Prometheus text format 0.0.4, written for the tests (not the encoder
//! the crate writes with), shared by every test that scrapes a Rampart metrics endpoint:
//! `#[path = ".../crates/telemetry/tests/support/exposition.rs"] mod exposition;`.
//! It panics on anything malformed, naming the line; it never reads a file or a socket.

#![allow(dead_code)]

use std::collections::BTreeMap;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub help: BTreeMap<String, String>,
    pub types: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

/// Parses the text format 0.0.4 strictly: every line is a comment, a HELP, a TYPE or a sample;
/// a TYPE comes before the family's samples; label values are unescaped.
pub fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for (n, line) in text.lines().enumerate() {
        let ctx = || format!("line {}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
            assert!(e.help.insert(name.into(), help.replace("\\n", "\n").replace("\\\\", "\\")).is_none(), "{}", ctx());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", ctx()));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty), "{}", ctx());
            assert!(!e.samples.iter().any(|s| family_of(&s.name, ty) == name), "TYPE after samples: {}", ctx());
            assert!(e.types.insert(name.into(), ty.into()).is_none(), "{}", ctx());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {}", ctx());
        let (name_end, mut labels) = match line.find('{') {
            Some(open) => {
                let mut labels = BTreeMap::new();
                let b = line.as_bytes();
                let mut i = open + 1;
                loop {
                    if b[i] == b'}' {
                        i += 1;
                        break;
                    }
                    let eq = line[i..].find('=').unwrap_or_else(|| panic!("{}", ctx())) + i;
                    let key = line[i..eq].to_string();
                    assert_eq!(b[eq + 1], b'"', "{}", ctx());
                    let mut j = eq + 2;
                    let mut val = String::new();
                    while b[j] != b'"' {
                        if b[j] == b'\\' {
                            val.push(match b[j + 1] {
                                b'n' => '\n',
                                b'\\' => '\\',
                                b'"' => '"',
                                other => panic!("bad escape {} {}", other as char, ctx()),
                            });
                            j += 2;
                        } else {
                            let c = line[j..].chars().next().unwrap();
                            val.push(c);
                            j += c.len_utf8();
                        }
                    }
                    assert!(labels.insert(key, val).is_none(), "duplicate label {}", ctx());
                    i = j + 1;
                    if b[i] == b',' {
                        i += 1;
                    }
                }
                (open, (labels, i))
            }
            None => {
                let sp = line.find(' ').unwrap_or_else(|| panic!("{}", ctx()));
                (sp, (BTreeMap::new(), sp))
            }
        };
        let name = line[..name_end].to_string();
        let value_text = line[labels.1..].trim();
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value {}", ctx())),
        };
        e.samples.push(Sample { name, labels: std::mem::take(&mut labels.0), value });
    }
    e
}

/// The family a sample line belongs to, given the family's type.
pub fn family_of<'a>(sample: &'a str, ty: &str) -> &'a str {
    let strip = |suffixes: &[&str]| suffixes.iter().find_map(|s| sample.strip_suffix(s)).unwrap_or(sample);
    match ty {
        "histogram" => strip(&["_bucket", "_sum", "_count"]),
        "summary" => strip(&["_sum", "_count"]),
        _ => sample,
    }
}

/// The value of the sample `name` with exactly these labels.
pub fn value(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    e.samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}
