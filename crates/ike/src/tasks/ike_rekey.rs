//! Rekeying the IKE SA (RFC 7296 sections 1.3.2, 2.8, 2.8.2, 2.18): CREATE_CHILD_SA with an
//! IKE proposal carrying the new SPI, a fresh Diffie-Hellman, SKEYSEED from the old SK_d. The
//! children move to the new IKE SA; the rekey's initiator deletes the old one.
//!
//! Simultaneous rekeys: each side answers the other's, and when its own exchange ends compares
//! nonces; the initiator of the exchange holding the lowest nonce deletes the IKE SA it
//! created, the other deletes the old one.

use std::sync::Arc;
use std::time::Duration;

use crate::crypto::KeyShare;
use crate::event::Event;
use crate::keys::{IkeSaKeys, rekey_skeyseed};
use crate::message::{ExchangeType, Message, NotifyType, Payload, Proposal, error_notify};
use crate::proposal::{IkeAlgorithms, accept_ike_answer, ike_answer, select_ike};
use crate::state::{
    ChildState, Created, Ctx, Flow, IkeSa, IkeState, PeerRekey, Response, Task, TaskKind, jittered, nonce,
};
use crate::tasks::{child_rekey, ike_delete};

/// Initiator: its state is made when the request is built (the window may hold it back).
#[derive(Debug, Default)]
pub struct Initiator {
    sent: Option<Sent>,
}

/// What the request carried: our new SPI, Ni and KE.
#[derive(Debug)]
struct Sent {
    spi: u64,
    ni: Vec<u8>,
    ke: KeyShare,
}

fn min_nonce(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a <= b { a.to_vec() } else { b.to_vec() }
}

/// Builds the new IKE SA once both halves are known.
#[allow(clippy::too_many_arguments)]
fn new_sa(
    old: &IkeSa,
    cx: &mut Ctx<'_>,
    algs: IkeAlgorithms,
    we_initiate: bool,
    (spi_i, spi_r): (u64, u64),
    ni: &[u8],
    nr: &[u8],
    g_ir: &[u8],
) -> Option<IkeSa> {
    let old_keys = old.keys.as_ref()?;
    let seed = rekey_skeyseed(old_keys.prf, &old_keys.sk_d, g_ir, ni, nr);
    let keys = IkeSaKeys::derive(algs.prf, algs.encr, algs.integ, &seed, (ni, nr), (spi_i, spi_r));
    let mut sa = IkeSa::new(cx.ids.ike(), Arc::clone(&old.conn), we_initiate, old.local, old.remote, cx.now);
    sa.spi_i = spi_i;
    sa.spi_r = spi_r;
    sa.state = IkeState::Established;
    sa.algs = Some(algs);
    sa.keys = Some(keys);
    sa.ni = ni.to_vec();
    sa.nr = nr.to_vec();
    sa.auth = old.auth.as_ref().map(|a| a.inherit());
    sa.nat_local = old.nat_local;
    sa.nat_remote = old.nat_remote;
    // IKE fragmentation, negotiated in IKE_SA_INIT, stays with the IKE SA's successor.
    sa.fragmentation = old.fragmentation;
    schedule(&mut sa, cx);
    Some(sa)
}

/// Sets the rekey and expiry timers of an established IKE SA.
pub fn schedule(sa: &mut IkeSa, cx: &mut Ctx<'_>) {
    let c = &sa.conn;
    if !c.rekey_time.is_zero() {
        sa.rekey_at = Some(cx.now + jittered(c.rekey_time, c.rand_time, cx.rng));
        sa.expire_at = Some(cx.now + c.rekey_time + c.over_time);
    }
}

impl Initiator {
    /// Rekeys the IKE SA it runs on.
    pub fn new() -> Initiator {
        Initiator { sent: None }
    }
}

impl Task for Initiator {
    fn kind(&self) -> TaskKind {
        TaskKind::IkeRekey
    }

    /// The request (state made here: the new SPI, Ni, KE).
    fn build_i(&mut self, sa: &mut IkeSa, cx: &mut Ctx<'_>) -> Option<(ExchangeType, Vec<Payload>)> {
        if sa.successor.is_some() {
            return None;
        }
        let group = sa.algs?.dh;
        let spi = cx.ids.ike_spi(cx.rng);
        let ni = nonce(cx.rng);
        let ke = cx.key_share(group);
        let proposals: Vec<Proposal> =
            sa.conn.proposals.iter().enumerate().map(|(i, p)| p.to_wire(i as u8 + 1, &spi.to_be_bytes())).collect();
        let payloads = vec![
            Payload::Sa(proposals),
            Payload::Nonce(ni.clone()),
            Payload::Ke { group: group.id(), data: ke.public().to_vec() },
        ];
        self.sent = Some(Sent { spi, ni, ke });
        Some((ExchangeType::CreateChildSa, payloads))
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
        match self.sent {
            Some(sent) => sent.answer(sa, cx, payloads),
            None => Flow::Done,
        }
    }
}

impl Sent {
    fn answer(self, sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Flow {
        let retry_later = |sa: &mut IkeSa, cx: &mut Ctx<'_>| {
            cx.ids.ike_spis.remove(&self.spi);
            // Later, at a random point so that two peers that collided do not collide again.
            sa.rekey_at = Some(cx.now + jittered(Duration::from_secs(30), Duration::from_secs(25), cx.rng));
            Flow::Done
        };
        if error_notify(payloads).is_some() {
            return retry_later(sa, cx);
        }
        let answer = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.as_slice()) } else { None });
        let Some(algs) = answer.and_then(|a| accept_ike_answer(a, &sa.conn.proposals)) else {
            return retry_later(sa, cx);
        };
        let Some(peer_spi) = answer.and_then(|a| a.first()).and_then(|p| <[u8; 8]>::try_from(p.spi.as_slice()).ok())
        else {
            return retry_later(sa, cx);
        };
        let nr = payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None });
        let ke =
            payloads.iter().find_map(|p| if let Payload::Ke { group, data } = p { Some((*group, data)) } else { None });
        let (Some(nr), Some((group, data))) = (nr, ke) else { return retry_later(sa, cx) };
        if group != algs.dh.id() || self.ke.group() != algs.dh {
            return retry_later(sa, cx);
        }
        let Ok(g_ir) = self.ke.agree(data) else { return retry_later(sa, cx) };
        let Some(new) = new_sa(sa, cx, algs, true, (self.spi, u64::from_be_bytes(peer_spi)), &self.ni, &nr, &g_ir)
        else {
            return retry_later(sa, cx);
        };
        let new_id = new.id;
        let ours_min = min_nonce(&self.ni, &nr);
        match sa.peer_rekey.clone() {
            Some(PeerRekey { min_nonce: theirs, created: Created::Ike(_) })
                if child_rekey::ours_is_redundant(&ours_min, &theirs) =>
            {
                // We lost the collision: our new IKE SA is redundant; delete it.
                let mut new = new;
                new.rekey_at = None;
                new.queue.push_back(Box::new(ike_delete::Initiator));
                new.successor = sa.successor;
                cx.new_sas.push(new);
            }
            peer => {
                cx.moves.push((sa.id, new_id));
                if let Some(PeerRekey { created: Created::Ike(other), .. }) = peer {
                    cx.moves.push((other, new_id));
                }
                cx.events.push_back(Event::IkeSaRekeyed { old: sa.id, new: new_id });
                cx.new_sas.push(new);
                sa.successor = Some(new_id);
                sa.queue.push_front(Box::new(ike_delete::Initiator));
            }
        }
        Flow::Done
    }
}

/// Responder: a rekey of this IKE SA.
pub fn process_r(sa: &mut IkeSa, cx: &mut Ctx<'_>, payloads: &[Payload]) -> Response {
    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.25.2
    //# If a peer receives a request to rekey the IKE SA ... while it has a Child SA rekey
    //# (or creation) in progress ... it SHOULD reply with TEMPORARY_FAILURE.
    let child_busy = matches!(sa.outstanding_kind(), Some(TaskKind::ChildRekey | TaskKind::ChildCreate))
        || sa.children.iter().any(|c| c.state == ChildState::Rekeying);
    if child_busy {
        return Response::Payloads(vec![Payload::notify(NotifyType::TEMPORARY_FAILURE, vec![])]);
    }
    let offered = payloads.iter().find_map(|p| if let Payload::Sa(s) = p { Some(s.as_slice()) } else { None });
    let Some((number, algs)) = offered.and_then(|o| select_ike(o, &sa.conn.proposals)) else {
        return Response::Payloads(vec![Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![])]);
    };
    let peer_spi = offered
        .and_then(|o| o.iter().find(|p| p.number == number))
        .and_then(|p| <[u8; 8]>::try_from(p.spi.as_slice()).ok())
        .map(u64::from_be_bytes);
    let ni = payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None });
    let ke =
        payloads.iter().find_map(|p| if let Payload::Ke { group, data } = p { Some((*group, data)) } else { None });
    let (Some(peer_spi), Some(ni)) = (peer_spi.filter(|s| *s != 0), ni) else {
        return Response::Payloads(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]);
    };
    let Some((_, data)) = ke.filter(|(g, _)| *g == algs.dh.id()) else {
        return Response::Payloads(vec![Payload::notify(
            NotifyType::INVALID_KE_PAYLOAD,
            algs.dh.id().to_be_bytes().to_vec(),
        )]);
    };
    let share = cx.key_share(algs.dh);
    let Ok(g_ir) = share.agree(data) else {
        return Response::Payloads(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]);
    };
    let nr = nonce(cx.rng);
    let spi = cx.ids.ike_spi(cx.rng);
    let Some(new) = new_sa(sa, cx, algs, false, (peer_spi, spi), &ni, &nr, &g_ir) else {
        return Response::Payloads(vec![Payload::notify(NotifyType::NO_PROPOSAL_CHOSEN, vec![])]);
    };
    let new_id = new.id;
    let colliding = sa.outstanding_kind() == Some(TaskKind::IkeRekey);
    if colliding {
        sa.peer_rekey = Some(PeerRekey { min_nonce: min_nonce(&ni, &nr), created: Created::Ike(new_id) });
    }
    cx.moves.push((sa.id, new_id));
    cx.events.push_back(Event::IkeSaRekeyed { old: sa.id, new: new_id });
    cx.new_sas.push(new);
    sa.successor = Some(new_id);
    Response::Payloads(vec![
        Payload::Sa(vec![ike_answer(number, &algs, &spi.to_be_bytes())]),
        Payload::Nonce(nr),
        Payload::Ke { group: algs.dh.id(), data: share.public().to_vec() },
    ])
}
