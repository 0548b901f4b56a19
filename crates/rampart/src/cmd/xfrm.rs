//! The pieces of the `ip xfrm` argument grammar that `rampart sa` and `rampart policy` share:
//! a token cursor, numbers, addresses, prefixes, keys, protocols and the selector clause
//! (`src ADDR[/PLEN] dst ADDR[/PLEN] [proto P [sport N] [dport N] | [type N] [code N]]`).
//!
//! Every error names the word that is wrong and the keyword it belongs to. Key material never
//! appears in an error.

use core::fmt;
use std::net::IpAddr;

use rampart_crypto::PolicyError;
use rampart_sadb::{IpPrefix, PortRange};
use zeroize::Zeroizing;

/// What is wrong with the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// A keyword at the end without its value.
    Missing {
        /// The keyword.
        after: String,
        /// What was expected.
        what: &'static str,
    },
    /// A value that does not parse.
    Bad {
        /// The keyword it belongs to.
        after: String,
        /// The word.
        word: String,
        /// Why.
        why: String,
    },
    /// A word that is no keyword here.
    Unknown {
        /// The word.
        word: String,
        /// The command.
        context: &'static str,
        /// The keywords that would have been accepted.
        expected: &'static str,
    },
    /// A known `ip xfrm` word that Rampart does not implement.
    Unsupported {
        /// The word.
        word: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// A required keyword is absent.
    Required {
        /// The keyword and what it gives.
        what: &'static str,
    },
    /// A keyword given twice.
    Duplicate {
        /// The keyword.
        word: String,
    },
    /// An algorithm refused by the policy (RFC 8221).
    Policy {
        /// The keyword (`enc`, `auth`, `aead`...).
        after: String,
        /// The algorithm as given.
        word: String,
        /// The policy's reason.
        err: PolicyError,
    },
    /// Something inconsistent between words.
    Invalid(String),
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::Missing { after, what } => write!(f, "'{after}' needs a value: {what}"),
            ArgError::Bad { after, word, why } => write!(f, "{after} '{word}': {why}"),
            ArgError::Unknown { word, context, expected } => {
                write!(f, "unknown word '{word}' in '{context}' (expected one of: {expected})")
            }
            ArgError::Unsupported { word, why } => write!(f, "'{word}' is not supported: {why}"),
            ArgError::Required { what } => write!(f, "missing {what}"),
            ArgError::Duplicate { word } => write!(f, "'{word}' given twice"),
            ArgError::Policy { after, word, err } => write!(f, "{after} '{word}': {err}"),
            ArgError::Invalid(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for ArgError {}

/// A cursor over the words of a command line.
pub struct Tokens<'a> {
    words: &'a [String],
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub fn new(words: &'a [String]) -> Tokens<'a> {
        Tokens { words, pos: 0 }
    }

    pub fn next_word(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.pos)?;
        self.pos += 1;
        Some(w)
    }

    pub fn peek(&self) -> Option<&'a str> {
        self.words.get(self.pos).map(String::as_str)
    }

    /// The value after keyword `after`.
    pub fn value(&mut self, after: &str, what: &'static str) -> Result<&'a str, ArgError> {
        self.next_word().ok_or_else(|| ArgError::Missing { after: after.to_string(), what })
    }
}

fn bad(after: &str, word: &str, why: impl Into<String>) -> ArgError {
    ArgError::Bad { after: after.to_string(), word: word.to_string(), why: why.into() }
}

/// `word`, the value after keyword `after`, as one of two `choices`; anything else is refused
/// with "expected 'a' or 'b'" (the choices in the order given).
pub fn choice<T: Copy>(after: &str, word: &str, choices: [(&str, T); 2]) -> Result<T, ArgError> {
    match choices.iter().find(|(w, _)| *w == word) {
        Some((_, v)) => Ok(*v),
        None => Err(bad(after, word, format!("expected '{}' or '{}'", choices[0].0, choices[1].0))),
    }
}

/// Sets `slot` once; a second time is an error naming `word`.
pub fn once<T>(slot: &mut Option<T>, word: &str, value: T) -> Result<(), ArgError> {
    if slot.is_some() {
        return Err(ArgError::Duplicate { word: word.to_string() });
    }
    *slot = Some(value);
    Ok(())
}

/// A number, decimal or `0x` hexadecimal.
pub fn number(after: &str, word: &str) -> Result<u64, ArgError> {
    let parsed = match word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse::<u64>(),
    };
    parsed.map_err(|_| bad(after, word, "not a number"))
}

/// A number that fits 32 bits.
pub fn number32(after: &str, word: &str) -> Result<u32, ArgError> {
    u32::try_from(number(after, word)?).map_err(|_| bad(after, word, "larger than 32 bits"))
}

/// An IP address.
pub fn address(after: &str, word: &str) -> Result<IpAddr, ArgError> {
    word.parse().map_err(|_| bad(after, word, "not an IP address"))
}

/// `ADDR` or `ADDR/PLEN` (host bits are cleared).
pub fn prefix(after: &str, word: &str) -> Result<IpPrefix, ArgError> {
    match word.split_once('/') {
        None => Ok(IpPrefix::host(address(after, word)?)),
        Some((a, l)) => {
            let addr = address(after, a).map_err(|_| bad(after, word, "not an address or prefix"))?;
            let len: u8 = l.parse().map_err(|_| bad(after, word, "prefix length is not a number"))?;
            IpPrefix::new(addr, len).map_err(|e| bad(after, word, e.to_string()))
        }
    }
}

/// `ADDR`, `ADDR/PLEN` or `ADDR-ADDR` (a Rampart extension: IKEv2 selectors are ranges) as
/// (first, last).
pub fn range(after: &str, word: &str) -> Result<(IpAddr, IpAddr), ArgError> {
    if let Some((a, b)) = word.split_once('-') {
        let (a, b) = (address(after, a)?, address(after, b)?);
        if a.is_ipv4() != b.is_ipv4() || a > b {
            return Err(bad(after, word, "not a range of one family, first to last"));
        }
        return Ok((a, b));
    }
    let p = prefix(after, word)?;
    let ts = rampart_esp::TrafficSelector::from_prefix(p.addr(), p.len());
    Ok((ts.start, ts.end))
}

/// Formats a range as `ADDR/PLEN` when it is a prefix, `ADDR-ADDR` otherwise.
pub fn format_range(start: IpAddr, end: IpAddr) -> String {
    let (s, e, bits) = match (start, end) {
        (IpAddr::V4(s), IpAddr::V4(e)) => (u128::from(u32::from(s)), u128::from(u32::from(e)), 32u32),
        (IpAddr::V6(s), IpAddr::V6(e)) => (u128::from(s), u128::from(e), 128u32),
        _ => return format!("{start}-{end}"),
    };
    let host = s ^ e;
    // A prefix: start and end differ in a run of low bits, all zero in start and one in end.
    if host.count_ones() == host.trailing_ones() && s & host == 0 {
        return format!("{start}/{}", bits - host.trailing_ones());
    }
    format!("{start}-{end}")
}

/// Key material: `0x` and an even number of hex digits, or a string taken as bytes (as `ip
/// xfrm` does); `""` for no key.
pub fn key(after: &str, word: &str) -> Result<Zeroizing<Vec<u8>>, ArgError> {
    let Some(hex) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) else {
        return Ok(Zeroizing::new(word.as_bytes().to_vec()));
    };
    // Never echo key material in an error.
    let redacted = || format!("0x<{} hex digits>", hex.len());
    if hex.len() % 2 != 0 {
        return Err(bad(after, &redacted(), "odd number of hex digits"));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
    for pair in hex.as_bytes().chunks(2) {
        let s = core::str::from_utf8(pair).map_err(|_| bad(after, &redacted(), "not hexadecimal"))?;
        out.push(u8::from_str_radix(s, 16).map_err(|_| bad(after, &redacted(), "not hexadecimal"))?);
    }
    Ok(out)
}

/// Writes a key as `0x` hex.
pub fn format_key(k: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * k.len());
    s.push_str("0x");
    for b in k {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// An IP protocol by name or number; `any` is 0.
pub fn protocol(after: &str, word: &str) -> Result<u8, ArgError> {
    Ok(match word {
        "any" => 0,
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "dccp" => 33,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "ipv6-icmp" | "icmpv6" => 58,
        "sctp" => 132,
        other => other.parse::<u8>().map_err(|_| bad(after, word, "not a protocol name or number"))?,
    })
}

/// The name of a protocol number, as [`protocol`] reads it.
pub fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        33 => "dccp".into(),
        47 => "gre".into(),
        58 => "ipv6-icmp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// A port `N`, or a range `N-M` (a Rampart extension).
pub fn ports(after: &str, word: &str) -> Result<PortRange, ArgError> {
    let one = |w: &str| w.parse::<u16>().map_err(|_| bad(after, word, "not a port number (0-65535)"));
    match word.split_once('-') {
        Some((a, b)) => {
            let r = PortRange { lo: one(a)?, hi: one(b)? };
            if r.lo > r.hi {
                return Err(bad(after, word, "empty port range"));
            }
            Ok(r)
        }
        None => Ok(PortRange::single(one(word)?)),
    }
}

/// Writes a port range as [`ports`] reads it.
pub fn format_ports(r: PortRange) -> String {
    if r.lo == r.hi { r.lo.to_string() } else { format!("{}-{}", r.lo, r.hi) }
}

/// A selector clause as written (addresses still raw).
#[derive(Debug, Default)]
pub struct SelectorWords<'a> {
    pub src: Option<&'a str>,
    pub dst: Option<&'a str>,
    pub proto: Option<u8>,
    pub sport: Option<PortRange>,
    pub dport: Option<PortRange>,
}

/// Reads `src`, `dst`, `proto` and its port words while they come; stops at the first other
/// word (left for the caller). `dev` is refused.
pub fn selector<'a>(t: &mut Tokens<'a>, context: &'static str) -> Result<SelectorWords<'a>, ArgError> {
    let mut s = SelectorWords::default();
    while let Some(w) = t.peek() {
        match w {
            "src" => {
                t.next_word();
                once(&mut s.src, w, t.value(w, "an address or prefix")?)?;
            }
            "dst" => {
                t.next_word();
                once(&mut s.dst, w, t.value(w, "an address or prefix")?)?;
            }
            "proto" => {
                t.next_word();
                let p = protocol(w, t.value(w, "a protocol (tcp, udp, icmp, ipv6-icmp, a number)")?)?;
                once(&mut s.proto, w, p)?;
            }
            "sport" | "dport" | "type" | "code" => {
                t.next_word();
                let Some(p) = s.proto else {
                    return Err(ArgError::Invalid(format!("'{w}' in '{context}' needs 'proto' before it")));
                };
                let with_ports = matches!(p, 6 | 17 | 33 | 132);
                let icmp = matches!(p, 1 | 58);
                let ok = match w {
                    "sport" | "dport" => with_ports,
                    _ => icmp,
                };
                if !ok {
                    return Err(ArgError::Invalid(format!("'{w}' does not go with proto {}", protocol_name(p))));
                }
                let r = ports(w, t.value(w, "a number")?)?;
                // ICMP type and code travel in the port fields, as in xfrm.
                match w {
                    "sport" | "type" => once(&mut s.sport, w, r)?,
                    _ => once(&mut s.dport, w, r)?,
                }
            }
            "dev" => {
                return Err(ArgError::Unsupported {
                    word: w.to_string(),
                    why: "selectors by interface are not supported".into(),
                });
            }
            _ => break,
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_takes_one_of_two_words_and_names_both_otherwise() {
        assert_eq!(choice("dir", "out", [("in", 1), ("out", 2)]), Ok(2));
        assert_eq!(choice("dir", "in", [("in", 1), ("out", 2)]), Ok(1));
        let e = choice("dir", "fwd", [("in", 1), ("out", 2)]).unwrap_err();
        assert_eq!(e.to_string(), "dir 'fwd': expected 'in' or 'out'");
        assert!(choice("mode", "Tunnel", [("tunnel", 1), ("transport", 2)]).is_err(), "words are exact");
    }

    #[test]
    fn numbers_addresses_keys_ranges() {
        assert_eq!(number("spi", "0x1000"), Ok(0x1000));
        assert_eq!(number("spi", "4096"), Ok(4096));
        assert!(number32("spi", "0x100000000").is_err());
        assert_eq!(number("spi", "0xZZ").unwrap_err().to_string(), "spi '0xZZ': not a number");
        assert_eq!(prefix("src", "10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(prefix("src", "10.0.0.0/33").unwrap_err().to_string().contains("src '10.0.0.0/33'"));
        assert_eq!(*key("enc", "0x00ff").unwrap(), vec![0, 255]);
        assert_eq!(*key("enc", "").unwrap(), Vec::<u8>::new());
        let e = key("enc", "0x0123456789abcdeg").unwrap_err().to_string();
        assert!(!e.contains("0123456789"), "{e}");
        for (s, e, f) in [
            ("10.0.0.0", "10.0.0.255", "10.0.0.0/24"),
            ("10.0.0.1", "10.0.0.9", "10.0.0.1-10.0.0.9"),
            ("0.0.0.0", "255.255.255.255", "0.0.0.0/0"),
            ("2001:db8::", "2001:db8::ffff", "2001:db8::/112"),
            ("1.2.3.4", "1.2.3.4", "1.2.3.4/32"),
        ] {
            let (s, e): (IpAddr, IpAddr) = (s.parse().unwrap(), e.parse().unwrap());
            assert_eq!(format_range(s, e), f);
            assert_eq!(range("sel", f).unwrap(), (s, e));
        }
    }

    #[test]
    fn selector_clause() {
        let words: Vec<String> =
            "src 10.0.0.0/8 proto tcp dport 443 sport 1-1023 dir".split(' ').map(String::from).collect();
        let mut t = Tokens::new(&words);
        let s = selector(&mut t, "test").unwrap();
        assert_eq!((s.src, s.dst, s.proto), (Some("10.0.0.0/8"), None, Some(6)));
        assert_eq!(s.dport, Some(PortRange::single(443)));
        assert_eq!(s.sport, Some(PortRange { lo: 1, hi: 1023 }));
        assert_eq!(t.peek(), Some("dir"));
        let words: Vec<String> = "sport 5".split(' ').map(String::from).collect();
        assert!(selector(&mut Tokens::new(&words), "x").is_err());
        let words: Vec<String> = "proto icmp type 8 code 0".split(' ').map(String::from).collect();
        let s = selector(&mut Tokens::new(&words), "x").unwrap();
        assert_eq!((s.sport, s.dport), (Some(PortRange::single(8)), Some(PortRange::single(0))));
    }
}
