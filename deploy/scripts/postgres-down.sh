#!/usr/bin/env bash
# Stops the PostgreSQL started by postgres-up.sh (fast shutdown).
# With --purge also deletes its cluster and log.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=$(cat "$BIOSYNC_CI_DIR/postgres.dir" 2>/dev/null || echo "$POSTGRES_DIR")
PGDATA="$dir/data"
cd /
if [ -f "$PGDATA/postmaster.pid" ]; then
  pid=$(head -n 1 "$PGDATA/postmaster.pid")
  if pid_alive "$pid"; then
    log "stopping PostgreSQL (pid $pid)"
    kill -INT "$pid" 2>/dev/null || true # fast shutdown
    for _ in $(seq 1 300); do pid_alive "$pid" || break; sleep 0.1; done
    if pid_alive "$pid"; then log "PostgreSQL still running after 30s; SIGQUIT"; kill -QUIT "$pid" 2>/dev/null || true; sleep 2; fi
  fi
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$dir" "$BIOSYNC_CI_DIR/postgres.dir"
fi
