"""Shapes of knowledge-base results: service value objects and API models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EntryKind = Literal["incident", "document"]
ALL_KINDS: tuple[EntryKind, ...] = ("incident", "document")


class ConfirmedMatch(BaseModel):
    """A report and the knowledge-base entry that solved it, to adapt the encoder with (one line of
    `prs knowledge adapt --pairs`): exactly one of document_id and incident_id."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1, max_length=20_000, description="The report as it was written (title and description)."
    )
    document_id: int | None = Field(default=None, ge=1, description="The knowledge document that solved it.")
    incident_id: int | None = Field(default=None, ge=1, description="The resolved incident that solved it.")

    @model_validator(mode="after")
    def _one_target(self) -> ConfirmedMatch:
        if (self.document_id is None) == (self.incident_id is None):
            raise ValueError("give exactly one of document_id and incident_id")
        if not self.query.strip():
            raise ValueError("query is blank")
        return self


@dataclass(frozen=True)
class SimilarIncident:
    """A resolved incident similar to a new one."""

    incident_id: int
    score: float
    title: str
    resolution: str | None
    area: str | None


@dataclass(frozen=True)
class KnowledgeHit:
    """One search result: a resolved incident or the best-matching chunk of a document."""

    kind: EntryKind
    entry_id: str
    score: float
    dense_score: float | None
    lexical_score: float | None
    title: str
    text: str
    resolution: str
    area: str | None
    incident_id: int | None
    document_id: int | None
    document_title: str | None
    chunk_index: int | None
    heading: str


class KnowledgeHitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: EntryKind
    entry_id: str = Field(description="Stable id in the index: `inc:<incident id>` or `doc:<document id>:<chunk>`.")
    score: float = Field(description="Fused similarity in [0, 1]; higher is closer.")
    dense_score: float | None = Field(description="Cosine similarity of the embeddings; null when not measured.")
    lexical_score: float | None = Field(description="BM25 score normalised to [0, 1]; null when no query term matched.")
    title: str
    text: str = Field(description="The incident's description or the document chunk's text.")
    resolution: str = Field(description="How the incident was solved; empty for documents.")
    area: str | None
    incident_id: int | None
    document_id: int | None
    document_title: str | None
    chunk_index: int | None
    heading: str = Field(description="Heading path of a document chunk; empty for incidents.")


class KnowledgeSearchOut(BaseModel):
    query: str
    area: str | None
    results: list[KnowledgeHitOut] = Field(
        description="Best first (by match, then recency among incidents and brevity among documents); "
        "at most `limit`, none under the minimum score."
    )


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    filename: str
    area: str | None = Field(description="Area the document applies to; null: every area.")
    content_sha256: str
    size_bytes: int
    chunk_count: int = Field(description="How many retrievable chunks the document was split into.")
    created_at: datetime
