"""HTTP endpoints for external systems under /api/v1/external (X-API-Key only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from backend.context import Principal
from backend.deps import context_for, get_container, require_api_key
from backend.external.schemas import (
    ExternalIncidentCreate,
    ExternalIncidentCreated,
    ExternalIncidentStatus,
    ExternalSearchOut,
)
from backend.external.service import ExternalApi
from backend.idempotency.http import IdempotencyKey, answer_idempotently

router = APIRouter(prefix="/api/v1/external", tags=["external"])


def external_api(request: Request) -> ExternalApi:
    """The external use cases on this app's services."""
    services = get_container(request)
    return ExternalApi(incidents=services.incidents, suggestions=services.suggestions, knowledge=services.knowledge)


@router.post(
    "/incidents",
    response_model=ExternalIncidentCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident from an external system",
    description="API keys with the `write` permission. `title`, `description` and `area` are required; "
    "the key's name is recorded as the reporter. The reply carries the most similar resolved "
    "incidents; the suggestion follows in the background (poll `GET /incidents/{id}`). Send "
    "an `Idempotency-Key` header to make retries safe: a repeat within 24 h answers the same "
    "incident (`Idempotent-Replayed: true`) and creates nothing; the same key with another body "
    "is a 422 naming the header.",
)
async def report_incident(
    request: Request,
    response: Response,
    body: ExternalIncidentCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Depends(require_api_key("write")),
) -> dict:
    return await answer_idempotently(
        response,
        endpoint="POST /api/v1/external/incidents",
        principal=principal,
        key=idempotency_key,
        body=body,
        create=lambda idempotency: external_api(request).report_incident(
            context_for(request, principal), body, idempotency=idempotency
        ),
    )


@router.get(
    "/incidents/{incident_id}",
    response_model=ExternalIncidentStatus,
    summary="Status of an incident",
    description="API keys with the `read` permission. Status, resolution and the LLM suggestion.",
)
async def incident_status(
    request: Request,
    incident_id: int = Path(ge=1, le=2**63 - 1),
    principal: Principal = Depends(require_api_key("read")),
) -> dict:
    return await external_api(request).incident_status(incident_id, viewer=principal)


@router.get(
    "/knowledge/search",
    response_model=ExternalSearchOut,
    summary="Search the knowledge base",
    description="API keys with the `read` permission. Resolved incidents and runbook passages closest to "
    "`query`, best first, optionally within one `area`.",
)
async def search_knowledge(
    request: Request,
    query: str = Query(min_length=1, max_length=1000),
    limit: int = Query(default=5, ge=1, le=50),
    area: str | None = Query(default=None, min_length=1, max_length=64),
    principal: Principal = Depends(require_api_key("read")),
) -> dict:
    return await external_api(request).search_knowledge(query=query, area=area, limit=limit, viewer=principal)
