"""Request and response bodies of the incident endpoints, with their documented limits."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Priority = Literal["low", "medium", "high", "critical"]
Status = Literal["open", "in_progress", "waiting", "resolved", "closed"]
Language = Literal["es", "en"]

TITLE_MAX = 200
DESCRIPTION_MAX = 20_000
COMMENT_MAX = 10_000
SOLUTION_MAX = 20_000
TAGS_MAX = 20
TAG_MAX = 40


def _not_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or blank")
    return value


class IncidentCreate(BaseModel):
    """A new incident. Limits: title 1-200 chars, description 1-20,000 chars, up to 20 tags of 40 chars."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=TITLE_MAX, examples=["Cinta transportadora línea 3 sobrecalentada"])
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX,
                             examples=["El motor de la cinta de la línea 3 se para con alarma E-4021 tras 20 minutos."])
    area: str = Field(min_length=1, max_length=64, examples=["production"])
    priority: Priority
    category: str | None = Field(default=None, max_length=100)
    customer_tier: str | None = Field(default=None, max_length=32)
    external_ref: str | None = Field(default=None, max_length=128)
    tags: list[str] = Field(default_factory=list, max_length=TAGS_MAX)
    language: Language | None = Field(default=None, description="Language of the suggestion; default from settings.")

    _title_not_blank = field_validator("title", "description", "area")(_not_blank)

    @field_validator("tags")
    @classmethod
    def _tags_are_short(cls, tags: list[str]) -> list[str]:
        cleaned = []
        for tag in tags:
            tag = tag.strip()
            if not tag or len(tag) > TAG_MAX:
                raise ValueError(f"each tag must have 1-{TAG_MAX} characters")
            cleaned.append(tag)
        return cleaned


class IncidentUpdate(BaseModel):
    """Fields a technician may change; status has its own endpoint."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(default=None, min_length=1, max_length=DESCRIPTION_MAX)
    area: str | None = Field(default=None, min_length=1, max_length=64)
    priority: Priority | None = None
    category: str | None = Field(default=None, max_length=100)
    customer_tier: str | None = Field(default=None, max_length=32)
    external_ref: str | None = Field(default=None, max_length=128)
    tags: list[str] | None = Field(default=None, max_length=TAGS_MAX)

    @field_validator("title", "description", "area")
    @classmethod
    def _not_blank_if_given(cls, value: str | None) -> str | None:
        return None if value is None else _not_blank(value)


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee_id: int | None = Field(description="A technician, supervisor or admin; null unassigns.")


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=COMMENT_MAX)

    _body_not_blank = field_validator("body")(_not_blank)


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status
    solution: str | None = Field(default=None, max_length=SOLUTION_MAX,
                                 description="Required when the target status is 'resolved'.")
    reason: str | None = Field(default=None, max_length=COMMENT_MAX)


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    solution: str = Field(min_length=1, max_length=SOLUTION_MAX)

    _solution_not_blank = field_validator("solution")(_not_blank)


class ReopenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=COMMENT_MAX)

    _reason_not_blank = field_validator("reason")(_not_blank)


class PersonRef(BaseModel):
    id: int | None
    name: str


class SimilarIncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    incident_id: int
    score: float = Field(description="Similarity in [0, 1]; higher is closer.")
    title: str
    resolution: str | None
    area: str | None = None


class IncidentOut(BaseModel):
    id: int
    title: str
    description: str
    area: str
    priority: Priority
    status: Status
    category: str | None
    reporter: PersonRef
    customer_tier: str | None
    external_ref: str | None
    tags: list[str]
    assignee: PersonRef | None
    resolution: str | None
    reopened_count: int
    source: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None


class IncidentCreated(IncidentOut):
    similar: list[SimilarIncidentOut] = Field(description="Most similar resolved incidents, best first.")
    suggestion_status: str = Field(description="State of the LLM suggestion, generated in the background.")


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null on the last page.")


class CommentOut(BaseModel):
    id: int
    incident_id: int
    author: PersonRef
    body: str
    created_at: datetime


class HistoryEntry(BaseModel):
    id: int
    occurred_at: datetime
    actor_kind: str
    actor_name: str
    action: str
    before: dict | None
    after: dict | None


class IncidentFilters(BaseModel):
    """Query filters of the incident list."""

    status: list[Status] | None = None
    area: str | None = None
    priority: list[Priority] | None = None
    text: str | None = Field(default=None, max_length=500)
    assignee_id: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=200)
