"""Put the SLA subsystem into a Container container: services, the clock listener and the periodic tasks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from backend.jobs.scheduler import PeriodicTask
from backend.sla.timers import SlaClockListener
from backend.sla.escalation import Escalator
from backend.sla.maintenance import MaintenanceService
from backend.sla.reports import SlaReportService
from backend.sla.service import SlaService
from backend.sla.sweeps import SlaSweeper

SWEEP_TASK = "sla.sweep"
MAINTENANCE_TASK = "maintenance.run"


def install_sla(services: Any) -> None:
    """Build the SLA services, subscribe the clock listener and register `sla.sweep` and `maintenance.run`."""
    settings = services.settings
    escalator = Escalator(events=services.events, default_language=settings.suggestion_language)
    sweeper = SlaSweeper(pool=services.pool, clock=services.clock, escalator=escalator, events=services.events,
                         batch_size=settings.sla_sweep_batch_size)
    services.sla = SlaService(pool=services.pool, clock=services.clock, escalator=escalator, sweeper=sweeper)
    services.sla_reports = SlaReportService(pool=services.pool, clock=services.clock)
    services.maintenance = MaintenanceService(pool=services.pool, clock=services.clock, settings=settings)
    services.events.subscribe(SlaClockListener(first_response_on=settings.sla_first_response_on))

    async def sweep(_tick: object) -> dict[str, Any]:
        return (await services.sla.sweep()).as_dict()

    async def maintain(_tick: object) -> dict[str, Any]:
        return await services.maintenance.run()

    services.scheduler.register(PeriodicTask(SWEEP_TASK, timedelta(seconds=settings.sla_sweep_interval_s), sweep))
    services.scheduler.register(PeriodicTask(MAINTENANCE_TASK, timedelta(seconds=settings.maintenance_interval_s),
                                             maintain))
