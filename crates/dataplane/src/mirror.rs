//! The neighbour and route mirror: the kernel stays the control plane for ARP/ND and routing
//! (DESIGN.md), and the data plane reads a copy of its tables.
//!
//! A background thread dumps links, addresses, main-table routes and neighbours over rtnetlink,
//! then follows their multicast updates, and publishes each new state as an immutable
//! [`NetState`] behind an [`ArcSwap`] with a generation counter. A worker compares the generation
//! once per burst (one relaxed load) and takes the new `Arc` only when it moved: no lock, no
//! allocation, no system call on the hot path.
//!
//! When a worker finds no neighbour for a next hop it posts a resolve request (bounded channel,
//! never blocks; rate limited by the worker); this thread asks the kernel to resolve it
//! (`RTM_NEWNEIGH` with `NTF_USE`), and the kernel's answer arrives as a neighbour update. The
//! data plane never answers or sends ARP/ND itself.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::netlink::{GROUPS, RtSocket, Update};

/// One interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Name.
    pub name: String,
    /// MAC address (none for links without one).
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
}

/// A route's next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Outgoing interface.
    pub oif: u32,
    /// Gateway; `None` for an on-link destination (the destination is the neighbour).
    pub gateway: Option<IpAddr>,
    /// Metric (lower wins among routes of the same prefix).
    pub metric: u32,
}

/// Longest-prefix-match table of one family: one hash map per prefix length, probed from the
/// longest length down (a gateway has few distinct lengths).
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    /// (prefix length, masked destination -> best route), longest first.
    by_len: Vec<(u8, HashMap<u128, Route>)>,
}

fn mask(addr: u128, len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let shift = u32::from(width - len.min(width));
        (addr >> shift) << shift
    }
}

fn key(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

impl RouteTable {
    fn build(routes: &BTreeMap<(IpAddr, u8), Vec<Route>>, v6: bool) -> RouteTable {
        let mut by_len: BTreeMap<u8, HashMap<u128, Route>> = BTreeMap::new();
        for ((dst, len), list) in routes {
            if dst.is_ipv6() != v6 {
                continue;
            }
            if let Some(best) = list.iter().min_by_key(|r| r.metric) {
                let (k, width) = key(*dst);
                by_len.entry(*len).or_default().insert(mask(k, *len, width), *best);
            }
        }
        RouteTable { by_len: by_len.into_iter().rev().collect() }
    }

    /// The route for `dst` (longest prefix).
    #[inline]
    pub fn lookup(&self, dst: IpAddr) -> Option<Route> {
        let (k, width) = key(dst);
        self.by_len.iter().find_map(|(len, m)| m.get(&mask(k, *len, width)).copied())
    }
}

/// A copy of the kernel's tables, immutable once published.
#[derive(Clone, Debug, Default)]
pub struct NetState {
    /// Counts publications; a worker compares it to decide whether to reload.
    pub generation: u64,
    /// Links by index.
    pub links: HashMap<u32, Link>,
    /// Addresses: (interface, address, prefix length).
    pub addrs: Vec<(u32, IpAddr, u8)>,
    /// IPv4 routes (main table, unicast).
    pub routes4: RouteTable,
    /// IPv6 routes.
    pub routes6: RouteTable,
    /// Neighbours with a usable link-layer address.
    pub neighbours: HashMap<(u32, IpAddr), [u8; 6]>,
}

/// Where to send a packet for `dst`: the interface, its MAC, and the neighbour's MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Outgoing interface.
    pub oif: u32,
    /// The address that must be resolved: the gateway, or `dst` itself on-link.
    pub neighbour: IpAddr,
    /// The interface's MAC (our source address).
    pub src_mac: [u8; 6],
    /// The neighbour's MAC, if the kernel knows it.
    pub dst_mac: Option<[u8; 6]>,
}

impl NetState {
    /// The route for `dst`.
    pub fn route(&self, dst: IpAddr) -> Option<Route> {
        match dst {
            IpAddr::V4(_) => self.routes4.lookup(dst),
            IpAddr::V6(_) => self.routes6.lookup(dst),
        }
    }

    /// Route and neighbour for `dst`; `None` when there is no route (or the interface has no MAC).
    pub fn next_hop(&self, dst: IpAddr) -> Option<NextHop> {
        let r = self.route(dst)?;
        let src_mac = self.links.get(&r.oif)?.mac?;
        let neighbour = r.gateway.unwrap_or(dst);
        Some(NextHop { oif: r.oif, neighbour, src_mac, dst_mac: self.neighbours.get(&(r.oif, neighbour)).copied() })
    }

    /// The first address of `ifindex` of `dst`'s family (source of ICMP errors); prefers a
    /// global IPv6 address over a link-local one.
    pub fn address_on(&self, ifindex: u32, v6: bool) -> Option<IpAddr> {
        let mut candidates =
            self.addrs.iter().filter(|(i, a, _)| *i == ifindex && a.is_ipv6() == v6).map(|(_, a, _)| *a);
        let first = candidates.clone().next();
        candidates.find(|a| !matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)).or(first)
    }

    /// Every address of `ifindex`.
    pub fn addresses_of(&self, ifindex: u32) -> Vec<IpAddr> {
        self.addrs.iter().filter(|(i, _, _)| *i == ifindex).map(|(_, a, _)| *a).collect()
    }

    /// A link by name.
    pub fn link_by_name(&self, name: &str) -> Option<&Link> {
        self.links.values().find(|l| l.name == name)
    }

    /// A state from explicit tables, as the mirror would publish them at `generation`: links,
    /// addresses (interface, address, prefix length), routes ((destination, prefix length),
    /// route) and resolved neighbours ((interface, address), MAC). For tools and tests that
    /// run the data path without a kernel to mirror.
    pub fn from_parts(
        generation: u64,
        links: Vec<Link>,
        addrs: Vec<(u32, IpAddr, u8)>,
        routes: Vec<((IpAddr, u8), Route)>,
        neighbours: Vec<((u32, IpAddr), [u8; 6])>,
    ) -> NetState {
        let mut t = KernelTables::default();
        for l in links {
            t.links.insert(l.ifindex, l);
        }
        t.addrs = addrs;
        for (key, r) in routes {
            t.routes.entry(key).or_default().push(r);
        }
        t.neighbours = neighbours.into_iter().collect();
        t.publish(generation)
    }
}

/// The mutable copy of the kernel's tables that the mirror thread keeps and publishes from.
#[derive(Default)]
struct KernelTables {
    links: HashMap<u32, Link>,
    addrs: Vec<(u32, IpAddr, u8)>,
    routes: BTreeMap<(IpAddr, u8), Vec<Route>>,
    neighbours: HashMap<(u32, IpAddr), [u8; 6]>,
}

impl KernelTables {
    fn apply(&mut self, u: Update) {
        match u {
            Update::Link { ifindex, name, mac, mtu } => {
                self.links.insert(ifindex, Link { ifindex, name, mac, mtu });
            }
            Update::LinkGone { ifindex } => {
                self.links.remove(&ifindex);
                self.addrs.retain(|(i, _, _)| *i != ifindex);
                self.neighbours.retain(|(i, _), _| *i != ifindex);
                for list in self.routes.values_mut() {
                    list.retain(|r| r.oif != ifindex);
                }
                self.routes.retain(|_, l| !l.is_empty());
            }
            Update::Addr { ifindex, addr, prefix_len, added } => {
                self.addrs.retain(|(i, a, _)| !(*i == ifindex && *a == addr));
                if added {
                    self.addrs.push((ifindex, addr, prefix_len));
                }
            }
            Update::Route { dst, prefix_len, oif, gateway, metric, added } => {
                let list = self.routes.entry((dst, prefix_len)).or_default();
                list.retain(|r| !(r.oif == oif && r.gateway == gateway && r.metric == metric));
                if added {
                    list.push(Route { oif, gateway, metric });
                }
                if list.is_empty() {
                    self.routes.remove(&(dst, prefix_len));
                }
            }
            Update::Neigh { ifindex, addr, mac } => match mac {
                Some(m) => {
                    self.neighbours.insert((ifindex, addr), m);
                }
                None => {
                    self.neighbours.remove(&(ifindex, addr));
                }
            },
        }
    }

    fn publish(&self, generation: u64) -> NetState {
        NetState {
            generation,
            links: self.links.clone(),
            addrs: self.addrs.clone(),
            routes4: RouteTable::build(&self.routes, false),
            routes6: RouteTable::build(&self.routes, true),
            neighbours: self.neighbours.clone(),
        }
    }
}

/// A request from a worker: resolve this neighbour on this interface.
pub type ResolveRequest = (u32, IpAddr);

/// The shared end of the mirror: what workers and the control thread read.
pub struct NetMirror {
    generation: AtomicU64,
    state: ArcSwap<NetState>,
    resolve: SyncSender<ResolveRequest>,
}

impl std::fmt::Debug for NetMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetMirror").field("generation", &self.generation()).finish_non_exhaustive()
    }
}

impl NetMirror {
    /// A mirror that never changes: `state`, with no thread behind it (resolve requests are
    /// refused). For tools and tests that run the data path without a kernel to mirror.
    pub fn fixed(state: NetState) -> Arc<NetMirror> {
        let (tx, _rx) = std::sync::mpsc::sync_channel(1);
        Arc::new(NetMirror {
            generation: AtomicU64::new(state.generation),
            state: ArcSwap::from_pointee(state),
            resolve: tx,
        })
    }

    /// The generation of the latest published state (one relaxed load: call it per burst).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The latest state.
    pub fn load(&self) -> Arc<NetState> {
        self.state.load_full()
    }

    /// Asks the mirror thread to have the kernel resolve a neighbour. Never blocks; returns
    /// false when the request queue is full (the caller retries later).
    pub fn request_resolve(&self, ifindex: u32, addr: IpAddr) -> bool {
        match self.resolve.try_send((ifindex, addr)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    fn publish(&self, t: &KernelTables) {
        let g = self.generation.load(Ordering::Relaxed) + 1;
        self.state.store(Arc::new(t.publish(g)));
        self.generation.store(g, Ordering::Release);
    }
}

/// The running mirror: the shared handle and the thread.
pub struct MirrorThread {
    /// What workers read.
    pub mirror: Arc<NetMirror>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl MirrorThread {
    /// Dumps the kernel's tables (in the calling thread's network namespace), publishes the
    /// first state, then follows updates on a thread of its own.
    pub fn start() -> std::io::Result<MirrorThread> {
        // Subscribe before dumping so that nothing between the dump and the loop is missed.
        let mut events = RtSocket::open(GROUPS, Duration::from_millis(50))?;
        let mut dump = RtSocket::open(0, Duration::from_secs(2))?;
        let mut tables = KernelTables::default();
        for u in dump.dump_all()? {
            tables.apply(u);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(256);
        let mirror = Arc::new(NetMirror {
            generation: AtomicU64::new(1),
            state: ArcSwap::from_pointee(tables.publish(1)),
            resolve: tx,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (mirror, stop) = (mirror.clone(), stop.clone());
            std::thread::Builder::new()
                .name("rampart-mirror".into())
                .spawn(move || follow(&mut events, &mut dump, tables, &mirror, &rx, &stop))?
        };
        Ok(MirrorThread { mirror, handle: Some(handle), stop })
    }

    /// Stops the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MirrorThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn follow(
    events: &mut RtSocket,
    dump: &mut RtSocket,
    mut tables: KernelTables,
    mirror: &NetMirror,
    requests: &Receiver<ResolveRequest>,
    stop: &AtomicBool,
) {
    let mut last_request: HashMap<ResolveRequest, std::time::Instant> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        let mut changed = false;
        match events.recv() {
            Ok(Some(batch)) => {
                for u in batch.updates {
                    tables.apply(u);
                    changed = true;
                }
                // Drain what is already queued before publishing once.
                while let Ok(Some(more)) = events.recv_nonblocking() {
                    for u in more.updates {
                        tables.apply(u);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                // ENOBUFS: updates were lost; start over from a fresh dump.
                if e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error()) {
                    if let Ok(all) = dump.dump_all() {
                        let mut fresh = KernelTables::default();
                        for u in all {
                            fresh.apply(u);
                        }
                        tables = fresh;
                        changed = true;
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if changed {
            mirror.publish(&tables);
        }
        let now = std::time::Instant::now();
        while let Ok(req) = requests.try_recv() {
            // Workers rate-limit per worker; this limits across workers.
            if last_request.get(&req).is_some_and(|t| now.duration_since(*t) < Duration::from_millis(200)) {
                continue;
            }
            last_request.insert(req, now);
            let _ = dump.request_resolve(req.0, req.1);
        }
        if last_request.len() > 4096 {
            last_request.retain(|_, t| now.duration_since(*t) < Duration::from_secs(1));
        }
    }
}

impl RtSocket {
    fn recv_nonblocking(&mut self) -> std::io::Result<Option<crate::netlink::Batch>> {
        self.recv_with(rustix::net::RecvFlags::DONTWAIT)
    }
}

/// Unspecified address of a family, for tests and defaults.
pub fn unspecified(v6: bool) -> IpAddr {
    if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(oif: u32, gw: Option<&str>, metric: u32) -> Route {
        Route { oif, gateway: gw.map(|g| g.parse().unwrap()), metric }
    }

    #[test]
    fn longest_prefix_and_lowest_metric_win() {
        let mut t = KernelTables::default();
        let add = |t: &mut KernelTables, dst: &str, len, route: Route| {
            t.apply(Update::Route {
                dst: dst.parse().unwrap(),
                prefix_len: len,
                oif: route.oif,
                gateway: route.gateway,
                metric: route.metric,
                added: true,
            })
        };
        add(&mut t, "0.0.0.0", 0, r(1, Some("10.0.0.1"), 0));
        add(&mut t, "10.1.0.0", 16, r(2, None, 100));
        add(&mut t, "10.1.0.0", 16, r(3, None, 50));
        add(&mut t, "10.1.2.0", 24, r(4, Some("10.1.0.9"), 0));
        add(&mut t, "fd00::", 64, r(5, None, 256));
        t.apply(Update::Link { ifindex: 4, name: "x".into(), mac: Some([2; 6]), mtu: 1500 });
        t.apply(Update::Neigh { ifindex: 4, addr: "10.1.0.9".parse().unwrap(), mac: Some([9; 6]) });
        let s = t.publish(1);
        assert_eq!(s.route("10.1.2.3".parse().unwrap()), Some(r(4, Some("10.1.0.9"), 0)));
        assert_eq!(s.route("10.1.3.3".parse().unwrap()), Some(r(3, None, 50)));
        assert_eq!(s.route("192.0.2.1".parse().unwrap()), Some(r(1, Some("10.0.0.1"), 0)));
        assert_eq!(s.route("fd00::7".parse().unwrap()), Some(r(5, None, 256)));
        assert_eq!(s.route("fd01::7".parse().unwrap()), None);
        let nh = s.next_hop("10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!((nh.oif, nh.src_mac, nh.dst_mac), (4, [2; 6], Some([9; 6])));
        // Removing the better route falls back to the other one.
        t.apply(Update::Route {
            dst: "10.1.0.0".parse().unwrap(),
            prefix_len: 16,
            oif: 3,
            gateway: None,
            metric: 50,
            added: false,
        });
        assert_eq!(t.publish(2).route("10.1.3.3".parse().unwrap()), Some(r(2, None, 100)));
        // A failed neighbour disappears.
        t.apply(Update::Neigh { ifindex: 4, addr: "10.1.0.9".parse().unwrap(), mac: None });
        assert_eq!(t.publish(3).next_hop("10.1.2.3".parse().unwrap()).unwrap().dst_mac, None);
    }

    #[test]
    fn source_address_prefers_global_ipv6() {
        let mut t = KernelTables::default();
        for a in ["fe80::1", "fd00::1", "10.0.0.1"] {
            t.apply(Update::Addr { ifindex: 2, addr: a.parse().unwrap(), prefix_len: 64, added: true });
        }
        let s = t.publish(1);
        assert_eq!(s.address_on(2, true), Some("fd00::1".parse().unwrap()));
        assert_eq!(s.address_on(2, false), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(s.address_on(3, false), None);
    }
}
