//! Inbound ESP: classifying what arrives on the WAN side, and the runtime of one inbound SA that
//! checks, authenticates and decapsulates it (RFC 4303 section 3.4, RFC 3948).
//!
//! Order of checks, so that nothing changes state before the packet is known to be genuine
//! (DESIGN.md rule 4): [`parse_outer`] (headers, UDP encapsulation) -> SA lookup by the caller ->
//! [`InboundSa::precheck`] (length for the suite, replay check without moving the window) ->
//! [`InboundSa::open_op`] + `open_burst` (integrity, decryption) -> [`InboundSa::complete`]
//! (trailer, next header, inner packet, traffic selectors, and only then the window moves).
//! [`crate::burst::decapsulate`] chains them for a burst of many SAs, the data plane's;
//! [`InboundSa::decapsulate_burst`] is that burst for one SA.

use std::net::IpAddr;
use std::sync::Arc;

use rampart_crypto::{Backend, MacOp, OpenOp, SaCrypto};
use rampart_wire::{EspTrailer, Ipv4Packet, Ipv6Packet, UdpPacket, esp, ip_protocol, ipv6, udp, udp_encap};

use crate::buf::PacketBuf;
use crate::replay::ReplayWindow;
use crate::sa::{SaCounters, SaError, check_config, exceeds, ipv6_upper_layer};
use rampart_sa::DropReason;
use rampart_sa::{Direction, Lifetimes, Mode, Protocol, SaConfig, TrafficSelector};

use crate::ah::{self, AhLayout};

/// What a packet from the WAN side is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// An ESP packet (plain or UDP-encapsulated) or an AH packet, to look up by SPI.
    Ipsec(IpsecLocation),
    /// A one-byte NAT keepalive (RFC 3948 section 2.3): consumed.
    Keepalive,
    /// Not ESP (IKE behind a non-ESP marker, other UDP, other protocols): for the kernel.
    NotEsp,
}

/// Where the ESP or AH header lies in a received IP packet, and what identifies its SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpsecLocation {
    /// ESP or AH.
    pub protocol: Protocol,
    /// Offset of the ESP header (its SPI) or of the AH header from the start of the IP packet.
    pub header_offset: usize,
    /// Length of the outer IP header including extension headers.
    pub ip_header_len: usize,
    /// Offset of the next-header byte that names ESP, AH or UDP (IPv4: the protocol field).
    pub next_header_pos: usize,
    /// SPI.
    pub spi: u32,
    /// Low 32 bits of the sequence number.
    pub seq_low: u32,
    /// Outer source address.
    pub src: IpAddr,
    /// Outer destination address.
    pub dst: IpAddr,
    /// UDP source and destination ports when UDP-encapsulated.
    pub udp_ports: Option<(u16, u16)>,
}

/// Classifies an IP packet received on the WAN side. `encap_port` is the UDP port on which ESP
/// in UDP arrives (4500). Link-layer padding behind the IP total length is ignored.
pub fn parse_outer(packet: &[u8], encap_port: u16) -> Result<Received, DropReason> {
    let version = packet.first().map(|b| b >> 4).ok_or(DropReason::Truncated)?;
    let (ip_header_len, next_header_pos, protocol, src, dst, ip_len) = match version {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).map_err(wire_drop)?;
            if !ip.verify_checksum() {
                return Err(DropReason::BadOuterHeader);
            }
            if ip.is_fragment() {
                return Err(DropReason::Fragment);
            }
            let len = usize::from(ip.total_len());
            (ip.header_len(), 9, ip.protocol(), IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), len)
        }
        6 => {
            let ip = Ipv6Packet::new_checked(packet).map_err(wire_drop)?;
            let upper = ip.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT).map_err(wire_drop)?;
            if upper.is_fragment() {
                return Err(DropReason::Fragment);
            }
            let nh_pos = ipv6_upper_layer(ip.packet(), true).map_or(6, |u| u.next_header_pos);
            (upper.offset, nh_pos, upper.protocol, IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.total_len())
        }
        _ => return Err(DropReason::BadOuterHeader),
    };
    let packet = &packet[..ip_len];
    if protocol == ip_protocol::AH {
        let ah = rampart_wire::AhPacket::new_checked(&packet[ip_header_len..]).map_err(|e| match e {
            rampart_wire::Error::Truncated => DropReason::Truncated,
            _ => DropReason::AhBadLength,
        })?;
        if ah.spi() == 0 {
            return Err(DropReason::UnknownSpi);
        }
        return Ok(Received::Ipsec(IpsecLocation {
            protocol: Protocol::Ah,
            header_offset: ip_header_len,
            ip_header_len,
            next_header_pos,
            spi: ah.spi(),
            seq_low: ah.seq_number(),
            src,
            dst,
            udp_ports: None,
        }));
    }
    let (header_offset, udp_ports) = match protocol {
        ip_protocol::ESP => (ip_header_len, None),
        ip_protocol::UDP => {
            let datagram = UdpPacket::new_checked(&packet[ip_header_len..]).map_err(wire_drop)?;
            if datagram.dst_port() != encap_port {
                return Ok(Received::NotEsp);
            }
            match udp_encap::classify(datagram.payload()) {
                Ok(udp_encap::UdpEncap::Esp) => {}
                Ok(udp_encap::UdpEncap::Keepalive) => return Ok(Received::Keepalive),
                Ok(udp_encap::UdpEncap::Ike) => return Ok(Received::NotEsp),
                Err(_) => return Err(DropReason::BadUdpEncap),
            }
            (ip_header_len + udp::HEADER_LEN, Some((datagram.src_port(), datagram.dst_port())))
        }
        _ => return Ok(Received::NotEsp),
    };
    let header = rampart_wire::EspPacket::new_checked(&packet[header_offset..]).map_err(wire_drop)?;
    if header.spi() == 0 {
        return Err(DropReason::UnknownSpi);
    }
    Ok(Received::Ipsec(IpsecLocation {
        protocol: Protocol::Esp,
        header_offset,
        ip_header_len,
        next_header_pos,
        spi: header.spi(),
        seq_low: header.seq_number(),
        src,
        dst,
        udp_ports,
    }))
}

/// What came out of a decapsulated packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decapsulated {
    /// IP version of the packet now in the buffer (4 or 6).
    pub version: u8,
    /// Its source address.
    pub src: IpAddr,
    /// Its destination address.
    pub dst: IpAddr,
    /// The full sequence number it carried.
    pub seq: u64,
}

/// The runtime of one inbound SA, owned by one worker at a time.
#[derive(Debug)]
pub struct InboundSa {
    spi: u32,
    protocol: Protocol,
    /// AH: the header's layout (unused for ESP).
    ah: AhLayout,
    crypto: SaCrypto,
    iv_len: usize,
    icv_len: usize,
    block_len: usize,
    mode: Mode,
    esn: bool,
    window: Arc<ReplayWindow>,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
    /// Whether some selector has a protocol or ports (else addresses alone decide, through
    /// `local_ranges` and `remote_ranges`).
    ts_upper_layer: bool,
    local_ranges: AddrRanges,
    remote_ranges: AddrRanges,
    lifetimes: Lifetimes,
    counters: SaCounters,
}

impl InboundSa {
    /// Builds the runtime of an inbound SA with its own replay window.
    pub fn new(config: &SaConfig, backend: Backend) -> Result<InboundSa, SaError> {
        check_config(config, Direction::Inbound)?;
        let window = Arc::new(ReplayWindow::new(config.replay_window, config.esn));
        InboundSa::new_shared(config, backend, window)
    }

    /// Builds one worker's runtime of an inbound SA whose replay window is shared with the
    /// other workers' runtimes of the same SA (lock-free: see [`ReplayWindow`]). The window
    /// must have been made for this SA's size and ESN setting.
    pub fn new_shared(config: &SaConfig, backend: Backend, window: Arc<ReplayWindow>) -> Result<InboundSa, SaError> {
        check_config(config, Direction::Inbound)?;
        let suite = config.suite;
        let crypto = SaCrypto::new(suite, &config.encryption_key, &config.integrity_key, backend)?;
        Ok(InboundSa {
            spi: config.spi,
            protocol: config.protocol,
            ah: AhLayout { iv_len: if suite.is_gmac() { 8 } else { 0 }, icv_len: suite.icv_len() },
            crypto,
            iv_len: suite.iv_len(),
            icv_len: suite.icv_len(),
            block_len: suite.block_len(),
            mode: config.mode,
            esn: config.esn,
            window,
            local_ts: config.local_ts.clone(),
            remote_ts: config.remote_ts.clone(),
            ts_upper_layer: config.local_ts.iter().chain(&config.remote_ts).any(TrafficSelector::needs_upper_layer),
            local_ranges: AddrRanges::new(&config.local_ts),
            remote_ranges: AddrRanges::new(&config.remote_ts),
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

    /// The crypto context, for building open jobs of mixed-SA bursts.
    pub fn crypto(&self) -> &SaCrypto {
        &self.crypto
    }

    /// The anti-replay window (shared with the SA's other runtimes, if any).
    pub fn replay_window(&self) -> &Arc<ReplayWindow> {
        &self.window
    }

    /// Packets and bytes accepted so far.
    pub fn counters(&self) -> SaCounters {
        self.counters
    }

    /// Whether a soft lifetime (bytes or packets) has been reached.
    pub fn soft_expired(&self) -> bool {
        exceeds(self.counters.bytes, self.lifetimes.soft_bytes)
            || exceeds(self.counters.packets, self.lifetimes.soft_packets)
    }

    fn hard_expired(&self) -> bool {
        exceeds(self.counters.bytes, self.lifetimes.hard_bytes)
            || exceeds(self.counters.packets, self.lifetimes.hard_packets)
    }

    /// Step 1: checks that the packet can be one of this SA's and infers its full sequence
    /// number, without changing any state.
    #[inline]
    pub fn precheck(&self, pkt: &PacketBuf<'_>, loc: &IpsecLocation) -> Result<u64, DropReason> {
        if loc.spi != self.spi {
            return Err(DropReason::UnknownSpi);
        }
        if self.hard_expired() {
            return Err(DropReason::SaExpired);
        }
        if loc.protocol != self.protocol {
            // The SPI of an SA of the other protocol.
            return Err(DropReason::UnknownSpi);
        }
        if self.protocol == Protocol::Ah {
            return self.precheck_ah(pkt, loc);
        }
        let esp_len = pkt.len().checked_sub(loc.header_offset).ok_or(DropReason::Truncated)?;
        let encrypted =
            esp_len.checked_sub(esp::HEADER_LEN + self.iv_len + self.icv_len).ok_or(DropReason::BadLength)?;
        //= https://www.rfc-editor.org/rfc/rfc4303#section-2.4
        //# the Pad Length and Next Header fields MUST be right aligned within a 4-byte word
        if encrypted < esp::TRAILER_LEN || encrypted % self.block_len != 0 {
            return Err(DropReason::BadLength);
        }
        self.window.check(loc.seq_low)
    }

    /// AH's step 1: the header's length for the SA's algorithm, room for the ICV input, the
    /// replay check.
    fn precheck_ah(&self, pkt: &PacketBuf<'_>, loc: &IpsecLocation) -> Result<u64, DropReason> {
        let ah = pkt
            .data()
            .get(loc.header_offset..)
            .and_then(|b| rampart_wire::AhPacket::new_checked(b).ok())
            .ok_or(DropReason::AhBadLength)?;
        let v6 = pkt.data().first().is_some_and(|b| b >> 4 == 6);
        //= https://www.rfc-editor.org/rfc/rfc4302#section-2.6
        //# All implementations MUST support such padding
        // A peer may pad the ICV field beyond this family's alignment; never below what the
        // algorithm's ICV needs.
        let field = ah.header_len() - rampart_wire::ah::FIXED_LEN;
        if field < self.ah.icv_field_len(v6) || field > ah::MAX_ICV_FIELD {
            return Err(DropReason::AhBadLength);
        }
        if pkt.tailroom() < ah::TAILROOM {
            return Err(DropReason::NoRoom);
        }
        self.window.check(loc.seq_low)
    }

    /// AH's step 2, before its job: the packet made into the ICV input in place (the received
    /// ICV kept aside and zeroed, the mutable header fields zeroed and kept, the high sequence
    /// bits behind it with ESN; see [`crate::ah`]).
    pub fn prepare_verify(&self, pkt: &mut PacketBuf<'_>, loc: &IpsecLocation, seq: u64) -> Result<(), DropReason> {
        let icv_at = loc.header_offset + rampart_wire::ah::FIXED_LEN + self.ah.iv_len;
        ah::stash_icv(pkt, icv_at, self.ah.icv_len)?;
        ah::stash_and_zero(pkt, loc.header_offset, self.esn.then_some((seq >> 32) as u32))
    }

    /// AH's step 2: the job computing the ICV of a packet [`InboundSa::prepare_verify`] made
    /// ready.
    #[inline]
    pub fn mac_op<'a>(&'a self, pkt: &'a PacketBuf<'_>, loc: &IpsecLocation) -> Option<MacOp<'a>> {
        let data = pkt.with_tail(if self.esn { 4 } else { 0 })?;
        let iv_at = loc.header_offset + rampart_wire::ah::FIXED_LEN;
        let mut iv = [0u8; 8];
        if self.ah.iv_len == 8 {
            iv.copy_from_slice(pkt.data().get(iv_at..iv_at + 8)?);
        }
        Some(MacOp { sa: &self.crypto, data, iv, tag: [0; rampart_crypto::MAX_TAG_LEN] })
    }

    /// AH: whether `tag`, computed by the job, is the ICV the packet carried (constant time).
    //= https://www.rfc-editor.org/rfc/rfc4302#section-3.4.4.2
    //# If the computed and received ICVs match, then the datagram is valid
    pub fn ah_verified(&self, pkt: &PacketBuf<'_>, tag: &[u8]) -> bool {
        let n = self.ah.icv_len;
        match (ah::received_icv(pkt, n), tag.get(..n)) {
            (Some(got), Some(want)) => bool::from(subtle::ConstantTimeEq::ct_eq(got, want)),
            _ => false,
        }
    }

    /// Step 2: the crypto job opening a prechecked packet.
    #[inline]
    pub fn open_op<'a>(&'a self, pkt: &'a mut PacketBuf<'_>, loc: &IpsecLocation, seq: u64) -> Option<OpenOp<'a>> {
        let len = pkt.len();
        let esp = pkt.data_range_mut(loc.header_offset, len)?;
        Some(OpenOp { sa: &self.crypto, esp, seq, esn: self.esn, verified: false })
    }

    /// Step 3: after the integrity check, validates the trailer and the inner packet, checks the
    /// traffic selectors, moves the window and leaves the inner packet in `pkt`.
    pub fn complete(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        loc: &IpsecLocation,
        seq: u64,
        verified: bool,
    ) -> Result<Decapsulated, DropReason> {
        if self.protocol == Protocol::Ah {
            return self.complete_ah(pkt, loc, seq, verified);
        }
        //= https://www.rfc-editor.org/rfc/rfc4303#section-3.4.4.1
        //# If the computed and received ICVs do not match, then the receiver MUST discard the
        //# received IP datagram as invalid
        if !verified {
            return Err(DropReason::AuthFailed);
        }
        let len = pkt.len();
        let plain_start = loc.header_offset + esp::HEADER_LEN + self.iv_len;
        let plain_end = len.checked_sub(self.icv_len).ok_or(DropReason::Truncated)?;
        let plaintext = pkt.data().get(plain_start..plain_end).ok_or(DropReason::Truncated)?;
        let trailer = parse_trailer(plaintext)?;
        let cut_back = (plaintext.len() - trailer.payload_len) + self.icv_len;

        //= https://www.rfc-editor.org/rfc/rfc4303#section-2.6
        //# A receiver MUST be prepared to silently discard dummy packets.
        if trailer.is_dummy() {
            self.window.accept(seq)?;
            return Err(DropReason::Dummy);
        }

        let out = match self.mode {
            Mode::Tunnel => {
                let inner = &plaintext[..trailer.payload_len];
                let (version, src, dst, inner_len) = check_inner(inner, trailer.next_header)?;
                self.check_selectors(inner, version, src, dst)?;
                self.window.accept(seq)?;
                pkt.pull_front(plain_start)?;
                pkt.trim_back(pkt.len() - inner_len)?;
                Decapsulated { version, src, dst, seq }
            }
            Mode::Transport => {
                if trailer.next_header == ip_protocol::IPV4 || trailer.next_header == ip_protocol::IPV6 {
                    // A tunnel-mode packet on a transport SA.
                    return Err(DropReason::BadNextHeader);
                }
                let version = pkt.data()[0] >> 4;
                let (src, dst) = (loc.src, loc.dst);
                // The selectors need only addresses, protocol and upper-layer bytes: check them
                // before the window moves and the header is rebuilt.
                let upper = &plaintext[..trailer.payload_len];
                self.check_selectors_parts(src, dst, trailer.next_header, upper)?;
                self.window.accept(seq)?;
                pkt.trim_back(cut_back)?;
                let removed = plain_start - loc.ip_header_len;
                pkt.close_gap(loc.ip_header_len, removed)?;
                restore_transport_header(pkt.data_mut(), loc, trailer.next_header)?;
                Decapsulated { version, src, dst, seq }
            }
        };
        self.counters.packets += 1;
        self.counters.bytes += pkt.len() as u64;
        Ok(out)
    }

    /// AH's step 3: the headers back, the inner packet checked against the selectors, only then
    /// the window moves, and AH comes out (with the outer header in tunnel mode).
    fn complete_ah(
        &mut self,
        pkt: &mut PacketBuf<'_>,
        loc: &IpsecLocation,
        seq: u64,
        verified: bool,
    ) -> Result<Decapsulated, DropReason> {
        //= https://www.rfc-editor.org/rfc/rfc4302#section-3.4.4.2
        //# If the computed and received ICVs do not match, then the receiver MUST discard the
        //# received IP datagram as invalid
        if !verified {
            return Err(DropReason::AhBadIcv);
        }
        ah::restore(pkt, loc.header_offset)?;
        let (next_header, ah_len) = {
            let ah = pkt
                .data()
                .get(loc.header_offset..)
                .and_then(|b| rampart_wire::AhPacket::new_checked(b).ok())
                .ok_or(DropReason::AhBadLength)?;
            (ah.next_header(), ah.header_len())
        };
        let payload_start = loc.header_offset + ah_len;
        if next_header == ip_protocol::NO_NEXT_HEADER {
            self.window.accept(seq)?;
            return Err(DropReason::Dummy);
        }
        let out = match self.mode {
            Mode::Tunnel => {
                let inner = pkt.data().get(payload_start..).ok_or(DropReason::Truncated)?;
                let (version, src, dst, inner_len) = check_inner(inner, next_header)?;
                self.check_selectors(inner, version, src, dst)?;
                self.window.accept(seq)?;
                pkt.pull_front(payload_start)?;
                pkt.trim_back(pkt.len().checked_sub(inner_len).ok_or(DropReason::BadInnerPacket)?)?;
                Decapsulated { version, src, dst, seq }
            }
            Mode::Transport => {
                if next_header == ip_protocol::IPV4 || next_header == ip_protocol::IPV6 {
                    return Err(DropReason::BadNextHeader);
                }
                let version = pkt.data()[0] >> 4;
                let (src, dst) = (loc.src, loc.dst);
                let upper = pkt.data().get(payload_start..).ok_or(DropReason::Truncated)?;
                self.check_selectors_parts(src, dst, next_header, upper)?;
                self.window.accept(seq)?;
                pkt.close_gap(loc.header_offset, ah_len)?;
                restore_transport_header(pkt.data_mut(), loc, next_header)?;
                Decapsulated { version, src, dst, seq }
            }
        };
        self.counters.packets += 1;
        self.counters.bytes += pkt.len() as u64;
        Ok(out)
    }

    fn check_selectors(&self, inner: &[u8], version: u8, src: IpAddr, dst: IpAddr) -> Result<(), DropReason> {
        if !self.ts_upper_layer {
            // Any protocol, every port: no need to find the upper-layer header.
            return self.check_selectors_parts(src, dst, 0, &[]);
        }
        let (protocol, upper): (u8, &[u8]) = if version == 4 {
            let ip = Ipv4Packet::new_unchecked(inner);
            // Non-first fragments carry no ports: they are checked with port 0.
            let end = usize::from(ip.total_len()).min(inner.len());
            let upper = if ip.frag_offset() != 0 { &[][..] } else { inner.get(ip.header_len()..end).unwrap_or(&[]) };
            (ip.protocol(), upper)
        } else {
            let ip = Ipv6Packet::new_unchecked(inner);
            match ip.upper_layer(ipv6::DEFAULT_EXTENSION_LIMIT) {
                Ok(u) if u.fragment.is_some_and(|f| f.offset != 0) => (u.protocol, &[][..]),
                Ok(u) => (u.protocol, inner.get(u.offset..ip.total_len().min(inner.len())).unwrap_or(&[])),
                Err(_) => return Err(DropReason::BadInnerPacket),
            }
        };
        self.check_selectors_parts(src, dst, protocol, upper)
    }

    //= https://www.rfc-editor.org/rfc/rfc4301#section-5.2
    //# check that the packet is appropriate for the SA via which it was received ... the
    //# selectors of the SA
    fn check_selectors_parts(&self, src: IpAddr, dst: IpAddr, protocol: u8, upper: &[u8]) -> Result<(), DropReason> {
        if !self.ts_upper_layer {
            // Any protocol, every port: the addresses decide.
            return if self.remote_ranges.contains(src) && self.local_ranges.contains(dst) {
                Ok(())
            } else {
                Err(DropReason::TrafficSelector)
            };
        }
        let ports = rampart_wire::ports::ports(protocol, upper);
        let (sport, dport) = ports.map_or((0, 0), |p| (p.src, p.dst));
        let remote_ok = self.remote_ts.is_empty() || self.remote_ts.iter().any(|ts| ts.matches(src, protocol, sport));
        let local_ok = self.local_ts.is_empty() || self.local_ts.iter().any(|ts| ts.matches(dst, protocol, dport));
        if remote_ok && local_ok { Ok(()) } else { Err(DropReason::TrafficSelector) }
    }
}

/// The address ranges of a list of selectors, as integers (an empty list: any address).
#[derive(Debug, Default)]
struct AddrRanges {
    any: bool,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl AddrRanges {
    fn new(ts: &[TrafficSelector]) -> AddrRanges {
        let mut r = AddrRanges { any: ts.is_empty(), ..AddrRanges::default() };
        for t in ts {
            match (t.start, t.end) {
                (IpAddr::V4(s), IpAddr::V4(e)) => r.v4.push((u32::from(s), u32::from(e))),
                (IpAddr::V6(s), IpAddr::V6(e)) => r.v6.push((u128::from(s), u128::from(e))),
                // Mixed families match nothing (as `TrafficSelector::contains_addr`).
                _ => {}
            }
        }
        r
    }

    #[inline]
    fn contains(&self, addr: IpAddr) -> bool {
        if self.any {
            return true;
        }
        match addr {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4.iter().any(|&(s, e)| s <= a && a <= e)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6.iter().any(|&(s, e)| s <= a && a <= e)
            }
        }
    }
}

/// Parses pad length and next header and checks the padding bytes.
fn parse_trailer(plaintext: &[u8]) -> Result<EspTrailer, DropReason> {
    let [.., pad_len, _next_header] = *plaintext else {
        return Err(DropReason::BadLength);
    };
    if usize::from(pad_len) + esp::TRAILER_LEN > plaintext.len() {
        return Err(DropReason::BadPadLength);
    }
    //= https://www.rfc-editor.org/rfc/rfc4303#section-2.4
    //# the receiver SHOULD inspect the Padding field
    EspTrailer::parse(plaintext).map_err(|_| DropReason::BadPadding)
}

/// Validates a tunnel-mode inner packet against the next header and returns its version,
/// addresses and length (its own total length: TFC padding behind it is cut off).
fn check_inner(inner: &[u8], next_header: u8) -> Result<(u8, IpAddr, IpAddr, usize), DropReason> {
    match next_header {
        ip_protocol::IPV4 => {
            let ip = Ipv4Packet::new_checked(inner).map_err(|_| DropReason::BadInnerPacket)?;
            if ip.version() != 4 || !ip.verify_checksum() {
                return Err(DropReason::BadInnerPacket);
            }
            Ok((4, IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()), usize::from(ip.total_len())))
        }
        ip_protocol::IPV6 => {
            let ip = Ipv6Packet::new_checked(inner).map_err(|_| DropReason::BadInnerPacket)?;
            if ip.version() != 6 {
                return Err(DropReason::BadInnerPacket);
            }
            Ok((6, IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()), ip.total_len()))
        }
        _ => Err(DropReason::BadNextHeader),
    }
}

/// After the ESP header was cut out of a transport-mode packet: next header, lengths, checksum.
fn restore_transport_header(data: &mut [u8], loc: &IpsecLocation, next_header: u8) -> Result<(), DropReason> {
    let total = data.len();
    if data.first().map(|b| b >> 4) == Some(4) {
        let total = u16::try_from(total).map_err(|_| DropReason::BadInnerPacket)?;
        let mut ip = Ipv4Packet::new_unchecked(&mut data[..]);
        ip.set_protocol(next_header);
        ip.set_total_len(total);
        ip.fill_checksum();
    } else {
        let payload = total.checked_sub(ipv6::HEADER_LEN).ok_or(DropReason::BadInnerPacket)?;
        let payload = u16::try_from(payload).map_err(|_| DropReason::BadInnerPacket)?;
        *data.get_mut(loc.next_header_pos).ok_or(DropReason::BadInnerPacket)? = next_header;
        Ipv6Packet::new_unchecked(&mut data[..]).set_payload_len(payload);
    }
    Ok(())
}

fn wire_drop(e: rampart_wire::Error) -> DropReason {
    match e {
        rampart_wire::Error::Truncated => DropReason::Truncated,
        _ => DropReason::BadOuterHeader,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    use super::*;

    fn v4_selector(a: u32, b: u32) -> TrafficSelector {
        let (s, e) = (a.min(b), a.max(b));
        TrafficSelector {
            protocol: 0,
            start: Ipv4Addr::from(s).into(),
            end: Ipv4Addr::from(e).into(),
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    fn v6_selector(a: u128, b: u128) -> TrafficSelector {
        let (s, e) = (a.min(b), a.max(b));
        TrafficSelector {
            protocol: 0,
            start: Ipv6Addr::from(s).into(),
            end: Ipv6Addr::from(e).into(),
            start_port: 0,
            end_port: u16::MAX,
        }
    }

    proptest! {
        /// The integer ranges decide exactly as the selectors they come from.
        #[test]
        fn address_ranges_match_the_selectors(
            v4 in proptest::collection::vec((any::<u32>(), any::<u32>()), 0..4),
            v6 in proptest::collection::vec((any::<u128>(), any::<u128>()), 0..3),
            near in any::<u32>(),
            probes4 in proptest::collection::vec(any::<u32>(), 1..16),
            probes6 in proptest::collection::vec(any::<u128>(), 1..8),
        ) {
            let ts: Vec<TrafficSelector> =
                v4.iter().map(|&(a, b)| v4_selector(a, b)).chain(v6.iter().map(|&(a, b)| v6_selector(a, b))).collect();
            let ranges = AddrRanges::new(&ts);
            let reference = |addr: IpAddr| ts.is_empty() || ts.iter().any(|t| t.matches(addr, 17, 4500));
            // Random addresses, and the edges of every range (where off-by-one errors live).
            let mut addrs: Vec<IpAddr> = probes4.iter().map(|&a| Ipv4Addr::from(a).into()).collect();
            addrs.extend(probes6.iter().map(|&a| IpAddr::from(Ipv6Addr::from(a))));
            for &(a, b) in &v4 {
                for x in [a, b, a.wrapping_add(1), a.wrapping_sub(1), b.wrapping_add(1), b.wrapping_sub(1), near] {
                    addrs.push(Ipv4Addr::from(x).into());
                }
            }
            for &(a, b) in &v6 {
                for x in [a, b, a.wrapping_add(1), a.wrapping_sub(1), b.wrapping_add(1), b.wrapping_sub(1)] {
                    addrs.push(Ipv6Addr::from(x).into());
                }
            }
            for addr in addrs {
                prop_assert_eq!(ranges.contains(addr), reference(addr), "{}", addr);
            }
        }
    }

    #[test]
    fn only_selectors_with_a_protocol_or_ports_need_the_upper_layer() {
        let mut t = v4_selector(1, 2);
        assert!(!t.needs_upper_layer());
        t.protocol = 6;
        assert!(t.needs_upper_layer());
        let mut t = v4_selector(1, 2);
        t.end_port = 1023;
        assert!(t.needs_upper_layer());
        let mut t = v4_selector(1, 2);
        t.start_port = 1;
        assert!(t.needs_upper_layer());
    }
}
