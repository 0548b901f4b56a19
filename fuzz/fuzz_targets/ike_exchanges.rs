//! IKEv2 past the first exchange, both roles. A deterministic peer brings an IKE SA up with an
//! endpoint on simulated time (IKE_SA_INIT and a PSK IKE_AUTH with a CHILD_SA): with bit 0 of
//! the first input byte clear the peer initiates (the scripted initiator of Rampart's IKE tests,
//! built from the core's public pieces) and the endpoint responds; with it set the endpoint
//! initiates and the peer answers, its IKE_AUTH answer built from the input (identity, AUTH
//! genuine or not, proposal, selectors). Then the rest of the input drives the encrypted
//! exchanges, one step after another:
//!
//! - any plaintext inside SK (raw payload chains: malformed ones too) as IKE_AUTH,
//!   CREATE_CHILD_SA, INFORMATIONAL or another exchange type, with the next message ID or any,
//!   whole or in IKE fragments (RFC 7383, negotiated when the peer initiates) of a size the
//!   input picks, sent in order, skipped, doubled or out of order;
//! - CREATE_CHILD_SA built from the input: a new CHILD_SA or the rekey of one (REKEY_SA), with
//!   or without KE (a genuine key share or arbitrary bytes), with selectors inside, across or
//!   outside the policy, and the rekey of the IKE SA;
//! - INFORMATIONAL with deletes (ESP SPIs, the IKE SA) and notifies, or empty (liveness);
//! - time passing (the endpoint's own rekeys, DPD and retransmissions) and the endpoint's own
//!   requests (rekey, delete, DPD), which the peer answers with arbitrary plaintext or a
//!   counter-request first: rekey collisions;
//! - a datagram sent before, sent again.
//!
//! Checked after every step: no panic; every datagram the endpoint sends parses; on this IKE
//! SA every one authenticates under its keys and every answer is to a request the peer sent;
//! every CHILD_SA it installs stays inside its configured selectors.
#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rampart_ike::auth::{AuthInput, Authenticator, PskAuthenticator, SignedOctets};
use rampart_ike::crypto::{DhGroup, Encr, KeyShare, Prf, RandomSource, SeededRandom};
use rampart_ike::keys::{IkeSaKeys, skeyseed};
use rampart_ike::message::{
    Delete, ExchangeType, FLAG_INITIATOR, FLAG_RESPONSE, Header, Identification, Message, Notify, NotifyType, Payload,
    Proposal, ProtocolId,
};
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::sk::{self, SkKeys};
use rampart_ike::{ChildConfig, ConnectionConfig, Endpoint, EndpointConfig, Event, IkeSaId};
use rampart_sa::{SaConfig, TrafficSelector};

// The peer of Rampart's own exchange tests, used as it is there.
#[path = "../../crates/ike/tests/common/scripted.rs"]
mod scripted;
use scripted::{ScriptedPeer, esp_proposal, ike_proposal};

const PSK: &[u8] = b"fuzz-psk-0123456789abcdef";
const PEER_ID: &str = "branch.fuzz.test";
const GROUP: DhGroup = DhGroup::Curve25519;

fn sock(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

fn ts(s: &str) -> TrafficSelector {
    let (a, l) = s.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap())
}

/// The responder's selectors: its side, and the peer's.
const LOCAL_NET: &str = "198.18.2.0/24";
const REMOTE_NET: &str = "198.18.1.0/24";

fn endpoint(initiator: bool) -> Endpoint {
    let mut c =
        ConnectionConfig::psk("gw", Identification::fqdn("gw.fuzz.test"), Some(Identification::fqdn(PEER_ID)), PSK);
    c.local_addrs = vec!["192.0.2.2".parse().unwrap()];
    if initiator {
        c.remote_addrs = vec!["192.0.2.1".parse().unwrap()];
    }
    c.proposals = parse_ike_proposals("aes256gcm16-prfsha256-x25519").unwrap();
    c.children = vec![ChildConfig::new(
        "net",
        vec![ts(LOCAL_NET)],
        vec![ts(REMOTE_NET)],
        parse_esp_proposals("aes256gcm16, aes256gcm16-x25519").unwrap(),
    )];
    let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(9)));
    ep.add_connection(c);
    ep
}

/// Reads the input front to back; past its end every read gives zeroes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, most: usize) -> Vec<u8> {
        let n = usize::from(self.byte()).min(most).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b.to_vec()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request of the endpoint's, waiting for the peer's answer.
#[derive(Clone, Copy)]
struct TheirRequest {
    exchange: ExchangeType,
    message_id: u32,
}

struct Run {
    now: Instant,
    ep: Endpoint,
    /// Whether the peer is the IKE SA's original initiator (the endpoint then responds).
    peer_initiates: bool,
    spi_i: u64,
    spi_r: u64,
    keys: IkeSaKeys,
    /// Message ID of the peer's next request.
    next_id: u32,
    /// The peer's addresses and the endpoint's.
    peer_addr: SocketAddr,
    ep_addr: SocketAddr,
    /// IV counter for the peer's sealing here (apart from the counter the peer sealed its
    /// IKE_AUTH with, so that no IV repeats under the key).
    iv: u64,
    /// Every datagram the peer sent.
    sent: Vec<Vec<u8>>,
    /// Message IDs of the requests the peer sent.
    request_ids: std::collections::BTreeSet<u32>,
    /// Inbound SPIs the peer has offered (CHILD_SAs it may rekey or delete).
    peer_spis: Vec<u32>,
    /// SPIs the endpoint chose for its inbound SAs.
    ep_spis: Vec<u32>,
    their_request: Option<TheirRequest>,
    ike: Option<IkeSaId>,
    child_ids: Vec<rampart_ike::ChildSaId>,
    /// Set once the IKE SA was rekeyed: the peer's keys no longer cover new messages.
    rekeyed: bool,
}

impl Run {
    /// The keys of the peer's messages (`ours`) or of the endpoint's.
    fn keys(&self, ours: bool) -> SkKeys<'_> {
        let k = &self.keys;
        if ours == self.peer_initiates {
            SkKeys { encr: k.encr, integ: k.integ, encryption_key: &k.sk_ei, integrity_key: &k.sk_ai }
        } else {
            SkKeys { encr: k.encr, integ: k.integ, encryption_key: &k.sk_er, integrity_key: &k.sk_ar }
        }
    }

    fn header(&self, exchange: ExchangeType, message_id: u32, response: bool) -> Header {
        let flags = (if self.peer_initiates { FLAG_INITIATOR } else { 0 }) | (if response { FLAG_RESPONSE } else { 0 });
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

    fn send(&mut self, bytes: Vec<u8>) {
        self.ep.handle(self.now, self.ep_addr, self.peer_addr, &bytes);
        self.sent.push(bytes);
        self.collect();
    }

    /// Seals the encoded chain `plain` in Encrypted Fragment payloads of at most `message_len`
    /// bytes each and sends them as the input says: each in its turn (the default), left out,
    /// sent twice, or replaced by another of them.
    fn send_fragments(&mut self, header: Header, first: u8, plain: &[u8], message_len: usize, input: &mut Input<'_>) {
        let mut rng = SeededRandom::new(u64::from(header.message_id));
        let mut iv = self.iv;
        let frags = sk::seal_fragments(header, first, plain, &self.keys(true), &mut iv, &mut rng, message_len);
        self.iv = iv;
        let Some(frags) = frags else { return };
        for i in 0..frags.len() {
            match input.byte() % 4 {
                0 => self.send(frags[i].clone()),
                1 => {}
                2 => {
                    self.send(frags[i].clone());
                    self.send(frags[i].clone());
                }
                _ => {
                    let j = usize::from(input.byte()) % frags.len();
                    self.send(frags[j].clone());
                }
            }
        }
    }

    /// Seals `payloads` (or an encoded chain) in a message of the peer's and sends it.
    fn send_sealed(&mut self, header: Header, body: Body) {
        let mut rng = SeededRandom::new(u64::from(header.message_id));
        let mut iv = self.iv;
        let bytes = match body {
            Body::Payloads(p) => sk::seal(header, &p, &self.keys(true), &mut iv, &mut rng),
            Body::Encoded { first, plain } => {
                sk::seal_encoded(header, first, plain, &self.keys(true), &mut iv, &mut rng)
            }
        };
        self.iv = iv;
        if let Some(bytes) = bytes {
            self.send(bytes);
        }
    }

    fn request(&mut self, exchange: ExchangeType, body: Body) {
        let id = self.next_id;
        self.next_id += 1;
        self.request_with_id(exchange, id, body);
    }

    fn request_with_id(&mut self, exchange: ExchangeType, id: u32, body: Body) {
        self.request_ids.insert(id);
        self.send_sealed(self.header(exchange, id, false), body);
    }

    fn answer(&mut self, theirs: TheirRequest, body: Body) {
        self.send_sealed(self.header(theirs.exchange, theirs.message_id, true), body);
    }

    /// Takes what the endpoint sent and did, and checks it.
    fn collect(&mut self) {
        while let Some(t) = self.ep.poll_transmit() {
            if t.bytes == [0xff] {
                continue; // NAT-T keepalive
            }
            let m = Message::parse(&t.bytes).expect("the endpoint sent a message that does not parse");
            let ours = m.header.spi_i == self.spi_i && m.header.spi_r == self.spi_r;
            if !ours || m.encrypted.is_none() {
                continue;
            }
            let fragment = m.encrypted.and_then(|e| e.fragment);
            let opened = match fragment {
                None => sk::open(&m, &t.bytes, &self.keys(false)).map(|_| ()),
                Some(_) => sk::open_fragment(&m, &t.bytes, &self.keys(false)).map(|_| ()),
            };
            if let Err(e) = opened {
                assert!(self.rekeyed, "the endpoint's message on the IKE SA does not open: {e:?}");
                continue;
            }
            if fragment.is_some_and(|f| f.number != 1) {
                continue;
            }
            if m.header.is_response() {
                assert!(self.request_ids.contains(&m.header.message_id), "an answer to a request never sent");
            } else {
                self.their_request =
                    Some(TheirRequest { exchange: m.header.exchange, message_id: m.header.message_id });
            }
        }
        while let Some(e) = self.ep.poll_event() {
            match e {
                Event::IkeSaUp { ike, .. } => self.ike = Some(ike),
                Event::IkeSaRekeyed { new, .. } => {
                    self.ike = Some(new);
                    self.rekeyed = true;
                }
                Event::InstallChildSa { child, inbound, outbound, .. } => {
                    check_inside_policy(&inbound, &outbound);
                    self.ep_spis.push(inbound.spi);
                    self.child_ids.push(child);
                }
                Event::RekeyedChildSa { new, inbound, outbound, .. } => {
                    if let Some(outbound) = &outbound {
                        check_inside_policy(&inbound, outbound);
                    }
                    self.ep_spis.push(inbound.spi);
                    self.child_ids.push(new);
                }
                _ => {}
            }
        }
        while self.ep.poll_diagnostic().is_some() {}
    }
}

/// The scripted initiator brings the IKE SA up with the endpoint as responder.
fn peer_initiates(now: Instant) -> Option<Run> {
    let mut ep = endpoint(false);
    let mut peer = ScriptedPeer::new(1, GROUP);
    peer.fragmentation = true;
    let (peer_addr, ep_addr) = (sock("192.0.2.1", 500), sock("192.0.2.2", 500));
    ep.handle(now, ep_addr, peer_addr, &peer.init(None));
    let answer = ep.poll_transmit()?;
    peer.init_done(&answer.bytes);
    let auth = peer.auth(PEER_ID, PSK, ts(REMOTE_NET), ts(LOCAL_NET));
    let mut run = Run::new(now, ep, true, (peer.spi_i, peer.spi_r), peer.keys.take()?, peer.next_id);
    run.peer_spis.push(0x1000_0001);
    run.request_ids.extend([0, 1]);
    run.send(auth);
    Some(run)
}

/// The endpoint initiates; the peer answers IKE_SA_INIT genuinely and IKE_AUTH as the input
/// says.
fn endpoint_initiates(now: Instant, input: &mut Input<'_>) -> Option<Run> {
    let mut ep = endpoint(true);
    let (peer_addr, ep_addr) = (sock("192.0.2.1", 500), sock("192.0.2.2", 500));
    ep.initiate(now, "gw", None).ok()?;
    let request = ep.poll_transmit()?.bytes;
    let m = Message::parse(&request).ok()?;
    let ni = m.payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None })?;
    let ke_i =
        m.payloads.iter().find_map(|p| if let Payload::Ke { data, .. } = p { Some(data.clone()) } else { None })?;
    let mut rng = SeededRandom::new(2);
    let ke = KeyShare::generate(GROUP, &mut rng);
    let mut nr = vec![0u8; 32];
    rng.fill(&mut nr);
    let spi_i = m.header.spi_i;
    let spi_r = 0x5eed_0000_0000_0001;
    let header = Header {
        spi_i,
        spi_r,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange: ExchangeType::IkeSaInit,
        flags: FLAG_RESPONSE,
        message_id: 0,
        length: 0,
    };
    let answer = Message::emit_plain(
        header,
        &[
            Payload::Sa(vec![ike_proposal(GROUP)]),
            Payload::Ke { group: GROUP.id(), data: ke.public().to_vec() },
            Payload::Nonce(nr.clone()),
        ],
    );
    let g_ir = ke.agree(&ke_i).ok()?;
    let seed = skeyseed(Prf::HmacSha256, &ni, &nr, &g_ir);
    let keys =
        IkeSaKeys::derive(Prf::HmacSha256, Encr::AesGcm16 { key_bits: 256 }, None, &seed, (&ni, &nr), (spi_i, spi_r));
    let mut run = Run::new(now, ep, false, (spi_i, spi_r), keys, 0);
    run.peer_addr = peer_addr;
    run.ep_addr = ep_addr;
    run.ep.handle(now, ep_addr, peer_addr, &answer);
    run.sent.push(answer.clone());
    // The endpoint's IKE_AUTH request.
    let auth_request = run.ep.poll_transmit()?;
    let auth_msg = Message::parse(&auth_request.bytes).ok()?;
    let payloads = sk::open(&auth_msg, &auth_request.bytes, &run.keys(false)).ok()?;
    let ep_spi = payloads.iter().find_map(|p| match p {
        Payload::Sa(props) => {
            props.first().and_then(|p| p.spi.get(..4)).map(|s| u32::from_be_bytes(s.try_into().unwrap()))
        }
        _ => None,
    });
    run.ep_spis.extend(ep_spi);
    // The peer's IKE_AUTH answer.
    let choices = input.byte();
    let id = Identification::fqdn(if choices & 1 == 0 { PEER_ID } else { "stranger.fuzz.test" });
    let octets =
        SignedOctets { message: &answer, peer_nonce: &ni, id: &id, sk_p: &run.keys.sk_pr, prf: Prf::HmacSha256 };
    let psk: &[u8] = if choices & 2 == 0 { PSK } else { b"another-psk-0123456789" };
    let signed = octets.to_bytes();
    let (method, mut data) =
        PskAuthenticator::new(psk).sign(&AuthInput { octets: &signed, prf: Prf::HmacSha256 }, &[]).ok()?;
    if choices & 4 != 0 {
        data = input.bytes(64);
    }
    let spi = input.u32();
    run.peer_spis.push(spi);
    let (tsi, tsr) = selectors(input);
    let genuine = choices & 7 == 0 && matches!(tsi.first(), Some(t) if *t == ts(REMOTE_NET));
    // From the endpoint's side: TSi is its own network, TSr the peer's.
    let body = vec![
        Payload::IdR(id),
        Payload::Auth { method, data },
        Payload::Sa(vec![esp_proposal(spi, None)]),
        Payload::TsI(tsr),
        Payload::TsR(tsi),
    ];
    let theirs = TheirRequest { exchange: ExchangeType::IkeAuth, message_id: auth_msg.header.message_id };
    run.answer(theirs, Body::Payloads(body));
    assert!(!genuine || run.ike.is_some(), "a genuine IKE_AUTH answer did not bring the IKE SA up");
    Some(run)
}

impl Run {
    fn new(
        now: Instant,
        ep: Endpoint,
        peer_initiates: bool,
        (spi_i, spi_r): (u64, u64),
        keys: IkeSaKeys,
        next_id: u32,
    ) -> Run {
        Run {
            now,
            ep,
            peer_initiates,
            spi_i,
            spi_r,
            keys,
            next_id,
            peer_addr: sock("192.0.2.1", 500),
            ep_addr: sock("192.0.2.2", 500),
            iv: 1 << 40,
            sent: Vec::new(),
            request_ids: Default::default(),
            peer_spis: Vec::new(),
            ep_spis: Vec::new(),
            their_request: None,
            ike: None,
            child_ids: Vec::new(),
            rekeyed: false,
        }
    }
}

enum Body {
    Payloads(Vec<Payload>),
    Encoded { first: u8, plain: Vec<u8> },
}

/// Every selector Rampart installs lies inside what its child config allows.
fn check_inside_policy(inbound: &SaConfig, outbound: &SaConfig) {
    let (local, remote) = (ts(LOCAL_NET), ts(REMOTE_NET));
    let inside = |t: &TrafficSelector, allowed: &TrafficSelector| {
        allowed.contains_addr(t.start) && allowed.contains_addr(t.end) && t.start <= t.end
    };
    for t in &outbound.local_ts {
        assert!(inside(t, &local), "outbound local selector {t:?} outside {local:?}");
    }
    for t in &outbound.remote_ts {
        assert!(inside(t, &remote), "outbound remote selector {t:?} outside {remote:?}");
    }
    for t in &inbound.local_ts {
        assert!(inside(t, &local), "inbound local selector {t:?} outside {local:?}");
    }
    for t in &inbound.remote_ts {
        assert!(inside(t, &remote), "inbound remote selector {t:?} outside {remote:?}");
    }
}

/// A selector pair from one byte: inside the policy, narrower, wider, elsewhere, or arbitrary.
fn selectors(input: &mut Input<'_>) -> (Vec<TrafficSelector>, Vec<TrafficSelector>) {
    match input.byte() % 6 {
        0 => (vec![ts(REMOTE_NET)], vec![ts(LOCAL_NET)]),
        1 => (vec![ts("198.18.1.16/28")], vec![ts("198.18.2.128/25")]),
        2 => (vec![ts("198.18.0.0/16")], vec![ts("0.0.0.0/0")]),
        3 => (vec![ts("203.0.113.0/24")], vec![ts(LOCAL_NET)]),
        4 => (vec![TrafficSelector::any(true)], vec![TrafficSelector::any(false), ts(LOCAL_NET)]),
        _ => {
            let t = |input: &mut Input<'_>| {
                let a = IpAddr::V4(input.u32().into());
                let mut s = TrafficSelector::from_prefix(a, input.byte() % 33);
                s.protocol = input.byte();
                s.start_port = input.u16();
                s.end_port = input.u16();
                s
            };
            (vec![t(input)], vec![t(input)])
        }
    }
}

fn key_exchange(input: &mut Input<'_>, rng: &mut SeededRandom) -> Option<Payload> {
    match input.byte() % 4 {
        0 => None,
        1 | 2 => Some(Payload::Ke { group: GROUP.id(), data: KeyShare::generate(GROUP, rng).public().to_vec() }),
        _ => Some(Payload::Ke { group: input.u16(), data: input.bytes(300) }),
    }
}

fn nonce(input: &mut Input<'_>) -> Payload {
    let n = match input.byte() % 4 {
        0 => 16,
        1 => 32,
        2 => 256,
        _ => usize::from(input.byte()),
    };
    Payload::Nonce((0..n).map(|i| i as u8).collect())
}

fn pick<T: Copy>(input: &mut Input<'_>, from: &[T], or: T) -> T {
    let i = usize::from(input.byte());
    if from.is_empty() || i == 255 { or } else { from[i % from.len()] }
}

/// CREATE_CHILD_SA of the peer's: a new CHILD_SA, its rekey, or the IKE SA's rekey.
fn create_child(run: &mut Run, input: &mut Input<'_>) -> Vec<Payload> {
    let mut rng = SeededRandom::new(u64::from(input.u32()));
    let kind = input.byte() % 3;
    if kind == 2 {
        let mut spi = [0u8; 8];
        spi.copy_from_slice(&input.u32().to_be_bytes().repeat(2));
        let mut proposal = ike_proposal(GROUP);
        proposal.spi = spi.to_vec();
        let mut p = vec![Payload::Sa(vec![proposal]), nonce(input)];
        p.extend(key_exchange(input, &mut rng));
        return p;
    }
    let spi = input.u32();
    run.peer_spis.push(spi);
    let ke = key_exchange(input, &mut rng);
    let mut p = Vec::new();
    if kind == 1 {
        let old = pick(input, &run.peer_spis, spi ^ 1);
        p.push(Payload::Notify(Notify {
            protocol: ProtocolId::Esp,
            spi: old.to_be_bytes().to_vec(),
            kind: NotifyType::REKEY_SA,
            data: vec![],
        }));
    }
    if input.byte() & 1 == 1 {
        p.push(Payload::Notify(Notify::new(NotifyType::USE_TRANSPORT_MODE, vec![])));
    }
    let pfs = ke.as_ref().map(|_| GROUP);
    let proposal: Proposal = esp_proposal(spi, pfs);
    p.push(Payload::Sa(vec![proposal]));
    p.push(nonce(input));
    p.extend(ke);
    let (tsi, tsr) = selectors(input);
    p.push(Payload::TsI(tsi));
    p.push(Payload::TsR(tsr));
    p
}

/// INFORMATIONAL of the peer's: deletes, notifies, or nothing.
fn informational(run: &Run, input: &mut Input<'_>) -> Vec<Payload> {
    let mut p = Vec::new();
    for _ in 0..input.byte() % 4 {
        p.push(match input.byte() % 4 {
            0 => Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spis: vec![pick(input, &run.peer_spis, 7), pick(input, &run.peer_spis, 8)],
            }),
            1 => Payload::Delete(Delete { protocol: ProtocolId::Ike, spis: vec![] }),
            2 => Payload::Notify(Notify::new(NotifyType(input.u16()), input.bytes(64))),
            _ => Payload::Notify(Notify {
                protocol: ProtocolId::Esp,
                spi: pick(input, &run.ep_spis, 9).to_be_bytes().to_vec(),
                kind: NotifyType(input.u16()),
                data: vec![],
            }),
        });
    }
    p
}

fn exchange(b: u8) -> ExchangeType {
    match b % 5 {
        0 => ExchangeType::IkeAuth,
        1 => ExchangeType::CreateChildSa,
        2 => ExchangeType::Informational,
        3 => ExchangeType::IkeSaInit,
        _ => ExchangeType::from_u8(b),
    }
}

fn step(run: &mut Run, input: &mut Input<'_>) {
    match input.byte() % 9 {
        0 => {
            // Raw plaintext inside SK.
            let exch = exchange(input.byte());
            let first = input.byte();
            let plain = input.bytes(255);
            let how = input.byte();
            let id = if how & 1 == 0 {
                run.next_id += 1;
                run.next_id - 1
            } else {
                input.u32()
            };
            if how & 2 == 0 {
                run.request_with_id(exch, id, Body::Encoded { first, plain });
            } else {
                // In fragments of 64 to 574 bytes.
                let message_len = 64 + 2 * usize::from(input.byte());
                run.request_ids.insert(id);
                let header = run.header(exch, id, false);
                run.send_fragments(header, first, &plain, message_len, input);
            }
        }
        1 => {
            let p = create_child(run, input);
            run.request(ExchangeType::CreateChildSa, Body::Payloads(p));
        }
        2 => {
            let p = informational(run, input);
            run.request(ExchangeType::Informational, Body::Payloads(p));
        }
        3 => {
            // Time passes: the endpoint's timers (rekeys, DPD, retransmissions) run.
            let secs = u64::from(input.byte()) * u64::from(input.byte() % 64 + 1);
            run.now += Duration::from_secs(secs);
            run.ep.handle_timeout(run.now);
            run.collect();
        }
        4 => {
            // The endpoint starts an exchange of its own.
            let (Some(ike), which) = (run.ike, input.byte()) else { return };
            let child = pick(input, &run.child_ids, rampart_ike::ChildSaId(0));
            let _ = match which % 5 {
                0 => run.ep.rekey_child(run.now, ike, child),
                1 => run.ep.rekey_ike(run.now, ike),
                2 => run.ep.dpd(run.now, ike),
                3 => run.ep.delete_child(run.now, ike, child),
                _ => run.ep.create_child(run.now, ike, "net"),
            };
            run.collect();
        }
        5 => {
            // The peer answers the endpoint's request: raw, empty, structured, or refused.
            let Some(theirs) = run.their_request.take() else { return };
            let body = match input.byte() % 4 {
                0 => Body::Encoded { first: input.byte(), plain: input.bytes(255) },
                1 => Body::Payloads(vec![]),
                2 => Body::Payloads(create_child(run, input)),
                _ => Body::Payloads(vec![Payload::Notify(Notify::new(NotifyType(input.u16()), vec![]))]),
            };
            run.answer(theirs, body);
        }
        6 => {
            // A counter-request before answering: a collision when both rekey.
            let p = create_child(run, input);
            run.request(ExchangeType::CreateChildSa, Body::Payloads(p));
        }
        7 => {
            // Something sent before, again (a retransmission or a replay).
            if run.sent.is_empty() {
                return;
            }
            let i = usize::from(input.byte()) % run.sent.len();
            let again = run.sent[i].clone();
            run.send(again);
        }
        _ => {
            // A datagram of the peer's with bits changed (it must be dropped silently).
            let Some(mut d) = run.sent.last().cloned() else { return };
            let at = usize::from(input.u16()) % d.len();
            d[at] ^= input.byte() | 1;
            run.ep.handle(run.now, run.ep_addr, run.peer_addr, &d);
            run.collect();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let now = Instant::now();
    let run = if input.byte() & 1 == 0 {
        let run = peer_initiates(now).expect("the scripted peer could not bring the IKE SA up");
        assert!(run.ike.is_some(), "the IKE SA did not come up");
        Some(run)
    } else {
        endpoint_initiates(now, &mut input)
    };
    let Some(mut run) = run else { return };
    for _ in 0..32 {
        if input.is_empty() {
            break;
        }
        step(&mut run, &mut input);
    }
});
