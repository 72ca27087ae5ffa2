"""Response bodies of the audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryOut(BaseModel):
    id: int
    seq: int | None = Field(description="Position in the hash chain; null only until the writing transaction commits.")
    occurred_at: datetime
    actor_kind: str
    actor_id: str | None
    actor_name: str
    action: str
    resource_type: str
    resource_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client_ip: str | None
    request_id: str | None
    prev_hash: str | None
    hash: str | None


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next (older) page; null on the last.")


class BrokenLink(BaseModel):
    id: int
    seq: int | None
    reason: str


class ChainReport(BaseModel):
    ok: bool
    rows_checked: int
    head_seq: int | None = None
    head_hash: str | None = Field(
        default=None,
        description="Record it elsewhere: a later verify that ends on "
        "the same or a longer chain through it proves no "
        "row up to it was removed.",
    )
    first_broken: BrokenLink | None = None
