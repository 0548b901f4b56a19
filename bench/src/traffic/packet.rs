//! The test packets of the traffic benchmark: UDP over IPv4 or IPv6 in Ethernet, whose payload
//! starts with a 16-byte probe (run id, sequence number, send timestamp); templates built once
//! per size, stamped per packet with an incrementally updated UDP checksum; and the sink's
//! parser, which validates every length once and never panics on what arrives.
//!
//! Size convention: a packet size is the length of the **IP packet** (what the tunnel carries,
//! the inner packet after encapsulation); the Ethernet frame on the host link is 14 bytes more.
//! The smallest size is 64 bytes for IPv6 too (40 + 8 + 16).
//!
//! This module must never send anything: it only builds and reads bytes.

use std::net::IpAddr;

/// Bytes of the probe at the start of the UDP payload: run id (u32), sequence number (u32),
/// send timestamp in CLOCK_MONOTONIC nanoseconds (u64), all big-endian.
pub const PROBE_LEN: usize = 16;
/// Ethernet header length (untagged).
pub const ETH_LEN: usize = 14;
/// UDP source port of the generator.
pub const SRC_PORT: u16 = 40_000;
/// UDP destination port the sink counts.
pub const DST_PORT: u16 = 40_001;
/// The largest IP packet the generator builds (the orchestrator picks sizes that fit every
/// arm's tunnel MTU after ESP).
pub const MAX_IP_LEN: usize = 1500;

/// The IMIX pattern: 7 x 64, 4 x 570, 1 x 1400 bytes (IP packet sizes), interleaved so that a
/// short run already has the mix. The classic 1518-byte frame (a 1500-byte IP packet) would not
/// fit the tunnel MTU after ESP (strongSwan's TUN has MTU 1400; Rampart's 1500-byte WAN leaves
/// about 1430), so the large element is capped at 1400, the largest size every arm carries.
pub const IMIX: [usize; 12] = [64, 570, 64, 64, 570, 64, 1400, 64, 570, 64, 64, 570];

/// A packet size choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Every packet this many bytes (IP packet length).
    Fixed(usize),
    /// The [`IMIX`] pattern.
    Imix,
}

impl Size {
    /// Parses `64`, `1400`, `imix`.
    pub fn parse(s: &str) -> Result<Size, String> {
        if s.eq_ignore_ascii_case("imix") {
            return Ok(Size::Imix);
        }
        let n: usize = s.parse().map_err(|_| format!("size '{s}': a number of bytes or 'imix'"))?;
        if !(64..=MAX_IP_LEN).contains(&n) {
            return Err(format!("size {n}: must be 64..={MAX_IP_LEN} (IP packet bytes)"));
        }
        Ok(Size::Fixed(n))
    }

    /// The sizes packets cycle through.
    pub fn pattern(self) -> Vec<usize> {
        match self {
            Size::Fixed(n) => vec![n],
            Size::Imix => IMIX.to_vec(),
        }
    }

    /// Mean IP packet size.
    pub fn mean(self) -> f64 {
        let p = self.pattern();
        p.iter().sum::<usize>() as f64 / p.len() as f64
    }

    /// Short label for tables.
    pub fn label(self) -> String {
        match self {
            Size::Fixed(n) => n.to_string(),
            Size::Imix => "IMIX".into(),
        }
    }
}

/// Addresses of one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Ethernet source (the generator's interface).
    pub src_mac: [u8; 6],
    /// Ethernet destination (the first gateway's LAN interface).
    pub dst_mac: [u8; 6],
    /// IP source.
    pub src: IpAddr,
    /// IP destination (the sink); same family as `src`.
    pub dst: IpAddr,
}

/// Parses `02:00:00:01:00:01`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("MAC '{s}': six hex bytes separated by ':'"));
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| format!("MAC '{s}': '{p}' is not a hex byte"))?;
    }
    Ok(mac)
}

/// Adds big-endian 16-bit words of `data` to a one's-complement accumulator (odd length: the
/// last byte padded with zero, RFC 1071).
pub fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Four 16-bit words at once; the u64 accumulator cannot overflow for packets this size.
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a one's-complement accumulator to 16 bits.
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// One prebuilt frame of one size, to be copied and stamped per packet.
#[derive(Clone, Debug)]
pub struct Template {
    /// The whole Ethernet frame with the probe's sequence number and timestamp zero.
    pub frame: Vec<u8>,
    /// Offset of the probe in the frame.
    pub probe_at: usize,
    /// Offset of the UDP checksum in the frame.
    pub csum_at: usize,
    /// One's-complement sum of everything the UDP checksum covers, with seq and timestamp zero.
    pub base_sum: u64,
}

/// Builds the template of an `ip_len`-byte packet of run `run`.
pub fn template(ep: &Endpoints, ip_len: usize, run: u32) -> Result<Template, String> {
    let ip_hdr = match (ep.src, ep.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => 20usize,
        (IpAddr::V6(_), IpAddr::V6(_)) => 40usize,
        _ => return Err("source and destination of different families".into()),
    };
    if ip_len < ip_hdr + 8 + PROBE_LEN || ip_len > MAX_IP_LEN {
        return Err(format!("IP packet of {ip_len} bytes: must be {}..={MAX_IP_LEN}", ip_hdr + 8 + PROBE_LEN));
    }
    let udp_len = ip_len - ip_hdr;
    let mut f = vec![0u8; ETH_LEN + ip_len];
    f[0..6].copy_from_slice(&ep.dst_mac);
    f[6..12].copy_from_slice(&ep.src_mac);
    let ip = ETH_LEN;
    let mut pseudo = 0u64;
    match (ep.src, ep.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[ip] = 0x45;
            f[ip + 2..ip + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            f[ip + 6] = 0x40; // DF: the gateways must not fragment, they encapsulate or refuse.
            f[ip + 8] = 64;
            f[ip + 9] = 17;
            f[ip + 12..ip + 16].copy_from_slice(&s.octets());
            f[ip + 16..ip + 20].copy_from_slice(&d.octets());
            let c = !fold(sum_words(0, &f[ip..ip + 20]));
            f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
            pseudo = sum_words(pseudo, &s.octets());
            pseudo = sum_words(pseudo, &d.octets());
            pseudo += 17 + udp_len as u64;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            f[ip] = 0x60;
            f[ip + 4..ip + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            f[ip + 6] = 17;
            f[ip + 7] = 64;
            f[ip + 8..ip + 24].copy_from_slice(&s.octets());
            f[ip + 24..ip + 40].copy_from_slice(&d.octets());
            pseudo = sum_words(pseudo, &s.octets());
            pseudo = sum_words(pseudo, &d.octets());
            pseudo += 17 + udp_len as u64;
        }
        _ => unreachable!("families checked above"),
    }
    let udp = ip + ip_hdr;
    f[udp..udp + 2].copy_from_slice(&SRC_PORT.to_be_bytes());
    f[udp + 2..udp + 4].copy_from_slice(&DST_PORT.to_be_bytes());
    f[udp + 4..udp + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let probe = udp + 8;
    f[probe..probe + 4].copy_from_slice(&run.to_be_bytes());
    // Filler after the probe: a byte pattern that a gateway corrupting data would disturb.
    for (i, b) in f[probe + PROBE_LEN..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7).wrapping_add(0x5a);
    }
    let base_sum = sum_words(pseudo, &f[udp..]);
    Ok(Template { frame: f, probe_at: probe, csum_at: udp + 6, base_sum })
}

impl Template {
    /// Copies the template into `out` (exactly the frame's length) and stamps sequence number
    /// and timestamp, with the UDP checksum updated for them.
    #[inline]
    pub fn stamp_into(&self, out: &mut [u8], seq: u32, ts_ns: u64) {
        out.copy_from_slice(&self.frame);
        let p = self.probe_at;
        out[p + 4..p + 8].copy_from_slice(&seq.to_be_bytes());
        out[p + 8..p + 16].copy_from_slice(&ts_ns.to_be_bytes());
        let acc = self.base_sum
            + u64::from(seq >> 16)
            + u64::from(seq & 0xffff)
            + ((ts_ns >> 48) & 0xffff)
            + ((ts_ns >> 32) & 0xffff)
            + ((ts_ns >> 16) & 0xffff)
            + (ts_ns & 0xffff);
        let mut c = !fold(acc);
        if c == 0 {
            c = 0xffff; // RFC 768: a computed zero is sent as all ones.
        }
        out[self.csum_at..self.csum_at + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// What the sink reads from a frame of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    /// Run id.
    pub run: u32,
    /// Sequence number.
    pub seq: u32,
    /// Send timestamp (CLOCK_MONOTONIC ns).
    pub ts_ns: u64,
    /// IP packet length.
    pub ip_len: usize,
    /// Whether the UDP checksum verified.
    pub checksum_ok: bool,
}

/// Why a received frame is not one of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotOurs {
    /// Shorter than the headers it announces.
    Truncated,
    /// Not IPv4/IPv6 (ARP, VLAN, ...).
    NotIp,
    /// Not UDP (or IPv6 with extension headers, or an IPv4 fragment).
    NotUdp,
    /// UDP to another port.
    OtherPort,
}

/// Parses a frame: Ethernet, IPv4 (options allowed) or IPv6 (no extension headers), UDP to
/// [`DST_PORT`], probe; verifies the UDP checksum. Every length is checked before use.
pub fn parse(frame: &[u8]) -> Result<Probe, NotOurs> {
    let eth_type = frame.get(12..14).ok_or(NotOurs::Truncated)?;
    let ip = frame.get(ETH_LEN..).ok_or(NotOurs::Truncated)?;
    let (ip_len, hdr, pseudo) = match u16::from_be_bytes([eth_type[0], eth_type[1]]) {
        0x0800 => {
            let h = ip.get(..20).ok_or(NotOurs::Truncated)?;
            if h[0] >> 4 != 4 {
                return Err(NotOurs::NotIp);
            }
            let ihl = usize::from(h[0] & 15) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let frag = u16::from_be_bytes([h[6], h[7]]) & 0x3fff;
            if h[9] != 17 || frag != 0 {
                return Err(NotOurs::NotUdp);
            }
            if ihl < 20 || total < ihl + 8 || total > ip.len() {
                return Err(NotOurs::Truncated);
            }
            let udp_len = total - ihl;
            let pseudo = sum_words(0, &h[12..20]) + 17 + udp_len as u64;
            (total, ihl, pseudo)
        }
        0x86dd => {
            let h = ip.get(..40).ok_or(NotOurs::Truncated)?;
            if h[0] >> 4 != 6 {
                return Err(NotOurs::NotIp);
            }
            if h[6] != 17 {
                return Err(NotOurs::NotUdp);
            }
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let total = 40 + payload;
            if payload < 8 || total > ip.len() {
                return Err(NotOurs::Truncated);
            }
            let pseudo = sum_words(0, &h[8..40]) + 17 + payload as u64;
            (total, 40, pseudo)
        }
        _ => return Err(NotOurs::NotIp),
    };
    let udp = ip.get(hdr..ip_len).ok_or(NotOurs::Truncated)?;
    let udp_hdr_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if u16::from_be_bytes([udp[2], udp[3]]) != DST_PORT {
        return Err(NotOurs::OtherPort);
    }
    if udp_hdr_len != udp.len() || udp.len() < 8 + PROBE_LEN {
        return Err(NotOurs::Truncated);
    }
    let p = &udp[8..8 + PROBE_LEN];
    let run = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    let seq = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    let ts_ns = u64::from_be_bytes([p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]]);
    let stored = u16::from_be_bytes([udp[6], udp[7]]);
    // A correct checksum sums (with itself included) to all ones; zero means "none" over IPv4.
    let checksum_ok = (stored == 0 && hdr != 40) || fold(sum_words(pseudo, udp)) == 0xffff;
    Ok(Probe { run, seq, ts_ns, ip_len, checksum_ok })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(v6: bool) -> Endpoints {
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            ("fd01::2".parse().unwrap(), "fd02::2".parse().unwrap())
        } else {
            ("10.1.0.2".parse().unwrap(), "10.2.0.2".parse().unwrap())
        };
        Endpoints { src_mac: [2, 0, 0, 1, 0, 2], dst_mac: [2, 0, 0, 1, 0, 1], src, dst }
    }

    /// Checksum over the whole UDP datagram computed from scratch, the slow way (RFC 768 /
    /// RFC 8200 8.1 pseudo-headers), as the oracle of the incremental update.
    fn reference_udp_checksum(frame: &[u8]) -> u16 {
        let v6 = frame[12] == 0x86;
        let ip = &frame[ETH_LEN..];
        let (hdr, mut pseudo) = if v6 {
            let mut p = ip[8..40].to_vec();
            p.extend_from_slice(&(u32::from(u16::from_be_bytes([ip[4], ip[5]]))).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 17]);
            (40, p)
        } else {
            let mut p = ip[12..20].to_vec();
            p.extend_from_slice(&[0, 17]);
            p.extend_from_slice(&((ip.len() - 20) as u16).to_be_bytes());
            (20, p)
        };
        let mut udp = ip[hdr..].to_vec();
        udp[6] = 0;
        udp[7] = 0;
        pseudo.extend_from_slice(&udp);
        if pseudo.len() % 2 == 1 {
            pseudo.push(0);
        }
        let mut s: u32 = 0;
        for w in pseudo.chunks(2) {
            s += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        let c = !(s as u16);
        if c == 0 { 0xffff } else { c }
    }

    #[test]
    fn stamped_frames_parse_back_with_valid_checksums() {
        for v6 in [false, true] {
            for size in [64usize, 65, 570, 1399, 1400] {
                let t = template(&ep(v6), size, 0xdead_beef).unwrap();
                assert_eq!(t.frame.len(), ETH_LEN + size);
                let mut buf = vec![0u8; t.frame.len()];
                for (seq, ts) in [
                    (0u32, 0u64),
                    (1, 1),
                    (0xffff_ffff, u64::MAX),
                    (12345, 987_654_321_012),
                    (0x1234_5678, 0x0123_4567_89ab_cdef),
                    (65_536, 1 << 48),
                ] {
                    t.stamp_into(&mut buf, seq, ts);
                    let stored = u16::from_be_bytes([buf[t.csum_at], buf[t.csum_at + 1]]);
                    assert_eq!(stored, reference_udp_checksum(&buf), "v6={v6} size={size} seq={seq}");
                    let p = parse(&buf).unwrap();
                    assert_eq!((p.run, p.seq, p.ts_ns, p.ip_len), (0xdead_beef, seq, ts, size));
                    assert!(p.checksum_ok);
                }
            }
        }
    }

    #[test]
    fn ipv4_header_checksum_is_valid() {
        let t = template(&ep(false), 100, 1).unwrap();
        assert_eq!(fold(sum_words(0, &t.frame[ETH_LEN..ETH_LEN + 20])), 0xffff);
    }

    #[test]
    fn corruption_is_seen_by_the_checksum() {
        let t = template(&ep(false), 570, 7).unwrap();
        let mut buf = vec![0u8; t.frame.len()];
        t.stamp_into(&mut buf, 42, 4242);
        buf[300] ^= 0x10;
        assert!(!parse(&buf).unwrap().checksum_ok);
    }

    #[test]
    fn ttl_change_keeps_udp_checksum_valid() {
        // Gateways decrement TTL / hop limit: not covered by the UDP checksum.
        for v6 in [false, true] {
            let t = template(&ep(v6), 200, 7).unwrap();
            let mut buf = vec![0u8; t.frame.len()];
            t.stamp_into(&mut buf, 3, 3);
            buf[ETH_LEN + if v6 { 7 } else { 8 }] -= 2;
            assert!(parse(&buf).unwrap().checksum_ok);
        }
    }

    #[test]
    fn truncated_and_foreign_frames_are_refused_without_panic() {
        let t = template(&ep(true), 64, 7).unwrap();
        let mut buf = vec![0u8; t.frame.len()];
        t.stamp_into(&mut buf, 1, 1);
        for n in 0..buf.len() {
            assert!(parse(&buf[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut arp = buf.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(parse(&arp), Err(NotOurs::NotIp));
        let mut other = buf.clone();
        other[ETH_LEN + 40 + 2..ETH_LEN + 40 + 4].copy_from_slice(&53u16.to_be_bytes());
        assert_eq!(parse(&other), Err(NotOurs::OtherPort));
        // Random bytes never panic.
        let mut x = 0x1234_5678u32;
        for _ in 0..20_000 {
            let len = (x % 200) as usize;
            let mut f = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                f.push(x as u8);
            }
            if f.len() > 14 {
                f[12] = if x & 1 == 0 { 0x08 } else { 0x86 };
                f[13] = if x & 1 == 0 { 0x00 } else { 0xdd };
            }
            let _ = parse(&f);
        }
    }

    #[test]
    fn sizes_parse_and_imix_mean() {
        assert_eq!(Size::parse("imix").unwrap(), Size::Imix);
        assert_eq!(Size::parse("1400").unwrap(), Size::Fixed(1400));
        assert!(Size::parse("63").is_err());
        assert!(Size::parse("1501").is_err());
        let p = Size::Imix.pattern();
        assert_eq!(p.iter().filter(|&&s| s == 64).count(), 7);
        assert_eq!(p.iter().filter(|&&s| s == 570).count(), 4);
        assert_eq!(p.iter().filter(|&&s| s == 1400).count(), 1);
        assert!((Size::Imix.mean() - 4128.0 / 12.0).abs() < 1e-9);
    }

    #[test]
    fn too_small_for_the_family_is_refused() {
        assert!(template(&ep(true), 63, 1).is_err());
        assert!(template(&ep(true), 64, 1).is_ok());
        assert!(template(&ep(false), 1501, 1).is_err());
    }
}
