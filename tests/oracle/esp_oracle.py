#!/usr/bin/env python3
"""Rampart's independent ESP and AH oracle: scapy's SecurityAssociation behind a JSON-lines pipe.

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

AH ("proto": "ah"; "auth" one of SHA2-256-128, SHA2-384-192, SHA2-512-256, AES-GMAC-128,
AES-GMAC-256; "akey": hex, for GMAC the AES key and the 4-byte salt): encrypt builds the AH
packet, decrypt verifies its ICV (an error if it does not verify) and returns the inner packet
(tunnel) or the packet without AH (transport).

Nothing in here is Rampart code: the cryptography and the ESP and AH framing are scapy's, with
the mutable-field rules of scapy's zero_mutable_fields. scapy has no AES-GMAC for AH (RFC 4543):
for it, this script builds the packet with scapy (an AH header whose 24-byte ICV field is
IV || ICV, the size of SHA2-384-192's), normalizes it with scapy's zero_mutable_fields and takes
the tag from the `cryptography` package's AES-GCM with no plaintext.
"""
import json
import sys

import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from scapy.all import IP, UDP, IPv6, raw
from scapy.layers.ipsec import AH, ESP, SecurityAssociation, zero_mutable_fields


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


def make_ah_sa(req, auth, key):
    kw = dict(auth_algo=auth, auth_key=key, seq_num=req["seq"] & 0xFFFFFFFF)
    if req["mode"] == "tunnel":
        v6 = ":" in req["outer_src"]
        kw["tunnel_header"] = (IPv6 if v6 else IP)(src=req["outer_src"], dst=req["outer_dst"])
    if req.get("esn"):
        kw.update(esn_en=True, esn=req["seq"] >> 32)
    return SecurityAssociation(AH, spi=req["spi"], **kw)


def ah_offset(pkt):
    return len(raw(pkt)) - len(raw(pkt[AH]))


def gmac_tag(req, wire, off, iv):
    """The GMAC ICV of `wire` (AH at `off`, ICV field IV || ICV): mutable fields zeroed by scapy."""
    key = bytes.fromhex(req["akey"])
    probe = bytearray(wire)
    hdr_len = (probe[off + 1] + 2) * 4
    probe[off + 12:off + hdr_len] = bytes(hdr_len - 12)
    pkt = parse_ip(bytes(probe))
    zero_mutable_fields(pkt, sending=True)
    aad = bytearray(raw(pkt))
    aad[off + 12:off + 20] = iv
    if req.get("esn"):
        aad += struct.pack("!L", req["seq"] >> 32)
    return AESGCM(key[:-4]).encrypt(key[-4:] + iv, b"", bytes(aad))


def handle_ah(req):
    gmac = req["auth"].startswith("AES-GMAC")
    # For GMAC the layout (a 24-byte ICV field) is that of SHA2-384-192; its key is never used.
    auth = "SHA2-384-192" if gmac else req["auth"]
    key = bytes(48) if gmac else bytes.fromhex(req["akey"])
    sa = make_ah_sa(req, auth, key)
    pkt = parse_ip(bytes.fromhex(req["packet"]))
    if req["op"] == "encrypt":
        out = sa.encrypt(pkt)
        if not gmac:
            return raw(out)
        wire = bytearray(raw(out))
        off = ah_offset(out)
        iv = struct.pack("!Q", req["seq"])
        wire[off + 12:off + 20] = iv
        wire[off + 20:off + 36] = gmac_tag(req, bytes(wire), off, iv)
        return bytes(wire)
    if req["op"] != "decrypt":
        raise ValueError("unknown op %r" % req["op"])
    if not gmac:
        return raw(sa.decrypt(pkt))
    wire = raw(pkt)
    off = ah_offset(pkt)
    iv = wire[off + 12:off + 20]
    if gmac_tag(req, wire, off, iv) != wire[off + 20:off + 36]:
        raise ValueError("AES-GMAC ICV does not verify")
    return raw(sa.decrypt(pkt, verify=False))


def handle(req):
    if req.get("proto") == "ah":
        return handle_ah(req)
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
