"""The worker: suggestion generation admitted by LLM capacity, periodic upkeep and the extra loops (outbox
delivery, ...), safe with many replicas (docs/jobs.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING

from backend.suggestions.dispatcher import SuggestionDispatcher
from backend.suggestions.queue_metrics import queue_metrics_for

if TYPE_CHECKING:  # the container lists the background work; the worker only runs it
    from backend.container import Container

log = logging.getLogger(__name__)
SCHEDULER_POLL_S = 2.0


async def _scheduler_forever(services: Container, stop: asyncio.Event) -> None:
    """Claim and run due periodic ticks until stopped; survives database outages."""
    while not stop.is_set():
        try:
            await services.scheduler.run_due()
        except Exception:  # noqa: BLE001 - a database outage must not end the worker
            log.warning("periodic scheduler pass failed; retrying", exc_info=True)
        # Jittered, so that workers do not poll in lockstep: with a fixed period the same worker would win every
        # tick of a task and the others would never share the periodic work.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=SCHEDULER_POLL_S * random.uniform(0.5, 1.0))


def build_dispatcher(services: Container) -> SuggestionDispatcher:
    """The suggestion dispatcher of this worker process."""
    return SuggestionDispatcher(
        settings=services.settings,
        pool=services.pool,
        clock=services.clock,
        llm=services.llm,
        suggestions=services.suggestions,
        metrics=queue_metrics_for(services.metrics.registry),
    )


async def run_worker(services: Container, stop: asyncio.Event) -> None:
    """Generate suggestions and run upkeep until `stop` is set."""
    tasks = [
        asyncio.create_task(build_dispatcher(services).run(stop)),
        asyncio.create_task(_scheduler_forever(services, stop)),
        *(asyncio.create_task(loop(stop)) for loop in services.worker_loops),
    ]
    try:
        await stop.wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
