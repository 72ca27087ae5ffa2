"""The delivery worker: leases queue heads with FOR UPDATE SKIP LOCKED, sends, records every attempt, retries
with backoff and jitter, dead-letters, and disables endpoints that keep failing."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram

from backend.audit import service as audit
from backend.clock import Clock
from backend.config import Settings
from backend.context import system_context
from backend.db import Connection, connect, transaction
from backend.notify import repository
from backend.notify.catalog import ENDPOINT_DISABLED, REPORTER_TARGET
from backend.notify.crypto import SecretBox, SecretDecryptionError
from backend.notify.email import EmailSender, parse_recipients
from backend.notify.http_client import HttpPoster
from backend.notify.outbox import write_event
from backend.notify.outcome import AttemptResult
from backend.notify.slack import slack_request
from backend.notify.ssrf import OutboundPolicy
from backend.notify.webhook import webhook_request

log = logging.getLogger(__name__)
DRAIN_GRACE_S = 5.0
# The messages an escalation wrote for its audiences (department, reporter), by escalation id: the SLA domain's.
EscalationMessages = Callable[[int], Awaitable[dict[str, Any] | None]]


class NotifyMetrics:
    """Delivery metrics, registered in the application's registry."""

    def __init__(self, registry: CollectorRegistry):
        self.attempts = Counter(
            "prs_notify_attempts_total",
            "Notification delivery attempts by channel and outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.delay = Histogram(
            "prs_notify_delivery_delay_seconds",
            "Time from an event's commit to its successful delivery.",
            ["kind"],
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600),
        )
        self.disabled = Counter(
            "prs_notify_endpoints_disabled_total",
            "Endpoints disabled automatically after repeated failures.",
            registry=registry,
        )


def retry_delay_s(
    attempt_no: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None,
    retry_after_max_s: float,
    rng: random.Random,
) -> float:
    """Exponential backoff with equal jitter, never shorter than a (bounded) Retry-After."""
    ceiling = min(max_s, base_s * (2 ** max(0, attempt_no - 1)))
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry_after_max_s))
    return delay


class DeliveryWorker:
    """One per worker process; run several processes for throughput or availability."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        clock: Clock,
        secret_box: SecretBox,
        policy: OutboundPolicy,
        metrics: NotifyMetrics | None = None,
        worker_name: str | None = None,
        rng: random.Random | None = None,
        escalation_messages: EscalationMessages | None = None,
    ):
        self.settings = settings
        self.escalation_messages = escalation_messages
        self.pool = pool
        self.clock = clock
        self.secret_box = secret_box
        self.metrics = metrics
        self.worker_name = worker_name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.rng = rng or random.Random()
        self.http = HttpPoster(
            policy=policy,
            connect_timeout_s=settings.notify_connect_timeout_s,
            total_timeout_s=settings.notify_timeout_s,
            ca_file=settings.notify_ca_file,
        )
        self.email = EmailSender.from_settings(settings)
        self._wake = asyncio.Event()

    # --- the loop --------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; LISTEN/NOTIFY cuts latency, polling guarantees progress."""
        in_flight: set[asyncio.Task] = set()
        listener: Connection | None = None
        try:
            while not stop.is_set():
                listener = await self._ensure_listener(listener)
                self._wake.clear()
                free = self.settings.notify_batch_size - len(in_flight)
                if free > 0:
                    try:
                        claimed = await self.claim(free)
                    except Exception:  # noqa: BLE001 - a database outage must not end the loop; logged, retried
                        log.warning("claiming deliveries failed; retrying", exc_info=True)
                        claimed = []
                    for item in claimed:
                        task = asyncio.create_task(self.deliver(item))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                        task.add_done_callback(lambda _task: self._wake.set())
                await self._sleep(stop, self.settings.notify_poll_s)
        finally:
            if in_flight:
                await asyncio.wait(in_flight, timeout=self.settings.notify_timeout_s + DRAIN_GRACE_S)
            if listener is not None and not listener.is_closed():
                await listener.close()
            await self.http.aclose()

    async def _sleep(self, stop: asyncio.Event, timeout: float) -> None:
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _ensure_listener(self, listener: Connection | None) -> Connection | None:
        if listener is not None and not listener.is_closed():
            return listener
        try:
            listener = await connect(self.settings.database_url)
            await listener.add_listener(repository.WAKE_CHANNEL, lambda *_args: self._wake.set())
            return listener
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("cannot LISTEN for new deliveries; polling only", exc_info=True)
            return None

    async def deliver_due(self) -> int:
        """Claim what is due now and deliver it, waiting for the results (for tests and the benchmark)."""
        claimed = await self.claim(self.settings.notify_batch_size)
        await asyncio.gather(*(self.deliver(item) for item in claimed))
        return len(claimed)

    # --- one delivery ----------------------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[dict[str, Any]]:
        """Lease due queue heads for this worker."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            rows = await repository.claim_deliveries(
                conn,
                worker=self.worker_name,
                now=now,
                limit=limit,
                lease_until=now + timedelta(seconds=self.settings.notify_lease_s),
            )
        return [dict(row) for row in rows]

    async def deliver(self, item: dict[str, Any]) -> AttemptResult:
        """Send one claimed delivery and record the result; a crash before recording means a retry, never a loss."""
        try:
            result = await self.send(item)
        except Exception as exc:  # noqa: BLE001 - an unexpected bug must not lose the event: log it and retry later
            log.exception("delivery failed unexpectedly", extra={"delivery_id": item["delivery_id"]})
            result = AttemptResult("retry", error=f"internal error: {type(exc).__name__}")
        try:
            await self.finish(item, result)
        except Exception:  # noqa: BLE001 - logged; the lease expires and the delivery is retried
            log.warning(
                "could not record a delivery attempt", exc_info=True, extra={"delivery_id": item["delivery_id"]}
            )
        return result

    def _signing_secrets(self, item: dict[str, Any], now: datetime) -> list[str]:
        secrets_in_use = [self.secret_box.decrypt(item["secret_encrypted"])]
        expires = item["previous_secret_expires_at"]
        if item["previous_secret_encrypted"] is not None and expires is not None and expires > now:
            secrets_in_use.append(self.secret_box.decrypt(item["previous_secret_encrypted"]))
        return secrets_in_use

    async def send(self, item: dict[str, Any]) -> AttemptResult:
        """Render the event for the endpoint's channel and send it once."""
        now = self.clock.now()
        payload = item["payload"]
        if item["kind"] == "email":
            to_reporter = item["target"] == REPORTER_TARGET
            if to_reporter:
                address = await self._reporter_address(payload)
                if address is None:
                    return AttemptResult("fail", error="the incident's reporter has no e-mail address")
                recipients = [address]
            else:
                recipients = parse_recipients(item["target"])
            return await self.email.send(
                payload,
                recipients=recipients,
                endpoint_id=item["endpoint_id"],
                sent_at=now,
                letter=await self._letter(payload, "reporter" if to_reporter else "department"),
            )
        if item["kind"] == "slack":
            headers, body = slack_request(payload)
        else:
            try:
                secrets_in_use = self._signing_secrets(item, now)
            except SecretDecryptionError as exc:
                return AttemptResult("retry", error=str(exc))
            headers, body = webhook_request(payload, secrets_in_use=secrets_in_use, sent_at=now)
        return await self.http.post(item["target"], headers=headers, body=body, now=now)

    async def _reporter_address(self, payload: dict[str, Any]) -> str | None:
        incident_id = (payload.get("data", {}).get("incident") or {}).get("id")
        if not isinstance(incident_id, int):
            return None
        async with self.pool.acquire() as conn:
            address = await repository.incident_reporter_email(conn, incident_id)
        try:
            return parse_recipients(address)[0] if address else None
        except ValueError:
            return None

    async def _letter(self, payload: dict[str, Any], audience: str) -> dict[str, str] | None:
        """For an escalation, the message written for its audience, the target department or the reporter
        (people read e-mail; webhook payloads stay free of the comments and names it quotes)."""
        if payload.get("type") != "incident.escalated":
            return None
        escalation_id = (payload.get("data", {}).get("escalation") or {}).get("escalation_id")
        if not isinstance(escalation_id, int) or self.escalation_messages is None:
            return None
        messages = await self.escalation_messages(escalation_id)
        message = (messages or {}).get(audience)
        if not (isinstance(message, dict) and message.get("subject") and message.get("body")):
            return None
        return {"subject": str(message["subject"]), "body": str(message["body"])}

    async def finish(self, item: dict[str, Any], result: AttemptResult) -> None:
        """Log the attempt, move the delivery on (done, retry later or dead) and keep the endpoint's failure streak."""
        now = self.clock.now()
        attempt_no = item["attempt_no"]
        next_attempt_at = None
        if result.succeeded:
            status, outcome = "delivered", "delivered"
        elif result.outcome == "retry" and attempt_no < self.settings.notify_max_attempts:
            status, outcome = "pending", "retrying"
            delay = retry_delay_s(
                attempt_no,
                base_s=self.settings.notify_retry_base_s,
                max_s=self.settings.notify_retry_max_s,
                retry_after_s=result.retry_after_s,
                retry_after_max_s=self.settings.notify_retry_after_max_s,
                rng=self.rng,
            )
            next_attempt_at = now + timedelta(seconds=delay)
        else:
            status, outcome = "dead", "dead"
        disabled = False
        async with transaction(self.pool) as conn:
            finished = await repository.finish_delivery(
                conn,
                delivery_id=item["delivery_id"],
                worker=self.worker_name,
                attempt_no=attempt_no,
                attempt_id=item["attempt_id"],
                outcome=outcome,
                status=status,
                next_attempt_at=next_attempt_at,
                status_code=result.status_code,
                excerpt=result.excerpt,
                error=result.error,
                duration_ms=result.duration_ms,
                succeeded=result.succeeded,
                now=now,
            )
            failures = finished["consecutive_failures"]
            if (
                finished["still_ours"]
                and not result.succeeded
                and finished["enabled"]
                and failures >= self.settings.notify_disable_after_failures
            ):
                # In the transaction whose failure crossed the threshold (the streak's UPDATE holds the
                # endpoint's row): no worker can claim the endpoint's next delivery while it still looks enabled.
                await disable_failing_endpoint(
                    conn,
                    endpoint_id=item["endpoint_id"],
                    kind=item["kind"],
                    failures=failures,
                    last_error=result.error,
                    now=now,
                )
                disabled = True
        if not finished["still_ours"]:
            log.warning(
                "delivery lease was lost before the result was recorded", extra={"delivery_id": item["delivery_id"]}
            )
            return
        if disabled and self.metrics is not None:
            self.metrics.disabled.inc()
        if self.metrics is not None:
            self.metrics.attempts.labels(item["kind"], outcome).inc()
            if result.succeeded:
                self.metrics.delay.labels(item["kind"]).observe(
                    max(0.0, (now - item["event_created_at"]).total_seconds())
                )


async def disable_failing_endpoint(
    conn: Connection, *, endpoint_id: int, kind: str, failures: int, last_error: str | None, now: datetime
) -> None:
    """Disable an endpoint that keeps failing, audit it, and tell admins through a notification event."""
    reason = f"disabled automatically after {failures} consecutive failed attempts; last error: {last_error or '-'}"
    reason = reason[:500]
    await repository.set_endpoint_enabled(conn, endpoint_id, enabled=False, reason=reason, now=now)
    ctx = system_context("notify-delivery")
    await audit.record(
        conn,
        ctx,
        at=now,
        action=ENDPOINT_DISABLED,
        resource_type="notify_endpoint",
        resource_id=endpoint_id,
        before={"enabled": True},
        after={"enabled": False, "reason": reason},
    )
    await write_event(
        conn,
        event_type=ENDPOINT_DISABLED,
        occurred_at=now,
        now=now,
        data={"endpoint": {"id": endpoint_id, "kind": kind}, "consecutive_failures": failures, "reason": reason},
    )
    log.warning(
        "notification endpoint disabled after repeated failures",
        extra={"endpoint_id": endpoint_id, "failures": failures},
    )
