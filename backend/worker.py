"""The job worker: suggestion jobs from pgqueuer plus periodic upkeep, safe with many replicas."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pgqueuer import AsyncpgDriver, Job, Queries, QueueManager

from backend import jobs
from backend.db import connect
from backend.services import Services

log = logging.getLogger(__name__)
SCHEDULER_POLL_S = 2.0


async def _scheduler_forever(services: Services, stop: asyncio.Event) -> None:
    """Claim and run due periodic ticks until stopped; survives database outages."""
    while not stop.is_set():
        try:
            await services.scheduler.run_due()
        except Exception:  # noqa: BLE001 - a database outage must not end the worker
            log.warning("periodic scheduler pass failed; retrying", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), timeout=SCHEDULER_POLL_S)
        except asyncio.TimeoutError:
            pass


async def run_worker(services: Services, stop: asyncio.Event) -> None:
    """Process jobs until `stop` is set."""
    conn = await connect(services.settings.database_url)
    # pgqueuer >= 1.0 takes its repository (Queries) rather than a bare driver.
    manager = QueueManager(Queries(AsyncpgDriver(conn)))

    @manager.entrypoint(jobs.SUGGESTION_GENERATE)
    async def generate_suggestion(job: Job) -> None:
        incident_id = int(jobs.job_payload(job.payload)["incident_id"])
        outcome = await services.suggestions.generate(incident_id)
        services.metrics.suggestions.labels(outcome).inc()

    async def stop_manager() -> None:
        await stop.wait()
        manager.shutdown.set()

    upkeep = asyncio.create_task(_scheduler_forever(services, stop))
    stopper = asyncio.create_task(stop_manager())
    loops = [asyncio.create_task(loop(stop)) for loop in services.worker_loops]
    try:
        await manager.run(dequeue_timeout=timedelta(seconds=5), batch_size=services.settings.worker_batch_size,
                          heartbeat_timeout=timedelta(seconds=60))
    finally:
        stop.set()
        await asyncio.gather(upkeep, stopper, *loops, return_exceptions=True)
        await conn.close()
