#!/usr/bin/env bash
# strongSwan (charon + kernel-libipsec: userspace ESP over a TUN device, ESP-in-UDP on 4500) as
# the two gateways of the scripts/topology.sh namespaces, for the traffic benchmark's strongSwan
# arm. Adapted from the reference harness of the project's strongSwan interop tests, carried here
# so that the benchmark runs from a plain clone.
#
#   NAME-ha 10.1.0.2 -- lan0 [NAME-ga] wan0 192.0.2.1 == br == 192.0.2.2 wan0 [NAME-gb] lan0 -- 10.2.0.2 NAME-hb
#           fd01::2                    2001:db8::1          2001:db8::2                     fd02::2
#
# IKEv2 PSK, ESP proposal $ESP (default aes256gcm16: AES-GCM-16 with a 256-bit key), tunnel mode,
# traffic selectors 10.1.0.0/24,fd01::/64 <-> 10.2.0.0/24,fd02::/64. kernel-libipsec fakes NAT
# detection, so ESP is always UDP-encapsulated (RFC 3948). The gateways forward in the kernel
# (ip_forward on) between their LAN veth and strongSwan's ipsec0 TUN (MTU 1400).
#
# Usage: bench/scripts/strongswan.sh up NAME STATEDIR     (topology NAME must exist)
#        bench/scripts/strongswan.sh down STATEDIR        (stops only the PIDs it recorded)
# Touches nothing outside the two gateway namespaces and STATEDIR.
set -euo pipefail

: "${CHARON:=/usr/sbin/charon-systemd}"   # writes no PID file: several instances side by side
: "${SWANCTL:=/usr/sbin/swanctl}"
: "${ESP:=aes256gcm16}"
: "${IKE:=aes256-sha256-ecp256}"
: "${PSK:=rampart-bench-psk-0123456789abcdef}"
PLUGINS="random nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 pkcs8 pubkey x509 constraints kernel-libipsec kernel-netlink socket-default vici updown"

cmd=${1:-}
usage() { echo "usage: $0 up NAME STATEDIR | down STATEDIR" >&2; exit 2; }

down() {
    local state=$1
    [ -d "$state" ] || return 0
    for pidf in "$state"/*/charon.pid; do
        [ -f "$pidf" ] || continue
        local pid comm
        pid=$(cat "$pidf")
        comm=$(cat /proc/"$pid"/comm 2>/dev/null || true)
        case "$comm" in
            charon*)
                kill -TERM "$pid" 2>/dev/null || true
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true ;;
            *) ;;  # gone, or no longer ours: leave it alone
        esac
        rm -f "$pidf"
    done
    rm -f "$state"/*/charon.vici
}

up() {
    local name=$1 state=$2
    mkdir -p "$state"
    # On any failure (set -e or an explicit exit) stop what was started.
    trap 'rc=$?; if [ $rc -ne 0 ]; then down "$state"; fi' EXIT
    for side in a b; do
        local d="$state/$side" ns lwan rwan lnet rnet lid rid
        if [ $side = a ]; then
            ns="$name-ga" lwan=192.0.2.1 rwan=192.0.2.2 lnet=10.1.0.0/24,fd01::/64 rnet=10.2.0.0/24,fd02::/64
            lid=gw-a.bench.test rid=gw-b.bench.test
        else
            ns="$name-gb" lwan=192.0.2.2 rwan=192.0.2.1 lnet=10.2.0.0/24,fd02::/64 rnet=10.1.0.0/24,fd01::/64
            lid=gw-b.bench.test rid=gw-a.bench.test
        fi
        mkdir -p "$d/swanctl"
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        cat > "$d/strongswan.conf" <<EOF
charon {
  load = $PLUGINS
  install_routes = yes
  plugins {
    vici { socket = unix://$d/charon.vici }
    kernel-libipsec { allow_peer_ts = no }
  }
  filelog {
    main {
      path = $d/charon.log
      time_format = %H:%M:%S
      default = 1
    }
  }
  journal { default = -1 }
  syslog { daemon { default = -1 } }
}
EOF
        cat > "$d/swanctl/swanctl.conf" <<EOF
connections {
  gw {
    version = 2
    local_addrs = $lwan
    remote_addrs = $rwan
    proposals = $IKE
    local { auth = psk
            id = $lid }
    remote { auth = psk
             id = $rid }
    children {
      net {
        mode = tunnel
        local_ts = $lnet
        remote_ts = $rnet
        esp_proposals = $ESP
      }
    }
  }
}
secrets {
  ike-gw { id-a = gw-a.bench.test
           id-b = gw-b.bench.test
           secret = "$PSK" }
}
EOF
        STRONGSWAN_CONF="$d/strongswan.conf" ip netns exec "$ns" "$CHARON" </dev/null >"$d/stdout.log" 2>&1 &
        echo $! > "$d/charon.pid"
        for _ in $(seq 100); do [ -S "$d/charon.vici" ] && break; sleep 0.1; done
        [ -S "$d/charon.vici" ] || { echo "charon $side did not start: $(tail -5 "$d/stdout.log")" >&2; exit 1; }
        ip netns exec "$ns" "$SWANCTL" --load-all --uri "unix://$d/charon.vici" --file "$d/swanctl/swanctl.conf" \
            > "$d/load.log"
    done
    ip netns exec "$name-ga" "$SWANCTL" --initiate --uri "unix://$state/a/charon.vici" --ike gw --child net \
        --timeout 30 > "$state/a/initiate.log" 2>&1 \
        || { echo "CHILD_SA did not come up: $(tail -5 "$state/a/initiate.log")" >&2; exit 1; }
    trap - EXIT
}

case "$cmd" in
    up) [ $# -eq 3 ] || usage; up "$2" "$3" ;;
    down) [ $# -eq 2 ] || usage; down "$2" ;;
    *) usage ;;
esac
