# shellcheck shell=bash
# Shared settings of the deploy/scripts/*-up.sh and *-down.sh scripts, which
# start real Kafka, PostgreSQL and Redis on this machine for CI and local runs.
# Everything runs on 127.0.0.1 on fixed non-default ports (so a system
# service on the default port is never touched), with state under
# $BIOSYNC_CI_DIR (default ${TMPDIR:-/tmp}/biosync-ci).

BIOSYNC_CI_DIR="${BIOSYNC_CI_DIR:-${TMPDIR:-/tmp}/biosync-ci}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

KAFKA_PORT="${BIOSYNC_CI_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${BIOSYNC_CI_KAFKA_CONTROLLER_PORT:-19093}"
POSTGRES_PORT="${BIOSYNC_CI_POSTGRES_PORT:-15432}"
REDIS_PORT="${BIOSYNC_CI_REDIS_PORT:-16379}"

KAFKA_DIR="$BIOSYNC_CI_DIR/kafka"
# Kafka jars are cached apart from the broker's state, so purging the state
# keeps them (Maven's ~/.m2 caches the downloads too).
KAFKA_LIBS="${BIOSYNC_KAFKA_LIBS:-$BIOSYNC_CI_DIR/kafka-libs}"
REDIS_DIR="$BIOSYNC_CI_DIR/redis"
# PostgreSQL runs as the postgres OS user when we are root, so its folder must
# be reachable by that user: see pg_dir in postgres-up.sh.
POSTGRES_DIR="${BIOSYNC_CI_PG_DIR:-$BIOSYNC_CI_DIR/postgres}"

log() { echo "[$(basename "$0")] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# pid_alive PID: whether PID names a live process.
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID NAME [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid=$1 name=$2 secs=${3:-30} i
  pid_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) ignored SIGTERM for ${secs}s; killing"
  kill -KILL "$pid" 2>/dev/null || true
}

mkdir -p "$BIOSYNC_CI_DIR"
