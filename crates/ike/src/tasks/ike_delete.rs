//! Deleting the IKE SA (RFC 7296 section 1.4.1): a Delete payload of protocol IKE in an
//! INFORMATIONAL exchange; the answer is empty, and both sides drop the IKE SA and its children.

use crate::event::DownReason;
use crate::ike_sa::{IkeSa, IkeState, Response};
use crate::message::{Delete, Payload, ProtocolId};
use crate::tasks::Flow;

/// Initiator: the request.
pub fn build_i(sa: &mut IkeSa) -> Vec<Payload> {
    sa.state = IkeState::Deleting;
    vec![Payload::Delete(Delete { protocol: ProtocolId::Ike, spis: vec![] })]
}

fn reason(sa: &IkeSa, ours: bool) -> DownReason {
    match (sa.successor, ours) {
        (Some(_), _) => DownReason::Rekeyed,
        (None, true) => DownReason::Deleted,
        (None, false) => DownReason::DeletedByPeer,
    }
}

/// Initiator: whatever the answer, the IKE SA is gone.
pub fn process_i(sa: &mut IkeSa) -> Flow {
    Flow::Down(reason(sa, true))
}

/// Responder: answer empty, then drop the IKE SA.
//= https://www.rfc-editor.org/rfc/rfc7296#section-1.4.1
//# Deleting an IKE SA implicitly closes any remaining Child SAs negotiated under it. The response
//# to a request that deletes the IKE SA is an empty INFORMATIONAL response.
pub fn process_r(sa: &mut IkeSa) -> Response {
    Response::ThenDie(Vec::new(), reason(sa, false))
}
