"""/docs and /redoc work offline: every asset they reference is served by the service itself."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.asyncio

# src/href attributes and JavaScript string literals holding a URL or a path to an asset
_REFERENCES = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")
_ABSOLUTE = re.compile(r"""https?://[^\s'"<>)]+""")
_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_reference_no_other_host_and_their_assets_are_served(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert _ABSOLUTE.findall(html) == [], "the page loads something from another host"
    references = {ref for ref in _REFERENCES.findall(html) if not ref.startswith("#")}
    assets = {ref for ref in references if ref.endswith(tuple(_TYPES))}
    assert any(ref.endswith(".js") for ref in assets)
    assert "/openapi.json" in references
    for ref in sorted(assets):
        assert not urlsplit(ref).netloc, ref
        served = await client.get(ref)
        assert served.status_code == 200, ref
        expected = next(kind for suffix, kind in _TYPES.items() if ref.endswith(suffix))
        assert expected in served.headers["content-type"], (ref, served.headers["content-type"])
        assert len(served.content) > 1000, ref


async def test_the_openapi_document_does_not_list_the_docs(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc"))]
