//! The exchanges, one task per file in strongSwan's manner: each has an initiator half
//! (`build_i` makes the request, `process_i` reads the answer) and a responder half
//! (`process_r` reads the request and returns the answer, i.e. `build_r`).
//!
//! Tasks change the IKE SA they run on and emit events through [`Ctx`]; they never do I/O.

pub mod child_create;
pub mod child_delete;
pub mod child_rekey;
pub mod ike_auth;
pub mod ike_delete;
pub mod ike_dpd;
pub mod ike_init;
pub mod ike_rekey;

use crate::event::DownReason;
use crate::ike_sa::{Ctx, IkeSa, IkeState, Response};
use crate::message::{ExchangeType, Message, NotifyType, Payload, ProtocolId, find_notify};

/// What became of an exchange we initiated.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Finished (successfully or not, with events emitted); the next request may go.
    Done,
    /// The IKE SA must end.
    Down(DownReason),
}

/// The initiator half of a queued or outstanding exchange.
#[derive(Debug)]
pub enum Task {
    /// IKE_SA_INIT.
    IkeInit(Box<ike_init::Initiator>),
    /// IKE_AUTH with the first CHILD_SA.
    IkeAuth(Box<ike_auth::Initiator>),
    /// CREATE_CHILD_SA for a new CHILD_SA.
    ChildCreate(Box<child_create::Initiator>),
    /// CREATE_CHILD_SA rekeying a CHILD_SA.
    ChildRekey(Box<child_rekey::Initiator>),
    /// CREATE_CHILD_SA rekeying the IKE SA (state made in `build_i`).
    IkeRekey(Option<Box<ike_rekey::Initiator>>),
    /// INFORMATIONAL deleting a CHILD_SA.
    ChildDelete(child_delete::Initiator),
    /// INFORMATIONAL deleting the IKE SA.
    IkeDelete,
    /// An empty INFORMATIONAL (liveness check).
    Dpd,
}

impl Task {
    /// Builds the request, or `None` when the task no longer applies (its SA is gone).
    pub fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        match self {
            Task::IkeInit(t) => Some((ExchangeType::IkeSaInit, t.build_i(sa, cx))),
            Task::IkeAuth(t) => Some((ExchangeType::IkeAuth, t.build_i(sa, cx)?)),
            Task::ChildCreate(t) => Some((ExchangeType::CreateChildSa, t.build_i(sa, cx)?)),
            Task::ChildRekey(t) => Some((ExchangeType::CreateChildSa, t.build_i(sa, cx)?)),
            Task::IkeRekey(t) => {
                let (state, payloads) = ike_rekey::Initiator::build_i(sa, cx)?;
                *t = Some(Box::new(state));
                Some((ExchangeType::CreateChildSa, payloads))
            }
            Task::ChildDelete(t) => Some((ExchangeType::Informational, t.build_i(sa)?)),
            Task::IkeDelete => Some((ExchangeType::Informational, ike_delete::build_i(sa))),
            Task::Dpd => Some((ExchangeType::Informational, ike_dpd::build_i())),
        }
    }

    /// Reads the answer.
    pub fn process_i(
        self,
        sa: &mut IkeSa,
        cx: &mut Ctx<'_>,
        msg: &Message,
        raw: &[u8],
        payloads: Vec<Payload>,
    ) -> Flow {
        match self {
            Task::IkeInit(t) => t.process_i(sa, cx, msg, raw, &payloads),
            Task::IkeAuth(t) => t.process_i(sa, cx, &payloads),
            Task::ChildCreate(t) => t.process_i(sa, cx, &payloads),
            Task::ChildRekey(t) => t.process_i(sa, cx, &payloads),
            Task::IkeRekey(Some(t)) => t.process_i(sa, cx, &payloads),
            Task::IkeRekey(None) => Flow::Done,
            Task::ChildDelete(t) => t.process_i(sa, cx, &payloads),
            Task::IkeDelete => ike_delete::process_i(sa),
            Task::Dpd => Flow::Done,
        }
    }

    /// The answer was authenticated but unusable (malformed, or an unsupported critical payload).
    pub fn failed(self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Flow {
        match self {
            Task::IkeInit(_) | Task::IkeAuth(_) => Flow::Down(DownReason::Failed("malformed answer".into())),
            Task::ChildRekey(t) => {
                t.abandon(sa, cx);
                Flow::Done
            }
            Task::IkeDelete => ike_delete::process_i(sa),
            _ => Flow::Done,
        }
    }
}

/// The first error notify in a list (RFC 7296 section 3.10.1: types below 16384).
pub fn error_notify(payloads: &[Payload]) -> Option<NotifyType> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.kind.is_error() => Some(n.kind),
        _ => None,
    })
}

/// The responder half: routes a request of an established (or half-open) IKE SA.
pub fn respond(sa: &mut IkeSa, cx: &mut Ctx<'_>, exchange: ExchangeType, payloads: Vec<Payload>) -> Response {
    match exchange {
        ExchangeType::IkeAuth => {
            if sa.state != IkeState::HalfOpen || sa.initiator {
                return Response::Silent;
            }
            ike_auth::process_r(sa, cx, &payloads)
        }
        ExchangeType::CreateChildSa => {
            if sa.state != IkeState::Established && sa.state != IkeState::Deleting {
                return Response::Silent;
            }
            if sa.state == IkeState::Deleting || sa.successor.is_some() {
                //= https://www.rfc-editor.org/rfc/rfc7296#section-2.25
                //# ... the responder SHOULD reply with TEMPORARY_FAILURE (an SA being deleted or
                //# already rekeyed cannot start new ones).
                return Response::Payloads(vec![Payload::notify(NotifyType::TEMPORARY_FAILURE, vec![])]);
            }
            let rekeys_ike = payloads.iter().any(|p| match p {
                Payload::Sa(props) => props.first().is_some_and(|p| p.protocol == ProtocolId::Ike),
                _ => false,
            });
            if rekeys_ike {
                ike_rekey::process_r(sa, cx, &payloads)
            } else if find_notify(&payloads, NotifyType::REKEY_SA).is_some() {
                child_rekey::process_r(sa, cx, &payloads)
            } else {
                child_create::process_r(sa, cx, &payloads)
            }
        }
        ExchangeType::Informational => {
            if sa.auth.is_none() {
                return Response::Silent;
            }
            let deletes_ike = payloads.iter().any(|p| matches!(p, Payload::Delete(d) if d.protocol == ProtocolId::Ike));
            if deletes_ike {
                return ike_delete::process_r(sa);
            }
            if payloads.iter().any(|p| matches!(p, Payload::Delete(_))) {
                return child_delete::process_r(sa, cx, &payloads);
            }
            ike_dpd::process_r()
        }
        _ => Response::Silent,
    }
}
