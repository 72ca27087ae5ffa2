"""Role escalation attempts: lower roles and API keys trying to grant themselves more."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from backend.auth.tokens import ALGORITHM, AUDIENCE, ISSUER

pytestmark = pytest.mark.asyncio

NEW = {
    "title": "Fuga de aceite prensa P4",
    "description": "Charco de aceite bajo la prensa P4 al final del turno.",
    "area": "maintenance",
    "priority": "medium",
}


async def users_snapshot(services):
    async with services.pool.acquire() as conn:
        return [dict(r) for r in await conn.fetch("SELECT id, username, role, is_active FROM users ORDER BY id")]


async def table_count(services, table):
    async with services.pool.acquire() as conn:
        return await conn.fetchval(f"SELECT count(*) FROM {table}")


@pytest.fixture
async def people(make_account):
    admin = await make_account("admin")
    technician = await make_account("technician")
    reporter = await make_account("reporter")
    return admin, technician, reporter


# (who, method, path with {self}/{admin}, body, status)
ATTEMPTS = [
    ("technician", "PATCH", "/api/v1/users/{self}", {"role": "admin"}, 403),
    ("technician", "PATCH", "/api/v1/users/{self}", {"role": "auditor"}, 403),
    ("reporter", "PATCH", "/api/v1/users/{self}", {"must_change_password": False}, 403),
    ("technician", "POST", "/api/v1/users/{admin}/unlock", None, 403),
    ("technician", "POST", "/api/v1/signing-keys/rotate", None, 403),
    ("technician", "PATCH", "/api/v1/users/{admin}", {"is_active": False}, 403),
    ("technician", "PATCH", "/api/v1/users/{admin}", {"password": "Taken-Over-Pass-1"}, 403),
    ("technician", "POST", "/api/v1/users", {"username": "mole", "password": "Mole-Password-1", "role": "admin"}, 403),
    ("reporter", "PATCH", "/api/v1/users/{self}", {"role": "supervisor"}, 403),
    ("reporter", "POST", "/api/v1/users", {"username": "mole", "password": "Mole-Password-123", "role": "admin"}, 403),
    ("reporter", "POST", "/api/v1/incidents", NEW | {"role": "admin"}, 422),
    ("reporter", "POST", "/api/v1/incidents", NEW | {"reporter_id": 1}, 422),
    ("reporter", "POST", "/api/v1/incidents", NEW | {"status": "closed"}, 422),
    ("reporter", "POST", "/api/v1/areas", {"code": "secret-lab", "name": "Secret"}, 403),
    ("reporter", "POST", "/api/v1/api-keys", {"name": "mine", "owner_email": "a@b.c", "permissions": ["admin"]}, 403),
    ("technician", "POST", "/api/v1/api-keys", {"name": "mine", "owner_email": "a@b.c", "permissions": ["admin"]}, 403),
    ("technician", "GET", "/api/v1/audit", None, 403),
    ("admin", "PATCH", "/api/v1/users/{self}", {"role": "admin", "source": "ldap"}, 422),
    ("admin", "POST", "/api/v1/users", {"username": "x1", "password": "Mole-Password-123", "role": "root"}, 422),
]


async def test_escalation_attempts_are_refused_and_change_nothing(api, services, people):
    """One attack case per row of ATTEMPTS; each asserts its exact status and that nothing changed."""
    admin, technician, reporter = people
    for who, method, path, body, status in ATTEMPTS:
        actor = {"admin": admin, "technician": technician, "reporter": reporter}[who]
        case = f"{who} {method} {path} {body}"
        users_before, incidents_before = await users_snapshot(services), await table_count(services, "incidents")
        keys_before = await table_count(services, "api_keys")
        reply = await api.request(method, path.format(self=actor.id, admin=admin.id), json=body, headers=actor.headers)
        assert reply.status_code == status, f"{case}: {reply.status_code} {reply.text}"
        assert await users_snapshot(services) == users_before, case
        assert await table_count(services, "incidents") == incidents_before, case
        assert await table_count(services, "api_keys") == keys_before, case


KEY_ATTEMPTS = [
    ("POST", "/api/v1/api-keys", {"name": "child", "owner_email": "a@b.c", "permissions": ["admin"]}),
    ("GET", "/api/v1/api-keys", None),
    ("POST", "/api/v1/api-keys/1/rotate", {}),
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"username": "mole", "password": "Mole-Password-123", "role": "admin"}),
    ("PATCH", "/api/v1/users/1", {"role": "reporter"}),
]


async def test_an_admin_api_key_cannot_manage_accounts_or_mint_keys(api, services, people, make_api_key):
    """One attack case per row of KEY_ATTEMPTS: 403 and nothing changed."""
    key = await make_api_key(permissions=["admin"])
    for method, path, body in KEY_ATTEMPTS:
        users_before, keys_before = await users_snapshot(services), await table_count(services, "api_key_secrets")
        reply = await api.request(method, path, json=body, headers=key.headers)
        assert reply.status_code == 403 and "API keys cannot" in reply.json()["detail"], f"{method} {path}"
        assert await users_snapshot(services) == users_before, f"{method} {path}"
        assert await table_count(services, "api_key_secrets") == keys_before, f"{method} {path}"


async def test_a_token_still_claiming_admin_after_a_demotion_gets_the_current_role(api, services, people):
    admin, _, reporter = people
    now = services.clock.now()
    session = jwt.decode(reporter.headers["Authorization"].split()[1], options={"verify_signature": False})["sid"]
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(reporter.id),
        "role": "admin",
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "sid": session,
    }
    key = await services.auth.signing_keys.current()
    validly_signed = jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})
    users_before = await users_snapshot(services)
    reply = await api.post(
        "/api/v1/users",
        json={"username": "mole", "password": "Mole-Password-123", "role": "admin"},
        headers={"Authorization": f"Bearer {validly_signed}"},
    )
    assert reply.status_code == 403 and "you are 'reporter'" in reply.json()["detail"]
    assert await users_snapshot(services) == users_before
