//! Traffic selector narrowing (RFC 7296 section 2.9): the intersection of what the initiator
//! proposes with what the responder's policy allows.
//!
//! Pure functions over selectors; no state.

use std::net::IpAddr;

use rampart_esp::TrafficSelector;

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
