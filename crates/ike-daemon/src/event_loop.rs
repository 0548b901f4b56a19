//! The `ike-loop` thread: the [`Endpoint`] driven by the UDP sockets, the wall clock, the
//! worker pool, the SA database and the control socket, and the entry points that start it
//! ([`run`], [`spawn`]). One turn of the loop: wait in `epoll` on every socket and the wake-up
//! eventfd (until the endpoint's next timer or the next database tick), read what the sockets
//! hold, hand finished DH work back, serve control requests, run due timers, then send, install
//! and submit what all that produced. Reloads apply the difference of two configurations.
//!
//! What the loop must never do: block on Diffie-Hellman (it goes to the pool), log a key, or
//! remove an SA that still carries outbound traffic before its successor is bound.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, unbounded};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::pool::Done;
use rampart_ike::config::StartAction;
use rampart_ike::crypto::{DhGroup, SystemRandom};
use rampart_ike::endpoint::Endpoint;
use rampart_ike::event::{DownReason, Event, IkeSaId};
use rampart_ike::state::IkeState;

use crate::config_file::{ChildAction, ChildActions, ConfError, Config};
use crate::control::{ControlServer, Pending, Request, Response};
use crate::database::{self, Database, Request as DbRequest};
use crate::diagnostic_log;
use crate::metrics;
use crate::pool::{self, DhPool};
use crate::sockets::{self, Inbound, Poller, Ready, SocketSet};
use crate::stats::Counters;
use crate::waker::Waker;

/// Why the daemon could not start (or stopped).
#[derive(Debug)]
pub enum DaemonError {
    /// The configuration was refused.
    Config(ConfError),
    /// A socket could not be bound.
    Bind(SocketAddr, io::Error),
    /// The SA database could not be opened.
    Database(rampart_sadb::OpenError),
    /// The control socket could not be created.
    Control(PathBuf, io::Error),
    /// Something else the system refused (epoll, threads).
    Io(io::Error),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Config(e) => write!(f, "{e}"),
            DaemonError::Bind(a, e) => write!(f, "cannot bind {a}: {e}"),
            DaemonError::Database(e) => write!(f, "SA database: {e}"),
            DaemonError::Control(p, e) => write!(f, "control socket {}: {e}", p.display()),
            DaemonError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

impl From<io::Error> for DaemonError {
    fn from(e: io::Error) -> Self {
        DaemonError::Io(e)
    }
}

/// Reads the configuration file at start and at every reload (`rampart run` reads its combined
/// file this way); [`Config::load`] when none is given.
pub type ConfigLoader = Arc<dyn Fn(&Path) -> Result<Config, ConfError> + Send + Sync>;

/// What an embedding process gives the daemon.
pub struct Options {
    /// The registry the daemon's counters go to (the process's `/metrics`).
    pub metrics: Arc<rampart_telemetry::Metrics>,
    /// How to read the configuration file.
    pub loader: Option<ConfigLoader>,
}

impl Default for Options {
    fn default() -> Self {
        Options { metrics: Arc::new(rampart_telemetry::Metrics::new()), loader: None }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options").field("loader", &self.loader.is_some()).finish_non_exhaustive()
    }
}

/// A daemon running on its own thread of this process (the library entry point for
/// `rampart run` and tests).
#[derive(Debug)]
pub struct DaemonHandle {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    waker: Arc<Waker>,
    control: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl DaemonHandle {
    /// The control socket's path.
    pub fn control_socket(&self) -> &Path {
        &self.control
    }

    /// Asks for a reload (as SIGHUP does).
    pub fn reload(&self) {
        self.reload.store(true, Ordering::Relaxed);
        self.waker.wake();
    }

    /// Stops the daemon and waits for its thread. SAs stay in the database.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DaemonHandle {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Loads `config_path`, sets everything up (errors come back here) and runs the daemon on a
/// thread of its own.
pub fn spawn(config_path: &Path) -> Result<DaemonHandle, DaemonError> {
    spawn_with(config_path, Options::default())
}

/// [`spawn`] with a metrics registry and a configuration reader of the embedding process.
pub fn spawn_with(config_path: &Path, options: Options) -> Result<DaemonHandle, DaemonError> {
    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let mut d = Daemon::new(config_path, stop.clone(), reload.clone(), options)?;
    let (waker, control) = (d.waker.clone(), d.cfg.daemon.control_socket.clone());
    let thread = std::thread::Builder::new().name("ike-loop".into()).spawn(move || d.run())?;
    Ok(DaemonHandle { stop, reload, waker, control, thread: Some(thread) })
}

/// Runs the daemon on this thread until `stop` is set; `reload` set means reload.
pub fn run(config_path: &Path, stop: Arc<AtomicBool>, reload: Arc<AtomicBool>) -> Result<(), DaemonError> {
    run_with(config_path, stop, reload, Options::default())
}

/// [`run`] with a metrics registry and a configuration reader of the embedding process.
pub fn run_with(
    config_path: &Path,
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    options: Options,
) -> Result<(), DaemonError> {
    let mut d = Daemon::new(config_path, stop, reload, options)?;
    d.run();
    Ok(())
}

/// Datagrams read from one socket before the others get their turn.
const READ_BUDGET: usize = 64;
/// How long a negotiation started by acquire or restart blocks another for the same child.
const NEGOTIATION_HOLD: Duration = Duration::from_secs(30);

/// What the loop remembers of an IKE SA.
#[derive(Debug)]
struct IkeEntry {
    conn: String,
    /// Child config names ever installed on it (for dpd_action / close_action).
    children: Vec<String>,
}

struct Daemon {
    path: PathBuf,
    cfg: Config,
    ep: Endpoint,
    sockets: SocketSet,
    poller: Poller,
    waker: Arc<Waker>,
    pool: Option<DhPool>,
    dh_rx: Receiver<Done>,
    db: Database,
    _control: ControlServer,
    ctl_rx: Receiver<Pending>,
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    ikes: HashMap<IkeSaId, IkeEntry>,
    /// Children to create once their IKE SA is up (the others of an initiated connection).
    follow_up: HashMap<IkeSaId, Vec<String>>,
    negotiating: HashMap<(String, String), Instant>,
    counters: Counters,
    next_tick: Instant,
    started: Instant,
    loader: Option<ConfigLoader>,
    published: metrics::Published,
    /// The process's registry (in `rampart run`, the data plane's series too): what
    /// `rampart ctl stats` shows.
    metrics: Arc<rampart_telemetry::Metrics>,
    /// Most CPU time the loop thread spent in one turn between two waits (its own work only,
    /// not time it was preempted): how long a due timer can wait behind the loop at worst.
    max_busy: Duration,
}

fn dh_groups(cfg: &Config) -> Vec<DhGroup> {
    let mut out = Vec::new();
    for c in &cfg.connections {
        for p in &c.proposals {
            out.extend(p.dh.iter().copied());
        }
        for ch in &c.children {
            out.extend(ch.proposals().pfs_groups());
        }
    }
    out.sort_by_key(|g| g.id());
    out.dedup();
    out
}

impl Daemon {
    fn new(
        path: &Path,
        stop: Arc<AtomicBool>,
        reload: Arc<AtomicBool>,
        options: Options,
    ) -> Result<Daemon, DaemonError> {
        let cfg = match &options.loader {
            Some(load) => load(path),
            None => Config::load(path),
        }
        .map_err(DaemonError::Config)?;
        for w in &cfg.warnings {
            warn!("{w}");
        }
        let d = &cfg.daemon;
        let db = if d.database.as_os_str().is_empty() {
            info!("no SA database configured: SAs are negotiated but not installed");
            Database::none()
        } else {
            let caps =
                rampart_sadb::Capacities { sas: d.sa_capacity, policies: d.policy_capacity, ..Default::default() };
            Database::open(&d.database, caps, d.stale_grace).map_err(DaemonError::Database)?
        };
        let mut ep = Endpoint::new(d.endpoint.clone(), Box::new(SystemRandom::new()));
        ep.set_wall_clock(Instant::now(), database::unix_now());
        for spi in db.stale_inbound_spis() {
            ep.reserve_spi(spi);
        }
        let waker = Arc::new(Waker::new()?);
        let (pool, dh_rx) = if d.endpoint.offload_dh || d.dh_precompute > 0 {
            let timing = pool::JobTiming {
                agree: options.metrics.latency(&rampart_telemetry::schema::IKE_CRYPTO_JOB_SECONDS, ["dh"]),
                share: options.metrics.latency(&rampart_telemetry::schema::IKE_CRYPTO_JOB_SECONDS, ["key_share"]),
                auth: options.metrics.latency(&rampart_telemetry::schema::IKE_CRYPTO_JOB_SECONDS, ["auth"]),
            };
            let (pool, shares, rx) =
                DhPool::start(d.dh_workers, d.dh_precompute, &dh_groups(&cfg), waker.clone(), timing)?;
            ep.set_key_share_source(Box::new(shares));
            (Some(pool), rx)
        } else {
            (None, crossbeam_channel::never())
        };
        let mut sockets = SocketSet::bind(&d.listen, d.port, d.port_nat_t).map_err(|(a, e)| DaemonError::Bind(a, e))?;
        if d.listen_any {
            bind_host_addresses(&mut sockets, d.port, d.port_nat_t);
        }
        let poller = Poller::new(&sockets, &waker)?;
        let (ctl_tx, ctl_rx) = unbounded();
        let control = ControlServer::start(&d.control_socket, ctl_tx, waker.clone())
            .map_err(|e| DaemonError::Control(d.control_socket.clone(), e))?;
        let now = Instant::now();
        let mut daemon = Daemon {
            path: path.to_path_buf(),
            cfg,
            ep,
            sockets,
            poller,
            waker,
            pool,
            dh_rx,
            db,
            _control: control,
            ctl_rx,
            stop,
            reload,
            ikes: HashMap::new(),
            follow_up: HashMap::new(),
            negotiating: HashMap::new(),
            counters: Counters::default(),
            next_tick: now,
            started: now,
            max_busy: Duration::ZERO,
            published: metrics::Published::new(&options.metrics),
            metrics: options.metrics.clone(),
            loader: options.loader,
        };
        daemon.start_up(now);
        Ok(daemon)
    }

    /// Connections into the endpoint, trap policies into the database, start actions, and
    /// re-initiation of the tunnels a previous run left in the database.
    fn start_up(&mut self, now: Instant) {
        let listening: Vec<String> = self.sockets.local_addrs().map(|a| a.to_string()).collect();
        info!(listen = ?listening, connections = self.cfg.connections.len(), "IKE daemon starting");
        let stale = self.db.stale_tunnels();
        let mut configured = HashSet::new();
        let conns = self.cfg.connections.clone();
        for c in &conns {
            self.ep.add_connection(c.clone());
            self.db.install_traps(c);
            for ch in &c.children {
                configured.insert(database::reqid(&c.name, &ch.name));
            }
        }
        self.db.forget_unconfigured(&configured, now);
        for c in &conns {
            let remote = c.remote_addrs.first().copied();
            let mut start: Vec<String> =
                c.children.iter().filter(|ch| ch.start_action.starts()).map(|ch| ch.name.clone()).collect();
            for ch in &c.children {
                let r = database::reqid(&c.name, &ch.name);
                if remote.is_some_and(|ip| stale.contains(&(r, ip))) && !start.contains(&ch.name) {
                    info!(connection = %c.name, child = %ch.name, "re-initiating a tunnel a previous run had up");
                    start.push(ch.name.clone());
                }
            }
            if !start.is_empty() {
                self.initiate_children(now, &c.name, start);
            }
        }
    }

    /// Initiates a connection with `children` (the first in IKE_AUTH, the others once the
    /// IKE SA is up).
    fn initiate_children(&mut self, now: Instant, conn: &str, mut children: Vec<String>) -> Option<IkeSaId> {
        if children.is_empty() {
            return None;
        }
        let first = children.remove(0);
        match self.ep.initiate(now, conn, Some(&first)) {
            Ok(id) => {
                info!(connection = %conn, child = %first, ike = %id, "initiating");
                if !children.is_empty() {
                    self.follow_up.insert(id, children);
                }
                Some(id)
            }
            Err(e) => {
                warn!(connection = %conn, error = %e, "cannot initiate");
                None
            }
        }
    }

    fn run(&mut self) {
        let mut ready = Vec::with_capacity(64);
        let mut buf = vec![0u8; 65536];
        let mut scratch = Vec::with_capacity(2048);
        while !self.stop.load(Ordering::Relaxed) {
            if self.reload.swap(false, Ordering::Relaxed) {
                match self.reload_config(Instant::now()) {
                    Ok(v) => info!(result = %v, "configuration reloaded"),
                    Err(e) => warn!(error = %e, "reload refused; the running configuration stays"),
                }
            }
            let now = Instant::now();
            let deadline = [self.ep.poll_timeout(), self.db.next_deadline()]
                .into_iter()
                .flatten()
                .fold(self.next_tick, Instant::min);
            let wait = deadline.saturating_duration_since(now).min(Duration::from_millis(250));
            ready.clear();
            self.poller.wait(wait, &mut ready);
            let busy_from = thread_cpu_time();
            for r in &ready {
                match r {
                    Ready::Waker => self.waker.reset(),
                    Ready::Socket(i) => self.read_socket(*i, &mut buf),
                }
            }
            let now = Instant::now();
            while let Ok(done) = self.dh_rx.try_recv() {
                match done {
                    Done::Dh(d) => self.ep.dh_done(now, d),
                    Done::Auth(a) => self.ep.auth_done(now, a),
                }
            }
            while let Ok(p) = self.ctl_rx.try_recv() {
                self.counters.control_requests += 1;
                let r = self.control(now, p.request);
                let _ = p.reply.send(r);
            }
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
            }
            if self.db.next_deadline().is_some_and(|t| t <= now) {
                self.db.run_due(now);
            }
            if now >= self.next_tick {
                self.ep.set_wall_clock(now, database::unix_now());
                self.tick(now);
                self.next_tick = now + self.cfg.daemon.usage_interval;
            }
            self.flush(&mut scratch);
            self.max_busy = self.max_busy.max(thread_cpu_time().saturating_sub(busy_from));
        }
        info!("IKE daemon stopping; installed SAs stay in the database");
    }

    fn read_socket(&mut self, i: usize, buf: &mut [u8]) {
        let now = Instant::now();
        for _ in 0..READ_BUDGET {
            let Some((local, remote, n, nat_t)) = self.sockets.recv(i, buf) else { return };
            match sockets::classify(nat_t, &buf[..n]) {
                Inbound::Ike(msg) => {
                    self.counters.datagrams_in += 1;
                    self.ep.handle(now, local, remote, msg);
                }
                Inbound::Keepalive => self.counters.keepalives_in += 1,
                Inbound::Esp => {
                    self.counters.esp_on_ike_socket += 1;
                    rampart_telemetry::rate_limited!(info, 10, peer = %remote, %local, reason = "esp_on_ike_socket",
                        "ESP in UDP reached the IKE socket instead of the data plane: dropped");
                }
                Inbound::Runt => {
                    self.counters.runts += 1;
                    rampart_telemetry::rate_limited!(info, 10, peer = %remote, %local, reason = "runt", bytes = n,
                        "datagram too short for IKE (or without the non-ESP marker on port 4500): dropped");
                }
            }
        }
    }

    /// Sends, submits and installs everything the endpoint produced, until it is quiet.
    fn flush(&mut self, scratch: &mut Vec<u8>) {
        for _ in 0..64 {
            let mut moved = false;
            while let Some(job) = self.ep.poll_dh_job() {
                moved = true;
                self.counters.dh_jobs += 1;
                match &self.pool {
                    Some(p) => p.submit(job),
                    None => {
                        let done = job.run();
                        self.ep.dh_done(Instant::now(), done);
                    }
                }
            }
            while let Some(job) = self.ep.poll_auth_job() {
                moved = true;
                self.counters.auth_jobs += 1;
                match &self.pool {
                    Some(p) => p.submit_auth(job),
                    None => {
                        let done = job.run();
                        self.ep.auth_done(Instant::now(), done);
                    }
                }
            }
            while let Some(t) = self.ep.poll_transmit() {
                moved = true;
                match self.sockets.send(&t, scratch) {
                    Ok(()) => self.counters.datagrams_out += 1,
                    Err(e) => {
                        self.counters.send_errors += 1;
                        debug!(?e, to = %t.to, "datagram not sent");
                    }
                }
            }
            while let Some(e) = self.ep.poll_event() {
                moved = true;
                self.apply(e);
            }
            while let Some(d) = self.ep.poll_diagnostic() {
                diagnostic_log::log(&d);
            }
            if !moved {
                return;
            }
        }
    }

    fn hold(&mut self, now: Instant, conn: &str, child: &str) -> bool {
        let key = (conn.to_string(), child.to_string());
        if self.negotiating.get(&key).is_some_and(|t| now < *t + NEGOTIATION_HOLD) {
            return false;
        }
        self.negotiating.insert(key, now);
        true
    }

    fn apply(&mut self, e: Event) {
        let now = Instant::now();
        match e {
            Event::IkeSaUp { ike, connection, local, remote, remote_id, .. } => {
                self.counters.ike_up += 1;
                info!(%ike, connection = %connection, %local, %remote, peer = %remote_id, "IKE SA established");
                self.ikes.insert(ike, IkeEntry { conn: connection.clone(), children: Vec::new() });
                if let Some(rest) = self.follow_up.remove(&ike) {
                    for ch in rest {
                        if let Err(e) = self.ep.create_child(now, ike, &ch) {
                            warn!(%ike, child = %ch, error = %e, "cannot create child");
                        }
                    }
                }
            }
            Event::IkeSaRekeyed { old, new } => {
                self.counters.ike_rekeys += 1;
                info!(%old, %new, "IKE SA rekeyed");
                if let Some(entry) = self.ikes.remove(&old) {
                    self.ikes.insert(new, entry);
                }
                self.db.ike_rekeyed(old, new);
            }
            Event::IkeSaDown { ike, reason } => {
                self.counters.ike_down += 1;
                if reason == DownReason::PeerDead {
                    self.counters.ike_dead += 1;
                }
                if self.published.ike_down(&reason) {
                    self.counters.ike_failed += 1;
                }
                self.follow_up.remove(&ike);
                let entry = self.ikes.remove(&ike);
                match (&entry, &reason) {
                    (_, DownReason::Rekeyed) => debug!(%ike, "IKE SA replaced by its rekey"),
                    (Some(e), _) => info!(%ike, connection = %e.conn, ?reason, "IKE SA down"),
                    (None, _) => info!(%ike, ?reason, "IKE SA failed"),
                }
                let Some(entry) = entry else { return };
                let which = match reason {
                    DownReason::PeerDead => |a: ChildActions| a.dpd_action,
                    DownReason::DeletedByPeer => |a: ChildActions| a.close_action,
                    _ => return,
                };
                let mut restart = Vec::new();
                for child in &entry.children {
                    match which(self.cfg.child_actions(&entry.conn, child)) {
                        ChildAction::Clear => {}
                        ChildAction::Trap => {
                            if let Some(c) = self.cfg.connections.iter().find(|c| c.name == entry.conn) {
                                let mut one = c.clone();
                                one.children.retain(|ch| ch.name == *child);
                                for ch in &mut one.children {
                                    ch.start_action = StartAction::Trap;
                                }
                                self.db.install_traps(&one);
                            }
                        }
                        ChildAction::Restart => {
                            if self.hold(now, &entry.conn, child) {
                                restart.push(child.clone());
                            }
                        }
                    }
                }
                if !restart.is_empty() {
                    info!(connection = %entry.conn, children = ?restart, "restarting");
                    self.initiate_children(now, &entry.conn, restart);
                }
            }
            Event::InstallChildSa { ike, child, name, inbound, outbound } => {
                self.counters.child_installed += 1;
                let conn = self.conn_of(ike);
                info!(%ike, %child, connection = %conn, child_name = %name,
                    spi_in = format_args!("{:08x}", inbound.spi), spi_out = format_args!("{:08x}", outbound.spi),
                    protocol = inbound.protocol.name(), suite = %inbound.suite,
                    encap = inbound.encap.is_some(), "CHILD_SA installed");
                self.db.install_child(now, ike, child, &conn, &name, &inbound, Some(&outbound), None);
                self.negotiating.remove(&(conn, name.clone()));
                if let Some(e) = self.ikes.get_mut(&ike)
                    && !e.children.contains(&name)
                {
                    e.children.push(name);
                }
            }
            Event::RekeyedChildSa { ike, old, new, inbound, outbound } => {
                self.counters.child_rekeys += 1;
                let Some((conn, name)) = self.db.child_names(old).map(|(c, n)| (c.to_string(), n.to_string())) else {
                    return;
                };
                info!(%ike, %old, %new, connection = %conn, spi_in = format_args!("{:08x}", inbound.spi),
                    switched = outbound.is_some(), "CHILD_SA rekeyed");
                // Our own rekey: the peer's data plane gets a moment to load its new inbound SA
                // before our traffic moves to it.
                let switch_at = Some(now + self.cfg.daemon.rekey_switch_delay);
                self.db.install_child(now, ike, new, &conn, &name, &inbound, outbound.as_ref(), switch_at);
            }
            Event::SwitchOutbound { child, outbound, .. } => {
                debug!(%child, spi_out = format_args!("{:08x}", outbound.spi), "outbound switched");
                self.db.switch_outbound(child, &outbound);
            }
            Event::DeleteChildSa { ike, child, inbound_spi, outbound_spi } => {
                self.counters.child_deleted += 1;
                info!(%ike, %child, spi_in = format_args!("{inbound_spi:08x}"), spi_out = format_args!("{outbound_spi:08x}"),
                    "CHILD_SA removed");
                self.db.delete_child(now, child);
            }
            Event::ChildSaFailed { ike, name, reason } => {
                self.counters.child_failed += 1;
                self.published.child_failed(reason);
                warn!(%ike, child_name = %name, reason = reason.name(), "CHILD_SA failed");
                let conn = self.conn_of(ike);
                self.negotiating.remove(&(conn, name));
            }
        }
    }

    fn conn_of(&self, ike: IkeSaId) -> String {
        self.ikes
            .get(&ike)
            .map(|e| e.conn.clone())
            .or_else(|| self.ep.ike_sa(ike).map(|i| i.connection))
            .unwrap_or_default()
    }

    /// Periodic work: the data plane's events and counters, stale SAs.
    fn tick(&mut self, now: Instant) {
        let dpd_conns: HashSet<&str> =
            self.cfg.connections.iter().filter(|c| !c.dpd_delay.is_zero()).map(|c| c.name.as_str()).collect();
        let ikes = &self.ikes;
        let requests = self.db.poll(now, &|ike| ikes.get(&ike).is_some_and(|e| dpd_conns.contains(e.conn.as_str())));
        let db_now = rampart_sadb::clock::now();
        for r in requests {
            match r {
                DbRequest::Activity(ike, secs) => {
                    if let Some(at) = now.checked_sub(Duration::from_secs(db_now.saturating_sub(secs))) {
                        self.ep.note_activity(now, ike, at);
                    }
                }
                DbRequest::Rekey(ike, child) => {
                    self.counters.usage_rekeys += 1;
                    if self.ep.rekey_child(now, ike, child).is_err() {
                        self.db.rekey_failed(child);
                    }
                }
                DbRequest::Delete(ike, child) => {
                    self.counters.usage_deletes += 1;
                    let _ = self.ep.delete_child(now, ike, child);
                }
                DbRequest::Acquire(conn, child) => {
                    if self.hold(now, &conn, &child) {
                        self.counters.acquires += 1;
                        info!(connection = %conn, child = %child, "acquire: negotiating");
                        if let Err(e) = self.ep.acquire(now, &conn, &child) {
                            warn!(connection = %conn, error = %e, "acquire failed");
                        }
                    }
                }
            }
        }
        for spi in self.db.sweep(now) {
            self.ep.release_spi(spi);
        }
        self.publish_metrics();
    }

    /// Brings the metrics registry up to date with this moment.
    fn publish_metrics(&mut self) {
        let states = self.ep.count_by_state();
        let ignored = *self.ep.ignored().counts();
        self.published.publish(&self.counters, self.ep.exchange_log(), &ignored, &states, self.db.child_count());
    }

    fn control(&mut self, now: Instant, r: Request) -> Response {
        match r {
            Request::ListSas => Response::ok(list_sas(&self.ep, &self.db, now)),
            Request::Stats => {
                // The registry up to date with this moment, not the last tick.
                self.publish_metrics();
                Response::ok(self.stats_json())
            }
            Request::Reload => match self.reload_config(now) {
                Ok(v) => Response::ok(v),
                Err(e) => Response::err(e),
            },
            Request::ListCerts => Response::ok(list_certs(&self.cfg, database::unix_now())),
            Request::Initiate { name } => self.initiate_named(now, &name),
            Request::Terminate { name } => self.terminate_named(now, &name),
        }
    }

    fn initiate_named(&mut self, now: Instant, name: &str) -> Response {
        if let Some(c) = self.cfg.connections.iter().find(|c| c.name == name) {
            let children: Vec<String> = c.children.iter().map(|ch| ch.name.clone()).collect();
            if children.is_empty() {
                return Response::err(format!("connection '{name}' has no children"));
            }
            return match self.initiate_children(now, name, children) {
                Some(id) => Response::ok(json!({ "ike": id.0 })),
                None => Response::err(format!("cannot initiate '{name}' (see the log)")),
            };
        }
        let owner =
            self.cfg.connections.iter().find(|c| c.children.iter().any(|ch| ch.name == name)).map(|c| c.name.clone());
        let Some(conn) = owner else { return Response::err(format!("no connection or child named '{name}'")) };
        match self.ep.acquire(now, &conn, name) {
            Ok(id) => Response::ok(json!({ "ike": id.0, "connection": conn })),
            Err(e) => Response::err(format!("cannot initiate '{name}': {e}")),
        }
    }

    fn terminate_named(&mut self, now: Instant, name: &str) -> Response {
        let sas = self.ep.ike_sas();
        if self.cfg.connections.iter().any(|c| c.name == name) || sas.iter().any(|s| s.connection == name) {
            let mut n = 0;
            for s in sas.iter().filter(|s| s.connection == name) {
                let r = if s.state == IkeState::Established {
                    self.ep.delete_ike(now, s.id)
                } else {
                    self.ep.abort_ike(now, s.id)
                };
                if r.is_ok() {
                    n += 1;
                }
            }
            return Response::ok(json!({ "ike_sas": n }));
        }
        let mut n = 0;
        for s in &sas {
            for c in s.children.iter().filter(|c| c.name == name) {
                if self.ep.delete_child(now, s.id, c.id).is_ok() {
                    n += 1;
                }
            }
        }
        if n == 0 && !self.cfg.connections.iter().any(|c| c.children.iter().any(|ch| ch.name == name)) {
            return Response::err(format!("no connection or child named '{name}'"));
        }
        Response::ok(json!({ "child_sas": n }))
    }

    /// Reads the configuration again and applies the difference; the running configuration
    /// stays when the new one is refused.
    fn reload_config(&mut self, now: Instant) -> Result<serde_json::Value, String> {
        let loaded = match &self.loader {
            Some(load) => load(&self.path),
            None => Config::load(&self.path),
        };
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                self.counters.reload_errors += 1;
                return Err(e.to_string());
            }
        };
        for w in &new.warnings {
            warn!("{w}");
        }
        let old_d = &self.cfg.daemon;
        let nd = &new.daemon;
        if old_d.port != nd.port
            || old_d.port_nat_t != nd.port_nat_t
            || old_d.database != nd.database
            || old_d.control_socket != nd.control_socket
        {
            warn!("changes to daemon ports, database or control_socket take effect at the next restart");
        }
        // New local addresses (daemon.listen, or the connections' local_addrs) are bound before
        // anything else changes: a failure refuses the reload. Addresses no longer listed stay
        // bound until the next restart.
        let new_ips: Vec<IpAddr> = nd.listen.iter().filter(|a| !self.sockets.ips().contains(a)).copied().collect();
        if !new_ips.is_empty() {
            let first = match self.sockets.add(&new_ips, old_d.port, old_d.port_nat_t) {
                Ok(first) => first,
                Err((addr, e)) => {
                    self.counters.reload_errors += 1;
                    return Err(format!("cannot listen on {addr}: {e} (the running configuration stays)"));
                }
            };
            if let Err(e) = self.poller.add(&self.sockets, first) {
                warn!(error = %e, "new sockets could not be watched; they serve from the next restart");
            }
            info!(addresses = ?new_ips, "listening on new addresses");
        }
        if nd.listen_any {
            let before = self.sockets.len();
            if let Some(first) = bind_host_addresses(&mut self.sockets, old_d.port, old_d.port_nat_t)
                && let Err(e) = self.poller.add(&self.sockets, first)
            {
                warn!(error = %e, "new sockets could not be watched; they serve from the next restart");
            }
            if self.sockets.len() > before {
                info!("listening on the host's new addresses (a connection has local_addrs = %any)");
            }
        } else if self.sockets.ips().iter().any(|a| !nd.listen.contains(a)) {
            info!("addresses no longer in use stay bound until the next restart");
        }
        let (mut removed, mut added, mut changed, mut unchanged) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut credentials = Vec::new();
        let sas = self.ep.ike_sas();
        for old in &self.cfg.connections {
            let still = new.connections.iter().find(|c| c.name == old.name);
            let same = still.is_some() && new.fingerprint(&old.name) == self.cfg.fingerprint(&old.name);
            if same {
                // New certificates, CAs or CRLs: new IKE SAs use them, established ones stay.
                if new.credential_fingerprint(&old.name) != self.cfg.credential_fingerprint(&old.name)
                    && let Some(c) = still
                {
                    self.ep.update_connection(c.clone());
                    credentials.push(old.name.clone());
                }
                unchanged.push(old.name.clone());
                continue;
            }
            if still.is_some() {
                changed.push(old.name.clone())
            } else {
                removed.push(old.name.clone())
            }
            for s in sas.iter().filter(|s| s.connection == old.name) {
                let _ = if s.state == IkeState::Established {
                    self.ep.delete_ike(now, s.id)
                } else {
                    self.ep.abort_ike(now, s.id)
                };
            }
            self.db.remove_traps(&old.name);
            self.ep.remove_connection(&old.name);
        }
        let mut to_start = Vec::new();
        for c in &new.connections {
            if unchanged.contains(&c.name) {
                continue;
            }
            if !changed.contains(&c.name) {
                added.push(c.name.clone());
            }
            self.ep.add_connection(c.clone());
            self.db.install_traps(c);
            let start: Vec<String> =
                c.children.iter().filter(|ch| ch.start_action.starts()).map(|ch| ch.name.clone()).collect();
            if !start.is_empty() {
                to_start.push((c.name.clone(), start));
            }
        }
        // Keep the endpoint and the daemon settings that need a restart; take the rest.
        let daemon_cfg = self.cfg.daemon.clone();
        self.cfg = new;
        self.cfg.daemon.listen = daemon_cfg.listen;
        self.cfg.daemon.database = daemon_cfg.database;
        self.cfg.daemon.control_socket = daemon_cfg.control_socket;
        self.cfg.daemon.endpoint = daemon_cfg.endpoint;
        for (c, children) in to_start {
            self.initiate_children(now, &c, children);
        }
        self.counters.reloads += 1;
        Ok(json!({
            "added": added,
            "removed": removed,
            "changed": changed,
            "unchanged": unchanged,
            "credentials_reloaded": credentials,
        }))
    }

    fn stats_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in self.counters.pairs() {
            m.insert(k.into(), v.into());
        }
        let (ike_sas, half_open) = self.ep.counts();
        m.insert("ike_sas".into(), ike_sas.into());
        m.insert("ike_sas_half_open".into(), half_open.into());
        m.insert("child_sas".into(), self.db.child_count().into());
        let (sas, policies) = self.db.sizes();
        m.insert("database_sas".into(), sas.into());
        m.insert("database_policies".into(), policies.into());
        m.insert("database_stale_sas".into(), self.db.stale_count().into());
        let dbs = self.db.stats();
        m.insert("database_write_errors".into(), dbs.write_errors.into());
        m.insert("database_events".into(), dbs.events.into());
        m.insert("database_stale_removed".into(), dbs.stale_removed.into());
        if let Some(p) = &self.pool {
            let s = p.stats();
            m.insert("dh_workers".into(), p.workers().into());
            m.insert("dh_jobs_done".into(), s.jobs_done.load(Ordering::Relaxed).into());
            m.insert("auth_jobs_done".into(), s.auth_jobs_done.load(Ordering::Relaxed).into());
            m.insert("dh_shares_made".into(), s.shares_made.load(Ordering::Relaxed).into());
            m.insert("dh_shares_taken".into(), s.shares_taken.load(Ordering::Relaxed).into());
            m.insert("dh_shares_missed".into(), s.shares_missed.load(Ordering::Relaxed).into());
            m.insert("dh_shares_deferred".into(), s.shares_deferred.load(Ordering::Relaxed).into());
        }
        if let Some((rss, anon)) = memory() {
            m.insert("process_rss_bytes".into(), rss.into());
            m.insert("process_rss_anon_bytes".into(), anon.into());
        }
        m.insert("uptime_seconds".into(), self.started.elapsed().as_secs().into());
        // The most CPU time one turn of the loop took: timers and retransmissions wait that long
        // at worst behind the loop's own work.
        m.insert("event_loop_max_turn_cpu_us".into(), (self.max_busy.as_micros() as u64).into());
        // Every metric of the process under its sample name, and as the table that `/stats`
        // serves (what `rampart ctl stats` prints); in `rampart run` the data plane's too.
        let snap = self.metrics.snapshot();
        let samples: serde_json::Map<String, serde_json::Value> = snap
            .flat()
            .into_iter()
            .map(|(k, v)| (k, if v.fract() == 0.0 && v.abs() < 9e15 { (v as i64).into() } else { v.into() }))
            .collect();
        m.insert("metrics".into(), samples.into());
        m.insert("table".into(), snap.to_table(true).into());
        serde_json::Value::Object(m)
    }
}

/// Binds the host's addresses that have no sockets yet (a connection with `local_addrs =
/// %any`), each on its own: one that cannot be bound is logged and skipped. Returns the index
/// of the first new socket, if any.
fn bind_host_addresses(sockets: &mut SocketSet, port: u16, port_nat_t: u16) -> Option<usize> {
    let addrs = match crate::host_addrs::host_addresses() {
        Ok(a) => a,
        Err(e) => {
            warn!(error = %e, "cannot list the host's addresses for local_addrs = %any");
            return None;
        }
    };
    let mut first = None;
    let new: Vec<IpAddr> = addrs.into_iter().filter(|a| !sockets.ips().contains(a)).collect();
    for a in new {
        match sockets.add(&[a], port, port_nat_t) {
            Ok(i) => {
                first.get_or_insert(i);
            }
            Err((at, e)) => warn!(address = %at, error = %e, "cannot listen on a host address; skipped"),
        }
    }
    first
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Resident memory of this process: (VmRSS, RssAnon) in bytes.
pub fn memory() -> Option<(u64, u64)> {
    memory_of("self")
}

/// Resident memory of a process (`"self"` or a pid): (VmRSS, RssAnon) in bytes.
pub fn memory_of(pid: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("RssAnon:")?))
}

/// The state as `list-sas` shows it: the metric label, but `half-open`.
fn state_name(s: IkeState) -> &'static str {
    match s {
        IkeState::HalfOpen => "half-open",
        s => metrics::state_label(s),
    }
}

/// A selector as an operator writes it: `10.1.0.0/24`, `10.1.0.1-10.1.0.9`, with `[proto/ports]`.
fn ts_text(t: &rampart_sa::TrafficSelector) -> String {
    let p = database::range_prefixes(t.start, t.end);
    let mut out = match p.as_slice() {
        [(a, l)] => format!("{a}/{l}"),
        _ => format!("{}-{}", t.start, t.end),
    };
    if t.protocol != 0 || t.start_port != 0 || t.end_port != u16::MAX {
        let ports = match (t.start_port, t.end_port) {
            (0, u16::MAX) => String::new(),
            (a, b) if a == b => format!("/{a}"),
            (a, b) => format!("/{a}-{b}"),
        };
        out.push_str(&format!("[{}{ports}]", t.protocol));
    }
    out
}

/// Seconds from `now` to `at` (0 once passed), or null.
fn seconds_until(now: Instant, at: Option<Instant>) -> serde_json::Value {
    at.map_or(serde_json::Value::Null, |t| t.saturating_duration_since(now).as_secs().into())
}

/// The suite of a CHILD_SA in swanctl spelling: ESP's (`aes256gcm16`, `aes192-sha256`) or
/// AH's integrity algorithm (`sha256`, `aes256gmac`).
fn child_suite(a: &rampart_ike::proposal::ChildAlgorithms) -> String {
    use rampart_ike::proposal::{esp_encr_name, esp_integ_name};
    let integ = esp_integ_name(a.suite.integrity());
    if a.protocol == rampart_sa::Protocol::Ah {
        return integ.to_string();
    }
    let encr = esp_encr_name(a.suite.encryption());
    if integ.is_empty() { encr } else { format!("{encr}-{integ}") }
}

/// The `list-certs` answer: every certificate, CA and CRL loaded, with its file, subject,
/// issuer, serial, validity, key and whether we hold its private key; no key material.
pub fn list_certs(cfg: &Config, unix: u64) -> serde_json::Value {
    let creds = &cfg.credentials;
    let cert = |kind: &str, file: &Path, c: &rampart_ike::cert::Certificate| {
        json!({
            "kind": kind,
            "file": file.display().to_string(),
            "subject": c.subject_text,
            "issuer": c.issuer_text,
            "serial": c.serial,
            "not_before": c.not_before,
            "not_after": c.not_after,
            "expired": unix > c.not_after,
            "key": c.key.to_string(),
            "alt_names": c.dns_names.iter().chain(c.emails.iter()).cloned()
                .chain(c.ips.iter().map(|i| i.to_string())).collect::<Vec<_>>(),
            "ca": c.is_ca,
            "has_private_key": creds.key_for(c).is_some(),
            "used_by": cfg.connections.iter()
                .filter(|conn| conn.local.certs.first() == Some(c) || conn.remote.cacerts.contains(c))
                .map(|conn| conn.name.clone()).collect::<Vec<_>>(),
        })
    };
    let mut out: Vec<serde_json::Value> = Vec::new();
    out.extend(creds.certs.iter().map(|(f, c)| cert("x509", f, c)));
    out.extend(creds.cas.iter().map(|(f, c)| cert("x509ca", f, c)));
    out.extend(creds.crls.iter().map(|(f, c)| {
        json!({ "kind": "x509crl", "file": f.display().to_string(), "issuer": c.issuer_text, "revoked": c.revoked })
    }));
    for conn in &cfg.connections {
        for c in conn.remote.cacerts.iter().chain(conn.local.certs.iter()) {
            if !creds.certs.iter().chain(creds.cas.iter()).any(|(_, x)| x == c) {
                out.push(cert(if c.is_ca { "cacerts" } else { "certs" }, Path::new("(named in the connection)"), c));
            }
        }
    }
    serde_json::Value::Array(out)
}

/// The `list-sas` answer: every IKE SA with its negotiated algorithms and DH group, NAT-T
/// state and ports, times to rekey and to expire, and its CHILD_SAs with theirs and the bytes
/// and packets the data plane counted on each (from the SA database's usage area). No keys.
pub fn list_sas(ep: &Endpoint, db: &Database, now: Instant) -> serde_json::Value {
    let sas: Vec<serde_json::Value> = ep
        .ike_sas()
        .into_iter()
        .map(|s| {
            let children: Vec<serde_json::Value> = s
                .children
                .iter()
                .map(|c| {
                    let (uin, uout) = db.usage(c.id).unwrap_or_default();
                    json!({
                        "id": c.id.0,
                        "name": c.name,
                        "state": format!("{:?}", c.state).to_lowercase(),
                        "spi_in": format!("{:08x}", c.spi_in),
                        "spi_out": format!("{:08x}", c.spi_out),
                        "outbound": c.outbound_active,
                        "mode": match c.mode { rampart_sa::Mode::Tunnel => "tunnel", rampart_sa::Mode::Transport => "transport" },
                        "protocol": c.algorithms.protocol.name(),
                        "esp": (c.algorithms.protocol == rampart_sa::Protocol::Esp).then(|| child_suite(&c.algorithms)),
                        "ah": (c.algorithms.protocol == rampart_sa::Protocol::Ah).then(|| child_suite(&c.algorithms)),
                        "pfs": c.algorithms.dh.map(|g| g.name()),
                        "esn": c.algorithms.esn,
                        "encap": c.encap.map(|e| json!({ "local_port": e.local_port, "remote_port": e.remote_port })),
                        "rekey_in_s": seconds_until(now, c.rekey_at),
                        "expire_in_s": seconds_until(now, c.expire_at),
                        "bytes_in": uin.bytes,
                        "packets_in": uin.packets,
                        "bytes_out": uout.bytes,
                        "packets_out": uout.packets,
                        "local_ts": c.local_ts.iter().map(ts_text).collect::<Vec<_>>(),
                        "remote_ts": c.remote_ts.iter().map(ts_text).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let algs = s.algorithms;
            json!({
                "ike": s.id.0,
                "connection": s.connection,
                "state": state_name(s.state),
                "initiator": s.initiator,
                "local": s.local.to_string(),
                "remote": s.remote.to_string(),
                "local_id": s.local_id.to_string(),
                "remote_id": s.remote_id.as_ref().map(|i| i.to_string()),
                "spi_i": format!("{:016x}", s.spi_i),
                "spi_r": format!("{:016x}", s.spi_r),
                "proposal": algs.map(|a| rampart_ike::proposal::IkeProposal {
                    encr: vec![a.encr],
                    integ: a.integ.into_iter().collect(),
                    prf: vec![a.prf],
                    dh: vec![a.dh],
                }.to_string()),
                "dh_group": algs.map(|a| a.dh.name()),
                "nat_t": s.nat_local || s.nat_remote,
                "nat_local": s.nat_local,
                "nat_remote": s.nat_remote,
                "local_port": s.local.port(),
                "remote_port": s.remote.port(),
                "rekey_in_s": seconds_until(now, s.rekey_at),
                "expire_in_s": seconds_until(now, s.expire_at),
                "children": children,
            })
        })
        .collect();
    serde_json::Value::Array(sas)
}
