#!/usr/bin/env bash
# scripts/s3lab/down.sh [DIR] — stops the S3 test lab that up.sh built in DIR (default
# /tmp/olvm-s3lab) and removes DIR. Only daemons named by DIR/run/*.pid whose command line still
# names DIR/ceph.conf are killed; a DIR without up.sh's marker is refused; a missing DIR is fine.
set -euo pipefail

lab=$(realpath -m "${1:-/tmp/olvm-s3lab}")
[ -e "$lab" ] || { echo "s3lab: $lab is not there, nothing to stop" >&2; exit 0; }
[ -f "$lab/.olvm-s3lab" ] || { echo "s3lab: $lab was not made by up.sh: not touching it" >&2; exit 1; }

# SIGKILL: the data is thrown away, and a graceful stop costs seconds (radosgw) or a full dump of
# the memstore OSD's RAM to disk.
killed=()
for pidfile in "$lab"/run/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || continue
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$lab/ceph.conf" || continue
  kill -KILL "$pid" 2>/dev/null || true
  killed+=("$pid")
done
for pid in ${killed[@]+"${killed[@]}"}; do
  for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
done
rm -rf "$lab"
echo "s3lab: stopped ${#killed[@]} daemon(s), removed $lab" >&2
