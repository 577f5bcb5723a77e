#!/usr/bin/env bash
# scripts/s3lab/up.sh [DIR] — the project's S3 test endpoint: a one-node Ceph 16 cluster (one mon,
# one OSD, radosgw) from Debian's packages, everything under DIR (default /tmp/olvm-s3lab) and
# bound to 127.0.0.1 only, with S3 Object Lock. Needs root (it may apt-get install ceph-mon
# ceph-osd radosgw when they are missing); no systemd, no containers.
#
# Output (stdout, and the file DIR/env): S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION,
# S3_FORCE_PATH_STYLE lines. Progress goes to stderr.
#
# Idempotent: a healthy lab in DIR is reused (its env printed again); a dead or half-built one
# (a daemon gone, RGW not answering) is killed and rebuilt. A non-empty DIR without our marker
# file is someone else's: refused.
#
# Knobs: OLVM_S3LAB_STORE=memstore (default: objects in the OSD's RAM, fastest start) or
# bluestore (a sparse file in DIR, for gigabytes; DIR must then not be tmpfs: O_DIRECT);
# S3_PORT, S3_ACCESS_KEY, S3_SECRET_KEY to fix them; S3_REGION (default us-east-1: an SDK on
# another region sends a LocationConstraint that RGW refuses on CreateBucket).
set -euo pipefail

lab=$(realpath -m "${1:-/tmp/olvm-s3lab}")
backend=${OLVM_S3LAB_STORE:-memstore}
region=${S3_REGION:-us-east-1}
marker="$lab/.olvm-s3lab"
conf="$lab/ceph.conf"
started=$(date +%s%N)

say() { echo "s3lab: [$(( ($(date +%s%N) - started) / 1000000 )) ms] $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

# The lab's daemons, by PID file; a PID counts only while its command line still names our
# ceph.conf (a recycled PID of some other process is never signalled).
lab_pid() {
  local f="$1/run/$2.pid" pid
  [ -f "$f" ] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$1/ceph.conf" || return 1
  echo "$pid"
}

# SIGKILL, not SIGTERM: radosgw takes seconds to stop and a memstore OSD would first write its
# whole RAM store to disk; the lab's data is thrown away anyway.
kill_lab() {
  local d=$1 name pid killed=()
  for name in client.rgw.a osd.0 mon.a; do
    if pid=$(lab_pid "$d" "$name"); then kill -KILL "$pid" 2>/dev/null || true; killed+=("$pid"); fi
  done
  for pid in ${killed[@]+"${killed[@]}"}; do
    for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  done
  say "killed ${#killed[@]} daemon(s) of $d"
}

# Anonymous `GET /` (ListBuckets) answered 200: RGW serves. Bash's /dev/tcp: no python/curl start-up.
rgw_answers() {
  (
    exec 5<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&5
    read -r -t 5 status <&5 || exit 1
    [[ $status == HTTP/1.?\ 200* ]]
  ) 2>/dev/null
}

# A TCP port nobody has bound (v4 or v6, any state), from /proc rather than a helper program.
unused_port() {
  local p hex
  for _ in $(seq 200); do
    p=$(( 21000 + $(od -An -N2 -tu2 /dev/urandom) % 38000 ))
    hex=$(printf ':%04X ' "$p")
    grep -q "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return 0; }
  done
  fail "no free port found"
}

random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# ---- reuse a healthy lab
if [ -f "$marker" ] && [ -f "$lab/env" ]; then
  healthy=1
  for name in mon.a osd.0 client.rgw.a; do lab_pid "$lab" "$name" >/dev/null || healthy=0; done
  port=$(sed -n 's|^S3_ENDPOINT=http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$lab/env")
  if [ "$healthy" = 1 ] && [ -n "$port" ] && rgw_answers "$port"; then
    say "reusing the running lab in $lab"
    cat "$lab/env"
    exit 0
  fi
fi

# ---- packages (ceph-common and ceph-base come as dependencies)
missing=()
for pkg_cmd in ceph-mon:ceph-mon ceph-osd:ceph-osd radosgw:radosgw; do
  command -v "${pkg_cmd#*:}" >/dev/null || missing+=("${pkg_cmd%%:*}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || fail "${missing[*]} not installed and not root"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
    { apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
    fail "apt-get install ${missing[*]}"
fi

# ---- a fresh directory (ours or empty; anything else is refused)
if [ -e "$lab" ]; then
  if [ -f "$marker" ]; then
    say "rebuilding the stale lab in $lab"
    kill_lab "$lab"
    rm -rf "$lab"
  elif [ -n "$(ls -A "$lab" 2>/dev/null)" ] || [ ! -d "$lab" ]; then
    fail "$lab exists and was not made by this script: not touching it"
  fi
fi
mkdir -p "$lab"/{run,log,mon/a,osd/0,rgw}
touch "$marker"

mon_port=$(unused_port)
s3_port=${S3_PORT:-$(unused_port)}
[ "$s3_port" != "$mon_port" ] || s3_port=$(unused_port)
fsid=$(</proc/sys/kernel/random/uuid)

case "$backend" in
  memstore) store_conf=$'osd objectstore = memstore\nmemstore device bytes = 8589934592' ;;
  bluestore) store_conf=$'osd objectstore = bluestore\nbluestore block create = true\nbluestore block size = 10737418240\nbluestore fsck on mount = false' ;;
  *) fail "OLVM_S3LAB_STORE must be memstore or bluestore" ;;
esac

cat >"$conf" <<CONF
; olvm-backup's throw-away S3 test lab ($lab): not for real data
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.1/32
ms bind msgr1 = false
ms bind ipv6 = false
; no cephx in a lab. radosgw, a client-type daemon, would default to a "secure" mon connection,
; which auth none cannot give: it then hangs 300 s. Letting it use crc avoids that.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
mon warn on insecure global id reclaim allowed = false
; one OSD: pools of size 1, few PGs (RGW makes ~7 pools), no host-level CRUSH spread
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
; a fuller CI disk must not make the mon warn or shut down
mon data avail warn = 2
mon data avail crit = 1
; map changes (each RGW pool creation) commit in tens of ms instead of ~2 s
paxos propose interval = 0.05
paxos min wait = 0.01
mon tick interval = 1
osd op num shards = 2
run dir = $lab/run
pid file = $lab/run/\$name.pid
admin socket = $lab/run/\$name.asok
log file = $lab/log/\$name.log
mon data = $lab/mon/\$id
osd data = $lab/osd/\$id
rgw data = $lab/rgw/\$id
keyring = $lab/keyring
$store_conf

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$s3_port
; the default 512 threads cost ~130 MiB of RSS for nothing here
rgw thread pool size = 64
rgw dynamic resharding = false
CONF

# ---- monitor
ceph-authtool --create-keyring "$lab/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$lab/monmap" >/dev/null
timeout 60 ceph-mon -c "$conf" -i a --mkfs --monmap "$lab/monmap" --keyring "$lab/keyring" 2>>"$lab/log/setup.log" || fail "ceph-mon --mkfs"
timeout 60 ceph-mon -c "$conf" -i a 2>>"$lab/log/setup.log" || fail "ceph-mon start"
say "mon on 127.0.0.1:$mon_port"

# ---- OSD (it adds itself to CRUSH when it starts)
osd_id=$(timeout 60 ceph -c "$conf" --connect-timeout 30 osd create 2>>"$lab/log/setup.log") || fail "ceph osd create (mon unreachable?)"
[ "$osd_id" = 0 ] || fail "the new OSD got id $osd_id, expected 0"
timeout 120 ceph-osd -c "$conf" -i 0 --mkfs >>"$lab/log/setup.log" 2>&1 || { tail -n 20 "$lab/log/setup.log" >&2; fail "ceph-osd --mkfs"; }
timeout 60 ceph-osd -c "$conf" -i 0 2>>"$lab/log/setup.log" || fail "ceph-osd start"
say "osd.0 ($backend)"

# ---- radosgw: it creates its pools itself and serves once the OSD's PGs are active
timeout 60 radosgw -c "$conf" -n client.rgw.a 2>>"$lab/log/setup.log" || fail "radosgw start"
deadline=$(( $(date +%s) + 90 ))
until rgw_answers "$s3_port"; do
  if [ -f "$lab/run/client.rgw.a.pid" ] && ! lab_pid "$lab" client.rgw.a >/dev/null; then
    tail -n 30 "$lab/log/client.rgw.a.log" >&2 || true
    fail "radosgw died"
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    tail -n 30 "$lab/log/client.rgw.a.log" >&2 || true
    fail "radosgw did not answer on 127.0.0.1:$s3_port within 90 s"
  fi
  sleep 0.1
done
say "radosgw on 127.0.0.1:$s3_port"

# ---- the S3 user the tests use
access_key=${S3_ACCESS_KEY:-$(random_hex 10 | tr 'a-f' 'A-F')}
secret_key=${S3_SECRET_KEY:-$(random_hex 20)}
timeout 60 radosgw-admin -c "$conf" -n client.admin user create --uid=olvm --display-name="olvm-backup tests" \
  --access-key="$access_key" --secret-key="$secret_key" >"$lab/user.json" 2>>"$lab/log/setup.log" || fail "radosgw-admin user create"

printf 'S3_ENDPOINT=http://127.0.0.1:%s\nS3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\nS3_REGION=%s\nS3_FORCE_PATH_STYLE=true\n' \
  "$s3_port" "$access_key" "$secret_key" "$region" >"$lab/env.tmp"
mv "$lab/env.tmp" "$lab/env"
say "ready in $lab"
cat "$lab/env"
