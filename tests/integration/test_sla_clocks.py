"""SLA clocks on the real Postgres with a moved clock: policy matching, first response, pauses, stops, recalculation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from backend.incidents.schemas import IncidentUpdate
from tests.fixtures.sla import MADRID_OFFICE, SLA_START, minutes

pytestmark = pytest.mark.asyncio
MADRID = ZoneInfo("Europe/Madrid")


def clock(view: dict, kind: str) -> dict:
    return next(c for c in view["clocks"] if c["kind"] == kind)


class TestPolicyMatching:
    async def test_incident_gets_the_most_specific_policy_and_its_due_times(self, sla):
        general = await sla.policy(name="General", first_response_minutes=60, resolution_minutes=480)
        critical = await sla.policy(
            name="Critical production",
            priorities=["critical"],
            areas=["production"],
            first_response_minutes=15,
            resolution_minutes=120,
            calendar=MADRID_OFFICE,
        )
        await sla.policy(name="VIP only", customer_tiers=["vip"], first_response_minutes=5, resolution_minutes=60)

        urgent = await sla.incident(priority="critical")
        routine = await sla.incident(priority="low", area="it")

        urgent_sla, routine_sla = await sla.sla_of(urgent["id"]), await sla.sla_of(routine["id"])
        assert urgent_sla["policy"]["id"] == critical["id"]
        assert clock(urgent_sla, "first_response")["due_at"] == SLA_START + minutes(15)
        assert clock(urgent_sla, "resolution")["due_at"] == SLA_START + minutes(120)
        assert routine_sla["policy"]["id"] == general["id"]
        assert clock(routine_sla, "resolution")["due_at"] == SLA_START + minutes(480)
        stored = await sla.count(
            "SELECT count(*) FROM sla_clocks WHERE incident_id = $1 AND due_at IS NOT NULL", urgent["id"]
        )
        assert stored == 2

    async def test_lower_precedence_wins_over_more_specific_and_tier_policies_need_the_tier(self, sla):
        await sla.policy(name="Specific", priorities=["high"], areas=["production"])
        override = await sla.policy(name="Override", precedence=10)
        vip = await sla.policy(name="VIP", customer_tiers=["vip"], precedence=1)
        plain = await sla.incident()
        gold = await sla.incident(customer_tier="vip")
        assert (await sla.sla_of(plain["id"]))["policy"]["id"] == override["id"]
        assert (await sla.sla_of(gold["id"]))["policy"]["id"] == vip["id"]

    async def test_incident_without_a_matching_policy_has_no_clocks(self, sla):
        await sla.policy(name="Only critical", priorities=["critical"])
        incident = await sla.incident(priority="low")
        view = await sla.sla_of(incident["id"])
        assert view["policy"] is None and view["clocks"] == []

    async def test_due_time_skips_evenings_weekends_and_holidays(self, sla):
        await sla.policy(name="Office", calendar=MADRID_OFFICE, first_response_minutes=60, resolution_minutes=600)
        sla.clock.set(datetime(2025, 6, 23, 17, 30, tzinfo=MADRID))  # Monday; Tuesday 24 June is a holiday
        incident = await sla.incident()
        view = await sla.sla_of(incident["id"])
        assert clock(view, "first_response")["due_at"] == datetime(2025, 6, 25, 9, 30, tzinfo=MADRID)
        # 30 min on Monday + 5 h + 3 h on Wednesday = 510; 90 more on Thursday morning.
        assert clock(view, "resolution")["due_at"] == datetime(2025, 6, 26, 10, 30, tzinfo=MADRID)
        sla.clock.set(datetime(2025, 6, 25, 9, 0, tzinfo=MADRID))
        assert clock(await sla.sla_of(incident["id"]), "first_response")["elapsed_business_minutes"] == 30


class TestFirstResponse:
    async def test_technician_comment_is_the_first_response_and_a_reporters_is_not(self, sla):
        await sla.policy(first_response_minutes=30)
        reporter, tech = await sla.user("reporter"), await sla.user("technician")
        incident = await sla.incident(reporter)
        sla.advance(minutes=5)
        await sla.services.incidents.add_comment(reporter.ctx, incident["id"], "¿Alguna novedad?")
        assert clock(await sla.sla_of(incident["id"]), "first_response")["state"] == "running"
        sla.advance(minutes=7)
        await sla.services.incidents.add_comment(tech.ctx, incident["id"], "Voy para allá.")
        sla.advance(minutes=60)
        view = await sla.sla_of(incident["id"])
        first = clock(view, "first_response")
        assert view["first_response_at"] == SLA_START + minutes(12)
        assert first["state"] == "stopped" and first["elapsed_business_minutes"] == 12 and first["met"] is True
        assert clock(view, "resolution")["state"] == "running"

    async def test_assignment_by_a_person_is_the_first_response(self, sla):
        await sla.policy(first_response_minutes=10)
        tech = await sla.user("technician")
        incident = await sla.incident()
        sla.advance(minutes=25)
        await sla.services.incidents.assign(tech.ctx, incident["id"], tech.id)
        first = clock(await sla.sla_of(incident["id"]), "first_response")
        assert first["state"] == "stopped" and first["breached"] and first["overdue_business_minutes"] == 15
        assert first["met"] is False


class TestPausesAndStops:
    async def test_waiting_pauses_both_clocks_and_resuming_moves_the_due_time(self, sla):
        await sla.policy(first_response_minutes=60, resolution_minutes=120)
        tech = await sla.user("technician", login=True)
        incident = await sla.incident()
        sla.advance(minutes=30)
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="waiting")
        sla.advance(hours=5)
        reply = await sla.client.get(f"/api/v1/incidents/{incident['id']}/sla", headers=tech.headers)
        assert reply.status_code == 200, reply.text
        paused = clock(reply.json(), "resolution")
        assert paused["state"] == "paused" and paused["due_at"] is None
        assert paused["elapsed_business_minutes"] == 30 and paused["remaining_business_minutes"] == 90
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="in_progress")
        resumed = clock(await sla.sla_of(incident["id"]), "resolution")
        assert resumed["state"] == "running"
        assert resumed["due_at"] == SLA_START + minutes(30 + 300 + 90)
        stored_due = await sla.count(
            "SELECT due_at FROM sla_clocks WHERE incident_id = $1 AND kind = 'resolution'", incident["id"]
        )
        assert stored_due == SLA_START + minutes(420)

    async def test_resolving_stops_the_clock_and_reopening_resumes_it_without_the_gap(self, sla):
        await sla.policy(first_response_minutes=30, resolution_minutes=100)
        tech = await sla.user("technician")
        incident = await sla.incident()
        sla.advance(minutes=40)
        await sla.services.incidents.change_status(
            tech.ctx, incident["id"], status="resolved", solution="Cambiado el rodamiento."
        )
        view = await sla.sla_of(incident["id"])
        assert clock(view, "resolution")["state"] == "stopped" and clock(view, "resolution")["met"] is True
        # Resolving counts as the first response when nobody answered before.
        assert view["first_response_at"] == SLA_START + minutes(40)
        assert clock(view, "first_response")["breached"]
        sla.advance(days=2)
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="open", reason="Vuelve a fallar")
        sla.advance(minutes=70)
        resolution = clock(await sla.sla_of(incident["id"]), "resolution")
        assert resolution["state"] == "running" and resolution["elapsed_business_minutes"] == 110
        assert resolution["overdue_business_minutes"] == 10
        assert resolution["due_at"] == SLA_START + minutes(40) + minutes(60 * 48) + minutes(60)


class TestRecalculation:
    async def test_priority_change_applies_the_new_policy_as_if_from_creation(self, sla):
        await sla.policy(name="Normal", first_response_minutes=60, resolution_minutes=480)
        urgent = await sla.policy(
            name="Urgent", priorities=["critical"], first_response_minutes=15, resolution_minutes=120
        )
        tech = await sla.user("technician")
        incident = await sla.incident(priority="medium")
        sla.advance(minutes=20)
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="waiting")
        sla.advance(minutes=60)
        await sla.services.incidents.change_status(tech.ctx, incident["id"], status="in_progress")
        sla.advance(minutes=10)
        await sla.services.incidents.update(tech.ctx, incident["id"], IncidentUpdate(priority="critical"))
        view = await sla.sla_of(incident["id"])
        assert view["policy"]["id"] == urgent["id"]
        resolution = clock(view, "resolution")
        assert resolution["target_minutes"] == 120
        # 20 + 10 business minutes ran (the hour in waiting is still excluded): due 90 minutes from now.
        assert resolution["elapsed_business_minutes"] == 30
        assert resolution["due_at"] == sla.clock.now() + minutes(90)
        first = clock(view, "first_response")
        assert first["breached"] and first["overdue_business_minutes"] == 15
        audit = await sla.count(
            "SELECT count(*) FROM audit_log WHERE action = 'sla.policy_applied' AND resource_id = $1",
            str(incident["id"]),
        )
        assert audit == 1

    async def test_policy_edits_do_not_move_running_clocks_until_recalculation(self, sla):
        policy = await sla.policy(name="Editable", first_response_minutes=30, resolution_minutes=240)
        tech = await sla.user("technician")
        incident = await sla.incident()
        from backend.sla.schemas import PolicyUpdate

        await sla.services.sla.update_policy(sla.admin, policy["id"], PolicyUpdate(resolution_minutes=60))
        assert clock(await sla.sla_of(incident["id"]), "resolution")["target_minutes"] == 240
        await sla.services.incidents.update(tech.ctx, incident["id"], IncidentUpdate(priority="critical"))
        assert clock(await sla.sla_of(incident["id"]), "resolution")["target_minutes"] == 60

    async def test_reporters_see_the_sla_of_their_own_incidents_only(self, sla):
        await sla.policy()
        owner, stranger = await sla.user("reporter", login=True), await sla.user("reporter", login=True)
        incident = await sla.incident(owner)
        mine = await sla.client.get(f"/api/v1/incidents/{incident['id']}/sla", headers=owner.headers)
        assert mine.status_code == 200 and len(mine.json()["clocks"]) == 2
        theirs = await sla.client.get(f"/api/v1/incidents/{incident['id']}/sla", headers=stranger.headers)
        assert theirs.status_code == 404 and theirs.json()["error"] == "NotFound"
        reply = await sla.client.get("/api/v1/incidents/999999/sla", headers=owner.headers)
        assert reply.status_code == 404
        assert (await sla.client.get(f"/api/v1/incidents/{incident['id']}/sla")).status_code == 401
