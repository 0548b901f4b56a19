//! IKEv2 endpoint as a responder: any datagram, then the timers, never panic; whatever it
//! answers is itself a well-formed IKE message.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rampart_ike::crypto::SeededRandom;
use rampart_ike::message::{Identification, Message};
use rampart_ike::{ConnectionConfig, Endpoint, EndpointConfig};

fuzz_target!(|data: &[u8]| {
    let mut ep = Endpoint::new(EndpointConfig::default(), Box::new(SeededRandom::new(1)));
    ep.add_connection(ConnectionConfig::psk("fuzz", Identification::fqdn("b"), None, b"psk"));
    let now = Instant::now();
    let (local, remote) = ("192.0.2.2:500".parse().unwrap(), "192.0.2.1:500".parse().unwrap());
    for chunk in data.split(|&b| b == 0xa5).take(4) {
        ep.handle(now, local, remote, chunk);
    }
    ep.handle_timeout(now + Duration::from_secs(60));
    while let Some(t) = ep.poll_transmit() {
        assert!(t.bytes == [0xff] || Message::parse(&t.bytes).is_ok());
    }
});
