"""The web pages: the single HTML page and its whitelisted static files, served by backend.web.router alone."""

from __future__ import annotations

import re
from typing import AsyncIterator, get_args

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend.errors import AppError
from backend.sla.schemas import ClockKind
from backend.web.router import STATIC_DIR, STATIC_FILES, router


def web_only_app() -> FastAPI:
    """An app holding only the web router: no database or services, AppError answered as create_app does."""
    app = FastAPI()

    @app.exception_handler(AppError)
    async def app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=exc.headers)

    app.include_router(router)
    return app


@pytest_asyncio.fixture
async def web_client() -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client of the web-only app."""
    app = web_only_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


async def test_index_page_links_its_script_and_stylesheet(web_client):
    response = await web_client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js"></script>' in response.text
    assert '<link rel="stylesheet" href="/static/app.css">' in response.text


async def test_index_page_carries_a_strict_content_security_policy(web_client):
    response = await web_client.get("/")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", sorted(STATIC_FILES))
async def test_each_static_file_is_served_with_its_content_type(web_client, name):
    response = await web_client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == STATIC_FILES[name]
    assert response.content == (STATIC_DIR / name).read_bytes()


def test_whitelist_matches_the_files_in_the_static_folder():
    on_disk = {path.name for path in STATIC_DIR.iterdir() if path.is_file()}
    assert on_disk == set(STATIC_FILES)


def page_scripts() -> dict[str, str]:
    """Every whitelisted JavaScript module, by name, with its source."""
    return {name: (STATIC_DIR / name).read_text(encoding="utf-8") for name in STATIC_FILES if name.endswith(".js")}


def test_every_module_the_page_imports_is_whitelisted():
    imported = set()
    for source in page_scripts().values():
        imported |= set(re.findall(r'from "\./([\w.-]+)"', source))
    assert imported and imported <= set(STATIC_FILES)


def test_pages_use_no_inline_code_no_eval_and_no_inner_html():
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index) is None
    assert "<style" not in index and " style=" not in index and re.search(r"\son[a-z]+=", index) is None
    for name, source in page_scripts().items():
        for forbidden in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"):
            assert forbidden not in source, f"{name} uses {forbidden}"


@pytest.mark.parametrize(
    "path",
    [
        "/static/router.py",
        "/static/..%2Frouter.py",
        "/static/%2e%2e%2f__init__.py",
        "/static/",
        "/static/app.js/extra",
        "/static/APP.JS",
        "/static/../router.py",
    ],
)
async def test_a_path_outside_the_whitelist_is_not_found(web_client, path):
    response = await web_client.get(path)
    assert response.status_code == 404
    assert "import " not in response.text


async def test_an_unknown_static_name_answers_in_the_api_error_shape(web_client):
    response = await web_client.get("/static/secrets.txt")
    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "detail": "no static file named 'secrets.txt'"}


def _ui_texts(language: str) -> set[str]:
    """The keys defined for `language` in i18n.js (its TEXTS object holds an `en` block, then an `es` block)."""
    source = (STATIC_DIR / "i18n.js").read_text(encoding="utf-8")
    english, spanish = source.split("\n  es: {", 1)
    block = english.split("\n  en: {", 1)[1] if language == "en" else spanish.split("\n};", 1)[0]
    return set(re.findall(r'^\s+"([\w.]+)":', block, flags=re.MULTILINE))


def test_every_text_the_pages_use_exists_in_english_and_spanish():
    used = set()
    for source in page_scripts().values():
        used |= set(re.findall(r'\bt\("([\w.]+)"', source))
    english, spanish = _ui_texts("en"), _ui_texts("es")
    assert {"sla.title", "detail.back", "login.submit"} <= used  # the scan finds the calls
    assert used - english == set(), "texts missing in English"
    assert used - spanish == set(), "texts missing in Spanish"
    assert english == spanish


def test_the_sla_panel_names_every_clock_and_state_it_can_show():
    english = _ui_texts("en")
    assert {f"sla.clock.{kind}" for kind in get_args(ClockKind)} <= english
    panel = (STATIC_DIR / "sla-panel.js").read_text(encoding="utf-8")
    states = set(re.findall(r'"(sla\.(?:running|atRisk|paused|breached|met|missed))"', panel))
    assert states == {"sla.running", "sla.atRisk", "sla.paused", "sla.breached", "sla.met", "sla.missed"}
    assert states <= english
