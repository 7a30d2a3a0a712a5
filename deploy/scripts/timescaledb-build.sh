#!/usr/bin/env bash
# Builds TimescaleDB (deploy/timescaledb/*.tar.gz) against the machine's
# PostgreSQL 15 into a private copy of the PostgreSQL tree and prints that
# copy's bin directory on stdout:
#
#   BIOSYNC_PG_BIN=$(bash deploy/scripts/timescaledb-build.sh) bash deploy/scripts/postgres-up.sh
#
# Never installs into the system tree (see deploy/timescaledb/README.md).
# The build is cached in $BIOSYNC_TSDB_CACHE (default
# /var/cache/biosync/timescaledb, outside any clone) per TimescaleDB and
# PostgreSQL version, so a second run on one machine takes a second.
# Needs root for apt (postgresql-server-dev-15 pinned to the installed
# server's exact version, cmake, gcc, make, libssl-dev) unless they are
# installed. About 95 s on 2 cores.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TSDB_VERSION=2.28.3
PG_MAJOR=15
TARBALL="$REPO_ROOT/deploy/timescaledb/timescaledb-$TSDB_VERSION-notests.tar.gz"
SYS_LIB=/usr/lib/postgresql/$PG_MAJOR
SYS_SHARE=/usr/share/postgresql/$PG_MAJOR
[ -x "$SYS_LIB/bin/postgres" ] || die "PostgreSQL $PG_MAJOR server not installed ($SYS_LIB/bin/postgres)"
pg_version=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null) || die "package postgresql-$PG_MAJOR not installed"

CACHE="${BIOSYNC_TSDB_CACHE:-/var/cache/biosync/timescaledb}"
ROOT="$CACHE/$TSDB_VERSION-pg$pg_version"
BIN="$ROOT$SYS_LIB/bin"
if [ -f "$ROOT/.complete" ]; then
  log "TimescaleDB $TSDB_VERSION for PostgreSQL $pg_version cached in $ROOT"
  echo "$BIN"
  exit 0
fi

need=()
dpkg-query -W -f='${Version}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null | grep -qx "$pg_version" || need+=("postgresql-server-dev-$PG_MAJOR=$pg_version")
for p in cmake gcc make libssl-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "build dependencies missing (${need[*]}); install them or run as root"
  log "apt-get install ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades "${need[@]}" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$TARBALL" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
# The trimmed archive has no test directories.
sed -i '/add_subdirectory(test)/d' "$src/CMakeLists.txt" "$src/tsl/CMakeLists.txt"
log "configuring TimescaleDB $TSDB_VERSION against $SYS_LIB/bin/pg_config"
(cd "$src" && ./bootstrap -DPG_CONFIG="$SYS_LIB/bin/pg_config" -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
  -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=OFF >"$work/configure.log" 2>&1) || { tail -n 30 "$work/configure.log" >&2; die "bootstrap failed"; }
log "building (make -j$(nproc))"
make -C "$src/build" -j"$(nproc)" >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; die "make failed"; }

staging="$ROOT.partial"
rm -rf "$staging"
mkdir -p "$staging$(dirname "$SYS_LIB")" "$staging$(dirname "$SYS_SHARE")"
cp -a "$SYS_LIB" "$staging$SYS_LIB"
cp -a "$SYS_SHARE" "$staging$SYS_SHARE"
make -C "$src/build" install DESTDIR="$staging" >"$work/install.log" 2>&1 || { tail -n 30 "$work/install.log" >&2; die "make install failed"; }
[ -f "$staging$SYS_LIB/lib/timescaledb-$TSDB_VERSION.so" ] || die "the build installed no timescaledb-$TSDB_VERSION.so"
touch "$staging/.complete"
rm -rf "$ROOT"
mv "$staging" "$ROOT"
chmod -R a+rX "$CACHE"
log "TimescaleDB $TSDB_VERSION built into $ROOT"
echo "$BIN"
