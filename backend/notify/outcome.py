"""The result of one delivery attempt, whatever the channel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EXCERPT_CHARS = 500


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt achieved: delivered, worth retrying, or failed for good."""

    outcome: Literal["success", "retry", "fail"]
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    duration_ms: int = 0

    @property
    def succeeded(self) -> bool:
        """True when the target accepted the message."""
        return self.outcome == "success"


def excerpt_of(text: str) -> str:
    """The start of a response, short enough for the delivery log."""
    return text[:EXCERPT_CHARS]
