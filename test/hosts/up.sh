#!/bin/bash
# Starts the services the host-link integration tests use, without systemd. Idempotent:
# a daemon already running (by its pid file) with the same configuration is reused.
#   - virtlogd + libvirtd (qemu:///system; QEMU runs TCG, no /dev/kvm needed)
#   - a private sshd on 127.0.0.1:$OLVM_TEST_SSH_PORT (default 22422) with its own host key
#     and client key in $OLVM_TEST_HOSTS_DIR/ssh (default /tmp/olvm-test-hosts/ssh); root logs
#     in with the client key
#   - the restricted account olvmbackup (member of QEMU's group libvirt-qemu): its
#     authorized_keys line, the sudoers rule and the sshd_config block are the ones the product
#     renders (`olvm-backup host-access`, the same code setup prints them with), so this needs
#     the built CLI (dist/); before the first build the account exists without key or rule
# Needs root and the packages libvirt-daemon-system libvirt-clients openssh-server sudo.
# Prints KEY=VALUE lines the tests read (ssh port, key paths). Stop with down.sh.
set -eu
DIR=${OLVM_TEST_HOSTS_DIR:-/tmp/olvm-test-hosts}
PORT=${OLVM_TEST_SSH_PORT:-22422}
S=$DIR/ssh
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI=$ROOT/dist/backend/src/cli/main.js
ACCOUNT=olvmbackup
QEMU_GROUP=libvirt-qemu
SUDOERS=/etc/sudoers.d/olvm-backup-test
die() { echo "up.sh: $*" >&2; exit 1; }
# running, by pid file; a zombie (a killed daemon not yet reaped where PID 1 is no init) is not
alive() {
  [ -s "$1" ] || return 1
  local st; st=$(ps -o stat= -p "$(cat "$1")" 2>/dev/null) || return 1
  case $st in Z*) return 1;; esac
}
for t in virtlogd libvirtd virsh qemu-img qemu-system-x86_64 ssh-keygen visudo; do
  command -v "$t" >/dev/null || die "$t missing (apt-get install libvirt-daemon-system libvirt-clients openssh-server qemu-system-x86 qemu-utils sudo)"
done
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd missing (apt-get install openssh-server)"
[ -x /usr/bin/sudo ] || die "/usr/bin/sudo missing (apt-get install sudo)"
mkdir -p "$DIR"
# test suites run in parallel workers and each calls this script: one at a time (the daemons
# started below do not inherit the lock: 9>&-)
exec 9>"$DIR/up.lock"
flock -w 120 9 || die "another up.sh holds $DIR/up.lock"

# --- libvirt ---------------------------------------------------------------------------
# virtlogd is required: qemu.conf's default stdio_handler="logd".
if ! alive /run/virtlogd.pid; then virtlogd -d 9>&- || die "virtlogd failed"; touch "$DIR/started-virtlogd"; fi
if ! alive /run/libvirtd.pid; then libvirtd -d 9>&- || die "libvirtd failed"; touch "$DIR/started-libvirtd"; fi
for _ in $(seq 1 400); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.05; done
virsh -c qemu:///system version >/dev/null 2>&1 || die "libvirtd does not answer on qemu:///system"

# --- keys ------------------------------------------------------------------------------
install -d -m 0700 "$S"
key() { [ -s "$S/$1" ] || { rm -f "$S/$1" "$S/$1.pub"; ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$S/$1"; }; }
key ssh_host_ed25519_key olvm-test-host
key client_key olvm-test-client
key other_host_key olvm-test-other
# a second service key, installed for the account only from an address that is not ours
key elsewhere_key olvm-test-elsewhere
install -m 0600 "$S/client_key.pub" "$S/authorized_keys"

# --- the restricted account --------------------------------------------------------------
if ! id "$ACCOUNT" >/dev/null 2>&1; then
  # '*': no password login, and not "locked" ('!'), which sshd with UsePAM no refuses
  useradd --create-home --shell /bin/sh --groups "$QEMU_GROUP" --password '*' "$ACCOUNT" || die "useradd $ACCOUNT failed"
fi
id -nG "$ACCOUNT" | tr ' ' '\n' | grep -qx "$QEMU_GROUP" || usermod -a -G "$QEMU_GROUP" "$ACCOUNT"
HOME_DIR=$(getent passwd "$ACCOUNT" | cut -d: -f6)
install -d -m 0700 -o "$ACCOUNT" -g "$ACCOUNT" "$HOME_DIR/.ssh"
ACCESS=$S/$ACCOUNT-access
MATCH_BLOCK="Match User $ACCOUNT"
if [ -f "$CLI" ]; then
  rm -rf "$ACCESS" "$ACCESS-elsewhere"
  node "$CLI" host-access --user "$ACCOUNT" --from 127.0.0.1 --public-key "$S/client_key.pub" --qemu-group "$QEMU_GROUP" --out "$ACCESS" >/dev/null \
    || die "olvm-backup host-access failed"
  node "$CLI" host-access --user "$ACCOUNT" --from 192.0.2.1 --public-key "$S/elsewhere_key.pub" --qemu-group "$QEMU_GROUP" --out "$ACCESS-elsewhere" >/dev/null \
    || die "olvm-backup host-access failed"
  cat "$ACCESS/authorized_keys" "$ACCESS-elsewhere/authorized_keys" > "$HOME_DIR/.ssh/authorized_keys.new"
  chown "$ACCOUNT:$ACCOUNT" "$HOME_DIR/.ssh/authorized_keys.new"; chmod 0600 "$HOME_DIR/.ssh/authorized_keys.new"
  mv "$HOME_DIR/.ssh/authorized_keys.new" "$HOME_DIR/.ssh/authorized_keys"
  visudo -cqf "$ACCESS/sudoers" || die "visudo refuses $ACCESS/sudoers"
  install -m 0440 "$ACCESS/sudoers" "$SUDOERS.new" && mv "$SUDOERS.new" "$SUDOERS"
  # the block as rendered, less its comments, with the account's own keys file
  MATCH_BLOCK=$(grep -v '^#' "$ACCESS/sshd_config.match" | sed '/^$/d')
else
  echo "up.sh: $CLI not built yet: $ACCOUNT has no key and no sudo rule until the next run" >&2
  : > "$HOME_DIR/.ssh/authorized_keys"
fi

# --- sshd ------------------------------------------------------------------------------
cat > "$S/sshd_config.want" <<CFG
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
# with AllowTcpForwarding no, sshd denies them ("the request was denied"). "yes" (not
# "local"): root may listen on the host here, so the account's block is what refuses it to it.
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
MaxSessions 32
MaxStartups 32:30:64
LogLevel VERBOSE
$MATCH_BLOCK
    AuthorizedKeysFile .ssh/authorized_keys
CFG
if alive "$S/sshd.pid" && ! cmp -s "$S/sshd_config.want" "$S/sshd_config"; then
  # another configuration (an older up.sh, or the account's block changed): restart; sessions
  # already open are sshd's children and keep running
  kill "$(cat "$S/sshd.pid")"
  for _ in $(seq 1 100); do alive "$S/sshd.pid" || break; sleep 0.05; done
  alive "$S/sshd.pid" && die "sshd $(cat "$S/sshd.pid") did not stop"
fi
if ! alive "$S/sshd.pid"; then
  mv "$S/sshd_config.want" "$S/sshd_config"
  install -d -m 0755 /run/sshd
  /usr/sbin/sshd -t -f "$S/sshd_config" || die "sshd -t failed"
  # Each exec runs root's login shell; a heavy ~/.bashrc (pyenv on CI images) costs ~0.5 s per
  # command. sshd gets a private mount namespace where /root/.bashrc is empty; nothing outside changes.
  if [ -f /root/.bashrc ] && command -v unshare >/dev/null; then
    : > "$S/empty-bashrc"
    unshare -m --propagation private sh -c \
      "mount --bind '$S/empty-bashrc' /root/.bashrc && exec /usr/sbin/sshd -f '$S/sshd_config' -E '$S/sshd.log'" 9>&- \
      || die "sshd failed to start; see $S/sshd.log"
  else
    /usr/sbin/sshd -f "$S/sshd_config" -E "$S/sshd.log" 9>&- || die "sshd failed to start; see $S/sshd.log"
  fi
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.02; done
else
  rm -f "$S/sshd_config.want"
fi
(exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null || die "sshd is not listening on 127.0.0.1:$PORT; see $S/sshd.log"
echo "SSH_PORT=$PORT"
echo "SSH_HOST_KEY_PUB=$S/ssh_host_ed25519_key.pub"
echo "SSH_OTHER_KEY_PUB=$S/other_host_key.pub"
echo "SSH_CLIENT_KEY=$S/client_key"
echo "SSH_ELSEWHERE_KEY=$S/elsewhere_key"
echo "SSH_ACCOUNT=$ACCOUNT"
echo "SSH_ACCOUNT_SUDOERS=$SUDOERS"
echo "SSH_ACCOUNT_ACCESS=$ACCESS"
