#!/usr/bin/env bash
# npm run package: the release artefacts, in dist/packages/ (or --out DIR):
#   olvm-backup-<version>-<release>.tar.gz         the built product (bin/, lib/olvm-backup/,
#                                                  share/olvm-backup-ui-plugin/, packaging/, docs/);
#                                                  runs as it is on a non-RPM system and is
#                                                  the RPMs' Source0
#   olvm-backup-server-<version>-<release>.x86_64.rpm
#   olvm-backup-ui-plugin-<version>-<release>.noarch.rpm
# The version comes from package.json, the release from git (1.<commit count>.g<hash>), and
# the stamp <version>+g<hash> goes into lib/olvm-backup/build-info.json (served as `version` by
# /api/v1/health) and the plugin's olvm-backup/version.json.
#
# Options: --no-build (use dist/ and ui-plugin/dist/ as they are), --out DIR,
#          --release R (override the release).
# A new release of the same tarball (same code, e.g. a packaging fix):
#   rpmbuild -bb --define 'olvm_release 2' --define "_sourcedir $PWD" olvm-backup-server.spec
# with the spec from the tarball's packaging/ directory.
# Needs: node/npm, rpmbuild (Debian: apt-get install rpm; EL: dnf install rpm-build), tar, git.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

die() { echo "package: $*" >&2; exit 1; }

build=1
out=dist/packages
release=
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0 ;;
    --out) out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --release) release=$2; shift ;;
    --release=*) release=${1#--release=} ;;
    *) die "unknown option $1" ;;
  esac
  shift
done

command -v rpmbuild >/dev/null || die "rpmbuild is missing (Debian: apt-get install rpm; Oracle Linux: dnf install rpm-build)"
[ "$build" = 1 ] && npm run build
[ -f dist/backend/src/cli/main.js ] || die "dist/backend is missing: run npm run build first"
{ [ -f ui-plugin/dist/olvm-backup.json ] && [ -d ui-plugin/dist/olvm-backup ]; } || die "ui-plugin/dist is missing: run npm run build first"

version=$(node -p "require('./package.json').version")
if git rev-parse --git-dir >/dev/null 2>&1; then
  hash=$(git rev-parse --short=10 HEAD)
  count=$(git rev-list --count HEAD)
  dirty=false
  [ -n "$(git status --porcelain --untracked-files=no)" ] && dirty=true
  epoch=$(git log -1 --format=%ct)
else
  hash=unknown count=0 dirty=true epoch=$(date +%s)
fi
stamp="$version+g$hash"
[ "$dirty" = true ] && stamp="$stamp.dirty"
[ -n "$release" ] || release="1.$count.g$hash"
case $release in *-*) die "a release may not contain '-' (got $release)" ;; esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/olvm-backup-$version
app=$top/lib/olvm-backup
mkdir -p "$app/dist/backend" "$app/packaging" "$app/node_modules"

# --- the service: compiled backend, package.json, the config template setup starts from ---
cp -a dist/backend/src "$app/dist/backend/"
find "$app/dist" -name '*.map' -delete
cp package.json "$app/"
cp packaging/config.example.yaml "$app/packaging/"

# --- production dependencies only (what require() finds from the service), without build leftovers ---
deps_list=$(node packaging/prod-deps.js "$ROOT") || die "production dependencies are incomplete"
mapfile -t deps <<<"$deps_list"
{ [ "${#deps[@]}" -gt 0 ] && [ -n "${deps[0]}" ]; } || die "no production dependencies found: run npm ci"
for d in "${deps[@]}"; do
  mkdir -p "$app/$(dirname "$d")"
  cp -a "$d" "$app/$d"
done
# native addons: keep the built .node files, drop sources, objects and build files
while IFS= read -r gyp; do
  pkg=$(dirname "$gyp")
  rm -rf "$pkg/build/Release/obj.target" "$pkg/build/Release/.deps" "$pkg/build/Release/obj" "$pkg/build/deps"
  find "$pkg" -type f \( -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.h' -o -name '*.hpp' \
    -o -name '*.a' -o -name '*.o' -o -name '*.mk' -o -name Makefile -o -name 'test_extension.node' \) -delete
done < <(find "$app/node_modules" -name binding.gyp)
find "$app/node_modules" -name .bin -prune -exec rm -rf {} +
find "$app" -depth -type d -empty -delete

# the staged tree must run on its own: every native addon loads from it
(cd "$app" && node -e "
  const db = new (require('better-sqlite3'))(':memory:'); db.prepare('select 1').get(); db.close();
  const z = require('zstd-napi'); if (z.decompress(z.compress(Buffer.from('x'))).toString() !== 'x') throw new Error('zstd');
  require('ssh2'); require('./dist/backend/src/setup');
") || die "the staged app does not load its dependencies"

# --- the plugin, with the build stamp beside it ---
plugin=$top/share/olvm-backup-ui-plugin
mkdir -p "$plugin"
cp -a ui-plugin/dist/olvm-backup.json ui-plugin/dist/olvm-backup "$plugin/"
printf '{"name":"olvm-backup","version":"%s","gitHash":"%s","dirty":%s,"stamp":"%s"}\n' "$version" "$hash" "$dirty" "$stamp" \
  > "$plugin/olvm-backup/version.json"

# --- command, packaging files, docs; specs from their templates ---
install -D -m 0755 packaging/olvm-backup.sh "$top/bin/olvm-backup"
mkdir -p "$top/packaging" "$top/docs"
cp packaging/olvm-backup.sh packaging/olvm-backup.service packaging/config.example.yaml packaging/olvm-backup-proxy.conf \
  packaging/olvm-backup-config.json packaging/olvm-backup.firewalld.xml "$top/packaging/"
cp docs/install.md backend/src/hosts/HOSTS.md "$top/docs/"
cp README.md "$top/"
tarball=olvm-backup-$version-$release.tar.gz
for spec in olvm-backup-server olvm-backup-ui-plugin; do
  sed -e "s|@VERSION@|$version|g" -e "s|@RELEASE@|$release|g" -e "s|@TARBALL@|$tarball|g" \
    "packaging/$spec.spec.in" > "$top/packaging/$spec.spec"
done

# modes: directories 0755, files 0644, executables (the command, native addons, scripts npm
# marked executable) 0755; the digest over the app's files tells builds apart
find "$top" -type d -exec chmod 0755 {} +
find "$top" -type f -perm /111 -exec chmod 0755 {} +
find "$top" -type f ! -perm /111 -exec chmod 0644 {} +
find "$app" -name '*.node' -exec chmod 0755 {} +
digest=$(cd "$app" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
printf '{"name":"olvm-backup","version":"%s","gitHash":"%s","dirty":%s,"stamp":"%s","filesSha256":"%s"}\n' \
  "$version" "$hash" "$dirty" "$stamp" "$digest" > "$app/build-info.json"
chmod 0644 "$app/build-info.json" "$plugin/olvm-backup/version.json"

mkdir -p "$out"
out=$(cd "$out" && pwd)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$stage" -czf "$out/$tarball" "olvm-backup-$version"

# --- the RPMs, from that tarball exactly ---
rpmtop=$stage/rpmbuild
mkdir -p "$rpmtop/SOURCES"
cp "$out/$tarball" "$rpmtop/SOURCES/"
for spec in olvm-backup-server olvm-backup-ui-plugin; do
  SOURCE_DATE_EPOCH=$epoch rpmbuild -bb --quiet \
    --define "_topdir $rpmtop" \
    --define "_rpmdir $out" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    "$top/packaging/$spec.spec" >"$stage/rpmbuild-$spec.log" 2>&1 \
    || { cat "$stage/rpmbuild-$spec.log" >&2; die "rpmbuild $spec failed"; }
done

echo "package: $stamp (release $release)"
for f in "$tarball" "olvm-backup-server-$version-$release.x86_64.rpm" "olvm-backup-ui-plugin-$version-$release.noarch.rpm"; do
  [ -f "$out/$f" ] || die "$f was not produced"
  echo "  $out/$f"
done
