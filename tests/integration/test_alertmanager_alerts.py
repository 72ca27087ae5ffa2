"""Alertmanager's webhook (payload version 4) turned into incidents on the real app and database."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from backend.alerting.service import AlertService
from tests.fixtures.security import app_with, client_for, settings_with

URL = "/api/v1/external/alerts/alertmanager"


def alert(
    fingerprint: str,
    *,
    status: str = "firing",
    name: str = "LLMNodeDown",
    severity: str = "critical",
    summary: str = "LLM node http://gpu-1:11434 does not answer",
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager sends it."""
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "instance": "gpu-1:11434"} | labels,
        "annotations": {
            "summary": summary,
            "description": "No health check succeeded for 2 minutes.",
            "runbook_url": "https://runbooks.example/llm",
        },
        "startsAt": "2026-12-02T10:00:00.000Z",
        "endsAt": "2026-12-02T10:07:30.000Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=prs_llm_node_up",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    """A webhook body of version 4 carrying `alerts`."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="LLMNodeDown"}',
        "truncatedAlerts": 0,
        "status": status or alerts[0]["status"],
        "receiver": "pr-system",
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


async def count_incidents(services) -> int:
    async with services.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM incidents")


async def test_firing_alert_creates_an_incident_with_title_area_priority_and_labels(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    reply = await api.post(
        URL, json=notification(alert("a1b2c3d4e5f60718")), headers={"Authorization": f"Bearer {key.key}"}
    )
    assert reply.status_code == 200, reply.text
    outcome = reply.json()["alerts"][0]
    assert outcome["action"] == "created"
    incident = await services.incidents.get(outcome["incident_id"])
    assert incident["title"] == "LLMNodeDown: LLM node http://gpu-1:11434 does not answer"
    assert incident["priority"] == "critical" and incident["area"] == "it"
    assert "- instance=gpu-1:11434" in incident["description"]
    assert "runbook_url: https://runbooks.example/llm" in incident["description"]
    assert incident["external_ref"] == "alertmanager:a1b2c3d4e5f60718"
    linked = await api.get(f"{URL}/incidents/{outcome['incident_id']}", headers=key.headers)
    assert linked.status_code == 403  # reading the link needs `read`
    reader = await make_api_key(permissions=["read"])
    linked = (await api.get(f"{URL}/incidents/{outcome['incident_id']}", headers=reader.headers)).json()
    assert linked["labels"]["severity"] == "critical" and linked["annotations"]["summary"].startswith("LLM node")
    async with services.pool.acquire() as conn:
        jobs = await conn.fetchval("SELECT count(*) FROM suggestions WHERE incident_id = $1", outcome["incident_id"])
    assert jobs == 1  # the usual suggestion flow applies


async def test_repeated_notification_creates_no_second_incident(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    body = notification(alert("fp-repeat"))
    first = (await api.post(URL, json=body, headers=key.headers)).json()["alerts"][0]
    second = (await api.post(URL, json=body, headers=key.headers)).json()["alerts"][0]
    assert (first["action"], second["action"]) == ("created", "duplicate")
    assert second["incident_id"] == first["incident_id"]
    assert await count_incidents(services) == 1


async def test_concurrent_duplicate_deliveries_create_one_incident(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    body = notification(alert("fp-race"))
    replies = await asyncio.gather(*(api.post(URL, json=body, headers=key.headers) for _ in range(4)))
    actions = sorted(r.json()["alerts"][0]["action"] for r in replies)
    assert actions == ["created", "duplicate", "duplicate", "duplicate"]
    assert await count_incidents(services) == 1


async def test_a_group_makes_one_incident_per_fingerprint(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    body = notification(alert("fp-g1", instance="a:1"), alert("fp-g2", instance="b:1"), alert("fp-g1", instance="a:1"))
    outcomes = (await api.post(URL, json=body, headers=key.headers)).json()["alerts"]
    assert [o["action"] for o in outcomes] == ["created", "created", "duplicate"]
    assert outcomes[0]["incident_id"] == outcomes[2]["incident_id"] != outcomes[1]["incident_id"]
    assert await count_incidents(services) == 2


async def test_resolved_alert_adds_a_comment_and_leaves_the_incident_open_by_default(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    created = (await api.post(URL, json=notification(alert("fp-res")), headers=key.headers)).json()["alerts"][0]
    resolved = await api.post(URL, json=notification(alert("fp-res", status="resolved")), headers=key.headers)
    assert resolved.json()["alerts"][0] == {
        "fingerprint": "fp-res",
        "status": "resolved",
        "action": "resolved",
        "incident_id": created["incident_id"],
    }
    again = await api.post(URL, json=notification(alert("fp-res", status="resolved")), headers=key.headers)
    assert again.json()["alerts"][0]["action"] == "duplicate"
    comments = await services.incidents.comments(created["incident_id"])
    assert [c["body"] for c in comments] == ["Alertmanager: resolved 2026-12-02T10:07:30Z"]
    assert comments[0]["author"]["name"] == "system-1"  # the key that sent it
    assert (await services.incidents.get(created["incident_id"]))["status"] == "open"


async def test_resolved_alert_resolves_the_incident_when_configured(services, make_api_key, api):
    settings = settings_with(services, alertmanager_resolve_incidents=True)
    alerts = AlertService(
        settings=settings,
        pool=services.pool,
        clock=services.clock,
        incidents=services.incidents,
        metrics=services.metrics,
    )
    key = await make_api_key(permissions=["write"])
    async with client_for(app_with(services, settings, alerts=alerts)) as client:
        created = (await client.post(URL, json=notification(alert("fp-auto")), headers=key.headers)).json()
        await client.post(URL, json=notification(alert("fp-auto", status="resolved")), headers=key.headers)
    incident_id = created["alerts"][0]["incident_id"]
    incident = await services.incidents.get(incident_id)
    assert incident["status"] == "resolved"
    assert "resolved at 2026-12-02T10:07:30Z" in incident["resolution"]
    # A new firing of the same fingerprint after the incident was resolved opens a new incident.
    async with client_for(app_with(services, settings, alerts=alerts)) as client:
        refired = (await client.post(URL, json=notification(alert("fp-auto")), headers=key.headers)).json()
    assert refired["alerts"][0]["action"] == "created" and refired["alerts"][0]["incident_id"] != incident_id


async def test_area_and_priority_follow_configured_rules_then_labels(services, make_api_key):
    settings = settings_with(
        services,
        alertmanager_rules=[
            {"match": {"alertname": "ConveyorStopped"}, "area": "production", "priority": "high"},
            {"match": {"team": "nowhere"}, "area": "no-such-area"},
        ],
    )
    alerts = AlertService(
        settings=settings,
        pool=services.pool,
        clock=services.clock,
        incidents=services.incidents,
        metrics=services.metrics,
    )
    key = await make_api_key(permissions=["write"])
    body = notification(
        alert("fp-rule", name="ConveyorStopped", severity="warning"),
        alert("fp-label", name="DiskFull", severity="warning", area="facilities"),
        alert("fp-unknown", name="Other", severity="whatever", team="nowhere"),
    )
    async with client_for(app_with(services, settings, alerts=alerts)) as client:
        outcomes = (await client.post(URL, json=body, headers=key.headers)).json()["alerts"]
    placed = [await services.incidents.get(o["incident_id"]) for o in outcomes]
    assert [(i["area"], i["priority"]) for i in placed] == [
        ("production", "high"),
        ("facilities", "medium"),
        ("it", "medium"),
    ]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(version="3"), "version"),
        (lambda b: b.update(alerts=[]), "alerts"),
        (lambda b: b["alerts"][0]["labels"].pop("alertname"), "alerts.0.labels"),
        (lambda b: b["alerts"][0].pop("fingerprint"), "alerts.0.fingerprint"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0]["labels"].update(instance=7), "alerts.0.labels.instance"),
        (lambda b: b["alerts"][1].update(generatorURL="http://p/\u0000"), "alerts.1.generatorURL"),
        (lambda b: b["alerts"][1]["annotations"].update(summary="\ud800"), "alerts.1.annotations"),
        (lambda b: b.update(externalURL="http://am/\u0000"), "externalURL"),
    ],
)
async def test_malformed_payload_gets_a_4xx_naming_the_field_and_creates_nothing(
    api, services, make_api_key, mutate, field
):
    key = await make_api_key(permissions=["write"])
    body = notification(alert("fp-ok"), alert("fp-bad"))
    mutate(body)
    # Sent as ASCII JSON: escapes such as \ud800 reach the server as they are.
    reply = await api.post(
        URL, content=json.dumps(body).encode(), headers=key.headers | {"Content-Type": "application/json"}
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["field"] == field
    assert await count_incidents(services) == 0


async def test_body_that_is_not_json_is_refused(api, make_api_key):
    key = await make_api_key(permissions=["write"])
    reply = await api.post(URL, content=b"{not json", headers=key.headers | {"Content-Type": "application/json"})
    assert reply.status_code == 400 and reply.json()["field"] == "body"


async def test_keys_without_write_and_missing_keys_are_refused(api, services, make_api_key):
    reader = await make_api_key(permissions=["read"])
    refused = await api.post(URL, json=notification(alert("fp-ro")), headers={"Authorization": f"Bearer {reader.key}"})
    assert refused.status_code == 403 and refused.json()["reason"] == "api_key_missing_permission"
    anonymous = await api.post(URL, json=notification(alert("fp-ro")))
    assert anonymous.status_code == 401
    wrong = await api.post(URL, json=notification(alert("fp-ro")), headers={"Authorization": "Bearer prs_live_nope"})
    assert wrong.status_code == 401
    assert await count_incidents(services) == 0


async def test_five_hundred_alerts_are_handled_in_one_request(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    body = notification(*(alert(f"fp-bulk-{i:04d}", instance=f"host-{i}:9100", name="NodeDown") for i in range(500)))
    started = time.perf_counter()
    reply = await api.post(URL, json=body, headers=key.headers)
    elapsed = time.perf_counter() - started
    assert reply.status_code == 200, reply.text[:500]
    assert reply.json()["created"] == 500
    assert await count_incidents(services) == 500
    assert elapsed < 60
    print(f"500 alerts -> 500 incidents in {elapsed:.1f}s")


@pytest.mark.parametrize(
    "overrides",
    [
        {"alertmanager_rules": [{"match": {}, "area": "it"}]},
        {"alertmanager_rules": [{"match": {"alertname": "X"}, "priority": "urgent"}]},
        {"alertmanager_rules": [{"match": {"alertname": "X"}, "team": "ops"}]},
        {"alertmanager_priorities": {"critical": "urgent"}},
    ],
)
def test_misconfigured_alert_mapping_is_refused_at_start_up(overrides):
    from pydantic import ValidationError

    from backend.config import Settings

    with pytest.raises(ValidationError):
        Settings(**overrides)


async def test_an_alert_firing_again_after_its_resolution_comments_on_the_still_open_incident(
    api, services, make_api_key
):
    key = await make_api_key(permissions=["write"])
    first = (await api.post(URL, json=notification(alert("fp-again")), headers=key.headers)).json()["alerts"][0]
    await api.post(URL, json=notification(alert("fp-again", status="resolved")), headers=key.headers)
    again = alert("fp-again")
    again["startsAt"] = "2026-12-02T11:00:00Z"
    refired = (await api.post(URL, json=notification(again), headers=key.headers)).json()["alerts"][0]
    assert (refired["action"], refired["incident_id"]) == ("refired", first["incident_id"])
    comments = [c["body"] for c in await services.incidents.comments(first["incident_id"])]
    assert comments == [
        "Alertmanager: resolved 2026-12-02T10:07:30Z",
        "Alertmanager: firing again since 2026-12-02T11:00:00Z",
    ]
    assert await count_incidents(services) == 1


async def test_concurrent_deliveries_of_many_alerts_do_not_exhaust_the_database_pool(api, services, make_api_key):
    key = await make_api_key(permissions=["write"])
    bodies = [notification(alert(f"fp-pool-{i}"), alert(f"fp-pool-{i + 100}")) for i in range(25)]
    replies = await asyncio.wait_for(
        asyncio.gather(*(api.post(URL, json=b, headers=key.headers) for b in bodies)), timeout=120
    )
    assert all(r.status_code == 200 for r in replies)
    assert await count_incidents(services) == 50
