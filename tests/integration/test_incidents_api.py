"""The incident flow through the HTTP API on the real Postgres."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

NEW = {
    "title": "Cinta línea 3 se para",
    "description": "El motor de la cinta transportadora de la línea 3 se "
    "sobrecalienta y salta la alarma E-4021 tras 20 minutos.",
    "area": "production",
    "priority": "high",
}


async def count_rows(services, table: str) -> int:
    async with services.pool.acquire() as conn:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")


async def create(api, headers, **overrides):
    reply = await api.post("/api/v1/incidents", json={**NEW, **overrides}, headers=headers)
    assert reply.status_code == 201, reply.text
    return reply.json()


class TestCreateIncident:
    async def test_resolved_incident_is_returned_as_similar_to_a_new_report(self, api, make_account):
        tech = await make_account("technician")
        first = await create(api, tech.headers)
        solution = "Se limpió el ventilador del motor y se cambió el rodamiento; la alarma E-4021 no volvió."
        reply = await api.post(
            f"/api/v1/incidents/{first['id']}/resolve", json={"solution": solution}, headers=tech.headers
        )
        assert reply.status_code == 200, reply.text
        second = await create(api, tech.headers, title="Motor cinta línea 3 caliente, alarma E-4021")
        assert second["similar"], "the resolved incident should be found"
        top = second["similar"][0]
        assert top["incident_id"] == first["id"]
        assert top["resolution"] == solution
        assert 0 < top["score"] <= 1
        assert second["suggestion_status"] == "pending"

    async def test_creation_writes_incident_audit_row_and_pending_suggestion_together(
        self, api, make_account, services
    ):
        reporter = await make_account("reporter")
        incident = await create(api, reporter.headers)
        async with services.pool.acquire() as conn:
            audit_row = await conn.fetchrow(
                "SELECT * FROM audit_log WHERE action = 'incident.created' AND resource_id = $1", str(incident["id"])
            )
            suggestion = await conn.fetchrow(
                "SELECT status, priority_rank, queued_at FROM suggestions WHERE incident_id = $1", incident["id"]
            )
        assert audit_row["actor_name"] == reporter.username
        assert audit_row["client_ip"] == "10.1.2.3"
        assert audit_row["request_id"]
        assert audit_row["after"]["title"] == NEW["title"]
        # In the generation queue (the suggestions table), ranked by the incident's priority.
        assert suggestion["status"] == "pending" and suggestion["queued_at"] is not None
        assert suggestion["priority_rank"] == {"low": 0, "medium": 1, "high": 2, "critical": 3}[NEW["priority"]]
        assert incident["reporter"] == {"id": reporter.id, "name": reporter.username}
        assert incident["status"] == "open"

    async def test_request_id_is_echoed_in_the_reply(self, api, make_account):
        reporter = await make_account("reporter")
        reply = await api.post("/api/v1/incidents", json=NEW, headers={**reporter.headers, "X-Request-ID": "abc-123"})
        assert reply.headers["x-request-id"] == "abc-123"


BAD_INPUTS = [
    ("empty title", {**NEW, "title": ""}, 422, "title"),
    ("blank title", {**NEW, "title": "   "}, 422, "title"),
    ("oversized title", {**NEW, "title": "x" * 201}, 422, "title"),
    ("empty description", {**NEW, "description": ""}, 422, "description"),
    ("oversized description", {**NEW, "description": "x" * 20_001}, 422, "description"),
    ("unknown area", {**NEW, "area": "moon-base"}, 422, "area"),
    ("unknown priority", {**NEW, "priority": "urgent"}, 422, "priority"),
    ("priority of wrong type", {**NEW, "priority": 5}, 422, "priority"),
    ("title of wrong type", {**NEW, "title": ["a"]}, 422, "title"),
    ("tags of wrong type", {**NEW, "tags": "a,b"}, 422, "tags"),
    ("missing description", {k: v for k, v in NEW.items() if k != "description"}, 422, "description"),
    ("unknown field", {**NEW, "status": "closed"}, 422, "status"),
]


class TestBadInput:
    @pytest.mark.parametrize("case, body, status, field", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
    async def test_bad_incident_is_refused_naming_the_field_and_nothing_is_stored(
        self, api, make_account, services, case, body, status, field
    ):
        reporter = await make_account("reporter")
        reply = await api.post("/api/v1/incidents", json=body, headers=reporter.headers)
        assert reply.status_code == status, reply.text
        assert reply.json()["field"] == field
        assert reply.json()["error"] == "ValidationFailed"
        assert await count_rows(services, "incidents") == 0
        assert await count_rows(services, "suggestions") == 0

    async def test_malformed_json_is_a_400_naming_the_body(self, api, make_account, services):
        reporter = await make_account("reporter")
        reply = await api.post(
            "/api/v1/incidents",
            content=b'{"title": "x", ',
            headers={**reporter.headers, "Content-Type": "application/json"},
        )
        assert reply.status_code == 400
        assert reply.json() == {"error": "BadRequest", "detail": "request body is not valid JSON", "field": "body"}
        assert await count_rows(services, "incidents") == 0

    async def test_unknown_incident_is_a_404_json_error(self, api, make_account):
        tech = await make_account("technician")
        reply = await api.get("/api/v1/incidents/999999", headers=tech.headers)
        assert reply.status_code == 404
        assert reply.json()["error"] == "NotFound"


class TestStatusMachine:
    async def test_incident_walks_the_legal_path_to_closed_and_reopens(self, api, make_account):
        tech = await make_account("technician")
        incident = await create(api, tech.headers)
        path = f"/api/v1/incidents/{incident['id']}"
        for target in ("in_progress", "waiting", "in_progress"):
            reply = await api.post(f"{path}/status", json={"status": target}, headers=tech.headers)
            assert reply.status_code == 200, reply.text
            assert reply.json()["status"] == target
        reply = await api.post(f"{path}/resolve", json={"solution": "Cambio de rodamiento."}, headers=tech.headers)
        assert reply.json()["status"] == "resolved" and reply.json()["resolved_at"]
        reply = await api.post(f"{path}/status", json={"status": "closed"}, headers=tech.headers)
        assert reply.json()["status"] == "closed" and reply.json()["closed_at"]
        reply = await api.post(f"{path}/reopen", json={"reason": "Volvió a fallar"}, headers=tech.headers)
        body = reply.json()
        assert body["status"] == "open" and body["reopened_count"] == 1
        assert body["resolved_at"] is None and body["closed_at"] is None

    @pytest.mark.parametrize(
        "steps, target",
        [
            ([], "closed"),
            (["in_progress"], "closed"),
            ([], "open"),
            (["resolved"], "waiting"),
            (["resolved", "closed"], "in_progress"),
        ],
    )
    async def test_illegal_transition_is_409_naming_both_states(self, api, make_account, services, steps, target):
        tech = await make_account("technician")
        incident = await create(api, tech.headers)
        path = f"/api/v1/incidents/{incident['id']}"
        for step in steps:
            body = {"status": step, "solution": "Hecho."} if step == "resolved" else {"status": step}
            assert (await api.post(f"{path}/status", json=body, headers=tech.headers)).status_code == 200
        current = (await api.get(path, headers=tech.headers)).json()["status"]
        audit_before = await count_rows(services, "audit_log")
        reply = await api.post(f"{path}/status", json={"status": target}, headers=tech.headers)
        assert reply.status_code == 409
        body = reply.json()
        assert body["from_status"] == current and body["to_status"] == target
        assert current in body["detail"] and target in body["detail"]
        assert (await api.get(path, headers=tech.headers)).json()["status"] == current
        assert await count_rows(services, "audit_log") == audit_before

    async def test_resolving_without_a_solution_names_the_solution_field(self, api, make_account):
        tech = await make_account("technician")
        incident = await create(api, tech.headers)
        reply = await api.post(
            f"/api/v1/incidents/{incident['id']}/status", json={"status": "resolved"}, headers=tech.headers
        )
        assert reply.status_code == 422 and reply.json()["field"] == "solution"
        reply = await api.post(
            f"/api/v1/incidents/{incident['id']}/resolve", json={"solution": "  "}, headers=tech.headers
        )
        assert reply.status_code == 422 and reply.json()["field"] == "solution"

    async def test_every_change_leaves_an_audit_row_with_before_and_after(self, api, make_account, services):
        tech = await make_account("technician")
        incident = await create(api, tech.headers)
        path = f"/api/v1/incidents/{incident['id']}"
        await api.patch(path, json={"priority": "critical"}, headers=tech.headers)
        await api.post(f"{path}/assign", json={"assignee_id": tech.id}, headers=tech.headers)
        await api.post(f"{path}/comments", json={"body": "Revisando el motor"}, headers=tech.headers)
        await api.post(f"{path}/status", json={"status": "in_progress"}, headers=tech.headers)
        history = (await api.get(f"{path}/history", headers=tech.headers)).json()
        actions = [h["action"] for h in history]
        assert actions == [
            "incident.created",
            "incident.updated",
            "incident.assigned",
            "incident.commented",
            "incident.status_changed",
        ]
        update = history[1]
        assert update["before"]["priority"] == "high" and update["after"]["priority"] == "critical"
        assert history[2]["after"] == {"assignee_id": tech.id}


class TestWorkingAnIncident:
    async def test_assigning_to_a_reporter_is_refused_naming_assignee_id(self, api, make_account):
        tech = await make_account("technician")
        reporter = await make_account("reporter")
        incident = await create(api, tech.headers)
        reply = await api.post(
            f"/api/v1/incidents/{incident['id']}/assign", json={"assignee_id": reporter.id}, headers=tech.headers
        )
        assert reply.status_code == 422 and reply.json()["field"] == "assignee_id"

    async def test_assignment_shows_the_assignee(self, api, make_account):
        tech = await make_account("technician")
        incident = await create(api, tech.headers)
        reply = await api.post(
            f"/api/v1/incidents/{incident['id']}/assign", json={"assignee_id": tech.id}, headers=tech.headers
        )
        assert reply.json()["assignee"] == {"id": tech.id, "name": tech.username}

    async def test_reporter_may_comment_only_on_own_incidents(self, api, make_account):
        alice = await make_account("reporter")
        bob = await make_account("reporter")
        incident = await create(api, alice.headers)
        path = f"/api/v1/incidents/{incident['id']}/comments"
        assert (await api.post(path, json={"body": "Sigue igual"}, headers=alice.headers)).status_code == 201
        assert (await api.post(path, json={"body": "Hola"}, headers=bob.headers)).status_code == 403
        comments = (await api.get(path, headers=alice.headers)).json()
        assert [c["body"] for c in comments] == ["Sigue igual"]

    async def test_update_cannot_null_a_required_field(self, api, make_account):
        tech = await make_account("technician")
        incident = await create(api, tech.headers)
        reply = await api.patch(f"/api/v1/incidents/{incident['id']}", json={"title": None}, headers=tech.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "title"


class TestListing:
    async def test_filters_combine_and_cursor_pages_cover_everything_once(self, api, make_account):
        tech = await make_account("technician")
        made = []
        for i in range(7):
            incident = await create(
                api,
                tech.headers,
                title=f"Fallo {i} compresor",
                area="maintenance" if i % 2 else "production",
                priority="low" if i < 3 else "high",
            )
            made.append(incident["id"])
        seen, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await api.get("/api/v1/incidents", params=params, headers=tech.headers)).json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == sorted(made, reverse=True)
        page = (
            await api.get("/api/v1/incidents", params={"area": "maintenance", "priority": "high"}, headers=tech.headers)
        ).json()
        assert {i["id"] for i in page["items"]} == {made[3], made[5]}
        page = (await api.get("/api/v1/incidents", params={"text": "Fallo 4"}, headers=tech.headers)).json()
        assert [i["id"] for i in page["items"]] == [made[4]]
        page = (await api.get("/api/v1/incidents", params={"status": ["resolved"]}, headers=tech.headers)).json()
        assert page["items"] == []

    async def test_bad_cursor_and_bad_filters_are_400_or_422_naming_the_field(self, api, make_account):
        tech = await make_account("technician")
        reply = await api.get("/api/v1/incidents", params={"cursor": "not-a-cursor"}, headers=tech.headers)
        assert reply.status_code == 400 and reply.json()["field"] == "cursor"
        reply = await api.get("/api/v1/incidents", params={"status": "lost"}, headers=tech.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "status.0"
        reply = await api.get("/api/v1/incidents", params={"limit": 1000}, headers=tech.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "limit"
        reply = await api.get("/api/v1/incidents", params={"created_from": "yesterday"}, headers=tech.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "created_from"
