"""The incident status machine."""

from __future__ import annotations

from backend.errors import Conflict

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress", "waiting", "resolved"}),
    "in_progress": frozenset({"waiting", "resolved", "open"}),
    "waiting": frozenset({"in_progress", "resolved"}),
    "resolved": frozenset({"closed", "open"}),
    "closed": frozenset({"open"}),
}

REOPENABLE = frozenset({"resolved", "closed"})


def check_transition(current: str, target: str) -> None:
    """Raise Conflict (409) naming both states unless current -> target is allowed."""
    if target not in ALLOWED_TRANSITIONS.get(current, frozenset()):
        raise Conflict(
            f"illegal status transition from '{current}' to '{target}'",
            field="status",
            extra={
                "from_status": current,
                "to_status": target,
                "allowed": sorted(ALLOWED_TRANSITIONS.get(current, frozenset())),
            },
        )


def is_reopen(current: str, target: str) -> bool:
    """True when the transition takes a finished incident back to work."""
    return current in REOPENABLE and target == "open"
