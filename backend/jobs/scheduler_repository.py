"""SQL for periodic ticks."""

from __future__ import annotations

from datetime import datetime

from backend.db import Connection


async def claim_tick(conn: Connection, *, task: str, tick: datetime, worker: str, now: datetime) -> bool:
    """True for exactly one caller per (task, tick)."""
    claimed = await conn.fetchval(
        """INSERT INTO periodic_ticks (task, tick, claimed_by, claimed_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (task, tick) DO NOTHING RETURNING true""",
        task,
        tick,
        worker,
        now,
    )
    return bool(claimed)


async def finish_tick(conn: Connection, *, task: str, tick: datetime, now: datetime, error: str | None) -> None:
    """Record how a tick ended."""
    await conn.execute(
        "UPDATE periodic_ticks SET finished_at = $3, error = $4 WHERE task = $1 AND tick = $2",
        task,
        tick,
        now,
        error,
    )
