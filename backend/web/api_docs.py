"""Interactive API docs (Swagger UI) served from the bundled package: no CDN, no inline script."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from backend.errors import NotFound

router = APIRouter(include_in_schema=False)

_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_INIT_SCRIPT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
                               persistAuthorization: false});
});
"""
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>PR-System API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script></body></html>
"""


def _swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


@router.get("/docs")
async def api_docs() -> HTMLResponse:
    """The Swagger UI page for /openapi.json."""
    return HTMLResponse(_PAGE)


@router.get("/docs/assets/{name}")
async def api_docs_asset(name: str) -> Response:
    """A whitelisted Swagger UI asset, or the page's own start script."""
    if name == "init.js":
        return Response(_INIT_SCRIPT, media_type="application/javascript")
    if name not in _ASSETS:
        raise NotFound(f"no docs asset '{name}'")
    return FileResponse(_swagger_dir() / name, media_type=_ASSETS[name])
