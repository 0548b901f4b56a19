#!/usr/bin/env bash
# Checks what Rampart ships for deployment, as root on a Debian machine (CI runs it):
#  1. builds the Debian package with `cargo deb` (installs cargo-deb first if missing);
#  2. installs it with dpkg, runs the installed `rampart --version` and `rampart --help`, checks
#     the files, the rampart user and the configuration directory;
#  3. `systemd-analyze verify` on the installed units and `systemd-analyze security --offline`,
#     failing above an exposure of RAMPART_MAX_EXPOSURE (default 2.5);
#  4. `--check` on the example configurations (the data plane's with the core list reduced to
#     what this machine has);
#  5. deploy/tune.sh --dry-run in a throwaway network namespace, which must change nothing;
#  6. starts the installed binary as an unprivileged user with exactly the capabilities of its
#     unit (in a throwaway namespace with veth pairs): it must come up, and must fail with any
#     one of them left out;
#  7. removes (purges) the package.
# Needs no systemd as PID 1. Environment: RAMPART_DEB_PROFILE (cargo profile, default release),
# CARGO_TARGET_DIR, RAMPART_TOOLS (where cargo-deb is installed, default ~/.cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { echo "[check-deploy] $*"; }
fail() { echo "[check-deploy] FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (dpkg -i, network namespaces)"
MAX_EXPOSURE=${RAMPART_MAX_EXPOSURE:-2.5}
PROFILE=${RAMPART_DEB_PROFILE:-release}
TOOLS=${RAMPART_TOOLS:-$HOME/.cargo}
export PATH="$TOOLS/bin:$PATH"

# ---- Tools ------------------------------------------------------------------------------------
if ! command -v systemd-analyze > /dev/null; then
  log "apt-get install systemd (for systemd-analyze)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends systemd
fi
if ! command -v cargo-deb > /dev/null; then
  log "cargo install cargo-deb into $TOOLS"
  cargo install --locked --quiet --root "$TOOLS" cargo-deb
fi
for t in dpkg setpriv ip prlimit ss; do command -v $t > /dev/null || fail "$t is missing (scripts/setup.sh)"; done

if dpkg-query -W -f='${Status}' rampart 2> /dev/null | grep -q "install ok installed"; then
  fail "a rampart package is already installed on this machine; not touching it"
fi

USER_EXISTED=0
getent passwd rampart > /dev/null && USER_EXISTED=1
WORK=$(mktemp -d /tmp/rampart-check-deploy.XXXXXX)
chmod 755 "$WORK" # the rampart user reads the test configurations in it
NETNS=()
INSTALLED=0
cleanup() {
  set +e
  for ns in "${NETNS[@]}"; do ip netns del "$ns" 2> /dev/null; done
  if [ "$INSTALLED" = 1 ]; then
    dpkg --purge rampart > /dev/null 2>&1
  fi
  # The package keeps its user on purge (Debian practice); this machine did not have one.
  if [ "$USER_EXISTED" = 0 ] && getent passwd rampart > /dev/null; then
    deluser --quiet --system rampart > /dev/null 2>&1
  fi
  rm -rf "$WORK" /dev/shm/rampart-check-deploy-*
}
trap cleanup EXIT

# ---- 1. Build ---------------------------------------------------------------------------------
log "cargo deb -p rampart (profile $PROFILE)"
cargo deb -p rampart --profile "$PROFILE" --output "$WORK/" > "$WORK/build.log" 2>&1 || {
  tail -40 "$WORK/build.log"
  fail "cargo deb"
}
DEB=$(ls "$WORK"/rampart_*.deb)
log "built $(basename "$DEB") ($(du -h "$DEB" | cut -f1))"
dpkg-deb --info "$DEB" | sed -n '/Package:/,/Description:/p' | sed 's/^/    /'

# ---- 2. Install and run -------------------------------------------------------------------------
log "dpkg -i"
dpkg -i "$DEB" > "$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
INSTALLED=1
for f in /usr/bin/rampart \
  /lib/systemd/system/rampart-dataplane.service /lib/systemd/system/rampart-ike.service \
  /lib/systemd/system/rampart.service /etc/default/rampart \
  /usr/share/doc/rampart/examples/dataplane-hub.toml /usr/share/doc/rampart/examples/dataplane-branch.toml \
  /usr/share/doc/rampart/README.deploy.md /usr/share/rampart/tune.sh /usr/share/rampart/grafana/rampart.json; do
  [ -e "$f" ] || fail "the package did not install $f"
done
getent passwd rampart > /dev/null || fail "no rampart user after install"
[ "$(stat -c '%a %U %G' /etc/rampart)" = "750 root rampart" ] || fail "/etc/rampart: $(stat -c '%a %U %G' /etc/rampart)"
dpkg-query -W -f='${Conffiles}\n' rampart | grep -q /etc/default/rampart || fail "/etc/default/rampart is not a conffile"
VERSION=$(/usr/bin/rampart --version) || fail "rampart --version"
log "installed: $VERSION"
[ "$VERSION" = "rampart $(dpkg-query -W -f='${Version}' rampart | sed 's/-[0-9]*$//')" ] || fail "version mismatch: $VERSION"
/usr/bin/rampart --help > "$WORK/help.txt" || fail "rampart --help"
for cmd in dataplane ike ctl sa policy; do
  grep -qE "^  $cmd " "$WORK/help.txt" || fail "rampart --help lists no '$cmd' command"
done

# ---- 3. Units ---------------------------------------------------------------------------------
UNITS=(rampart-dataplane.service rampart-ike.service rampart.service)
for u in "${UNITS[@]}"; do
  out=$(systemd-analyze verify --man=no "/lib/systemd/system/$u" 2>&1 || true)
  if [ -n "$out" ]; then
    echo "$out" | sed 's/^/    /'
    fail "systemd-analyze verify $u"
  fi
  score=$(systemd-analyze security --offline=yes "/lib/systemd/system/$u" 2>&1 | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
  [ -n "$score" ] || fail "no exposure score for $u"
  log "$u: verify ok, exposure $score"
  awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || fail "$u: exposure $score > $MAX_EXPOSURE"
done

# ---- 4. Example configurations --------------------------------------------------------------------
for f in /usr/share/doc/rampart/examples/*.toml; do
  case "$(basename "$f")" in
    dataplane-*)
      # Core numbers are the target machine's: check the rest with core 0.
      sed -E 's/^cores = \[.*\]/cores = [0]/' "$f" > "$WORK/$(basename "$f")"
      /usr/bin/rampart dataplane --check --config "$WORK/$(basename "$f")" > /dev/null 2> "$WORK/err" \
        || { cat "$WORK/err"; fail "example $f"; }
      ;;
    *)
      # IKE examples may point at a secrets file beside them (permissions are checked).
      cp "$(dirname "$f")"/*.toml "$WORK/" 2> /dev/null || true
      chmod 600 "$WORK"/*.toml
      if grep -q '^swanctl_dir = "/etc/rampart/swanctl"' "$f"; then
        # Certificates the example names, made with strongSwan's pki: a CA and the hub's.
        S="$WORK/swanctl"
        mkdir -p "$S/x509" "$S/x509ca" "$S/ecdsa"
        pki --gen --type ecdsa --size 256 --outform pem > "$WORK/ca.key"
        pki --self --ca --in "$WORK/ca.key" --dn "CN=Example Branches CA" --outform pem > "$S/x509ca/root.pem"
        (umask 077 && pki --gen --type ecdsa --size 256 --outform pem > "$S/ecdsa/hub.key")
        pki --pub --in "$S/ecdsa/hub.key" \
          | pki --issue --cacert "$S/x509ca/root.pem" --cakey "$WORK/ca.key" --dn "CN=hub.example.net" \
              --san hub.example.net --outform pem > "$S/x509/hub.pem"
        sed -i "s|^swanctl_dir = \"/etc/rampart/swanctl\"|swanctl_dir = \"$S\"|" "$WORK/$(basename "$f")"
      fi
      /usr/bin/rampart ike --check --config "$WORK/$(basename "$f")" > /dev/null 2> "$WORK/err" \
        || { cat "$WORK/err"; fail "example $f"; }
      ;;
  esac
  log "example $(basename "$f"): ok"
done

# ---- Network namespaces ---------------------------------------------------------------------------
# Sets NS_NAME to a new namespace that cleanup() removes.
new_ns() {
  NS_NAME="rampart-cd-$$-$1"
  ip netns add "$NS_NAME"
  NETNS+=("$NS_NAME")
  ip -n "$NS_NAME" link set lo up
}

# ---- 5. tune.sh --dry-run changes nothing ---------------------------------------------------------
new_ns tune
NS=$NS_NAME
ip -n "$NS" link add lan0 numrxqueues 4 numtxqueues 4 type veth peer name wan0 numrxqueues 4 numtxqueues 4
state() { ip netns exec "$NS" sh -c 'cat /sys/class/net/*/queues/rx-*/rps_cpus /sys/class/net/*/napi_defer_hard_irqs /sys/class/net/*/gro_flush_timeout; ethtool -l lan0 2>/dev/null' | md5sum; }
before=$(state)
ip netns exec "$NS" /usr/share/rampart/tune.sh --dry-run --lan lan0 --wan wan0 --queues 0-1 --cores 0-1 > "$WORK/tune.txt"
[ "$before" = "$(state)" ] || fail "tune.sh --dry-run changed the interfaces"
grep -q "would run: ethtool -L lan0 combined 2" "$WORK/tune.txt" || { cat "$WORK/tune.txt"; fail "tune.sh plan"; }
grep -q "would write: 0 > /sys/class/net/wan0/queues/rx-1/rps_cpus" "$WORK/tune.txt" || fail "tune.sh plan (RPS)"
set +e
/usr/share/rampart/tune.sh > /dev/null 2>&1
rc=$?
set -e
[ $rc = 2 ] || fail "tune.sh without --dry-run/--apply must refuse (exit $rc)"
log "tune.sh --dry-run: plan printed, nothing changed"

# ---- 6. Capabilities of the units, tried for real --------------------------------------------------
unit_caps() { # unit -> "cap_bpf,cap_net_admin,..."
  sed -n 's/^CapabilityBoundingSet=//p' "/lib/systemd/system/$1" | tr ' ' '\n' | tr 'A-Z' 'a-z' | sed 's/^cap_//' | paste -sd, -
}
as_unprivileged() { # caps(comma list or empty) memlock_limit cmd...
  local caps=$1 memlock=$2
  shift 2
  local set="-all"
  [ -n "$caps" ] && set="-all,$(echo "$caps" | sed 's/\([^,]*\)/+\1/g')"
  exec prlimit --memlock="$memlock" setpriv --reuid=rampart --regid=rampart --clear-groups \
    --inh-caps="$set" --ambient-caps="$set" --bounding-set="$set" "$@"
}
without() { echo "$1" | tr ',' '\n' | grep -vx "$2" | paste -sd, -; }

# The data plane: an SA database and two veth pairs in a namespace.
dataplane_starts() { # caps memlock -> 0 if it came up
  local ns db cfg out pid ok=1
  new_ns "dp$RANDOM"
  ns=$NS_NAME
  db=/dev/shm/rampart-check-deploy-$ns.sadb
  cfg=$WORK/$ns.toml
  out=$WORK/$ns.out
  ip -n "$ns" link add lan0 type veth peer name lanp
  ip -n "$ns" link add wan0 type veth peer name wanp
  for i in lan0 lanp wan0 wanp; do ip -n "$ns" link set "$i" up; done
  ip -n "$ns" addr add 192.0.2.1/24 dev wan0
  /usr/bin/rampart sa flush --db "$db" --sa-capacity 64 --policy-capacity 64 > /dev/null
  chown rampart:rampart "$db"
  printf 'database = "%s"\ncores = [0]\nxdp_mode = "native"\nring_size = 512\n[lan]\nname = "lan0"\n[wan]\nname = "wan0"\n' "$db" > "$cfg"
  chmod 644 "$cfg"
  : > "$out"
  ip netns exec "$ns" bash -c "$(declare -f as_unprivileged); as_unprivileged '$1' '$2' /usr/bin/rampart dataplane --config '$cfg'" > "$out" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do
    if grep -q "rampart_dataplane::run: running" "$out"; then ok=0; break; fi
    kill -0 $pid 2> /dev/null || break
    sleep 0.2
  done
  kill -TERM $pid 2> /dev/null || true
  wait $pid 2> /dev/null || true
  [ $ok = 0 ] || tail -1 "$out" | sed 's/^/    /' >&2
  ip netns del "$ns"
  rm -f "$db"
  return $ok
}

ike_starts() { # caps -> 0 if it bound 500 and 4500
  local ns dir out pid ok=1
  new_ns "ike$RANDOM"
  ns=$NS_NAME
  dir=$WORK/$ns
  out=$dir/out
  mkdir -p "$dir"
  ip -n "$ns" link add v0 type veth peer name v1
  ip -n "$ns" link set v0 up
  ip -n "$ns" link set v1 up
  ip -n "$ns" addr add 192.0.2.1/24 dev v0
  cat > "$dir/ike.toml" << EOF
[daemon]
database = "/dev/shm/rampart-check-deploy-$ns.sadb"
control_socket = "$dir/ike.sock"

[connections.gw]
local_addrs = "192.0.2.1"
remote_addrs = "192.0.2.2"
proposals = "aes256-sha256-ecp256"
local = { auth = "psk", id = "a.test" }
remote = { auth = "psk", id = "b.test" }

[connections.gw.children.net]
local_ts = "198.18.1.0/24"
remote_ts = "198.18.2.0/24"
esp_proposals = "aes256gcm16"

[secrets.ike-gw]
id-a = "a.test"
id-b = "b.test"
secret = "check-deploy-only-$RANDOM$RANDOM$RANDOM"
EOF
  chown -R rampart:rampart "$dir"
  chmod 700 "$dir"
  chmod 600 "$dir/ike.toml"
  ip netns exec "$ns" bash -c "$(declare -f as_unprivileged); as_unprivileged '$1' 8M /usr/bin/rampart ike --config '$dir/ike.toml'" > "$WORK/$ns.out" 2>&1 &
  pid=$!
  for _ in $(seq 1 25); do
    if ip netns exec "$ns" ss -lunH | grep -q ':4500 ' && ip netns exec "$ns" ss -lunH | grep -q ':500 '; then ok=0; break; fi
    kill -0 $pid 2> /dev/null || break
    sleep 0.2
  done
  kill -TERM $pid 2> /dev/null || true
  wait $pid 2> /dev/null || true
  [ $ok = 0 ] || tail -1 "$WORK/$ns.out" | sed 's/^/    /' >&2
  ip netns del "$ns"
  rm -f "/dev/shm/rampart-check-deploy-$ns.sadb"
  return $ok
}

# The memlock limit the kernel charges UMEM pages to without CAP_IPC_LOCK: small on purpose.
LOW_MEMLOCK=64K
DP_CAPS=$(unit_caps rampart-dataplane.service)
dataplane_starts "$DP_CAPS" "$LOW_MEMLOCK" || fail "the data plane did not start with its unit's capabilities ($DP_CAPS)"
log "data plane runs unprivileged with $DP_CAPS"
for c in ${DP_CAPS//,/ }; do
  if dataplane_starts "$(without "$DP_CAPS" "$c")" "$LOW_MEMLOCK" 2> /dev/null; then
    fail "the data plane also starts without cap_$c: drop it from rampart-dataplane.service"
  fi
  log "  without cap_$c: refused by the kernel, as expected"
done
IKE_CAPS=$(unit_caps rampart-ike.service)
ike_starts "$IKE_CAPS" || fail "the IKE daemon did not start with its unit's capabilities ($IKE_CAPS)"
log "IKE daemon binds 500/4500 unprivileged with $IKE_CAPS"
for c in ${IKE_CAPS//,/ }; do
  if ike_starts "$(without "$IKE_CAPS" "$c")" 2> /dev/null; then
    fail "the IKE daemon also starts without cap_$c: drop it from rampart-ike.service"
  fi
  log "  without cap_$c: refused, as expected"
done

if pgrep -u rampart > /dev/null; then
  pgrep -a -u rampart >&2
  fail "processes of the rampart user still run after the checks"
fi

# ---- 7. Remove --------------------------------------------------------------------------------------
dpkg --purge rampart > "$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "dpkg --purge"; }
INSTALLED=0
[ ! -e /usr/bin/rampart ] || fail "/usr/bin/rampart left after purge"
[ ! -e /lib/systemd/system/rampart.service ] || fail "units left after purge"
[ ! -e /etc/default/rampart ] || fail "conffile left after purge"
[ ! -e /etc/rampart ] || fail "/etc/rampart left after purge (it was empty)"
log "package removed"
log "ok"
