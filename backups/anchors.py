"""Audit anchors: the audit chain's head written to write-once (Object Lock) storage, and the check against them.

The hash chain proves that no single audit row changed; it cannot prove that someone with superuser rights did
not rewrite the whole chain consistently. An anchor, locked in another system, can: a rewritten chain no longer
has the anchored hash at the anchored sequence number.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

import asyncpg

from backend.audit.service import verify_chain
from backend.clock import Clock
from backend.config import Settings
from backups import repository
from backups.storage import ObjectStore, StorageError

ANCHOR_PREFIX = "anchors/"
COMPLIANCE_UNSUPPORTED = {"NotImplemented", "InvalidRequest", "InvalidArgument", "MalformedXML"}
log = logging.getLogger(__name__)


class AnchorsNotConfigured(Exception):
    """PRS_BACKUP_ANCHOR_BUCKET (or the storage endpoint) is empty."""


@dataclass(frozen=True)
class Anchor:
    """One anchored audit head."""

    object_name: str
    seq: int
    hash: str
    anchored_at: str
    reason: str


class AnchorStore:
    """Writes and reads anchors in the Object Lock bucket."""

    def __init__(self, *, store: ObjectStore, bucket: str, retention_days: int, compliance: bool, clock: Clock):
        self.store = store
        self.bucket = bucket
        self.retention_days = retention_days
        self.compliance = compliance
        self.clock = clock
        self._bucket_ready = False

    @classmethod
    def from_settings(cls, settings: Settings, store: ObjectStore, clock: Clock) -> "AnchorStore":
        """The anchor store of PRS_BACKUP_ANCHOR_*; AnchorsNotConfigured without a bucket."""
        if not settings.backup_anchor_bucket:
            raise AnchorsNotConfigured("audit anchors are not configured: set PRS_BACKUP_ANCHOR_BUCKET")
        return cls(
            store=store,
            bucket=settings.backup_anchor_bucket,
            retention_days=settings.backup_anchor_retention_days,
            compliance=settings.backup_anchor_lock_mode == "compliance",
            clock=clock,
        )

    def write(self, *, seq: int, hash_hex: str, reason: str) -> str:
        """Lock one anchor for the retention period; returns its object name."""
        if not self._bucket_ready:
            self.store.ensure_bucket(self.bucket, object_lock=True)
            self._bucket_ready = True
        now = self.clock.now().astimezone(timezone.utc)
        name = f"{ANCHOR_PREFIX}{seq:015d}-{now:%Y%m%dT%H%M%S%fZ}.json"
        body = json.dumps(
            {"seq": seq, "hash": hash_hex, "anchored_at": now.isoformat(), "reason": reason}, sort_keys=True
        ).encode()
        until = now + timedelta(days=self.retention_days)
        try:
            self.store.upload_locked(self.bucket, name, body, until=until, compliance=self.compliance)
        except StorageError as exc:
            if not (self.compliance and exc.code in COMPLIANCE_UNSUPPORTED):
                raise
            # Compliance mode where the server supports it; governance mode (which privileged users may lift)
            # on servers without it, said loudly once.
            log.warning(
                "object store has no compliance-mode Object Lock; anchoring in governance mode",
                extra={"bucket": self.bucket, "code": exc.code},
            )
            self.compliance = False
            self.store.upload_locked(self.bucket, name, body, until=until, compliance=False)
        return name

    def read_all(self) -> list[Anchor]:
        """Every anchor in the bucket, lowest sequence number first.

        Versions are listed, not current objects: deleting a locked anchor only adds a delete marker, which must
        not hide it from the check."""
        anchors = []
        for stored in self.store.list_versions(self.bucket, ANCHOR_PREFIX):
            try:
                values = json.loads(self.store.read_bytes(self.bucket, stored.name, version_id=stored.version_id))
                anchors.append(
                    Anchor(
                        object_name=stored.name,
                        seq=int(values["seq"]),
                        hash=str(values["hash"]),
                        anchored_at=str(values["anchored_at"]),
                        reason=str(values.get("reason", "")),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise StorageError(f"anchor {stored.name} cannot be read: {exc}") from exc
        return sorted(anchors, key=lambda a: (a.seq, a.object_name))


async def anchor_audit_head(
    pool: asyncpg.Pool, anchors: AnchorStore, *, reason: str, head: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Anchor the current audit head (or the given one); nothing is written for an empty chain."""
    if head is None:
        async with pool.acquire() as conn:
            head = await repository.audit_head(conn)
    if not head["seq"]:
        return {"anchored": False, "reason": "the audit log is empty"}
    name = anchors.write(seq=int(head["seq"]), hash_hex=str(head["hash"]), reason=reason)
    return {"anchored": True, "object": name, "seq": head["seq"], "hash": head["hash"]}


async def verify_against_anchors(pool: asyncpg.Pool, anchors: AnchorStore) -> dict[str, Any]:
    """The plain chain check plus every anchor: the first anchor whose sequence number no longer has its hash."""
    report = await verify_chain(pool)
    found = anchors.read_all()
    checked = 0
    async with pool.acquire() as conn:
        for anchor in found:
            current = await repository.audit_hash_at(conn, anchor.seq)
            if current != anchor.hash:
                why = (
                    "the audit log has no row with this sequence number any more"
                    if current is None
                    else "the row at this sequence number has another hash: the chain was rewritten"
                )
                report.update(
                    ok=False,
                    anchors_checked=checked,
                    anchors_total=len(found),
                    first_mismatched_anchor={
                        "object": anchor.object_name,
                        "seq": anchor.seq,
                        "anchored_hash": anchor.hash,
                        "database_hash": current,
                        "anchored_at": anchor.anchored_at,
                        "reason": why,
                    },
                )
                return report
            checked += 1
    report.update(anchors_checked=checked, anchors_total=len(found))
    return report
