//! The daemon's side of the SA database: CHILD_SAs become SA records (ESP or AH, as
//! negotiated) and outbound policies whose templates name that protocol, written
//! make-before-break, and what the data plane writes back (usage counters,
//! acquire and expiry events) becomes work for the endpoint.
//!
//! Rules this module keeps:
//! - A CHILD_SA's policies (one per prefix pair of its narrowed selectors) switch to a new
//!   outbound SA in one record write each; an SA is deleted only after no policy sends through
//!   it. Several inbound SAs of one tunnel coexist until the old ones' deletes.
//! - Policies are shared by value: the CHILD_SAs of one tunnel (a rekey, or a restart) use the
//!   same policy records; a policy goes when its last CHILD_SA goes (a trap policy, which
//!   carries no SA and a lower priority, stays while its child is configured).
//! - SAs found in the file at start without IKE state ("stale": a previous run of the daemon)
//!   keep forwarding. They go `stale_grace` after a new CHILD_SA of the same tunnel (same reqid
//!   and outer addresses) takes their policies over, at their hard lifetime, or after
//!   `stale_grace` when no configured child owns their reqid any more.
//! - With no database configured every write is skipped (an IKE-only daemon, the load
//!   generator).
//!
//! Keys pass through here only on their way into records; nothing logs them.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rampart_sa::{Direction, Mode, Protocol, SaConfig, TrafficSelector};
use rampart_sadb::{
    Capacities, Event as DbEvent, IpPrefix, LimitKind, Policy, PolicyAction, PolicyDir, PolicyId, PortRange, SaId,
    Selector, Template, UsageCounters, WriteError, Writer,
};
use tracing::{debug, info, warn};

use rampart_ike::config::ConnectionConfig;
use rampart_ike::event::{ChildSaId, IkeSaId};

/// Policy priority base of negotiated CHILD_SAs (lower wins; more specific selectors get a
/// lower number within each base).
const CHILD_PRIORITY: u32 = 10_000;
/// Policy priority base of trap policies: below every negotiated policy.
const TRAP_PRIORITY: u32 = 20_000;
/// Largest number of prefixes one selector range may split into.
const MAX_PREFIXES: usize = 64;
/// How long a removed CHILD_SA's inbound SA keeps accepting packets the peer sent before it
/// processed the delete (strongSwan's `delete_rekeyed_delay` idea): make-before-break in the
/// receive direction.
pub const INBOUND_GRACE: Duration = Duration::from_secs(2);

/// The tunnel id written into SA records and policy templates: stable across restarts for one
/// configured child (a hash of connection and child names), never 0.
pub fn reqid(connection: &str, child: &str) -> u32 {
    // FNV-1a: stable across builds and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in connection.bytes().chain([b'/']).chain(child.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// Unix seconds now: the wall clock (certificate validity), not the database's clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The prefixes that cover exactly the addresses `start..=end` (same family).
pub fn range_prefixes(start: IpAddr, end: IpAddr) -> Vec<(IpAddr, u8)> {
    let (bits, s, e) = match (start, end) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (32u32, u128::from(u32::from(a)), u128::from(u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => (128u32, u128::from(a), u128::from(b)),
        _ => return Vec::new(),
    };
    let mk = |v: u128| if bits == 32 { IpAddr::V4((v as u32).into()) } else { IpAddr::V6(v.into()) };
    let mut out = Vec::new();
    let mut cur = s;
    while cur <= e {
        // The largest block that starts at `cur` (alignment) and stays within `e`.
        let mut size_bits = if cur == 0 { bits } else { cur.trailing_zeros().min(bits) };
        while size_bits > 0 {
            let span = if size_bits >= 128 { u128::MAX } else { (1u128 << size_bits) - 1 };
            if cur.checked_add(span).is_some_and(|last| last <= e) {
                break;
            }
            size_bits -= 1;
        }
        out.push((mk(cur), (bits - size_bits) as u8));
        if out.len() > MAX_PREFIXES {
            return out;
        }
        let span = if size_bits >= 128 { u128::MAX } else { 1u128 << size_bits };
        match cur.checked_add(span) {
            Some(n) if size_bits < bits => cur = n,
            _ => break,
        }
    }
    out
}

/// The outbound policies of one CHILD_SA (or trap): one per pair of local and remote prefixes,
/// each sending through an SA of the CHILD_SA's protocol (the template's, ESP or AH: the data
/// plane binds a policy only to an SA of its template's protocol).
pub fn policies_for(
    local_ts: &[TrafficSelector],
    remote_ts: &[TrafficSelector],
    (local, remote): (IpAddr, IpAddr),
    protocol: Protocol,
    mode: Mode,
    reqid: u32,
    base: u32,
) -> Vec<Policy> {
    let mut out = Vec::new();
    let template = Template { protocol, src: local, dst: remote, spi: 0, mode, reqid };
    for l in local_ts {
        for r in remote_ts {
            if l.start.is_ipv4() != r.start.is_ipv4() {
                continue;
            }
            let proto = match (l.protocol, r.protocol) {
                (0, p) | (p, 0) => p,
                (a, b) if a == b => a,
                _ => continue,
            };
            let (lp, rp) = (range_prefixes(l.start, l.end), range_prefixes(r.start, r.end));
            if lp.len() > MAX_PREFIXES || rp.len() > MAX_PREFIXES {
                warn!(local_ts = %l, remote_ts = %r, "selector range splits into too many prefixes; policy skipped");
                continue;
            }
            for (la, ll) in &lp {
                for (ra, rl) in &rp {
                    let (Ok(src), Ok(dst)) = (IpPrefix::new(*la, *ll), IpPrefix::new(*ra, *rl)) else { continue };
                    let sport = PortRange { lo: l.start_port, hi: l.end_port };
                    let dport = PortRange { lo: r.start_port, hi: r.end_port };
                    let width = if local.is_ipv4() { 32 } else { 128 };
                    // More specific first: longer prefixes and port ranges get a lower number.
                    let mut priority = base + (2 * width - u32::from(*ll) - u32::from(*rl));
                    if !sport.is_any() || !dport.is_any() {
                        priority -= 1;
                    }
                    out.push(Policy {
                        dir: PolicyDir::Out,
                        selector: Selector { src, dst, proto, sport, dport },
                        priority: priority.saturating_sub(if proto != 0 { 1 } else { 0 }),
                        action: PolicyAction::Protect(template),
                    });
                }
            }
        }
    }
    out
}

/// One CHILD_SA as the database knows it.
#[derive(Debug)]
struct ChildEntry {
    ike: IkeSaId,
    conn: String,
    name: String,
    reqid: u32,
    inbound: Option<SaId>,
    outbound: Option<SaId>,
    policies: Vec<Policy>,
    /// Byte/packet limits (soft, hard) of the SA pair.
    limits: rampart_sa::Lifetimes,
    last_use_seen: u64,
    rekey_asked: bool,
}

/// A policy record and the CHILD_SAs using it.
#[derive(Debug)]
struct PolicyEntry {
    id: PolicyId,
    /// CHILD_SAs using it, oldest first.
    users: Vec<ChildSaId>,
    /// The CHILD_SA whose outbound SA it sends through.
    bound: Option<ChildSaId>,
    /// A trap policy: the (connection, child) to negotiate on acquire.
    trap: Option<(String, String)>,
    /// Found at start, not (yet) taken over.
    stale: bool,
}

/// An SA found in the file at start.
#[derive(Debug, Clone, Copy)]
struct StaleSa {
    reqid: u32,
    spi: u32,
    direction: Direction,
    local: IpAddr,
    remote: IpAddr,
    /// Unix seconds of its hard lifetime (0: none).
    hard_at: u64,
    /// When to delete it (set once a successor took over).
    delete_at: Option<Instant>,
}

/// Work the data plane's reports call for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// Rekey this CHILD_SA (soft byte/packet limit, sequence numbers near wrap).
    Rekey(IkeSaId, ChildSaId),
    /// Delete this CHILD_SA (hard limit).
    Delete(IkeSaId, ChildSaId),
    /// Inbound ESP of this IKE SA's CHILD_SAs was seen at this Unix second.
    Activity(IkeSaId, u64),
    /// Traffic hit a trap policy of (connection, child).
    Acquire(String, String),
}

/// Counters of the database side.
#[derive(Debug, Default, Clone, Copy)]
pub struct DbStats {
    /// SA records written.
    pub sas_installed: u64,
    /// SA records deleted.
    pub sas_deleted: u64,
    /// Writes refused (full, SPI in use, ...).
    pub write_errors: u64,
    /// Stale SAs found at start.
    pub stale_found: u64,
    /// Stale SAs removed since.
    pub stale_removed: u64,
    /// Events read from the data plane.
    pub events: u64,
}

/// The daemon's view of the SA database.
pub struct Database {
    w: Option<Writer>,
    children: HashMap<ChildSaId, ChildEntry>,
    by_sa: HashMap<SaId, ChildSaId>,
    policies: HashMap<Policy, PolicyEntry>,
    by_policy_id: HashMap<PolicyId, Policy>,
    stale: HashMap<SaId, StaleSa>,
    /// Inbound SAs of removed CHILD_SAs, deleted at the instant given.
    retiring: Vec<(Instant, SaId, u32)>,
    /// CHILD_SAs whose policies switch to their outbound SA at the instant given.
    switching: Vec<(Instant, ChildSaId)>,
    stats: DbStats,
    grace: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").field("children", &self.children.len()).finish_non_exhaustive()
    }
}

impl Database {
    /// No database: every write is skipped.
    pub fn none() -> Database {
        Database {
            w: None,
            children: HashMap::new(),
            by_sa: HashMap::new(),
            policies: HashMap::new(),
            by_policy_id: HashMap::new(),
            stale: HashMap::new(),
            retiring: Vec::new(),
            switching: Vec::new(),
            stats: DbStats::default(),
            grace: Duration::from_secs(5),
        }
    }

    /// Becomes the writer of the database at `path` (created with `caps` if missing) and takes
    /// stock of what a previous run left: every SA and policy is stale until taken over.
    pub fn open(
        path: &std::path::Path,
        caps: Capacities,
        grace: Duration,
    ) -> Result<Database, rampart_sadb::OpenError> {
        let w = Writer::open_or_create(path, caps)?;
        let mut db = Database::none();
        db.grace = grace;
        let report = w.repair_report();
        if report.any() {
            warn!(?report, "the SA database was repaired after a writer stopped mid-update");
        }
        let reader = w.reader();
        for m in w.sas() {
            let hard_at = reader
                .read_sa_id(m.id)
                .ok()
                .map(|r| {
                    let h = r.lifetimes().hard_seconds;
                    if h == 0 { 0 } else { m.install_time.saturating_add(h) }
                })
                .unwrap_or(0);
            db.stale.insert(
                m.id,
                StaleSa {
                    reqid: m.reqid,
                    spi: m.spi,
                    direction: m.direction,
                    local: m.local,
                    remote: m.remote,
                    hard_at,
                    delete_at: None,
                },
            );
        }
        for p in w.policies() {
            db.by_policy_id.insert(p.id, p.policy);
            db.policies
                .insert(p.policy, PolicyEntry { id: p.id, users: Vec::new(), bound: None, trap: None, stale: true });
        }
        db.stats.stale_found = db.stale.len() as u64;
        if !db.stale.is_empty() {
            info!(
                sas = db.stale.len(),
                policies = db.policies.len(),
                "SAs of a previous run found; they keep forwarding until replaced"
            );
        }
        db.w = Some(w);
        Ok(db)
    }

    /// Whether a database file is attached.
    pub fn attached(&self) -> bool {
        self.w.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> DbStats {
        self.stats
    }

    /// (SA records, policy records) in the file.
    pub fn sizes(&self) -> (usize, usize) {
        self.w.as_ref().map_or((0, 0), |w| (w.sas().count(), w.policies().count()))
    }

    /// Inbound SPIs of stale SAs (the endpoint must not hand them out again).
    pub fn stale_inbound_spis(&self) -> Vec<u32> {
        self.stale.values().filter(|s| s.direction == Direction::Inbound).map(|s| s.spi).collect()
    }

    /// Reqids with stale SAs (tunnels a previous run had up), with the peer address.
    pub fn stale_tunnels(&self) -> HashSet<(u32, IpAddr)> {
        self.stale.values().filter(|s| s.direction == Direction::Outbound).map(|s| (s.reqid, s.remote)).collect()
    }

    /// Stale SAs whose reqid no configured child owns go after the grace time.
    pub fn forget_unconfigured(&mut self, configured: &HashSet<u32>, now: Instant) {
        let grace = self.grace;
        for s in self.stale.values_mut() {
            if !configured.contains(&s.reqid) && s.delete_at.is_none() {
                s.delete_at = Some(now + grace);
            }
        }
    }

    fn install(&mut self, cfg: &SaConfig, reqid: u32) -> Option<SaId> {
        // A retiring inbound SA may hold the SPI the endpoint just handed out again.
        if let Some(pos) = self.retiring.iter().position(|r| r.2 == cfg.spi && cfg.direction == Direction::Inbound) {
            let (_, id, _) = self.retiring.remove(pos);
            self.delete(id);
        }
        let w = self.w.as_mut()?;
        match w.install_sa(cfg, reqid, rampart_sadb::clock::now()) {
            Ok(id) => {
                self.stats.sas_installed += 1;
                Some(id)
            }
            Err(e) => {
                self.stats.write_errors += 1;
                warn!(spi = format_args!("{:#010x}", cfg.spi), error = %e, "SA not written to the database");
                None
            }
        }
    }

    fn delete(&mut self, id: SaId) {
        if let Some(w) = self.w.as_mut() {
            match w.delete_sa(id) {
                Ok(()) => self.stats.sas_deleted += 1,
                Err(WriteError::NoSuchSa) => {}
                Err(e) => {
                    self.stats.write_errors += 1;
                    warn!(error = %e, "SA not deleted");
                }
            }
        }
        self.by_sa.remove(&id);
    }

    /// Points a policy at the outbound SA of `child` (adding the record if new).
    fn use_policy(&mut self, p: Policy, child: ChildSaId, sa: Option<SaId>) {
        let Some(w) = self.w.as_mut() else { return };
        match self.policies.get_mut(&p) {
            Some(e) => {
                if !e.users.contains(&child) {
                    e.users.push(child);
                }
                e.stale = false;
                if let Some(sa) = sa {
                    match w.set_policy_sa(e.id, Some(sa)) {
                        Ok(()) => e.bound = Some(child),
                        Err(err) => {
                            self.stats.write_errors += 1;
                            warn!(error = %err, "policy not switched");
                        }
                    }
                }
            }
            None => match w.add_policy(&p, sa) {
                Ok(id) => {
                    self.by_policy_id.insert(id, p);
                    self.policies.insert(
                        p,
                        PolicyEntry { id, users: vec![child], bound: sa.map(|_| child), trap: None, stale: false },
                    );
                }
                Err(err) => {
                    self.stats.write_errors += 1;
                    warn!(error = %err, "policy not written");
                }
            },
        }
    }

    /// A new CHILD_SA: inbound SA, outbound SA (when given: the responder of a rekey gets it
    /// later with [`Database::switch_outbound`]), and its policies, which send through the new
    /// outbound SA from `switch_at` on (at once when `None`).
    #[allow(clippy::too_many_arguments)]
    pub fn install_child(
        &mut self,
        now: Instant,
        ike: IkeSaId,
        child: ChildSaId,
        conn: &str,
        name: &str,
        inbound: &SaConfig,
        outbound: Option<&SaConfig>,
        switch_at: Option<Instant>,
    ) {
        let reqid = reqid(conn, name);
        let policies = policies_for(
            &inbound.local_ts,
            &inbound.remote_ts,
            (inbound.local, inbound.remote),
            inbound.protocol,
            inbound.mode,
            reqid,
            CHILD_PRIORITY,
        );
        let in_id = self.install(inbound, reqid);
        let out_id = outbound.and_then(|o| self.install(o, reqid));
        for id in in_id.iter().chain(out_id.iter()) {
            self.by_sa.insert(*id, child);
        }
        self.children.insert(
            child,
            ChildEntry {
                ike,
                conn: conn.to_string(),
                name: name.to_string(),
                reqid,
                inbound: in_id,
                outbound: out_id,
                policies: policies.clone(),
                limits: inbound.lifetimes,
                last_use_seen: 0,
                rekey_asked: false,
            },
        );
        let bind_now = if switch_at.is_some_and(|t| t > now) && out_id.is_some() {
            self.switching.push((switch_at.unwrap_or(now), child));
            None
        } else {
            out_id
        };
        for p in policies {
            self.use_policy(p, child, bind_now);
        }
        // A previous run's SAs of this tunnel have a successor now.
        let grace = self.grace;
        for s in self.stale.values_mut() {
            if s.reqid == reqid && s.remote == inbound.remote && s.local == inbound.local && s.delete_at.is_none() {
                s.delete_at = Some(now + grace);
            }
        }
    }

    /// Outbound traffic of `child` moves to its (new) outbound SA.
    pub fn switch_outbound(&mut self, child: ChildSaId, outbound: &SaConfig) {
        let Some(reqid) = self.children.get(&child).map(|c| c.reqid) else { return };
        let Some(id) = self.install(outbound, reqid) else { return };
        self.by_sa.insert(id, child);
        let policies = match self.children.get_mut(&child) {
            Some(c) => {
                c.outbound = Some(id);
                c.policies.clone()
            }
            None => return,
        };
        for p in policies {
            self.use_policy(p, child, Some(id));
        }
    }

    /// The IKE SA `old` was rekeyed into `new`: its CHILD_SAs moved.
    pub fn ike_rekeyed(&mut self, old: IkeSaId, new: IkeSaId) {
        for c in self.children.values_mut() {
            if c.ike == old {
                c.ike = new;
            }
        }
    }

    /// Removes a CHILD_SA: its policies switch to another CHILD_SA of the tunnel or go with
    /// it, its outbound SA is deleted, its inbound SA [`INBOUND_GRACE`] later. Returns
    /// (connection, child name) if it was known.
    pub fn delete_child(&mut self, now: Instant, child: ChildSaId) -> Option<(String, String)> {
        let entry = self.children.remove(&child)?;
        self.switching.retain(|s| s.1 != child);
        for p in &entry.policies {
            let Some(e) = self.policies.get_mut(p) else { continue };
            e.users.retain(|u| *u != child);
            if e.bound == Some(child) {
                e.bound = None;
                // The newest remaining user with an outbound SA takes the policy over.
                let next =
                    e.users.iter().rev().find_map(|u| self.children.get(u).and_then(|c| c.outbound.map(|sa| (*u, sa))));
                if let (Some((u, sa)), Some(w)) = (next, self.w.as_mut())
                    && w.set_policy_sa(e.id, Some(sa)).is_ok()
                {
                    e.bound = Some(u);
                }
            }
            if e.users.is_empty() && e.trap.is_none() {
                let id = e.id;
                self.policies.remove(p);
                self.by_policy_id.remove(&id);
                if let Some(w) = self.w.as_mut() {
                    let _ = w.delete_policy(id);
                }
            }
        }
        if let Some(id) = entry.outbound {
            self.delete(id);
        }
        if let Some(id) = entry.inbound {
            self.by_sa.remove(&id);
            let spi = self.w.as_ref().and_then(|w| w.sa(id)).map_or(0, |m| m.spi);
            self.retiring.push((now + INBOUND_GRACE, id, spi));
        }
        Some((entry.conn, entry.name))
    }

    /// The (connection, child) of a CHILD_SA.
    pub fn child_names(&self, child: ChildSaId) -> Option<(&str, &str)> {
        self.children.get(&child).map(|c| (c.conn.as_str(), c.name.as_str()))
    }

    /// How many CHILD_SAs are installed.
    pub fn child_count(&self) -> usize {
        self.children.len()
    }

    /// Installs the trap policies of every `start_action = trap` child of `conn` (adopting
    /// identical records a previous run left).
    pub fn install_traps(&mut self, conn: &ConnectionConfig) {
        let (Some(local), Some(remote)) = (conn.local_addrs.first(), conn.remote_addrs.first()) else {
            if conn.children.iter().any(|c| c.start_action.traps()) {
                warn!(connection = %conn.name, "trap needs local_addrs and remote_addrs; no trap policy installed");
            }
            return;
        };
        for c in conn.children.iter().filter(|c| c.start_action.traps()) {
            let r = reqid(&conn.name, &c.name);
            let protocol = c.proposals().protocol();
            for p in policies_for(&c.local_ts, &c.remote_ts, (*local, *remote), protocol, c.mode, r, TRAP_PRIORITY) {
                let trap = Some((conn.name.clone(), c.name.clone()));
                if let Some(e) = self.policies.get_mut(&p) {
                    e.trap = trap;
                    e.stale = false;
                    continue;
                }
                let Some(w) = self.w.as_mut() else { continue };
                match w.add_policy(&p, None) {
                    Ok(id) => {
                        self.by_policy_id.insert(id, p);
                        self.policies.insert(p, PolicyEntry { id, users: Vec::new(), bound: None, trap, stale: false });
                    }
                    Err(e) => {
                        self.stats.write_errors += 1;
                        warn!(connection = %conn.name, error = %e, "trap policy not written");
                    }
                }
            }
        }
    }

    /// Removes the trap policies of a connection (it was removed or changed).
    pub fn remove_traps(&mut self, conn: &str) {
        let gone: Vec<Policy> = self
            .policies
            .iter()
            .filter(|(_, e)| e.trap.as_ref().is_some_and(|(c, _)| c == conn))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            let Some(e) = self.policies.get_mut(&p) else { continue };
            e.trap = None;
            if e.users.is_empty() {
                let id = e.id;
                self.policies.remove(&p);
                self.by_policy_id.remove(&id);
                if let Some(w) = self.w.as_mut() {
                    let _ = w.delete_policy(id);
                }
            }
        }
    }

    /// What the data plane counted on a CHILD_SA's SAs: (inbound, outbound) usage, `None` for a
    /// child the database does not have (no database, or not installed).
    pub fn usage(&self, child: ChildSaId) -> Option<(UsageCounters, UsageCounters)> {
        let w = self.w.as_ref()?;
        let c = self.children.get(&child)?;
        let read = |sa: Option<SaId>| sa.and_then(|s| w.usage(s)).unwrap_or_default();
        Some((read(c.inbound), read(c.outbound)))
    }

    /// Reads the data plane's events and usage counters: what the endpoint should do.
    /// `dpd` says which IKE SAs want ESP activity reports.
    pub fn poll(&mut self, now: Instant, dpd: &dyn Fn(IkeSaId) -> bool) -> Vec<Request> {
        let mut out = Vec::new();
        let Some(w) = self.w.as_mut() else { return out };
        let mut events = Vec::new();
        while let Some(e) = w.pop_event() {
            events.push(e);
            if events.len() >= 4096 {
                break;
            }
        }
        self.stats.events += events.len() as u64;
        for e in events {
            match e {
                DbEvent::Acquire { policy, flow } => {
                    let target =
                        self.by_policy_id.get(&policy).and_then(|p| self.policies.get(p)).and_then(|e| e.trap.clone());
                    match target {
                        Some((c, ch)) => out.push(Request::Acquire(c, ch)),
                        None => debug!(?flow, "acquire for a policy without a trap"),
                    }
                }
                DbEvent::SoftExpire { sa, limit, .. } | DbEvent::HardExpire { sa, limit, .. }
                    if limit == LimitKind::Time =>
                {
                    // The endpoint keeps time itself; only a stale SA needs the database's clock.
                    if let DbEvent::HardExpire { .. } = e
                        && let Some(s) = self.stale.get_mut(&sa)
                    {
                        s.delete_at = Some(now);
                    }
                }
                DbEvent::SoftExpire { sa, .. } | DbEvent::SeqNearWrap { sa, .. } => {
                    if let Some(c) = self.by_sa.get(&sa).and_then(|c| self.children.get_mut(c).map(|e| (*c, e)))
                        && !c.1.rekey_asked
                    {
                        c.1.rekey_asked = true;
                        out.push(Request::Rekey(c.1.ike, c.0));
                    }
                }
                DbEvent::HardExpire { sa, .. } => {
                    if let Some(c) = self.by_sa.get(&sa).and_then(|c| self.children.get(c).map(|e| (*c, e.ike))) {
                        out.push(Request::Delete(c.1, c.0));
                    } else if let Some(s) = self.stale.get_mut(&sa) {
                        s.delete_at = Some(now);
                    }
                }
            }
        }
        // Usage counters: activity for DPD, byte and packet limits.
        let Some(w) = self.w.as_ref() else { return out };
        for (id, c) in &mut self.children {
            let want_dpd = dpd(c.ike);
            let limited =
                c.limits.soft_bytes | c.limits.hard_bytes | c.limits.soft_packets | c.limits.hard_packets != 0;
            if !want_dpd && !limited {
                continue;
            }
            let uin = c.inbound.and_then(|s| w.usage(s)).unwrap_or_default();
            if want_dpd && uin.last_use > c.last_use_seen {
                c.last_use_seen = uin.last_use;
                out.push(Request::Activity(c.ike, uin.last_use));
            }
            if limited {
                let uout = c.outbound.and_then(|s| w.usage(s)).unwrap_or_default();
                let (bytes, packets) = (uin.bytes.max(uout.bytes), uin.packets.max(uout.packets));
                let over = |n: u64, limit: u64| limit != 0 && n >= limit;
                if over(bytes, c.limits.hard_bytes) || over(packets, c.limits.hard_packets) {
                    out.push(Request::Delete(c.ike, *id));
                } else if !c.rekey_asked && (over(bytes, c.limits.soft_bytes) || over(packets, c.limits.soft_packets)) {
                    c.rekey_asked = true;
                    out.push(Request::Rekey(c.ike, *id));
                }
            }
        }
        out
    }

    /// A rekey of `child` could not start: the next soft limit asks again.
    pub fn rekey_failed(&mut self, child: ChildSaId) {
        if let Some(c) = self.children.get_mut(&child) {
            c.rekey_asked = false;
        }
    }

    /// When [`Database::run_due`] has work next.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.switching.iter().map(|s| s.0).min()
    }

    /// Delayed outbound switches that are due.
    pub fn run_due(&mut self, now: Instant) {
        let due: Vec<ChildSaId> = self.switching.iter().filter(|s| now >= s.0).map(|s| s.1).collect();
        self.switching.retain(|s| now < s.0);
        for child in due {
            let Some((out, policies)) = self.children.get(&child).and_then(|c| Some((c.outbound?, c.policies.clone())))
            else {
                continue;
            };
            for p in policies {
                self.use_policy(p, child, Some(out));
            }
        }
    }

    /// Deletes the stale SAs whose time has come (and the stale policies that pointed at them).
    /// Returns the inbound SPIs freed.
    pub fn sweep(&mut self, now: Instant) -> Vec<u32> {
        let due: Vec<SaId> = self.retiring.iter().filter(|r| now >= r.0).map(|r| r.1).collect();
        self.retiring.retain(|r| now < r.0);
        for id in due {
            self.delete(id);
        }
        let db_now = rampart_sadb::clock::now();
        let due: Vec<SaId> = self
            .stale
            .iter()
            .filter(|(_, s)| s.delete_at.is_some_and(|t| now >= t) || (s.hard_at != 0 && db_now >= s.hard_at))
            .map(|(id, _)| *id)
            .collect();
        // The policies bound to the due SAs, in one pass over the policies (after a restart most
        // stale SAs come due together).
        let mut bound_to: HashMap<SaId, Vec<Policy>> = HashMap::new();
        if !due.is_empty()
            && let Some(w) = self.w.as_ref()
        {
            let due_set: HashSet<SaId> = due.iter().copied().collect();
            for p in w.policies() {
                if let Some(sa) = p.sa
                    && due_set.contains(&sa)
                {
                    bound_to.entry(sa).or_default().push(p.policy);
                }
            }
        }
        let mut freed = Vec::new();
        for id in due {
            let Some(s) = self.stale.remove(&id) else { continue };
            if s.direction == Direction::Inbound {
                freed.push(s.spi);
            }
            let bound = bound_to.remove(&id).unwrap_or_default();
            self.delete(id);
            self.stats.stale_removed += 1;
            for p in bound {
                if let Some(e) = self.policies.get(&p)
                    && e.stale
                    && e.users.is_empty()
                    && e.trap.is_none()
                {
                    let pid = e.id;
                    self.policies.remove(&p);
                    self.by_policy_id.remove(&pid);
                    if let Some(w) = self.w.as_mut() {
                        let _ = w.delete_policy(pid);
                    }
                }
            }
            debug!(spi = format_args!("{:#010x}", s.spi), "stale SA removed");
        }
        // Stale policies bound to nothing (their SAs are gone) and not taken over.
        let orphans: Vec<Policy> = self
            .policies
            .iter()
            .filter(|(_, e)| e.stale && e.users.is_empty() && e.trap.is_none())
            .filter(|(_, e)| {
                self.w
                    .as_ref()
                    .and_then(|w| w.policy(e.id))
                    .is_none_or(|info| info.sa.is_none_or(|sa| !self.stale.contains_key(&sa)))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in orphans {
            if let Some(e) = self.policies.remove(&p) {
                self.by_policy_id.remove(&e.id);
                if let Some(w) = self.w.as_mut() {
                    let _ = w.delete_policy(e.id);
                }
            }
        }
        freed
    }

    /// Stale SAs still in the file.
    pub fn stale_count(&self) -> usize {
        self.stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_split_into_exact_prefixes() {
        assert_eq!(range_prefixes(ip("10.0.0.0"), ip("10.0.0.255")), vec![(ip("10.0.0.0"), 24)]);
        assert_eq!(range_prefixes(ip("0.0.0.0"), ip("255.255.255.255")), vec![(ip("0.0.0.0"), 0)]);
        assert_eq!(range_prefixes(ip("::"), ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), vec![(ip("::"), 0)]);
        assert_eq!(
            range_prefixes(ip("10.0.0.1"), ip("10.0.0.6")),
            vec![(ip("10.0.0.1"), 32), (ip("10.0.0.2"), 31), (ip("10.0.0.4"), 31), (ip("10.0.0.6"), 32)]
        );
        assert_eq!(range_prefixes(ip("10.0.0.9"), ip("10.0.0.9")), vec![(ip("10.0.0.9"), 32)]);
        assert_eq!(range_prefixes(ip("255.255.255.255"), ip("255.255.255.255")), vec![(ip("255.255.255.255"), 32)]);
        assert!(range_prefixes(ip("10.0.0.9"), ip("::1")).is_empty());
    }

    #[test]
    fn range_prefixes_cover_exactly_the_range() {
        // Against a simple reference: every address of a small universe is covered iff it is
        // in the range, by exactly one prefix.
        for (s, e) in [(0u32, 255u32), (3, 77), (128, 128), (1, 254), (17, 200), (64, 127)] {
            let ps = range_prefixes(IpAddr::V4(s.into()), IpAddr::V4(e.into()));
            for a in 0u32..300 {
                let n = ps
                    .iter()
                    .filter(|(p, l)| {
                        let IpAddr::V4(p) = p else { return false };
                        let mask = if *l == 0 { 0 } else { u32::MAX << (32 - l) };
                        a & mask == u32::from(*p)
                    })
                    .count();
                assert_eq!(n, usize::from((s..=e).contains(&a)), "{s}-{e} address {a}: {ps:?}");
            }
        }
    }

    /// An AH CHILD_SA's SAs are stored as AH and its policies (and a trap of an AH child) have
    /// AH templates: the templates match the outbound SA they are bound to, as the data plane
    /// requires (`Template::matches`).
    #[test]
    fn ah_children_get_ah_sas_and_templates() {
        use rampart_ike::config::{ChildConfig, ConnectionConfig, StartAction};
        use rampart_ike::message::Identification;
        use rampart_sa::{Integrity, Lifetimes, Suite};
        let path = std::env::temp_dir().join(format!("rampart-db-ah-{}.sadb", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let caps = Capacities { sas: 16, policies: 16, ..Capacities::default() };
        let mut db = Database::open(&path, caps, Duration::from_secs(5)).unwrap();
        let suite = Suite::ah(Integrity::AesGmac { key_bits: 256 }).unwrap();
        let sa = |spi, direction, local: &str, remote: &str| SaConfig {
            spi,
            protocol: Protocol::Ah,
            direction,
            suite,
            encryption_key: Default::default(),
            integrity_key: zeroize::Zeroizing::new(vec![7; 36]),
            mode: Mode::Tunnel,
            local: ip(local),
            remote: ip(remote),
            encap: None,
            esn: false,
            replay_window: if direction == Direction::Inbound { 1024 } else { 0 },
            local_ts: vec![TrafficSelector::from_prefix(ip("198.18.1.0"), 24)],
            remote_ts: vec![TrafficSelector::from_prefix(ip("198.18.2.0"), 24)],
            lifetimes: Lifetimes::default(),
        };
        let inbound = sa(0x1111, Direction::Inbound, "192.0.2.1", "192.0.2.2");
        let outbound = sa(0x2222, Direction::Outbound, "192.0.2.1", "192.0.2.2");
        let now = Instant::now();
        db.install_child(now, IkeSaId(1), ChildSaId(1), "gw", "net", &inbound, Some(&outbound), None);
        let w = db.w.as_ref().unwrap();
        let metas: Vec<_> = w.sas().collect();
        assert_eq!(metas.len(), 2);
        assert!(metas.iter().all(|m| m.protocol == Protocol::Ah));
        let out = metas.iter().find(|m| m.direction == Direction::Outbound).unwrap();
        let policies: Vec<_> = w.policies().cloned().collect();
        assert_eq!(policies.len(), 1);
        let PolicyAction::Protect(t) = policies[0].policy.action else { panic!("{policies:?}") };
        assert_eq!(t.protocol, Protocol::Ah);
        assert!(t.matches(out), "the template serves the AH SA it is bound to");
        assert_eq!(policies[0].sa, Some(out.id));

        // A trap of an AH child: an AH template, no SA.
        let mut conn = ConnectionConfig::psk("trap", Identification::fqdn("a.test"), None, b"k");
        conn.local_addrs = vec![ip("192.0.2.1")];
        conn.remote_addrs = vec![ip("192.0.2.3")];
        let mut child = ChildConfig::ah(
            "t",
            vec![TrafficSelector::from_prefix(ip("198.18.1.0"), 24)],
            vec![TrafficSelector::from_prefix(ip("198.18.3.0"), 24)],
            rampart_ike::proposal::parse_ah_proposals("sha256").unwrap(),
        );
        child.start_action = StartAction::Trap;
        conn.children = vec![child];
        db.install_traps(&conn);
        let w = db.w.as_ref().unwrap();
        let trap: Vec<_> = w.policies().filter(|p| p.sa.is_none()).collect();
        assert_eq!(trap.len(), 1);
        assert!(matches!(trap[0].policy.action, PolicyAction::Protect(t) if t.protocol == Protocol::Ah));
        drop(db);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn reqid_is_stable_and_never_zero() {
        assert_eq!(reqid("gw", "net"), reqid("gw", "net"));
        assert_ne!(reqid("gw", "net"), reqid("gw", "net2"));
        assert_ne!(reqid("g", "wnet"), reqid("gw", "net"));
        assert_ne!(reqid("a", "b"), 0);
    }
}
