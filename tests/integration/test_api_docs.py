"""The interactive API docs work offline and under the strict content security policy."""

from __future__ import annotations

import re


async def test_docs_page_loads_swagger_from_this_server_without_inline_script(api):
    reply = await api.get("/docs")
    assert reply.status_code == 200
    html = reply.text
    sources = re.findall(r'<script src="([^"]+)"></script>', html)
    assert sources == ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/init.js"]
    assert not re.search(r"<script>[^<]", html), "inline scripts would be blocked by the CSP"
    csp = reply.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    for path in sources + ["/docs/assets/swagger-ui.css"]:
        asset = await api.get(path)
        assert asset.status_code == 200 and len(asset.content) > 20, path
    assert "/openapi.json" in (await api.get("/docs/assets/init.js")).text


async def test_unknown_docs_asset_is_404(api):
    reply = await api.get("/docs/assets/..%2Fconfig.py")
    assert reply.status_code == 404
    assert (await api.get("/docs/assets/index.html")).status_code == 404
