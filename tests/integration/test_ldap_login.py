"""Signing in through a real slapd: service bind, user search, user bind, groups → role, local account kept in
step, StartTLS/LDAPS, and local admins when the directory is down."""

from __future__ import annotations

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from backend.auth.schemas import UserCreate
from backend.auth.service import AuthService
from backend.context import system_context
from tests.fixtures.app import PASSWORD
from tests.fixtures.ldap_server import GROUPS_DN, PEOPLE, PEOPLE_DN
from tests.fixtures.processes import free_port
from tests.fixtures.security import app_with, settings_with

pytestmark = pytest.mark.asyncio


@pytest.fixture
def directory_client(services, clean_state, ldap_directory, api_from):
    """A client of an app whose sign-in uses the test directory (settings overridable per test)."""

    def make(**overrides):
        settings = settings_with(services, **ldap_directory.settings(**overrides))
        auth = AuthService(
            settings=settings, pool=services.pool, clock=services.clock, signing_keys=services.auth.signing_keys
        )
        return api_from(app_with(services, settings, auth=auth))

    return make


async def sign_in(client, username, password=None):
    password = PEOPLE[username][0] if password is None else password
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


async def user_row(services, username):
    async with services.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM users WHERE username = $1", username)


async def audit_actions(services):
    async with services.pool.acquire() as conn:
        rows = await conn.fetch("SELECT action, actor_name, before, after FROM audit_log ORDER BY id")
    return [dict(r) for r in rows]


class TestDirectorySignIn:
    async def test_first_login_creates_a_directory_account_with_the_mapped_role(self, directory_client, services):
        client = directory_client()
        reply = await sign_in(client, "bob")
        assert reply.status_code == 200, reply.text
        me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {reply.json()['access_token']}"})
        assert me.json()["role"] == "technician" and me.json()["source"] == "ldap"
        row = await user_row(services, "bob")
        assert row["display_name"] == "Bob Technician" and row["email"] == "bob@example.com"
        assert row["password_hash"] is None and row["directory_dn"] == f"uid=bob,{PEOPLE_DN}"
        actions = [(a["action"], a["actor_name"]) for a in await audit_actions(services)]
        assert ("user.created", "ldap") in actions and ("auth.login", "bob") in actions

    async def test_a_group_change_in_the_directory_changes_the_role_at_the_next_login(
        self, directory_client, services, ldap_directory
    ):
        client = directory_client()
        assert (await sign_in(client, "erin")).status_code == 200
        assert (await user_row(services, "erin"))["role"] == "reporter"
        admin = ldap_directory.admin_connection()
        group, member = f"cn=prs-technicians,{GROUPS_DN}", f"uid=erin,{PEOPLE_DN}"
        try:
            assert admin.modify(group, {"member": [(MODIFY_ADD, [member])]})
            assert (await sign_in(client, "erin")).status_code == 200
        finally:
            admin.modify(group, {"member": [(MODIFY_DELETE, [member])]})
            admin.unbind()
        assert (await user_row(services, "erin"))["role"] == "technician"
        changes = [a for a in await audit_actions(services) if a["action"] == "user.role_changed"]
        assert len(changes) == 1 and changes[0]["actor_name"] == "ldap"
        assert changes[0]["before"]["role"] == "reporter" and changes[0]["after"]["role"] == "technician"

    async def test_group_search_mode_finds_groupofnames_membership(self, directory_client, services):
        client = directory_client(ldap_group_mode="search")
        assert (await sign_in(client, "alice")).status_code == 200
        assert (await user_row(services, "alice"))["role"] == "admin"

    async def test_auditor_group_gives_the_auditor_role_which_reads_the_audit_log_only(self, directory_client):
        client = directory_client()
        tokens = (await sign_in(client, "dave")).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = (await client.get("/api/v1/auth/me", headers=headers)).json()
        assert me["role"] == "auditor"
        assert (await client.get("/api/v1/audit", headers=headers)).status_code == 200
        assert (await client.get("/api/v1/users", headers=headers)).status_code == 403
        assert (await client.get("/api/v1/incidents", headers=headers)).status_code == 403

    async def test_wrong_password_and_unknown_person_are_401_audited_and_create_nothing(
        self, directory_client, services
    ):
        client = directory_client()
        for username, password in (("bob", "Not-Bobs-Password-1"), ("zed", "Whatever-Pass-123")):
            reply = await sign_in(client, username, password)
            assert reply.status_code == 401 and reply.json()["detail"] == "incorrect username or password"
        assert await user_row(services, "bob") is None and await user_row(services, "zed") is None
        failures = [a["after"]["reason"] for a in await audit_actions(services) if a["action"] == "auth.login_failed"]
        assert failures == ["invalid_credentials", "invalid_credentials"]
        assert "Not-Bobs-Password-1" not in str(await audit_actions(services))

    async def test_person_outside_every_mapped_group_is_403_and_not_created(self, directory_client, services):
        reply = await sign_in(directory_client(), "carol")
        assert reply.status_code == 403 and "group" in reply.json()["detail"]
        assert await user_row(services, "carol") is None

    async def test_default_role_admits_people_outside_mapped_groups(self, directory_client, services):
        assert (await sign_in(directory_client(ldap_default_role="reporter"), "carol")).status_code == 200
        assert (await user_row(services, "carol"))["role"] == "reporter"

    async def test_disabled_directory_account_cannot_sign_in(self, directory_client, services):
        client = directory_client()
        assert (await sign_in(client, "bob")).status_code == 200
        async with services.pool.acquire() as conn:
            await conn.execute("UPDATE users SET is_active = false WHERE username = 'bob'")
        assert (await sign_in(client, "bob")).status_code == 401

    async def test_directory_accounts_have_no_local_password(self, directory_client, make_account, services):
        client = directory_client()
        assert (await sign_in(client, "bob")).status_code == 200
        admin = await make_account("admin")
        bob = await user_row(services, "bob")
        reply = await client.patch(
            f"/api/v1/users/{bob['id']}", json={"password": "New-Local-Pass-123"}, headers=admin.headers
        )
        assert reply.status_code == 422 and reply.json()["field"] == "password"
        assert (await user_row(services, "bob"))["password_hash"] is None

    async def test_local_account_of_the_same_name_keeps_its_own_password(self, directory_client, services):
        await services.auth.create_user(
            system_context("test"), UserCreate(username="alice", password=PASSWORD, role="reporter")
        )
        client = directory_client()
        assert (await sign_in(client, "alice")).status_code == 401, "the directory password must not open it"
        assert (await sign_in(client, "alice", PASSWORD)).status_code == 200
        row = await user_row(services, "alice")
        assert row["source"] == "local" and row["role"] == "reporter"


class TestTransportSecurity:
    async def test_starttls_with_the_directory_ca_signs_in(self, directory_client, ldap_directory):
        client = directory_client(ldap_start_tls=True, ldap_ca_file=ldap_directory.ca_file)
        assert (await sign_in(client, "bob")).status_code == 200

    async def test_ldaps_with_the_directory_ca_signs_in(self, directory_client, ldap_directory):
        client = directory_client(ldap_url=ldap_directory.ldaps_url, ldap_ca_file=ldap_directory.ca_file)
        assert (await sign_in(client, "bob")).status_code == 200

    @pytest.mark.parametrize("transport", ["ldaps", "starttls"])
    async def test_an_untrusted_certificate_is_refused_before_any_password_is_sent(
        self, directory_client, ldap_directory, services, transport
    ):
        overrides = {"ldap_url": ldap_directory.ldaps_url} if transport == "ldaps" else {"ldap_start_tls": True}
        reply = await sign_in(directory_client(**overrides), "bob")
        assert reply.status_code == 503 and "certificate verify failed" in reply.json()["detail"]
        assert await user_row(services, "bob") is None


class TestDirectoryDown:
    async def test_directory_down_says_unreachable_and_local_admins_still_sign_in(self, directory_client, services):
        client = directory_client(ldap_url=f"ldap://127.0.0.1:{free_port()}", ldap_timeout_s=1.0)
        await services.auth.create_user(
            system_context("test"), UserCreate(username="root-admin", password=PASSWORD, role="admin")
        )
        reply = await sign_in(client, "bob")
        assert reply.status_code == 503
        assert reply.json()["error"] == "DirectoryUnavailable" and "unreachable" in reply.json()["detail"]
        local = await sign_in(client, "root-admin", PASSWORD)
        assert local.status_code == 200
        reasons = [a["after"]["reason"] for a in await audit_actions(services) if a["action"] == "auth.login_failed"]
        assert reasons == ["directory_unreachable"]


class TestDirectoryLockout:
    async def test_directory_accounts_are_counted_locally_but_locked_by_the_directory(self, directory_client, services):
        client = directory_client(login_rate_limit="1000/minute", lockout_threshold=3)
        assert (await sign_in(client, "bob")).status_code == 200  # the local account exists from here on
        for n in range(3):
            assert (await sign_in(client, "bob", f"Wrong-Guess-{n}")).status_code == 401
        row = await user_row(services, "bob")
        assert row["locked_until"] is None and row["failed_login_count"] == 0
        deferred = [a for a in await audit_actions(services) if a["action"] == "user.lock_deferred_to_directory"]
        assert len(deferred) == 1 and deferred[0]["after"]["failed_logins"] == 3
        assert (await sign_in(client, "bob")).status_code == 200

    async def test_with_local_lockout_on_a_locked_directory_account_is_refused_without_asking(
        self, directory_client, services
    ):
        client = directory_client(login_rate_limit="1000/minute", lockout_threshold=3, lockout_directory_accounts=True)
        assert (await sign_in(client, "bob")).status_code == 200
        for n in range(3):
            await sign_in(client, "bob", f"Wrong-Guess-{n}")
        assert (await user_row(services, "bob"))["locked_until"] is not None
        right = await sign_in(client, "bob")
        wrong = await sign_in(client, "bob", "Wrong-Guess-x")
        assert right.status_code == wrong.status_code == 401 and right.json() == wrong.json()
        reasons = [a["after"]["reason"] for a in await audit_actions(services) if a["action"] == "auth.login_failed"]
        assert reasons[-2:] == ["account_locked", "account_locked"]
