#!/bin/bash
# Stops what up.sh started, by pid file (never by name): sshd always; libvirtd and virtlogd
# only when up.sh started them. Domains named olvm-test-* are destroyed and undefined first.
# The restricted account's sudo rule goes; the account itself stays (like the packages).
set -u
DIR=${OLVM_TEST_HOSTS_DIR:-/tmp/olvm-test-hosts}
S=$DIR/ssh
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; case $st in Z*) return 1;; esac; }
stop_pidfile() {
  [ -s "$1" ] || return 0
  local p; p=$(cat "$1")
  if alive "$p"; then
    kill "$p"; for _ in $(seq 50); do alive "$p" || break; sleep 0.1; done
    alive "$p" && kill -9 "$p"
  fi
  rm -f "$1"
}
stop_pidfile "$S/sshd.pid"
rm -f /etc/sudoers.d/olvm-backup-test
if command -v virsh >/dev/null && virsh -c qemu:///system version >/dev/null 2>&1; then
  virsh -c qemu:///system list --all --uuid 2>/dev/null | while read -r u; do
    [ -n "$u" ] || continue
    n=$(virsh -c qemu:///system domname "$u" 2>/dev/null)
    case $n in olvm-test-*)
      virsh -c qemu:///system destroy "$u" >/dev/null 2>&1
      virsh -c qemu:///system undefine "$u" >/dev/null 2>&1;;
    esac
  done
fi
rm -rf /var/lib/libvirt/images/olvm-test-*
if [ -e "$DIR/started-libvirtd" ]; then stop_pidfile /run/libvirtd.pid; rm -f "$DIR/started-libvirtd"; fi
if [ -e "$DIR/started-virtlogd" ]; then stop_pidfile /run/virtlogd.pid; rm -f "$DIR/started-virtlogd"; fi
exit 0
