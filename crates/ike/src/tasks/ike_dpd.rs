//! Liveness check (RFC 7296 section 2.4): an empty INFORMATIONAL request and its empty answer.
//! A peer that never answers is found dead by retransmission running out.

use crate::message::{ExchangeType, Message, Payload};
use crate::state::{Ctx, Flow, IkeSa, Response, Task, TaskKind};

/// Initiator: the empty request.
#[derive(Debug)]
pub struct Initiator;

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::Dpd
    }

    fn build_i(&mut self, _sa: &mut IkeSa, _cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        Some((ExchangeType::Informational, Vec::new()))
    }

    /// Any answer: the peer is alive (the driver noted it when the answer authenticated).
    fn process_i(
        self: Box<Self>,
        _sa: &mut IkeSa,
        _cx: &mut Ctx<'_>,
        _msg: &Message,
        _raw: &[u8],
        _payloads: &[Payload],
    ) -> Flow {
        Flow::Done
    }
}

/// Responder: the empty answer.
pub fn process_r() -> Response {
    Response::Payloads(Vec::new())
}
