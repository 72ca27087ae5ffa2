"""Accounts after day one, on the real app and database: per-account lockout shared by two replicas, password
expiry on an injected clock, the forced change of the initial admin, and the self-service change."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from backend.auth.schemas import UserCreate
from backend.auth.service import AuthService
from backend.auth.signing_keys import SigningKeyRing
from backend.clock import FrozenClock
from backend.context import system_context
from backend.db import create_pool
from backend.events import DomainEvent, EventBus
from tests.fixtures.app import PASSWORD
from tests.fixtures.security import REPO_ROOT, app_with, settings_with

pytestmark = pytest.mark.asyncio

START = datetime(2031, 3, 2, 8, 0, tzinfo=UTC)
NEW_PASSWORD = "Fresh-Valve-Spring-42"


class RecordedEvents:
    """An event listener that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    async def handle(self, conn: Any, event: DomainEvent) -> None:
        self.events.append(event)


@pytest_asyncio.fixture
async def replicas(services, clean_state, api_from):
    """Two API replicas on the same database, each with its own pool, auth service, clock and in-memory rate
    limits (so only the database is shared), and what each published."""
    clock = FrozenClock(START)
    settings = settings_with(services, login_rate_limit="1000/minute")
    made, pools = [], []
    for _ in range(2):
        pool = await create_pool(services.settings.database_url, min_size=1, max_size=3)
        pools.append(pool)
        recorded, bus = RecordedEvents(), EventBus()
        bus.subscribe(recorded)
        ring = SigningKeyRing(
            settings=settings, pool=pool, clock=clock, master_secret="replica-master-secret-" + "r" * 24
        )
        auth = AuthService(settings=settings, pool=pool, clock=clock, signing_keys=ring, events=bus)
        made.append((api_from(app_with(services, settings, auth=auth, clock=clock)), auth, recorded))
    yield clock, made
    for pool in pools:
        await pool.close()


async def login(client, username, password):
    return await client.post("/api/v1/auth/token", data={"username": username, "password": password})


async def user_row(services, username):
    async with services.pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM users WHERE username = $1", username)


async def audit_rows(services, action):
    async with services.pool.acquire() as conn:
        return await conn.fetch("SELECT after, actor_name FROM audit_log WHERE action = $1 ORDER BY id", action)


class TestLockout:
    async def test_failures_on_two_replicas_add_up_and_lock_the_account_for_both(self, replicas, services):
        _, [(first, auth, events_a), (second, _, events_b)] = replicas
        await auth.create_user(
            system_context("test"), UserCreate(username="olga", password=PASSWORD, role="technician")
        )
        for attempt in range(9):
            client = first if attempt % 2 == 0 else second
            reply = await login(client, "olga", f"Wrong-Guess-{attempt:03d}")
            assert reply.status_code == 401
        assert (await user_row(services, "olga"))["failed_login_count"] == 9
        assert (await user_row(services, "olga"))["locked_until"] is None
        assert (await login(second, "olga", "Wrong-Guess-final")).status_code == 401
        row = await user_row(services, "olga")
        assert row["locked_until"] == START + timedelta(minutes=15)
        # Locked: the right password gets the very same answer as a wrong one, on either replica.
        wrong = await login(first, "olga", "Wrong-Guess-after")
        for client in (first, second):
            right = await login(client, "olga", PASSWORD)
            assert right.status_code == 401 and right.json() == wrong.json()
        locked = await audit_rows(services, "user.locked")
        assert len(locked) == 1 and locked[0]["after"]["failed_logins"] == 10
        published = [e for e in events_a.events + events_b.events if e.name == "user.locked"]
        assert len(published) == 1 and published[0].after["username"] == "olga"
        reasons = [r["after"]["reason"] for r in await audit_rows(services, "auth.login_failed")]
        assert reasons.count("account_locked") == 3

    async def test_each_further_lock_lasts_twice_as_long_until_a_successful_login(self, replicas, services):
        clock, [(client, auth, _), _] = replicas
        await auth.create_user(system_context("test"), UserCreate(username="pablo", password=PASSWORD, role="reporter"))

        async def fail_ten_times():
            for n in range(10):
                assert (await login(client, "pablo", f"Nope-{n}")).status_code == 401

        await fail_ten_times()
        first_lock = (await user_row(services, "pablo"))["locked_until"]
        assert first_lock == clock.now() + timedelta(minutes=15)
        clock.advance(minutes=16)
        await fail_ten_times()
        assert (await user_row(services, "pablo"))["locked_until"] == clock.now() + timedelta(minutes=30)
        clock.advance(minutes=31)
        assert (await login(client, "pablo", PASSWORD)).status_code == 200
        row = await user_row(services, "pablo")
        assert row["lockouts"] == 0 and row["failed_login_count"] == 0

    async def test_failures_outside_the_window_start_the_count_again(self, replicas, services):
        clock, [(client, auth, _), _] = replicas
        await auth.create_user(system_context("test"), UserCreate(username="quim", password=PASSWORD, role="reporter"))
        for n in range(9):
            await login(client, "quim", f"Nope-{n}")
        clock.advance(minutes=16)
        await login(client, "quim", "Nope-late")
        row = await user_row(services, "quim")
        assert row["locked_until"] is None and row["failed_login_count"] == 1

    async def test_an_admin_unlocks_a_locked_account_and_it_is_audited(self, replicas, services):
        _, [(client, auth, events), _] = replicas
        await auth.create_user(system_context("test"), UserCreate(username="root", password=PASSWORD, role="admin"))
        await auth.create_user(system_context("test"), UserCreate(username="rita", password=PASSWORD, role="reporter"))
        admin = (await login(client, "root", PASSWORD)).json()
        headers = {"Authorization": f"Bearer {admin['access_token']}"}
        for n in range(10):
            await login(client, "rita", f"Nope-{n}")
        rita = await user_row(services, "rita")
        users = await client.get("/api/v1/users", headers=headers)
        assert users.status_code == 200, users.text
        listed = {u["username"]: u for u in users.json()}
        assert listed["rita"]["locked"] is True
        reply = await client.post(f"/api/v1/users/{rita['id']}/unlock", headers=headers)
        assert reply.status_code == 200 and reply.json()["locked"] is False
        assert (await login(client, "rita", PASSWORD)).status_code == 200
        unlocked = await audit_rows(services, "user.unlocked")
        assert len(unlocked) == 1 and unlocked[0]["actor_name"] == "root"
        assert [e.name for e in events.events if e.name == "user.unlocked"] == ["user.unlocked"]
        missing = await client.post("/api/v1/users/999999/unlock", headers=headers)
        assert missing.status_code == 404


class TestPasswordExpiry:
    async def test_an_expired_password_must_be_changed_before_anything_else(self, services, clean_state, api_from):
        clock = FrozenClock(START)
        settings = settings_with(services, password_max_age_days=90)
        ring = SigningKeyRing(
            settings=settings, pool=services.pool, clock=clock, master_secret="expiry-master-secret-" + "e" * 24
        )
        auth = AuthService(settings=settings, pool=services.pool, clock=clock, signing_keys=ring)
        client = api_from(app_with(services, settings, auth=auth, clock=clock))
        await auth.create_user(
            system_context("test"), UserCreate(username="sara", password=PASSWORD, role="technician")
        )
        fresh = (await login(client, "sara", PASSWORD)).json()
        assert fresh["password_change_required"] is False
        clock.advance(days=89, hours=23)
        assert (await login(client, "sara", PASSWORD)).json()["password_change_required"] is False
        clock.advance(hours=1)
        expired = (await login(client, "sara", PASSWORD)).json()
        assert expired["password_change_required"] is True and expired["password_change_reason"] == "expired"
        headers = {"Authorization": f"Bearer {expired['access_token']}"}
        refused = await client.get("/api/v1/incidents", headers=headers)
        assert refused.status_code == 403 and refused.json()["reason"] == "password_change_required"
        me = await client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200 and me.json()["password_expires_at"] is not None
        changed = await client.post(
            "/api/v1/auth/password", headers=headers, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert changed.status_code == 200, changed.text
        assert datetime.fromisoformat(changed.json()["password_expires_at"]) == clock.now() + timedelta(days=90)
        assert (await client.get("/api/v1/incidents", headers=headers)).status_code == 200


class TestInitialAdmin:
    async def test_the_initial_admin_must_change_the_generated_password_at_first_login(self, api, services, tmp_path):
        env = {
            **os.environ,
            "PRS_DATABASE_URL": services.settings.database_url,
            "PRS_DATA_DIR": str(tmp_path),
            "PRS_LOG_JSON": "false",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        command = [sys.executable, "-m", "backend.cli", "user", "ensure-admin"]
        done = await asyncio.to_thread(
            subprocess.run, command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-2000:]
        username, password = (tmp_path / "initial-admin-password").read_text().split()
        first = await api.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert first.status_code == 200
        assert first.json()["password_change_required"] is True
        assert first.json()["password_change_reason"] == "must_change"
        headers = {"Authorization": f"Bearer {first.json()['access_token']}"}
        for method, path in (
            ("GET", "/api/v1/users"),
            ("GET", "/api/v1/audit"),
            ("GET", "/api/v1/incidents"),
            ("POST", "/api/v1/signing-keys/rotate"),
        ):
            refused = await api.request(method, path, headers=headers)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["reason"] == "password_change_required"
        assert (await api.get("/api/v1/auth/me", headers=headers)).json()["must_change_password"] is True
        same = await api.post(
            "/api/v1/auth/password", headers=headers, json={"current_password": password, "new_password": password}
        )
        assert same.status_code == 422 and same.json()["field"] == "new_password"
        assert same.json()["rule"] == "password_history"
        changed = await api.post(
            "/api/v1/auth/password", headers=headers, json={"current_password": password, "new_password": NEW_PASSWORD}
        )
        assert changed.status_code == 200, changed.text
        assert (await api.get("/api/v1/users", headers=headers)).status_code == 200
        again = await api.post("/api/v1/auth/token", data={"username": username, "password": NEW_PASSWORD})
        assert again.json()["password_change_required"] is False


class TestSelfServiceChange:
    async def test_a_wrong_current_password_is_400_naming_the_field_and_changes_nothing(
        self, api, make_account, services
    ):
        account = await make_account("technician")
        before = await user_row(services, account.username)
        reply = await api.post(
            "/api/v1/auth/password",
            headers=account.headers,
            json={"current_password": "Not-My-Password-1", "new_password": NEW_PASSWORD},
        )
        assert reply.status_code == 400 and reply.json()["field"] == "current_password"
        after = await user_row(services, account.username)
        assert after["password_hash"] == before["password_hash"]
        assert after["failed_login_count"] == 1, "a wrong current password counts as a failed login"
        assert (
            await api.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
        ).status_code == 200

    async def test_guessing_the_current_password_locks_the_account_and_then_even_the_right_one_fails(
        self, api, make_account, services
    ):
        account = await make_account("technician")
        for n in range(10):
            reply = await api.post(
                "/api/v1/auth/password",
                headers=account.headers,
                json={"current_password": f"Guess-Number-{n}", "new_password": NEW_PASSWORD},
            )
            assert reply.status_code == 400
        assert (await user_row(services, account.username))["locked_until"] is not None
        right = await api.post(
            "/api/v1/auth/password",
            headers=account.headers,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert right.status_code == 400 and right.json()["field"] == "current_password"
        login = await api.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
        assert login.status_code == 401

    async def test_policy_and_history_failures_are_422_naming_the_field(self, api, make_account, services):
        account = await make_account("reporter")
        weak = await api.post(
            "/api/v1/auth/password",
            headers=account.headers,
            json={"current_password": PASSWORD, "new_password": "short"},
        )
        assert weak.status_code == 422 and weak.json()["field"] == "new_password"
        passwords = [PASSWORD] + [f"Rotation-Number-{n}x" for n in range(1, 6)]
        for previous, new in itertools.pairwise(passwords):
            reply = await api.post(
                "/api/v1/auth/password",
                headers=account.headers,
                json={"current_password": previous, "new_password": new},
            )
            assert reply.status_code == 200, reply.text
        current = passwords[-1]
        for reused in passwords[-5:]:  # the last five, the current one included
            reply = await api.post(
                "/api/v1/auth/password",
                headers=account.headers,
                json={"current_password": current, "new_password": reused},
            )
            assert reply.status_code == 422 and reply.json()["rule"] == "password_history", reused
        oldest = await api.post(
            "/api/v1/auth/password",
            headers=account.headers,
            json={"current_password": current, "new_password": PASSWORD},
        )
        assert oldest.status_code == 200, "passwords older than the history may come back"

    async def test_a_change_ends_every_other_session_but_keeps_this_one(self, api, make_account):
        account = await make_account("technician")
        other = await api.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
        other_headers = {"Authorization": f"Bearer {other.json()['access_token']}"}
        assert (await api.get("/api/v1/auth/me", headers=other_headers)).status_code == 200
        reply = await api.post(
            "/api/v1/auth/password",
            headers=account.headers,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert reply.status_code == 200 and reply.json()["sessions_ended"] == 1
        assert (await api.get("/api/v1/auth/me", headers=other_headers)).status_code == 401
        refreshed = await api.post("/api/v1/auth/refresh", json={"refresh_token": other.json()["refresh_token"]})
        assert refreshed.status_code == 401
        assert (await api.get("/api/v1/incidents", headers=account.headers)).status_code == 200

    async def test_an_admin_reset_forces_a_change_and_plain_creation_does_not(self, api, make_account, services):
        admin = await make_account("admin")
        person = await make_account("reporter")
        reset = await api.patch(
            f"/api/v1/users/{person.id}", headers=admin.headers, json={"password": "Reset-By-Admin-77"}
        )
        assert reset.status_code == 200 and reset.json()["must_change_password"] is True
        reply = await api.post(
            "/api/v1/auth/token", data={"username": person.username, "password": "Reset-By-Admin-77"}
        )
        assert reply.json()["password_change_required"] is True
        created = await api.post(
            "/api/v1/users",
            headers=admin.headers,
            json={"username": "newcomer", "password": PASSWORD, "role": "reporter"},
        )
        assert created.status_code == 201 and created.json()["must_change_password"] is False
        forced = await api.post(
            "/api/v1/users",
            headers=admin.headers,
            json={"username": "trainee", "password": PASSWORD, "role": "reporter", "must_change_password": True},
        )
        assert forced.status_code == 201 and forced.json()["password_change_required"] is True

    async def test_api_keys_have_no_password_to_change(self, api, make_api_key):
        key = await make_api_key(permissions=["admin"])
        reply = await api.post(
            "/api/v1/auth/password",
            headers=key.headers,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert reply.status_code == 403
