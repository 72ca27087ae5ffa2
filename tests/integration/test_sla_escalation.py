"""Sweeps and escalation rules on the real Postgres, one scenario per rule, with a moved clock."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.sla import MADRID_OFFICE, SLA_START, minutes

pytestmark = pytest.mark.asyncio
MADRID = ZoneInfo("Europe/Madrid")


async def escalations(sla, incident_id: int) -> list[dict]:
    return await sla.services.sla.escalations(incident_id)


async def levels(sla, incident_id: int) -> set[tuple[str, str, int]]:
    view = await sla.sla_of(incident_id)
    return {(e["clock"], e["kind"], e["threshold_percent"]) for e in view["events"]}


class TestDurationExceeds:
    async def test_business_minutes_since_creation_skip_the_weekend(self, sla):
        await sla.policy(calendar=MADRID_OFFICE, first_response_minutes=600, resolution_minutes=6000)
        await sla.rule(
            name="Stalled",
            level=1,
            target_department="maintenance-l1",
            conditions=[{"type": "duration_exceeds", "minutes": 60}],
        )
        sla.clock.set(datetime(2025, 6, 13, 17, 30, tzinfo=MADRID))  # Friday evening
        incident = await sla.incident()
        sla.clock.set(datetime(2025, 6, 14, 12, 0, tzinfo=MADRID))  # Saturday noon: 30 business minutes
        await sla.sweep()
        assert await escalations(sla, incident["id"]) == []
        sla.clock.set(datetime(2025, 6, 16, 9, 29, tzinfo=MADRID))
        await sla.sweep()
        assert await escalations(sla, incident["id"]) == []
        sla.clock.set(datetime(2025, 6, 16, 9, 31, tzinfo=MADRID))
        await sla.sweep()
        await sla.sweep()
        [escalation] = await escalations(sla, incident["id"])
        assert escalation["level"] == 1 and escalation["trigger"] == "rule"
        assert escalation["target_department"] == "maintenance-l1"
        assert "60" in escalation["reason"]
        view = await sla.sla_of(incident["id"])
        assert view["escalation_level"] == 1 and view["escalated_department"] == "maintenance-l1"
        [event] = sla.events.named("incident.escalated")
        assert event.resource_id == incident["id"] and event.details["level"] == 1
        assert event.details["target_department"] == "maintenance-l1"
        assert (
            await sla.count(
                "SELECT count(*) FROM notify_events WHERE type = 'incident.escalated' AND incident_id = $1",
                incident["id"],
            )
            == 1
        )

    async def test_minutes_in_a_named_status(self, sla):
        await sla.policy()
        await sla.rule(
            name="Waiting too long",
            level=2,
            conditions=[{"type": "duration_exceeds", "minutes": 120, "since": "status", "status": "waiting"}],
        )
        tech = await sla.user("technician")
        incident = await sla.incident()
        sla.advance(minutes=200)  # long in "open": does not count
        await sla.sweep()
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="waiting")
        sla.advance(minutes=119)
        await sla.sweep()
        assert await escalations(sla, incident["id"]) == []
        sla.advance(minutes=2)
        await sla.sweep()
        assert [e["level"] for e in await escalations(sla, incident["id"])] == [2]


class TestSlaLevels:
    async def test_warnings_then_breach_with_minutes_overdue_and_reassignment(self, sla):
        await sla.policy(first_response_minutes=60, resolution_minutes=60)
        supervisor = await sla.user("supervisor")
        await sla.rule(
            name="Breached",
            level=2,
            target_department="production-l2",
            reassign_to=supervisor.id,
            conditions=[{"type": "sla_breached", "clock": "resolution"}],
        )
        incident = await sla.incident()
        sla.advance(minutes=50)
        await sla.sweep()
        assert await levels(sla, incident["id"]) == {(c, "warning", 75) for c in ("first_response", "resolution")}
        sla.advance(minutes=10)  # exactly at the due time: not yet past it
        await sla.sweep()
        assert ("resolution", "breach", 100) not in await levels(sla, incident["id"])
        assert await escalations(sla, incident["id"]) == []
        sla.advance(minutes=7)
        await sla.sweep()
        view = await sla.sla_of(incident["id"])
        breach = next(e for e in view["events"] if e["clock"] == "resolution" and e["kind"] == "breach")
        assert breach["minutes_overdue"] == 7 and breach["occurred_at"] == SLA_START + minutes(60)
        [escalation] = await escalations(sla, incident["id"])
        assert escalation["level"] == 2 and escalation["reassigned_to"] == supervisor.id
        current = await sla.services.incidents.get(incident["id"])
        assert current["assignee"]["id"] == supervisor.id
        assert len(sla.events.named("sla.breached")) == 2  # first response and resolution, once each
        assert len(sla.events.named("sla.warning")) == 4
        assert [e.details["reason"] for e in sla.events.named("incident.assigned")] == ["escalation"]
        sla.advance(hours=3)
        await sla.sweep()
        assert len(await escalations(sla, incident["id"])) == 1
        assert await sla.count("SELECT count(*) FROM sla_events WHERE incident_id = $1", incident["id"]) == 6

    async def test_warning_rule_fires_at_its_threshold(self, sla):
        await sla.policy(first_response_minutes=100, resolution_minutes=100, warning_thresholds=[50, 90])
        await sla.rule(name="Almost late", conditions=[{"type": "sla_warning", "clock": "resolution", "threshold": 90}])
        tech = await sla.user("technician")
        incident = await sla.incident()
        await sla.services.incidents.add_comment(tech.ctx, incident["id"], "Mirándolo.")
        sla.advance(minutes=80)
        await sla.sweep()
        assert await levels(sla, incident["id"]) == {("resolution", "warning", 50)}
        assert await escalations(sla, incident["id"]) == []
        sla.advance(minutes=11)
        await sla.sweep()
        assert [e["level"] for e in await escalations(sla, incident["id"])] == [1]

    async def test_warning_crossed_before_a_pause_is_still_recorded(self, sla):
        await sla.policy(first_response_minutes=100, resolution_minutes=100, warning_thresholds=[75])
        tech = await sla.user("technician")
        incident = await sla.incident()
        await sla.services.incidents.add_comment(tech.ctx, incident["id"], "Pedimos datos al cliente.")
        sla.advance(minutes=80)
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="waiting")
        sla.advance(minutes=30)
        await sla.sweep()
        [warning] = (await sla.sla_of(incident["id"]))["events"]
        assert warning["occurred_at"] == SLA_START + minutes(75) and warning["elapsed_minutes"] == 80


class TestOtherConditions:
    async def test_priority_combined_with_duration(self, sla):
        await sla.policy()
        await sla.rule(
            name="Critical stalls",
            level=3,
            conditions=[
                {"type": "priority_is", "priorities": ["critical"]},
                {"type": "duration_exceeds", "minutes": 30},
            ],
        )
        critical = await sla.incident(priority="critical")
        high = await sla.incident(priority="high")
        sla.advance(minutes=20)
        await sla.sweep()
        assert await escalations(sla, critical["id"]) == []
        sla.advance(minutes=11)
        await sla.sweep()
        assert [e["level"] for e in await escalations(sla, critical["id"])] == [3]
        assert await escalations(sla, high["id"]) == []

    async def test_any_combination_fires_on_either_condition(self, sla):
        await sla.policy()
        await sla.rule(
            name="Either",
            combine="any",
            conditions=[{"type": "priority_is", "priorities": ["critical"]}, {"type": "reopened_times", "times": 1}],
        )
        critical = await sla.incident(priority="critical")
        low = await sla.incident(priority="low")
        await sla.sweep()
        assert len(await escalations(sla, critical["id"])) == 1
        assert await escalations(sla, low["id"]) == []

    async def test_two_rejected_suggestions_in_a_row_escalate_and_acceptance_resets(self, sla):
        await sla.policy()
        await sla.rule(
            name="Assistant failing", level=2, conditions=[{"type": "suggestion_rejected_times", "times": 2}]
        )
        tech = await sla.user("technician")
        failing, recovered = await sla.incident(), await sla.incident()
        for verdicts, incident in (
            (["rejected", "rejected"], failing),
            (["rejected", "accepted", "rejected"], recovered),
        ):
            for verdict in verdicts:
                await sla.make_suggestion_ready(incident["id"])
                await sla.services.suggestions.record_feedback(tech.ctx, incident["id"], verdict)
                await sla.services.suggestions.regenerate(tech.ctx, incident["id"], None)
        await sla.sweep()
        assert [e["level"] for e in await escalations(sla, failing["id"])] == [2]
        assert await escalations(sla, recovered["id"]) == []
        assert (
            await sla.count("SELECT consecutive_rejections FROM sla_incidents WHERE incident_id = $1", recovered["id"])
            == 1
        )

    async def test_reopened_twice_escalates(self, sla):
        await sla.policy()
        await sla.rule(name="Keeps coming back", level=2, conditions=[{"type": "reopened_times", "times": 2}])
        tech = await sla.user("technician")
        incident = await sla.incident()
        for attempt in range(2):
            await sla.sweep()
            assert await escalations(sla, incident["id"]) == []
            await sla.services.incidents.change_status(
                tech.ctx, incident["id"], status="resolved", solution=f"Intento {attempt}"
            )
            await sla.services.incidents.change_status(tech.ctx, incident["id"], status="open", reason="Falla otra vez")
        await sla.sweep()
        assert [e["level"] for e in await escalations(sla, incident["id"])] == [2]


class TestNothingFiresTwiceOrLate:
    async def test_resolved_and_closed_incidents_get_no_breach_and_no_escalation(self, sla):
        await sla.policy(first_response_minutes=10, resolution_minutes=20)
        await sla.rule(name="Any breach", conditions=[{"type": "sla_breached"}])
        tech = await sla.user("technician")
        resolved, closed = await sla.incident(), await sla.incident()
        sla.advance(minutes=5)
        for incident in (resolved, closed):
            await sla.services.incidents.change_status(tech.ctx, incident["id"], status="resolved", solution="Hecho")
        await sla.services.incidents.change_status(tech.ctx, closed["id"], status="closed")
        sla.advance(hours=5)
        report = await sla.sweep()
        assert report.escalations == 0 and report.levels_recorded == 0
        assert await sla.count("SELECT count(*) FROM sla_events") == 0
        assert await sla.count("SELECT count(*) FROM sla_escalations") == 0
        assert sla.events.named("incident.escalated") == []

    async def test_concurrent_sweeps_record_each_level_and_escalation_once(self, sla):
        await sla.policy(first_response_minutes=10, resolution_minutes=20)
        await sla.rule(name="Warn", level=1, conditions=[{"type": "sla_warning"}])
        await sla.rule(name="Breach", level=2, conditions=[{"type": "sla_breached"}])
        incidents = [await sla.incident() for _ in range(4)]
        sla.advance(minutes=30)
        reports = await asyncio.gather(*(sla.sweep() for _ in range(3)))
        assert sum(r.levels_recorded for r in reports) == 4 * 6
        assert sum(r.escalations for r in reports) == 4 * 2
        for incident in incidents:
            assert sorted(e["level"] for e in await escalations(sla, incident["id"])) == [1, 2]
        assert await sla.count("SELECT count(*) FROM sla_events") == 24
        assert len(sla.events.named("incident.escalated")) == 8
        assert len(sla.events.named("sla.breached")) == 8


class TestManualEscalation:
    async def test_manual_escalation_with_reason_and_history(self, sla):
        await sla.policy()
        tech = await sla.user("technician", login=True)
        supervisor = await sla.user("supervisor")
        incident = await sla.incident(language="en")
        await sla.services.incidents.add_comment(tech.ctx, incident["id"], "Replaced the fuse; still stops.")
        await sla.make_suggestion_ready(incident["id"], "Clean the motor fan.")
        await sla.services.suggestions.record_feedback(tech.ctx, incident["id"], "rejected")
        reply = await sla.client.post(
            f"/api/v1/incidents/{incident['id']}/escalations",
            headers=tech.headers,
            json={
                "level": 2,
                "reason": "Line 3 stopped for 2 hours",
                "target_department": "electrical",
                "assignee_id": supervisor.id,
            },
        )
        assert reply.status_code == 201, reply.text
        body = reply.json()
        assert body["trigger"] == "manual" and body["actor"]["name"] == tech.username
        assert body["reassigned_to"] == supervisor.id and body["language"] == "en"
        department = body["messages"]["department"]["body"]
        assert "Replaced the fuse" in department and "Clean the motor fan" in department and "rejected" in department
        assert "Line 3 stopped for 2 hours" in body["messages"]["reporter"]["body"]
        history = await sla.client.get(f"/api/v1/incidents/{incident['id']}/escalations", headers=tech.headers)
        assert [e["id"] for e in history.json()] == [body["id"]]
        lower = await sla.client.post(
            f"/api/v1/incidents/{incident['id']}/escalations",
            headers=tech.headers,
            json={"level": 1, "reason": "lower"},
        )
        assert lower.status_code == 409 and lower.json()["field"] == "level"

    BAD = [
        ({"level": 2}, 422, "reason"),
        ({"level": 2, "reason": "   "}, 422, "reason"),
        ({"level": 4, "reason": "too high"}, 422, "level"),
        ({"level": 1, "reason": "bad dept", "target_department": "x;drop"}, 422, "target_department"),
        ({"level": 1, "reason": "nobody", "assignee_id": 999999}, 422, "assignee_id"),
    ]

    async def test_bad_manual_escalations_store_nothing(self, sla):
        tech = await sla.user("technician", login=True)
        incident = await sla.incident()
        for body, status, field in self.BAD:
            reply = await sla.client.post(
                f"/api/v1/incidents/{incident['id']}/escalations", headers=tech.headers, json=body
            )
            assert reply.status_code == status and reply.json()["field"] == field, (body, reply.text)
        assert await sla.count("SELECT count(*) FROM sla_escalations") == 0
        assert (await sla.sla_of(incident["id"]))["escalation_level"] == 0

    async def test_reporters_cannot_escalate_and_resolved_incidents_refuse(self, sla):
        reporter = await sla.user("reporter", login=True)
        tech = await sla.user("technician", login=True)
        incident = await sla.incident(reporter)
        reply = await sla.client.post(
            f"/api/v1/incidents/{incident['id']}/escalations",
            headers=reporter.headers,
            json={"level": 1, "reason": "please"},
        )
        assert reply.status_code == 403
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="resolved", solution="Hecho")
        reply = await sla.client.post(
            f"/api/v1/incidents/{incident['id']}/escalations", headers=tech.headers, json={"level": 1, "reason": "late"}
        )
        assert reply.status_code == 409 and reply.json()["field"] == "status"
        missing = await sla.client.post(
            "/api/v1/incidents/999999/escalations", headers=tech.headers, json={"level": 1, "reason": "ghost"}
        )
        assert missing.status_code == 404
