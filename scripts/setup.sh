#!/usr/bin/env bash
# Installs what Rampart's build, tests, demo and benchmarks need on a Debian machine, as root:
# clang (the XDP program), iproute2/ethtool (namespaces, veth), strongSwan with kernel-libipsec
# (the real IKEv2/ESP peer), tcpdump/iperf3 (captures and load), intel-ipsec-mb (a benchmark
# reference), libfaketime (wall-clock jumps), scapy/cryptography (the independent ESP oracle),
# cargo-fuzz (builds the fuzz targets, pinned). Safe to run again.
#
#   scripts/setup.sh          everything the build, the tests, the demo and the benchmarks need
#   scripts/setup.sh --demo   only what `scripts/demo.sh` needs (clang, iproute2, ethtool)
set -euo pipefail

APT_PACKAGES=(
  clang llvm libbpf-dev iproute2 ethtool iputils-ping netcat-openbsd tcpdump iperf3
  strongswan-charon strongswan-swanctl charon-systemd strongswan-pki
  libcharon-extra-plugins libstrongswan-extra-plugins libstrongswan-standard-plugins
  libipsec-mb-dev libfaketime
  systemd
)
PIP_PACKAGES=(scapy==2.8.0 cryptography==48.0.0)
DEMO_PACKAGES=(clang llvm iproute2 ethtool)
CARGO_FUZZ_VERSION=0.13.1

if [ "${1:-}" = "--demo" ]; then
  APT_PACKAGES=("${DEMO_PACKAGES[@]}")
  PIP_PACKAGES=()
  CARGO_FUZZ_VERSION=
elif [ $# -gt 0 ]; then
  echo "usage: scripts/setup.sh [--demo]" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/setup.sh installs packages: run it as root (sudo scripts/setup.sh)" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ${#PIP_PACKAGES[@]} -gt 0 ] && ! python3 -c 'import scapy, cryptography' 2>/dev/null; then
  echo "[setup] pip install ${PIP_PACKAGES[*]}"
  python3 -m pip install --quiet "${PIP_PACKAGES[@]}"
fi
if [ -n "$CARGO_FUZZ_VERSION" ] && [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "[setup] cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
echo "[setup] ok"
