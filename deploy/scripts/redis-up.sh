#!/usr/bin/env bash
# Starts Redis on 127.0.0.1:$BIOSYNC_CI_REDIS_PORT (default 16379) for CI and
# local runs, with no persistence (--save '' --appendonly no), daemonized, and
# prints its URL on stdout:
#
#   BIOSYNC_REDIS_URL=$(bash deploy/scripts/redis-up.sh)
#
# Installs Debian's redis-server first if it is missing (as root), without
# letting the package start the system service. Idempotent. Stop with
# redis-down.sh. Log: $BIOSYNC_CI_DIR/redis/redis.log.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

URL="redis://127.0.0.1:$REDIS_PORT/0"
PIDFILE="$REDIS_DIR/redis.pid"
mkdir -p "$REDIS_DIR"

# ping: whether a Redis on our port answers PING (bash /dev/tcp, no redis-cli needed).
ping() {
  local reply
  { exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT"; } 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || true
  exec 3>&- 3<&-
  [ "${reply%$'\r'}" = "+PONG" ]
}

if pid=$(cat "$PIDFILE" 2>/dev/null) && pid_alive "$pid" && ping; then
  log "Redis already running (pid $pid)"
  echo "$URL"
  exit 0
fi

if ! command -v redis-server >/dev/null; then
  [ "$(id -u)" = 0 ] || die "redis-server is not installed; as root: apt-get update && apt-get install -y redis-server"
  log "installing redis-server (apt-get)"
  # Keep the package's init script from starting a system Redis on 6379.
  policy=/usr/sbin/policy-rc.d
  added_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
  fi
  set +e
  (export DEBIAN_FRONTEND=noninteractive
   apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server) >"$REDIS_DIR/apt.log" 2>&1
  rc=$?
  set -e
  if [ -n "$added_policy" ]; then rm -f "$policy"; fi
  if [ $rc -ne 0 ]; then tail -n 20 "$REDIS_DIR/apt.log" >&2; die "apt-get install redis-server failed"; fi
fi

log "starting Redis on 127.0.0.1:$REDIS_PORT"
rm -f "$PIDFILE"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
  --save '' --appendonly no --daemonize yes \
  --dir "$REDIS_DIR" --pidfile "$PIDFILE" --logfile "$REDIS_DIR/redis.log"

for _ in $(seq 1 100); do
  if ping; then
    log "Redis ready: $URL"
    echo "$URL"
    exit 0
  fi
  sleep 0.1
done
tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
die "Redis did not answer PING on 127.0.0.1:$REDIS_PORT within 10s"
