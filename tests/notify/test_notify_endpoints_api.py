"""The notification admin API on the real Postgres: endpoints, secrets, pings, redelivery, the delivery log."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.fixtures.app import wait_for
from tests.fixtures.notify_receivers import Answer

pytestmark = pytest.mark.asyncio
BASE = "/api/v1/notify"


async def create_endpoint(notify_api, admin, **body):
    body = {"kind": "webhook", "event_types": ["incident.created"], **body}
    reply = await notify_api.post(f"{BASE}/endpoints", json=body, headers=admin.headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def count(services, table: str) -> int:
    async with services.pool.acquire() as conn:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")


class TestEndpoints:
    async def test_webhook_secret_is_shown_once_and_stored_encrypted(self, notify_api, admin, receiver, services):
        created = await create_endpoint(notify_api, admin, target=receiver.url(), description="ERP")
        assert created["secret"].startswith("whsec_") and created["has_secret"]
        listed = (await notify_api.get(f"{BASE}/endpoints", headers=admin.headers)).json()
        fetched = (await notify_api.get(f"{BASE}/endpoints/{created['id']}", headers=admin.headers)).json()
        assert "secret" not in listed[0] and "secret" not in fetched
        async with services.pool.acquire() as conn:
            stored = await conn.fetchval("SELECT secret_encrypted FROM notify_endpoints WHERE id = $1", created["id"])
            audit_row = await conn.fetchrow("SELECT * FROM audit_log WHERE action = 'notify.endpoint.created'")
        assert created["secret"].encode() not in stored and created["secret"][6:].encode() not in stored
        assert audit_row["actor_name"] == admin.username and "secret" not in str(audit_row["after"])

    async def test_update_toggle_and_delete(self, notify_api, admin, receiver, services):
        created = await create_endpoint(notify_api, admin, target=receiver.url())
        reply = await notify_api.patch(
            f"{BASE}/endpoints/{created['id']}",
            headers=admin.headers,
            json={
                "event_types": ["incident.resolved", "sla.breached"],
                "areas": ["production"],
                "priorities": ["high"],
                "target": receiver.url("/other"),
            },
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["event_types"] == ["incident.resolved", "sla.breached"]
        assert reply.json()["target"].endswith("/other")
        off = await notify_api.post(
            f"{BASE}/endpoints/{created['id']}/toggle", json={"enabled": False}, headers=admin.headers
        )
        assert off.json()["enabled"] is False and off.json()["disabled_reason"] == f"disabled by {admin.username}"
        on = await notify_api.post(
            f"{BASE}/endpoints/{created['id']}/toggle", json={"enabled": True}, headers=admin.headers
        )
        assert on.json()["enabled"] is True and on.json()["disabled_reason"] is None
        assert (await notify_api.delete(f"{BASE}/endpoints/{created['id']}", headers=admin.headers)).status_code == 204
        assert (await notify_api.get(f"{BASE}/endpoints/{created['id']}", headers=admin.headers)).status_code == 404
        assert await count(services, "notify_endpoints") == 0

    async def test_only_admins_manage_endpoints(self, notify_api, make_account, receiver):
        supervisor = await make_account("supervisor")
        reply = await notify_api.post(
            f"{BASE}/endpoints",
            headers=supervisor.headers,
            json={"kind": "webhook", "target": receiver.url(), "event_types": ["incident.created"]},
        )
        assert reply.status_code == 403
        assert (await notify_api.get(f"{BASE}/attempts", headers=supervisor.headers)).status_code == 403
        assert (await notify_api.get(f"{BASE}/endpoints")).status_code == 401


BAD_ENDPOINTS = [
    ("unknown kind", {"kind": "sms"}, "kind"),
    ("unknown event type", {"event_types": ["incident.deleted"]}, "event_types.0"),
    ("test.ping is not subscribable", {"event_types": ["test.ping"]}, "event_types.0"),
    ("no event types", {"event_types": []}, "event_types"),
    ("unknown priority", {"priorities": ["urgent"]}, "priorities.0"),
    ("unknown area", {"areas": ["moon-base"]}, "areas"),
    ("not a URL", {"target": "erp"}, "target"),
    ("ftp target", {"target": "ftp://127.0.0.1/x"}, "target"),
    ("credentials in the URL", {"target": "http://u:p@127.0.0.1/x"}, "target"),
    ("private address", {"target": "http://10.0.0.5/hook"}, "target"),
    ("cloud metadata address", {"target": "http://169.254.169.254/latest/meta-data"}, "target"),
    ("IPv6 loopback", {"target": "http://[::1]:8080/hook"}, "target"),
    ("bad e-mail address", {"kind": "email", "target": "ops-at-plant"}, "target"),
    ("unknown field", {"secret": "mine"}, "secret"),
]


class TestBadInput:
    async def test_bad_endpoints_are_refused_naming_the_field_and_nothing_is_stored(
        self, notify_api, admin, receiver, services
    ):
        # One test walks the whole table: each case costs a request, not a fresh database and account.
        for case, change, field in BAD_ENDPOINTS:
            body = {"kind": "webhook", "target": receiver.url(), "event_types": ["incident.created"], **change}
            reply = await notify_api.post(f"{BASE}/endpoints", json=body, headers=admin.headers)
            assert reply.status_code == 422, (case, reply.text)
            assert reply.json()["field"] == field, (case, reply.json())
        assert await count(services, "notify_endpoints") == 0

    async def test_loopback_is_refused_unless_the_allow_list_names_it(self, api, notify_api, admin, receiver):
        """The session's default settings have no allow-list; the notification test settings name 127.0.0.1."""
        for target in (receiver.url(), f"http://localhost:{receiver.port}/hook"):
            reply = await api.post(
                f"{BASE}/endpoints",
                headers=admin.headers,
                json={"kind": "webhook", "target": target, "event_types": ["incident.created"]},
            )
            assert reply.status_code == 422 and reply.json()["field"] == "target", reply.text
            assert "non-public" in reply.json()["detail"]
        await create_endpoint(notify_api, admin, target=receiver.url())

    async def test_production_refuses_plain_http(self, services, notify, admin, receiver):
        from backend.context import system_context
        from backend.errors import ValidationFailed
        from backend.notify.schemas import EndpointCreate
        from backend.notify.wiring import build_notify

        production = build_notify(
            notify.settings.model_copy(update={"environment": "production"}),
            pool=services.pool,
            clock=services.clock,
            registry=None,
        )
        with pytest.raises(ValidationFailed, match="https"):
            await production.create_endpoint(
                system_context("t"),
                EndpointCreate(kind="webhook", target=receiver.url(), event_types=["incident.created"]),
            )

    async def test_email_endpoints_need_an_smtp_server(self, api, admin):
        reply = await api.post(
            f"{BASE}/endpoints",
            headers=admin.headers,
            json={"kind": "email", "target": "ops@example.test", "event_types": ["incident.created"]},
        )
        assert reply.status_code == 422 and reply.json()["field"] == "kind"


class TestPingRotationRedelivery:
    async def test_ping_reaches_the_endpoint_signed_and_is_logged(self, notify_api, admin, receiver, start_worker):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        start_worker()
        reply = await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        assert reply.status_code == 202
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        request = receiver.delivered()[0]
        body = Webhook(endpoint["secret"]).verify(request.body, request.headers)
        assert body["type"] == "test.ping" and body["id"] == reply.json()["event_id"]
        assert request.headers["webhook-id"] == body["id"]

        async def logged():
            page = (
                await notify_api.get(f"{BASE}/attempts", params={"event_id": body["id"]}, headers=admin.headers)
            ).json()["items"]
            return page if page and page[0]["outcome"] == "delivered" else None

        attempt = (await wait_for(logged, timeout=20, interval=0.05))[0]
        assert attempt["status_code"] == 200 and attempt["response_excerpt"] == "ok"
        assert attempt["duration_ms"] >= 0 and attempt["endpoint_id"] == endpoint["id"]

    async def test_after_rotation_both_secrets_verify_until_the_grace_period_ends(
        self, notify_api, admin, receiver, start_worker
    ):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        old_secret = endpoint["secret"]
        rotated = await notify_api.post(
            f"{BASE}/endpoints/{endpoint['id']}/rotate-secret", json={"grace_seconds": 2}, headers=admin.headers
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != old_secret and rotated.json()["previous_secret_expires_at"]
        start_worker()
        await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        during = receiver.delivered()[0]
        Webhook(old_secret).verify(during.body, during.headers)
        Webhook(new_secret).verify(during.body, during.headers)
        await asyncio.sleep(2.1)
        await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        await receiver.wait_for(lambda r: len(r.delivered()) == 2)
        after = receiver.delivered()[1]
        Webhook(new_secret).verify(after.body, after.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old_secret).verify(after.body, after.headers)

    async def test_redelivery_sends_the_same_event_id_again(self, notify_api, admin, receiver, start_worker):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        start_worker()
        ping = (await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)).json()
        await receiver.wait_for(lambda r: len(r.delivered()) == 1)
        again = await notify_api.post(f"{BASE}/events/{ping['event_id']}/redeliver", headers=admin.headers)
        assert again.status_code == 202, again.text
        await receiver.wait_for(lambda r: len(r.delivered()) == 2)
        first, second = receiver.delivered()
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == ping["event_id"]
        Webhook(endpoint["secret"]).verify(second.body, second.headers)
        detail = (await notify_api.get(f"{BASE}/events/{ping['event_id']}", headers=admin.headers)).json()
        assert [d["manual"] for d in detail["deliveries"]] == [False, True]
        missing = await notify_api.post(f"{BASE}/events/evt_nope/redeliver", headers=admin.headers)
        assert missing.status_code == 404

    async def test_a_reporter_endpoint_takes_only_incident_events_and_cannot_be_pinged(
        self, notify_api, admin, services
    ):
        before = await count(services, "notify_endpoints")
        refused = await notify_api.post(
            f"{BASE}/endpoints",
            headers=admin.headers,
            json={
                "kind": "email",
                "target": "reporter",
                "event_types": ["incident.created", "notification.endpoint_disabled"],
            },
        )
        assert refused.status_code == 422 and refused.json()["field"] == "event_types"
        assert "notification.endpoint_disabled" in refused.json()["detail"]
        assert await count(services, "notify_endpoints") == before
        endpoint = await create_endpoint(notify_api, admin, kind="email", target=" REPORTER ")
        assert endpoint["target"] == "reporter"
        widened = await notify_api.patch(
            f"{BASE}/endpoints/{endpoint['id']}",
            headers=admin.headers,
            json={"event_types": ["notification.endpoint_disabled"]},
        )
        assert widened.status_code == 422 and widened.json()["field"] == "event_types"
        ping = await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        assert ping.status_code == 409 and "reporter" in ping.json()["detail"]

    async def test_ping_of_a_disabled_endpoint_is_a_conflict(self, notify_api, admin, receiver):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        await notify_api.post(
            f"{BASE}/endpoints/{endpoint['id']}/toggle", json={"enabled": False}, headers=admin.headers
        )
        reply = await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        assert reply.status_code == 409


class TestDeliveryLog:
    async def test_log_filters_by_endpoint_event_outcome_and_time(self, notify_api, admin, receiver, start_worker):
        good = await create_endpoint(notify_api, admin, target=receiver.url("/good"))
        bad = await create_endpoint(notify_api, admin, target=receiver.url("/bad"))
        receiver.answer_next(Answer(status=404, body=b"no such hook"))
        start_worker()
        before = datetime.now(timezone.utc) - timedelta(seconds=1)
        await notify_api.post(f"{BASE}/endpoints/{bad['id']}/test", headers=admin.headers)
        await receiver.wait_for(lambda r: len(r.requests) == 1)
        await notify_api.post(f"{BASE}/endpoints/{good['id']}/test", headers=admin.headers)
        await receiver.wait_for(lambda r: len(r.requests) == 2)

        async def attempts(**params):
            reply = await notify_api.get(f"{BASE}/attempts", params=params, headers=admin.headers)
            assert reply.status_code == 200, reply.text
            return reply.json()["items"]

        async def both_finished():
            rows = await attempts()
            return len(rows) == 2 and all(r["outcome"] != "in_flight" for r in rows)

        await wait_for(both_finished, timeout=20, interval=0.05)
        dead = await attempts(outcome="dead")
        assert [(a["endpoint_id"], a["status_code"], a["response_excerpt"]) for a in dead] == [
            (bad["id"], 404, "no such hook")
        ]
        assert [a["endpoint_id"] for a in await attempts(endpoint_id=good["id"])] == [good["id"]]
        assert len(await attempts(event_type="test.ping", since=before.isoformat())) == 2
        assert await attempts(until=before.isoformat()) == []
        deliveries = (
            await notify_api.get(f"{BASE}/deliveries", params={"status": "dead"}, headers=admin.headers)
        ).json()["items"]
        assert [d["endpoint_id"] for d in deliveries] == [bad["id"]] and deliveries[0]["attempts"] == 1
        bad_filter = await notify_api.get(f"{BASE}/attempts", params={"outcome": "maybe"}, headers=admin.headers)
        assert bad_filter.status_code == 422 and bad_filter.json()["field"] == "outcome.0"

    async def test_pages_follow_the_cursor(self, notify_api, admin, receiver):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        for _ in range(3):
            await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        first = (await notify_api.get(f"{BASE}/events", params={"limit": 2}, headers=admin.headers)).json()
        second = (
            await notify_api.get(
                f"{BASE}/events", params={"limit": 2, "cursor": first["next_cursor"]}, headers=admin.headers
            )
        ).json()
        assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
        assert len({e["id"] for e in first["items"] + second["items"]}) == 3

    async def test_retention_drops_old_finished_rows_but_keeps_pending_ones(
        self, notify, notify_api, admin, receiver, services
    ):
        endpoint = await create_endpoint(notify_api, admin, target=receiver.url())
        await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)
        await notify.delivery.deliver_due()
        await notify_api.post(f"{BASE}/endpoints/{endpoint['id']}/test", headers=admin.headers)  # stays pending
        async with services.pool.acquire() as conn:
            await conn.execute("UPDATE notify_events SET created_at = created_at - interval '40 days'")
            await conn.execute("UPDATE notify_deliveries SET finished_at = finished_at - interval '40 days'")
            await conn.execute("UPDATE notify_attempts SET started_at = started_at - interval '40 days'")
        removed = await notify.purge_old_log()
        assert removed == {"attempts": 1, "deliveries": 1, "events": 1}
        assert await count(services, "notify_deliveries") == 1 and await count(services, "notify_events") == 1
