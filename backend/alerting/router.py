"""POST /api/v1/external/alerts/alertmanager: Alertmanager's webhook, authenticated by an API key."""

from __future__ import annotations

from typing import Awaitable, Callable

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.alerting.schemas import AlertmanagerNotification, AlertmanagerReceipt
from backend.alerting.service import AlertService
from backend.apikeys.service import KEY_PREFIX, grants
from backend.context import Principal
from backend.deps import api_key_scheme, context_for, get_container, principal_from_api_key
from backend.errors import Unauthorized

router = APIRouter(prefix="/api/v1/external/alerts", tags=["external"])
bearer_scheme = HTTPBearer(
    auto_error=False, description="An API key as a bearer token (Alertmanager's `http_config.authorization`)."
)


def alert_service(request: Request) -> AlertService:
    """This app's alert service."""
    return get_container(request).alerts


def require_api_key_header_or_bearer(permission: str) -> Callable[..., Awaitable[Principal]]:
    """An API key holding `permission`, sent as `Authorization: Bearer <key>` (what Alertmanager's `http_config`
    sends) or as `X-API-Key: <key>`; a person's bearer token is refused."""

    async def dependency(
        request: Request,
        api_key: str | None = Depends(api_key_scheme),
        bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
    ) -> Principal:
        if api_key is not None and bearer is not None:
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>' or as 'X-API-Key', not both")
        if bearer is not None and not bearer.credentials.startswith(KEY_PREFIX):
            raise Unauthorized(
                "this endpoint takes an API key ('Authorization: Bearer <key>' or 'X-API-Key'); "
                "bearer tokens of people are not accepted"
            )
        raw_key = api_key if api_key is not None else bearer.credentials if bearer is not None else None
        if raw_key is None:
            raise Unauthorized("authentication required: an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
        principal = await principal_from_api_key(request, raw_key)
        if not grants(principal.permissions, permission):
            await get_container(request).api_keys.require_permission(context_for(request, principal), permission)
        return principal

    # The name the guard tables read (tests/fixtures/guards.py): the external API's convention.
    dependency.__name__ = f"require_api_key_{permission}"
    return dependency


@router.post(
    "/alertmanager",
    response_model=AlertmanagerReceipt,
    summary="Receive Alertmanager alerts",
    description="Alertmanager's webhook payload (version 4); API keys with the `write` permission, as "
    "`Authorization: Bearer <key>` or `X-API-Key`. A firing alert creates an incident (title "
    "from `alertname` and the `summary` annotation, area and priority from the configured "
    "rules, labels and annotations kept) unless an open incident already has its "
    "fingerprint; a resolved alert adds the comment `Alertmanager: resolved <endsAt>` (and "
    "resolves the incident when PRS_ALERTMANAGER_RESOLVE_INCIDENTS is set). Every incident "
    "exists when the answer is sent. Up to 1,000 alerts per notification.",
)
async def receive_alertmanager(
    request: Request,
    body: AlertmanagerNotification,
    principal: Principal = Depends(require_api_key_header_or_bearer("write")),
) -> dict:
    return await alert_service(request).receive(context_for(request, principal), body)


@router.get(
    "/alertmanager/incidents/{incident_id}",
    summary="The alert behind an incident",
    description="API keys with the `read` permission (as for POST). Fingerprint, labels, annotations, "
    "start and end of the alert an incident was created from; 404 for other incidents.",
)
async def alert_of_incident(
    request: Request,
    incident_id: int = Path(ge=1, le=2**63 - 1),
    _: Principal = Depends(require_api_key_header_or_bearer("read")),
) -> dict:
    return await alert_service(request).linked_alert(incident_id)
