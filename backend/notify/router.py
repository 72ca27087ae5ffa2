"""HTTP endpoints of the notification admin API (HTTP only: rules live in the service)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request, Response, status

from backend.context import Principal
from backend.deps import context_for, get_container, require_role
from backend.notify.catalog import EVENT_TYPES
from backend.notify.schemas import (
    AttemptOutcome,
    AttemptPage,
    DeliveryPage,
    DeliveryStatus,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    EventDetail,
    EventPage,
    EventTypeName,
    EventTypeOut,
    LogFilters,
    PingQueued,
    Redelivered,
    RedeliverRequest,
    RotateSecretRequest,
    SecretRotated,
    ToggleRequest,
)

router = APIRouter(prefix="/api/v1/notify", tags=["notifications"])
ADMIN = "Admins only."


def _notify(request: Request):
    return get_container(request).notify


@router.get(
    "/event-types",
    response_model=list[EventTypeOut],
    summary="Notification event types",
    description=f"{ADMIN} Every event consumers can receive, its schema version and the schema file under "
    "docs/events/.",
)
async def list_event_types(_: Principal = Depends(require_role("admin"))) -> list:
    return [
        {
            "name": e.name,
            "version": e.version,
            "description": e.description,
            "subscribable": e.subscribable,
            "schema_file": e.schema_file,
        }
        for e in EVENT_TYPES
    ]


@router.post(
    "/endpoints",
    response_model=EndpointCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a notification endpoint",
    description=f"{ADMIN} Kinds: `webhook` (Standard Webhooks, signed), `slack` (incoming webhook) and "
    "`email` (comma-separated addresses; needs PRS_SMTP_HOST). URL targets must be https in "
    "production and must not resolve to private, loopback or link-local addresses unless "
    "PRS_NOTIFY_ALLOWED_HOSTS names them. A webhook's signing `secret` is in this answer only.",
)
async def create_endpoint(
    request: Request, body: EndpointCreate, principal: Principal = Depends(require_role("admin"))
) -> dict:
    return await _notify(request).create_endpoint(context_for(request, principal), body)


@router.get(
    "/endpoints",
    response_model=list[EndpointOut],
    summary="List notification endpoints",
    description=f"{ADMIN} With each endpoint's failure streak, why it is disabled, and pending deliveries.",
)
async def list_endpoints(request: Request, _: Principal = Depends(require_role("admin"))) -> list:
    return await _notify(request).list_endpoints()


@router.get(
    "/endpoints/{endpoint_id}", response_model=EndpointOut, summary="Get a notification endpoint", description=ADMIN
)
async def get_endpoint(request: Request, endpoint_id: int, _: Principal = Depends(require_role("admin"))) -> dict:
    return await _notify(request).get_endpoint(endpoint_id)


@router.patch(
    "/endpoints/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change a notification endpoint",
    description=f"{ADMIN} Target, description and filter (event types, areas, priorities).",
)
async def update_endpoint(
    request: Request, endpoint_id: int, body: EndpointUpdate, principal: Principal = Depends(require_role("admin"))
) -> dict:
    return await _notify(request).update_endpoint(context_for(request, principal), endpoint_id, body)


@router.delete(
    "/endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a notification endpoint",
    description=f"{ADMIN} Its pending deliveries and its delivery log go with it.",
)
async def delete_endpoint(
    request: Request, endpoint_id: int, principal: Principal = Depends(require_role("admin"))
) -> Response:
    await _notify(request).delete_endpoint(context_for(request, principal), endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/endpoints/{endpoint_id}/toggle",
    response_model=EndpointOut,
    summary="Enable or disable an endpoint",
    description=f"{ADMIN} Enabling resumes its pending deliveries in order and restarts its failure count.",
)
async def toggle_endpoint(
    request: Request, endpoint_id: int, body: ToggleRequest, principal: Principal = Depends(require_role("admin"))
) -> dict:
    return await _notify(request).set_enabled(context_for(request, principal), endpoint_id, body.enabled)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Rotate a webhook's signing secret",
    description=f"{ADMIN} Returns the new secret once. During the grace period every message carries two "
    "signatures (new and old), so consumers can switch without losing a message.",
)
async def rotate_secret(
    request: Request,
    endpoint_id: int,
    body: RotateSecretRequest | None = None,
    principal: Principal = Depends(require_role("admin")),
) -> dict:
    grace = body.grace_seconds if body is not None else None
    return await _notify(request).rotate_secret(context_for(request, principal), endpoint_id, grace)


@router.post(
    "/endpoints/{endpoint_id}/test",
    response_model=PingQueued,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a test.ping",
    description=f"{ADMIN} Queues a `test.ping` event for this endpoint only; see its outcome in the delivery log.",
)
async def ping_endpoint(
    request: Request, endpoint_id: int, principal: Principal = Depends(require_role("admin"))
) -> dict:
    return await _notify(request).send_ping(context_for(request, principal), endpoint_id)


@router.get(
    "/events",
    response_model=EventPage,
    summary="List notification events (the outbox)",
    description=f"{ADMIN} Newest first; filter by type, incident and creation time.",
)
async def list_events(
    request: Request,
    event_type: list[EventTypeName] | None = Query(default=None, alias="type"),
    incident_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=20),
    _: Principal = Depends(require_role("admin")),
) -> dict:
    filters = LogFilters(
        event_type=event_type, incident_id=incident_id, since=since, until=until, limit=limit, cursor=cursor
    )
    return await _notify(request).list_events(filters)


@router.get(
    "/events/{event_id}",
    response_model=EventDetail,
    summary="Get a notification event",
    description=f"{ADMIN} The exact payload consumers receive, and its deliveries.",
)
async def get_event(request: Request, event_id: str, _: Principal = Depends(require_role("admin"))) -> dict:
    return await _notify(request).get_event(event_id)


@router.post(
    "/events/{event_id}/redeliver",
    response_model=Redelivered,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Redeliver an event",
    description=f"{ADMIN} Queues the event again, with the same id, for the named endpoints (default: every "
    "enabled endpoint whose filter matches), behind what each endpoint already has pending.",
)
async def redeliver_event(
    request: Request,
    event_id: str,
    body: RedeliverRequest | None = None,
    principal: Principal = Depends(require_role("admin")),
) -> dict:
    endpoint_ids = body.endpoint_ids if body is not None else None
    return await _notify(request).redeliver(context_for(request, principal), event_id, endpoint_ids)


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    summary="List deliveries",
    description=f"{ADMIN} One row per event and endpoint with its state (pending, delivered, dead); filter "
    "by endpoint, event, event type, status and creation time.",
)
async def list_deliveries(
    request: Request,
    endpoint_id: int | None = None,
    event_id: str | None = Query(default=None, max_length=64),
    event_type: list[EventTypeName] | None = Query(default=None),
    status_: list[DeliveryStatus] | None = Query(default=None, alias="status"),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=20),
    _: Principal = Depends(require_role("admin")),
) -> dict:
    filters = LogFilters(
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=event_type,
        status=status_,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return await _notify(request).list_deliveries(filters)


@router.get(
    "/attempts",
    response_model=AttemptPage,
    summary="The delivery log",
    description=f"{ADMIN} Every attempt with outcome, HTTP (or SMTP) code, response excerpt and duration_ms; "
    "filter by endpoint, event, event type, outcome and start time. Kept "
    "PRS_NOTIFY_LOG_RETENTION_DAYS days.",
)
async def list_attempts(
    request: Request,
    endpoint_id: int | None = None,
    event_id: str | None = Query(default=None, max_length=64),
    event_type: list[EventTypeName] | None = Query(default=None),
    outcome: list[AttemptOutcome] | None = Query(default=None),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=20),
    _: Principal = Depends(require_role("admin")),
) -> dict:
    filters = LogFilters(
        endpoint_id=endpoint_id,
        event_id=event_id,
        event_type=event_type,
        outcome=outcome,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return await _notify(request).list_attempts(filters)
