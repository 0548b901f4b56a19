//! Creating a CHILD_SA (RFC 7296 sections 1.3.1, 2.9, 2.17): the CREATE_CHILD_SA exchange, and
//! the CHILD_SA parts shared with IKE_AUTH and the rekey (proposal, traffic selectors with
//! narrowing, transport mode, optional PFS key exchange), for ESP and AH children alike
//! (`ChildConfig::proposals`). An AH child is never negotiated on an IKE SA that uses NAT
//! traversal: as initiator it is not proposed, as responder it is refused.

use rampart_sa::{Mode, Protocol, TrafficSelector};
use zeroize::Zeroizing;

use crate::config::ChildConfig;
use crate::crypto::{DhGroup, KeyShare};
use crate::diagnostic::Diagnostic;
use crate::event::Event;
use crate::message::{ExchangeType, Message, NotifyType, Payload, ProtocolId, error_notify, find_notify};
use crate::proposal::{ChildAlgorithms, child_answer, describe_offer};
use crate::state::{ChildParams, Ctx, Flow, IkeSa, Response, Task, TaskKind, nonce};
use crate::ts;

/// The CHILD_SA payloads of a request: \[USE_TRANSPORT_MODE\], SA, \[Ni, \[KE\]\], TSi, TSr.
pub fn request_payloads(
    cfg: &ChildConfig,
    spi_in: u32,
    ni: Option<&[u8]>,
    ke: Option<&KeyShare>,
    local_ts: &[TrafficSelector],
    remote_ts: &[TrafficSelector],
) -> Vec<Payload> {
    let with_dh = ni.is_some();
    let mut out = Vec::new();
    if cfg.mode == Mode::Transport {
        out.push(Payload::notify(NotifyType::USE_TRANSPORT_MODE, vec![]));
    }
    out.push(Payload::Sa(cfg.proposals().to_wire(spi_in, with_dh)));
    if let Some(n) = ni {
        out.push(Payload::Nonce(n.to_vec()));
    }
    if let Some(k) = ke {
        out.push(Payload::Ke { group: k.group().id(), data: k.public().to_vec() });
    }
    out.push(Payload::TsI(local_ts.to_vec()));
    out.push(Payload::TsR(remote_ts.to_vec()));
    out
}

/// What the responder chose for a CHILD_SA request.
pub struct Chosen {
    /// Index of the child configuration.
    pub cfg_index: usize,
    /// Proposal number to echo.
    pub number: u8,
    /// The peer's SPI.
    pub peer_spi: u32,
    /// Algorithms.
    pub algs: ChildAlgorithms,
    /// Mode.
    pub mode: Mode,
    /// Narrowed TSi (the initiator's side: our remote side).
    pub tsi: Vec<TrafficSelector>,
    /// Narrowed TSr (our side).
    pub tsr: Vec<TrafficSelector>,
}

fn list<'a>(
    payloads: &'a [Payload],
    f: impl Fn(&'a Payload) -> Option<&'a Vec<TrafficSelector>>,
) -> Option<&'a [TrafficSelector]> {
    payloads.iter().find_map(f).map(Vec::as_slice)
}

/// Why the responder chose no child configuration for a CHILD_SA request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The error notify to answer with.
    pub notify: NotifyType,
    /// AH children whose selectors and proposals fit the request but which cannot run over
    /// the IKE SA's NAT traversal (their names).
    pub ah_over_nat: Vec<String>,
}

impl From<NotifyType> for Refusal {
    fn from(notify: NotifyType) -> Refusal {
        Refusal { notify, ah_over_nat: Vec::new() }
    }
}

/// Responder: picks the child configuration whose selectors and proposals fit the request.
/// `candidates` restricts the search (a rekey keeps the child's configuration); `nat` says
/// that the IKE SA uses NAT traversal, which rules AH children out.
pub fn choose(
    children: &[ChildConfig],
    candidates: &[usize],
    payloads: &[Payload],
    with_dh: bool,
    nat: bool,
) -> Result<Chosen, Refusal> {
    let offered = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.as_slice()) } else { None });
    let tsi = list(payloads, |p| if let Payload::TsI(t) = p { Some(t) } else { None });
    let tsr = list(payloads, |p| if let Payload::TsR(t) = p { Some(t) } else { None });
    let (Some(offered), Some(tsi), Some(tsr)) = (offered, tsi, tsr) else {
        return Err(NotifyType::INVALID_SYNTAX.into());
    };
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.1
    //# SPI Size (1 octet) - For an initial IKE SA negotiation, this field
    //# MUST be zero; the SPI is obtained from the outer header.  During
    //# subsequent negotiations, it is equal to the size, in octets, of the
    //# SPI of the corresponding protocol (8 for IKE, 4 for ESP and AH).
    //= https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1
    //# INVALID_SYNTAX ... Indicates the IKE message that was received was invalid
    //# because some type, length, or value was out of range
    // The request is authenticated (it came inside SK), so the answer may say INVALID_SYNTAX.
    if offered.iter().any(|p| matches!(p.protocol, ProtocolId::Esp | ProtocolId::Ah) && p.spi.len() != 4) {
        return Err(NotifyType::INVALID_SYNTAX.into());
    }
    let wants_transport = find_notify(payloads, NotifyType::USE_TRANSPORT_MODE).is_some();
    let mut failure = NotifyType::TS_UNACCEPTABLE;
    let mut ah_over_nat = Vec::new();
    for &i in candidates {
        let Some(cfg) = children.get(i) else { continue };
        let n_tsi = ts::narrow(tsi, &cfg.remote_ts);
        let n_tsr = ts::narrow(tsr, &cfg.local_ts);
        if n_tsi.is_empty() || n_tsr.is_empty() {
            continue;
        }
        //= https://www.rfc-editor.org/rfc/rfc7296#section-1.3.1
        //# If the responder is willing to use transport mode ... it MUST include the notification
        // A child configured for transport mode is not offered tunnel mode instead.
        let mode = match (cfg.mode, wants_transport) {
            (Mode::Transport, true) => Mode::Transport,
            (Mode::Transport, false) => {
                failure = NotifyType::NO_PROPOSAL_CHOSEN;
                continue;
            }
            (Mode::Tunnel, _) => Mode::Tunnel,
        };
        //= https://www.rfc-editor.org/rfc/rfc7296#section-3.3.1
        //# Protocol ID (1 octet) - Specifies the IPsec protocol identifier for
        //# the current negotiation.
        // An ESP child selects only ESP proposals and an AH child only AH ones: an offer of the
        // other protocol alone is NO_PROPOSAL_CHOSEN.
        match cfg.proposals().select(offered, with_dh) {
            //= https://www.rfc-editor.org/rfc/rfc3948#section-1
            //# Because the protection of the outer IP addresses in IPsec AH is
            //# inherently incompatible with NAT, the IPsec AH was left out of the
            //# scope of this protocol specification.
            Some(_) if nat && cfg.proposals().protocol() == Protocol::Ah => {
                ah_over_nat.push(cfg.name.clone());
                failure = NotifyType::NO_PROPOSAL_CHOSEN;
            }
            Some((number, peer_spi, algs)) => {
                return Ok(Chosen { cfg_index: i, number, peer_spi, algs, mode, tsi: n_tsi, tsr: n_tsr });
            }
            None => failure = NotifyType::NO_PROPOSAL_CHOSEN,
        }
    }
    Err(Refusal { notify: failure, ah_over_nat })
}

/// Responder: the answer's CHILD_SA payloads.
pub fn answer_payloads(c: &Chosen, spi_in: u32, nr: Option<&[u8]>, ke: Option<&KeyShare>) -> Vec<Payload> {
    let mut out = Vec::new();
    if c.mode == Mode::Transport {
        out.push(Payload::notify(NotifyType::USE_TRANSPORT_MODE, vec![]));
    }
    out.push(Payload::Sa(vec![child_answer(c.number, &c.algs, spi_in)]));
    if let Some(n) = nr {
        out.push(Payload::Nonce(n.to_vec()));
    }
    if let Some(k) = ke {
        out.push(Payload::Ke { group: k.group().id(), data: k.public().to_vec() });
    }
    out.push(Payload::TsI(c.tsi.clone()));
    out.push(Payload::TsR(c.tsr.clone()));
    out
}

/// Initiator: what the responder's answer established.
pub struct Accepted {
    /// The peer's SPI.
    pub peer_spi: u32,
    /// Algorithms.
    pub algs: ChildAlgorithms,
    /// Mode.
    pub mode: Mode,
    /// Our (narrowed) selectors.
    pub local_ts: Vec<TrafficSelector>,
    /// The peer's (narrowed) selectors.
    pub remote_ts: Vec<TrafficSelector>,
}

/// Initiator: checks the answer against what we proposed.
pub fn accept(
    cfg: &ChildConfig,
    payloads: &[Payload],
    proposed_local: &[TrafficSelector],
    proposed_remote: &[TrafficSelector],
    with_dh: bool,
) -> Result<Accepted, NotifyType> {
    if let Some(e) = error_notify(payloads) {
        return Err(e);
    }
    let answer = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.as_slice()) } else { None });
    let (peer_spi, algs) =
        answer.and_then(|a| cfg.proposals().accept(a, with_dh)).ok_or(NotifyType::NO_PROPOSAL_CHOSEN)?;
    let tsi = list(payloads, |p| if let Payload::TsI(t) = p { Some(t) } else { None }).unwrap_or(&[]);
    let tsr = list(payloads, |p| if let Payload::TsR(t) = p { Some(t) } else { None }).unwrap_or(&[]);
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.9
    //# the responder is allowed to narrow the choices by selecting a subset of the traffic
    // A "narrowing" that widens is refused.
    if !ts::all_within(tsi, proposed_local) || !ts::all_within(tsr, proposed_remote) {
        return Err(NotifyType::TS_UNACCEPTABLE);
    }
    let transport = find_notify(payloads, NotifyType::USE_TRANSPORT_MODE).is_some();
    let mode = match (cfg.mode, transport) {
        (Mode::Transport, true) => Mode::Transport,
        (Mode::Tunnel, false) => Mode::Tunnel,
        _ => return Err(NotifyType::NO_PROPOSAL_CHOSEN),
    };
    Ok(Accepted { peer_spi, algs, mode, local_ts: tsi.to_vec(), remote_ts: tsr.to_vec() })
}

/// A KE payload's group number and public value.
pub type KeRef<'a> = (u16, &'a [u8]);

/// The nonce and, for PFS, the KE payload of a CREATE_CHILD_SA message.
pub fn nonce_and_ke(payloads: &[Payload]) -> (Option<&[u8]>, Option<KeRef<'_>>) {
    let n = payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.as_slice()) } else { None });
    let ke = payloads
        .iter()
        .find_map(|p| if let Payload::Ke { group, data } = p { Some((*group, data.as_slice())) } else { None });
    (n, ke)
}

/// The group an INVALID_KE_PAYLOAD answer asks for, if our proposals offer it for PFS.
//= https://www.rfc-editor.org/rfc/rfc7296#section-1.3
//# ... indicate its preferred Diffie-Hellman group in the INVALID_KE_PAYLOAD Notify payload ...
//# the initiator ... retry with the correct group
pub fn requested_group(cfg: &ChildConfig, payloads: &[Payload], current: Option<DhGroup>) -> Option<DhGroup> {
    let n = find_notify(payloads, NotifyType::INVALID_KE_PAYLOAD)?;
    let g = DhGroup::from_id(u16::from_be_bytes(<[u8; 2]>::try_from(n.data.as_slice()).ok()?))?;
    (Some(g) != current && cfg.proposals().groups().contains(&g)).then_some(g)
}

/// Initiator state of a CREATE_CHILD_SA for a new CHILD_SA.
#[derive(Debug)]
pub struct Initiator {
    cfg: ChildConfig,
    group: Option<DhGroup>,
    retried: bool,
    state: Option<(u32, Vec<u8>, Option<KeyShare>)>,
}

impl Initiator {
    /// Creates a CHILD_SA from `cfg`.
    pub fn new(cfg: ChildConfig) -> Initiator {
        let group = cfg.proposals().pfs_group();
        Initiator { cfg, group, retried: false, state: None }
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::ChildCreate
    }

    /// The request.
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        if refuse_ah_over_nat(sa, cx, &self.cfg) {
            return None;
        }
        let spi_in = cx.ids.child_spi(cx.rng);
        let ni = nonce(cx.rng);
        let ke = self.group.map(|g| cx.key_share(g));
        let p = request_payloads(&self.cfg, spi_in, Some(&ni), ke.as_ref(), &self.cfg.local_ts, &self.cfg.remote_ts);
        self.state = Some((spi_in, ni, ke));
        Some((ExchangeType::CreateChildSa, p))
    }

    /// The answer.
    fn process_i(
        self: Box<Self>,
        sa: &mut IkeSa,
        cx: &mut Ctx<'_>,
        _msg: &Message,
        _raw: &[u8],
        payloads: &[Payload],
    ) -> Flow {
        let Initiator { cfg, group, retried, state } = *self;
        let Some((spi_in, ni, ke)) = state else { return Flow::Done };
        let fail = |sa: &mut IkeSa, cx: &mut Ctx<'_>, reason| {
            cx.ids.child_spis.remove(&spi_in);
            cx.events.push_back(Event::ChildSaFailed { ike: sa.id, name: cfg.name.clone(), reason });
            Flow::Done
        };
        if !retried && let Some(g) = requested_group(&cfg, payloads, group) {
            cx.ids.child_spis.remove(&spi_in);
            let retry = Initiator { cfg, group: Some(g), retried: true, state: None };
            sa.queue.push_front(Box::new(retry));
            return Flow::Done;
        }
        let acc = match accept(&cfg, payloads, &cfg.local_ts, &cfg.remote_ts, true) {
            Ok(a) => a,
            Err(e) => return fail(sa, cx, e),
        };
        let (nr, peer_ke) = nonce_and_ke(payloads);
        let Some(nr) = nr else { return fail(sa, cx, NotifyType::INVALID_SYNTAX) };
        let g_ir = match (acc.algs.dh, &ke, peer_ke) {
            (None, _, _) => None,
            (Some(g), Some(k), Some((pg, data))) if pg == g.id() && k.group() == g => match k.agree(data) {
                Ok(s) => Some(s),
                Err(_) => return fail(sa, cx, NotifyType::INVALID_SYNTAX),
            },
            _ => return fail(sa, cx, NotifyType::INVALID_KE_PAYLOAD),
        };
        if sa.auth.is_none() {
            return fail(sa, cx, NotifyType::AUTHENTICATION_FAILED);
        }
        let params = ChildParams {
            cfg: &cfg,
            spi_in,
            spi_out: acc.peer_spi,
            algs: acc.algs,
            mode: acc.mode,
            local_ts: acc.local_ts,
            remote_ts: acc.remote_ts,
            ni: &ni,
            nr,
            g_ir: g_ir.as_deref().map(|v| v.as_slice()),
            we_initiated: true,
        };
        if sa.add_child(cx, params).is_none() {
            return fail(sa, cx, NotifyType::NO_PROPOSAL_CHOSEN);
        }
        Flow::Done
    }
}

/// Responder: a new CHILD_SA.
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    let conn = sa.conn.clone();
    let all: Vec<usize> = (0..conn.children.len()).collect();
    let chosen = match choose(&conn.children, &all, payloads, true, sa.nat()) {
        Ok(c) => c,
        Err(r) => {
            note_refusal(sa, cx, payloads, &r);
            return Response::Payloads(vec![Payload::notify(r.notify, vec![])]);
        }
    };
    let cfg = &conn.children[chosen.cfg_index];
    let ours = match ChildAnswer::new(sa, cx, payloads, &chosen) {
        Ok(a) => a,
        Err(p) => return Response::Payloads(p),
    };
    match sa.add_child(cx, ours.params(cfg, &chosen)) {
        Some(_) => Response::Payloads(ours.payloads(&chosen)),
        None => Response::Payloads(vec![Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![])]),
    }
}

/// The responder's part of a CHILD_SA it accepts (new or rekey): the initiator's nonce, ours,
/// our inbound SPI and, with PFS, our key share and the shared secret.
pub struct ChildAnswer<'p> {
    ni: &'p [u8],
    nr: Vec<u8>,
    spi_in: u32,
    ke: Option<KeyShare>,
    g_ir: Option<Zeroizing<Vec<u8>>>,
}

impl<'p> ChildAnswer<'p> {
    /// Reads the request's nonce and KE, makes ours and allocates our SPI; `Err` is the answer
    /// to send instead (INVALID_SYNTAX, INVALID_KE_PAYLOAD with our group, TEMPORARY_FAILURE on
    /// an IKE SA without authentication).
    pub fn new(
        sa: &IkeSa,
        cx: &mut Ctx<'_>,
        payloads: &'p [Payload],
        chosen: &Chosen,
    ) -> Result<ChildAnswer<'p>, Vec<Payload>> {
        let (ni, peer_ke) = nonce_and_ke(payloads);
        let Some(ni) = ni else { return Err(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]) };
        let (ke, g_ir) = match (chosen.algs.dh, peer_ke) {
            (None, _) => (None, None),
            (Some(g), Some((pg, data))) if pg == g.id() => {
                //= https://www.rfc-editor.org/rfc/rfc7296#section-3.10.1
                //# INVALID_SYNTAX ... Indicates the IKE message that was received was invalid
                //# because some type, length, or value was out of range ... this status may only
                //# be returned for and in an encrypted packet if the Message ID and
                //# cryptographic checksum were valid.
                // Inside SK the malformed value gets INVALID_SYNTAX (the request is
                // authenticated, the value is out of range for its group); the IKE SA stays.
                // The value is checked before a key share is spent on it.
                if let Err(e) = g.validate_public(data) {
                    cx.diag.note(|| Diagnostic::KeRefused {
                        remote: sa.remote,
                        group: g.name(),
                        reason: e.to_string(),
                    });
                    return Err(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]);
                }
                let k = cx.key_share(g);
                match k.agree(data) {
                    Ok(s) => (Some(k), Some(s)),
                    Err(e) => {
                        cx.diag.note(|| Diagnostic::KeRefused {
                            remote: sa.remote,
                            group: g.name(),
                            reason: e.to_string(),
                        });
                        return Err(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]);
                    }
                }
            }
            //= https://www.rfc-editor.org/rfc/rfc7296#section-1.3
            //# If ... the responder selects a proposal using a different Diffie-Hellman group ... the
            //# responder MUST reject the request and indicate its preferred Diffie-Hellman group in
            //# the INVALID_KE_PAYLOAD Notify payload.
            (Some(g), _) => {
                return Err(vec![Payload::notify(NotifyType::INVALID_KE_PAYLOAD, g.id().to_be_bytes().to_vec())]);
            }
        };
        let nr = nonce(cx.rng);
        let spi_in = cx.ids.child_spi(cx.rng);
        if sa.auth.is_none() {
            return Err(vec![Payload::notify(NotifyType::TEMPORARY_FAILURE, vec![])]);
        }
        Ok(ChildAnswer { ni, nr, spi_in, ke, g_ir })
    }

    /// What the CHILD_SA is made from.
    pub fn params<'a>(&'a self, cfg: &'a ChildConfig, chosen: &Chosen) -> ChildParams<'a> {
        ChildParams {
            cfg,
            spi_in: self.spi_in,
            spi_out: chosen.peer_spi,
            algs: chosen.algs,
            mode: chosen.mode,
            local_ts: chosen.tsr.clone(),
            remote_ts: chosen.tsi.clone(),
            ni: self.ni,
            nr: &self.nr,
            g_ir: self.g_ir.as_deref().map(|v| v.as_slice()),
            we_initiated: false,
        }
    }

    /// Our nonce (the rekey compares it with the initiator's).
    pub fn nr(&self) -> &[u8] {
        &self.nr
    }

    /// The initiator's nonce.
    pub fn ni(&self) -> &[u8] {
        self.ni
    }

    /// Our inbound SPI.
    pub fn spi_in(&self) -> u32 {
        self.spi_in
    }

    /// The answer's CHILD_SA payloads.
    pub fn payloads(&self, chosen: &Chosen) -> Vec<Payload> {
        answer_payloads(chosen, self.spi_in, Some(&self.nr), self.ke.as_ref())
    }
}

/// Queues the diagnostics of a CHILD_SA request the responder refused: for
/// NO_PROPOSAL_CHOSEN what the peer offered and what the connection's children have, and for
/// each AH child that fit but cannot run over the NAT, why.
pub fn note_refusal(sa: &IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload], r: &Refusal) {
    for child in &r.ah_over_nat {
        cx.diag.note(|| Diagnostic::AhOverNat {
            remote: sa.remote,
            connection: sa.conn.name.clone(),
            child: child.clone(),
            initiator: false,
            nat: sa.nat_side(),
        });
    }
    if r.notify != NotifyType::NO_PROPOSAL_CHOSEN {
        return;
    }
    let offered = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.as_slice()) } else { None });
    let protocol = match offered.and_then(|o| o.first()).map(|p| p.protocol) {
        Some(ProtocolId::Ah) => "AH",
        _ => "ESP",
    };
    cx.diag.note(|| Diagnostic::NoProposalChosen {
        remote: sa.remote,
        protocol,
        offered: describe_offer(offered.unwrap_or(&[])),
        configured: sa
            .conn
            .children
            .iter()
            .map(|c| format!("{}/{}: {}", sa.conn.name, c.name, c.proposals().describe()))
            .collect::<Vec<_>>()
            .join("; "),
    });
}

/// Initiator: whether `cfg` is an AH child that this IKE SA cannot carry because it uses NAT
/// traversal; if so the CHILD_SA fails here (event and diagnostic) and is never proposed.
//= https://www.rfc-editor.org/rfc/rfc3948#section-1
//# Because the protection of the outer IP addresses in IPsec AH is
//# inherently incompatible with NAT, the IPsec AH was left out of the
//# scope of this protocol specification.
pub fn refuse_ah_over_nat(sa: &IkeSa, cx: &mut Ctx<'_>, cfg: &ChildConfig) -> bool {
    if cfg.proposals().protocol() != Protocol::Ah || !sa.nat() {
        return false;
    }
    cx.diag.note(|| Diagnostic::AhOverNat {
        remote: sa.remote,
        connection: sa.conn.name.clone(),
        child: cfg.name.clone(),
        initiator: true,
        nat: sa.nat_side(),
    });
    cx.events.push_back(Event::ChildSaFailed {
        ike: sa.id,
        name: cfg.name.clone(),
        reason: NotifyType::NO_PROPOSAL_CHOSEN,
    });
    true
}
