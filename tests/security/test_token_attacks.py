"""Forged, tampered, expired and replayed tokens: each refused with 401 and without side effects."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from backend.auth.tokens import AUDIENCE, ISSUER
from tests.fixtures.app import PASSWORD

pytestmark = pytest.mark.asyncio

NEW_USER = {"username": "intruder", "password": "Intruder-Pass-123", "role": "admin"}


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def forged_token(kind: str, secret: str, admin_id: int, now, kid: str) -> str:
    """A token forged one way; those made with the real secret name the real key, so only the forgery fails."""
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(admin_id),
        "role": "admin",
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    header = {"kid": kid}
    if kind == "alg-none":
        return jwt.encode(claims, key=None, algorithm="none")
    if kind == "alg-none-uppercase":
        return f"{_b64({'alg': 'NONE', 'typ': 'JWT'})}.{_b64(claims)}."
    if kind == "wrong-signature":
        return jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256", headers=header)
    if kind == "hs512-with-the-real-secret":
        return jwt.encode(claims, secret, algorithm="HS512", headers=header)
    if kind == "expired":
        return jwt.encode(
            claims | {"exp": int((now - timedelta(seconds=1)).timestamp())}, secret, algorithm="HS256", headers=header
        )
    if kind == "wrong-audience":
        return jwt.encode(claims | {"aud": "another-api"}, secret, algorithm="HS256", headers=header)
    if kind == "wrong-issuer":
        return jwt.encode(claims | {"iss": "evil"}, secret, algorithm="HS256", headers=header)
    if kind == "no-expiry":
        return jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret, algorithm="HS256", headers=header)
    if kind == "tampered-payload":
        head, _, signature = jwt.encode(claims | {"sub": "999999"}, secret, algorithm="HS256", headers=header).split(
            "."
        )
        return f"{head}.{_b64(claims)}.{signature}"
    if kind == "deleted-user":
        return jwt.encode(claims | {"sub": "987654"}, secret, algorithm="HS256", headers=header)
    if kind == "guessable-secret":
        return jwt.encode(claims, "secret", algorithm="HS256", headers=header)
    if kind == "real-secret-without-kid":
        return jwt.encode(claims, secret, algorithm="HS256")
    if kind == "real-secret-unknown-kid":
        return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "no-such-key-0001"})
    raise ValueError(kind)


KINDS = [
    "alg-none",
    "alg-none-uppercase",
    "wrong-signature",
    "hs512-with-the-real-secret",
    "expired",
    "wrong-audience",
    "wrong-issuer",
    "no-expiry",
    "tampered-payload",
    "deleted-user",
    "guessable-secret",
    "real-secret-without-kid",
    "real-secret-unknown-kid",
]


async def test_forged_admin_tokens_cannot_create_an_admin(api, make_account, services):
    """One attack case per forgery in KINDS: 401 and no account created."""
    admin = await make_account("admin")
    for kind in KINDS:
        key = await services.auth.signing_keys.current()
        token = forged_token(kind, key.secret, admin.id, services.clock.now(), key.kid)
        reply = await api.post("/api/v1/users", json=NEW_USER, headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401, f"{kind}: {reply.text}"
        assert reply.json()["error"] == "Unauthorized" and reply.headers["www-authenticate"] == "Bearer", kind
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'intruder'") == 0, kind


async def login(api, username):
    reply = await api.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert reply.status_code == 200
    return reply.json()


async def test_replayed_refresh_token_revokes_the_whole_session(api, make_account, services):
    account = await make_account("reporter")
    first = await login(api, account.username)
    second = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    replay = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and "revoked" in replay.json()["detail"]
    stolen_successor = await api.post("/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert stolen_successor.status_code == 401
    async with services.pool.acquire() as conn:
        live = await conn.fetchval(
            "SELECT count(*) FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL", account.id
        )
        reuse_audited = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.refresh_reuse_detected'"
        )
    assert live == 1, "only the untouched login of make_account stays alive"
    assert reuse_audited == 1


async def test_a_replayed_refresh_token_also_ends_the_sessions_access_tokens(api, make_account):
    account = await make_account("reporter")
    first = await login(api, account.username)
    rotated = (await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    bearer = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert (await api.get("/api/v1/auth/me", headers=bearer)).status_code == 200
    await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})  # the replay
    for token in (first["access_token"], rotated["access_token"]):
        reply = await api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401 and "session has ended" in reply.json()["detail"]
    assert (await api.get("/api/v1/auth/me", headers=account.headers)).status_code == 200, "other sessions live on"


async def test_a_token_without_a_session_is_refused_even_when_validly_signed(api, make_account, services):
    account = await make_account("admin")
    claims = jwt.decode(account.headers["Authorization"].split()[1], options={"verify_signature": False})
    key = await services.auth.signing_keys.current()
    for sid in (None, "not-a-uuid"):
        forged = {k: v for k, v in claims.items() if k != "sid"} | ({"sid": sid} if sid else {})
        token = jwt.encode(forged, key.secret, algorithm="HS256", headers={"kid": key.kid})
        reply = await api.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401, sid


async def test_logged_out_refresh_token_is_dead(api, make_account):
    account = await make_account("reporter")
    tokens = await login(api, account.username)
    assert (await api.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})).status_code == 204
    reply = await api.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert reply.status_code == 401


@pytest.mark.parametrize("presented", ["access-token", "made-up", "sql"])
async def test_refresh_endpoint_accepts_only_real_refresh_tokens(api, make_account, presented):
    account = await make_account("reporter")
    tokens = await login(api, account.username)
    value = {
        "access-token": tokens["access_token"][:200],
        "made-up": "prs_rt_" + "A" * 43,
        "sql": "prs_rt_' OR '1'='1",
    }[presented]
    reply = await api.post("/api/v1/auth/refresh", json={"refresh_token": value})
    assert reply.status_code == 401


async def test_access_and_api_key_together_are_refused(api, make_account, make_api_key):
    account = await make_account("admin")
    key = await make_api_key()
    reply = await api.get("/api/v1/incidents", headers=account.headers | key.headers)
    assert reply.status_code == 401 and "not both" in reply.json()["detail"]
