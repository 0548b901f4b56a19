//! The endpoint: every IKE SA of one daemon, routed by SPI, with the responder's half-open
//! limits and cookies, behind a quinn-proto style interface.
//!
//! `handle(now, local, remote, datagram)` and `handle_timeout(now)` feed it;
//! `poll_transmit()`, `poll_event()`, `poll_diagnostic()` and `poll_timeout()` drain it. It
//! never reads a clock, opens a socket, logs or sleeps: the caller owns time and I/O (DESIGN.md
//! rule 1). Every datagram it does not answer is counted under a reason
//! ([`crate::diagnostic::Ignored`]).

use core::fmt;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_sa::{Mode, TrafficSelector, UdpEncap};

use crate::config::{ChildConfig, ConnectionConfig, EndpointConfig};
use crate::cookie::CookieJar;
use crate::crypto::RandomSource;
use crate::diagnostic::{Diagnostic, Diagnostics, Ignored};
use crate::event::{ChildSaId, Event, IkeSaId, Transmit};
use crate::exchange_log::ExchangeLog;
use crate::fragment::Pool;
use crate::message::{
    ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, HEADER_LEN, Header, Identification, Message, NotifyType, ParseError,
    Payload,
};
use crate::offload::{AuthDone, AuthJob, DhDone, DhJob, DhOwner, InlineShares, KeyShareSource};
use crate::proposal::{ChildAlgorithms, IkeAlgorithms};
use crate::state::{ChildState, Ctx, Ids, IkeSa, IkeState};
use crate::tasks::{child_create, child_delete, child_rekey, ike_auth, ike_delete, ike_dpd, ike_init, ike_rekey};

/// How often the cookie secret changes.
const COOKIE_ROTATION: Duration = Duration::from_secs(300);

/// Unprotected error answers outside any IKE SA (INVALID_MAJOR_VERSION) sent per second at most:
/// they cost nothing to provoke, so a flood of them must not turn the endpoint into a reflector.
pub const UNPROTECTED_ANSWERS_PER_SECOND: u32 = 10;

/// A request the endpoint cannot carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointError {
    /// No connection of that name.
    UnknownConnection(String),
    /// No child of that name in the connection.
    UnknownChild(String),
    /// The connection has no local or remote address to initiate with.
    NoAddress,
    /// The connection has no usable IKE proposal.
    NoProposal,
    /// No such IKE SA.
    UnknownIkeSa(IkeSaId),
    /// No such CHILD_SA.
    UnknownChildSa(ChildSaId),
    /// The IKE SA is not established.
    NotEstablished(IkeSaId),
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::UnknownConnection(n) => write!(f, "no connection named '{n}'"),
            EndpointError::UnknownChild(n) => write!(f, "no child named '{n}'"),
            EndpointError::NoAddress => f.write_str("connection has no local/remote address to initiate with"),
            EndpointError::NoProposal => f.write_str("connection has no IKE proposal"),
            EndpointError::UnknownIkeSa(id) => write!(f, "no IKE SA {id}"),
            EndpointError::UnknownChildSa(id) => write!(f, "no CHILD_SA {id}"),
            EndpointError::NotEstablished(id) => write!(f, "IKE SA {id} is not established"),
        }
    }
}

impl std::error::Error for EndpointError {}

/// A snapshot of one CHILD_SA, for the CLI and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSaInfo {
    /// Handle.
    pub id: ChildSaId,
    /// Child config name.
    pub name: String,
    /// Our inbound SPI.
    pub spi_in: u32,
    /// The peer's SPI.
    pub spi_out: u32,
    /// State.
    pub state: ChildState,
    /// Whether it carries outbound traffic.
    pub outbound_active: bool,
    /// Whether the daemon was told to install it.
    pub announced: bool,
    /// Our selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// The negotiated protocol (ESP or AH), suite, PFS group and ESN.
    pub algorithms: ChildAlgorithms,
    /// Tunnel or transport.
    pub mode: Mode,
    /// UDP encapsulation (NAT-T) of its ESP, with the ports (never for AH).
    pub encap: Option<UdpEncap>,
    /// When it is rekeyed (`None`: never, or already rekeyed).
    pub rekey_at: Option<Instant>,
    /// When it is deleted at the latest (hard lifetime).
    pub expire_at: Option<Instant>,
}

/// A snapshot of one IKE SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeSaInfo {
    /// Handle.
    pub id: IkeSaId,
    /// Connection name.
    pub connection: String,
    /// State.
    pub state: IkeState,
    /// Whether we are its original initiator.
    pub initiator: bool,
    /// SPIi.
    pub spi_i: u64,
    /// SPIr.
    pub spi_r: u64,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// We are behind a NAT.
    pub nat_local: bool,
    /// The peer is behind a NAT.
    pub nat_remote: bool,
    /// Message ID of our next request.
    pub next_request_id: u32,
    /// The IKE SA that replaced it, if rekeyed.
    pub successor: Option<IkeSaId>,
    /// Our identity.
    pub local_id: Identification,
    /// The peer's authenticated identity (once it authenticated).
    pub remote_id: Option<Identification>,
    /// The negotiated algorithms and Diffie-Hellman group (once IKE_SA_INIT is done).
    pub algorithms: Option<IkeAlgorithms>,
    /// IKE fragmentation (RFC 7383) negotiated in IKE_SA_INIT.
    pub fragmentation: bool,
    /// IKE fragments of the peer's messages held for reassembly now.
    pub fragments_held: usize,
    /// When it is rekeyed (`None`: never, or not established).
    pub rekey_at: Option<Instant>,
    /// When it is deleted at the latest.
    pub expire_at: Option<Instant>,
    /// CHILD_SAs.
    pub children: Vec<ChildSaInfo>,
}

/// Builds the task context from the endpoint's fields (disjoint borrows, so that the IKE SA
/// taken out of the map can be worked on at the same time).
macro_rules! ctx {
    ($self:ident, $now:expr) => {
        Ctx {
            now: $now,
            rng: &mut *$self.rng,
            events: &mut $self.events,
            transmits: &mut $self.transmits,
            cfg: &$self.cfg,
            ids: &mut $self.ids,
            new_sas: Vec::new(),
            moves: Vec::new(),
            initial_contact: None,
            shares: &mut *$self.shares,
            dh_jobs: &mut $self.dh_jobs,
            exchanges: &mut $self.exchanges,
            diag: &mut $self.diag,
            connections: $self.connections.as_slice(),
            unix_time: $self.wall.map_or(0, |(at, unix): (Instant, u64)| {
                if $now >= at {
                    unix + $now.duration_since(at).as_secs()
                } else {
                    unix.saturating_sub(at.duration_since($now).as_secs())
                }
            }),
            auth_jobs: &mut $self.auth_jobs,
            fragments: &mut $self.fragment_pool,
        }
    };
}

/// All IKE SAs of one daemon.
///
/// Every per-message operation is O(log n) in the number of IKE SAs: timers sit in an ordered
/// set (one entry per IKE SA, updated whenever the SA is touched), half-open SAs are counted per
/// peer address, authenticated peers are indexed for INITIAL_CONTACT, and only the IKE SAs that
/// died are looked at when the dead are removed.
pub struct Endpoint {
    cfg: EndpointConfig,
    rng: Box<dyn RandomSource>,
    shares: Box<dyn KeyShareSource>,
    connections: Arc<Vec<Arc<ConnectionConfig>>>,
    conn_by_name: HashMap<String, Arc<ConnectionConfig>>,
    sas: BTreeMap<IkeSaId, IkeSa>,
    by_spi: HashMap<u64, IkeSaId>,
    init_index: HashMap<(SocketAddr, u64), IkeSaId>,
    init_keys: HashMap<IkeSaId, (SocketAddr, u64)>,
    pending: HashMap<IkeSaId, ike_init::PreparedInit>,
    timers: BTreeSet<(Instant, IkeSaId)>,
    scheduled: HashMap<IkeSaId, Instant>,
    half_open_total: usize,
    half_open_by_ip: HashMap<IpAddr, usize>,
    by_peer: HashMap<Identification, Vec<IkeSaId>>,
    dying: Vec<IkeSaId>,
    cookies: CookieJar,
    cookies_rotated: Option<Instant>,
    ids: Ids,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    dh_jobs: VecDeque<DhJob>,
    auth_jobs: VecDeque<AuthJob>,
    /// The wall clock: this instant was this many seconds since 1970 (certificate validity).
    wall: Option<(Instant, u64)>,
    exchanges: ExchangeLog,
    diag: Diagnostics,
    /// The second the unprotected answers are counted in, and how many went out in it.
    unprotected: (Option<Instant>, u32),
    /// Bytes of IKE fragments all IKE SAs hold in reassembly.
    fragment_pool: Pool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint").field("ike_sas", &self.sas.len()).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with no connections. `rng` supplies SPIs, nonces, IVs and private values.
    pub fn new(cfg: EndpointConfig, mut rng: Box<dyn RandomSource>) -> Endpoint {
        let cookies = CookieJar::new(&mut *rng);
        Endpoint {
            cfg,
            rng,
            shares: Box::new(InlineShares),
            connections: Arc::new(Vec::new()),
            conn_by_name: HashMap::new(),
            sas: BTreeMap::new(),
            by_spi: HashMap::new(),
            init_index: HashMap::new(),
            init_keys: HashMap::new(),
            pending: HashMap::new(),
            timers: BTreeSet::new(),
            scheduled: HashMap::new(),
            half_open_total: 0,
            half_open_by_ip: HashMap::new(),
            by_peer: HashMap::new(),
            dying: Vec::new(),
            cookies,
            cookies_rotated: None,
            ids: Ids::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dh_jobs: VecDeque::new(),
            auth_jobs: VecDeque::new(),
            wall: None,
            exchanges: ExchangeLog::default(),
            diag: Diagnostics::default(),
            unprotected: (None, 0),
            fragment_pool: Pool::default(),
        }
    }

    /// Takes Diffie-Hellman key shares from `source` from now on (a daemon's precomputed
    /// supply) instead of making them inline.
    pub fn set_key_share_source(&mut self, source: Box<dyn KeyShareSource>) {
        self.shares = source;
    }

    /// The endpoint's settings.
    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Adds a connection (responder and initiator side).
    pub fn add_connection(&mut self, conn: ConnectionConfig) {
        let conn = Arc::new(conn);
        self.conn_by_name.insert(conn.name.clone(), Arc::clone(&conn));
        Arc::make_mut(&mut self.connections).push(conn);
    }

    /// Removes a connection: no new IKE SA uses it. IKE SAs made from it keep their copy until
    /// they are deleted (the caller deletes them if it wants them gone). Returns whether it
    /// existed.
    pub fn remove_connection(&mut self, name: &str) -> bool {
        let list = Arc::make_mut(&mut self.connections);
        let before = list.len();
        list.retain(|c| c.name != name);
        self.conn_by_name.remove(name);
        list.len() != before
    }

    /// The connections.
    pub fn connections(&self) -> &[Arc<ConnectionConfig>] {
        &self.connections
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Exchange counts and the round-trip times not taken yet, for metrics.
    pub fn exchange_log(&mut self) -> &mut ExchangeLog {
        &mut self.exchanges
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next diagnostic for the log: a datagram dropped and why, a NO_PROPOSAL_CHOSEN with
    /// what was offered and what is configured, an AUTHENTICATION_FAILED with its cause.
    pub fn poll_diagnostic(&mut self) -> Option<Diagnostic> {
        self.diag.pop()
    }

    /// Every datagram dropped without an answer, counted by reason (the counts only grow).
    pub fn ignored(&self) -> &Diagnostics {
        &self.diag
    }

    /// Bytes of IKE fragments held in reassembly by all IKE SAs together (at most
    /// [`EndpointConfig::fragment_memory`]).
    pub fn fragment_memory(&self) -> usize {
        self.fragment_pool.used
    }

    /// The next Diffie-Hellman computation to run elsewhere ([`EndpointConfig::offload_dh`]).
    /// Every job taken must come back through [`Endpoint::dh_done`]; the exchange waits for it.
    pub fn poll_dh_job(&mut self) -> Option<DhJob> {
        self.dh_jobs.pop_front()
    }

    /// A computation from [`Endpoint::poll_dh_job`] finished: the exchange that waited for it
    /// goes on (a responder answers IKE_SA_INIT, an initiator starts IKE_AUTH).
    pub fn dh_done(&mut self, now: Instant, done: DhDone) {
        match done.owner {
            DhOwner::Responder(id) => {
                let Some(p) = self.pending.remove(&id) else { return };
                self.count_half_open(Some(p.remote().ip()), None);
                let mut cx = ctx!(self, now);
                match ike_init::finish_r(&mut cx, p, done.share, done.result) {
                    Some(sa) => self.insert_responder(sa),
                    None => {
                        if let Some(key) = self.init_keys.remove(&id) {
                            self.init_index.remove(&key);
                        }
                    }
                }
            }
            DhOwner::Initiator(id) => {
                let result = done.result;
                self.with_sa(now, id, |sa, cx| {
                    if let Some(r) = sa.suspended.take() {
                        let flow = r.resume(sa, result);
                        sa.after_flow(cx, flow);
                    }
                });
            }
        }
    }

    /// The next signature check of a responder's IKE_AUTH to run elsewhere
    /// ([`EndpointConfig::offload_dh`]); every one must come back through
    /// [`Endpoint::auth_done`].
    pub fn poll_auth_job(&mut self) -> Option<AuthJob> {
        self.auth_jobs.pop_front()
    }

    /// A job from [`Endpoint::poll_auth_job`] finished: the IKE_AUTH it belongs to is answered.
    pub fn auth_done(&mut self, now: Instant, done: AuthDone) {
        self.with_sa(now, done.owner, |sa, cx| {
            let Some(pending) = sa.auth_pending.take() else { return };
            let id = pending.message_id;
            let response = ike_auth::finish_r(sa, cx, pending, done);
            let remote = sa.remote;
            sa.answer(cx, remote, ExchangeType::IkeAuth, id, response);
        });
    }

    /// Tells the endpoint the wall clock: `now` is `unix_seconds` after 1970. Certificates are
    /// checked for validity against it (the core reads no clock; a daemon sets it at start and
    /// now and then). Unset, every certificate is outside its validity.
    pub fn set_wall_clock(&mut self, now: Instant, unix_seconds: u64) {
        self.wall = Some((now, unix_seconds));
    }

    /// Replaces a connection of the same name (new certificates, keys, CAs or CRLs) without
    /// touching its IKE SAs: they keep what they authenticated with, new ones take this.
    /// Returns whether it existed.
    pub fn update_connection(&mut self, conn: ConnectionConfig) -> bool {
        let conn = Arc::new(conn);
        let list = Arc::make_mut(&mut self.connections);
        let Some(slot) = list.iter_mut().find(|c| c.name == conn.name) else { return false };
        *slot = Arc::clone(&conn);
        self.conn_by_name.insert(conn.name.clone(), conn);
        true
    }

    /// When [`Endpoint::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(t, _)| *t)
    }

    /// Snapshots of the IKE SAs.
    pub fn ike_sas(&self) -> Vec<IkeSaInfo> {
        self.sas.values().map(info).collect()
    }

    /// A snapshot of one IKE SA.
    pub fn ike_sa(&self, id: IkeSaId) -> Option<IkeSaInfo> {
        self.sas.get(&id).map(info)
    }

    /// How many IKE SAs exist (any state), and how many of them are half-open (responder side,
    /// including IKE_SA_INIT requests waiting for their Diffie-Hellman computation).
    pub fn counts(&self) -> (usize, usize) {
        (self.sas.len(), self.half_open_total)
    }

    /// How many IKE SAs are in each state (no snapshots: cheap enough for every metrics tick).
    pub fn count_by_state(&self) -> Vec<(IkeState, usize)> {
        let mut out: Vec<(IkeState, usize)> = Vec::new();
        for sa in self.sas.values() {
            match out.iter_mut().find(|(s, _)| *s == sa.state) {
                Some((_, n)) => *n += 1,
                None => out.push((sa.state, 1)),
            }
        }
        out
    }

    /// Runs `f` on one IKE SA with a context, then files what it produced.
    fn with_sa(&mut self, now: Instant, id: IkeSaId, f: impl FnOnce(&mut IkeSa, &mut Ctx<'_>)) {
        let Some(mut sa) = self.sas.remove(&id) else { return };
        let half_open_before = half_open_ip(&sa);
        let had_auth = sa.auth.is_some();
        let mut cx = ctx!(self, now);
        f(&mut sa, &mut cx);
        let (new_sas, moves) = (std::mem::take(&mut cx.new_sas), std::mem::take(&mut cx.moves));
        let contact = cx.initial_contact.take();
        self.count_half_open(half_open_before, half_open_ip(&sa));
        if !had_auth && sa.auth.is_some() {
            self.index_peer(&sa);
        }
        self.file(now, sa, new_sas, moves);
        if let Some(fresh) = contact {
            self.initial_contact(now, fresh);
        }
    }

    fn count_half_open(&mut self, before: Option<IpAddr>, after: Option<IpAddr>) {
        if before == after {
            return;
        }
        if let Some(ip) = before {
            self.half_open_total = self.half_open_total.saturating_sub(1);
            if let Some(n) = self.half_open_by_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.half_open_by_ip.remove(&ip);
                }
            }
        }
        if let Some(ip) = after {
            self.half_open_total += 1;
            *self.half_open_by_ip.entry(ip).or_insert(0) += 1;
        }
    }

    fn index_peer(&mut self, sa: &IkeSa) {
        if let Some(a) = &sa.auth {
            self.by_peer.entry(a.peer().clone()).or_default().push(sa.id);
        }
    }

    fn unindex_peer(&mut self, sa: &IkeSa) {
        let Some(a) = &sa.auth else { return };
        if let Some(list) = self.by_peer.get_mut(a.peer()) {
            list.retain(|x| *x != sa.id);
            if list.is_empty() {
                self.by_peer.remove(a.peer());
            }
        }
    }

    /// Puts one IKE SA's timer where its next wake-up is.
    fn reschedule(&mut self, id: IkeSaId) {
        let next = self.sas.get(&id).and_then(|sa| sa.next_timeout(&self.cfg));
        if let Some(old) = self.scheduled.remove(&id) {
            self.timers.remove(&(old, id));
        }
        if let Some(t) = next {
            self.timers.insert((t, id));
            self.scheduled.insert(id, t);
        }
    }

    /// Files a responder's new half-open IKE SA.
    fn insert_responder(&mut self, sa: IkeSa) {
        let (id, key) = (sa.id, (sa.remote, sa.spi_i));
        self.count_half_open(None, half_open_ip(&sa));
        self.init_index.insert(key, id);
        self.init_keys.insert(id, key);
        self.by_spi.insert(sa.spi_r, id);
        self.sas.insert(id, sa);
        self.reschedule(id);
    }

    /// Drops, without a message, the other established IKE SAs of the same connection and
    /// authenticated peer identity as `fresh` (the peer lost its state: a reboot).
    fn initial_contact(&mut self, now: Instant, fresh: IkeSaId) {
        let Some(f) = self.sas.get(&fresh) else { return };
        let Some(peer) = f.auth.as_ref().map(|a| a.peer().clone()) else { return };
        let conn = f.conn.name.clone();
        let stale: Vec<IkeSaId> = self
            .by_peer
            .get(&peer)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| {
                *id != fresh
                    && self
                        .sas
                        .get(id)
                        .is_some_and(|s| s.conn.name == conn && s.auth.as_ref().is_some_and(|a| *a.peer() == peer))
            })
            .collect();
        for id in stale {
            self.with_sa(now, id, |sa, cx| sa.die(cx, crate::event::DownReason::Replaced));
        }
    }

    /// Puts an IKE SA back, adds the IKE SAs a rekey made, moves children, lets new SAs send.
    fn file(&mut self, now: Instant, mut sa: IkeSa, new_sas: Vec<IkeSa>, moves: Vec<(IkeSaId, IkeSaId)>) {
        if sa.our_spi() != 0 {
            self.by_spi.insert(sa.our_spi(), sa.id);
        }
        if sa.state == IkeState::Established && !sa.init_request.is_empty() {
            // Authentication is done: the IKE_SA_INIT messages are not needed any more.
            sa.init_request = Vec::new();
            sa.init_response = Vec::new();
        }
        let id = sa.id;
        if sa.state == IkeState::Dead {
            self.dying.push(id);
        }
        self.sas.insert(id, sa);
        self.reschedule(id);
        let mut fresh = Vec::new();
        for sa in new_sas {
            fresh.push(sa.id);
            self.by_spi.insert(sa.our_spi(), sa.id);
            self.index_peer(&sa);
            self.sas.insert(sa.id, sa);
        }
        for (from, to) in moves {
            let children = match self.sas.get_mut(&from) {
                Some(s) => std::mem::take(&mut s.children),
                None => continue,
            };
            match self.sas.get_mut(&to) {
                Some(t) => t.children.extend(children),
                None => {
                    if let Some(s) = self.sas.get_mut(&from) {
                        s.children = children;
                    }
                }
            }
            self.reschedule(from);
            self.reschedule(to);
        }
        for id in fresh {
            self.with_sa(now, id, |sa, cx| sa.pump(cx));
        }
        self.reap();
    }

    fn reap(&mut self) {
        for id in std::mem::take(&mut self.dying) {
            if self.sas.get(&id).is_none_or(|s| s.state != IkeState::Dead) {
                continue;
            }
            let Some(mut sa) = self.sas.remove(&id) else { continue };
            sa.fragments.clear(&mut self.fragment_pool);
            if self.by_spi.get(&sa.our_spi()) == Some(&id) {
                self.by_spi.remove(&sa.our_spi());
            }
            self.ids.ike_spis.remove(&sa.our_spi());
            if let Some(key) = self.init_keys.remove(&id) {
                self.init_index.remove(&key);
            }
            if let Some(t) = self.scheduled.remove(&id) {
                self.timers.remove(&(t, id));
            }
            self.unindex_peer(&sa);
        }
    }

    fn connection(&self, name: &str) -> Result<Arc<ConnectionConfig>, EndpointError> {
        self.conn_by_name.get(name).cloned().ok_or_else(|| EndpointError::UnknownConnection(name.to_string()))
    }

    fn child_cfg(conn: &ConnectionConfig, child: Option<&str>) -> Result<Option<ChildConfig>, EndpointError> {
        match child {
            None => Ok(conn.children.first().cloned()),
            Some(n) => conn
                .children
                .iter()
                .find(|c| c.name == n)
                .cloned()
                .map(Some)
                .ok_or_else(|| EndpointError::UnknownChild(n.to_string())),
        }
    }

    /// Starts a connection as initiator: IKE_SA_INIT, then IKE_AUTH with `child` (the first
    /// child when `None`) as the first CHILD_SA.
    pub fn initiate(&mut self, now: Instant, connection: &str, child: Option<&str>) -> Result<IkeSaId, EndpointError> {
        let conn = self.connection(connection)?;
        let child = Self::child_cfg(&conn, child)?;
        let (Some(l), Some(r)) = (conn.local_addrs.first(), conn.remote_addrs.first()) else {
            return Err(EndpointError::NoAddress);
        };
        let local = SocketAddr::new(*l, conn.local_port);
        let remote = SocketAddr::new(*r, conn.remote_port);
        let id = self.ids.ike();
        let mut sa = IkeSa::new(id, Arc::clone(&conn), true, local, remote, now);
        // INITIAL_CONTACT only when no other IKE SA with this peer exists (it would go).
        sa.initial_contact = !self
            .sas
            .values()
            .any(|s| s.remote.ip() == remote.ip() && s.conn.remote.id == conn.remote.id && s.state != IkeState::Dead);
        self.sas.insert(id, sa);
        let mut ok = true;
        self.with_sa(now, id, |sa, cx| match ike_init::Initiator::new(sa, cx, child) {
            Some(t) => sa.queue_task(cx, Box::new(t)),
            None => {
                ok = false;
                sa.state = IkeState::Dead;
            }
        });
        if !ok {
            return Err(EndpointError::NoProposal);
        }
        Ok(id)
    }

    /// Initiates every connection that has a child with `start_action = start` (or
    /// `trap|start`), one IKE SA
    /// per connection with that child as its first CHILD_SA; returns what happened to each.
    pub fn start(&mut self, now: Instant) -> Vec<(String, Result<IkeSaId, EndpointError>)> {
        let todo: Vec<(String, String)> = self
            .connections
            .iter()
            .filter_map(|c| {
                c.children.iter().find(|ch| ch.start_action.starts()).map(|ch| (c.name.clone(), ch.name.clone()))
            })
            .collect();
        todo.into_iter()
            .map(|(c, ch)| {
                let r = self.initiate(now, &c, Some(&ch));
                (c, r)
            })
            .collect()
    }

    /// Traffic hit a trap policy of `connection`/`child`: creates the CHILD_SA on an
    /// established IKE SA of the connection, or initiates one.
    pub fn acquire(&mut self, now: Instant, connection: &str, child: &str) -> Result<IkeSaId, EndpointError> {
        let existing = self
            .sas
            .values()
            .find(|s| s.conn.name == connection && s.state == IkeState::Established && s.successor.is_none())
            .map(|s| s.id);
        match existing {
            Some(id) => {
                self.create_child(now, id, child)?;
                Ok(id)
            }
            None => self.initiate(now, connection, Some(child)),
        }
    }

    fn established(&self, ike: IkeSaId) -> Result<&IkeSa, EndpointError> {
        let sa = self.sas.get(&ike).ok_or(EndpointError::UnknownIkeSa(ike))?;
        if sa.state != IkeState::Established {
            return Err(EndpointError::NotEstablished(ike));
        }
        Ok(sa)
    }

    /// Creates another CHILD_SA on an established IKE SA (CREATE_CHILD_SA).
    pub fn create_child(&mut self, now: Instant, ike: IkeSaId, child: &str) -> Result<(), EndpointError> {
        let sa = self.established(ike)?;
        let cfg = Self::child_cfg(&sa.conn, Some(child))?.ok_or_else(|| EndpointError::UnknownChild(child.into()))?;
        self.with_sa(now, ike, |sa, cx| sa.queue_task(cx, Box::new(child_create::Initiator::new(cfg))));
        Ok(())
    }

    fn check_child(&self, ike: IkeSaId, child: ChildSaId) -> Result<(), EndpointError> {
        let sa = self.established(ike)?;
        if sa.children.iter().any(|c| c.id == child) { Ok(()) } else { Err(EndpointError::UnknownChildSa(child)) }
    }

    /// Rekeys a CHILD_SA now.
    pub fn rekey_child(&mut self, now: Instant, ike: IkeSaId, child: ChildSaId) -> Result<(), EndpointError> {
        self.check_child(ike, child)?;
        self.with_sa(now, ike, |sa, cx| sa.queue_task(cx, Box::new(child_rekey::Initiator::new(child))));
        Ok(())
    }

    /// Deletes a CHILD_SA.
    pub fn delete_child(&mut self, now: Instant, ike: IkeSaId, child: ChildSaId) -> Result<(), EndpointError> {
        self.check_child(ike, child)?;
        self.with_sa(now, ike, |sa, cx| sa.queue_task(cx, Box::new(child_delete::Initiator::new(child))));
        Ok(())
    }

    /// Rekeys the IKE SA now.
    pub fn rekey_ike(&mut self, now: Instant, ike: IkeSaId) -> Result<(), EndpointError> {
        self.established(ike)?;
        self.with_sa(now, ike, |sa, cx| sa.queue_task(cx, Box::new(ike_rekey::Initiator::new())));
        Ok(())
    }

    /// Deletes the IKE SA and with it its CHILD_SAs.
    pub fn delete_ike(&mut self, now: Instant, ike: IkeSaId) -> Result<(), EndpointError> {
        self.established(ike)?;
        self.with_sa(now, ike, |sa, cx| sa.queue_task(cx, Box::new(ike_delete::Initiator)));
        Ok(())
    }

    /// Ends an IKE SA in any state at once, without telling the peer (an IKE SA still being
    /// set up, or one whose peer is known to be gone): its CHILD_SAs are removed (events).
    pub fn abort_ike(&mut self, now: Instant, ike: IkeSaId) -> Result<(), EndpointError> {
        if !self.sas.contains_key(&ike) {
            return Err(EndpointError::UnknownIkeSa(ike));
        }
        self.with_sa(now, ike, |sa, cx| sa.die(cx, crate::event::DownReason::Deleted));
        Ok(())
    }

    /// Sends a liveness check now.
    pub fn dpd(&mut self, now: Instant, ike: IkeSaId) -> Result<(), EndpointError> {
        self.established(ike)?;
        self.with_sa(now, ike, |sa, cx| sa.queue_task(cx, Box::new(ike_dpd::Initiator)));
        Ok(())
    }

    /// Keeps an inbound ESP SPI from being chosen for a new CHILD_SA (an SA this endpoint did
    /// not make still uses it, e.g. one a previous run of the daemon left in the SA database).
    pub fn reserve_spi(&mut self, spi: u32) {
        self.ids.child_spis.insert(spi);
    }

    /// Gives back an SPI reserved with [`Endpoint::reserve_spi`].
    pub fn release_spi(&mut self, spi: u32) {
        self.ids.child_spis.remove(&spi);
    }

    /// The peer of `ike` was heard at `at` outside IKE (inbound ESP counted by the data plane):
    /// dead-peer detection waits `dpd_delay` from then.
    pub fn note_activity(&mut self, now: Instant, ike: IkeSaId, at: Instant) {
        if self.sas.get(&ike).is_some_and(|sa| sa.last_heard < at) {
            self.with_sa(now, ike, |sa, _| sa.note_activity(at));
        }
    }

    fn rotate_cookies(&mut self, now: Instant) {
        match self.cookies_rotated {
            None => self.cookies_rotated = Some(now),
            Some(t) if now >= t + COOKIE_ROTATION => {
                self.cookies.rotate(&mut *self.rng);
                self.cookies_rotated = Some(now);
            }
            _ => {}
        }
    }

    /// Handles one UDP datagram (the non-ESP marker already removed on port 4500) that arrived
    /// on `local` from `remote`. Malformed or unknown messages are dropped or answered as the
    /// RFC says; nothing here panics on input.
    pub fn handle(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        self.rotate_cookies(now);
        let msg = match Message::parse(datagram) {
            Ok(m) => m,
            Err(ParseError::MajorVersion(v)) if v > 2 => {
                return self.invalid_major_version(now, local, remote, datagram);
            }
            Err(e) => return self.diag.dropped(Ignored::Unparseable, remote, || e.to_string()),
        };
        let h = msg.header;
        if h.exchange == ExchangeType::IkeSaInit && !h.is_response() {
            if let Some(id) = self.init_index.get(&(remote, h.spi_i)).copied() {
                // A retransmitted IKE_SA_INIT: the same answer again, nothing new (nothing at
                // all while its Diffie-Hellman computation is still running).
                match self.sas.get_mut(&id) {
                    Some(sa) if sa.init_request == datagram && sa.expected_request_id == 1 => {
                        self.transmits.push_back(Transmit {
                            from: sa.local,
                            to: sa.remote,
                            bytes: sa.init_response.clone(),
                        });
                    }
                    Some(sa) if sa.init_request == datagram => {
                        self.diag.dropped(Ignored::DuplicateInit, remote, || {
                            format!("SPIi {:016x}: the IKE SA is past IKE_SA_INIT", h.spi_i)
                        })
                    }
                    Some(_) => self.diag.dropped(Ignored::DuplicateInit, remote, || {
                        format!("SPIi {:016x}: a different IKE_SA_INIT with the SPI of a half-open IKE SA", h.spi_i)
                    }),
                    None => self.diag.dropped(Ignored::DuplicateInit, remote, || {
                        format!("SPIi {:016x}: its Diffie-Hellman computation is still running", h.spi_i)
                    }),
                }
                return;
            }
            if h.spi_r != 0 || !h.is_initiator() {
                return self.diag.dropped(Ignored::MalformedInit, remote, || {
                    format!("IKE_SA_INIT request with SPIr {:016x} or without the initiator flag", h.spi_r)
                });
            }
            let peer = self.half_open_by_ip.get(&remote.ip()).copied().unwrap_or(0);
            let conns = Arc::clone(&self.connections);
            let mut cx = ctx!(self, now);
            let limits = ike_init::ResponderLimits {
                cookies: &self.cookies,
                half_open_total: self.half_open_total,
                half_open_peer: peer,
            };
            let Some((prepared, job)) = ike_init::prepare_r(&mut cx, &conns, limits, local, remote, datagram, &msg)
            else {
                return;
            };
            if self.cfg.offload_dh {
                let id = prepared.id();
                let key = (remote, prepared.spi_i());
                self.init_index.insert(key, id);
                self.init_keys.insert(id, key);
                self.count_half_open(None, Some(remote.ip()));
                self.pending.insert(id, prepared);
                self.dh_jobs.push_back(job);
            } else {
                let done = job.run();
                let mut cx = ctx!(self, now);
                if let Some(sa) = ike_init::finish_r(&mut cx, prepared, done.share, done.result) {
                    self.insert_responder(sa);
                }
            }
            return;
        }
        // The SPI the sender put on our side of the header picks the IKE SA.
        let ours = if h.is_initiator() { h.spi_r } else { h.spi_i };
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.21.4
        //# ... it MAY send an INVALID_IKE_SPI ... (Rampart stays silent: no state, no reflection.)
        let Some(id) = self.by_spi.get(&ours).copied() else {
            return self.diag.dropped(Ignored::UnknownSpi, remote, || {
                format!(
                    "{} {} for SPI {ours:016x} (SPIi {:016x}, SPIr {:016x})",
                    crate::exchange_log::exchange_label(h.exchange),
                    if h.is_response() { "response" } else { "request" },
                    h.spi_i,
                    h.spi_r
                )
            });
        };
        self.with_sa(now, id, |sa, cx| sa.handle(cx, local, remote, datagram, msg));
    }

    /// A message of a higher major version: answered with INVALID_MAJOR_VERSION, version 2.0 in
    /// the header, outside any IKE SA and rate limited; a response of one is dropped.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.5
    //# If an endpoint receives a message with a higher major version number,
    //# it MUST drop the message and SHOULD send an unauthenticated Notify
    //# message of type INVALID_MAJOR_VERSION containing the highest
    //# (closest) version number it supports.
    //= https://www.rfc-editor.org/rfc/rfc7296#section-1.5
    //# The message is a response message, and thus it is sent to the IP address and port
    //# from whence it came with the same IKE SPIs and the Message ID and Exchange Type are
    //# copied from the request.
    fn invalid_major_version(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr, datagram: &[u8]) {
        let (Some(spi_i), Some(spi_r), Some(&exchange), Some(&flags), Some(id)) = (
            datagram.get(0..8).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            datagram.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            datagram.get(18),
            datagram.get(19),
            datagram.get(20..24).and_then(|b| <[u8; 4]>::try_from(b).ok()),
        ) else {
            return self.diag.dropped(Ignored::Unparseable, remote, || "shorter than an IKE header".into());
        };
        let version = datagram.get(17).copied().unwrap_or(0);
        if datagram.len() < HEADER_LEN || flags & FLAG_RESPONSE != 0 {
            return self.diag.dropped(Ignored::Unparseable, remote, || {
                format!("IKE major version {} in a response (never answered)", version >> 4)
            });
        }
        if !self.unprotected_allowed(now) {
            return self.diag.dropped(Ignored::RateLimited, remote, || {
                format!("INVALID_MAJOR_VERSION for IKE major version {}", version >> 4)
            });
        }
        let header = Header {
            spi_i: u64::from_be_bytes(spi_i),
            spi_r: u64::from_be_bytes(spi_r),
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange: ExchangeType::from_u8(exchange),
            // The response flag, and the initiator flag as our role in that exchange has it.
            flags: FLAG_RESPONSE | if flags & FLAG_INITIATOR != 0 { 0 } else { FLAG_INITIATOR },
            message_id: u32::from_be_bytes(id),
            length: 0,
        };
        let bytes = Message::emit_plain(header, &[Payload::notify(NotifyType::INVALID_MAJOR_VERSION, vec![])]);
        self.transmits.push_back(Transmit { from: local, to: remote, bytes });
    }

    /// Whether one more unprotected answer fits [`UNPROTECTED_ANSWERS_PER_SECOND`] now.
    fn unprotected_allowed(&mut self, now: Instant) -> bool {
        match self.unprotected {
            (Some(start), n) if now < start + Duration::from_secs(1) => {
                if n >= UNPROTECTED_ANSWERS_PER_SECOND {
                    return false;
                }
                self.unprotected.1 = n + 1;
            }
            _ => self.unprotected = (Some(now), 1),
        }
        true
    }

    /// Runs every timer due at `now`: retransmissions, DPD, rekeys, expiry, keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.rotate_cookies(now);
        let mut due = Vec::new();
        while let Some(&(t, id)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            self.scheduled.remove(&id);
            due.push(id);
        }
        for id in due {
            self.with_sa(now, id, |sa, cx| sa.on_timeout(cx));
        }
        self.reap();
    }
}

/// The peer address a half-open IKE SA counts against.
fn half_open_ip(sa: &IkeSa) -> Option<IpAddr> {
    (sa.state == IkeState::HalfOpen).then(|| sa.remote.ip())
}

fn info(sa: &IkeSa) -> IkeSaInfo {
    IkeSaInfo {
        id: sa.id,
        connection: sa.conn.name.clone(),
        state: sa.state,
        initiator: sa.initiator,
        spi_i: sa.spi_i,
        spi_r: sa.spi_r,
        local: sa.local,
        remote: sa.remote,
        nat_local: sa.nat_local,
        nat_remote: sa.nat_remote,
        next_request_id: sa.next_request_id,
        successor: sa.successor,
        local_id: sa.conn.local_identity(sa.local.ip()),
        remote_id: sa.auth.as_ref().map(|a| a.peer().clone()),
        algorithms: sa.algs,
        fragmentation: sa.fragmentation,
        fragments_held: sa.fragments.held(),
        rekey_at: sa.rekey_at,
        expire_at: sa.expire_at,
        children: sa
            .children
            .iter()
            .map(|c| ChildSaInfo {
                id: c.id,
                name: c.cfg.name.clone(),
                spi_in: c.spi_in,
                spi_out: c.spi_out,
                state: c.state,
                outbound_active: c.outbound_active,
                announced: c.announced,
                local_ts: c.local_ts.clone(),
                remote_ts: c.remote_ts.clone(),
                algorithms: c.algs,
                mode: c.mode,
                encap: c.inbound.encap,
                rekey_at: c.rekey_at,
                expire_at: c.expire_at,
            })
            .collect(),
    }
}
