"""SQL for suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

import asyncpg

from backend.db import Connection

_COLUMNS = """incident_id, status, language, text, citations, retrieved, document_citations, retrieved_documents, model, node, attempts, next_attempt_at,
              lease_expires_at, last_error, feedback, feedback_at, rating, rated_at, created_at, updated_at,
              completed_at, priority_rank, queued_at, watched_until"""
# Priority of the incident -> rank in the queue (higher first).
PRIORITY_RANKS = {"low": 0, "medium": 1, "high": 2, "critical": 3}


async def upsert_pending(conn: Connection, *, incident_id: int, language: str, priority: str, now: datetime) -> None:
    """Create the suggestion row, or reset it to pending for a regeneration; either way it joins the queue now."""
    await conn.execute(
        """INSERT INTO suggestions (incident_id, status, language, next_attempt_at, priority_rank, queued_at,
                                    created_at, updated_at)
           VALUES ($1, 'pending', $2, $3, $4, $3, $3, $3)
           ON CONFLICT (incident_id) DO UPDATE
              SET status = 'pending', language = EXCLUDED.language, text = '', citations = '{}', retrieved = '{}',
                  document_citations = '{}', retrieved_documents = '{}',
                  attempts = 0, next_attempt_at = EXCLUDED.next_attempt_at, lease_expires_at = NULL,
                  last_error = NULL, feedback = NULL, feedback_by = NULL, feedback_at = NULL, rating = NULL,
                  rated_by = NULL, rated_at = NULL, updated_at = EXCLUDED.updated_at, completed_at = NULL,
                  priority_rank = EXCLUDED.priority_rank, queued_at = EXCLUDED.queued_at""",
        incident_id,
        language,
        now,
        PRIORITY_RANKS[priority],
    )


async def get(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """One suggestion."""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM suggestions WHERE incident_id = $1", incident_id)


async def next_pending_for_update(conn: Connection, *, now: datetime) -> int | None:
    """The incident whose suggestion goes next, locked (SKIP LOCKED): watched ones first, then by priority, then
    the longest waiting; only those whose retry time has come."""
    return cast(
        int | None,
        await conn.fetchval(
            """SELECT incident_id FROM suggestions
            WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
            ORDER BY (watched_until IS NOT NULL AND watched_until > $1) DESC, priority_rank DESC, queued_at,
                     incident_id
            LIMIT 1
            FOR UPDATE SKIP LOCKED""",
            now,
        ),
    )


async def mark_generating(
    conn: Connection, incident_id: int, *, node: str, now: datetime, lease_until: datetime
) -> asyncpg.Record | None:
    """Start an attempt on `node` (the caller holds the row lock and a slot of that node)."""
    return await conn.fetchrow(
        f"""UPDATE suggestions
               SET status = 'generating', text = '', attempts = attempts + 1, node = $2, lease_expires_at = $4,
                   updated_at = $3
             WHERE incident_id = $1 AND status = 'pending'
         RETURNING {_COLUMNS}""",
        incident_id,
        node,
        now,
        lease_until,
    )


async def renew_lease(conn: Connection, incident_id: int, *, lease_until: datetime) -> None:
    """Keep a running attempt's lease alive."""
    await conn.execute(
        "UPDATE suggestions SET lease_expires_at = $2 WHERE incident_id = $1 AND status = 'generating'",
        incident_id,
        lease_until,
    )


async def return_to_queue(conn: Connection, incident_id: int, *, now: datetime) -> None:
    """An attempt that was interrupted (the worker stopped): back in line, the attempt not counted."""
    await conn.execute(
        """UPDATE suggestions SET status = 'pending', text = '', attempts = greatest(attempts - 1, 0),
                                  lease_expires_at = NULL, updated_at = $2
            WHERE incident_id = $1 AND status = 'generating'""",
        incident_id,
        now,
    )


async def requeue_expired(conn: Connection, *, now: datetime) -> int:
    """Attempts whose lease ran out (their worker died) go back in line; returns how many."""
    result = await conn.execute(
        """UPDATE suggestions SET status = 'pending', text = '', lease_expires_at = NULL, next_attempt_at = $1,
                                  updated_at = $1
            WHERE status = 'generating' AND lease_expires_at < $1""",
        now,
    )
    return int(result.split()[-1])


async def skip_backlog(
    conn: Connection, *, now: datetime, queued_before: datetime, ranks: list[int], reason: str
) -> list[int]:
    """Skip pending suggestions of these priority ranks that have waited since before `queued_before` and nobody
    is watching; returns their incident ids."""
    rows = await conn.fetch(
        """UPDATE suggestions
              SET status = 'skipped', last_error = $4, lease_expires_at = NULL, next_attempt_at = NULL,
                  updated_at = $1
            WHERE status = 'pending' AND queued_at < $2 AND priority_rank = ANY($3::smallint[])
              AND (watched_until IS NULL OR watched_until <= $1)
        RETURNING incident_id""",
        now,
        queued_before,
        ranks,
        reason,
    )
    return [r["incident_id"] for r in rows]


async def mark_watched(conn: Connection, incident_id: int, *, until: datetime) -> None:
    """Someone has the suggestion open until `until`: it goes ahead of its priority while pending."""
    await conn.execute(
        "UPDATE suggestions SET watched_until = greatest(coalesce(watched_until, $2), $2) WHERE incident_id = $1",
        incident_id,
        until,
    )


async def queue_by_priority(conn: Connection) -> list[asyncpg.Record]:
    """Pending suggestions per priority rank: how many, and when the longest waiting one joined the queue."""
    return await conn.fetch(
        """SELECT priority_rank, count(*) AS depth, min(queued_at) AS oldest_queued_at
             FROM suggestions WHERE status = 'pending' GROUP BY priority_rank"""
    )


async def oldest_pending_queued_at(conn: Connection) -> datetime | None:
    """When the longest waiting pending suggestion joined the queue."""
    return cast(datetime | None, await conn.fetchval("SELECT min(queued_at) FROM suggestions WHERE status = 'pending'"))


async def save_progress(conn: Connection, incident_id: int, *, text: str, now: datetime) -> None:
    """Store the partial text while generating (read by the SSE stream)."""
    await conn.execute(
        "UPDATE suggestions SET text = $2, updated_at = $3 WHERE incident_id = $1 AND status = 'generating'",
        incident_id,
        text,
        now,
    )


async def mark_ready(
    conn: Connection,
    incident_id: int,
    *,
    text: str,
    citations: list[int],
    retrieved: list[int],
    model: str,
    node: str,
    now: datetime,
    document_citations: Sequence[int] = (),
    retrieved_documents: Sequence[int] = (),
) -> None:
    """Store the finished, grounded suggestion."""
    await conn.execute(
        """UPDATE suggestions
              SET status = 'ready', text = $2, citations = $3, retrieved = $4, model = $5, node = $6,
                  lease_expires_at = NULL, last_error = NULL, next_attempt_at = NULL, updated_at = $7, completed_at = $7,
                  document_citations = $8, retrieved_documents = $9
            WHERE incident_id = $1""",
        incident_id,
        text,
        citations,
        retrieved,
        model,
        node,
        now,
        list(document_citations),
        list(retrieved_documents),
    )


async def mark_retry(
    conn: Connection, incident_id: int, *, error: str, next_attempt_at: datetime, now: datetime
) -> None:
    """Back to pending after a failed attempt."""
    await conn.execute(
        """UPDATE suggestions
              SET status = 'pending', text = '', last_error = $2, next_attempt_at = $3, lease_expires_at = NULL,
                  updated_at = $4
            WHERE incident_id = $1""",
        incident_id,
        error,
        next_attempt_at,
        now,
    )


async def mark_failed(conn: Connection, incident_id: int, *, error: str, now: datetime) -> None:
    """Give up after the maximum number of attempts."""
    await conn.execute(
        """UPDATE suggestions SET status = 'failed', last_error = $2, lease_expires_at = NULL, next_attempt_at = NULL,
                                  updated_at = $3
            WHERE incident_id = $1""",
        incident_id,
        error,
        now,
    )


async def set_feedback(
    conn: Connection, incident_id: int, *, decision: str, user_id: int | None, now: datetime
) -> None:
    """Accept or reject."""
    await conn.execute(
        "UPDATE suggestions SET feedback = $2, feedback_by = $3, feedback_at = $4, updated_at = $4 WHERE incident_id = $1",
        incident_id,
        decision,
        user_id,
        now,
    )


async def set_rating(conn: Connection, incident_id: int, *, rating: int, user_id: int | None, now: datetime) -> None:
    """Rate 1-5."""
    await conn.execute(
        "UPDATE suggestions SET rating = $2, rated_by = $3, rated_at = $4, updated_at = $4 WHERE incident_id = $1",
        incident_id,
        rating,
        user_id,
        now,
    )


async def lock_for_feedback(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """The suggestion and its incident's reporter, locked."""
    return await conn.fetchrow(
        """SELECT s.status, s.feedback, s.rating, i.reporter_id
             FROM suggestions s JOIN incidents i ON i.id = s.incident_id
            WHERE s.incident_id = $1 FOR UPDATE OF s""",
        incident_id,
    )


async def incident_for_prompt(conn: Connection, incident_id: int) -> asyncpg.Record | None:
    """The text the suggestion is about."""
    return await conn.fetchrow("SELECT id, title, description, area FROM incidents WHERE id = $1", incident_id)


async def incident_priority(conn: Connection, incident_id: int) -> str | None:
    """The incident's priority (it orders the suggestion queue)."""
    return cast(str | None, await conn.fetchval("SELECT priority FROM incidents WHERE id = $1", incident_id))
