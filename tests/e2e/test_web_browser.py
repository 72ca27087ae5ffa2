"""The web pages in a real headless Chromium against a real `prs serve`: logging in through the form and the
incident page's SLA panel, which follows the clocks as people comment and change the status."""

from __future__ import annotations

import json

from tests.fixtures.app import PASSWORD
from tests.fixtures.browser import WebPage
from tests.fixtures.server import Server


async def log_in(browser: WebPage, server: Server, username: str, *, language: str = "en") -> None:
    """Open the page in `language` and sign in through the login form."""
    await browser.log_in(username, language=language)


async def open_incident(browser: WebPage, incident_id: int) -> None:
    await browser.evaluate(f"location.hash = '#/incidents/{incident_id}'")
    await browser.wait_until(f"document.querySelector('.incident-id')?.textContent === '#{incident_id}'")


def clock_badge(clock_name: str) -> str:
    """An expression: the badge text of the SLA panel's clock named `clock_name` (undefined while absent)."""
    return (
        "[...document.querySelectorAll('.sla-clock')].find((row) => row.querySelector('strong').textContent === "
        f"{json.dumps(clock_name)})?.querySelector('.badge').textContent"
    )


async def create_policy(api, supervisor, **fields) -> dict:
    reply = await api.post("/api/v1/sla/policies", headers=supervisor.headers, json=fields)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def create_incident(api, account, priority: str) -> int:
    reply = await api.post(
        "/api/v1/incidents",
        headers=account.headers,
        json={
            "title": "Labeller on line 4 prints blank labels",
            "description": "Since the ribbon change every label comes out blank; the printer reports no error.",
            "area": "production",
            "priority": priority,
        },
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["id"]


async def test_the_sla_panel_shows_each_clock_and_follows_a_comment_and_a_pause(web_server, browser, api, make_account):
    supervisor = await make_account("supervisor")
    technician = await make_account("technician")
    await create_policy(
        api,
        supervisor,
        name="Line stoppage 24/7",
        priorities=["high"],
        first_response_minutes=60,
        resolution_minutes=240,
    )
    incident_id = await create_incident(api, technician, "high")

    await log_in(browser, web_server, technician.username)
    await open_incident(browser, incident_id)
    await browser.wait_until(f"{clock_badge('First response')} === 'Running'")
    panel = await browser.text_of(".sla-card")
    assert "Policy: Line stoppage 24/7 · 24/7" in panel
    assert "Target 1 h 00 min" in panel and "Target 4 h 00 min" in panel
    assert "of business time left" in panel
    assert await browser.evaluate(clock_badge("Resolution")) == "Running"

    # The first human comment stops the first-response clock within its target.
    await browser.fill("#comment-body", "Replaced the ribbon with the correct type; testing now.")
    await browser.click_button("Add comment", within=".comments-card")
    await browser.wait_until(f"{clock_badge('First response')} === 'Met'")
    assert "Took " in await browser.text_of(".sla-card")

    # Waiting on the customer is a pause status: the resolution clock pauses.
    await browser.click_button("Set waiting", within=".actions-card")
    await browser.wait_until(f"{clock_badge('Resolution')} === 'Paused'")

    sla = (await api.get(f"/api/v1/incidents/{incident_id}/sla", headers=technician.headers)).json()
    states = {clock["kind"]: (clock["state"], clock["met"]) for clock in sla["clocks"]}
    assert states == {"first_response": ("stopped", True), "resolution": ("paused", None)}


async def test_an_incident_no_policy_matches_says_so_in_spanish(web_server, browser, api, make_account):
    supervisor = await make_account("supervisor")
    technician = await make_account("technician")
    await create_policy(
        api,
        supervisor,
        name="Solo críticas",
        priorities=["critical"],
        first_response_minutes=15,
        resolution_minutes=120,
    )
    incident_id = await create_incident(api, technician, "low")

    await log_in(browser, web_server, technician.username, language="es")
    await open_incident(browser, incident_id)
    text = await browser.wait_until(
        "document.querySelector('.sla-card')?.innerText.includes('Ninguna política') && "
        "document.querySelector('.sla-card').innerText"
    )
    assert text.startswith("Nivel de servicio (SLA)")
    assert await browser.evaluate("document.querySelectorAll('.sla-clock').length") == 0


async def test_a_forced_password_change_leads_from_the_login_form_to_the_change_form(
    web_server, browser, services, clean_state
):
    """The initial admin's flow: log in with the given password, land on the change form, then on the list."""
    from backend.auth.schemas import UserCreate
    from backend.context import system_context

    await services.auth.create_user(
        system_context("test"),
        UserCreate(username="firstadmin", password=PASSWORD, role="admin", must_change_password=True),
    )
    await log_in(browser, web_server, "firstadmin")
    await browser.wait_until("!!document.querySelector('.password-card')")
    assert "Choose a new password" in await browser.text_of(".password-card")
    await browser.fill("#password-current", PASSWORD)
    await browser.fill("#password-new", "Brand-New-Admin-77")
    await browser.fill("#password-repeat", "Brand-New-Admin-77")
    await browser.click_button("Change password", within=".password-card")
    await browser.wait_until("!document.querySelector('.password-card') && location.hash === '#/incidents'")
    async with services.pool.acquire() as conn:
        assert await conn.fetchval("SELECT must_change_password FROM users WHERE username = 'firstadmin'") is False


async def test_an_auditor_signs_in_to_a_page_that_points_to_the_audit_api(web_server, browser, services, clean_state):
    from backend.auth.schemas import UserCreate
    from backend.context import system_context

    await services.auth.create_user(
        system_context("test"), UserCreate(username="inspector", password=PASSWORD, role="auditor")
    )
    await log_in(browser, web_server, "inspector")
    await browser.wait_until("!!document.querySelector('.auditor-page')")
    assert "/api/v1/audit" in await browser.text_of(".auditor-page")
    assert await browser.evaluate("document.querySelector('.form-error:not([hidden])') === null")
