"""Prometheus series of the suggestion queue and the LLM slots, refreshed by each worker's dispatcher."""

from __future__ import annotations

import weakref
from datetime import datetime

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge

from backend.suggestions import repository, slots_repository

PRIORITY_NAMES = {rank: name for name, rank in repository.PRIORITY_RANKS.items()}
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, QueueMetrics] = weakref.WeakKeyDictionary()


class QueueMetrics:
    """Queue depth and age per priority, generations in flight per node, skipped and waiting admissions."""

    def __init__(self, registry: CollectorRegistry):
        self.depth = Gauge(
            "prs_suggestion_queue_depth",
            "Suggestions waiting for an LLM slot, by priority.",
            ["priority"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            "prs_suggestion_queue_oldest_age_seconds",
            "How long the longest waiting suggestion of each priority has waited.",
            ["priority"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "prs_llm_generations_in_flight",
            "Generations running on each LLM node (leased slots).",
            ["node"],
            registry=registry,
        )
        self.slots = Gauge(
            "prs_llm_node_slots", "Parallel generation slots of each LLM node.", ["node"], registry=registry
        )
        self.skipped = Counter(
            "prs_suggestions_skipped_total",
            "Suggestions skipped because they waited past PRS_SUGGESTION_BACKLOG_MAX_AGE_S.",
            registry=registry,
        )
        self.admissions_waiting = Counter(
            "prs_suggestion_admissions_waiting_total",
            "Times work was waiting but every LLM slot was busy.",
            registry=registry,
        )
        self.outcomes = Counter(
            "prs_suggestion_attempts_total", "Admitted generation attempts by outcome.", ["outcome"], registry=registry
        )
        for name in repository.PRIORITY_RANKS:
            self.depth.labels(name).set(0)
            self.oldest_age.labels(name).set(0)

    async def refresh(self, pool: asyncpg.Pool, *, now: datetime) -> None:
        """Read the queue and the slots from Postgres (the same figures on every worker)."""
        async with pool.acquire() as conn:
            queue = await repository.queue_by_priority(conn)
            nodes = await slots_repository.in_flight_by_node(conn, now=now)
        waiting = {row["priority_rank"]: row for row in queue}
        for rank, name in PRIORITY_NAMES.items():
            row = waiting.get(rank)
            self.depth.labels(name).set(row["depth"] if row else 0)
            self.oldest_age.labels(name).set(max(0.0, (now - row["oldest_queued_at"]).total_seconds()) if row else 0)
        for row in nodes:
            self.in_flight.labels(row["node_url"]).set(row["in_flight"])
            self.slots.labels(row["node_url"]).set(row["slots"])


def queue_metrics_for(registry: CollectorRegistry) -> QueueMetrics:
    """The queue metrics of `registry`, created on first use (a registry refuses the same series twice)."""
    if registry not in _BY_REGISTRY:
        _BY_REGISTRY[registry] = QueueMetrics(registry)
    return _BY_REGISTRY[registry]
