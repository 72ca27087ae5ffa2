"""`prs serve`'s HTTP server: uvicorn with a graceful drain on SIGTERM (docs/deployment.md).

On SIGTERM the replica first reports not-ready (/health/ready answers 503 `draining`) for PRS_SHUTDOWN_DRAIN_S
while it still serves everything, so load balancers and orchestrators take it out of rotation; then it stops
accepting connections, finishes the requests in flight (at most PRS_SHUTDOWN_TIMEOUT_S) and exits."""

from __future__ import annotations

import logging
import signal
import time
from types import FrameType
from typing import Any, Callable

import uvicorn

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first SIGTERM starts a drain period instead of the shutdown."""

    def __init__(self, config: uvicorn.Config, *, drain_s: float, on_drain: Callable[[], None]):
        super().__init__(config)
        self.drain_s = drain_s
        self.on_drain = on_drain
        self.drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM: report not-ready now, stop after the drain period; a second signal stops at once."""
        if sig == signal.SIGTERM and self.drain_s > 0 and self.drain_deadline is None:
            self.drain_deadline = time.monotonic() + self.drain_s
            self._captured_signals.append(sig)
            self.on_drain()
            log.info("SIGTERM: draining (not ready) before shutdown", extra={"drain_s": self.drain_s})
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_deadline is not None and time.monotonic() >= self.drain_deadline:
            self.should_exit = True
        return await super().on_tick(counter)


def serve_http(
    application: Any, *, host: str, port: int, drain_s: float, shutdown_timeout_s: float, max_header_bytes: int
) -> None:
    """Serve `application` until SIGTERM/SIGINT, draining first."""

    def start_draining() -> None:
        application.state.draining = True

    # h11 drops request heads over twice PRS_MAX_REQUEST_HEADER_BYTES (400) before anything is parsed; the app
    # answers 431 above the limit itself. Client addresses behind proxies are resolved by the app from
    # PRS_TRUSTED_PROXIES, not by uvicorn.
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        http="h11",
        h11_max_incomplete_event_size=2 * max_header_bytes,
        timeout_graceful_shutdown=int(shutdown_timeout_s) or None,
    )
    DrainingServer(config, drain_s=drain_s, on_drain=start_draining).run()
