//! IKE fragmentation (RFC 7383) as one IKE SA sees it: how many bytes of IKE message fit the
//! configured fragment size ([`datagram_budget`]), and the reassembly of the peer's fragmented
//! messages ([`Reassembler`]) with its limits.
//!
//! The cryptography is not here: the driver (`crate::ike_sa`) runs [`Reassembler::check`] (the
//! tests RFC 7383 section 2.6 puts before the ICV), then checks the fragment's ICV and decrypts
//! it (`crate::sk::open_fragment`), and only then hands it to [`Reassembler::insert`]: nothing
//! that did not authenticate is kept. Memory is bounded three ways: per message
//! ([`MAX_FRAGMENTS`], [`MAX_MESSAGE_BYTES`]), per IKE SA (one message per direction, at most
//! [`MAX_SA_BYTES`] together) and for the whole endpoint ([`Pool`] against
//! `EndpointConfig::fragment_memory`); incomplete messages go after `fragment_timeout`. Every
//! fragment dropped, now or later, is counted under its reason in the endpoint's
//! [`Diagnostics`].
//!
//! No I/O, no clock (the caller gives the time), no key.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::diagnostic::{Diagnostics, Ignored};
use crate::message::{FragmentNumber, Message};

/// Most fragments one message may come in. RFC 7383 allows up to 65535; 64 fragments of the
/// smallest sensible size (576-byte IPv4 datagrams, about 450 bytes of contents each) carry
/// 28 KiB, more than the biggest certificate chains in use, and bound the bookkeeping of one
/// message.
pub const MAX_FRAGMENTS: u16 = 64;

/// Most bytes of contents one reassembled message may have (the decrypted fragments
/// together): what one UDP datagram could carry.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Most bytes of contents one IKE SA holds in reassembly, both directions (the peer's request
/// and its answer to ours) together.
pub const MAX_SA_BYTES: usize = 64 * 1024;

/// IPv4 header without options.
const IPV4_HEADER: usize = 20;
/// IPv6 header without extension headers.
const IPV6_HEADER: usize = 40;
/// UDP header.
const UDP_HEADER: usize = 8;
/// The non-ESP marker in front of IKE on the NAT-T port (RFC 3948 section 2.2).
const NON_ESP_MARKER: usize = 4;

/// The fragment size for a peer: `fragment_size`, or with 0 the RFC 7383 section 2.5.1 values
/// (576 bytes for IPv4, 1280 for IPv6).
pub fn fragment_size(fragment_size: usize, remote: SocketAddr) -> usize {
    match fragment_size {
        0 if remote.is_ipv4() => 576,
        0 => 1280,
        n => n,
    }
}

/// What an IP datagram adds to an IKE message sent from `local` to `remote`: the IP header
/// (20 bytes for IPv4, 40 for IPv6; Rampart's sockets send neither options nor extension
/// headers), the UDP header (8) and, off port 500, the non-ESP marker (4). The marker is
/// counted on every port but 500: the core does not know which of a daemon's ports frames it,
/// and four bytes too many are harmless where four too few are not.
pub fn datagram_overhead(local: SocketAddr, remote: SocketAddr) -> usize {
    let ip = if remote.is_ipv4() { IPV4_HEADER } else { IPV6_HEADER };
    let marker = if local.port() == 500 { 0 } else { NON_ESP_MARKER };
    ip + UDP_HEADER + marker
}

//= https://www.rfc-editor.org/rfc/rfc7383#section-2.5.1
//# ... the size of the IP datagram ... includes the IP header, the UDP header, the non-ESP
//# marker (if UDP encapsulation is used), the IKE header, ...
/// Bytes of IKE message (header to ICV) that one IP datagram of at most `fragment_size` bytes
/// carries from `local` to `remote`.
pub fn datagram_budget(fragment_size_cfg: usize, local: SocketAddr, remote: SocketAddr) -> usize {
    fragment_size(fragment_size_cfg, remote).saturating_sub(datagram_overhead(local, remote))
}

/// Which of the peer's messages a reassembly collects: the message IDs of its requests and of
/// its answers to ours are counted apart, and each has a window of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The peer's requests.
    Request,
    /// The peer's answers to our requests.
    Response,
}

impl Slot {
    fn index(self) -> usize {
        match self {
            Slot::Request => 0,
            Slot::Response => 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Slot::Request => "request",
            Slot::Response => "response",
        }
    }
}

/// Bytes held in reassembly by every IKE SA of an endpoint together.
#[derive(Debug, Default)]
pub struct Pool {
    /// Bytes held now.
    pub used: usize,
}

/// A message put back together.
#[derive(Debug)]
pub struct Assembled {
    /// The first fragment, parsed: the header (and any unprotected payloads) the message is
    /// processed under.
    pub message: Message,
    /// Type of the first inner payload (the first fragment's Next Payload).
    pub first_inner: u8,
    /// The inner payloads as encoded, every fragment's contents in order.
    pub plain: Vec<u8>,
}

/// What became of a fragment given to [`Reassembler::insert`].
#[derive(Debug)]
pub enum Inserted {
    /// Kept; its message is not complete yet.
    Kept,
    /// It completed its message.
    Complete(Assembled),
    /// Dropped (counted).
    Dropped,
}

/// One message being reassembled.
#[derive(Debug)]
struct Reassembly {
    message_id: u32,
    total: u16,
    started: Instant,
    /// The contents by Fragment Number - 1 (`total` slots).
    chunks: Vec<Option<Vec<u8>>>,
    held: u16,
    bytes: usize,
    /// Fragment 1, parsed, and its Next Payload.
    first: Option<(Message, u8)>,
}

/// The peer's fragmented messages of one IKE SA, at most one per [`Slot`].
#[derive(Debug, Default)]
pub struct Reassembler {
    slots: [Option<Reassembly>; 2],
    /// Per slot, the message given up for growing past [`MAX_MESSAGE_BYTES`]: its later
    /// fragments are dropped at once instead of filling a new reassembly.
    too_big: [Option<u32>; 2],
}

impl Reassembler {
    /// Bytes held (both slots).
    pub fn bytes(&self) -> usize {
        self.slots.iter().flatten().map(|r| r.bytes).sum()
    }

    /// Fragments held (both slots).
    pub fn held(&self) -> usize {
        self.slots.iter().flatten().map(|r| r.held as usize).sum()
    }

    /// The tests of a fragment of message `id` that come before its ICV is checked (RFC 7383
    /// section 2.6), cheapest first: `Err` with the reason and a detail when it is to be
    /// dropped.
    pub fn check(&self, slot: Slot, id: u32, f: FragmentNumber) -> Result<(), (Ignored, String)> {
        let (n, t) = (f.number, f.total);
        //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6
        //# check that the Fragment Number and the Total Fragments fields are non-zero;
        //# check that the Fragment Number field is less than or equal to the Total Fragments
        //# field
        if n == 0 || t == 0 || n > t {
            return Err((Ignored::FragmentInvalid, format!("{} {id}: fragment {n} of {t}", slot.name())));
        }
        if t > MAX_FRAGMENTS {
            return Err((
                Ignored::FragmentTooMany,
                format!("{} {id}: {t} fragments, at most {MAX_FRAGMENTS} are taken", slot.name()),
            ));
        }
        if self.too_big[slot.index()] == Some(id) {
            return Err((
                Ignored::FragmentTooBig,
                format!("{} {id}: fragment {n} of {t} of a message given up as too big", slot.name()),
            ));
        }
        if let Some(r) = &self.slots[slot.index()]
            && r.message_id == id
        {
            //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6
            //# if reassembling has already started, check that the Total Fragments field is
            //# equal to or greater than the Total Fragments field in the fragments that have
            //# already been stored in the reassembling queue.
            if t < r.total {
                return Err((
                    Ignored::FragmentTotalChanged,
                    format!("{} {id}: fragment {n} of {t}, the fragments held say {}", slot.name(), r.total),
                ));
            }
            //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6
            //# If an IKE Fragment message with the same Message ID, same Fragment Number, and
            //# same Total Fragments fields is already present in the reassembling queue, this
            //# message is considered a replay and MUST be discarded.
            if t == r.total && r.chunks.get(usize::from(n) - 1).is_some_and(Option::is_some) {
                return Err((Ignored::FragmentDuplicate, format!("{} {id}: fragment {n} of {t} again", slot.name())));
            }
        }
        Ok(())
    }

    /// Keeps the authenticated contents `chunk` of fragment `f` of message `id` (`first`: the
    /// parsed fragment and its Next Payload, for fragment 1), and hands the message back when
    /// it is complete. Counts in `diag` what it drops, and what it gives up of the fragments
    /// held (a newer message, a higher Total Fragments, a message grown too big).
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        now: Instant,
        slot: Slot,
        id: u32,
        f: FragmentNumber,
        chunk: Vec<u8>,
        first: Option<(Message, u8)>,
        (pool, limit): (&mut Pool, usize),
        diag: &mut Diagnostics,
        remote: SocketAddr,
    ) -> Inserted {
        let (n, t) = (f.number, f.total);
        let what = slot.name();
        if n == 0 || n > t || t > MAX_FRAGMENTS {
            diag.dropped(Ignored::FragmentInvalid, remote, || format!("{what} {id}: fragment {n} of {t}"));
            return Inserted::Dropped;
        }
        let i = slot.index();
        if let Some(r) = &self.slots[i] {
            //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6.1
            //# ... a newer message ... the receiver ... discard ... the older one
            if id > r.message_id {
                let old = r.message_id;
                self.discard(slot, pool, diag, remote, Ignored::FragmentSuperseded, || {
                    format!("{what} {old}: incomplete when fragments of {id} came")
                });
            } else if id < r.message_id {
                let newer = r.message_id;
                diag.dropped(Ignored::OutOfWindow, remote, || {
                    format!("{what} {id}: fragment {n} of {t}, the reassembly is at {newer}")
                });
                return Inserted::Dropped;
            } else if t > r.total {
                //= https://www.rfc-editor.org/rfc/rfc7383#section-2.6
                //# If reassembling is not finished yet and the Total Fragments field in the
                //# received fragment is greater than the Total Fragments field in those
                //# fragments that are in the reassembling queue, the receiver MUST discard all
                //# received fragments and start the reassembly process over with just the
                //# received IKE Fragment message.
                let old = r.total;
                self.discard(slot, pool, diag, remote, Ignored::FragmentTotalChanged, || {
                    format!("{what} {id}: held fragments of {old} given up for fragment {n} of {t}")
                });
            } else if t < r.total || r.chunks.get(usize::from(n) - 1).is_some_and(Option::is_some) {
                let reason = if t < r.total { Ignored::FragmentTotalChanged } else { Ignored::FragmentDuplicate };
                diag.dropped(reason, remote, || format!("{what} {id}: fragment {n} of {t}"));
                return Inserted::Dropped;
            }
        }
        let held_elsewhere = self.slots[1 - i].as_ref().map_or(0, |r| r.bytes);
        let r = self.slots[i].get_or_insert_with(|| Reassembly {
            message_id: id,
            total: t,
            started: now,
            chunks: vec![None; usize::from(t)],
            held: 0,
            bytes: 0,
            first: None,
        });
        let len = chunk.len();
        if r.bytes + len > MAX_MESSAGE_BYTES {
            let held = r.bytes;
            self.too_big[i] = Some(id);
            self.discard(slot, pool, diag, remote, Ignored::FragmentTooBig, || {
                format!("{what} {id}: {} bytes and more, at most {MAX_MESSAGE_BYTES} are taken", held + len)
            });
            diag.dropped(Ignored::FragmentTooBig, remote, || format!("{what} {id}: fragment {n} of {t}"));
            return Inserted::Dropped;
        }
        if held_elsewhere + r.bytes + len > MAX_SA_BYTES || pool.used + len > limit {
            let empty = r.held == 0;
            let sa = held_elsewhere + r.bytes;
            diag.dropped(Ignored::FragmentMemory, remote, || {
                format!(
                    "{what} {id}: fragment {n} of {t} ({len} bytes): the IKE SA holds {sa} of {MAX_SA_BYTES}, \
                     all IKE SAs {} of {limit}",
                    pool.used
                )
            });
            if empty {
                self.slots[i] = None;
            }
            return Inserted::Dropped;
        }
        let Some(place) = r.chunks.get_mut(usize::from(n) - 1) else {
            return Inserted::Dropped;
        };
        *place = Some(chunk);
        r.held += 1;
        r.bytes += len;
        pool.used += len;
        if n == 1 {
            r.first = first;
        }
        if r.held < r.total {
            return Inserted::Kept;
        }
        let Some(done) = self.slots[i].take() else { return Inserted::Kept };
        pool.used = pool.used.saturating_sub(done.bytes);
        let mut plain = Vec::with_capacity(done.bytes);
        for c in done.chunks.into_iter().flatten() {
            plain.extend_from_slice(&c);
        }
        match done.first {
            Some((message, first_inner)) => Inserted::Complete(Assembled { message, first_inner, plain }),
            // Every fragment is there, so fragment 1 is: only a caller that gave it without
            // its parsed message ends here.
            None => Inserted::Dropped,
        }
    }

    /// Gives up the reassembly of a message ID below `below` in `slot` (the window moved past
    /// it: the message was answered, or came whole), counting its fragments as superseded.
    pub fn retire(&mut self, slot: Slot, below: u32, pool: &mut Pool, diag: &mut Diagnostics, remote: SocketAddr) {
        if let Some(r) = &self.slots[slot.index()]
            && r.message_id < below
        {
            let (id, what) = (r.message_id, slot.name());
            self.discard(slot, pool, diag, remote, Ignored::FragmentSuperseded, || {
                format!("{what} {id}: incomplete when the window moved on")
            });
        }
    }

    /// When the oldest incomplete message times out.
    pub fn deadline(&self, timeout: Duration) -> Option<Instant> {
        self.slots.iter().flatten().map(|r| r.started + timeout).min()
    }

    /// Gives up the messages incomplete for `timeout` at `now`.
    pub fn expire(
        &mut self,
        now: Instant,
        timeout: Duration,
        pool: &mut Pool,
        diag: &mut Diagnostics,
        remote: SocketAddr,
    ) {
        for slot in [Slot::Request, Slot::Response] {
            if let Some(r) = &self.slots[slot.index()]
                && now >= r.started + timeout
            {
                let (id, held, total) = (r.message_id, r.held, r.total);
                self.discard(slot, pool, diag, remote, Ignored::FragmentTimeout, || {
                    format!("{} {id}: {held} of {total} fragments after {timeout:?}", slot.name())
                });
            }
        }
    }

    /// Drops everything (the IKE SA ends), uncounted.
    pub fn clear(&mut self, pool: &mut Pool) {
        pool.used = pool.used.saturating_sub(self.bytes());
        self.slots = [None, None];
        self.too_big = [None, None];
    }

    fn discard(
        &mut self,
        slot: Slot,
        pool: &mut Pool,
        diag: &mut Diagnostics,
        remote: SocketAddr,
        reason: Ignored,
        detail: impl FnOnce() -> String,
    ) {
        if let Some(r) = self.slots[slot.index()].take() {
            pool.used = pool.used.saturating_sub(r.bytes);
            diag.discarded(reason, u64::from(r.held), remote, detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_ip_udp_and_the_marker() {
        let v4: SocketAddr = "192.0.2.1:500".parse().unwrap();
        let v4_natt: SocketAddr = "192.0.2.1:4500".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:4500".parse().unwrap();
        assert_eq!(datagram_budget(1280, v4, v4), 1280 - 20 - 8);
        assert_eq!(datagram_budget(1280, v4_natt, v4_natt), 1280 - 20 - 8 - 4);
        assert_eq!(datagram_budget(1280, v6, v6), 1280 - 40 - 8 - 4);
        assert_eq!(datagram_budget(0, v4, v4), 576 - 28);
        assert_eq!(datagram_budget(0, v6, v6), 1280 - 52);
        assert_eq!(datagram_budget(10, v6, v6), 0);
    }
}
