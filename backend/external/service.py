"""The external API's use cases, built on the incident, suggestion and knowledge services."""

from __future__ import annotations

from typing import Any

from backend.context import Principal, RequestContext
from backend.errors import NotFound, ValidationFailed
from backend.external.schemas import ExternalIncidentCreate
from backend.incidents.schemas import IncidentCreate


def _status_view(incident: dict[str, Any], suggestion: dict[str, Any] | None) -> dict[str, Any]:
    keep = (
        "id",
        "title",
        "area",
        "priority",
        "status",
        "external_ref",
        "resolution",
        "created_at",
        "updated_at",
        "resolved_at",
        "closed_at",
    )
    view = {k: incident[k] for k in keep}
    view["reporter"] = incident["reporter"]["name"]
    view["suggestion"] = (
        None
        if suggestion is None
        else {k: suggestion[k] for k in ("status", "language", "text", "citations", "completed_at")}
    )
    return view


class ExternalApi:
    """What an external system may do: report incidents, follow them, and search the knowledge base."""

    def __init__(self, *, incidents: Any, suggestions: Any, knowledge: Any):
        self.incidents = incidents
        self.suggestions = suggestions
        self.knowledge = knowledge

    async def report_incident(
        self, ctx: RequestContext, body: ExternalIncidentCreate, *, idempotency: Any = None
    ) -> dict[str, Any]:
        """Create the incident through the incident service; the calling system is recorded as its reporter.
        A replayed `idempotency` key answers the same incident (its suggestion as it is now), marked `replayed`."""
        created = await self.incidents.create(ctx, IncidentCreate(**body.model_dump()), idempotency=idempotency)
        view = _status_view(created, await self._suggestion(created["id"]))
        view["similar"] = created["similar"]
        if created.get("replayed"):
            view["replayed"] = True
        return view

    async def incident_status(self, incident_id: int, *, viewer: Principal | None = None) -> dict[str, Any]:
        """Status, resolution and suggestion of one incident (404 outside the key's areas)."""
        incident = await self.incidents.get(incident_id, viewer=viewer)
        return _status_view(incident, await self._suggestion(incident_id))

    async def search_knowledge(
        self, *, query: str, area: str | None, limit: int, viewer: Principal | None = None
    ) -> dict[str, Any]:
        """Resolved incidents and runbook passages closest to the query; 422 for an unknown area (or one outside
        the key's areas)."""
        known = {a["code"] for a in await self.incidents.list_areas()}
        if area is not None and (area not in known or (viewer is not None and not viewer.may_see_area(area))):
            raise ValidationFailed(f"unknown area '{area}'", field="area")
        hits = await self.knowledge.search(query=query, area=area, limit=limit)
        if viewer is not None:
            hits = [hit for hit in hits if hit.area is None or viewer.may_see_area(hit.area)]
        return {"query": query, "area": area, "results": hits}

    async def _suggestion(self, incident_id: int) -> dict[str, Any] | None:
        try:
            return await self.suggestions.get(incident_id)
        except NotFound:
            return None
