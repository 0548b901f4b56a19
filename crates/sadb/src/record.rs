//! The SA record: what one SA looks like in shared memory, and its conversion from and to
//! [`rampart_sa::SaConfig`], so that the IKE daemon and the data plane speak the same types.
//!
//! A record is plain bytes (`#[repr(C, align(64))]`, no padding, every bit pattern a valid
//! value), copied in and out of its slot under the seqlock. Keys in a copy are zeroized when
//! the copy drops; `Debug` never shows them. This module must never touch shared memory.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rampart_sa::Suite;
use rampart_sa::{Direction, Lifetimes, MAX_REPLAY_WINDOW, Mode, SaConfig, TrafficSelector, UdpEncap};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};
use zeroize::{Zeroize, Zeroizing};

use crate::error::RecordError;
use crate::layout::{MAX_TS_PER_SIDE, SA_RECORD_SIZE};
use crate::shm::SA_WORDS;

/// Words of the record prefix that holds everything [`SaMeta`] needs (lines 0 and 1).
pub(crate) const SA_META_WORDS: usize = 16;

pub(crate) const STATE_LIVE: u32 = 1;

const DIR_IN: u8 = 1;
const DIR_OUT: u8 = 2;
const MODE_TUNNEL: u8 = 1;
const MODE_TRANSPORT: u8 = 2;
const FLAG_ESN: u8 = 1;
const FLAG_ENCAP: u8 = 2;
/// The SA is AH (RFC 4302); without it, ESP.
const FLAG_AH: u8 = 4;

/// Names one SA: its slot and the incarnation of that slot (bumped each time the slot is
/// reused), so that a stale name never reaches a newer SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaId {
    /// Slot number (index into the SA region, the usage region and a data plane's tables).
    pub slot: u32,
    /// Incarnation of the slot.
    pub incarnation: u32,
}

/// One traffic selector as stored in a record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(crate) struct TsRecord {
    start: [u8; 16],
    end: [u8; 16],
    start_port: u16,
    end_port: u16,
    protocol: u8,
    family: u8,
    _pad: [u8; 2],
}

const _: () = assert!(core::mem::size_of::<TsRecord>() == 40);

/// An SA as stored in shared memory. Obtained from [`SaRecord::from_config`] (writer side) or
/// from a reader (`Reader::read_sa`), which only hands out records that passed validation.
#[repr(C, align(64))]
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SaRecord {
    // Line 0: identity and parameters.
    version: u64,
    state: u32,
    incarnation: u32,
    spi: u32,
    reqid: u32,
    direction: u8,
    mode: u8,
    outer_family: u8,
    flags: u8,
    encr_id: u16,
    integ_id: u16,
    key_bits: u16,
    enc_key_len: u8,
    integ_key_len: u8,
    encap_local_port: u16,
    encap_remote_port: u16,
    replay_window: u32,
    n_local_ts: u8,
    n_remote_ts: u8,
    _pad0: [u8; 2],
    install_time: u64,
    slot: u32,
    _pad1: [u8; 4],
    // Line 1: outer addresses.
    local: [u8; 16],
    remote: [u8; 16],
    _pad2: [u8; 32],
    // Line 2: lifetimes (soft/hard bytes, soft/hard packets, soft/hard seconds).
    lifetimes: [u64; 6],
    _pad3: [u8; 16],
    // Lines 3-4: keys.
    enc_key: [u8; 64],
    integ_key: [u8; 64],
    // Lines 5-14: traffic selectors.
    local_ts: [TsRecord; MAX_TS_PER_SIDE],
    remote_ts: [TsRecord; MAX_TS_PER_SIDE],
    // Line 15: room for later fields.
    _reserved: [u8; 64],
}

const _: () = assert!(core::mem::size_of::<SaRecord>() as u64 == SA_RECORD_SIZE);
const _: () = assert!(core::mem::align_of::<SaRecord>() == 64);
const _: () = assert!(core::mem::offset_of!(SaRecord, lifetimes) == SA_META_WORDS * 8);
const _: () = assert!(core::mem::offset_of!(SaRecord, local_ts) == 320);

impl Drop for SaRecord {
    fn drop(&mut self) {
        self.enc_key.zeroize();
        self.integ_key.zeroize();
    }
}

impl fmt::Debug for SaRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaRecord")
            .field("version", &self.version)
            .field("id", &self.id())
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("direction", &self.direction())
            .field("mode", &self.mode())
            .field("local", &self.local())
            .field("remote", &self.remote())
            .field("suite", &self.suite())
            .field("esn", &self.esn())
            .field("encap", &self.encap())
            .field("replay_window", &self.replay_window)
            .field("reqid", &self.reqid)
            .field("local_ts", &self.local_ts().collect::<Vec<_>>())
            .field("remote_ts", &self.remote_ts().collect::<Vec<_>>())
            .field("lifetimes", &self.lifetimes())
            .field("install_time", &self.install_time)
            .finish_non_exhaustive()
    }
}

/// An address as 16 bytes (IPv4 in the first four) and a family number (4 or 6).
pub(crate) fn addr_to_bytes(a: IpAddr) -> ([u8; 16], u8) {
    match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            (b, 4)
        }
        IpAddr::V6(v6) => (v6.octets(), 6),
    }
}

/// Inverse of [`addr_to_bytes`]; `None` for an unknown family.
pub(crate) fn addr_from_bytes(b: &[u8; 16], family: u8) -> Option<IpAddr> {
    match family {
        4 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(*b))),
        _ => None,
    }
}

fn ts_to_record(ts: &TrafficSelector) -> Result<TsRecord, RecordError> {
    if ts.start.is_ipv4() != ts.end.is_ipv4() || ts.start > ts.end {
        return Err(RecordError::BadSelector { start: ts.start, end: ts.end });
    }
    let (start, family) = addr_to_bytes(ts.start);
    let (end, _) = addr_to_bytes(ts.end);
    Ok(TsRecord {
        start,
        end,
        start_port: ts.start_port,
        end_port: ts.end_port,
        protocol: ts.protocol,
        family,
        _pad: [0; 2],
    })
}

fn ts_from_record(r: &TsRecord) -> Option<TrafficSelector> {
    Some(TrafficSelector {
        protocol: r.protocol,
        start: addr_from_bytes(&r.start, r.family)?,
        end: addr_from_bytes(&r.end, r.family)?,
        start_port: r.start_port,
        end_port: r.end_port,
    })
}

fn fill_ts(side: &'static str, from: &[TrafficSelector]) -> Result<([TsRecord; MAX_TS_PER_SIDE], u8), RecordError> {
    if from.len() > MAX_TS_PER_SIDE {
        return Err(RecordError::TooManySelectors { side, count: from.len(), max: MAX_TS_PER_SIDE });
    }
    let mut out = [TsRecord::default(); MAX_TS_PER_SIDE];
    for (o, ts) in out.iter_mut().zip(from) {
        *o = ts_to_record(ts)?;
    }
    Ok((out, from.len() as u8))
}

impl SaRecord {
    /// Builds the record of an SA configuration. `reqid` ties SAs and policy templates of one
    /// tunnel together (0: none); `install_time` is in the database's seconds ([`crate::clock::now`]).
    pub fn from_config(cfg: &SaConfig, reqid: u32, install_time: u64) -> Result<SaRecord, RecordError> {
        let suite = cfg.suite;
        for (which, key, expected) in [
            ("encryption", &cfg.encryption_key, suite.encryption_key_len()),
            ("integrity", &cfg.integrity_key, suite.integrity_key_len()),
        ] {
            if key.len() != expected {
                return Err(RecordError::KeyLength { which, suite: suite.name(), expected, got: key.len() });
            }
        }
        if cfg.local.is_ipv4() != cfg.remote.is_ipv4() {
            return Err(RecordError::MixedFamilies { local: cfg.local, remote: cfg.remote });
        }
        if cfg.replay_window > MAX_REPLAY_WINDOW {
            return Err(RecordError::ReplayWindow { got: cfg.replay_window, max: MAX_REPLAY_WINDOW });
        }
        let (local_ts, n_local_ts) = fill_ts("local", &cfg.local_ts)?;
        let (remote_ts, n_remote_ts) = fill_ts("remote", &cfg.remote_ts)?;
        let (local, outer_family) = addr_to_bytes(cfg.local);
        let (remote, _) = addr_to_bytes(cfg.remote);
        let l = &cfg.lifetimes;
        let mut r = SaRecord::new_zeroed();
        r.state = STATE_LIVE;
        r.spi = cfg.spi;
        r.reqid = reqid;
        r.direction = match cfg.direction {
            Direction::Inbound => DIR_IN,
            Direction::Outbound => DIR_OUT,
        };
        r.mode = match cfg.mode {
            Mode::Tunnel => MODE_TUNNEL,
            Mode::Transport => MODE_TRANSPORT,
        };
        r.outer_family = outer_family;
        r.flags = if cfg.esn { FLAG_ESN } else { 0 }
            | if cfg.encap.is_some() { FLAG_ENCAP } else { 0 }
            | if cfg.protocol == rampart_sa::Protocol::Ah { FLAG_AH } else { 0 };
        r.encr_id = suite.encr_id();
        r.integ_id = suite.integ_id();
        r.key_bits = suite.key_bits().unwrap_or(0);
        r.enc_key_len = cfg.encryption_key.len() as u8;
        r.integ_key_len = cfg.integrity_key.len() as u8;
        r.enc_key[..cfg.encryption_key.len()].copy_from_slice(&cfg.encryption_key);
        r.integ_key[..cfg.integrity_key.len()].copy_from_slice(&cfg.integrity_key);
        if let Some(e) = cfg.encap {
            r.encap_local_port = e.local_port;
            r.encap_remote_port = e.remote_port;
        }
        r.replay_window = cfg.replay_window;
        r.install_time = install_time;
        r.local = local;
        r.remote = remote;
        r.lifetimes = [l.soft_bytes, l.hard_bytes, l.soft_packets, l.hard_packets, l.soft_seconds, l.hard_seconds];
        r.local_ts = local_ts;
        r.remote_ts = remote_ts;
        r.n_local_ts = n_local_ts;
        r.n_remote_ts = n_remote_ts;
        Ok(r)
    }

    /// The configuration stored in the record (keys copied into zeroizing buffers).
    pub fn to_config(&self) -> Result<SaConfig, RecordError> {
        self.validate()?;
        Ok(SaConfig {
            protocol: self.protocol(),
            spi: self.spi,
            direction: self.direction(),
            suite: self.suite()?,
            encryption_key: Zeroizing::new(self.encryption_key().to_vec()),
            integrity_key: Zeroizing::new(self.integrity_key().to_vec()),
            mode: self.mode(),
            local: self.local(),
            remote: self.remote(),
            encap: self.encap(),
            esn: self.esn(),
            replay_window: self.replay_window,
            local_ts: self.local_ts().collect(),
            remote_ts: self.remote_ts().collect(),
            lifetimes: self.lifetimes(),
        })
    }

    /// Checks every field a writer sets: a record that passes decodes without loss.
    pub(crate) fn validate(&self) -> Result<(), RecordError> {
        let bad = |field, value: u64| Err(RecordError::Corrupt { field, value });
        if self.state != STATE_LIVE {
            return bad("state", self.state.into());
        }
        if !matches!(self.direction, DIR_IN | DIR_OUT) {
            return bad("direction", self.direction.into());
        }
        if !matches!(self.mode, MODE_TUNNEL | MODE_TRANSPORT) {
            return bad("mode", self.mode.into());
        }
        if !matches!(self.outer_family, 4 | 6) {
            return bad("outer_family", self.outer_family.into());
        }
        if self.flags & !(FLAG_ESN | FLAG_ENCAP | FLAG_AH) != 0 {
            return bad("flags", self.flags.into());
        }
        let suite = self.suite()?;
        if usize::from(self.enc_key_len) != suite.encryption_key_len() {
            return bad("enc_key_len", self.enc_key_len.into());
        }
        if usize::from(self.integ_key_len) != suite.integrity_key_len() {
            return bad("integ_key_len", self.integ_key_len.into());
        }
        if usize::from(self.n_local_ts) > MAX_TS_PER_SIDE {
            return bad("n_local_ts", self.n_local_ts.into());
        }
        if usize::from(self.n_remote_ts) > MAX_TS_PER_SIDE {
            return bad("n_remote_ts", self.n_remote_ts.into());
        }
        for ts in self.local_ts[..self.n_local_ts.into()].iter().chain(&self.remote_ts[..self.n_remote_ts.into()]) {
            if !matches!(ts.family, 4 | 6) {
                return bad("traffic selector family", ts.family.into());
            }
        }
        Ok(())
    }

    /// Seqlock version of the slot this copy was read at (0 for a record not read from a slot).
    /// A data plane rebuilds its runtime of a slot when this changes.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The SA's name in the database (slot 0 for a record not yet installed).
    pub fn id(&self) -> SaId {
        SaId { slot: self.slot, incarnation: self.incarnation }
    }

    /// Security parameter index.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// Tunnel id shared by the SAs and policy templates of one tunnel (0: none).
    pub fn reqid(&self) -> u32 {
        self.reqid
    }

    /// Inbound or outbound.
    pub fn direction(&self) -> Direction {
        if self.direction == DIR_OUT { Direction::Outbound } else { Direction::Inbound }
    }

    /// Tunnel or transport.
    pub fn mode(&self) -> Mode {
        if self.mode == MODE_TRANSPORT { Mode::Transport } else { Mode::Tunnel }
    }

    /// Our outer address.
    pub fn local(&self) -> IpAddr {
        addr_from_bytes(&self.local, self.outer_family).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// The peer's outer address.
    pub fn remote(&self) -> IpAddr {
        addr_from_bytes(&self.remote, self.outer_family).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// Destination address of the SA's ESP packets: ours for inbound, the peer's for outbound.
    pub fn outer_dst(&self) -> IpAddr {
        match self.direction() {
            Direction::Inbound => self.local(),
            Direction::Outbound => self.remote(),
        }
    }

    /// The suite, rebuilt from the IKEv2 transform numbers and key size (policy-checked).
    pub fn suite(&self) -> Result<Suite, rampart_sa::PolicyError> {
        let bits = if self.key_bits == 0 { None } else { Some(self.key_bits) };
        Suite::from_ikev2(self.encr_id, bits, self.integ_id)
    }

    /// IKEv2 encryption transform number, key size (0: none) and integrity transform number.
    pub fn transforms(&self) -> (u16, u16, u16) {
        (self.encr_id, self.key_bits, self.integ_id)
    }

    /// Encryption key (with the AEAD salt). Borrowed: it is zeroized with the record.
    pub fn encryption_key(&self) -> &[u8] {
        &self.enc_key[..usize::from(self.enc_key_len).min(self.enc_key.len())]
    }

    /// Integrity key (empty for AEADs). Borrowed: it is zeroized with the record.
    pub fn integrity_key(&self) -> &[u8] {
        &self.integ_key[..usize::from(self.integ_key_len).min(self.integ_key.len())]
    }

    /// Extended sequence numbers.
    pub fn esn(&self) -> bool {
        self.flags & FLAG_ESN != 0
    }

    /// ESP or AH.
    pub fn protocol(&self) -> rampart_sa::Protocol {
        if self.flags & FLAG_AH != 0 { rampart_sa::Protocol::Ah } else { rampart_sa::Protocol::Esp }
    }

    /// UDP encapsulation ports, when NAT traversal is on.
    pub fn encap(&self) -> Option<UdpEncap> {
        (self.flags & FLAG_ENCAP != 0)
            .then_some(UdpEncap { local_port: self.encap_local_port, remote_port: self.encap_remote_port })
    }

    /// Anti-replay window in packets.
    pub fn replay_window(&self) -> u32 {
        self.replay_window
    }

    /// The database's seconds ([`crate::clock::now`]) when the SA was installed.
    pub fn install_time(&self) -> u64 {
        self.install_time
    }

    /// Soft and hard lifetimes.
    pub fn lifetimes(&self) -> Lifetimes {
        let l = self.lifetimes;
        Lifetimes {
            soft_bytes: l[0],
            hard_bytes: l[1],
            soft_packets: l[2],
            hard_packets: l[3],
            soft_seconds: l[4],
            hard_seconds: l[5],
        }
    }

    /// Selectors of our side.
    pub fn local_ts(&self) -> impl Iterator<Item = TrafficSelector> + '_ {
        let n = usize::from(self.n_local_ts).min(MAX_TS_PER_SIDE);
        self.local_ts[..n].iter().filter_map(ts_from_record)
    }

    /// Selectors of the peer's side.
    pub fn remote_ts(&self) -> impl Iterator<Item = TrafficSelector> + '_ {
        let n = usize::from(self.n_remote_ts).min(MAX_TS_PER_SIDE);
        self.remote_ts[..n].iter().filter_map(ts_from_record)
    }

    pub(crate) fn is_live(&self) -> bool {
        self.state == STATE_LIVE
    }

    pub(crate) fn set_id(&mut self, id: SaId) {
        self.slot = id.slot;
        self.incarnation = id.incarnation;
    }

    /// A free record: all zeros (keys included) but the incarnation, which survives.
    pub(crate) fn free(id: SaId) -> SaRecord {
        let mut r = SaRecord::new_zeroed();
        r.set_id(id);
        r
    }

    /// The record as slot words (word 0, the version, is not written by the writer).
    pub(crate) fn to_words(&self) -> Zeroizing<[u64; SA_WORDS]> {
        let mut w = Zeroizing::new([0u64; SA_WORDS]);
        w.as_mut_bytes().copy_from_slice(self.as_bytes());
        w
    }

    /// A record from slot words (word 0 is the version it was read at).
    pub(crate) fn from_words(words: &[u64; SA_WORDS]) -> SaRecord {
        let mut r = SaRecord::new_zeroed();
        r.as_mut_bytes().copy_from_slice(words.as_bytes());
        r
    }

    /// The metadata of a record (from its first [`SA_META_WORDS`] words).
    pub(crate) fn meta(&self) -> SaMeta {
        SaMeta {
            id: self.id(),
            version: self.version,
            spi: self.spi,
            direction: self.direction(),
            mode: self.mode(),
            local: self.local(),
            remote: self.remote(),
            reqid: self.reqid,
            esn: self.esn(),
            protocol: self.protocol(),
            install_time: self.install_time,
        }
    }

    /// Whether the first [`SA_META_WORDS`] words describe a live record with valid enums.
    pub(crate) fn meta_is_valid(&self) -> bool {
        self.state == STATE_LIVE
            && matches!(self.direction, DIR_IN | DIR_OUT)
            && matches!(self.mode, MODE_TUNNEL | MODE_TRANSPORT)
            && matches!(self.outer_family, 4 | 6)
    }
}

/// What a reader needs of an SA to build lookup structures: everything but keys, selectors
/// and lifetimes. Read from the first two cache lines of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaMeta {
    /// The SA's name.
    pub id: SaId,
    /// Seqlock version of the slot at the time of reading.
    pub version: u64,
    /// Security parameter index.
    pub spi: u32,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Our outer address.
    pub local: IpAddr,
    /// The peer's outer address.
    pub remote: IpAddr,
    /// Tunnel id (0: none).
    pub reqid: u32,
    /// Extended sequence numbers.
    pub esn: bool,
    /// ESP or AH.
    pub protocol: rampart_sa::Protocol,
    /// The database's seconds ([`crate::clock::now`]) of installation.
    pub install_time: u64,
}

impl SaMeta {
    /// Destination address of the SA's ESP packets: ours for inbound, the peer's for outbound.
    pub fn outer_dst(&self) -> IpAddr {
        match self.direction {
            Direction::Inbound => self.local,
            Direction::Outbound => self.remote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(spi: u32) -> SaConfig {
        let suite = Suite::from_swanctl("aes256-sha512").unwrap();
        SaConfig {
            protocol: rampart_sa::Protocol::Esp,
            spi,
            direction: Direction::Outbound,
            suite,
            encryption_key: Zeroizing::new((0..32).collect()),
            integrity_key: Zeroizing::new((100..164).collect()),
            mode: Mode::Tunnel,
            local: "2001:db8::1".parse().unwrap(),
            remote: "2001:db8::2".parse().unwrap(),
            encap: Some(UdpEncap { local_port: 4500, remote_port: 31000 }),
            esn: true,
            replay_window: 2048,
            local_ts: vec![TrafficSelector::from_prefix("2001:db8:1::".parse().unwrap(), 48)],
            remote_ts: vec![
                TrafficSelector::from_prefix("198.18.2.0".parse().unwrap(), 24),
                TrafficSelector {
                    protocol: 6,
                    start: "10.0.0.1".parse().unwrap(),
                    end: "10.0.0.9".parse().unwrap(),
                    start_port: 80,
                    end_port: 443,
                },
            ],
            lifetimes: Lifetimes {
                soft_bytes: 1,
                hard_bytes: 2,
                soft_packets: 3,
                hard_packets: 4,
                soft_seconds: 5,
                hard_seconds: 6,
            },
        }
    }

    #[test]
    fn config_round_trips_through_record_and_words() {
        let cfg = sample(0x1234);
        let rec = SaRecord::from_config(&cfg, 7, 99).unwrap();
        let words = rec.to_words();
        let back = SaRecord::from_words(&words).to_config().unwrap();
        assert_eq!(format!("{back:?}"), format!("{cfg:?}"));
        assert_eq!(*back.encryption_key, *cfg.encryption_key);
        assert_eq!(*back.integrity_key, *cfg.integrity_key);
        assert_eq!(rec.reqid(), 7);
        assert_eq!(rec.install_time(), 99);
    }

    #[test]
    fn ah_sas_keep_their_protocol_and_gmac_suite() {
        let mut cfg = sample(0x4321);
        cfg.protocol = rampart_sa::Protocol::Ah;
        cfg.suite = Suite::ah(rampart_sa::Integrity::AesGmac { key_bits: 256 }).unwrap();
        cfg.encryption_key = Zeroizing::new(Vec::new());
        cfg.integrity_key = Zeroizing::new(vec![7; 36]);
        cfg.encap = None;
        let rec = SaRecord::from_words(&SaRecord::from_config(&cfg, 3, 5).unwrap().to_words());
        assert_eq!(rec.protocol(), rampart_sa::Protocol::Ah);
        assert_eq!(rec.meta().protocol, rampart_sa::Protocol::Ah);
        let back = rec.to_config().unwrap();
        assert_eq!((back.protocol, back.suite), (cfg.protocol, cfg.suite));
        assert_eq!(&back.integrity_key[..], &cfg.integrity_key[..]);
        assert_eq!(SaRecord::from_config(&sample(1), 0, 0).unwrap().protocol(), rampart_sa::Protocol::Esp);
    }

    #[test]
    fn debug_never_shows_keys() {
        let mut cfg = sample(1);
        cfg.encryption_key = Zeroizing::new(vec![0xab; 32]);
        let rec = SaRecord::from_config(&cfg, 0, 0).unwrap();
        let dbg = format!("{rec:?}");
        assert!(!dbg.contains("171") && !dbg.to_lowercase().contains("abab"), "{dbg}");
        assert!(!dbg.contains("enc_key") && !dbg.contains("integ_key"), "{dbg}");
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut cfg = sample(1);
        cfg.integrity_key = Zeroizing::new(vec![0; 31]);
        assert!(matches!(SaRecord::from_config(&cfg, 0, 0), Err(RecordError::KeyLength { which: "integrity", .. })));
        let mut cfg = sample(1);
        cfg.local_ts = vec![TrafficSelector::any(false); 9];
        assert!(matches!(
            SaRecord::from_config(&cfg, 0, 0),
            Err(RecordError::TooManySelectors { side: "local", count: 9, .. })
        ));
        let mut cfg = sample(1);
        cfg.remote = "192.0.2.1".parse().unwrap();
        assert!(matches!(SaRecord::from_config(&cfg, 0, 0), Err(RecordError::MixedFamilies { .. })));
    }

    #[test]
    fn corrupt_records_are_refused() {
        let rec = SaRecord::from_config(&sample(1), 0, 0).unwrap();
        let mut words = rec.to_words();
        let mut bytes = words.as_bytes().to_vec();
        bytes[core::mem::offset_of!(SaRecord, direction)] = 9;
        words.as_mut_bytes().copy_from_slice(&bytes);
        let bad = SaRecord::from_words(&words);
        assert_eq!(bad.validate(), Err(RecordError::Corrupt { field: "direction", value: 9 }));
        assert!(SaRecord::free(SaId { slot: 1, incarnation: 3 }).validate().is_err());
    }
}
