//! The event ring: a bounded multi-producer queue in shared memory, from data-plane workers to
//! the IKE daemon (acquire, soft and hard expiry, sequence number near wrap).
//!
//! Producers never block and never take a lock: a full ring counts the event as dropped and
//! returns at once. The algorithm is Vyukov's bounded queue: each slot carries a sequence word;
//! a producer claims a position with a compare-and-swap on the tail, writes the event words,
//! then publishes the slot with a compare-and-swap of its sequence word; the consumer reads a
//! published slot and hands it back for the next lap. The file starts zeroed, so sequence words
//! are stored relative to the slot's index (`stored = position - index` for "free for
//! position").
//!
//! A producer that dies between claim and publish would stall the consumer forever; the
//! consumer skips such a slot after [`STALL_TIMEOUT`] (counted as lost). Each event carries a
//! checksum, so that the rare torn event left by a producer that was only slow is counted as
//! lost too, never delivered. This module never allocates on the push path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::hash::checksum;
use crate::policy::PolicyId;
use crate::record::SaId;
use crate::shm::Db;

/// How long the consumer waits for a claimed slot to be published before it skips it.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(1);

const BODY_WORDS: usize = 15;

/// Which lifetime ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Bytes.
    Bytes,
    /// Packets.
    Packets,
    /// Seconds since install.
    Time,
}

/// A packet's addresses, protocol and ports (0 when the protocol has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol.
    pub proto: u8,
    /// Source port (ICMP: type).
    pub sport: u16,
    /// Destination port (ICMP: code).
    pub dport: u16,
}

/// Something the data plane tells the IKE daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Traffic hit a protect policy that has no usable SA: negotiate one (RFC 4301 section 5.2
    /// "acquire"). The data plane should rate-limit these per policy.
    Acquire {
        /// The policy hit.
        policy: PolicyId,
        /// The packet that hit it.
        flow: Flow,
    },
    /// A soft lifetime ran out: rekey.
    SoftExpire {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: u32,
        /// Which limit.
        limit: LimitKind,
    },
    /// A hard lifetime ran out: the data plane stopped using the SA; delete it.
    HardExpire {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: u32,
        /// Which limit.
        limit: LimitKind,
    },
    /// The outbound sequence number reservation passed the wrap margin: rekey now.
    SeqNearWrap {
        /// The SA.
        sa: SaId,
        /// Its SPI.
        spi: u32,
        /// Highest sequence number reserved so far.
        reserved: u64,
    },
}

/// The ring was full: the event was counted as dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("event ring full")]
pub struct RingFull;

fn limit_code(l: LimitKind) -> u64 {
    match l {
        LimitKind::Bytes => 1,
        LimitKind::Packets => 2,
        LimitKind::Time => 3,
    }
}

fn limit_from(c: u64) -> Option<LimitKind> {
    Some(match c {
        1 => LimitKind::Bytes,
        2 => LimitKind::Packets,
        3 => LimitKind::Time,
        _ => return None,
    })
}

fn addr_words(a: IpAddr) -> (u64, u64, u64) {
    match a {
        IpAddr::V4(v4) => (4, u64::from(u32::from(v4)), 0),
        IpAddr::V6(v6) => {
            let x = u128::from(v6);
            (6, (x >> 64) as u64, x as u64)
        }
    }
}

fn addr_from(family: u64, hi: u64, lo: u64) -> Option<IpAddr> {
    match family {
        4 => Some(IpAddr::V4(Ipv4Addr::from(hi as u32))),
        6 => Some(IpAddr::V6(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))),
        _ => None,
    }
}

fn encode(e: &Event) -> [u64; BODY_WORDS] {
    let mut w = [0u64; BODY_WORDS];
    let sa_word = |sa: SaId| u64::from(sa.slot) | (u64::from(sa.incarnation) << 32);
    match *e {
        Event::Acquire { policy, flow } => {
            let (fam, s_hi, s_lo) = addr_words(flow.src);
            let (_, d_hi, d_lo) = addr_words(flow.dst);
            w[0] = 1 | (fam << 16) | (u64::from(flow.proto) << 24) | (u64::from(flow.sport) << 32);
            w[0] |= u64::from(flow.dport) << 48;
            w[1] = u64::from(policy.slot) | (u64::from(policy.incarnation) << 32);
            (w[4], w[5], w[6], w[7]) = (s_hi, s_lo, d_hi, d_lo);
            // A mixed-family flow cannot be encoded faithfully; mark the destination family.
            w[8] = addr_words(flow.dst).0;
        }
        Event::SoftExpire { sa, spi, limit } => {
            w[0] = 2 | (limit_code(limit) << 8);
            w[1] = sa_word(sa);
            w[2] = spi.into();
        }
        Event::HardExpire { sa, spi, limit } => {
            w[0] = 3 | (limit_code(limit) << 8);
            w[1] = sa_word(sa);
            w[2] = spi.into();
        }
        Event::SeqNearWrap { sa, spi, reserved } => {
            w[0] = 4;
            w[1] = sa_word(sa);
            w[2] = spi.into();
            w[3] = reserved;
        }
    }
    w[BODY_WORDS - 1] = checksum(&w[..BODY_WORDS - 1]);
    w
}

fn decode(w: &[u64; BODY_WORDS]) -> Option<Event> {
    if checksum(&w[..BODY_WORDS - 1]) != w[BODY_WORDS - 1] {
        return None;
    }
    let sa = SaId { slot: w[1] as u32, incarnation: (w[1] >> 32) as u32 };
    let spi = w[2] as u32;
    Some(match w[0] & 0xff {
        1 => Event::Acquire {
            policy: PolicyId { slot: w[1] as u32, incarnation: (w[1] >> 32) as u32 },
            flow: Flow {
                src: addr_from((w[0] >> 16) & 0xff, w[4], w[5])?,
                dst: addr_from(w[8], w[6], w[7])?,
                proto: (w[0] >> 24) as u8,
                sport: (w[0] >> 32) as u16,
                dport: (w[0] >> 48) as u16,
            },
        },
        2 => Event::SoftExpire { sa, spi, limit: limit_from((w[0] >> 8) & 0xff)? },
        3 => Event::HardExpire { sa, spi, limit: limit_from((w[0] >> 8) & 0xff)? },
        4 => Event::SeqNearWrap { sa, spi, reserved: w[3] },
        _ => return None,
    })
}

/// Pushes an event (any thread of any process). Never blocks.
pub(crate) fn push(db: &Db, e: &Event) -> Result<(), RingFull> {
    let c = db.control();
    let ring = db.events();
    let mask = ring.len() as u64 - 1;
    let body = encode(e);
    let mut pos = c.ev_tail.load(Ordering::Relaxed);
    let slot = loop {
        let slot = &ring[(pos & mask) as usize];
        let lap = pos & !mask;
        let seq = slot.words[0].load(Ordering::Acquire);
        if seq == lap {
            match c.ev_tail.compare_exchange_weak(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break slot,
                Err(now) => pos = now,
            }
        } else if (seq.wrapping_sub(lap) as i64) < 0 {
            // The slot still holds (or is being filled with) an event of the previous lap.
            c.ev_dropped.fetch_add(1, Ordering::Relaxed);
            return Err(RingFull);
        } else {
            // Another producer took this position: move on.
            pos = c.ev_tail.load(Ordering::Relaxed);
        }
    };
    let lap = pos & !mask;
    for (w, b) in slot.words[1..].iter().zip(body) {
        w.store(b, Ordering::Relaxed);
    }
    // Fails only if the consumer gave up on this slot because we stalled for a whole
    // STALL_TIMEOUT; it counted the event as lost.
    let _ = slot.words[0].compare_exchange(lap, lap + 1, Ordering::Release, Ordering::Relaxed);
    Ok(())
}

/// Claims a position and never publishes it: what a producer that dies mid-push leaves.
/// For crash tests only.
#[cfg(feature = "test-hooks")]
pub(crate) fn claim_and_die(db: &Db) {
    let c = db.control();
    c.ev_tail.fetch_add(1, Ordering::Relaxed);
}

/// What the consumer found at the head of the ring.
pub(crate) enum Pop {
    /// An event.
    Event(Event),
    /// A torn event, counted as lost and consumed.
    Torn,
    /// Nothing.
    Empty,
    /// A producer claimed the head position (given) but has not published it yet.
    Pending(u64),
}

/// Takes the event at the head (the single consumer: the writer).
pub(crate) fn pop(db: &Db) -> Pop {
    let c = db.control();
    let ring = db.events();
    let mask = ring.len() as u64 - 1;
    let pos = c.ev_head.load(Ordering::Relaxed);
    let slot = &ring[(pos & mask) as usize];
    let lap = pos & !mask;
    let seq = slot.words[0].load(Ordering::Acquire);
    if seq == lap + 1 {
        let mut body = [0u64; BODY_WORDS];
        for (b, w) in body.iter_mut().zip(&slot.words[1..]) {
            *b = w.load(Ordering::Relaxed);
        }
        slot.words[0].store(lap + mask + 1, Ordering::Release);
        c.ev_head.store(pos + 1, Ordering::Relaxed);
        match decode(&body) {
            Some(e) => Pop::Event(e),
            None => {
                c.ev_lost.fetch_add(1, Ordering::Relaxed);
                Pop::Torn
            }
        }
    } else if c.ev_tail.load(Ordering::Relaxed) > pos {
        Pop::Pending(pos)
    } else {
        Pop::Empty
    }
}

/// Skips the head slot that a producer claimed and never published.
pub(crate) fn skip(db: &Db, pos: u64) {
    let c = db.control();
    let ring = db.events();
    let mask = ring.len() as u64 - 1;
    let slot = &ring[(pos & mask) as usize];
    let lap = pos & !mask;
    if slot.words[0].compare_exchange(lap, lap + mask + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
        c.ev_head.store(pos + 1, Ordering::Relaxed);
        c.ev_lost.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_round_trips_and_corruption_is_caught() {
        let sa = SaId { slot: 7, incarnation: 3 };
        let events = [
            Event::Acquire {
                policy: PolicyId { slot: 1, incarnation: 2 },
                flow: Flow {
                    src: "2001:db8::1".parse().unwrap(),
                    dst: "2001:db8::2".parse().unwrap(),
                    proto: 6,
                    sport: 1234,
                    dport: 443,
                },
            },
            Event::Acquire {
                policy: PolicyId { slot: 1, incarnation: 2 },
                flow: Flow {
                    src: "10.0.0.1".parse().unwrap(),
                    dst: "10.0.0.2".parse().unwrap(),
                    proto: 1,
                    sport: 8,
                    dport: 0,
                },
            },
            Event::SoftExpire { sa, spi: 9, limit: LimitKind::Bytes },
            Event::HardExpire { sa, spi: 9, limit: LimitKind::Time },
            Event::SeqNearWrap { sa, spi: 9, reserved: 1 << 31 },
        ];
        for e in events {
            let mut w = encode(&e);
            assert_eq!(decode(&w), Some(e));
            w[1] ^= 1;
            assert_eq!(decode(&w), None);
        }
    }
}
