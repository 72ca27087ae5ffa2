"""POST /api/v1/external/alerts/alertmanager: Alertmanager's webhook, authenticated by an API key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.alerting.schemas import AlertmanagerNotification, AlertmanagerReceipt
from backend.alerting.service import AlertService
from backend.auth.dependencies import api_key_scheme, context_for, get_services, principal_from_api_key
from backend.context import Principal
from backend.errors import Unauthorized

router = APIRouter(prefix="/api/v1/external/alerts", tags=["external"])
bearer_scheme = HTTPBearer(auto_error=False, description="An API key as a bearer token (Alertmanager's "
                                                        "`http_config.authorization`).")


def alert_service(request: Request) -> AlertService:
    """This app's alert service."""
    return get_services(request).alerts


async def alert_sender(request: Request, api_key: str | None = Depends(api_key_scheme),
                       bearer: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> Principal:
    """An API key sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`; POST needs `write`, GET `read`."""
    if api_key is not None and bearer is not None:
        raise Unauthorized("send the API key either as 'Authorization: Bearer <key>' or as 'X-API-Key', not both")
    raw_key = api_key if api_key is not None else bearer.credentials if bearer is not None else None
    if raw_key is None:
        raise Unauthorized("authentication required: an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    return await principal_from_api_key(request, raw_key)


@router.post("/alertmanager", response_model=AlertmanagerReceipt, summary="Receive Alertmanager alerts",
             description="Alertmanager's webhook payload (version 4); API keys with the `write` permission, as "
                         "`Authorization: Bearer <key>` or `X-API-Key`. A firing alert creates an incident (title "
                         "from `alertname` and the `summary` annotation, area and priority from the configured "
                         "rules, labels and annotations kept) unless an open incident already has its "
                         "fingerprint; a resolved alert adds the comment `Alertmanager: resolved <endsAt>` (and "
                         "resolves the incident when PRS_ALERTMANAGER_RESOLVE_INCIDENTS is set). Every incident "
                         "exists when the answer is sent. Up to 1,000 alerts per notification.")
async def receive_alertmanager(request: Request, body: AlertmanagerNotification,
                               principal: Principal = Depends(alert_sender)) -> dict:
    return await alert_service(request).receive(context_for(request, principal), body)


@router.get("/alertmanager/incidents/{incident_id}", summary="The alert behind an incident",
            description="API keys with the `read` permission (as for POST). Fingerprint, labels, annotations, "
                        "start and end of the alert an incident was created from; 404 for other incidents.")
async def alert_of_incident(request: Request, incident_id: int = Path(ge=1, le=2**63 - 1),
                            _: Principal = Depends(alert_sender)) -> dict:
    return await alert_service(request).linked_alert(incident_id)
