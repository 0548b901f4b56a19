#!/usr/bin/env python3
"""Writes the genuine part of the seed corpora under fuzz/seeds/: IKEv2 messages built with
scapy's IKEv2 layer (an encoder nobody here wrote) for the IKE targets, the example
configuration files of deploy/examples for the configuration target, and the test PKI of
crates/ike/tests/data/pki (made by strongSwan's `pki`) for the X.509 target. The rest of each seed
directory is a minimised corpus from earlier fuzzing runs (`cargo fuzz cmin`). Deterministic:
run it again and nothing changes.

    python3 fuzz/make_seeds.py
"""
import base64
import hashlib
import pathlib
import random

from scapy.contrib.ikev2 import (IKEv2, IKEv2_SA, IKEv2_Proposal, IKEv2_Transform, IKEv2_KE,
                                 IKEv2_Nonce, IKEv2_Notify, IKEv2_Encrypted)

HERE = pathlib.Path(__file__).resolve().parent
rng = random.Random(7)


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def write(target, data):
    d = HERE / "seeds" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("genuine-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def transforms(group):
    return (IKEv2_Transform(transform_type="Encryption", transform_id=20, length=12, key_length=0x800e0100)
            / IKEv2_Transform(transform_type="PRF", transform_id=5)
            / IKEv2_Transform(transform_type="GroupDesc", transform_id=group))


def sa_init(group, ke_len, cookie=None, notifies=True):
    p = IKEv2(init_SPI=rand(8), resp_SPI=b"\0" * 8, exch_type=34, flags="Initiator", id=0)
    if cookie is not None:
        p /= IKEv2_Notify(type=16390, notify=cookie)
    p /= IKEv2_SA(prop=IKEv2_Proposal(proposal=1, proto=1, trans=transforms(group)))
    p /= IKEv2_KE(group=group, ke=rand(ke_len))
    p /= IKEv2_Nonce(nonce=rand(32))
    if notifies:
        p /= IKEv2_Notify(type=16388, notify=rand(20)) / IKEv2_Notify(type=16389, notify=rand(20))
        p /= IKEv2_Notify(type=16430)  # IKEV2_FRAGMENTATION_SUPPORTED
        p /= IKEv2_Notify(type=16431, notify=b"\x00\x02\x00\x03\x00\x04")  # SIGNATURE_HASH_ALGORITHMS
    return bytes(p)


def sk_message(exch, msg_id, first, body_len):
    """A message whose only payload is SK with a random body (IV, ciphertext and ICV)."""
    p = IKEv2(init_SPI=rand(8), resp_SPI=rand(8), exch_type=exch, flags="Initiator", id=msg_id)
    p /= IKEv2_Encrypted(next_payload=first, load=rand(body_len))
    return bytes(p)


messages = [
    sa_init(31, 32),                     # curve25519
    sa_init(19, 64),                     # ecp256
    sa_init(14, 256, notifies=False),    # modp2048
    sa_init(31, 32, cookie=rand(32)),    # the retry with a cookie
    sk_message(35, 1, 35, 200),          # IKE_AUTH, first inner payload IDi
    sk_message(36, 2, 33, 120),          # CREATE_CHILD_SA, first inner payload SA
    sk_message(37, 3, 42, 40),           # INFORMATIONAL, first inner payload Delete
]
for m in messages:
    write("ike_message", m)
    write("ike_endpoint", m)

examples = HERE.parent / "deploy" / "examples"
for f in sorted(examples.glob("*.toml")):
    if f.name.endswith("-secrets.toml"):
        continue
    text = f.read_bytes()
    secrets = examples / f.name.replace(".toml", "-secrets.toml")
    write("config_files", text + (b"\0" + secrets.read_bytes() if secrets.exists() else b""))

# x509_inputs: the first byte picks the input (see the target's doc).
pki = HERE.parent / "crates" / "ike" / "tests" / "data" / "pki"


def der(name):
    text = (pki / name).read_text()
    body = text.split("-----", 2)[2].split("-----END", 1)[0]
    return base64.b64decode("".join(body.split()))


def piece(data):
    return len(data).to_bytes(2, "big") + data


for name in ["p256.pem", "p384.pem", "rsa3072.pem", "ed25519.pem", "email.pem", "sha1.pem", "root.pem"]:
    write("x509_inputs", b"\0" + der(name))
for name in ["rsa4096-a.pem", "expired.pem"]:
    write("x509_inputs", b"\1" + (pki / name).read_bytes())
write("x509_inputs", b"\2" + (pki / "inter.crl.pem").read_bytes())
thirty_days = (30 * 86400).to_bytes(4, "big")
for leaf, inter in [("p256.pem", "inter.pem"), ("revoked.pem", "inter.pem"), ("stranger.pem", "inter.pem"),
                    ("rsa4096-a.pem", "rsa4096-inter.pem")]:
    write("x509_inputs", b"\3" + thirty_days + piece(der(leaf)) + piece(der(inter)))
for name in ["p256.key", "rsa3072.pk8.key", "ed25519.key"]:
    write("x509_inputs", b"\4" + (pki / name).read_bytes())
