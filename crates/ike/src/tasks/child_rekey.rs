//! Rekeying a CHILD_SA (RFC 7296 sections 1.3.3, 2.8, 2.8.1): CREATE_CHILD_SA with REKEY_SA
//! (naming the old SA's protocol, ESP or AH), optional PFS, make-before-break installation, and
//! simultaneous rekeys settled by the lowest nonce.
//!
//! ```text
//!  initiator (no collision)                     responder
//!    old: Installed -> Rekeying
//!    REKEY_SA(old), SA, Ni, [KE], TSi, TSr  -->   new made, inbound installed, old: Rekeyed
//!                                        <--    SA, Nr, [KE], TSi, TSr
//!    new installed, outbound switched
//!    Delete(old)                            -->   outbound switched to new, old removed
//!    old removed                            <--   Delete(old)
//! ```
//! On a collision both sides answer each other's rekey; when its own exchange ends, each side
//! compares nonces. The exchange holding the lowest of the four nonces is redundant: its
//! initiator deletes the CHILD_SA it created, and the other initiator deletes the old one.

use crate::config::ChildConfig;
use std::time::Duration;

use crate::crypto::{DhGroup, KeyShare};
use crate::event::{ChildSaId, Event};
use crate::message::{ExchangeType, Message, Notify, NotifyType, Payload, ProtocolId, find_notify};
use crate::state::{
    ChildParams, ChildState, Created, Ctx, Flow, IkeSa, PeerRekey, Response, Task, TaskKind, jittered, nonce,
};
use crate::tasks::child_create::{
    ChildAnswer, Chosen, accept, choose, nonce_and_ke, note_refusal, request_payloads, requested_group,
};
use crate::tasks::child_delete;

/// Initiator state.
#[derive(Debug)]
pub struct Initiator {
    old: ChildSaId,
    group: Option<Option<DhGroup>>,
    state: Option<Sent>,
}

#[derive(Debug)]
struct Sent {
    cfg: ChildConfig,
    spi_in: u32,
    ni: Vec<u8>,
    ke: Option<KeyShare>,
    local_ts: Vec<rampart_sa::TrafficSelector>,
    remote_ts: Vec<rampart_sa::TrafficSelector>,
}

/// Whether our exchange of a rekey collision is the redundant one: it holds the lowest of the
/// four nonces. `ours` and `theirs` are the lower nonce of each exchange.
//= https://www.rfc-editor.org/rfc/rfc7296#section-2.8.1
//# The SA that is created with the lowest of the four nonces SHOULD be deleted by
//# the endpoint that created it.
pub fn ours_is_redundant(ours: &[u8], theirs: &[u8]) -> bool {
    ours < theirs
}

/// The lower of two nonces (byte-wise, as RFC 7296 section 2.8.1 compares them).
fn min_nonce<'a>(a: &'a [u8], b: &'a [u8]) -> &'a [u8] {
    if a <= b { a } else { b }
}

impl Initiator {
    /// Rekeys `old`.
    pub fn new(old: ChildSaId) -> Initiator {
        Initiator { old, group: None, state: None }
    }

    /// Gives up: the old child stays and is retried later.
    pub fn abandon(self, sa: &mut IkeSa, cx: &mut Ctx<'_>) {
        if let Some(s) = &self.state {
            cx.ids.child_spis.remove(&s.spi_in);
        }
        if let Some(c) = sa.child_mut(self.old)
            && c.state == ChildState::Rekeying
        {
            c.state = ChildState::Installed;
            // Try again in a while (RFC 7296 section 2.25: TEMPORARY_FAILURE means later).
            // At a random point, so that two peers that collided do not collide again.
            let wait = jittered(Duration::from_secs(30), Duration::from_secs(25), cx.rng);
            c.rekey_at = Some(cx.now + wait);
        }
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::ChildRekey
    }

    /// The request, or `None` if the child is gone or no longer installed.
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        let c = sa.children.iter_mut().find(|c| c.id == self.old && c.state == ChildState::Installed)?;
        c.state = ChildState::Rekeying;
        let cfg = c.cfg.clone();
        let group = self.group.unwrap_or_else(|| cfg.proposals().pfs_group());
        let ke = group.map(|g| cx.key_share(g));
        let spi_in = cx.ids.child_spi(cx.rng);
        let ni = nonce(cx.rng);
        //= https://www.rfc-editor.org/rfc/rfc7296#section-1.3.3
        //# The Child SA being rekeyed is identified by the SPI field in the
        //# Notify payload; this is the SPI the exchange initiator would expect
        //# in inbound ESP or AH packets.
        let mut p = vec![Payload::Notify(Notify {
            protocol: c.algs.protocol.into(),
            spi: c.spi_in.to_be_bytes().to_vec(),
            kind: NotifyType::REKEY_SA,
            data: vec![],
        })];
        p.extend(request_payloads(&cfg, spi_in, Some(&ni), ke.as_ref(), &c.local_ts, &c.remote_ts));
        self.state = Some(Sent { local_ts: c.local_ts.clone(), remote_ts: c.remote_ts.clone(), cfg, spi_in, ni, ke });
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
        let this = *self;
        this.answer(sa, cx, payloads)
    }

    fn failed(self: Box<Self>, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Flow {
        self.abandon(sa, cx);
        Flow::Done
    }
}

impl Initiator {
    /// The answer, read by [`Task::process_i`].
    fn answer(self, sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Flow {
        let Some(s) = self.state.as_ref() else { return Flow::Done };
        if self.group.is_none()
            && let Some(g) = requested_group(&s.cfg, payloads, s.ke.as_ref().map(KeyShare::group))
        {
            // Once, with the group the peer asked for; the old child goes back to Installed first.
            let old = self.old;
            cx.ids.child_spis.remove(&s.spi_in);
            if let Some(c) = sa.child_mut(old) {
                c.state = ChildState::Installed;
            }
            let retry = Initiator { old, group: Some(Some(g)), state: None };
            sa.queue.push_front(Box::new(retry));
            return Flow::Done;
        }
        let acc = match accept(&s.cfg, payloads, &s.local_ts, &s.remote_ts, true) {
            Ok(a) => a,
            Err(reason) => {
                cx.events.push_back(Event::ChildSaFailed { ike: sa.id, name: s.cfg.name.clone(), reason });
                self.abandon(sa, cx);
                return Flow::Done;
            }
        };
        let (nr, peer_ke) = nonce_and_ke(payloads);
        let g_ir = match (acc.algs.dh, &s.ke, peer_ke) {
            (None, _, _) => None,
            (Some(g), Some(k), Some((pg, data))) if pg == g.id() && k.group() == g => k.agree(data).ok(),
            _ => None,
        };
        let (Some(nr), true) = (nr, acc.algs.dh.is_none() || g_ir.is_some()) else {
            cx.events.push_back(Event::ChildSaFailed {
                ike: sa.id,
                name: s.cfg.name.clone(),
                reason: NotifyType::INVALID_SYNTAX,
            });
            self.abandon(sa, cx);
            return Flow::Done;
        };
        if sa.auth.is_none() {
            return Flow::Done;
        }
        let new = sa.make_child(
            cx,
            ChildParams {
                cfg: &s.cfg,
                spi_in: s.spi_in,
                spi_out: acc.peer_spi,
                algs: acc.algs,
                mode: acc.mode,
                local_ts: acc.local_ts,
                remote_ts: acc.remote_ts,
                ni: &s.ni,
                nr,
                g_ir: g_ir.as_deref().map(|v| v.as_slice()),
                we_initiated: true,
            },
        );
        let Some(mut new) = new else {
            self.abandon(sa, cx);
            return Flow::Done;
        };
        let new_id = new.id;
        let ours_min = min_nonce(&s.ni, nr).to_vec();
        let old = sa.children.iter().find(|c| c.id == self.old).map(|c| (c.peer_rekey.clone(), c.state));
        match old {
            // The old child vanished meanwhile (the peer deleted it): the new one stands alone.
            None => {
                sa.install_child(cx, new);
            }
            Some((Some(peer), _)) if ours_is_redundant(&ours_min, &peer.min_nonce) => {
                // We lost: ours is redundant. It was never installed; delete it at the peer.
                new.state = ChildState::Installed;
                sa.children.push(new);
                if let Some(c) = sa.child_mut(self.old) {
                    c.state = ChildState::Rekeyed;
                }
                sa.queue.push_front(Box::new(child_delete::Initiator::new(new_id)));
            }
            Some((peer, _)) => {
                // We won (or there was no collision): install ours, switch outbound, delete old.
                new.outbound_active = true;
                new.announced = true;
                cx.events.push_back(Event::RekeyedChildSa {
                    ike: sa.id,
                    old: self.old,
                    new: new_id,
                    inbound: new.inbound.clone(),
                    outbound: Some(new.outbound.clone()),
                });
                sa.children.push(new);
                if let Some(c) = sa.child_mut(self.old) {
                    c.state = ChildState::Rekeyed;
                    c.outbound_active = false;
                    c.successor = Some(new_id);
                }
                // The child the peer's losing rekey created is deleted by the peer.
                let _ = peer;
                let delay = cx.cfg.rekey_delete_delay;
                if delay.is_zero() {
                    sa.queue.push_front(Box::new(child_delete::Initiator::new(self.old)));
                } else if let Some(c) = sa.child_mut(self.old) {
                    // Deleted by its expiry timer, a moment from now.
                    let at = cx.now + delay;
                    c.expire_at = Some(c.expire_at.map_or(at, |t| t.min(at)));
                    c.rekey_at = None;
                }
            }
        }
        Flow::Done
    }
}

/// Responder: a rekey of one of our CHILD_SAs.
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    let Some(n) = find_notify(payloads, NotifyType::REKEY_SA) else { return Response::Silent };
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.25.2
    //# ... while rekeying the IKE SA ... reply with TEMPORARY_FAILURE (to a Child SA rekey)
    if sa.outstanding_kind() == Some(TaskKind::IkeRekey) {
        return Response::Payloads(vec![Payload::notify(NotifyType::TEMPORARY_FAILURE, vec![])]);
    }
    let spi = <[u8; 4]>::try_from(n.spi.as_slice()).map(u32::from_be_bytes);
    let found = spi.ok().and_then(|spi| {
        sa.children.iter().find(|c| c.spi_out == spi && n.protocol == ProtocolId::from(c.algs.protocol))
    });
    let Some(old) = found else {
        //= https://www.rfc-editor.org/rfc/rfc7296#section-1.3.3
        //# ... CHILD_SA_NOT_FOUND ... the SPI of the Child SA it was trying to rekey
        return Response::Payloads(vec![Payload::Notify(Notify {
            protocol: n.protocol,
            spi: n.spi.clone(),
            kind: NotifyType::CHILD_SA_NOT_FOUND,
            data: vec![],
        })]);
    };
    if matches!(old.state, ChildState::Rekeyed | ChildState::Deleting) {
        return Response::Payloads(vec![Payload::notify(NotifyType::TEMPORARY_FAILURE, vec![])]);
    }
    let (old_id, cfg) = (old.id, old.cfg.clone());
    // The rekeyed child keeps the configuration (and so the selectors) of the old one.
    let children = [cfg.clone()];
    let chosen: Chosen = match choose(&children, &[0], payloads, true, sa.nat()) {
        Ok(c) => c,
        Err(r) => {
            note_refusal(sa, cx, payloads, &r);
            return Response::Payloads(vec![Payload::notify(r.notify, vec![])]);
        }
    };
    let ours = match ChildAnswer::new(sa, cx, payloads, &chosen) {
        Ok(a) => a,
        Err(p) => return Response::Payloads(p),
    };
    let Some(mut new) = sa.make_child(cx, ours.params(&cfg, &chosen)) else {
        cx.ids.child_spis.remove(&ours.spi_in());
        return Response::Payloads(vec![Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![])]);
    };
    let answer = ours.payloads(&chosen);
    let new_id = new.id;
    new.announced = true;
    cx.events.push_back(Event::RekeyedChildSa {
        ike: sa.id,
        old: old_id,
        new: new_id,
        inbound: new.inbound.clone(),
        outbound: None,
    });
    sa.children.push(new);
    if let Some(c) = sa.child_mut(old_id) {
        if c.state == ChildState::Rekeying {
            // A collision: remember the peer's exchange; our own answer decides.
            let min = min_nonce(ours.ni(), ours.nr()).to_vec();
            c.peer_rekey = Some(PeerRekey { min_nonce: min, created: Created::Child(new_id) });
        } else {
            c.state = ChildState::Rekeyed;
        }
        c.successor = Some(new_id);
    }
    Response::Payloads(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_nonce_makes_the_exchange_redundant() {
        // Four nonces: ours (0x10.., 0x90..) and theirs (0x20.., 0x30..): 0x10 is the lowest.
        let ours = min_nonce(&[0x10, 0xff], &[0x90, 0x00]).to_vec();
        let theirs = min_nonce(&[0x20, 0x00], &[0x30, 0x00]).to_vec();
        assert_eq!(ours, vec![0x10, 0xff]);
        assert!(ours_is_redundant(&ours, &theirs));
        assert!(!ours_is_redundant(&theirs, &ours));
    }
}
