"""The SLA domain's typed constructor: its services and the listener that keeps the timers."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from backend.clock import Clock
from backend.config import Settings
from backend.db_routing import ReadRouting
from backend.events import EventBus
from backend.incidents.service import IncidentService
from backend.sla.escalation import Escalator
from backend.sla.reports import SlaReportService
from backend.sla.service import SlaService
from backend.sla.sweeps import SlaSweeper
from backend.sla.timers import SlaClockListener

SWEEP_TASK = "sla.sweep"


@dataclass(frozen=True)
class SlaDomain:
    """The SLA services of one process: policies, clocks, sweeps and escalation; reports; the timer listener
    (subscribed to domain events by the container)."""

    service: SlaService
    reports: SlaReportService
    timers: SlaClockListener


def build_sla(
    settings: Settings,
    *,
    pool: asyncpg.Pool,
    reads: ReadRouting,
    clock: Clock,
    events: EventBus,
    incidents: IncidentService,
) -> SlaDomain:
    """The SLA domain on `pool` (reports read through `reads`, a standby when configured); escalation reassigns
    through the incidents service."""
    escalator = Escalator(events=events, incidents=incidents, default_language=settings.suggestion_language)
    sweeper = SlaSweeper(
        pool=pool,
        clock=clock,
        escalator=escalator,
        events=events,
        incidents=incidents,
        batch_size=settings.sla_sweep_batch_size,
    )
    return SlaDomain(
        service=SlaService(pool=pool, clock=clock, escalator=escalator, sweeper=sweeper, incidents=incidents),
        reports=SlaReportService(pool=reads, clock=clock),
        timers=SlaClockListener(first_response_on=settings.sla_first_response_on),
    )
