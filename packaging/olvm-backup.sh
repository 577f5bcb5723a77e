#!/bin/sh
# olvm-backup: the command line and the service (olvm-backup serve), run by Node.js 20.
# Installed as /usr/bin/olvm-backup (RPM) or bin/olvm-backup (tarball): the app sits in
# ../lib/olvm-backup beside it either way. OLVM_BACKUP_NODE picks another node binary.
here=$(dirname "$(readlink -f "$0")")
exec "${OLVM_BACKUP_NODE:-node}" "$here/../lib/olvm-backup/dist/backend/src/cli/main.js" "$@"
