"""Who is acting and from where: the principal and the request context handed to services."""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass
from typing import Literal

# The ordered roles: each may do what the ones before it may. The auditor stands outside this order: it reads
# the audit log and the SLA and quality metrics, and nothing else.
ROLE_ORDER: dict[str, int] = {"reporter": 0, "technician": 1, "supervisor": 2, "admin": 3}
AUDITOR = "auditor"
Role = Literal["reporter", "technician", "supervisor", "admin", "auditor"]

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a person, an external system's API key or the system itself."""

    kind: Literal["user", "api_key", "system"]
    id: int | None
    name: str
    role: Role
    # API keys: the key's permissions (read, write, escalate, admin).
    permissions: frozenset[str] = frozenset()
    # API keys limited to some areas: incidents elsewhere do not exist for them. None: every area.
    areas: frozenset[str] | None = None
    # People: the login session (refresh-token family) of the access token.
    session_id: uuid.UUID | None = None
    # People whose password must be changed first ("must_change" or "expired"); None: nothing pending.
    password_change: str | None = None

    def has_role(self, needed: str) -> bool:
        """True when this principal's role is at least `needed` (never for auditors)."""
        return self.role in ROLE_ORDER and ROLE_ORDER[self.role] >= ROLE_ORDER[needed]

    def may_read_audit_log(self) -> bool:
        """Admins (API keys with the admin permission too) and auditors."""
        return self.role in ("admin", AUDITOR)

    def may_read_metrics(self) -> bool:
        """Supervisors and above, and auditors: SLA compliance and service-quality reports."""
        return self.role == AUDITOR or self.has_role("supervisor")

    def may_see_area(self, area: str) -> bool:
        """False only for an API key limited to other areas."""
        return self.areas is None or area in self.areas


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
