"""Figures of the supervisors' dashboard that the compliance and quality reports do not carry.

- Open incidents now, by status, priority and area.
- Escalations recorded in the period, by level and by trigger.
- Suggestion judgements of incidents created in the period: accepted/rejected and the count of each rating 1-5.
- Top recurring problems: incidents created in the period grouped by meaning. Each incident's title and the start
  of its description are embedded with the knowledge encoder; an incident joins the group whose centroid is the
  most similar (cosine) if that similarity reaches `min_similarity`, else it starts a group. Groups of two or more,
  largest first, are the recurring problems; a group is named after its most central incident.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np

from agent.embeddings import Encoder
from backend.clock import Clock
from backend.db_routing import ReadRouting
from backend.sla import dashboard_repository as repository
from backend.sla.reports import check_period

RECURRING_SCAN_MAX = 500
DESCRIPTION_CHARS = 300
EMBED_MAX_TOKENS = 96


def group_by_meaning(vectors: np.ndarray, min_similarity: float) -> list[list[int]]:
    """Greedy grouping of L2-normalised rows in order: each row joins the most similar group centroid reaching
    `min_similarity`, else starts a new group. Returns the row indices of each group."""
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for index, vector in enumerate(vectors):
        best, best_score = -1, min_similarity
        for group_index, total in enumerate(sums):
            centroid = total / (np.linalg.norm(total) or 1.0)
            score = float(centroid @ vector)
            if score >= best_score:
                best, best_score = group_index, score
        if best == -1:
            groups.append([index])
            sums.append(vector.astype(np.float64).copy())
        else:
            groups[best].append(index)
            sums[best] += vector
    return groups


class DashboardService:
    """Open-incident counts, escalations, suggestion judgements and recurring problems."""

    def __init__(self, *, pool: asyncpg.Pool | ReadRouting, clock: Clock, encoder: Encoder):
        self.pool = pool
        self.clock = clock
        self.encoder = encoder

    async def overview(self, date_from: datetime | None, date_to: datetime | None) -> dict[str, Any]:
        now = self.clock.now()
        date_from, date_to = check_period(date_from, date_to, now)
        async with self.pool.acquire() as conn:
            open_rows = await repository.open_incident_counts(conn)
            escalation_rows = await repository.escalation_counts(conn, date_from=date_from, date_to=date_to)
            judgement_rows = await repository.suggestion_judgements(conn, date_from=date_from, date_to=date_to)
        ratings: Counter[int] = Counter()
        feedback: Counter[str] = Counter()
        for row in judgement_rows:
            if row["rating"] is not None:
                ratings[int(row["rating"])] += row["suggestions"]
            if row["feedback"] is not None:
                feedback[row["feedback"]] += row["suggestions"]
        return {
            "period": {"from": date_from, "to": date_to},
            "as_of": now,
            "open_incidents": {
                "total": sum(r["incidents"] for r in open_rows if r["by_status"]),
                "by_status": [
                    {"status": r["status"], "incidents": r["incidents"]} for r in open_rows if r["by_status"]
                ],
                "by_priority": [
                    {"priority": r["priority"], "incidents": r["incidents"]} for r in open_rows if r["by_priority"]
                ],
                "by_area": [{"area": r["area"], "incidents": r["incidents"]} for r in open_rows if r["by_area"]],
            },
            "escalations": {
                "total": sum(r["escalations"] for r in escalation_rows),
                "by_level": [
                    {
                        "level": level,
                        "escalations": sum(r["escalations"] for r in escalation_rows if r["level"] == level),
                    }
                    for level in sorted({r["level"] for r in escalation_rows})
                ],
                "by_trigger": [
                    {
                        "trigger": trigger,
                        "escalations": sum(r["escalations"] for r in escalation_rows if r["trigger"] == trigger),
                    }
                    for trigger in sorted({r["trigger"] for r in escalation_rows})
                ],
            },
            "suggestions": {
                "accepted": feedback["accepted"],
                "rejected": feedback["rejected"],
                "ratings": [{"rating": stars, "suggestions": ratings[stars]} for stars in range(1, 6)],
            },
        }

    async def recurring(
        self, date_from: datetime | None, date_to: datetime | None, *, limit: int, min_similarity: float
    ) -> dict[str, Any]:
        now = self.clock.now()
        date_from, date_to = check_period(date_from, date_to, now)
        async with self.pool.acquire() as conn:
            rows = await repository.incidents_for_recurrence(
                conn, date_from=date_from, date_to=date_to, limit=RECURRING_SCAN_MAX
            )
        problems: list[dict[str, Any]] = []
        if rows:
            texts = [f"{r['title']}. {r['description'][:DESCRIPTION_CHARS]}" for r in rows]
            vectors = await self.encoder.encode_async(texts, max_tokens=EMBED_MAX_TOKENS)
            for members in group_by_meaning(vectors, min_similarity):
                if len(members) < 2:
                    continue
                group = vectors[members]
                centroid = group.mean(axis=0)
                central = members[int(np.argmax(group @ centroid))]
                incidents = [rows[i] for i in members]
                problems.append(
                    {
                        "label": rows[central]["title"],
                        "incidents": len(members),
                        "open": sum(1 for r in incidents if r["status"] not in repository.CLOSED_STATUSES),
                        "areas": [
                            {"area": area, "incidents": count}
                            for area, count in sorted(Counter(r["area"] for r in incidents).items())
                        ],
                        "incident_ids": sorted(r["id"] for r in incidents)[:50],
                        "first_at": incidents[0]["created_at"],
                        "last_at": incidents[-1]["created_at"],
                    }
                )
            problems.sort(key=lambda p: (-p["incidents"], p["first_at"]))
        return {
            "period": {"from": date_from, "to": date_to},
            "as_of": now,
            "scanned": len(rows),
            "min_similarity": min_similarity,
            "problems": problems[:limit],
        }
