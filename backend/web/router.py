"""The web pages for people: one HTML page and its whitelisted static files (no templates, no CDN)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from backend.errors import NotFound

STATIC_DIR = Path(__file__).parent / "static"

# Only these names are ever served, so no request path can reach another file on disk.
STATIC_FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "sse.js": "text/javascript; charset=utf-8",
    "login-page.js": "text/javascript; charset=utf-8",
    "password-page.js": "text/javascript; charset=utf-8",
    "incident-list-page.js": "text/javascript; charset=utf-8",
    "incident-report-page.js": "text/javascript; charset=utf-8",
    "incident-detail-page.js": "text/javascript; charset=utf-8",
    "suggestion-panel.js": "text/javascript; charset=utf-8",
    "sla-panel.js": "text/javascript; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "admin-kit.js": "text/javascript; charset=utf-8",
    "dashboard-page.js": "text/javascript; charset=utf-8",
    "admin-users-page.js": "text/javascript; charset=utf-8",
    "admin-keys-page.js": "text/javascript; charset=utf-8",
    "admin-notify-page.js": "text/javascript; charset=utf-8",
    "admin-sla-page.js": "text/javascript; charset=utf-8",
    "admin-audit-page.js": "text/javascript; charset=utf-8",
    "admin-knowledge-page.js": "text/javascript; charset=utf-8",
}

# The page loads nothing from elsewhere and runs no inline code; the API is on the same origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["web"])


def static_file_response(name: str) -> FileResponse:
    """The whitelisted static file `name` with its content type and security headers, or 404."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound(f"no static file named '{name}'")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
async def index_page() -> FileResponse:
    return static_file_response("index.html")


@router.get("/static/{name}", include_in_schema=False)
async def static_file(name: str) -> FileResponse:
    return static_file_response(name)
