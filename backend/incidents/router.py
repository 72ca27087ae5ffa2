"""HTTP endpoints for incidents and areas (HTTP only: rules live in the service)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from backend.context import Principal
from backend.deps import context_for, get_container, require_role
from backend.idempotency.http import IdempotencyKey, answer_idempotently
from backend.incidents.schemas import (
    AssignRequest,
    CommentCreate,
    CommentOut,
    HistoryEntry,
    IncidentCreate,
    IncidentCreated,
    IncidentFilters,
    IncidentOut,
    IncidentPage,
    IncidentUpdate,
    Priority,
    ReopenRequest,
    ResolveRequest,
    SimilarIncidentOut,
    Status,
    StatusChange,
)

router = APIRouter(prefix="/api/v1", tags=["incidents"])


@router.post(
    "/incidents",
    response_model=IncidentCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Report an incident",
    description="Any authenticated role. Stores the incident, its audit row and the suggestion job in one "
    "transaction and answers with the most similar resolved incidents (`similar`). The LLM "
    "suggestion is generated in the background: see `GET /incidents/{id}/suggestion`. "
    "With an `Idempotency-Key` header the request may be repeated safely: a repeat within 24 h "
    "gets the first answer again (header `Idempotent-Replayed: true`), the same key with another "
    "body a 422 naming the header.",
)
async def create_incident(
    request: Request,
    response: Response,
    body: IncidentCreate,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Depends(require_role("reporter")),
) -> dict:
    return await answer_idempotently(
        response,
        endpoint="POST /api/v1/incidents",
        principal=principal,
        key=idempotency_key,
        body=body,
        create=lambda idempotency: get_container(request).incidents.create(
            context_for(request, principal), body, idempotency=idempotency
        ),
    )


@router.get(
    "/incidents",
    response_model=IncidentPage,
    summary="List incidents",
    description="Any authenticated role; reporters see only the incidents they reported. Filters combine "
    "with AND; `text` is a full-text search over title and description. Newest first, "
    "cursor-paginated.",
)
async def list_incidents(
    request: Request,
    status_: list[Status] | None = Query(default=None, alias="status"),
    area: str | None = Query(default=None, max_length=64),
    priority: list[Priority] | None = Query(default=None),
    text: str | None = Query(default=None, max_length=500),
    assignee_id: int | None = Query(default=None),
    created_from: datetime | None = Query(default=None),
    created_to: datetime | None = Query(default=None),
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None, max_length=200),
    principal: Principal = Depends(require_role("reporter")),
) -> dict:
    filters = IncidentFilters(
        status=status_,
        area=area,
        priority=priority,
        text=text,
        assignee_id=assignee_id,
        created_from=created_from,
        created_to=created_to,
        limit=limit,
        cursor=cursor,
    )
    return await get_container(request).incidents.list(filters, viewer=principal)


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentOut,
    summary="Get an incident",
    description="Any authenticated role; a reporter gets 404 for an incident somebody else reported.",
)
async def get_incident(
    request: Request, incident_id: int, principal: Principal = Depends(require_role("reporter"))
) -> dict:
    return await get_container(request).incidents.get(incident_id, viewer=principal)


@router.patch(
    "/incidents/{incident_id}",
    response_model=IncidentOut,
    summary="Change an incident",
    description="Technicians and above. Title, description, area, priority, category, tags, references.",
)
async def update_incident(
    request: Request, incident_id: int, body: IncidentUpdate, principal: Principal = Depends(require_role("technician"))
) -> dict:
    return await get_container(request).incidents.update(context_for(request, principal), incident_id, body)


@router.post(
    "/incidents/{incident_id}/assign",
    response_model=IncidentOut,
    summary="Assign an incident",
    description="Technicians and above. The assignee must be an active technician, supervisor or admin.",
)
async def assign_incident(
    request: Request, incident_id: int, body: AssignRequest, principal: Principal = Depends(require_role("technician"))
) -> dict:
    return await get_container(request).incidents.assign(context_for(request, principal), incident_id, body.assignee_id)


@router.post(
    "/incidents/{incident_id}/comments",
    response_model=CommentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Comment on an incident",
    description="Any role; reporters only on incidents they reported.",
)
async def add_comment(
    request: Request, incident_id: int, body: CommentCreate, principal: Principal = Depends(require_role("reporter"))
) -> dict:
    return await get_container(request).incidents.add_comment(context_for(request, principal), incident_id, body.body)


@router.get(
    "/incidents/{incident_id}/comments",
    response_model=list[CommentOut],
    summary="List comments",
    description="Any authenticated role; reporters only on incidents they reported (404 otherwise).",
)
async def list_comments(
    request: Request, incident_id: int, principal: Principal = Depends(require_role("reporter"))
) -> list:
    return await get_container(request).incidents.comments(incident_id, viewer=principal)


@router.post(
    "/incidents/{incident_id}/status",
    response_model=IncidentOut,
    summary="Change the status",
    description="Technicians and above. Allowed: open→in_progress|waiting|resolved, "
    "in_progress→waiting|resolved|open, waiting→in_progress|resolved, resolved→closed|open, "
    "closed→open. Anything else is 409 naming both states. Resolving needs `solution`.",
)
async def change_status(
    request: Request, incident_id: int, body: StatusChange, principal: Principal = Depends(require_role("technician"))
) -> dict:
    return await get_container(request).incidents.change_status(
        context_for(request, principal), incident_id, status=body.status, solution=body.solution, reason=body.reason
    )


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentOut,
    summary="Resolve an incident",
    description="Technicians and above. Stores the solution and adds the incident to the knowledge base.",
)
async def resolve_incident(
    request: Request, incident_id: int, body: ResolveRequest, principal: Principal = Depends(require_role("technician"))
) -> dict:
    return await get_container(request).incidents.change_status(
        context_for(request, principal), incident_id, status="resolved", solution=body.solution
    )


@router.post(
    "/incidents/{incident_id}/reopen",
    response_model=IncidentOut,
    summary="Reopen an incident",
    description="Technicians and above; from resolved or closed. The incident leaves the knowledge base "
    "until it is resolved again.",
)
async def reopen_incident(
    request: Request, incident_id: int, body: ReopenRequest, principal: Principal = Depends(require_role("technician"))
) -> dict:
    return await get_container(request).incidents.change_status(
        context_for(request, principal), incident_id, status="open", reason=body.reason
    )


@router.get(
    "/incidents/{incident_id}/similar",
    response_model=list[SimilarIncidentOut],
    summary="Similar resolved incidents",
    description="Any authenticated role; reporters only for incidents they reported (404 otherwise).",
)
async def similar_incidents(
    request: Request, incident_id: int, principal: Principal = Depends(require_role("reporter"))
) -> list:
    return await get_container(request).incidents.similar(incident_id, viewer=principal)


@router.get(
    "/incidents/{incident_id}/history",
    response_model=list[HistoryEntry],
    summary="Audit trail",
    description="Technicians and above: every change to the incident, oldest first.",
)
async def incident_history(
    request: Request, incident_id: int, _: Principal = Depends(require_role("technician"))
) -> list:
    return await get_container(request).incidents.history(incident_id)


class AreaOut(BaseModel):
    code: str
    name: str


class AreaCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=100)


@router.get(
    "/areas", response_model=list[AreaOut], tags=["areas"], summary="List areas", description="Any authenticated role."
)
async def list_areas(request: Request, _: Principal = Depends(require_role("reporter"))) -> list:
    return await get_container(request).incidents.list_areas()


@router.post(
    "/areas",
    response_model=AreaOut,
    status_code=status.HTTP_201_CREATED,
    tags=["areas"],
    summary="Create an area",
    description="Admins only.",
)
async def create_area(
    request: Request, body: AreaCreate, principal: Principal = Depends(require_role("admin"))
) -> dict:
    return await get_container(request).incidents.create_area(context_for(request, principal), body.code, body.name)
