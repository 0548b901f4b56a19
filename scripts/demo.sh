#!/usr/bin/env bash
# The Rampart demo: builds the rampart binary, then runs `rampart demo` as root: a hub and a
# branch gateway in network namespaces, 100 branch tunnels negotiated over IKEv2, UDP traffic
# through every tunnel both ways, a summary, and everything removed again (also on Ctrl-C).
#
# Usage: scripts/demo.sh [rampart demo options]     e.g. --tunnels 500 --duration 20 --rate 50000
#        RAMPART_DEMO_PROFILE=dev scripts/demo.sh   (a debug build: quicker to build, slower to run)
#
# Run it as yourself (it builds with your cargo, then asks sudo to run the demo) or as root.
# What the demo needs from Debian's packages (clang for the XDP program, iproute2, ethtool) it
# installs itself with `scripts/setup.sh --demo` (through sudo) when it is missing; Rust it
# cannot install, and names.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v cargo > /dev/null || missing+=("Rust 1.95 or later (cargo): https://rustup.rs, then: rustup toolchain install stable")
if [ "$(id -u)" -ne 0 ] && ! command -v sudo > /dev/null; then
  missing+=("root: run this script as root, or install sudo (apt-get install sudo)")
fi
if [ ${#missing[@]} -eq 0 ] && ! { command -v clang && command -v ip && command -v ethtool; } > /dev/null; then
  echo "==> scripts/setup.sh --demo (installs clang, iproute2 and ethtool from Debian's packages)"
  as_root scripts/setup.sh --demo
fi
command -v clang > /dev/null || missing+=("clang (builds the XDP program): apt-get install clang")
command -v ip > /dev/null || missing+=("iproute2: apt-get install iproute2")
command -v ethtool > /dev/null || missing+=("ethtool: apt-get install ethtool")
if [ ${#missing[@]} -gt 0 ]; then
  echo "scripts/demo.sh: the demo needs:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi

profile=${RAMPART_DEMO_PROFILE:-release}
case "$profile" in
  release) dir=release ;;
  dev) dir=debug ;;
  *) echo "RAMPART_DEMO_PROFILE: release or dev" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-$PWD/target}
echo "==> cargo build --profile $profile -p rampart (the first build takes a few minutes)"
cargo build --profile "$profile" -p rampart --bin rampart
bin="$target/$dir/rampart"

if [ "$(id -u)" -eq 0 ]; then
  exec "$bin" demo "$@"
fi
echo "==> sudo $bin demo $* (network namespaces, XDP programs and AF_XDP sockets need root)"
exec sudo "$bin" demo "$@"
