"""HTTP endpoints for SLA compliance and service-quality metrics (HTTP only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from backend.context import Principal
from backend.deps import get_container, require_metrics_reader
from backend.sla.dashboard import DashboardService

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


@router.get(
    "/compliance",
    response_model=ComplianceReport,
    summary="SLA compliance per policy",
    description="Supervisors, admins and auditors. Per SLA policy (and by area and by priority): "
    "incidents, per clock met/breached/pending, compliance rate = met / (met + breached), "
    "average and p90 business minutes overdue of breached clocks, and incidents at risk now "
    "(past the lowest warning threshold, not yet breached). " + PERIOD_HELP,
)
async def compliance(
    request: Request,
    date_from: datetime | None = Query(default=None),
    date_to: datetime | None = Query(default=None),
    _: Principal = Depends(require_metrics_reader),
) -> dict:
    return await get_container(request).sla_reports.compliance(date_from, date_to)


@router.get(
    "/quality",
    response_model=QualityReport,
    summary="Service-quality metrics",
    description="Supervisors, admins and auditors. Overall, by area and by priority: resolution rate, "
    "escalation rate, average satisfaction (suggestion rating 1-5) and share rated 4-5, mean "
    "and median minutes to resolution, first-contact resolution (resolved, never reopened, never "
    "escalated, at most one assignee), suggestion acceptance rate. " + PERIOD_HELP,
)
async def quality(
    request: Request,
    date_from: datetime | None = Query(default=None),
    date_to: datetime | None = Query(default=None),
    _: Principal = Depends(require_metrics_reader),
) -> dict:
    return await get_container(request).sla_reports.quality(date_from, date_to)


class OverviewReport(BaseModel):
    period: dict[str, datetime]
    as_of: datetime
    open_incidents: dict[str, Any]
    escalations: dict[str, Any]
    suggestions: dict[str, Any]


class RecurringReport(BaseModel):
    period: dict[str, datetime]
    as_of: datetime
    scanned: int
    min_similarity: float
    problems: list[dict[str, Any]]


def _dashboard(request: Request) -> DashboardService:
    return get_container(request).dashboard


@router.get(
    "/overview",
    response_model=OverviewReport,
    summary="Dashboard figures: workload, escalations, ratings",
    description="Supervisors, admins and auditors. `open_incidents`: incidents not resolved or closed now, "
    "in total and by status, priority and area. `escalations`: escalations recorded in the "
    "period, by level and by trigger (rule, manual). `suggestions`: of incidents created in the "
    "period (imports left out), suggestions accepted and rejected and how many got each rating "
    "1-5. " + PERIOD_HELP,
)
async def overview(
    request: Request,
    date_from: datetime | None = Query(default=None),
    date_to: datetime | None = Query(default=None),
    _: Principal = Depends(require_metrics_reader),
) -> dict:
    return await _dashboard(request).overview(date_from, date_to)


@router.get(
    "/recurring",
    response_model=RecurringReport,
    summary="Top recurring problems",
    description="Supervisors, admins and auditors. Incidents created in the period (the newest 500, imports "
    "left out) grouped by meaning with the knowledge encoder: an incident joins the group whose "
    "centroid is most similar if the cosine similarity reaches `min_similarity`. Groups of two "
    "or more, largest first: label (the most central incident's title), incidents, still open, "
    "by area, incident ids, first and last creation time. " + PERIOD_HELP,
)
async def recurring(
    request: Request,
    date_from: datetime | None = Query(default=None),
    date_to: datetime | None = Query(default=None),
    limit: int = Query(default=10, ge=1, le=50),
    min_similarity: float = Query(default=0.75, ge=0.3, le=0.99),
    _: Principal = Depends(require_metrics_reader),
) -> dict:
    return await _dashboard(request).recurring(date_from, date_to, limit=limit, min_similarity=min_similarity)
