#!/usr/bin/env bash
# Two Rampart gateways between two hosts, in five network namespaces joined by veth pairs:
#
#   NAME-ha          NAME-ga                   NAME-sw               NAME-gb                NAME-hb
#   eth0 ----------- lan0   wan0 ------- to-ga [br0] to-gb ------ wan0   lan0 ---------- eth0
#   10.1.0.2/24      10.1.0.1  192.0.2.1/24                          192.0.2.2  10.2.0.1      10.2.0.2/24
#   fd01::2/64       fd01::1   2001:db8::1/64                        2001:db8::2 fd02::1      fd02::2/64
#
# The WAN goes through a bridge (the "switch") so that the ESP between the gateways can be
# captured on its ports (AF_XDP transmits bypass the packet taps of the sending interface, and
# XDP takes frames before the taps of the receiving one) and injected towards a gateway.
#
# Every link has QUEUES rx/tx queues (default 1). The gateways do not forward in the kernel
# (ip_forward off): cleartext crosses only through a running data plane. The hosts' tx checksum
# offload is off, so that frames on the wire carry real checksums (a veth otherwise hands
# partial checksums to XDP, which a NIC never does).
#
# Usage: scripts/topology.sh up NAME [QUEUES]
#        scripts/topology.sh down NAME
# Touches nothing outside the five namespaces it creates.
set -euo pipefail

cmd=${1:-}
name=${2:-}
queues=${3:-1}
if [[ -z "$cmd" || -z "$name" ]]; then
    echo "usage: $0 up|down NAME [QUEUES]" >&2
    exit 2
fi
ha="$name-ha" ga="$name-ga" sw="$name-sw" gb="$name-gb" hb="$name-hb"

down() {
    for ns in "$ha" "$ga" "$sw" "$gb" "$hb"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}

pair() { # ns_a if_a ns_b if_b
    ip -n "$1" link add "$2" numtxqueues "$queues" numrxqueues "$queues" type veth \
        peer name "$4" netns "$3" numtxqueues "$queues" numrxqueues "$queues"
}

up() {
    down
    trap 'down' ERR
    for ns in "$ha" "$ga" "$sw" "$gb" "$hb"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
    done
    pair "$ha" eth0 "$ga" lan0
    pair "$ga" wan0 "$sw" to-ga
    pair "$sw" to-gb "$gb" wan0
    ip -n "$sw" link add br0 type bridge
    for p in to-ga to-gb; do
        ip -n "$sw" link set "$p" master br0
        ip -n "$sw" link set "$p" up
    done
    ip -n "$sw" link set br0 up
    pair "$gb" lan0 "$hb" eth0
    addr() { # ns if v4 v6 mac
        ip -n "$1" link set "$2" address "$5"
        ip -n "$1" addr add "$3" dev "$2"
        ip -n "$1" addr add "$4" dev "$2" nodad
        ip -n "$1" link set "$2" up
    }
    addr "$ha" eth0 10.1.0.2/24 fd01::2/64 02:00:00:01:00:02
    addr "$ga" lan0 10.1.0.1/24 fd01::1/64 02:00:00:01:00:01
    addr "$ga" wan0 192.0.2.1/24 2001:db8::1/64 02:00:00:00:00:01
    addr "$gb" wan0 192.0.2.2/24 2001:db8::2/64 02:00:00:00:00:02
    addr "$gb" lan0 10.2.0.1/24 fd02::1/64 02:00:00:02:00:01
    addr "$hb" eth0 10.2.0.2/24 fd02::2/64 02:00:00:02:00:02
    ip -n "$ha" route add default via 10.1.0.1
    ip -n "$ha" -6 route add default via fd01::1
    ip -n "$hb" route add default via 10.2.0.1
    ip -n "$hb" -6 route add default via fd02::1
    ip -n "$ga" route add 10.2.0.0/24 via 192.0.2.2
    ip -n "$ga" -6 route add fd02::/64 via 2001:db8::2
    ip -n "$gb" route add 10.1.0.0/24 via 192.0.2.1
    ip -n "$gb" -6 route add fd01::/64 via 2001:db8::1
    ip netns exec "$ha" ethtool -K eth0 tx off >/dev/null
    ip netns exec "$hb" ethtool -K eth0 tx off >/dev/null
    trap - ERR
}

case "$cmd" in
    up) up ;;
    down) down ;;
    *)
        echo "usage: $0 up|down NAME [QUEUES]" >&2
        exit 2
        ;;
esac
