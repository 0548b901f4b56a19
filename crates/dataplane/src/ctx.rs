//! What one worker's burst paths work with, apart from its sockets: its SA runtimes, the
//! tables and kernel state it reads, its counters, rate limits and scratch space ([`Ctx`]), and
//! what a burst hands back for transmission ([`BurstOut`]).
//!
//! Shared by the worker loop and the two burst paths (`outbound`, `inbound`), which never see a
//! socket: they take frames from the UMEM and return descriptors to send, so that the whole
//! packet path runs over in-memory frames in tests. Nothing here does I/O; `reload_tables`
//! allocates and runs only when the tables moved.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrayvec::ArrayVec;
use rampart_esp::{InboundSa, OutboundSa, SaSlots};
use rampart_nic::{Desc, KernelTap};
use rampart_sadb::Reader;

use crate::config::CryptoChoice;
use crate::frame::TokenBucket;
use crate::mirror::{NetMirror, NetState, NextHop};
use crate::reasm::Reassembly;
use crate::stats::{Counter, Values};
use crate::tables::{SaEntry, Tables};

/// Largest burst taken from a ring at once.
pub const BURST: usize = 64;

/// An outbound SA as one worker runs it.
pub(crate) struct OutRt {
    pub entry: Arc<SaEntry>,
    pub sa: OutboundSa,
    /// Next hop of the SA's peer, valid for mirror generation `.0`.
    pub next_hop: Option<(u64, Option<NextHop>)>,
    /// Largest encapsulation overhead (headers + trailer), for the MTU check.
    pub overhead: usize,
}

/// An inbound SA as one worker runs it: its own keys, the SA's one replay window (shared with
/// the other workers through [`crate::tables::SaShared`]).
pub(crate) struct InRt {
    pub entry: Arc<SaEntry>,
    pub sa: InboundSa,
}

/// Per-burst accounting of one SA.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SaBurst {
    pub slot: u32,
    pub packets: u64,
    pub bytes: u64,
    pub max_seq: u64,
}

/// Everything of a worker except its UMEM and sockets (split so both can be borrowed).
pub(crate) struct Ctx {
    pub index: usize,
    pub mirror: Arc<NetMirror>,
    pub net: Arc<NetState>,
    pub reader: Reader,
    pub crypto: CryptoChoice,
    pub out_rt: Vec<Option<OutRt>>,
    pub in_rt: Vec<Option<InRt>>,
    pub values: Values,
    pub lan_ifindex: u32,
    pub wan_ifindex: u32,
    pub wan_mtu_override: Option<u32>,
    pub encap_port: u16,
    pub icmp: TokenBucket,
    pub icmp_ident: u16,
    /// Recent resolve requests (interface, address, ms) for the per-worker rate limit.
    pub resolve_recent: [(u32, IpAddr, u64); 16],
    pub resolve_next: usize,
    pub unknown_spi_logged_ms: u64,
    pub now_ms: u64,
    pub now_s: u64,
    pub scratch: Box<[u8; 2048]>,
    pub reasm: Reassembly,
    /// Where WAN datagrams that are not ESP go (see `hand_to_kernel`); `None`: dropped, counted.
    pub kernel: Option<Arc<KernelTap>>,
}

/// What a worker's burst paths are set up with (the part of [`crate::worker::WorkerParams`]
/// that is not about sockets, cores or idling).
#[derive(Clone, Debug)]
pub struct PathParams {
    /// Worker number (in logs and ICMP identifiers).
    pub index: usize,
    /// The kernel's tables.
    pub mirror: Arc<NetMirror>,
    /// The SA database (usage, events).
    pub reader: Reader,
    /// Crypto backend choice.
    pub crypto: CryptoChoice,
    /// LAN interface.
    pub lan_ifindex: u32,
    /// WAN interface.
    pub wan_ifindex: u32,
    /// WAN MTU override.
    pub wan_mtu: Option<u32>,
    /// ESP-in-UDP port.
    pub encap_port: u16,
    /// ICMP errors per second.
    pub icmp_rate: u32,
    /// The kernel's receive path for reassembled datagrams that are not ESP.
    pub kernel: Option<Arc<KernelTap>>,
}

/// The frames a burst hands back for transmission: at most one per received frame on each side.
#[derive(Debug, Default)]
pub(crate) struct BurstOut {
    /// For the LAN socket (decrypted packets, ICMP errors, bypass to the LAN).
    pub lan_tx: ArrayVec<Desc, BURST>,
    /// For the WAN socket (ESP, bypass to the WAN).
    pub wan_tx: ArrayVec<Desc, BURST>,
}

impl BurstOut {
    /// Empties both lists for the next burst.
    pub fn clear(&mut self) {
        self.lan_tx.clear();
        self.wan_tx.clear();
    }
}

/// A worker's outbound runtimes as the ESP burst sees them: slot -> `OutboundSa`.
pub(crate) struct OutboundSas<'a>(pub &'a mut [Option<OutRt>]);

impl SaSlots<OutboundSa> for OutboundSas<'_> {
    #[inline]
    fn sa(&self, slot: u32) -> Option<&OutboundSa> {
        self.0.get(slot as usize).and_then(Option::as_ref).map(|r| &r.sa)
    }

    #[inline]
    fn sa_mut(&mut self, slot: u32) -> Option<&mut OutboundSa> {
        self.0.get_mut(slot as usize).and_then(Option::as_mut).map(|r| &mut r.sa)
    }
}

/// A worker's inbound runtimes as the ESP burst sees them: slot -> `InboundSa`.
pub(crate) struct InboundSas<'a>(pub &'a mut [Option<InRt>]);

impl SaSlots<InboundSa> for InboundSas<'_> {
    #[inline]
    fn sa(&self, slot: u32) -> Option<&InboundSa> {
        self.0.get(slot as usize).and_then(Option::as_ref).map(|r| &r.sa)
    }

    #[inline]
    fn sa_mut(&mut self, slot: u32) -> Option<&mut InboundSa> {
        self.0.get_mut(slot as usize).and_then(Option::as_mut).map(|r| &mut r.sa)
    }
}

/// Drops frames back into the UMEM.
#[inline]
pub(crate) fn free_frames(umem: &mut rampart_nic::Umem, addrs: &[u64]) {
    for a in addrs {
        let _ = umem.free(*a);
    }
}

impl Ctx {
    /// A worker's context over the tables `tables`, with every SA runtime built. `rx_offset`
    /// is where received frames start in a UMEM frame (for reassembled datagrams).
    pub fn new(p: PathParams, tables: &Tables, rx_offset: u32, now_s: u64) -> Ctx {
        let net = p.mirror.load();
        let mut ctx = Ctx {
            index: p.index,
            mirror: p.mirror,
            net,
            reader: p.reader,
            crypto: p.crypto,
            out_rt: Vec::new(),
            in_rt: Vec::new(),
            values: Values::default(),
            lan_ifindex: p.lan_ifindex,
            wan_ifindex: p.wan_ifindex,
            wan_mtu_override: p.wan_mtu,
            encap_port: p.encap_port,
            icmp: TokenBucket::new(p.icmp_rate),
            icmp_ident: (p.index as u16) << 12,
            resolve_recent: [(0, IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0); 16],
            resolve_next: 0,
            unknown_spi_logged_ms: 0,
            now_ms: 0,
            now_s,
            scratch: Box::new([0u8; 2048]),
            reasm: Reassembly::new(rx_offset),
            kernel: p.kernel,
        };
        ctx.reload_tables(tables);
        ctx
    }

    /// Hands a WAN datagram that is not ESP to the kernel (IKE that arrived in fragments, which
    /// the kernel never saw whole): `to_kernel_packets`, or `not_esp` when there is no way in.
    /// A system call; only for such datagrams, never for ESP.
    pub fn hand_to_kernel(&mut self, ip: &[u8]) {
        match &self.kernel {
            Some(k) if k.deliver(ip).is_ok() => self.values.add(Counter::ToKernel, 1),
            _ => self.values.add(Counter::NotEsp, 1),
        }
    }

    /// The WAN MTU: configured, or the interface's.
    pub fn wan_mtu(&self) -> u32 {
        self.wan_mtu_override.or_else(|| self.net.links.get(&self.wan_ifindex).map(|l| l.mtu)).unwrap_or(1500)
    }

    /// Asks the mirror to have the kernel resolve `addr`, at most every 100 ms per address.
    pub fn request_resolve(&mut self, ifindex: u32, addr: IpAddr) {
        let now = self.now_ms;
        if self.resolve_recent.iter().any(|(i, a, t)| *i == ifindex && *a == addr && now.saturating_sub(*t) < 100) {
            return;
        }
        self.resolve_recent[self.resolve_next] = (ifindex, addr, now);
        self.resolve_next = (self.resolve_next + 1) % self.resolve_recent.len();
        if self.mirror.request_resolve(ifindex, addr) {
            self.values.add(Counter::ResolveRequests, 1);
        }
    }

    /// Picks up new tables: rebuilds the runtime of every SA whose record changed, keeps the
    /// others (and their expanded keys) as they are. Allocates; runs only when the tables moved.
    pub fn reload_tables(&mut self, t: &Tables) {
        let n = t.sas.len();
        self.out_rt.resize_with(n.max(self.out_rt.len()), || None);
        self.in_rt.resize_with(n.max(self.in_rt.len()), || None);
        for slot in 0..self.out_rt.len() {
            let entry = t.sas.get(slot).and_then(Option::as_ref);
            let out = &mut self.out_rt[slot];
            let inn = &mut self.in_rt[slot];
            let Some(e) = entry else {
                *out = None;
                *inn = None;
                continue;
            };
            let same = |old: &Arc<SaEntry>| old.id == e.id && old.version == e.version;
            match e.config.direction {
                rampart_esp::Direction::Outbound => {
                    *inn = None;
                    if out.as_ref().is_some_and(|r| same(&r.entry)) {
                        if let Some(r) = out.as_mut() {
                            r.entry = e.clone();
                        }
                        continue;
                    }
                    *out = OutboundSa::new(&e.config, self.crypto.backend_for(e.config.suite)).ok().map(|sa| {
                        let overhead = sa.max_header_growth() + sa.max_trailer_growth();
                        OutRt { entry: e.clone(), sa, next_hop: None, overhead }
                    });
                }
                rampart_esp::Direction::Inbound => {
                    *out = None;
                    if inn.as_ref().is_some_and(|r| same(&r.entry)) {
                        if let Some(r) = inn.as_mut() {
                            r.entry = e.clone();
                        }
                        continue;
                    }
                    let backend = self.crypto.backend_for(e.config.suite);
                    let built = match &e.shared.window {
                        Some(w) => InboundSa::new_shared(&e.config, backend, w.clone()),
                        None => InboundSa::new(&e.config, backend),
                    };
                    *inn = built.ok().map(|sa| InRt { entry: e.clone(), sa });
                }
            }
        }
        self.values.add(Counter::TableReloads, 1);
    }

    /// Accounts a burst's usage of the SAs in `bursts` in the database (one shared write per SA
    /// per burst) and turns lifetimes into events; a hard-expired SA stops for every worker.
    pub fn account(&mut self, bursts: &[SaBurst], outbound: bool) {
        for b in bursts {
            let entry = if outbound {
                self.out_rt.get(b.slot as usize).and_then(Option::as_ref).map(|r| (&r.entry, r.sa.status().expired))
            } else {
                self.in_rt.get(b.slot as usize).and_then(Option::as_ref).map(|r| (&r.entry, false))
            };
            let Some((e, runtime_expired)) = entry else { continue };
            self.reader.account(e.id, b.bytes, b.packets, self.now_s);
            if b.max_seq != 0 {
                self.reader.note_seq_used(e.id, b.max_seq);
            }
            let expiry =
                self.reader.check_lifetimes(e.id, e.config.spi, &e.config.lifetimes, e.install_time, self.now_s);
            if runtime_expired || matches!(expiry, rampart_sadb::Expiry::Hard(_)) {
                e.shared.expired.store(true, Ordering::Relaxed);
            }
        }
    }
}
