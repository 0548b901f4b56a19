//! IKE_AUTH (RFC 7296 sections 1.2, 2.15): identities, AUTH payloads through an
//! [`Authenticator`], and the first CHILD_SA with traffic selector narrowing.
//!
//! A CHILD_SA is only made after the peer's AUTH verified: the [`crate::auth::AuthVerified`]
//! proof, stored in the IKE SA, is what `IkeSa::make_child` asks for.

use crate::auth::{AuthError, Authenticator, PskAuthenticator, SignedOctets};
use crate::config::{AuthMethod, ChildConfig, ConnectionConfig};
use crate::diagnostic::{AuthFailure, Diagnostic};
use crate::event::{DownReason, Event};
use crate::message::{ExchangeType, Identification, Message, NotifyType, Payload, error_notify, find_notify};
use crate::state::{ChildParams, Ctx, Flow, IkeSa, IkeState, Response, Task, TaskKind};
use crate::tasks::child_create::{accept, answer_payloads, choose, note_no_esp_proposal, request_payloads};
use crate::tasks::ike_rekey;

/// The authenticator a connection's configuration asks for.
pub fn authenticator(conn: &ConnectionConfig) -> Option<Box<dyn Authenticator>> {
    match conn.local.auth {
        AuthMethod::Psk => conn.psk.as_ref().map(|p| Box::new(PskAuthenticator::new(&p.0)) as Box<dyn Authenticator>),
    }
}

fn local_id(sa: &IkeSa) -> Identification {
    sa.conn.local.id.clone().unwrap_or_else(|| Identification::addr(sa.local.ip()))
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

    /// The request: IDi, \[IDr\], AUTH, \[INITIAL_CONTACT\], and the CHILD_SA payloads.
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        let keys = sa.keys.as_ref()?;
        let id = local_id(sa);
        let auth = authenticator(&sa.conn)?;
        let octets =
            SignedOctets { message: &sa.init_request, peer_nonce: &sa.nr, id: &id, sk_p: &keys.sk_pi, prf: keys.prf };
        let data = auth.sign(&octets);
        let mut p = vec![Payload::IdI(id)];
        if let Some(r) = &sa.conn.remote.id {
            p.push(Payload::IdR(r.clone()));
        }
        p.push(Payload::Auth { method: auth.method(), data });
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.4
        //# The INITIAL_CONTACT notification asserts that this IKE SA is the only IKE SA currently
        //# active between the authenticated identities.
        if sa.initial_contact {
            p.push(Payload::notify(NotifyType::INITIAL_CONTACT, vec![]));
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
        if sa.conn.remote.id.as_ref().is_some_and(|want| *want != id_r) {
            return Flow::Down(DownReason::AuthenticationFailed);
        }
        let Some(authn) = authenticator(&sa.conn) else { return Flow::Down(DownReason::AuthenticationFailed) };
        let octets = SignedOctets {
            message: &sa.init_response,
            peer_nonce: &sa.ni,
            id: &id_r,
            sk_p: &keys.sk_pr,
            prf: keys.prf,
        };
        let proof = match authn.verify(&octets, method, data) {
            Ok(p) => p,
            Err(_) => return Flow::Down(DownReason::AuthenticationFailed),
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
                    sa.add_child(
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

/// Responder: verifies the initiator, answers with our identity and AUTH, and makes the first
/// CHILD_SA if the request asks for one.
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    let id_i = payloads.iter().find_map(|p| if let Payload::IdI(i) = p { Some(i.clone()) } else { None });
    let auth =
        payloads.iter().find_map(|p| if let Payload::Auth { method, data } = p { Some((*method, data)) } else { None });
    // The precise cause goes to the responder's log; the peer only learns AUTHENTICATION_FAILED
    // (RFC 7296 section 2.21.2), and no secret or AUTH value is ever part of the cause.
    let fail = |sa: &IkeSa, cx: &mut Ctx<'_>, peer_id: Option<&Identification>, cause: AuthFailure| {
        cx.diag.note(|| Diagnostic::AuthenticationFailed {
            remote: sa.remote,
            connection: sa.conn.name.clone(),
            peer_id: peer_id.map(|i| i.to_string()).unwrap_or_default(),
            cause,
        });
        Response::ThenDie(
            vec![Payload::notify(NotifyType::AUTHENTICATION_FAILED, vec![])],
            DownReason::AuthenticationFailed,
        )
    };
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
    if let Some(want) = sa.conn.remote.id.as_ref().filter(|want| **want != id_i) {
        let expected = want.to_string();
        return fail(sa, cx, Some(&id_i), AuthFailure::NoConnectionForId { expected });
    }
    let Some(keys) = sa.keys.as_ref() else { return fail(sa, cx, Some(&id_i), AuthFailure::NotVerified) };
    let Some(authn) = authenticator(&sa.conn) else { return fail(sa, cx, Some(&id_i), AuthFailure::NoKeyForId) };
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.15
    //# The recipient ... MUST verify the AUTH payload ... (before anything else of the IKE SA is used)
    let octets =
        SignedOctets { message: &sa.init_request, peer_nonce: &sa.nr, id: &id_i, sk_p: &keys.sk_pi, prf: keys.prf };
    let proof = match authn.verify(&octets, method, data) {
        Ok(p) => p,
        Err(e) => {
            let cause = match e {
                AuthError::Method(m) => AuthFailure::MethodMismatch { peer_method: m, configured: "psk" },
                AuthError::NoCredential => AuthFailure::NoKeyForId,
                AuthError::Identity => AuthFailure::NoConnectionForId { expected: String::new() },
                AuthError::Mismatch => AuthFailure::NotVerified,
            };
            return fail(sa, cx, Some(&id_i), cause);
        }
    };
    let id_r = local_id(sa);
    let octets =
        SignedOctets { message: &sa.init_response, peer_nonce: &sa.ni, id: &id_r, sk_p: &keys.sk_pr, prf: keys.prf };
    let our_auth = authn.sign(&octets);
    sa.state = IkeState::Established;
    sa.half_open_until = None;
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.4
    //# ... the receiver of INITIAL_CONTACT ... MAY delete other SAs it has to the same
    //# authenticated identity without waiting for a timeout.
    if find_notify(payloads, NotifyType::INITIAL_CONTACT).is_some() {
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
    let mut answer = vec![Payload::IdR(id_r), Payload::Auth { method: authn.method(), data: our_auth }];
    if payloads.iter().any(|p| matches!(p, Payload::Sa(_))) {
        let conn = sa.conn.clone();
        let all: Vec<usize> = (0..conn.children.len()).collect();
        match choose(&conn.children, &all, payloads, false) {
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
                }
            }
            //= https://www.rfc-editor.org/rfc/rfc7296#section-1.2
            //# If creating the Child SA during the IKE_AUTH exchange fails, the IKE SA will still
            //# be created as usual.
            Err(e) => {
                if e == NotifyType::NO_PROPOSAL_CHOSEN {
                    note_no_esp_proposal(sa, cx, payloads);
                }
                answer.push(Payload::notify(e, vec![]));
            }
        }
    }
    Response::Payloads(answer)
}
