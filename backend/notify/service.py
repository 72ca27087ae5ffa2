"""Notification rules for the admin API: endpoints, secrets, pings, the event and delivery logs, redelivery,
retention. One transaction per call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from backend.audit import service as audit
from backend.clock import Clock
from backend.config import Settings
from backend.context import RequestContext
from backend.db import Connection, transaction
from backend.errors import BadRequest, Conflict, ValidationFailed, found
from backend.notify import repository
from backend.notify.catalog import INCIDENT_EVENTS, PING, REPORTER_TARGET
from backend.notify.crypto import SecretBox
from backend.notify.email import parse_recipients
from backend.notify.outbox import OutboxListener, write_event
from backend.notify.schemas import EndpointCreate, EndpointUpdate, LogFilters
from backend.notify.signing import new_signing_secret
from backend.notify.ssrf import OutboundPolicy, OutboundRefused
from backend.sql import expect_row

# A page of the delivery log: repository.list_deliveries or list_attempts.
LogFetch = Callable[..., Awaitable[list[asyncpg.Record]]]

PING_MESSAGE = "Test message from PR-System. If you can read this, the endpoint works."


def _audit_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    keep = ("kind", "target", "description", "enabled", "event_types", "areas", "priorities")
    return {k: (list(row[k]) if isinstance(row[k], (list, tuple)) else row[k]) for k in keep}


def endpoint_view(row: asyncpg.Record) -> dict[str, Any]:
    """The API shape of an endpoint (never its secret)."""
    data = dict(row)
    for key in ("event_types", "areas", "priorities"):
        data[key] = list(data[key])
    return data


def _cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    # isdigit() alone admits digits such as "²" that int() refuses; ids are positive bigints.
    if not (cursor.isascii() and cursor.isdigit()) or not 0 < int(cursor) < 2**63:
        raise BadRequest("cursor is not valid; use next_cursor from a previous page", field="cursor")
    return int(cursor)


def _page(rows: list[asyncpg.Record], limit: int, key: str) -> dict[str, Any]:
    items = [dict(r) for r in rows[:limit]]
    return {"items": items, "next_cursor": str(rows[limit - 1][key]) if len(rows) > limit else None}


class NotifyService:
    """Endpoints and logs for admins; the outbox listener and the delivery worker hang off it."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        clock: Clock,
        secret_box: SecretBox,
        policy: OutboundPolicy,
        delivery: Any = None,
    ):
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.secret_box = secret_box
        self.policy = policy
        self.outbox = OutboxListener(clock=clock)
        self.delivery = delivery

    # --- endpoints -------------------------------------------------------------------------------------------

    async def _check_target(self, kind: str, target: str) -> str:
        if kind == "email":
            if not self.settings.smtp_host:
                raise ValidationFailed("e-mail endpoints need an SMTP server: set PRS_SMTP_HOST", field="kind")
            if target.strip().lower() == REPORTER_TARGET:
                return REPORTER_TARGET
            try:
                return ", ".join(parse_recipients(target))
            except ValueError as exc:
                raise ValidationFailed(f"target: {exc}", field="target") from None
        try:
            return (await self.policy.check_url(target)).url
        except OutboundRefused as exc:
            raise ValidationFailed(f"target refused: {exc}", field="target") from None

    @staticmethod
    def _check_reporter_events(target: str, event_types: list[str]) -> None:
        """An endpoint that writes to reporters takes events about an incident only."""
        if target != REPORTER_TARGET:
            return
        other = sorted(set(event_types) - INCIDENT_EVENTS)
        if other:
            raise ValidationFailed(
                f"an endpoint whose target is '{REPORTER_TARGET}' takes only events about an "
                f"incident; not {', '.join(other)}",
                field="event_types",
            )

    async def _check_areas(self, conn: Connection, areas: list[str]) -> None:
        unknown = sorted(set(areas) - await repository.existing_areas(conn, areas))
        if unknown:
            raise ValidationFailed(f"unknown area(s): {', '.join(unknown)}", field="areas")

    async def create_endpoint(self, ctx: RequestContext, body: EndpointCreate) -> dict[str, Any]:
        """Store an endpoint; a webhook gets a signing secret, returned only in this answer."""
        target = await self._check_target(body.kind, body.target)
        self._check_reporter_events(target, list(body.event_types))
        secret = new_signing_secret() if body.kind == "webhook" else None
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            await self._check_areas(conn, body.areas)
            endpoint_id = await repository.insert_endpoint(
                conn,
                kind=body.kind,
                target=target,
                description=body.description,
                enabled=body.enabled,
                event_types=list(body.event_types),
                areas=body.areas,
                priorities=list(body.priorities),
                secret_encrypted=self.secret_box.encrypt(secret) if secret else None,
                now=now,
            )
            row = expect_row(await repository.get_endpoint(conn, endpoint_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.endpoint.created",
                resource_type="notify_endpoint",
                resource_id=endpoint_id,
                after=_audit_view(row),
            )
        return endpoint_view(row) | {"secret": secret}

    async def list_endpoints(self) -> list[dict[str, Any]]:
        """Every endpoint."""
        async with self.pool.acquire() as conn:
            return [endpoint_view(r) for r in await repository.list_endpoints(conn)]

    async def get_endpoint(self, endpoint_id: int) -> dict[str, Any]:
        """One endpoint or NotFound."""
        async with self.pool.acquire() as conn:
            row = found(await repository.get_endpoint(conn, endpoint_id), f"notification endpoint {endpoint_id}")
        return endpoint_view(row)

    async def _locked(self, conn: Connection, endpoint_id: int) -> asyncpg.Record:
        row = found(
            await repository.get_endpoint(conn, endpoint_id, for_update=True), f"notification endpoint {endpoint_id}"
        )
        return row

    async def update_endpoint(self, ctx: RequestContext, endpoint_id: int, body: EndpointUpdate) -> dict[str, Any]:
        """Change target, description or filter; a new target is checked like a new endpoint's."""
        changes = body.model_dump(exclude_unset=True)
        if "target" in changes:
            kind = (await self.get_endpoint(endpoint_id))["kind"]
            changes["target"] = await self._check_target(kind, changes["target"])
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked(conn, endpoint_id)
            self._check_reporter_events(
                changes.get("target", before["target"]), list(changes.get("event_types", before["event_types"]))
            )
            if "areas" in changes:
                await self._check_areas(conn, changes["areas"])
            await repository.update_endpoint(conn, endpoint_id, changes=changes, now=now)
            after = expect_row(await repository.get_endpoint(conn, endpoint_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.endpoint.updated",
                resource_type="notify_endpoint",
                resource_id=endpoint_id,
                before=_audit_view(before),
                after=_audit_view(after),
            )
        return endpoint_view(after)

    async def delete_endpoint(self, ctx: RequestContext, endpoint_id: int) -> None:
        """Remove an endpoint, its pending deliveries and its delivery log."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked(conn, endpoint_id)
            await repository.delete_endpoint(conn, endpoint_id)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.endpoint.deleted",
                resource_type="notify_endpoint",
                resource_id=endpoint_id,
                before=_audit_view(before),
            )

    async def set_enabled(self, ctx: RequestContext, endpoint_id: int, enabled: bool) -> dict[str, Any]:
        """Enable (pending deliveries resume in order, the failure streak restarts) or disable an endpoint."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked(conn, endpoint_id)
            reason = None if enabled else f"disabled by {ctx.principal.name}"
            await repository.set_endpoint_enabled(conn, endpoint_id, enabled=enabled, reason=reason, now=now)
            after = expect_row(await repository.get_endpoint(conn, endpoint_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.endpoint." + ("enabled" if enabled else "disabled"),
                resource_type="notify_endpoint",
                resource_id=endpoint_id,
                before={"enabled": before["enabled"], "disabled_reason": before["disabled_reason"]},
                after={"enabled": enabled},
            )
            if enabled:
                await repository.wake_workers(conn)
        return endpoint_view(after)

    async def rotate_secret(self, ctx: RequestContext, endpoint_id: int, grace_seconds: int | None) -> dict[str, Any]:
        """A new signing secret; the current one keeps signing beside it for the grace period."""
        grace = self.settings.notify_secret_grace_s if grace_seconds is None else grace_seconds
        secret = new_signing_secret()
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            endpoint = await self._locked(conn, endpoint_id)
            if endpoint["kind"] != "webhook":
                raise Conflict(f"only webhook endpoints sign their messages; this one is '{endpoint['kind']}'")
            current = expect_row(await repository.get_endpoint_secrets(conn, endpoint_id))
            keep_old = grace > 0 and current["secret_encrypted"] is not None
            expires = now + timedelta(seconds=grace) if keep_old else None
            await repository.rotate_secret(
                conn,
                endpoint_id,
                new_encrypted=self.secret_box.encrypt(secret),
                previous_encrypted=current["secret_encrypted"] if keep_old else None,
                previous_expires_at=expires,
                now=now,
            )
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.endpoint.secret_rotated",
                resource_type="notify_endpoint",
                resource_id=endpoint_id,
                after={"previous_secret_expires_at": expires.isoformat() if expires else None},
            )
        return {"endpoint_id": endpoint_id, "secret": secret, "previous_secret_expires_at": expires}

    async def send_ping(self, ctx: RequestContext, endpoint_id: int) -> dict[str, Any]:
        """Queue a test.ping event for one enabled endpoint; its outcome appears in the delivery log."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            endpoint = await self._locked(conn, endpoint_id)
            if not endpoint["enabled"]:
                raise Conflict(f"endpoint {endpoint_id} is disabled; enable it before sending a test")
            if endpoint["kind"] == "email" and endpoint["target"] == REPORTER_TARGET:
                raise Conflict(
                    f"endpoint {endpoint_id} writes to each incident's reporter; there is no fixed "
                    "address to send a test to"
                )
            written = await write_event(
                conn,
                event_type=PING,
                occurred_at=now,
                now=now,
                data={"endpoint_id": endpoint_id, "message": PING_MESSAGE},
                only_endpoint_id=endpoint_id,
            )
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.endpoint.ping",
                resource_type="notify_endpoint",
                resource_id=endpoint_id,
                after={"event_id": written.event_id},
            )
        return {"event_id": written.event_id, "delivery_id": written.delivery_ids[0]}

    # --- events, deliveries and the log ----------------------------------------------------------------------

    async def list_events(self, filters: LogFilters) -> dict[str, Any]:
        """Outbox events, newest first."""
        self._check_period(filters)
        async with self.pool.acquire() as conn:
            rows = await repository.list_events(
                conn,
                filters={
                    "type": filters.event_type,
                    "incident_id": filters.incident_id,
                    "since": filters.since,
                    "until": filters.until,
                },
                before_seq=_cursor(filters.cursor),
                limit=filters.limit + 1,
            )
        return _page(rows, filters.limit, "seq")

    async def get_event(self, event_id: str) -> dict[str, Any]:
        """One event with its deliveries."""
        async with self.pool.acquire() as conn:
            row = found(await repository.get_event(conn, event_id), f"event {event_id}")
            deliveries = await repository.list_deliveries(
                conn, filters={"event_id": event_id}, before_id=None, limit=1000
            )
        return dict(row) | {"deliveries": [dict(d) for d in reversed(deliveries)]}

    async def redeliver(self, ctx: RequestContext, event_id: str, endpoint_ids: list[int] | None) -> dict[str, Any]:
        """Queue the event again (same id, so consumers can recognise it) at the back of each endpoint's queue."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            event = found(await repository.get_event(conn, event_id), f"event {event_id}")
            targets = await self._redelivery_targets(conn, event, endpoint_ids)
            delivery_ids = [
                await repository.insert_delivery(conn, event_id=event_id, endpoint_id=endpoint_id, now=now, manual=True)
                for endpoint_id in targets
            ]
            await repository.wake_workers(conn)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="notify.event.redelivered",
                resource_type="notify_event",
                resource_id=event_id,
                after={"endpoint_ids": targets, "delivery_ids": delivery_ids},
            )
        return {"event_id": event_id, "delivery_ids": delivery_ids}

    async def _redelivery_targets(
        self, conn: Connection, event: asyncpg.Record, endpoint_ids: list[int] | None
    ) -> list[int]:
        if endpoint_ids is None:
            if event["type"] == PING:
                endpoint_ids = [int(event["payload"]["data"]["endpoint_id"])]
            else:
                endpoint_ids = await repository.matching_endpoint_ids(
                    conn, event_type=event["type"], area=event["area"], priority=event["priority"]
                )
            if not endpoint_ids:
                raise ValidationFailed(
                    "no enabled endpoint subscribes to this event; name endpoint_ids", field="endpoint_ids"
                )
        targets = list(dict.fromkeys(endpoint_ids))
        for endpoint_id in targets:
            endpoint = await repository.get_endpoint(conn, endpoint_id)
            if endpoint is None:
                raise ValidationFailed(f"endpoint {endpoint_id} does not exist", field="endpoint_ids")
            if not endpoint["enabled"]:
                raise ValidationFailed(f"endpoint {endpoint_id} is disabled; enable it first", field="endpoint_ids")
        return targets

    async def list_deliveries(self, filters: LogFilters) -> dict[str, Any]:
        """Deliveries (one per event and endpoint), newest first."""
        return await self._log_page(filters, repository.list_deliveries, repository.DELIVERY_FILTERS)

    async def list_attempts(self, filters: LogFilters) -> dict[str, Any]:
        """The delivery log: every attempt, newest first."""
        return await self._log_page(filters, repository.list_attempts, repository.ATTEMPT_FILTERS)

    async def _log_page(self, filters: LogFilters, fetch: LogFetch, accepted: Mapping[str, str]) -> dict[str, Any]:
        self._check_period(filters)
        async with self.pool.acquire() as conn:
            rows = await fetch(
                conn,
                filters=filters.model_dump(include=set(accepted)),
                before_id=_cursor(filters.cursor),
                limit=filters.limit + 1,
            )
        return _page(rows, filters.limit, "id")

    @staticmethod
    def _check_period(filters: LogFilters) -> None:
        if filters.since and filters.until and filters.since >= filters.until:
            raise ValidationFailed("since must be before until", field="since")

    async def purge_old_log(self, _tick: datetime | None = None) -> dict[str, int]:
        """Retention: drop log rows, finished deliveries and events older than PRS_NOTIFY_LOG_RETENTION_DAYS."""
        before = self.clock.now() - timedelta(days=self.settings.notify_log_retention_days)
        async with transaction(self.pool) as conn:
            return await repository.delete_log_before(conn, before=before)
