#!/bin/bash
# Installs, upgrades, reinstalls and erases olvm-backup-server in a throwaway root with the real
# rpm, so its scriptlets run as they would on a machine (user creation, systemd calls, the
# restart decision), without touching this machine. Needs root, util-linux's unshare and
# overlayfs; runs on Debian (rpm package) or any EL. Used by test/integration/packaging.test.ts.
#
#   packaging/test-install.sh WORKDIR SERVER_RPM_1 SERVER_RPM_2
#
# SERVER_RPM_2 must be a newer release of the same code. In WORKDIR afterwards:
#   root/                       the throwaway root (its /usr is this machine's /usr with the
#                               package's files in usr-up/ laid over it)
#   systemctl-<phase>.log       the systemctl calls of each phase (systemctl is a recorder
#                               there; `is-active` answers from root/run/test-service-active)
#   verify.txt, verify.rc       systemd-analyze verify of the installed unit
#   security.txt                systemd-analyze security --offline of the installed unit
# Phases: install, upgrade-same-code (service running this code, config edited),
#         reinstall-other-code (service running an older build), reinstall-stopped, erase.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 WORKDIR SERVER_RPM_1 SERVER_RPM_2" >&2; exit 2; }
if [ "${OLVM_TEST_INSTALL_NS:-}" != 1 ]; then
  exec env OLVM_TEST_INSTALL_NS=1 unshare -m "$0" "$@"
fi
T=$(readlink -f "$1")
RPM1=$(readlink -f "$2")
RPM2=$(readlink -f "$3")
R=$T/root
mkdir -p "$R" "$T/usr-up" "$T/usr-work"
mount --make-rprivate /
for l in bin lib lib64 sbin; do ln -sfn "usr/$l" "$R/$l"; done
mkdir -p "$R/usr" "$R/etc" "$R/var/lib/rpm" "$R/var/log" "$R/run" "$R/tmp" "$R/dev"
mount --rbind /dev "$R/dev"
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$T/usr-up,workdir=$T/usr-work" "$R/usr"
for f in passwd group shadow gshadow login.defs nsswitch.conf; do
  if [ -e "/etc/$f" ]; then cp -a "/etc/$f" "$R/etc/"; fi
done
cat > "$R/usr/bin/systemctl" <<'SH'
#!/bin/sh
echo "$*" >> /var/log/systemctl.log
case " $* " in *" is-active "*) [ -e /run/test-service-active ] && exit 0; exit 3 ;; esac
exit 0
SH
chmod 0755 "$R/usr/bin/systemctl"

rpmr() { rpm --root "$R" --noplugins --nodeps "$@" 2>&1 | grep -v -e 'should not be used directly' -e 'assuming you know what you are doing' || true; }
phase() {
  if [ -e "$R/var/log/systemctl.log" ]; then mv "$R/var/log/systemctl.log" "$T/systemctl-$1.log"; else : > "$T/systemctl-$1.log"; fi
}
running_build() { mkdir -p "$R/run/olvm-backup"; printf '%s\n' "$1" > "$R/run/olvm-backup/running-build.json"; }

rpm --root "$R" --initdb
rpmr -i "$RPM1"
phase install
set +e
systemd-analyze verify --root="$R" olvm-backup.service > "$T/verify.txt" 2>&1
echo $? > "$T/verify.rc"
systemd-analyze security --offline=true --root="$R" olvm-backup.service > "$T/security.txt" 2>&1
set -e

# the service runs the installed code; the admin edited the config
touch "$R/run/test-service-active"
running_build "$(cat "$R/usr/lib/olvm-backup/build-info.json")"
echo '# edited by the admin' >> "$R/etc/olvm-backup/config.yaml"
rpmr -U "$RPM2"
phase upgrade-same-code

# the service still runs an older build
running_build '{"name":"olvm-backup","filesSha256":"0000000000000000000000000000000000000000000000000000000000000000"}'
rpmr --reinstall "$RPM2"
phase reinstall-other-code

# the service is stopped
rm -f "$R/run/test-service-active"
rpmr --reinstall "$RPM2"
phase reinstall-stopped

# a repository lives in the data directory; then the package goes
mkdir -p "$R/var/lib/olvm-backup/repository"
echo '{}' > "$R/var/lib/olvm-backup/repository/config.json"
rpmr -e olvm-backup-server
phase erase
