//! A minimal rtnetlink client for the neighbour and route mirror: dump requests, the multicast
//! groups of links, addresses, routes and neighbours, a parser for the messages they carry, and
//! the one request the data plane makes of the kernel (resolve a neighbour, `NTF_USE`).
//!
//! Parsing is bounds-checked everywhere: a malformed message is skipped, never a panic. This
//! module knows nothing of workers; it must never be called on the hot path.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

const NLMSG_HDR: usize = 16;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;

/// Multicast groups (legacy bitmask form) the mirror listens to.
pub(crate) const GROUPS: u32 = 0x1 // RTMGRP_LINK
    | 0x4 // RTMGRP_NEIGH
    | 0x10 // RTMGRP_IPV4_IFADDR
    | 0x40 // RTMGRP_IPV4_ROUTE
    | 0x100 // RTMGRP_IPV6_IFADDR
    | 0x400; // RTMGRP_IPV6_ROUTE

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;

const RTN_UNICAST: u8 = 1;
const RT_TABLE_MAIN: u32 = 254;

/// Neighbour states with a usable link-layer address.
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80; // REACHABLE STALE DELAY PROBE NOARP PERMANENT
const NTF_USE: u8 = 0x01;

/// One thing the kernel told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Update {
    /// A link appeared or changed.
    Link { ifindex: u32, name: String, mac: Option<[u8; 6]>, mtu: u32 },
    /// A link went away.
    LinkGone { ifindex: u32 },
    /// An address was added (`true`) or removed (`false`).
    Addr { ifindex: u32, addr: IpAddr, prefix_len: u8, added: bool },
    /// A main-table unicast route was added (`true`) or removed (`false`).
    Route { dst: IpAddr, prefix_len: u8, oif: u32, gateway: Option<IpAddr>, metric: u32, added: bool },
    /// A neighbour has this link-layer address (`Some`), or none usable (`None`).
    Neigh { ifindex: u32, addr: IpAddr, mac: Option<[u8; 6]> },
}

/// What one received datagram held.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub updates: Vec<Update>,
    /// A dump finished (`NLMSG_DONE`).
    pub done: bool,
    /// The kernel acknowledged or refused a request: `Some(0)` or `Some(-errno)`.
    pub ack: Option<i32>,
}

/// An rtnetlink socket.
pub(crate) struct RtSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl RtSocket {
    /// A socket subscribed to `groups` (0: none), with a receive timeout.
    pub fn open(groups: u32, timeout: Duration) -> io::Result<RtSocket> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups))?;
        // Bursts of neighbour updates must not overflow the queue; fall back to the
        // unprivileged limit if forcing is not allowed.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, 4 << 20).is_err() {
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&fd, 4 << 20);
        }
        rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Recv, Some(timeout))?;
        Ok(RtSocket { fd, seq: 1, buf: vec![0; 1 << 16] })
    }

    fn send(&mut self, msg_type: u16, flags: u16, body: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let len = NLMSG_HDR + body.len();
        let mut m = Vec::with_capacity(len);
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&msg_type.to_ne_bytes());
        m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        m.extend_from_slice(&self.seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        rustix::net::sendto(&self.fd, &m, SendFlags::empty(), &SocketAddrNetlink::new(0, 0))?;
        Ok(self.seq)
    }

    /// Asks for a dump of links, addresses, routes or neighbours (`what` is the GET type).
    fn request_dump(&mut self, get: u16) -> io::Result<()> {
        let body: Vec<u8> = match get {
            RTM_GETLINK => vec![AF_UNSPEC; 16],
            RTM_GETADDR => vec![AF_UNSPEC; 8],
            RTM_GETROUTE => vec![AF_UNSPEC; 12],
            _ => vec![AF_UNSPEC; 12],
        };
        self.send(get, NLM_F_DUMP, &body).map(|_| ())
    }

    /// Dumps links, addresses, routes and neighbours, in that order.
    pub fn dump_all(&mut self) -> io::Result<Vec<Update>> {
        let mut all = Vec::new();
        for get in [RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETNEIGH] {
            self.request_dump(get)?;
            loop {
                let b = self.recv()?.ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "netlink dump"))?;
                all.extend(b.updates);
                if let Some(e) = b.ack
                    && e != 0
                {
                    return Err(io::Error::from_raw_os_error(-e));
                }
                if b.done {
                    break;
                }
            }
        }
        Ok(all)
    }

    /// Asks the kernel to resolve `addr` on `ifindex` (ARP or ND, as if it had a packet for
    /// it): an `RTM_NEWNEIGH` with `NTF_USE`. The answer shows up as a neighbour update.
    pub fn request_resolve(&mut self, ifindex: u32, addr: IpAddr) -> io::Result<()> {
        let mut body = Vec::with_capacity(12 + 20);
        body.push(if addr.is_ipv4() { AF_INET } else { AF_INET6 });
        body.extend_from_slice(&[0, 0, 0]);
        body.extend_from_slice(&(ifindex as i32).to_ne_bytes());
        body.extend_from_slice(&0u16.to_ne_bytes()); // state: none, resolution decides
        body.push(NTF_USE);
        body.push(0);
        let bytes: Vec<u8> = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        push_attr(&mut body, NDA_DST, &bytes);
        self.send(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &body).map(|_| ())
    }

    /// Receives one datagram; `None` on timeout. `ENOBUFS` (the kernel dropped updates) is
    /// returned as an error: the caller dumps everything again.
    pub fn recv(&mut self) -> io::Result<Option<Batch>> {
        self.recv_with(RecvFlags::empty())
    }

    /// [`RtSocket::recv`] with flags (`DONTWAIT` to drain without waiting).
    pub fn recv_with(&mut self, flags: RecvFlags) -> io::Result<Option<Batch>> {
        let n = match rustix::net::recv(self.fd.as_fd(), &mut self.buf[..], flags) {
            Ok((n, _)) => n,
            Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INTR => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(Some(parse_datagram(&self.buf[..n.min(self.buf.len())])))
    }
}

fn push_attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + (len.next_multiple_of(4) - len), 0);
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Walks the attributes of a message body; yields `(type, payload)`.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let ty = u16_at(b, 2)? & 0x3fff; // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
        Some((ty, payload))
    })
}

fn addr_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?))),
        _ => None,
    }
}

/// Parses every message of one netlink datagram.
pub(crate) fn parse_datagram(mut d: &[u8]) -> Batch {
    let mut batch = Batch::default();
    while d.len() >= NLMSG_HDR {
        let (Some(len), Some(ty)) = (u32_at(d, 0), u16_at(d, 4)) else { break };
        let len = len as usize;
        if len < NLMSG_HDR || len > d.len() {
            break;
        }
        let body = &d[NLMSG_HDR..len];
        match ty {
            NLMSG_DONE => batch.done = true,
            NLMSG_ERROR => batch.ack = u32_at(body, 0).map(|e| e as i32),
            NLMSG_NOOP | NLMSG_OVERRUN => {}
            _ => {
                if let Some(u) = parse_message(ty, body) {
                    batch.updates.push(u);
                }
            }
        }
        d = d.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    batch
}

fn parse_message(ty: u16, b: &[u8]) -> Option<Update> {
    match ty {
        RTM_NEWLINK | RTM_DELLINK => {
            let ifindex = u32_at(b, 4)?;
            if ty == RTM_DELLINK {
                return Some(Update::LinkGone { ifindex });
            }
            let (mut name, mut mac, mut mtu) = (String::new(), None, 1500);
            for (t, p) in attrs(b.get(16..)?) {
                match t {
                    IFLA_IFNAME => name = String::from_utf8_lossy(p.split(|&c| c == 0).next().unwrap_or(&[])).into(),
                    IFLA_ADDRESS => mac = <[u8; 6]>::try_from(p).ok(),
                    IFLA_MTU => mtu = u32_at(p, 0)?,
                    _ => {}
                }
            }
            Some(Update::Link { ifindex, name, mac, mtu })
        }
        RTM_NEWADDR | RTM_DELADDR => {
            let family = *b.first()?;
            let prefix_len = *b.get(1)?;
            let ifindex = u32_at(b, 4)?;
            let (mut address, mut local) = (None, None);
            for (t, p) in attrs(b.get(8..)?) {
                match t {
                    IFA_ADDRESS => address = addr_from(family, p),
                    IFA_LOCAL => local = addr_from(family, p),
                    _ => {}
                }
            }
            // IPv4 point-to-point links put the peer in IFA_ADDRESS; ours is IFA_LOCAL.
            let addr = local.or(address)?;
            Some(Update::Addr { ifindex, addr, prefix_len, added: ty == RTM_NEWADDR })
        }
        RTM_NEWROUTE | RTM_DELROUTE => {
            let family = *b.first()?;
            let prefix_len = *b.get(1)?;
            let mut table = u32::from(*b.get(4)?);
            let rtype = *b.get(7)?;
            let (mut dst, mut oif, mut gateway, mut metric) = (None, 0, None, 0);
            for (t, p) in attrs(b.get(12..)?) {
                match t {
                    RTA_DST => dst = addr_from(family, p),
                    RTA_OIF => oif = u32_at(p, 0)?,
                    RTA_GATEWAY => gateway = addr_from(family, p),
                    RTA_PRIORITY => metric = u32_at(p, 0)?,
                    RTA_TABLE => table = u32_at(p, 0)?,
                    _ => {}
                }
            }
            if table != RT_TABLE_MAIN || rtype != RTN_UNICAST || oif == 0 {
                return None;
            }
            let dst = dst.or(match family {
                AF_INET => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                AF_INET6 => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
                _ => None,
            })?;
            Some(Update::Route { dst, prefix_len, oif, gateway, metric, added: ty == RTM_NEWROUTE })
        }
        RTM_NEWNEIGH | RTM_DELNEIGH => {
            let family = *b.first()?;
            let ifindex = u32_at(b, 4)?;
            let state = u16_at(b, 8)?;
            let (mut dst, mut mac) = (None, None);
            for (t, p) in attrs(b.get(12..)?) {
                match t {
                    NDA_DST => dst = addr_from(family, p),
                    NDA_LLADDR => mac = <[u8; 6]>::try_from(p).ok(),
                    _ => {}
                }
            }
            let usable = ty == RTM_NEWNEIGH && state & NUD_VALID != 0;
            Some(Update::Neigh { ifindex, addr: dst?, mac: if usable { mac } else { None } })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, body: &[u8]) -> Vec<u8> {
        let len = NLMSG_HDR + body.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        m.resize(len.next_multiple_of(4), 0);
        m
    }

    #[test]
    fn parses_neighbour_route_address_and_link() {
        let mut neigh = vec![AF_INET, 0, 0, 0];
        neigh.extend_from_slice(&7i32.to_ne_bytes());
        neigh.extend_from_slice(&0x02u16.to_ne_bytes());
        neigh.extend_from_slice(&[0, 1]);
        push_attr(&mut neigh, NDA_DST, &[10, 0, 0, 2]);
        push_attr(&mut neigh, NDA_LLADDR, &[2, 0, 0, 0, 0, 9]);

        let mut route = vec![AF_INET6, 64, 0, 0, 254, 2, 0, RTN_UNICAST, 0, 0, 0, 0];
        push_attr(&mut route, RTA_DST, &"fd00:1::".parse::<Ipv6Addr>().unwrap().octets());
        push_attr(&mut route, RTA_OIF, &3u32.to_ne_bytes());
        push_attr(&mut route, RTA_PRIORITY, &256u32.to_ne_bytes());

        let mut default = vec![AF_INET, 0, 0, 0, 254, 2, 0, RTN_UNICAST, 0, 0, 0, 0];
        push_attr(&mut default, RTA_OIF, &3u32.to_ne_bytes());
        push_attr(&mut default, RTA_GATEWAY, &[10, 0, 0, 1]);

        let mut local_table = vec![AF_INET, 32, 0, 0, 255, 2, 0, 2, 0, 0, 0, 0];
        push_attr(&mut local_table, RTA_OIF, &3u32.to_ne_bytes());

        let mut addr = vec![AF_INET, 24, 0, 0];
        addr.extend_from_slice(&3u32.to_ne_bytes());
        push_attr(&mut addr, IFA_ADDRESS, &[10, 0, 0, 9]);
        push_attr(&mut addr, IFA_LOCAL, &[10, 0, 0, 1]);

        let mut link = vec![0u8; 16];
        link[4..8].copy_from_slice(&3i32.to_ne_bytes());
        push_attr(&mut link, IFLA_IFNAME, b"wan0\0");
        push_attr(&mut link, IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        push_attr(&mut link, IFLA_MTU, &1400u32.to_ne_bytes());

        let mut d = Vec::new();
        for (t, b) in [
            (RTM_NEWNEIGH, &neigh),
            (RTM_NEWROUTE, &route),
            (RTM_NEWROUTE, &default),
            (RTM_NEWROUTE, &local_table),
            (RTM_NEWADDR, &addr),
            (RTM_NEWLINK, &link),
        ] {
            d.extend(msg(t, b));
        }
        d.extend(msg(NLMSG_DONE, &[0; 4]));
        let b = parse_datagram(&d);
        assert!(b.done);
        assert_eq!(
            b.updates,
            vec![
                Update::Neigh { ifindex: 7, addr: "10.0.0.2".parse().unwrap(), mac: Some([2, 0, 0, 0, 0, 9]) },
                Update::Route {
                    dst: "fd00:1::".parse().unwrap(),
                    prefix_len: 64,
                    oif: 3,
                    gateway: None,
                    metric: 256,
                    added: true
                },
                Update::Route {
                    dst: "0.0.0.0".parse().unwrap(),
                    prefix_len: 0,
                    oif: 3,
                    gateway: Some("10.0.0.1".parse().unwrap()),
                    metric: 0,
                    added: true
                },
                Update::Addr { ifindex: 3, addr: "10.0.0.1".parse().unwrap(), prefix_len: 24, added: true },
                Update::Link { ifindex: 3, name: "wan0".into(), mac: Some([2, 0, 0, 0, 0, 1]), mtu: 1400 },
            ]
        );
    }

    #[test]
    fn truncated_and_garbage_input_is_skipped() {
        let mut neigh = vec![AF_INET, 0, 0, 0];
        neigh.extend_from_slice(&7i32.to_ne_bytes());
        neigh.extend_from_slice(&0x02u16.to_ne_bytes());
        neigh.extend_from_slice(&[0, 1]);
        push_attr(&mut neigh, NDA_DST, &[10, 0, 0, 2]);
        let m = msg(RTM_NEWNEIGH, &neigh);
        for cut in 0..m.len() {
            let _ = parse_datagram(&m[..cut]);
        }
        let mut bad = m.clone();
        bad[NLMSG_HDR + 12] = 0xff; // attribute length beyond the message
        assert!(parse_datagram(&bad).updates.is_empty());
        for seed in 0u32..2000 {
            let junk: Vec<u8> =
                (0..64).map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 7919) >> 13) as u8).collect();
            let _ = parse_datagram(&junk);
        }
    }

    #[test]
    fn failed_neighbour_has_no_address() {
        let mut neigh = vec![AF_INET6, 0, 0, 0];
        neigh.extend_from_slice(&7i32.to_ne_bytes());
        neigh.extend_from_slice(&0x20u16.to_ne_bytes()); // NUD_FAILED
        neigh.extend_from_slice(&[0, 1]);
        push_attr(&mut neigh, NDA_DST, &"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        push_attr(&mut neigh, NDA_LLADDR, &[2, 0, 0, 0, 0, 9]);
        let b = parse_datagram(&msg(RTM_NEWNEIGH, &neigh));
        assert_eq!(b.updates, vec![Update::Neigh { ifindex: 7, addr: "fd00::2".parse().unwrap(), mac: None }]);
    }
}
