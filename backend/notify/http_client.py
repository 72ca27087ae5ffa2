"""POST a message over HTTP(S) through the outbound guard, with connect and total timeouts, never following
redirects, and classify the answer for the retry policy."""

from __future__ import annotations

import asyncio
import ssl
import time
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpcore

from backend.notify.outcome import AttemptResult, excerpt_of
from backend.notify.ssrf import GuardedNetworkBackend, OutboundPolicy, OutboundRefused

MAX_RESPONSE_READ = 64 * 1024
USER_AGENT = "PR-System-Notify/1"


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def classify_response(
    status: int, headers: dict[str, str], excerpt: str, *, now: datetime, duration_ms: int
) -> AttemptResult:
    """2xx delivered; 429 and 5xx retried (Retry-After honoured); redirects and other 4xx fail for good."""
    if 200 <= status < 300:
        return AttemptResult("success", status_code=status, excerpt=excerpt, duration_ms=duration_ms)
    if status == 429 or status >= 500:
        return AttemptResult(
            "retry",
            status_code=status,
            excerpt=excerpt,
            error=f"HTTP {status}",
            retry_after_s=parse_retry_after(headers.get("retry-after"), now=now),
            duration_ms=duration_ms,
        )
    if 300 <= status < 400:
        location = headers.get("location", "")
        return AttemptResult(
            "fail",
            status_code=status,
            excerpt=excerpt,
            duration_ms=duration_ms,
            error=f"HTTP {status}: redirects are not followed (Location: {location[:200]})",
        )
    return AttemptResult("fail", status_code=status, excerpt=excerpt, error=f"HTTP {status}", duration_ms=duration_ms)


class HttpPoster:
    """One connection pool per worker; every new connection is checked by the outbound policy."""

    def __init__(
        self,
        *,
        policy: OutboundPolicy,
        connect_timeout_s: float,
        total_timeout_s: float,
        ca_file: str = "",
        max_connections: int = 100,
    ):
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self.total_timeout_s = total_timeout_s
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            network_backend=GuardedNetworkBackend(policy),
            max_connections=max_connections,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            retries=0,
        )

    async def post(self, url: str, *, headers: dict[str, str], body: bytes, now: datetime) -> AttemptResult:
        """Send one POST and classify the outcome; network trouble and timeouts are retryable."""
        start = time.perf_counter()

        def elapsed_ms() -> int:
            return int((time.perf_counter() - start) * 1000)

        try:
            self.policy.parse_target(url)
        except OutboundRefused as exc:
            return AttemptResult("fail", error=f"refused by the outbound policy: {exc}", duration_ms=elapsed_ms())
        request_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        request_headers += [(b"Content-Length", str(len(body)).encode()), (b"User-Agent", USER_AGENT.encode())]
        timeouts = {
            "connect": self.connect_timeout_s,
            "read": self.total_timeout_s,
            "write": self.total_timeout_s,
            "pool": self.total_timeout_s,
        }
        try:
            async with asyncio.timeout(self.total_timeout_s):
                async with self._pool.stream(
                    "POST", url, headers=request_headers, content=body, extensions={"timeout": timeouts}
                ) as response:
                    raw = b""
                    async for chunk in response.aiter_stream():
                        raw += chunk
                        if len(raw) >= MAX_RESPONSE_READ:
                            break
                    status = response.status
                    response_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
        except OutboundRefused as exc:
            return AttemptResult("fail", error=f"refused by the outbound policy: {exc}", duration_ms=elapsed_ms())
        except (TimeoutError, httpcore.TimeoutException):
            return AttemptResult(
                "retry",
                error=f"timed out (connect {self.connect_timeout_s}s, total {self.total_timeout_s}s)",
                duration_ms=elapsed_ms(),
            )
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
            return AttemptResult("retry", error=f"{type(exc).__name__}: {exc}"[:500], duration_ms=elapsed_ms())
        excerpt = excerpt_of(raw.decode("utf-8", errors="replace"))
        return classify_response(status, response_headers, excerpt, now=now, duration_ms=elapsed_ms())

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._pool.aclose()
