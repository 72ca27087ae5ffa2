"""Request and response bodies of the backup admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class BackupOut(BaseModel):
    """One complete backup in the bucket."""

    id: str
    tier: str
    created: datetime
    size: int = Field(description="Stored (encrypted) bytes.")
    verified: bool | None = Field(description="Result of the last verification; null when never verified.")
    verified_at: datetime | None


class BackupCreate(BaseModel):
    """Start a backup now."""

    model_config = ConfigDict(extra="forbid")
    tier: Literal["hourly", "daily", "weekly", "monthly"] = "daily"


class BackupCreated(BaseModel):
    """The backup just taken."""

    id: str
    tier: str
    size: int
    schema_level: int
    audit_head: dict[str, Any]
    started_at: datetime
    finished_at: datetime


class VerifyResult(BaseModel):
    """The newest verification run."""

    backup_id: str | None
    status: str
    finished_at: datetime | None
    duration_s: float | None
    error: str | None
    detail: dict[str, Any] | None


class BackupRunOut(BaseModel):
    """One recorded run (create, verify, prune)."""

    id: int
    operation: str
    tier: str | None
    backup_id: str | None
    status: str
    trigger: str
    attempts: int
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    size_bytes: int | None
    error: str | None
