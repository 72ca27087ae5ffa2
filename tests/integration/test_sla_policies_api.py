"""SLA policy and escalation-rule administration through the HTTP API: roles, validation, audit."""

from __future__ import annotations

import pytest

from tests.fixtures.sla import MADRID_OFFICE

pytestmark = pytest.mark.asyncio

POLICY = {
    "name": "Critical production",
    "priorities": ["critical"],
    "areas": ["production"],
    "first_response_minutes": 15,
    "resolution_minutes": 240,
    "calendar": MADRID_OFFICE,
    "pause_statuses": ["waiting"],
    "warning_thresholds": [90, 75],
}
RULE = {
    "name": "Breach to L2",
    "conditions": [
        {"type": "sla_breached", "clock": "resolution"},
        {"type": "priority_is", "priorities": ["critical"]},
    ],
    "level": 2,
    "target_department": "maintenance-l2",
}


class TestPolicies:
    async def test_supervisor_creates_reads_changes_and_deletes_a_policy(self, sla):
        boss = await sla.user("supervisor", login=True)
        created = await sla.client.post("/api/v1/sla/policies", json=POLICY, headers=boss.headers)
        assert created.status_code == 201, created.text
        policy = created.json()
        assert policy["warning_thresholds"] == [75, 90]
        assert policy["calendar"]["hours"]["mon"] == [["09:00", "14:00"], ["15:00", "18:00"]]
        changed = await sla.client.patch(
            f"/api/v1/sla/policies/{policy['id']}",
            headers=boss.headers,
            json={"resolution_minutes": 300, "calendar": None},
        )
        assert changed.status_code == 200 and changed.json()["calendar"] is None
        listed = await sla.client.get("/api/v1/sla/policies", headers=boss.headers)
        assert [p["resolution_minutes"] for p in listed.json()] == [300]
        deleted = await sla.client.delete(f"/api/v1/sla/policies/{policy['id']}", headers=boss.headers)
        assert deleted.status_code == 204
        assert await sla.count("SELECT count(*) FROM sla_policies") == 0
        actions = await sla.count("SELECT count(*) FROM audit_log WHERE resource_type = 'sla_policy'")
        assert actions == 3

    async def test_a_policy_that_measured_incidents_cannot_be_deleted_only_deactivated(self, sla):
        boss = await sla.user("supervisor", login=True)
        policy = (await sla.client.post("/api/v1/sla/policies", json=POLICY, headers=boss.headers)).json()
        await sla.incident(priority="critical")
        reply = await sla.client.delete(f"/api/v1/sla/policies/{policy['id']}", headers=boss.headers)
        assert reply.status_code == 409
        reply = await sla.client.patch(
            f"/api/v1/sla/policies/{policy['id']}", headers=boss.headers, json={"is_active": False}
        )
        assert reply.status_code == 200
        later = await sla.incident(priority="critical")
        assert (await sla.sla_of(later["id"]))["policy"] is None

    async def test_technicians_read_but_do_not_write(self, sla):
        tech = await sla.user("technician", login=True)
        assert (await sla.client.get("/api/v1/sla/policies", headers=tech.headers)).status_code == 200
        reply = await sla.client.post("/api/v1/sla/policies", json=POLICY, headers=tech.headers)
        assert reply.status_code == 403
        reporter = await sla.user("reporter", login=True)
        assert (await sla.client.get("/api/v1/sla/policies", headers=reporter.headers)).status_code == 403

    BAD = [
        ({"name": "  "}, "name"),
        ({"first_response_minutes": 0}, "first_response_minutes"),
        ({"first_response_minutes": 300, "resolution_minutes": 60}, "first_response_minutes"),
        ({"priorities": ["urgent"]}, "priorities.0"),
        ({"areas": ["moon-base"]}, "areas"),
        ({"pause_statuses": ["resolved"]}, "pause_statuses.0"),
        ({"warning_thresholds": [100]}, "warning_thresholds.0"),
        ({"warning_thresholds": [75, 75]}, "warning_thresholds"),
        ({"calendar": {"timezone": "Mars/Base", "hours": {"mon": [["09:00", "17:00"]]}}}, "calendar.timezone"),
        ({"calendar": {"timezone": "UTC", "hours": {"mon": [["17:00", "09:00"]]}}}, "calendar"),
        ({"calendar": {"timezone": "UTC", "hours": {"funday": [["09:00", "17:00"]]}}}, "calendar.hours.funday.[key]"),
        ({"calendar": {"timezone": "UTC", "hours": {}}}, "calendar"),
        ({"surprise": 1}, "surprise"),
    ]

    async def test_bad_policies_are_refused_naming_the_field_and_nothing_is_stored(self, sla):
        boss = await sla.user("supervisor", login=True)
        for change, field in self.BAD:
            reply = await sla.client.post("/api/v1/sla/policies", json=POLICY | change, headers=boss.headers)
            assert reply.status_code == 422, (change, reply.text)
            assert reply.json()["field"] == field, (change, reply.text)
        assert await sla.count("SELECT count(*) FROM sla_policies") == 0

    async def test_duplicate_names_conflict(self, sla):
        boss = await sla.user("supervisor", login=True)
        assert (await sla.client.post("/api/v1/sla/policies", json=POLICY, headers=boss.headers)).status_code == 201
        again = await sla.client.post(
            "/api/v1/sla/policies", json=POLICY | {"name": "critical PRODUCTION"}, headers=boss.headers
        )
        assert again.status_code == 409 and again.json()["field"] == "name"


class TestRules:
    async def test_rule_lifecycle(self, sla):
        boss = await sla.user("supervisor", login=True)
        created = await sla.client.post("/api/v1/sla/escalation-rules", json=RULE, headers=boss.headers)
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["conditions"][0] == {"type": "sla_breached", "clock": "resolution"}
        changed = await sla.client.patch(
            f"/api/v1/sla/escalation-rules/{rule['id']}", headers=boss.headers, json={"level": 3, "combine": "any"}
        )
        assert changed.json()["level"] == 3 and changed.json()["combine"] == "any"
        fetched = await sla.client.get(f"/api/v1/sla/escalation-rules/{rule['id']}", headers=boss.headers)
        assert fetched.json()["level"] == 3
        deleted = await sla.client.delete(f"/api/v1/sla/escalation-rules/{rule['id']}", headers=boss.headers)
        assert deleted.status_code == 204
        missing = await sla.client.get(f"/api/v1/sla/escalation-rules/{rule['id']}", headers=boss.headers)
        assert missing.status_code == 404

    BAD = [
        ({"conditions": []}, "conditions"),
        ({"conditions": [{"type": "moon_phase"}]}, "conditions.0"),
        ({"conditions": [{"type": "duration_exceeds", "minutes": 0}]}, "conditions.0.duration_exceeds.minutes"),
        ({"conditions": [{"type": "reopened_times"}]}, "conditions.0.reopened_times.times"),
        ({"level": 0}, "level"),
        ({"level": 4}, "level"),
        ({"combine": "xor"}, "combine"),
        ({"reassign_to": 999999}, "reassign_to"),
    ]

    async def test_bad_rules_are_refused_naming_the_field(self, sla):
        boss = await sla.user("supervisor", login=True)
        reporter = await sla.user("reporter")
        for change, field in self.BAD + [({"reassign_to": reporter.id}, "reassign_to")]:
            reply = await sla.client.post("/api/v1/sla/escalation-rules", json=RULE | change, headers=boss.headers)
            assert reply.status_code == 422, (change, reply.text)
            assert reply.json()["field"] == field, (change, reply.text)
        assert await sla.count("SELECT count(*) FROM escalation_rules") == 0
