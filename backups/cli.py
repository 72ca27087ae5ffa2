"""`prs backup ...`, `prs audit verify --anchors` and `prs bench backup`: the operator's side of backups."""

from __future__ import annotations

import asyncio
import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Optional, TypeVar

import asyncpg
import typer

from backend.clock import SystemClock
from backend.config import Settings, load_settings
from backend.observability.logging import configure_logging
from backups.anchors import AnchorsNotConfigured, AnchorStore, verify_against_anchors
from backups.catalog import BackupNotFound
from backups.crypto import CorruptObject, EncryptionKeyMissing, WrongEncryptionKey
from backups.database import DatabaseToolError
from backups.manifest import TIERS, ManifestInvalid
from backups.restore import RestoreRefused, RestoreTarget, restore_backup
from backups.service import BackupService
from backups.storage import BackupsNotConfigured, ObjectStore, StorageError

T = TypeVar("T")
backup_app = typer.Typer(
    help="Backups to S3-compatible storage (MinIO): create, list, verify, restore, prune.", no_args_is_help=True
)
# Failures an operator can act on: one clear line on stderr and exit 1, never a traceback.
OPERATOR_ERRORS = (
    BackupsNotConfigured,
    StorageError,
    EncryptionKeyMissing,
    WrongEncryptionKey,
    CorruptObject,
    BackupNotFound,
    ManifestInvalid,
    RestoreRefused,
    DatabaseToolError,
    AnchorsNotConfigured,
    asyncpg.PostgresError,
    OSError,
)


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return settings


@asynccontextmanager
async def open_backup_service(settings: Settings, *, with_vectors: bool = True) -> AsyncIterator[BackupService]:
    """A backup service on its own small pool (the CLI does not need the whole container)."""
    from backend.container import build_vector_store
    from backend.db import create_pool
    from backups.metrics import BackupMetrics
    from backups.wiring import build_backup_service

    ObjectStore.from_settings(settings)  # BackupsNotConfigured before anything opens
    pool = await create_pool(settings.database_url, min_size=1, max_size=3)
    try:
        store = build_vector_store(settings) if with_vectors else None
        yield build_backup_service(
            settings, pool=pool, clock=SystemClock(), vector_store=store, metrics=BackupMetrics(None)
        )
    finally:
        await pool.close()


def _run(action: Callable[[BackupService], Awaitable[T]], *, with_vectors: bool = False) -> T:
    settings = _settings()

    async def run() -> T:
        async with open_backup_service(settings, with_vectors=with_vectors) as service:
            return await action(service)

    try:
        return asyncio.run(run())
    except OPERATOR_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@backup_app.command("create")
def backup_create(tier: str = typer.Option("daily", help="hourly, daily, weekly or monthly (retention tier)")) -> None:
    """Take a backup now (dump, vector index, encrypted upload, manifest last); the last line is its id."""
    if tier not in TIERS:
        typer.echo(f"error: --tier must be one of {', '.join(TIERS)}", err=True)
        raise typer.Exit(2)
    manifest = _run(lambda service: service.create(tier=tier, trigger="cli"), with_vectors=True)
    typer.echo(
        json.dumps(
            {
                "id": manifest.backup_id,
                "tier": manifest.tier,
                "size": manifest.size_bytes,
                "schema_level": manifest.schema_level,
                "audit_head": manifest.audit_head,
                "vectors": manifest.vectors,
            }
        )
    )
    typer.echo(manifest.backup_id)


@backup_app.command("list")
def backup_list() -> None:
    """Complete backups, oldest first, one JSON object per line (id, tier, created, size, verified)."""
    for backup in _run(lambda service: service.list_backups()):
        typer.echo(json.dumps(backup.as_dict()))


@backup_app.command("verify")
def backup_verify(backup_id: str = typer.Argument(..., help="a backup id from `prs backup list`")) -> None:
    """Download, check every checksum, decrypt, restore into a scratch database and compare; exit 1 on a problem."""
    report = _run(lambda service: service.verify(backup_id, trigger="cli"))
    typer.echo(json.dumps(report, default=str))
    if not report["ok"]:
        for problem in report["problems"]:
            typer.echo(f"problem: {problem}", err=True)
        raise typer.Exit(1)


@backup_app.command("restore")
def backup_restore(
    backup_id: str = typer.Argument(..., help="a backup id, or `latest`"),
    database_url: str = typer.Option(..., help="the database to restore into (must be empty)"),
    data_dir: Optional[Path] = typer.Option(None, help="restore vectors into DIR/chroma (embedded)"),
    chroma_url: Optional[str] = typer.Option(None, help="restore vectors into this Chroma server"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty database / vector store"),
) -> None:
    """Restore a backup into an empty database and, if named, a vector store; exit 1 when it does not match."""
    from backups.catalog import Catalog

    settings = _settings()
    target = RestoreTarget(
        database_url=database_url, data_dir=data_dir.resolve() if data_dir else None, chroma_url=chroma_url, force=force
    )

    async def run() -> dict[str, Any]:
        # No pool on PRS_DATABASE_URL: after a disaster that database may not exist (it may be the target).
        catalog = Catalog(ObjectStore.from_settings(settings), settings.backup_bucket, settings.backup_prefix)
        work_dir = settings.ensure_data_dir() / "backup-work"
        work_dir.mkdir(parents=True, exist_ok=True)
        return await restore_backup(settings, catalog, backup_id, target, work_dir=work_dir)

    try:
        report = asyncio.run(run())
    except OPERATOR_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(report, default=str))
    if not report["ok"]:
        raise typer.Exit(1)


@backup_app.command("prune")
def backup_prune() -> None:
    """Delete backups past their tier's retention (never a tier's newest verified one) and failed leftovers."""
    typer.echo(json.dumps(_run(lambda service: service.prune(trigger="cli"))))


def audit_verify_with_anchors(settings: Settings) -> dict[str, Any]:
    """`prs audit verify --anchors`: the chain plus every anchor in PRS_BACKUP_ANCHOR_BUCKET."""
    from backend.db import create_pool

    async def run() -> dict[str, Any]:
        anchors = AnchorStore.from_settings(settings, ObjectStore.from_settings(settings), SystemClock())
        pool = await create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            return await verify_against_anchors(pool, anchors)
        finally:
            await pool.close()

    try:
        return asyncio.run(run())
    except OPERATOR_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def bench_backup(
    incidents: int = typer.Option(20000, help="Incidents (each with two audit rows) to back up."),
    vectors: bool = typer.Option(True, "--vectors/--no-vectors", help="Also index one 384-dim vector per incident."),
) -> None:
    """Backup and restore time and MB/s on a throwaway database against PRS_BACKUP_S3_*; last line is JSON."""
    from bench.backups import run_backup_bench

    settings = _settings()
    try:
        result = asyncio.run(run_backup_bench(settings, incidents=incidents, with_vectors=vectors))
    except OPERATOR_ERRORS as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    sys.stdout.write(json.dumps(result) + "\n")
