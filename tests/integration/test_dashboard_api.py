"""The endpoints behind the web pages' dashboard and live updates: open-incident counts, escalations and ratings,
recurring problems, the business-time due-date preview, and the live incident stream of a real `prs serve`."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.fixtures.app import PASSWORD

INCIDENT = {
    "description": "Reported from the floor; details in the comments.",
    "area": "production",
    "priority": "medium",
}


async def create_incident(api, account, title: str, **fields) -> dict:
    reply = await api.post("/api/v1/incidents", headers=account.headers, json={**INCIDENT, "title": title, **fields})
    assert reply.status_code == 201, reply.text
    return reply.json()


async def test_overview_counts_open_incidents_escalations_and_ratings(api, make_account, services):
    supervisor = await make_account("supervisor")
    tech = await make_account("technician")
    first = await create_incident(api, tech, "Press 2 leaks oil", priority="high")
    second = await create_incident(api, tech, "Scanner at gate 1 offline", area="logistics")
    third = await create_incident(api, tech, "Label printer jams", priority="high")
    await api.post(f"/api/v1/incidents/{second['id']}/status", headers=tech.headers, json={"status": "in_progress"})
    await api.post(
        f"/api/v1/incidents/{third['id']}/resolve",
        headers=tech.headers,
        json={"solution": "Cleaned the rollers and replaced the worn guide."},
    )
    reply = await api.post(
        f"/api/v1/incidents/{first['id']}/escalations",
        headers=tech.headers,
        json={"level": 2, "reason": "Oil on the floor, line stopped"},
    )
    assert reply.status_code == 201, reply.text
    async with services.pool.acquire() as conn:
        await conn.execute(
            "UPDATE suggestions SET status = 'ready', text = 'Check the seals.' WHERE incident_id = ANY($1)",
            [first["id"], second["id"]],
        )
    for incident, verdict, stars in ((first, "accepted", 5), (second, "rejected", 2)):
        assert (
            await api.post(
                f"/api/v1/incidents/{incident['id']}/suggestion/feedback",
                headers=tech.headers,
                json={"decision": verdict},
            )
        ).status_code == 200
        assert (
            await api.post(
                f"/api/v1/incidents/{incident['id']}/suggestion/rating", headers=tech.headers, json={"rating": stars}
            )
        ).status_code == 200

    reply = await api.get("/api/v1/sla/metrics/overview", headers=supervisor.headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["open_incidents"]["total"] == 2
    assert {r["status"]: r["incidents"] for r in body["open_incidents"]["by_status"]} == {"open": 1, "in_progress": 1}
    assert {r["priority"]: r["incidents"] for r in body["open_incidents"]["by_priority"]} == {"high": 1, "medium": 1}
    assert {r["area"]: r["incidents"] for r in body["open_incidents"]["by_area"]} == {"production": 1, "logistics": 1}
    assert body["escalations"] == {
        "total": 1,
        "by_level": [{"level": 2, "escalations": 1}],
        "by_trigger": [{"trigger": "manual", "escalations": 1}],
    }
    assert body["suggestions"]["accepted"] == 1 and body["suggestions"]["rejected"] == 1
    assert {r["rating"]: r["suggestions"] for r in body["suggestions"]["ratings"]} == {1: 0, 2: 1, 3: 0, 4: 0, 5: 1}
    # The quality report counts the same incidents' ratings.
    quality = (await api.get("/api/v1/sla/metrics/quality", headers=supervisor.headers)).json()["overall"]
    assert quality["rated"] == 2 and quality["suggestions_accepted"] == 1


async def test_the_dashboard_reports_need_a_supervisor_and_a_usable_period(api, make_account):
    tech = await make_account("technician")
    supervisor = await make_account("supervisor")
    for path in ("/api/v1/sla/metrics/overview", "/api/v1/sla/metrics/recurring"):
        assert (await api.get(path, headers=tech.headers)).status_code == 403
        reply = await api.get(
            path,
            headers=supervisor.headers,
            params={"date_from": "2026-02-01T00:00:00Z", "date_to": "2026-01-01T00:00:00Z"},
        )
        assert reply.status_code == 422 and reply.json()["field"] == "date_from"


async def test_recurring_problems_group_incidents_that_mean_the_same(api, make_account):
    supervisor = await make_account("supervisor")
    tech = await make_account("technician")
    for title in (
        "Conveyor belt 3 stopped, motor overheated",
        "Belt conveyor 3 halted: the motor is overheating",
        "Conveyor 3 motor overheated and the belt stopped",
    ):
        await create_incident(
            api,
            tech,
            title,
            description="The drive motor of conveyor belt 3 is too hot and the thermal relay stopped the belt.",
        )
    await create_incident(
        api,
        tech,
        "Password reset for the ERP terminal",
        area="it",
        description="The shift lead cannot log in to the ERP terminal in the warehouse office.",
    )
    await create_incident(
        api,
        tech,
        "Forklift battery does not charge",
        area="logistics",
        description="Forklift 7 shows a charging error on the charger in bay 2.",
    )

    reply = await api.get("/api/v1/sla/metrics/recurring", headers=supervisor.headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["scanned"] == 5
    assert len(body["problems"]) == 1
    problem = body["problems"][0]
    assert problem["incidents"] == 3 and problem["open"] == 3
    assert "onveyor" in problem["label"]
    assert problem["areas"] == [{"area": "production", "incidents": 3}]


async def test_due_date_preview_skips_nights_weekends_and_holidays(api, make_account):
    tech = await make_account("technician")
    calendar = {
        "timezone": "Europe/Madrid",
        "hours": {d: [["08:00", "16:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-12-07"],
    }
    # Friday 4 Dec 2026 15:00 Madrid + 120 business minutes: 60 on Friday, Monday 7 is a holiday -> Tue 09:00.
    reply = await api.post(
        "/api/v1/sla/preview",
        headers=tech.headers,
        json={"calendar": calendar, "start": "2026-12-04T15:00:00+01:00", "minutes": 120},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["due_local"] == "2026-12-08T09:00:00+01:00"
    assert body["timezone"] == "Europe/Madrid"
    assert body["wall_minutes"] == (3 * 24 + 18) * 60
    around_the_clock = (
        await api.post(
            "/api/v1/sla/preview",
            headers=tech.headers,
            json={"calendar": None, "start": "2026-12-04T15:00:00+01:00", "minutes": 120},
        )
    ).json()
    assert around_the_clock["due_at"].startswith("2026-12-04T16:00:00")


async def test_due_date_preview_names_the_field_it_refuses(api, make_account):
    tech = await make_account("technician")
    reply = await api.post(
        "/api/v1/sla/preview", headers=tech.headers, json={"start": "2026-12-04T15:00:00", "minutes": 60}
    )
    assert reply.status_code == 422 and reply.json()["field"].startswith("start")
    reply = await api.post(
        "/api/v1/sla/preview",
        headers=tech.headers,
        json={
            "calendar": {"timezone": "Mars/Olympus", "hours": {"mon": [["08:00", "16:00"]]}},
            "start": "2026-12-04T15:00:00Z",
            "minutes": 60,
        },
    )
    assert reply.status_code == 422 and reply.json()["field"].startswith("calendar")


async def read_events(response: httpx.Response, into: list, until: int) -> None:
    """Collect (event, data) pairs from an SSE response until `until` have come."""
    name = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            into.append((name, json.loads(line[6:])))
            if len(into) >= until:
                return


async def server_headers(client: httpx.AsyncClient, account) -> dict[str, str]:
    """Log in to the server process itself (it learns signing keys made by this process only after a while)."""
    reply = await client.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def test_live_stream_carries_committed_changes_to_those_who_may_see_them(web_server, api, make_account):
    tech = await make_account("technician")
    reporter = await make_account("reporter")
    other_reporter = await make_account("reporter")
    seen: dict[str, list] = {"tech": [], "reporter": [], "other": []}
    async with httpx.AsyncClient(base_url=web_server.url, timeout=30) as client:
        tech_headers, reporter_headers, other_headers = [
            await server_headers(client, account) for account in (tech, reporter, other_reporter)
        ]
        async with (
            client.stream("GET", "/api/v1/live/incidents", headers=tech_headers) as tech_stream,
            client.stream("GET", "/api/v1/live/incidents", headers=reporter_headers) as reporter_stream,
            client.stream("GET", "/api/v1/live/incidents", headers=other_headers) as other_stream,
        ):
            assert tech_stream.headers["content-type"].startswith("text/event-stream"), await tech_stream.aread()
            assert tech_stream.headers["x-accel-buffering"] == "no"
            readers = [
                asyncio.create_task(read_events(stream, seen[who], until))
                for stream, who, until in (
                    (tech_stream, "tech", 3),
                    (reporter_stream, "reporter", 3),
                    (other_stream, "other", 1),
                )
            ]
            await asyncio.sleep(0.5)
            mine = await create_incident(api, reporter, "Coffee machine in hall B leaks")
            await api.post(
                f"/api/v1/incidents/{mine['id']}/status", headers=tech.headers, json={"status": "in_progress"}
            )
            await asyncio.wait_for(asyncio.gather(*readers[:2]), timeout=10)
            await asyncio.sleep(0.5)
            readers[2].cancel()
    assert seen["tech"][0][0] == "ready"
    assert [(name, data["event"], data["incident_id"]) for name, data in seen["tech"][1:]] == [
        ("incident", "incident.created", mine["id"]),
        ("incident", "incident.status_changed", mine["id"]),
    ]
    assert seen["tech"][2][1]["status"] == "in_progress"
    assert [data["event"] for _, data in seen["reporter"][1:]] == ["incident.created", "incident.status_changed"]
    assert "reporter_id" not in seen["reporter"][1][1]
    # Another reporter only gets the stream's `ready`: the incident is not theirs.
    assert [name for name, _ in seen["other"]] == ["ready"]


async def test_live_stream_needs_a_signed_in_caller(web_server):
    async with httpx.AsyncClient(base_url=web_server.url, timeout=10) as client:
        reply = await client.get("/api/v1/live/incidents")
    assert reply.status_code == 401


async def test_due_date_preview_at_the_end_of_time_is_refused_not_an_error(api, make_account):
    tech = await make_account("technician")
    reply = await api.post(
        "/api/v1/sla/preview",
        headers=tech.headers,
        json={"calendar": None, "start": "9999-12-31T23:00:00Z", "minutes": 120},
    )
    assert reply.status_code == 422 and reply.json()["field"] == "start"
