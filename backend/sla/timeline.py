"""Clock readings from an incident's status timeline: elapsed business time, due time, thresholds (pure, no I/O).

A clock runs from `started_at` (the incident's creation) during every status span whose status is neither a pause
status of its policy nor resolved/closed, and (for the first-response clock) until the first response. So the same
timeline gives the same answer whenever it is read, and a new policy can be applied "as if from the beginning".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from backend.sla.calendars import BusinessCalendar

FINISHED_STATUSES = frozenset({"resolved", "closed"})
CLOCK_KINDS = ("first_response", "resolution")
ClockState = Literal["running", "paused", "stopped"]
# A breach is business time strictly past the target; the check instant is the first moment after it.
_PAST_TARGET = timedelta(microseconds=1)


@dataclass(frozen=True)
class StatusSpan:
    """The incident was in `status` from `started_at` until `ended_at` (None: still is)."""

    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class ClockRules:
    """What one clock measures: its target, calendar, pause statuses and warning thresholds."""

    kind: str
    target: timedelta
    calendar: BusinessCalendar
    pause_statuses: frozenset[str]
    warning_thresholds: tuple[int, ...]
    started_at: datetime
    stopped_at: datetime | None = None  # first response given (first-response clock only)


@dataclass(frozen=True)
class Level:
    """A warning threshold or the breach, with when it is (or will be) crossed."""

    kind: Literal["warning", "breach"]
    threshold_percent: int
    occurred_at: datetime | None  # the instant the threshold is reached (breach: the due time)
    check_at: datetime | None  # the first instant at which a sweep sees it crossed
    crossed: bool


@dataclass(frozen=True)
class ClockReading:
    """A clock as of one instant."""

    kind: str
    state: ClockState
    elapsed: timedelta
    target: timedelta
    due_at: datetime | None
    stopped_at: datetime | None
    levels: tuple[Level, ...]

    @property
    def breached(self) -> bool:
        """Business time strictly past the target."""
        return self.elapsed > self.target

    @property
    def remaining(self) -> timedelta:
        """Business time left before the target (zero once reached)."""
        return max(self.target - self.elapsed, timedelta(0))

    @property
    def overdue(self) -> timedelta:
        """Business time past the target (zero when within it)."""
        return max(self.elapsed - self.target, timedelta(0))


def counted_intervals(rules: ClockRules, spans: list[StatusSpan]) -> list[tuple[datetime, datetime | None]]:
    """The intervals in which the clock runs; the last may be open-ended (None)."""
    intervals: list[tuple[datetime, datetime | None]] = []
    for span in spans:
        if span.status in FINISHED_STATUSES or span.status in rules.pause_statuses:
            continue
        start = max(span.started_at, rules.started_at)
        end = span.ended_at
        if rules.stopped_at is not None:
            end = rules.stopped_at if end is None else min(end, rules.stopped_at)
        if end is None or start < end:
            intervals.append((start, end))
    return intervals


def elapsed_at(rules: ClockRules, intervals: list[tuple[datetime, datetime | None]], moment: datetime) -> timedelta:
    """Business time the clock has run up to `moment`."""
    total = timedelta(0)
    for start, end in intervals:
        if start >= moment:
            break
        total += rules.calendar.business_duration(start, moment if end is None else min(end, moment))
    return total


def instant_reaching(
    rules: ClockRules, intervals: list[tuple[datetime, datetime | None]], amount: timedelta
) -> datetime | None:
    """When the clock's elapsed time reaches `amount`; None if it has not and cannot while paused or stopped."""
    consumed = timedelta(0)
    for start, end in intervals:
        if end is None:
            return rules.calendar.add_business_time(start, amount - consumed)
        length = rules.calendar.business_duration(start, end)
        if consumed + length >= amount:
            return rules.calendar.add_business_time(start, amount - consumed)
        consumed += length
    return None


def clock_state(rules: ClockRules, spans: list[StatusSpan], now: datetime) -> tuple[ClockState, datetime | None]:
    """running, paused or stopped at `now`, and when it stopped."""
    if rules.stopped_at is not None and rules.stopped_at <= now:
        return "stopped", rules.stopped_at
    current = spans[-1] if spans else None
    if current is not None and current.status in FINISHED_STATUSES:
        return "stopped", current.started_at
    if current is not None and current.status in rules.pause_statuses:
        return "paused", None
    return "running", None


def read_clock(rules: ClockRules, spans: list[StatusSpan], now: datetime) -> ClockReading:
    """Everything about one clock as of `now`."""
    intervals = counted_intervals(rules, spans)
    elapsed = elapsed_at(rules, intervals, now)
    state, stopped_at = clock_state(rules, spans, now)
    levels = []
    for percent in sorted(set(rules.warning_thresholds)):
        amount = rules.target * percent / 100
        reached = instant_reaching(rules, intervals, amount)
        levels.append(Level("warning", percent, reached, reached, elapsed >= amount))
    due_at = instant_reaching(rules, intervals, rules.target)
    past_due = instant_reaching(rules, intervals, rules.target + _PAST_TARGET)
    levels.append(Level("breach", 100, due_at, past_due, elapsed > rules.target))
    return ClockReading(
        kind=rules.kind,
        state=state,
        elapsed=elapsed,
        target=rules.target,
        due_at=due_at,
        stopped_at=stopped_at,
        levels=tuple(levels),
    )


def next_check_at(reading: ClockReading, recorded: set[tuple[str, int]]) -> datetime | None:
    """When a sweep should next look at this clock: the first unrecorded level's check instant (None: never)."""
    if reading.state == "stopped":
        return None
    pending = [
        level.check_at
        for level in reading.levels
        if (level.kind, level.threshold_percent) not in recorded and level.check_at is not None
    ]
    return min(pending, default=None)
