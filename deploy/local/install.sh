#!/usr/bin/env bash
# Installs everything PR-System needs on a fresh machine into .venv/ and makes sure PostgreSQL runs.
# Idempotent: a second run only re-installs when pyproject.toml or this script changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

log() { printf '[install] %s\n' "$*" >&2; }

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing PostgreSQL (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
  log "PostgreSQL did not start on 127.0.0.1:5432"; exit 1
}

ensure_debian_packages() {
  # Tools the test suite runs for real: slapd + ldap-utils (LDAP sign-in), redis (shared rate limits),
  # nginx (the shipped reverse-proxy configuration in front of API replicas), chromium (the web pages in a
  # real headless browser), prometheus + prometheus-alertmanager (promtool and amtool check the shipped rules and
  # configuration; the alerting end-to-end test runs both servers), postgresql-client (pg_dump and pg_restore of
  # `prs backup`, also where PostgreSQL runs on another machine), patroni + etcd-server (the HA drill
  # deploy/ha/drill.sh and tests/ha/), docker-compose (checks docker-compose.ha.yml with `config -q`).
  local wanted=(slapd ldap-utils redis-server nginx-light chromium prometheus prometheus-alertmanager
                postgresql-client patroni etcd-server docker-compose) missing=() pkg
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_redis() {
  # Shared rate-limit storage of several API replicas (PRS_RATE_LIMIT_STORAGE_URI=redis://127.0.0.1:6379).
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  log "starting redis on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >/dev/null
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return; sleep 0.5; done
  log "redis did not start on 127.0.0.1:6379"; exit 1
}

ensure_python_packages() {
  local python="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || { log "creating .venv"; "$python" -m venv .venv; }
  local stamp=.venv/.prs-install-stamp want
  want="$(cat pyproject.toml deploy/local/install.sh deploy/llama-cmake-args | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] && [ -x .venv/bin/prs ]; then return; fi
  # The CPU build of torch first: otherwise sentence-transformers pulls a CUDA build of several GB.
  log "installing torch (CPU)"
  .venv/bin/pip install -q 'torch==2.13.0'
  # llama-cpp-python compiles from source (several minutes). It is built for any x86-64 with AVX2, not for this
  # CPU: a native build enables AMX on CPUs that have it, and generation then crashes (SIGSEGV) in VMs that do
  # not enable AMX. --no-cache-dir: a wheel built earlier with other flags is never reused. The flags are in
  # deploy/llama-cmake-args (the Dockerfile reads them too); the version is the one pinned in pyproject.toml.
  local llama
  llama="$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"
  log "building $llama (portable x86-64 with AVX2; several minutes)"
  CMAKE_ARGS="$(cat deploy/llama-cmake-args)" \
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip install -q --no-cache-dir --force-reinstall --no-deps "$llama"
  log "installing PR-System and its dependencies"
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
}

ensure_postgres
ensure_debian_packages
ensure_redis
ensure_python_packages
log "ready: $ROOT/.venv/bin/prs"
