//! One worker: one pinned core, one UMEM, the LAN and WAN AF_XDP sockets of its queue pairs, and
//! its own SA runtimes. It polls, processes bursts of up to 64 frames (`ctx::BURST`) to completion and
//! transmits them, with no lock, no allocation and no system call on the hot path beyond the tx
//! kick (and, when idle in [`IdleMode::Poll`], a `poll(2)` sleep).
//!
//! ```text
//! loop {
//!     tables/mirror moved? -> take the new Arc, rebuild runtimes of changed SAs  (once per loop)
//!     for each queue pair:
//!         LAN rx burst -> outbound::process -> WAN tx (ESP) / LAN tx (ICMP) / bypass
//!         WAN rx burst -> inbound::process  -> LAN tx
//!         kick tx, reap completions, refill fill rings
//!     publish counters (relaxed stores into this worker's own cache lines)
//!     idle? spin a little, then poll(2) on the rx fds
//! }
//! ```
//!
//! A worker must never touch another worker's UMEM, sockets or runtimes; what it shares are the
//! immutable tables, the per-SA [`crate::tables::SaShared`] atomics and the SA database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rampart_nic::{Desc, Umem, XskSocket};
use rampart_telemetry::{LatencyCell, LatencyRecorder};

use crate::config::IdleMode;
use crate::ctx::{BURST, BurstOut, Ctx, PathParams};
use crate::stats::{Counter, WorkerStats};
use crate::tables::{Tables, TablesHandle};

/// The LAN and WAN sockets of one queue pair.
pub struct QueuePair {
    /// Cleartext side.
    pub lan: XskSocket,
    /// ESP side.
    pub wan: XskSocket,
}

impl QueuePair {
    /// The socket whose rx bursts go in direction `dir`: 0 outbound (the LAN), 1 inbound (the WAN).
    fn rx(&mut self, dir: usize) -> &mut XskSocket {
        if dir == 0 { &mut self.lan } else { &mut self.wan }
    }
}

/// What a worker runs on one rx burst: [`crate::outbound::process`] or [`crate::inbound::process`].
type ProcessBurst = fn(&mut Ctx, &Tables, &mut Umem, &[Desc], &mut BurstOut);

/// A worker ready to run.
pub struct Worker {
    pub(crate) ctx: Ctx,
    tables_handle: Arc<TablesHandle>,
    tables: Arc<Tables>,
    umem: Umem,
    pairs: Vec<QueuePair>,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    idle: IdleMode,
    poll_timeout_ms: u32,
    fill_batch: u32,
    /// Time of each rx burst from the rx ring to the tx ring, outbound then inbound: recorded
    /// here, flushed into `burst_latency` once a second without waiting.
    burst_recorders: [LatencyRecorder; 2],
    burst_latency: BurstLatency,
}

/// What a worker needs besides its sockets.
pub struct WorkerParams {
    /// What its burst paths work with.
    pub path: PathParams,
    /// The tables.
    pub tables: Arc<TablesHandle>,
    /// Published counters.
    pub stats: Arc<WorkerStats>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
    /// Idle behaviour.
    pub idle: IdleMode,
    /// Longest idle sleep.
    pub poll_timeout_ms: u32,
    /// Where the burst times go (read by the metrics endpoint).
    pub burst_latency: BurstLatency,
}

/// A worker's burst-time series, outbound (LAN rx) and inbound (WAN rx), as the metrics
/// endpoint reads them (`rampart_worker_burst_seconds{worker,direction}`).
#[derive(Clone, Debug, Default)]
pub struct BurstLatency {
    /// LAN rx bursts: classification, encryption, transmission.
    pub outbound: LatencyCell,
    /// WAN rx bursts: decryption, forwarding.
    pub inbound: LatencyCell,
}

impl Worker {
    /// A worker over its UMEM and sockets (fill rings are filled here).
    pub fn new(p: WorkerParams, mut umem: Umem, mut pairs: Vec<QueuePair>) -> Worker {
        let fill_batch = 2 * BURST as u32;
        for pair in &mut pairs {
            pair.lan.refill(&mut umem, u32::MAX);
            pair.wan.refill(&mut umem, u32::MAX);
        }
        let tables_handle = p.tables;
        let tables = tables_handle.load();
        let ctx = Ctx::new(p.path, &tables, umem.rx_offset(), rampart_sadb::clock::now());
        Worker {
            ctx,
            tables_handle,
            tables,
            umem,
            pairs,
            stats: p.stats,
            stop: p.stop,
            idle: p.idle,
            poll_timeout_ms: p.poll_timeout_ms,
            fill_batch,
            burst_recorders: Default::default(),
            burst_latency: p.burst_latency,
        }
    }

    /// Hands the recorded burst times to the shared series; `wait`: also when a scrape holds
    /// them (at exit), else they stay for the next try.
    fn flush_burst_times(&mut self, wait: bool) {
        let [out, inb] = &mut self.burst_recorders;
        for (r, cell) in [(out, &self.burst_latency.outbound), (inb, &self.burst_latency.inbound)] {
            if r.pending() == 0 {
                continue;
            }
            if wait {
                r.flush(cell);
            } else {
                let _ = r.try_flush(cell);
            }
        }
    }

    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        let start = Instant::now();
        let mut descs = [Desc::new(0, 0); BURST];
        let mut out = BurstOut::default();
        let mut idle_rounds = 0u32;
        let mut last_second = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            self.ctx.now_ms = start.elapsed().as_millis() as u64;
            if self.ctx.now_ms / 1000 != last_second {
                // Once a second, busy or not: wall-clock seconds for the database's usage area,
                // the kernel's ring statistics (a system call, never per burst).
                last_second = self.ctx.now_ms / 1000;
                self.ctx.now_s = rampart_sadb::clock::now();
                self.read_kernel_stats();
                let expired = self.ctx.reasm.expire(&mut self.umem, self.ctx.now_ms) as u64;
                for _ in 0..expired {
                    self.ctx.values.drop(rampart_esp::DropReason::FragmentTimeout);
                }
                self.ctx.values.publish(&self.stats);
                self.flush_burst_times(false);
            }
            if self.tables_handle.version() != self.tables.version {
                let t = self.tables_handle.load();
                self.ctx.reload_tables(&t);
                self.tables = t;
            }
            if self.ctx.mirror.generation() != self.ctx.net.generation {
                self.ctx.net = self.ctx.mirror.load();
            }
            let mut work = 0usize;
            for p in 0..self.pairs.len() {
                let pair = &mut self.pairs[p];
                // LAN rx (outbound: encrypt), then WAN rx (inbound: decrypt); each burst timed.
                for (dir, process) in [(0, crate::outbound::process as ProcessBurst), (1, crate::inbound::process)] {
                    let n = pair.rx(dir).rx_burst(&mut descs);
                    work += n;
                    if n == 0 {
                        continue;
                    }
                    let t0 = Instant::now();
                    self.ctx.values.burst(n);
                    out.clear();
                    process(&mut self.ctx, &self.tables, &mut self.umem, &descs[..n], &mut out);
                    transmit(&mut self.ctx, &mut self.umem, &mut pair.wan, &out.wan_tx, Counter::WanTxPackets);
                    transmit(&mut self.ctx, &mut self.umem, &mut pair.lan, &out.lan_tx, Counter::LanTxPackets);
                    self.burst_recorders[dir].record(t0.elapsed());
                    pair.rx(dir).refill(&mut self.umem, self.fill_batch);
                }
                for s in [&mut pair.lan, &mut pair.wan] {
                    let _ = s.kick_tx();
                    s.reap_completions(&mut self.umem);
                }
            }
            if work > 0 {
                idle_rounds = 0;
                self.ctx.values.publish(&self.stats);
                continue;
            }
            // Idle: top up the fill rings.
            for pair in &mut self.pairs {
                pair.lan.refill(&mut self.umem, u32::MAX);
                pair.wan.refill(&mut self.umem, u32::MAX);
            }
            idle_rounds += 1;
            if self.idle == IdleMode::Poll && idle_rounds > 64 {
                self.sleep_until_traffic();
            } else {
                std::hint::spin_loop();
            }
        }
        self.read_kernel_stats();
        self.ctx.values.publish(&self.stats);
        self.flush_burst_times(true);
    }

    fn read_kernel_stats(&mut self) {
        let (mut dropped, mut full, mut empty, mut rx_inv, mut tx_inv, mut tx_empty) = (0, 0, 0, 0, 0, 0);
        let (mut kicks, mut starved) = (0, 0);
        for pair in &self.pairs {
            for s in [&pair.lan, &pair.wan] {
                if let Ok(k) = s.statistics() {
                    dropped += k.rx_dropped;
                    full += k.rx_ring_full;
                    empty += k.rx_fill_ring_empty_descs;
                    rx_inv += k.rx_invalid_descs;
                    tx_inv += k.tx_invalid_descs;
                    tx_empty += k.tx_ring_empty_descs;
                }
                kicks += s.counters().tx_kicks;
                starved += s.counters().fill_starved;
            }
        }
        let v = &mut self.ctx.values;
        v.set(Counter::KernelRxDropped, dropped);
        v.set(Counter::KernelRxRingFull, full);
        v.set(Counter::KernelFillRingEmpty, empty);
        v.set(Counter::KernelRxInvalid, rx_inv);
        v.set(Counter::KernelTxInvalid, tx_inv);
        v.set(Counter::KernelTxRingEmpty, tx_empty);
        v.set(Counter::TxKicks, kicks);
        v.set(Counter::FillStarved, starved);
    }

    fn sleep_until_traffic(&mut self) {
        use rustix::event::{PollFd, PollFlags};
        let mut fds: arrayvec::ArrayVec<PollFd<'_>, 32> = arrayvec::ArrayVec::new();
        for pair in &self.pairs {
            for s in [&pair.lan, &pair.wan] {
                if fds.try_push(PollFd::new(s, PollFlags::IN)).is_err() {
                    break;
                }
            }
        }
        let timeout =
            rustix::event::Timespec { tv_sec: 0, tv_nsec: i64::from(self.poll_timeout_ms.min(999)) * 1_000_000 };
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
    }
}

/// Puts `descs` on a socket's tx ring; frames it does not take are freed and counted.
#[inline]
fn transmit(ctx: &mut Ctx, umem: &mut Umem, sock: &mut XskSocket, descs: &[Desc], counter: Counter) {
    if descs.is_empty() {
        return;
    }
    let sent = sock.tx_burst(descs);
    ctx.values.add(counter, sent as u64);
    for d in &descs[sent..] {
        let _ = umem.free(d.addr);
        ctx.values.add(Counter::TxRingFull, 1);
    }
}
