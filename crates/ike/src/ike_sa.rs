//! The driver of one IKE SA: messages in and out (window of one, retransmission of our
//! requests, the cached last response), each authenticated message dispatched to the task that
//! handles it, and the IKE SA's timers (rekeys, expiry, DPD, NAT keepalives).
//!
//! The state it drives is [`crate::state`]; the exchanges are the tasks in [`crate::tasks`].
//! Nothing here does I/O (datagrams go out through the context, time comes from the caller) or
//! logs a key.

use std::net::SocketAddr;
use std::time::Instant;

use crate::config::{EndpointConfig, Fragmentation};
use crate::diagnostic::{Diagnostic, Ignored, Unfragmented};
use crate::event::{DownReason, Event, Transmit};
use crate::exchange_log::exchange_label;
use crate::fragment::{self, Inserted, Slot};
use crate::message::{
    ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, HEADER_LEN, Header, Message, NotifyType, ParseError, Payload,
    ProtocolId, emit_chain, find_notify, parse_chain, unsupported_critical,
};
use crate::sk::{self, SkError, SkKeys};
use crate::state::{ChildState, Ctx, Flow, IkeSa, IkeState, Outstanding, Response, Task};
use crate::tasks::{child_create, child_delete, child_rekey, ike_auth, ike_delete, ike_dpd, ike_rekey};

/// What became of a message the window let through.
enum Opened {
    /// It authenticated: its payloads (`Err`: authenticated but malformed), and, when it was
    /// reassembled from fragments, its first fragment, whose header it is processed under.
    Payloads(Result<Vec<Payload>, ParseError>, Option<Message>),
    /// Nothing to process: it did not authenticate, or it was a fragment that was kept or
    /// dropped (counted either way).
    Nothing,
}

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

    /// Seals payloads with our direction's keys: in one Encrypted payload, or, when that
    /// datagram would exceed the fragment size and fragmentation is negotiated and on, in
    /// Encrypted Fragment payloads (RFC 7383 section 2.5). The datagrams to send, in order.
    fn seal(&mut self, cx: &mut Ctx<'_>, header: Header, payloads: &[Payload]) -> Option<Vec<Vec<u8>>> {
        let keys = self.keys.as_ref()?;
        let (ek, ak) = if self.initiator { (&keys.sk_ei, &keys.sk_ai) } else { (&keys.sk_er, &keys.sk_ar) };
        let sk = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: ek, integrity_key: ak };
        let mut plain = Vec::new();
        let first = emit_chain(payloads, &mut plain);
        let whole = HEADER_LEN + sk.overhead(plain.len());
        let budget = fragment::datagram_budget(cx.cfg.fragment_size, self.local, self.remote);
        if whole <= budget {
            return sk::seal_encoded(header, first, plain, &sk, &mut self.iv_counter, cx.rng).map(|b| vec![b]);
        }
        //= https://www.rfc-editor.org/rfc/rfc7383#section-2.4
        //# The IKE Fragmentation MUST NOT be used unless both peers have indicated their
        //# support for it.
        let mut why = if !self.fragmentation {
            Some(Unfragmented::NotNegotiated)
        } else if self.conn.fragmentation != Fragmentation::Yes {
            Some(Unfragmented::Configured(self.conn.fragmentation))
        } else {
            None
        };
        if why.is_none() {
            match sk::seal_fragments(header, first, &plain, &sk, &mut self.iv_counter, cx.rng, budget) {
                Some(frags) => {
                    cx.exchanges.fragments.messages_sent += 1;
                    cx.exchanges.fragments.fragments_sent += frags.len() as u64;
                    return Some(frags);
                }
                None => why = Some(Unfragmented::NoRoom),
            }
        }
        if let Some(why) = why {
            let (remote, exchange) = (self.remote, exchange_label(header.exchange));
            let size = whole + fragment::datagram_overhead(self.local, self.remote);
            let fragment_size = fragment::fragment_size(cx.cfg.fragment_size, self.remote);
            cx.diag.note(|| Diagnostic::Unfragmented { remote, exchange, size, fragment_size, why });
        }
        sk::seal_encoded(header, first, plain, &sk, &mut self.iv_counter, cx.rng).map(|b| vec![b])
    }

    /// The keys the peer's messages are protected with.
    fn peer_keys(&self) -> Result<SkKeys<'_>, SkError> {
        let keys = self.keys.as_ref().ok_or(SkError::Integrity)?;
        let (ek, ak) = if self.initiator { (&keys.sk_er, &keys.sk_ar) } else { (&keys.sk_ei, &keys.sk_ai) };
        Ok(SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: ek, integrity_key: ak })
    }

    /// Opens a whole message from the peer.
    fn open(&self, msg: &Message, raw: &[u8]) -> Result<Vec<Payload>, SkError> {
        sk::open(msg, raw, &self.peer_keys()?)
    }

    /// Opens a message from the peer that the window let through: a whole one, or a fragment
    /// (RFC 7383 section 2.6), checked, authenticated and kept until its message is complete.
    /// What is not authenticated, or dropped, is counted here.
    fn open_message(&mut self, cx: &mut Ctx<'_>, remote: SocketAddr, msg: &Message, raw: &[u8], slot: Slot) -> Opened {
        let Some(f) = msg.encrypted.and_then(|e| e.fragment) else {
            return match self.open(msg, raw) {
                Ok(p) => Opened::Payloads(Ok(p), None),
                Err(SkError::Malformed(e)) => Opened::Payloads(Err(e), None),
                Err(e) => {
                    self.refused(cx, remote, msg, e);
                    Opened::Nothing
                }
            };
        };
        let id = msg.header.message_id;
        if !self.fragmentation {
            cx.diag.dropped(Ignored::FragmentNotNegotiated, remote, || {
                format!("{}: fragment {} of {} of message ID {id}", self.id, f.number, f.total)
            });
            return Opened::Nothing;
        }
        if let Err((reason, detail)) = self.fragments.check(slot, id, f) {
            cx.diag.dropped(reason, remote, || format!("{}: {detail}", self.id));
            return Opened::Nothing;
        }
        //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6
        //# Verify IKE Fragment message authenticity by checking the ICV in the Encrypted
        //# Fragment payload. If the ICV check fails, the message MUST be discarded.
        let chunk = match self.peer_keys().and_then(|k| sk::open_fragment(msg, raw, &k)) {
            Ok(c) => c,
            Err(SkError::Malformed(e)) => {
                cx.diag.dropped(Ignored::FragmentInvalid, remote, || {
                    format!("{}: fragment {} of {} of message ID {id}: {e}", self.id, f.number, f.total)
                });
                return Opened::Nothing;
            }
            Err(e) => {
                self.refused(cx, remote, msg, e);
                return Opened::Nothing;
            }
        };
        let first = msg.encrypted.filter(|_| f.number == 1).map(|e| (msg.clone(), e.first_inner));
        let pool = (&mut *cx.fragments, cx.cfg.fragment_memory);
        match self.fragments.insert(cx.now, slot, id, f, chunk, first, pool, cx.diag, remote) {
            Inserted::Dropped => Opened::Nothing,
            Inserted::Kept => {
                cx.exchanges.fragments.fragments_received += 1;
                Opened::Nothing
            }
            Inserted::Complete(a) => {
                cx.exchanges.fragments.fragments_received += 1;
                cx.exchanges.fragments.messages_reassembled += 1;
                //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6
                //# the decrypted content of all Encrypted Fragment payloads is merged together to
                //# form the content of the original Encrypted payload
                let payloads = parse_chain(&a.plain, 0, a.first_inner, false).map(|(p, _)| p);
                Opened::Payloads(payloads, Some(a.message))
            }
        }
    }

    fn transmit(&mut self, cx: &mut Ctx<'_>, datagrams: &[Vec<u8>]) {
        self.last_sent = cx.now;
        for bytes in datagrams {
            cx.transmits.push_back(Transmit { from: self.local, to: self.remote, bytes: bytes.clone() });
        }
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
        let datagrams = if exchange == ExchangeType::IkeSaInit {
            let b = Message::emit_plain(header, &payloads);
            self.init_request = b.clone();
            Some(vec![b])
        } else {
            self.seal(cx, header, &payloads)
        };
        let Some(datagrams) = datagrams else {
            self.die(cx, DownReason::Failed("could not seal a request".into()));
            return;
        };
        self.next_request_id = self.next_request_id.wrapping_add(1);
        self.transmit(cx, &datagrams);
        let next_at = cx.now + cx.cfg.retransmit_timeout;
        self.outstanding =
            Some(Outstanding { message_id, exchange, datagrams, task, retransmits: 0, next_at, sent_at: cx.now });
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
        let (payloads, msg) = if h.exchange == ExchangeType::IkeSaInit {
            if msg.encrypted.is_some() {
                return cx
                    .diag
                    .dropped(Ignored::Unexpected, remote, || format!("{}: encrypted IKE_SA_INIT response", self.id));
            }
            (msg.payloads.clone(), msg)
        } else {
            match self.open_message(cx, remote, &msg, raw, Slot::Response) {
                Opened::Payloads(Ok(p), whole) => (p, whole.unwrap_or(msg)),
                Opened::Payloads(Err(_), _) => {
                    // Authenticated but broken: the exchange failed.
                    let Some(out) = self.outstanding.take() else { return };
                    self.retire_fragments(cx, Slot::Response, out.message_id);
                    cx.exchanges.answered(out.exchange, cx.now.saturating_duration_since(out.sent_at));
                    let flow = out.task.failed(self, cx);
                    self.after_flow(cx, flow);
                    return;
                }
                Opened::Nothing => return,
            }
        };
        self.last_heard = cx.now;
        let Some(out) = self.outstanding.take() else { return };
        self.retire_fragments(cx, Slot::Response, out.message_id);
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
        let fragment = msg
            .encrypted
            .and_then(|e| e.fragment)
            .map_or_else(String::new, |f| format!(", fragment {} of {}", f.number, f.total));
        match e {
            SkError::Missing => cx.diag.dropped(Ignored::Unexpected, remote, || {
                format!("{}: {} {what} without an Encrypted payload", self.id, exchange_label(h.exchange))
            }),
            _ => cx.diag.dropped(Ignored::BadIcv, remote, || {
                format!("{}: {} {what}, message ID {}{fragment}", self.id, exchange_label(h.exchange), h.message_id)
            }),
        }
    }

    /// Gives up the reassembly in `slot` of messages up to `id` (that message was taken, whole
    /// or reassembled, or the window moved past it).
    fn retire_fragments(&mut self, cx: &mut Ctx<'_>, slot: Slot, id: u32) {
        let remote = self.remote;
        self.fragments.retire(slot, id.saturating_add(1), cx.fragments, cx.diag, remote);
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
        if let Some((last_id, _)) = &self.last_response
            && *last_id == id
        {
            // A retransmitted request: answer with the cached response, only if it authenticates.
            let opened = match msg.encrypted.and_then(|e| e.fragment) {
                None => self.open(&msg, raw).map(|_| ()),
                //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6.1
                //# [a retransmitted request] MUST only trigger a retransmission of the response
                //# message (fragmented or not) if the Fragment Number field in the received
                //# fragments is set to 1; otherwise, it MUST be ignored.
                Some(f) if f.number != 1 || !self.fragmentation => {
                    return cx.diag.dropped(Ignored::FragmentDuplicate, remote, || {
                        format!("{}: fragment {} of {} of request {id}, answered already", self.id, f.number, f.total)
                    });
                }
                Some(_) => self.peer_keys().and_then(|k| sk::open_fragment(&msg, raw, &k)).map(|_| ()),
            };
            match opened {
                Ok(()) => {
                    //= https://www.rfc-editor.org/rfc/rfc7296#section-2.11
                    //# The response MUST be sent to the IP address and port from which the request came.
                    let datagrams = self.last_response.as_ref().map_or_else(Vec::new, |(_, d)| d.clone());
                    self.last_sent = cx.now;
                    for bytes in datagrams {
                        cx.transmits.push_back(Transmit { from: local, to: remote, bytes });
                    }
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
        let (payloads, msg) = match self.open_message(cx, remote, &msg, raw, Slot::Request) {
            Opened::Payloads(p, whole) => (p, whole.unwrap_or(msg)),
            Opened::Nothing => return,
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
            Err(_) => Response::Payloads(vec![Payload::notify(NotifyType::INVALID_SYNTAX, vec![])]),
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
        if let Some(datagrams) = self.seal(cx, header, &payloads) {
            self.transmit(cx, &datagrams);
            self.last_response = Some((id, datagrams));
            cx.exchanges.responded(exchange);
        }
        self.expected_request_id = id.wrapping_add(1);
        self.retire_fragments(cx, Slot::Request, id);
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
        self.fragments.clear(cx.fragments);
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
        consider(self.fragments.deadline(cfg.fragment_timeout));
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
        let remote = self.remote;
        self.fragments.expire(now, cx.cfg.fragment_timeout, cx.fragments, cx.diag, remote);
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
            //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6.1
            //# ... retransmit ... the fragments ... (the same datagrams, never sealed again)
            let datagrams = out.datagrams.clone();
            self.transmit(cx, &datagrams);
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
            self.transmit(cx, &[vec![0xff]]);
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
