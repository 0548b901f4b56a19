//! The driver of one IKE SA: messages in and out (window of one, retransmission of our
//! requests, the cached last response), each authenticated message dispatched to the task that
//! handles it, and the IKE SA's timers (rekeys, expiry, DPD, NAT keepalives).
//!
//! The state it drives is [`crate::state`]; the exchanges are the tasks in [`crate::tasks`].
//! Nothing here does I/O (datagrams go out through the context, time comes from the caller) or
//! logs a key.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::EndpointConfig;
use crate::crypto::RandomSource;
use crate::diagnostic::Ignored;
use crate::event::{DownReason, Event, Transmit};
use crate::exchange_log::exchange_label;
use crate::message::{
    ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, Header, Message, NotifyType, Payload, ProtocolId, find_notify,
    unsupported_critical,
};
use crate::sk::{self, SkError, SkKeys};
use crate::state::{ChildState, Ctx, Flow, IkeSa, IkeState, Outstanding, Response, Task};
use crate::tasks::{child_create, child_delete, child_rekey, ike_auth, ike_delete, ike_dpd, ike_rekey};

impl IkeSa {
    fn header(&self, exchange: ExchangeType, message_id: u32, response: bool) -> Header {
        let mut flags = 0;
        if self.initiator {
            flags |= FLAG_INITIATOR;
        }
        if response {
            flags |= FLAG_RESPONSE;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: 0,
            major: 2,
            minor: 0,
            exchange,
            flags,
            message_id,
            length: 0,
        }
    }

    /// Seals payloads in an SK payload with our direction's keys.
    fn seal(&mut self, header: Header, payloads: &[Payload], rng: &mut dyn RandomSource) -> Option<Vec<u8>> {
        let keys = self.keys.as_ref()?;
        let (ek, ak) = if self.initiator { (&keys.sk_ei, &keys.sk_ai) } else { (&keys.sk_er, &keys.sk_ar) };
        let sk = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: ek, integrity_key: ak };
        sk::seal(header, payloads, &sk, &mut self.iv_counter, rng)
    }

    /// Opens a message from the peer.
    fn open(&self, msg: &Message, raw: &[u8]) -> Result<Vec<Payload>, SkError> {
        let keys = self.keys.as_ref().ok_or(SkError::Integrity)?;
        let (ek, ak) = if self.initiator { (&keys.sk_er, &keys.sk_ar) } else { (&keys.sk_ei, &keys.sk_ai) };
        let sk = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: ek, integrity_key: ak };
        sk::open(msg, raw, &sk)
    }

    fn transmit(&mut self, cx: &mut Ctx<'_>, bytes: Vec<u8>) {
        self.last_sent = cx.now;
        cx.transmits.push_back(Transmit { from: self.local, to: self.remote, bytes });
    }

    /// Queues a request task; it is sent when the window is free.
    pub fn queue_task(&mut self, cx: &mut Ctx<'_>, task: Box<dyn Task>) {
        self.queue.push_back(task);
        self.pump(cx);
    }

    /// Sends the next queued request if the window (of one) is free.
    pub fn pump(&mut self, cx: &mut Ctx<'_>) {
        while self.outstanding.is_none()
            && self.suspended.is_none()
            && matches!(self.state, IkeState::Established | IkeState::Connecting | IkeState::Authenticating)
        {
            let Some(mut task) = self.queue.pop_front() else { return };
            let Some((exchange, payloads)) = task.build_i(self, cx) else { continue };
            self.send_request(cx, exchange, payloads, task);
        }
    }

    /// Sends a request now (the window must be free).
    pub fn send_request(
        &mut self,
        cx: &mut Ctx<'_>,
        exchange: ExchangeType,
        payloads: Vec<Payload>,
        task: Box<dyn Task>,
    ) {
        let message_id = self.next_request_id;
        let header = self.header(exchange, message_id, false);
        let bytes = if exchange == ExchangeType::IkeSaInit {
            let b = Message::emit_plain(header, &payloads);
            self.init_request = b.clone();
            Some(b)
        } else {
            self.seal(header, &payloads, cx.rng)
        };
        let Some(bytes) = bytes else {
            self.die(cx, DownReason::Failed("could not seal a request".into()));
            return;
        };
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.transmit(cx, bytes.clone());
        let next_at = cx.now + cx.cfg.retransmit_timeout;
        self.outstanding =
            Some(Outstanding { message_id, exchange, bytes, task, retransmits: 0, next_at, sent_at: cx.now });
    }

    /// Handles a datagram addressed to this IKE SA.
    pub fn handle(&mut self, cx: &mut Ctx<'_>, local: SocketAddr, remote: SocketAddr, raw: &[u8], msg: Message) {
        if self.state == IkeState::Dead {
            return cx.diag.dropped(Ignored::Unexpected, remote, || format!("{}: the IKE SA is closed", self.id));
        }
        if msg.header.is_response() {
            self.handle_response(cx, local, remote, raw, msg);
        } else {
            self.handle_request(cx, local, remote, raw, msg);
        }
    }

    fn handle_response(&mut self, cx: &mut Ctx<'_>, _local: SocketAddr, remote: SocketAddr, raw: &[u8], msg: Message) {
        let h = msg.header;
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.3
        //# An endpoint MUST NOT ... process a response whose Message ID it did not send a
        //# request with (window of one: only the outstanding one).
        let Some(out) = self.outstanding.as_ref() else {
            return cx.diag.dropped(Ignored::OutOfWindow, remote, || {
                format!("{}: response with message ID {}, no request outstanding", self.id, h.message_id)
            });
        };
        if out.message_id != h.message_id || out.exchange != h.exchange {
            let (want, exchange) = (out.message_id, out.exchange);
            return cx.diag.dropped(Ignored::OutOfWindow, remote, || {
                format!(
                    "{}: {} response with message ID {}, our request is {} {want}",
                    self.id,
                    exchange_label(h.exchange),
                    h.message_id,
                    exchange_label(exchange)
                )
            });
        }
        // The responder's SPI is learned from the first answer.
        if h.is_initiator() == self.initiator {
            return cx.diag.dropped(Ignored::Unexpected, remote, || {
                format!("{}: response with the initiator flag of our own role", self.id)
            });
        }
        let payloads = if h.exchange == ExchangeType::IkeSaInit {
            if msg.encrypted.is_some() {
                return cx
                    .diag
                    .dropped(Ignored::Unexpected, remote, || format!("{}: encrypted IKE_SA_INIT response", self.id));
            }
            msg.payloads.clone()
        } else {
            match self.open(&msg, raw) {
                Ok(p) => p,
                Err(SkError::Malformed(_)) => {
                    // Authenticated but broken: the exchange failed.
                    let Some(out) = self.outstanding.take() else { return };
                    cx.exchanges.answered(out.exchange, cx.now.saturating_duration_since(out.sent_at));
                    let flow = out.task.failed(self, cx);
                    self.after_flow(cx, flow);
                    return;
                }
                Err(e) => return self.refused(cx, remote, &msg, e),
            }
        };
        self.last_heard = cx.now;
        let Some(out) = self.outstanding.take() else { return };
        cx.exchanges.answered(out.exchange, cx.now.saturating_duration_since(out.sent_at));
        let flow = if let Some(kind) = unsupported_critical(&payloads) {
            let _ = kind;
            out.task.failed(self, cx)
        } else {
            out.task.process_i(self, cx, &msg, raw, &payloads)
        };
        self.after_flow(cx, flow);
    }

    /// Goes on after an exchange we initiated finished: the next request, or the end.
    pub fn after_flow(&mut self, cx: &mut Ctx<'_>, flow: Flow) {
        match flow {
            Flow::Done => self.pump(cx),
            Flow::Down(reason) => self.die(cx, reason),
        }
    }

    /// Counts a message whose Encrypted payload did not open.
    fn refused(&self, cx: &mut Ctx<'_>, remote: SocketAddr, msg: &Message, e: SkError) {
        let h = msg.header;
        let what = if h.is_response() { "response" } else { "request" };
        match e {
            SkError::Missing => cx.diag.dropped(Ignored::Unexpected, remote, || {
                format!("{}: {} {what} without an Encrypted payload", self.id, exchange_label(h.exchange))
            }),
            _ => cx.diag.dropped(Ignored::BadIcv, remote, || {
                format!("{}: {} {what}, message ID {}", self.id, exchange_label(h.exchange), h.message_id)
            }),
        }
    }

    fn handle_request(&mut self, cx: &mut Ctx<'_>, local: SocketAddr, remote: SocketAddr, raw: &[u8], msg: Message) {
        let id = msg.header.message_id;
        if msg.header.is_initiator() == self.initiator || msg.header.exchange == ExchangeType::IkeSaInit {
            return cx.diag.dropped(Ignored::Unexpected, remote, || {
                format!("{}: {} request the IKE SA cannot take", self.id, exchange_label(msg.header.exchange))
            });
        }
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.2
        //# The responder MUST remember each response until it receives a request whose sequence
        //# number is larger than or equal to the sequence number in the response plus its window size.
        if let Some((last_id, bytes)) = &self.last_response
            && *last_id == id
        {
            // A retransmitted request: answer with the cached response, only if it authenticates.
            match self.open(&msg, raw) {
                Ok(_) => {
                    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.11
                    //# The response MUST be sent to the IP address and port from which the request came.
                    let bytes = bytes.clone();
                    self.last_sent = cx.now;
                    cx.transmits.push_back(Transmit { from: local, to: remote, bytes });
                }
                Err(e) => self.refused(cx, remote, &msg, e),
            }
            return;
        }
        if self.auth_pending.as_ref().is_some_and(|p| p.message_id == id) {
            return cx.diag.dropped(Ignored::InProgress, remote, || {
                format!("{}: IKE_AUTH request {id} again while its signature check runs", self.id)
            });
        }
        if id != self.expected_request_id {
            let want = self.expected_request_id;
            return cx.diag.dropped(Ignored::OutOfWindow, remote, || {
                format!(
                    "{}: {} request with message ID {id}, expected {want}",
                    self.id,
                    exchange_label(msg.header.exchange)
                )
            });
        }
        let payloads = match self.open(&msg, raw) {
            Ok(p) => Ok(p),
            Err(SkError::Malformed(_)) => Err(()),
            Err(e) => return self.refused(cx, remote, &msg, e),
        };
        self.last_heard = cx.now;
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.11
        //# The response MUST be sent to the IP address and port from which the request came.
        //= https://www.rfc-editor.org/rfc/rfc7296#section-2.23
        //# ... the responder MUST use the address of the latest authenticated message
        // With or without a NAT (a peer may move to port 4500 regardless, section 2.23): the
        // answer, and every later request of this IKE SA, go where this request came from.
        self.local = local;
        self.remote = remote;
        let exchange = msg.header.exchange;
        let response = match payloads {
            //= https://www.rfc-editor.org/rfc/rfc7296#section-2.21.1
            //# If a message is malformed ... the response MUST contain INVALID_SYNTAX
            Err(()) => Response::Payloads(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]),
            Ok(p) => {
                //= https://www.rfc-editor.org/rfc/rfc7296#section-2.5
                //# If the critical flag is set and the payload type is unrecognized, the message MUST
                //# be rejected and the response to the IKE request containing that payload MUST
                //# include a Notify payload UNSUPPORTED_CRITICAL_PAYLOAD
                if let Some(kind) = unsupported_critical(&p) {
                    Response::Payloads(vec![Payload::notify(NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD, vec![kind])])
                } else {
                    respond(self, cx, exchange, p)
                }
            }
        };
        self.answer(cx, remote, exchange, id, response);
    }

    /// Sends the answer to request `id` (or drops the request, or leaves it waiting), then
    /// moves the window.
    pub fn answer(
        &mut self,
        cx: &mut Ctx<'_>,
        remote: SocketAddr,
        exchange: ExchangeType,
        id: u32,
        response: Response,
    ) {
        let (payloads, then) = match response {
            Response::Payloads(p) => (p, None),
            Response::ThenDie(p, reason) => (p, Some(reason)),
            Response::Silent => {
                let state = self.state;
                return cx.diag.dropped(Ignored::Unexpected, remote, || {
                    format!("{}: {} request in state {state:?}", self.id, exchange_label(exchange))
                });
            }
            Response::Deferred => return,
        };
        let header = self.header(exchange, id, true);
        if let Some(bytes) = self.seal(header, &payloads, cx.rng) {
            self.last_response = Some((id, bytes.clone()));
            self.transmit(cx, bytes);
            cx.exchanges.responded(exchange);
        }
        self.expected_request_id = id.wrapping_add(1);
        if let Some(reason) = then {
            self.die(cx, reason);
        } else {
            self.pump(cx);
        }
    }

    /// Removes every child (events) and marks the SA dead (event).
    pub fn die(&mut self, cx: &mut Ctx<'_>, reason: DownReason) {
        if self.state == IkeState::Dead {
            return;
        }
        let was_up = self.auth.is_some();
        for child in std::mem::take(&mut self.children) {
            cx.ids.child_spis.remove(&child.spi_in);
            if !child.announced {
                continue;
            }
            cx.events.push_back(Event::DeleteChildSa {
                ike: self.id,
                child: child.id,
                inbound_spi: child.spi_in,
                outbound_spi: child.spi_out,
            });
        }
        self.state = IkeState::Dead;
        self.outstanding = None;
        self.queue.clear();
        if was_up || reason != DownReason::HalfOpenTimeout {
            cx.events.push_back(Event::IkeSaDown { ike: self.id, reason });
        }
    }

    /// The earliest time this SA wants to be woken.
    pub fn next_timeout(&self, cfg: &EndpointConfig) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.state == IkeState::Dead {
            return None;
        }
        consider(self.outstanding.as_ref().map(|o| o.next_at));
        if let Some(cap) = self.dpd_deadline() {
            consider(Some(cap));
        }
        consider(self.half_open_until);
        if self.state == IkeState::Established && self.successor.is_none() {
            consider(self.rekey_at);
            consider(self.expire_at);
            if !self.conn.dpd_delay.is_zero() && self.outstanding.is_none() {
                consider(Some(self.last_heard.max(self.last_sent) + self.conn.dpd_delay));
            }
            if self.nat_local {
                consider(Some(self.last_sent + cfg.keep_alive));
            }
            for c in &self.children {
                if c.state == ChildState::Installed {
                    consider(c.rekey_at);
                }
                consider(c.expire_at);
            }
        }
        t
    }

    /// When an unanswered request of an established IKE SA makes the peer dead under the
    /// connection's `dpd_timeout`.
    fn dpd_deadline(&self) -> Option<Instant> {
        let out = self.outstanding.as_ref()?;
        let cap = self.conn.dpd_timeout;
        (!cap.is_zero() && matches!(self.state, IkeState::Established | IkeState::Deleting)).then(|| out.sent_at + cap)
    }

    /// Traffic from the peer was seen at `at` outside IKE (ESP counted by the data plane): a
    /// liveness check is not needed before `at + dpd_delay`.
    pub fn note_activity(&mut self, at: Instant) {
        if at > self.last_heard {
            self.last_heard = at;
        }
    }

    /// Runs the timers that are due.
    pub fn on_timeout(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        if self.half_open_until.is_some_and(|t| now >= t) && self.auth.is_none() {
            self.die(cx, DownReason::HalfOpenTimeout);
            return;
        }
        if self.dpd_deadline().is_some_and(|t| now >= t) {
            self.die(cx, DownReason::PeerDead);
            return;
        }
        if let Some(out) = self.outstanding.as_mut()
            && now >= out.next_at
        {
            //= https://www.rfc-editor.org/rfc/rfc7296#section-2.1
            //# The initiator MUST retransmit a request until it either receives a corresponding
            //# response or deems the IKE SA to have failed.
            if out.retransmits >= cx.cfg.retransmit_tries {
                self.die(cx, DownReason::PeerDead);
                return;
            }
            out.retransmits += 1;
            cx.exchanges.retransmitted(out.exchange);
            let wait = cx.cfg.retransmit_timeout.mul_f64(cx.cfg.retransmit_base.powi(out.retransmits as i32));
            out.next_at = now + wait;
            let bytes = out.bytes.clone();
            self.transmit(cx, bytes);
        }
        if self.state != IkeState::Established || self.successor.is_some() {
            return;
        }
        if self.expire_at.is_some_and(|t| now >= t) {
            self.expire_at = None;
            self.queue.clear();
            self.outstanding = None;
            self.queue_task(cx, Box::new(ike_delete::Initiator));
            // If the peer does not answer the delete, retransmission ends it.
            return;
        }
        if self.rekey_at.is_some_and(|t| now >= t) {
            self.rekey_at = None;
            self.queue_task(cx, Box::new(ike_rekey::Initiator::new()));
        }
        let mut due: Vec<Box<dyn Task>> = Vec::new();
        for c in &mut self.children {
            if c.expire_at.is_some_and(|t| now >= t) {
                c.expire_at = None;
                c.rekey_at = None;
                due.push(Box::new(child_delete::Initiator::new(c.id)));
            } else if c.state == ChildState::Installed && c.rekey_at.is_some_and(|t| now >= t) {
                c.rekey_at = None;
                due.push(Box::new(child_rekey::Initiator::new(c.id)));
            }
        }
        for t in due {
            self.queue_task(cx, t);
        }
        if !self.conn.dpd_delay.is_zero()
            && self.outstanding.is_none()
            && self.queue.is_empty()
            && now >= self.last_heard.max(self.last_sent) + self.conn.dpd_delay
        {
            self.queue_task(cx, Box::new(ike_dpd::Initiator));
        }
        if self.nat_local && now >= self.last_sent + cx.cfg.keep_alive {
            //= https://www.rfc-editor.org/rfc/rfc3948#section-4
            //# NAT-keepalive packet ... a single octet 0xFF
            self.transmit(cx, vec![0xff]);
        }
    }
}

/// The responder half: routes a request of an established (or half-open) IKE SA.
fn respond(sa: &mut IkeSa, cx: &mut Ctx<'_>, exchange: ExchangeType, payloads: Vec<Payload>) -> Response {
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
