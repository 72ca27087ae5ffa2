"""HTTP endpoints for suggestions, including the token stream (Server-Sent Events)."""

from __future__ import annotations

import json
from typing import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from backend.context import Principal
from backend.deps import context_for, get_container, require_role
from backend.suggestions.schemas import FeedbackRequest, RatingRequest, RegenerateRequest, SuggestionOut

router = APIRouter(prefix="/api/v1/incidents/{incident_id}/suggestion", tags=["suggestions"])


@router.get(
    "",
    response_model=SuggestionOut,
    summary="Get the suggestion",
    description="Any authenticated role; reporters only for incidents they reported (404 otherwise). "
    "`status` is pending, generating, ready or failed; `citations` holds only ids of incidents "
    "that were actually retrieved.",
)
async def get_suggestion(
    request: Request, incident_id: int, principal: Principal = Depends(require_role("reporter"))
) -> dict:
    await get_container(request).incidents.get(incident_id, viewer=principal)  # read policy: 404 if not visible
    return await get_container(request).suggestions.get(incident_id)


@router.get(
    "/stream",
    summary="Stream the suggestion (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    description="Any authenticated role; reporters only for incidents they reported. Server-Sent Events: "
    "`status` when the state changes, `token` with new text, `reset` when the text is replaced "
    "(failover to another LLM node, or the final grounded text), `done` with the finished "
    "suggestion, `timeout` when the stream has been open PRS_SUGGESTION_STREAM_MAX_S "
    "(reconnect to continue).",
)
async def stream_suggestion(
    request: Request, incident_id: int, principal: Principal = Depends(require_role("reporter"))
) -> StreamingResponse:
    service = get_container(request).suggestions
    await get_container(request).incidents.get(incident_id, viewer=principal)  # read policy: 404 if not visible
    await service.get(incident_id)  # 404 before the stream starts

    async def events() -> AsyncIterator[bytes]:
        max_s = get_container(request).settings.suggestion_stream_max_s
        async for event, data in service.stream_updates(incident_id, max_s=max_s):
            if await request.is_disconnected():
                return
            yield f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.post(
    "/feedback",
    response_model=SuggestionOut,
    summary="Accept or reject the suggestion",
    description="Technicians and above; only a ready suggestion.",
)
async def suggestion_feedback(
    request: Request,
    incident_id: int,
    body: FeedbackRequest,
    principal: Principal = Depends(require_role("technician")),
) -> dict:
    return await get_container(request).suggestions.record_feedback(
        context_for(request, principal), incident_id, body.decision
    )


@router.post(
    "/rating",
    response_model=SuggestionOut,
    summary="Rate the suggestion 1-5",
    description="Any role; reporters only on incidents they reported. Only a ready suggestion.",
)
async def rate_suggestion(
    request: Request, incident_id: int, body: RatingRequest, principal: Principal = Depends(require_role("reporter"))
) -> dict:
    return await get_container(request).suggestions.rate(context_for(request, principal), incident_id, body.rating)


@router.post(
    "/regenerate",
    response_model=SuggestionOut,
    summary="Generate the suggestion again",
    description="Technicians and above. Discards the current suggestion and queues a new one.",
)
async def regenerate_suggestion(
    request: Request,
    incident_id: int,
    body: RegenerateRequest | None = None,
    principal: Principal = Depends(require_role("technician")),
) -> dict:
    language = body.language if body else None
    return await get_container(request).suggestions.regenerate(context_for(request, principal), incident_id, language)
