#!/bin/bash
# Starts the services the host-link integration tests use, without systemd. Idempotent:
# a daemon already running (by its pid file) is reused.
#   - virtlogd + libvirtd (qemu:///system; QEMU runs TCG, no /dev/kvm needed)
#   - a private sshd on 127.0.0.1:$OLVM_TEST_SSH_PORT (default 22422) with its own host key
#     and client key in $OLVM_TEST_HOSTS_DIR/ssh (default /tmp/olvm-test-hosts/ssh)
# Needs root and the packages libvirt-daemon-system libvirt-clients openssh-server.
# Prints KEY=VALUE lines the tests read (ssh port, key paths). Stop with down.sh.
set -eu
DIR=${OLVM_TEST_HOSTS_DIR:-/tmp/olvm-test-hosts}
PORT=${OLVM_TEST_SSH_PORT:-22422}
S=$DIR/ssh
die() { echo "up.sh: $*" >&2; exit 1; }
# running, by pid file; a zombie (a killed daemon not yet reaped where PID 1 is no init) is not
alive() {
  [ -s "$1" ] || return 1
  local st; st=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
  case $st in Z*) return 1;; esac
}
for t in virtlogd libvirtd virsh qemu-img qemu-system-x86_64 ssh-keygen; do
  command -v "$t" >/dev/null || die "$t missing (apt-get install libvirt-daemon-system libvirt-clients openssh-server qemu-system-x86 qemu-utils)"
done
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd missing (apt-get install openssh-server)"
mkdir -p "$DIR"

# --- libvirt ---------------------------------------------------------------------------
# virtlogd is required: qemu.conf's default stdio_handler="logd".
if ! alive /run/virtlogd.pid; then virtlogd -d || die "virtlogd failed"; touch "$DIR/started-virtlogd"; fi
if ! alive /run/libvirtd.pid; then libvirtd -d || die "libvirtd failed"; touch "$DIR/started-libvirtd"; fi
for _ in $(seq 1 400); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.05; done
virsh -c qemu:///system version >/dev/null 2>&1 || die "libvirtd does not answer on qemu:///system"

# --- sshd ------------------------------------------------------------------------------
if ! alive "$S/sshd.pid"; then
  rm -rf "$S"; install -d -m 0700 "$S"
  ssh-keygen -q -t ed25519 -N '' -C olvm-test-host -f "$S/ssh_host_ed25519_key"
  ssh-keygen -q -t ed25519 -N '' -C olvm-test-client -f "$S/client_key"
  ssh-keygen -q -t ed25519 -N '' -C olvm-test-other -f "$S/other_host_key"
  install -m 0600 "$S/client_key.pub" "$S/authorized_keys"
  cat > "$S/sshd_config" <<CFG
Port $PORT
ListenAddress 127.0.0.1
HostKey $S/ssh_host_ed25519_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowStreamLocalForwarding yes
# direct-streamlocal channels are subject to the same "permit open" rules as TCP ones:
# with AllowTcpForwarding no, sshd denies them ("the request was denied").
AllowTcpForwarding local
X11Forwarding no
PrintMotd no
MaxSessions 32
MaxStartups 32:30:64
LogLevel VERBOSE
CFG
  install -d -m 0755 /run/sshd
  /usr/sbin/sshd -t -f "$S/sshd_config" || die "sshd -t failed"
  # Each exec runs root's login shell; a heavy ~/.bashrc (pyenv on CI images) costs ~0.5 s per
  # command. sshd gets a private mount namespace where /root/.bashrc is empty; nothing outside changes.
  if [ -f /root/.bashrc ] && command -v unshare >/dev/null; then
    : > "$S/empty-bashrc"
    unshare -m --propagation private sh -c \
      "mount --bind '$S/empty-bashrc' /root/.bashrc && exec /usr/sbin/sshd -f '$S/sshd_config' -E '$S/sshd.log'" \
      || die "sshd failed to start; see $S/sshd.log"
  else
    /usr/sbin/sshd -f "$S/sshd_config" -E "$S/sshd.log" || die "sshd failed to start; see $S/sshd.log"
  fi
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.02; done
fi
(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || die "sshd is not listening on 127.0.0.1:$PORT; see $S/sshd.log"
echo "SSH_PORT=$PORT"
echo "SSH_HOST_KEY_PUB=$S/ssh_host_ed25519_key.pub"
echo "SSH_OTHER_KEY_PUB=$S/other_host_key.pub"
echo "SSH_CLIENT_KEY=$S/client_key"
