"""The supervisor and admin pages in a real headless Chromium (Playwright) against a real `prs serve`: every page in
both languages at desktop and phone width (screenshots, axe-core), each admin task end to end through the page with
the API state checked afterwards, the dashboard's figures against the metrics endpoints, and live updates between
two pages."""

from __future__ import annotations

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
ADMIN_LINKS = [
    "#/dashboard",
    "#/admin/users",
    "#/admin/api-keys",
    "#/admin/notifications",
    "#/admin/sla",
    "#/admin/audit",
    "#/admin/knowledge",
]


async def create_incident(api, account, title: str, **fields) -> dict:
    body = {
        "title": title,
        "description": "Seen on the night shift; the operator restarted it twice.",
        "area": "production",
        "priority": "high",
        **fields,
    }
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
    incidents = [
        await create_incident(api, tech, title)
        for title in (
            "Conveyor belt 3 stopped, motor overheated",
            "Belt conveyor 3 halted: the motor is overheating",
            "Label printer on line 4 prints blank labels",
        )
    ]
    await api.post(
        f"/api/v1/incidents/{incidents[1]['id']}/status", headers=tech.headers, json={"status": "in_progress"}
    )
    replies = [
        await api.post(
            "/api/v1/sla/policies",
            headers=admin.headers,
            json={
                "name": "High priority 24/7",
                "priorities": ["high"],
                "first_response_minutes": 30,
                "resolution_minutes": 240,
            },
        ),
        await api.post(
            "/api/v1/sla/escalation-rules",
            headers=admin.headers,
            json={"name": "Breached high", "conditions": [{"type": "sla_breached"}], "level": 1},
        ),
        await api.post(
            "/api/v1/api-keys",
            headers=admin.headers,
            json={"name": "MES line 3", "owner_email": "mes@example.com", "permissions": ["read"]},
        ),
        await api.post(
            "/api/v1/knowledge/documents",
            headers=admin.headers,
            files={
                "file": (
                    "conveyor.md",
                    b"# Conveyor overheating\n\nCheck the fan of the drive motor.\n",
                    "text/markdown",
                )
            },
        ),
    ]
    replies.append(
        await server_call(
            server,
            admin,
            "POST",
            "/api/v1/notify/endpoints",
            json={"kind": "webhook", "target": "http://127.0.0.1:9/hook", "event_types": ["incident.created"]},
        )
    )
    for reply in replies:
        assert reply.status_code == 201, reply.text
    return {"incidents": incidents}


async def open_page(page: WebPage, name: str, incident_id: int) -> None:
    route, ready = PAGES[name]
    await page.go(route or f"#/incidents/{incident_id}", ready)
    await page.wait_until("!/Loading…|Cargando…/.test(document.getElementById('view').innerText)")


async def test_every_page_in_both_languages_and_sizes_passes_axe_and_is_screenshotted(
    api, web_server, make_account, new_page, screenshot_dir
):
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
            hrefs = await page.evaluate(
                "[...document.querySelectorAll('#topnav a')].map((a) => a.getAttribute('href'))"
            )
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


def field_error(name: str) -> str:
    """Selector of the visible error line of the form field named `name`."""
    return f'.field[data-field="{name}"] .field-error:not([hidden])'


async def api_get(api, account, path: str, **params):
    reply = await api.get(path, headers=account.headers, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_an_admin_creates_a_user_changes_the_role_disables_it_and_resets_the_password(api, make_account, browser):
    admin = await make_account("admin")
    await browser.log_in(admin.username)
    await browser.go("#/admin/users", ".users-table")
    page = browser.page

    await page.fill("#user-username", "operator7")
    await page.fill("#user-display-name", "Ana Operator")
    await page.select_option("#user-role", "technician")
    await page.fill("#user-password", "short")
    await page.click(".user-create-form button[type=submit]")
    assert "password must have" in await browser.text_of(field_error("password"))
    await page.fill("#user-password", "Operator-Seven-77")
    await page.click(".user-create-form button[type=submit]")
    await page.locator(".users-table td", has_text="operator7").wait_for()

    await page.get_by_role("button", name="Edit operator7").click()
    await page.select_option("#edit-role", "supervisor")
    await page.uncheck("#edit-active")
    await page.click(".user-edit-form button[type=submit]")
    await page.locator(".status-line", has_text="operator7 saved").wait_for()
    await page.fill("#reset-password", "Reset-Password-2027")
    await page.click(".user-reset-form button[type=submit]")
    await page.locator(".status-line", has_text="password of operator7 was reset").wait_for()

    user = next(u for u in await api_get(api, admin, "/api/v1/users") if u["username"] == "operator7")
    assert (user["role"], user["is_active"], user["display_name"]) == ("supervisor", False, "Ana Operator")
    assert user["must_change_password"] is True and user["password_changed_at"] is not None


async def test_an_api_key_is_shown_once_never_stored_then_rotated_and_revoked(api, web_server, make_account, new_page):
    admin = await make_account("admin")
    used = await api.post(
        "/api/v1/api-keys",
        headers=admin.headers,
        json={"name": "SCADA hall 2", "owner_email": "scada@example.com", "permissions": ["read"]},
    )
    async with httpx.AsyncClient(base_url=web_server.url, timeout=30) as client:
        reply = await client.get("/api/v1/incidents", headers={"X-API-Key": used.json()["key"]})
    assert reply.status_code == 200, reply.text
    browser = await new_page()
    await browser.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await browser.log_in(admin.username)
    await browser.go("#/admin/api-keys", ".key-issue-form")
    page = browser.page

    await page.fill("#key-name", "MES line 5")
    await page.fill("#key-owner", "mes-team@example.com")
    await page.check("input[name=permissions][value=write]")
    await page.check("input[name=allowed_areas][value=production]")
    await page.fill("#key-networks", "not-a-network")
    await page.fill("#key-origins", "https://mes.example.com")
    await page.fill("#key-expires", "2031-01-31T12:00")
    await page.fill("#key-limit", "120")
    await page.click(".key-issue-form button[type=submit]")
    assert "CIDR" in await browser.text_of(field_error("allowed_networks"))
    await page.fill("#key-networks", "10.20.0.0/16\n192.168.7.0/24")
    await page.click(".key-issue-form button[type=submit]")
    secret = await page.locator("#secret-once").input_value()
    assert len(secret) > 20
    await page.get_by_role("button", name="Copy").click()
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    stored = await page.evaluate("JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert secret not in stored and secret[-12:] not in stored
    assert not any(secret[-12:] in message for message in browser.console_errors)

    [key] = [k for k in await api_get(api, admin, "/api/v1/api-keys") if k["name"] == "MES line 5"]
    assert key["permissions"] == ["read", "write"]
    assert key["allowed_areas"] == ["production"]
    assert key["allowed_networks"] == ["10.20.0.0/16", "192.168.7.0/24"]
    assert key["allowed_origins"] == ["https://mes.example.com"]
    assert key["rate_limit_per_minute"] == 120 and key["expires_at"].startswith("2031-01-31")
    assert secret.startswith(key["key_prefix"])
    row = page.locator(".keys-table tr", has_text="MES line 5")
    assert "Never used" in await row.inner_text()
    assert "(127.0.0.1) · 1 requests" in await page.locator(".keys-table tr", has_text="SCADA hall 2").inner_text()

    await page.get_by_role("button", name="Rotate the key of MES line 5").click()
    await page.locator(".secret-box", has_text="New key for MES line 5 (the old one").wait_for()
    rotated = await page.locator("#secret-once").input_value()
    assert rotated != secret
    await page.get_by_role("button", name="Revoke the key of MES line 5").click()
    await page.get_by_role("button", name="Yes, revoke").click()
    await page.locator(".keys-table tr", has_text="MES line 5").get_by_text("Revoked").wait_for()
    key = await api_get(api, admin, f"/api/v1/api-keys/{key['id']}")
    assert key["status"] == "revoked" and key["revoked_by"] == admin.username


async def test_a_notification_endpoint_is_created_pinged_toggled_rotated_and_redelivered(api, make_account, browser):
    admin = await make_account("admin")
    await browser.log_in(admin.username)
    await browser.go("#/admin/notifications", ".endpoint-form")
    page = browser.page

    await page.select_option("#endpoint-kind", "webhook")
    await page.fill("#endpoint-target", "ftp://127.0.0.1/hook")
    await page.click(".endpoint-form button[type=submit]")
    assert "http" in await browser.text_of(field_error("target"))
    await page.fill("#endpoint-target", "http://127.0.0.1:9/erp-hook")
    await page.check('input[name=event_types][value="incident.resolved"]')
    await page.check("input[name=priorities][value=critical]")
    await page.click(".endpoint-form button[type=submit]")
    first_secret = await page.locator("#secret-once").input_value()
    assert first_secret
    [endpoint] = await api_get(api, admin, "/api/v1/notify/endpoints")
    assert endpoint["target"] == "http://127.0.0.1:9/erp-hook"
    assert endpoint["event_types"] == ["incident.created", "incident.resolved"]
    assert endpoint["priorities"] == ["critical"] and endpoint["has_secret"]
    eid = endpoint["id"]

    await page.get_by_role("button", name=f"Send test to endpoint #{eid}").click()
    await page.locator(".status-line", has_text=f"Test ping queued for endpoint #{eid}").wait_for()
    await page.get_by_role("button", name=f"Delivery log of endpoint #{eid}").click()
    await page.locator(".delivery-table td", has_text="test.ping").wait_for()
    [delivery] = (await api_get(api, admin, "/api/v1/notify/deliveries", endpoint_id=eid))["items"]
    await page.get_by_role("button", name=f"Redeliver event {delivery['event_id']}").click()
    await page.locator(".status-line", has_text="Queued again (1 deliveries)").wait_for()
    deliveries = (await api_get(api, admin, "/api/v1/notify/deliveries", event_id=delivery["event_id"]))["items"]
    assert len(deliveries) == 2 and any(d["manual"] for d in deliveries)

    await page.get_by_role("button", name=f"Disable #{eid}").click()
    await page.locator(".status-line", has_text=f"Endpoint #{eid} disabled").wait_for()
    assert (await api_get(api, admin, f"/api/v1/notify/endpoints/{eid}"))["enabled"] is False
    await page.get_by_role("button", name=f"Enable #{eid}").click()
    await page.locator(".status-line", has_text=f"Endpoint #{eid} enabled").wait_for()
    await page.get_by_role("button", name=f"Rotate secret of endpoint #{eid}").click()
    await page.locator(".secret-box", has_text=f"New signing secret of endpoint #{eid}").wait_for()
    assert await page.locator("#secret-once").input_value() not in ("", first_secret)
    endpoint = await api_get(api, admin, f"/api/v1/notify/endpoints/{eid}")
    assert endpoint["enabled"] is True and endpoint["secret_rotated_at"] is not None


async def test_an_sla_policy_with_a_calendar_and_holidays_previews_a_due_date_and_a_rule_is_added(
    api, make_account, new_page
):
    supervisor = await make_account("supervisor")
    browser = await new_page(timezone_id="Europe/Madrid")
    await browser.log_in(supervisor.username)
    await browser.go("#/admin/sla", ".policy-form")
    page = browser.page

    await page.fill("#policy-name", "Critical, office hours")
    await page.fill("#policy-first", "30")
    await page.fill("#policy-resolution", "120")
    await page.check("input[name=priorities][value=critical]")
    await page.check("#policy-business")
    await page.fill("#policy-timezone", "Europe/Atlantis")
    await page.fill("#policy-hours-fri", "08:00-17:00")
    await page.fill("#policy-holidays", "2026-12-07")
    await page.click(".policy-form button[type=submit]")
    assert "Atlantis" in await browser.text_of(field_error("calendar"))
    await page.fill("#policy-timezone", "Europe/Madrid")

    # Friday 16:00 in Madrid + 120 business minutes: 60 on Friday; Monday 7 is a holiday; Tuesday 09:00.
    await page.fill("#preview-start", "2026-12-04T16:00")
    await page.fill("#preview-minutes", "120")
    await page.click(".preview-form button[type=submit]")
    assert (await browser.text_of(".preview-result")).startswith("Due 2026-12-08 09:00 (Europe/Madrid)")

    await page.click(".policy-form button[type=submit]")
    await page.locator(".policies-table td", has_text="Critical, office hours").wait_for()
    [policy] = await api_get(api, supervisor, "/api/v1/sla/policies")
    assert policy["priorities"] == ["critical"] and policy["resolution_minutes"] == 120
    assert policy["calendar"]["timezone"] == "Europe/Madrid" and policy["calendar"]["holidays"] == ["2026-12-07"]
    assert policy["calendar"]["hours"]["fri"] == [["08:00", "17:00"]] and "sat" not in policy["calendar"]["hours"]

    await page.fill("#rule-name", "Critical breached: maintenance L2")
    await page.select_option("#rule-level", "2")
    await page.select_option("#cond-type-0", "sla_breached")
    await page.select_option("#cond-clock-0", "resolution")
    await page.get_by_role("button", name="Add condition").click()
    await page.select_option("#cond-type-1", "priority_is")
    await page.fill("#rule-department", "maintenance-l2")
    await page.click(".rule-form button[type=submit]")
    await page.locator(".rules-table td", has_text="Critical breached").wait_for()
    [rule] = await api_get(api, supervisor, "/api/v1/sla/escalation-rules")
    assert rule["level"] == 2 and rule["target_department"] == "maintenance-l2"
    assert rule["conditions"] == [
        {"type": "sla_breached", "clock": "resolution"},
        {"type": "priority_is", "priorities": ["critical"]},
    ]


async def test_the_audit_log_filters_shows_before_and_after_and_verifies_the_chain(api, make_account, browser):
    admin = await make_account("admin")
    tech = await make_account("technician")
    incident = await create_incident(api, tech, "Compressor 2 pressure drops")
    await api.post(f"/api/v1/incidents/{incident['id']}/status", headers=tech.headers, json={"status": "waiting"})
    await browser.log_in(admin.username)
    await browser.go("#/admin/audit", ".audit-table")
    page = browser.page
    await page.fill("#audit-action", "incident.status_changed")
    await page.click(".audit-filters button[type=submit]")
    rows = page.locator(".audit-table tbody tr")
    await browser.wait_until("document.querySelectorAll('.audit-table tbody tr').length === 1")
    assert "incident.status_changed" in await rows.first.inner_text()
    await rows.first.get_by_role("button").click()
    detail = await browser.text_of(".audit-detail")
    assert '"status": "open"' in detail and '"status": "waiting"' in detail
    await page.get_by_role("button", name="Verify the chain").click()
    report = await api_get(api, admin, "/api/v1/audit/verify")
    assert report["ok"]
    assert f"{report['rows_checked']} rows checked" in await browser.text_of(".verify-ok")


async def test_a_runbook_is_uploaded_found_and_deleted(api, make_account, browser, tmp_path):
    supervisor = await make_account("supervisor")
    await browser.log_in(supervisor.username)
    await browser.go("#/admin/knowledge", ".upload-form")
    page = browser.page
    wrong = tmp_path / "manual.pdf"
    wrong.write_bytes(b"%PDF-1.4")
    await page.set_input_files("#doc-file", str(wrong))
    await page.click(".upload-form button[type=submit]")
    assert ".md, .txt" in await browser.text_of(field_error("file"))
    runbook = tmp_path / "press-pump.md"
    runbook.write_text(
        "# Hydraulic press pump\n\nWhen the pump of the hydraulic press cavitates, bleed the air from "
        "the suction line and check the oil level.\n",
        encoding="utf-8",
    )
    await page.set_input_files("#doc-file", str(runbook))
    await page.fill("#doc-title", "Press pump runbook")
    await page.click(".upload-form button[type=submit]")
    await page.locator(".documents-table td", has_text="Press pump runbook").wait_for()
    [document] = await api_get(api, supervisor, "/api/v1/knowledge/documents")
    assert document["filename"] == "press-pump.md" and document["chunk_count"] >= 1

    await page.fill("#kb-query", "hydraulic pump cavitation")
    await page.click(".kb-search-form button[type=submit]")
    assert "Press pump runbook" in await browser.text_of(".kb-hit")

    await page.get_by_role("button", name="Delete Press pump runbook").click()
    await page.get_by_role("button", name="Yes, delete").click()
    await page.locator(".status-line", has_text="Press pump runbook deleted").wait_for()
    assert await api_get(api, supervisor, "/api/v1/knowledge/documents") == []


async def test_a_technician_escalates_an_incident_by_hand_from_its_page(api, make_account, browser):
    tech = await make_account("technician")
    incident = await create_incident(api, tech, "Robot cell 2 stops at random")
    await browser.log_in(tech.username)
    await browser.go(f"#/incidents/{incident['id']}", ".escalate-form")
    page = browser.page
    await page.fill("#escalate-reason", "x")
    await page.click(".escalate-form button[type=submit]")
    assert "at least 3" in await browser.text_of(field_error("reason"))
    await page.select_option("#escalate-level", "2")
    await page.fill("#escalate-reason", "Stops every hour; need the robot vendor")
    await page.fill("#escalate-department", "automation-l2")
    await page.click(".escalate-form button[type=submit]")
    await page.locator(".escalation-item", has_text="Level 0 → 2").wait_for()
    [escalation] = await api_get(api, tech, f"/api/v1/incidents/{incident['id']}/escalations")
    assert (escalation["level"], escalation["trigger"], escalation["target_department"]) == (
        2,
        "manual",
        "automation-l2",
    )


async def test_a_role_that_may_not_open_a_page_is_told_so(make_account, browser):
    tech = await make_account("technician")
    await browser.log_in(tech.username, language="es")
    hrefs = await browser.evaluate("[...document.querySelectorAll('#topnav a')].map((a) => a.getAttribute('href'))")
    assert "#/admin/users" not in hrefs and "#/dashboard" not in hrefs
    await browser.go("#/admin/users", ".denied-page")
    text = await browser.text_of(".denied-page")
    assert "no está disponible para tu rol (Técnico)" in text and "Solo los administradores" in text


async def test_a_lost_connection_shows_a_banner_and_trying_again_recovers(make_account, browser):
    admin = await make_account("admin")
    await browser.log_in(admin.username)
    await browser.go("#/admin/users", ".users-table")
    page = browser.page
    await page.context.set_offline(True)
    await page.fill("#user-username", "nobody")
    await page.click(".user-create-form button[type=submit]")
    await page.locator("#connection-banner").wait_for(state="visible")
    assert "cannot be reached" in await page.locator("#connection-banner").inner_text()
    await page.context.set_offline(False)
    await page.get_by_role("button", name="Try again").click()
    await page.locator(".users-table").wait_for()
    assert await page.locator("#connection-banner").is_hidden()


async def test_the_dashboard_shows_the_figures_of_the_metrics_endpoints_as_charts_tables_and_csv(
    api, make_account, browser
):
    supervisor = await make_account("supervisor")
    tech = await make_account("technician")
    await api.post(
        "/api/v1/sla/policies",
        headers=supervisor.headers,
        json={"name": "All incidents", "first_response_minutes": 60, "resolution_minutes": 480},
    )
    incidents = [
        await create_incident(api, tech, title, priority=priority, area=area)
        for title, priority, area in (
            ("Conveyor belt 3 stopped, motor overheated", "high", "production"),
            ("Belt conveyor 3 halted: the motor is overheating", "critical", "production"),
            ("Scanner at gate 1 offline", "low", "logistics"),
        )
    ]
    await api.post(
        f"/api/v1/incidents/{incidents[2]['id']}/comments",
        headers=tech.headers,
        json={"body": "Restarted the scanner service."},
    )
    await api.post(
        f"/api/v1/incidents/{incidents[2]['id']}/resolve",
        headers=tech.headers,
        json={"solution": "Restarted the scanner service and replaced its cable."},
    )
    await api.post(
        f"/api/v1/incidents/{incidents[0]['id']}/escalations",
        headers=tech.headers,
        json={"level": 1, "reason": "Line stopped for an hour"},
    )

    await browser.log_in(supervisor.username)
    await browser.go("#/dashboard", ".kpi-tiles")
    page = browser.page
    overview = await api_get(api, supervisor, "/api/v1/sla/metrics/overview")
    quality = await api_get(api, supervisor, "/api/v1/sla/metrics/quality")
    compliance = await api_get(api, supervisor, "/api/v1/sla/metrics/compliance")
    recurring = await api_get(api, supervisor, "/api/v1/sla/metrics/recurring")

    tiles = dict(
        await page.evaluate(
            "[...document.querySelectorAll('.kpi')].map((k) => [k.dataset.kpi, "
            "k.querySelector('.kpi-value').textContent])"
        )
    )
    assert tiles["open"] == str(overview["open_incidents"]["total"]) == "2"
    assert tiles["escalations"] == str(overview["escalations"]["total"]) == "1"
    mttr_hours = quality["overall"]["mean_resolution_minutes"] / 60
    assert tiles["mttr"] == f"{mttr_hours:.1f} h".replace(".0 h", " h")
    assert tiles["fcr"] == "100 %" and quality["overall"]["first_contact_resolution_rate"] == 1.0

    async def table_rows(card: str) -> list[list[str]]:
        await page.locator(f"#chart-{card} summary").click()
        return await page.evaluate(
            f"[...document.querySelectorAll('#chart-{card} tbody tr')].map((tr) => "
            "[...tr.cells].map((td) => td.textContent))"
        )

    async def csv_rows(card: str) -> list[dict]:
        async with page.expect_download() as info:
            await page.locator(f"#chart-{card} .chart-head button").click()
        path = await (await info.value).path()
        return list(csv.DictReader(io.StringIO(open(path, encoding="utf-8").read())))

    by_status = {r["status"]: r["incidents"] for r in overview["open_incidents"]["by_status"]}
    assert {row[0]: int(row[2]) for row in await table_rows("open-status")} == by_status
    assert {row["status"]: int(row["incidents"]) for row in await csv_rows("open-status")} == by_status
    [policy] = compliance["policies"]
    [compliance_row] = await csv_rows("compliance")
    assert compliance_row["policy_name"] == "All incidents"
    assert int(compliance_row["first_response_met"]) == policy["first_response"]["met"] == 1
    assert int(compliance_row["resolution_met"]) == policy["resolution"]["met"] == 1
    assert float(compliance_row["overall_compliance_rate"]) == policy["overall_compliance_rate"]
    [problem] = recurring["problems"]
    [problem_row] = await csv_rows("recurring")
    assert (problem_row["label"], int(problem_row["incidents"])) == (problem["label"], 2)
    area_rows = {row["area"]: row for row in await csv_rows("resolution")}
    assert float(area_rows["logistics"]["mean_resolution_minutes"]) == pytest.approx(
        next(a for a in quality["by_area"] if a["area"] == "logistics")["mean_resolution_minutes"]
    )
    chart_names = await page.evaluate(
        "[...document.querySelectorAll('svg.chart')].map((s) => s.getAttribute('aria-label'))"
    )
    assert any(
        name.startswith("Open incidents by status: Open 1, In progress")
        or name.startswith("Open incidents by status: Open 2")
        for name in chart_names
    )


async def test_an_incident_created_in_one_page_appears_in_another_within_two_seconds(api, make_account, new_page):
    watcher = await make_account("technician")
    reporter = await make_account("technician")
    first = await new_page()
    second = await new_page()
    streams = []
    first.page.on("request", lambda request: streams.append(request.url) if "/api/v1/live/" in request.url else None)
    await first.log_in(watcher.username)
    await first.go("#/incidents", ".list-page")
    await first.wait_until("document.getElementById('live-state').dataset.state === 'live'")
    assert await first.text_of("#live-state") == "● Live"
    await second.log_in(reporter.username)
    await second.go("#/report", "form")
    await second.page.fill("#report-title", "Paint booth 2 extractor fan noisy")
    await second.page.fill("#report-description", "A loud rattle from the extractor fan since this morning.")
    await second.page.click("form button[type=submit]")
    await second.page.locator(".created-panel").wait_for()
    created_at = time.monotonic()
    await first.wait_until(
        "[...document.querySelectorAll('.incident-table td')].some((td) => "
        "td.textContent === 'Paint booth 2 extractor fan noisy')",
        timeout=5,
    )
    assert time.monotonic() - created_at < 2.0

    # The incident page follows changes made elsewhere too.
    [incident] = (await api_get(api, watcher, "/api/v1/incidents"))["items"]
    await first.go(f"#/incidents/{incident['id']}", ".comments-card")
    await second.go(f"#/incidents/{incident['id']}", ".comments-card")
    await second.page.fill("#comment-body", "Fan bearing worn; ordering a new one.")
    await second.page.click(".comments-card button[type=submit]")
    await second.page.locator(".comment", has_text="Fan bearing worn").wait_for()
    commented_at = time.monotonic()
    await first.wait_until(
        "[...document.querySelectorAll('.comment')].some((c) => c.textContent.includes('Fan bearing worn'))", timeout=5
    )
    assert time.monotonic() - commented_at < 2.0
    # One stream for the tab, kept from the list to the incident page.
    assert len(streams) == 1
