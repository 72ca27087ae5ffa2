"""Backup runs: create (dump, vectors, encrypt, upload, manifest last), verify, prune and the schedule."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Awaitable, Callable

import asyncpg

from agent.store import VectorStoreUnavailable
from backend.audit.service import record_alone
from backend.clock import Clock
from backend.config import Settings
from backend.context import RequestContext, system_context
from backups import repository
from backups.anchors import AnchorStore, anchor_audit_head
from backups.catalog import ENCRYPTED_SUFFIX, MANIFEST, BackupInfo, Catalog
from backups.crypto import (
    EncryptionKeyMissing,
    check_passphrase,
    derive_key,
    encrypt_file,
    key_check,
    new_key_parameters,
    sha256_of,
)
from backups.database import dump_database
from backups.manifest import DATABASE_OBJECT, VECTORS_OBJECT, Manifest, ObjectEntry, new_backup_id
from backups.metrics import BackupMetrics
from backups.retention import RetentionPolicy, backups_to_delete, tier_due
from backups.storage import ObjectStore
from backups.vectors import ExportableStore, save_vectors
from backups.verify import verify_backup

log = logging.getLogger(__name__)


def _product_version() -> str:
    try:
        return metadata.version("pr-system")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


PRODUCT_VERSION = _product_version()
ORPHAN_GRACE_S = 24 * 3600  # objects of a backup without manifest this old are leftovers of a failed run


@dataclass
class BackupService:
    """Everything an operator or the schedule does with backups."""

    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    store: ObjectStore
    vector_store: ExportableStore | None
    metrics: BackupMetrics | None = None
    anchors: AnchorStore | None = None
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    catalog: Catalog = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.store, self.settings.backup_bucket, self.settings.backup_prefix)

    # --- recording ------------------------------------------------------------------------------

    async def _start(self, operation: str, *, tier: str | None, backup_id: str | None, trigger: str) -> int:
        async with self.pool.acquire() as conn:
            return await repository.start_run(
                conn, operation=operation, tier=tier, backup_id=backup_id, trigger=trigger, started_at=self.clock.now()
            )

    async def _finish(
        self,
        run_id: int,
        *,
        ok: bool,
        started: float,
        attempts: int = 1,
        backup_id: str | None = None,
        size_bytes: int | None = None,
        error: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        async with self.pool.acquire() as conn:
            await repository.finish_run(
                conn,
                run_id,
                status="succeeded" if ok else "failed",
                finished_at=self.clock.now(),
                duration_s=time.perf_counter() - started,
                attempts=attempts,
                backup_id=backup_id,
                size_bytes=size_bytes,
                error=error,
                detail=detail,
            )

    async def _audit(
        self, ctx: RequestContext | None, action: str, backup_id: str | None, after: dict[str, Any]
    ) -> None:
        await record_alone(
            self.pool,
            ctx or system_context("backup"),
            at=self.clock.now(),
            action=action,
            resource_type="backup",
            resource_id=backup_id,
            after=after,
        )

    # --- create ---------------------------------------------------------------------------------

    async def create(
        self, *, tier: str, trigger: str = "cli", attempts: int = 1, ctx: RequestContext | None = None
    ) -> Manifest:
        """Take one backup, retrying with backoff; every outcome is recorded, audited and measured."""
        run_id = await self._start("create", tier=tier, backup_id=None, trigger=trigger)
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                check_passphrase(self.settings.backup_encryption_key)  # never written unencrypted
                manifest = await self._create_once(tier)
                break
            except Exception as exc:  # noqa: BLE001 - recorded, audited, counted and raised after the last attempt
                error = f"{type(exc).__name__}: {exc}"[:2000]
                if attempt < attempts and not isinstance(exc, EncryptionKeyMissing):  # a missing key stays missing
                    delay = self.settings.backup_retry_base_s * 2 ** (attempt - 1)
                    log.warning(
                        "backup attempt failed; retrying",
                        extra={"tier": tier, "attempt": attempt, "retry_in_s": delay, "error": error},
                    )
                    await self.sleep(delay)
                    continue
                await self._finish(run_id, ok=False, started=started, attempts=attempt, error=error)
                await self._audit(ctx, "backup.failed", None, {"tier": tier, "attempts": attempt, "error": error})
                if self.metrics is not None:
                    self.metrics.backup_failed(tier)
                raise
        duration = time.perf_counter() - started
        anchor = await self._anchor_quietly(manifest.audit_head, f"backup {manifest.backup_id}")
        summary = {
            "tier": tier,
            "size_bytes": manifest.size_bytes,
            "audit_head": manifest.audit_head,
            "duration_s": round(duration, 3),
            "anchor": anchor,
        }
        await self._finish(
            run_id,
            ok=True,
            started=started,
            attempts=attempt,
            backup_id=manifest.backup_id,
            size_bytes=manifest.size_bytes,
            detail=summary,
        )
        await self._audit(ctx, "backup.created", manifest.backup_id, summary)
        if self.metrics is not None:
            self.metrics.backup_succeeded(
                tier, finished_at=self.clock.now().timestamp(), duration_s=duration, size_bytes=manifest.size_bytes
            )
        return manifest

    async def _anchor_quietly(self, head: dict[str, Any], reason: str) -> dict[str, Any] | None:
        """Anchor with a backup; a failed anchor is reported in the run, never fails the backup itself."""
        if self.anchors is None:
            return None
        try:
            return await anchor_audit_head(self.pool, self.anchors, reason=reason, head=head)
        except Exception as exc:  # noqa: BLE001 - the backup is complete; the hourly anchor job tries again
            log.warning("audit anchor with backup failed", exc_info=True)
            return {"anchored": False, "error": f"{type(exc).__name__}: {exc}"}

    def work_dir(self) -> Path:
        """Scratch folder for dumps and downloads (under the data folder: it may need as much room as a backup)."""
        folder = self.settings.ensure_data_dir() / "backup-work"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    async def _create_once(self, tier: str) -> Manifest:
        parameters = new_key_parameters()
        key = await asyncio.to_thread(derive_key, self.settings.backup_encryption_key, parameters)
        started_at = self.clock.now()
        backup_id = new_backup_id(started_at, tier)
        await asyncio.to_thread(self.store.ensure_bucket, self.settings.backup_bucket)
        source = self.settings.backup_source_database_url or self.settings.database_url
        uploaded: list[str] = []
        with tempfile.TemporaryDirectory(prefix="prs-backup-", dir=self.work_dir()) as tmp:
            folder = Path(tmp)
            facts = await dump_database(source, folder / DATABASE_OBJECT, bin_dir=self.settings.backup_pg_bin_dir)
            vectors = await self._save_vectors(folder / VECTORS_OBJECT)
            try:
                entries = []
                for name in [DATABASE_OBJECT] + ([VECTORS_OBJECT] if vectors["included"] else []):
                    entries.append(await self._seal_and_upload(key, backup_id, folder / name, uploaded))
                manifest = Manifest(
                    backup_id=backup_id,
                    tier=tier,
                    product_version=PRODUCT_VERSION,
                    schema_level=facts.schema_level,
                    started_at=started_at.isoformat(),
                    finished_at=self.clock.now().isoformat(),
                    source="standby" if self.settings.backup_source_database_url else "primary",
                    row_counts=facts.row_counts,
                    audit_head=facts.audit_head,
                    encryption={
                        "algorithm": "AES-256-GCM, 4 MiB chunks",
                        **parameters.as_dict(),
                        "key_check": key_check(key),
                    },
                    objects=entries,
                    vectors=vectors,
                    size_bytes=sum(e.size for e in entries),
                )
                # The manifest goes last: until it exists the backup is not listed, verified or restored.
                await asyncio.to_thread(
                    self.store.upload_bytes,
                    self.settings.backup_bucket,
                    self.catalog.object_name(backup_id, MANIFEST),
                    manifest.to_json(),
                )
            except Exception:
                await asyncio.to_thread(self._remove_quietly, uploaded)
                raise
        return manifest

    def _remove_quietly(self, names: list[str]) -> None:
        try:
            self.store.remove(self.settings.backup_bucket, names)
        except Exception:  # noqa: BLE001 - storage is failing already; prune removes leftovers later
            log.warning("could not remove the objects of a failed backup; prune will", exc_info=True)

    async def _save_vectors(self, target: Path) -> dict[str, Any]:
        if self.vector_store is None:
            return {"included": False, "reason": "no vector store configured; rebuilt from Postgres at restore"}
        try:
            count = await asyncio.to_thread(save_vectors, self.vector_store, target)
        except VectorStoreUnavailable as exc:
            log.warning("vector store unavailable during backup; vectors will be rebuilt at restore")
            return {"included": False, "reason": f"vector store unavailable: {exc}"}
        return {"included": True, "count": count, "collection": self.settings.chroma_collection}

    async def _seal_and_upload(self, key: bytes, backup_id: str, plain: Path, uploaded: list[str]) -> ObjectEntry:
        name = plain.name
        sealed = plain.with_name(name + ENCRYPTED_SUFFIX)
        await asyncio.to_thread(encrypt_file, key, name, plain, sealed)
        entry = ObjectEntry(
            name=name,
            size=sealed.stat().st_size,
            sha256=await asyncio.to_thread(sha256_of, sealed),
            plaintext_size=plain.stat().st_size,
            plaintext_sha256=await asyncio.to_thread(sha256_of, plain),
        )
        plain.unlink()
        object_name = self.catalog.object_name(backup_id, name + ENCRYPTED_SUFFIX)
        uploaded.append(object_name)
        await asyncio.to_thread(self.store.upload_file, self.settings.backup_bucket, object_name, sealed)
        sealed.unlink()
        return entry

    # --- list, verify, prune --------------------------------------------------------------------

    async def list_backups(self) -> list[BackupInfo]:
        """Complete backups, oldest first."""
        return await asyncio.to_thread(self.catalog.list_backups)

    async def verify(
        self, backup_id: str, *, trigger: str = "cli", ctx: RequestContext | None = None
    ) -> dict[str, Any]:
        """Download, check, decrypt and restore a backup into a scratch database; compare it with its manifest."""
        run_id = await self._start("verify", tier=None, backup_id=backup_id, trigger=trigger)
        started = time.perf_counter()
        try:
            report = await verify_backup(self.settings, self.catalog, backup_id, work_dir=self.work_dir())
        except Exception as exc:  # noqa: BLE001 - storage or database down: recorded as a failed run, then raised
            await self._finish(run_id, ok=False, started=started, error=f"{type(exc).__name__}: {exc}"[:2000])
            if self.metrics is not None:
                self.metrics.verified(ok=False, at=self.clock.now().timestamp())
            raise
        verified_at = self.clock.now()
        report["verified_at"] = verified_at.isoformat()
        if report["conclusive"]:
            await asyncio.to_thread(self.catalog.write_verify_record, report["backup_id"], report)
        await self._finish(
            run_id,
            ok=report["ok"],
            started=started,
            backup_id=report["backup_id"],
            error=None if report["ok"] else "; ".join(report["problems"])[:2000],
            detail=report,
        )
        await self._audit(
            ctx,
            "backup.verified" if report["ok"] else "backup.verify_failed",
            report["backup_id"],
            {"ok": report["ok"], "problems": report["problems"]},
        )
        if self.metrics is not None:
            self.metrics.verified(ok=report["ok"], at=verified_at.timestamp())
        return report

    async def prune(self, *, trigger: str = "cli", ctx: RequestContext | None = None) -> dict[str, Any]:
        """Delete expired backups (never a tier's newest verified one) and leftovers of failed runs."""
        run_id = await self._start("prune", tier=None, backup_id=None, trigger=trigger)
        started = time.perf_counter()
        now = self.clock.now()
        try:
            grouped = await asyncio.to_thread(self.catalog.objects_by_backup)
            backups = await self.list_backups()
        except Exception as exc:  # noqa: BLE001 - recorded as a failed run, then raised
            await self._finish(run_id, ok=False, started=started, error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        doomed = backups_to_delete([b.facts() for b in backups], now, RetentionPolicy.from_settings(self.settings))
        complete = {b.backup_id for b in backups}
        orphans = [
            backup_id
            for backup_id, objects in grouped.items()
            if backup_id not in complete and all(_older_than(modified, now, ORPHAN_GRACE_S) for _, modified in objects)
        ]
        for backup_id in doomed + orphans:
            await asyncio.to_thread(self.catalog.delete_backup, [name for name, _ in grouped.get(backup_id, [])])
        report = {"deleted": doomed, "leftovers_removed": orphans, "kept": len(backups) - len(doomed)}
        await self._finish(run_id, ok=True, started=started, detail=report)
        if doomed or orphans:
            await self._audit(ctx, "backup.pruned", None, report)
        return report

    # --- the schedule ---------------------------------------------------------------------------

    async def scheduled_run(self, _tick: datetime) -> dict[str, Any]:
        """The hourly job: take the backup of the tier that is due, verify it unless hourly, then prune."""
        try:
            backups = await self.list_backups()
        except Exception as exc:  # noqa: BLE001 - storage down before the backup began: still a failed backup run
            await self._failed_without_attempt("hourly", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        tier = tier_due(self.clock.now(), [b.facts() for b in backups])
        manifest = await self.create(tier=tier, trigger="schedule", attempts=self.settings.backup_retry_attempts)
        result: dict[str, Any] = {"backup_id": manifest.backup_id, "tier": tier}
        if tier != "hourly":
            result["verified"] = (await self.verify(manifest.backup_id, trigger="schedule"))["ok"]
        result["prune"] = await self.prune(trigger="schedule")
        return result

    async def _failed_without_attempt(self, tier: str, error: str) -> None:
        """Record, audit and count a scheduled run that failed before its tier was known."""
        run_id = await self._start("create", tier=tier, backup_id=None, trigger="schedule")
        await self._finish(run_id, ok=False, started=time.perf_counter(), attempts=0, error=error)
        await self._audit(None, "backup.failed", None, {"tier": tier, "attempts": 0, "error": error})
        if self.metrics is not None:
            self.metrics.backup_failed(tier)

    async def last_verify(self) -> dict[str, Any] | None:
        """The newest recorded verification."""
        async with self.pool.acquire() as conn:
            row = await repository.last_verify(conn)
        return None if row is None else dict(row)

    async def recent_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest runs, newest first."""
        async with self.pool.acquire() as conn:
            return [dict(row) for row in await repository.latest_runs(conn, limit=limit)]


def _older_than(moment: datetime | None, now: datetime, seconds: float) -> bool:
    return moment is not None and (now - moment).total_seconds() > seconds
