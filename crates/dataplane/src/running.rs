//! A running data plane: starting it step by step (the SA database and the kernel mirror, the
//! first tables, the XDP programs, one worker thread per core with its UMEM and sockets made on
//! its own core, then the control thread), reading its counters, and stopping it. A step that
//! fails leaves nothing behind: what was started is dropped (XDP links detach, threads stop)
//! and the error names the step.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use rampart_nic::{
    AttachMode, AttachOptions, KernelTap, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig, XskSocket,
};
use rampart_sadb::Reader;
use rampart_telemetry::dataplane::{DataplaneSource, SaUsage, SaUsageSource, WorkerReading};
use rampart_telemetry::schema::{WORKER_BURST_SECONDS, XDP_PACKETS};
use rampart_telemetry::{Metrics, Scrape, Source};

use crate::config::{self, Config};
use crate::control::{Control, prefix};
use crate::ctx::PathParams;
use crate::error::{Error, nic};
use crate::mirror::{MirrorThread, NetState};
use crate::stats::{self, WorkerStats};
use crate::tables::{TableBuilder, TablesHandle};
use crate::worker::{BurstLatency, QueuePair, Worker, WorkerParams};

/// A running data plane.
pub struct Dataplane {
    stop: Arc<AtomicBool>,
    workers: Vec<RunningWorker>,
    control: Option<JoinHandle<()>>,
    control_stop: Arc<AtomicBool>,
    mirror: MirrorThread,
    programs: Option<(Arc<SteeringProgram>, Arc<SteeringProgram>)>,
    /// The database and the most SAs a scrape exports, when per-SA metrics are on.
    per_sa_metrics: Option<(PathBuf, usize)>,
    /// Each worker's burst times.
    burst_latency: Vec<(usize, BurstLatency)>,
    /// What `start` found and did, for the log.
    pub report: Vec<String>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane").field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

impl Dataplane {
    /// The counters of every worker now.
    pub fn snapshot(&self) -> stats::Snapshot {
        stats::Snapshot { workers: self.workers.iter().map(|w| (w.index, w.core, w.stats.read())).collect() }
    }

    /// What a metrics registry reads at each scrape: every worker's published counters
    /// (`rampart_worker_*` families), burst times (`rampart_worker_burst_seconds`, as
    /// quantiles) and the XDP programs' verdicts (`rampart_xdp_packets_total`, while attached). It holds the workers' counter blocks and latency series, not the data plane:
    /// after [`Dataplane::stop`] it keeps reporting the final values.
    pub fn metrics_source(&self) -> Arc<dyn Source> {
        let workers: Vec<(usize, usize, Arc<WorkerStats>)> =
            self.workers.iter().map(|w| (w.index, w.core, w.stats.clone())).collect();
        let counters = DataplaneSource::new(move || {
            workers
                .iter()
                .map(|(w, core, s)| WorkerReading { worker: *w, core: *core, counters: s.read() })
                .collect::<Vec<_>>()
        });
        let latency = self.burst_latency.clone();
        // Weak: a scrape after `stop` must not keep the programs (and so their links) alive.
        let programs: Vec<(&'static str, Weak<SteeringProgram>)> = match &self.programs {
            Some((lan, wan)) => vec![("lan", Arc::downgrade(lan)), ("wan", Arc::downgrade(wan))],
            None => Vec::new(),
        };
        Arc::new(move |scrape: &mut Scrape<'_>| {
            counters.collect(scrape);
            for (side, prog) in &programs {
                if let Some(c) = prog.upgrade().and_then(|p| p.counters().ok()) {
                    for (verdict, v) in c.named() {
                        scrape.counter(&XDP_PACKETS, [side, verdict], v);
                    }
                }
            }
            for (w, l) in &latency {
                let w = w.to_string();
                scrape.quantiles(&WORKER_BURST_SECONDS, [&w, "outbound"], l.outbound.read());
                scrape.quantiles(&WORKER_BURST_SECONDS, [&w, "inbound"], l.inbound.read());
            }
        })
    }

    /// What a metrics registry reads at each scrape for the per-SA families
    /// (`rampart_sa_packets_total`, `rampart_sa_bytes_total` by SPI and direction), when
    /// `per_sa_metrics` is on: the usage area of the SA database, through a reader of its own.
    /// `None` when they are off.
    pub fn sa_metrics_source(&self) -> Result<Option<Arc<dyn Source>>, Error> {
        let Some((path, limit)) = &self.per_sa_metrics else { return Ok(None) };
        let reader = Reader::attach(path).map_err(|source| Error::Database { path: path.clone(), source })?;
        let reader = std::sync::Mutex::new(reader);
        let read = move || {
            let r = reader.lock().unwrap_or_else(|p| p.into_inner());
            let snap = r.snapshot();
            sa_usage(&r, &snap)
        };
        Ok(Some(Arc::new(SaUsageSource::new(read, Arc::new(AtomicBool::new(true)), *limit))))
    }

    /// Adds [`Dataplane::metrics_source`] and, when per-SA metrics are on,
    /// [`Dataplane::sa_metrics_source`] to `metrics`.
    pub fn register_metrics(&self, metrics: &Metrics) -> Result<(), Error> {
        metrics.add_source(self.metrics_source());
        if let Some(s) = self.sa_metrics_source()? {
            metrics.add_source(s);
        }
        Ok(())
    }

    /// Stops the workers (their sockets close), the control thread and the mirror, and detaches
    /// the XDP programs. Returns the final counters.
    pub fn stop(mut self) -> stats::Snapshot {
        self.stop.store(true, Ordering::Relaxed);
        let workers = std::mem::take(&mut self.workers);
        let mut snap = stats::Snapshot { workers: Vec::new() };
        for w in workers {
            let _ = w.thread.join();
            snap.workers.push((w.index, w.core, w.stats.read()));
        }
        self.control_stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.control.take() {
            let _ = c.join();
        }
        self.programs = None; // detaches (the links close)
        self.mirror.stop();
        snap
    }
}

/// Every SA of `snap` with its counters from the usage area of `reader`'s database.
pub fn sa_usage(reader: &Reader, snap: &rampart_sadb::Snapshot) -> Vec<SaUsage> {
    snap.sas()
        .filter_map(|m| {
            let u = reader.usage(m.id)?;
            Some(SaUsage {
                spi: m.spi,
                outbound: m.direction == rampart_sa::Direction::Outbound,
                packets: u.packets,
                bytes: u.bytes,
            })
        })
        .collect()
}

/// The interfaces the configuration names, found in the kernel's tables.
struct Interfaces {
    lan_ifindex: u32,
    wan_ifindex: u32,
    /// The gateway's outer addresses: configured, or the WAN interface's own.
    wan_addrs: Vec<IpAddr>,
}

/// A started worker thread.
pub(crate) struct RunningWorker {
    pub index: usize,
    pub core: usize,
    pub thread: JoinHandle<()>,
    pub stats: Arc<WorkerStats>,
}

impl Interfaces {
    fn find(config: &Config, net: &NetState) -> Result<Interfaces, Error> {
        let lan_ifindex =
            net.link_by_name(&config.lan.name).ok_or_else(|| Error::NoInterface(config.lan.name.clone()))?.ifindex;
        let wan_ifindex =
            net.link_by_name(&config.wan.name).ok_or_else(|| Error::NoInterface(config.wan.name.clone()))?.ifindex;
        let wan_addrs: Vec<IpAddr> = if config.wan.local_addresses.is_empty() {
            net.addresses_of(wan_ifindex)
        } else {
            config.wan.local_addresses.clone()
        };
        if wan_addrs.is_empty() {
            return Err(Error::NoAddress(config.wan.name.clone()));
        }
        Ok(Interfaces { lan_ifindex, wan_ifindex, wan_addrs })
    }
}

impl Dataplane {
    /// Attaches to the database, starts the mirror, attaches the XDP programs, binds every
    /// worker's sockets and starts the workers and the control thread. Everything runs in the
    /// calling thread's network namespace.
    pub fn start(config: &Config) -> Result<Dataplane, Error> {
        let mut report = Vec::new();
        let reader = Reader::attach(&config.database)
            .map_err(|source| Error::Database { path: config.database.clone(), source })?;
        let mut mirror = MirrorThread::start().map_err(|source| Error::Io { what: "rtnetlink mirror", source })?;
        let net = mirror.mirror.load();
        let ifs = match Interfaces::find(config, &net) {
            Ok(ifs) => ifs,
            Err(e) => {
                mirror.stop();
                return Err(e);
            }
        };

        let mut builder = TableBuilder::new(reader.clone());
        for (slot, e) in builder.errors.drain(..) {
            report.push(format!("SA slot {slot} not loaded: {e}"));
        }
        let first = builder.build();
        let protected = first.protected.clone();
        let tables = Arc::new(TablesHandle::new(first));

        let (lan_prog, wan_prog) = attach_programs(config, &net, &ifs, &protected, &mut report)?;

        let kernel = kernel_tap(config, &mut report);
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers: Vec<RunningWorker> = Vec::new();
        let mut burst_latency = Vec::new();
        for (w, &core) in config.cores.iter().enumerate() {
            let latency = BurstLatency::default();
            burst_latency.push((w, latency.clone()));
            let params = WorkerParams {
                path: PathParams {
                    index: w,
                    mirror: mirror.mirror.clone(),
                    reader: reader.clone(),
                    crypto: config.crypto,
                    lan_ifindex: ifs.lan_ifindex,
                    wan_ifindex: ifs.wan_ifindex,
                    wan_mtu: config.wan.mtu,
                    encap_port: config.encap_port,
                    icmp_rate: config.icmp_rate,
                    kernel: kernel.clone(),
                },
                burst_latency: latency,
                tables: tables.clone(),
                stats: Arc::new(WorkerStats::default()),
                stop: stop.clone(),
                idle: config.idle,
                poll_timeout_ms: config.poll_timeout_ms,
            };
            match start_worker(config, core, params, &lan_prog, &wan_prog) {
                Ok(worker) => workers.push(worker),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for worker in workers {
                        let _ = worker.thread.join();
                    }
                    return Err(e);
                }
            }
        }
        report.push(format!(
            "{} worker(s) on cores {:?}, queue pairs (lan, wan) {:?}",
            workers.len(),
            config.cores,
            (0..config.cores.len()).map(|w| config.queue_pairs(w)).collect::<Vec<_>>()
        ));

        let control_stop = Arc::new(AtomicBool::new(false));
        let control = Control {
            builder,
            tables: tables.clone(),
            stop: control_stop.clone(),
            lan_prog: lan_prog.clone(),
            wan_prog: wan_prog.clone(),
            mirror: mirror.mirror.clone(),
            protected,
            wan_addrs: ifs.wan_addrs,
            fixed_wan: !config.wan.local_addresses.is_empty(),
            lan_ifindex: ifs.lan_ifindex,
            wan_ifindex: ifs.wan_ifindex,
        };
        let control = std::thread::Builder::new()
            .name("rampart-control".into())
            .spawn(move || control.run())
            .map_err(|source| Error::Io { what: "control thread", source })?;
        Ok(Dataplane {
            stop,
            workers,
            control: Some(control),
            control_stop,
            mirror,
            programs: Some((lan_prog, wan_prog)),
            per_sa_metrics: config.per_sa_metrics.then(|| (config.database.clone(), config.per_sa_metrics_limit)),
            burst_latency,
            report,
        })
    }
}

/// The TUN device through which reassembled WAN datagrams that are not ESP reach the kernel
/// (`rpk-` and the WAN interface's name). Without it (no `/dev/net/tun`, say) such datagrams
/// are dropped and counted under `not_esp`; the start goes on.
fn kernel_tap(config: &Config, report: &mut Vec<String>) -> Option<Arc<KernelTap>> {
    let name: String = format!("rpk-{}", config.wan.name).chars().take(15).collect();
    match KernelTap::create(&name) {
        Ok(t) => {
            report.push(format!("reassembled WAN datagrams that are not ESP go to the kernel through {name}"));
            Some(Arc::new(t))
        }
        Err(e) => {
            tracing::warn!(error = %e, "no TUN device {name}: IKE in IP fragments will not reach the kernel");
            None
        }
    }
}

/// Loads both steering programs, fills their maps (local addresses, protected prefixes) and
/// attaches them. Returns (LAN, WAN).
fn attach_programs(
    config: &Config,
    net: &NetState,
    ifs: &Interfaces,
    protected: &BTreeSet<(IpAddr, u8)>,
    report: &mut Vec<String>,
) -> Result<(Arc<SteeringProgram>, Arc<SteeringProgram>), Error> {
    let max_queue = config.lan.queues.iter().chain(&config.wan.queues).max().copied().unwrap_or(0);
    let load = LoadOptions { max_queues: max_queue + 1 };
    let attach = AttachOptions {
        mode: match config.xdp_mode {
            config::XdpMode::Native => AttachMode::Native,
            config::XdpMode::Generic => AttachMode::Generic,
        },
        force: config.xdp_force,
    };
    let mut wan_prog = SteeringProgram::load(Role::Wan, load).map_err(nic("loading the WAN XDP program"))?;
    let mut lan_prog = SteeringProgram::load(Role::Lan, load).map_err(nic("loading the LAN XDP program"))?;
    for a in &ifs.wan_addrs {
        wan_prog.add_local_address(*a).map_err(nic(format!("WAN local address {a}")))?;
        report.push(format!("WAN local address {a}"));
    }
    for a in net.addresses_of(ifs.lan_ifindex).into_iter().chain(ifs.wan_addrs.iter().copied()) {
        lan_prog.add_local_address(a).map_err(nic(format!("LAN local address {a}")))?;
    }
    for (a, l) in protected {
        if let Some(p) = prefix(*a, *l) {
            lan_prog.add_protected_prefix(p).map_err(nic(format!("protected prefix {p}")))?;
        }
    }
    for (prog, ifindex, name) in
        [(&mut wan_prog, ifs.wan_ifindex, &config.wan.name), (&mut lan_prog, ifs.lan_ifindex, &config.lan.name)]
    {
        let r = prog.attach(ifindex, attach).map_err(nic(format!("attaching XDP to {name}")))?;
        report.push(format!("XDP {:?} on {name} (program {}, link {})", r.mode, r.prog_id, r.link_id));
    }
    Ok((Arc::new(lan_prog), Arc::new(wan_prog)))
}

/// Starts one worker thread pinned to `core`, which makes its UMEM and sockets there, registers
/// them with the steering programs and runs; returns once the sockets are bound (or why not).
fn start_worker(
    config: &Config,
    core: usize,
    params: WorkerParams,
    lan_prog: &Arc<SteeringProgram>,
    wan_prog: &Arc<SteeringProgram>,
) -> Result<RunningWorker, Error> {
    let w = params.path.index;
    let (lan_ifindex, wan_ifindex) = (params.path.lan_ifindex, params.path.wan_ifindex);
    let pairs = config.queue_pairs(w);
    let (frame_count, ring) = (config.frame_count, config.ring_size);
    let stats = params.stats.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let (lp, wp) = (lan_prog.clone(), wan_prog.clone());
    let core_id = core_affinity::get_core_ids().unwrap_or_default().into_iter().find(|c| c.id == core);
    let thread = std::thread::Builder::new()
        .name(format!("rampart-w{w}"))
        .spawn(move || {
            if let Some(c) = core_id {
                core_affinity::set_for_current(c);
            }
            // UMEM and sockets are created on the worker's own core.
            let setup = || -> Result<(Umem, Vec<QueuePair>), String> {
                let umem = Umem::new(UmemConfig { frame_size: 2048, frame_count, headroom: 0 })
                    .map_err(|e| format!("UMEM: {e}"))?;
                let xsk = XskConfig {
                    rx_size: ring,
                    tx_size: ring,
                    fill_size: ring,
                    comp_size: ring,
                    ..XskConfig::default()
                };
                let mut v = Vec::new();
                for (lq, wq) in pairs {
                    let lan = XskSocket::bind(&umem, lan_ifindex, lq, &xsk)
                        .map_err(|e| format!("LAN socket on queue {lq}: {e}"))?;
                    let wan = XskSocket::bind(&umem, wan_ifindex, wq, &xsk)
                        .map_err(|e| format!("WAN socket on queue {wq}: {e}"))?;
                    lp.register_socket(lq, &lan).map_err(|e| format!("LAN queue {lq}: {e}"))?;
                    wp.register_socket(wq, &wan).map_err(|e| format!("WAN queue {wq}: {e}"))?;
                    v.push(QueuePair { lan, wan });
                }
                Ok((umem, v))
            };
            match setup() {
                Ok((umem, pairs)) => {
                    let worker = Worker::new(params, umem, pairs);
                    let _ = ready_tx.send(Ok(()));
                    drop(lp);
                    drop(wp);
                    worker.run();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|source| Error::Io { what: "worker thread", source })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(RunningWorker { index: w, core, thread, stats }),
        other => {
            let reason = match other {
                Ok(Err(r)) => r,
                _ => "the worker thread ended during setup".to_owned(),
            };
            let _ = thread.join();
            Err(Error::Worker { worker: w, reason })
        }
    }
}
