//! IKE_AUTH (RFC 7296 sections 1.2, 2.15): identities, certificates (CERT, CERTREQ), AUTH
//! payloads through an [`Authenticator`] per side, the connection the responder picks for the
//! initiator's identity, and the first CHILD_SA with traffic selector narrowing.
//!
//! A CHILD_SA is only made after the peer's AUTH verified: the [`crate::auth::AuthVerified`]
//! proof, stored in the IKE SA, is what `IkeSa::make_child` asks for. A responder's signature
//! work (the peer's chain and AUTH, our signature) may run elsewhere ([`AuthJob`]); the answer
//! then waits in [`IkeSa::auth_pending`] and is finished by [`finish_r`].

use std::sync::Arc;

use crate::auth::{
    AuthError, AuthInput, AuthVerified, Authenticator, PeerAuth, PskAuthenticator, SignatureAuthenticator, SignedOctets,
};
use crate::config::{AuthMethod, ChildConfig, ConnectionConfig, Unique};
use crate::diagnostic::{AuthFailure, Diagnostic};
use crate::event::{DownReason, Event};
use crate::message::{ExchangeType, Identification, Message, NotifyType, Payload, error_notify, find_notify};
use crate::offload::{AuthDone, AuthJob};
use crate::state::{AuthPending, ChildParams, Ctx, Flow, IkeSa, IkeState, Response, Task, TaskKind};
use crate::tasks::child_create::{accept, answer_payloads, choose, note_refusal, refuse_ah_over_nat, request_payloads};
use crate::tasks::ike_rekey;

/// CERT and CERTREQ encoding: X.509 Certificate - Signature (RFC 7296 section 3.6).
pub const CERT_X509_SIGNATURE: u8 = 4;

/// The authenticator that makes our AUTH for a connection.
pub fn local_authenticator(
    conn: &ConnectionConfig,
    local_id: &Identification,
    peer_id: Option<&Identification>,
) -> Result<Box<dyn Authenticator>, AuthFailure> {
    match conn.local.auth {
        AuthMethod::Psk => psk(conn, local_id, peer_id),
        AuthMethod::Pubkey => match &conn.local.key {
            Some(k) => Ok(Box::new(SignatureAuthenticator::signer(Arc::clone(k)))),
            None => Err(AuthFailure::Rejected("local.auth = pubkey without a private key for local.certs".into())),
        },
    }
}

/// The authenticator that checks the peer's AUTH for a connection.
pub fn remote_authenticator(
    conn: &ConnectionConfig,
    local_id: &Identification,
    peer_id: &Identification,
) -> Result<Box<dyn Authenticator>, AuthFailure> {
    match conn.remote.auth {
        AuthMethod::Psk => psk(conn, local_id, Some(peer_id)),
        AuthMethod::Pubkey => {
            Ok(Box::new(SignatureAuthenticator::verifier(Arc::clone(&conn.trust), conn.remote.cacerts.clone())))
        }
    }
}

fn psk(
    conn: &ConnectionConfig,
    local_id: &Identification,
    peer_id: Option<&Identification>,
) -> Result<Box<dyn Authenticator>, AuthFailure> {
    conn.psk_for(local_id, peer_id)
        .map(|p| Box::new(PskAuthenticator::new(&p.0)) as Box<dyn Authenticator>)
        .ok_or(AuthFailure::NoKeyForId)
}

/// Our CERT payloads: our certificate, then the intermediates of our chain up to one the peer
/// named in a CERTREQ (it has that CA, RFC 7296 section 3.7).
pub fn cert_payloads(conn: &ConnectionConfig, peer_certreq: &[[u8; 20]]) -> Vec<Payload> {
    if conn.local.auth != AuthMethod::Pubkey {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (i, c) in conn.local.certs.iter().enumerate() {
        if i > 0 && peer_certreq.contains(&c.key_hash()) {
            break;
        }
        out.push(Payload::Cert { encoding: CERT_X509_SIGNATURE, data: c.der().to_vec() });
    }
    out
}

//= https://www.rfc-editor.org/rfc/rfc7296#section-3.7
//# The contents of the "Certification Authority" field are defined only for X.509
//# certificates, which are identified by a Cert Encoding field value of 4. A value of 4
//# indicates that the Certification Authority field contains a concatenated list of SHA-1
//# hashes of the public keys of trusted Certification Authorities (CAs).
/// The CERTREQ naming the CAs the connections trust for their peers (`None` when none of them
/// checks the peer by certificate).
pub fn certreq_payload<'a>(conns: impl IntoIterator<Item = &'a ConnectionConfig>) -> Option<Payload> {
    let mut hashes: Vec<[u8; 20]> = Vec::new();
    for c in conns.into_iter().filter(|c| c.remote.auth == AuthMethod::Pubkey) {
        let cas = if c.remote.cacerts.is_empty() { &c.trust.cas } else { &c.remote.cacerts };
        for ca in cas {
            let h = ca.key_hash();
            if !hashes.contains(&h) {
                hashes.push(h);
            }
        }
    }
    (!hashes.is_empty()).then(|| Payload::CertReq { encoding: CERT_X509_SIGNATURE, data: hashes.concat() })
}

/// The CA key hashes of a message's CERTREQ payloads.
pub fn certreq_hashes(payloads: &[Payload]) -> Vec<[u8; 20]> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::CertReq { encoding: CERT_X509_SIGNATURE, data } => Some(data),
            _ => None,
        })
        .flat_map(|d| d.chunks_exact(20).filter_map(|c| <[u8; 20]>::try_from(c).ok()))
        .collect()
}

/// A message's X.509 certificates (CERT payloads of encoding 4), in order.
fn peer_certs(payloads: &[Payload]) -> Vec<Vec<u8>> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Cert { encoding: CERT_X509_SIGNATURE, data } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

fn cause(e: AuthError, configured: AuthMethod) -> AuthFailure {
    match e {
        AuthError::Method(m) => AuthFailure::MethodMismatch { peer_method: m, configured: configured.name() },
        AuthError::NoCredential => AuthFailure::NoKeyForId,
        AuthError::Identity => AuthFailure::NoConnectionForId { expected: String::new() },
        AuthError::Mismatch => AuthFailure::NotVerified,
        other => AuthFailure::Rejected(other.to_string()),
    }
}

fn local_id(sa: &IkeSa) -> Identification {
    sa.conn.local_identity(sa.local.ip())
}

/// Initiator state.
#[derive(Debug)]
pub struct Initiator {
    child: Option<ChildConfig>,
    spi_in: Option<u32>,
}

impl Initiator {
    /// IKE_AUTH creating `child` as the first CHILD_SA.
    pub fn new(child: Option<ChildConfig>) -> Initiator {
        Initiator { child, spi_in: None }
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::IkeAuth
    }

    /// The request: IDi, \[CERT\], \[CERTREQ\], \[IDr\], AUTH, \[INITIAL_CONTACT\], and the
    /// CHILD_SA payloads.
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        let keys = sa.keys.as_ref()?;
        let id = local_id(sa);
        let id_r = sa.conn.remote.id.clone().filter(|i| !i.is_pattern());
        let octets =
            SignedOctets { message: &sa.init_request, peer_nonce: &sa.nr, id: &id, sk_p: &keys.sk_pi, prf: keys.prf }
                .to_bytes();
        let input = AuthInput { octets: &octets, prf: keys.prf };
        let signed = local_authenticator(&sa.conn, &id, id_r.as_ref())
            .and_then(|a| a.sign(&input, &sa.peer_hashes).map_err(|e| AuthFailure::Rejected(e.to_string())));
        let (method, data) = match signed {
            Ok(s) => s,
            Err(cause) => {
                note_failure(sa, cx, &id, cause.clone());
                sa.die(cx, DownReason::Failed(format!("cannot make our AUTH: {cause}")));
                return None;
            }
        };
        let mut p = vec![Payload::IdI(id)];
        p.extend(cert_payloads(&sa.conn, &sa.peer_certreq));
        p.extend(certreq_payload([sa.conn.as_ref()]));
        if let Some(r) = id_r {
            p.push(Payload::IdR(r));
        }
        p.push(Payload::Auth { method, data });
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.4
        //# The INITIAL_CONTACT notification asserts that this IKE SA is the only IKE SA currently
        //# active between the authenticated identities.
        if sa.initial_contact {
            p.push(Payload::notify(NotifyType::INITIAL_CONTACT, vec![]));
        }
        // An AH child behind a NAT fails here and the IKE SA comes up without it.
        if self.child.as_ref().is_some_and(|cfg| refuse_ah_over_nat(sa, cx, cfg)) {
            self.child = None;
        }
        if let Some(cfg) = &self.child {
            let spi = cx.ids.child_spi(cx.rng);
            self.spi_in = Some(spi);
            p.extend(request_payloads(cfg, spi, None, None, &cfg.local_ts, &cfg.remote_ts));
        }
        Some((ExchangeType::IkeAuth, p))
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
        if find_notify(payloads, NotifyType::AUTHENTICATION_FAILED).is_some() {
            return Flow::Down(DownReason::AuthenticationFailed);
        }
        let id_r = payloads.iter().find_map(|p| if let Payload::IdR(i) = p { Some(i.clone()) } else { None });
        let auth = payloads
            .iter()
            .find_map(|p| if let Payload::Auth { method, data } = p { Some((*method, data)) } else { None });
        let (Some(id_r), Some((method, data)), Some(keys)) = (id_r, auth, sa.keys.as_ref()) else {
            let e = error_notify(payloads).map_or("IKE_AUTH answer without IDr or AUTH", |e| e.name());
            return Flow::Down(DownReason::Failed(e.to_string()));
        };
        if let Some(want) = sa.conn.remote.id.as_ref().filter(|want| !want.matches(&id_r)) {
            let expected = want.to_string();
            note_failure(sa, cx, &id_r, AuthFailure::NoConnectionForId { expected });
            return Flow::Down(DownReason::AuthenticationFailed);
        }
        let our_id = local_id(sa);
        let authn = match remote_authenticator(&sa.conn, &our_id, &id_r) {
            Ok(a) => a,
            Err(c) => {
                note_failure(sa, cx, &id_r, c);
                return Flow::Down(DownReason::AuthenticationFailed);
            }
        };
        let octets = SignedOctets {
            message: &sa.init_response,
            peer_nonce: &sa.ni,
            id: &id_r,
            sk_p: &keys.sk_pr,
            prf: keys.prf,
        }
        .to_bytes();
        let certs = peer_certs(payloads);
        let peer = PeerAuth { id: &id_r, method, data, certs: &certs, unix_time: cx.unix_time };
        let proof = match authn.verify(&AuthInput { octets: &octets, prf: keys.prf }, &peer) {
            Ok(p) => p,
            Err(e) => {
                let c = cause(e, sa.conn.remote.auth);
                note_failure(sa, cx, &id_r, c);
                return Flow::Down(DownReason::AuthenticationFailed);
            }
        };
        sa.state = IkeState::Established;
        sa.auth = Some(proof);
        ike_rekey::schedule(sa, cx);
        cx.events.push_back(Event::IkeSaUp {
            ike: sa.id,
            connection: sa.conn.name.clone(),
            local: sa.local,
            remote: sa.remote,
            local_id: local_id(sa),
            remote_id: id_r,
        });
        if let (Some(cfg), Some(spi_in)) = (&self.child, self.spi_in) {
            match accept(cfg, payloads, &cfg.local_ts, &cfg.remote_ts, false) {
                Ok(acc) => {
                    let (ni, nr) = (sa.ni.clone(), sa.nr.clone());
                    let made = sa.add_child(
                        cx,
                        ChildParams {
                            cfg,
                            spi_in,
                            spi_out: acc.peer_spi,
                            algs: acc.algs,
                            mode: acc.mode,
                            local_ts: acc.local_ts,
                            remote_ts: acc.remote_ts,
                            ni: &ni,
                            nr: &nr,
                            g_ir: None,
                            we_initiated: true,
                        },
                    );
                    if made.is_none() {
                        let reason = NotifyType::NO_PROPOSAL_CHOSEN;
                        cx.events.push_back(Event::ChildSaFailed { ike: sa.id, name: cfg.name.clone(), reason });
                    }
                }
                Err(reason) => {
                    cx.ids.child_spis.remove(&spi_in);
                    cx.events.push_back(Event::ChildSaFailed { ike: sa.id, name: cfg.name.clone(), reason });
                }
            }
        }
        Flow::Done
    }

    fn failed(self: Box<Self>, _sa: &mut IkeSa, _cx: &mut Ctx<'_>) -> Flow {
        Flow::Down(DownReason::Failed("malformed answer".into()))
    }
}

fn note_failure(sa: &IkeSa, cx: &mut Ctx<'_>, peer_id: &Identification, cause: AuthFailure) {
    cx.diag.note(|| Diagnostic::AuthenticationFailed {
        remote: sa.remote,
        connection: sa.conn.name.clone(),
        peer_id: peer_id.to_string(),
        cause,
    });
}

/// The precise cause goes to our log; the peer only learns AUTHENTICATION_FAILED (RFC 7296
/// section 2.21.2), and no secret or AUTH value is ever part of the cause.
fn fail(sa: &IkeSa, cx: &mut Ctx<'_>, peer_id: &Identification, cause: AuthFailure) -> Response {
    note_failure(sa, cx, peer_id, cause);
    Response::ThenDie(
        vec![Payload::notify(NotifyType::AUTHENTICATION_FAILED, vec![])],
        DownReason::AuthenticationFailed,
    )
}

//= https://www.rfc-editor.org/rfc/rfc7296#section-2.15
//# ... the responder ... selects ... the peer's configuration based on the IDi (and IDr)
/// The connection a responder uses for the initiator's identity: among those whose addresses
/// and IKE proposal fit this IKE SA, the one whose `remote.id` matches IDi most closely (equal
/// before a wildcard before `%any`), whose `local.id` is the IDr asked for when one was, and
/// whose `remote.auth` is the peer's AUTH method; the connection chosen at IKE_SA_INIT wins
/// ties.
pub fn select_connection(
    sa: &IkeSa,
    cx: &Ctx<'_>,
    id_i: &Identification,
    id_r: Option<&Identification>,
    method: u8,
) -> Result<Arc<ConnectionConfig>, AuthFailure> {
    let Some(algs) = sa.algs else { return Err(AuthFailure::NotVerified) };
    let fits = |c: &ConnectionConfig| {
        let addr = |list: &[std::net::IpAddr], a: std::net::IpAddr| list.is_empty() || list.contains(&a);
        addr(&c.local_addrs, sa.local.ip())
            && addr(&c.remote_addrs, sa.remote.ip())
            && c.proposals.iter().any(|p| {
                p.encr.contains(&algs.encr)
                    && p.prf.contains(&algs.prf)
                    && p.dh.contains(&algs.dh)
                    && algs.integ.is_none_or(|i| p.integ.contains(&i))
            })
    };
    let current = Arc::clone(&sa.conn);
    let candidates = std::iter::once(&current).chain(cx.connections.iter().filter(|c| c.name != current.name));
    let mut best: Option<(u8, Arc<ConnectionConfig>)> = None;
    let mut method_mismatch: Option<AuthMethod> = None;
    let mut expected: Vec<String> = Vec::new();
    for c in candidates {
        if !fits(c) {
            continue;
        }
        let id_score = match &c.remote.id {
            None => 1,
            Some(p) if p == id_i => 3,
            Some(p) if p.matches(id_i) => 2,
            Some(p) => {
                expected.push(p.to_string());
                continue;
            }
        };
        if !c.remote.auth.accepts(method) {
            method_mismatch.get_or_insert(c.remote.auth);
            continue;
        }
        let asked = id_r.is_some_and(|r| c.local.id.as_ref() == Some(r));
        let score = id_score * 2 + u8::from(asked);
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, Arc::clone(c)));
        }
    }
    match (best, method_mismatch) {
        (Some((_, c)), _) => Ok(c),
        (None, Some(m)) => Err(AuthFailure::MethodMismatch { peer_method: method, configured: m.name() }),
        (None, None) => Err(AuthFailure::NoConnectionForId { expected: expected.join(", ") }),
    }
}

/// Responder: picks the connection for the initiator's identity, checks its AUTH (with its
/// certificate chain), answers with our identity, certificates and AUTH, and makes the first
/// CHILD_SA if the request asks for one. The signature work goes out as an [`AuthJob`] when
/// the endpoint offloads and either side signs; the answer then waits ([`Response::Deferred`]).
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    let id_i = payloads.iter().find_map(|p| if let Payload::IdI(i) = p { Some(i.clone()) } else { None });
    let id_r_asked = payloads.iter().find_map(|p| if let Payload::IdR(i) = p { Some(i.clone()) } else { None });
    let auth =
        payloads.iter().find_map(|p| if let Payload::Auth { method, data } = p { Some((*method, data)) } else { None });
    let (Some(id_i), Some((method, data))) = (id_i, auth) else {
        cx.diag.note(|| Diagnostic::AuthenticationFailed {
            remote: sa.remote,
            connection: sa.conn.name.clone(),
            peer_id: String::new(),
            cause: AuthFailure::Incomplete,
        });
        return Response::ThenDie(
            vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])],
            DownReason::Failed("IKE_AUTH without IDi or AUTH".into()),
        );
    };
    let conn = match select_connection(sa, cx, &id_i, id_r_asked.as_ref(), method) {
        Ok(c) => c,
        Err(c) => return fail(sa, cx, &id_i, c),
    };
    sa.conn = conn;
    sa.peer_certreq = certreq_hashes(payloads);
    let Some(keys) = sa.keys.as_ref() else { return fail(sa, cx, &id_i, AuthFailure::NotVerified) };
    let id_r = local_id(sa);
    let (verifier, signer) =
        match (remote_authenticator(&sa.conn, &id_r, &id_i), local_authenticator(&sa.conn, &id_r, Some(&id_i))) {
            (Ok(v), Ok(s)) => (v, s),
            (Err(c), _) | (_, Err(c)) => return fail(sa, cx, &id_i, c),
        };
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.15
    //# The recipient ... MUST verify the AUTH payload ... (before anything else of the IKE SA is used)
    let verify_octets =
        SignedOctets { message: &sa.init_request, peer_nonce: &sa.nr, id: &id_i, sk_p: &keys.sk_pi, prf: keys.prf }
            .to_bytes();
    let sign_octets =
        SignedOctets { message: &sa.init_response, peer_nonce: &sa.ni, id: &id_r, sk_p: &keys.sk_pr, prf: keys.prf }
            .to_bytes();
    let prf = keys.prf;
    let certs = peer_certs(payloads);
    let signatures = sa.conn.local.auth == AuthMethod::Pubkey || sa.conn.remote.auth == AuthMethod::Pubkey;
    if cx.cfg.offload_dh && signatures {
        cx.auth_jobs.push_back(AuthJob {
            owner: sa.id,
            verifier,
            verify_octets,
            prf,
            peer_id: id_i.clone(),
            method,
            data: data.clone(),
            certs,
            unix_time: cx.unix_time,
            signer,
            sign_octets,
            peer_hashes: sa.peer_hashes.clone(),
        });
        sa.auth_pending =
            Some(AuthPending { message_id: sa.expected_request_id, payloads: payloads.to_vec(), id_i, id_r });
        return Response::Deferred;
    }
    let peer = PeerAuth { id: &id_i, method, data, certs: &certs, unix_time: cx.unix_time };
    let verified = verifier.verify(&AuthInput { octets: &verify_octets, prf }, &peer);
    let signed = match &verified {
        Ok(_) => signer.sign(&AuthInput { octets: &sign_octets, prf }, &sa.peer_hashes),
        Err(_) => Err(AuthError::NoCredential),
    };
    complete_r(sa, cx, payloads, id_i, id_r, verified, signed)
}

/// Responder: the answer to an IKE_AUTH whose [`AuthJob`] finished.
pub fn finish_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, pending: AuthPending, done: AuthDone) -> Response {
    let AuthPending { payloads, id_i, id_r, .. } = pending;
    complete_r(sa, cx, &payloads, id_i, id_r, done.verified, done.signed)
}

fn complete_r(
    sa: &mut IkeSa,
    cx: &mut Ctx<'_>,
    payloads: &[Payload],
    id_i: Identification,
    id_r: Identification,
    verified: Result<AuthVerified, AuthError>,
    signed: Result<(u8, Vec<u8>), AuthError>,
) -> Response {
    let proof = match verified {
        Ok(p) => p,
        Err(e) => {
            let c = cause(e, sa.conn.remote.auth);
            return fail(sa, cx, &id_i, c);
        }
    };
    let (method, our_auth) = match signed {
        Ok(s) => s,
        Err(e) => return fail(sa, cx, &id_i, AuthFailure::Rejected(format!("cannot make our AUTH: {e}"))),
    };
    sa.state = IkeState::Established;
    sa.half_open_until = None;
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.4
    //# ... the receiver of INITIAL_CONTACT ... MAY delete other SAs it has to the same
    //# authenticated identity without waiting for a timeout.
    // `unique = replace`: the same for every new IKE SA of an identity (a branch that came back
    // from a new address without saying so); `unique = never` ignores INITIAL_CONTACT.
    let contact = find_notify(payloads, NotifyType::INITIAL_CONTACT).is_some();
    if (contact && sa.conn.unique != Unique::Never) || sa.conn.unique == Unique::Replace {
        cx.initial_contact = Some(sa.id);
    }
    ike_rekey::schedule(sa, cx);
    cx.events.push_back(Event::IkeSaUp {
        ike: sa.id,
        connection: sa.conn.name.clone(),
        local: sa.local,
        remote: sa.remote,
        local_id: id_r.clone(),
        remote_id: id_i,
    });
    sa.auth = Some(proof);
    let mut answer = vec![Payload::IdR(id_r)];
    answer.extend(cert_payloads(&sa.conn, &sa.peer_certreq));
    answer.push(Payload::Auth { method, data: our_auth });
    if payloads.iter().any(|p| matches!(p, Payload::Sa(_))) {
        let conn = sa.conn.clone();
        let all: Vec<usize> = (0..conn.children.len()).collect();
        match choose(&conn.children, &all, payloads, false, sa.nat()) {
            Ok(chosen) => {
                let cfg = &conn.children[chosen.cfg_index];
                let spi_in = cx.ids.child_spi(cx.rng);
                let (ni, nr) = (sa.ni.clone(), sa.nr.clone());
                let child = sa.add_child(
                    cx,
                    ChildParams {
                        cfg,
                        spi_in,
                        spi_out: chosen.peer_spi,
                        algs: chosen.algs,
                        mode: chosen.mode,
                        local_ts: chosen.tsr.clone(),
                        remote_ts: chosen.tsi.clone(),
                        ni: &ni,
                        nr: &nr,
                        g_ir: None,
                        we_initiated: false,
                    },
                );
                if child.is_some() {
                    answer.extend(answer_payloads(&chosen, spi_in, None, None));
                } else {
                    answer.push(Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![]));
                }
            }
            //= https://www.rfc-editor.org/rfc/rfc7296#section-1.2
            //# If creating the Child SA during the IKE_AUTH exchange fails, the IKE SA will still
            //# be created as usual.
            Err(r) => {
                note_refusal(sa, cx, payloads, &r);
                answer.push(Payload::notify(r.notify, vec![]));
            }
        }
    }
    Response::Payloads(answer)
}
