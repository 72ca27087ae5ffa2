"""Request and response bodies of the notification endpoints, with their documented limits."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.notify.catalog import EVENT_TYPES, SUBSCRIBABLE
from backend.schema_fields import omitted

Kind = Literal["webhook", "slack", "email"]
Priority = Literal["low", "medium", "high", "critical"]
SubscribableEvent = Literal[SUBSCRIBABLE]  # type: ignore[valid-type]
if TYPE_CHECKING:  # a Literal of the catalog's names, built at run time: to a type checker, a str
    EventTypeName: TypeAlias = str
else:
    EventTypeName = Literal[tuple(e.name for e in EVENT_TYPES)]
DeliveryStatus = Literal["pending", "delivered", "dead"]
AttemptOutcome = Literal["in_flight", "delivered", "retrying", "dead", "abandoned"]

TARGET_MAX = 2048
DESCRIPTION_MAX = 500
AREAS_MAX = 50
MAX_GRACE_S = 7 * 86400


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


class _Filter(BaseModel):
    """Shared list validation of the endpoint filter."""

    @field_validator("event_types", "areas", "priorities", check_fields=False)
    @classmethod
    def _deduplicate(cls, values: list[Any] | None) -> list[Any] | None:
        return None if values is None else _unique(values)


# One annotated type per field, shared by creation and change, so POST and PATCH validate alike.
Target = Annotated[str, Field(min_length=1, max_length=TARGET_MAX)]
EndpointDescription = Annotated[str, Field(max_length=DESCRIPTION_MAX)]
EventTypes = Annotated[list[SubscribableEvent], Field(min_length=1, max_length=len(SUBSCRIBABLE))]
Areas = Annotated[list[str], Field(max_length=AREAS_MAX, description="Only events of these areas; empty: every area.")]
Priorities = Annotated[list[Priority], Field(description="Only these priorities; empty: all.")]


class EndpointCreate(_Filter):
    """A new endpoint. target: an http(s) URL for webhook and slack; for email, comma-separated addresses, or
    `reporter` to write to the reporter of each incident (their account's e-mail address)."""

    model_config = ConfigDict(extra="forbid")
    kind: Kind
    target: Target = Field(examples=["https://erp.example.com/hooks/prs"])
    description: EndpointDescription = ""
    enabled: bool = True
    event_types: EventTypes = Field(examples=[["incident.created", "incident.resolved"]])
    areas: Areas = Field(default_factory=list)
    priorities: Priorities = Field(default_factory=list)


class EndpointUpdate(_Filter):
    """Fields that may change; the kind is fixed, `enabled` has its own endpoint. An omitted field stays as it
    is; none of them may be null."""

    model_config = ConfigDict(extra="forbid")
    target: Target = omitted()
    description: EndpointDescription = omitted()
    event_types: EventTypes = omitted()
    areas: Areas = omitted()
    priorities: Priorities = omitted()


class ToggleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class RotateSecretRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GRACE_S,
        description="How long the old secret keeps signing (both signatures are "
        "sent); default PRS_NOTIFY_SECRET_GRACE_S, 0 ends it now.",
    )


class RedeliverRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint_ids: list[int] | None = Field(
        default=None, min_length=1, max_length=100, description="Default: every enabled endpoint whose filter matches."
    )


class EndpointOut(BaseModel):
    id: int
    kind: Kind
    target: str
    description: str
    enabled: bool
    event_types: list[str]
    areas: list[str]
    priorities: list[str]
    has_secret: bool
    secret_rotated_at: datetime | None
    previous_secret_expires_at: datetime | None = Field(description="Until then the old secret also signs.")
    consecutive_failures: int
    disabled_reason: str | None = Field(description="Why it was disabled (set when disabled automatically).")
    disabled_at: datetime | None
    pending_deliveries: int
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointOut):
    secret: str | None = Field(description="The signing secret (webhooks only). Shown once: store it now.")


class SecretRotated(BaseModel):
    endpoint_id: int
    secret: str = Field(description="The new signing secret. Shown once.")
    previous_secret_expires_at: datetime | None


class PingQueued(BaseModel):
    event_id: str
    delivery_id: int


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    endpoint_id: int
    status: DeliveryStatus
    manual: bool = Field(description="Created by a manual redelivery.")
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class EventOut(BaseModel):
    id: str
    type: str
    version: int
    occurred_at: datetime
    created_at: datetime
    incident_id: int | None
    area: str | None
    priority: str | None
    payload: dict[str, Any] = Field(description="Exactly what consumers receive (the webhook body).")


class EventDetail(EventOut):
    deliveries: list[DeliveryOut]


class AttemptOut(BaseModel):
    id: int
    delivery_id: int
    event_id: str
    event_type: str
    endpoint_id: int
    attempt_no: int
    worker: str
    started_at: datetime
    finished_at: datetime | None
    outcome: AttemptOutcome
    status_code: int | None = Field(description="HTTP status, or the SMTP reply code for e-mail.")
    response_excerpt: str | None
    error: str | None
    duration_ms: int | None


class Redelivered(BaseModel):
    event_id: str
    delivery_ids: list[int]


class EventTypeOut(BaseModel):
    name: str
    version: int
    description: str
    subscribable: bool
    schema_file: str


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    next_cursor: str | None


class LogFilters(BaseModel):
    """Filters shared by the event, delivery and attempt lists."""

    endpoint_id: int | None = None
    event_id: str | None = Field(default=None, max_length=64)
    event_type: list[EventTypeName] | None = None
    status: list[DeliveryStatus] | None = None
    outcome: list[AttemptOutcome] | None = None
    incident_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=20)
