#!/bin/bash
# Test PKI for rampart-ike's certificate tests, made with strongSwan's pki (strongswan-pki):
# root CA -> intermediate CA -> leaves of every key type, a revoked leaf with its CRL, an
# expired leaf, a leaf of another CA, and a SHA-1-signed leaf. Run it to make them again
# (the tests read the files; keys here are test keys, never used anywhere else).
# `make.sh rsa4096` makes only the RSA-4096 chain (root -> intermediate -> two leaves) whose
# IKE_AUTH messages exceed 1280 bytes (the IKE fragmentation tests), leaving the rest as it is.
set -euo pipefail
cd "$(dirname "$0")"
pki() { command pki "$@" 2> >(grep -v -e tpm -e TPM >&2); }
gen() { pki --gen --type "$1" ${2:+--size $2} --outform pem; }
pub() { pki --pub --in "$1" --outform der; }
rsa4096() {
  rm -f rsa4096-*.pem rsa4096-*.key
  gen rsa 4096 > rsa4096-root.key
  pki --self --ca --lifetime 7300 --in rsa4096-root.key --dn "C=DE, O=Rampart Test, CN=Rampart Test RSA-4096 Root" \
     --outform pem > rsa4096-root.pem
  gen rsa 4096 > rsa4096-inter.key
  pub rsa4096-inter.key | pki --issue --ca --lifetime 7000 --cacert rsa4096-root.pem --cakey rsa4096-root.key \
     --dn "C=DE, O=Rampart Test, CN=Rampart Test RSA-4096 Intermediate" --outform pem > rsa4096-inter.pem
  for side in a b; do
    gen rsa 4096 > "rsa4096-$side.key"
    pub "rsa4096-$side.key" | pki --issue --lifetime 6900 --cacert rsa4096-inter.pem --cakey rsa4096-inter.key \
       --dn "C=DE, O=Rampart Test, CN=gw-rsa4096-$side.example.net" --san "gw-rsa4096-$side.example.net" \
       --flag serverAuth --outform pem > "rsa4096-$side.pem"
  done
}
if [ "${1:-}" = rsa4096 ]; then rsa4096; exit 0; fi
rm -f ./*.pem ./*.der
gen ecdsa 256 > root.key
pki --self --ca --lifetime 7300 --in root.key --dn "C=DE, O=Rampart Test, CN=Rampart Test Root" --outform pem > root.pem
gen ecdsa 384 > inter.key
pub inter.key | pki --issue --ca --lifetime 7000 --cacert root.pem --cakey root.key \
   --dn "C=DE, O=Rampart Test, CN=Rampart Test Intermediate" --outform pem > inter.pem
leaf() { # name type size san [extra issue args]
  local n=$1 t=$2 s=$3 san=$4; shift 4
  gen "$t" "$s" > "$n.key"
  pub "$n.key" | pki --issue --lifetime 6900 --cacert inter.pem --cakey inter.key \
     --dn "C=DE, O=Rampart Test, CN=$san" --san "$san" --flag serverAuth "$@" --outform pem > "$n.pem"
}
leaf p256 ecdsa 256 gw-p256.example.net
leaf p384 ecdsa 384 gw-p384.example.net
leaf rsa3072 rsa 3072 gw-rsa.example.net
leaf ed25519 ed25519 "" gw-ed25519.example.net
leaf email ecdsa 256 branch@example.net
leaf revoked ecdsa 256 gw-revoked.example.net --serial 0badc0de
leaf expired ecdsa 256 gw-expired.example.net --not-before "01.01.20 00:00:00" --not-after "01.01.21 00:00:00"
leaf sha1 rsa 2048 gw-sha1.example.net --digest sha1
pki --signcrl --cacert inter.pem --cakey inter.key --lifetime 7000 --reason key-compromise \
    --serial 0badc0de --outform pem > inter.crl.pem
gen ecdsa 256 > other.key
pki --self --ca --lifetime 7300 --in other.key --dn "C=DE, O=Elsewhere, CN=Other Root" --outform pem > other.pem
gen ecdsa 256 > stranger.key
pub stranger.key | pki --issue --lifetime 6900 --cacert other.pem --cakey other.key \
   --dn "C=DE, O=Elsewhere, CN=gw-stranger.example.net" --san gw-stranger.example.net --outform pem > stranger.pem
# PKCS#8 forms of the SEC1 / PKCS#1 keys, as other tools write them.
openssl pkcs8 -topk8 -nocrypt -in p256.key -out p256.pk8.key 2>/dev/null || true
openssl pkcs8 -topk8 -nocrypt -in rsa3072.key -out rsa3072.pk8.key 2>/dev/null || true
rsa4096
