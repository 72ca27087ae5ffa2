"""The app through a database switch-over: a multi-host DSN finds the writable server, a demoted (read-only) or
unreachable database is a 503 with Retry-After in the one error shape (never a 500), the pool heals by itself,
and the read pool falls back to the primary."""

from __future__ import annotations

import uuid
from typing import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import pytest_asyncio

from backend.auth.schemas import UserCreate
from backend.container import build_container
from backend.context import system_context
from backend.db import drop_database, ensure_database, migrate
from backend.main import create_app
from tests.fixtures.app import PASSWORD
from tests.fixtures.database import database_url_named
from tests.fixtures.processes import free_port
from tests.fixtures.tcp_relay import TcpRelay

pytestmark = pytest.mark.asyncio

REPORT = {
    "title": "Prensa P-3 sin presión hidráulica",
    "description": "La prensa P-3 pierde presión hidráulica tras diez minutos de trabajo.",
    "area": "maintenance",
    "priority": "high",
}


def with_dead_host_first(url: str, dead_port: int) -> str:
    """The same database behind a multi-host DSN whose first host refuses connections."""
    scheme, rest = url.split("://", 1)
    user, hostpart = rest.split("@", 1)
    hostport, path = hostpart.split("/", 1)
    return f"{scheme}://{user}@127.0.0.1:{dead_port},{hostport}/{path}?target_session_attrs=read-write"


@pytest_asyncio.fixture(scope="module")
async def own_database_url() -> AsyncIterator[str]:
    """A migrated database of this module's own: the tests make it read-only."""
    url = database_url_named(f"prs_ha_{uuid.uuid4().hex[:10]}")
    await ensure_database(url)
    await migrate(url)
    yield url
    await drop_database(url)


async def open_app(settings, encoder):
    services = await build_container(settings, encoder=encoder)
    app = create_app(settings, container=services, run_worker=False)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return services, client


async def login_headers(services, client: httpx.AsyncClient) -> dict[str, str]:
    name = f"reporter-{uuid.uuid4().hex[:8]}"
    await services.auth.create_user(
        system_context("test"), UserCreate(username=name, password=PASSWORD, role="reporter")
    )
    reply = await client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def set_read_only(admin_url: str, database: str, read_only: bool) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        quoted = await conn.fetchval("SELECT quote_ident($1)", database)
        value = "on" if read_only else "off"
        await conn.execute(f"ALTER DATABASE {quoted} SET default_transaction_read_only = {value}")
    finally:
        await conn.close()


async def test_a_multi_host_dsn_skips_a_dead_host_and_finds_the_writable_server(
    app_settings, encoder, own_database_url, tmp_path
):
    settings = app_settings.model_copy(
        update={"database_url": with_dead_host_first(own_database_url, free_port()), "data_dir": tmp_path}
    )
    services, client = await open_app(settings, encoder)
    try:
        headers = await login_headers(services, client)
        created = await client.post("/api/v1/incidents", json=REPORT, headers=headers)
        assert created.status_code == 201, created.text
    finally:
        await client.aclose()
        await services.aclose()


async def test_a_demoted_primary_is_503_with_retry_after_and_the_pool_heals_without_a_restart(
    app_settings, encoder, own_database_url, tmp_path
):
    database = own_database_url.rsplit("/", 1)[1]
    admin_url = database_url_named("postgres")
    settings = app_settings.model_copy(
        update={"database_url": own_database_url, "data_dir": tmp_path, "database_retry_after_s": 3}
    )
    services, client = await open_app(settings, encoder)
    try:
        headers = await login_headers(services, client)
        assert (await client.post("/api/v1/incidents", json=REPORT, headers=headers)).status_code == 201
        # What a Patroni switch-over looks like to pooled connections: the server they hold no longer takes writes.
        await set_read_only(admin_url, database, True)
        await services.pool.expire_connections()
        refused = await client.post("/api/v1/incidents", json=REPORT, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "3"
        assert refused.json()["error"] == "ServiceUnavailable" and refused.json()["reason"] == "database_unavailable"
        # The new primary is writable; the same pool answers again without a restart.
        await set_read_only(admin_url, database, False)
        healed = await client.post("/api/v1/incidents", json=REPORT, headers=headers)
        assert healed.status_code == 201, healed.text
    finally:
        await set_read_only(admin_url, database, False)
        await client.aclose()
        await services.aclose()


async def test_a_lost_database_is_503_not_500_and_the_pool_reconnects_when_it_is_back(
    app_settings, encoder, own_database_url, tmp_path
):
    relay = TcpRelay(free_port(), "127.0.0.1", urlsplit(own_database_url).port or 5432)
    await relay.start()
    through_relay = urlunsplit(urlsplit(own_database_url)._replace(netloc=f"postgres@127.0.0.1:{relay.port}"))
    settings = app_settings.model_copy(update={"database_url": through_relay, "data_dir": tmp_path})
    services, client = await open_app(settings, encoder)
    try:
        headers = await login_headers(services, client)
        assert (await client.get("/api/v1/incidents", headers=headers)).status_code == 200
        await relay.cut()
        for path in ("/api/v1/incidents", "/api/v1/areas"):
            reply = await client.get(path, headers=headers)
            assert reply.status_code == 503 and int(reply.headers["retry-after"]) > 0, reply.text
            assert reply.json()["reason"] == "database_unavailable"
        posted = await client.post("/api/v1/incidents", json=REPORT, headers=headers)
        assert posted.status_code == 503, posted.text
        await relay.start()
        assert (await client.post("/api/v1/incidents", json=REPORT, headers=headers)).status_code == 201
    finally:
        await client.aclose()
        await services.aclose()
        await relay.cut()


async def _pool_on_dead_port():
    from backend.db import create_pool

    return await create_pool(f"postgresql://postgres@127.0.0.1:{free_port()}/none", min_size=0, max_size=2)


async def test_lists_come_from_the_read_pool_and_fall_back_to_the_primary_when_it_is_down(
    app_settings, encoder, own_database_url, tmp_path
):
    settings = app_settings.model_copy(
        update={
            "database_url": own_database_url,
            "data_dir": tmp_path,
            "database_read_url": own_database_url + "?application_name=prs-read",
        }
    )
    services, client = await open_app(settings, encoder)
    try:
        headers = await login_headers(services, client)
        created = (await client.post("/api/v1/incidents", json=REPORT, headers=headers)).json()
        listed = await client.get("/api/v1/incidents", headers=headers)
        assert listed.status_code == 200 and created["id"] in [i["id"] for i in listed.json()["items"]]
        assert services.reads.replica.get_size() > 0, "the list was read through the read pool"
        # The standby goes away: lists are served by the primary, and nobody sees an error.
        await services.reads.replica.close()
        services.reads.replica = await _pool_on_dead_port()
        again = await client.get("/api/v1/incidents", headers=headers)
        assert again.status_code == 200 and created["id"] in [i["id"] for i in again.json()["items"]]
        report = await client.get("/metrics")
        assert report.status_code == 200
    finally:
        await client.aclose()
        await services.aclose()
