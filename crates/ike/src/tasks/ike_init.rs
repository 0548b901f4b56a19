//! IKE_SA_INIT (RFC 7296 sections 1.2, 2.6, 2.7, 2.23): proposals, the Diffie-Hellman exchange,
//! nonces, NAT detection; COOKIE and INVALID_KE_PAYLOAD rounds; the responder's half-open
//! limits.
//!
//! The responder half runs before any IKE SA exists, so it takes the endpoint's pieces
//! explicitly and returns the new half-open IKE SA.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{ChildConfig, ConnectionConfig, Fragmentation};
use crate::cookie::CookieJar;
use zeroize::Zeroizing;

use crate::crypto::{DhGroup, KeError, KeyShare};
use crate::diagnostic::{Diagnostic, Ignored};
use crate::event::{DownReason, IkeSaId, Transmit};
use crate::keys::{IkeSaKeys, skeyseed};
use crate::message::{
    ExchangeType, FLAG_RESPONSE, Header, Message, NotifyType, Payload, Proposal, error_notify, find_notify,
    transform_type, unsupported_critical,
};
use crate::nat::nat_hash;
use crate::offload::{DhJob, DhOwner};
use crate::proposal::{IkeAlgorithms, accept_ike_answer, describe, describe_offer, ike_answer, select_ike};
use crate::state::{AwaitingSecret, Ctx, Flow, IkeSa, IkeState, Task, TaskKind, nonce};
use crate::tasks::ike_auth;

/// How many COOKIE or INVALID_KE_PAYLOAD rounds an initiator accepts before giving up.
const MAX_INIT_ROUNDS: u8 = 3;

/// Initiator state.
#[derive(Debug)]
pub struct Initiator {
    ke: KeyShare,
    ni: Vec<u8>,
    cookie: Option<Vec<u8>>,
    rounds: u8,
    child: Option<ChildConfig>,
    fake_nat: Vec<u8>,
}

fn nat_notifies(sa: &IkeSa, spi_r: u64, fake: Option<&[u8]>) -> [Payload; 2] {
    let src = fake.map_or_else(|| nat_hash(sa.spi_i, spi_r, sa.local), <[u8]>::to_vec);
    [
        Payload::notify(NotifyType::NAT_DETECTION_SOURCE_IP, src),
        Payload::notify(NotifyType::NAT_DETECTION_DESTINATION_IP, nat_hash(sa.spi_i, spi_r, sa.remote)),
    ]
}

//= https://www.rfc-editor.org/rfc/rfc7427#section-4
//# ... each endpoint SHOULD send [SIGNATURE_HASH_ALGORITHMS] in the IKE_SA_INIT messages
/// Our SIGNATURE_HASH_ALGORITHMS notification (RFC 7427 section 4).
fn hash_notify() -> Payload {
    Payload::notify(NotifyType::SIGNATURE_HASH_ALGORITHMS, crate::sign::hash_notify_data())
}

//= https://www.rfc-editor.org/rfc/rfc7383#section-2.3
//# The initiator indicates its support for IKE fragmentation and willingness to use it by
//# including a Notification payload of type IKEV2_FRAGMENTATION_SUPPORTED in the
//# IKE_SA_INIT request message. If the responder also supports this extension and is willing
//# to use it, it includes this notification in the response message.
/// Our IKEV2_FRAGMENTATION_SUPPORTED notification (no data, RFC 7383 section 2.3), unless
/// the connection says `fragmentation = no`.
fn fragmentation_notify(conn: &ConnectionConfig) -> Option<Payload> {
    (conn.fragmentation != Fragmentation::No)
        .then(|| Payload::notify(NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, vec![]))
}

/// Whether the peer's IKE_SA_INIT says IKEV2_FRAGMENTATION_SUPPORTED (its data, if any, is
/// ignored as section 2.3 asks).
fn peer_fragments(payloads: &[Payload]) -> bool {
    find_notify(payloads, NotifyType::IKEV2_FRAGMENTATION_SUPPORTED).is_some()
}

/// The hash algorithms of the peer's SIGNATURE_HASH_ALGORITHMS, if it sent one.
fn peer_hashes(payloads: &[Payload]) -> Vec<u16> {
    find_notify(payloads, NotifyType::SIGNATURE_HASH_ALGORITHMS)
        .map_or_else(Vec::new, |n| crate::sign::parse_hash_notify(&n.data))
}

/// Compares the peer's NAT detection hashes with the addresses we see: (we are behind a NAT,
/// the peer is).
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.23
//# If none of the NAT_DETECTION_SOURCE_IP payload(s) received matches the expected value of the
//# source IP and port found from the IP header of the packet containing the payload, it means that
//# the system sending those payloads is behind a NAT
fn detect(payloads: &[Payload], spi_i: u64, spi_r: u64, local: SocketAddr, remote: SocketAddr) -> (bool, bool) {
    let src: Vec<&[u8]> = payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) if n.kind == NotifyType::NAT_DETECTION_SOURCE_IP => Some(n.data.as_slice()),
            _ => None,
        })
        .collect();
    let dst = find_notify(payloads, NotifyType::NAT_DETECTION_DESTINATION_IP);
    let (Some(dst), false) = (dst, src.is_empty()) else { return (false, false) };
    let local_nat = dst.data != nat_hash(spi_i, spi_r, local);
    let remote_hash = nat_hash(spi_i, spi_r, remote);
    let remote_nat = !src.contains(&remote_hash.as_slice());
    (local_nat, remote_nat)
}

impl Initiator {
    /// A new IKE_SA_INIT for `sa`'s connection; `child` is created in IKE_AUTH.
    pub fn new(sa: &IkeSa, cx: &mut Ctx<'_>, child: Option<ChildConfig>) -> Option<Initiator> {
        let group = sa.conn.proposals.first()?.dh.first().copied()?;
        let mut fake_nat = vec![0u8; 20];
        cx.rng.fill(&mut fake_nat);
        Some(Initiator { ke: cx.key_share(group), ni: nonce(cx.rng), cookie: None, rounds: 0, child, fake_nat })
    }

    fn payloads(&self, sa: &IkeSa) -> Vec<Payload> {
        let mut out = Vec::new();
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.6
        //# The initiator MUST then retry the IKE_SA_INIT with a Notify payload of type COOKIE
        //# containing the responder-supplied cookie data as the first payload
        if let Some(c) = &self.cookie {
            out.push(Payload::notify(NotifyType::COOKIE, c.clone()));
        }
        let proposals: Vec<Proposal> =
            sa.conn.proposals.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 1, &[])).collect();
        out.push(Payload::Sa(proposals));
        out.push(Payload::Ke { group: self.ke.group().id(), data: self.ke.public().to_vec() });
        out.push(Payload::Nonce(self.ni.clone()));
        let fake = sa.conn.encap.then_some(self.fake_nat.as_slice());
        out.extend(nat_notifies(sa, 0, fake));
        out.extend(fragmentation_notify(&sa.conn));
        out.push(hash_notify());
        out
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::IkeInit
    }

    /// The request.
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        if sa.spi_i == 0 {
            sa.spi_i = cx.ids.ike_spi(cx.rng);
        }
        Some((ExchangeType::IkeSaInit, self.payloads(sa)))
    }

    /// The answer. A COOKIE or INVALID_KE_PAYLOAD round sends the request again, first in the
    /// queue, with the same message ID (0).
    fn process_i(
        mut self: Box<Self>,
        sa: &mut IkeSa,
        cx: &mut Ctx<'_>,
        msg: &Message,
        raw: &[u8],
        payloads: &[Payload],
    ) -> Flow {
        if let Some(c) = find_notify(payloads, NotifyType::COOKIE) {
            if self.rounds >= MAX_INIT_ROUNDS || c.data.is_empty() || c.data.len() > 64 {
                return Flow::Down(DownReason::Failed("too many COOKIE rounds".into()));
            }
            self.rounds += 1;
            self.cookie = Some(c.data.clone());
            sa.next_request_id = 0;
            sa.queue.push_front(self);
            return Flow::Done;
        }
        //= https://www.rfc-editor.org/rfc/rfc7296#section-1.2
        //# the responder ... indicate its preferred Diffie-Hellman group in the INVALID_KE_PAYLOAD
        //# Notify payload. ... the initiator MUST retry with the correct group
        if let Some(n) = find_notify(payloads, NotifyType::INVALID_KE_PAYLOAD) {
            let requested =
                <[u8; 2]>::try_from(n.data.as_slice()).ok().map(u16::from_be_bytes).and_then(DhGroup::from_id);
            let ours =
                requested.filter(|g| sa.conn.proposals.iter().any(|p| p.dh.contains(g)) && *g != self.ke.group());
            let Some(g) = ours.filter(|_| self.rounds < MAX_INIT_ROUNDS) else {
                return Flow::Down(DownReason::Failed("INVALID_KE_PAYLOAD for a group we do not offer".into()));
            };
            self.rounds += 1;
            self.ke = cx.key_share(g);
            sa.next_request_id = 0;
            sa.queue.push_front(self);
            return Flow::Done;
        }
        if let Some(e) = error_notify(payloads) {
            return Flow::Down(DownReason::Failed(e.name().to_string()));
        }
        if unsupported_critical(payloads).is_some() || msg.header.spi_r == 0 {
            return Flow::Down(DownReason::Failed("malformed IKE_SA_INIT answer".into()));
        }
        let answer = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.as_slice()) } else { None });
        let Some(algs) = answer.and_then(|a| accept_ike_answer(a, &sa.conn.proposals)) else {
            return Flow::Down(DownReason::Failed("unacceptable IKE proposal in the answer".into()));
        };
        let nr = payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None });
        let ke =
            payloads.iter().find_map(|p| if let Payload::Ke { group, data } = p { Some((*group, data)) } else { None });
        let (Some(nr), Some((group, data))) = (nr, ke) else {
            return Flow::Down(DownReason::Failed("IKE_SA_INIT answer without nonce or KE".into()));
        };
        if group != algs.dh.id() || self.ke.group() != algs.dh {
            return Flow::Down(DownReason::Failed("KE group differs from the chosen one".into()));
        }
        let nat = detect(payloads, sa.spi_i, msg.header.spi_r, sa.local, sa.remote);
        let Initiator { ke, ni, child, .. } = *self;
        let resume = InitResume {
            ni,
            child,
            algs,
            nr,
            spi_r: msg.header.spi_r,
            response: raw.to_vec(),
            nat,
            hashes: peer_hashes(payloads),
            certreq: ike_auth::certreq_hashes(payloads),
            fragmentation: sa.conn.fragmentation != Fragmentation::No && peer_fragments(payloads),
        };
        if cx.cfg.offload_dh {
            // The secret is computed elsewhere; the exchange goes on in `resume_i`.
            cx.dh_jobs.push_back(DhJob::new(DhOwner::Initiator(sa.id), ke, data.clone()));
            sa.suspended = Some(Box::new(resume));
            return Flow::Done;
        }
        let g_ir = ke.agree(data);
        resume_i(sa, resume, g_ir)
    }

    fn failed(self: Box<Self>, _sa: &mut IkeSa, _cx: &mut Ctx<'_>) -> Flow {
        Flow::Down(DownReason::Failed("malformed answer".into()))
    }
}

/// An initiator's IKE_SA_INIT after the answer was checked, waiting for g^ir.
pub struct InitResume {
    ni: Vec<u8>,
    child: Option<ChildConfig>,
    algs: IkeAlgorithms,
    nr: Vec<u8>,
    spi_r: u64,
    response: Vec<u8>,
    nat: (bool, bool),
    hashes: Vec<u16>,
    certreq: Vec<[u8; 20]>,
    fragmentation: bool,
}

impl AwaitingSecret for InitResume {
    fn resume(self: Box<Self>, sa: &mut IkeSa, g_ir: Result<Zeroizing<Vec<u8>>, KeError>) -> Flow {
        resume_i(sa, *self, g_ir)
    }
}

impl core::fmt::Debug for InitResume {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InitResume").field("spi_r", &format_args!("{:016x}", self.spi_r)).finish_non_exhaustive()
    }
}

/// Initiator: finishes IKE_SA_INIT with the shared secret (or its failure): keys, NAT
/// traversal, then IKE_AUTH.
pub fn resume_i(sa: &mut IkeSa, r: InitResume, g_ir: Result<Zeroizing<Vec<u8>>, KeError>) -> Flow {
    let Ok(g_ir) = g_ir else {
        return Flow::Down(DownReason::Failed("invalid KE payload in the answer".into()));
    };
    let algs = r.algs;
    sa.spi_r = r.spi_r;
    let seed = skeyseed(algs.prf, &r.ni, &r.nr, &g_ir);
    sa.keys = Some(IkeSaKeys::derive(algs.prf, algs.encr, algs.integ, &seed, (&r.ni, &r.nr), (sa.spi_i, sa.spi_r)));
    sa.algs = Some(algs);
    sa.ni = r.ni;
    sa.nr = r.nr;
    sa.init_response = r.response;
    sa.peer_hashes = r.hashes;
    sa.peer_certreq = r.certreq;
    sa.fragmentation = r.fragmentation;
    let (local_nat, remote_nat) = r.nat;
    sa.nat_local = local_nat || sa.conn.encap;
    sa.nat_remote = remote_nat;
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.23
    //# ... the initiator ... MUST use UDP port 4500 for all subsequent messages once a NAT is
    //# detected
    if sa.nat() && sa.local.port() == 500 {
        sa.local.set_port(4500);
        if sa.remote.port() == 500 {
            sa.remote.set_port(4500);
        }
    }
    sa.state = IkeState::Authenticating;
    sa.queue.push_front(Box::new(ike_auth::Initiator::new(r.child)));
    Flow::Done
}

/// What the endpoint keeps for the responder's decisions.
pub struct ResponderLimits<'a> {
    /// The cookie secret.
    pub cookies: &'a CookieJar,
    /// Half-open IKE SAs, all peers.
    pub half_open_total: usize,
    /// Half-open IKE SAs from this peer's address.
    pub half_open_peer: usize,
}

fn plain_reply(spi_i: u64, payloads: &[Payload]) -> Vec<u8> {
    let header = Header {
        spi_i,
        spi_r: 0,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange: ExchangeType::IkeSaInit,
        flags: FLAG_RESPONSE,
        message_id: 0,
        length: 0,
    };
    Message::emit_plain(header, payloads)
}

fn addr_matches(list: &[std::net::IpAddr], a: std::net::IpAddr) -> bool {
    list.is_empty() || list.contains(&a)
}

/// A responder's IKE_SA_INIT that passed every check, waiting for g^ir (the [`DhJob`] that
/// [`prepare_r`] returned with it).
pub struct PreparedInit {
    id: IkeSaId,
    conn: Arc<ConnectionConfig>,
    number: u8,
    algs: IkeAlgorithms,
    ni: Vec<u8>,
    spi_i: u64,
    local: SocketAddr,
    remote: SocketAddr,
    request: Vec<u8>,
    nat: (bool, bool),
    hashes: Vec<u16>,
    certreq: Option<Payload>,
    fragmentation: bool,
}

impl core::fmt::Debug for PreparedInit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedInit").field("id", &self.id).field("remote", &self.remote).finish_non_exhaustive()
    }
}

impl PreparedInit {
    /// The handle the IKE SA will have.
    pub fn id(&self) -> IkeSaId {
        self.id
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// SPIi.
    pub fn spi_i(&self) -> u64 {
        self.spi_i
    }
}

/// Responder, first half: every check of an IKE_SA_INIT request (limits, COOKIE, proposals, KE
/// group and value). Answers errors and COOKIE requests through `cx`, and counts what it drops
/// (`cx.diag`); otherwise returns the request's state and the Diffie-Hellman computation still
/// to do. No IKE SA exists before this returns `Some`: a refused request leaves no state.
#[allow(clippy::too_many_arguments)]
pub fn prepare_r(
    cx: &mut Ctx<'_>,
    conns: &[Arc<ConnectionConfig>],
    limits: ResponderLimits<'_>,
    local: SocketAddr,
    remote: SocketAddr,
    raw: &[u8],
    msg: &Message,
) -> Option<(PreparedInit, DhJob)> {
    let reply = |cx: &mut Ctx<'_>, p: Vec<Payload>| {
        cx.transmits.push_back(Transmit { from: local, to: remote, bytes: plain_reply(msg.header.spi_i, &p) });
        None
    };
    let malformed = |cx: &mut Ctx<'_>, what: &'static str| {
        cx.diag.dropped(Ignored::MalformedInit, remote, || what.to_string());
        None
    };
    if msg.header.message_id != 0 {
        return malformed(cx, "IKE_SA_INIT request with a message ID other than 0");
    }
    if msg.encrypted.is_some() {
        return malformed(cx, "IKE_SA_INIT request with an Encrypted payload");
    }
    if msg.header.spi_i == 0 {
        return malformed(cx, "IKE_SA_INIT request with SPIi 0");
    }
    let payloads = &msg.payloads;
    if let Some(kind) = unsupported_critical(payloads) {
        return reply(cx, vec![Payload::notify(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![kind])]);
    }
    let ni = payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None });
    let offered = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.clone()) } else { None });
    let ke = payloads
        .iter()
        .find_map(|p| if let Payload::Ke { group, data } = p { Some((*group, data.clone())) } else { None });
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1
    //# To avoid a DoS attack using forged messages, this status may only be returned for and in
    //# an encrypted packet if the Message ID and cryptographic checksum were valid.
    // (INVALID_SYNTAX.) An IKE_SA_INIT request without its SA, KE or Nonce payload is dropped.
    let (Some(ni), Some(offered), Some((ke_group, ke_data))) = (ni, offered, ke) else {
        return malformed(cx, "IKE_SA_INIT request without an SA, KE or Nonce payload");
    };
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.6
    //# When one of the endpoints receives a message ... it MAY respond with a COOKIE
    // Cookies are asked for once half-open SAs reach a threshold (all peers, or this address);
    // the cookie must come first. A threshold of 0 is off.
    let reached = |n: usize, threshold: usize| threshold != 0 && n >= threshold;
    if reached(limits.half_open_total, cx.cfg.cookie_threshold)
        || reached(limits.half_open_peer, cx.cfg.cookie_threshold_ip)
    {
        let valid = match payloads.first() {
            Some(Payload::Notify(n)) if n.kind == NotifyType::COOKIE => {
                limits.cookies.verify(&n.data, &ni, remote.ip(), msg.header.spi_i)
            }
            _ => false,
        };
        if !valid {
            let c = limits.cookies.make(&ni, remote.ip(), msg.header.spi_i);
            return reply(cx, vec![Payload::notify(NotifyType::COOKIE, c)]);
        }
    }
    if reached(limits.half_open_peer, cx.cfg.block_threshold) {
        let (n, t) = (limits.half_open_peer, cx.cfg.block_threshold);
        cx.diag.dropped(Ignored::BlockedPeer, remote, || {
            format!("{n} half-open IKE SAs from this address, block_threshold = {t}")
        });
        return None;
    }
    let matching: Vec<&Arc<ConnectionConfig>> = conns
        .iter()
        .filter(|c| addr_matches(&c.local_addrs, local.ip()) && addr_matches(&c.remote_addrs, remote.ip()))
        .collect();
    let chosen = matching.iter().find_map(|c| select_ike(&offered, &c.proposals).map(|s| (Arc::clone(c), s)));
    let Some((conn, (number, mut algs))) = chosen else {
        cx.diag.note(|| Diagnostic::NoProposalChosen {
            remote,
            protocol: "IKE",
            offered: describe_offer(&offered),
            configured: if matching.is_empty() {
                format!("no connection for {} -> {}", remote.ip(), local.ip())
            } else {
                matching
                    .iter()
                    .map(|c| format!("{}: {}", c.name, describe(&c.proposals)))
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        });
        return reply(cx, vec![Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![])]);
    };
    // Prefer the group the initiator guessed when the chosen proposal allows it: it saves a round.
    if let Some(g) = DhGroup::from_id(ke_group)
        && g != algs.dh
        && offered.iter().any(|p| {
            p.number == number && p.transforms.iter().any(|t| t.kind == transform_type::DH && t.id == ke_group)
        })
        && conn.proposals.iter().any(|p| p.dh.contains(&g) && p.encr.contains(&algs.encr) && p.prf.contains(&algs.prf))
    {
        algs.dh = g;
    }
    if ke_group != algs.dh.id() {
        return reply(cx, vec![Payload::notify(NotifyType::INVALID_KE_PAYLOAD, algs.dh.id().to_be_bytes().to_vec())]);
    }
    //= https://www.rfc-editor.org/rfc/rfc5903#section-7
    //# the recipient MUST check that the point is on the curve
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1
    //# NO_PROPOSAL_CHOSEN ... None of the proposed crypto suites was acceptable.
    // A key exchange value that fails its group's checks (length, on the curve, range) makes
    // the chosen suite unusable: NO_PROPOSAL_CHOSEN in the clear, as strongSwan answers
    // ("applying DH public value failed"), never INVALID_SYNTAX outside an encrypted packet.
    if let Err(e) = algs.dh.validate_public(&ke_data) {
        return refuse_ke(cx, local, remote, msg.header.spi_i, algs.dh, e);
    }
    let id = cx.ids.ike();
    // Offloading: a share that is not ready is made by the job, on a worker.
    let share = if cx.cfg.offload_dh { cx.key_share_ready(algs.dh) } else { Some(cx.key_share(algs.dh)) };
    let nat = detect(payloads, msg.header.spi_i, 0, local, remote);
    //= https://www.rfc-editor.org/rfc/rfc7296#section-1.2
    //# HDR, SAr1, KEr, Nr, [CERTREQ]
    // The CAs of every connection this peer might end up on (the connection is picked by its
    // identity in IKE_AUTH).
    let certreq = ike_auth::certreq_payload(matching.iter().map(|c| c.as_ref()));
    let prepared = PreparedInit {
        id,
        conn,
        number,
        algs,
        ni,
        spi_i: msg.header.spi_i,
        local,
        remote,
        request: raw.to_vec(),
        nat,
        hashes: peer_hashes(payloads),
        certreq,
        fragmentation: peer_fragments(payloads),
    };
    let job = match share {
        Some(share) => DhJob::new(DhOwner::Responder(id), share, ke_data),
        None => DhJob::with_new_share(DhOwner::Responder(id), algs.dh, ke_data),
    };
    Some((prepared, job))
}

/// Answers an IKE_SA_INIT whose key exchange value its group refuses: NO_PROPOSAL_CHOSEN in
/// the clear (see [`prepare_r`]), with the reason for the log. No state is kept.
fn refuse_ke<T>(
    cx: &mut Ctx<'_>,
    local: SocketAddr,
    remote: SocketAddr,
    spi_i: u64,
    group: DhGroup,
    e: KeError,
) -> Option<T> {
    cx.diag.note(|| Diagnostic::KeRefused { remote, group: group.name(), reason: e.to_string() });
    let bytes = plain_reply(spi_i, &[Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![])]);
    cx.transmits.push_back(Transmit { from: local, to: remote, bytes });
    None
}

/// Responder, second half: with g^ir known, makes the half-open IKE SA and sends the answer.
/// `None` when the computation failed (a Curve25519 value of small order, whose shared secret
/// is all zeros): answered with NO_PROPOSAL_CHOSEN like any refused key exchange value, no
/// IKE SA made.
pub fn finish_r(
    cx: &mut Ctx<'_>,
    p: PreparedInit,
    share: KeyShare,
    g_ir: Result<Zeroizing<Vec<u8>>, KeError>,
) -> Option<IkeSa> {
    let g_ir = match g_ir {
        Ok(s) => s,
        Err(e) => return refuse_ke(cx, p.local, p.remote, p.spi_i, p.algs.dh, e),
    };
    let (conn, algs) = (p.conn, p.algs);
    let mut sa = IkeSa::new(p.id, Arc::clone(&conn), false, p.local, p.remote, cx.now);
    sa.spi_i = p.spi_i;
    sa.spi_r = cx.ids.ike_spi(cx.rng);
    let nr = nonce(cx.rng);
    let seed = skeyseed(algs.prf, &p.ni, &nr, &g_ir);
    sa.keys = Some(IkeSaKeys::derive(algs.prf, algs.encr, algs.integ, &seed, (&p.ni, &nr), (sa.spi_i, sa.spi_r)));
    sa.algs = Some(algs);
    sa.init_request = p.request;
    let (local_nat, remote_nat) = p.nat;
    sa.nat_local = local_nat || conn.encap;
    sa.nat_remote = remote_nat;
    let mut fake = [0u8; 20];
    cx.rng.fill(&mut fake);
    let mut answer = vec![
        Payload::Sa(vec![ike_answer(p.number, &algs, &[])]),
        Payload::Ke { group: algs.dh.id(), data: share.public().to_vec() },
        Payload::Nonce(nr.clone()),
    ];
    answer.extend(nat_notifies(&sa, sa.spi_r, conn.encap.then_some(&fake[..])));
    answer.extend(p.certreq);
    if p.fragmentation {
        answer.extend(fragmentation_notify(&conn));
        sa.fragmentation = conn.fragmentation != Fragmentation::No;
    }
    answer.push(hash_notify());
    sa.peer_hashes = p.hashes;
    sa.ni = p.ni;
    sa.nr = nr;
    let header = Header {
        spi_i: sa.spi_i,
        spi_r: sa.spi_r,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange: ExchangeType::IkeSaInit,
        flags: FLAG_RESPONSE,
        message_id: 0,
        length: 0,
    };
    let bytes = Message::emit_plain(header, &answer);
    sa.init_response = bytes.clone();
    sa.last_response = Some((0, vec![bytes.clone()]));
    sa.expected_request_id = 1;
    sa.half_open_until = Some(cx.now + cx.cfg.half_open_timeout);
    sa.last_sent = cx.now;
    cx.transmits.push_back(Transmit { from: p.local, to: p.remote, bytes });
    cx.exchanges.responded(ExchangeType::IkeSaInit);
    Some(sa)
}
