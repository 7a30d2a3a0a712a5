#!/usr/bin/env bash
# Stops the Redis started by redis-up.sh. With --purge also deletes its folder.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if pid=$(cat "$REDIS_DIR/redis.pid" 2>/dev/null) && pid_alive "$pid"; then
  log "stopping Redis (pid $pid)"
  stop_pid "$pid" redis 10
fi
rm -f "$REDIS_DIR/redis.pid"
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$REDIS_DIR"
fi
