#!/usr/bin/env bash
# One command from a fresh machine to PR-System on http://127.0.0.1:8000 (embedded defaults, no Docker):
# install, database (created if missing) and migrations, the local LLM node, the demo knowledge base, an admin.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
"$ROOT/deploy/local/install.sh"

export PRS_DATA_DIR="${PRS_DATA_DIR:-$ROOT/data}"
export PRS_LLM_NODES="${PRS_LLM_NODES:-http://127.0.0.1:11434}"
mkdir -p "$PRS_DATA_DIR"
PRS=.venv/bin/prs

$PRS migrate

node_pid=""
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ "$PRS_LLM_NODES" = "http://127.0.0.1:11434" ] && ! curl -fsS http://127.0.0.1:11434/api/version >/dev/null 2>&1; then
  echo "[run] starting the local LLM node (log: $PRS_DATA_DIR/llm-node.log)" >&2
  $PRS llm serve --host 127.0.0.1 --port 11434 >"$PRS_DATA_DIR/llm-node.log" 2>&1 &
  node_pid=$!
  for _ in $(seq 1 120); do curl -fsS http://127.0.0.1:11434/api/version >/dev/null 2>&1 && break; sleep 1; done
fi

$PRS demo load
$PRS user ensure-admin
echo "[run] PR-System on http://127.0.0.1:8000  (API docs: http://127.0.0.1:8000/docs)" >&2
$PRS serve --host 127.0.0.1 --port "${PRS_PORT:-8000}"
