"""Alertmanager's webhook payload (version 4) and the answer PR-System gives it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_ALERTS = 1000
LABEL_VALUE_MAX = 1024
ANNOTATION_VALUE_MAX = 10_000
LABELS_MAX = 64
# Alertmanager writes the zero time for "not ended" (endsAt of a firing alert).
_ZERO_TIME_YEAR = 1


def _storable(text: str) -> bool:
    """Text PostgreSQL can store: no NUL character, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_text(value: str) -> str:
    if not _storable(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


def _check_map(values: dict[str, str], *, value_max: int, required: tuple[str, ...] = ()) -> dict[str, str]:
    if len(values) > LABELS_MAX:
        raise ValueError(f"at most {LABELS_MAX} entries")
    for key, value in values.items():
        if not key or len(key) > 128 or not _storable(key) or not _storable(value):
            raise ValueError(f"invalid entry {key[:40]!r}: names of 1-128 characters, no NUL or unpaired surrogate")
        if len(value) > value_max:
            raise ValueError(f"value of {key!r} is longer than {value_max} characters")
    for key in required:
        if not values.get(key, "").strip():
            raise ValueError(f"'{key}' is required")
    return values


def _real_time(value: datetime | None) -> datetime | None:
    if value is None or value.year <= _ZERO_TIME_YEAR:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


class AlertmanagerAlert(BaseModel):
    """One alert of a notification."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(description="Must contain `alertname`.")
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime | None = Field(default=None, alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str = Field(default="", alias="generatorURL", max_length=2048)
    fingerprint: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_map(value, value_max=LABEL_VALUE_MAX, required=("alertname",))

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_map(value, value_max=ANNOTATION_VALUE_MAX)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _times(cls, value: datetime | None) -> datetime | None:
        return _real_time(value)

    @field_validator("generator_url")
    @classmethod
    def _text(cls, value: str) -> str:
        return _check_text(value)


class AlertmanagerNotification(BaseModel):
    """The webhook body Alertmanager posts (`version` "4")."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    version: Literal["4"]
    group_key: str = Field(alias="groupKey", max_length=4096)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=256)
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(default="", alias="externalURL", max_length=2048)
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    @field_validator("group_key", "receiver", "external_url")
    @classmethod
    def _text(cls, value: str) -> str:
        return _check_text(value)


AlertAction = Literal["created", "duplicate", "refired", "resolved", "resolved_unknown"]


class AlertOutcome(BaseModel):
    fingerprint: str
    status: Literal["firing", "resolved"]
    action: AlertAction = Field(
        description="created: a new incident; duplicate: the open incident already has it; "
        "refired: fired again after a resolution (a comment); resolved: the "
        "resolution was recorded; resolved_unknown: no open incident has it."
    )
    incident_id: int | None


class AlertmanagerReceipt(BaseModel):
    received: int
    created: int
    alerts: list[AlertOutcome]
