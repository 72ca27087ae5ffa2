"""LDAP filter injection against the real slapd: crafted usernames must match nobody, even with a real password."""

from __future__ import annotations

import pytest
from ldap3 import SUBTREE, Connection, Server

from backend.auth.ldap import DirectoryLogin
from backend.auth.service import AuthService
from tests.fixtures.ldap_server import PEOPLE, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD
from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio

ALICE_PASSWORD = PEOPLE["alice"][0]
INJECTIONS = [
    "*)(uid=*))(|(uid=*",
    "*",
    "a*",
    "alice*",
    "*alice",
    "alice)(|(uid=*",
    "alice)(objectClass=*",
    "*)(|(objectClass=*",
    "alice)(userPassword=*)",
    "alice))%00",
    "alice\\2a",
    "(uid=alice)",
    "alice\x00",
    "*)(&",
    "admin*)((|userPassword=*)",
]


@pytest.fixture
def directory_client(services, clean_state, ldap_directory, api_from):
    settings = settings_with(services, **ldap_directory.settings(), login_rate_limit="1000/minute")
    auth = AuthService(
        settings=settings, pool=services.pool, clock=services.clock, signing_keys=services.auth.signing_keys
    )
    return api_from(app_with(services, settings, auth=auth))


async def test_the_unescaped_filter_would_have_matched_everyone(ldap_directory):
    """Control: proves the payloads are dangerous, so the cases below are meaningful."""
    conn = Connection(Server(ldap_directory.url), user=SERVICE_DN, password=SERVICE_PASSWORD, auto_bind=True)
    try:
        conn.search(PEOPLE_DN, "(&(objectClass=inetOrgPerson)(uid=*))", SUBTREE, attributes=["uid"])
        assert len(conn.entries) == len(PEOPLE)
    finally:
        conn.unbind()


async def test_injected_usernames_match_nobody(directory_client, services):
    """One attack case per payload, each with a real person's password: 401, no account, no session."""
    for username in INJECTIONS:
        reply = await directory_client.post(
            "/api/v1/auth/token", data={"username": username, "password": ALICE_PASSWORD}
        )
        assert reply.status_code == 401, f"{username!r}: {reply.text}"
        assert reply.json()["detail"] == "incorrect username or password", repr(username)
        async with services.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM users") == 0, repr(username)
            assert await conn.fetchval("SELECT count(*) FROM refresh_tokens") == 0, repr(username)


async def test_an_empty_password_never_becomes_an_anonymous_bind(directory_client, services):
    reply = await directory_client.post("/api/v1/auth/token", data={"username": "alice", "password": ""})
    assert reply.status_code == 422 and reply.json()["field"] == "password"
    async with services.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM users") == 0


async def test_the_real_name_still_works(directory_client):
    reply = await directory_client.post("/api/v1/auth/token", data={"username": "alice", "password": ALICE_PASSWORD})
    assert reply.status_code == 200


async def test_the_directory_client_itself_never_binds_with_an_empty_password(services, ldap_directory):
    login = DirectoryLogin(settings_with(services, **ldap_directory.settings()))
    assert await login.authenticate("alice", "") is None
    assert await login.authenticate("", ALICE_PASSWORD) is None
