"""Alertmanager notifications -> incidents: one incident per firing alert (by fingerprint) while it stays open,
a comment when the alert resolves (and, if configured, the incident resolved)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from backend.alerting import repository
from backend.alerting.schemas import AlertmanagerAlert, AlertmanagerNotification
from backend.clock import Clock
from backend.config import Settings
from backend.context import RequestContext
from backend.db import Connection, transaction
from backend.errors import Conflict, NotFound
from backend.incidents.schemas import DESCRIPTION_MAX, TAG_MAX, TITLE_MAX, IncidentCreate
from backend.incidents.service import IncidentService
from backend.observability.metrics import Metrics

log = logging.getLogger(__name__)
PRIORITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True)
class Placement:
    """Where an alert's incident goes."""

    area: str
    priority: str


def place_alert(labels: dict[str, str], *, settings: Settings, known_areas: set[str]) -> Placement:
    """Area and priority of an alert: the first matching configured rule, then the area label and the severity
    map, then the defaults. Areas that do not exist are skipped."""
    area: str | None = None
    priority: str | None = None
    for rule in settings.alertmanager_rules:
        match = rule.get("match") or {}
        if not isinstance(match, dict) or any(labels.get(str(k)) != str(v) for k, v in match.items()):
            continue
        if area is None and rule.get("area") in known_areas:
            area = str(rule["area"])
        if priority is None and rule.get("priority") in PRIORITIES:
            priority = str(rule["priority"])
    if area is None and labels.get(settings.alertmanager_area_label) in known_areas:
        area = labels[settings.alertmanager_area_label]
    if priority is None:
        mapped = settings.alertmanager_priorities.get(labels.get("severity", ""))
        priority = mapped if mapped in PRIORITIES else None
    return Placement(
        area=area or settings.alertmanager_default_area, priority=priority or settings.alertmanager_default_priority
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def incident_for_alert(alert: AlertmanagerAlert, placement: Placement, *, external_url: str) -> IncidentCreate:
    """The incident that stands for a firing alert: title from alertname and summary, labels kept in the text."""
    alertname = alert.labels["alertname"]
    summary = alert.annotations.get("summary", "").strip()
    title = f"{alertname}: {summary}" if summary else alertname
    lines = []
    if alert.annotations.get("description", "").strip():
        lines += [alert.annotations["description"].strip(), ""]
    lines.append(
        f"Alertmanager alert {alertname} firing since "
        f"{alert.starts_at.isoformat() if alert.starts_at else 'unknown'} (fingerprint {alert.fingerprint})."
    )
    lines += ["", "Labels:"] + [f"- {k}={v}" for k, v in sorted(alert.labels.items())]
    others = {k: v for k, v in alert.annotations.items() if k not in ("summary", "description")}
    if others:
        lines += ["", "Annotations:"] + [f"- {k}: {v}" for k, v in sorted(others.items())]
    if alert.generator_url:
        lines += ["", f"Source: {alert.generator_url}"]
    if external_url:
        lines.append(f"Alertmanager: {external_url}")
    tags = ["alertmanager", _clip(alertname, TAG_MAX)]
    if alert.labels.get("severity"):
        tags.append(_clip(alert.labels["severity"], TAG_MAX))
    return IncidentCreate(
        title=_clip(title, TITLE_MAX),
        description=_clip("\n".join(lines), DESCRIPTION_MAX),
        area=placement.area,
        priority=placement.priority,  # type: ignore[arg-type]
        category="alert",
        external_ref=_clip(f"alertmanager:{alert.fingerprint}", 128),
        tags=list(dict.fromkeys(tags)),
    )


class AlertService:
    """Receives Alertmanager notifications on behalf of an API key."""

    def __init__(
        self, *, settings: Settings, pool: asyncpg.Pool, clock: Clock, incidents: IncidentService, metrics: Metrics
    ):
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.incidents = incidents
        self.metrics = metrics

    async def receive(self, ctx: RequestContext, notification: AlertmanagerNotification) -> dict[str, Any]:
        """Apply every alert of one notification in order; each alert's incident exists when this returns."""
        known_areas = {a["code"] for a in await self.incidents.list_areas()}
        outcomes = []
        for alert in notification.alerts:
            incident_id: int | None
            if alert.status == "firing":
                action, incident_id = await self._firing(ctx, alert, known_areas, notification.external_url)
            else:
                action, incident_id = await self._resolved(ctx, alert)
            self.metrics.alerts_received.labels(action).inc()
            outcomes.append(
                {"fingerprint": alert.fingerprint, "status": alert.status, "action": action, "incident_id": incident_id}
            )
        created = sum(1 for o in outcomes if o["action"] == "created")
        return {"received": len(outcomes), "created": created, "alerts": outcomes}

    async def linked_alert(self, incident_id: int) -> dict[str, Any]:
        """The alert behind an incident (labels, annotations, times), or NotFound."""
        async with self.pool.acquire() as conn:
            row = await repository.get_link(conn, incident_id)
        if row is None:
            raise NotFound(f"incident {incident_id} was not created from an Alertmanager alert")
        return dict(row)

    async def _firing(
        self, ctx: RequestContext, alert: AlertmanagerAlert, known_areas: set[str], external_url: str
    ) -> tuple[str, int]:
        body = incident_for_alert(
            alert, place_alert(alert.labels, settings=self.settings, known_areas=known_areas), external_url=external_url
        )

        async def link_alert(conn: Connection, incident_id: int) -> None:
            # Inside the incident's own transaction: a concurrent delivery of the same alert waits here until this
            # one commits, then finds the link and rolls its own incident back.
            await repository.lock_fingerprint(conn, alert.fingerprint)
            if await repository.open_link(conn, alert.fingerprint) is not None:
                raise _AlreadyLinked()
            await repository.insert_link(
                conn,
                incident_id=incident_id,
                fingerprint=alert.fingerprint,
                alertname=alert.labels["alertname"],
                labels=alert.labels,
                annotations=alert.annotations,
                starts_at=alert.starts_at,
                generator_url=alert.generator_url,
                now=self.clock.now(),
            )

        while True:
            known = await self._firing_again(ctx, alert)
            if known is not None:
                return known
            try:
                created = await self.incidents.create(ctx, body, on_created=link_alert, with_similar=False)
            except _AlreadyLinked:
                continue  # another delivery won: this one is a duplicate of it
            return "created", int(created["id"])

    async def _firing_again(self, ctx: RequestContext, alert: AlertmanagerAlert) -> tuple[str, int] | None:
        """A firing alert whose incident is open: a duplicate, or a new firing after its resolution (a comment)."""
        async with transaction(self.pool) as conn:
            await repository.lock_fingerprint(conn, alert.fingerprint)
            link = await repository.open_link(conn, alert.fingerprint)
            if link is None:
                return None
            incident_id = int(link["incident_id"])
            if link["ends_at"] is None:
                await repository.mark_seen(conn, incident_id, now=self.clock.now())
                return "duplicate", incident_id
            await repository.set_ends_at(conn, incident_id, ends_at=None, now=self.clock.now())
        since = _stamp(alert.starts_at) if alert.starts_at else "now"
        await self.incidents.add_comment(ctx, incident_id, f"Alertmanager: firing again since {since}")
        return "refired", incident_id

    async def _resolved(self, ctx: RequestContext, alert: AlertmanagerAlert) -> tuple[str, int | None]:
        ends_at = alert.ends_at or self.clock.now()
        async with transaction(self.pool) as conn:
            await repository.lock_fingerprint(conn, alert.fingerprint)
            link = await repository.open_link(conn, alert.fingerprint)
            if link is None:
                return "resolved_unknown", None
            if link["ends_at"] is not None:
                await repository.mark_seen(conn, link["incident_id"], now=self.clock.now())
                return "duplicate", link["incident_id"]
            await repository.set_ends_at(conn, link["incident_id"], ends_at=ends_at, now=self.clock.now())
            incident_id = int(link["incident_id"])
        await self.incidents.add_comment(ctx, incident_id, f"Alertmanager: resolved {_stamp(ends_at)}")
        if self.settings.alertmanager_resolve_incidents:
            try:
                await self.incidents.change_status(
                    ctx,
                    incident_id,
                    status="resolved",
                    solution=f"The alert {alert.labels['alertname']} resolved at {_stamp(ends_at)} (Alertmanager).",
                )
            except Conflict:
                log.info(
                    "alert incident not resolved: its status does not allow it", extra={"incident_id": incident_id}
                )
        return "resolved", incident_id


class _AlreadyLinked(Exception):
    """Another delivery linked this alert to an open incident first; the new incident is rolled back."""


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
