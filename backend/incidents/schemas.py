"""Request and response bodies of the incident endpoints, with their documented limits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from backend.schema_fields import omitted

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


# One annotated type per field, shared by creation and change, so POST and PATCH validate alike.
Title = Annotated[str, Field(min_length=1, max_length=TITLE_MAX), AfterValidator(_not_blank)]
Description = Annotated[str, Field(min_length=1, max_length=DESCRIPTION_MAX), AfterValidator(_not_blank)]
AreaCode = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_not_blank)]
Category = Annotated[str | None, Field(max_length=100)]
CustomerTier = Annotated[str | None, Field(max_length=32)]
ExternalRef = Annotated[str | None, Field(max_length=128)]
Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX), AfterValidator(_not_blank)]
Tags = Annotated[list[Tag], Field(max_length=TAGS_MAX)]


class IncidentCreate(BaseModel):
    """A new incident. Limits: title 1-200 chars, description 1-20,000 chars, up to 20 tags of 40 chars."""

    model_config = ConfigDict(extra="forbid")
    title: Title = Field(examples=["Cinta transportadora línea 3 sobrecalentada"])
    description: Description = Field(
        examples=["El motor de la cinta de la línea 3 se para con alarma E-4021 tras 20 minutos."]
    )
    area: AreaCode = Field(examples=["production"])
    priority: Priority
    category: Category = None
    customer_tier: CustomerTier = None
    external_ref: ExternalRef = None
    tags: Tags = Field(default_factory=list)
    language: Language | None = Field(
        default=None,
        description="Language of the suggestion; default: the language the report is written in (es or en).",
    )


class IncidentUpdate(BaseModel):
    """Fields a technician may change; status has its own endpoint. An omitted field stays as it is; null is
    accepted only where the incident allows it (category, customer_tier, external_ref: null clears them)."""

    model_config = ConfigDict(extra="forbid")
    title: Title = omitted()
    description: Description = omitted()
    area: AreaCode = omitted()
    priority: Priority = omitted()
    category: Category = None
    customer_tier: CustomerTier = None
    external_ref: ExternalRef = None
    tags: Tags = omitted()


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
    solution: str | None = Field(
        default=None, max_length=SOLUTION_MAX, description="Required when the target status is 'resolved'."
    )
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
    score: float = Field(
        description="Similarity in [0, 1]; higher is closer. Lists are ordered by similarity and then by "
        "how close in time the incident was reported, so scores are not always decreasing."
    )
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
