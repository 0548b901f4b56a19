//! The rtnetlink side of XDP: which program runs on an interface (`RTM_GETLINK`, `IFLA_XDP`), and
//! the pre-link way of attaching and detaching one (`RTM_SETLINK`).
//!
//! Rampart attaches through BPF links ([`crate::bpf::link_create_xdp`]); this module exists to see
//! what is already on an interface, to remove a program that an older Rampart attached this way,
//! and to let tests play that older Rampart. It speaks to the kernel of the calling thread's
//! network namespace, is control path only, and must never change an interface other than the one
//! it is asked about.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::sys;

const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// What XDP state an interface reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpState {
    /// `XDP_ATTACHED_*` summary (0: none, 1: driver, 2: generic, 3: offload, 4: several).
    pub attached: u8,
    /// Program in native (driver) mode, if any.
    pub drv_prog_id: Option<u32>,
    /// Program in generic (skb) mode, if any.
    pub skb_prog_id: Option<u32>,
    /// Program offloaded to hardware, if any.
    pub hw_prog_id: Option<u32>,
}

impl XdpState {
    /// Every attached program with the `XDP_FLAGS_*_MODE` flag that addresses it.
    pub fn programs(&self) -> impl Iterator<Item = (u32, u32)> {
        [
            self.drv_prog_id.map(|id| (id, sys::XDP_FLAGS_DRV_MODE)),
            self.skb_prog_id.map(|id| (id, sys::XDP_FLAGS_SKB_MODE)),
            self.hw_prog_id.map(|id| (id, sys::XDP_FLAGS_HW_MODE)),
        ]
        .into_iter()
        .flatten()
    }
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn push_attr(buf: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(payload);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

/// Iterates over the netlink attributes in `b`: (type without flag bits, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        Some((ty, payload))
    })
}

fn u32_of(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

impl Netlink {
    fn open() -> Result<Netlink> {
        // Safety: plain socket(2), result checked.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            return Err(Error::last_os("socket(AF_NETLINK)"));
        }
        // Safety: fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            // Safety: an int option of the right size; failure only costs the extended message.
            unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(Netlink { fd, seq: 1 })
    }

    /// Sends one request (header filled in here) and returns the raw reply datagrams' messages of
    /// the same sequence number, up to the ack or the first non-multipart answer.
    fn request(&mut self, msg_type: u16, flags: u16, body: &[u8]) -> Result<Vec<(u16, u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&msg_type.to_ne_bytes());
        msg.extend_from_slice(&(flags | sys::NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // Safety: a zeroed sockaddr_nl is the kernel's address.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // Safety: `msg` and `sa` are live for the call.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(Error::last_os("sendto(NETLINK_ROUTE)"));
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // Safety: `buf` is writable for its length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(Error::last_os("recv(NETLINK_ROUTE)"));
            }
            let mut b = &buf[..n as usize];
            let mut done = false;
            while b.len() >= 16 {
                let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
                if len < 16 || len > b.len() {
                    break;
                }
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                let fl = u16::from_ne_bytes([b[6], b[7]]);
                let s = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
                if s == seq {
                    out.push((ty, fl, b[16..len].to_vec()));
                    if ty == sys::NLMSG_ERROR || ty == sys::NLMSG_DONE || fl & 0x2 /* NLM_F_MULTI */ == 0 {
                        done = true;
                    }
                }
                b = &b[len.next_multiple_of(4).min(b.len())..];
            }
            if done {
                return Ok(out);
            }
        }
    }
}

/// Turns an `NLMSG_ERROR` payload into `Ok(())` (an ack) or an error with the kernel's extended
/// message when it sent one.
fn check_ack(flags: u16, payload: &[u8], op: &'static str) -> Result<()> {
    let code = payload.get(..4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(-libc::EIO);
    if code == 0 {
        return Ok(());
    }
    let mut text = String::new();
    // With NETLINK_CAP_ACK the error is followed by the original header only (16 bytes).
    if flags & NLM_F_ACK_TLVS != 0
        && let Some(tlvs) = payload.get(4 + 16..)
    {
        for (ty, p) in attrs(tlvs) {
            if ty == NLMSGERR_ATTR_MSG {
                text = String::from_utf8_lossy(p).trim_end_matches('\0').to_string();
            }
        }
    }
    let source = io::Error::from_raw_os_error(-code);
    if text.is_empty() { Err(Error::sys(op, source)) } else { Err(Error::SysDetail { op, source, detail: text }) }
}

fn ifinfomsg(ifindex: u32) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    b
}

/// Reads the XDP state of interface `ifindex`.
pub fn xdp_query(ifindex: u32) -> Result<XdpState> {
    let mut nl = Netlink::open()?;
    let replies = nl.request(sys::RTM_GETLINK, 0, &ifinfomsg(ifindex))?;
    for (ty, fl, payload) in replies {
        if ty == sys::NLMSG_ERROR {
            check_ack(fl, &payload, "netlink RTM_GETLINK")?;
            continue;
        }
        if ty != sys::RTM_NEWLINK || payload.len() < 16 {
            continue;
        }
        let mut st = XdpState::default();
        for (t, p) in attrs(&payload[16..]) {
            if t != sys::IFLA_XDP {
                continue;
            }
            for (x, v) in attrs(p) {
                match x {
                    sys::IFLA_XDP_ATTACHED => st.attached = v.first().copied().unwrap_or(0),
                    sys::IFLA_XDP_DRV_PROG_ID => st.drv_prog_id = u32_of(v),
                    sys::IFLA_XDP_SKB_PROG_ID => st.skb_prog_id = u32_of(v),
                    sys::IFLA_XDP_HW_PROG_ID => st.hw_prog_id = u32_of(v),
                    sys::IFLA_XDP_PROG_ID => {
                        // With a single program the kernel reports only this one plus the mode.
                        let id = u32_of(v);
                        match st.attached {
                            sys::XDP_ATTACHED_DRV => st.drv_prog_id = st.drv_prog_id.or(id),
                            sys::XDP_ATTACHED_SKB => st.skb_prog_id = st.skb_prog_id.or(id),
                            sys::XDP_ATTACHED_HW => st.hw_prog_id = st.hw_prog_id.or(id),
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        return Ok(st);
    }
    Err(Error::Config(format!("no RTM_NEWLINK answer for interface {ifindex}")))
}

fn set_xdp(ifindex: u32, fd: i32, flags: u32, expected_fd: Option<i32>, op: &'static str) -> Result<()> {
    let mut nested = Vec::new();
    push_attr(&mut nested, sys::IFLA_XDP_FD, &fd.to_ne_bytes());
    push_attr(&mut nested, sys::IFLA_XDP_FLAGS, &flags.to_ne_bytes());
    if let Some(e) = expected_fd {
        push_attr(&mut nested, sys::IFLA_XDP_EXPECTED_FD, &e.to_ne_bytes());
    }
    let mut body = ifinfomsg(ifindex);
    push_attr(&mut body, sys::IFLA_XDP | sys::NLA_F_NESTED, &nested);
    let mut nl = Netlink::open()?;
    for (ty, fl, payload) in nl.request(sys::RTM_SETLINK, sys::NLM_F_ACK, &body)? {
        if ty == sys::NLMSG_ERROR {
            return check_ack(fl, &payload, op);
        }
    }
    Err(Error::Config(format!("{op}: no acknowledgement from the kernel")))
}

/// Attaches `prog` to `ifindex` the pre-link way (`RTM_SETLINK`, `IFLA_XDP_FD`). Such an
/// attachment outlives the process: Rampart itself uses BPF links, this is for tests and tools.
/// `mode_flags` is `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE` (see [`crate::AttachMode`]).
pub fn xdp_attach_netlink(ifindex: u32, prog: std::os::fd::BorrowedFd<'_>, mode_flags: u32) -> Result<()> {
    set_xdp(ifindex, prog.as_raw_fd(), mode_flags, None, "netlink RTM_SETLINK (attach XDP)")
}

/// Detaches the netlink-attached program of mode `mode_flags` from `ifindex`. With `expected`,
/// only if that program is still the one attached (`XDP_FLAGS_REPLACE`). Fails with `EBUSY` when
/// the program is held by a BPF link.
pub fn xdp_detach_netlink(ifindex: u32, mode_flags: u32, expected: Option<std::os::fd::BorrowedFd<'_>>) -> Result<()> {
    let (flags, exp) = match expected {
        Some(fd) => (mode_flags | sys::XDP_FLAGS_REPLACE, Some(fd.as_raw_fd())),
        None => (mode_flags, None),
    };
    set_xdp(ifindex, -1, flags, exp, "netlink RTM_SETLINK (detach XDP)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_walk_stops_on_garbage() {
        let mut b = Vec::new();
        push_attr(&mut b, 7, &[1, 2, 3]);
        push_attr(&mut b, 9 | sys::NLA_F_NESTED, &[4; 8]);
        let got: Vec<_> = attrs(&b).map(|(t, p)| (t, p.len())).collect();
        assert_eq!(got, vec![(7, 3), (9, 8)]);
        // A length running past the buffer ends the walk instead of panicking.
        let mut bad = b.clone();
        bad[0] = 200;
        assert_eq!(attrs(&bad).count(), 0);
        assert_eq!(attrs(&b[..3]).count(), 0);
    }

    #[test]
    fn ack_errors_carry_errno() {
        let mut p = (-libc::EBUSY).to_ne_bytes().to_vec();
        p.extend_from_slice(&[0; 16]);
        let e = check_ack(0, &p, "x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBUSY));
        assert!(check_ack(0, &0i32.to_ne_bytes(), "x").is_ok());
    }
}
