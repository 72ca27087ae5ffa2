"""The manifest of one backup: what it holds, how it was sealed, and how to check it. Written last."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

FORMAT_VERSION = 1
TIERS = ("hourly", "daily", "weekly", "monthly")
DATABASE_OBJECT = "database.dump"
VECTORS_OBJECT = "vectors.npz"


class ManifestInvalid(Exception):
    """A manifest that cannot be read or is of an unknown format."""


@dataclass(frozen=True)
class ObjectEntry:
    """One encrypted object of a backup with both checksums."""

    name: str
    size: int
    sha256: str  # of the encrypted object as stored
    plaintext_size: int
    plaintext_sha256: str


@dataclass
class Manifest:
    """Everything needed to check and restore one backup (no secrets: the key is never in it)."""

    backup_id: str
    tier: str
    product_version: str
    schema_level: int
    started_at: str
    finished_at: str
    source: str  # "primary" or "standby"
    row_counts: dict[str, int]
    audit_head: dict[str, Any]
    encryption: dict[str, Any]
    objects: list[ObjectEntry] = field(default_factory=list)
    vectors: dict[str, Any] = field(default_factory=dict)
    size_bytes: int = 0
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        """The manifest object's content."""
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> "Manifest":
        """Parse a stored manifest; ManifestInvalid when it is not one."""
        try:
            values = json.loads(raw)
            if values.get("format_version") != FORMAT_VERSION:
                raise ManifestInvalid(f"manifest format {values.get('format_version')} is not {FORMAT_VERSION}")
            values["objects"] = [ObjectEntry(**entry) for entry in values.get("objects", [])]
            return cls(**values)
        except (ValueError, TypeError, KeyError) as exc:
            raise ManifestInvalid(f"manifest cannot be read: {exc}") from exc

    @property
    def created_at(self) -> datetime:
        """When the backup began (its place in the retention tiers)."""
        return datetime.fromisoformat(self.started_at)

    def entry(self, name: str) -> ObjectEntry | None:
        """The object of this name, if the backup holds one."""
        return next((entry for entry in self.objects if entry.name == name), None)


def new_backup_id(now: datetime, tier: str) -> str:
    """A sortable, unique id: UTC start time, tier and a random suffix."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}")
    return f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{tier}-{secrets.token_hex(3)}"


def is_backup_id(value: str) -> bool:
    """True for strings shaped like `new_backup_id` output (object names are built from them)."""
    parts = value.split("-")
    return (
        len(parts) == 3
        and len(parts[0]) == 16
        and parts[0][8] == "T"
        and parts[1] in TIERS
        and len(parts[2]) == 6
        and all(c in "0123456789abcdef" for c in parts[2])
    )
