#!/usr/bin/env python3
"""Rampart's independent ESP oracle: scapy's SecurityAssociation behind a JSON-lines pipe.

Reads one JSON request per line on stdin, writes one JSON answer per line on stdout:
  {"op": "encrypt" | "decrypt",
   "crypt": "AES-GCM" | "CHACHA20-POLY1305" | "AES-CBC" | "NULL",
   "auth": null | "SHA2-256-128" | "SHA2-384-192" | "SHA2-512-256",
   "ekey": hex (AEAD: key || 4-byte salt), "akey": hex,
   "spi": int, "mode": "tunnel" | "transport", "esn": bool, "seq": int (full 64-bit),
   "natt": bool, "sport": int, "dport": int, "outer_src": str, "outer_dst": str,
   "packet": hex}
encrypt: packet is the inner (tunnel) or host (transport) IP packet; answer: the ESP packet.
decrypt: packet is the ESP packet with its outer IP (and UDP) header; answer: the inner packet.
Answer: {"ok": true, "packet": hex} or {"ok": false, "error": str}.

Nothing in here is Rampart code: the cryptography and the ESP framing are scapy's.
"""
import json
import sys

from scapy.all import IP, UDP, IPv6, raw
from scapy.layers.ipsec import ESP, SecurityAssociation


def make_sa(req):
    kw = dict(crypt_algo=req["crypt"], crypt_key=bytes.fromhex(req["ekey"]), seq_num=req["seq"] & 0xFFFFFFFF)
    if req["crypt"] in ("AES-GCM", "CHACHA20-POLY1305"):
        kw["crypt_icv_size"] = 16
    if req.get("auth"):
        kw.update(auth_algo=req["auth"], auth_key=bytes.fromhex(req["akey"]))
    if req["mode"] == "tunnel":
        v6 = ":" in req["outer_src"]
        kw["tunnel_header"] = (IPv6 if v6 else IP)(src=req["outer_src"], dst=req["outer_dst"])
    if req.get("natt"):
        kw["nat_t_header"] = UDP(sport=req.get("sport", 4500), dport=req.get("dport", 4500))
    if req.get("esn"):
        kw.update(esn_en=True, esn=req["seq"] >> 32)
    return SecurityAssociation(ESP, spi=req["spi"], **kw)


def parse_ip(data):
    return IPv6(data) if data[0] >> 4 == 6 else IP(data)


def handle(req):
    sa = make_sa(req)
    pkt = parse_ip(bytes.fromhex(req["packet"]))
    if req["op"] == "encrypt":
        out = sa.encrypt(pkt)
    elif req["op"] == "decrypt":
        out = sa.decrypt(pkt)
    else:
        raise ValueError("unknown op %r" % req["op"])
    return raw(out)


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            ans = {"ok": True, "packet": handle(json.loads(line)).hex()}
        except Exception as e:  # every failure is an answer, the pipe goes on
            ans = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(ans) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
