"""Reading past incidents (and confirmed matches) from JSONL files; pure parsing, no database."""

from __future__ import annotations

import gzip
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import ValidationError

from backend.errors import ValidationFailed
from backend.knowledge.schemas import ConfirmedMatch

Mapping = Literal["prs", "jira"]
PRIORITIES = ("low", "medium", "high", "critical")
# The same rule as the areas table's CHECK constraint, so a bad code fails with its line number.
AREA_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Apache JIRA priorities onto ours.
JIRA_PRIORITIES = {"blocker": "critical", "critical": "high", "major": "medium", "minor": "low", "trivial": "low"}


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; .gz files are decompressed."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValidationFailed(f"{path.name} line {number}: not valid JSON ({exc.msg})", field="file") from exc
            if not isinstance(record, dict):
                raise ValidationFailed(f"{path.name} line {number}: expected a JSON object", field="file")
            yield number, record


def read_confirmed_matches(path: Path) -> list[ConfirmedMatch]:
    """The confirmed matches of a JSONL file (`prs knowledge adapt --pairs`); the first bad line is
    refused naming its line and field."""
    matches = []
    for number, record in read_jsonl(path):
        try:
            matches.append(ConfirmedMatch.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "line"
            raise ValidationFailed(f"{path.name} line {number}: {field}: {first['msg']}", field=field) from None
    return matches


def _text(record: dict[str, Any], name: str, number: int, *, required: bool = False) -> str:
    value = record.get(name)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationFailed(f"line {number}: '{name}' must be a string", field=name)
    if required and not value.strip():
        raise ValidationFailed(f"line {number}: '{name}' is required", field=name)
    return value.strip()


def _timestamp(record: dict[str, Any], name: str, number: int, default: datetime | None = None) -> datetime:
    value = record.get(name)
    if value in (None, ""):
        if default is None:
            raise ValidationFailed(f"line {number}: '{name}' is required", field=name)
        return default
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(f"line {number}: '{name}' is not an ISO 8601 time", field=name) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _tags(value: Any, number: int) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise ValidationFailed(f"line {number}: 'tags' must be a list of strings", field="tags")
    cleaned = (tag.replace("\x1f", " ").strip() for tag in value)  # \x1f separates tags in the import SQL
    return [tag for tag in cleaned if tag]


def incident_from_prs(record: dict[str, Any], number: int) -> dict[str, Any]:
    """An import record from PR-System's own JSONL fields."""
    priority = _text(record, "priority", number) or "medium"
    if priority not in PRIORITIES:
        raise ValidationFailed(f"line {number}: 'priority' must be one of {', '.join(PRIORITIES)}", field="priority")
    created_at = _timestamp(record, "created_at", number)
    return {
        "external_ref": _text(record, "key", number, required=True),
        "title": _text(record, "title", number, required=True),
        "description": _text(record, "description", number),
        "area": _text(record, "area", number, required=True),
        "priority": priority,
        "category": _text(record, "category", number) or None,
        "tags": _tags(record.get("tags"), number),
        "resolution": _text(record, "resolution", number, required=True),
        "created_at": created_at,
        "resolved_at": _timestamp(record, "resolved_at", number, default=created_at),
    }


def incident_from_jira(record: dict[str, Any], number: int) -> dict[str, Any]:
    """An import record from an Apache JIRA export (the evaluation data set's fields)."""
    description = _text(record, "description", number)
    environment = _text(record, "environment", number)
    if environment:
        description = f"{description}\n{environment}" if description else environment
    components = record.get("components") or []
    if not isinstance(components, list):
        raise ValidationFailed(f"line {number}: 'components' must be a list", field="components")
    created_at = _timestamp(record, "created", number)
    return {
        "external_ref": _text(record, "key", number, required=True),
        "title": _text(record, "summary", number, required=True),
        "description": description,
        "area": _text(record, "project", number, required=True),
        "priority": JIRA_PRIORITIES.get(_text(record, "priority", number).lower(), "medium"),
        "category": ", ".join(str(c) for c in components) or None,
        "tags": [],
        "resolution": _text(record, "resolution_text", number),
        "created_at": created_at,
        "resolved_at": _timestamp(record, "resolved", number, default=created_at),
    }


def read_incidents(path: Path, mapping: Mapping) -> list[dict[str, Any]]:
    """Every incident of a JSONL file as import records; the first bad line stops the import."""
    parse = {"prs": incident_from_prs, "jira": incident_from_jira}.get(mapping)
    if parse is None:
        raise ValidationFailed(f"unknown mapping '{mapping}': use prs or jira", field="mapping")
    incidents = []
    for number, record in read_jsonl(path):
        incident = parse(record, number)
        if not AREA_CODE.match(incident["area"]):
            raise ValidationFailed(f"line {number}: area code '{incident['area']}' is not valid", field="area")
        incidents.append(incident)
    return incidents
