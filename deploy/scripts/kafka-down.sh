#!/usr/bin/env bash
# Stops the Kafka started by kafka-up.sh (SIGTERM = controlled shutdown).
# With --purge also deletes its data and logs (the jar cache is kept).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if pid=$(cat "$KAFKA_DIR/kafka.pid" 2>/dev/null); then
  if pid_alive "$pid"; then
    log "stopping Kafka (pid $pid)"
    stop_pid "$pid" kafka 60
  fi
  rm -f "$KAFKA_DIR/kafka.pid"
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$KAFKA_DIR"
fi
