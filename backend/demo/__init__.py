"""The demo knowledge base the product loads on first run: resolved past incidents and runbooks."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).parent


def demo_incidents_path() -> Path:
    """The JSON Lines file of resolved demo incidents, one object per line."""
    return DEMO_DIR / "incidents.jsonl"


def demo_runbook_paths() -> list[Path]:
    """The Markdown runbooks of the demo knowledge base, sorted by file name."""
    return sorted((DEMO_DIR / "runbooks").glob("*.md"))
