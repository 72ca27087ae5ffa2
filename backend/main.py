"""create_app(settings): lifespan, routers, error handlers."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.alerting.router import router as alerting_router
from backend.apikeys.router import router as apikeys_router
from backend.audit.router import router as audit_router
from backend.auth.router import router as auth_router
from backend.config import Settings
from backend.container import Container, build_container
from backend.db_routing import UNAVAILABLE_ERRORS, database_unavailable, heal_after
from backend.errors import AppError
from backend.external.router import router as external_router
from backend.incidents.router import router as incidents_router
from backend.knowledge.router import router as knowledge_router
from backend.live.router import router as live_router
from backend.notify.router import router as notify_router
from backend.observability.health import router as health_router
from backend.observability.metrics import Metrics, RequestMiddleware
from backend.openapi import install_openapi
from backend.security.wiring import install_access_controls
from backend.sla.reports_router import router as sla_reports_router
from backend.sla.router import router as sla_router
from backend.suggestions.router import router as suggestions_router
from backend.web.api_docs import router as api_docs_router
from backend.web.router import router as web_router
from backups.router import router as backups_router

log = logging.getLogger(__name__)

API_DESCRIPTION = """
PR-System answers a reported problem with the most similar past incidents within a second and, seconds later,
with a suggestion written by a local LLM that cites them. Authenticate with `POST /api/v1/auth/token`
(OAuth2 password flow) and send `Authorization: Bearer <access_token>`.

Errors always have the shape `{"error": "<Kind>", "detail": "<message>", "field": "<field, when one is at fault>"}`.
"""


def _field_name(loc: tuple[Any, ...]) -> str:
    # Only the first element is the location; a parameter may itself be called "query" or "body".
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header", "form", "cookie") else list(loc)
    return ".".join(str(p) for p in parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Turn every error into the one JSON shape; never leak a stack trace."""

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        services = getattr(request.app.state, "container", None)
        if services is not None:
            services.metrics.count_refusal(exc.status_code, exc.extra.get("reason"))
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": "value_error"}
        if first.get("type") == "json_invalid":
            return JSONResponse(
                {"error": "BadRequest", "detail": "request body is not valid JSON", "field": "body"}, status_code=400
            )
        field = _field_name(tuple(first.get("loc", ())))
        details = [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in errors]
        return JSONResponse(
            {
                "error": "ValidationFailed",
                "detail": f"{field}: {first.get('msg', 'invalid')}",
                "field": field,
                "errors": details,
            },
            status_code=422,
        )

    async def database_unavailable_error(request: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
            return JSONResponse(
                {"error": "InternalError", "detail": "internal error; see the server log with the request id"},
                status_code=500,
            )
        services = getattr(request.app.state, "container", None)
        if services is not None:
            await heal_after(services.pool, exc)
        retry_after = services.settings.database_retry_after_s if services is not None else 2
        log.warning("database unavailable; answered 503", extra={"path": request.url.path, "error": type(exc).__name__})
        return JSONResponse(
            {
                "error": "ServiceUnavailable",
                "reason": "database_unavailable",
                "detail": "the database is switching over or unreachable; retry after "
                f"{retry_after} s (with the same Idempotency-Key for a POST)",
            },
            status_code=503,
            headers={"Retry-After": str(retry_after)},
        )

    for error_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_type, database_unavailable_error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized", 403: "Forbidden"}.get(
            exc.status_code, "HTTPError"
        )
        return JSONResponse(
            {"error": kind, "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(
            {"error": "InternalError", "detail": "internal error; see the server log with the request id"},
            status_code=500,
        )


def create_app(settings: Settings, *, container: Container | None = None, run_worker: bool | None = None) -> FastAPI:
    """The ASGI app. Pass `container` to share one (tests); otherwise it is built at startup."""
    metrics = container.metrics if container is not None else Metrics()
    start_worker = settings.embedded_worker if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from backend.jobs.worker import run_worker as worker_loop
        from backend.observability.monitoring import watch_llm_nodes

        owned = container is None
        app.state.container = container or await build_container(settings, metrics=metrics)
        if owned:
            seconds = await app.state.container.knowledge.warm_up()
            log.info("knowledge warmed up", extra={"seconds": round(seconds, 2)})
        stop = asyncio.Event()
        worker = asyncio.create_task(worker_loop(app.state.container, stop)) if start_worker else None
        running = app.state.container
        node_watch = asyncio.create_task(
            watch_llm_nodes(running.llm, running.metrics, stop=stop, interval_s=settings.llm_health_interval_s)
        )
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(node_watch, return_exceptions=True)
            if worker is not None:
                await asyncio.gather(worker, return_exceptions=True)
            if owned:
                await app.state.container.aclose()

    app = FastAPI(
        title="PR-System",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    if container is not None:
        app.state.container = container
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, metrics=metrics)
    install_access_controls(app, settings)
    for router in (
        auth_router,
        apikeys_router,
        audit_router,
        external_router,
        alerting_router,
        incidents_router,
        suggestions_router,
        knowledge_router,
        notify_router,
        sla_router,
        sla_reports_router,
        health_router,
        web_router,
        api_docs_router,
        live_router,
    ):
        app.include_router(router)
    app.include_router(backups_router)
    install_openapi(app)
    return app
