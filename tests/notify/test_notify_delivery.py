"""Delivery on real receivers: the outbox, signatures, retries, ordering, dead letters, auto-disable, crashes,
competing workers, Slack, e-mail over TLS, and the outbound guard at connect time."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from standardwebhooks import Webhook

from backend.auth.schemas import UserCreate
from backend.context import system_context
from backend.db import transaction
from backend.events import DomainEvent
from backend.notify.outbox import write_event
from tests.fixtures.app import PASSWORD, wait_for
from tests.fixtures.notify_receivers import Answer, HttpReceiver

pytestmark = pytest.mark.asyncio
BASE = "/api/v1/notify"
REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "events"
NEW_INCIDENT = {
    "title": "Cinta línea 3 se para",
    "description": "El motor de la cinta de la línea 3 se calienta y salta la alarma E-4021.",
    "area": "production",
    "priority": "high",
}


async def create_endpoint(notify_api, admin, **body):
    body = {"kind": "webhook", "event_types": ["incident.created"], **body}
    reply = await notify_api.post(f"{BASE}/endpoints", json=body, headers=admin.headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def ping(notify_api, admin, endpoint) -> str:
    reply = await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
    assert reply.status_code == 202, reply.text
    return reply.json()["event_id"]


async def attempts_of(services, event_id: str) -> list[dict]:
    async with services.pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM notify_attempts WHERE event_id = $1 ORDER BY id", event_id)
    return [dict(r) for r in rows]


async def delivery_state(services, event_id: str) -> list[tuple[str, int]]:
    async with services.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT status, attempts FROM notify_deliveries WHERE event_id = $1 ORDER BY id", event_id
        )
    return [(r["status"], r["attempts"]) for r in rows]


async def eventually(predicate, timeout: float = 20.0):
    return await wait_for(predicate, timeout=timeout, interval=0.05)


def verify_against_schema(body: dict) -> None:
    schema = json.loads((DOCS / f"{body['type']}.v{body['version']}.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(body)


class TestOutbox:
    async def test_incident_changes_arrive_signed_in_order_and_match_their_schemas(
        self, api, notify_api, admin, receiver, start_worker, make_account
    ):
        endpoint = await create_endpoint(
            notify_api,
            admin,
            target=receiver.url(),
            event_types=["incident.created", "incident.updated", "incident.resolved", "incident.reopened"],
        )
        tech = await make_account("technician")
        start_worker()
        incident = (await api.post("/api/v1/incidents", json=NEW_INCIDENT, headers=tech.headers)).json()
        path = f"/api/v1/incidents/{incident['id']}"
        assert (await api.patch(path, json={"priority": "critical"}, headers=tech.headers)).status_code == 200
        assert (
            await api.post(path + "/resolve", json={"solution": "Se cambió el rodamiento."}, headers=tech.headers)
        ).status_code == 200
        assert (
            await api.post(path + "/reopen", json={"reason": "Volvió la alarma"}, headers=tech.headers)
        ).status_code == 200
        await receiver.wait_for(lambda r: len(r.delivered()) == 4)
        bodies = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in receiver.delivered()]
        assert [b["type"] for b in bodies] == [
            "incident.created",
            "incident.updated",
            "incident.resolved",
            "incident.reopened",
        ]
        for body in bodies:
            verify_against_schema(body)
            assert body["data"]["incident"]["id"] == incident["id"]
            assert tech.username not in json.dumps(body)
        assert bodies[1]["data"]["changed"] == ["priority"] and bodies[1]["data"]["previous"] == {"priority": "high"}
        assert bodies[2]["data"]["resolution"] == "Se cambió el rodamiento."
        assert bodies[3]["data"]["previous_status"] == "resolved"
        assert len({b["id"] for b in bodies}) == 4

    async def test_sla_escalation_and_suggestion_events_are_delivered_with_their_schemas(
        self, api, notify_api, admin, receiver, start_worker, make_account, services
    ):
        kinds = ["incident.escalated", "sla.warning", "sla.breached", "suggestion.ready"]
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url(), event_types=kinds)
        tech = await make_account("technician")
        incident = (await api.post("/api/v1/incidents", json=NEW_INCIDENT, headers=tech.headers)).json()
        ctx = system_context("sla-test")
        details = {
            "incident.escalated": {
                "level": 1,
                "trigger": "sla_breached",
                "rule_name": "High to maintenance",
                "actor_name": "someone",
                "target_department": "maintenance",
            },
            "sla.warning": {"clock_kind": "resolution", "threshold_percent": 75},
            "sla.breached": {"clock_kind": "resolution", "threshold_percent": 100},
            "suggestion.ready": {},
        }
        async with transaction(services.pool) as conn:
            for kind in kinds:
                after = (
                    {"incident_id": incident["id"], "language": "es", "text": "Revisar", "citations": [], "model": "m"}
                    if kind == "suggestion.ready"
                    else None
                )
                await services.events.publish(
                    conn,
                    DomainEvent(
                        name=kind,
                        resource_type="incident",
                        resource_id=incident["id"],
                        at=services.clock.now(),
                        ctx=ctx,
                        after=after,
                        details=details[kind],
                    ),
                )
        start_worker()
        await receiver.wait_for(lambda r: len(r.delivered()) == 4)
        bodies = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in receiver.delivered()]
        assert [b["type"] for b in bodies] == kinds
        for body in bodies:
            verify_against_schema(body)
        assert "actor_name" not in bodies[0]["data"]["escalation"]
        assert bodies[2]["data"]["sla"] == {"clock_kind": "resolution", "threshold_percent": 100}

    async def test_outbox_rows_commit_or_roll_back_with_the_change(self, notify, notify_api, admin, receiver, services):
        await create_endpoint(notify_api, admin, target=receiver.url())
        incident = {
            "id": 99,
            "title": "t",
            "description": "d",
            "area": "production",
            "priority": "low",
            "status": "open",
            "tags": [],
            "created_at": services.clock.now(),
            "updated_at": services.clock.now(),
        }
        event = DomainEvent(
            name="incident.created",
            resource_type="incident",
            resource_id=99,
            at=services.clock.now(),
            ctx=system_context("t"),
            after=incident,
        )
        async with services.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await notify.outbox.handle(conn, event)
            assert await conn.fetchval("SELECT count(*) FROM notify_deliveries") == 1
            await tx.rollback()
            assert await conn.fetchval("SELECT count(*) FROM notify_events") == 0
            assert await conn.fetchval("SELECT count(*) FROM notify_deliveries") == 0
            async with conn.transaction():
                await notify.outbox.handle(conn, event)
            assert await conn.fetchval("SELECT count(*) FROM notify_deliveries WHERE status = 'pending'") == 1


class TestRetries:
    async def test_5xx_and_429_are_retried_and_retry_after_is_honoured(
        self, notify_api, admin, receiver, start_worker, services
    ):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        receiver.answer_next(Answer(status=503), Answer(status=429, headers=(("Retry-After", "1"),)))
        start_worker()
        event_id = await ping(notify_api, admin, endpoint)
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        first, second, third = receiver.requests
        assert {r.headers["webhook-id"] for r in receiver.requests} == {event_id}
        assert third.received_at - second.received_at >= 0.95, "Retry-After: 1 was not honoured"
        await eventually(lambda: _finished(services, event_id))
        log = await attempts_of(services, event_id)
        assert [(a["outcome"], a["status_code"]) for a in log] == [
            ("retrying", 503),
            ("retrying", 429),
            ("delivered", 200),
        ]

    async def test_other_4xx_and_redirects_fail_at_once_and_redirects_are_not_followed(
        self, notify_api, admin, receiver, start_worker, services
    ):
        gone = await create_endpoint(notify_api, admin, target=receiver.url("/gone"))
        moved = await create_endpoint(notify_api, admin, target=receiver.url("/moved"))
        receiver.answer_next(Answer(status=410))
        start_worker()
        gone_event = await ping(notify_api, admin, gone)
        await receiver.wait_for(lambda r: len(r.requests) == 1)
        receiver.answer_next(Answer(status=302, headers=(("Location", receiver.url("/elsewhere")),)))
        moved_event = await ping(notify_api, admin, moved)
        await eventually(lambda: _finished(services, gone_event))
        await eventually(lambda: _finished(services, moved_event))
        assert await delivery_state(services, gone_event) == [("dead", 1)]
        assert await delivery_state(services, moved_event) == [("dead", 1)]
        assert [r.path for r in receiver.requests] == ["/gone", "/moved"]
        assert "redirects are not followed" in (await attempts_of(services, moved_event))[0]["error"]

    async def test_a_hanging_receiver_times_out_and_the_next_attempt_delivers(
        self, notify_api, admin, receiver, start_worker, services
    ):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        receiver.answer_next(Answer(hang=True))
        start_worker()
        event_id = await ping(notify_api, admin, endpoint)
        await receiver.wait_for(lambda r: len(r.delivered()) == 1, timeout=15)
        await eventually(lambda: _finished(services, event_id))
        timed_out, delivered = await attempts_of(services, event_id)
        assert timed_out["outcome"] == "retrying" and "timed out" in timed_out["error"]
        assert 1900 <= timed_out["duration_ms"] < 6000, "the total timeout is 2 s"
        assert delivered["outcome"] == "delivered"

    async def test_a_silent_server_hits_the_connect_timeout_not_the_total_one(
        self, notify_api, admin, start_worker, services
    ):
        """TCP is accepted but the TLS handshake never answers: the 1 s connect timeout ends it, not the 2 s total."""
        release = asyncio.Event()
        held = []

        async def hold(reader, writer):
            held.append(writer)
            await release.wait()
            writer.close()

        silent = await asyncio.start_server(hold, "127.0.0.1", 0)
        try:
            port = silent.sockets[0].getsockname()[1]
            endpoint = await create_endpoint(notify_api, admin, target=f"https://127.0.0.1:{port}/hook")
            start_worker()
            event_id = await ping(notify_api, admin, endpoint)

            async def first_attempt_done():
                rows = await attempts_of(services, event_id)
                return rows if rows and rows[0]["outcome"] != "in_flight" else None

            first = (await eventually(first_attempt_done))[0]
        finally:
            release.set()
            silent.close()
        assert first["outcome"] == "retrying" and "timed out" in first["error"]
        assert 900 <= first["duration_ms"] < 1900 and held

    async def test_after_the_last_attempt_the_delivery_is_dead_and_the_next_event_proceeds(
        self, notify_api, admin, receiver, start_worker, services
    ):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        receiver.answer_next(Answer(status=500), Answer(status=500), Answer(status=500))
        first = await ping(notify_api, admin, endpoint)
        second = await ping(notify_api, admin, endpoint)
        start_worker(notify_max_attempts=3)
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        assert [r.headers["webhook-id"] for r in receiver.requests] == [first, first, first, second]
        assert await delivery_state(services, first) == [("dead", 3)]
        await eventually(lambda: _finished(services, second))
        assert await delivery_state(services, second) == [("delivered", 1)]


async def _finished(services, event_id: str) -> bool:
    async with services.pool.acquire() as conn:
        return bool(
            await conn.fetchval(
                """SELECT bool_and(status <> 'pending') AND NOT EXISTS (
                          SELECT 1 FROM notify_attempts WHERE event_id = $1 AND outcome = 'in_flight')
                 FROM notify_deliveries WHERE event_id = $1""",
                event_id,
            )
        )


class TestOrderingAndOutages:
    async def test_a_receiver_down_for_several_retry_intervals_gets_every_event_in_order(
        self, api, notify_api, admin, receiver, start_worker, services, make_account
    ):
        other = await HttpReceiver().start()
        try:
            down = await create_endpoint(notify_api, admin, target=receiver.url("/erp"))
            healthy = await create_endpoint(notify_api, admin, target=other.url("/mes"))
            tech = await make_account("technician")
            await receiver.stop()
            created = []
            for n in range(5):
                reply = await api.post(
                    "/api/v1/incidents", json={**NEW_INCIDENT, "title": f"Parada {n}"}, headers=tech.headers
                )
                created.append(reply.json()["id"])
            start_worker(notify_max_attempts=100)  # the outage must not outlast the attempts
            await other.wait_for(lambda r: len(r.delivered()) == 5)  # the healthy endpoint does not wait

            async def retried_while_down():
                async with services.pool.acquire() as conn:
                    return (
                        await conn.fetchval(
                            "SELECT count(*) FROM notify_attempts WHERE endpoint_id = $1 AND outcome = 'retrying'",
                            down["id"],
                        )
                        >= 4
                    )

            await eventually(retried_while_down)
            await receiver.start()
            await receiver.wait_for(lambda r: len(r.delivered()) == 5, timeout=20)
        finally:
            await other.stop()
        for server, endpoint in ((receiver, down), (other, healthy)):
            bodies = [Webhook(endpoint["secret"]).verify(r.body, r.headers) for r in server.delivered()]
            assert [b["data"]["incident"]["id"] for b in bodies] == created

        async def statuses():
            # The receiver sees the request before the worker records the answer: wait for the commit.
            async with services.pool.acquire() as conn:
                rows = await conn.fetch("SELECT DISTINCT status FROM notify_deliveries")
            return [r["status"] for r in rows]

        async def all_recorded():
            return await statuses() == ["delivered"]

        try:
            await eventually(all_recorded, timeout=10)
        except AssertionError:
            assert await statuses() == ["delivered"]
        async with services.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT d.id, min(a.started_at) AS first_try, max(a.finished_at) AS done
                     FROM notify_deliveries d JOIN notify_attempts a ON a.delivery_id = d.id
                    WHERE d.endpoint_id = $1 GROUP BY d.id ORDER BY d.id""",
                down["id"],
            )
        for earlier, later in zip(rows, rows[1:]):
            assert later["first_try"] >= earlier["done"], "a later event was tried while an earlier one was pending"

    async def test_an_endpoint_that_keeps_failing_is_disabled_and_admins_are_emailed(
        self, notify_api, admin, receiver, start_worker, services, smtp_starttls
    ):
        broken = await create_endpoint(notify_api, admin, target=receiver.url("/broken"))
        mail = await create_endpoint(
            notify_api,
            admin,
            kind="email",
            target="admins@example.test",
            event_types=["notification.endpoint_disabled"],
        )
        receiver.default = Answer(status=500)
        start_worker(notify_max_attempts=2, notify_disable_after_failures=3)
        first = await ping(notify_api, admin, broken)
        second = await ping(notify_api, admin, broken)

        async def disabled():
            reply = await notify_api.get(f"{BASE}/endpoints/{broken['id']}", headers=admin.headers)
            return reply.json() if not reply.json()["enabled"] else None

        state = await eventually(disabled)
        assert "3 consecutive failed attempts" in state["disabled_reason"] and "HTTP 500" in state["disabled_reason"]
        assert await delivery_state(services, first) == [("dead", 2)]
        assert await delivery_state(services, second) == [("pending", 1)], "the pending event waits, not lost"
        await eventually(lambda: _has_mail(smtp_starttls[1]))
        message = smtp_starttls[1].messages[0]
        assert message["to"] == ["admins@example.test"] and message["tls"]
        assert f"Notification endpoint #{broken['id']} (webhook) was disabled" in message["data"]
        events = (
            await notify_api.get(
                f"{BASE}/events", params={"type": "notification.endpoint_disabled"}, headers=admin.headers
            )
        ).json()["items"]
        assert len(events) == 1 and events[0]["payload"]["data"]["endpoint"] == {"id": broken["id"], "kind": "webhook"}
        verify_against_schema(events[0]["payload"])
        async with services.pool.acquire() as conn:
            audit_row = await conn.fetchrow(
                "SELECT * FROM audit_log WHERE action = 'notification.endpoint_disabled' AND resource_id = $1",
                str(broken["id"]),
            )
        assert audit_row is not None and audit_row["actor_kind"] == "system"
        receiver.default = Answer()
        await notify_api.post(f"{BASE}/endpoints/{broken['id']}/toggle", json={"enabled": True}, headers=admin.headers)
        await eventually(lambda: _finished(services, second))
        assert (await delivery_state(services, second))[0][0] == "delivered"
        assert mail["enabled"]


async def reporter_account(services, api, username: str, address: str | None) -> dict[str, str]:
    """A reporter with (or without) an e-mail address on the account, signed in; returns the auth headers."""
    await services.auth.create_user(
        system_context("test"), UserCreate(username=username, password=PASSWORD, role="reporter", email=address)
    )
    reply = await api.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def _has_mail(handler) -> bool:
    with handler.lock:
        return bool(handler.messages)


class TestConcurrency:
    async def test_concurrent_claims_never_share_a_delivery(self, notify, notify_api, admin, receiver, services):
        for n in range(12):
            await create_endpoint(notify_api, admin, target=receiver.url(f"/e{n}"))
        now = services.clock.now()
        async with transaction(services.pool) as conn:
            for _ in range(2):
                await write_event(
                    conn,
                    event_type="incident.created",
                    occurred_at=now,
                    now=now,
                    data={"incident": {"id": 1}},
                    area="production",
                    priority="high",
                )
        from backend.notify.wiring import build_notify

        workers = [
            build_notify(
                notify.settings, pool=services.pool, clock=services.clock, registry=None, worker_name=f"w{n}"
            ).delivery
            for n in range(6)
        ]
        claimed = await asyncio.gather(*(w.claim(4) for w in workers))
        ids = [item["delivery_id"] for batch in claimed for item in batch]
        assert len(ids) == 12 and len(set(ids)) == 12, "each endpoint's head was claimed exactly once"
        assert len({item["endpoint_id"] for batch in claimed for item in batch}) == 12
        again = await asyncio.gather(*(w.claim(4) for w in workers))
        assert sum(len(batch) for batch in again) == 0, "leased heads block the events behind them"
        for worker in workers:
            await worker.http.aclose()

    async def test_two_workers_never_deliver_the_same_attempt_twice_at_once(
        self, notify_api, admin, receiver, start_worker, services
    ):
        endpoints = [await create_endpoint(notify_api, admin, target=receiver.url(f"/e{n}")) for n in range(4)]
        receiver.default = Answer(delay_s=0.03)
        now = services.clock.now()
        event_ids = []
        async with transaction(services.pool) as conn:
            for n in range(10):
                written = await write_event(
                    conn,
                    event_type="incident.created",
                    occurred_at=now,
                    now=now,
                    data={"incident": {"id": n}},
                    area="production",
                    priority="high",
                )
                event_ids.append(written.event_id)
        start_worker("worker-a", notify_batch_size=2)
        start_worker("worker-b", notify_batch_size=2)
        await receiver.wait_for(lambda r: len(r.delivered()) == 40, timeout=30)
        assert receiver.overlapping_ids == []
        assert max(receiver.max_active_by_path.values()) == 1, "one request at a time per endpoint"
        for n, endpoint in enumerate(endpoints):
            ids = [r.headers["webhook-id"] for r in receiver.delivered(f"/e{n}")]
            assert ids == event_ids, "every event exactly once, in order"
        async with services.pool.acquire() as conn:
            workers = await conn.fetchval("SELECT count(DISTINCT worker) FROM notify_attempts")
            attempts = await conn.fetchval("SELECT count(*) FROM notify_attempts")
        assert workers == 2 and attempts == 40

    async def test_a_worker_killed_mid_delivery_loses_nothing(
        self, notify_api, admin, receiver, start_worker, services, notify_settings
    ):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        receiver.answer_next(Answer(hang=True))
        env = {
            **os.environ,
            "PRS_DATABASE_URL": notify_settings.database_url,
            "PRS_DATA_DIR": str(notify_settings.data_dir),
            "PRS_ENVIRONMENT": "test",
            "PRS_NOTIFY_ALLOWED_HOSTS": "127.0.0.1",
            "PRS_NOTIFY_LEASE_S": "3",
            "PRS_NOTIFY_TIMEOUT_S": "2.5",
            "PRS_NOTIFY_POLL_S": "0.1",
            "PRS_LOG_JSON": "false",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "notify", "worker"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            first = await ping(notify_api, admin, endpoint)
            second = await ping(notify_api, admin, endpoint)
            await receiver.wait_for(lambda r: len(r.requests) == 1, timeout=30)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        start_worker("survivor")
        await receiver.wait_for(lambda r: len(r.delivered()) == 2, timeout=20)
        assert [r.headers["webhook-id"] for r in receiver.requests] == [first, first, second]
        for request in receiver.delivered():
            Webhook(endpoint["secret"]).verify(request.body, request.headers)
        await eventually(lambda: _finished(services, second))
        assert [a["outcome"] for a in await attempts_of(services, first)] == ["abandoned", "delivered"]
        assert await delivery_state(services, first) == [("delivered", 2)]
        assert await delivery_state(services, second) == [("delivered", 1)]

    async def test_notify_wakes_the_worker_long_before_the_next_poll(self, notify_api, admin, receiver, start_worker):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        start_worker(notify_poll_s=120)
        await asyncio.sleep(1.0)  # let the worker LISTEN
        started = asyncio.get_running_loop().time()
        await ping(notify_api, admin, endpoint)
        await receiver.wait_for(lambda r: len(r.delivered()) == 1, timeout=30)
        assert asyncio.get_running_loop().time() - started < 20, "delivered at the next poll, not on NOTIFY"


class TestChannels:
    async def test_slack_gets_an_incoming_webhook_message(self, notify_api, admin, receiver, start_worker):
        endpoint = await create_endpoint(notify_api, admin, kind="slack", target=receiver.url("/services/T/B/x"))
        assert endpoint["secret"] is None
        start_worker()
        await ping(notify_api, admin, endpoint)
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        request = receiver.delivered()[0]
        message = json.loads(request.body)
        assert message["text"] == "Test message from PR-System"
        assert message["blocks"][0]["type"] == "section" and "test.ping" in message["blocks"][0]["text"]["text"]
        assert request.headers["content-type"] == "application/json" and "webhook-signature" not in request.headers

    async def test_email_goes_out_over_starttls(self, notify_api, admin, start_worker, smtp_starttls):
        endpoint = await create_endpoint(notify_api, admin, kind="email", target="ops@example.test, qa@example.test")
        start_worker()
        event_id = await ping(notify_api, admin, endpoint)
        await eventually(lambda: _has_mail(smtp_starttls[1]))
        message = smtp_starttls[1].messages[0]
        assert message["tls"] and message["to"] == ["ops@example.test", "qa@example.test"]
        assert f"X-PRS-Event-Id: {event_id}" in message["data"]
        assert "Subject: [PR-System] Test message from PR-System" in message["data"]

    async def test_an_escalation_email_carries_the_message_for_the_target_department(
        self, api, notify_api, admin, start_worker, smtp_starttls, make_account
    ):
        endpoint = await create_endpoint(
            notify_api, admin, kind="email", target="maintenance@example.test", event_types=["incident.escalated"]
        )
        tech = await make_account("technician")
        incident = (await api.post("/api/v1/incidents", json=NEW_INCIDENT, headers=tech.headers)).json()
        await api.post(
            f"/api/v1/incidents/{incident['id']}/comments",
            json={"body": "Cambiado el relé térmico, sigue fallando"},
            headers=tech.headers,
        )
        reply = await api.post(
            f"/api/v1/incidents/{incident['id']}/escalations",
            json={"level": 2, "reason": "La línea lleva parada una hora", "target_department": "maintenance"},
            headers=tech.headers,
        )
        assert reply.status_code == 201, reply.text
        start_worker()
        await eventually(lambda: _has_mail(smtp_starttls[1]))
        [sent] = smtp_starttls[1].messages
        mail = email.message_from_string(sent["data"], policy=email.policy.default)
        history = (await api.get(f"/api/v1/incidents/{incident['id']}/escalations", headers=tech.headers)).json()
        letter = history[0]["messages"]["department"]
        assert sent["to"] == ["maintenance@example.test"] and endpoint["kind"] == "email"
        assert mail["Subject"] == "[PR-System] " + letter["subject"]
        body = mail.get_content().replace("\r\n", "\n")
        assert body.startswith(letter["body"].rstrip())
        assert "Cambiado el relé térmico" in body and "La línea lleva parada una hora" in body
        assert '"type": "incident.escalated"' in body  # the event JSON still follows for scripts

    async def test_a_reporter_endpoint_mails_each_reporter_their_escalation_message(
        self, api, notify_api, admin, start_worker, smtp_starttls, make_account, services
    ):
        await create_endpoint(notify_api, admin, kind="email", target="Reporter", event_types=["incident.escalated"])
        with_address = await reporter_account(services, api, "ana", "ana.garcia@example.test")
        without_address = await reporter_account(services, api, "luis", None)
        tech = await make_account("technician")
        incidents = []
        for reporter in (with_address, without_address):
            incident = (await api.post("/api/v1/incidents", json=NEW_INCIDENT, headers=reporter)).json()
            reply = await api.post(
                f"/api/v1/incidents/{incident['id']}/escalations",
                json={"level": 1, "reason": "Sin respuesta en una hora"},
                headers=tech.headers,
            )
            assert reply.status_code == 201, reply.text
            incidents.append(incident)
        start_worker()
        await eventually(lambda: _has_mail(smtp_starttls[1]))
        async with services.pool.acquire() as conn:
            deliveries = await conn.fetchval(
                "SELECT count(*) FROM notify_deliveries d JOIN notify_events e ON e.id = d.event_id "
                "WHERE e.type = 'incident.escalated'"
            )
            events = await conn.fetchval("SELECT count(*) FROM notify_events WHERE type = 'incident.escalated'")
        assert (events, deliveries) == (2, 1), "no delivery for the reporter without an address"
        [sent] = smtp_starttls[1].messages
        mail = email.message_from_string(sent["data"], policy=email.policy.default)
        history = (await api.get(f"/api/v1/incidents/{incidents[0]['id']}/escalations", headers=tech.headers)).json()
        letter = history[0]["messages"]["reporter"]
        assert sent["to"] == ["ana.garcia@example.test"]
        assert mail["Subject"] == "[PR-System] " + letter["subject"]
        assert mail.get_content().replace("\r\n", "\n").startswith(letter["body"].rstrip())

    async def test_email_goes_out_over_implicit_tls(self, notify_api, admin, start_worker, smtp_implicit_tls):
        controller, handler = smtp_implicit_tls
        handler.messages.clear()
        endpoint = await create_endpoint(notify_api, admin, kind="email", target="ops@example.test")
        start_worker(smtp_port=controller.port, smtp_security="tls")
        await ping(notify_api, admin, endpoint)
        await eventually(lambda: _has_mail(handler))
        assert handler.messages[0]["tls"] and handler.messages[0]["to"] == ["ops@example.test"]

    async def test_https_webhook_in_production_with_an_internal_ca(
        self, services, notify, admin, tls_receiver, start_worker
    ):
        from backend.notify.schemas import EndpointCreate
        from backend.notify.wiring import build_notify

        production = build_notify(
            notify.settings.model_copy(update={"environment": "production"}),
            pool=services.pool,
            clock=services.clock,
            registry=None,
        )
        endpoint = await production.create_endpoint(
            system_context("t"),
            EndpointCreate(kind="webhook", target=tls_receiver.url(), event_types=["incident.created"]),
        )
        await production.send_ping(system_context("t"), endpoint["id"])
        start_worker(environment="production")
        await tls_receiver.wait_for(lambda r: len(r.delivered()) == 1)
        request = tls_receiver.delivered()[0]
        assert Webhook(endpoint["secret"]).verify(request.body, request.headers)["type"] == "test.ping"

    async def test_the_address_is_checked_again_when_connecting(
        self, notify_api, admin, receiver, start_worker, services
    ):
        """An endpoint accepted earlier is refused when the policy (or DNS) no longer allows its address."""
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        start_worker(notify_allowed_hosts="")
        event_id = await ping(notify_api, admin, endpoint)
        await eventually(lambda: _finished(services, event_id))
        (attempt,) = await attempts_of(services, event_id)
        assert attempt["outcome"] == "dead" and "refused by the outbound policy" in attempt["error"]
        assert receiver.requests == []
