//! The state of an IKE SA as the exchanges see it: the [`IkeSa`] with its keys, message IDs,
//! queued and outstanding requests and its CHILD_SAs ([`ChildSa`]); the context a task runs in
//! ([`Ctx`]); and the interface between the tasks and the driver: what an initiator half is
//! ([`Task`]) and returns ([`Flow`]), what a responder half answers ([`Response`]).
//!
//! The tasks (`crate::tasks`) import this module and change this state; the driver
//! (`crate::ike_sa`) moves messages in and out, dispatches them to the tasks and keeps time.
//! This module names no task and no driver (they sit above it), does no I/O and never logs or
//! prints a key.
//!
//! ```text
//!  IKE SA states
//!    initiator:  Connecting --IKE_SA_INIT--> Authenticating --IKE_AUTH--> Established
//!    responder:  HalfOpen   --IKE_AUTH (AUTH verified)-------------------> Established
//!    both:       Established --Delete / rekeyed / dead--> (removed)
//! ```

use core::fmt;
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_sa::{Direction, Lifetimes, Mode, Protocol, SaConfig, TrafficSelector, UdpEncap};
use zeroize::Zeroizing;

use crate::auth::AuthVerified;
use crate::config::{ChildConfig, ConnectionConfig, EndpointConfig};
use crate::crypto::{DhGroup, KeError, KeyShare, RandomSource};
use crate::diagnostic::Diagnostics;
use crate::event::{ChildSaId, DownReason, Event, IkeSaId, Transmit};
use crate::exchange_log::ExchangeLog;
use crate::fragment::{Pool, Reassembler};
use crate::keys::{ChildKeys, IkeSaKeys, child_keymat};
use crate::message::Identification;
use crate::message::{ExchangeType, Message, Payload};
use crate::offload::{AuthJob, DhJob, KeyShareSource};
use crate::proposal::{ChildAlgorithms, IkeAlgorithms};

/// Where an IKE SA is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IkeState {
    /// Initiator: IKE_SA_INIT in progress.
    Connecting,
    /// Initiator: IKE_AUTH in progress.
    Authenticating,
    /// Responder: IKE_SA_INIT answered, IKE_AUTH not yet verified.
    HalfOpen,
    /// Authenticated.
    Established,
    /// Being deleted (our Delete is outstanding).
    Deleting,
    /// Finished; removed by the endpoint at the next opportunity.
    Dead,
}

/// Where a CHILD_SA is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildState {
    /// Installed and in use.
    Installed,
    /// Our rekey of it is outstanding.
    Rekeying,
    /// Replaced by a successor; waiting for its deletion.
    Rekeyed,
    /// Our Delete of it is outstanding.
    Deleting,
}

/// Nonces of a peer's rekey of one of our CHILD_SAs (or of this IKE SA), kept to settle a
/// collision with our own rekey (RFC 7296 section 2.8.1).
#[derive(Clone, Debug)]
pub struct PeerRekey {
    /// Lower of the two nonces of the peer's exchange.
    pub min_nonce: Vec<u8>,
    /// What the peer's exchange created.
    pub created: Created,
}

/// The SA a rekey exchange created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// A CHILD_SA.
    Child(ChildSaId),
    /// An IKE SA.
    Ike(IkeSaId),
}

/// One CHILD_SA: a pair of ESP or AH SAs.
#[derive(Debug)]
pub struct ChildSa {
    /// Handle.
    pub id: ChildSaId,
    /// The child configuration it was made from.
    pub cfg: ChildConfig,
    /// Our inbound SPI.
    pub spi_in: u32,
    /// The peer's SPI (our outbound).
    pub spi_out: u32,
    /// Algorithms.
    pub algs: ChildAlgorithms,
    /// Mode.
    pub mode: Mode,
    /// Our side's (narrowed) selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's side.
    pub remote_ts: Vec<TrafficSelector>,
    /// The inbound SA as handed to the daemon.
    pub inbound: SaConfig,
    /// The outbound SA as handed to the daemon.
    pub outbound: SaConfig,
    /// State.
    pub state: ChildState,
    /// Whether outbound traffic uses this child's outbound SA.
    pub outbound_active: bool,
    /// The child that replaced this one in a rekey.
    pub successor: Option<ChildSaId>,
    /// A peer's rekey of this child that we answered.
    pub peer_rekey: Option<PeerRekey>,
    /// When to rekey.
    pub rekey_at: Option<Instant>,
    /// When to delete at the latest.
    pub expire_at: Option<Instant>,
    /// Whether the daemon was told about it (a rekey that lost a collision is never installed).
    pub announced: bool,
}

/// Everything needed to build a CHILD_SA once the exchange that makes it succeeded.
pub struct ChildParams<'a> {
    /// Configuration.
    pub cfg: &'a ChildConfig,
    /// Our inbound SPI.
    pub spi_in: u32,
    /// The peer's SPI.
    pub spi_out: u32,
    /// Algorithms.
    pub algs: ChildAlgorithms,
    /// Mode.
    pub mode: Mode,
    /// Our selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's selectors.
    pub remote_ts: Vec<TrafficSelector>,
    /// Ni of the exchange.
    pub ni: &'a [u8],
    /// Nr of the exchange.
    pub nr: &'a [u8],
    /// g^ir of the exchange's own Diffie-Hellman (PFS), if any.
    pub g_ir: Option<&'a [u8]>,
    /// Whether we initiated the exchange that creates the child (decides which half of
    /// KEYMAT is outbound).
    pub we_initiated: bool,
}

/// A request we sent and wait an answer to.
pub struct Outstanding {
    /// Its message ID.
    pub message_id: u32,
    /// Its exchange type.
    pub exchange: ExchangeType,
    /// The datagrams it went in (one, or its IKE fragments), for retransmission: sent again as
    /// they are (RFC 7383 section 2.6.1).
    pub datagrams: Vec<Vec<u8>>,
    /// The task waiting for the answer.
    pub task: Box<dyn Task>,
    /// Retransmissions so far.
    pub retransmits: u32,
    /// When to retransmit (or give up).
    pub next_at: Instant,
    /// When it was first sent (for `dpd_timeout`).
    pub sent_at: Instant,
}

/// Endpoint-wide things a task may touch while it runs.
pub struct Ctx<'a> {
    /// The current time.
    pub now: Instant,
    /// Randomness.
    pub rng: &'a mut dyn RandomSource,
    /// Events for the daemon.
    pub events: &'a mut VecDeque<Event>,
    /// Datagrams for the daemon.
    pub transmits: &'a mut VecDeque<Transmit>,
    /// Endpoint settings.
    pub cfg: &'a EndpointConfig,
    /// Handle and SPI allocation.
    pub ids: &'a mut Ids,
    /// IKE SAs created by a rekey, to be added by the endpoint.
    pub new_sas: Vec<IkeSa>,
    /// IKE SA handles whose children should move to a new IKE SA: (from, to).
    pub moves: Vec<(IkeSaId, IkeSaId)>,
    /// An IKE SA authenticated with INITIAL_CONTACT: the others with this peer go.
    pub initial_contact: Option<IkeSaId>,
    /// Where Diffie-Hellman key shares come from.
    pub shares: &'a mut dyn KeyShareSource,
    /// Shared-secret computations handed out ([`EndpointConfig::offload_dh`]).
    pub dh_jobs: &'a mut VecDeque<DhJob>,
    /// Exchange counts and round-trip times, for metrics.
    pub exchanges: &'a mut ExchangeLog,
    /// What was dropped and why; refusals an operator should read about.
    pub diag: &'a mut Diagnostics,
    /// Every connection (a responder picks the one for the peer's identity, RFC 7296 2.15).
    pub connections: &'a [Arc<ConnectionConfig>],
    /// Seconds since 1970 (certificate validity), as the caller set the wall clock.
    pub unix_time: u64,
    /// Signature checks handed out ([`EndpointConfig::offload_dh`]).
    pub auth_jobs: &'a mut VecDeque<AuthJob>,
    /// The bytes all IKE SAs hold in reassembly of IKE fragments.
    pub fragments: &'a mut Pool,
}

impl Ctx<'_> {
    /// A fresh key share of `group` from the endpoint's source.
    pub fn key_share(&mut self, group: DhGroup) -> KeyShare {
        self.shares.take(group, self.rng)
    }

    /// A fresh key share if the source has one ready (see [`KeyShareSource::take_ready`]).
    pub fn key_share_ready(&mut self, group: DhGroup) -> Option<KeyShare> {
        self.shares.take_ready(group, self.rng)
    }
}

/// Allocation of handles and SPIs, unique within an endpoint.
#[derive(Debug, Default)]
pub struct Ids {
    next_ike: u64,
    next_child: u64,
    /// Inbound ESP and AH SPIs in use.
    pub child_spis: HashSet<u32>,
    /// Our IKE SPIs in use.
    pub ike_spis: HashSet<u64>,
}

impl Ids {
    /// A new IKE SA handle.
    pub fn ike(&mut self) -> IkeSaId {
        self.next_ike += 1;
        IkeSaId(self.next_ike)
    }

    /// A new CHILD_SA handle.
    pub fn child(&mut self) -> ChildSaId {
        self.next_child += 1;
        ChildSaId(self.next_child)
    }

    /// A fresh inbound ESP or AH SPI (never 0-255, RFC 4303 section 2.1 and RFC 4302 section
    /// 2.4, never one in use).
    pub fn child_spi(&mut self, rng: &mut dyn RandomSource) -> u32 {
        loop {
            let mut b = [0u8; 4];
            rng.fill(&mut b);
            let spi = u32::from_be_bytes(b);
            if spi > 255 && self.child_spis.insert(spi) {
                return spi;
            }
        }
    }

    /// A fresh IKE SPI of ours (never 0, never one in use).
    pub fn ike_spi(&mut self, rng: &mut dyn RandomSource) -> u64 {
        loop {
            let mut b = [0u8; 8];
            rng.fill(&mut b);
            let spi = u64::from_be_bytes(b);
            if spi != 0 && self.ike_spis.insert(spi) {
                return spi;
            }
        }
    }
}

/// A random nonce of 32 bytes (RFC 7296 section 2.10: at least half the PRF key size, 16 min).
pub fn nonce(rng: &mut dyn RandomSource) -> Vec<u8> {
    let mut n = vec![0u8; 32];
    rng.fill(&mut n);
    n
}

/// A duration minus a random part of at most `jitter`.
pub fn jittered(base: Duration, jitter: Duration, rng: &mut dyn RandomSource) -> Duration {
    if jitter.is_zero() {
        return base;
    }
    let mut b = [0u8; 8];
    rng.fill(&mut b);
    let frac = (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    base.saturating_sub(jitter.mul_f64(frac.min(1.0)))
}

/// One IKE SA.
pub struct IkeSa {
    /// Handle.
    pub id: IkeSaId,
    /// The connection it belongs to.
    pub conn: Arc<ConnectionConfig>,
    /// Whether we are the original initiator of this IKE SA.
    pub initiator: bool,
    /// SPIi.
    pub spi_i: u64,
    /// SPIr (0 until the responder answered).
    pub spi_r: u64,
    /// Our address and port.
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// State.
    pub state: IkeState,
    /// Negotiated algorithms.
    pub algs: Option<IkeAlgorithms>,
    /// Keys.
    pub keys: Option<IkeSaKeys>,
    /// Ni of IKE_SA_INIT (or of the rekey that made this SA).
    pub ni: Vec<u8>,
    /// Nr.
    pub nr: Vec<u8>,
    /// IKE_SA_INIT request as sent (RealMessage1).
    pub init_request: Vec<u8>,
    /// IKE_SA_INIT response as sent (RealMessage2).
    pub init_response: Vec<u8>,
    /// The proof that the peer authenticated.
    pub auth: Option<AuthVerified>,
    /// Message ID of our next request.
    pub next_request_id: u32,
    /// Message ID we expect in the peer's next request.
    pub expected_request_id: u32,
    /// Our last response: its message ID and the datagrams it went in (one, or its fragments).
    pub last_response: Option<(u32, Vec<Vec<u8>>)>,
    /// The request we wait an answer to.
    pub outstanding: Option<Outstanding>,
    /// Requests waiting for the window.
    pub queue: VecDeque<Box<dyn Task>>,
    /// Next AEAD IV of our direction.
    pub iv_counter: u64,
    /// We are behind a NAT (keepalives needed).
    pub nat_local: bool,
    /// The peer is behind a NAT.
    pub nat_remote: bool,
    /// The CHILD_SAs.
    pub children: Vec<ChildSa>,
    /// Last time an authenticated message came from the peer.
    pub last_heard: Instant,
    /// Last time we sent anything to the peer.
    pub last_sent: Instant,
    /// When to rekey this IKE SA.
    pub rekey_at: Option<Instant>,
    /// When to delete it at the latest.
    pub expire_at: Option<Instant>,
    /// A responder's deadline for IKE_AUTH.
    pub half_open_until: Option<Instant>,
    /// A peer's rekey of this IKE SA that we answered (collision handling).
    pub peer_rekey: Option<PeerRekey>,
    /// The IKE SA that replaced this one.
    pub successor: Option<IkeSaId>,
    /// Whether our IKE_AUTH request says INITIAL_CONTACT (no other IKE SA with this peer).
    pub initial_contact: bool,
    /// An initiator waiting for the shared secret of IKE_SA_INIT ([`crate::offload::DhJob`]):
    /// the rest of the exchange, resumed by [`crate::Endpoint::dh_done`].
    pub suspended: Option<Box<dyn AwaitingSecret>>,
    /// The hash algorithms of the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4).
    pub peer_hashes: Vec<u16>,
    /// The CA key hashes of the peer's CERTREQ payloads (RFC 7296 section 3.7).
    pub peer_certreq: Vec<[u8; 20]>,
    /// A responder's IKE_AUTH whose signature work runs elsewhere ([`crate::offload::AuthJob`]).
    pub auth_pending: Option<AuthPending>,
    /// IKE fragmentation (RFC 7383) was negotiated: both sides sent
    /// IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (a rekeyed IKE SA keeps it).
    pub fragmentation: bool,
    /// The peer's fragmented messages being put back together.
    pub fragments: Reassembler,
}

/// A responder's IKE_AUTH request waiting for its [`crate::offload::AuthDone`].
#[derive(Debug)]
pub struct AuthPending {
    /// The request's message ID (a retransmission of it is dropped meanwhile).
    pub message_id: u32,
    /// The request's payloads (the CHILD_SA is made from them once AUTH verified).
    pub payloads: Vec<Payload>,
    /// The peer's identity.
    pub id_i: Identification,
    /// Ours.
    pub id_r: Identification,
}

impl IkeSa {
    /// A new IKE SA in its first state.
    pub fn new(
        id: IkeSaId,
        conn: Arc<ConnectionConfig>,
        initiator: bool,
        local: SocketAddr,
        remote: SocketAddr,
        now: Instant,
    ) -> IkeSa {
        IkeSa {
            id,
            conn,
            initiator,
            spi_i: 0,
            spi_r: 0,
            local,
            remote,
            state: if initiator { IkeState::Connecting } else { IkeState::HalfOpen },
            algs: None,
            keys: None,
            ni: Vec::new(),
            nr: Vec::new(),
            init_request: Vec::new(),
            init_response: Vec::new(),
            auth: None,
            next_request_id: 0,
            expected_request_id: 0,
            last_response: None,
            outstanding: None,
            queue: VecDeque::new(),
            iv_counter: 0,
            nat_local: false,
            nat_remote: false,
            children: Vec::new(),
            last_heard: now,
            last_sent: now,
            rekey_at: None,
            expire_at: None,
            half_open_until: None,
            peer_rekey: None,
            successor: None,
            initial_contact: true,
            suspended: None,
            peer_hashes: Vec::new(),
            peer_certreq: Vec::new(),
            auth_pending: None,
            fragmentation: false,
            fragments: Reassembler::default(),
        }
    }

    /// Our IKE SPI.
    pub fn our_spi(&self) -> u64 {
        if self.initiator { self.spi_i } else { self.spi_r }
    }

    /// Whether NAT traversal (UDP encapsulation, port 4500) is on.
    pub fn nat(&self) -> bool {
        self.nat_local || self.nat_remote
    }

    /// Where the NAT is, for a log line: `local` (or `forced` by `encap = yes`), `remote`,
    /// `both`, or `none`.
    pub fn nat_side(&self) -> &'static str {
        match (self.nat_local, self.nat_remote) {
            (true, true) => "both",
            (true, false) if self.conn.encap => "forced",
            (true, false) => "local",
            (false, true) => "remote",
            (false, false) => "none",
        }
    }

    /// The exchange of the request we wait an answer to, if any.
    pub fn outstanding_kind(&self) -> Option<TaskKind> {
        self.outstanding.as_ref().map(|o| o.task.kind())
    }

    /// Builds the CHILD_SA an exchange negotiated: KEYMAT split into its keys, the inbound and
    /// outbound SAs, the rekey and expiry times. `None` on an IKE SA whose peer has not
    /// authenticated: only the proof that the AUTH check returns ([`AuthVerified`], kept in
    /// `auth`) lets a CHILD_SA be made. `None` too for AH on an IKE SA with NAT traversal
    /// (AH cannot be UDP-encapsulated), whatever the exchange asked.
    pub fn make_child(&self, cx: &mut Ctx<'_>, p: ChildParams<'_>) -> Option<ChildSa> {
        let _proof: &AuthVerified = self.auth.as_ref()?;
        let keys = self.keys.as_ref()?;
        let protocol = p.algs.protocol;
        //= https://www.rfc-editor.org/rfc/rfc3948#section-1
        //# Because the protection of the outer IP addresses in IPsec AH is
        //# inherently incompatible with NAT, the IPsec AH was left out of the
        //# scope of this protocol specification.
        if protocol == Protocol::Ah && self.nat() {
            return None;
        }
        let suite = p.algs.suite;
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.17
        //# For ESP and AH, [IPSECARCH] defines the order, namely: the
        //# encryption key (if any) MUST be taken from the first bits and the
        //# integrity key (if any) MUST be taken from the remaining bits.
        // AH has an integrity key only (its suite's encryption key is empty): the HMAC key, or
        // for AES-GMAC the AES key and the 4-byte salt (RFC 4543 section 7.1).
        let (el, il) = (suite.encryption_key_len(), suite.integrity_key_len());
        let keymat: Zeroizing<Vec<u8>> = child_keymat(keys.prf, &keys.sk_d, p.g_ir, p.ni, p.nr, 2 * (el + il));
        let ck = ChildKeys::split(&keymat, el, il)?;
        let (enc_out, int_out, enc_in, int_in) = if p.we_initiated {
            (ck.encr_i.clone(), ck.integ_i.clone(), ck.encr_r.clone(), ck.integ_r.clone())
        } else {
            (ck.encr_r.clone(), ck.integ_r.clone(), ck.encr_i.clone(), ck.integ_i.clone())
        };
        let encap = (self.nat() && protocol == Protocol::Esp)
            .then_some(UdpEncap { local_port: self.local.port(), remote_port: self.remote.port() });
        let lifetimes = Lifetimes {
            soft_seconds: p.cfg.rekey_time.as_secs(),
            hard_seconds: p.cfg.life_time.as_secs(),
            soft_bytes: p.cfg.rekey_bytes,
            hard_bytes: p.cfg.life_bytes,
            soft_packets: p.cfg.rekey_packets,
            hard_packets: p.cfg.life_packets,
        };
        let base = |spi, direction, ek, ik| SaConfig {
            protocol,
            spi,
            direction,
            suite,
            encryption_key: ek,
            integrity_key: ik,
            mode: p.mode,
            local: self.local.ip(),
            remote: self.remote.ip(),
            encap,
            esn: p.algs.esn,
            replay_window: if direction == Direction::Inbound { cx.cfg.replay_window } else { 0 },
            local_ts: p.local_ts.clone(),
            remote_ts: p.remote_ts.clone(),
            lifetimes,
        };
        let inbound = base(p.spi_in, Direction::Inbound, enc_in, int_in);
        let outbound = base(p.spi_out, Direction::Outbound, enc_out, int_out);
        let rekey_at =
            (!p.cfg.rekey_time.is_zero()).then(|| cx.now + jittered(p.cfg.rekey_time, p.cfg.rand_time, cx.rng));
        let expire_at = (!p.cfg.life_time.is_zero()).then(|| cx.now + p.cfg.life_time);
        Some(ChildSa {
            id: cx.ids.child(),
            cfg: p.cfg.clone(),
            spi_in: p.spi_in,
            spi_out: p.spi_out,
            algs: p.algs,
            mode: p.mode,
            local_ts: p.local_ts,
            remote_ts: p.remote_ts,
            inbound,
            outbound,
            state: ChildState::Installed,
            outbound_active: false,
            successor: None,
            peer_rekey: None,
            rekey_at,
            expire_at,
            announced: false,
        })
    }

    /// Makes the CHILD_SA an exchange negotiated ([`IkeSa::make_child`]) and installs it
    /// ([`IkeSa::install_child`]); when it cannot be made, its inbound SPI is given back.
    pub fn add_child(&mut self, cx: &mut Ctx<'_>, p: ChildParams<'_>) -> Option<ChildSaId> {
        let spi_in = p.spi_in;
        match self.make_child(cx, p) {
            Some(child) => Some(self.install_child(cx, child)),
            None => {
                cx.ids.child_spis.remove(&spi_in);
                None
            }
        }
    }

    /// Announces a new child and stores it.
    pub fn install_child(&mut self, cx: &mut Ctx<'_>, mut child: ChildSa) -> ChildSaId {
        child.outbound_active = true;
        child.announced = true;
        cx.events.push_back(Event::InstallChildSa {
            ike: self.id,
            child: child.id,
            name: child.cfg.name.clone(),
            inbound: child.inbound.clone(),
            outbound: child.outbound.clone(),
        });
        let id = child.id;
        self.children.push(child);
        id
    }

    /// The child with this handle.
    pub fn child_mut(&mut self, id: ChildSaId) -> Option<&mut ChildSa> {
        self.children.iter_mut().find(|c| c.id == id)
    }

    /// Removes a child (event); switches outbound to its successor first if that one is not
    /// active yet.
    pub fn remove_child(&mut self, cx: &mut Ctx<'_>, id: ChildSaId) {
        let Some(pos) = self.children.iter().position(|c| c.id == id) else { return };
        let child = self.children.remove(pos);
        if child.outbound_active
            && let Some(succ) = child.successor
            && let Some(s) = self.children.iter_mut().find(|c| c.id == succ)
            && !s.outbound_active
        {
            s.outbound_active = true;
            cx.events.push_back(Event::SwitchOutbound { ike: self.id, child: s.id, outbound: s.outbound.clone() });
        }
        cx.ids.child_spis.remove(&child.spi_in);
        if child.announced {
            cx.events.push_back(Event::DeleteChildSa {
                ike: self.id,
                child: child.id,
                inbound_spi: child.spi_in,
                outbound_spi: child.spi_out,
            });
        }
    }
}

/// What a responder half answers.
pub enum Response {
    /// Send these payloads.
    Payloads(Vec<Payload>),
    /// Send these payloads, then end the IKE SA.
    ThenDie(Vec<Payload>, DownReason),
    /// Send nothing (the request is dropped; the message ID does not advance).
    Silent,
    /// The answer waits for work done elsewhere ([`IkeSa::auth_pending`]); nothing is sent yet
    /// and the message ID does not advance.
    Deferred,
}

/// What became of an exchange we initiated.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Finished (successfully or not, with events emitted); the next request may go.
    Done,
    /// The IKE SA must end.
    Down(DownReason),
}

/// Which exchange a [`Task`] runs (a responder half asks what is outstanding to settle
/// collisions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// IKE_SA_INIT.
    IkeInit,
    /// IKE_AUTH with the first CHILD_SA.
    IkeAuth,
    /// CREATE_CHILD_SA for a new CHILD_SA.
    ChildCreate,
    /// CREATE_CHILD_SA rekeying a CHILD_SA.
    ChildRekey,
    /// CREATE_CHILD_SA rekeying the IKE SA.
    IkeRekey,
    /// INFORMATIONAL deleting a CHILD_SA.
    ChildDelete,
    /// INFORMATIONAL deleting the IKE SA.
    IkeDelete,
    /// An empty INFORMATIONAL (liveness check).
    Dpd,
}

/// The initiator half of one exchange (strongSwan's `task_t`): queued on its IKE SA until the
/// window of one is free, then outstanding until the answer comes. Each lives in its own file
/// under `crate::tasks`, with the responder half beside it.
pub trait Task: fmt::Debug + Send {
    /// Which exchange this is.
    fn kind(&self) -> TaskKind;

    /// Builds the request, or `None` when the task no longer applies (its SA is gone).
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)>;

    /// Reads the answer (`raw`: the datagram as received, for IKE_SA_INIT's signed octets).
    fn process_i(
        self: Box<Self>,
        sa: &mut IkeSa,
        cx: &mut Ctx<'_>,
        msg: &Message,
        raw: &[u8],
        payloads: &[Payload],
    ) -> Flow;

    /// The answer was authenticated but unusable (malformed, or an unsupported critical
    /// payload). By default the exchange is over and the IKE SA goes on.
    fn failed(self: Box<Self>, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Flow {
        let _ = (sa, cx);
        Flow::Done
    }
}

/// An exchange waiting for a Diffie-Hellman shared secret computed elsewhere
/// ([`crate::offload::DhJob`]); the IKE SA sends nothing meanwhile.
pub trait AwaitingSecret: fmt::Debug + Send {
    /// Goes on with the secret (or the failure to compute it).
    fn resume(self: Box<Self>, sa: &mut IkeSa, g_ir: Result<Zeroizing<Vec<u8>>, KeError>) -> Flow;
}
