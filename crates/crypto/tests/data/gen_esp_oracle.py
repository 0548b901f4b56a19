#!/usr/bin/env python3
"""Writes esp_oracle_python.txt: whole ESP packets computed with python `cryptography` and `hmac`,
independently of Rampart, for the cases no public vector covers: AES-CBC + HMAC-SHA-2 with and
without ESN (RFC 3602, RFC 4868, RFC 4303 section 3.3.2.1: the ESN high half is appended after
the trailer for the ICV and not sent), NULL + HMAC (RFC 2410), and the AEADs with ESN
(RFC 4106 section 5: AAD = SPI || seq high || seq low) with IV = the 64-bit sequence number.

Run: python3 gen_esp_oracle.py > esp_oracle_python.txt   (needs: pip install cryptography)
Inputs are fixed patterns, so the output is reproducible byte for byte.
"""
import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305


def pattern(n, start):
    return bytes((start + 7 * i) & 0xFF for i in range(n))


HASHES = {"sha256": (hashlib.sha256, 16), "sha384": (hashlib.sha384, 24), "sha512": (hashlib.sha512, 32)}


def emit(name, fields):
    print(f"[{name}]")
    for k, v in fields.items():
        print(f"{k}={v.hex() if isinstance(v, bytes) else v}")


def cbc_case(key_bits, integ, esn, seq, body_len, encrypt=True):
    hash_fn, icv_len = HASHES[integ]
    enc_key = pattern(key_bits // 8, 0x11) if encrypt else b""
    integ_key = pattern(hash_fn().digest_size, 0x42)
    spi = bytes.fromhex("c0ffee01")
    seq_lo = (seq & 0xFFFFFFFF).to_bytes(4, "big")
    seq_hi = (seq >> 32).to_bytes(4, "big")
    # payload || padding 1,2,.. || pad length || next header (4 = IPv4)
    payload = pattern(body_len - 2 - 5, 0x60)
    body = payload + bytes(range(1, 6)) + bytes([5, 4])
    if encrypt:
        iv = pattern(16, 0xA0)
        enc = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
        ct = enc.update(body) + enc.finalize()
    else:
        iv, ct = b"", body
    auth = spi + seq_lo + iv + ct + (seq_hi if esn else b"")
    icv = hmac.new(integ_key, auth, hash_fn).digest()[:icv_len]
    suite = (f"aes{key_bits}-{integ}" if encrypt else f"null-{integ}")
    emit(f"{suite}_esn{int(esn)}_len{body_len}", {
        "suite": suite, "enc_key": enc_key, "integ_key": integ_key, "seq": f"{seq:#x}",
        "esn": int(esn), "iv": iv, "plaintext": body, "esp_packet": spi + seq_lo + iv + ct + icv,
    })


def aead_case(suite, esn, seq, body_len):
    if suite == "chacha20poly1305":
        key, aead = pattern(32, 0x21), None
        aead = ChaCha20Poly1305(key)
    else:
        bits = int(suite[3:6])
        key = pattern(bits // 8, 0x21)
        aead = AESGCM(key)
    salt = bytes.fromhex("5a17ca7e")
    spi = bytes.fromhex("0badcafe")
    seq_lo = (seq & 0xFFFFFFFF).to_bytes(4, "big")
    seq_hi = (seq >> 32).to_bytes(4, "big")
    iv = seq.to_bytes(8, "big")
    payload = pattern(body_len - 2 - 1, 0x33)
    body = payload + bytes([1, 1, 41])
    aad = spi + (seq_hi if esn else b"") + seq_lo
    out = aead.encrypt(salt + iv, body, aad)
    emit(f"{suite}_esn{int(esn)}_len{body_len}", {
        "suite": suite, "enc_key": key + salt, "integ_key": b"", "seq": f"{seq:#x}", "esn": int(esn),
        "iv": iv, "plaintext": body, "esp_packet": spi + seq_lo + iv + out,
    })


print("# ESP packets computed with python cryptography + hmac by gen_esp_oracle.py (independent oracle).")
print("# enc_key includes the 4-byte salt for the AEADs; seq is the full 64-bit sequence number.")
for key_bits, integ in [(128, "sha256"), (192, "sha384"), (256, "sha256"), (256, "sha384"), (256, "sha512")]:
    cbc_case(key_bits, integ, False, 0x2A, 48)
    cbc_case(key_bits, integ, True, 0x1_0000_0003, 80)
for integ in HASHES:
    cbc_case(0, integ, False, 7, 36, encrypt=False)
    cbc_case(0, integ, True, 0x5_FFFF_FFFF, 20, encrypt=False)
for suite in ["aes128gcm16", "aes256gcm16", "chacha20poly1305"]:
    aead_case(suite, False, 0x10, 44)
    aead_case(suite, True, 0x2_0000_0001, 96)
