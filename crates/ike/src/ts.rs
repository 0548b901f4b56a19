//! Traffic selector narrowing (RFC 7296 section 2.9): the intersection of what the initiator
//! proposes with what the responder's policy allows.
//!
//! Pure functions over selectors; no state.

use std::net::IpAddr;

use rampart_sa::TrafficSelector;

fn ip_key(a: IpAddr) -> (u8, u128) {
    match a {
        IpAddr::V4(v) => (4, u128::from(u32::from(v))),
        IpAddr::V6(v) => (6, u128::from(v)),
    }
}

fn ip_from(family: u8, v: u128) -> IpAddr {
    if family == 4 { IpAddr::V4((v as u32).into()) } else { IpAddr::V6(v.into()) }
}

/// The intersection of two selectors, if not empty.
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    let (fa, a0) = ip_key(a.start);
    let (fa_end, a1) = ip_key(a.end);
    let (fb, b0) = ip_key(b.start);
    let (fb_end, b1) = ip_key(b.end);
    if fa != fb || fa != fa_end || fb != fb_end {
        return None;
    }
    let (s, e) = (a0.max(b0), a1.min(b1));
    if s > e {
        return None;
    }
    let protocol = match (a.protocol, b.protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let (ps, pe) = (a.start_port.max(b.start_port), a.end_port.min(b.end_port));
    if ps > pe {
        return None;
    }
    Some(TrafficSelector { protocol, start: ip_from(fa, s), end: ip_from(fa, e), start_port: ps, end_port: pe })
}

/// Narrows the proposed selectors to the configured ones: every non-empty pairwise intersection,
/// duplicates removed. Empty means TS_UNACCEPTABLE.
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.9
//# the responder is allowed to narrow the choices by selecting a subset of the traffic
pub fn narrow(proposed: &[TrafficSelector], configured: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for p in proposed {
        for c in configured {
            if let Some(i) = intersect(p, c)
                && !out.contains(&i)
            {
                out.push(i);
            }
        }
    }
    out
}

/// Whether `inner` lies within `outer`.
pub fn is_subset(inner: &TrafficSelector, outer: &TrafficSelector) -> bool {
    intersect(inner, outer).as_ref() == Some(inner)
}

/// Whether every selector of `narrowed` lies within one of `proposed` (what an initiator checks).
pub fn all_within(narrowed: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !narrowed.is_empty() && narrowed.iter().all(|n| proposed.iter().any(|p| is_subset(n, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> TrafficSelector {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap())
    }

    #[test]
    fn narrowing_intersects_ranges_protocols_and_ports() {
        assert_eq!(narrow(&[p("10.0.0.0/8")], &[p("10.1.0.0/16")]), vec![p("10.1.0.0/16")]);
        assert_eq!(narrow(&[p("10.1.0.0/16")], &[p("10.0.0.0/8")]), vec![p("10.1.0.0/16")]);
        assert!(narrow(&[p("10.0.0.0/8")], &[p("192.168.0.0/16")]).is_empty());
        assert!(narrow(&[p("10.0.0.0/8")], &[p("::/0")]).is_empty(), "families never mix");
        let web = TrafficSelector { protocol: 6, start_port: 443, end_port: 443, ..p("10.0.0.0/8") };
        assert_eq!(narrow(&[p("0.0.0.0/0")], &[web]), vec![web]);
        let udp = TrafficSelector { protocol: 17, ..p("10.0.0.0/8") };
        assert!(narrow(&[web], &[udp]).is_empty());
        // Several configured selectors: every non-empty intersection, once.
        let got = narrow(&[p("10.0.0.0/8"), p("10.0.0.0/8")], &[p("10.1.0.0/16"), p("10.2.0.0/16")]);
        assert_eq!(got, vec![p("10.1.0.0/16"), p("10.2.0.0/16")]);
        // A range that is not a prefix.
        let odd =
            TrafficSelector { start: "10.0.0.5".parse().unwrap(), end: "10.0.1.7".parse().unwrap(), ..p("10.0.0.0/8") };
        let n = narrow(&[odd], &[p("10.0.1.0/24")]);
        assert_eq!((n[0].start, n[0].end), ("10.0.1.0".parse().unwrap(), "10.0.1.7".parse().unwrap()));
    }

    #[test]
    fn subset_checks_refuse_widening() {
        assert!(all_within(&[p("10.1.0.0/16")], &[p("10.0.0.0/8")]));
        assert!(!all_within(&[p("10.0.0.0/8")], &[p("10.1.0.0/16")]));
        assert!(!all_within(&[], &[p("10.0.0.0/8")]));
        assert!(all_within(&[p("2001:db8::/64")], &[p("2001:db8::/32")]));
    }
}
