#!/usr/bin/env bash
# Builds every fuzz target (fuzz/, its own Cargo package) against its checked-in lockfile and
# runs each for a few seconds from its seed corpus in fuzz/seeds/<target>/, on stable Rust
# (`--sanitizer none`, see fuzz/README.md). Fails when a target stops compiling, the lockfile is
# stale, or a target crashes: on a seed, or on what it finds in its few seconds.
#
#   scripts/fuzz-smoke.sh              every target, FUZZ_SECONDS (default 5) each
#   scripts/fuzz-smoke.sh wire_ipv4    only the targets named
#
# New inputs go to fuzz/corpus/<target>/ and crashes to fuzz/artifacts/<target>/ (both ignored
# by git); the seeds are only read.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-5}"
if ! command -v cargo-fuzz >/dev/null; then
  echo "cargo-fuzz is missing: scripts/setup.sh installs it" >&2
  exit 1
fi
# A stale lockfile makes `cargo metadata --locked` fail instead of rewriting it.
cargo metadata --locked --format-version 1 >/dev/null
cargo fuzz build --sanitizer none
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  log="$(mktemp)"
  if ! cargo fuzz run --sanitizer none "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    rm -f "$log"
    echo "fuzz target $t failed (crash input under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  # "#2115647  DONE   cov: 67 ft: 110 corp: 33/1984b ..." -> runs and edges covered
  printf '%-18s %s\n' "$t" "$(awk '$2 == "DONE" { sub("#", "", $1); print $1 " runs, cov " $4 ", corpus " $8 }' "$log")"
  rm -f "$log"
done
echo "[fuzz] ${#targets[@]} targets ok"
