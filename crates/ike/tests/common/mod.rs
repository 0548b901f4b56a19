//! Two endpoints in one process on simulated time (quinn's `Pair` idea): datagrams are handed
//! from one to the other by the test, which can drop, hold, reorder, rewrite or NAT them.

#![allow(dead_code)]

pub mod scripted;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rampart_ike::crypto::SeededRandom;
use rampart_ike::message::Identification;
use rampart_ike::proposal::{parse_esp_proposals, parse_ike_proposals};
use rampart_ike::*;
use rampart_sa::Suite;
use rampart_sa::{Mode, SaConfig, TrafficSelector};

pub const A_IP: &str = "192.0.2.1";
pub const B_IP: &str = "192.0.2.2";
pub const NAT_IP: &str = "203.0.113.7";
pub const PSK: &[u8] = b"sw-test-psk-0123456789abcdef";

pub fn ts(s: &str) -> TrafficSelector {
    let (a, l) = s.split_once('/').unwrap();
    TrafficSelector::from_prefix(a.parse().unwrap(), l.parse().unwrap())
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Side A (initiator) of the strongSwan harness topology.
pub fn conn_a() -> ConnectionConfig {
    let mut c = ConnectionConfig::psk(
        "gw",
        Identification::fqdn("gw-a.sw.test"),
        Some(Identification::fqdn("gw-b.sw.test")),
        PSK,
    );
    c.local_addrs = vec![ip(A_IP)];
    c.remote_addrs = vec![ip(B_IP)];
    c.proposals = parse_ike_proposals("aes256-sha256-ecp256, aes256-sha256-x25519").unwrap();
    c.children = vec![ChildConfig::new(
        "net",
        vec![ts("198.18.1.0/24")],
        vec![ts("198.18.2.0/24")],
        parse_esp_proposals("aes256gcm16").unwrap(),
    )];
    c
}

/// Side B (responder).
pub fn conn_b() -> ConnectionConfig {
    let mut c = ConnectionConfig::psk(
        "gw",
        Identification::fqdn("gw-b.sw.test"),
        Some(Identification::fqdn("gw-a.sw.test")),
        PSK,
    );
    c.local_addrs = vec![ip(B_IP)];
    c.remote_addrs = vec![ip(A_IP)];
    c.proposals = parse_ike_proposals("aes256-sha256-ecp256, aes256-sha256-x25519").unwrap();
    c.children = vec![ChildConfig::new(
        "net",
        vec![ts("198.18.2.0/24")],
        vec![ts("198.18.1.0/24")],
        parse_esp_proposals("aes256gcm16").unwrap(),
    )];
    c
}

/// Who sent a datagram in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

pub struct Pair {
    pub now: Instant,
    pub start: Instant,
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_events: Vec<Event>,
    pub b_events: Vec<Event>,
    /// Datagrams sent and not yet delivered, in order.
    pub in_flight: Vec<(Side, Transmit)>,
    /// Every datagram ever sent.
    pub log: Vec<(Side, Transmit)>,
    /// A sits behind a NAT that maps its source address to NAT_IP and port + 10000.
    pub nat_a: bool,
}

impl Pair {
    pub fn new(a: ConnectionConfig, b: ConnectionConfig) -> Pair {
        Pair::with_config(a, b, EndpointConfig::default(), EndpointConfig::default())
    }

    pub fn with_config(a: ConnectionConfig, b: ConnectionConfig, ca: EndpointConfig, cb: EndpointConfig) -> Pair {
        let now = Instant::now();
        let mut ea = Endpoint::new(ca, Box::new(SeededRandom::new(1)));
        ea.add_connection(a);
        let mut eb = Endpoint::new(cb, Box::new(SeededRandom::new(2)));
        eb.add_connection(b);
        Pair {
            now,
            start: now,
            a: ea,
            b: eb,
            a_events: vec![],
            b_events: vec![],
            in_flight: vec![],
            log: vec![],
            nat_a: false,
        }
    }

    /// Moves what both endpoints want to send into `in_flight`, and their events out.
    pub fn collect(&mut self) {
        while let Some(t) = self.a.poll_transmit() {
            self.log.push((Side::A, t.clone()));
            self.in_flight.push((Side::A, t));
        }
        while let Some(t) = self.b.poll_transmit() {
            self.log.push((Side::B, t.clone()));
            self.in_flight.push((Side::B, t));
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    /// Delivers one datagram to its receiver.
    pub fn deliver(&mut self, from: Side, t: Transmit) {
        let nat = |a: SocketAddr| SocketAddr::new(ip(NAT_IP), a.port() + 10000);
        match from {
            Side::A => {
                let remote = if self.nat_a { nat(t.from) } else { t.from };
                self.b.handle(self.now, t.to, remote, &t.bytes);
            }
            Side::B => {
                let (local, to) = if self.nat_a && t.to.ip() == ip(NAT_IP) {
                    (SocketAddr::new(ip(A_IP), t.to.port() - 10000), t.to)
                } else {
                    (t.to, t.to)
                };
                let _ = to;
                self.a.handle(self.now, local, t.from, &t.bytes);
            }
        }
    }

    /// Delivers everything in flight, `keep` deciding what survives, until nothing moves.
    pub fn drive_with(&mut self, mut keep: impl FnMut(Side, &Transmit) -> bool) {
        for _ in 0..1000 {
            self.collect();
            if self.in_flight.is_empty() {
                return;
            }
            for (side, t) in std::mem::take(&mut self.in_flight) {
                if keep(side, &t) {
                    self.deliver(side, t);
                }
            }
        }
        panic!("endpoints never went quiet");
    }

    pub fn drive(&mut self) {
        self.drive_with(|_, _| true);
    }

    /// Advances simulated time to each wake-up up to `until`, delivering with `keep`.
    pub fn run_for_with(&mut self, d: Duration, mut keep: impl FnMut(Side, &Transmit) -> bool) {
        let end = self.now + d;
        loop {
            self.drive_with(&mut keep);
            let next = [self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= end => {
                    self.now = t.max(self.now);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.drive_with(&mut keep);
    }

    pub fn run_for(&mut self, d: Duration) {
        self.run_for_with(d, |_, _| true);
    }

    /// A initiates the connection and everything is delivered.
    pub fn establish(&mut self) -> IkeSaId {
        let id = self.a.initiate(self.now, "gw", None).expect("initiate");
        self.drive();
        id
    }

    pub fn only_sa(e: &Endpoint) -> IkeSaInfo {
        let sas = e.ike_sas();
        assert_eq!(sas.len(), 1, "{sas:#?}");
        sas.into_iter().next().unwrap()
    }

    pub fn clear_events(&mut self) {
        self.a_events.clear();
        self.b_events.clear();
    }
}

/// Checks that two SAs are the two ends of one ESP SA: same SPI, suite and keys.
pub fn assert_ends_match(out: &SaConfig, inb: &SaConfig) {
    assert_eq!(out.spi, inb.spi);
    assert_eq!(out.suite, inb.suite);
    assert_eq!(&out.encryption_key[..], &inb.encryption_key[..]);
    assert_eq!(&out.integrity_key[..], &inb.integrity_key[..]);
    assert_eq!(out.esn, inb.esn);
    assert_eq!(out.local, inb.remote);
}

pub fn installs(events: &[Event]) -> Vec<(&SaConfig, &SaConfig)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::InstallChildSa { inbound, outbound, .. } => Some((inbound, outbound)),
            _ => None,
        })
        .collect()
}

pub fn suite_gcm256() -> Suite {
    Suite::from_swanctl("aes256gcm16").unwrap()
}

pub fn tunnel() -> Mode {
    Mode::Tunnel
}
