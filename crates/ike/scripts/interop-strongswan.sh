#!/usr/bin/env bash
# Interop check of the IKE core against strongSwan (charon 5.9) in network namespaces, using the
# harness in ../shared/peers/strongswan (or $SWAN_HARNESS). Rampart's udp_initiator example runs
# in the initiator namespace; strongSwan responds. For each proposal pair: IKE_SA_INIT,
# IKE_AUTH (PSK) with the first CHILD_SA, CHILD_SA rekey, IKE_SA rekey, DPD, delete; the ESP keys
# both sides derived are compared (strongSwan logs them with chd = 4, Rampart never prints them).
# Needs root. Creates namespaces ${NS_PREFIX}a/${NS_PREFIX}b and removes them, also on failure.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
HARNESS=${SWAN_HARNESS:-$ROOT/../shared/peers/strongswan}
[ -d "$HARNESS" ] || HARNESS=/work/shared/peers/strongswan
export NS_PREFIX=${NS_PREFIX:-rikei} STATE=${STATE:-$(mktemp -d /tmp/rampart-ike-interop.XXXXXX)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -z "${UDP_INITIATOR:-}" ]; then
  cargo build -q -p rampart-ike --example udp_initiator
fi
BIN=${UDP_INITIATOR:-$CARGO_TARGET_DIR/debug/examples/udp_initiator}
cleanup() { (cd "$HARNESS" && ./down.sh >/dev/null 2>&1) || true; }
trap cleanup EXIT
fail=0
while read -r ike esp; do
  cleanup; rm -rf "$STATE"; mkdir -p "$STATE"
  (cd "$HARNESS" && SWAN_SIDES=b INITIATE=no LOG_CHD=4 IKE_PROPOSALS="$ike" ESP_PROPOSALS="$esp" ./up.sh >"$STATE.up.log" 2>&1)
  if IKE_PROPOSALS="$ike" ESP_PROPOSALS="$esp" timeout 70 ip netns exec "${NS_PREFIX}a" "$BIN" 192.0.2.1 192.0.2.2 \
      "$STATE/b/charon.log" >"$STATE.run.log" 2>&1; then
    echo "ok   $ike / $esp: $(grep 'ESP keys' "$STATE.run.log")"
  else
    echo "FAIL $ike / $esp (see $STATE.run.log, $STATE/b/charon.log)"; fail=1
  fi
done <<'LIST'
aes256-sha256-ecp256,aes256-sha256-x25519 aes256gcm16
aes256gcm16-prfsha256-x25519 aes256gcm16-ecp256
chacha20poly1305-prfsha512-ecp384 chacha20poly1305-x25519
aes128-sha512-modp2048 aes128-sha256-modp2048
aes256gcm16-prfsha384-ecp256 aes256-sha512
LIST
# strongSwan initiates, Rampart responds (and then drives the rekeys and the delete itself).
cleanup; rm -rf "$STATE"; mkdir -p "$STATE"
(cd "$HARNESS" && SWAN_SIDES=a INITIATE=no LOG_CHD=4 ./up.sh >"$STATE.up.log" 2>&1)
( RESPOND=1 timeout 70 ip netns exec "${NS_PREFIX}b" "$BIN" 192.0.2.2 192.0.2.1 "$STATE/a/charon.log" >"$STATE.run.log" 2>&1 ) &
pid=$!
sleep 1
(cd "$HARNESS" && . ./env.sh && swanctl_in a --initiate --ike "$CONN_NAME" --child "$CHILD_NAME" --timeout 30) >"$STATE.init.log" 2>&1 || true
if wait "$pid"; then
  echo "ok   responder: $(grep 'ESP keys' "$STATE.run.log")"
else
  echo "FAIL responder (see $STATE.run.log, $STATE/a/charon.log)"; fail=1
fi
exit $fail
