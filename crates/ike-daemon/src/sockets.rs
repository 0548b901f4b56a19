//! The daemon's UDP sockets: one on port 500 and one on port 4500 for each local address (IPv4
//! and IPv6), non-blocking, watched by one epoll instance; and the RFC 3948 framing of port
//! 4500: the four-byte non-ESP marker in front of IKE messages, one-byte NAT keepalives, and
//! ESP-in-UDP that the data plane should have taken before it reached the kernel.
//!
//! Nothing here interprets IKE; a datagram that is neither framed IKE nor a keepalive is
//! counted and dropped, never passed on.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::epoll;

use crate::waker::Waker;
use rampart_ike::event::Transmit;

//= https://www.rfc-editor.org/rfc/rfc3948#section-2.2
//# The Non-ESP Marker is 4 zero-valued bytes aligning with the SPI field of an ESP packet.
const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// What arrived on a socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// An IKE message (the marker removed on port 4500).
    Ike(&'a [u8]),
    /// A NAT keepalive (RFC 3948 section 2.3): one byte 0xff.
    Keepalive,
    /// ESP in UDP on port 4500 (the data plane's business; it reached the kernel instead).
    Esp,
    /// Too short to be anything.
    Runt,
}

/// Sorts a datagram from a port-4500 socket (`nat_t`) or a port-500 socket.
pub fn classify(nat_t: bool, data: &[u8]) -> Inbound<'_> {
    if !nat_t {
        return if data.is_empty() { Inbound::Runt } else { Inbound::Ike(data) };
    }
    match data {
        [0xff] => Inbound::Keepalive,
        [a, b, c, d, rest @ ..] if [*a, *b, *c, *d] == NON_ESP_MARKER => {
            if rest.is_empty() {
                Inbound::Runt
            } else {
                Inbound::Ike(rest)
            }
        }
        d if d.len() >= 8 => Inbound::Esp,
        _ => Inbound::Runt,
    }
}

/// One bound socket.
#[derive(Debug)]
struct Bound {
    sock: UdpSocket,
    local: SocketAddr,
    nat_t: bool,
}

/// Why a datagram could not be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// No socket is bound to the source address.
    NoSocket(SocketAddr),
    /// The kernel refused it (buffer full, unreachable...).
    Kernel(io::ErrorKind),
}

/// The sockets of the daemon, indexed by token (their position; sockets are only ever added,
/// so a token never changes meaning).
#[derive(Debug)]
pub struct SocketSet {
    sockets: Vec<Bound>,
    by_addr: HashMap<SocketAddr, usize>,
    /// The addresses bound, in order.
    ips: Vec<IpAddr>,
}

/// One nonblocking UDP socket on `local`, with room for bursts.
fn bind_one(local: SocketAddr, nat_t: bool) -> Result<Bound, (SocketAddr, io::Error)> {
    let sock = UdpSocket::bind(local).map_err(|e| (local, e))?;
    sock.set_nonblocking(true).map_err(|e| (local, e))?;
    // Bursts of thousands of IKE_SA_INITs: room in the kernel instead of drops.
    let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&sock, 4 << 20);
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(&sock, 4 << 20);
    let local = sock.local_addr().map_err(|e| (local, e))?;
    Ok(Bound { sock, local, nat_t })
}

impl SocketSet {
    /// Binds `port` and `port_nat_t` on every address. The error names the address.
    pub fn bind(addrs: &[IpAddr], port: u16, port_nat_t: u16) -> Result<SocketSet, (SocketAddr, io::Error)> {
        let mut set = SocketSet { sockets: Vec::new(), by_addr: HashMap::new(), ips: Vec::new() };
        set.add(addrs, port, port_nat_t)?;
        Ok(set)
    }

    /// Binds `port` and `port_nat_t` on the addresses of `addrs` that have no sockets yet (a
    /// reload that adds local addresses), all or none: on an error nothing is added. Returns
    /// the index of the first new socket; register the new ones with [`Poller::add`].
    pub fn add(&mut self, addrs: &[IpAddr], port: u16, port_nat_t: u16) -> Result<usize, (SocketAddr, io::Error)> {
        let first = self.sockets.len();
        let mut new = Vec::new();
        let mut new_ips = Vec::new();
        for ip in addrs {
            if self.ips.contains(ip) || new_ips.contains(ip) {
                continue;
            }
            new_ips.push(*ip);
            for (p, nat_t) in [(port, false), (port_nat_t, true)] {
                new.push(bind_one(SocketAddr::new(*ip, p), nat_t)?);
            }
        }
        for b in new {
            self.by_addr.insert(b.local, self.sockets.len());
            self.sockets.push(b);
        }
        self.ips.extend(new_ips);
        Ok(first)
    }

    /// How many sockets.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// The bound addresses.
    pub fn local_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sockets.iter().map(|b| b.local)
    }

    /// Registers the sockets from index `first` on with `ep`, socket `i` under token `base + i`.
    pub fn register(&self, ep: &OwnedFd, base: u64, first: usize) -> io::Result<()> {
        for (i, b) in self.sockets.iter().enumerate().skip(first) {
            epoll::add(ep, b.sock.as_fd(), epoll::EventData::new_u64(base + i as u64), epoll::EventFlags::IN)?;
        }
        Ok(())
    }

    /// The addresses with sockets.
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// Reads one datagram from socket `i` into `buf`: `(local, remote, length, nat_t)`, or
    /// `None` when there is nothing to read.
    pub fn recv(&self, i: usize, buf: &mut [u8]) -> Option<(SocketAddr, SocketAddr, usize, bool)> {
        let b = self.sockets.get(i)?;
        match b.sock.recv_from(buf) {
            Ok((n, from)) => Some((b.local, from, n, b.nat_t)),
            Err(_) => None,
        }
    }

    /// Sends a datagram from the socket bound to `t.from`, framed for its port (the non-ESP
    /// marker on the NAT-T port, except for keepalives).
    pub fn send(&self, t: &Transmit, scratch: &mut Vec<u8>) -> Result<(), SendError> {
        let i = *self.by_addr.get(&t.from).ok_or(SendError::NoSocket(t.from))?;
        let b = &self.sockets[i];
        let bytes: &[u8] = if b.nat_t && t.bytes != [0xff] {
            scratch.clear();
            scratch.extend_from_slice(&NON_ESP_MARKER);
            scratch.extend_from_slice(&t.bytes);
            scratch
        } else {
            &t.bytes
        };
        b.sock.send_to(bytes, t.to).map(|_| ()).map_err(|e| SendError::Kernel(e.kind()))
    }
}

/// What woke a [`Poller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ready {
    /// The waker (another thread has something for the loop).
    Waker,
    /// Socket `i` of the [`SocketSet`] has datagrams.
    Socket(usize),
}

/// One epoll instance over a waker and every socket of a set.
pub struct Poller {
    ep: OwnedFd,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").finish_non_exhaustive()
    }
}

impl Poller {
    /// Watches `waker` and every socket of `sockets`.
    pub fn new(sockets: &SocketSet, waker: &Waker) -> io::Result<Poller> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(&ep, waker.as_fd(), epoll::EventData::new_u64(0), epoll::EventFlags::IN)?;
        sockets.register(&ep, 1, 0)?;
        Ok(Poller { ep })
    }

    /// Watches the sockets of `sockets` from index `first` on (added by [`SocketSet::add`]).
    pub fn add(&self, sockets: &SocketSet, first: usize) -> io::Result<()> {
        sockets.register(&self.ep, 1, first)
    }

    /// Waits at most `timeout` for something to read; appends what is ready to `out`.
    pub fn wait(&self, timeout: Duration, out: &mut Vec<Ready>) {
        let ts =
            rustix::event::Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: i64::from(timeout.subsec_nanos()) };
        // (epoll events hold a pointer-sized union and are not Send: a fresh buffer per wait.)
        let mut events: Vec<epoll::Event> = Vec::with_capacity(64);
        match epoll::wait(&self.ep, rustix::buffer::spare_capacity(&mut events), Some(&ts)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            // Nothing sensible to do but try again on the next turn.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        out.extend(events.iter().map(|e| match e.data.u64() {
            0 => Ready::Waker,
            t => Ready::Socket((t - 1) as usize),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_on_4500() {
        assert_eq!(classify(true, &[0xff]), Inbound::Keepalive);
        assert_eq!(classify(true, &[0, 0, 0, 0, 1, 2]), Inbound::Ike(&[1, 2]));
        assert_eq!(classify(true, &[0, 0, 0, 0]), Inbound::Runt);
        assert_eq!(classify(true, &[0, 0, 1]), Inbound::Runt);
        assert_eq!(classify(true, &[]), Inbound::Runt);
        assert_eq!(classify(true, &[0, 0, 0, 1, 0, 0, 0, 1]), Inbound::Esp);
        assert_eq!(classify(true, &[0, 0, 0, 1, 0]), Inbound::Runt);
        // Port 500 carries IKE as it is.
        assert_eq!(classify(false, &[0, 0, 0, 0, 1]), Inbound::Ike(&[0, 0, 0, 0, 1]));
        assert_eq!(classify(false, &[0xff]), Inbound::Ike(&[0xff]));
        assert_eq!(classify(false, &[]), Inbound::Runt);
    }

    #[test]
    fn addresses_added_later_are_bound_and_watched_all_or_none() {
        let (a, b, c) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let mut set = SocketSet::bind(&[a], 0, 0).unwrap();
        assert_eq!((set.len(), set.ips()), (2, &[a][..]));
        let waker = Waker::new().unwrap();
        let poller = Poller::new(&set, &waker).unwrap();

        // An address that is not local refuses the whole addition.
        let foreign: IpAddr = "192.0.2.123".parse().unwrap();
        let (addr, _) = set.add(&[c, foreign], 0, 0).unwrap_err();
        assert_eq!(addr.ip(), foreign);
        assert_eq!((set.len(), set.ips()), (2, &[a][..]), "nothing added");

        // Known addresses are skipped, new ones bound after the old sockets.
        let first = set.add(&[a, b], 0, 0).unwrap();
        assert_eq!((first, set.len(), set.ips()), (2, 4, &[a, b][..]));
        poller.add(&set, first).unwrap();
        let to = set.local_addrs().nth(3).unwrap();
        assert_eq!(to.ip(), b);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"hello", to).unwrap();
        let mut ready = Vec::new();
        for _ in 0..50 {
            poller.wait(Duration::from_millis(100), &mut ready);
            if !ready.is_empty() {
                break;
            }
        }
        assert!(matches!(ready[..], [Ready::Socket(3)]), "{ready:?}");
        let mut buf = [0u8; 16];
        let (local, remote, n, nat_t) = set.recv(3, &mut buf).unwrap();
        assert_eq!((local, remote, &buf[..n], nat_t), (to, client.local_addr().unwrap(), &b"hello"[..], true));
    }
}
