#!/usr/bin/env bash
# Rampart's whole test suite: formatting, lints, every crate's unit and integration tests
# (known-answer vectors, Wycheproof, the scapy ESP oracle, property tests), the feature matrix
# and a short run of every fuzz target.
# Tests that build network namespaces or load XDP programs need root.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "no import loops between the modules of a crate (scripts/check-module-loops.py)"
scripts/check-module-loops.py
step "crypto feature matrix"
cargo check -q -p rampart-crypto --locked --no-default-features --features ring
cargo check -q -p rampart-crypto --locked --no-default-features --features rustcrypto
step "build the rampart binary (the end-to-end tests run it)"
cargo build -q --locked -p rampart --bin rampart
export RAMPART_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/rampart"
step "cargo test"
cargo test --workspace --all-targets --locked --no-fail-fast
step "deployment: Debian package, systemd units, capabilities (scripts/check-deploy.sh)"
RAMPART_DEB_PROFILE=dev scripts/check-deploy.sh
step "fuzz targets: build against fuzz/Cargo.lock, a few seconds each from the seeds (scripts/fuzz-smoke.sh)"
scripts/fuzz-smoke.sh
step "loom model checks (lock-free replay window)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -q --locked -p rampart-esp --release --test loom
echo
echo "all tests passed"
