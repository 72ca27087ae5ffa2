"""Gauges read from Postgres at scrape time, cached briefly so several replicas scraping do not load the database.

A scrape never waits longer than the refresh timeout: when Postgres does not answer, the last values are served
(stale), `prs_metrics_database_up` drops to 0 and `prs_metrics_database_age_seconds` keeps growing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from backend.clock import Clock
from backend.db import Connection
from backend.db_routing import ReadRouting
from backend.observability import repository

log = logging.getLogger(__name__)

CLOCK_KINDS = ("first_response", "resolution")
KNOWLEDGE_KINDS = ("incident", "document")
ENDPOINT_KINDS = ("webhook", "slack", "email")
FEEDBACK = ("accepted", "rejected", "none")
SUGGESTION_STATUSES = ("pending", "generating", "ready", "failed", "skipped")
JOB_QUEUES = ("suggestions",)


@dataclass
class DatabaseSnapshot:
    """Everything the database gauges show, as of one successful read."""

    open_incidents: list[tuple[str, str, str, int]] = field(default_factory=list)
    sla_breached: dict[str, int] = field(default_factory=dict)
    sla_at_risk: dict[str, int] = field(default_factory=dict)
    sla_breaches_recorded: int = 0
    sla_stopped: dict[tuple[str, bool], int] = field(default_factory=dict)
    resolved: int = 0
    resolution_seconds: float = 0.0
    escalations: dict[str, int] = field(default_factory=dict)
    suggestions: list[tuple[str, str, int]] = field(default_factory=list)
    knowledge: dict[str, tuple[int, int]] = field(default_factory=dict)
    jobs: list[tuple[str, int, int, float]] = field(default_factory=list)
    notify: dict[str, tuple[int, int, float]] = field(default_factory=dict)


async def read_snapshot(conn: Connection, clock: Clock) -> DatabaseSnapshot:
    """Read every database gauge in one repeatable-read transaction."""
    now = clock.now()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        incidents = await repository.open_incidents(conn)
        clocks = await repository.sla_clock_states(conn)
        breaches = await repository.sla_breaches_recorded(conn)
        stopped = await repository.sla_clocks_stopped(conn)
        resolved = await repository.resolutions(conn)
        escalations = await repository.escalations_by_rule(conn)
        suggestions = await repository.suggestion_feedback(conn)
        knowledge = await repository.knowledge_entries(conn)
        jobs = await repository.job_queues(conn, now=now)
        notify = await repository.notification_backlog(conn, now=now)
    return DatabaseSnapshot(
        open_incidents=[(r["status"], r["priority"], r["area"], int(r["n"])) for r in incidents],
        sla_breached={r["kind"]: int(r["breached"]) for r in clocks},
        sla_at_risk={r["kind"]: int(r["at_risk"]) for r in clocks},
        sla_breaches_recorded=breaches,
        sla_stopped={(r["kind"], bool(r["breached"])): int(r["n"]) for r in stopped},
        resolved=int(resolved["n"]),
        resolution_seconds=float(resolved["seconds"]),
        escalations={r["rule"]: int(r["n"]) for r in escalations},
        suggestions=[(r["status"], r["feedback"], int(r["n"])) for r in suggestions],
        knowledge={r["kind"]: (int(r["n"]), int(r["unsynced"])) for r in knowledge},
        jobs=[(r["queue"], int(r["queued"]), int(r["running"]), float(r["oldest_age_s"])) for r in jobs],
        notify={r["kind"]: (int(r["pending"]), int(r["dead"]), float(r["oldest_pending_s"])) for r in notify},
    )


class DatabaseGauges(Collector):
    """A collector serving the last snapshot; `refresh()` (awaited by /metrics) renews it when it is old."""

    def __init__(self, *, pool: asyncpg.Pool | ReadRouting, clock: Clock, cache_s: float, timeout_s: float):
        self.pool = pool
        self.clock = clock
        self.cache_s = cache_s
        self.timeout_s = timeout_s
        self.snapshot = DatabaseSnapshot()
        self.up = False
        self._read_at: float | None = None  # monotonic time of the last successful read
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    def expire(self) -> None:
        """Forget when the database was last read, so the next refresh reads it whatever the cache says."""
        self._tried_at = None

    async def refresh(self) -> None:
        """Renew the snapshot unless it is younger than the cache; never waits longer than the timeout."""
        async with self._lock:
            if self._tried_at is not None and time.monotonic() - self._tried_at < self.cache_s:
                return
            self._tried_at = time.monotonic()
            try:
                self.snapshot = await asyncio.wait_for(self._read(), timeout=self.timeout_s)
            except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.up = False
                log.warning(
                    "database gauges not refreshed; serving the last values",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]},
                )
                return
            self.up = True
            self._read_at = time.monotonic()

    async def _read(self) -> DatabaseSnapshot:
        async with self.pool.acquire(timeout=self.timeout_s) as conn:
            return await read_snapshot(conn, self.clock)

    def collect(self) -> Iterable[Metric]:
        """The gauges of the last snapshot, zeros included for every known label value."""
        yield from self._health()
        yield from self._incidents()
        yield from self._sla()
        yield from self._agent()
        yield from self._queues()

    def _health(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "prs_metrics_database_up",
            "1 when the last scrape-time read of the database gauges succeeded.",
            value=self.up,
        )
        age = time.monotonic() - self._read_at if self._read_at is not None else float("inf")
        yield GaugeMetricFamily(
            "prs_metrics_database_age_seconds",
            "Age of the database gauges served (+Inf before the first successful read).",
            value=age,
        )

    def _incidents(self) -> Iterator[Metric]:
        rows = self.snapshot.open_incidents
        yield GaugeMetricFamily(
            "prs_incidents_open", "Open incidents (open, in progress, waiting).", value=sum(n for *_, n in rows)
        )
        detail = GaugeMetricFamily(
            "prs_incidents_open_detail",
            "Open incidents by status, priority and area.",
            labels=["status", "priority", "area"],
        )
        for status, priority, area, n in rows:
            detail.add_metric([status, priority, area], n)
        yield detail
        # MTTR over a window: increase(prs_incident_resolution_seconds_total) / increase(prs_incidents_resolved_total)
        yield CounterMetricFamily(
            "prs_incidents_resolved", "Incidents resolved (reported here, not imported).", value=self.snapshot.resolved
        )
        yield CounterMetricFamily(
            "prs_incident_resolution_seconds",
            "Summed time from report to resolution of the resolved incidents.",
            value=self.snapshot.resolution_seconds,
        )

    def _sla(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield GaugeMetricFamily(
            "prs_sla_clocks_breached",
            "SLA clocks of open incidents that are breached.",
            value=sum(snap.sla_breached.values()),
        )
        yield GaugeMetricFamily(
            "prs_sla_clocks_at_risk",
            "SLA clocks of open incidents past a warning threshold, not yet breached.",
            value=sum(snap.sla_at_risk.values()),
        )
        breached = GaugeMetricFamily(
            "prs_sla_clocks_breached_detail", "Breached SLA clocks of open incidents by clock kind.", labels=["kind"]
        )
        at_risk = GaugeMetricFamily(
            "prs_sla_clocks_at_risk_detail", "At-risk SLA clocks of open incidents by clock kind.", labels=["kind"]
        )
        for kind in CLOCK_KINDS:
            breached.add_metric([kind], snap.sla_breached.get(kind, 0))
            at_risk.add_metric([kind], snap.sla_at_risk.get(kind, 0))
        yield breached
        yield at_risk
        stopped = CounterMetricFamily(
            "prs_sla_clocks_stopped",
            "SLA clocks that stopped, by kind and whether they met their target.",
            labels=["kind", "outcome"],
        )
        for kind in CLOCK_KINDS:
            stopped.add_metric([kind, "met"], snap.sla_stopped.get((kind, False), 0))
            stopped.add_metric([kind, "breached"], snap.sla_stopped.get((kind, True), 0))
        yield stopped
        yield CounterMetricFamily(
            "prs_sla_breaches", "SLA breaches recorded (each clock breaches once).", value=snap.sla_breaches_recorded
        )
        escalations = CounterMetricFamily(
            "prs_escalations", "Escalations recorded, by rule ('manual' for manual ones).", labels=["rule"]
        )
        for rule, n in sorted(snap.escalations.items()):
            escalations.add_metric([rule], n)
        yield escalations
        yield CounterMetricFamily(
            "prs_escalations_all", "Escalations recorded, all rules.", value=sum(snap.escalations.values())
        )

    def _agent(self) -> Iterator[Metric]:
        snap = self.snapshot
        feedback = GaugeMetricFamily(
            "prs_suggestions_stored", "Stored suggestions by status and feedback.", labels=["status", "feedback"]
        )
        counts = {(s, f): n for s, f, n in snap.suggestions}
        for status in SUGGESTION_STATUSES:
            for given in FEEDBACK:
                feedback.add_metric([status, given], counts.get((status, given), 0))
        yield feedback
        yield GaugeMetricFamily(
            "prs_knowledge_entries_all",
            "Knowledge-base entries (incidents and document passages).",
            value=sum(n for n, _ in snap.knowledge.values()),
        )
        entries = GaugeMetricFamily("prs_knowledge_entries", "Knowledge-base entries by kind.", labels=["kind"])
        unsynced = GaugeMetricFamily(
            "prs_knowledge_entries_unsynced",
            "Knowledge-base entries not yet in the vector index, by kind.",
            labels=["kind"],
        )
        for kind in KNOWLEDGE_KINDS:
            total, waiting = snap.knowledge.get(kind, (0, 0))
            entries.add_metric([kind], total)
            unsynced.add_metric([kind], waiting)
        yield entries
        yield unsynced

    def _queues(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield GaugeMetricFamily(
            "prs_jobs_queued_all", "Jobs waiting in every queue.", value=sum(q for _, q, _, _ in snap.jobs)
        )
        queued = GaugeMetricFamily("prs_jobs_queued", "Jobs waiting and due, by queue.", labels=["queue"])
        running = GaugeMetricFamily("prs_jobs_running", "Jobs being worked on, by queue.", labels=["queue"])
        oldest = GaugeMetricFamily(
            "prs_jobs_oldest_age_seconds",
            "Age of the oldest due job still waiting, by queue (0 when none waits).",
            labels=["queue"],
        )
        jobs = {queue: (waiting, working, age) for queue, waiting, working, age in snap.jobs}
        for queue in JOB_QUEUES:
            waiting, working, age = jobs.get(queue, (0, 0, 0.0))
            queued.add_metric([queue], waiting)
            running.add_metric([queue], working)
            oldest.add_metric([queue], age)
        yield queued
        yield running
        yield oldest
        yield GaugeMetricFamily(
            "prs_notify_backlog_all",
            "Notification deliveries waiting, every endpoint type.",
            value=sum(p for p, _, _ in snap.notify.values()),
        )
        yield GaugeMetricFamily(
            "prs_notify_dead_letters_all",
            "Dead-lettered deliveries in the delivery log.",
            value=sum(d for _, d, _ in snap.notify.values()),
        )
        backlog = GaugeMetricFamily("prs_notify_backlog", "Deliveries waiting, by endpoint type.", labels=["kind"])
        dead = GaugeMetricFamily(
            "prs_notify_dead_letters", "Dead-lettered deliveries in the log, by endpoint type.", labels=["kind"]
        )
        oldest_pending = GaugeMetricFamily(
            "prs_notify_oldest_pending_age_seconds",
            "Age of the oldest waiting delivery, by endpoint type.",
            labels=["kind"],
        )
        for kind in ENDPOINT_KINDS:
            pending, dead_n, age = snap.notify.get(kind, (0, 0, 0.0))
            backlog.add_metric([kind], pending)
            dead.add_metric([kind], dead_n)
            oldest_pending.add_metric([kind], age)
        yield backlog
        yield dead
        yield oldest_pending
