//! Identities beyond their bytes: distinguished names as swanctl.conf writes them
//! (`"C=DE, O=Example, CN=gw"`, in ASN.1 order) and as ID_DER_ASN1_DN carries them (DER), and the
//! wildcards of a template connection's `remote.id` (`*.branch.example.net`, `CN=*`).
//!
//! Works on bytes and strings only (the IDi/IDr payload type sits above it in `message`); the
//! DER is read and written by the `x509-cert` crate, never by a parser of our own.

use core::str::FromStr;

use der::{Decode, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::RdnSequence;

/// A distinguished name from its swanctl.conf text (`C=DE, O=Example, CN=gw`: the first
/// attribute is the outermost, as strongSwan writes it; `,` or `/` between them), as DER.
pub fn dn_from_text(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().trim_start_matches('/');
    let sep = if s.contains(',') { ',' } else { '/' };
    let parts: Vec<String> = split_unescaped(s, sep).into_iter().map(|p| p.trim().to_string()).collect();
    if parts.is_empty() || parts.iter().any(|p| !p.contains('=')) {
        return None;
    }
    // RFC 4514 writes the last RDN first; x509-cert's parser follows RFC 4514.
    let rfc4514: Vec<String> = parts.iter().rev().map(|p| normalise_attr(p)).collect();
    RdnSequence::from_str(&rfc4514.join(",")).ok()?.to_der().ok()
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// strongSwan's attribute names as RFC 4514 / x509-cert know them.
fn normalise_attr(p: &str) -> String {
    let Some((k, v)) = p.split_once('=') else { return p.to_string() };
    let key = match k.trim() {
        "E" | "Email" | "email" | "emailAddress" => "emailAddress",
        "SN" | "serialNumber" => "serialNumber",
        "S" | "ST" => "ST",
        other => other,
    };
    format!("{key}={}", v.trim())
}

/// The text of a DER distinguished name in strongSwan's order (`C=DE, O=Example, CN=gw`).
pub fn dn_text(der: &[u8]) -> Option<String> {
    let seq = RdnSequence::from_der(der).ok()?;
    let mut out = Vec::new();
    for rdn in seq.iter() {
        for atv in rdn.iter() {
            // x509-cert prints one attribute in RFC 4514 form ("CN=gw"); the order is ours.
            out.push(atv.to_string());
        }
    }
    Some(out.join(", "))
}

fn atv_value(atv: &AttributeTypeAndValue) -> Option<String> {
    let v = &atv.value;
    match v.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString | Tag::VisibleString => {
            Some(String::from_utf8_lossy(v.value()).into_owned())
        }
        _ => None,
    }
}

/// Whether DER distinguished name `der` matches `pattern` (also DER): the same attributes in the
/// same order, values equal (ASCII case aside), a value `*` in the pattern matching any value.
pub fn dn_matches(pattern: &[u8], der: &[u8]) -> bool {
    let (Ok(p), Ok(d)) = (RdnSequence::from_der(pattern), RdnSequence::from_der(der)) else { return false };
    let pa: Vec<&AttributeTypeAndValue> = p.iter().flat_map(|r| r.iter()).collect();
    let da: Vec<&AttributeTypeAndValue> = d.iter().flat_map(|r| r.iter()).collect();
    pa.len() == da.len()
        && pa.iter().zip(da.iter()).all(|(a, b)| {
            a.oid == b.oid
                && match (atv_value(a), atv_value(b)) {
                    (Some(x), _) if x == "*" => true,
                    (Some(x), Some(y)) => x.eq_ignore_ascii_case(&y),
                    _ => a.value.to_der().ok() == b.value.to_der().ok(),
                }
        })
}

/// Whether a DER distinguished name has a wildcard value (`CN=*`).
pub fn dn_has_wildcard(der: &[u8]) -> bool {
    RdnSequence::from_der(der)
        .is_ok_and(|d| d.iter().flat_map(|r| r.iter()).any(|a| atv_value(a).as_deref() == Some("*")))
}

/// Whether `name` (an FQDN or an RFC 822 address) matches `pattern`: equal ignoring ASCII case,
/// or, for a pattern starting with `*`, ending in the rest of the pattern after at least one
/// character (`*.branch.example.net` matches `b17.branch.example.net`; `*` matches every name).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(rest) => {
            name.len() > rest.len()
                && name.get(name.len() - rest.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(rest))
        }
        None => pattern.eq_ignore_ascii_case(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_round_trip_in_strongswan_order() {
        let der = dn_from_text("C=DE, O=Example, CN=gw.example.net").expect("parses");
        assert_eq!(dn_text(&der).as_deref(), Some("C=DE, O=Example, CN=gw.example.net"));
        let slash = dn_from_text("/C=DE/O=Example/CN=gw.example.net").expect("parses");
        assert!(dn_matches(&der, &slash));
    }

    #[test]
    fn dn_wildcards_and_mismatches() {
        let pattern = dn_from_text("C=DE, O=Example, CN=*").unwrap();
        assert!(dn_has_wildcard(&pattern));
        assert!(dn_matches(&pattern, &dn_from_text("C=DE, O=Example, CN=branch-17").unwrap()));
        assert!(!dn_matches(&pattern, &dn_from_text("C=DE, O=Other, CN=branch-17").unwrap()));
        assert!(!dn_matches(&pattern, &dn_from_text("C=DE, CN=branch-17").unwrap()));
        assert!(!dn_matches(&pattern, &dn_from_text("O=Example, C=DE, CN=branch-17").unwrap()));
        assert!(dn_from_text("not a dn").is_none());
    }

    #[test]
    fn name_wildcards() {
        assert!(name_matches("*.branch.example.net", "b1.branch.example.net"));
        assert!(name_matches("*.branch.example.net", "B1.Branch.Example.NET"));
        assert!(!name_matches("*.branch.example.net", ".branch.example.net"));
        assert!(!name_matches("*.branch.example.net", "branch.example.net"));
        assert!(!name_matches("*.branch.example.net", "b1.branch.example.org"));
        assert!(name_matches("*", "anything"));
        assert!(name_matches("gw.example.net", "GW.example.net"));
    }
}
