//! One IKE SA: its keys, message IDs (window of one), the outstanding request with its
//! retransmission schedule, the cached last response, its CHILD_SAs and its timers.
//!
//! The exchanges themselves live in [`crate::tasks`]; this module moves messages in and out,
//! routes them to the tasks and keeps time. It never does I/O and never logs keys.
//!
//! ```text
//!  IKE SA states
//!    initiator:  Connecting --IKE_SA_INIT--> Authenticating --IKE_AUTH--> Established
//!    responder:  HalfOpen   --IKE_AUTH (AUTH verified)-------------------> Established
//!    both:       Established --Delete / rekeyed / dead--> (removed)
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_sa::{Direction, Lifetimes, Mode, SaConfig, TrafficSelector, UdpEncap};
use zeroize::Zeroizing;

use crate::auth::AuthVerified;
use crate::config::{ChildConfig, ConnectionConfig, EndpointConfig};
use crate::crypto::{DhGroup, KeyShare, RandomSource};
use crate::event::{ChildSaId, DownReason, Event, IkeSaId, Transmit};
use crate::exchange_log::ExchangeLog;
use crate::keys::{ChildKeys, IkeSaKeys, child_keymat};
use crate::message::{
    ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, Header, Message, NotifyType, Payload, unsupported_critical,
};
use crate::offload::{DhJob, KeyShareSource};
use crate::proposal::{EspAlgorithms, IkeAlgorithms};
use crate::sk::{self, SkError, SkKeys};
use crate::tasks::{self, Flow, Task};

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

/// One CHILD_SA: a pair of ESP SAs.
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
    pub algs: EspAlgorithms,
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
    pub algs: EspAlgorithms,
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
    /// The bytes, for retransmission.
    pub bytes: Vec<u8>,
    /// The task waiting for the answer.
    pub task: Task,
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
    /// Inbound ESP SPIs in use.
    pub child_spis: std::collections::HashSet<u32>,
    /// Our IKE SPIs in use.
    pub ike_spis: std::collections::HashSet<u64>,
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

    /// A fresh inbound ESP SPI (never 0-255, RFC 4303 section 2.1, never one in use).
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
    /// Our last response: its message ID and bytes.
    pub last_response: Option<(u32, Vec<u8>)>,
    /// The request we wait an answer to.
    pub outstanding: Option<Outstanding>,
    /// Requests waiting for the window.
    pub queue: VecDeque<Task>,
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
    pub suspended: Option<Box<tasks::ike_init::InitResume>>,
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

    fn header(&self, exchange: ExchangeType, message_id: u32, response: bool) -> Header {
        let mut flags = 0;
        if self.initiator {
            flags |= FLAG_INITIATOR;
        }
        if response {
            flags |= FLAG_RESPONSE;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange,
            flags,
            message_id,
            length: 0,
        }
    }

    /// Seals payloads in an SK payload with our direction's keys.
    fn seal(&mut self, header: Header, payloads: &[Payload], rng: &mut dyn RandomSource) -> Option<Vec<u8>> {
        let keys = self.keys.as_ref()?;
        let (ek, ak) = if self.initiator { (&keys.sk_ei, &keys.sk_ai) } else { (&keys.sk_er, &keys.sk_ar) };
        let sk = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: ek, integrity_key: ak };
        sk::seal(header, payloads, &sk, &mut self.iv_counter, rng)
    }

    /// Opens a message from the peer.
    fn open(&self, msg: &Message, raw: &[u8]) -> Result<Vec<Payload>, SkError> {
        let keys = self.keys.as_ref().ok_or(SkError::Integrity)?;
        let (ek, ak) = if self.initiator { (&keys.sk_er, &keys.sk_ar) } else { (&keys.sk_ei, &keys.sk_ai) };
        let sk = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: ek, integrity_key: ak };
        sk::open(msg, raw, &sk)
    }

    fn transmit(&mut self, cx: &mut Ctx<'_>, bytes: Vec<u8>) {
        self.last_sent = cx.now;
        cx.transmits.push_back(Transmit { from: self.local, to: self.remote, bytes });
    }

    /// Queues a request task; it is sent when the window is free.
    pub fn queue_task(&mut self, cx: &mut Ctx<'_>, task: Task) {
        self.queue.push_back(task);
        self.pump(cx);
    }

    /// Sends the next queued request if the window (of one) is free.
    pub fn pump(&mut self, cx: &mut Ctx<'_>) {
        while self.outstanding.is_none()
            && self.suspended.is_none()
            && matches!(self.state, IkeState::Established | IkeState::Connecting | IkeState::Authenticating)
        {
            let Some(mut task) = self.queue.pop_front() else { return };
            let Some((exchange, payloads)) = task.build_i(self, cx) else { continue };
            self.send_request(cx, exchange, payloads, task);
        }
    }

    /// Sends a request now (the window must be free).
    pub fn send_request(&mut self, cx: &mut Ctx<'_>, exchange: ExchangeType, payloads: Vec<Payload>, task: Task) {
        let message_id = self.next_request_id;
        let header = self.header(exchange, message_id, false);
        let bytes = if exchange == ExchangeType::IkeSaInit {
            let b = Message::emit_plain(header, &payloads);
            self.init_request = b.clone();
            Some(b)
        } else {
            self.seal(header, &payloads, cx.rng)
        };
        let Some(bytes) = bytes else {
            self.die(cx, DownReason::Failed("could not seal a request".into()));
            return;
        };
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.transmit(cx, bytes.clone());
        let next_at = cx.now + cx.cfg.retransmit_timeout;
        self.outstanding =
            Some(Outstanding { message_id, exchange, bytes, task, retransmits: 0, next_at, sent_at: cx.now });
    }

    /// Sends IKE_SA_INIT again with new contents (COOKIE or another KE group), same message ID.
    pub fn resend_init(&mut self, cx: &mut Ctx<'_>, payloads: Vec<Payload>, task: Task) {
        self.next_request_id = 0;
        self.send_request(cx, ExchangeType::IkeSaInit, payloads, task);
    }

    /// Handles a datagram addressed to this IKE SA.
    pub fn handle(&mut self, cx: &mut Ctx<'_>, local: SocketAddr, remote: SocketAddr, raw: &[u8], msg: Message) {
        if self.state == IkeState::Dead {
            return;
        }
        if msg.header.is_response() {
            self.handle_response(cx, local, remote, raw, msg);
        } else {
            self.handle_request(cx, local, remote, raw, msg);
        }
    }

    fn handle_response(&mut self, cx: &mut Ctx<'_>, _local: SocketAddr, _remote: SocketAddr, raw: &[u8], msg: Message) {
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.3
        //# An endpoint MUST NOT ... process a response whose Message ID it did not send a
        //# request with (window of one: only the outstanding one).
        let Some(out) = self.outstanding.as_ref() else { return };
        if out.message_id != msg.header.message_id || out.exchange != msg.header.exchange {
            return;
        }
        // The responder's SPI is learned from the first answer.
        if msg.header.is_initiator() == self.initiator {
            return;
        }
        let payloads = if msg.header.exchange == ExchangeType::IkeSaInit {
            if msg.encrypted.is_some() {
                return;
            }
            msg.payloads.clone()
        } else {
            match self.open(&msg, raw) {
                Ok(p) => p,
                Err(SkError::Malformed(_)) => {
                    // Authenticated but broken: the exchange failed.
                    let Some(out) = self.outstanding.take() else { return };
                    cx.exchanges.answered(out.exchange, cx.now.saturating_duration_since(out.sent_at));
                    let flow = out.task.failed(self, cx);
                    self.after_flow(cx, flow);
                    return;
                }
                Err(_) => return,
            }
        };
        self.last_heard = cx.now;
        let Some(out) = self.outstanding.take() else { return };
        cx.exchanges.answered(out.exchange, cx.now.saturating_duration_since(out.sent_at));
        let flow = if let Some(kind) = unsupported_critical(&payloads) {
            let _ = kind;
            out.task.failed(self, cx)
        } else {
            out.task.process_i(self, cx, &msg, raw, payloads)
        };
        self.after_flow(cx, flow);
    }

    /// Goes on after an exchange we initiated finished: the next request, or the end.
    pub fn after_flow(&mut self, cx: &mut Ctx<'_>, flow: Flow) {
        match flow {
            Flow::Done => self.pump(cx),
            Flow::Down(reason) => self.die(cx, reason),
        }
    }

    fn handle_request(&mut self, cx: &mut Ctx<'_>, local: SocketAddr, remote: SocketAddr, raw: &[u8], msg: Message) {
        let id = msg.header.message_id;
        if msg.header.is_initiator() == self.initiator || msg.header.exchange == ExchangeType::IkeSaInit {
            return;
        }
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.2
        //# The responder MUST remember each response until it receives a request whose sequence
        //# number is larger than or equal to the sequence number in the response plus its window size.
        if let Some((last_id, bytes)) = &self.last_response
            && *last_id == id
        {
            // A retransmitted request: answer with the cached response, only if it authenticates.
            if self.open(&msg, raw).is_ok() {
                let bytes = bytes.clone();
                self.transmit(cx, bytes);
            }
            return;
        }
        if id != self.expected_request_id {
            return;
        }
        let payloads = match self.open(&msg, raw) {
            Ok(p) => Ok(p),
            Err(SkError::Malformed(_)) => Err(()),
            Err(_) => return,
        };
        self.last_heard = cx.now;
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.23
        //# ... the responder MUST use the address of the latest authenticated message
        if self.nat() {
            self.local = local;
            self.remote = remote;
        }
        let exchange = msg.header.exchange;
        let response = match payloads {
            //= https://www.rfc-editor.org/rfc/rfc7296#section-2.21.1
            //# If a message is malformed ... the response MUST contain INVALID_SYNTAX
            Err(()) => Response::Payloads(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]),
            Ok(p) => {
                //= https://www.rfc-editor.org/rfc/rfc7296#section-2.5
                //# If the critical flag is set and the payload type is unrecognized, the message MUST
                //# be rejected and the response to the IKE request containing that payload MUST
                //# include a Notify payload UNSUPPORTED_CRITICAL_PAYLOAD
                if let Some(kind) = unsupported_critical(&p) {
                    Response::Payloads(vec![Payload::notify(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![kind])])
                } else {
                    tasks::respond(self, cx, exchange, p)
                }
            }
        };
        let (payloads, then) = match response {
            Response::Payloads(p) => (p, None),
            Response::ThenDie(p, reason) => (p, Some(reason)),
            Response::Silent => return,
        };
        let header = self.header(exchange, id, true);
        if let Some(bytes) = self.seal(header, &payloads, cx.rng) {
            self.last_response = Some((id, bytes.clone()));
            self.transmit(cx, bytes);
            cx.exchanges.responded(exchange);
        }
        self.expected_request_id = id.wrapping_add(1);
        if let Some(reason) = then {
            self.die(cx, reason);
        } else {
            self.pump(cx);
        }
    }

    /// Removes every child (events) and marks the SA dead (event).
    pub fn die(&mut self, cx: &mut Ctx<'_>, reason: DownReason) {
        if self.state == IkeState::Dead {
            return;
        }
        let was_up = self.auth.is_some();
        for child in std::mem::take(&mut self.children) {
            cx.ids.child_spis.remove(&child.spi_in);
            if !child.announced {
                continue;
            }
            cx.events.push_back(Event::DeleteChildSa {
                ike: self.id,
                child: child.id,
                inbound_spi: child.spi_in,
                outbound_spi: child.spi_out,
            });
        }
        self.state = IkeState::Dead;
        self.outstanding = None;
        self.queue.clear();
        if was_up || reason != DownReason::HalfOpenTimeout {
            cx.events.push_back(Event::IkeSaDown { ike: self.id, reason });
        }
    }

    /// Builds the CHILD_SA an exchange negotiated: KEYMAT split into its keys, the inbound and
    /// outbound SAs, the rekey and expiry times. `None` on an IKE SA whose peer has not
    /// authenticated: only the proof that the AUTH check returns ([`AuthVerified`], kept in
    /// `auth`) lets a CHILD_SA be made.
    pub fn make_child(&self, cx: &mut Ctx<'_>, p: ChildParams<'_>) -> Option<ChildSa> {
        let _proof: &AuthVerified = self.auth.as_ref()?;
        let keys = self.keys.as_ref()?;
        let suite = p.algs.suite;
        let (el, il) = (suite.encryption_key_len(), suite.integrity_key_len());
        let keymat: Zeroizing<Vec<u8>> = child_keymat(keys.prf, &keys.sk_d, p.g_ir, p.ni, p.nr, 2 * (el + il));
        let ck = ChildKeys::split(&keymat, el, il)?;
        let (enc_out, int_out, enc_in, int_in) = if p.we_initiated {
            (ck.encr_i.clone(), ck.integ_i.clone(), ck.encr_r.clone(), ck.integ_r.clone())
        } else {
            (ck.encr_r.clone(), ck.integ_r.clone(), ck.encr_i.clone(), ck.integ_i.clone())
        };
        let encap = self.nat().then_some(UdpEncap { local_port: self.local.port(), remote_port: self.remote.port() });
        let lifetimes = Lifetimes {
            soft_seconds: p.cfg.rekey_time.as_secs(),
            hard_seconds: p.cfg.life_time.as_secs(),
            soft_bytes: p.cfg.rekey_bytes,
            hard_bytes: p.cfg.life_bytes,
            soft_packets: p.cfg.rekey_packets,
            hard_packets: p.cfg.life_packets,
        };
        let base = |spi, direction, ek, ik| SaConfig {
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

    /// The earliest time this SA wants to be woken.
    pub fn next_timeout(&self, cfg: &EndpointConfig) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.state == IkeState::Dead {
            return None;
        }
        consider(self.outstanding.as_ref().map(|o| o.next_at));
        if let Some(cap) = self.dpd_deadline() {
            consider(Some(cap));
        }
        consider(self.half_open_until);
        if self.state == IkeState::Established && self.successor.is_none() {
            consider(self.rekey_at);
            consider(self.expire_at);
            if !self.conn.dpd_delay.is_zero() && self.outstanding.is_none() {
                consider(Some(self.last_heard.max(self.last_sent) + self.conn.dpd_delay));
            }
            if self.nat_local {
                consider(Some(self.last_sent + cfg.keep_alive));
            }
            for c in &self.children {
                if c.state == ChildState::Installed {
                    consider(c.rekey_at);
                }
                consider(c.expire_at);
            }
        }
        t
    }

    /// When an unanswered request of an established IKE SA makes the peer dead under the
    /// connection's `dpd_timeout`.
    fn dpd_deadline(&self) -> Option<Instant> {
        let out = self.outstanding.as_ref()?;
        let cap = self.conn.dpd_timeout;
        (!cap.is_zero() && matches!(self.state, IkeState::Established | IkeState::Deleting)).then(|| out.sent_at + cap)
    }

    /// Traffic from the peer was seen at `at` outside IKE (ESP counted by the data plane): a
    /// liveness check is not needed before `at + dpd_delay`.
    pub fn note_activity(&mut self, at: Instant) {
        if at > self.last_heard {
            self.last_heard = at;
        }
    }

    /// Runs the timers that are due.
    pub fn on_timeout(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        if self.half_open_until.is_some_and(|t| now >= t) && self.auth.is_none() {
            self.die(cx, DownReason::HalfOpenTimeout);
            return;
        }
        if self.dpd_deadline().is_some_and(|t| now >= t) {
            self.die(cx, DownReason::PeerDead);
            return;
        }
        if let Some(out) = self.outstanding.as_mut()
            && now >= out.next_at
        {
            //= https://www.rfc-editor.org/rfc/rfc7296#section-2.1
            //# The initiator MUST retransmit a request until it either receives a corresponding
            //# response or deems the IKE SA to have failed.
            if out.retransmits >= cx.cfg.retransmit_tries {
                self.die(cx, DownReason::PeerDead);
                return;
            }
            out.retransmits += 1;
            cx.exchanges.retransmitted(out.exchange);
            let wait = cx.cfg.retransmit_timeout.mul_f64(cx.cfg.retransmit_base.powi(out.retransmits as i32));
            out.next_at = now + wait;
            let bytes = out.bytes.clone();
            self.transmit(cx, bytes);
        }
        if self.state != IkeState::Established || self.successor.is_some() {
            return;
        }
        if self.expire_at.is_some_and(|t| now >= t) {
            self.expire_at = None;
            self.queue.clear();
            self.outstanding = None;
            self.queue_task(cx, Task::IkeDelete);
            // If the peer does not answer the delete, retransmission ends it.
            return;
        }
        if self.rekey_at.is_some_and(|t| now >= t) {
            self.rekey_at = None;
            self.queue_task(cx, Task::IkeRekey(None));
        }
        let mut due = Vec::new();
        for c in &mut self.children {
            if c.expire_at.is_some_and(|t| now >= t) {
                c.expire_at = None;
                c.rekey_at = None;
                due.push(Task::ChildDelete(tasks::child_delete::Initiator::new(c.id)));
            } else if c.state == ChildState::Installed && c.rekey_at.is_some_and(|t| now >= t) {
                c.rekey_at = None;
                due.push(Task::ChildRekey(Box::new(tasks::child_rekey::Initiator::new(c.id))));
            }
        }
        for t in due {
            self.queue_task(cx, t);
        }
        if !self.conn.dpd_delay.is_zero()
            && self.outstanding.is_none()
            && self.queue.is_empty()
            && now >= self.last_heard.max(self.last_sent) + self.conn.dpd_delay
        {
            self.queue_task(cx, Task::Dpd);
        }
        if self.nat_local && now >= self.last_sent + cx.cfg.keep_alive {
            //= https://www.rfc-editor.org/rfc/rfc3948#section-4
            //# NAT-keepalive packet ... a single octet 0xFF
            self.transmit(cx, vec![0xff]);
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
}
