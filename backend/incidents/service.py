"""Incident rules: validation against the database, the status machine, audit and knowledge hand-off."""

from __future__ import annotations

import asyncio
import base64
import builtins
import json
import logging
from datetime import datetime
from typing import Any, Awaitable, Callable, TypeGuard

import asyncpg

from backend.audit import service as audit
from backend.clock import Clock
from backend.config import Settings
from backend.context import Principal, RequestContext
from backend.db import Connection, transaction
from backend.db_routing import ReadRouting
from backend.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable, ValidationFailed, found
from backend.events import DomainEvent, EventBus
from backend.idempotency.service import IdempotencyService, IdempotentRequest, KeyAlreadyClaimed
from backend.incidents import repository
from backend.incidents.schemas import IncidentCreate, IncidentFilters, IncidentUpdate
from backend.incidents.states import check_transition, is_reopen
from backend.knowledge.service import KnowledgeService
from backend.observability.metrics import Metrics
from backend.sql import expect_row
from backend.suggestions import service as suggestions

log = logging.getLogger(__name__)


def incident_view(row: asyncpg.Record) -> dict[str, Any]:
    """The API shape of an incident row."""
    data = dict(row)
    data["reporter"] = {"id": data.pop("reporter_id"), "name": data.pop("reporter_name")}
    assignee_id, assignee_name = data.pop("assignee_id"), data.pop("assignee_name")
    data["assignee"] = None if assignee_id is None else {"id": assignee_id, "name": assignee_name or ""}
    return data


def _audit_state(row: asyncpg.Record) -> dict[str, Any]:
    keep = (
        "title",
        "description",
        "area",
        "priority",
        "status",
        "category",
        "customer_tier",
        "external_ref",
        "tags",
        "assignee_id",
        "resolution",
    )
    return {k: row[k] for k in keep}


def encode_cursor(created_at: datetime, incident_id: int) -> str:
    """An opaque keyset cursor."""
    raw = json.dumps([created_at.isoformat(), incident_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Parse a cursor from `encode_cursor`, or 400 naming the field."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, incident_id = json.loads(raw)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None or not isinstance(incident_id, int):
            raise ValueError
        return moment, incident_id
    except (ValueError, TypeError, json.JSONDecodeError):
        raise BadRequest("cursor is not valid; use next_cursor from a previous page", field="cursor") from None


def sees_only_own_incidents(viewer: Principal | None) -> TypeGuard[Principal]:
    """Read policy: people with the reporter role see only incidents they reported; other roles and API keys
    see all. (None: an internal caller, no restriction.)"""
    return viewer is not None and viewer.kind == "user" and viewer.role == "reporter"


def may_view(viewer: Principal | None, incident: asyncpg.Record) -> bool:
    """Whether `viewer` may read this incident (its comments, similar cases and suggestion too): reporters their
    own, API keys limited to areas those areas'."""
    if viewer is not None and not viewer.may_see_area(incident["area"]):
        return False
    return not sees_only_own_incidents(viewer) or incident["reporter_id"] == viewer.id


class IncidentService:
    """Everything that changes or reads incidents; one transaction per call."""

    def __init__(
        self,
        *,
        settings: Settings,
        pool: asyncpg.Pool,
        clock: Clock,
        knowledge: KnowledgeService,
        metrics: Metrics,
        events: EventBus,
        reads: ReadRouting | None = None,
    ):
        self.settings = settings
        self.pool = pool
        # Lists may come from a standby; one incident (what a person just wrote) is always read from the primary.
        self.reads = reads or ReadRouting(pool, None, cooldown_s=settings.database_read_cooldown_s)
        self.clock = clock
        self.knowledge = knowledge
        self.metrics = metrics
        self.events = events
        self.idempotency = IdempotencyService(
            pool=pool, clock=clock, retention_hours=settings.idempotency_retention_hours
        )

    async def _publish(
        self,
        conn: Connection,
        ctx: RequestContext,
        name: str,
        incident_id: int,
        *,
        at: datetime,
        before: asyncpg.Record | None,
        after: asyncpg.Record | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        await self.events.publish(
            conn,
            DomainEvent(
                name=name,
                resource_type="incident",
                resource_id=incident_id,
                at=at,
                ctx=ctx,
                before=dict(before) if before is not None else None,
                after=dict(after) if after is not None else None,
                details=details or {},
            ),
        )

    async def create(
        self,
        ctx: RequestContext,
        body: IncidentCreate,
        *,
        on_created: Callable[[Connection, int], Awaitable[None]] | None = None,
        with_similar: bool = True,
        idempotency: IdempotentRequest | None = None,
    ) -> dict[str, Any]:
        """Store a new incident, its audit row and its suggestion job; reply with similar past incidents.

        `on_created(conn, incident_id)` runs inside the creating transaction (e.g. to link an alert to it);
        `with_similar=False` skips the reply's retrieval for callers that do not show it (the suggestion job and
        the incident page retrieve on their own). With `idempotency` the key is claimed in the same transaction:
        a repeat gets the first answer (marked `replayed`), another body under the key a 422."""
        if idempotency is not None:
            first = await self.idempotency.replay(idempotency)
            if first is not None:
                return {**first[1], "replayed": True}
            try:
                return await self._create(
                    ctx, body, on_created=on_created, with_similar=with_similar, idempotency=idempotency
                )
            except KeyAlreadyClaimed:
                # A concurrent request with the same key committed first: answer what it answered.
                first = await self.idempotency.replay(idempotency)
                if first is None:
                    raise ServiceUnavailable(
                        "a request with the same Idempotency-Key is being processed; retry", field="Idempotency-Key"
                    ) from None
                return {**first[1], "replayed": True}
        return await self._create(ctx, body, on_created=on_created, with_similar=with_similar, idempotency=None)

    async def _create(
        self,
        ctx: RequestContext,
        body: IncidentCreate,
        *,
        on_created: Callable[[Connection, int], Awaitable[None]] | None,
        with_similar: bool,
        idempotency: IdempotentRequest | None,
    ) -> dict[str, Any]:
        async with self.pool.acquire() as conn:
            await self._require_area(conn, body.area, viewer=ctx.principal)
        # Retrieval (mostly encoding, in a thread) runs while the transaction makes its round trips.
        similar_search = asyncio.ensure_future(
            self.similar_for_text(f"{body.title}\n{body.description}", body.area) if with_similar else _nothing()
        )

        async def answer(row: asyncpg.Record) -> dict[str, Any]:
            view = incident_view(row)
            view["similar"] = await similar_search
            view["suggestion_status"] = "pending"
            return view

        try:
            view = await self._insert_new(ctx, body, on_created, idempotency, answer)
        except BaseException:
            similar_search.cancel()
            await asyncio.gather(similar_search, return_exceptions=True)
            raise
        self.metrics.incidents_created.labels(body.area, body.priority).inc()
        return view

    async def _insert_new(
        self,
        ctx: RequestContext,
        body: IncidentCreate,
        on_created: Callable[[Connection, int], Awaitable[None]] | None,
        idempotency: IdempotentRequest | None,
        answer: Callable[[asyncpg.Record], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """The creating transaction: the incident, its audit row, suggestion job and event (and, under an
        idempotency key, the answer kept with the key, so the answer waits for the similar incidents inside it);
        returns the answer."""
        now = self.clock.now()
        values = body.model_dump(exclude={"language"})
        values["reporter_id"] = ctx.principal.id if ctx.principal.kind == "user" else None
        values["reporter_name"] = ctx.principal.name
        async with transaction(self.pool) as conn:
            if idempotency is not None:
                await self.idempotency.claim(conn, idempotency)
            incident_id = await repository.insert_incident(conn, values=values, now=now)
            if on_created is not None:
                await on_created(conn, incident_id)
            row = expect_row(await repository.get_incident(conn, incident_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="incident.created",
                resource_type="incident",
                resource_id=incident_id,
                after=_audit_state(row),
            )
            await suggestions.schedule(
                conn,
                incident_id=incident_id,
                now=now,
                language=suggestions.suggestion_language(
                    self.settings, requested=body.language, report=f"{body.title}\n{body.description}"
                ),
            )
            await self._publish(conn, ctx, "incident.created", incident_id, at=now, before=None, after=row)
            if idempotency is not None:
                view = await answer(row)
                await self.idempotency.record_answer(
                    conn, idempotency, resource_id=incident_id, status_code=201, response=view
                )
                return view
        return await answer(row)

    async def similar_for_text(
        self, text: str, area: str, *, exclude_incident_id: int | None = None, reported_at: datetime | None = None
    ) -> list[Any]:
        """Similar resolved incidents of a text reported at reported_at (now unless given); retrieval
        trouble degrades to an empty list, never to an error."""
        try:
            with self.metrics.retrieval_latency.time():
                return await self.knowledge.similar_incidents(
                    text=text,
                    area=area,
                    limit=self.settings.similar_limit,
                    exclude_incident_id=exclude_incident_id,
                    reported_at=reported_at,
                )
        except Exception:  # retrieval is an aid: the incident must be accepted without it
            log.exception("similar-incident retrieval failed; answering without it")
            return []

    async def get(self, incident_id: int, *, viewer: Principal | None = None) -> dict[str, Any]:
        """One incident or NotFound (also when `viewer` may not see it)."""
        async with self.pool.acquire() as conn:
            return incident_view(await self.read_in(conn, incident_id, viewer=viewer))

    async def similar(self, incident_id: int, *, viewer: Principal | None = None) -> list[Any]:
        """Similar resolved incidents of an existing incident (itself excluded)."""
        incident = await self.get(incident_id, viewer=viewer)
        return await self.similar_for_text(
            f"{incident['title']}\n{incident['description']}",
            incident["area"],
            exclude_incident_id=incident_id,
            reported_at=incident["created_at"],
        )

    async def list(self, filters: IncidentFilters, *, viewer: Principal | None = None) -> dict[str, Any]:
        """A page of incidents (only those `viewer` may see) and the cursor of the next one."""
        after = decode_cursor(filters.cursor) if filters.cursor else None
        if filters.created_from and filters.created_to and filters.created_from >= filters.created_to:
            raise ValidationFailed("created_from must be before created_to", field="created_from")
        conditions = filters.model_dump(exclude={"limit", "cursor"})
        if sees_only_own_incidents(viewer):
            conditions["reporter_id"] = viewer.id
        if viewer is not None and viewer.areas is not None:
            conditions["areas"] = sorted(viewer.areas)
        rows = await self.reads.run(
            lambda conn: repository.list_incidents(conn, filters=conditions, after=after, limit=filters.limit + 1)
        )
        items = [incident_view(r) for r in rows[: filters.limit]]
        next_cursor = None
        if len(rows) > filters.limit:
            last = rows[filters.limit - 1]
            next_cursor = encode_cursor(last["created_at"], last["id"])
        return {"items": items, "next_cursor": next_cursor}

    async def update(self, ctx: RequestContext, incident_id: int, body: IncidentUpdate) -> dict[str, Any]:
        """Change descriptive fields."""
        changes = body.model_dump(exclude_unset=True)
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked(conn, incident_id, viewer=ctx.principal)
            if "area" in changes:
                await self._require_area(conn, changes["area"], viewer=ctx.principal)
            await repository.update_incident_fields(conn, incident_id, changes=changes, now=now)
            after = expect_row(await repository.get_incident(conn, incident_id))
            await audit.record(
                conn,
                ctx,
                at=now,
                action="incident.updated",
                resource_type="incident",
                resource_id=incident_id,
                before=_audit_state(before),
                after=_audit_state(after),
            )
            await self._publish(
                conn,
                ctx,
                "incident.updated",
                incident_id,
                at=now,
                before=before,
                after=after,
                details={"changed": sorted(k for k in changes if before[k] != after[k])},
            )
        return incident_view(after)

    async def assign(self, ctx: RequestContext, incident_id: int, assignee_id: int | None) -> dict[str, Any]:
        """Give the incident to a technician (or take it away)."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked(conn, incident_id, viewer=ctx.principal)
            after = await self.assign_in(conn, ctx, before, assignee_id, now)
        return incident_view(after)

    async def add_comment(self, ctx: RequestContext, incident_id: int, body: str) -> dict[str, Any]:
        """Comment on an incident; reporters only on their own."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            incident = await self._locked(conn, incident_id, viewer=ctx.principal)
            self._check_reporter_owns(ctx.principal, incident)
            row = await repository.insert_comment(
                conn,
                incident_id=incident_id,
                author_id=ctx.principal.id if ctx.principal.kind == "user" else None,
                author_name=ctx.principal.name,
                body=body,
                now=now,
            )
            await audit.record(
                conn,
                ctx,
                at=now,
                action="incident.commented",
                resource_type="incident",
                resource_id=incident_id,
                after={"comment_id": row["id"]},
            )
            await self._publish(
                conn,
                ctx,
                "incident.commented",
                incident_id,
                at=now,
                before=incident,
                after=incident,
                details={"comment_id": row["id"], "author_kind": ctx.principal.kind, "author_role": ctx.principal.role},
            )
        return _comment_view(row)

    async def comments(self, incident_id: int, *, viewer: Principal | None = None) -> builtins.list[dict[str, Any]]:
        """Comments of an incident `viewer` may see."""
        async with self.pool.acquire() as conn:
            await self.read_in(conn, incident_id, viewer=viewer)
            return [_comment_view(r) for r in await repository.list_comments(conn, incident_id)]

    async def history(self, incident_id: int) -> builtins.list[dict[str, Any]]:
        """The audit trail of an incident."""
        async with self.pool.acquire() as conn:
            await self.read_in(conn, incident_id)
            return await audit.resource_history(conn, resource_type="incident", resource_id=incident_id)

    async def change_status(
        self,
        ctx: RequestContext,
        incident_id: int,
        *,
        status: str,
        solution: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Apply one transition of the status machine; resolving needs a solution."""
        if status == "resolved" and not (solution and solution.strip()):
            raise ValidationFailed("a solution is required to resolve an incident", field="solution")
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            before = await self._locked(conn, incident_id, viewer=ctx.principal)
            check_transition(before["status"], status)
            reopened = is_reopen(before["status"], status)
            await repository.set_status(
                conn,
                incident_id,
                status=status,
                now=now,
                resolution=solution.strip() if solution else None,
                reopened=reopened,
            )
            after = expect_row(await repository.get_incident(conn, incident_id))
            action = {"resolved": "incident.resolved", "closed": "incident.closed"}.get(
                status, "incident.status_changed"
            )
            if reopened:
                action = "incident.reopened"
            details = _audit_state(after) | ({"reason": reason} if reason else {})
            await audit.record(
                conn,
                ctx,
                at=now,
                action=action,
                resource_type="incident",
                resource_id=incident_id,
                before=_audit_state(before),
                after=details,
            )
            await self._publish(
                conn,
                ctx,
                action,
                incident_id,
                at=now,
                before=before,
                after=after,
                details={"reason": reason} if reason else {},
            )
            if status == "resolved":
                await self.knowledge.stage_incident(
                    conn,
                    incident_id=incident_id,
                    title=after["title"],
                    description=after["description"],
                    area=after["area"],
                    category=after["category"],
                    resolution=after["resolution"],
                    created_at=after["created_at"],
                )
            elif reopened:
                await self.knowledge.unstage_incident(conn, incident_id)
        if status == "resolved" or reopened:
            await self._sync_knowledge()
        return incident_view(after)

    async def _sync_knowledge(self) -> None:
        """Push staged knowledge changes to the vector index now; the worker retries what fails."""
        try:
            await self.knowledge.sync_pending_vectors()
        except Exception:  # the entry is staged in Postgres; the periodic sync will finish it
            log.warning("vector index sync deferred to the worker", exc_info=True)

    async def list_areas(self) -> builtins.list[dict[str, Any]]:
        """Known areas."""
        async with self.pool.acquire() as conn:
            return [dict(r) for r in await repository.list_areas(conn)]

    async def create_area(self, ctx: RequestContext, code: str, name: str) -> dict[str, Any]:
        """Add an area; 409 when the code exists."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            row = await repository.insert_area(conn, code=code, name=name)
            if row is None:
                raise Conflict(f"area '{code}' exists", field="code")
            await audit.record(
                conn, ctx, at=now, action="area.created", resource_type="area", resource_id=code, after=dict(row)
            )
        return dict(row)

    # For other domains (SLA escalation and sweeps), inside the caller's transaction.

    async def read_in(self, conn: Connection, incident_id: int, *, viewer: Principal | None = None) -> asyncpg.Record:
        """The incident's row, or NotFound (also when `viewer` may not see it)."""
        row = await repository.get_incident(conn, incident_id)
        return found(row if row is not None and may_view(viewer, row) else None, f"incident {incident_id}")

    async def area_exists_in(self, conn: Connection, area: str) -> bool:
        """Whether `area` is a known area code."""
        return await repository.area_exists(conn, area)

    async def assignable_user_in(self, conn: Connection, user_id: int) -> asyncpg.Record | None:
        """The active user who may own incidents, or None."""
        return await repository.get_assignable_user(conn, user_id)

    async def assign_in(
        self,
        conn: Connection,
        ctx: RequestContext,
        before: asyncpg.Record,
        assignee_id: int | None,
        now: datetime,
        *,
        reason: str | None = None,
    ) -> asyncpg.Record:
        """The assignment rule, the one place it is written: the assignee must be able to own incidents; the
        change is audited and published as `incident.assigned` (with `reason`, e.g. "escalation")."""
        incident_id = before["id"]
        if assignee_id is not None and await repository.get_assignable_user(conn, assignee_id) is None:
            raise ValidationFailed(f"user {assignee_id} does not exist or cannot own incidents", field="assignee_id")
        await repository.set_assignee(conn, incident_id, assignee_id, now)
        after = expect_row(await repository.get_incident(conn, incident_id))
        await audit.record(
            conn,
            ctx,
            at=now,
            action="incident.assigned",
            resource_type="incident",
            resource_id=incident_id,
            before={"assignee_id": before["assignee_id"]},
            after={"assignee_id": assignee_id},
        )
        await self._publish(
            conn,
            ctx,
            "incident.assigned",
            incident_id,
            at=now,
            before=before,
            after=after,
            details={"reason": reason} if reason else None,
        )
        return after

    async def area_of(self, incident_id: int) -> str | None:
        """The area of an incident, or None when there is no such incident."""
        async with self.pool.acquire() as conn:
            row = await repository.get_incident(conn, incident_id)
        return row["area"] if row is not None else None

    async def _locked(self, conn: Connection, incident_id: int, *, viewer: Principal | None = None) -> asyncpg.Record:
        row = await repository.get_incident(conn, incident_id, for_update=True)
        in_scope = row is not None and (viewer is None or viewer.may_see_area(row["area"]))
        return found(row if in_scope else None, f"incident {incident_id}")

    async def _require_area(self, conn: Connection, area: str, *, viewer: Principal | None = None) -> None:
        # An area outside an API key's scope gets the same answer as one that does not exist.
        if not await repository.area_exists(conn, area) or (viewer is not None and not viewer.may_see_area(area)):
            known = [r["code"] for r in await repository.list_areas(conn)]
            if viewer is not None:
                known = [code for code in known if viewer.may_see_area(code)]
            raise ValidationFailed(f"unknown area '{area}'; known areas: {', '.join(known)}", field="area")

    @staticmethod
    def _check_reporter_owns(principal: Principal, incident: asyncpg.Record) -> None:
        if principal.role == "reporter" and incident["reporter_id"] != principal.id:
            raise Forbidden("reporters may only act on incidents they reported")


def _comment_view(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    data["author"] = {"id": data.pop("author_id"), "name": data.pop("author_name")}
    return data


async def _nothing() -> list[Any]:
    return []
