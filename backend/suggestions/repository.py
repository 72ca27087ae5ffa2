"""SQL for suggestions."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_COLUMNS = """incident_id, status, language, text, citations, retrieved, model, node, attempts, next_attempt_at,
              lease_expires_at, last_error, feedback, feedback_at, rating, rated_at, created_at, updated_at,
              completed_at"""


async def upsert_pending(conn: asyncpg.Connection, *, incident_id: int, language: str, now: datetime) -> None:
    """Create the suggestion row, or reset it to pending for a regeneration."""
    await conn.execute(
        """INSERT INTO suggestions (incident_id, status, language, next_attempt_at, created_at, updated_at)
           VALUES ($1, 'pending', $2, $3, $3, $3)
           ON CONFLICT (incident_id) DO UPDATE
              SET status = 'pending', language = EXCLUDED.language, text = '', citations = '{}', retrieved = '{}',
                  attempts = 0, next_attempt_at = EXCLUDED.next_attempt_at, lease_expires_at = NULL,
                  last_error = NULL, feedback = NULL, feedback_by = NULL, feedback_at = NULL, rating = NULL,
                  rated_by = NULL, rated_at = NULL, updated_at = EXCLUDED.updated_at, completed_at = NULL""",
        incident_id, language, now,
    )


async def get(conn: asyncpg.Connection, incident_id: int) -> asyncpg.Record | None:
    """One suggestion."""
    return await conn.fetchrow(f"SELECT {_COLUMNS} FROM suggestions WHERE incident_id = $1", incident_id)


async def claim(conn: asyncpg.Connection, incident_id: int, *, now: datetime, lease_until: datetime) -> asyncpg.Record | None:
    """Take the suggestion for generation unless another worker holds a live lease or it is finished."""
    return await conn.fetchrow(
        f"""UPDATE suggestions
               SET status = 'generating', text = '', attempts = attempts + 1, lease_expires_at = $3, updated_at = $2
             WHERE incident_id = $1
               AND (status = 'pending' OR (status = 'generating' AND lease_expires_at < $2))
         RETURNING {_COLUMNS}""",
        incident_id, now, lease_until,
    )


async def save_progress(conn: asyncpg.Connection, incident_id: int, *, text: str, now: datetime) -> None:
    """Store the partial text while generating (read by the SSE stream)."""
    await conn.execute(
        "UPDATE suggestions SET text = $2, updated_at = $3 WHERE incident_id = $1 AND status = 'generating'",
        incident_id, text, now,
    )


async def mark_ready(conn: asyncpg.Connection, incident_id: int, *, text: str, citations: list[int],
                     retrieved: list[int], model: str, node: str, now: datetime) -> None:
    """Store the finished, grounded suggestion."""
    await conn.execute(
        """UPDATE suggestions
              SET status = 'ready', text = $2, citations = $3, retrieved = $4, model = $5, node = $6,
                  lease_expires_at = NULL, last_error = NULL, next_attempt_at = NULL, updated_at = $7, completed_at = $7
            WHERE incident_id = $1""",
        incident_id, text, citations, retrieved, model, node, now,
    )


async def mark_retry(conn: asyncpg.Connection, incident_id: int, *, error: str, next_attempt_at: datetime,
                     now: datetime) -> None:
    """Back to pending after a failed attempt."""
    await conn.execute(
        """UPDATE suggestions
              SET status = 'pending', text = '', last_error = $2, next_attempt_at = $3, lease_expires_at = NULL,
                  updated_at = $4
            WHERE incident_id = $1""",
        incident_id, error, next_attempt_at, now,
    )


async def mark_failed(conn: asyncpg.Connection, incident_id: int, *, error: str, now: datetime) -> None:
    """Give up after the maximum number of attempts."""
    await conn.execute(
        """UPDATE suggestions SET status = 'failed', last_error = $2, lease_expires_at = NULL, next_attempt_at = NULL,
                                  updated_at = $3
            WHERE incident_id = $1""",
        incident_id, error, now,
    )


async def set_feedback(conn: asyncpg.Connection, incident_id: int, *, decision: str, user_id: int | None,
                       now: datetime) -> None:
    """Accept or reject."""
    await conn.execute(
        "UPDATE suggestions SET feedback = $2, feedback_by = $3, feedback_at = $4, updated_at = $4 WHERE incident_id = $1",
        incident_id, decision, user_id, now,
    )


async def set_rating(conn: asyncpg.Connection, incident_id: int, *, rating: int, user_id: int | None,
                     now: datetime) -> None:
    """Rate 1-5."""
    await conn.execute(
        "UPDATE suggestions SET rating = $2, rated_by = $3, rated_at = $4, updated_at = $4 WHERE incident_id = $1",
        incident_id, rating, user_id, now,
    )


async def lock_for_feedback(conn: asyncpg.Connection, incident_id: int) -> asyncpg.Record | None:
    """The suggestion and its incident's reporter, locked."""
    return await conn.fetchrow(
        """SELECT s.status, s.feedback, s.rating, i.reporter_id
             FROM suggestions s JOIN incidents i ON i.id = s.incident_id
            WHERE s.incident_id = $1 FOR UPDATE OF s""",
        incident_id,
    )


async def list_stalled(conn: asyncpg.Connection, *, due_before: datetime, limit: int) -> list[int]:
    """Pending suggestions whose retry is overdue (their job was lost) or whose lease ran out."""
    rows = await conn.fetch(
        """SELECT incident_id FROM suggestions
            WHERE (status = 'pending' AND next_attempt_at < $1)
               OR (status = 'generating' AND lease_expires_at < $1)
            ORDER BY next_attempt_at NULLS FIRST LIMIT $2""",
        due_before, limit,
    )
    return [r["incident_id"] for r in rows]


async def touch_retry_time(conn: asyncpg.Connection, incident_id: int, *, next_attempt_at: datetime) -> None:
    """Push the next-attempt time so a stalled suggestion is not requeued twice."""
    await conn.execute("UPDATE suggestions SET next_attempt_at = $2 WHERE incident_id = $1", incident_id, next_attempt_at)


async def incident_for_prompt(conn: asyncpg.Connection, incident_id: int) -> asyncpg.Record | None:
    """The text the suggestion is about."""
    return await conn.fetchrow("SELECT id, title, description, area FROM incidents WHERE id = $1", incident_id)
