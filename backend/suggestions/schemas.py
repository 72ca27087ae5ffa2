"""Bodies of the suggestion endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SuggestionOut(BaseModel):
    incident_id: int
    status: Literal["pending", "generating", "ready", "failed", "skipped"] = Field(
        description="pending: waiting for a free LLM slot (in priority order); skipped: it waited past the backlog "
        "limit, ask for it again with POST .../suggestion/regenerate."
    )
    language: Literal["es", "en"] = Field(
        description="Language of the suggestion: the report's (detected) unless "
        "the request or PRS_SUGGESTION_LANGUAGE_MODE=fixed set it."
    )
    text: str = Field(description="The suggestion; partial while generating.")
    citations: list[int] = Field(description="Ids of retrieved incidents the suggestion relies on.")
    retrieved: list[int] = Field(description="Ids of the incidents that were retrieved for the prompt.")
    document_citations: list[int] = Field(
        default_factory=list,
        description="Ids of the knowledge documents the suggestion relies on (cited as [D<id>] "
        "in the text); always among retrieved_documents.",
    )
    retrieved_documents: list[int] = Field(
        default_factory=list, description="Ids of the knowledge documents that were retrieved."
    )
    model: str | None
    node: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    feedback: Literal["accepted", "rejected"] | None
    feedback_at: datetime | None
    rating: int | None
    rated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accepted", "rejected"]


class RatingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: int = Field(ge=1, le=5)


class RegenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: Literal["es", "en"] | None = None
