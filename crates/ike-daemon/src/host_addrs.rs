//! The addresses this host has (an rtnetlink `RTM_GETADDR` dump): what the daemon binds when a
//! connection has `local_addrs = %any` (or none) and `daemon.listen` is not set, as swanctl.conf
//! means it (every address), without wildcard sockets, whose replies would leave from whatever
//! address the routing picks and whose NAT detection would hash 0.0.0.0.
//!
//! Link-local IPv6 addresses (they need a scope to bind) and addresses still in duplicate
//! address detection are left out. Parsing is bounds-checked: a malformed message is skipped.
//! Nothing here keeps state; it must never run on a per-packet path.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

const NLMSG_HDR: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_TENTATIVE: u32 = 0x40;
const RT_SCOPE_LINK: u8 = 253;

/// Every usable address of the host, IPv4 first, in the kernel's order.
pub fn host_addresses() -> io::Result<Vec<IpAddr>> {
    let fd = rustix::net::socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None)?;
    rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
    rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Recv, Some(Duration::from_secs(2)))?;
    let mut req = Vec::with_capacity(NLMSG_HDR + 8);
    req.extend_from_slice(&((NLMSG_HDR + 8) as u32).to_ne_bytes());
    req.extend_from_slice(&RTM_GETADDR.to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[0u8; 8]); // ifaddrmsg, AF_UNSPEC: both families
    rustix::net::sendto(&fd, &req, SendFlags::empty(), &SocketAddrNetlink::new(0, 0))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Vec::new();
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty())?;
        match parse(&buf[..n.min(buf.len())], &mut out) {
            Parsed::More => continue,
            Parsed::Done => break,
            Parsed::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
    out.sort_by_key(|a| a.is_ipv6());
    out.dedup();
    Ok(out)
}

enum Parsed {
    More,
    Done,
    Error(i32),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One datagram of the dump: the addresses it holds go to `out`.
fn parse(mut b: &[u8], out: &mut Vec<IpAddr>) -> Parsed {
    while let (Some(len), Some(ty)) = (u32_at(b, 0), u16_at(b, 4)) {
        let len = len as usize;
        if len < NLMSG_HDR || len > b.len() {
            break;
        }
        let body = &b[NLMSG_HDR..len];
        match ty {
            NLMSG_DONE => return Parsed::Done,
            NLMSG_ERROR => {
                let e = body.get(0..4).and_then(|x| x.try_into().ok()).map_or(0, i32::from_ne_bytes);
                if e != 0 {
                    return Parsed::Error(-e);
                }
                return Parsed::Done;
            }
            RTM_NEWADDR => {
                if let Some(a) = address(body) {
                    out.push(a);
                }
            }
            _ => {}
        }
        b = b.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    Parsed::More
}

/// The address of one `RTM_NEWADDR` body, when it is one to bind.
fn address(body: &[u8]) -> Option<IpAddr> {
    let (family, flags, scope) = (*body.first()?, *body.get(2)?, *body.get(3)?);
    let mut flags = u32::from(flags);
    let (mut local, mut addr) = (None, None);
    let mut attrs = body.get(8..)?;
    while let (Some(len), Some(ty)) = (u16_at(attrs, 0), u16_at(attrs, 2)) {
        let len = usize::from(len);
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        let ip = match (family, data.len()) {
            (AF_INET, 4) => <[u8; 4]>::try_from(data).ok().map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            (AF_INET6, 16) => <[u8; 16]>::try_from(data).ok().map(|o| IpAddr::V6(Ipv6Addr::from(o))),
            _ => None,
        };
        match ty & 0x3fff {
            IFA_LOCAL => local = ip,
            IFA_ADDRESS => addr = ip,
            IFA_FLAGS => flags = u32_at(data, 0).unwrap_or(flags),
            _ => {}
        }
        attrs = attrs.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    if flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0 || (family == AF_INET6 && scope == RT_SCOPE_LINK) {
        return None;
    }
    // IPv4 point-to-point links put the peer in IFA_ADDRESS and ours in IFA_LOCAL.
    local.or(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ((4 + data.len()) as u16).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    fn msg(ty: u16, body: &[u8]) -> Vec<u8> {
        let mut v = ((NLMSG_HDR + body.len()) as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&[0; 10]);
        v.extend_from_slice(body);
        v.resize(v.len().next_multiple_of(4), 0);
        v
    }

    fn ifaddr(family: u8, flags: u8, scope: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![family, 24, flags, scope, 1, 0, 0, 0];
        for a in attrs {
            v.extend_from_slice(a);
        }
        v
    }

    #[test]
    fn parses_addresses_and_leaves_out_link_local_and_tentative() {
        let v4 = msg(
            RTM_NEWADDR,
            &ifaddr(AF_INET, 0, 0, &[attr(IFA_ADDRESS, &[192, 0, 2, 9]), attr(IFA_LOCAL, &[192, 0, 2, 1])]),
        );
        let mut ll = [0u8; 16];
        ll[0] = 0xfe;
        ll[1] = 0x80;
        let link_local = msg(RTM_NEWADDR, &ifaddr(AF_INET6, 0, RT_SCOPE_LINK, &[attr(IFA_ADDRESS, &ll)]));
        let mut g = [0u8; 16];
        g[0] = 0x20;
        g[1] = 0x01;
        g[15] = 5;
        let tentative = msg(
            RTM_NEWADDR,
            &ifaddr(AF_INET6, 0, 0, &[attr(IFA_ADDRESS, &g), attr(IFA_FLAGS, &IFA_F_TENTATIVE.to_ne_bytes())]),
        );
        let global = msg(RTM_NEWADDR, &ifaddr(AF_INET6, 0, 0, &[attr(IFA_ADDRESS, &g)]));
        let mut all = [v4, link_local, tentative, global, vec![1, 2, 3]].concat();
        let mut out = Vec::new();
        assert!(matches!(parse(&all, &mut out), Parsed::More));
        assert_eq!(out, vec!["192.0.2.1".parse::<IpAddr>().unwrap(), IpAddr::V6(Ipv6Addr::from(g))]);
        all = msg(NLMSG_DONE, &[0; 4]);
        assert!(matches!(parse(&all, &mut out), Parsed::Done));
    }

    #[test]
    fn the_host_has_its_loopback() {
        let addrs = host_addresses().expect("rtnetlink answers");
        assert!(addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)), "{addrs:?}");
    }
}
