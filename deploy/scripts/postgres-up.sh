#!/usr/bin/env bash
# Starts a private PostgreSQL (15, or the newest installed) cluster on
# 127.0.0.1:$BIOSYNC_CI_POSTGRES_PORT (default 15432) for CI and local runs,
# creates the superuser role "biosync" and prints its DSN on stdout:
#
#   BIOSYNC_DATABASE_URL=$(bash deploy/scripts/postgres-up.sh)
#
# It never touches the system cluster. As root it runs initdb/postgres as the
# postgres OS user (they refuse root) in a postgres-owned folder; the cluster
# trusts local and 127.0.0.1 connections and runs with fsync=off (test data).
# Binaries: $BIOSYNC_PG_BIN, else initdb on PATH, else the newest
# /usr/lib/postgresql/*/bin; with TimescaleDB installed beside them (a tree
# made by timescaledb-build.sh) the server preloads it. Idempotent. Stop
# with postgres-down.sh.
# Log: $BIOSYNC_CI_DIR/postgres/postgres.log (or the fallback folder below).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

find_pg_bin() {
  if [ -n "${BIOSYNC_PG_BIN:-}" ]; then echo "$BIOSYNC_PG_BIN"; return; fi
  local p d
  # Resolve symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb)
  # so pg_ctl and psql are found next to it.
  if p=$(command -v initdb 2>/dev/null) && p=$(readlink -f "$p") && [ -x "$(dirname "$p")/postgres" ]; then dirname "$p"; return; fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then echo "$d"; return; fi
  done
  return 1
}
PGBIN=$(find_pg_bin) || die "PostgreSQL server binaries not found: apt-get install -y postgresql, or set BIOSYNC_PG_BIN"

if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs the postgres OS user (apt-get install -y postgresql)"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

# The folder must be reachable by the server's user; a state dir under a
# private path (e.g. /root, mode 0700) is not, so fall back to /tmp.
mkdir -p "$POSTGRES_DIR"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$POSTGRES_DIR"; fi
chmod 700 "$POSTGRES_DIR"
if ! (cd / && as_pg test -w "$POSTGRES_DIR" -a -x "$POSTGRES_DIR"); then
  fallback="/tmp/biosync-ci-postgres-$(id -u)"
  log "postgres user cannot use $POSTGRES_DIR; using $fallback (set BIOSYNC_CI_PG_DIR to choose)"
  POSTGRES_DIR=$fallback
  mkdir -p "$POSTGRES_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$POSTGRES_DIR"; fi
  chmod 700 "$POSTGRES_DIR"
fi
# Let postgres-down.sh find the folder actually used.
echo "$POSTGRES_DIR" >"$BIOSYNC_CI_DIR/postgres.dir"

PGDATA="$POSTGRES_DIR/data"
LOGFILE="$POSTGRES_DIR/postgres.log"
DSN="postgres://biosync@127.0.0.1:$POSTGRES_PORT/postgres?sslmode=disable"
cd / # the postgres user may not be allowed into the caller's cwd

psql_admin() {
  as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres "$@"
}
ensure_role() {
  psql_admin -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'biosync') THEN CREATE ROLE biosync SUPERUSER LOGIN; END IF;
  END \$\$;"
}

if [ -f "$PGDATA/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  if psql_admin -c 'select 1' >/dev/null 2>&1; then
    ensure_role
    log "PostgreSQL already running ($PGDATA)"
    echo "$DSN"
    exit 0
  fi
  log "a server is running on $PGDATA but not answering on port $POSTGRES_PORT; restarting it"
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
fi

# The server (running as postgres) appends to the log: create it as that user.
touch "$LOGFILE"
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$LOGFILE"; fi

if [ ! -f "$PGDATA/PG_VERSION" ]; then
  log "initdb $PGDATA ($PGBIN)"
  rm -rf "$PGDATA"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=trust \
    -E UTF8 --locale=C --no-sync >>"$LOGFILE" 2>&1 || { tail -n 20 "$LOGFILE" >&2; die "initdb failed"; }
  as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null <<CONF

# Added by deploy/scripts/postgres-up.sh: a disposable test server.
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 256MB
CONF
fi

# A postmaster.pid whose process is gone (or is not postgres) is stale.
if [ -f "$PGDATA/postmaster.pid" ]; then
  pid=$(head -n 1 "$PGDATA/postmaster.pid")
  if ! pid_alive "$pid" || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q postgres; then
    log "removing stale postmaster.pid (pid $pid)"
    rm -f "$PGDATA/postmaster.pid"
  fi
fi

# Binaries with TimescaleDB beside them (deploy/scripts/timescaledb-build.sh)
# preload it, as the extension requires.
extra=""
if ls "$PGBIN"/../lib/timescaledb-*.so >/dev/null 2>&1; then
  extra="-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
  log "TimescaleDB found beside $PGBIN: preloading it"
fi
log "starting PostgreSQL on 127.0.0.1:$POSTGRES_PORT"
if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGFILE" -w -t 60 \
    -o "-p $POSTGRES_PORT -k $POSTGRES_DIR -c listen_addresses=127.0.0.1 $extra" start >/dev/null; then
  tail -n 20 "$LOGFILE" >&2
  die "pg_ctl start failed (log: $LOGFILE)"
fi
ensure_role
psql_admin -U biosync -c 'select 1' >/dev/null
log "PostgreSQL ready: $DSN"
echo "$DSN"
