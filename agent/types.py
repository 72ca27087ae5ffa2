"""Value objects passed between the backend and the agent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EntryKind = Literal["incident", "document"]


@dataclass(frozen=True)
class ScoredEntry:
    """One knowledge-base entry found by retrieval, before the backend adds its text.

    score is the match in [0, 1] shown to people; rank_score orders the results (agent/retrieve.py).
    """

    entry_id: str
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None
    rank_score: float = 0.0


@dataclass(frozen=True)
class CaseForPrompt:
    """A retrieved case as the prompt builder sees it: fenced as data, cited by id."""

    incident_id: int | None
    document_title: str | None
    title: str
    problem: str
    solution: str
    score: float
    document_id: int | None = None

    @property
    def citation(self) -> str:
        """The marker the LLM is asked to use when it relies on this case."""
        return f"#{self.incident_id}" if self.incident_id is not None else f"doc:{self.document_title}"


@dataclass(frozen=True)
class Suggestion:
    """A suggestion with only grounded citations: incidents in `citations`, documents in `document_citations`."""

    text: str
    citations: list[int] = field(default_factory=list)
    document_citations: list[int] = field(default_factory=list)
    model: str = ""
    node: str = ""
    completion_tokens: int = 0
