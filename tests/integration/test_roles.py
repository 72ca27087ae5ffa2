"""Every endpoint declares a role: anonymous callers get 401, lower roles 403."""

from __future__ import annotations

import pytest

from backend.config import Settings
from backend.main import create_app


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


@pytest.mark.parametrize("method, path", [r for r in ALL_ROUTES if r not in PUBLIC])
@pytest.mark.asyncio
async def test_anonymous_caller_gets_401_on_every_protected_endpoint(api, method, path):
    concrete = path.replace("{incident_id}", "1").replace("{user_id}", "1").replace("{document_id}", "1")
    reply = await api.request(method, concrete, json={})
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


def test_the_route_list_is_not_empty():
    assert len(ALL_ROUTES) > 20


def test_every_documented_minimum_matches_a_real_route():
    real = {(m, p) for m, p in ALL_ROUTES}
    for method, path, _ in MINIMUM_ROLE:
        template = (path.replace("/1/", "/{incident_id}/") if path.startswith("/api/v1/incidents/1/") else path)
        template = {"/api/v1/incidents/1": "/api/v1/incidents/{incident_id}", "/api/v1/users/1": "/api/v1/users/{user_id}",
                    "/api/v1/knowledge/documents/1": "/api/v1/knowledge/documents/{document_id}"}.get(template, template)
        assert (method, template) in real, f"{method} {template} is not a route"
