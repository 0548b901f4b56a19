//! Deleting the IKE SA (RFC 7296 section 1.4.1): a Delete payload of protocol IKE in an
//! INFORMATIONAL exchange; the answer is empty, and both sides drop the IKE SA and its children.

use crate::event::DownReason;
use crate::message::{Delete, ExchangeType, Message, Payload, ProtocolId};
use crate::state::{Ctx, Flow, IkeSa, IkeState, Response, Task, TaskKind};

/// Initiator: deletes the IKE SA it runs on.
#[derive(Debug)]
pub struct Initiator;

fn reason(sa: &IkeSa, ours: bool) -> DownReason {
    match (sa.successor, ours) {
        (Some(_), _) => DownReason::Rekeyed,
        (None, true) => DownReason::Deleted,
        (None, false) => DownReason::DeletedByPeer,
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::IkeDelete
    }

    /// The request.
    fn build_i(&mut self, sa: &mut IkeSa, _cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        sa.state = IkeState::Deleting;
        Some((ExchangeType::Informational, vec![Payload::Delete(Delete { protocol: ProtocolId::Ike, spis: vec![] })]))
    }

    /// Whatever the answer, the IKE SA is gone.
    fn process_i(
        self: Box<Self>,
        sa: &mut IkeSa,
        _cx: &mut Ctx<'_>,
        _msg: &Message,
        _raw: &[u8],
        _payloads: &[Payload],
    ) -> Flow {
        Flow::Down(reason(sa, true))
    }

    /// An unusable answer ends the IKE SA as well.
    fn failed(self: Box<Self>, sa: &mut IkeSa, _cx: &mut Ctx<'_>) -> Flow {
        Flow::Down(reason(sa, true))
    }
}

/// Responder: answer empty, then drop the IKE SA.
//= https://www.rfc-editor.org/rfc/rfc7296#section-1.4.1
//# Deleting an IKE SA implicitly closes any remaining Child SAs negotiated under it. The response
//# to a request that deletes the IKE SA is an empty INFORMATIONAL response.
pub fn process_r(sa: &mut IkeSa) -> Response {
    Response::ThenDie(Vec::new(), reason(sa, false))
}
