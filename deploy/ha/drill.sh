#!/usr/bin/env bash
# The HA failover drill, without Docker (docs/deployment.md): on this machine, in a temporary folder with ports of
# its own, nginx + 3 API replicas + 2 workers + 2 LLM nodes + the Chroma server + Redis + etcd + 2 Patroni-managed
# PostgreSQL nodes (as the postgres user), the same configuration files as docker-compose.ha.yml; a steady load of
# incident reports (with Idempotency-Key) and reads through nginx while an API replica (SIGKILL), an LLM node, a
# worker in the middle of a generation and the PostgreSQL primary are killed one after another. Everything is
# stopped at the end. Progress goes to stderr; the last stdout line is the JSON report:
#   requests, accepted, failed, lost, duplicates, p50_ms, p99_ms, rps,
#   recovery_s {api_replica, llm_node, worker, db_primary}, plus suggestion and audit-chain outcomes.
# No arguments; about 8-12 minutes on 2 cores. Needs root and deploy/local/install.sh (patroni, etcd-server, nginx).
# PRS_DRILL_PROFILE=baseline runs the same load against one `prs serve` on embedded defaults, without faults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
for tool in patroni etcd nginx redis-server openssl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "drill: $tool is missing; run deploy/local/install.sh" >&2; exit 2; }
done
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
exec "$PYTHON" "$ROOT/deploy/ha/drill.py" --profile "${PRS_DRILL_PROFILE:-full}"
