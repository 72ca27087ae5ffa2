"""HTTP endpoints of the audit log (admins and auditors)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request

from backend.audit import service as audit
from backend.audit.schemas import AuditPage, ChainReport
from backend.context import Principal
from backend.deps import get_container, require_audit_reader

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=AuditPage,
    summary="Read the audit log",
    description="Admins and auditors (people with the auditor capability). Newest first, cursor-paginated. "
    "Filters combine with AND: `actor` (name or id), `action` (exact, or a prefix ending in "
    "`.*` such as `incident.*`), `resource_type`, `resource_id`, and the time range "
    "[`occurred_from`, `occurred_to`).",
)
async def list_audit_entries(
    request: Request,
    actor: str | None = Query(default=None, max_length=200),
    action: str | None = Query(default=None, max_length=100),
    resource_type: str | None = Query(default=None, max_length=64),
    resource_id: str | None = Query(default=None, max_length=200),
    occurred_from: datetime | None = Query(default=None),
    occurred_to: datetime | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=200),
    _: Principal = Depends(require_audit_reader),
) -> dict:
    return await audit.list_entries(
        get_container(request).pool,
        actor=actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        occurred_from=occurred_from,
        occurred_to=occurred_to,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/verify",
    response_model=ChainReport,
    summary="Verify the hash chain",
    description="Admins and auditors. Recomputes every row's hash and link in chain order and reports the "
    "first broken link, or the head hash when the chain is intact (same as `prs audit verify`).",
)
async def verify_audit_chain(request: Request, _: Principal = Depends(require_audit_reader)) -> dict:
    return await audit.verify_chain(get_container(request).pool)
