"""HTTP endpoints of backups (admins only): list, start one, the last verification, recent runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, Query, Request, status

from backend.context import Principal
from backend.deps import context_for, get_container, require_role
from backend.errors import Conflict, NotFound, ServiceUnavailable
from backups.crypto import EncryptionKeyMissing
from backups.database import DatabaseToolError
from backups.schemas import BackupCreate, BackupCreated, BackupOut, BackupRunOut, VerifyResult
from backups.service import BackupService
from backups.storage import StorageError

router = APIRouter(
    prefix="/api/v1/backups",
    tags=["backups"],
    responses={409: {"description": "Backups are not configured (PRS_BACKUP_S3_ENDPOINT is empty)"}},
)
NOT_CONFIGURED = (
    "backups are not configured: set PRS_BACKUP_S3_ENDPOINT (host:port), the storage credentials and "
    "PRS_BACKUP_ENCRYPTION_KEY (see docs/backups.md)"
)


def _backups(request: Request) -> BackupService:
    backups = getattr(get_container(request), "backups", None)
    if backups is None or backups.service is None:
        raise Conflict(NOT_CONFIGURED)
    return backups.service


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Storage and key problems become clear 503/409 answers, never a 500."""
    try:
        yield
    except StorageError as exc:
        raise ServiceUnavailable(str(exc)) from exc
    except DatabaseToolError as exc:
        raise ServiceUnavailable(str(exc)) from exc
    except EncryptionKeyMissing as exc:
        raise Conflict(str(exc)) from exc


@router.get(
    "",
    response_model=list[BackupOut],
    summary="List backups",
    description="Admins only. Complete backups in the bucket, oldest first, with their last verification. "
    "409 when backups are not configured; 503 when the storage cannot be reached.",
)
async def list_backups(request: Request, _: Principal = Depends(require_role("admin"))) -> list[dict]:
    service = _backups(request)
    with _storage_errors():
        return [backup.as_dict() for backup in await service.list_backups()]


@router.post(
    "",
    response_model=BackupCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Take a backup now",
    description="Admins only. Dumps the database and the vector index, encrypts and uploads them and "
    "answers when the manifest is stored (seconds to minutes, by database size). Audited.",
)
async def create_backup(
    request: Request, body: BackupCreate, principal: Principal = Depends(require_role("admin"))
) -> dict:
    service = _backups(request)
    with _storage_errors():
        manifest = await service.create(tier=body.tier, trigger="api", ctx=context_for(request, principal))
    return {
        "id": manifest.backup_id,
        "tier": manifest.tier,
        "size": manifest.size_bytes,
        "schema_level": manifest.schema_level,
        "audit_head": manifest.audit_head,
        "started_at": manifest.started_at,
        "finished_at": manifest.finished_at,
    }


@router.get(
    "/verification",
    response_model=VerifyResult,
    summary="The last backup verification",
    responses={404: {"description": "No backup has been verified yet"}},
    description="Admins only. The newest verification run (restore into a scratch database and comparison "
    "with the manifest); 404 when no backup was verified yet.",
)
async def last_verification(request: Request, _: Principal = Depends(require_role("admin"))) -> dict:
    result = await _backups(request).last_verify()
    if result is None:
        raise NotFound("no backup has been verified yet")
    return result


@router.get(
    "/runs",
    response_model=list[BackupRunOut],
    summary="Recent backup runs",
    description="Admins only. Create, verify and prune runs, newest first, with errors of failed ones.",
)
async def recent_runs(
    request: Request, limit: int = Query(default=50, ge=1, le=500), _: Principal = Depends(require_role("admin"))
) -> list[dict]:
    return await _backups(request).recent_runs(limit)
