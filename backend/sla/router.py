"""HTTP endpoints for SLA policies, escalation rules, an incident's SLA and its escalations (HTTP only)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request, Response, status

from backend.context import Principal
from backend.deps import context_for, get_container, require_role
from backend.errors import ValidationFailed
from backend.sla.calendars import BusinessCalendar, CalendarError
from backend.sla.schemas import (
    DuePreviewOut,
    DuePreviewRequest,
    EscalationOut,
    EscalationRequest,
    IncidentSlaOut,
    PolicyCreate,
    PolicyOut,
    PolicyUpdate,
    RuleCreate,
    RuleOut,
    RuleUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["sla"])


@router.get(
    "/sla/policies",
    response_model=list[PolicyOut],
    summary="List SLA policies",
    description="Technicians and above. In matching order: lowest `precedence` first, then the policy with "
    "the most match conditions, then the oldest.",
)
async def list_policies(request: Request, _: Principal = Depends(require_role("technician"))) -> list:
    return await get_container(request).sla.list_policies()


@router.post(
    "/sla/policies",
    response_model=PolicyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an SLA policy",
    description="Supervisors and admins. Targets are business minutes of the policy's calendar (24/7 when "
    "`calendar` is null). Applies to incidents created, or whose priority, customer tier or "
    "area changes, from now on.",
)
async def create_policy(
    request: Request, body: PolicyCreate, principal: Principal = Depends(require_role("supervisor"))
) -> dict:
    return await get_container(request).sla.create_policy(context_for(request, principal), body)


@router.post(
    "/sla/preview",
    response_model=DuePreviewOut,
    summary="Preview a due date in business time",
    description="Technicians and above. Adds `minutes` of business time of `calendar` (24/7 when null) to "
    "`start`, the way an SLA clock does: working hours per weekday in the calendar's zone, "
    "holidays skipped, daylight-saving changes followed. Nothing is stored.",
)
async def preview_due(body: DuePreviewRequest, _: Principal = Depends(require_role("technician"))) -> dict:
    calendar = BusinessCalendar.from_spec(body.calendar.as_spec() if body.calendar else None)
    try:
        due_at = calendar.add_business_time(body.start, timedelta(minutes=body.minutes))
        due_local = due_at.astimezone(calendar.zone) if body.calendar else due_at
    except CalendarError as exc:
        raise ValidationFailed(str(exc), field="calendar") from None
    except (OverflowError, ValueError):
        raise ValidationFailed(
            "start is too close to the limits of the calendar (years 1-9999)", field="start"
        ) from None
    return {
        "start": body.start,
        "minutes": body.minutes,
        "due_at": due_at,
        "timezone": body.calendar.timezone if body.calendar else "UTC",
        "due_local": due_local.isoformat(),
        "wall_minutes": (due_at - body.start).total_seconds() / 60,
    }


@router.get(
    "/sla/policies/{policy_id}",
    response_model=PolicyOut,
    summary="Get an SLA policy",
    description="Technicians and above.",
)
async def get_policy(request: Request, policy_id: int, _: Principal = Depends(require_role("technician"))) -> dict:
    return await get_container(request).sla.get_policy(policy_id)


@router.patch(
    "/sla/policies/{policy_id}",
    response_model=PolicyOut,
    summary="Change an SLA policy",
    description="Supervisors and admins. Running clocks keep the targets they started with; incidents "
    "pick up the change when their priority, customer tier or area changes.",
)
async def update_policy(
    request: Request, policy_id: int, body: PolicyUpdate, principal: Principal = Depends(require_role("supervisor"))
) -> dict:
    return await get_container(request).sla.update_policy(context_for(request, principal), policy_id, body)


@router.delete(
    "/sla/policies/{policy_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an SLA policy",
    description="Supervisors and admins. Only a policy that never measured an incident; otherwise 409 "
    "(set `is_active` to false instead).",
)
async def delete_policy(
    request: Request, policy_id: int, principal: Principal = Depends(require_role("supervisor"))
) -> Response:
    await get_container(request).sla.delete_policy(context_for(request, principal), policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/sla/escalation-rules",
    response_model=list[RuleOut],
    summary="List escalation rules",
    description="Technicians and above.",
)
async def list_rules(request: Request, _: Principal = Depends(require_role("technician"))) -> list:
    return await get_container(request).sla.list_rules()


@router.post(
    "/sla/escalation-rules",
    response_model=RuleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an escalation rule",
    description="Supervisors and admins. Conditions: duration_exceeds, sla_breached, sla_warning, "
    "priority_is, suggestion_rejected_times, reopened_times, combined with `combine` all/any. "
    "A rule fires at most once per incident at its level.",
)
async def create_rule(
    request: Request, body: RuleCreate, principal: Principal = Depends(require_role("supervisor"))
) -> dict:
    return await get_container(request).sla.create_rule(context_for(request, principal), body)


@router.get(
    "/sla/escalation-rules/{rule_id}",
    response_model=RuleOut,
    summary="Get an escalation rule",
    description="Technicians and above.",
)
async def get_rule(request: Request, rule_id: int, _: Principal = Depends(require_role("technician"))) -> dict:
    return await get_container(request).sla.get_rule(rule_id)


@router.patch(
    "/sla/escalation-rules/{rule_id}",
    response_model=RuleOut,
    summary="Change an escalation rule",
    description="Supervisors and admins.",
)
async def update_rule(
    request: Request, rule_id: int, body: RuleUpdate, principal: Principal = Depends(require_role("supervisor"))
) -> dict:
    return await get_container(request).sla.update_rule(context_for(request, principal), rule_id, body)


@router.delete(
    "/sla/escalation-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an escalation rule",
    description="Supervisors and admins. Escalations it caused stay in the history.",
)
async def delete_rule(
    request: Request, rule_id: int, principal: Principal = Depends(require_role("supervisor"))
) -> Response:
    await get_container(request).sla.delete_rule(context_for(request, principal), rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/incidents/{incident_id}/sla",
    response_model=IncidentSlaOut,
    summary="SLA of an incident",
    description="Any authenticated role; a reporter gets 404 for an incident somebody else reported. The "
    "applied policy, each clock's state (running, paused, stopped), due time, "
    "elapsed/remaining/overdue business minutes, recorded warnings and breaches, and the "
    "escalation level.",
)
async def incident_sla(
    request: Request, incident_id: int, principal: Principal = Depends(require_role("reporter"))
) -> dict:
    return await get_container(request).sla.incident_sla(incident_id, viewer=principal)


@router.post(
    "/incidents/{incident_id}/escalations",
    response_model=EscalationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Escalate an incident by hand",
    description="Technicians and above. Needs a reason; the level may not be below the current one and a "
    "resolved or closed incident cannot be escalated (409). Publishes incident.escalated.",
)
async def escalate_incident(
    request: Request,
    incident_id: int,
    body: EscalationRequest,
    principal: Principal = Depends(require_role("technician")),
) -> dict:
    return await get_container(request).sla.escalate(context_for(request, principal), incident_id, body)


@router.get(
    "/incidents/{incident_id}/escalations",
    response_model=list[EscalationOut],
    summary="Escalation history",
    description="Technicians and above. Oldest first, with the messages sent.",
)
async def incident_escalations(
    request: Request, incident_id: int, _: Principal = Depends(require_role("technician"))
) -> list:
    return await get_container(request).sla.escalations(incident_id)
