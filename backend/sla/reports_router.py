"""HTTP endpoints for SLA compliance and service-quality metrics (HTTP only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from backend.context import Principal
from backend.deps import get_container, require_metrics_reader

router = APIRouter(prefix="/api/v1/sla/metrics", tags=["sla metrics"])

PERIOD_HELP = "Incidents created in [date_from, date_to); default: the 30 days before date_to (default now)."


class ComplianceReport(BaseModel):
    period: dict[str, datetime]
    as_of: datetime
    policies: list[dict[str, Any]]
    by_area: list[dict[str, Any]]
    by_priority: list[dict[str, Any]]


class QualityReport(BaseModel):
    period: dict[str, datetime]
    as_of: datetime
    overall: dict[str, Any]
    by_area: list[dict[str, Any]]
    by_priority: list[dict[str, Any]]


@router.get("/compliance", response_model=ComplianceReport, summary="SLA compliance per policy",
            description="Supervisors, admins and auditors. Per SLA policy (and by area and by priority): "
                        "incidents, per clock met/breached/pending, compliance rate = met / (met + breached), "
                        "average and p90 business minutes overdue of breached clocks, and incidents at risk now "
                        "(past the lowest warning threshold, not yet breached). " + PERIOD_HELP)
async def compliance(request: Request, date_from: datetime | None = Query(default=None),
                     date_to: datetime | None = Query(default=None),
                     _: Principal = Depends(require_metrics_reader)) -> dict:
    return await get_container(request).sla_reports.compliance(date_from, date_to)


@router.get("/quality", response_model=QualityReport, summary="Service-quality metrics",
            description="Supervisors, admins and auditors. Overall, by area and by priority: resolution rate, "
                        "escalation rate, average satisfaction (suggestion rating 1-5) and share rated 4-5, mean "
                        "and median minutes to resolution, first-contact resolution (resolved, never reopened, never "
                        "escalated, at most one assignee), suggestion acceptance rate. " + PERIOD_HELP)
async def quality(request: Request, date_from: datetime | None = Query(default=None),
                  date_to: datetime | None = Query(default=None),
                  _: Principal = Depends(require_metrics_reader)) -> dict:
    return await get_container(request).sla_reports.quality(date_from, date_to)
