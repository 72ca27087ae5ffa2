"""Business calendars and exact business-time arithmetic across time zones, DST changes and holidays.

Definition (the one the property tests check minute by minute): an instant is business time when its local
wall-clock time, in the calendar's time zone, falls inside one of the working windows of its local weekday
and its local date is not a holiday. Windows are half-open [start, end) in local wall time; "24:00" ends a
window at the next midnight. So on a spring-forward day a 00:00-24:00 window holds 23 real hours, on a
fall-back day 25, and local times that do not exist are never business time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
# A zone's UTC offset is assumed constant between two samples this far apart unless the samples differ;
# real zones change offset at most a few times a year.
_OFFSET_PROBE = timedelta(hours=12)
_SEARCH_CHUNK = timedelta(days=7)
# add_business_time gives up after this long: a calendar with no reachable business time is a configuration error.
MAX_SEARCH = timedelta(days=3 * 366)

Window = tuple[int, int]  # minutes after local midnight, [start, end)


class CalendarError(ValueError):
    """A calendar specification that cannot be used."""


def _parse_hhmm(text: str, *, allow_24: bool) -> int:
    try:
        hours_text, minutes_text = text.split(":")
        hours, minutes = int(hours_text), int(minutes_text)
    except (ValueError, AttributeError):
        raise CalendarError(f"'{text}' is not a time of day in HH:MM form") from None
    if len(minutes_text) != 2 or not 0 <= minutes < 60 or not 0 <= hours <= 24:
        raise CalendarError(f"'{text}' is not a time of day in HH:MM form")
    value = hours * 60 + minutes
    if value > MINUTES_PER_DAY or (value == MINUTES_PER_DAY and not allow_24):
        raise CalendarError(f"'{text}' is out of range (00:00-24:00)")
    return value


def _format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("business-time arithmetic needs timezone-aware datetimes")
    return moment.astimezone(timezone.utc)


def _naive_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working windows per weekday in one time zone, minus holidays; or always open (24/7)."""

    timezone_name: str
    windows: tuple[tuple[Window, ...], ...]  # index 0 = Monday
    holidays: frozenset[date]
    always_open: bool = False

    @classmethod
    def twenty_four_seven(cls) -> "BusinessCalendar":
        """Every instant is business time."""
        full = ((0, MINUTES_PER_DAY),)
        return cls("UTC", (full,) * 7, frozenset(), always_open=True)

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> "BusinessCalendar":
        """Build from the stored JSON shape; None means 24/7."""
        if spec is None:
            return cls.twenty_four_seven()
        name = spec.get("timezone")
        if not isinstance(name, str) or not name:
            raise CalendarError("timezone is required")
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone '{name}'") from None
        hours = spec.get("hours") or {}
        unknown = set(hours) - set(WEEKDAYS)
        if unknown:
            raise CalendarError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        windows = tuple(cls._parse_day(day, hours.get(day) or []) for day in WEEKDAYS)
        if not any(windows):
            raise CalendarError("a business calendar needs at least one working window in the week")
        try:
            holidays = frozenset(date.fromisoformat(str(d)) for d in spec.get("holidays") or [])
        except ValueError:
            raise CalendarError("holidays must be dates in YYYY-MM-DD form") from None
        return cls(name, windows, holidays)

    @staticmethod
    def _parse_day(day: str, raw_windows: list[Any]) -> tuple[Window, ...]:
        parsed = []
        for raw in raw_windows:
            if not isinstance(raw, (list, tuple)) or len(raw) != 2:
                raise CalendarError(f'{day}: each window is a pair ["HH:MM", "HH:MM"]')
            start, end = _parse_hhmm(raw[0], allow_24=False), _parse_hhmm(raw[1], allow_24=True)
            if start >= end:
                raise CalendarError(
                    f"{day}: window {raw[0]}-{raw[1]} must end after it starts (split overnight shifts at midnight)"
                )
            parsed.append((start, end))
        parsed.sort()
        for (_, previous_end), (next_start, _) in zip(parsed, parsed[1:]):
            if next_start < previous_end:
                raise CalendarError(f"{day}: working windows overlap")
        return tuple(parsed)

    def to_spec(self) -> dict[str, Any] | None:
        """The stored JSON shape (None for 24/7)."""
        if self.always_open:
            return None
        return {
            "timezone": self.timezone_name,
            "hours": {
                day: [[_format_hhmm(s), _format_hhmm(e)] for s, e in self.windows[i]] for i, day in enumerate(WEEKDAYS)
            },
            "holidays": sorted(d.isoformat() for d in self.holidays),
        }

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return ZoneInfo(self.timezone_name)

    def business_duration(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants (zero when end <= start)."""
        start, end = _as_utc(start), _as_utc(end)
        if end <= start:
            return timedelta(0)
        if self.always_open:
            return end - start
        total = timedelta(0)
        for seg_start, seg_end, offset in self._offset_segments(start, end):
            for window_start, window_end in self._local_windows(
                _naive_utc(seg_start) + offset, _naive_utc(seg_end) + offset
            ):
                total += window_end - window_start
        return total

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant at which `amount` of business time has passed since `start`."""
        start = _as_utc(start)
        if amount < timedelta(0):
            raise ValueError("amount of business time must not be negative")
        if amount == timedelta(0):
            return start
        if self.always_open:
            return start + amount
        remaining = amount
        cursor, horizon = start, start + MAX_SEARCH
        while cursor < horizon:
            chunk_end = cursor + _SEARCH_CHUNK
            for seg_start, seg_end, offset in self._offset_segments(cursor, chunk_end):
                for window_start, window_end in self._local_windows(
                    _naive_utc(seg_start) + offset, _naive_utc(seg_end) + offset
                ):
                    length = window_end - window_start
                    if remaining <= length:
                        return (window_start + remaining - offset).replace(tzinfo=timezone.utc)
                    remaining -= length
            cursor = chunk_end
        raise CalendarError(
            f"no business time found within {MAX_SEARCH.days} days; check the calendar's working hours and holidays"
        )

    def is_business_instant(self, moment: datetime) -> bool:
        """True when `moment` is business time."""
        if self.always_open:
            return True
        local = _as_utc(moment).astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        minute_of_day = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 60e6
        return any(s <= minute_of_day < e for s, e in self.windows[local.weekday()])

    def _local_windows(self, local_start: datetime, local_end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows on the naive local timeline, clipped to [local_start, local_end), in order."""
        day = local_start.date()
        last_day = local_end.date()
        while day <= last_day:
            if day not in self.holidays:
                midnight = datetime.combine(day, time())
                for start_minute, end_minute in self.windows[day.weekday()]:
                    window_start = max(midnight + timedelta(minutes=start_minute), local_start)
                    window_end = min(midnight + timedelta(minutes=end_minute), local_end)
                    if window_start < window_end:
                        yield window_start, window_end
            day += timedelta(days=1)

    def _offset_segments(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime, timedelta]]:
        """Split [start, end) (UTC) into pieces over which the zone's UTC offset is constant."""
        zone = self.zone
        cursor = start
        while cursor < end:
            offset = cursor.astimezone(zone).utcoffset()
            assert offset is not None  # an aware datetime always has one
            probe = cursor
            segment_end = end
            while probe < end:
                next_probe = min(probe + _OFFSET_PROBE, end)
                if next_probe.astimezone(zone).utcoffset() != offset:
                    segment_end = _first_instant_with_other_offset(zone, probe, next_probe, offset)
                    break
                probe = next_probe
            yield cursor, segment_end, offset
            cursor = segment_end


def _first_instant_with_other_offset(zone: ZoneInfo, low: datetime, high: datetime, offset: timedelta) -> datetime:
    """Binary search, to the microsecond, for the first instant in (low, high] whose offset differs from `offset`."""
    step = timedelta(microseconds=1)
    low_n, high_n = 0, (high - low) // step
    while high_n - low_n > 1:
        middle = (low_n + high_n) // 2
        if (low + middle * step).astimezone(zone).utcoffset() == offset:
            low_n = middle
        else:
            high_n = middle
    return low + high_n * step
