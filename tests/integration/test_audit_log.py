"""The audit log: append-only in the database, hash-chained under concurrency, verifiable, readable by admins
and auditors with filters and cursor pagination."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta

import asyncpg
import pytest

from backend.audit import service as audit
from backend.context import system_context
from tests.fixtures.app import PASSWORD

pytestmark = pytest.mark.asyncio

NEW = {
    "title": "Compresor 2 pierde presión",
    "description": "La presión cae de 7 a 5 bar en 10 minutos.",
    "area": "maintenance",
    "priority": "medium",
}


async def write_rows(services, count: int, action: str = "test.event") -> None:
    async with services.pool.acquire() as conn:
        for n in range(count):
            async with conn.transaction():
                await audit.record(
                    conn,
                    system_context("test"),
                    at=services.clock.now(),
                    action=action,
                    resource_type="thing",
                    resource_id=n,
                    after={"n": n, "ratio": 1e20},
                )


async def tamper(services, sql: str, *args) -> None:
    """Change the log the way only a database superuser could: with triggers switched off."""
    async with services.pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(sql, *args)


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_log SET action = 'auth.nothing_happened'",
            "UPDATE audit_log SET after = '{}'::jsonb WHERE id = 1",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ],
    )
    async def test_the_database_refuses_to_change_or_remove_audit_rows(self, services, clean_state, statement):
        await write_rows(services, 2)
        async with services.pool.acquire() as conn:
            before = [dict(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY id")]
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
            after = [dict(r) for r in await conn.fetch("SELECT * FROM audit_log ORDER BY id")]
        assert after == before and len(after) == 2


class TestHashChain:
    async def test_rows_are_chained_in_commit_order_and_verify(self, services, clean_state):
        await write_rows(services, 5)
        async with services.pool.acquire() as conn:
            rows = await conn.fetch("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")
        assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
        assert rows[0]["prev_hash"] == "0" * 64
        assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, 5))
        report = await audit.verify_chain(services.pool)
        assert report == {"ok": True, "rows_checked": 5, "head_seq": 5, "head_hash": rows[-1]["hash"]}

    async def test_concurrent_writers_produce_one_unbroken_line(self, services, clean_state):
        async def writer(n: int) -> None:
            async with services.pool.acquire() as conn:
                async with conn.transaction():
                    for i in range(3):
                        await audit.record(
                            conn,
                            system_context(f"w{n}"),
                            at=services.clock.now(),
                            action="test.concurrent",
                            resource_type="thing",
                            resource_id=i,
                        )
                    await asyncio.sleep(0.01 * (n % 3))  # interleave the commits

        await asyncio.gather(*(writer(n) for n in range(8)))
        report = await audit.verify_chain(services.pool)
        assert report["ok"] is True and report["rows_checked"] == 24
        async with services.pool.acquire() as conn:
            seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM audit_log ORDER BY seq")]
            # The three rows of one transaction are adjacent in the chain: commits do not interleave.
            actors = [r["actor_name"] for r in await conn.fetch("SELECT actor_name FROM audit_log ORDER BY seq")]
        assert seqs == list(range(1, 25))
        assert all(len(set(actors[i : i + 3])) == 1 for i in range(0, 24, 3))

    async def test_rolled_back_rows_leave_no_trace_in_the_chain(self, services, clean_state):
        await write_rows(services, 1)
        async with services.pool.acquire() as conn:
            with pytest.raises(RuntimeError):
                async with conn.transaction():
                    await audit.record(
                        conn,
                        system_context("x"),
                        at=services.clock.now(),
                        action="test.rollback",
                        resource_type="thing",
                        resource_id=1,
                    )
                    raise RuntimeError("abort")
        await write_rows(services, 1)
        assert (await audit.verify_chain(services.pool))["ok"] is True

    async def test_a_changed_row_is_reported_as_the_first_broken_link(self, services, clean_state):
        await write_rows(services, 4)
        await tamper(services, "UPDATE audit_log SET after = jsonb_set(after, '{n}', '99') WHERE seq = 3")
        report = await audit.verify_chain(services.pool)
        assert report["ok"] is False and report["rows_checked"] == 2
        assert report["first_broken"]["seq"] == 3 and "changed" in report["first_broken"]["reason"]

    async def test_a_removed_row_breaks_the_sequence_at_the_next_row(self, services, clean_state):
        await write_rows(services, 4)
        await tamper(services, "DELETE FROM audit_log WHERE seq = 2")
        report = await audit.verify_chain(services.pool)
        assert report["first_broken"]["seq"] == 3 and "removed" in report["first_broken"]["reason"]

    async def test_a_row_slipped_in_without_the_chain_is_reported(self, services, clean_state):
        await write_rows(services, 2)
        await tamper(
            services,
            """INSERT INTO audit_log (occurred_at, actor_kind, actor_name, action, resource_type)
                                  VALUES (now(), 'user', 'mallory', 'user.role_changed', 'user')""",
        )
        report = await audit.verify_chain(services.pool)
        assert report["ok"] is False and "not chained" in report["first_broken"]["reason"]

    async def test_rewriting_a_row_and_its_own_hash_still_breaks_the_next_link(self, services, clean_state):
        await write_rows(services, 3)
        await tamper(services, "UPDATE audit_log SET actor_name = 'someone-else' WHERE seq = 2")
        await tamper(
            services,
            "UPDATE audit_log SET hash = encode(sha256(convert_to(audit_log_canonical(audit_log), "
            "'UTF8')), 'hex') WHERE seq = 2",
        )
        report = await audit.verify_chain(services.pool)
        assert report["first_broken"]["seq"] == 3
        assert report["first_broken"]["reason"] == "prev_hash does not match the hash of the previous row"

    async def test_cli_verify_prints_the_head_or_the_first_broken_link(self, services, clean_state, app_settings):
        await write_rows(services, 3)
        env = {
            **os.environ,
            "PRS_DATABASE_URL": app_settings.database_url,
            "PRS_DATA_DIR": str(app_settings.data_dir),
            "PRS_LOG_JSON": "false",
        }
        command = [sys.executable, "-m", "backend.cli", "audit", "verify"]
        ok = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)
        assert ok.returncode == 0, ok.stderr
        assert '"ok": true' in ok.stdout and '"rows_checked": 3' in ok.stdout
        await tamper(services, "UPDATE audit_log SET action = 'test.forged' WHERE seq = 2")
        broken = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)
        assert broken.returncode == 1
        assert '"ok": false' in broken.stdout and '"seq": 2' in broken.stdout


class TestAuditApi:
    async def test_admins_and_auditors_read_the_log_and_other_roles_are_refused(self, api, make_account, services):
        admin = await make_account("admin")
        auditor = await make_account("auditor", username="compliance")
        supervisor = await make_account("supervisor")
        for account, status in ((admin, 200), (auditor, 200), (supervisor, 403)):
            reply = await api.get("/api/v1/audit", headers=account.headers)
            assert reply.status_code == status, (account.role, reply.text)
        assert (await api.get("/api/v1/audit")).status_code == 401

    async def test_auditor_role_set_by_an_admin_is_a_role_change_in_the_log(self, api, make_account, services):
        admin = await make_account("admin")
        person = await make_account("technician")
        reply = await api.patch(f"/api/v1/users/{person.id}", json={"role": "auditor"}, headers=admin.headers)
        assert reply.status_code == 200 and reply.json()["role"] == "auditor"
        assert (await api.get("/api/v1/audit", headers=person.headers)).status_code == 200
        page = (await api.get("/api/v1/audit", params={"action": "user.role_changed"}, headers=admin.headers)).json()
        assert [e["resource_id"] for e in page["items"]] == [str(person.id)]
        assert page["items"][0]["before"]["role"] == "technician" and page["items"][0]["after"]["role"] == "auditor"

    async def test_filters_combine_and_the_cursor_walks_every_row_once(self, api, make_account, services):
        admin = await make_account("admin")
        tech = await make_account("technician")
        for n in range(3):
            assert (
                await api.post("/api/v1/incidents", json=NEW | {"title": f"fallo {n}"}, headers=tech.headers)
            ).status_code == 201
        await api.post("/api/v1/auth/token", data={"username": tech.username, "password": "Wrong-Password-99"})
        everything = (await api.get("/api/v1/audit", params={"limit": 500}, headers=admin.headers)).json()["items"]
        seen, cursor = [], None
        while True:
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await api.get("/api/v1/audit", params=params, headers=admin.headers)).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [e["id"] for e in everything] and len(seen) == len(set(seen))
        by_actor = (
            await api.get(
                "/api/v1/audit", params={"actor": tech.username, "action": "incident.*"}, headers=admin.headers
            )
        ).json()["items"]
        assert len(by_actor) == 3 and {e["action"] for e in by_actor} == {"incident.created"}
        one = (
            await api.get(
                "/api/v1/audit", params={"resource_type": "incident", "resource_id": "2"}, headers=admin.headers
            )
        ).json()["items"]
        assert [e["resource_id"] for e in one] == ["2"]
        failed = (await api.get("/api/v1/audit", params={"action": "auth.login_failed"}, headers=admin.headers)).json()[
            "items"
        ]
        assert len(failed) == 1 and "Wrong-Password-99" not in str(failed) and PASSWORD not in str(everything)
        now = services.clock.now()
        window = {"occurred_from": (now - timedelta(hours=1)).isoformat(), "occurred_to": now.isoformat()}
        assert (await api.get("/api/v1/audit", params=window, headers=admin.headers)).status_code == 200
        future = {"occurred_from": (now + timedelta(hours=1)).isoformat()}
        assert (await api.get("/api/v1/audit", params=future, headers=admin.headers)).json()["items"] == []

    @pytest.mark.parametrize(
        "params, status, field",
        [
            ({"cursor": "not-a-cursor"}, 400, "cursor"),
            ({"occurred_from": "2026-01-01T00:00:00"}, 422, "occurred_from"),
            ({"occurred_from": "2026-02-01T00:00:00Z", "occurred_to": "2026-01-01T00:00:00Z"}, 400, "occurred_from"),
            ({"limit": 0}, 422, "limit"),
            ({"limit": 501}, 422, "limit"),
        ],
    )
    async def test_bad_filters_are_4xx_naming_the_field(self, api, make_account, params, status, field):
        admin = await make_account("admin")
        reply = await api.get("/api/v1/audit", params=params, headers=admin.headers)
        assert reply.status_code == status and reply.json()["field"] == field

    async def test_verify_endpoint_reports_an_intact_chain(self, api, make_account):
        admin = await make_account("admin")
        reply = await api.get("/api/v1/audit/verify", headers=admin.headers)
        assert reply.status_code == 200 and reply.json()["ok"] is True and reply.json()["rows_checked"] >= 2
