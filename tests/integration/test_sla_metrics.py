"""Compliance and quality metrics agree with direct SQL counts over the same rows."""

from __future__ import annotations

import pytest

from tests.fixtures.sla import SLA_START, minutes

pytestmark = pytest.mark.asyncio

PERIOD = {"date_from": (SLA_START - minutes(1)).isoformat(), "date_to": (SLA_START + minutes(24 * 60)).isoformat()}


async def build_history(sla):
    """Incidents with known outcomes under two 24/7 policies (minutes relative to SLA_START in comments)."""
    standard = await sla.policy(
        name="Standard", first_response_minutes=30, resolution_minutes=120, warning_thresholds=[75]
    )
    critical = await sla.policy(
        name="Critical", priorities=["critical"], first_response_minutes=10, resolution_minutes=60
    )
    reporter = await sla.user("reporter")
    tech, other = await sla.user("technician"), await sla.user("technician")
    svc = sla.services

    sla.clock.set(SLA_START - minutes(600))  # before the period: counts only for at-risk-now
    old = await sla.incident(reporter, area="quality", priority="medium")
    await svc.incidents.change_status(tech.ctx, old["id"], status="waiting")

    sla.clock.set(SLA_START)  # 0
    quick = await sla.incident(reporter, area="production", priority="high")
    slow = await sla.incident(reporter, area="it", priority="medium")
    urgent = await sla.incident(reporter, area="production", priority="critical")
    bouncing = await sla.incident(reporter, area="production", priority="low")
    sla.advance(minutes=5)  # 5
    await svc.incidents.add_comment(tech.ctx, urgent["id"], "En camino.")
    sla.advance(minutes=5)  # 10
    await svc.incidents.add_comment(tech.ctx, quick["id"], "Revisando el motor.")
    await svc.incidents.assign(tech.ctx, bouncing["id"], tech.id)
    for incident, verdict, rating in ((quick, "accepted", 5), (slow, "rejected", 2), (bouncing, "accepted", 4)):
        await sla.make_suggestion_ready(incident["id"])
        await svc.suggestions.record_feedback(tech.ctx, incident["id"], verdict)
        await svc.suggestions.rate(reporter.ctx, incident["id"], rating)
    sla.advance(minutes=30)  # 40: slow answered 10 minutes late; bouncing resolved, reopened, handed over, escalated
    await svc.incidents.assign(tech.ctx, slow["id"], tech.id)
    await svc.incidents.change_status(tech.ctx, bouncing["id"], status="resolved", solution="Ajustado.")
    await svc.incidents.change_status(tech.ctx, bouncing["id"], status="open", reason="Vuelve a fallar.")
    await svc.incidents.assign(tech.ctx, bouncing["id"], other.id)
    await svc.sla.escalate(tech.ctx, bouncing["id"], _manual())
    sla.advance(minutes=60)  # 100
    await svc.incidents.change_status(tech.ctx, quick["id"], status="resolved", solution="Rodamiento cambiado.")
    await svc.incidents.change_status(tech.ctx, bouncing["id"], status="resolved", solution="Cambiada la placa.")
    sla.advance(minutes=10)  # 110: old resumes after 710 minutes waiting
    await svc.incidents.change_status(tech.ctx, old["id"], status="in_progress")
    sla.advance(minutes=40)  # 150: slow resolved 30 minutes late
    await svc.incidents.change_status(tech.ctx, slow["id"], status="resolved", solution="Reinstalado el driver.")
    pending = await sla.incident(reporter, area="it", priority="high")
    sla.advance(minutes=20)  # 170
    late_critical = await sla.incident(reporter, area="it", priority="critical")
    sla.advance(minutes=50)  # 220: late_critical 50 of 60 minutes (at risk), urgent 160 minutes overdue
    await sla.sweep()
    return {"standard": standard, "critical": critical, "old": old, "pending": pending, "late_critical": late_critical}


def _manual():
    from backend.sla.schemas import EscalationRequest

    return EscalationRequest(level=1, reason="El cliente insiste")


EXPECTED_CLOCKS = """
    SELECT c.policy_id, c.kind, count(*) AS clocks,
           count(*) FILTER (WHERE c.state = 'stopped' AND c.elapsed_seconds <= c.target_minutes * 60) AS met,
           count(*) FILTER (WHERE e.elapsed > c.target_minutes * 60) AS breached,
           avg((e.elapsed - c.target_minutes * 60) / 60.0) FILTER (WHERE e.elapsed > c.target_minutes * 60) AS avg_over,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY (e.elapsed - c.target_minutes * 60) / 60.0)
               FILTER (WHERE e.elapsed > c.target_minutes * 60) AS p90_over
      FROM sla_clocks c
      JOIN incidents i ON i.id = c.incident_id
      -- 24/7 policies and no pauses in this data: a running clock's elapsed time is now - start.
      CROSS JOIN LATERAL (SELECT CASE WHEN c.state = 'stopped' THEN c.elapsed_seconds
                                      ELSE extract(epoch FROM $3 - c.started_at)::float8 END AS elapsed) e
     WHERE i.created_at >= $1 AND i.created_at < $2
     GROUP BY c.policy_id, c.kind
"""

EXPECTED_QUALITY = """
    WITH scope AS (
        SELECT i.*, s.rating, s.feedback,
               (SELECT count(*) FROM sla_escalations x WHERE x.incident_id = i.id) AS escalations,
               (SELECT count(*) FROM audit_log a WHERE a.action = 'incident.assigned'
                   AND a.resource_id = i.id::text AND a.after ->> 'assignee_id' IS NOT NULL) AS assignments
          FROM incidents i LEFT JOIN suggestions s ON s.incident_id = i.id
         WHERE i.created_at >= $1 AND i.created_at < $2)
    SELECT area, count(*) AS total, count(resolved_at) AS resolved,
           count(*) FILTER (WHERE escalations > 0) AS escalated, avg(rating)::float8 AS avg_rating,
           count(*) FILTER (WHERE rating IN (4, 5)) AS high, count(rating) AS rated,
           avg(extract(epoch FROM resolved_at - created_at) / 60)::float8 AS mean_minutes,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at) / 60)
               AS median_minutes,
           count(*) FILTER (WHERE resolved_at IS NOT NULL AND reopened_count = 0 AND escalations = 0
                              AND assignments <= 1) AS fcr,
           count(*) FILTER (WHERE feedback = 'accepted') AS accepted, count(feedback) AS judged
      FROM scope GROUP BY ROLLUP (area)
"""


def same(got, expected) -> bool:
    """Equal, allowing float rounding; None only equals None."""
    if expected is None or got is None:
        return got is expected
    return got == pytest.approx(expected)


class TestCompliance:
    async def test_compliance_per_policy_and_breakdowns_agree_with_sql(self, sla):
        made = await build_history(sla)
        boss = await sla.user("supervisor", login=True)
        reply = await sla.client.get("/api/v1/sla/metrics/compliance", params=PERIOD, headers=boss.headers)
        assert reply.status_code == 200, reply.text
        report = reply.json()
        async with sla.services.pool.acquire() as conn:
            rows = await conn.fetch(
                EXPECTED_CLOCKS, SLA_START - minutes(1), SLA_START + minutes(24 * 60), sla.clock.now()
            )
            totals = {
                r["policy_id"]: r["n"]
                for r in await conn.fetch(
                    """SELECT c.policy_id, count(DISTINCT c.incident_id) AS n FROM sla_clocks c
                     JOIN incidents i ON i.id = c.incident_id WHERE i.created_at >= $1 GROUP BY c.policy_id""",
                    SLA_START - minutes(1),
                )
            }
        by_policy = {p["policy_id"]: p for p in report["policies"]}
        assert set(by_policy) == {made["standard"]["id"], made["critical"]["id"]}
        for row in rows:
            figures = by_policy[row["policy_id"]][row["kind"]]
            assert figures["clocks"] == row["clocks"]
            assert figures["met"] == row["met"] and figures["breached"] == row["breached"]
            decided = row["met"] + row["breached"]
            assert same(figures["compliance_rate"], row["met"] / decided if decided else None)
            assert same(figures["avg_minutes_overdue"], row["avg_over"])
            assert same(figures["p90_minutes_overdue"], row["p90_over"])
        for policy_id, total in totals.items():
            assert by_policy[policy_id]["total_incidents"] == total
        # Known outcomes, so the SQL above is not merely agreeing with itself.
        standard = by_policy[made["standard"]["id"]]
        assert standard["total_incidents"] == 4
        assert standard["resolution"]["met"] == 2 and standard["resolution"]["breached"] == 1
        assert standard["resolution"]["avg_minutes_overdue"] == pytest.approx(30)
        # "slow" was answered 10 minutes late; "pending" has waited 70 minutes for an answer.
        assert standard["first_response"]["breached"] == 2 and standard["first_response"]["met"] == 2
        assert standard["first_response"]["avg_minutes_overdue"] == pytest.approx((10 + 40) / 2)
        critical = by_policy[made["critical"]["id"]]
        assert critical["resolution"]["avg_minutes_overdue"] == pytest.approx(160)
        assert critical["at_risk_now"] == 1  # late_critical, 50 of 60 minutes
        assert standard["at_risk_now"] == 1  # "old": before the period; 110 of 120 minutes after its long pause
        for breakdown in ("by_area", "by_priority"):
            assert sum(g["total_incidents"] for g in report[breakdown]) == 6
            assert sum(g["resolution"]["breached"] for g in report[breakdown]) == 2
            assert sum(g["at_risk_now"] for g in report[breakdown]) == 2
        production = next(g for g in report["by_area"] if g["area"] == "production")
        assert production["total_incidents"] == 3 and production["resolution"]["met"] == 2


class TestQuality:
    async def test_quality_figures_agree_with_sql_overall_and_by_area(self, sla):
        await build_history(sla)
        boss = await sla.user("supervisor", login=True)
        reply = await sla.client.get("/api/v1/sla/metrics/quality", params=PERIOD, headers=boss.headers)
        assert reply.status_code == 200, reply.text
        report = reply.json()
        async with sla.services.pool.acquire() as conn:
            rows = await conn.fetch(EXPECTED_QUALITY, SLA_START - minutes(1), SLA_START + minutes(24 * 60))
        groups = {None: report["overall"]} | {g["area"]: g for g in report["by_area"]}
        assert set(groups) == {r["area"] for r in rows}
        for row in rows:
            got = groups[row["area"]]
            assert got["total_incidents"] == row["total"] and got["resolved"] == row["resolved"]
            assert got["resolution_rate"] == pytest.approx(row["resolved"] / row["total"])
            assert got["escalated"] == row["escalated"]
            assert got["escalation_rate"] == pytest.approx(row["escalated"] / row["total"])
            assert same(got["avg_satisfaction"], row["avg_rating"])
            assert got["high_satisfaction"] == row["high"] and got["rated"] == row["rated"]
            assert same(got["mean_resolution_minutes"], row["mean_minutes"])
            assert same(got["median_resolution_minutes"], row["median_minutes"])
            assert got["first_contact_resolved"] == row["fcr"]
            assert got["suggestions_accepted"] == row["accepted"] and got["suggestions_judged"] == row["judged"]
        overall = report["overall"]
        assert overall["total_incidents"] == 6 and overall["resolved"] == 3
        assert overall["first_contact_resolved"] == 2  # bouncing was reopened, reassigned and escalated
        assert overall["first_contact_resolution_rate"] == pytest.approx(2 / 3)
        assert overall["avg_satisfaction"] == pytest.approx(11 / 3)
        assert overall["high_satisfaction_rate"] == pytest.approx(2 / 3)
        assert overall["suggestion_acceptance_rate"] == pytest.approx(2 / 3)
        assert overall["median_resolution_minutes"] == pytest.approx(100)
        assert sum(g["total_incidents"] for g in report["by_priority"]) == 6

    async def test_period_is_validated_and_metrics_need_a_supervisor(self, sla):
        boss = await sla.user("supervisor", login=True)
        tech = await sla.user("technician", login=True)
        url = "/api/v1/sla/metrics/quality"
        backwards = {"date_from": PERIOD["date_to"], "date_to": PERIOD["date_from"]}
        reply = await sla.client.get(url, params=backwards, headers=boss.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "date_from"
        reply = await sla.client.get(url, params={"date_from": "2025-06-01T00:00:00"}, headers=boss.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "date_from"
        reply = await sla.client.get(url, params={"date_from": "yesterday"}, headers=boss.headers)
        assert reply.status_code == 422 and reply.json()["field"] == "date_from"
        assert (await sla.client.get(url, headers=tech.headers)).status_code == 403
        empty = await sla.client.get(url, headers=boss.headers)
        assert empty.status_code == 200 and empty.json()["overall"]["resolution_rate"] is None
