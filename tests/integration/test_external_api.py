"""The external API as an MES would use it: report, follow the incident, search the knowledge base."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

REPORT = {
    "title": "Motor cinta línea 3 sobrecalentado",
    "description": "Alarma E-4021: el motor de la cinta transportadora de la línea 3 supera 90 °C tras 20 minutos.",
    "area": "production",
    "priority": "high",
    "external_ref": "MES-2026-00042",
    "tags": ["linea-3"],
}


class TestReport:
    async def test_report_is_stored_with_the_system_as_reporter_and_followed_by_id(self, api, make_api_key, services):
        key = await make_api_key(name="MES planta norte")
        created = await api.post("/api/v1/external/incidents", json=REPORT, headers=key.headers)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["reporter"] == "MES planta norte" and body["external_ref"] == "MES-2026-00042"
        assert body["status"] == "open" and body["suggestion"]["status"] == "pending" and body["similar"] == []
        async with services.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT reporter_id, reporter_name, source FROM incidents WHERE id = $1", body["id"]
            )
        assert dict(row) == {"reporter_id": None, "reporter_name": "MES planta norte", "source": "api"}
        followed = await api.get(f"/api/v1/external/incidents/{body['id']}", headers=key.headers)
        assert followed.status_code == 200 and followed.json()["title"] == REPORT["title"]
        assert (await api.get("/api/v1/external/incidents/999999", headers=key.headers)).status_code == 404

    @pytest.mark.parametrize(
        "change, field",
        [
            ({"title": None}, "title"),
            ({"description": "   "}, "description"),
            ({"area": "moon-base"}, "area"),
            ({"priority": "urgent"}, "priority"),
            ({"reporter": "someone"}, "reporter"),
            ({"tags": ["x" * 41]}, "tags"),
        ],
    )
    async def test_bad_reports_are_422_naming_the_field_and_store_nothing(
        self, api, make_api_key, services, change, field
    ):
        key = await make_api_key()
        body = {k: v for k, v in (REPORT | change).items() if v is not None}
        reply = await api.post("/api/v1/external/incidents", json=body, headers=key.headers)
        assert reply.status_code == 422 and reply.json()["field"].split(".")[0] == field
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM incidents") == 0


class TestSearch:
    async def test_search_finds_a_resolved_incident_and_honours_area_and_limit(self, api, make_api_key, make_account):
        key = await make_api_key()
        tech = await make_account("technician")
        incident = (await api.post("/api/v1/external/incidents", json=REPORT, headers=key.headers)).json()
        solution = "Se limpió el ventilador del motor y se cambió el rodamiento; la alarma E-4021 no volvió."
        assert (
            await api.post(
                f"/api/v1/incidents/{incident['id']}/resolve", json={"solution": solution}, headers=tech.headers
            )
        ).status_code == 200
        params = {"query": "motor de la cinta sobrecalentado alarma E-4021", "limit": 3}
        found = await api.get("/api/v1/external/knowledge/search", params=params, headers=key.headers)
        assert found.status_code == 200
        results = found.json()["results"]
        assert results and results[0]["incident_id"] == incident["id"] and results[0]["resolution"] == solution
        elsewhere = await api.get(
            "/api/v1/external/knowledge/search", params=params | {"area": "it"}, headers=key.headers
        )
        assert elsewhere.status_code == 200 and elsewhere.json()["results"] == []
        status = (await api.get(f"/api/v1/external/incidents/{incident['id']}", headers=key.headers)).json()
        assert status["status"] == "resolved" and status["resolution"] == solution

    @pytest.mark.parametrize(
        "params, field",
        [
            ({"query": ""}, "query"),
            ({"query": "x", "limit": 0}, "limit"),
            ({"query": "x", "limit": 51}, "limit"),
            ({"query": "x", "area": "moon-base"}, "area"),
            ({}, "query"),
        ],
    )
    async def test_bad_search_parameters_are_422_naming_them(self, api, make_api_key, params, field):
        key = await make_api_key()
        reply = await api.get("/api/v1/external/knowledge/search", params=params, headers=key.headers)
        assert reply.status_code == 422 and reply.json()["field"] == field
