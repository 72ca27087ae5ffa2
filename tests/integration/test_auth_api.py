"""Login, tokens, password policy and user administration."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from backend.auth.tokens import AUDIENCE, ISSUER
from tests.fixtures.app import PASSWORD

pytestmark = pytest.mark.asyncio


async def login(api, username, password=PASSWORD):
    return await api.post("/api/v1/auth/token", data={"username": username, "password": password})


class TestLogin:
    async def test_login_returns_bearer_access_and_refresh_tokens(self, api, make_account):
        account = await make_account("reporter")
        body = (await login(api, account.username)).json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 3600
        assert body["refresh_token"].startswith("prs_rt_")
        me = await api.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.status_code == 200 and me.json()["username"] == account.username

    async def test_wrong_password_is_401_and_audited_without_the_password(self, api, make_account, services):
        account = await make_account("reporter")
        reply = await login(api, account.username, "Wrong-password-123")
        assert reply.status_code == 401 and reply.json()["error"] == "Unauthorized"
        async with services.pool.acquire() as conn:
            rows = await conn.fetch("SELECT before, after FROM audit_log WHERE action = 'auth.login_failed'")
            dump = str([dict(r) for r in await conn.fetch("SELECT * FROM audit_log")])
        assert len(rows) == 1
        assert "Wrong-password-123" not in dump and PASSWORD not in dump

    async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(self, api):
        reply = await login(api, "nobody", "Whatever-pass-123")
        assert reply.status_code == 401
        assert reply.json()["detail"] == "incorrect username or password"

    async def test_disabled_account_cannot_log_in_or_use_its_token(self, api, make_account):
        admin = await make_account("admin")
        account = await make_account("technician")
        reply = await api.patch(f"/api/v1/users/{account.id}", json={"is_active": False}, headers=admin.headers)
        assert reply.status_code == 200
        assert (await login(api, account.username)).status_code == 401
        assert (await api.get("/api/v1/incidents", headers=account.headers)).status_code == 401

    async def test_password_is_stored_as_argon2_hash(self, make_account, services):
        account = await make_account("reporter")
        async with services.pool.acquire() as conn:
            stored = await conn.fetchval("SELECT password_hash FROM users WHERE id = $1", account.id)
        assert stored.startswith("$argon2id$") and PASSWORD not in stored


class TestTokens:
    async def test_refresh_rotates_and_reuse_revokes_the_session(self, api, make_account):
        account = await make_account("reporter")
        first = (await login(api, account.username)).json()
        second = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        reuse = await api.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401
        after_reuse = await api.post("/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
        assert after_reuse.status_code == 401, "the whole token family must be revoked"

    async def test_logout_revokes_the_refresh_token(self, api, make_account):
        account = await make_account("reporter")
        tokens = (await login(api, account.username)).json()
        assert (
            await api.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 204
        reply = await api.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert reply.status_code == 401

    async def test_logout_ends_the_sessions_access_token_at_once(self, api, make_account):
        account = await make_account("reporter")
        tokens = (await login(api, account.username)).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await api.get("/api/v1/auth/me", headers=bearer)).status_code == 200
        assert (
            await api.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        ).status_code == 204
        reply = await api.get("/api/v1/auth/me", headers=bearer)
        assert reply.status_code == 401 and "session has ended" in reply.json()["detail"]
        assert (await api.get("/api/v1/auth/me", headers=account.headers)).status_code == 200, "other sessions live on"

    @pytest.mark.parametrize("kind", ["alg-none", "wrong-signature", "expired", "refresh-as-access", "garbage"])
    async def test_forged_or_expired_access_tokens_are_refused(self, api, make_account, services, kind):
        account = await make_account("admin")
        now = services.clock.now()
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(account.id),
            "role": "admin",
            "typ": "access",
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
        }
        if kind == "alg-none":
            token = jwt.encode(claims, key=None, algorithm="none")
        elif kind == "wrong-signature":
            token = jwt.encode(claims, "x" * 48, algorithm="HS256")
        elif kind == "expired":
            key = await services.auth.signing_keys.current()
            token = jwt.encode(
                {**claims, "exp": int((now - timedelta(seconds=1)).timestamp())},
                key.secret,
                algorithm="HS256",
                headers={"kid": key.kid},
            )
        elif kind == "refresh-as-access":
            token = (await login(api, account.username)).json()["refresh_token"]
        else:
            token = "not.a.jwt"
        reply = await api.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"] == "Bearer"


class TestUserAdministration:
    @pytest.mark.parametrize(
        "password, problem",
        [
            ("Short1Aa", "at least 12 characters"),
            ("alllowercase123", "an upper-case letter"),
            ("ALLUPPERCASE123", "a lower-case letter"),
            ("NoDigitsHereAtAll", "a digit"),
        ],
    )
    async def test_password_policy_names_what_is_missing(self, api, make_account, services, password, problem):
        admin = await make_account("admin")
        reply = await api.post(
            "/api/v1/users",
            json={"username": "newbie", "password": password, "role": "reporter"},
            headers=admin.headers,
        )
        assert reply.status_code == 422
        assert reply.json()["field"] == "password" and problem in reply.json()["detail"]
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM users WHERE username = 'newbie'") == 0

    async def test_admin_creates_user_who_can_log_in(self, api, make_account):
        admin = await make_account("admin")
        reply = await api.post(
            "/api/v1/users",
            json={"username": "maria", "password": "Maria-Segura-2026", "role": "technician"},
            headers=admin.headers,
        )
        # Neither the password nor its hash comes back (the lifecycle fields are named password_* but hold none).
        assert reply.status_code == 201 and "Maria-Segura-2026" not in reply.text and "$argon2" not in reply.text
        assert not {"password", "password_hash"} & set(reply.json())
        assert (await login(api, "maria", "Maria-Segura-2026")).status_code == 200

    async def test_duplicate_username_is_409(self, api, make_account):
        admin = await make_account("admin")
        reply = await api.post(
            "/api/v1/users",
            json={"username": admin.username.upper(), "password": PASSWORD, "role": "reporter"},
            headers=admin.headers,
        )
        assert reply.status_code == 409 and reply.json()["field"] == "username"

    async def test_last_admin_cannot_demote_itself(self, api, make_account):
        admin = await make_account("admin")
        reply = await api.patch(f"/api/v1/users/{admin.id}", json={"role": "reporter"}, headers=admin.headers)
        assert reply.status_code == 409

    async def test_role_change_takes_effect_on_the_next_request(self, api, make_account):
        admin = await make_account("admin")
        tech = await make_account("technician")
        assert (await api.get("/api/v1/users", headers=tech.headers)).status_code == 403
        await api.patch(f"/api/v1/users/{tech.id}", json={"role": "admin"}, headers=admin.headers)
        assert (await api.get("/api/v1/users", headers=tech.headers)).status_code == 200
