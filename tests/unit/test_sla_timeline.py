"""Clock readings from status timelines, escalation conditions and escalation messages (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backend.sla.calendars import BusinessCalendar
from backend.sla.escalation import IncidentFacts, condition_holds, due_rules, rule_reason_key
from backend.sla.messages import describe_rule, render_escalation_messages
from backend.sla.reports import percentile_cont
from backend.sla.timeline import ClockRules, StatusSpan, next_check_at, read_clock

UTC = timezone.utc
T0 = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)  # a Monday
WEEKDAYS_9_TO_5 = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
OFFICE_UTC = BusinessCalendar.from_spec({"timezone": "UTC", "holidays": [], "hours": WEEKDAYS_9_TO_5})


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def rules(
    target_min: int = 60,
    *,
    calendar: BusinessCalendar | None = None,
    stopped_at: datetime | None = None,
    kind: str = "resolution",
) -> ClockRules:
    return ClockRules(
        kind=kind,
        target=minutes(target_min),
        calendar=calendar or BusinessCalendar.twenty_four_seven(),
        pause_statuses=frozenset({"waiting"}),
        warning_thresholds=(75, 90),
        started_at=T0,
        stopped_at=stopped_at,
    )


def timeline(*changes: tuple[int, str]) -> list[StatusSpan]:
    """Spans from (minute offset, status) pairs; the last one is still open."""
    spans = []
    for index, (offset, status) in enumerate(changes):
        end = T0 + minutes(changes[index + 1][0]) if index + 1 < len(changes) else None
        spans.append(StatusSpan(status, T0 + minutes(offset), end))
    return spans


class TestClockReadings:
    def test_running_clock_is_due_target_minutes_after_creation(self):
        reading = read_clock(rules(60), timeline((0, "open")), T0 + minutes(30))
        assert reading.state == "running"
        assert reading.elapsed == minutes(30)
        assert reading.due_at == T0 + minutes(60)
        assert [lv.occurred_at for lv in reading.levels] == [T0 + minutes(45), T0 + minutes(54), T0 + minutes(60)]
        assert not reading.breached and reading.remaining == minutes(30)

    def test_pause_freezes_elapsed_and_resume_moves_the_due_time(self):
        spans = timeline((0, "open"), (20, "waiting"), (80, "in_progress"))
        paused = read_clock(rules(60), timeline((0, "open"), (20, "waiting")), T0 + minutes(70))
        assert paused.state == "paused" and paused.elapsed == minutes(20) and paused.due_at is None
        resumed = read_clock(rules(60), spans, T0 + minutes(90))
        assert resumed.state == "running"
        assert resumed.elapsed == minutes(30)
        assert resumed.due_at == T0 + minutes(120)

    def test_resolution_stops_and_reopen_resumes_without_counting_the_gap(self):
        spans = timeline((0, "open"), (40, "resolved"), (100, "open"))
        stopped = read_clock(rules(60), timeline((0, "open"), (40, "resolved")), T0 + minutes(90))
        assert stopped.state == "stopped" and stopped.stopped_at == T0 + minutes(40)
        assert stopped.elapsed == minutes(40) and not stopped.breached
        reopened = read_clock(rules(60), spans, T0 + minutes(130))
        assert reopened.state == "running" and reopened.elapsed == minutes(70) and reopened.breached
        assert reopened.overdue == minutes(10)
        assert reopened.due_at == T0 + minutes(120)

    def test_first_response_clock_stops_at_the_response(self):
        reading = read_clock(
            rules(30, kind="first_response", stopped_at=T0 + minutes(12)), timeline((0, "open")), T0 + minutes(500)
        )
        assert reading.state == "stopped" and reading.elapsed == minutes(12) and not reading.breached

    def test_business_calendar_clock_sleeps_overnight(self):
        reading = read_clock(rules(120, calendar=OFFICE_UTC), timeline((0, "open")), T0 + minutes(60))
        assert reading.elapsed == minutes(0)  # 08:00-09:00 is before the office opens
        assert reading.due_at == T0 + minutes(180)

    def test_breach_is_checked_only_once_business_time_is_past_the_target(self):
        # Due exactly at 17:00 on Monday: at 17:30 elapsed equals the target, not more; the breach comes at 09:00.
        reading = read_clock(rules(480, calendar=OFFICE_UTC), timeline((0, "open")), T0 + minutes(570))
        breach = reading.levels[-1]
        assert reading.due_at == datetime(2025, 6, 2, 17, 0, tzinfo=UTC)
        assert not breach.crossed and not reading.breached
        assert breach.check_at == datetime(2025, 6, 3, 9, 0, 0, 1, tzinfo=UTC)

    def test_next_check_skips_recorded_levels_and_stops_with_the_clock(self):
        reading = read_clock(rules(60), timeline((0, "open")), T0 + minutes(50))
        assert next_check_at(reading, set()) == T0 + minutes(45)
        assert next_check_at(reading, {("warning", 75)}) == T0 + minutes(54)
        stopped = read_clock(rules(60), timeline((0, "open"), (10, "resolved")), T0 + minutes(50))
        assert next_check_at(stopped, set()) is None


def facts(**overrides) -> IncidentFacts:
    values = dict(
        incident_id=1,
        status="in_progress",
        priority="high",
        created_at=T0,
        status_since=T0 + minutes(30),
        reopened_count=0,
        consecutive_rejections=0,
        escalation_level=0,
        calendar=BusinessCalendar.twenty_four_seven(),
        levels=frozenset(),
        fired=frozenset(),
    )
    values.update(overrides)
    return IncidentFacts(**values)


class TestConditions:
    @pytest.mark.parametrize(
        "condition, holds, misses",
        [
            ({"type": "duration_exceeds", "minutes": 60}, {}, {"created_at": T0 + minutes(30)}),
            ({"type": "duration_exceeds", "minutes": 40, "since": "status"}, {}, {"status_since": T0 + minutes(60)}),
            (
                {"type": "duration_exceeds", "minutes": 40, "since": "status", "status": "in_progress"},
                {},
                {"status": "waiting"},
            ),
            (
                {"type": "sla_breached", "clock": "resolution"},
                {"levels": frozenset({("resolution", "breach", 100)})},
                {"levels": frozenset({("first_response", "breach", 100)})},
            ),
            (
                {"type": "sla_warning", "threshold": 90},
                {"levels": frozenset({("resolution", "warning", 90)})},
                {"levels": frozenset({("resolution", "warning", 75)})},
            ),
            ({"type": "priority_is", "priorities": ["high", "critical"]}, {}, {"priority": "low"}),
            (
                {"type": "suggestion_rejected_times", "times": 2},
                {"consecutive_rejections": 2},
                {"consecutive_rejections": 1},
            ),
            ({"type": "reopened_times", "times": 2}, {"reopened_count": 3}, {"reopened_count": 1}),
        ],
    )
    def test_condition_holds_and_misses(self, condition, holds, misses):
        now = T0 + minutes(90)
        assert condition_holds(condition, facts(**holds), now)
        assert not condition_holds(condition, facts(**(holds | misses)), now)

    def test_all_and_any_combine_conditions(self):
        conditions = [{"type": "priority_is", "priorities": ["critical"]}, {"type": "reopened_times", "times": 1}]
        rule = {"id": 7, "name": "r", "combine": "all", "conditions": conditions, "level": 2, "is_active": True}
        now = T0 + minutes(90)
        assert not due_rules([rule], facts(priority="critical"), now)
        assert due_rules([rule], facts(priority="critical", reopened_count=1), now) == [rule]
        assert due_rules([rule | {"combine": "any"}], facts(priority="critical"), now)

    def test_fired_rule_at_its_level_is_not_due_again(self):
        rule = {
            "id": 7,
            "name": "r",
            "combine": "all",
            "level": 2,
            "is_active": True,
            "conditions": [{"type": "priority_is", "priorities": ["high"]}],
        }
        assert not due_rules([rule], facts(fired=frozenset({(2, rule_reason_key(7))})), T0)
        assert due_rules([rule], facts(fired=frozenset({(1, rule_reason_key(7))})), T0) == [rule]


INCIDENT = {
    "id": 42,
    "title": "Cinta línea 3 parada",
    "area": "production",
    "priority": "high",
    "status": "in_progress",
    "reporter_name": "ana",
    "assignee_name": None,
    "created_at": T0,
    "description": "El motor se para con alarma E-4021.",
}
STEPS = {
    "suggestion": {"status": "ready", "text": "Limpiar el ventilador del motor.", "feedback": "rejected"},
    "comments": [{"author_name": "luis", "body": "Cambiado el fusible, sigue igual.", "created_at": T0}],
    "escalations": [],
}


class TestMessages:
    @pytest.mark.parametrize(
        "language, words",
        [
            ("es", ["escalada", "nivel 2", "rechazada", "Cambiado el fusible", "mantenimiento-l2"]),
            ("en", ["escalated", "level 2", "rejected", "Cambiado el fusible", "mantenimiento-l2"]),
        ],
    )
    def test_messages_name_level_department_and_steps_tried(self, language, words):
        messages = render_escalation_messages(
            language,
            incident=INCIDENT,
            level=2,
            previous_level=1,
            reason="SLA",
            department="mantenimiento-l2",
            reassigned_to=None,
            steps=STEPS,
        )
        text = messages["reporter"]["subject"] + messages["reporter"]["body"] + messages["department"]["body"]
        for word in words:
            assert word in text
        assert "#42" in messages["department"]["subject"]

    def test_rule_reasons_are_written_in_the_message_language(self):
        rule = {
            "name": "Crítico",
            "combine": "all",
            "conditions": [
                {"type": "sla_breached", "clock": "resolution"},
                {"type": "priority_is", "priorities": ["critical"]},
            ],
        }
        assert (
            describe_rule(rule, "es") == "regla «Crítico»: se ha incumplido el SLA de resolución y la prioridad "
            "es critical"
        )
        assert describe_rule(rule, "en") == 'rule "Crítico": the resolution SLA was breached and priority is critical'

    def test_no_steps_are_stated_plainly(self):
        messages = render_escalation_messages(
            "en",
            incident=INCIDENT,
            level=1,
            previous_level=0,
            reason="x",
            department=None,
            reassigned_to="maria",
            steps={"suggestion": None, "comments": [], "escalations": []},
        )
        assert "Nothing recorded yet" in messages["reporter"]["body"]
        assert "maria" in messages["department"]["body"]


def test_percentile_matches_postgres_percentile_cont():
    assert percentile_cont([], 0.9) is None
    assert percentile_cont([5.0], 0.9) == 5.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0, 10.0], 0.9) == pytest.approx(7.6)
