"""The live stream of incident changes (Server-Sent Events) that the web pages follow."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from backend.context import Principal
from backend.deps import get_container, require_role

router = APIRouter(prefix="/api/v1/live", tags=["live"])


def visible_to(principal: Principal, notice: dict[str, Any]) -> bool:
    """Reporters follow only incidents they reported; API keys limited to areas only those areas."""
    if notice.get("area") and not principal.may_see_area(notice["area"]):
        return False
    if principal.has_role("technician"):
        return True
    return notice.get("reporter_id") is not None and notice.get("reporter_id") == principal.id


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


@router.get(
    "/incidents",
    summary="Live incident changes (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    description="Any signed-in role; reporters receive only changes of incidents they reported. "
    "Server-Sent Events: `ready` once the stream listens; `incident` for every committed change "
    "of an incident ({event, incident_id, status, priority, area, at}; `event` is the domain "
    "event such as incident.created or incident.status_changed); `resync` when changes may "
    "have been missed (reload what you show); a `: keep-alive` comment every "
    "PRS_LIVE_KEEPALIVE_S; `timeout` after PRS_LIVE_STREAM_MAX_S, then reconnect (with a "
    "fresh token). Behind nginx the reply carries `X-Accel-Buffering: no`.",
)
async def live_incidents(
    request: Request, principal: Principal = Depends(require_role("reporter"))
) -> StreamingResponse:
    services = get_container(request)
    settings = services.settings
    hub = services.live

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.live_stream_max_s
        async with hub.subscribe() as subscriber:
            yield sse("ready", {"at": services.clock.now().isoformat()})
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    yield sse("timeout", {"after_s": settings.live_stream_max_s})
                    return
                try:
                    notice = await asyncio.wait_for(
                        subscriber.queue.get(), timeout=min(settings.live_keepalive_s, remaining)
                    )
                except asyncio.TimeoutError:
                    notice = None
                if subscriber.overflowed:
                    subscriber.overflowed = False
                    while not subscriber.queue.empty():
                        subscriber.queue.get_nowait()
                    yield sse("resync", {})
                    continue
                if notice is None:
                    if await request.is_disconnected():
                        return
                    yield b": keep-alive\n\n"
                elif visible_to(principal, notice):
                    yield sse(
                        "incident",
                        {key: notice.get(key) for key in ("event", "incident_id", "status", "priority", "area", "at")},
                    )

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
