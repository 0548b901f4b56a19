#!/usr/bin/env python3
"""Generates the packets pasted as hex into captured.rs (scapy 2.8.0). Run once by hand:
    python3 crates/wire/tests/captured_gen.py
The tests never run this script; it records where the bytes came from."""
from scapy.all import *
from scapy.layers.ipsec import ESP
from scapy.layers.l2 import Dot1AD
def h(name, p):
    b = bytes(p)
    print(f"// {name}: {len(b)} bytes")
    print(b.hex())

# 1. Ethernet / 802.1Q / IPv4 / UDP 4500 / ESP
p1 = (Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02")/Dot1Q(prio=3, vlan=100)/
      IP(src="192.0.2.1", dst="198.51.100.2", id=0x1c46, flags="DF", ttl=64)/
      UDP(sport=4500, dport=4500)/ESP(spi=0x1001, seq=5, data=bytes(range(24))))
h("p1", p1)
# 2. IPv4 with router alert option / ICMP echo request
p2 = IP(src="10.1.2.3", dst="10.4.5.6", id=1, ttl=1, options=[IPOption_Router_Alert()])/ICMP(type=8, id=0x42, seq=1)/b"ping"
h("p2", p2)
# 3. QinQ / IPv6 / HBH / Fragment(first) / UDP
p3 = (Ether(dst="33:33:00:00:00:01", src="02:00:00:00:00:03")/Dot1AD(vlan=10, prio=5)/Dot1Q(vlan=20)/
      IPv6(src="2001:db8::1", dst="2001:db8:1::2", hlim=17, tc=0x28, fl=0xbeef)/IPv6ExtHdrHopByHop()/
      IPv6ExtHdrFragment(offset=0, m=1, id=0x12345678)/UDP(sport=5353, dport=53)/b"query")
h("p3", p3)
# 4. IPv6 / Routing (type 0? use srh-less) / DestOpt / TCP
p4 = (IPv6(src="2001:db8::a", dst="2001:db8::b")/IPv6ExtHdrRouting(addresses=["2001:db8::c"], segleft=0)/
      IPv6ExtHdrDestOpt()/TCP(sport=40000, dport=443, flags="S", seq=1))
h("p4", p4)
# 5. IPv6 / UDP 500 (checksum by scapy)
p5 = IPv6(src="fe80::1", dst="fe80::2")/UDP(sport=500, dport=500)/b"ike-ish payload!"
h("p5", p5)
# 6. IPv4 / UDP with odd payload
p6 = IP(src="172.16.0.1", dst="172.16.0.2", id=99)/UDP(sport=12345, dport=4500)/b"\x00\x00\x00\x00odd"
h("p6", p6)
# 7. ICMPv4 time exceeded for a 1400-byte UDP packet
orig7 = IP(src="198.51.100.1", dst="203.0.113.9", id=0x4242, ttl=1, flags="DF")/UDP(sport=1111, dport=2222)/bytes((i*7)&0xff for i in range(1372))
ob7 = bytes(orig7)
h("o7", orig7)
e7 = IP(src="192.0.2.254", dst="198.51.100.1", id=7, tos=0xc0, ttl=64)/ICMP(type=11, code=0)/ob7[:548]
h("e7", e7)
# 8. ICMPv4 frag needed for the same packet, mtu 1400
e8 = IP(src="192.0.2.254", dst="198.51.100.1", id=8, tos=0xc0, ttl=64)/ICMP(type=3, code=4, nexthopmtu=1400)/ob7[:548]
h("e8", e8)
# 9. ICMPv6 PTB for a 1500-byte packet, and time exceeded for a short one
orig9 = IPv6(src="2001:db8:1::1", dst="2001:db8:2::2", hlim=1)/UDP(sport=3333, dport=4444)/bytes((i*13)&0xff for i in range(1452))
ob9 = bytes(orig9)
h("o9", orig9)
e9 = IPv6(src="2001:db8::fe", dst="2001:db8:1::1", hlim=64)/ICMPv6PacketTooBig(mtu=1400)/ob9[:1232]
h("e9", e9)
orig10 = IPv6(src="2001:db8:1::1", dst="2001:db8:2::2", hlim=1)/ICMPv6EchoRequest(id=1, seq=2, data=b"abc")
ob10 = bytes(orig10)
h("o10", orig10)
e10 = IPv6(src="2001:db8::fe", dst="2001:db8:1::1", hlim=64)/ICMPv6TimeExceeded(code=0)/ob10
h("e10", e10)
