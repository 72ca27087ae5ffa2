"""Installs the access controls of one app: rate limits, trusted proxies, CORS, headers and size limits."""

from __future__ import annotations

import logging

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware

from backend.auth.rate_limits import RateLimits
from backend.config import Settings
from backend.security.middleware import RequestLimitsMiddleware, SecurityHeadersMiddleware

log = logging.getLogger(__name__)


def install_access_controls(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (outermost last) and the per-app rate limits and proxy networks."""
    if settings.max_request_body_bytes <= settings.document_max_bytes:
        raise ValueError("PRS_MAX_REQUEST_BODY_BYTES must exceed PRS_DOCUMENT_MAX_BYTES")
    app.state.rate_limits = RateLimits(settings)
    app.state.trusted_proxy_networks = settings.trusted_proxy_networks
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_credentials=False,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(
        RequestLimitsMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        max_header_bytes=settings.max_request_header_bytes,
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        content_security_policy=settings.content_security_policy,
        hsts_seconds=settings.hsts_seconds,
    )
    app.add_exception_handler(asyncpg.DataError, unstorable_value)


async def unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    """A value Postgres refuses as data (an id beyond bigint, text with a NUL character, ...) is bad input:
    422, and nothing was stored because the statement failed inside its transaction."""
    log.warning(
        "request value refused by the database", extra={"path": request.url.path, "db_error": type(exc).__name__}
    )
    return JSONResponse(
        {
            "error": "ValidationFailed",
            "field": "body",
            "detail": "a value cannot be stored: out of range, or text with NUL (\\u0000) characters",
        },
        status_code=422,
    )
