"""HTTP hardening as ASGI middleware: security headers on every answer, and limits on header and body size."""

from __future__ import annotations

import json
from typing import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"


class SecurityHeadersMiddleware:
    """Adds CSP, X-Frame-Options, nosniff, Referrer-Policy, Permissions-Policy (and HSTS when configured);
    API answers are also marked `Cache-Control: no-store` (they carry tokens and incident data)."""

    def __init__(self, app: ASGIApp, *, content_security_policy: str, hsts_seconds: int = 0) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", content_security_policy.encode("latin-1")),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", PERMISSIONS_POLICY.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if hsts_seconds > 0:
            self.headers.append((b"strict-transport-security", f"max-age={hsts_seconds}; includeSubDomains".encode()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.headers if n not in present]
                if is_api and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    """Raised from receive() once a streamed body passes the limit."""


async def send_error(
    send: Send,
    status: int,
    error: str,
    detail: str,
    *,
    extra: dict | None = None,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the API's JSON error shape and close the exchange."""
    body = json.dumps({"error": error, "detail": detail} | (extra or {})).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestLimitsMiddleware:
    """431 for oversized header blocks, 413 for bodies over the limit (declared or streamed), 400 for a
    malformed Content-Length; nothing reaches the application in those cases."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        header_bytes = sum(len(name) + len(value) + 4 for name, value in headers)
        if header_bytes > self.max_header_bytes:
            await send_error(
                send,
                431,
                "RequestHeaderFieldsTooLarge",
                f"request headers are {header_bytes} bytes; the limit is {self.max_header_bytes}",
                extra={"limit_bytes": self.max_header_bytes},
            )
            return
        declared = [value for name, value in headers if name.lower() == b"content-length"]
        if declared:
            if len(set(declared)) != 1 or not declared[0].strip().isdigit():
                await send_error(
                    send,
                    400,
                    "BadRequest",
                    "Content-Length is not a single whole number",
                    extra={"field": "content-length"},
                )
                return
            if int(declared[0]) > self.max_body_bytes:
                await send_error(
                    send, 413, "PayloadTooLarge", self._too_large(), extra={"limit_bytes": self.max_body_bytes}
                )
                return
        await self._run_counting_body(scope, receive, send)

    def _too_large(self) -> str:
        return f"request body is larger than the limit of {self.max_body_bytes} bytes"

    async def _run_counting_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # Whatever the application answered to its broken read is replaced by one 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await send_error(
                        send, 413, "PayloadTooLarge", self._too_large(), extra={"limit_bytes": self.max_body_bytes}
                    )
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await send_error(
                    send, 413, "PayloadTooLarge", self._too_large(), extra={"limit_bytes": self.max_body_bytes}
                )
