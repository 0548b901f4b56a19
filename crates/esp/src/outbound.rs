//! Outbound IPsec: the runtime of one outbound SA and the encapsulation of packets, ESP (RFC
//! 4303 section 3.1 and 3.3, RFC 3948 for UDP encapsulation) or AH (RFC 4302 section 3.1 and
//! 3.3).
//!
//! The three steps of [`crate::burst::encapsulate`], which protects a burst of packets of many
//! SAs in one crypto call: [`OutboundSa::prepare`] (sequence number, ESP trailer or AH header,
//! outer headers, in place), the crypto job ([`OutboundSa::seal_op`] for ESP, [`OutboundSa::mac_op`]
//! for AH) and the finish ([`OutboundSa::finish`]: the IPv6 UDP checksum over ESP's ciphertext;
//! [`OutboundSa::finish_ah`]: the ICV into its field and the mutable header fields back).
//! [`OutboundSa::encapsulate_burst`] is that burst for one SA (both in [`crate::burst`]).
//!
//! Never allocates after construction, never panics on packet contents.

use std::net::IpAddr;

use rampart_crypto::{Backend, MacOp, SaCrypto, SealOp};
use rampart_wire::checksum::AddrPair;
use rampart_wire::{EspTrailer, Ipv4Packet, Ipv6Packet, UdpChecksum, UdpRepr, esp, ip_protocol, ipv4, ipv6, udp};

use crate::ah::{self, AhLayout};
use crate::buf::PacketBuf;
use crate::sa::{SaCounters, SaError, check_config, exceeds, ipv6_upper_layer};
use rampart_sa::DropReason;
use rampart_sa::{Direction, Lifetimes, Mode, Protocol, SaConfig, UdpEncap};

/// Fraction of the sequence space after which a rekey is asked for: 7/8 of it, so that even at
/// tens of millions of packets per second the IKE daemon has a minute to rekey a 32-bit SA.
const SEQ_SOFT_FRACTION_NUM: u64 = 7;
const SEQ_SOFT_FRACTION_DEN: u64 = 8;

/// What the SA asks of its owner, reported after each burst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboundStatus {
    /// Soft limit reached (sequence numbers or lifetime): negotiate a new SA now.
    pub rekey_needed: bool,
    /// Hard limit reached: the SA no longer sends.
    pub expired: bool,
}

/// Where a prepared packet's ESP part lies, and the sequence number it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Offset of the SPI from the start of the packet data.
    pub header_offset: usize,
    /// Full 64-bit sequence number.
    pub seq: u64,
}

/// The runtime of one outbound SA, owned by one worker.
#[derive(Debug)]
pub struct OutboundSa {
    spi: u32,
    protocol: Protocol,
    /// AH: the header's layout (unused for ESP).
    ah: AhLayout,
    crypto: SaCrypto,
    iv_len: usize,
    icv_len: usize,
    block_len: usize,
    mode: Mode,
    local: IpAddr,
    remote: IpAddr,
    encap: Option<UdpEncap>,
    esn: bool,
    next_seq: u64,
    seq_limit: u64,
    seq_max: u64,
    seq_soft: u64,
    ip_ident: u16,
    lifetimes: Lifetimes,
    counters: SaCounters,
}

impl OutboundSa {
    /// Builds the runtime of an outbound SA.
    pub fn new(config: &SaConfig, backend: Backend) -> Result<OutboundSa, SaError> {
        check_config(config, Direction::Outbound)?;
        let suite = config.suite;
        let crypto = SaCrypto::new(suite, &config.encryption_key, &config.integrity_key, backend)?;
        //= https://www.rfc-editor.org/rfc/rfc4303#section-3.3.3
        //# the sender's counter and the receiver's counter MUST NOT be allowed to cycle
        // With ESN the last number is kept unused so that `next_seq` itself never overflows.
        let seq_max = if config.esn { u64::MAX - 1 } else { u64::from(u32::MAX) };
        let seq_soft = seq_max / SEQ_SOFT_FRACTION_DEN * SEQ_SOFT_FRACTION_NUM;
        Ok(OutboundSa {
            spi: config.spi,
            protocol: config.protocol,
            ah: AhLayout { iv_len: if suite.is_gmac() { 8 } else { 0 }, icv_len: suite.icv_len() },
            crypto,
            iv_len: suite.iv_len(),
            icv_len: suite.icv_len(),
            block_len: suite.block_len(),
            mode: config.mode,
            local: config.local,
            remote: config.remote,
            encap: config.encap,
            esn: config.esn,
            next_seq: 1,
            seq_limit: seq_max,
            seq_max,
            seq_soft,
            ip_ident: (config.spi as u16) ^ 0x5a5a,
            lifetimes: config.lifetimes,
            counters: SaCounters::default(),
        })
    }

    /// The SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// ESP or AH.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The crypto context, for building seal jobs of mixed-SA bursts.
    pub fn crypto(&self) -> &SaCrypto {
        &self.crypto
    }

    /// Packets and bytes sent so far.
    pub fn counters(&self) -> SaCounters {
        self.counters
    }

    /// The next sequence number this SA will use.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Resumes numbering at `seq` (after a restart, beyond every number that may have been
    /// sent). Never moves backwards.
    pub fn resume_at(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq).max(1);
    }

    /// The last sequence number this runtime may use without reserving more (see the SA
    /// database's block reservation); the SA drops with [`DropReason::SeqExhausted`] past it.
    pub fn seq_limit(&self) -> u64 {
        self.seq_limit
    }

    /// Sets the last sequence number this runtime may use (clamped to the sequence space).
    pub fn set_seq_limit(&mut self, limit: u64) {
        self.seq_limit = limit.min(self.seq_max);
    }

    /// Sequence numbers left before the reserved limit.
    pub fn seq_remaining(&self) -> u64 {
        (self.seq_limit + 1).saturating_sub(self.next_seq)
    }

    /// Whether the owner should ask for a rekey, or the SA has stopped.
    pub fn status(&self) -> OutboundStatus {
        let soft_lifetime = exceeds(self.counters.bytes, self.lifetimes.soft_bytes)
            || exceeds(self.counters.packets, self.lifetimes.soft_packets);
        OutboundStatus {
            rekey_needed: self.next_seq >= self.seq_soft || soft_lifetime,
            expired: self.next_seq > self.seq_max || self.hard_expired(),
        }
    }

    fn hard_expired(&self) -> bool {
        exceeds(self.counters.bytes, self.lifetimes.hard_bytes)
            || exceeds(self.counters.packets, self.lifetimes.hard_packets)
    }

    /// Bytes that encapsulation may add in front of a packet (outer IP, UDP, ESP header and IV,
    /// or the AH header).
    pub fn max_header_growth(&self) -> usize {
        let outer = match (self.mode, self.remote) {
            (Mode::Transport, _) => 0,
            (Mode::Tunnel, IpAddr::V4(_)) => ipv4::HEADER_LEN,
            (Mode::Tunnel, IpAddr::V6(_)) => ipv6::HEADER_LEN,
        };
        match self.protocol {
            Protocol::Esp => outer + self.encap.map_or(0, |_| udp::HEADER_LEN) + esp::HEADER_LEN + self.iv_len,
            // In transport mode the family is the packet's: take the larger (IPv6) header.
            Protocol::Ah => outer + self.ah.header_len(self.remote.is_ipv6() || self.mode == Mode::Transport),
        }
    }

    /// Bytes that encapsulation may add behind a packet (ESP: padding, trailer, ICV; AH:
    /// nothing, though it needs [`crate::ah`]'s tailroom for a while).
    pub fn max_trailer_growth(&self) -> usize {
        match self.protocol {
            Protocol::Esp => self.block_len.max(4) - 1 + esp::TRAILER_LEN + self.icv_len,
            Protocol::Ah => 0,
        }
    }

    /// Length of the encapsulated packet for an inner packet of `inner_len` bytes.
    pub fn encapsulated_len(&self, inner_len: usize) -> usize {
        match self.protocol {
            Protocol::Esp => {
                let trailer = EspTrailer::new(inner_len, 0, self.block_len).map_or(esp::TRAILER_LEN, |t| t.len());
                self.max_header_growth() + inner_len + trailer + self.icv_len
            }
            Protocol::Ah => self.max_header_growth() + inner_len,
        }
    }

    /// The IP protocol of what follows the outer (tunnel) or the packet's own (transport) header.
    fn outer_protocol(&self) -> u8 {
        match (self.protocol, self.encap) {
            (Protocol::Ah, _) => ip_protocol::AH,
            (Protocol::Esp, Some(_)) => ip_protocol::UDP,
            (Protocol::Esp, None) => ip_protocol::ESP,
        }
    }

    /// Step 1: takes a sequence number and turns the IP packet in `pkt` into an ESP packet with
    /// its outer headers, payload still in clear and room left for IV and ICV.
    pub fn prepare(&mut self, pkt: &mut PacketBuf<'_>) -> Result<Prepared, DropReason> {
        if self.hard_expired() {
            return Err(DropReason::SaExpired);
        }
        if self.next_seq > self.seq_limit.min(self.seq_max) {
            return Err(DropReason::SeqExhausted);
        }
        if pkt.headroom() < self.max_header_growth() || pkt.tailroom() < self.max_trailer_growth() {
            return Err(DropReason::NoRoom);
        }
        let inner = InnerInfo::read(pkt, self.mode)?;
        if self.protocol == Protocol::Ah {
            return self.prepare_ah(pkt, &inner);
        }
        let seq = self.next_seq;
        let esp_hdr_len = esp::HEADER_LEN + self.iv_len;

        // Trailer: padding, pad length, next header; then room for the ICV.
        let payload_len = pkt.len() - inner.transport_header_len;
        let trailer =
            EspTrailer::new(payload_len, inner.next_header, self.block_len).map_err(|_| DropReason::NoRoom)?;
        let tail = pkt.push_back(trailer.len() + self.icv_len)?;
        let (pad_and_trailer, _icv) = tail.split_at_mut(trailer.len());
        emit_trailer(&trailer, pad_and_trailer);

        let udp_len = if self.encap.is_some() { udp::HEADER_LEN } else { 0 };
        let header_offset = match self.mode {
            Mode::Tunnel => {
                pkt.push_front(esp_hdr_len)?;
                let esp_len = pkt.len();
                if udp_len != 0 {
                    pkt.push_front(udp_len)?;
                }
                let outer_len = match self.remote {
                    IpAddr::V4(_) => ipv4::HEADER_LEN,
                    IpAddr::V6(_) => ipv6::HEADER_LEN,
                };
                pkt.push_front(outer_len)?;
                self.emit_tunnel_header(pkt.data_mut(), &inner, outer_len + udp_len + esp_len)?;
                outer_len + udp_len
            }
            Mode::Transport => {
                let hl = inner.transport_header_len;
                pkt.open_gap(hl, udp_len + esp_hdr_len)?;
                self.patch_transport_header(pkt.data_mut(), &inner)?;
                hl + udp_len
            }
        };
        let data = pkt.data_mut();
        if let Some(encap) = self.encap {
            let udp_payload = data.len() - header_offset;
            // The IPv6 checksum covers the ciphertext: `finish` fills it after sealing.
            UdpRepr { src_port: encap.local_port, dst_port: encap.remote_port, payload_len: udp_payload }
                .emit(&mut data[header_offset - udp::HEADER_LEN..], UdpChecksum::Zero)
                .map_err(|_| DropReason::NoRoom)?;
        }
        let esp = &mut data[header_offset..];
        esp[0..4].copy_from_slice(&self.spi.to_be_bytes());
        esp[4..8].copy_from_slice(&(seq as u32).to_be_bytes());

        self.next_seq = seq + 1;
        self.counters.packets += 1;
        self.counters.bytes += payload_len as u64;
        Ok(Prepared { header_offset, seq })
    }

    /// Step 2: the crypto job sealing a prepared packet.
    #[inline]
    pub fn seal_op<'a>(&'a self, pkt: &'a mut PacketBuf<'_>, prepared: &Prepared) -> Option<SealOp<'a>> {
        let len = pkt.len();
        let esp = pkt.data_range_mut(prepared.header_offset, len)?;
        Some(SealOp { sa: &self.crypto, esp, seq: prepared.seq, esn: self.esn })
    }

    /// Step 3: fills what covers the ciphertext (the UDP checksum over IPv6).
    #[inline]
    pub fn finish(&self, pkt: &mut PacketBuf<'_>, prepared: &Prepared) {
        if self.encap.is_none() {
            return;
        }
        let addrs = match (self.mode, self.local, self.remote) {
            (Mode::Tunnel, IpAddr::V6(src), IpAddr::V6(dst)) => AddrPair::V6 { src, dst },
            (Mode::Transport, _, _) => match Ipv6Packet::new_checked(pkt.data()) {
                Ok(ip) if ip.version() == 6 => AddrPair::V6 { src: ip.src_addr(), dst: ip.dst_addr() },
                _ => return,
            },
            _ => return,
        };
        //= https://www.rfc-editor.org/rfc/rfc8200#section-8.1
        //# IPv6 receivers must discard UDP packets containing a zero checksum
        if let Some(udp_bytes) = pkt.data_range_mut(prepared.header_offset - udp::HEADER_LEN, pkt.len()) {
            let mut datagram = rampart_wire::UdpPacket::new_unchecked(udp_bytes);
            datagram.fill_checksum(&addrs);
        }
    }

    /// Step 1 of AH: the AH header (and in tunnel mode the outer header) in place, the ICV
    /// field zeroed, the mutable header fields zeroed with their values kept in the tailroom,
    /// the high sequence bits behind the packet with ESN (see [`crate::ah`]).
    fn prepare_ah(&mut self, pkt: &mut PacketBuf<'_>, inner: &InnerInfo) -> Result<Prepared, DropReason> {
        if pkt.tailroom() < ah::TAILROOM {
            return Err(DropReason::NoRoom);
        }
        let seq = self.next_seq;
        let payload_len = pkt.len() - inner.transport_header_len;
        let mut next_header = inner.next_header;
        let mut inner_v6 = *inner;
        let (header_offset, v6) = match self.mode {
            Mode::Tunnel => {
                let v6 = self.remote.is_ipv6();
                pkt.push_front(self.ah.header_len(v6))?;
                let outer_len = if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
                pkt.push_front(outer_len)?;
                let total = pkt.len();
                self.emit_tunnel_header(pkt.data_mut(), inner, total)?;
                (outer_len, v6)
            }
            Mode::Transport => {
                let v6 = inner.version == 6;
                if v6 {
                    let (at, nh_pos, nh) = ah::ipv6_insertion_point(pkt.data())?;
                    next_header = nh;
                    inner_v6 =
                        InnerInfo { transport_header_len: at, next_header_pos: nh_pos, next_header: nh, ..*inner };
                }
                let at = if v6 { inner_v6.transport_header_len } else { inner.transport_header_len };
                pkt.open_gap(at, self.ah.header_len(v6))?;
                self.patch_transport_header(pkt.data_mut(), if v6 { &inner_v6 } else { inner })?;
                (at, v6)
            }
        };
        let ah_len = self.ah.header_len(v6);
        let data = pkt.data_mut();
        let repr = rampart_wire::ah::Repr {
            next_header,
            spi: self.spi,
            seq_number: seq as u32,
            icv_field_len: ah_len - rampart_wire::ah::FIXED_LEN,
        };
        repr.emit(&mut data[header_offset..]).map_err(|_| DropReason::NoRoom)?;
        //= https://www.rfc-editor.org/rfc/rfc4543#section-3.1
        //# The IV ... MUST be unique for each packet; the sequence number is such a value
        if self.ah.iv_len == 8 {
            let iv_at = header_offset + rampart_wire::ah::FIXED_LEN;
            data[iv_at..iv_at + 8].copy_from_slice(&seq.to_be_bytes());
        }
        ah::stash_and_zero(pkt, header_offset, self.esn.then_some((seq >> 32) as u32))?;
        self.next_seq = seq + 1;
        self.counters.packets += 1;
        self.counters.bytes += payload_len as u64;
        Ok(Prepared { header_offset, seq })
    }

    /// Step 2 of AH: the job computing the ICV of a prepared packet (over the packet as
    /// [`OutboundSa::prepare`] left it, and the high sequence bits with ESN).
    #[inline]
    pub fn mac_op<'a>(&'a self, pkt: &'a PacketBuf<'_>, prepared: &Prepared) -> Option<MacOp<'a>> {
        let data = pkt.with_tail(if self.esn { 4 } else { 0 })?;
        Some(MacOp { sa: &self.crypto, data, iv: prepared.seq.to_be_bytes(), tag: [0; rampart_crypto::MAX_TAG_LEN] })
    }

    /// Step 3 of AH: the ICV `tag` into its field, and the header fields the ICV saw zeroed back.
    #[inline]
    pub fn finish_ah(&self, pkt: &mut PacketBuf<'_>, prepared: &Prepared, tag: &[u8]) -> Result<(), DropReason> {
        let at = prepared.header_offset + rampart_wire::ah::FIXED_LEN + self.ah.iv_len;
        let icv = pkt.data_range_mut(at, at + self.ah.icv_len).ok_or(DropReason::NoRoom)?;
        icv.copy_from_slice(tag.get(..self.ah.icv_len).ok_or(DropReason::NoRoom)?);
        ah::restore(pkt, prepared.header_offset)
    }

    fn emit_tunnel_header(&mut self, data: &mut [u8], inner: &InnerInfo, total_len: usize) -> Result<(), DropReason> {
        let total = u16::try_from(total_len).map_err(|_| DropReason::TooBig)?;
        let protocol = self.outer_protocol();
        match (self.local, self.remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                self.ip_ident = self.ip_ident.wrapping_add(1);
                //= https://www.rfc-editor.org/rfc/rfc4301#section-5.1.2.1
                //# DSCP: copied from inner header; ECN per RFC 6040 normal mode (copied).
                let repr = rampart_wire::Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol,
                    payload_len: total_len - ipv4::HEADER_LEN,
                    ttl: ipv4::DEFAULT_TTL,
                    dscp: inner.dscp,
                    ecn: inner.ecn,
                    ident: self.ip_ident,
                    dont_frag: inner.dont_frag,
                    more_frags: false,
                    frag_offset: 0,
                };
                repr.emit(data).map_err(|_| DropReason::NoRoom)?;
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let mut ip = Ipv6Packet::new_unchecked(&mut data[..]);
                ip.set_version_tc_flow(inner.dscp << 2 | inner.ecn, 0);
                ip.set_payload_len(total - ipv6::HEADER_LEN as u16);
                ip.set_next_header(protocol);
                ip.set_hop_limit(ipv6::DEFAULT_HOP_LIMIT);
                ip.set_src_addr(src);
                ip.set_dst_addr(dst);
            }
            // check_config refuses mixed families.
            _ => return Err(DropReason::BadOuterHeader),
        }
        Ok(())
    }

    fn patch_transport_header(&self, data: &mut [u8], inner: &InnerInfo) -> Result<(), DropReason> {
        let protocol = self.outer_protocol();
        let total = data.len();
        if inner.version == 4 {
            let total = u16::try_from(total).map_err(|_| DropReason::TooBig)?;
            let mut ip = Ipv4Packet::new_unchecked(&mut data[..]);
            ip.set_total_len(total);
            ip.set_protocol(protocol);
            ip.fill_checksum();
        } else {
            let payload = u16::try_from(total - ipv6::HEADER_LEN).map_err(|_| DropReason::TooBig)?;
            data[inner.next_header_pos] = protocol;
            let mut ip = Ipv6Packet::new_unchecked(&mut data[..]);
            ip.set_payload_len(payload);
        }
        Ok(())
    }
}

/// What encapsulation needs to know of the packet it wraps.
#[derive(Clone, Copy)]
struct InnerInfo {
    version: u8,
    /// Next header for the ESP trailer: 4/41 in tunnel mode, the upper protocol in transport.
    next_header: u8,
    /// Transport mode: bytes of IP header kept in front of ESP; 0 in tunnel mode.
    transport_header_len: usize,
    /// Transport mode over IPv6: offset of the next-header byte that must point at ESP.
    next_header_pos: usize,
    dscp: u8,
    ecn: u8,
    dont_frag: bool,
}

impl InnerInfo {
    /// Validates the packet and trims link-layer padding behind its IP total length.
    fn read(pkt: &mut PacketBuf<'_>, mode: Mode) -> Result<InnerInfo, DropReason> {
        let data = pkt.data();
        let version = data.first().map(|b| b >> 4).ok_or(DropReason::BadInnerPacket)?;
        let (info, ip_len) = match version {
            4 => {
                let ip = Ipv4Packet::new_checked(data).map_err(|_| DropReason::BadInnerPacket)?;
                let tunnel = mode == Mode::Tunnel;
                if !tunnel && ip.is_fragment() {
                    // Transport mode protects whole datagrams (RFC 4303 section 3.3.4).
                    return Err(DropReason::BadInnerPacket);
                }
                let info = InnerInfo {
                    version,
                    next_header: if tunnel { ip_protocol::IPV4 } else { ip.protocol() },
                    transport_header_len: if tunnel { 0 } else { ip.header_len() },
                    next_header_pos: 0,
                    dscp: ip.dscp(),
                    ecn: ip.ecn(),
                    dont_frag: ip.dont_frag(),
                };
                (info, usize::from(ip.total_len()))
            }
            6 => {
                let ip = Ipv6Packet::new_checked(data).map_err(|_| DropReason::BadInnerPacket)?;
                let tc = ip.traffic_class();
                let mut info = InnerInfo {
                    version,
                    next_header: ip_protocol::IPV6,
                    transport_header_len: 0,
                    next_header_pos: 0,
                    dscp: tc >> 2,
                    ecn: tc & 3,
                    dont_frag: false,
                };
                if mode == Mode::Transport {
                    let point = ipv6_upper_layer(ip.packet(), false).ok_or(DropReason::BadInnerPacket)?;
                    info.next_header = point.protocol;
                    info.transport_header_len = point.offset;
                    info.next_header_pos = point.next_header_pos;
                }
                (info, ip.total_len())
            }
            _ => return Err(DropReason::BadInnerPacket),
        };
        let extra = pkt.len() - ip_len;
        pkt.trim_back(extra)?;
        Ok(info)
    }
}

fn emit_trailer(trailer: &EspTrailer, out: &mut [u8]) {
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.4
    //# the Padding bytes are initialized with a series of (unsigned, 1-byte) integer values.
    let pad = trailer.pad_len as usize;
    for (i, b) in out[..pad].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    out[pad] = trailer.pad_len;
    out[pad + 1] = trailer.next_header;
}
