"""Suggestion rules: scheduling, generation with retry and backoff, feedback and rating."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, AsyncIterator

import asyncpg

from agent.language import Language, detect_language
from agent.llm import LanguageModel, LLMCluster, LLMUnavailable
from agent.suggest import Suggester
from backend.audit import service as audit
from backend.clock import Clock
from backend.config import Settings
from backend.context import RequestContext, system_context
from backend.db import Connection, transaction
from backend.errors import Conflict, Forbidden, NotFound
from backend.events import DomainEvent, EventBus
from backend.knowledge.service import KnowledgeService
from backend.observability.metrics import Metrics
from backend.sql import expect_row
from backend.suggestions import repository

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.3
SKIPPED_BACKLOG = "skipped: backlog (ask for it again with regenerate)"


async def schedule(conn: Connection, *, incident_id: int, language: str, now: datetime) -> None:
    """Put the incident's suggestion in the queue (pending), inside the caller's transaction; a worker admits it
    to an LLM node when a slot is free (backend/suggestions/dispatcher.py)."""
    priority = await repository.incident_priority(conn, incident_id) or "medium"
    await repository.upsert_pending(conn, incident_id=incident_id, language=language, priority=priority, now=now)


def suggestion_language(settings: Settings, *, requested: Language | None, report: str) -> Language:
    """The language asked for, else the report's own (detected), else the configured one."""
    if requested:
        return requested
    if settings.suggestion_language_mode == "fixed":
        return settings.suggestion_language
    return detect_language(report, default=settings.suggestion_language)


def suggester_for(settings: Settings, llm: LLMCluster) -> Suggester:
    """The suggester the settings describe."""
    return Suggester(
        llm,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        mode=settings.suggestion_mode,
        min_score=settings.suggestion_min_score,
        relative_score=settings.suggestion_relative_score,
        max_sources=settings.suggestion_max_sources,
        max_steps=settings.suggestion_max_steps,
        max_chars=settings.suggestion_max_chars,
    )


def retry_delay_s(attempt: int, *, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter in [delay/2, delay]."""
    delay = min(max_s, base_s * (2 ** max(0, attempt - 1)))
    return delay * (0.5 + 0.5 * (rng or random).random())


def suggestion_view(row: asyncpg.Record) -> dict[str, Any]:
    """The API shape of a suggestion."""
    data = dict(row)
    data.pop("lease_expires_at", None)
    data["citations"] = list(data["citations"])
    data["retrieved"] = list(data["retrieved"])
    data["document_citations"] = list(data["document_citations"])
    data["retrieved_documents"] = list(data["retrieved_documents"])
    return data


@dataclass
class AttemptTiming:
    """When one generation attempt started and when its first token arrived (perf_counter seconds)."""

    started: float
    first_token_at: float | None = None


@dataclass(kw_only=True, eq=False)
class SuggestionService:
    """Generates and serves suggestions."""

    settings: Settings
    pool: asyncpg.Pool
    clock: Clock
    knowledge: KnowledgeService
    suggester: Suggester
    events: EventBus
    metrics: Metrics | None = None

    async def get(self, incident_id: int) -> dict[str, Any]:
        """The suggestion of an incident, or NotFound."""
        async with self.pool.acquire() as conn:
            row = await repository.get(conn, incident_id)
        if row is None:
            raise NotFound(f"no suggestion for incident {incident_id}")
        return suggestion_view(row)

    async def run_attempt(self, claimed: asyncpg.Record, llm: LanguageModel) -> str:
        """Generate the claimed suggestion on `llm` (the node a slot was leased on); returns the outcome."""
        timing = AttemptTiming(started=time.perf_counter())
        outcome = await self._attempt(claimed, llm, timing)
        if self.metrics is not None:
            self.metrics.suggestions.labels(outcome).inc()  # prs_suggestions_total: the alert rules read it
            self.metrics.suggestion_seconds.labels(outcome).observe(time.perf_counter() - timing.started)
        return outcome

    async def _attempt(self, claimed: asyncpg.Record, llm: LanguageModel, timing: AttemptTiming) -> str:
        incident_id = claimed["incident_id"]
        async with self.pool.acquire() as conn:
            incident = await repository.incident_for_prompt(conn, incident_id)
        if incident is None:
            return "skipped"  # deleted meanwhile
        try:
            cases = await self.knowledge.retrieve_cases(
                text=f"{incident['title']}\n{incident['description']}",
                area=incident["area"],
                limit=self.settings.suggestion_cases,
            )
            suggestion = await self.suggester.suggest(
                title=incident["title"],
                description=incident["description"],
                area=incident["area"],
                cases=cases,
                language=claimed["language"],
                on_progress=self._progress_writer(incident_id, timing),
                llm=llm,
            )
        except LLMUnavailable as exc:
            # Another node is up: fail over to it at once (the failed one cools down and gets no slot meanwhile).
            failover = bool(self.suggester.llm.up_node_urls())
            return await self._retry_later(
                incident_id, claimed["attempts"], f"no LLM node answered: {exc}", immediately=failover
            )
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried, never lost
            log.exception("suggestion generation failed", extra={"incident_id": incident_id})
            return await self._retry_later(incident_id, claimed["attempts"], f"{type(exc).__name__}: {exc}")
        self._observe_speed(timing, suggestion.completion_tokens)
        retrieved = [c.incident_id for c in cases if c.incident_id is not None]
        retrieved_documents = list(dict.fromkeys(c.document_id for c in cases if c.document_id is not None))
        async with transaction(self.pool) as conn:
            await repository.mark_ready(
                conn,
                incident_id,
                text=suggestion.text,
                citations=suggestion.citations,
                retrieved=retrieved,
                model=suggestion.model,
                node=suggestion.node,
                now=self.clock.now(),
                document_citations=suggestion.document_citations,
                retrieved_documents=retrieved_documents,
            )
            ctx = system_context("suggestion-worker")
            now = self.clock.now()
            await audit.record(
                conn,
                ctx,
                at=now,
                action="suggestion.ready",
                resource_type="incident",
                resource_id=incident_id,
                after={
                    "citations": suggestion.citations,
                    "document_citations": suggestion.document_citations,
                    "model": suggestion.model,
                },
            )
            ready = expect_row(await repository.get(conn, incident_id))
            await self.events.publish(
                conn,
                DomainEvent(
                    name="suggestion.ready",
                    resource_type="incident",
                    resource_id=incident_id,
                    at=now,
                    ctx=ctx,
                    after=suggestion_view(ready),
                ),
            )
        return "ready"

    def _observe_speed(self, timing: AttemptTiming, completion_tokens: int) -> None:
        if self.metrics is None or timing.first_token_at is None or completion_tokens <= 0:
            return
        generating_s = time.perf_counter() - timing.first_token_at
        if generating_s > 0:
            self.metrics.suggestion_tokens_per_second.observe(completion_tokens / generating_s)

    def _progress_writer(self, incident_id: int, timing: AttemptTiming):
        last_write = 0.0

        async def write(text: str) -> None:
            nonlocal last_write
            if timing.first_token_at is None:
                timing.first_token_at = time.perf_counter()
                if self.metrics is not None:
                    self.metrics.suggestion_first_token.observe(timing.first_token_at - timing.started)
            if time.monotonic() - last_write < PROGRESS_INTERVAL_S:
                return
            last_write = time.monotonic()
            async with self.pool.acquire() as conn:
                await repository.save_progress(conn, incident_id, text=text, now=self.clock.now())

        return write

    async def _retry_later(self, incident_id: int, attempts: int, error: str, *, immediately: bool = False) -> str:
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            if attempts >= self.settings.suggestion_max_attempts:
                await repository.mark_failed(conn, incident_id, error=error[:1000], now=now)
                return "failed"
            delay = (
                0.0
                if immediately
                else retry_delay_s(
                    attempts, base_s=self.settings.suggestion_retry_base_s, max_s=self.settings.suggestion_retry_max_s
                )
            )
            await repository.mark_retry(
                conn, incident_id, error=error[:1000], next_attempt_at=now + timedelta(seconds=delay), now=now
            )
        log.warning("suggestion retry scheduled", extra={"incident_id": incident_id, "delay_s": round(delay, 1)})
        return "pending"

    async def requeue_expired(self) -> int:
        """Put attempts whose lease ran out (their worker died) back in line; safe on any replica."""
        async with self.pool.acquire() as conn:
            return await repository.requeue_expired(conn, now=self.clock.now())

    async def skip_backlog(self) -> list[int]:
        """Skip pending suggestions of skippable priorities that waited longer than the backlog limit."""
        now = self.clock.now()
        ranks = [repository.PRIORITY_RANKS[p] for p in self.settings.suggestion_backlog_skip_priorities]
        if not ranks:
            return []
        queued_before = now - timedelta(seconds=self.settings.suggestion_backlog_max_age_s)
        async with self.pool.acquire() as conn:
            return await repository.skip_backlog(
                conn, now=now, queued_before=queued_before, ranks=ranks, reason=SKIPPED_BACKLOG
            )

    async def mark_watched(self, incident_id: int) -> None:
        """Someone is watching the suggestion: it goes first while it waits."""
        until = self.clock.now() + timedelta(seconds=self.settings.suggestion_watch_s)
        async with self.pool.acquire() as conn:
            await repository.mark_watched(conn, incident_id, until=until)

    async def backlog_age_s(self) -> float:
        """Seconds the longest waiting pending suggestion has been in line (0 when none waits)."""
        async with self.pool.acquire() as conn:
            oldest = await repository.oldest_pending_queued_at(conn)
        return max(0.0, (self.clock.now() - oldest).total_seconds()) if oldest is not None else 0.0

    async def regenerate(self, ctx: RequestContext, incident_id: int, language: str | None) -> dict[str, Any]:
        """Discard the current suggestion and generate a new one."""
        now = self.clock.now()
        async with transaction(self.pool) as conn:
            current = await repository.get(conn, incident_id)
            if current is None:
                raise NotFound(f"no suggestion for incident {incident_id}")
            if current["status"] == "generating":
                raise Conflict("the suggestion is being generated right now", field="status")
            await schedule(conn, incident_id=incident_id, language=language or current["language"], now=now)
            await audit.record(
                conn,
                ctx,
                at=now,
                action="suggestion.regenerate_requested",
                resource_type="incident",
                resource_id=incident_id,
            )
            row = expect_row(await repository.get(conn, incident_id))
        return suggestion_view(row)

    async def record_feedback(self, ctx: RequestContext, incident_id: int, decision: str) -> dict[str, Any]:
        """Accept or reject a ready suggestion."""
        return await self._judge(ctx, incident_id, action="suggestion.feedback", decision=decision)

    async def rate(self, ctx: RequestContext, incident_id: int, rating: int) -> dict[str, Any]:
        """Rate a ready suggestion 1-5; reporters only on their own incidents."""
        return await self._judge(ctx, incident_id, action="suggestion.rated", rating=rating)

    async def _judge(
        self,
        ctx: RequestContext,
        incident_id: int,
        *,
        action: str,
        decision: str | None = None,
        rating: int | None = None,
    ) -> dict[str, Any]:
        now = self.clock.now()
        principal = ctx.principal
        async with transaction(self.pool) as conn:
            row = await repository.lock_for_feedback(conn, incident_id)
            if row is None:
                raise NotFound(f"no suggestion for incident {incident_id}")
            if row["status"] != "ready":
                raise Conflict(f"the suggestion is '{row['status']}', not ready", field="status")
            if principal.role == "reporter" and row["reporter_id"] != principal.id:
                raise Forbidden("reporters may only rate suggestions of incidents they reported")
            user_id = principal.id if principal.kind == "user" else None
            before: dict[str, Any]
            after: dict[str, Any]
            if decision is not None:
                await repository.set_feedback(conn, incident_id, decision=decision, user_id=user_id, now=now)
                before, after = {"feedback": row["feedback"]}, {"feedback": decision}
            elif rating is None:
                raise ValueError("a judgement is a decision or a rating")
            else:
                await repository.set_rating(conn, incident_id, rating=rating, user_id=user_id, now=now)
                before, after = {"rating": row["rating"]}, {"rating": rating}
            await audit.record(
                conn,
                ctx,
                at=now,
                action=action,
                resource_type="incident",
                resource_id=incident_id,
                before=before,
                after=after,
            )
            updated = expect_row(await repository.get(conn, incident_id))
            await self.events.publish(
                conn,
                DomainEvent(
                    name=action,
                    resource_type="incident",
                    resource_id=incident_id,
                    at=now,
                    ctx=ctx,
                    before=before,
                    after=suggestion_view(updated),
                ),
            )
        return suggestion_view(updated)

    async def stream_updates(
        self, incident_id: int, *, poll_s: float = 0.25, max_s: float = 600.0
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(event, data) pairs as the suggestion text grows; works across replicas by reading Postgres."""
        sent_text, sent_status = "", None
        deadline = time.monotonic() + max_s
        watched_at = 0.0
        while time.monotonic() < deadline:
            current = await self.get(incident_id)
            if current["status"] == "pending" and time.monotonic() - watched_at > self.settings.suggestion_watch_s / 3:
                await self.mark_watched(incident_id)
                watched_at = time.monotonic()
            if current["status"] != sent_status:
                sent_status = current["status"]
                yield "status", {"status": sent_status, "attempts": current["attempts"]}
            text = current["text"]
            if text != sent_text:
                if text.startswith(sent_text):
                    yield "token", {"text": text[len(sent_text) :]}
                else:
                    yield "reset", {"text": text}
                sent_text = text
            if current["status"] in ("ready", "failed", "skipped"):
                yield "done", current
                return
            await asyncio.sleep(poll_s)
        yield "timeout", {"detail": "stream closed; reconnect to continue"}
