"""Every endpoint declares a role: anonymous callers get 401, lower roles 403."""

from __future__ import annotations

import re

import pytest

from backend.config import Settings
from backend.main import create_app
from tests.fixtures.guards import declared_guards

PUBLIC = {("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/logout")}

# (method, path, the lowest role allowed)
MINIMUM_ROLE = [
    ("POST", "/api/v1/incidents", "reporter"),
    ("GET", "/api/v1/incidents", "reporter"),
    ("GET", "/api/v1/incidents/1", "reporter"),
    ("PATCH", "/api/v1/incidents/1", "technician"),
    ("POST", "/api/v1/incidents/1/assign", "technician"),
    ("POST", "/api/v1/incidents/1/status", "technician"),
    ("POST", "/api/v1/incidents/1/resolve", "technician"),
    ("POST", "/api/v1/incidents/1/reopen", "technician"),
    ("GET", "/api/v1/incidents/1/history", "technician"),
    ("POST", "/api/v1/incidents/1/suggestion/feedback", "technician"),
    ("POST", "/api/v1/incidents/1/suggestion/regenerate", "technician"),
    ("GET", "/api/v1/users", "admin"),
    ("POST", "/api/v1/users", "admin"),
    ("PATCH", "/api/v1/users/1", "admin"),
    ("POST", "/api/v1/areas", "admin"),
    ("POST", "/api/v1/knowledge/documents", "technician"),
    ("DELETE", "/api/v1/knowledge/documents/1", "supervisor"),
]
ROLES = ["reporter", "technician", "supervisor", "admin"]


def api_routes():
    schema = create_app(Settings(), run_worker=False).openapi()
    for path, operations in schema["paths"].items():
        if path.startswith("/api/"):
            for method in operations:
                yield method.upper(), path


ALL_ROUTES = sorted(set(api_routes()))


GUARDS = declared_guards()


def minimum_role(guard: str) -> str | None:
    """The lowest role a guard admits (people only); None for API-key guards."""
    if guard == "require_audit_reader":
        return "admin"  # or the auditor role, which stands outside the order (see the auditor tests)
    if guard == "require_metrics_reader":
        return "supervisor"  # or the auditor role
    if guard == "require_signed_in_person":
        return "reporter"  # any signed-in person, auditors included
    if guard.startswith("require_api_key_"):
        return None
    return guard.removeprefix("require_person_").removeprefix("require_")


def concrete(path: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "1", path)


@pytest.mark.parametrize("method, path", [r for r in ALL_ROUTES if r not in PUBLIC])
@pytest.mark.asyncio
async def test_anonymous_caller_gets_401_on_every_protected_endpoint(api, method, path):
    reply = await api.request(method, concrete(path), json={})
    assert reply.status_code == 401, f"{method} {path} answered {reply.status_code}"
    assert reply.json()["error"] == "Unauthorized"


@pytest.mark.parametrize("method, path, minimum", MINIMUM_ROLE)
@pytest.mark.asyncio
async def test_roles_below_the_minimum_get_403(api, make_account, method, path, minimum):
    for role in ROLES[: ROLES.index(minimum)]:
        account = await make_account(role)
        reply = await api.request(method, path, json={}, headers=account.headers)
        assert reply.status_code == 403, f"{role} on {method} {path} answered {reply.status_code}"
        assert minimum in reply.json()["detail"]


def test_every_endpoint_declares_a_guard_and_the_schema_lists_every_route():
    assert set(GUARDS) == set(ALL_ROUTES)
    unguarded = sorted(route for route, guard in GUARDS.items() if not guard and route not in PUBLIC)
    assert unguarded == []
    assert all(not GUARDS[route] for route in PUBLIC)


def test_the_policy_table_matches_what_the_endpoints_declare():
    for method, path, minimum in MINIMUM_ROLE:
        template = next(p for (m, p) in GUARDS if m == method and concrete(p) == path)
        assert minimum_role(GUARDS[(method, template)]) == minimum, f"{method} {path}"


PEOPLE_ROUTES = sorted(
    (method, path, minimum_role(guard))
    for (method, path), guard in GUARDS.items()
    if guard and minimum_role(guard) not in (None, "reporter")
)
KEY_ROUTES = sorted((method, path) for (method, path), guard in GUARDS.items() if guard.startswith("require_api_key_"))


@pytest.mark.parametrize("method, path, minimum", PEOPLE_ROUTES)
@pytest.mark.asyncio
async def test_every_endpoint_refuses_each_role_below_its_declared_minimum(api, make_account, method, path, minimum):
    for role in ROLES[: ROLES.index(minimum)]:
        account = await make_account(role)
        reply = await api.request(method, concrete(path), json={}, headers=account.headers)
        assert reply.status_code == 403, f"{role} on {method} {path} answered {reply.status_code}"


@pytest.mark.parametrize("method, path", KEY_ROUTES)
@pytest.mark.asyncio
async def test_external_endpoints_refuse_a_persons_bearer_token(api, make_account, method, path):
    admin = await make_account("admin")
    reply = await api.request(method, concrete(path), json={}, headers=admin.headers)
    assert reply.status_code == 401, f"{method} {path} answered {reply.status_code}"
    assert "X-API-Key" in reply.json()["detail"]


def test_the_route_list_is_not_empty():
    assert len(ALL_ROUTES) > 20


def test_every_documented_minimum_matches_a_real_route():
    real = {(m, p) for m, p in ALL_ROUTES}
    for method, path, _ in MINIMUM_ROLE:
        template = path.replace("/1/", "/{incident_id}/") if path.startswith("/api/v1/incidents/1/") else path
        template = {
            "/api/v1/incidents/1": "/api/v1/incidents/{incident_id}",
            "/api/v1/users/1": "/api/v1/users/{user_id}",
            "/api/v1/knowledge/documents/1": "/api/v1/knowledge/documents/{document_id}",
        }.get(template, template)
        assert (method, template) in real, f"{method} {template} is not a route"


AUDITOR_MAY = {
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/sla/metrics/compliance"),
    ("GET", "/api/v1/sla/metrics/quality"),
    ("GET", "/api/v1/sla/metrics/overview"),
    ("GET", "/api/v1/sla/metrics/recurring"),
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/password"),
}


@pytest.mark.asyncio
async def test_the_auditor_reads_the_audit_log_and_the_metrics_and_is_refused_everything_else(api, make_account):
    auditor = await make_account("auditor")
    for method, path in ALL_ROUTES:
        if (method, path) in PUBLIC:
            continue
        reply = await api.request(method, concrete(path), json={}, headers=auditor.headers)
        if (method, path) in AUDITOR_MAY:
            assert reply.status_code not in (401, 403), f"{method} {path} answered {reply.status_code}"
        elif GUARDS.get((method, path), "").startswith("require_api_key_"):
            assert reply.status_code == 401, f"{method} {path} answered {reply.status_code}"
        else:
            assert reply.status_code == 403, f"{method} {path} answered {reply.status_code}"
