"""Business-time arithmetic checked against a slow minute-by-minute reference (DST, holidays, midnight, weekends)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.sla.calendars import WEEKDAYS, BusinessCalendar, CalendarError

UTC = timezone.utc
MINUTE = timedelta(minutes=1)
ZONES = ("Europe/Madrid", "America/New_York")
# Instants where the offset changes, plus plain midnights, to centre examples on the hard cases.
ANCHORS = (
    datetime(2025, 3, 30, 1, 0, tzinfo=UTC),  # Madrid spring forward (02:00 -> 03:00)
    datetime(2025, 10, 26, 1, 0, tzinfo=UTC),  # Madrid fall back (03:00 -> 02:00)
    datetime(2025, 3, 9, 7, 0, tzinfo=UTC),  # New York spring forward
    datetime(2025, 11, 2, 6, 0, tzinfo=UTC),  # New York fall back
    datetime(2024, 12, 31, 23, 0, tzinfo=UTC),  # New Year's midnight in Madrid
    datetime(2025, 6, 14, 4, 0, tzinfo=UTC),  # a Saturday midnight in New York
)


def reference_is_business(spec: dict | None, moment: datetime) -> bool:
    """The definition, applied to one instant, written independently of the implementation."""
    if spec is None:
        return True
    local = moment.astimezone(ZoneInfo(spec["timezone"]))
    if local.date().isoformat() in spec["holidays"]:
        return False
    minute = local.hour * 60 + local.minute
    for start, end in spec["hours"][WEEKDAYS[local.weekday()]]:
        start_minute = int(start[:2]) * 60 + int(start[3:])
        end_minute = int(end[:2]) * 60 + int(end[3:])
        if start_minute <= minute < end_minute:
            return True
    return False


def reference_minutes(spec: dict | None, start: datetime, end: datetime) -> int:
    """Business minutes in [start, end), counted one minute at a time (minute-aligned inputs)."""
    count, cursor = 0, start
    while cursor < end:
        count += reference_is_business(spec, cursor)
        cursor += MINUTE
    return count


def reference_add(spec: dict | None, start: datetime, minutes: int, horizon: datetime) -> datetime:
    """The end of the `minutes`-th business minute after start, walking minute by minute."""
    cursor, seen = start, 0
    while cursor < horizon:
        if reference_is_business(spec, cursor):
            seen += 1
            if seen == minutes:
                return cursor + MINUTE
        cursor += MINUTE
    raise AssertionError("reference ran past its horizon")


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def day_windows(draw) -> list[list[str]]:
    """0-2 non-overlapping windows on one day, minute resolution, often touching the DST hours and midnight."""
    interesting = [0, 60, 90, 120, 150, 180, 480, 540, 1020, 1380, 1439, 1440]
    points = draw(
        st.lists(st.one_of(st.sampled_from(interesting), st.integers(0, 1440)), min_size=0, max_size=4, unique=True)
    )
    points.sort()
    if len(points) % 2:
        points = points[:-1]
    return [[_hhmm(points[i]), _hhmm(points[i + 1])] for i in range(0, len(points), 2)]


@st.composite
def calendars(draw) -> dict | None:
    """A calendar spec (or None for 24/7) with holidays near the anchors."""
    if draw(st.integers(0, 9)) == 0:
        return None
    hours = {day: draw(day_windows()) for day in WEEKDAYS}
    if not any(hours.values()):
        hours["wed"] = [["09:00", "17:00"]]
    holiday_pool = [(a + timedelta(days=d)).date().isoformat() for a in ANCHORS for d in (-1, 0, 1)]
    holidays = draw(st.lists(st.sampled_from(holiday_pool), max_size=4, unique=True))
    return {"timezone": draw(st.sampled_from(ZONES)), "hours": hours, "holidays": holidays}


@st.composite
def spans(draw) -> tuple[datetime, datetime]:
    """A minute-aligned [start, end) around an anchor, up to three days long."""
    anchor = draw(st.sampled_from(ANCHORS))
    start = anchor + draw(st.integers(-2 * 1440, 1440)) * MINUTE
    return start, start + draw(st.integers(0, 3 * 1440)) * MINUTE


FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


class TestAgainstMinuteByMinuteReference:
    @FAST
    @given(spec=calendars(), span=spans())
    def test_business_duration_equals_counted_minutes(self, spec, span):
        start, end = span
        calendar = BusinessCalendar.from_spec(spec)
        assert calendar.business_duration(start, end) == reference_minutes(spec, start, end) * MINUTE

    @FAST
    @given(spec=calendars(), span=spans(), data=st.data())
    def test_add_business_time_lands_at_end_of_the_nth_business_minute(self, spec, span, data):
        start, end = span
        available = reference_minutes(spec, start, end)
        if available == 0:
            return
        minutes = data.draw(st.integers(1, available))
        calendar = BusinessCalendar.from_spec(spec)
        assert calendar.add_business_time(start, minutes * MINUTE) == reference_add(spec, start, minutes, end)

    @FAST
    @given(spec=calendars(), span=spans(), seconds=st.integers(0, 59), micro=st.integers(0, 999_999))
    def test_adding_the_measured_duration_never_overshoots_and_round_trips(self, spec, span, seconds, micro):
        start, end = span
        start += timedelta(seconds=seconds, microseconds=micro)
        calendar = BusinessCalendar.from_spec(spec)
        measured = calendar.business_duration(start, end)
        reached = calendar.add_business_time(start, measured)
        assert reached <= max(start, end)
        assert calendar.business_duration(start, reached) == measured

    @FAST
    @given(spec=calendars(), span=spans(), cut=st.integers(0, 4 * 1440))
    def test_durations_add_up_over_consecutive_intervals(self, spec, span, cut):
        start, end = span
        middle = min(start + cut * MINUTE, end)
        calendar = BusinessCalendar.from_spec(spec)
        assert calendar.business_duration(start, middle) + calendar.business_duration(
            middle, end
        ) == calendar.business_duration(start, end)


OFFICE = {
    "timezone": "Europe/Madrid",
    "holidays": ["2025-12-25"],
    "hours": {d: [["09:00", "14:00"], ["15:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
}


def madrid(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Madrid"))


class TestWorkedExamples:
    def test_friday_evening_report_is_due_monday_morning(self):
        calendar = BusinessCalendar.from_spec(OFFICE)
        due = calendar.add_business_time(madrid(2025, 6, 13, 17, 30), timedelta(hours=2))
        assert due == madrid(2025, 6, 16, 10, 30)

    def test_lunch_break_and_christmas_are_not_counted(self):
        calendar = BusinessCalendar.from_spec(OFFICE)
        assert calendar.business_duration(madrid(2025, 12, 24, 13, 0), madrid(2025, 12, 26, 10, 0)) == timedelta(
            hours=1 + 3 + 1
        )

    def test_whole_day_windows_follow_dst_in_both_directions(self):
        spec = {"timezone": "America/New_York", "holidays": [], "hours": {d: [["00:00", "24:00"]] for d in WEEKDAYS}}
        calendar = BusinessCalendar.from_spec(spec)
        ny = ZoneInfo("America/New_York")
        assert calendar.business_duration(
            datetime(2025, 3, 9, tzinfo=ny), datetime(2025, 3, 10, tzinfo=ny)
        ) == timedelta(hours=23)
        assert calendar.business_duration(
            datetime(2025, 11, 2, tzinfo=ny), datetime(2025, 11, 3, tzinfo=ny)
        ) == timedelta(hours=25)

    def test_window_inside_the_skipped_hour_holds_no_time(self):
        spec = {"timezone": "Europe/Madrid", "holidays": [], "hours": {"sun": [["02:00", "03:00"]]}}
        calendar = BusinessCalendar.from_spec(spec)
        assert calendar.business_duration(madrid(2025, 3, 29), madrid(2025, 3, 31)) == timedelta(0)
        assert calendar.business_duration(madrid(2025, 10, 25), madrid(2025, 10, 27)) == timedelta(hours=2)

    def test_twenty_four_seven_is_plain_elapsed_time(self):
        calendar = BusinessCalendar.from_spec(None)
        start = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
        assert calendar.add_business_time(start, timedelta(minutes=90)) == start + timedelta(minutes=90)

    @pytest.mark.parametrize(
        "spec, message",
        [
            ({"timezone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}}, "unknown time zone"),
            ({"timezone": "UTC", "hours": {"mon": [["17:00", "09:00"]]}}, "must end after"),
            ({"timezone": "UTC", "hours": {"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}}, "overlap"),
            ({"timezone": "UTC", "hours": {"funday": [["09:00", "12:00"]]}}, "unknown weekday"),
            ({"timezone": "UTC", "hours": {}}, "at least one working window"),
            ({"timezone": "UTC", "hours": {"mon": [["9", "12:00"]]}}, "HH:MM"),
            ({"timezone": "UTC", "hours": {"mon": [["09:00", "24:01"]]}}, "out of range"),
            ({"timezone": "UTC", "hours": {"mon": [["09:00", "12:00"]]}, "holidays": ["25/12/2025"]}, "YYYY-MM-DD"),
        ],
    )
    def test_unusable_calendars_are_rejected_with_a_reason(self, spec, message):
        with pytest.raises(CalendarError, match=message):
            BusinessCalendar.from_spec(spec)

    def test_spec_round_trips(self):
        calendar = BusinessCalendar.from_spec(OFFICE)
        assert BusinessCalendar.from_spec(calendar.to_spec()) == calendar
        assert calendar.holidays == frozenset({date(2025, 12, 25)})
