"""Audit anchors in Object Lock storage catch a chain rewritten consistently, which the plain check cannot."""

from __future__ import annotations

import asyncio
import json

from backend.audit.service import verify_chain
from backups.anchors import anchor_audit_head, verify_against_anchors
from tests.fixtures.backups import BackupWorld, run_prs, seed_incidents

REWRITE_CHAIN = """
DO $$
DECLARE
    r audit_log;
    previous text := repeat('0', 64);
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY seq LOOP
        r.prev_hash := previous;
        r.hash := encode(sha256(convert_to(audit_log_canonical(r), 'UTF8')), 'hex');
        UPDATE audit_log SET prev_hash = r.prev_hash, hash = r.hash WHERE id = r.id;
        previous := r.hash;
    END LOOP;
END
$$;
"""


async def _rewrite_history(pool) -> None:
    """What a database superuser could do: change an old row, then recompute every hash after it."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # skips the append-only triggers
            await conn.execute("UPDATE audit_log SET actor_name = 'nobody' WHERE seq = 2")
            await conn.execute(REWRITE_CHAIN)


async def test_a_consistently_rewritten_chain_passes_the_plain_check_but_the_anchored_one_names_the_anchor(
    backup_world: BackupWorld,
):
    pool = backup_world.services.pool
    anchors = backup_world.services.backups.anchors
    await seed_incidents(backup_world, count=3)
    first = await anchor_audit_head(pool, anchors, reason="hourly")
    await seed_incidents_more(backup_world)
    await backup_world.services.backups.service.create(tier="hourly")  # anchors the head it backed up
    intact = await verify_against_anchors(pool, anchors)
    assert intact["ok"] and intact["anchors_checked"] == 2

    await _rewrite_history(pool)

    assert (await verify_chain(pool))["ok"]
    anchored = await verify_against_anchors(pool, anchors)
    assert not anchored["ok"]
    assert anchored["first_mismatched_anchor"]["object"] == first["object"]
    assert anchored["first_mismatched_anchor"]["anchored_hash"] == first["hash"]

    # Deleting the locked anchor only adds a delete marker; the check reads every version.
    anchors.store.remove(anchors.bucket, [first["object"]])
    plain = await asyncio.to_thread(run_prs, backup_world.settings, "audit", "verify")
    with_anchors = await asyncio.to_thread(run_prs, backup_world.settings, "audit", "verify", "--anchors")
    assert plain.returncode == 0
    assert with_anchors.returncode == 1
    assert json.loads(with_anchors.stdout)["first_mismatched_anchor"]["object"] == first["object"]


async def seed_incidents_more(world: BackupWorld) -> None:
    """A few more audited changes after the first anchor."""
    from backend.context import system_context

    await world.services.incidents.create_area(system_context("test"), "packaging", "Packaging")
