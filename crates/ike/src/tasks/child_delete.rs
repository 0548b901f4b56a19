//! Deleting CHILD_SAs (RFC 7296 section 1.4.1): Delete payloads of protocol ESP carrying the
//! sender's inbound SPIs; the answer carries the responder's inbound SPIs of the same pairs.

use crate::event::ChildSaId;
use crate::message::{Delete, ExchangeType, Message, Payload, ProtocolId};
use crate::state::{ChildState, Ctx, Flow, IkeSa, Response, Task, TaskKind};

/// Initiator state: the child being deleted.
#[derive(Debug)]
pub struct Initiator {
    child: ChildSaId,
}

impl Initiator {
    /// Deletes `child`.
    pub fn new(child: ChildSaId) -> Initiator {
        Initiator { child }
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::ChildDelete
    }

    /// The request, or `None` if the child is already gone.
    fn build_i(&mut self, sa: &mut IkeSa, _cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        let c = sa.child_mut(self.child)?;
        c.state = ChildState::Deleting;
        Some((
            ExchangeType::Informational,
            vec![Payload::Delete(Delete { protocol: ProtocolId::Esp, spis: vec![c.spi_in] })],
        ))
    }

    /// The answer: the child goes whatever it says.
    fn process_i(
        self: Box<Self>,
        sa: &mut IkeSa,
        cx: &mut Ctx<'_>,
        _msg: &Message,
        _raw: &[u8],
        _payloads: &[Payload],
    ) -> Flow {
        sa.remove_child(cx, self.child);
        Flow::Done
    }
}

/// Responder: removes the children named by their outbound SPIs and answers with ours.
//= https://www.rfc-editor.org/rfc/rfc7296#section-1.4.1
//# a peer receiving a request to close a Child SA that it is currently trying to close SHOULD
//# reply without a Delete payload (and close it)
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    let mut ours = Vec::new();
    for p in payloads {
        let Payload::Delete(d) = p else { continue };
        if d.protocol != ProtocolId::Esp {
            continue;
        }
        for spi in &d.spis {
            let Some(c) = sa.children.iter().find(|c| c.spi_out == *spi) else { continue };
            let (id, deleting, spi_in) = (c.id, c.state == ChildState::Deleting, c.spi_in);
            if !deleting {
                ours.push(spi_in);
            }
            sa.remove_child(cx, id);
        }
    }
    if ours.is_empty() {
        Response::Payloads(vec![])
    } else {
        Response::Payloads(vec![Payload::Delete(Delete { protocol: ProtocolId::Esp, spis: ours })])
    }
}
