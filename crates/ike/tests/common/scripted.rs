//! A scripted IKEv2 initiator built from the core's public pieces (key shares, SKEYSEED, the
//! seven keys, the PSK authenticator, the SK payload), so that a test says byte by byte what the
//! peer sends: from which address and port, with which key exchange value, with a broken ICV.
//! It is a peer, not a stand-in for Rampart: every message it sends is answered by a real
//! [`rampart_ike::Endpoint`].

#![allow(dead_code)]

use std::net::SocketAddr;

use rampart_ike::auth::{AuthInput, Authenticator, PskAuthenticator, SignedOctets};
use rampart_ike::crypto::{DhGroup, Encr, KeyShare, Prf, RandomSource, SeededRandom};
use rampart_ike::keys::{IkeSaKeys, skeyseed};
use rampart_ike::message::{
    ExchangeType, FLAG_INITIATOR, Header, Identification, Message, Payload, Proposal, ProtocolId, Transform,
    transform_type as tt,
};
use rampart_ike::sk::{self, SkKeys};
use rampart_sa::TrafficSelector;

/// The IKE suite the scripted peer speaks: AES-GCM-16-256, PRF-HMAC-SHA-256, and a group.
pub fn ike_proposal(group: DhGroup) -> Proposal {
    Proposal {
        number: 1,
        protocol: ProtocolId::Ike,
        spi: vec![],
        transforms: vec![
            Transform::with_key_length(tt::ENCR, 20, 256),
            Transform::new(tt::PRF, 5),
            Transform::new(tt::DH, group.id()),
        ],
    }
}

/// An ESP proposal for AES-GCM-16-256 with our inbound `spi`, optionally with a PFS group.
pub fn esp_proposal(spi: u32, pfs: Option<DhGroup>) -> Proposal {
    let mut transforms = vec![Transform::with_key_length(tt::ENCR, 20, 256)];
    if let Some(g) = pfs {
        transforms.push(Transform::new(tt::DH, g.id()));
    }
    transforms.push(Transform::new(tt::ESN, 0));
    Proposal { number: 1, protocol: ProtocolId::Esp, spi: spi.to_be_bytes().to_vec(), transforms }
}

/// An AH proposal numbered `number` with our inbound `spi`: the integrity transforms `integ`
/// (IKEv2 numbers, `rampart_sa::integ_id`), optionally a PFS group, and No ESN.
pub fn ah_proposal(number: u8, spi: u32, integ: &[u16], pfs: Option<DhGroup>) -> Proposal {
    let mut transforms: Vec<Transform> = integ.iter().map(|i| Transform::new(tt::INTEG, *i)).collect();
    if let Some(g) = pfs {
        transforms.push(Transform::new(tt::DH, g.id()));
    }
    transforms.push(Transform::new(tt::ESN, 0));
    Proposal { number, protocol: ProtocolId::Ah, spi: spi.to_be_bytes().to_vec(), transforms }
}

/// The scripted initiator of one IKE SA.
pub struct ScriptedPeer {
    pub rng: SeededRandom,
    pub group: DhGroup,
    pub spi_i: u64,
    pub spi_r: u64,
    pub ke: KeyShare,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub init_request: Vec<u8>,
    pub keys: Option<IkeSaKeys>,
    /// Message ID of our next request.
    pub next_id: u32,
    /// Send IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (RFC 7383).
    pub fragmentation: bool,
    iv_i: u64,
    iv_r: u64,
}

impl ScriptedPeer {
    pub fn new(seed: u64, group: DhGroup) -> ScriptedPeer {
        let mut rng = SeededRandom::new(seed);
        let ke = KeyShare::generate(group, &mut rng);
        let mut ni = vec![0u8; 32];
        rng.fill(&mut ni);
        let mut spi = [0u8; 8];
        rng.fill(&mut spi);
        ScriptedPeer {
            rng,
            group,
            spi_i: u64::from_be_bytes(spi) | 1,
            spi_r: 0,
            ke,
            ni,
            nr: vec![],
            init_request: vec![],
            keys: None,
            next_id: 0,
            fragmentation: false,
            iv_i: 0,
            iv_r: 0,
        }
    }

    fn header(&self, exchange: ExchangeType, message_id: u32, flags: u8) -> Header {
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

    /// IKE_SA_INIT with our key share (or `ke_data` instead of its public value).
    pub fn init(&mut self, ke_data: Option<Vec<u8>>) -> Vec<u8> {
        let data = ke_data.unwrap_or_else(|| self.ke.public().to_vec());
        let mut payloads = vec![
            Payload::Sa(vec![ike_proposal(self.group)]),
            Payload::Ke { group: self.group.id(), data },
            Payload::Nonce(self.ni.clone()),
        ];
        if self.fragmentation {
            payloads.push(Payload::notify(rampart_ike::message::NotifyType::IKEV2_FRAGMENTATION_SUPPORTED, vec![]));
        }
        let bytes = Message::emit_plain(self.header(ExchangeType::IkeSaInit, 0, FLAG_INITIATOR), &payloads);
        self.init_request = bytes.clone();
        self.next_id = 1;
        bytes
    }

    /// Reads the IKE_SA_INIT answer and derives the keys. Panics on anything but a good answer.
    pub fn init_done(&mut self, answer: &[u8]) {
        let m = Message::parse(answer).expect("IKE_SA_INIT answer");
        self.spi_r = m.header.spi_r;
        assert_ne!(self.spi_r, 0, "an answer that makes an IKE SA: {:?}", m.payloads);
        self.nr =
            m.payloads.iter().find_map(|p| if let Payload::Nonce(n) = p { Some(n.clone()) } else { None }).unwrap();
        let peer =
            m.payloads.iter().find_map(|p| if let Payload::Ke { data, .. } = p { Some(data.clone()) } else { None });
        let g_ir = self.ke.agree(&peer.unwrap()).unwrap();
        let seed = skeyseed(Prf::HmacSha256, &self.ni, &self.nr, &g_ir);
        self.keys = Some(IkeSaKeys::derive(
            Prf::HmacSha256,
            Encr::AesGcm16 { key_bits: 256 },
            None,
            &seed,
            (&self.ni, &self.nr),
            (self.spi_i, self.spi_r),
        ));
    }

    /// IKE_AUTH with PSK as `id`, creating a CHILD_SA for `tsi` -> `tsr`.
    pub fn auth(&mut self, id: &str, psk: &[u8], tsi: TrafficSelector, tsr: TrafficSelector) -> Vec<u8> {
        self.auth_with(id, psk, tsi, tsr, vec![esp_proposal(0x1000_0001, None)])
    }

    /// IKE_AUTH with PSK as `id`, creating a CHILD_SA for `tsi` -> `tsr` with `sa` as the
    /// proposals of its SA payload.
    pub fn auth_with(
        &mut self,
        id: &str,
        psk: &[u8],
        tsi: TrafficSelector,
        tsr: TrafficSelector,
        sa: Vec<Proposal>,
    ) -> Vec<u8> {
        let id = Identification::fqdn(id);
        let keys = self.keys.as_ref().unwrap();
        let octets = SignedOctets {
            message: &self.init_request,
            peer_nonce: &self.nr,
            id: &id,
            sk_p: &keys.sk_pi,
            prf: Prf::HmacSha256,
        };
        let bytes = octets.to_bytes();
        let (method, data) =
            PskAuthenticator::new(psk).sign(&AuthInput { octets: &bytes, prf: Prf::HmacSha256 }, &[]).unwrap();
        let payloads = vec![
            Payload::IdI(id),
            Payload::Auth { method, data },
            Payload::Sa(sa),
            Payload::TsI(vec![tsi]),
            Payload::TsR(vec![tsr]),
        ];
        self.request(ExchangeType::IkeAuth, &payloads)
    }

    /// A request of ours with the next message ID, sealed with SK_ei.
    pub fn request(&mut self, exchange: ExchangeType, payloads: &[Payload]) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 1;
        self.seal(self.header(exchange, id, FLAG_INITIATOR), payloads)
    }

    /// Our answer to the responder's request `message_id`.
    pub fn answer(&mut self, exchange: ExchangeType, message_id: u32, payloads: &[Payload]) -> Vec<u8> {
        self.seal(self.header(exchange, message_id, FLAG_INITIATOR | rampart_ike::message::FLAG_RESPONSE), payloads)
    }

    /// A request of ours with the next message ID, in Encrypted Fragment payloads of at most
    /// `message_len` bytes each.
    pub fn request_fragments(
        &mut self,
        exchange: ExchangeType,
        payloads: &[Payload],
        message_len: usize,
    ) -> Vec<Vec<u8>> {
        let id = self.next_id;
        self.next_id += 1;
        let (first, plain) = encode(payloads);
        self.fragments_of(exchange, id, first, &plain, message_len)
    }

    /// Request `id` made of the encoded inner payloads `plain` (first payload of type
    /// `first`), whatever they hold, in Encrypted Fragment payloads of at most `message_len`
    /// bytes each.
    pub fn fragments_of(
        &mut self,
        exchange: ExchangeType,
        id: u32,
        first: u8,
        plain: &[u8],
        message_len: usize,
    ) -> Vec<Vec<u8>> {
        let keys = self.keys.as_ref().unwrap();
        let k = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: &keys.sk_ei, integrity_key: &keys.sk_ai };
        let header = self.header(exchange, id, FLAG_INITIATOR);
        sk::seal_fragments(header, first, plain, &k, &mut self.iv_i, &mut self.rng, message_len).unwrap()
    }

    /// Request `id` made of `plain` in one Encrypted payload.
    pub fn whole_of(&mut self, exchange: ExchangeType, id: u32, first: u8, plain: Vec<u8>) -> Vec<u8> {
        let keys = self.keys.as_ref().unwrap();
        let k = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: &keys.sk_ei, integrity_key: &keys.sk_ai };
        let header = self.header(exchange, id, FLAG_INITIATOR);
        sk::seal_encoded(header, first, plain, &k, &mut self.iv_i, &mut self.rng).unwrap()
    }

    fn seal(&mut self, header: Header, payloads: &[Payload]) -> Vec<u8> {
        let keys = self.keys.as_ref().unwrap();
        let k = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: &keys.sk_ei, integrity_key: &keys.sk_ai };
        sk::seal(header, payloads, &k, &mut self.iv_i, &mut self.rng).unwrap()
    }

    /// Opens a message of the responder (its answer or its request).
    pub fn open(&self, bytes: &[u8]) -> (Message, Vec<Payload>) {
        let m = Message::parse(bytes).expect("a message of the responder");
        let keys = self.keys.as_ref().unwrap();
        let k = SkKeys { encr: keys.encr, integ: keys.integ, encryption_key: &keys.sk_er, integrity_key: &keys.sk_ar };
        let p = sk::open(&m, bytes, &k).expect("it authenticates");
        let _ = self.iv_r;
        (m, p)
    }
}

/// A payload chain as it goes on the wire, and the type of its first payload.
pub fn encode(payloads: &[Payload]) -> (u8, Vec<u8>) {
    let h = Header {
        spi_i: 0,
        spi_r: 0,
        next_payload: 0,
        major: 2,
        minor: 0,
        exchange: ExchangeType::Informational,
        flags: 0,
        message_id: 0,
        length: 0,
    };
    let m = Message::emit_plain(h, payloads);
    (m[16], m[rampart_ike::message::HEADER_LEN..].to_vec())
}

/// A datagram with its addresses, as a socket would see it.
#[derive(Clone, Debug)]
pub struct Wire {
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}
