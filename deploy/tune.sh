#!/usr/bin/env bash
# Tunes a host's NICs for Rampart's data plane: as many combined queues as the data plane
# serves, each queue's IRQ on the core of the worker that serves it, RPS off on those queues,
# LRO off (XDP in driver mode refuses it), NAPI busy-poll settings, and advice on isolating
# the workers' cores.
#
# It never runs by itself (no unit or package script calls it) and changes nothing unless told:
#   deploy/tune.sh --dry-run [--config /etc/rampart/dataplane.toml] [--lan IF] [--wan IF] [--cores 2-7]
#   deploy/tune.sh --apply   [...]
# --dry-run prints every command it would run; --apply runs them (as root). Interfaces, queues
# and cores come from the data plane's configuration unless given on the command line. The
# settings do not survive a reboot: put the --apply call in your own boot-time hook once the
# plan looks right.
set -euo pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

MODE=""
CONFIG=/etc/rampart/dataplane.toml
LAN="" WAN="" CORES="" QUEUES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) MODE=dry ;;
    --apply) MODE=apply ;;
    --config) CONFIG="$2"; shift ;;
    --lan) LAN="$2"; shift ;;
    --wan) WAN="$2"; shift ;;
    --cores) CORES="$2"; shift ;;
    --queues) QUEUES="$2"; shift ;;
    -h|--help) usage 0 ;;
    *) echo "tune.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[ -n "$MODE" ] || { echo "tune.sh: say --dry-run or --apply" >&2; usage; }
if [ "$MODE" = apply ] && [ "$(id -u)" -ne 0 ]; then
  echo "tune.sh: --apply needs root" >&2
  exit 1
fi

# ---- What to tune: from the command line, else from the data plane's configuration ----------
# Reads the simple `key = value` lines of the file (the format rampart-dataplane documents).
toml_get() { # section key
  [ -r "$CONFIG" ] || return 0
  awk -v want_section="$1" -v key="$2" '
    /^[[:space:]]*\[/ { gsub(/[][[:space:]]/, ""); section = $0; next }
    section == want_section && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
      sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]*#.*$/, ""); gsub(/["\[\]]/, ""); gsub(/[[:space:]]/, "");
      print; exit
    }' "$CONFIG"
}
[ -n "$LAN" ] || LAN=$(toml_get lan name)
[ -n "$WAN" ] || WAN=$(toml_get wan name)
[ -n "$CORES" ] || CORES=$(toml_get "" cores)
[ -n "$QUEUES" ] || QUEUES=$(toml_get lan queues)
[ -n "$LAN" ] && [ -n "$WAN" ] || { echo "tune.sh: no interfaces (give --lan/--wan or --config)" >&2; exit 1; }
[ -n "$CORES" ] || CORES=0
[ -n "$QUEUES" ] || QUEUES=0

# "2-4,7" or "2,3,4,7" -> "2 3 4 7"
expand() {
  local out=() part a b
  IFS=',' read -ra parts <<< "$1"
  for part in "${parts[@]}"; do
    if [[ "$part" == *-* ]]; then
      a=${part%-*}; b=${part#*-}
      for ((i = a; i <= b; i++)); do out+=("$i"); done
    elif [ -n "$part" ]; then
      out+=("$part")
    fi
  done
  echo "${out[@]}"
}
read -ra CORE_LIST <<< "$(expand "$CORES")"
read -ra QUEUE_LIST <<< "$(expand "$QUEUES")"
NQ=0
for q in "${QUEUE_LIST[@]}"; do [ "$q" -ge "$NQ" ] && NQ=$((q + 1)); done

run() {
  if [ "$MODE" = dry ]; then
    echo "would run: $*"
  else
    echo "+ $*"
    "$@" || echo "tune.sh: failed (continuing): $*" >&2
  fi
}
write() { # value file
  if [ ! -e "$2" ]; then
    echo "skip: $2 does not exist"
  elif [ "$MODE" = dry ]; then
    echo "would write: $1 > $2   (now: $(tr -d '\n' < "$2" 2>/dev/null || echo '?'))"
  else
    echo "+ echo $1 > $2"
    echo "$1" > "$2" || echo "tune.sh: failed (continuing): $2" >&2
  fi
}

echo "# Rampart NIC tuning ($MODE): LAN $LAN, WAN $WAN, queues ${QUEUE_LIST[*]}, worker cores ${CORE_LIST[*]}"

for dev in "$LAN" "$WAN"; do
  [ -d "/sys/class/net/$dev" ] || { echo "tune.sh: no interface $dev" >&2; exit 1; }
  echo
  echo "## $dev"
  # 1. Combined channels: exactly the queues the data plane serves, so RSS spreads over them.
  if command -v ethtool > /dev/null && ethtool -l "$dev" > /dev/null 2>&1; then
    run ethtool -L "$dev" combined "$NQ"
  else
    echo "note: $dev does not report channels (ethtool -l); skipping the queue count"
  fi
  # 2. LRO off: drivers refuse XDP in native mode while it is on.
  if command -v ethtool > /dev/null && ethtool -k "$dev" 2> /dev/null | grep -q '^large-receive-offload: on'; then
    run ethtool -K "$dev" lro off
  fi
  # 3. Each queue's IRQ on the core of the worker serving it (queue pair k -> worker k % cores).
  irqs=()
  if [ -d "/sys/class/net/$dev/device/msi_irqs" ]; then
    for f in "/sys/class/net/$dev/device/msi_irqs"/*; do irqs+=("$(basename "$f")"); done
  fi
  for irq in "${irqs[@]}"; do
    name=$(awk -v n="$irq:" '$1 == n { print $NF }' /proc/interrupts)
    # Queue number at the end of names such as ice-eth0-TxRx-3, eth0-rx-3, mlx5_comp3@pci...
    q=$(sed -nE 's/.*(TxRx|rx|tx|comp|txrx|fp)[-_]?([0-9]+)(@.*)?$/\2/Ip' <<< "$name")
    [ -n "$q" ] || continue
    for k in "${!QUEUE_LIST[@]}"; do
      if [ "${QUEUE_LIST[$k]}" = "$q" ]; then
        core=${CORE_LIST[$((k % ${#CORE_LIST[@]}))]}
        write "$core" "/proc/irq/$irq/smp_affinity_list"
      fi
    done
  done
  [ ${#irqs[@]} -gt 0 ] || echo "note: $dev has no MSI IRQs (virtual device?); nothing to pin"
  # 4. RPS off on the served queues: the worker reads them with AF_XDP, the kernel should not
  #    steer their packets to other cores.
  for q in "${QUEUE_LIST[@]}"; do
    write 0 "/sys/class/net/$dev/queues/rx-$q/rps_cpus"
  done
  # 5. NAPI busy polling (the data plane sets SO_PREFER_BUSY_POLL on its sockets): defer the
  #    hard IRQ while the worker polls.
  write 2 "/sys/class/net/$dev/napi_defer_hard_irqs"
  write 200000 "/sys/class/net/$dev/gro_flush_timeout"
done

echo
echo "## Cores ${CORE_LIST[*]} (advice; this script does not change the boot configuration)"
cmdline=$(cat /proc/cmdline 2> /dev/null || true)
list=$(IFS=,; echo "${CORE_LIST[*]}")
for opt in isolcpus nohz_full rcu_nocbs; do
  if grep -qw "$opt=[^ ]*" <<< "$cmdline"; then
    echo "ok: kernel command line has $(grep -o "$opt=[^ ]*" <<< "$cmdline")"
  else
    echo "advice: add $opt=$( [ $opt = isolcpus ] && echo "managed_irq,domain,")$list to the kernel command line"
  fi
done
if command -v systemctl > /dev/null && systemctl is-active --quiet irqbalance 2> /dev/null; then
  echo "advice: irqbalance is running and will move the IRQs back: set IRQBALANCE_BANNED_CPULIST=$list"
  echo "        in /etc/default/irqbalance and restart it"
fi
echo "advice: keep the IKE daemon off the worker cores (CPUAffinity= in a drop-in of rampart-ike.service)"
