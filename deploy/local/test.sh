#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite on real components (Postgres, Chroma, models, LLM nodes).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
"$ROOT/deploy/local/install.sh"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
