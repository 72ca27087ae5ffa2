"""JWT signing keys with ids on the real app and database: tokens carry `kid`, a rotation keeps old tokens valid
until their end, a second rotation within a token lifetime breaks none, retired keys are refused, and a replica
picks up a rotation without a restart."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import pytest_asyncio

from backend.auth.schemas import UserCreate
from backend.auth.service import AuthService
from backend.auth.signing_keys import SigningKeyRing
from backend.clock import FrozenClock
from backend.context import system_context
from backend.db import create_pool
from tests.fixtures.app import PASSWORD
from tests.fixtures.security import REPO_ROOT, app_with, settings_with

pytestmark = pytest.mark.asyncio

START = datetime(2032, 5, 4, 6, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def keyed(services, clean_state, api_from):
    """An app whose auth uses a master secret of its own (so keys of its own) and a frozen clock; an admin."""
    clock = FrozenClock(START)
    settings = settings_with(services, signing_key_refresh_s=0.2)
    master = "rotation-master-" + uuid.uuid4().hex

    def replica(pool):
        ring = SigningKeyRing(settings=settings, pool=pool, clock=clock, master_secret=master)
        auth = AuthService(settings=settings, pool=pool, clock=clock, signing_keys=ring)
        return auth, api_from(app_with(services, settings, auth=auth, clock=clock))

    auth, client = replica(services.pool)
    await auth.create_user(system_context("test"), UserCreate(username="keeper", password=PASSWORD, role="admin"))
    other_pool = await create_pool(services.settings.database_url, min_size=1, max_size=2)
    yield clock, auth, client, replica(other_pool)
    await other_pool.close()


async def sign_in(client) -> dict:
    reply = await client.post("/api/v1/auth/token", data={"username": "keeper", "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def kid_of(headers: dict) -> str:
    return jwt.get_unverified_header(headers["Authorization"].split()[1])["kid"]


async def works(client, headers) -> int | str:
    reply = await client.get("/api/v1/users", headers=headers)
    return 200 if reply.status_code == 200 else f"{reply.status_code} {reply.text}"


async def test_tokens_carry_the_kid_of_the_current_key(keyed):
    _, auth, client, _ = keyed
    headers = await sign_in(client)
    assert kid_of(headers) == (await auth.signing_keys.current()).kid
    listed = (await client.get("/api/v1/signing-keys", headers=headers)).json()
    assert [(k["kid"], k["state"]) for k in listed] == [(kid_of(headers), "current")]
    assert all("secret" not in str(k) for k in listed)


async def test_two_rotations_within_a_token_lifetime_keep_every_token_valid_until_its_end(keyed, services):
    clock, _, client, _ = keyed
    under_a = await sign_in(client)
    rotated = await client.post("/api/v1/signing-keys/rotate", headers=under_a)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["previous_kid"] == kid_of(under_a)
    assert datetime.fromisoformat(rotated.json()["previous_verifies_until"]) == START + timedelta(
        minutes=60, seconds=0.2
    )
    under_b = await sign_in(client)
    assert kid_of(under_b) == rotated.json()["kid"] != kid_of(under_a)
    clock.advance(minutes=30)
    under_b_later = await sign_in(client)
    second = await client.post("/api/v1/signing-keys/rotate", headers=under_b)
    assert second.status_code == 200
    under_c = await sign_in(client)
    for headers in (under_a, under_b, under_b_later, under_c):
        assert await works(client, headers) == 200, kid_of(headers)
    states = {k["kid"]: k["state"] for k in (await client.get("/api/v1/signing-keys", headers=under_c)).json()}
    assert states == {kid_of(under_a): "verifying", kid_of(under_b): "verifying", kid_of(under_c): "current"}
    # Past the first key's end: its token is refused as signed by a retired key; the others still work.
    clock.advance(minutes=31)
    refused = await client.get("/api/v1/users", headers=under_a)
    assert refused.status_code == 401 and "retired" in refused.json()["detail"]
    assert await works(client, under_b_later) == 200 and await works(client, under_c) == 200
    async with services.pool.acquire() as conn:
        audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'signing_key.rotated'")
    assert audited == 2


async def test_retired_secrets_are_destroyed_and_their_tokens_stay_refused(keyed, services):
    clock, auth, client, _ = keyed
    old = await sign_in(client)
    await auth.signing_keys.rotate(system_context("test"))
    await auth.signing_keys.destroy_expired()
    async with services.pool.acquire() as conn:
        kept = await conn.fetchval("SELECT destroyed_at FROM signing_keys WHERE kid = $1", kid_of(old))
    assert kept is None, "still verifying: not destroyed"
    clock.advance(minutes=61)
    assert await auth.signing_keys.destroy_expired() >= 1
    async with services.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT secret_ciphertext, destroyed_at FROM signing_keys WHERE kid = $1", kid_of(old)
        )
    assert row["secret_ciphertext"] is None and row["destroyed_at"] == clock.now()
    await auth.signing_keys.reload()
    assert (await client.get("/api/v1/users", headers=old)).status_code == 401
    fresh = await sign_in(client)
    states = {k["kid"]: k["state"] for k in (await client.get("/api/v1/signing-keys", headers=fresh)).json()}
    assert states[kid_of(old)] == "retired"


async def test_a_rotation_on_one_replica_reaches_the_other_without_a_restart(keyed):
    _, auth, client, (other_auth, other_client) = keyed
    before = await sign_in(client)
    assert await works(other_client, before) == 200  # the other replica loads the same key
    await other_auth.signing_keys.reload()  # the other replica has just read the keys...
    rotated = await auth.signing_keys.rotate(system_context("test"))
    fresh = await sign_in(client)
    assert kid_of(fresh) == rotated["kid"]
    # ...yet a kid it has not seen makes it read them again rather than refuse the token.
    assert await works(other_client, fresh) == 200
    await asyncio.sleep(0.3)  # one PRS_SIGNING_KEY_REFRESH_S later it also signs with the new key
    assert kid_of(await sign_in(other_client)) == rotated["kid"]
    assert await works(other_client, before) == 200


async def test_keys_are_encrypted_at_rest_and_bound_to_their_kid(keyed, services):
    _, auth, _, _ = keyed
    key = await auth.signing_keys.current()
    async with services.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT secret_ciphertext FROM signing_keys WHERE kid = $1", key.kid)
    assert key.secret.encode() not in stored
    assert auth.signing_keys.box.decrypt(key.kid, stored) == key.secret
    with pytest.raises(ValueError):
        auth.signing_keys.box.decrypt("another-kid-0001", stored)


async def test_a_token_naming_an_unknown_key_is_refused(keyed):
    _, auth, client, _ = keyed
    headers = await sign_in(client)
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    key = await auth.signing_keys.current()
    forged = jwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": "not-a-key-00000"})
    reply = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {forged}"})
    assert reply.status_code == 401 and "unknown signing key" in reply.json()["detail"]


async def test_prs_keys_rotate_and_list_on_the_command_line(services, clean_state, tmp_path):
    env = {
        **os.environ,
        "PRS_DATABASE_URL": services.settings.database_url,
        "PRS_DATA_DIR": str(tmp_path),
        "PRS_JWT_SECRET": "cli-master-secret-" + uuid.uuid4().hex,
        "PRS_LOG_JSON": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }

    async def prs(*args: str) -> object:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "backend.cli", *args],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = await prs("keys", "rotate")
    second = await prs("keys", "rotate")
    assert second["previous_kid"] == first["kid"] != second["kid"]
    states = {k["kid"]: k["state"] for k in await prs("keys", "list")}
    assert states[first["kid"]] == "verifying" and states[second["kid"]] == "current"
    assert list(states.values()).count("current") == 1
    async with services.pool.acquire() as conn:
        rotations = await conn.fetch("SELECT actor_name FROM audit_log WHERE action = 'signing_key.rotated'")
    assert [r["actor_name"] for r in rotations] == ["cli", "cli"]
