//! Deleting CHILD_SAs (RFC 7296 sections 1.4.1, 3.11): Delete payloads of the CHILD_SA's
//! protocol (ESP or AH) carrying the sender's inbound SPIs; the answer carries the responder's
//! inbound SPIs of the same pairs, one Delete payload per protocol.

use rampart_sa::Protocol;

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
        //= https://www.rfc-editor.org/rfc/rfc7296#section-3.11
        //# Protocol ID (1 octet) - Must be 1 for an IKE SA, 2 for AH, or 3 for
        //# ESP.
        Some((
            ExchangeType::Informational,
            vec![Payload::Delete(Delete { protocol: c.algs.protocol.into(), spis: vec![c.spi_in] })],
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
//= https://www.rfc-editor.org/rfc/rfc7296#section-1.4.1
//# ESP and AH SAs always exist in pairs, with one SA in each direction.
//# When an SA is closed, both members of the pair MUST be closed (that
//# is, deleted).
// An SPI names a child only with the Delete payload's protocol: an ESP delete never removes
// an AH CHILD_SA that happens to have the same outbound SPI, nor the other way round.
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    let (mut esp, mut ah) = (Vec::new(), Vec::new());
    for p in payloads {
        let Payload::Delete(d) = p else { continue };
        let protocol = match d.protocol {
            ProtocolId::Esp => Protocol::Esp,
            ProtocolId::Ah => Protocol::Ah,
            _ => continue,
        };
        for spi in &d.spis {
            let Some(c) = sa.children.iter().find(|c| c.spi_out == *spi && c.algs.protocol == protocol) else {
                continue;
            };
            let (id, deleting, spi_in) = (c.id, c.state == ChildState::Deleting, c.spi_in);
            if !deleting {
                match protocol {
                    Protocol::Esp => esp.push(spi_in),
                    Protocol::Ah => ah.push(spi_in),
                }
            }
            sa.remove_child(cx, id);
        }
    }
    let mut answer = Vec::new();
    for (protocol, spis) in [(ProtocolId::Esp, esp), (ProtocolId::Ah, ah)] {
        if !spis.is_empty() {
            answer.push(Payload::Delete(Delete { protocol, spis }));
        }
    }
    Response::Payloads(answer)
}
