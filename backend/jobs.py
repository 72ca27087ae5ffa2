"""The Postgres-backed job queue (pgqueuer): enqueue inside the caller's transaction."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
from pgqueuer import Queries

SUGGESTION_GENERATE = "suggestion.generate"


async def enqueue(conn: asyncpg.Connection, entrypoint: str, payload: dict[str, Any],
                  *, delay: timedelta | None = None) -> int:
    """Queue a job on this connection, so it commits or rolls back with the caller's transaction."""
    queries = Queries.from_asyncpg_connection(conn)
    job_ids = await queries.enqueue(entrypoint, json.dumps(payload).encode(), execute_after=delay)
    return int(job_ids[0])


def job_payload(raw: bytes | None) -> dict[str, Any]:
    """Decode a job's JSON payload."""
    return json.loads(raw or b"{}")
