//! IKEv2 message codec: no panic on any input; a parsed message emits bytes that parse back to
//! the same payloads, except where reading keeps less than the wire held and Rampart never sends
//! such a payload (a TS payload of skipped selector types only reads as no selectors; a
//! transform's unrecognised attributes read as a flag that refuses it); opening its SK payload
//! with fixed keys of every IKE cipher never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_ike::crypto::{Encr, Integ};
use rampart_ike::message::{Message, Payload};
use rampart_ike::sk::{self, SkKeys};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(data) else { return };
    let read_less = msg.payloads.iter().any(|p| match p {
        Payload::TsI(ts) | Payload::TsR(ts) => ts.is_empty(),
        Payload::Sa(proposals) => proposals.iter().flat_map(|p| &p.transforms).any(|t| t.unknown_attributes),
        _ => false,
    });
    if msg.encrypted.is_none() && !read_less {
        let again = Message::emit_plain(msg.header, &msg.payloads);
        let reparsed = Message::parse(&again).expect("emitted message parses");
        assert_eq!(reparsed.payloads, msg.payloads);
    }
    for (encr, integ) in [
        (Encr::AesGcm16 { key_bits: 128 }, None),
        (Encr::ChaCha20Poly1305, None),
        (Encr::AesCbc { key_bits: 256 }, Some(Integ::HmacSha256_128)),
    ] {
        let ek = vec![7u8; encr.key_len()];
        let ik = vec![9u8; integ.map_or(0, Integ::key_len)];
        let keys = SkKeys { encr, integ, encryption_key: &ek, integrity_key: &ik };
        let _ = sk::open(&msg, data, &keys);
    }
});
