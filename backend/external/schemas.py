"""Bodies of the external API: small, stable shapes for machines."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.incidents.schemas import (
    DESCRIPTION_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    Language,
    Priority,
    SimilarIncidentOut,
    Status,
)
from backend.knowledge.schemas import KnowledgeHitOut


class ExternalIncidentCreate(BaseModel):
    """An incident reported by an external system; the system (the API key's name) becomes its reporter."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=TITLE_MAX, examples=["Line 3 conveyor motor overheating"])
    description: str = Field(
        min_length=1,
        max_length=DESCRIPTION_MAX,
        examples=["Alarm E-4021 on the line 3 conveyor motor after 20 minutes of running."],
    )
    area: str = Field(min_length=1, max_length=64, examples=["production"])
    priority: Priority = "medium"
    category: str | None = Field(default=None, max_length=100)
    external_ref: str | None = Field(
        default=None, max_length=128, description="The incident's id in your system.", examples=["MES-2026-00042"]
    )
    tags: list[str] = Field(default_factory=list, max_length=TAGS_MAX)
    language: Language | None = Field(default=None, description="Language of the suggestion.")

    @field_validator("title", "description", "area", "category", "external_ref")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("title", "description", "area")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty or blank")
        return value

    @field_validator("tags")
    @classmethod
    def _short_tags(cls, tags: list[str]) -> list[str]:
        cleaned = [t.strip() for t in tags]
        if any(not t or len(t) > TAG_MAX or "\x00" in t for t in cleaned):
            raise ValueError(f"each tag must have 1-{TAG_MAX} characters")
        return cleaned


class ExternalSuggestion(BaseModel):
    status: Literal["pending", "generating", "ready", "failed", "skipped"]
    language: Literal["es", "en"]
    text: str = Field(description="The suggestion; partial while generating.")
    citations: list[int] = Field(description="Ids of past incidents the suggestion relies on.")
    completed_at: datetime | None


class ExternalIncidentStatus(BaseModel):
    id: int
    title: str
    area: str
    priority: Priority
    status: Status
    external_ref: str | None
    reporter: str = Field(description="Who reported it: a person's username or an external system's key name.")
    resolution: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    closed_at: datetime | None
    suggestion: ExternalSuggestion | None


class ExternalIncidentCreated(ExternalIncidentStatus):
    similar: list[SimilarIncidentOut] = Field(description="Most similar resolved incidents, best first.")


class ExternalSearchOut(BaseModel):
    query: str
    area: str | None
    results: list[KnowledgeHitOut] = Field(description="Best first; at most `limit`.")
