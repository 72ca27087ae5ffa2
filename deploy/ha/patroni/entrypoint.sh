#!/bin/sh
# Patroni node entrypoint: passwords from Compose/Swarm secret files, then Patroni (which runs PostgreSQL).
set -eu
if [ -n "${PATRONI_SUPERUSER_PASSWORD_FILE:-}" ]; then
  PATRONI_SUPERUSER_PASSWORD="$(cat "$PATRONI_SUPERUSER_PASSWORD_FILE")"; export PATRONI_SUPERUSER_PASSWORD
fi
if [ -n "${PATRONI_REPLICATION_PASSWORD_FILE:-}" ]; then
  PATRONI_REPLICATION_PASSWORD="$(cat "$PATRONI_REPLICATION_PASSWORD_FILE")"; export PATRONI_REPLICATION_PASSWORD
fi
exec "$@"
