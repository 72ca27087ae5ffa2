#!/usr/bin/env bash
# Installs what the tests need, runs the checks that keep the architecture honest (the same as
# .pre-commit-config.yaml), then the whole suite on real components (Postgres, Chroma, models, LLM nodes).
# Arguments go to pytest. PRS_SKIP_CHECKS=1 skips the checks while iterating on a few tests.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
"$ROOT/deploy/local/install.sh"
if [ "${PRS_SKIP_CHECKS:-0}" != "1" ]; then
  echo "[checks] ruff check";        .venv/bin/ruff check .
  echo "[checks] ruff format";       .venv/bin/ruff format --check .
  echo "[checks] mypy";              .venv/bin/mypy
  echo "[checks] import contracts";  .venv/bin/lint-imports
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
