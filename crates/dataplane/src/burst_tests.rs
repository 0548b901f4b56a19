//! The data plane's packet path without AF_XDP, namespaces or root: two gateways' worker
//! contexts over real SA databases (temporary files), fixed kernel tables and in-memory UMEMs.
//! Frames go through the same `outbound::process` and `inbound::process` the workers run
//! (classify -> policy / SA lookup -> ESP burst -> next hop -> tx list), and what comes out is
//! checked byte by byte, and against scapy's ESP (`tests/oracle/esp_oracle.py`) where it is ESP.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use rampart_crypto::{Encryption, Integrity, Suite};
use rampart_nic::{Desc, Umem, UmemConfig};
use rampart_sa::{Direction, DropReason, Lifetimes, Mode, SaConfig, TrafficSelector};
use rampart_sadb::{Capacities, IpPrefix, Policy, PolicyAction, PolicyDir, PortRange, Selector, Template, Writer};
use rampart_wire::checksum::checksum;
use zeroize::Zeroizing;

use crate::config::CryptoChoice;
use crate::ctx::{BurstOut, Ctx, PathParams};
use crate::mirror::{Link, NetMirror, NetState, Route};
use crate::stats::Counter;
use crate::tables::{TableBuilder, Tables};

const LAN: u32 = 1;
const WAN: u32 = 2;
const HOST_A: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const HOST_B: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 10);
const GW_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const GW_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);

fn mac(last: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, last]
}

/// One side of the tunnel: which addresses and MACs are whose.
#[derive(Clone, Copy)]
struct Side {
    gw: Ipv4Addr,
    peer: Ipv4Addr,
    host: Ipv4Addr,
    lan_net: Ipv4Addr,
    remote_net: Ipv4Addr,
    lan_mac: [u8; 6],
    wan_mac: [u8; 6],
    host_mac: [u8; 6],
    peer_mac: [u8; 6],
}

const A: Side = Side {
    gw: GW_A,
    peer: GW_B,
    host: HOST_A,
    lan_net: Ipv4Addr::new(198, 18, 1, 0),
    remote_net: Ipv4Addr::new(198, 18, 2, 0),
    lan_mac: [0x02, 0, 0, 0, 1, 1],
    wan_mac: [0x02, 0, 0, 0, 1, 2],
    host_mac: [0x02, 0, 0, 0, 1, 10],
    peer_mac: [0x02, 0, 0, 0, 2, 2],
};

const B: Side = Side {
    gw: GW_B,
    peer: GW_A,
    host: HOST_B,
    lan_net: Ipv4Addr::new(198, 18, 2, 0),
    remote_net: Ipv4Addr::new(198, 18, 1, 0),
    lan_mac: [0x02, 0, 0, 0, 2, 1],
    wan_mac: [0x02, 0, 0, 0, 2, 2],
    host_mac: [0x02, 0, 0, 0, 2, 10],
    peer_mac: [0x02, 0, 0, 0, 1, 2],
};

/// An SA pair of the tunnel: the SPI each way and the suite.
#[derive(Clone, Copy)]
struct Tunnel {
    a_to_b: u32,
    b_to_a: u32,
    suite: Suite,
}

fn gcm(bits: u16) -> Suite {
    Suite::new(Encryption::AesGcm16 { key_bits: bits }, Integrity::None).unwrap()
}

fn key(len: usize, seed: u32) -> Zeroizing<Vec<u8>> {
    Zeroizing::new((0..len).map(|i| (i as u32 * 13 + seed) as u8).collect())
}

fn sa_config(side: Side, spi: u32, suite: Suite, direction: Direction) -> SaConfig {
    let (local_net, remote_net) = (side.lan_net, side.remote_net);
    SaConfig {
        protocol: rampart_sa::Protocol::Esp,
        spi,
        direction,
        suite,
        encryption_key: key(suite.encryption_key_len(), spi),
        integrity_key: key(suite.integrity_key_len(), spi + 1),
        mode: Mode::Tunnel,
        local: side.gw.into(),
        remote: side.peer.into(),
        encap: None,
        esn: false,
        replay_window: 1024,
        local_ts: vec![TrafficSelector::from_prefix(local_net.into(), 24)],
        remote_ts: vec![TrafficSelector::from_prefix(remote_net.into(), 24)],
        lifetimes: Lifetimes::default(),
    }
}

/// A temporary SA database file, removed on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> TempDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rampart-burst-test-{}-{n}.sadb", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempDb(p)
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One gateway's worker without sockets: its database, tables, context and UMEM.
struct Gateway {
    _db: TempDb,
    _writer: Writer,
    tables: Tables,
    ctx: Ctx,
    umem: Umem,
}

impl Gateway {
    /// A gateway of `side` with every tunnel of `tunnels` installed (protect policies for the
    /// first; the others get policies for a /32 of the remote LAN each, host .(20 + i)), and a
    /// bypass policy to `OUTSIDE` through `ROUTER`.
    fn new(side: Side, tunnels: &[Tunnel], wan_mtu: u32) -> Gateway {
        let db = TempDb::new();
        let caps = Capacities { sas: 64, policies: 64, events: 64, journal: 64 };
        let mut w = Writer::create(&db.0, caps).unwrap();
        for (i, t) in tunnels.iter().enumerate() {
            let (out_spi, in_spi) = if side.gw == GW_A { (t.a_to_b, t.b_to_a) } else { (t.b_to_a, t.a_to_b) };
            let reqid = i as u32 + 1;
            let out = w.install_sa(&sa_config(side, out_spi, t.suite, Direction::Outbound), reqid, 1).unwrap();
            w.install_sa(&sa_config(side, in_spi, t.suite, Direction::Inbound), reqid, 1).unwrap();
            let (src_len, dst) = if i == 0 { (24, side.remote_net) } else { (24, remote_host(side, i)) };
            let dst_len = if i == 0 { 24 } else { 32 };
            let policy = Policy {
                dir: PolicyDir::Out,
                selector: selector(side.lan_net, src_len, dst, dst_len),
                priority: if i == 0 { 200 } else { 100 },
                action: PolicyAction::Protect(Template {
                    protocol: rampart_sa::Protocol::Esp,
                    src: side.gw.into(),
                    dst: side.peer.into(),
                    spi: 0,
                    mode: Mode::Tunnel,
                    reqid,
                }),
            };
            w.add_policy(&policy, Some(out)).unwrap();
        }
        let bypass = Policy {
            dir: PolicyDir::Out,
            selector: selector(side.lan_net, 24, OUTSIDE, 32),
            priority: 50,
            action: PolicyAction::Bypass,
        };
        w.add_policy(&bypass, None).unwrap();

        let net = NetState::from_parts(
            1,
            vec![
                Link { ifindex: LAN, name: "lan0".into(), mac: Some(side.lan_mac), mtu: 1500 },
                Link { ifindex: WAN, name: "wan0".into(), mac: Some(side.wan_mac), mtu: wan_mtu },
            ],
            vec![(LAN, IpAddr::V4(Ipv4Addr::from(u32::from(side.lan_net) + 1)), 24), (WAN, side.gw.into(), 24)],
            vec![
                ((side.lan_net.into(), 24), Route { oif: LAN, gateway: None, metric: 0 }),
                ((Ipv4Addr::new(192, 0, 2, 0).into(), 24), Route { oif: WAN, gateway: None, metric: 0 }),
                ((Ipv4Addr::UNSPECIFIED.into(), 0), Route { oif: WAN, gateway: Some(ROUTER.into()), metric: 0 }),
            ],
            [
                ((LAN, side.host.into()), side.host_mac),
                ((WAN, side.peer.into()), side.peer_mac),
                ((WAN, ROUTER.into()), mac(254)),
            ]
            .into_iter()
            // The hosts behind the host tunnels of the peer's side, .20 + i on this LAN.
            .chain((1..8).map(|i| ((LAN, IpAddr::V4(remote_host(other(side), i))), mac(20 + i as u8))))
            .collect(),
        );
        let reader = w.reader();
        let tables = TableBuilder::new(reader.clone()).build();
        let umem = Umem::new(UmemConfig { frame_size: 2048, frame_count: 512, headroom: 0 }).unwrap();
        let params = PathParams {
            index: 0,
            mirror: NetMirror::fixed(net),
            reader,
            crypto: CryptoChoice::Auto,
            lan_ifindex: LAN,
            wan_ifindex: WAN,
            wan_mtu: None,
            encap_port: 4500,
            icmp_rate: 1000,
            kernel: None,
        };
        let ctx = Ctx::new(params, &tables, umem.rx_offset(), 1);
        Gateway { _db: db, _writer: w, tables, ctx, umem }
    }

    /// Puts frames into UMEM frames as the kernel would (at the rx offset).
    fn receive(&mut self, frames: &[Vec<u8>]) -> Vec<Desc> {
        let off = self.umem.rx_offset() as u64;
        frames
            .iter()
            .map(|f| {
                let base = self.umem.alloc().expect("a free frame");
                let d = Desc::new(base + off, f.len() as u32);
                self.umem.frame_mut(&d).unwrap().copy_from_slice(f);
                d
            })
            .collect()
    }

    /// The bytes of sent frames, returned to the UMEM.
    fn take(&mut self, descs: &[Desc]) -> Vec<Vec<u8>> {
        descs
            .iter()
            .map(|d| {
                let bytes = self.umem.frame(d).unwrap().to_vec();
                self.umem.free(d.addr).unwrap();
                bytes
            })
            .collect()
    }

    /// One LAN rx burst through the outbound path: (frames for the WAN, frames for the LAN).
    fn lan_burst(&mut self, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let rx = self.receive(frames);
        let mut out = BurstOut::default();
        crate::outbound::process(&mut self.ctx, &self.tables, &mut self.umem, &rx, &mut out);
        (self.take(&out.wan_tx), self.take(&out.lan_tx))
    }

    /// One WAN rx burst through the inbound path: the frames for the LAN.
    fn wan_burst(&mut self, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let rx = self.receive(frames);
        let mut out = BurstOut::default();
        crate::inbound::process(&mut self.ctx, &self.tables, &mut self.umem, &rx, &mut out);
        assert!(out.wan_tx.is_empty(), "the inbound path never sends to the WAN");
        self.take(&out.lan_tx)
    }

    fn drops(&self, r: DropReason) -> u64 {
        self.ctx.values.drops(r)
    }

    fn count(&self, c: Counter) -> u64 {
        self.ctx.values.get(c)
    }

    /// Every frame the test handed in is back in the pool or was taken out by `take`.
    fn assert_no_frame_lost(&self) {
        assert_eq!(self.umem.free_frames(), self.umem.frame_count(), "a frame was neither sent nor freed");
        assert_eq!(self.umem.double_frees(), 0);
    }
}

fn other(side: Side) -> Side {
    if side.gw == GW_A { B } else { A }
}

fn remote_host(side: Side, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(side.remote_net) + 20 + i as u32)
}

fn selector(src: Ipv4Addr, src_len: u8, dst: Ipv4Addr, dst_len: u8) -> Selector {
    Selector {
        src: IpPrefix::new(src.into(), src_len).unwrap(),
        dst: IpPrefix::new(dst.into(), dst_len).unwrap(),
        proto: 0,
        sport: PortRange::ANY,
        dport: PortRange::ANY,
    }
}

/// An IPv4/UDP packet with a valid header checksum (UDP checksum 0, allowed over IPv4).
fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, payload: usize, ttl: u8, dont_frag: bool, seed: u8) -> Vec<u8> {
    let total = 28 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&u16::from(seed).to_be_bytes());
    p[6] = if dont_frag { 0x40 } else { 0 };
    p[8] = ttl;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..22].copy_from_slice(&40000u16.to_be_bytes());
    p[22..24].copy_from_slice(&5001u16.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    for (i, b) in p[28..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(3).wrapping_add(seed);
    }
    p
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(ip);
    f
}

/// What a router makes of `ip` after one hop: TTL down by one, checksum updated.
fn forwarded(ip: &[u8]) -> Vec<u8> {
    let mut p = ip.to_vec();
    p[8] -= 1;
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

/// scapy's ESP, through the project's oracle script.
struct Oracle {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    fn start() -> Oracle {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oracle/esp_oracle.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with scapy (scripts/setup.sh installs it)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Oracle { child, stdin, stdout }
    }

    /// `op` ("encrypt" / "decrypt") with the SA of `spi` from `side` to its peer.
    fn ask(
        &mut self,
        op: &str,
        side: Side,
        spi: u32,
        suite: Suite,
        seq: u64,
        packet: &[u8],
    ) -> Result<Vec<u8>, String> {
        let ekey: String = key(suite.encryption_key_len(), spi).iter().map(|b| format!("{b:02x}")).collect();
        let req = serde_json::json!({
            "op": op, "crypt": "AES-GCM", "auth": null, "ekey": ekey, "akey": "",
            "spi": spi, "mode": "tunnel", "esn": false, "seq": seq, "natt": false,
            "outer_src": side.gw.to_string(), "outer_dst": side.peer.to_string(),
            "packet": packet.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        });
        writeln!(self.stdin, "{req}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the ESP oracle died: is scapy installed? (scripts/setup.sh)");
        let ans: serde_json::Value = serde_json::from_str(&line).unwrap();
        match ans["ok"].as_bool() {
            Some(true) => {
                let hex = ans["packet"].as_str().unwrap();
                Ok((0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect())
            }
            _ => Err(ans["error"].as_str().unwrap_or("?").to_string()),
        }
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two tunnels between A and B: the site tunnel (AES-128-GCM) and one to a single host of B's
/// LAN (AES-256-GCM), so that one burst mixes SAs and suites.
fn tunnels() -> Vec<Tunnel> {
    vec![
        Tunnel { a_to_b: 0x1001, b_to_a: 0x2001, suite: gcm(128) },
        Tunnel { a_to_b: 0x1002, b_to_a: 0x2002, suite: gcm(256) },
    ]
}

fn lan_frame(side: Side, dst: Ipv4Addr, payload: usize, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let ip = ipv4_udp(side.host, dst, payload, 64, true, seed);
    (ethernet(side.lan_mac, side.host_mac, &ip), ip)
}

#[test]
fn a_mixed_burst_goes_through_both_gateways_and_scapy_agrees() {
    let t = tunnels();
    let mut a = Gateway::new(A, &t, 1500);
    let mut b = Gateway::new(B, &t, 1500);
    let mut oracle = Oracle::start();

    // One LAN burst at A: packets for the site tunnel and for the host tunnel, interleaved.
    let dsts: Vec<Ipv4Addr> = (0..40).map(|i| if i % 3 == 1 { remote_host(A, 1) } else { HOST_B }).collect();
    let (frames, ips): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
        dsts.iter().enumerate().map(|(i, d)| lan_frame(A, *d, 20 + i * 31, i as u8)).unzip();
    let (wan, lan) = a.lan_burst(&frames);
    assert!(lan.is_empty());
    assert_eq!(wan.len(), frames.len(), "every packet encrypted");
    assert_eq!(a.count(Counter::EncryptedPackets), frames.len() as u64);

    let mut seq = [0u64; 2];
    for ((frame, ip), dst) in wan.iter().zip(&ips).zip(&dsts) {
        // Ethernet to B's WAN MAC from A's, IPv4, ESP between the gateways.
        assert_eq!(&frame[..6], &A.peer_mac);
        assert_eq!(&frame[6..12], &A.wan_mac);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        let outer = &frame[14..];
        assert_eq!(outer[9], 50, "ESP");
        assert_eq!(&outer[12..16], &GW_A.octets());
        assert_eq!(&outer[16..20], &GW_B.octets());
        let k = usize::from(*dst == remote_host(A, 1));
        let spi = u32::from_be_bytes(outer[20..24].try_into().unwrap());
        assert_eq!(spi, t[k].a_to_b, "the packet went through the tunnel its policy names");
        seq[k] += 1;
        assert_eq!(u64::from(u32::from_be_bytes(outer[24..28].try_into().unwrap())), seq[k], "sequence per SA");
        // scapy decrypts it to the packet A's host sent, one hop later.
        let inner = oracle.ask("decrypt", A, spi, t[k].suite, seq[k], outer).expect("scapy decrypts Rampart's ESP");
        assert_eq!(inner, forwarded(ip));
    }

    // B decrypts the whole burst and forwards it onto its LAN.
    let out = b.wan_burst(&wan);
    assert_eq!(out.len(), wan.len());
    for (frame, ip) in out.iter().zip(&ips) {
        assert_eq!(frame[..6], if ip[16..20] == HOST_B.octets() { B.host_mac } else { mac(21) });
        assert_eq!(&frame[6..12], &B.lan_mac);
        assert_eq!(&frame[14..], &forwarded(&forwarded(ip))[..]);
    }
    assert_eq!(b.count(Counter::DecryptedPackets), wan.len() as u64);
    a.assert_no_frame_lost();
    b.assert_no_frame_lost();
}

#[test]
fn packets_scapy_seals_are_decrypted_and_forwarded() {
    let t = tunnels();
    let mut a = Gateway::new(A, &t, 1500);
    let mut oracle = Oracle::start();
    let mut frames = Vec::new();
    let mut ips = Vec::new();
    for i in 0..24u64 {
        let ip = ipv4_udp(HOST_B, HOST_A, 10 + 57 * i as usize, 63, true, i as u8);
        let esp = oracle.ask("encrypt", B, t[0].b_to_a, t[0].suite, i + 1, &ip).expect("scapy encrypts");
        frames.push(ethernet(A.wan_mac, A.peer_mac, &esp));
        ips.push(ip);
    }
    let out = a.wan_burst(&frames);
    assert_eq!(out.len(), frames.len(), "drops: {:?}", a.ctx.values);
    for (frame, ip) in out.iter().zip(&ips) {
        assert_eq!(frame[..6], A.host_mac);
        assert_eq!(&frame[14..], &forwarded(ip)[..]);
    }
    a.assert_no_frame_lost();
}

#[test]
fn bad_packets_in_a_burst_are_dropped_by_reason_and_harm_no_neighbour() {
    let t = tunnels();
    let mut a = Gateway::new(A, &t, 1500);
    let mut b = Gateway::new(B, &t, 1500);
    let (frames, ips): (Vec<Vec<u8>>, Vec<Vec<u8>>) = (0..6).map(|i| lan_frame(A, HOST_B, 100 + i, i as u8)).unzip();
    let (good, _) = a.lan_burst(&frames);

    let mut forged = good[1].clone();
    let last = forged.len() - 20;
    forged[last] ^= 0x40;
    let mut unknown = good[3].clone();
    unknown[14 + 20..14 + 24].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    let udp = |payload: &[u8], dport: u16| {
        let mut ip = ipv4_udp(GW_A, GW_B, payload.len(), 64, false, 0);
        ip[22..24].copy_from_slice(&dport.to_be_bytes());
        ip[28..].copy_from_slice(payload);
        ethernet(B.wan_mac, B.peer_mac, &ip)
    };
    let keepalive = udp(&[0xff], 4500);
    let not_esp = udp(b"a DNS query, say", 53);
    let mut truncated = good[4].clone();
    truncated.truncate(14 + 20 + 12);
    truncated[14 + 2..14 + 4].copy_from_slice(&32u16.to_be_bytes());
    truncated[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = checksum(&truncated[14..34]);
    truncated[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    let burst = vec![
        good[0].clone(),
        forged,
        good[2].clone(),
        good[0].clone(),
        unknown,
        keepalive,
        not_esp,
        truncated,
        good[5].clone(),
    ];
    let out = b.wan_burst(&burst);
    let inner: Vec<&[u8]> = out.iter().map(|f| &f[14..]).collect();
    assert_eq!(inner.len(), 3, "only the three genuine packets come through");
    for (got, k) in inner.iter().zip([0, 2, 5]) {
        assert_eq!(*got, &forwarded(&forwarded(&ips[k]))[..]);
    }
    assert_eq!(b.drops(DropReason::AuthFailed), 1);
    assert_eq!(b.drops(DropReason::ReplayDuplicate), 1);
    assert_eq!(b.drops(DropReason::UnknownSpi), 1);
    assert_eq!(b.drops(DropReason::NatKeepalive), 1);
    assert_eq!(b.count(Counter::NotEsp), 1);
    assert_eq!(b.drops(DropReason::BadLength) + b.drops(DropReason::Truncated), 1, "{:?}", b.ctx.values);

    // The window did not move for the forgery: the genuine packet 1 is still welcome, 0 is not.
    let out = b.wan_burst(&[good[1].clone(), good[0].clone()]);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][14..], &forwarded(&forwarded(&ips[1]))[..]);
    assert_eq!(b.drops(DropReason::ReplayDuplicate), 2);
    a.assert_no_frame_lost();
    b.assert_no_frame_lost();
}

#[test]
fn the_outbound_path_answers_refuses_and_bypasses() {
    let t = tunnels();
    let mut a = Gateway::new(A, &t, 1500);
    let ttl_one = ipv4_udp(HOST_A, HOST_B, 30, 1, true, 1);
    let too_big = ipv4_udp(HOST_A, HOST_B, 1472, 64, true, 2);
    let too_big_df_clear = ipv4_udp(HOST_A, HOST_B, 1472, 64, false, 3);
    let no_policy = ipv4_udp(HOST_A, Ipv4Addr::new(10, 9, 9, 9), 30, 64, true, 4);
    let bypass = ipv4_udp(HOST_A, OUTSIDE, 30, 64, true, 5);
    let fits = ipv4_udp(HOST_A, HOST_B, 1400, 64, true, 6);
    let mut arp = ethernet(A.lan_mac, A.host_mac, &[0u8; 28]);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let burst: Vec<Vec<u8>> = [&ttl_one, &too_big, &too_big_df_clear, &no_policy, &bypass, &fits]
        .iter()
        .map(|ip| ethernet(A.lan_mac, A.host_mac, ip))
        .chain([arp])
        .collect();
    let (wan, lan) = a.lan_burst(&burst);

    // To the LAN: two ICMP errors, back to the host, from the gateway's LAN address.
    assert_eq!(lan.len(), 2, "time exceeded and fragmentation needed");
    let icmp = |f: &Vec<u8>| (f[14 + 20], f[14 + 21], u16::from_be_bytes([f[14 + 26], f[14 + 27]]));
    for f in &lan {
        assert_eq!(f[..6], A.host_mac);
        assert_eq!(&f[14 + 9], &1, "ICMP");
        assert_eq!(&f[14 + 12..14 + 16], &[198, 18, 1, 1]);
        assert_eq!(&f[14 + 16..14 + 20], &HOST_A.octets());
    }
    assert_eq!(icmp(&lan[0]).0, 11, "time exceeded");
    let (ty, code, mtu) = icmp(&lan[1]);
    assert_eq!((ty, code), (3, 4), "fragmentation needed");
    assert!(mtu > 1400 && mtu < 1500, "next-hop MTU {mtu}");
    // The ICMP error quotes the offending header.
    assert_eq!(&lan[1][14 + 28..14 + 48], &forwarded(&too_big)[..20]);

    // To the WAN: the bypassed packet through the router, then the one that fits, encrypted.
    assert_eq!(wan.len(), 2);
    assert_eq!(wan[0][..6], mac(254));
    assert_eq!(&wan[0][14..], &forwarded(&bypass)[..]);
    assert_eq!(wan[1][14 + 9], 50);
    assert!(wan[1].len() <= 14 + 1500);

    assert_eq!(a.drops(DropReason::TtlExpired), 1);
    assert_eq!(a.drops(DropReason::TooBig), 2);
    assert_eq!(a.drops(DropReason::NoPolicy), 1);
    assert_eq!(a.count(Counter::NotIp), 1);
    assert_eq!(a.count(Counter::IcmpSent), 2);
    assert_eq!(a.count(Counter::BypassPackets), 1);
    assert_eq!(a.count(Counter::EncryptedPackets), 1);
    a.assert_no_frame_lost();
}

#[test]
fn outer_fragments_are_reassembled_before_decryption() {
    let t = tunnels();
    let mut a = Gateway::new(A, &t, 1500);
    let mut b = Gateway::new(B, &t, 1500);
    let (frame, ip) = lan_frame(A, HOST_B, 1300, 9);
    let (wan, _) = a.lan_burst(&[frame]);
    let outer = &wan[0][14..];
    // Split the outer datagram in two at a multiple of 8 bytes of its payload, and send the
    // second piece first.
    let payload = &outer[20..];
    let cut = 640;
    let piece = |data: &[u8], offset: usize, more: bool| {
        let mut p = outer[..20].to_vec();
        p.extend_from_slice(data);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let flags = if more { 0x2000 } else { 0 } | (offset / 8) as u16;
        p[6..8].copy_from_slice(&flags.to_be_bytes());
        p[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        ethernet(B.wan_mac, B.peer_mac, &p)
    };
    let second = piece(&payload[cut..], cut, false);
    let first = piece(&payload[..cut], 0, true);
    let out = b.wan_burst(&[second, first]);
    assert_eq!(out.len(), 1, "{:?}", b.ctx.values);
    assert_eq!(&out[0][14..], &forwarded(&forwarded(&ip))[..]);
    assert_eq!(b.count(Counter::Reassembled), 1);
    a.assert_no_frame_lost();
    b.assert_no_frame_lost();
}
