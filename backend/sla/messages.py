"""Escalation messages in Spanish and English (to the reporter and to the target department), from templates/."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

LANGUAGES = ("es", "en")
STEP_TEXT_MAX = 300


@lru_cache(maxsize=None)
def _template(language: str, name: str) -> Template:
    return Template(resources.files("backend.sla").joinpath("templates", language, name).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _phrases(language: str) -> dict[str, Template]:
    raw = resources.files("backend.sla").joinpath("templates", language, "phrases.json").read_text(encoding="utf-8")
    return {key: Template(value) for key, value in json.loads(raw).items()}


def _phrase(language: str, key: str, **values: Any) -> str:
    return _phrases(language)[key].substitute(**values)


def _checked_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"no escalation templates for language '{language}'")
    return language


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= STEP_TEXT_MAX else flat[: STEP_TEXT_MAX - 1] + "…"


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def describe_condition(condition: dict[str, Any], language: str) -> str:
    """One escalation condition in words."""
    lang = _checked_language(language)
    kind = condition["type"]
    if kind == "duration_exceeds":
        if condition.get("since", "created") != "status":
            return _phrase(lang, "duration_created", minutes=condition["minutes"])
        if condition.get("status"):
            return _phrase(lang, "duration_named_status", minutes=condition["minutes"], status=condition["status"])
        return _phrase(lang, "duration_status", minutes=condition["minutes"])
    if kind in ("sla_breached", "sla_warning"):
        clock = condition.get("clock", "any")
        prefix = "breached" if kind == "sla_breached" else "warning"
        text = (
            _phrase(lang, f"{prefix}_any")
            if clock == "any"
            else _phrase(lang, f"{prefix}_clock", clock=_phrase(lang, f"clock_{clock}"))
        )
        if kind == "sla_warning" and condition.get("threshold"):
            text += _phrase(lang, "warning_threshold", threshold=condition["threshold"])
        return text
    if kind == "priority_is":
        return _phrase(lang, "priority_is", priorities=_phrase(lang, "priority_or").join(condition["priorities"]))
    if kind == "suggestion_rejected_times":
        return _phrase(lang, "rejected_times", times=condition["times"])
    if kind == "reopened_times":
        return _phrase(lang, "reopened_times", times=condition["times"])
    raise ValueError(f"unknown escalation condition type '{kind}'")


def describe_rule(rule: dict[str, Any], language: str) -> str:
    """Why a rule escalated, in words."""
    joiner = _phrase(language, "join_any" if rule["combine"] == "any" else "join_all")
    return _phrase(language, "rule_prefix", name=rule["name"]) + joiner.join(
        describe_condition(c, language) for c in rule["conditions"]
    )


def render_steps(steps: dict[str, Any], language: str) -> str:
    """The steps already tried, one bullet each: the suggestion and its verdict, comments, earlier escalations."""
    lang = _checked_language(language)
    lines = []
    suggestion = steps.get("suggestion")
    if suggestion and suggestion.get("status") == "ready" and suggestion.get("text"):
        verdict = _phrase(lang, f"verdict_{suggestion.get('feedback') or 'none'}")
        lines.append(_phrase(lang, "step_suggestion", verdict=verdict, text=_short(suggestion["text"])))
    for comment in steps.get("comments", []):
        lines.append(
            _phrase(
                lang,
                "step_comment",
                when=_when(comment["created_at"]),
                author=comment["author_name"],
                text=_short(comment["body"]),
            )
        )
    for earlier in steps.get("escalations", []):
        lines.append(
            _phrase(
                lang,
                "step_escalation",
                when=_when(earlier["created_at"]),
                level=earlier["level"],
                text=_short(earlier["reason"]),
            )
        )
    return "\n".join(lines) if lines else _phrase(lang, "no_steps")


def _split(rendered: str) -> dict[str, str]:
    subject, _, body = rendered.partition("\n")
    return {"subject": subject.strip(), "body": body.strip() + "\n"}


def render_escalation_messages(
    language: str,
    *,
    incident: dict[str, Any],
    level: int,
    previous_level: int,
    reason: str,
    department: str | None,
    reassigned_to: str | None,
    steps: dict[str, Any],
) -> dict[str, Any]:
    """Subject and body for the reporter and for the target department, in one language."""
    lang = _checked_language(language)
    assignee = reassigned_to or incident.get("assignee_name") or _phrase(lang, "unassigned")
    values = {
        "incident_id": incident["id"],
        "title": incident["title"],
        "area": incident["area"],
        "priority": incident["priority"],
        "status": incident["status"],
        "level": level,
        "previous_level": previous_level,
        "reason": reason,
        "reporter_name": incident.get("reporter_name") or "-",
        "created_at": _when(incident["created_at"]),
        "description": _short(incident.get("description") or ""),
        "department_name": department or _phrase(lang, "no_department"),
        "department_line": _phrase(lang, "department_line", department=department) if department else "",
        "assignee_line": _phrase(lang, "assignee_line", assignee=assignee),
        "steps": render_steps(steps, lang),
    }
    return {
        "language": lang,
        "reporter": _split(_template(lang, "escalation_reporter.txt").substitute(values)),
        "department": _split(_template(lang, "escalation_department.txt").substitute(values)),
    }
