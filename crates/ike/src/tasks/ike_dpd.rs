//! Liveness check (RFC 7296 section 2.4): an empty INFORMATIONAL request and its empty answer.
//! A peer that never answers is found dead by retransmission running out.

use crate::ike_sa::Response;
use crate::message::Payload;

/// Initiator: the empty request.
pub fn build_i() -> Vec<Payload> {
    Vec::new()
}

/// Responder: the empty answer.
pub fn process_r() -> Response {
    Response::Payloads(Vec::new())
}
