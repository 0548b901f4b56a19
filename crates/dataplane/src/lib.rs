//! Rampart's data plane: AF_XDP workers that encrypt cleartext from the LAN into ESP on the WAN
//! and decrypt ESP from the WAN onto the LAN, reading their SAs and policies from the shared SA
//! database and their next hops from a mirror of the kernel's neighbour and route tables.
//!
//! # Threads and what each owns
//!
//! | thread | owns | shares (read) | shares (write) |
//! |---|---|---|---|
//! | worker k (pinned to its core) | its [`rampart_nic::Umem`], the LAN and WAN sockets of its queue pairs, its SA runtimes (expanded keys), its counters | [`tables::Tables`], [`mirror::NetState`] (immutable `Arc`s) | per-SA sequence counters and expiry flags (atomics), the database's usage area and event ring (once per SA per burst), its own [`stats::WorkerStats`] |
//! | control | the [`rampart_sadb::Snapshot`], the [`tables::TableBuilder`], the XDP programs' maps | the database | new [`tables::Tables`], LAN prefixes and WAN addresses in the XDP maps |
//! | mirror | the rtnetlink sockets | the kernel's tables | new [`mirror::NetState`] |
//! | main | the XDP programs (attach/detach), signals, the stats output | every [`stats::WorkerStats`] | the stats file |
//! | `rampart-metrics` | the metrics endpoint's listener | every [`stats::WorkerStats`], at each scrape ([`Dataplane::metrics_source`]) | nothing |
//!
//! # Modules
//!
//! | module | what it is for |
//! |---|---|
//! | [`config`] | the TOML file |
//! | [`worker`] | the worker loop |
//! | `outbound`, `inbound` | the two burst paths (LAN -> WAN, WAN -> LAN) |
//! | [`frame`] | Ethernet/IP handling outside ESP: flows, TTL, headers, ICMP errors |
//! | [`reasm`] | reassembly of outer IPv4 fragments |
//! | [`tables`] | compiled SPD and SA index, per-SA shared state, the sequence counter |
//! | [`mirror`], `netlink` | the neighbour/route/address mirror over rtnetlink |
//! | [`stats`] | per-worker counters and their output |
//!
//! This crate never uses `unsafe` (the kernel interfaces are in `rampart-nic` and
//! `rampart-sadb`), and its hot paths never allocate, lock or make a system call beyond the
//! tx kick.
#![forbid(unsafe_code)]

pub mod config;
pub mod frame;
mod inbound;
pub mod mirror;
mod netlink;
mod outbound;
pub mod reasm;
pub mod stats;
pub mod tables;
pub mod worker;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_nic::{
    AttachMode, AttachOptions, LoadOptions, Role, SteeringProgram, Umem, UmemConfig, XskConfig, XskSocket,
};
use rampart_sadb::Reader;
use rampart_telemetry::dataplane::{DataplaneSource, SaUsage, SaUsageSource, WorkerReading};
use rampart_telemetry::schema::WORKER_BURST_SECONDS;
use rampart_telemetry::{Metrics, MetricsServer, Scrape, Source};

pub use config::Config;

use crate::mirror::{MirrorThread, NetMirror};
use crate::stats::WorkerStats;
use crate::tables::{TableBuilder, TablesHandle};
use crate::worker::{QueuePair, Worker, WorkerParams};

/// Why the data plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file.
    #[error("{0}")]
    Config(#[from] config::ConfigError),
    /// The SA database could not be attached.
    #[error("SA database {path}: {source}")]
    Database {
        /// Its path.
        path: PathBuf,
        /// Why.
        #[source]
        source: rampart_sadb::OpenError,
    },
    /// An interface named in the configuration does not exist.
    #[error("interface {0:?} not found in this network namespace")]
    NoInterface(String),
    /// The WAN interface has no address and none is configured.
    #[error("interface {0:?} has no address; set [wan] local_addresses")]
    NoAddress(String),
    /// AF_XDP or XDP setup.
    #[error("{what}: {source}")]
    Nic {
        /// What was being set up.
        what: String,
        /// Why it failed.
        #[source]
        source: rampart_nic::Error,
    },
    /// The rtnetlink mirror or a thread could not start.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A worker failed to set up its sockets.
    #[error("worker {worker}: {reason}")]
    Worker {
        /// Worker number.
        worker: usize,
        /// Why.
        reason: String,
    },
    /// The metrics endpoint could not listen.
    #[error("metrics endpoint {addr}: {source} (set metrics_listen, or \"off\")")]
    Metrics {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn nic(what: impl Into<String>) -> impl FnOnce(rampart_nic::Error) -> Error {
    let what = what.into();
    move |source| Error::Nic { what, source }
}

/// A running data plane.
pub struct Dataplane {
    stop: Arc<AtomicBool>,
    workers: Vec<(usize, usize, JoinHandle<()>, Arc<WorkerStats>)>,
    control: Option<JoinHandle<()>>,
    control_stop: Arc<AtomicBool>,
    mirror: MirrorThread,
    programs: Option<(Arc<SteeringProgram>, Arc<SteeringProgram>)>,
    /// The database and the most SAs a scrape exports, when per-SA metrics are on.
    per_sa_metrics: Option<(PathBuf, usize)>,
    /// Each worker's burst times.
    burst_latency: Vec<(usize, worker::BurstLatency)>,
    /// What `start` found and did, for the log.
    pub report: Vec<String>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane").field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

fn prefix(addr: IpAddr, len: u8) -> Option<rampart_nic::IpPrefix> {
    rampart_nic::IpPrefix::new(addr, len).ok()
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
            mirror.stop();
            return Err(Error::NoAddress(config.wan.name.clone()));
        }

        let mut builder = TableBuilder::new(reader.clone());
        for (slot, e) in builder.errors.drain(..) {
            report.push(format!("SA slot {slot} not loaded: {e}"));
        }
        let first = builder.build();
        let protected = first.protected.clone();
        let tables = Arc::new(TablesHandle::new(first));

        // XDP programs.
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
        for a in &wan_addrs {
            wan_prog.add_local_address(*a).map_err(nic(format!("WAN local address {a}")))?;
            report.push(format!("WAN local address {a}"));
        }
        for a in net.addresses_of(lan_ifindex).into_iter().chain(wan_addrs.iter().copied()) {
            lan_prog.add_local_address(a).map_err(nic(format!("LAN local address {a}")))?;
        }
        for (a, l) in &protected {
            if let Some(p) = prefix(*a, *l) {
                lan_prog.add_protected_prefix(p).map_err(nic(format!("protected prefix {p}")))?;
            }
        }
        let r = wan_prog.attach(wan_ifindex, attach).map_err(nic(format!("attaching XDP to {}", config.wan.name)))?;
        report.push(format!("XDP {:?} on {} (program {}, link {})", r.mode, config.wan.name, r.prog_id, r.link_id));
        let r = lan_prog.attach(lan_ifindex, attach).map_err(nic(format!("attaching XDP to {}", config.lan.name)))?;
        report.push(format!("XDP {:?} on {} (program {}, link {})", r.mode, config.lan.name, r.prog_id, r.link_id));
        let wan_prog = Arc::new(wan_prog);
        let lan_prog = Arc::new(lan_prog);

        // Workers.
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        let mut burst_latency = Vec::new();
        let core_ids = core_affinity::get_core_ids().unwrap_or_default();
        for (w, &core) in config.cores.iter().enumerate() {
            let pairs = config.queue_pairs(w);
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
            let stats = Arc::new(WorkerStats::default());
            let latency = worker::BurstLatency::default();
            burst_latency.push((w, latency.clone()));
            let params = WorkerParams {
                burst_latency: latency,
                index: w,
                tables: tables.clone(),
                mirror: mirror.mirror.clone(),
                reader: reader.clone(),
                crypto: config.crypto,
                stats: stats.clone(),
                stop: stop.clone(),
                lan_ifindex,
                wan_ifindex,
                wan_mtu: config.wan.mtu,
                encap_port: config.encap_port,
                icmp_rate: config.icmp_rate,
                idle: config.idle,
                poll_timeout_ms: config.poll_timeout_ms,
            };
            let (lp, wp) = (lan_prog.clone(), wan_prog.clone());
            let core_id = core_ids.iter().find(|c| c.id == core).copied();
            let (frame_count, ring) = (config.frame_count, config.ring_size);
            let handle = std::thread::Builder::new()
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
                Ok(Ok(())) => workers.push((w, core, handle, stats)),
                other => {
                    let reason = match other {
                        Ok(Err(r)) => r,
                        _ => "the worker thread ended during setup".to_owned(),
                    };
                    stop.store(true, Ordering::Relaxed);
                    let _ = handle.join();
                    for (_, _, h, _) in workers {
                        let _ = h.join();
                    }
                    return Err(Error::Worker { worker: w, reason });
                }
            }
        }
        report.push(format!(
            "{} worker(s) on cores {:?}, queue pairs (lan, wan) {:?}",
            workers.len(),
            config.cores,
            (0..config.cores.len()).map(|w| config.queue_pairs(w)).collect::<Vec<_>>()
        ));

        // Control thread.
        let control_stop = Arc::new(AtomicBool::new(false));
        let control = {
            let (tables, stop, lp, wp, m) =
                (tables.clone(), control_stop.clone(), lan_prog.clone(), wan_prog.clone(), mirror.mirror.clone());
            let fixed_wan = !config.wan.local_addresses.is_empty();
            std::thread::Builder::new()
                .name("rampart-control".into())
                .spawn(move || {
                    control_loop(
                        builder,
                        &tables,
                        &stop,
                        &lp,
                        &wp,
                        &m,
                        protected,
                        wan_addrs,
                        fixed_wan,
                        lan_ifindex,
                        wan_ifindex,
                    )
                })
                .map_err(|source| Error::Io { what: "control thread", source })?
        };
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

    /// The counters of every worker now.
    pub fn snapshot(&self) -> stats::Snapshot {
        stats::Snapshot { workers: self.workers.iter().map(|(w, core, _, s)| (*w, *core, s.read())).collect() }
    }

    /// What a metrics registry reads at each scrape: every worker's published counters
    /// (`rampart_worker_*` families) and burst times (`rampart_worker_burst_seconds`, as
    /// quantiles). It holds the workers' counter blocks and latency series, not the data plane:
    /// after [`Dataplane::stop`] it keeps reporting the final values.
    pub fn metrics_source(&self) -> Arc<dyn Source> {
        let workers: Vec<(usize, usize, Arc<WorkerStats>)> =
            self.workers.iter().map(|(w, core, _, s)| (*w, *core, s.clone())).collect();
        let counters = DataplaneSource::new(move || {
            workers
                .iter()
                .map(|(w, core, s)| WorkerReading { worker: *w, core: *core, counters: s.read() })
                .collect::<Vec<_>>()
        });
        let latency = self.burst_latency.clone();
        Arc::new(move |scrape: &mut Scrape<'_>| {
            counters.collect(scrape);
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
        for (w, core, h, s) in workers {
            let _ = h.join();
            snap.workers.push((w, core, s.read()));
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
                outbound: m.direction == rampart_esp::Direction::Outbound,
                packets: u.packets,
                bytes: u.bytes,
            })
        })
        .collect()
}

/// Adds what is new in `want` and removes what is gone, through `add`/`remove`.
fn sync_set<T: Ord + Copy>(
    have: &mut BTreeSet<T>,
    want: &BTreeSet<T>,
    mut add: impl FnMut(T),
    mut remove: impl FnMut(T),
) {
    for x in want.difference(have) {
        add(*x);
    }
    for x in have.difference(want) {
        remove(*x);
    }
    *have = want.clone();
}

/// The control thread: follows the SA database (new tables, LAN prefixes), the kernel's WAN
/// addresses (XDP local addresses), and sweeps lifetimes once a second.
#[allow(clippy::too_many_arguments)]
fn control_loop(
    mut builder: TableBuilder,
    tables: &TablesHandle,
    stop: &AtomicBool,
    lan_prog: &SteeringProgram,
    wan_prog: &SteeringProgram,
    mirror: &NetMirror,
    mut protected: BTreeSet<(IpAddr, u8)>,
    wan_addrs: Vec<IpAddr>,
    fixed_wan: bool,
    lan_ifindex: u32,
    wan_ifindex: u32,
) {
    let mut wan_set: BTreeSet<IpAddr> = wan_addrs.into_iter().collect();
    let mut lan_set: BTreeSet<IpAddr> =
        mirror.load().addresses_of(lan_ifindex).into_iter().chain(wan_set.iter().copied()).collect();
    let mut net_gen = mirror.generation();
    let mut last_sweep = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
        if let Some(t) = builder.refresh(false) {
            sync_set(
                &mut protected,
                &t.protected,
                |(a, l)| {
                    if let Some(p) = prefix(a, l) {
                        let _ = lan_prog.add_protected_prefix(p);
                    }
                },
                |(a, l)| {
                    if let Some(p) = prefix(a, l) {
                        let _ = lan_prog.remove_protected_prefix(p);
                    }
                },
            );
            for (slot, e) in builder.errors.drain(..) {
                eprintln!("rampart dataplane: SA slot {slot} not loaded: {e}");
            }
            tables.publish(t);
        }
        if mirror.generation() != net_gen {
            net_gen = mirror.generation();
            let net = mirror.load();
            if !fixed_wan {
                let want: BTreeSet<IpAddr> = net.addresses_of(wan_ifindex).into_iter().collect();
                sync_set(
                    &mut wan_set,
                    &want,
                    |a| {
                        let _ = wan_prog.add_local_address(a);
                    },
                    |a| {
                        let _ = wan_prog.remove_local_address(a);
                    },
                );
            }
            let want: BTreeSet<IpAddr> =
                net.addresses_of(lan_ifindex).into_iter().chain(wan_set.iter().copied()).collect();
            sync_set(
                &mut lan_set,
                &want,
                |a| {
                    let _ = lan_prog.add_local_address(a);
                },
                |a| {
                    let _ = lan_prog.remove_local_address(a);
                },
            );
        }
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            // Time-based lifetimes run out without traffic: check every SA once a second.
            for e in builder.entries() {
                let expiry =
                    builder.reader().check_lifetimes(e.id, e.config.spi, &e.config.lifetimes, e.install_time, now);
                if matches!(expiry, rampart_sadb::Expiry::Hard(_)) {
                    e.shared.expired.store(true, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Runs the data plane of `config` until SIGINT or SIGTERM: prints what it set up, the
/// counters every `stats_interval` (if given) and at exit, keeps `config.stats_file` up to
/// date (4 times a second), and serves the workers' counters through `metrics` on
/// `config.metrics_listen`. This is what `rampart dataplane` does.
pub fn run(config: &Config, stats_interval: Option<Duration>, metrics: Arc<Metrics>) -> Result<stats::Snapshot, Error> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|source| Error::Io { what: "signal handler", source })?;
    }
    // Listen first: a taken port refuses the start before any XDP program is attached.
    let server = match config.metrics_listen {
        Some(addr) => {
            Some(MetricsServer::start(addr, metrics.clone()).map_err(|source| Error::Metrics { addr, source })?)
        }
        None => None,
    };
    let dp = Dataplane::start(config)?;
    dp.register_metrics(&metrics)?;
    for line in &dp.report {
        println!("rampart dataplane: {line}");
    }
    if let Some(s) = &server {
        println!("rampart dataplane: metrics on http://{}/metrics", s.local_addr());
    }
    println!("rampart dataplane: running");
    let write_stats = |snap: &stats::Snapshot| {
        if let Some(path) = &config.stats_file {
            stats::write_file(path, snap);
        }
    };
    let mut last_print = Instant::now();
    let mut last_file = Instant::now();
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(i) = stats_interval
            && last_print.elapsed() >= i
        {
            last_print = Instant::now();
            print!("{}", dp.snapshot().to_text());
            println!();
        }
        if last_file.elapsed() >= Duration::from_millis(250) {
            last_file = Instant::now();
            write_stats(&dp.snapshot());
        }
    }
    println!("rampart dataplane: stopping");
    let snap = dp.stop();
    write_stats(&snap);
    print!("{}", snap.to_text());
    println!("rampart dataplane: stopped (XDP programs detached, sockets closed)");
    Ok(snap)
}
