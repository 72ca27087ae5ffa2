"""Who is acting and from where: the principal and the request context handed to services."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Literal

ROLE_ORDER: dict[str, int] = {"reporter": 0, "technician": 1, "supervisor": 2, "admin": 3}
Role = Literal["reporter", "technician", "supervisor", "admin"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a person, an external system's API key or the system itself."""

    kind: Literal["user", "api_key", "system"]
    id: int | None
    name: str
    role: Role
    # API keys: the key's permissions (read, write, escalate, admin); people: capabilities such as "audit".
    permissions: frozenset[str] = frozenset()

    def has_role(self, needed: str) -> bool:
        """True when this principal's role is at least `needed`."""
        return ROLE_ORDER[self.role] >= ROLE_ORDER[needed]

    def may_read_audit_log(self) -> bool:
        """Admins, auditors (a capability of people) and API keys with the admin permission."""
        return self.role == "admin" or "audit" in self.permissions


SYSTEM = Principal(kind="system", id=None, name="system", role="admin")


@dataclass(frozen=True)
class RequestContext:
    """Where a change came from, for the audit log."""

    principal: Principal
    client_ip: str | None = None
    request_id: str | None = None


def system_context(name: str = "system") -> RequestContext:
    """The context of changes made by jobs and the CLI."""
    return RequestContext(principal=Principal(kind="system", id=None, name=name, role="admin"))
