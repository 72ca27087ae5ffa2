"""Request and response bodies of the SLA endpoints (policies, escalation rules, incident SLA, escalations)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from backend.incidents.schemas import Priority
from backend.schema_fields import omitted
from backend.sla.calendars import WEEKDAYS, BusinessCalendar, CalendarError

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PausableStatus = Literal["open", "in_progress", "waiting"]
ClockKind = Literal["first_response", "resolution"]
DEPARTMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$"
MAX_TARGET_MINUTES = 366 * 24 * 60


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or blank")
    return value


class CalendarSpec(BaseModel):
    """Working hours per weekday (local wall time, [start, end), "24:00" allowed as an end) and holidays."""

    model_config = ConfigDict(extra="forbid")
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Madrid"])
    hours: dict[Weekday, list[tuple[str, str]]] = Field(
        examples=[{d: [["08:00", "14:00"], ["15:00", "18:00"]] for d in WEEKDAYS[:5]}]
    )
    holidays: list[date] = Field(default_factory=list, max_length=1000, examples=[["2025-12-25"]])

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            BusinessCalendar.from_spec({"timezone": value, "hours": {"mon": [["00:00", "24:00"]]}})
        except CalendarError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _usable(self) -> "CalendarSpec":
        try:
            BusinessCalendar.from_spec(self.as_spec())
        except CalendarError as exc:
            raise ValueError(str(exc)) from None
        return self

    def as_spec(self) -> dict[str, Any]:
        """The stored JSON shape."""
        return {
            "timezone": self.timezone,
            "hours": {d: [list(w) for w in ws] for d, ws in self.hours.items()},
            "holidays": sorted({d.isoformat() for d in self.holidays}),
        }


def _unique_sorted_thresholds(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("warning thresholds must be different from each other")
    return sorted(values)


# One annotated type per field, shared by creation and change, so POST and PATCH validate alike.
PolicyName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
PolicyDescription = Annotated[str, Field(max_length=1000)]
PolicyPriorities = Annotated[
    list[Priority], Field(max_length=4, description="Match: any of these priorities (empty: any priority).")
]
CustomerTiers = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=32)]],
    Field(max_length=20, description="Match: any of these customer tiers (empty: any)."),
]
PolicyAreas = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=50, description="Match: any of these area codes (empty: any area)."),
]
Precedence = Annotated[
    int, Field(ge=0, le=10_000, description="Lower wins when several policies match; then the most specific.")
]
TargetMinutes = Annotated[int, Field(ge=1, le=MAX_TARGET_MINUTES)]
PauseStatuses = Annotated[list[PausableStatus], Field(max_length=3)]
WarningThresholds = Annotated[
    list[Annotated[int, Field(ge=1, le=99)]],
    Field(max_length=5, description="Percent of the target at which to warn."),
    AfterValidator(_unique_sorted_thresholds),
]


def _default_pause_statuses() -> list[PausableStatus]:
    return ["waiting"]


class PolicyCreate(BaseModel):
    """A new SLA policy."""

    model_config = ConfigDict(extra="forbid")
    name: PolicyName = Field(examples=["Critical production"])
    description: PolicyDescription = ""
    priorities: PolicyPriorities = Field(default_factory=list)
    customer_tiers: CustomerTiers = Field(default_factory=list)
    areas: PolicyAreas = Field(default_factory=list)
    precedence: Precedence = 100
    first_response_minutes: TargetMinutes = Field(examples=[15])
    resolution_minutes: TargetMinutes = Field(examples=[240])
    calendar: CalendarSpec | None = Field(default=None, description="Business calendar; null: 24/7.")
    pause_statuses: PauseStatuses = Field(default_factory=_default_pause_statuses)
    warning_thresholds: WarningThresholds = Field(default_factory=lambda: [75, 90])
    is_active: bool = True


class PolicyUpdate(BaseModel):
    """Changes to a policy; running clocks keep the snapshot they started with. An omitted field stays as it
    is; null is accepted only for `calendar` (24/7)."""

    model_config = ConfigDict(extra="forbid")
    name: PolicyName = omitted()
    description: PolicyDescription = omitted()
    priorities: PolicyPriorities = omitted()
    customer_tiers: CustomerTiers = omitted()
    areas: PolicyAreas = omitted()
    precedence: Precedence = omitted()
    first_response_minutes: TargetMinutes = omitted()
    resolution_minutes: TargetMinutes = omitted()
    calendar: CalendarSpec | None = Field(default=None, description="Business calendar; null: 24/7.")
    pause_statuses: PauseStatuses = omitted()
    warning_thresholds: WarningThresholds = omitted()
    is_active: bool = omitted()


class PolicyOut(BaseModel):
    id: int
    name: str
    description: str
    priorities: list[str]
    customer_tiers: list[str]
    areas: list[str]
    precedence: int
    first_response_minutes: int
    resolution_minutes: int
    calendar: dict[str, Any] | None
    pause_statuses: list[str]
    warning_thresholds: list[int]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class DurationExceeds(BaseModel):
    """Business minutes (incident's calendar) since creation, or in the current status, exceed `minutes`."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["duration_exceeds"]
    minutes: int = Field(ge=1, le=MAX_TARGET_MINUTES)
    since: Literal["created", "status"] = "created"
    status: PausableStatus | None = Field(default=None, description="With since=status: only in this status.")


class SlaBreached(BaseModel):
    """A breach of the clock has been recorded."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["sla_breached"]
    clock: Literal["first_response", "resolution", "any"] = "any"


class SlaWarning(BaseModel):
    """A warning of the clock at `threshold` percent or more has been recorded."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["sla_warning"]
    clock: Literal["first_response", "resolution", "any"] = "any"
    threshold: int | None = Field(default=None, ge=1, le=99)


class PriorityIs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["priority_is"]
    priorities: list[Priority] = Field(min_length=1, max_length=4)


class SuggestionRejectedTimes(BaseModel):
    """The assistant's suggestion was rejected this many times in a row (an acceptance resets the count)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["suggestion_rejected_times"]
    times: int = Field(ge=1, le=100)


class ReopenedTimes(BaseModel):
    """The incident was reopened this many times (each reopen is a failed resolution)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["reopened_times"]
    times: int = Field(ge=1, le=100)


Condition = Annotated[
    Union[DurationExceeds, SlaBreached, SlaWarning, PriorityIs, SuggestionRejectedTimes, ReopenedTimes],
    Field(discriminator="type"),
]


RuleName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
RuleDescription = Annotated[str, Field(max_length=1000)]
Combine = Literal["all", "any"]
Conditions = Annotated[list[Condition], Field(min_length=1, max_length=10)]
Level = Annotated[int, Field(ge=1, le=3)]
Department = Annotated[str | None, Field(pattern=DEPARTMENT_PATTERN)]
ReassignTo = Annotated[int | None, Field(description="User id of a technician or above.")]
Notify = Annotated[bool, Field(description="Publish incident.escalated for the notification outbox.")]


class RuleCreate(BaseModel):
    """An escalation rule: conditions combined with all/any, and what to do once they hold."""

    model_config = ConfigDict(extra="forbid")
    name: RuleName = Field(examples=["Breach of critical incidents"])
    description: RuleDescription = ""
    combine: Combine = "all"
    conditions: Conditions
    level: Level
    target_department: Department = Field(default=None, examples=["maintenance-l2"])
    reassign_to: ReassignTo = None
    notify: Notify = True
    is_active: bool = True


class RuleUpdate(BaseModel):
    """Changes to an escalation rule. An omitted field stays as it is; null is accepted only for
    `target_department` and `reassign_to` (null clears them)."""

    model_config = ConfigDict(extra="forbid")
    name: RuleName = omitted()
    description: RuleDescription = omitted()
    combine: Combine = omitted()
    conditions: Conditions = omitted()
    level: Level = omitted()
    target_department: Department = None
    reassign_to: ReassignTo = None
    notify: Notify = omitted()
    is_active: bool = omitted()


class RuleOut(BaseModel):
    id: int
    name: str
    description: str
    combine: str
    conditions: list[dict[str, Any]]
    level: int
    target_department: str | None
    reassign_to: int | None
    notify: bool
    is_active: bool
    created_at: datetime
    updated_at: datetime


class EscalationRequest(BaseModel):
    """A manual escalation: the level (not below the current one) and why."""

    model_config = ConfigDict(extra="forbid")
    level: int = Field(ge=1, le=3)
    reason: str = Field(min_length=3, max_length=1000, examples=["Line 3 stopped for 2 hours; need an electrician"])
    target_department: str | None = Field(default=None, pattern=DEPARTMENT_PATTERN)
    assignee_id: int | None = None

    _reason = field_validator("reason")(_not_blank)


class EscalationOut(BaseModel):
    id: int
    incident_id: int
    level: int
    previous_level: int
    trigger: Literal["rule", "manual"]
    reason: str
    rule_id: int | None
    rule_name: str | None
    target_department: str | None
    reassigned_to: int | None
    actor: dict[str, Any]
    language: str
    messages: dict[str, Any]
    created_at: datetime


class LevelEventOut(BaseModel):
    clock: ClockKind
    kind: Literal["warning", "breach"]
    threshold_percent: int
    occurred_at: datetime
    recorded_at: datetime
    elapsed_minutes: float
    minutes_overdue: float


class ClockOut(BaseModel):
    kind: ClockKind
    policy_id: int
    target_minutes: int
    state: Literal["running", "paused", "stopped"]
    started_at: datetime
    due_at: datetime | None = Field(description="When the target is (or was) reached; null while paused before it.")
    stopped_at: datetime | None
    elapsed_business_minutes: float
    remaining_business_minutes: float
    overdue_business_minutes: float
    breached: bool
    met: bool | None = Field(description="Stopped within the target (null while the clock still runs).")
    next_warning_at: datetime | None


class IncidentSlaOut(BaseModel):
    incident_id: int
    policy: dict[str, Any] | None
    calendar: dict[str, Any] | None
    first_response_at: datetime | None
    escalation_level: int
    escalated_department: str | None
    clocks: list[ClockOut]
    events: list[LevelEventOut]
    as_of: datetime


class DuePreviewRequest(BaseModel):
    """When would a target of `minutes` business minutes, started at `start`, be due under `calendar`?"""

    model_config = ConfigDict(extra="forbid")
    calendar: CalendarSpec | None = Field(default=None, description="Business calendar; null: 24/7.")
    start: datetime = Field(examples=["2025-12-24T17:30:00+01:00"], description="Timezone-aware start.")
    minutes: int = Field(ge=1, le=MAX_TARGET_MINUTES, examples=[240])

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must include a timezone, e.g. 2025-12-24T17:30:00Z")
        return value


class DuePreviewOut(BaseModel):
    start: datetime
    minutes: int
    due_at: datetime = Field(description="The earliest instant at which `minutes` of business time have passed.")
    timezone: str = Field(description="The calendar's time zone (UTC for 24/7).")
    due_local: str = Field(description="due_at as wall time in the calendar's zone, ISO 8601 with offset.")
    wall_minutes: float = Field(
        description="Clock minutes from start to due_at (nights, weekends and holidays included)."
    )
