//! Outer fragments through a real data plane, as root, in namespaces this test creates and
//! removes: scapy (not Rampart) seals ESP, cuts the outer datagram into fragments and sends them
//! from the switch to gateway B, which must reassemble every kind before IPsec processing (RFC
//! 4303 section 3.4.1): plain ESP and ESP-in-UDP, IPv4 and IPv6 outer, 2 and 8 fragments, out of
//! order; overlapping fragments are dropped and counted; a flood of incomplete datagrams from many
//! sources leaves memory bounded and good traffic flowing; IKE that arrives in IP fragments is
//! reassembled too and reaches the kernel's UDP socket whole.

mod common;

use std::time::Duration;

use common::*;

/// Inbound ESP-in-UDP SAs in gateway B (the tunnel SAs of `install_tunnels` are plain ESP).
const SPI_NATT4: u32 = 0x3001;
const SPI_NATT6: u32 = 0x3002;

const SCAPY: &str = r#"
import sys, random
from scapy.all import IP, IPv6, UDP, ICMP, ICMPv6EchoRequest, Raw, Ether, fragment, fragment6, sendp, raw
from scapy.layers.inet6 import IPv6ExtHdrFragment
from scapy.layers.ipsec import ESP, SecurityAssociation
case, key, spi, seq, pieces, order = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
eth = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
v6 = case.endswith("6")
natt = case.startswith("natt")
def send(frames):
    if order == "reverse":
        frames = list(reversed(frames))
    elif order == "shuffle":
        random.Random(seq).shuffle(frames)
    for f in frames:
        sendp(eth / f, iface="to-gb", verbose=False)

def fragments(outer_payload, nh, total):
    # Cut into `pieces` fragments (multiples of 8 bytes, the last one takes the rest).
    size = (total // pieces) // 8 * 8
    cuts = [i * size for i in range(pieces)] + [total]
    out = []
    ident = random.Random(seq).randrange(1, 65535)
    for i in range(pieces):
        data = outer_payload[cuts[i]:cuts[i + 1]]
        more = 1 if i < pieces - 1 else 0
        if v6:
            out.append(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=44) /
                       IPv6ExtHdrFragment(nh=nh, offset=cuts[i] // 8, m=more, id=ident) / Raw(data))
        else:
            out.append(IP(src="192.0.2.1", dst="192.0.2.2", proto=nh, id=ident, flags=more, frag=cuts[i] // 8) / Raw(data))
    return out

if case in ("esp4", "esp6", "natt4", "natt6", "overlap4"):
    outer = (IPv6(src="2001:db8::1", dst="2001:db8::2") if v6 else IP(src="192.0.2.1", dst="192.0.2.2"))
    kw = dict(crypt_algo="AES-GCM", crypt_key=key, crypt_icv_size=16, tunnel_header=outer)
    if natt:
        kw["nat_t_header"] = UDP(sport=4500, dport=4500)
    sa = SecurityAssociation(ESP, spi=spi, **kw)
    if v6:
        inner = IPv6(src="fd01::2", dst="fd02::2", hlim=64) / ICMPv6EchoRequest(id=7, seq=seq) / Raw(b"6" * 1100)
    else:
        inner = IP(src="10.1.0.2", dst="10.2.0.2", ttl=64) / ICMP(type=8, id=7, seq=seq) / Raw(b"4" * 1100)
    e = sa.encrypt(inner, seq_num=seq)
    wire = raw(e)
    hl = 40 if v6 else 20
    payload = wire[hl:]
    nh = 17 if natt else 50
    frames = fragments(payload, nh, len(payload))
    if case == "overlap4":
        # The second fragment starts 8 bytes before the end of the first.
        f1 = frames[1]
        f1.frag -= 1
        f1[Raw].load = frames[0][Raw].load[-8:] + f1[Raw].load
    send(frames)
elif case == "flood4":
    # First fragments of datagrams that never complete, from many spoofed sources.
    for i in range(400):
        src = "198.51.100.%d" % (i % 200 + 1)
        sendp(eth / IP(src=src, dst="192.0.2.2", proto=50, id=i, flags=1) / Raw(b"f" * 64), iface="to-gb", verbose=False)
elif case in ("ike4", "ike6"):
    # An IKE-sized UDP datagram to port 500 in IP fragments: the kernel's, whole.
    body = b"IKEv2 in fragments " + bytes(range(256)) * 5
    if v6:
        d = IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=500, dport=500) / Raw(body)
    else:
        d = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=500, dport=500) / Raw(body)
    wire = raw(d)
    hl = 40 if v6 else 20
    send(fragments(wire[hl:], 17, len(wire) - hl))
"#;

fn send(topo: &Topology, case: &str, spi: u32, seq: u64, pieces: u32, order: &str) {
    let k = key(key_byte(spi));
    topo.sh(
        "sw",
        &[
            "python3",
            "-c",
            SCAPY,
            case,
            k.trim_start_matches("0x"),
            &spi.to_string(),
            &seq.to_string(),
            &pieces.to_string(),
            order,
        ],
    );
}

/// Installs the ESP-in-UDP SAs of gateway B (same keys scheme as the tunnels).
fn install_natt(db: &std::path::Path) {
    for (spi, src, dst, sel) in [
        (SPI_NATT4, "192.0.2.1", "192.0.2.2", ("10.1.0.0/24", "10.2.0.0/24")),
        (SPI_NATT6, "2001:db8::1", "2001:db8::2", ("fd01::/64", "fd02::/64")),
    ] {
        let spi_text = format!("{spi:#x}");
        let k = key(key_byte(spi));
        rampart(
            db,
            &[
                "sa",
                "add",
                "src",
                src,
                "dst",
                dst,
                "proto",
                "esp",
                "spi",
                &spi_text,
                "dir",
                "in",
                "mode",
                "tunnel",
                "reqid",
                "7",
                "aead",
                "rfc4106(gcm(aes))",
                &k,
                "128",
                "encap",
                "espinudp",
                "4500",
                "4500",
                "0.0.0.0",
                "sel",
                "src",
                sel.0,
                "dst",
                sel.1,
            ],
        );
    }
}

#[test]
fn every_outer_fragment_is_reassembled_before_ipsec() {
    if !require_root("every_outer_fragment_is_reassembled_before_ipsec") {
        return;
    }
    let topo = Topology::new(1);
    let scratch = Scratch::new("frag");
    install_tunnels(&scratch.dbs[0], &scratch.dbs[1]);
    install_natt(&scratch.dbs[1]);
    let _ga = Gateway::start(&topo, "ga", &scratch.dbs[0], &scratch.dir, 1);
    let gb = Gateway::start(&topo, "gb", &scratch.dbs[1], &scratch.dir, 1);
    // Gateway B learns host B's address before the measured packets come.
    topo.wait_reachable("ha", "10.2.0.2", 10);
    topo.wait_reachable("ha", "fd02::2", 10);

    let mut seq = 1000;
    for (case, spi, pieces, order) in [
        ("esp4", SPI_AB4, 2, "reverse"),
        ("esp4", SPI_AB4, 8, "shuffle"),
        ("esp6", SPI_AB6, 2, "reverse"),
        ("esp6", SPI_AB6, 8, "shuffle"),
        ("natt4", SPI_NATT4, 2, "reverse"),
        ("natt4", SPI_NATT4, 8, "shuffle"),
        ("natt6", SPI_NATT6, 2, "reverse"),
        ("natt6", SPI_NATT6, 8, "shuffle"),
    ] {
        seq += 1;
        let (r0, d0) = (gb.total("counters", "reassembled_packets"), gb.total("counters", "decrypted_packets"));
        send(&topo, case, spi, seq, pieces, order);
        gb.wait_total("counters", "reassembled_packets", r0 + 1);
        gb.wait_total("counters", "decrypted_packets", d0 + 1);
        eprintln!("{case} in {pieces} fragments ({order}): reassembled and decrypted");
    }

    // Overlapping fragments: the datagram is dropped and counted; nothing is decrypted.
    seq += 1;
    let (o0, d0) = (gb.total("drops", "fragment_overlap"), gb.total("counters", "decrypted_packets"));
    send(&topo, "overlap4", SPI_AB4, seq, 3, "in-order");
    gb.wait_total("drops", "fragment_overlap", o0 + 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(gb.total("counters", "decrypted_packets"), d0, "an overlapping datagram was decrypted");

    // A flood of incomplete datagrams from 200 sources: the table stays within its bounds
    // (evictions counted), and a genuine fragmented packet right after still goes through.
    let t0 = gb.total("drops", "fragment_table_full");
    send(&topo, "flood4", SPI_AB4, 0, 1, "in-order");
    gb.wait_total("drops", "fragment_table_full", t0 + 1);
    seq += 1;
    let (r0, d0) = (gb.total("counters", "reassembled_packets"), gb.total("counters", "decrypted_packets"));
    send(&topo, "esp4", SPI_AB4, seq, 4, "shuffle");
    gb.wait_total("counters", "reassembled_packets", r0 + 1);
    gb.wait_total("counters", "decrypted_packets", d0 + 1);
    eprintln!(
        "flood: {} evicted or refused, {} timed out; the genuine datagram after it was decrypted",
        gb.total("drops", "fragment_table_full") - t0,
        gb.total("drops", "fragment_timeout")
    );

    // IKE in IP fragments, IPv4 and IPv6: reassembled by the data plane, received whole by a UDP
    // socket on port 500 of gateway B (through the data plane's way into the kernel).
    for (case, bind) in [("ike4", "0.0.0.0"), ("ike6", "::")] {
        const LISTEN: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
if ":" in sys.argv[1]:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((sys.argv[1], 500))
s.settimeout(10)
data, peer = s.recvfrom(65535)
print(len(data), data[:19].decode())
"#;
        let listener = {
            let mut c = topo.command("gb", std::path::Path::new("python3"));
            c.args(["-c", LISTEN, bind]).stdout(std::process::Stdio::piped());
            c.spawn().unwrap()
        };
        std::thread::sleep(Duration::from_millis(500));
        let k0 = gb.total("counters", "to_kernel_packets");
        send(&topo, case, SPI_AB4, 7, 3, "reverse");
        let out = listener.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), "1299 IKEv2 in fragments", "{case}: what the kernel's socket received");
        gb.wait_total("counters", "to_kernel_packets", k0 + 1);
    }
}
